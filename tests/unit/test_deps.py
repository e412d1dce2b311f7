"""core.deps: finding missing packages and telling how to install them into QGIS's own Python."""
from __future__ import annotations

import os

from core.deps import PythonEnv, install_hint, missing_packages, pip_command, python_executable

DEBIAN = PythonEnv("linux", "/usr/bin/python3", "1.24.2", externally_managed=True)
OSGEO4W = PythonEnv("win32", "python", "1.26.4")


def test_missing_packages_keeps_order_and_only_missing():
    assert missing_packages(["json", "surely_absent_pkg_31", "os", "also_absent_pkg_27"]) == [
        "surely_absent_pkg_31",
        "also_absent_pkg_27",
    ]
    assert missing_packages([]) == []


def test_a_package_that_fails_on_import_counts_as_missing(tmp_path, monkeypatch):
    (tmp_path / "broken_pkg_for_test.py").write_text("raise AttributeError('built for numpy 2')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert missing_packages(["broken_pkg_for_test"]) == ["broken_pkg_for_test"]


def test_nothing_missing_gives_no_hint():
    assert install_hint([], DEBIAN) == ""


def test_debian_hint_is_the_exact_user_install_keeping_qgis_numpy():
    hint = install_hint(["sklearn", "onnxruntime"], DEBIAN)
    assert (
        "    /usr/bin/python3 -m pip install --user --break-system-packages scikit-learn onnxruntime numpy==1.24.2"
        in hint.splitlines()
    )
    assert "scikit-learn, onnxruntime" in hint.splitlines()[0]
    assert "Never upgrade numpy or GDAL" in hint


def test_windows_hint_uses_osgeo4w_shell_and_quotes_for_cmd():
    hint = install_hint(["onnx", "skl2onnx"], OSGEO4W)
    assert "OSGeo4W Shell" in hint
    assert f'    python -m pip install --user onnx skl2onnx numpy=={OSGEO4W.numpy_version}' in hint.splitlines()
    assert "--break-system-packages" not in hint


def test_numpy_2_is_pinned_too_and_venv_has_no_user_flag():
    cmd = pip_command(["sklearn"], PythonEnv("linux", "/opt/venv/bin/python", "2.1.0", in_venv=True))
    assert cmd == ["/opt/venv/bin/python", "-m", "pip", "install", "scikit-learn", "numpy==2.1.0"]


def test_duplicate_import_names_install_once():
    assert pip_command(["sklearn", "sklearn"], OSGEO4W)[-2:] == ["scikit-learn", f"numpy=={OSGEO4W.numpy_version}"]


def test_missing_pip_is_mentioned_first():
    lines = install_hint(["onnx"], PythonEnv("linux", "/usr/bin/python3", "1.24.2", has_pip=False)).splitlines()
    assert "apt install python3-pip" in lines[2] and "-m pip install" in lines[3]


def test_python_executable_inside_qgis_on_linux(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3.11").write_text("")
    os.symlink("python3.11", bindir / "python3")
    qgis_bin = str(bindir / "qgis.bin")
    assert python_executable(qgis_bin, str(tmp_path), "linux", (3, 11)) == str(bindir / "python3")
    os.remove(bindir / "python3")
    (bindir / "python3").write_text("")  # a different interpreter: keep the exact version
    assert python_executable(qgis_bin, str(tmp_path), "linux", (3, 11)) == str(bindir / "python3.11")


def test_python_executable_is_kept_when_already_python_and_osgeo4w_otherwise():
    assert python_executable("/opt/venv/bin/python", "/usr", "linux", (3, 11)) == "/opt/venv/bin/python"
    assert python_executable(r"C:\OSGeo4W\bin\qgis-bin.exe", r"C:\OSGeo4W\apps\Python39", "win32", (3, 9)) == "python"
    assert python_executable("/nowhere/qgis.bin", "/nowhere", "linux", (3, 11)) == "python3"
