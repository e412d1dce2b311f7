"""Residual correction: spreading the coarse-scale residual of a trend back onto the fine grid.

Kept apart from the trend so other residual models (area-to-area kriging, SVATARK) can replace
:func:`bilinear_residual` without touching the trend.
"""
from __future__ import annotations

import numpy as np

from ..raster.grid import Grid, Window, bilinear_from_cells


def coarse_residual(coarse_sm: np.ndarray, trend_cell_mean: np.ndarray) -> np.ndarray:
    """Residual per coarse cell: observed coarse soil moisture minus the mean fine trend in it."""
    return (np.asarray(coarse_sm, dtype=np.float64) - trend_cell_mean).astype(np.float32)


def bilinear_residual(residual: np.ndarray, fine: Grid, coarse: Grid, window: Window) -> np.ndarray:
    """Residual at fine pixels by bilinear interpolation between coarse cell centres (NaN cells skipped)."""
    return bilinear_from_cells(residual, fine, coarse, window)


def refine_residual(residual: np.ndarray, target: np.ndarray, interpolated_cell_mean: np.ndarray) -> np.ndarray:
    """One fixed-point step towards a residual field whose bilinear interpolation averages, in each
    coarse cell, to ``target`` (the coarse value minus the mean fine trend).

    ``interpolated_cell_mean`` is the cell mean of the interpolation of ``residual``. Cells where
    either is undefined keep their residual. Repeating the step removes most of the leakage of a
    cell's residual into its neighbours that plain bilinear interpolation causes.
    """
    step = np.asarray(target, dtype=np.float64) - interpolated_cell_mean
    ok = np.isfinite(step) & np.isfinite(residual)
    out = np.array(residual, dtype=np.float32, copy=True)
    out[ok] = (residual[ok] + step[ok]).astype(np.float32)
    return out
