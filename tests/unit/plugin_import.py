"""Import plugin modules by the plugin's package name, without QGIS.

``ui/`` reaches ``core/`` through relative imports (``from ..core.inputs.roles import Role``), which
work only inside the plugin package. This links the checkout as ``soil_moisture_downscaling``
into a temporary folder (as QGIS sees it) and imports from there::

    guess = plugin_module("core.inputs.guess")
"""
from __future__ import annotations

import atexit
import importlib
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

PLUGIN_ID = "soil_moisture_downscaling"
ROOT = Path(__file__).resolve().parents[2]


def plugin_module(name: str) -> ModuleType:
    try:
        importlib.import_module(PLUGIN_ID)
    except ModuleNotFoundError:
        folder = Path(tempfile.mkdtemp(prefix="smds-unit-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # removes the link, not the checkout
        (folder / PLUGIN_ID).symlink_to(ROOT, target_is_directory=True)
        sys.path.insert(0, str(folder))
    package = importlib.import_module(PLUGIN_ID)
    assert Path(package.__file__).resolve().parent == ROOT, package.__file__
    return importlib.import_module(f"{PLUGIN_ID}.{name}")
