"""Streaming aggregation of fine pixels into the coarse cells that contain them."""
from __future__ import annotations

import numpy as np


class CellAccumulator:
    """Accumulate sum, sum of squares and count of fine values per coarse cell.

    Feed it block after block (``add``), so a fine grid of any size is aggregated
    with memory proportional to the number of coarse cells only.

    Parameters
    ----------
    n_cells : int
        Number of coarse cells (``coarse.width * coarse.height``).

    Examples
    --------
    >>> acc = CellAccumulator(2)
    >>> acc.add(np.array([1.0, 3.0, 5.0, np.nan]), np.array([0, 0, 1, 1]))
    >>> acc.mean().tolist()
    [2.0, 5.0]
    """

    def __init__(self, n_cells: int) -> None:
        self.n_cells = int(n_cells)
        self.sum = np.zeros(self.n_cells, dtype=np.float64)
        self.sumsq = np.zeros(self.n_cells, dtype=np.float64)
        self.count = np.zeros(self.n_cells, dtype=np.int64)

    def add(self, values: np.ndarray, cell_index: np.ndarray) -> None:
        """Add fine ``values`` whose coarse cells are ``cell_index`` (−1 = outside; NaN values skipped)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        c = np.asarray(cell_index).ravel()
        ok = (c >= 0) & np.isfinite(v)
        if not ok.any():
            return
        c, v = c[ok], v[ok]
        self.sum += np.bincount(c, weights=v, minlength=self.n_cells)
        self.sumsq += np.bincount(c, weights=v * v, minlength=self.n_cells)
        self.count += np.bincount(c, minlength=self.n_cells)

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.sum / np.maximum(self.count, 1), np.nan)

    def std(self) -> np.ndarray:
        """Population standard deviation of the fine values in each cell."""
        m = self.mean()
        with np.errstate(invalid="ignore"):
            var = self.sumsq / np.maximum(self.count, 1) - m * m
        return np.sqrt(np.clip(var, 0.0, None))


class CellModeAccumulator:
    """Majority class of fine categorical values per coarse cell (ties: smallest code)."""

    def __init__(self, n_cells: int) -> None:
        self.n_cells = int(n_cells)
        self._counts: dict[int, np.ndarray] = {}

    def add(self, values: np.ndarray, cell_index: np.ndarray) -> None:
        v = np.asarray(values).ravel()
        c = np.asarray(cell_index).ravel()
        ok = (c >= 0) & np.isfinite(v)
        for code in np.unique(v[ok]).astype(np.int64):
            sel = ok & (v == code)
            cnt = self._counts.setdefault(int(code), np.zeros(self.n_cells, dtype=np.int64))
            cnt += np.bincount(c[sel], minlength=self.n_cells)

    def mode(self) -> np.ndarray:
        if not self._counts:
            return np.full(self.n_cells, np.nan, dtype=np.float64)
        codes = np.array(sorted(self._counts))
        stack = np.stack([self._counts[k] for k in codes])
        best = codes[np.argmax(stack, axis=0)].astype(np.float64)
        best[stack.sum(axis=0) == 0] = np.nan
        return best
