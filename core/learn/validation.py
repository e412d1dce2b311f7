"""Station-grouped splits and per-site scores of an ensemble, its members and the coarse product.

Every split here assigns whole *stations* to train or test, never single samples: a
downscaling model is used at places it has not seen, and samples of one station are
strongly autocorrelated, so a sample-wise split would flatter the model.

Per-site metrics are those of :func:`core.evaluation.metrics.pair_metrics` (N, R, ubRMSE, bias, RMSE,
...) and the amplitude ratio (standard deviation of the estimate over that of the in-situ series), with ubRMSE = sqrt(RMSE² − bias²), bias = mean(estimate − in-situ); they are
summarised by their mean and median over sites (as Poehls et al., Table 6).
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import numpy as np

try:  # the project's metrics module (core/metrics.py)
    from ..evaluation.metrics import pair_metrics as _pair_metrics
except ImportError:  # pragma: no cover - only while core/metrics.py is absent
    _pair_metrics = None

#: Metrics reported per site and summarised over sites (``amplitude``: see :func:`amplitude_ratio`).
SITE_METRICS: tuple[str, ...] = ("n", "r", "ubrmse", "bias", "rmse", "amplitude")


def group_kfold(site_id: Sequence | np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number (0 … n_folds − 1) of each sample, whole stations per fold.

    Stations are shuffled with ``seed`` and dealt round-robin, so folds differ by at most
    one station.

    Examples
    --------
    >>> f = group_kfold(["a", "a", "b", "c", "c", "d"], 2, seed=0)
    >>> bool(f[0] == f[1] and f[3] == f[4])
    True
    """
    g = np.asarray(site_id).astype(str)
    uniq = np.unique(g)
    if n_folds < 2 or n_folds > uniq.size:
        raise ValueError(f"Cannot make {n_folds} station-grouped folds from {uniq.size} stations")
    perm = np.random.default_rng(seed).permutation(uniq.size)
    fold_of_site = np.empty(uniq.size, dtype=np.int64)
    fold_of_site[perm] = np.arange(uniq.size) % n_folds
    return fold_of_site[np.searchsorted(uniq, g)]


def stratified_site_split(site_id: Sequence | np.ndarray, site_class: Sequence | np.ndarray,
                          test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Boolean test mask of an 80/20-style split of stations, stratified by a site class.

    Within each class (e.g. the soil class), ``round(test_fraction · n_sites)`` stations go
    to the test set (at least one when the class has two or more stations), as Poehls et al.
    split 80/20 within each texture class.

    Parameters
    ----------
    site_id : array-like, shape (n,)
    site_class : array-like, shape (n,)
        Class of each sample's station (constant within a station; the first value counts).
    test_fraction : float
    seed : int
    """
    g = np.asarray(site_id).astype(str)
    c = np.asarray(site_class).astype(str)
    uniq, first = np.unique(g, return_index=True)
    cls = c[first]
    rng = np.random.default_rng(seed)
    test_sites = []
    for k in np.unique(cls):
        members = uniq[cls == k]
        n_test = int(round(test_fraction * members.size))
        if members.size >= 2:
            n_test = min(max(n_test, 1), members.size - 1)
        test_sites.extend(rng.permutation(members)[:n_test].tolist())
    return np.isin(g, test_sites)


def site_scores(obs: np.ndarray, est: np.ndarray, site_id: np.ndarray,
                dates: Optional[np.ndarray] = None) -> dict[str, dict[str, float]]:
    """Metrics per station: ``{site: {"n", "r", "ubrmse", "bias", "rmse", "amplitude"}}``."""
    obs = np.asarray(obs, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    g = np.asarray(site_id).astype(str)
    out = {}
    for s in np.unique(g):
        m = g == s
        met = dict(pair_metrics(obs[m], est[m]))
        met["amplitude"] = amplitude_ratio(obs[m], est[m])
        out[str(s)] = {k: float(met[k]) for k in SITE_METRICS}
    return out


def amplitude_ratio(obs: np.ndarray, est: np.ndarray, min_pairs: int = 3) -> float:
    """Standard deviation of ``est`` over that of ``obs`` on their matched pairs (KGE's α).

    1 means the estimate varies as much as the station; below 1 it is flattened. NaN with fewer
    than ``min_pairs`` pairs or a constant station series.

    Examples
    --------
    >>> round(amplitude_ratio([0.1, 0.2, 0.3], [0.15, 0.2, 0.25]), 6)
    0.5
    """
    o = np.asarray(obs, dtype=np.float64)
    e = np.asarray(est, dtype=np.float64)
    ok = np.isfinite(o) & np.isfinite(e)
    if ok.sum() < min_pairs or not o[ok].std() > 0:
        return math.nan
    return float(e[ok].std() / o[ok].std())


def summarize_sites(scores: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and median over sites of each metric (NaN sites ignored): ``{"mean": {...}, "median": {...}}``."""
    out: dict[str, dict[str, float]] = {"mean": {}, "median": {}}
    for k in SITE_METRICS:
        v = np.array([s[k] for s in scores.values()], dtype=np.float64)
        v = v[np.isfinite(v)]
        out["mean"][k] = float(np.mean(v)) if v.size else math.nan
        out["median"][k] = float(np.median(v)) if v.size else math.nan
    out["n_sites"] = {"count": float(len(scores))}
    return out


def pair_metrics(obs: np.ndarray, est: np.ndarray) -> dict[str, float]:
    """:func:`core.evaluation.metrics.pair_metrics` when available, else the same definitions here."""
    if _pair_metrics is not None:
        return _pair_metrics(obs, est)
    o = np.asarray(obs, dtype=np.float64)
    e = np.asarray(est, dtype=np.float64)
    ok = np.isfinite(o) & np.isfinite(e)
    o, e = o[ok], e[ok]
    res = {k: math.nan for k in SITE_METRICS}
    res["n"] = float(o.size)
    if o.size < 3:
        return res
    d = e - o
    bias, mse = float(d.mean()), float(np.mean(d * d))
    res.update(bias=bias, rmse=math.sqrt(mse), ubrmse=math.sqrt(max(mse - bias * bias, 0.0)))
    if o.std() > 0 and e.std() > 0:
        res["r"] = float(np.corrcoef(o, e)[0, 1])
    return res
