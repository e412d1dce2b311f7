"""Prediction intervals from an ensemble's spread, calibrated on station-grouped CV residuals.

The spread of an ensemble (standard deviation of its members) says where members disagree, not
how far the estimate is from what a station measures: on held-out stations ``mean ± 2 spread``
holds far fewer values than 95 %. The interval here is a normalised split-conformal one
(Lei et al. 2018, "Distribution-free predictive inference for regression"):

    half-width = scale · (spread + floor)

``floor`` (the median spread of the calibration rows) keeps the interval from collapsing where
all members agree; ``scale`` is the ``level`` quantile of ``|in-situ − estimate| / (spread + floor)``
over the calibration rows (with the finite-sample correction ⌈(n + 1)·level⌉ / n). Calibration
rows are out-of-fold predictions at stations the members did not see, so the interval holds
``level`` of the values at *new stations* — as long as they resemble the training stations.

:func:`cross_fitted_coverage` measures that honestly: each fold's coverage uses a scale fitted
on the other folds' rows only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntervalCalibration:
    """``half_width = scale · (spread + floor)`` holds ``level`` of held-out values."""

    level: float
    scale: float
    floor: float

    def half_width(self, spread: np.ndarray) -> np.ndarray:
        """Half-width of the interval for each spread value (same dtype as ``spread``)."""
        s = np.asarray(spread)
        return (self.scale * (s + self.floor)).astype(s.dtype if s.dtype.kind == "f" else np.float64)


def calibrate_interval(obs: np.ndarray, est: np.ndarray, spread: np.ndarray, level: float = 0.9,
                       floor: float | None = None) -> IntervalCalibration:
    """Fit :class:`IntervalCalibration` on calibration rows (NaN rows are ignored).

    Examples
    --------
    Residuals that are exactly 2 × (spread + floor) need scale 2:

    >>> s = np.full(100, 0.01); c = calibrate_interval(np.zeros(100), np.full(100, 0.04), s, 0.9)
    >>> round(c.floor, 3), round(c.scale, 3)
    (0.01, 2.0)
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    o, e, s = (np.asarray(a, dtype=np.float64) for a in (obs, est, spread))
    ok = np.isfinite(o) & np.isfinite(e) & np.isfinite(s)
    if ok.sum() < 2:
        raise ValueError("At least two rows with an observation, an estimate and a spread are needed")
    o, e, s = o[ok], e[ok], s[ok]
    fl = float(np.median(s)) if floor is None else float(floor)
    fl = fl if fl > 0 else 1e-4
    score = np.abs(o - e) / (s + fl)
    q = min(math.ceil((score.size + 1) * level) / score.size, 1.0)
    return IntervalCalibration(float(level), float(np.quantile(score, q, method="higher")), fl)


def coverage(obs: np.ndarray, est: np.ndarray, half_width: np.ndarray) -> float:
    """Share of rows (with all three finite) where ``|obs − est| <= half_width``."""
    o, e, h = (np.asarray(a, dtype=np.float64) for a in (obs, est, half_width))
    ok = np.isfinite(o) & np.isfinite(e) & np.isfinite(h)
    return float(np.mean(np.abs(o[ok] - e[ok]) <= h[ok])) if ok.any() else math.nan


def cross_fitted_coverage(obs: np.ndarray, est: np.ndarray, spread: np.ndarray, fold: np.ndarray,
                          level: float = 0.9) -> np.ndarray:
    """Per row: 1.0 when it lies inside the interval calibrated on the *other* folds, else 0.0 (NaN
    where a value is missing). ``fold`` is the row's CV fold (whole stations per fold)."""
    o, e, s = (np.asarray(a, dtype=np.float64) for a in (obs, est, spread))
    fold = np.asarray(fold)
    inside = np.full(o.size, np.nan)
    for k in np.unique(fold):
        test = fold == k
        cal = calibrate_interval(o[~test], e[~test], s[~test], level)
        h = cal.half_width(s[test])
        ok = np.isfinite(o[test]) & np.isfinite(e[test]) & np.isfinite(h)
        inside[np.flatnonzero(test)[ok]] = (np.abs(o[test] - e[test]) <= h)[ok]
    return inside
