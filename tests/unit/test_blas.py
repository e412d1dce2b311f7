"""Matrix products give the same bits whichever C BLAS the host process binds first.

``qgis_process`` and the QGIS desktop link GSL's reference CBLAS (``libgslcblas``) ahead of OpenBLAS,
which re-binds numpy's ``@``; preloading that library into a plain Python reproduces the host.
"""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.unit.cli_package import LINK_DIR, package

GSL_CBLAS = next((p for p in ("/lib/x86_64-linux-gnu/libgslcblas.so.0", "/usr/lib/x86_64-linux-gnu/libgslcblas.so.0",
                              ctypes.util.find_library("gslcblas") or "") if p and os.path.exists(p)), None)

_PRODUCTS = """
import sys, numpy as np
from soil_moisture_downscaling.core.raster.blas import matmul
r = np.random.default_rng(0)
z, sv, c = (r.standard_normal(s).astype(np.float32) for s in ((3000, 4), (655, 4), (655,)))
k = z @ sv.T
np.savez(sys.argv[1], numpy=k @ c, ours=matmul(matmul(z, sv.T), c))
"""


def test_products_equal_numpys_within_rounding():
    blas = package("core.raster.blas")
    r = np.random.default_rng(1)
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        a, b, v = r.standard_normal((37, 5)).astype(dtype), r.standard_normal((5, 11)).astype(dtype), \
            r.standard_normal(5).astype(dtype)
        assert blas.matmul(a, b).dtype == dtype and blas.matmul(a, b).shape == (37, 11)
        np.testing.assert_allclose(blas.matmul(a, b), a @ b, rtol=tol, atol=tol)
        np.testing.assert_allclose(blas.matmul(a, v), a @ v, rtol=tol, atol=tol)
        np.testing.assert_allclose(blas.matmul(a.T, a), a.T @ a, rtol=tol, atol=tol)  # a transposed view
    assert blas.matmul(np.zeros((0, 3)), np.ones((3, 2))).shape == (0, 2)
    assert blas.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 32.0


@pytest.mark.skipif(GSL_CBLAS is None, reason="GSL's CBLAS (libgsl27) is not installed")
def test_products_are_the_same_bits_under_gsls_cblas(tmp_path):
    outs = []
    for preload in ("", GSL_CBLAS):
        out = tmp_path / f"products{len(outs)}.npz"
        env = dict(os.environ, LD_PRELOAD=preload, PYTHONPATH=LINK_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
        subprocess.run([sys.executable, "-c", _PRODUCTS, str(out)], check=True, env=env, timeout=120)
        outs.append(np.load(out))
    plain, host = outs
    assert not np.array_equal(plain["numpy"], host["numpy"])  # the host effect this module exists for
    assert np.array_equal(plain["ours"], host["ours"])
