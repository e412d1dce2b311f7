"""Where ensembles live: bundled with the plugin (``models/``) and saved by the user (profile folder)."""
from __future__ import annotations

import os

from qgis.core import QgsApplication

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED_DIR = os.path.join(PLUGIN_DIR, "models")


def user_models_dir(create: bool = False) -> str:
    """``<QGIS profile>/soil_moisture_downscaling/models`` — where trained ensembles are saved."""
    path = os.path.join(QgsApplication.qgisSettingsDirPath(), "soil_moisture_downscaling", "models")
    if create:
        os.makedirs(path, exist_ok=True)
    return path


def cross_scale_models_dir(create: bool = False) -> str:
    """``<QGIS profile>/soil_moisture_downscaling/cross_scale_models`` — where trained cross-scale networks are
    saved (apart from the ensembles, which another algorithm lists)."""
    path = os.path.join(os.path.dirname(user_models_dir()), "cross_scale_models")
    if create:
        os.makedirs(path, exist_ok=True)
    return path


def ensemble_folders() -> list[str]:
    """Every folder that may be an ensemble: bundled ones first, then the user's."""
    out = []
    for root in (BUNDLED_DIR, user_models_dir()):
        if os.path.isdir(root):
            out += sorted(os.path.join(root, d) for d in os.listdir(root)
                          if d != "recipes" and os.path.isdir(os.path.join(root, d)))
    return out


def find_ensemble(name_or_path: str) -> str:
    """Folder of an ensemble given by name (bundled or saved) or by path; '' if unknown."""
    if os.path.isdir(name_or_path):
        return name_or_path
    for f in ensemble_folders():
        if os.path.basename(f) == name_or_path:
            return f
    return ""
