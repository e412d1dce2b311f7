"""Point-to-block and block-to-block covariances on a regular pixel lattice, and ordinary kriging
with a neighbourhood of the K nearest data per target cell.

Blocks are rectangles of lattice pixels ``[r0, r1) × [c0, c1)`` (e.g. the fine pixels of a coarse
cell, for any integer or non-integer ratio). Their mean covariances are exact discrete averages
over the pixels, computed in O(1) per pair from summed-area tables of the point covariance on pixel
offsets (first order for pixel–block, second order for block–block), so area-to-point kriging of
a 1 000-cell × 625-pixel scene costs seconds.

Coherence comes from this exactness: the block-to-block covariance is the mean, over the
block's pixels, of the very pixel-to-block covariances used for prediction, so the ordinary-kriging
weights of the pixels of a data block average to that block's indicator and the prediction averages
back to the datum (Kyriakidis 2004).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...raster.blas import matmul
from .variogram import VariogramModel

__all__ = ["BlockCovariance", "PointCovariance", "OrdinaryKriging"]


class BlockCovariance:
    """Mean covariances of a point model between pixels and rectangular blocks of pixels.

    Parameters
    ----------
    model : VariogramModel
        Point-support model (lags in metres).
    px, py : float
        Pixel width and height in metres.
    blocks : ndarray, shape (n, 4)
        Data blocks as pixel rectangles ``r0, r1, c0, c1`` (end exclusive).
    max_rows, max_cols : int
        Largest pixel offset (rows, cols) between two pixels of blocks that will ever be paired;
        the tables cover ``±max``.
    """

    def __init__(self, model: VariogramModel, px: float, py: float, blocks: np.ndarray,
                 max_rows: int, max_cols: int) -> None:
        self.model = model
        self.blocks = np.asarray(blocks, dtype=np.int64).reshape(-1, 4)
        self.mr, self.mc = int(max_rows), int(max_cols)
        dr = np.arange(-self.mr, self.mr + 1, dtype=np.float64) * py
        dc = np.arange(-self.mc, self.mc + 1, dtype=np.float64) * px
        g = model.covariance(np.hypot(dr[:, None], dc[None, :]))
        s1 = np.zeros((g.shape[0] + 1, g.shape[1] + 1))
        s1[1:, 1:] = g.cumsum(0).cumsum(1)
        s2 = np.zeros((s1.shape[0] + 1, s1.shape[1] + 1))
        s2[1:, 1:] = s1.cumsum(0).cumsum(1)
        self._s1, self._s2 = s1, s2
        self.area = ((self.blocks[:, 1] - self.blocks[:, 0]) * (self.blocks[:, 3] - self.blocks[:, 2])).astype(np.float64)
        self.point_variance = float(model.covariance(np.zeros(1))[0])

    def pixels_to_blocks(self, rows: np.ndarray, cols: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Mean covariance between pixels and blocks, for ``n`` target cells at once: pixel rows
        ``(n, nr)`` × columns ``(n, nc)`` of each cell against its blocks ``idx`` ``(n, k)``;
        returns ``(n, nr, nc, k)``."""
        b = self.blocks[idx]                                        # (n, k, 4)
        rows = np.asarray(rows, dtype=np.int64)[:, :, None]
        cols = np.asarray(cols, dtype=np.int64)[:, :, None]
        hr = (rows - b[:, None, :, 0] + 1 + self.mr)[:, :, None, :]  # (n, nr, 1, k)
        lr = (rows - b[:, None, :, 1] + 1 + self.mr)[:, :, None, :]
        hc = (cols - b[:, None, :, 2] + 1 + self.mc)[:, None, :, :]  # (n, 1, nc, k)
        lc = (cols - b[:, None, :, 3] + 1 + self.mc)[:, None, :, :]
        self._check(lr.min(), hr.max() + 1, lc.min(), hc.max() + 1, self._s1.shape)
        s = self._s1
        tot = s[hr, hc] - s[lr, hc] - s[hr, lc] + s[lr, lc]
        return tot / self.area[idx][:, None, None, :]

    def between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Mean covariance between blocks ``a`` and ``b`` (index arrays, broadcast together)."""
        return self.rect_between(self.blocks[a], self.blocks[b])

    def rect_between(self, ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
        """Mean covariance between rectangles ``ra`` and ``rb`` (``(..., 4)``, broadcast)."""
        ra, rb = np.asarray(ra, dtype=np.int64), np.asarray(rb, dtype=np.int64)
        k1r, k2r = -rb[..., 0] + 1 + self.mr, -rb[..., 1] + 1 + self.mr
        k1c, k2c = -rb[..., 2] + 1 + self.mc, -rb[..., 3] + 1 + self.mc
        rterms = ((ra[..., 1] + k1r, 1.0), (ra[..., 0] + k1r, -1.0), (ra[..., 1] + k2r, -1.0), (ra[..., 0] + k2r, 1.0))
        cterms = ((ra[..., 3] + k1c, 1.0), (ra[..., 2] + k1c, -1.0), (ra[..., 3] + k2c, -1.0), (ra[..., 2] + k2c, 1.0))
        self._check(min(t[0].min() for t in rterms), max(t[0].max() for t in rterms) + 1,
                    min(t[0].min() for t in cterms), max(t[0].max() for t in cterms) + 1, self._s2.shape)
        tot = 0.0
        for ri, si in rterms:
            for ci, sj in cterms:
                tot = tot + si * sj * self._s2[ri, ci]
        area_a = (ra[..., 1] - ra[..., 0]) * (ra[..., 3] - ra[..., 2])
        area_b = (rb[..., 1] - rb[..., 0]) * (rb[..., 3] - rb[..., 2])
        return tot / (area_a * area_b)

    @staticmethod
    def _check(r_lo, r_hi, c_lo, c_hi, shape) -> None:
        if r_lo < 0 or c_lo < 0 or r_hi > shape[0] or c_hi > shape[1]:
            raise ValueError("pixel offsets exceed the covariance table; build it with larger max_rows/max_cols")


class PointCovariance:
    """Covariances of a point model between pixels and data *points* (e.g. coarse cell centres).

    ``points`` are ``(row, col)`` positions in pixel units (continuous; pixel ``(i, j)`` has its
    centre at ``(i + 0.5, j + 0.5)``).
    """

    def __init__(self, model: VariogramModel, px: float, py: float, points: np.ndarray) -> None:
        self.model, self.px, self.py = model, float(px), float(py)
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.point_variance = float(model.covariance(np.zeros(1))[0])

    def pixels_to_blocks(self, rows: np.ndarray, cols: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """As :meth:`BlockCovariance.pixels_to_blocks`: ``(n, nr)`` rows, ``(n, nc)`` columns,
        ``(n, k)`` points → ``(n, nr, nc, k)``."""
        p = self.points[idx]                                                      # (n, k, 2)
        dr = (np.asarray(rows, dtype=np.float64)[:, :, None] + 0.5 - p[:, None, :, 0]) * self.py  # (n, nr, k)
        dc = (np.asarray(cols, dtype=np.float64)[:, :, None] + 0.5 - p[:, None, :, 1]) * self.px  # (n, nc, k)
        return self.model.covariance(np.hypot(dr[:, :, None, :], dc[:, None, :, :]))

    def between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        pa, pb = self.points[a], self.points[b]
        return self.model.covariance(np.hypot((pa[..., 0] - pb[..., 0]) * self.py, (pa[..., 1] - pb[..., 1]) * self.px))


class OrdinaryKriging:
    """Ordinary kriging of data blocks/points to pixels, K nearest data per target cell.

    Every pixel of one target cell shares that cell's neighbourhood (the ``k`` data nearest to the
    cell's centre), so one (K+1)² system is solved per target cell and applied to all its pixels —
    which is also what makes area-to-point kriging coherent.

    Parameters
    ----------
    cov : BlockCovariance or PointCovariance
        Covariances, indexed by data number.
    data_xy : ndarray, shape (m, 2)
        Data positions (metres) for the neighbour search.
    data_index : ndarray of int, shape (m,)
        Which of ``cov``'s blocks/points are data (the others are missing).
    k : int
        Neighbours per target cell (all data when fewer).
    """

    def __init__(self, cov, data_xy: np.ndarray, data_index: np.ndarray, k: int = 25) -> None:
        from scipy.spatial import cKDTree
        self.cov = cov
        self.data_index = np.asarray(data_index, dtype=np.int64)
        self.k = int(min(k, len(self.data_index)))
        self._tree = cKDTree(np.asarray(data_xy, dtype=np.float64)) if self.k else None

    def systems(self, target_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours (indices into ``cov``'s blocks, ``(n, k)``) and the inverse of each target's
        ordinary-kriging matrix (``(n, k + 1, k + 1)``)."""
        n, k = len(target_xy), self.k
        _, nn = self._tree.query(np.asarray(target_xy, dtype=np.float64), k=k)
        nbr = self.data_index[np.asarray(nn).reshape(n, k)]
        a = np.ones((n, k + 1, k + 1))
        a[:, :k, :k] = self.cov.between(nbr[:, :, None], nbr[:, None, :])
        a[:, k, k] = 0.0
        # a whisker of jitter keeps coincident data solvable; relative to the point variance
        a[:, np.arange(k), np.arange(k)] += 1e-10 * max(self.cov.point_variance, 1e-30)
        return nbr, np.linalg.inv(a)

    def predict_cells(self, rows: np.ndarray, cols: np.ndarray, nbr: np.ndarray, inv: np.ndarray,
                      values: np.ndarray, with_variance: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Kriged values (and variances, in units of the model's sill) at the pixels of ``n`` target
        cells with pixel rectangles of one shape: rows ``(n, nr)``, columns ``(n, nc)``, neighbours
        ``nbr`` ``(n, k)`` with their data ``values`` ``(n, k)``, inverse systems ``inv``
        ``(n, k + 1, k + 1)``. Returns ``(n, nr, nc)`` arrays."""
        n, k = nbr.shape
        nr, nc = rows.shape[1], cols.shape[1]
        c = np.empty((n, nr, nc, k + 1))
        c[..., :k] = self.cov.pixels_to_blocks(rows, cols, nbr)
        c[..., k] = 1.0
        rhs = np.concatenate([values, np.zeros((n, 1))], axis=1)
        beta = np.einsum("nij,nj->ni", inv, rhs)          # dual form: value = c · A⁻¹ [z; 0]
        flat = c.reshape(n, nr * nc, k + 1)
        pred = np.einsum("npi,ni->np", flat, beta).reshape(n, nr, nc)
        if not with_variance:
            return pred, None
        var = self.cov.point_variance - np.einsum("npi,npi->np", np.stack([matmul(f, i) for f, i in zip(flat, inv)]), flat).reshape(n, nr, nc)
        return pred, np.maximum(var, 0.0)

    def predict_cell(self, rows: np.ndarray, cols: np.ndarray, nbr: np.ndarray, inv: np.ndarray,
                     values: np.ndarray, with_variance: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """:meth:`predict_cells` for one target cell (1-D ``rows``, ``cols``, ``nbr``, ``values``)."""
        p, v = self.predict_cells(np.asarray(rows)[None], np.asarray(cols)[None], np.asarray(nbr)[None],
                                  np.asarray(inv)[None], np.asarray(values, dtype=np.float64)[None], with_variance)
        return p[0], (v[0] if v is not None else None)

    def predict_blocks(self, target_blocks: np.ndarray, target_xy: np.ndarray,
                       values_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Area-to-area kriging: the mean value of each target rectangle (``(n, 4)``, pixel
        rectangles; needs a :class:`BlockCovariance`) and its kriging variance.

        ``values_of`` holds the datum of every block of ``cov`` (only the data ones are read).
        """
        nbr, inv = self.systems(target_xy)
        k = self.k
        tb = np.asarray(target_blocks, dtype=np.int64)
        c = np.ones((len(tb), k + 1))
        c[:, :k] = self.cov.rect_between(tb[:, None, :], self.cov.blocks[nbr])
        lam = np.einsum("nij,nj->ni", inv, c)
        pred = np.einsum("ni,ni->n", lam[:, :k], values_of[nbr])
        var = self.cov.rect_between(tb, tb) - np.einsum("ni,ni->n", lam, c)
        return pred, np.maximum(var, 0.0)
