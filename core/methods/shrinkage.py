"""The least-squares shrinkage weight every do-no-harm check of the trend-based methods uses.

A candidate detail ``d`` (a trend's departure, a residual model's departure from the uniform
residual) is trusted as far as it explains the observed departure ``e`` where the answer is known
(held-out cells, cells inside 2×2 blocks): ``argmin over w ∈ [0, 1] of Σ (e − w·d)²``. Station
scores being temporal, the static part of a departure (its time mean per cell) and its date-to-date
anomaly are judged apart (:func:`static_dynamic`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def shrinkage_weight(e: np.ndarray, d: np.ndarray, group: Optional[np.ndarray] = None) -> float:
    """``argmin over w ∈ [0, 1] of Σ (e − w·d)²`` over the pairs where both are finite (0 without any
    variation in ``d``).

    With ``group`` (e.g. the coarse cell of each sample: its dates are not independent evidence) the
    least-squares weight ``ŵ`` is further shrunk by how well the groups confirm it:
    ``ŵ · max(0, 1 − 1/t²)``, ``t = ŵ / se(ŵ)`` with the standard error clustered by group (the
    positive-part James–Stein factor) — a weight that a few groups carry alone tends to 0.

    >>> shrinkage_weight(np.array([1.0, -1.0]), np.array([2.0, -2.0]))
    0.5
    """
    e, d = np.asarray(e, dtype=np.float64), np.asarray(d, dtype=np.float64)
    ok = np.isfinite(e) & np.isfinite(d)
    e, d = e[ok], d[ok]
    dd = float(np.sum(d ** 2))
    if dd <= 0:
        return 0.0
    w = float(np.sum(e * d) / dd)
    if group is not None and w > 0:
        _, inv = np.unique(np.asarray(group)[ok], return_inverse=True)
        score = np.bincount(inv, weights=d * (e - w * d))
        var = float(np.sum(score ** 2)) / dd ** 2
        w *= max(0.0, 1.0 - var / w ** 2) if var > 0 else 1.0
    return float(np.clip(w, 0.0, 1.0))


def static_dynamic(v: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v`` (one value per sample) split into the mean of its ``group`` (e.g. the coarse cell, over
    dates; NaN left out) and the anomaly from it."""
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return v, v
    _, inv = np.unique(group, return_inverse=True)
    ok = np.isfinite(v)
    s = np.bincount(inv[ok], weights=v[ok], minlength=inv.max() + 1)
    n = np.bincount(inv[ok], minlength=inv.max() + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        static = (s / n)[inv]
    return static, v - static
