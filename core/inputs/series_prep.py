"""Preparing a dated covariate series: masking, gap filling in time, Savitzky–Golay smoothing.

The stacking paper filters low-quality MODIS pixels by their QA bands, fills gaps by linear
interpolation between valid values within 15 days before and after, then smooths each pixel's
series with a Savitzky–Golay filter (half-width m = 5, order d = 4). These are the array kernels;
``core.io.covariate_series`` streams them over rasters in row blocks.

Arrays are ``(n_dates, …)``: the first axis is time, any further axes are pixels.

>>> import numpy as np
>>> days = np.array([0, 8, 16, 40])
>>> fill_gaps(np.array([0.2, np.nan, 0.4, np.nan]), days, max_gap_days=15)
array([0.2, 0.3, 0.4, nan])
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..raster.blas import matmul


def quality_mask(quality: np.ndarray, good_values: Sequence[int] = (), bad_bits: int = 0) -> np.ndarray:
    """True where a quality value says "keep".

    Parameters
    ----------
    quality : numpy.ndarray
        Quality values (NaN = no quality information = not kept).
    good_values : sequence of int
        Values that are kept (e.g. MOD13 pixel reliability 0, 1); empty = any value.
    bad_bits : int
        Bit mask whose bits must all be 0 (e.g. 3 for the MOD11 QC bits 0–1 "LST produced, good
        quality"); 0 = no bit test.
    """
    q = np.asarray(quality, dtype=np.float64)
    ok = np.isfinite(q)
    qi = np.where(ok, q, 0).astype(np.int64)
    if len(good_values):
        ok &= np.isin(qi, np.asarray(list(good_values), dtype=np.int64))
    if bad_bits:
        ok &= (qi & int(bad_bits)) == 0
    return ok


def fill_gaps(values: np.ndarray, days: np.ndarray, max_gap_days: int) -> np.ndarray:
    """Linear interpolation in time of missing values between the nearest valid neighbours.

    A missing value at day ``t`` is filled only when a valid value exists at most
    ``max_gap_days`` before *and* at most ``max_gap_days`` after ``t``; nothing is extrapolated
    beyond the first or last valid date, and nothing is invented farther than the limit.

    Parameters
    ----------
    values : numpy.ndarray, (n_dates, …)
    days : numpy.ndarray, (n_dates,)
        Strictly increasing day numbers (e.g. ``date.toordinal()``).
    max_gap_days : int
        0 fills nothing.

    Returns
    -------
    numpy.ndarray, float64, the shape of ``values``.
    """
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(days, dtype=np.float64)
    n = v.shape[0]
    if t.shape != (n,) or np.any(np.diff(t) <= 0):
        raise ValueError("days must be strictly increasing, one per date")
    flat = v.reshape(n, -1)
    valid = np.isfinite(flat)
    if max_gap_days <= 0 or n < 3 or valid.all():
        return v.copy()
    steps = np.arange(n)[:, None]
    prev = np.maximum.accumulate(np.where(valid, steps, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(valid, steps, n)[::-1], axis=0)[::-1]
    p, q = np.clip(prev, 0, n - 1), np.clip(nxt, 0, n - 1)
    t0, t1, tt = t[p], t[q], t[:, None]
    fill = ~valid & (prev >= 0) & (nxt < n) & (tt - t0 <= max_gap_days) & (t1 - tt <= max_gap_days)
    y0 = np.take_along_axis(flat, p, axis=0)
    y1 = np.take_along_axis(flat, q, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        interp = y0 + (tt - t0) / (t1 - t0) * (y1 - y0)
    return np.where(fill, interp, flat).reshape(v.shape)


def savitzky_golay_weights(days: np.ndarray, half_width: int = 5, order: int = 4) -> np.ndarray:
    """Weights ``W`` (n × n) such that ``W @ y`` is the Savitzky–Golay smooth of a series on ``days``.

    For each date a polynomial of ``order`` is fitted by least squares to the ``2·half_width + 1``
    nearest dates in index (the window slides inward at the ends of the series) using the actual
    day offsets, and evaluated at that date. On regularly spaced dates this is the classical
    filter (``scipy.signal.savgol_filter(y, 2m+1, d, mode="interp")``); irregular spacing (a
    missing composite) is fitted on its real dates.

    Raises
    ------
    InputError
        The series has too few dates for the window, or the order does not fit the window.
    """
    t = np.asarray(days, dtype=np.float64)
    n = t.size
    size = 2 * half_width + 1
    if half_width < 1 or order < 0 or order >= size:
        raise InputError(problem=f"a Savitzky–Golay order of {order} does not fit a window of {size} dates.",
                         fix="use an order below 2 × half-width + 1 (the stacking paper: half-width 5, order 4).")
    if n < size:
        raise InputError(problem=f"the series has {n} dates, fewer than the smoothing window of {size} dates.",
                         fix="add dates, lower the half-width, or switch smoothing off.")
    weights = np.zeros((n, n))
    for i in range(n):
        lo = min(max(i - half_width, 0), n - size)
        idx = np.arange(lo, lo + size)
        scale = max(float(np.max(np.abs(t[idx] - t[i]))), 1.0)
        vander = ((t[idx] - t[i]) / scale)[:, None] ** np.arange(order + 1)[None, :]
        weights[i, idx] = _first_row_of_pinv(vander)
    return weights


def _first_row_of_pinv(a: np.ndarray) -> np.ndarray:
    """Row 0 of the pseudo-inverse of ``a`` (as ``numpy.linalg.pinv``: singular values below 1e-15 × the
    largest dropped), with the product through :mod:`..raster.blas`."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    keep = s > 1e-15 * s.max()
    return matmul(np.ascontiguousarray(u[:, keep]), vt[keep, 0] / s[keep])


def smooth(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply :func:`savitzky_golay_weights` to every pixel whose windows are complete.

    A date whose window holds a missing value keeps its value unsmoothed (and a missing value
    stays missing): no value is computed from a gap.

    Returns
    -------
    smoothed : numpy.ndarray, float64, the shape of ``values``
    applied : numpy.ndarray of bool, the shape of ``values``
        Where the smoothed value was used.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    flat = v.reshape(n, -1)
    valid = np.isfinite(flat)
    support = weights != 0
    # a date is smoothable where every date of its window is valid
    incomplete = (support.astype(np.int64) @ (~valid).astype(np.int64)) > 0
    smoothed = matmul(weights, np.where(valid, flat, 0.0))
    applied = ~incomplete & valid
    return np.where(applied, smoothed, flat).reshape(v.shape), applied.reshape(v.shape)


def clip_range(values: np.ndarray, lo: Optional[float], hi: Optional[float]) -> np.ndarray:
    """NaN outside ``[lo, hi]`` (either bound may be None)."""
    v = np.asarray(values, dtype=np.float64).copy()
    with np.errstate(invalid="ignore"):
        if lo is not None:
            v[v < lo] = np.nan
        if hi is not None:
            v[v > hi] = np.nan
    return v
