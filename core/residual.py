"""Residual correction: spreading the coarse-scale residual of a trend back onto the fine grid.

Kept apart from the trend so other residual models (area-to-area kriging, SVATARK) can replace
:func:`bilinear_residual` without touching the trend.
"""
from __future__ import annotations

import numpy as np

from .grid import Grid, Window, bilinear_from_cells


def coarse_residual(coarse_sm: np.ndarray, trend_cell_mean: np.ndarray) -> np.ndarray:
    """Residual per coarse cell: observed coarse soil moisture minus the mean fine trend in it."""
    return (np.asarray(coarse_sm, dtype=np.float64) - trend_cell_mean).astype(np.float32)


def bilinear_residual(residual: np.ndarray, fine: Grid, coarse: Grid, window: Window) -> np.ndarray:
    """Residual at fine pixels by bilinear interpolation between coarse cell centres (NaN cells skipped)."""
    return bilinear_from_cells(residual, fine, coarse, window)
