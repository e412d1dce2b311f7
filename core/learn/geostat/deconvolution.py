"""Point-support variogram from the variogram of block (areal) data: regularisation and Goovaerts'
(2008) iterative deconvolution, for blocks that are the cells of a regular lattice.

*Regularisation* turns a point model into the variogram of block averages,
``γ_v(h) = C̄(v, v) − C̄(v, v_h)``. *Deconvolution* searches the point model whose regularisation
matches the fitted areal model: start from the areal model, then repeatedly rescale "experimental"
point values by ``w(h) = 1 + (γ_v(h) − γ_v^reg(h)) / (σ² √(l+1))``, refit, and keep the model
whenever the mean relative difference ``D`` between regularised and areal models drops; when it
does not, halve the rescaling.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .kriging import BlockCovariance
from .variogram import LatticeVariogram, VariogramModel, fit_variogram

#: Points per block side used to discretise a cell when regularising (cells finer than that use
#: their pixel count).
MAX_DISCRETISATION = 12


def regularize(point: VariogramModel, offsets: np.ndarray, cell_x: float, cell_y: float,
               points_x: int, points_y: int) -> np.ndarray:
    """Semivariogram of block averages at lattice ``offsets`` (``(n, 2)`` rows, cols in cells) for
    cells of ``cell_x`` × ``cell_y`` metres discretised by ``points_y`` × ``points_x`` points."""
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    mr = (int(np.abs(offsets[:, 0]).max(initial=0)) + 1) * points_y
    mc = (int(np.abs(offsets[:, 1]).max(initial=0)) + 1) * points_x
    origin = np.array([0, points_y, 0, points_x])
    shifted = np.column_stack([offsets[:, 0] * points_y, offsets[:, 0] * points_y + points_y,
                               offsets[:, 1] * points_x, offsets[:, 1] * points_x + points_x])
    bc = BlockCovariance(point, cell_x / points_x, cell_y / points_y, origin[None, :], mr, mc)
    c_vv = float(bc.rect_between(origin, origin))
    return c_vv - bc.rect_between(np.broadcast_to(origin, shifted.shape), shifted)


def _binned(values_at_offsets: np.ndarray, areal: LatticeVariogram) -> np.ndarray:
    w = areal.offset_count.astype(np.float64)
    num = np.bincount(areal.bin_of_offset, weights=w * values_at_offsets, minlength=len(areal.lags))
    den = np.bincount(areal.bin_of_offset, weights=w, minlength=len(areal.lags))
    return num / np.maximum(den, 1e-300)


def deconvolve(areal: LatticeVariogram, cell_x: float, cell_y: float, ratio_x: float, ratio_y: float,
               model: str = "exponential", max_iterations: int = 20, tolerance: float = 0.01
               ) -> tuple[VariogramModel, VariogramModel, dict[str, Any]]:
    """Point-support model whose block regularisation matches the areal variogram ``areal``.

    Parameters
    ----------
    areal : LatticeVariogram
        Experimental variogram of the block data (lags in metres).
    cell_x, cell_y : float
        Block (coarse cell) size in metres.
    ratio_x, ratio_y : float
        Fine pixels per block side; blocks are discretised by ``min(round(ratio), 12)`` points.
    model : str
        Variogram family of both models.

    Returns
    -------
    point, areal_fit, info
        The deconvolved point model, the model fitted to the areal variogram, and a log
        (iterations, D before/after).
    """
    nx = int(max(1, min(round(ratio_x), MAX_DISCRETISATION)))
    ny = int(max(1, min(round(ratio_y), MAX_DISCRETISATION)))
    areal_fit = fit_variogram(areal.lags, areal.gamma, areal.counts, model)
    target = areal_fit.gamma(areal.lags)
    target = np.maximum(target, 1e-12 * max(areal_fit.sill, 1e-30))
    sigma2 = max(areal_fit.sill, 1e-30)

    def reg(pm: VariogramModel) -> np.ndarray:
        return _binned(regularize(pm, areal.offsets, cell_x, cell_y, nx, ny), areal)

    def distance(r: np.ndarray) -> float:
        return float(np.mean(np.abs(r - target) / target))

    best = areal_fit
    best_reg = reg(best)
    d0 = d_best = distance(best_reg)
    w = 1.0 + (target - best_reg) / sigma2
    small_changes, it = 0, 0
    for it in range(1, max_iterations + 1):
        if d_best < tolerance:
            break
        candidate = fit_variogram(areal.lags, np.maximum(best.gamma(areal.lags) * w, 0.0), areal.counts, model)
        cand_reg = reg(candidate)
        d = distance(cand_reg)
        if d < d_best:
            small_changes = small_changes + 1 if (d_best - d) / max(d_best, 1e-30) < 0.01 else 0
            best, best_reg, d_best = candidate, cand_reg, d
            w = 1.0 + (target - best_reg) / (sigma2 * math.sqrt(it + 1))
        else:
            w = 1.0 + (w - 1.0) / 2.0
            small_changes += 1
        if small_changes >= 3:
            break
    info = {"iterations": it, "D_initial": d0, "D_final": d_best, "discretisation": [ny, nx]}
    return best, areal_fit, info
