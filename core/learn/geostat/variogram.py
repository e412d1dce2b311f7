"""Variogram models, the experimental variogram of fields on a regular lattice, and model fitting.

Models are nugget-free and written with the *practical* range ``a`` (the lag at which the
semivariance reaches ~95 % of the sill for the exponential and Gaussian models, the sill itself for
the spherical one)::

    exponential  γ(h) = s · (1 − exp(−3h/a))
    spherical    γ(h) = s · (1.5 h/a − 0.5 (h/a)³)   for h < a, s beyond
    gaussian     γ(h) = s · (1 − exp(−3 (h/a)²))

The covariance is ``C(h) = s − γ(h)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

MODELS = ("exponential", "spherical", "gaussian")


@dataclass(frozen=True)
class VariogramModel:
    """A nugget-free variogram model: family, sill (variance) and practical range (metres)."""
    model: str
    sill: float
    range: float

    def gamma(self, h: np.ndarray) -> np.ndarray:
        """Semivariance at lags ``h`` (metres)."""
        return self.sill - self.covariance(h)

    def covariance(self, h: np.ndarray) -> np.ndarray:
        """Covariance at lags ``h`` (metres)."""
        h = np.abs(np.asarray(h, dtype=np.float64))
        a = max(self.range, 1e-12)
        if self.model == "exponential":
            return self.sill * np.exp(-3.0 * h / a)
        if self.model == "gaussian":
            return self.sill * np.exp(-3.0 * (h / a) ** 2)
        if self.model == "spherical":
            r = np.minimum(h / a, 1.0)
            return self.sill * (1.0 - 1.5 * r + 0.5 * r ** 3)
        raise ValueError(f"unknown variogram model '{self.model}' (choose one of {', '.join(MODELS)})")

    def scaled(self, sill: float) -> "VariogramModel":
        return VariogramModel(self.model, float(sill), self.range)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LatticeVariogram:
    """Experimental semivariogram of fields on a regular lattice of cells.

    ``offsets`` are the lattice offsets (rows, cols) that were paired, ``offset_gamma`` and
    ``offset_count`` their half mean squared difference and number of pairs; ``lags`` /
    ``gamma`` / ``counts`` are the same binned by distance (metres), ``bin_of_offset`` maps each
    offset to its bin.
    """
    offsets: np.ndarray
    offset_gamma: np.ndarray
    offset_count: np.ndarray
    lags: np.ndarray
    gamma: np.ndarray
    counts: np.ndarray
    bin_of_offset: np.ndarray

    def as_dict(self) -> dict:
        return {"lag_m": [round(float(v), 3) for v in self.lags],
                "gamma": [float(f"{v:.6g}") for v in self.gamma], "pairs": [int(c) for c in self.counts]}


def lattice_variogram(fields: Sequence[np.ndarray], cell_x: float, cell_y: float, max_lag_cells: int = 8,
                      centre_each: bool = True) -> LatticeVariogram:
    """Experimental semivariogram pooled over 2-D ``fields`` on one lattice of ``cell_x`` × ``cell_y``
    metres (NaN = no value), for offsets up to ``max_lag_cells`` cells in each direction.

    Each field is centred on its own mean when ``centre_each`` (irrelevant for differences, kept
    for clarity) — pooling assumes the fields share one spatial structure (e.g. the residual of
    one trend on successive dates). Distance bins are one cell wide.

    Examples
    --------
    >>> z = np.add.outer(np.arange(4.0), np.zeros(4))        # rows 0..3: a linear trend down
    >>> v = lattice_variogram([z], 1.0, 1.0, max_lag_cells=1)
    >>> round(float(v.gamma[0]), 3)  # lag ≈ 1 cell: 12 horizontal pairs differ by 0, 12 vertical + 18 diagonal by 1
    0.357
    """
    L = int(max_lag_cells)
    offs, gam, cnt = [], [], []
    arrays = [np.asarray(f, dtype=np.float64) for f in fields]
    for di in range(0, L + 1):
        for dj in range(-L, L + 1):
            if di == 0 and dj <= 0:
                continue
            s, n = 0.0, 0
            for a in arrays:
                h, w = a.shape
                if di >= h or abs(dj) >= w:
                    continue
                p = a[di:, max(dj, 0):w + min(dj, 0)]
                q = a[:h - di, max(-dj, 0):w - max(dj, 0)]
                d = p - q
                ok = np.isfinite(d)
                s += float(np.sum(d[ok] ** 2))
                n += int(ok.sum())
            if n:
                offs.append((di, dj))
                gam.append(0.5 * s / n)
                cnt.append(n)
    offsets = np.array(offs, dtype=np.int64).reshape(-1, 2)
    og, oc = np.array(gam), np.array(cnt)
    dist = np.hypot(offsets[:, 0] * cell_y, offsets[:, 1] * cell_x) if len(offsets) else np.zeros(0)
    width = min(cell_x, cell_y)
    b = np.floor(dist / width + 0.5).astype(np.int64) if len(dist) else np.zeros(0, np.int64)
    keep = b <= L  # isotropic: stop at the largest lag reached in every direction
    offsets, og, oc, dist, b = offsets[keep], og[keep], oc[keep], dist[keep], b[keep]
    bins = np.unique(b)
    lags = np.array([np.average(dist[b == k], weights=oc[b == k]) for k in bins])
    gamma = np.array([np.average(og[b == k], weights=oc[b == k]) for k in bins])
    counts = np.array([oc[b == k].sum() for k in bins])
    bin_of = np.searchsorted(bins, b)
    return LatticeVariogram(offsets, og, oc, lags, gamma, counts, bin_of)


def fit_variogram(lags: np.ndarray, gamma: np.ndarray, counts: np.ndarray, model: str = "exponential",
                  max_range: float | None = None) -> VariogramModel:
    """Weighted least-squares fit of a nugget-free model (weights ∝ pairs / γ², Cressie 1985).

    The range is bounded by ``max_range`` (default 10 × the largest lag) and by the smallest lag
    from below; the sill by 10 × the largest semivariance.
    """
    from scipy.optimize import least_squares

    lags, gamma, counts = (np.asarray(v, dtype=np.float64) for v in (lags, gamma, counts))
    ok = np.isfinite(gamma) & (counts > 0)
    lags, gamma, counts = lags[ok], gamma[ok], counts[ok]
    if len(lags) == 0 or not np.any(gamma > 0):
        return VariogramModel(model, float(max(np.nanmax(gamma) if len(gamma) else 0.0, 1e-12)),
                              float(lags.max() if len(lags) else 1.0))
    top = float(gamma.max())
    hmax = float(lags.max())
    rmax = max_range or 10.0 * hmax
    rmin = 0.1 * float(lags.min())
    w = np.sqrt(counts) / np.maximum(gamma, 0.05 * top)

    def resid(p):  # p = (sill / top, range / hmax): both of order one for the optimiser
        return w * (VariogramModel(model, p[0] * top, p[1] * hmax).gamma(lags) - gamma) / top

    best = None
    for r0 in (0.3, 1.0, 3.0):
        x0 = [1.0, float(np.clip(r0, rmin / hmax * 1.01, rmax / hmax * 0.99))]
        sol = least_squares(resid, x0, bounds=([1e-9, rmin / hmax], [10.0, rmax / hmax]))
        if best is None or sol.cost < best.cost:
            best = sol
    return VariogramModel(model, _settled(best.x[0] * top), _settled(best.x[1] * hmax))


def _settled(value: float) -> float:
    """``value`` to 9 significant digits. The optimiser stops at a relative tolerance of 1e-8, so later
    digits carry no information, only the rounding of scipy's internal numpy products — which differ
    with the BLAS the host process binds (:mod:`core.raster.blas`); without them every host fits the
    same variogram."""
    return float(f"{float(value):.9g}")
