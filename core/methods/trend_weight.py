"""How much of a trend's fine-scale detail to trust: its out-of-sample skill on the coarse field.

"First, do no harm": a trend adds detail to every fine pixel, and a trend that is noise at the
fine scale makes the map worse than an interpolation of the coarse cells. The weight ``α ∈ [0, 1]``
scales the trend before the residual step, so the prediction is ``α·trend + R(z − α·trend̄)``
(``R`` = the residual interpolator): ``α = 1`` is plain regression kriging, ``α = 0`` a smooth
interpolation of the coarse field ``z``.

``α`` is chosen by spatially grouped cross-validation on the coarse cells (blocks of cells held
out together, all dates), as the smaller of two least-squares weights ``Σ e·d / Σ d²`` (clipped
to [0, 1]), each the share of the trend's departures that the coarse data confirm:

* *between cells*: at a held-out cell, interpolating the coarse field from the remaining cells
  misses ``e = z − I(z)``; the trend claims ``d = f − I(f)`` of it;
* *within blocks, one scale up*: the departure of each coarse cell from the mean of its 2×2 block
  of cells, ``e = z − z̄``, against the out-of-fold trend's ``d = f − f̄`` — the same question the
  fine pixels pose inside a coarse cell, asked where the answer is known.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .shrinkage import shrinkage_weight, static_dynamic

#: Neighbours of the inverse-distance interpolation of held-out cells.
_NEIGHBOURS = 8


@dataclass(frozen=True)
class TrendWeights:
    """The shares of a trend a method applies: ``cells`` to the trend's mean in each coarse cell,
    ``static`` to each pixel's time-mean departure from it, ``dynamic`` to the date-to-date rest."""
    cells: float = 1.0
    static: float = 1.0
    dynamic: float = 1.0

    @classmethod
    def of(cls, training: Mapping[str, Any]) -> "TrendWeights":
        """The weights a trend-weight dict holds (a plain ``trend_weight`` applies to all three parts;
        none at all means the full trend)."""
        w = float(training.get("trend_weight", 1.0))
        return cls(w, float(training.get("trend_weight_static", w)), float(training.get("trend_weight_dynamic", w)))

    @property
    def is_uniform(self) -> bool:
        """Whether one factor scales the whole trend (no split into cell, static and dynamic parts)."""
        return self.cells == self.static == self.dynamic

    def describe(self) -> str:
        return (f"α {self.cells:.3f} (cell means), {self.static:.3f} (static within-cell pattern), "
                f"{self.dynamic:.3f} (its date-to-date anomaly)")


def trend_weight(fit_predict: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], X: np.ndarray,
                 y: np.ndarray, cell: np.ndarray, date: np.ndarray, cell_rc: np.ndarray, cell_xy: np.ndarray,
                 seed: int = 42, folds: int = 5, max_rows: int = 4000) -> dict[str, Any]:
    """The trend weight and the CV figures behind it.

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(X_train, y_train, X)`` fits a new trend on the training samples and
        predicts it at ``X``.
    X, y : ndarray
        Coarse samples (features, soil moisture), pooled over dates.
    cell, date : ndarray of int
        Coarse cell (flat index) and date index of each sample.
    cell_rc : ndarray, shape (n_cells, 2)
        Row and column of every coarse cell (for the spatial blocks).
    cell_xy : ndarray, shape (n_cells, 2)
        Cell centres in metres (for the interpolation).

    Returns
    -------
    dict
        ``trend_weight`` (α), ``trend_weight_static`` and ``trend_weight_dynamic`` (α_static,
        α_dynamic; each with its ``_between_cells`` and ``_within_blocks`` figures), ``cv_rmse_interpolation`` (held-out cells interpolated from their
        surroundings), ``cv_rmse_trend`` (with the full trend), ``cv_rmse_weighted`` (with α·trend),
        ``cv_samples``; ``cv_r`` and ``cv_rmse`` of the out-of-fold trend on the coarse samples (``cv_folds``); ``trend_weight`` is 1 with a ``note`` when there are too few cells to judge.
    """
    from sklearn.model_selection import GroupKFold

    cells = np.unique(cell)
    if len(cells) < 2 * folds:
        return {"trend_weight": 1.0, "note": f"only {len(cells)} coarse cells: too few to judge the trend out of sample"}
    b = max(1, int(round(np.sqrt(len(cells) / 20.0))))  # about 20 spatial blocks (or single cells)
    rc = cell_rc[cell]
    cluster_of_cell = block_of_cells(cell_rc, b)
    if len(np.unique(cluster_of_cell[cell])) < folds:
        cluster_of_cell = np.arange(len(cell_rc))  # single cells
    groups = cluster_of_cell[cell]
    rng = np.random.default_rng(seed)
    e_all: list[np.ndarray] = []
    d_all: list[np.ndarray] = []
    c_all: list[np.ndarray] = []
    f_oof = np.full(len(y), np.nan)
    for train, test in GroupKFold(folds).split(X, y, groups):
        fit_rows = train if len(train) <= max_rows else rng.choice(train, max_rows, replace=False)
        f = np.asarray(fit_predict(X[fit_rows], y[fit_rows], X), dtype=np.float64)
        is_test = np.zeros(len(y), bool)
        is_test[test] = True
        f_oof[test] = f[test]
        _departures(y, f, cell, date, is_test, cell_xy, e_all, d_all, c_all)
    return {**_weights(e_all, d_all, c_all, y, f_oof, cell, rc, date, cluster_of_cell), **_oof_scores(y, f_oof)}


def _oof_scores(y: np.ndarray, f_oof: np.ndarray) -> dict[str, Any]:
    """R and RMSE of the out-of-fold trend on the coarse samples — the trend's cross-validated skill, from
    the same spatially grouped folds (no fit of its own, and no cell's dates on both sides of a fold)."""
    ok = np.isfinite(y) & np.isfinite(f_oof)
    if ok.sum() < 3 or np.std(f_oof[ok]) == 0:
        return {}
    return {"cv_r": float(np.corrcoef(f_oof[ok], y[ok])[0, 1]), "cv_rmse": float(np.sqrt(np.mean((f_oof[ok] - y[ok]) ** 2))),
            "cv_folds": "5 folds of spatial blocks of cells (all dates of a cell in one fold)"}


def held_out_trend_weight(y: np.ndarray, f: np.ndarray, cell: np.ndarray, date: np.ndarray, held: np.ndarray,
                          cell_rc: np.ndarray, cell_xy: np.ndarray) -> dict[str, Any]:
    """The trend weight of :func:`trend_weight` from one split fixed beforehand, for trends too costly
    to refit per fold (networks): ``f`` is the trend fitted without the samples marked ``held``, predicted
    at every sample; the held-out samples are judged exactly as a fold of :func:`trend_weight` (the
    within-block part on the held-out samples only, so hold out whole 2×2 blocks of cells)."""
    held = np.asarray(held, bool)
    if len(np.unique(cell[held])) < 2:
        return {"trend_weight": 1.0, "note": "fewer than 2 held-out coarse cells: too few to judge the trend"}
    e_all: list[np.ndarray] = []
    d_all: list[np.ndarray] = []
    c_all: list[np.ndarray] = []
    _departures(y, np.asarray(f, dtype=np.float64), cell, date, held, cell_xy, e_all, d_all, c_all)
    f_held = np.where(held, f, np.nan)
    return _weights(e_all, d_all, c_all, np.where(held, y, np.nan), f_held, cell, cell_rc[cell], date,
                    block_of_cells(cell_rc, 2))


def _departures(y, f, cell, date, is_test, cell_xy, e_all: list, d_all: list, c_all: list) -> None:
    """Per date, the held-out cells' departures from the inverse-distance interpolation of the kept
    cells: observed ``e`` and the trend's ``d``, and the cells (appended to the lists)."""
    from scipy.spatial import cKDTree

    for t in np.unique(date[is_test]):
        tr = np.flatnonzero((date == t) & ~is_test)
        te = np.flatnonzero((date == t) & is_test)
        if len(tr) == 0 or len(te) == 0:
            continue
        k = min(_NEIGHBOURS, len(tr))
        dist, nn = cKDTree(cell_xy[cell[tr]]).query(cell_xy[cell[te]], k=k)
        dist, nn = dist.reshape(len(te), k), nn.reshape(len(te), k)
        w = 1.0 / np.maximum(dist, 1e-9) ** 2
        w /= w.sum(axis=1, keepdims=True)
        e_all.append(y[te] - (w * y[tr][nn]).sum(axis=1))
        d_all.append(f[te] - (w * f[tr][nn]).sum(axis=1))
        c_all.append(cell[te])


def _weights(e_all: list, d_all: list, c_all: list, y: np.ndarray, f_oof: np.ndarray, cell: np.ndarray,
             rc: np.ndarray, date: np.ndarray, cluster_of_cell: np.ndarray) -> dict[str, Any]:
    """α between cells (from the departures), within 2×2 blocks (out-of-sample ``f_oof``), each also
    split into static and dynamic parts, and the figures. The standard errors are clustered by the
    units that are independent evidence: between cells the cells held out together
    (``cluster_of_cell``), within blocks the 2×2 block (its cells' departures share its mean)."""
    if not e_all:
        return {"trend_weight": 1.0, "note": "no date had cells both held out and kept: cannot judge the trend"}
    e, d, c = np.concatenate(e_all), np.concatenate(d_all), np.concatenate(c_all)
    ok = np.isfinite(e) & np.isfinite(d)
    e, d, c = e[ok], d[ok], c[ok]
    between = _split_weights(e, d, c, cluster_of_cell[c])
    # one scale up: the departures of the coarse cells from their 2×2 block mean, observed vs the
    # (out-of-fold) trend's — the very question the fine pixels pose inside a coarse cell
    block = block_of_cells(rc, 2)
    within, n_pairs, _ = block_departure_weights(y, f_oof, cell, block, date, block)
    if n_pairs < 10:
        within = between
    alpha, alpha_s, alpha_d = (min(a, b) for a, b in zip(between, within))
    es, ea = static_dynamic(e, c)
    ds, da = static_dynamic(d, c)
    return {"trend_weight": alpha, "trend_weight_between_cells": between[0], "trend_weight_within_blocks": within[0],
            "trend_weight_static": alpha_s, "trend_weight_static_between_cells": between[1],
            "trend_weight_static_within_blocks": within[1],
            "trend_weight_dynamic": alpha_d, "trend_weight_dynamic_between_cells": between[2],
            "trend_weight_dynamic_within_blocks": within[2], "cv_samples": int(len(e)),
            "cv_rmse_interpolation": float(np.sqrt(np.mean(e ** 2))),
            "cv_rmse_trend": float(np.sqrt(np.mean((e - d) ** 2))),
            "cv_rmse_weighted": float(np.sqrt(np.mean((e - alpha_s * ds - alpha_d * da) ** 2))),
            "cv_ubrmse_interpolation": float(np.sqrt(np.mean(ea ** 2))),
            "cv_ubrmse_trend": float(np.sqrt(np.mean((ea - da) ** 2))),
            "cv_ubrmse_weighted": float(np.sqrt(np.mean((ea - alpha_d * da) ** 2)))}


def _split_weights(e: np.ndarray, d: np.ndarray, cell: np.ndarray, cluster: np.ndarray) -> tuple[float, float, float]:
    """Least-squares weights of ``d`` for ``e``: whole, of the per-cell time means, of the anomalies
    (standard errors clustered by ``cluster``)."""
    es, ea = static_dynamic(e, cell)
    ds, da = static_dynamic(d, cell)
    return (shrinkage_weight(e, d, cluster), shrinkage_weight(es, ds, cluster),
            shrinkage_weight(ea, da, cluster))


def block_departure_weights(y: np.ndarray, f: np.ndarray, cell: np.ndarray, block: np.ndarray, date: np.ndarray,
                            cluster: np.ndarray) -> tuple[tuple[float, float, float], int, int]:
    """The check one scale up: each sample's departure from the mean of its ``block`` (of coarse cells) on its
    date, observed (``y``) vs the trend's (``f``; NaN left out of the means), over the samples whose block
    holds more than one on that date; their least-squares weights whole, static and dynamic
    (:func:`_split_weights`, standard errors clustered by ``cluster``), the number of pairs and of cells."""
    _, inv, counts = np.unique(block * 100000 + date, return_inverse=True, return_counts=True)
    multi = counts[inv] > 1
    e = (y - _group_mean(y, inv))[multi]
    d = (f - _group_mean(f, inv))[multi]
    ok = np.isfinite(e) & np.isfinite(d)
    cells = cell[multi][ok]
    return _split_weights(e[ok], d[ok], cells, cluster[multi][ok]), int(ok.sum()), len(np.unique(cells))


def block_of_cells(rc: np.ndarray, b: int) -> np.ndarray:
    """The ``b × b`` block of cells of each (row, column) in ``rc`` (one id per row of ``rc``)."""
    return (rc[:, 0] // b) * 100000 + rc[:, 1] // b


def _group_mean(v: np.ndarray, inv: np.ndarray) -> np.ndarray:
    ok = np.isfinite(v)
    s = np.bincount(inv[ok], weights=v[ok], minlength=inv.max() + 1)
    n = np.bincount(inv[ok], minlength=inv.max() + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (s / n)[inv]
