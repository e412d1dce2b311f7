"""Diagnostics of a downscaled product against its coarse input (Alemohammad et al. 2018).

Two numbers per coarse cell and date:

* **conservation** (%): ``(mean of the fine pixels in the cell − coarse value) / coarse × 100``.
  A downscaling that preserves the coarse water content gives 0; positive means the fine
  field is wetter on average than the coarse cell it came from.
* **heterogeneity** (coefficient of variation): ``std / mean`` of the fine pixels in the
  cell, the sub-cell variability the downscaling adds (0 = the coarse field repeated).

Both come from per-cell sums that are streamed block by block
(:class:`core.raster.aggregate.CellAccumulator`), so a fine grid of any size is diagnosed with
memory proportional to the number of coarse cells. The coarse cell of each fine pixel
is given as a flat index (−1 outside), e.g. from :func:`core.raster.grid.cell_index`.

Example
-------
>>> acc = DiagnosticsAccumulator(2)
>>> acc.add(np.array([0.2, 0.4, 0.1, 0.1]), np.array([0, 0, 1, 1]))
>>> d = acc.result(np.array([0.25, 0.1]))
>>> d.conservation_percent.round(6).tolist(), d.heterogeneity_cv.round(6).tolist()
([20.0, 0.0], [0.333333, 0.0])
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..raster.aggregate import CellAccumulator


def conservation_percent(fine_mean: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """``(fine_mean − coarse) / coarse × 100``; NaN where either is missing or coarse ≤ 0.

    Parameters
    ----------
    fine_mean : numpy.ndarray
        Mean of the fine pixels in each coarse cell.
    coarse : numpy.ndarray
        Coarse value of each cell (same shape).

    Examples
    --------
    >>> conservation_percent(np.array([0.3, 0.1, 0.2]), np.array([0.25, 0.1, 0.0])).tolist()
    [19.999999999999996, 0.0, nan]
    """
    m = np.asarray(fine_mean, dtype=np.float64)
    c = np.asarray(coarse, dtype=np.float64)
    ok = np.isfinite(m) & np.isfinite(c) & (c > 0)
    out = np.full(np.broadcast(m, c).shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide((m - c) * 100.0, c, out=out, where=ok)
    return out


def heterogeneity_cv(fine_mean: np.ndarray, fine_std: np.ndarray) -> np.ndarray:
    """Coefficient of variation ``std / mean`` of the fine pixels; NaN where mean ≤ 0 or missing.

    Examples
    --------
    >>> heterogeneity_cv(np.array([0.3, 0.1, 0.0]), np.array([0.1, 0.0, 0.0])).round(6).tolist()
    [0.333333, 0.0, nan]
    """
    m = np.asarray(fine_mean, dtype=np.float64)
    s = np.asarray(fine_std, dtype=np.float64)
    ok = np.isfinite(m) & np.isfinite(s) & (m > 0)
    out = np.full(np.broadcast(m, s).shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(s, m, out=out, where=ok)
    return out


@dataclass
class CellDiagnostics:
    """Per-coarse-cell diagnostics of one date (1-D arrays of length ``n_cells``).

    Attributes
    ----------
    fine_mean, fine_std : numpy.ndarray
        Mean and population standard deviation of the valid fine pixels in each cell.
    count : numpy.ndarray of int
        Valid fine pixels in each cell.
    coverage : numpy.ndarray
        ``count`` / fine pixels whose centre lies in the cell (valid or not); NaN for
        cells without any fine pixel.
    coarse : numpy.ndarray
        The coarse values.
    conservation_percent, heterogeneity_cv : numpy.ndarray
        See :func:`conservation_percent` and :func:`heterogeneity_cv`; NaN for cells
        below the ``min_count`` / ``min_coverage`` asked for.
    """

    fine_mean: np.ndarray
    fine_std: np.ndarray
    count: np.ndarray
    coverage: np.ndarray
    coarse: np.ndarray
    conservation_percent: np.ndarray
    heterogeneity_cv: np.ndarray


class DiagnosticsAccumulator:
    """Stream fine blocks of one date, then compute :class:`CellDiagnostics`.

    Parameters
    ----------
    n_cells : int
        Number of coarse cells (``width × height`` of the coarse grid).

    Notes
    -----
    For a time series keep one accumulator per date and feed each the same block of
    ``cell_index``.
    """

    def __init__(self, n_cells: int) -> None:
        self.n_cells = int(n_cells)
        self._acc = CellAccumulator(self.n_cells)
        self._pixels = np.zeros(self.n_cells, dtype=np.int64)

    def add(self, fine_values: np.ndarray, cell_index: np.ndarray) -> None:
        """Add a block of fine values (NaN = no data) and the coarse cell of each pixel (−1 = outside)."""
        v = np.asarray(fine_values)
        c = np.asarray(cell_index)
        if v.shape != c.shape:
            raise ValueError(f"fine values {v.shape} and cell index {c.shape} differ in shape")
        inside = c.ravel()
        inside = inside[inside >= 0]
        if inside.size and int(inside.max()) >= self.n_cells:
            raise ValueError(f"cell index {int(inside.max())} is beyond the {self.n_cells} coarse cells")
        self._acc.add(v, c)
        self._pixels += np.bincount(inside, minlength=self.n_cells)

    def result(self, coarse: np.ndarray, min_count: int = 1, min_coverage: float = 0.0) -> CellDiagnostics:
        """Diagnostics per cell given the coarse values (flat, length ``n_cells``).

        Parameters
        ----------
        coarse : numpy.ndarray
            Coarse value of each cell (NaN = no data), already scaled to physical units.
        min_count : int
            Cells with fewer valid fine pixels get NaN diagnostics.
        min_coverage : float
            Cells whose valid fine pixels cover less than this fraction of the cell
            (coastal cells, gaps) get NaN diagnostics.
        """
        c = np.asarray(coarse, dtype=np.float64).ravel()
        if c.size != self.n_cells:
            raise ValueError(f"{c.size} coarse values given for {self.n_cells} cells")
        mean = self._acc.mean()
        std = self._acc.std()
        count = self._acc.count.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            coverage = np.where(self._pixels > 0, count / np.maximum(self._pixels, 1), np.nan)
        enough = (count >= max(int(min_count), 1)) & (np.nan_to_num(coverage, nan=0.0) >= min_coverage)
        cons = conservation_percent(np.where(enough, mean, np.nan), c)
        cv = heterogeneity_cv(np.where(enough, mean, np.nan), std)
        return CellDiagnostics(mean, std, count, coverage, c, cons, cv)


def cell_diagnostics(fine_values: np.ndarray, cell_index: np.ndarray, coarse: np.ndarray,
                     min_count: int = 1, min_coverage: float = 0.0) -> CellDiagnostics:
    """One-shot :class:`DiagnosticsAccumulator` for a fine field held in memory."""
    acc = DiagnosticsAccumulator(np.asarray(coarse).size)
    acc.add(fine_values, cell_index)
    return acc.result(coarse, min_count, min_coverage)


def summary(conservation: np.ndarray, cv: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean, median and maximum of the absolute diagnostics over cells (and dates).

    Parameters
    ----------
    conservation, cv : numpy.ndarray, any shape
        Conservation (%) and coefficient of variation, e.g. stacked over dates; NaN cells
        are ignored.

    Returns
    -------
    dict
        ``{"conservation_percent": {...}, "heterogeneity_cv": {...}}``, each with
        ``mean_abs``, ``median_abs``, ``max_abs`` and ``n_cells`` (cell-dates counted).
        This is the ``diagnostics`` entry of :func:`core.evaluation.report.write_report`.

    Examples
    --------
    >>> summary(np.array([20.0, -10.0, np.nan]), np.array([0.3, 0.1, 0.2]))["conservation_percent"]
    {'mean_abs': 15.0, 'median_abs': 15.0, 'max_abs': 20.0, 'n_cells': 2.0}
    """
    return {"conservation_percent": _abs_stats(conservation), "heterogeneity_cv": _abs_stats(cv)}


def _abs_stats(values: np.ndarray) -> dict[str, float]:
    a = np.abs(np.asarray(values, dtype=np.float64).ravel())
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"mean_abs": math.nan, "median_abs": math.nan, "max_abs": math.nan, "n_cells": 0.0}
    return {"mean_abs": float(a.mean()), "median_abs": float(np.median(a)), "max_abs": float(a.max()),
            "n_cells": float(a.size)}
