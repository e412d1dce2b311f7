"""Every optional dependency the plugin uses imports inside real QGIS, on the distribution's numpy.

Inside QGIS the distribution's numpy is loaded before any plugin code, so a package built for
another numpy (a numpy 1.26 or 2 wheel, pandas 3, …) can pass in a plain venv and break here:
scripts/setup.sh pins numpy to /usr/bin/python3's version, and this test checks that the pin
held for everything the algorithms import.
"""
from __future__ import annotations

import importlib
import subprocess

import pytest
from qgis.core import QgsApplication

#: Import names of the optional packages the plugin uses (REQUIRED_PACKAGES of the algorithms and
#: what core imports lazily), and a submodule that loads its compiled parts.
OPTIONAL = {
    "sklearn": "sklearn.ensemble",
    "onnxruntime": "onnxruntime.capi._pybind_state",
    "onnx": "onnx.helper",
    "skl2onnx": "skl2onnx.common.data_types",
    "joblib": "joblib.numpy_pickle",
    "scipy": "scipy.ndimage",
    "matplotlib": "matplotlib.pyplot",
    # the command line's --dask back end (requirements-dev): it must not bring a numpy/pandas that breaks QGIS
    "distributed": "distributed.client",
}


def _system_numpy() -> str:
    return subprocess.run(["/usr/bin/python3", "-I", "-c", "import numpy; print(numpy.__version__)"],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def test_optional_dependencies_import_in_qgis_with_the_system_numpy(plugin, provider):
    import numpy
    from osgeo import gdal_array  # noqa: F401  (built against the distribution's numpy)

    assert QgsApplication.instance() is not None  # a real, initialised QGIS
    required = {name for alg in provider.algorithms() for name in getattr(alg, "REQUIRED_PACKAGES", ())}
    assert required <= set(OPTIONAL), f"algorithms need packages this test does not import: {required - set(OPTIONAL)}"
    for name, submodule in OPTIONAL.items():
        importlib.import_module(name)
        importlib.import_module(submodule)
    assert numpy.__version__ == _system_numpy(), (numpy.__version__, numpy.__file__)
    assert numpy.__file__.startswith("/usr/lib/python3/dist-packages/"), numpy.__file__


def test_skl2onnx_converts_a_forest_with_the_pinned_protobuf(plugin):
    import google.protobuf
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestRegressor

    assert int(google.protobuf.__version__.split(".")[0]) < 7, google.protobuf.__version__
    x = np.random.default_rng(0).random((40, 2)).astype(np.float32)
    model = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0).fit(x, x[:, 0])
    onx = to_onnx(model, x[:1])
    import onnxruntime as ort
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0].ravel()
    assert got == pytest.approx(model.predict(x), abs=1e-5)
