"""Area-weighted moving-window statistics from one grid onto another (Alemohammad et al.).

For each pixel of a *target* grid, a rectangular window centred on the pixel centre is laid over a
*source* grid (same CRS, any resolution), and the values of the source cells it touches are
averaged with the **area of their overlap** with the window as weights. Cells without data (NaN)
are left out together with their weight, so a window crossing the edge of the data averages what it
covers. The window crosses cell edges freely: a window 1.25 coarse cells wide centred on a fine
pixel takes its own coarse cell and a strip of each neighbour.

Both grids are north-up, so the overlap area is the product of an overlap length in x and one in y:
the weights are separable and banded (a window touches few source columns and rows), and a block of
target rows needs only the source rows its windows touch (:meth:`WindowAverager.source_rows`).

Examples
--------
>>> src = Grid("", 0.0, 2.0, 1.0, 1.0, 2, 2)            # 2×2 cells of 1
>>> dst = Grid("", 0.0, 2.0, 0.5, 0.5, 4, 4)            # 4×4 pixels of 0.5
>>> avg = WindowAverager(src, dst, 1.0, 1.0)             # a window one source cell wide
>>> avg.mean(np.array([[0.0, 1.0], [2.0, 3.0]]), Window(0, 4))[0][0].tolist()
[0.0, 0.25, 0.75, 1.0]
"""
from __future__ import annotations

import math

import numpy as np

from .grid import Grid, Window


def _overlaps(centres: np.ndarray, half: float, edge0: float, step: float, n_cells: int,
              ) -> tuple[np.ndarray, np.ndarray]:
    """First cell index and overlap lengths (n, k) of windows ``[c − half, c + half]`` with cells
    ``[edge0 + j·step, edge0 + (j + 1)·step)`` along one axis (cells outside ``0…n_cells`` weigh 0)."""
    k = int(math.ceil(2 * half / step)) + 1
    lo = centres - half
    first = np.floor((lo - edge0) / step).astype(np.int64)
    j = first[:, None] + np.arange(k)[None, :]
    a = edge0 + j * step
    length = np.clip(np.minimum(centres[:, None] + half, a + step) - np.maximum(lo[:, None], a), 0.0, None)
    length[(j < 0) | (j >= n_cells)] = 0.0
    return np.clip(j, 0, max(n_cells - 1, 0)), length


class WindowAverager:
    """Area-weighted window mean (and standard deviation) of source-grid values at target pixels.

    Parameters
    ----------
    source : Grid
        Grid of the values averaged.
    target : Grid
        Grid whose pixel centres the windows are centred on (same CRS as ``source``).
    width_x, width_y : float
        Window size in CRS units (e.g. ``1.25 * coarse.dx``).
    """

    def __init__(self, source: Grid, target: Grid, width_x: float, width_y: float) -> None:
        if width_x <= 0 or width_y <= 0:
            raise ValueError(f"window size must be positive, not {width_x} × {width_y}")
        self.source, self.target = source, target
        xs, _ = target.centers(Window(0, 0))
        self._cols, self._wx = _overlaps(xs, width_x / 2, source.x0, source.dx, source.width)
        # rows count downwards: distance below the source's top edge
        ys = target.y0 - (np.arange(target.height) + 0.5) * target.dy
        self._rows, self._wy = _overlaps(source.y0 - ys, width_y / 2, 0.0, source.dy, source.height)

    def source_rows(self, window: Window) -> tuple[int, int]:
        """Source rows ``[r0, r1)`` that the windows of the target rows of ``window`` touch."""
        rows = self._rows[window.row0:window.row0 + window.nrows]
        w = self._wy[window.row0:window.row0 + window.nrows]
        used = rows[w > 0]
        if used.size == 0:
            return 0, 0
        return int(used.min()), int(used.max()) + 1

    def mean(self, values: np.ndarray, window: Window, with_std: bool = False,
             row0: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """Window mean (and area-weighted population σ) for the target rows of ``window``.

        Parameters
        ----------
        values : numpy.ndarray, shape (rows, source.width)
            Source values of rows ``row0 …`` (at least :meth:`source_rows` of ``window``); NaN = no data.
        window : Window
            Target rows.
        with_std : bool
            Also return the weighted standard deviation of the source values in each window.
        row0 : int
            Source row of ``values[0]`` (0 when the whole source grid is passed).

        Returns
        -------
        mean, std : float32 arrays (window.nrows, target.width); NaN where no cell with data is touched.
            ``std`` is None unless ``with_std``.
        """
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 1:
            v = v.reshape(-1, self.source.width)
        ok = np.isfinite(v)
        rows = self._rows[window.row0:window.row0 + window.nrows] - row0
        wy = self._wy[window.row0:window.row0 + window.nrows]
        wy = np.where((rows >= 0) & (rows < v.shape[0]), wy, 0.0)
        rows = np.clip(rows, 0, max(v.shape[0] - 1, 0))
        stacks = [np.where(ok, v, 0.0), ok.astype(np.float64)]
        if with_std:
            stacks.append(np.where(ok, v * v, 0.0))
        sums = [self._apply(s, rows, wy) for s in stacks]
        with np.errstate(invalid="ignore", divide="ignore"):
            den = sums[1]
            has = den > 1e-12 * self.source.dx * self.source.dy
            mean = np.where(has, sums[0] / np.where(has, den, 1.0), np.nan)
            std = None
            if with_std:
                var = np.where(has, sums[2] / np.where(has, den, 1.0), np.nan) - mean * mean
                std = np.sqrt(np.clip(var, 0.0, None)).astype(np.float32)
        return mean.astype(np.float32), std

    def _apply(self, a: np.ndarray, rows: np.ndarray, wy: np.ndarray) -> np.ndarray:
        """Σ over touched cells of overlap area × ``a`` (rows, then columns: both banded)."""
        tmp = np.zeros((rows.shape[0], a.shape[1]))
        for k in range(rows.shape[1]):
            tmp += wy[:, k:k + 1] * a[rows[:, k]]
        out = np.zeros((rows.shape[0], self.target.width))
        for k in range(self._cols.shape[1]):
            out += tmp[:, self._cols[:, k]] * self._wx[None, :, k]
        return out
