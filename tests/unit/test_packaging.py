"""metadata.txt is complete and scripts/package.sh builds a zip QGIS can install (no dev files)."""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_ID = "soil_moisture_downscaling"


def _metadata() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "metadata.txt", encoding="utf-8")
    return parser["general"]


def test_metadata_declares_what_qgis_and_users_need():
    meta = _metadata()
    assert meta["name"] == "Soil Moisture Downscaling"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["qgisMinimumVersion"] == "3.22"
    assert meta["hasProcessingProvider"] == "yes"
    assert meta["category"] == "Raster"
    assert "soil moisture" in meta["tags"]
    for package in ("onnxruntime", "scikit-learn", "skl2onnx", "onnx"):
        assert package in meta["about"], f"about= must name the external package {package}"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_package_zip_has_plugin_folder_and_no_dev_files(tmp_path):
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "package.sh"), str(tmp_path)], capture_output=True, text=True, check=True
    )
    zip_path = Path(proc.stdout.strip().splitlines()[-1])
    assert zip_path == tmp_path / f"{PLUGIN_ID}-{_metadata()['version']}.zip"
    names = zipfile.ZipFile(zip_path).namelist()
    assert all(n.startswith(f"{PLUGIN_ID}/") for n in names)
    for needed in ("metadata.txt", "__init__.py", "plugin.py", "processing_provider/provider.py", "core/deps.py"):
        assert f"{PLUGIN_ID}/{needed}" in names
    dev = [n for n in names if re.match(
        rf"{PLUGIN_ID}/(tests|benchmarks|scripts|\.ci|models/recipes)/|{PLUGIN_ID}/(pytest\.ini|\.gitignore|requirements)", n)]
    assert not dev, dev
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_pyproject_maps_every_package_folder_and_the_metadata_version():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    folders = sorted(p.parent.relative_to(ROOT) for p in ROOT.rglob("__init__.py")
                     if not {"tests", ".git", "build"} & set(p.relative_to(ROOT).parts))
    expected = sorted(".".join([PLUGIN_ID, *f.parts]) for f in folders)
    assert sorted(project["tool"]["setuptools"]["packages"]) == expected
    assert project["tool"]["setuptools"]["package-dir"] == {PLUGIN_ID: "."}
    assert project["project"]["version"] == _metadata()["version"]
    assert project["project"]["scripts"]["smds"] == f"{PLUGIN_ID}.cli.main:main"
