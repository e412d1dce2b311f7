"""A QGIS whose Python lacks scikit-learn/onnxruntime still loads the plugin, and says how to install them.

Debian's /usr/bin/python3 outside the test venv is exactly such a Python (the venv holds
scikit-learn and onnxruntime), so the check runs there, in a subprocess.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[1])
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from qgis.core import QgsApplication, QgsProcessingContext
    app = QgsApplication([], False); app.initQgis()
    try:
        import sklearn  # noqa: F401
        print("HAS_SKLEARN")
    except ImportError:
        pass
    import soil_moisture_downscaling as p
    plugin = p.classFactory(None)
    plugin.initProcessing()
    alg = QgsApplication.processingRegistry().algorithmById("soil_moisture_downscaling:downscale_regression")
    ok, msg = alg.checkParameterValues({}, QgsProcessingContext())
    print("LOADED", alg is not None)
    print("CHECK", ok)
    print("MESSAGE", msg)
""")


def test_plugin_loads_and_explains_a_missing_package(plugin_dir, tmp_path):
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no system Python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QGIS_CUSTOM_CONFIG_PATH=str(tmp_path), HOME=str(tmp_path))
    proc = subprocess.run(["/usr/bin/python3", "-I", "-c", SCRIPT, str(plugin_dir)], env=env, capture_output=True,
                          text=True, timeout=120)
    out = proc.stdout
    if "HAS_SKLEARN" in out:
        pytest.skip("the system Python has scikit-learn: no missing package to test with")
    assert proc.returncode == 0, proc.stderr
    assert "LOADED True" in out
    assert "CHECK False" in out
    assert "scikit-learn" in out and "pip install" in out and "numpy==" in out
