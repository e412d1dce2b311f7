"""Matrix products that give the same bits in every host process: QGIS, ``qgis_process``, a plain Python.

numpy's ``@`` calls the C BLAS symbols ``cblas_sgemm``/``cblas_dgemm``…, bound to whichever library
exports them first. ``qgis_process`` (and the QGIS desktop) link GSL's reference CBLAS
(``libgslcblas``) ahead of OpenBLAS, so inside them numpy's products run GSL's loops, outside them
OpenBLAS's kernels: the same run rounded differently (float32 trend predictions 1 ulp apart, which the
trend weight carried to 1.6e-5 m³/m³ in the Delaware demo). scipy's BLAS wrappers call the Fortran
symbols (``sgemm_``…), which GSL does not export: the same OpenBLAS everywhere. Products whose result
reaches an output go through here.

>>> import numpy as np
>>> matmul(np.eye(2, dtype=np.float32), np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)).tolist()
[[1.0, 2.0], [3.0, 4.0]]
"""
from __future__ import annotations

import numpy as np


def _blas(*arrays: np.ndarray):
    from scipy.linalg import blas
    single = all(a.dtype == np.float32 for a in arrays)
    return blas, ("s" if single else "d"), (np.float32 if single else np.float64)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a 2-D ``a`` and a 1-D or 2-D ``b`` (float32 when both are, else float64)."""
    a, b = np.asarray(a), np.asarray(b)
    blas, p, dtype = _blas(a, b)
    a = np.ascontiguousarray(a, dtype=dtype)
    b = np.ascontiguousarray(b, dtype=dtype)
    if a.shape[0] == 0 or (b.ndim == 2 and b.shape[1] == 0):
        return np.zeros(a.shape[:1] + b.shape[1:], dtype=dtype)
    if b.ndim == 1:
        # a (C order) is aᵀ in Fortran order: y = (aᵀ)ᵀ b
        return getattr(blas, p + "gemv")(1.0, a.T, b, trans=1)
    # (a b)ᵀ = bᵀ aᵀ, and the C-ordered a, b are aᵀ, bᵀ in Fortran order: no copy either way
    return getattr(blas, p + "gemm")(1.0, b.T, a.T).T


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``Σ a·b`` of two 1-D arrays, in float64."""
    from scipy.linalg import blas
    return float(blas.ddot(np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)))
