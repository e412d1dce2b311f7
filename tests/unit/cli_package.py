"""The checkout imported as the package ``soil_moisture_downscaling`` (through a symlink, as a user runs
``python -m soil_moisture_downscaling`` from a checkout), for the command-line tests."""
from __future__ import annotations

import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_ID = "soil_moisture_downscaling"


def _link() -> str:
    folder = tempfile.mkdtemp(prefix="smds-cli-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # removes the link, not the checkout
    os.symlink(ROOT, os.path.join(folder, PLUGIN_ID))
    return folder


LINK_DIR = _link()
if LINK_DIR not in sys.path:
    sys.path.insert(0, LINK_DIR)


def package(module: str):
    """``soil_moisture_downscaling.<module>``, imported from the checkout."""
    return importlib.import_module(f"{PLUGIN_ID}.{module}")


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m soil_moisture_downscaling ARGS`` in a fresh interpreter (stdout, stderr as text)."""
    env = dict(os.environ, PYTHONPATH=LINK_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", PLUGIN_ID, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=LINK_DIR)


def popen_cli(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=LINK_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", PLUGIN_ID, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=LINK_DIR)
