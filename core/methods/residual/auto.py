"""Choose the residual model one scale up, where the answer is known.

The coarse cells are grouped into blocks of 2 × 2 cells; each candidate spreads the blocks' mean
residual back onto the cells, and is scored against the cells' actual residuals: per cell over the
dates (unbiased RMSE, the station-like view) and pooled. The candidate with the lowest mean per-cell
ubRMSE wins (ties within 1 % go to the simpler, earlier candidate) and is then fitted on the real
coarse → fine geometry (if it cannot be fitted there — kriging tables too large for a very fine
pixel — the next best is). Uniform is a candidate, so where interpolation from neighbouring cells does
not help the cells' own series, none is applied.

The candidates are ranked by their scores as they are (no parameter fitted to the test). With
``shrink`` (the default) the winner's departure from the uniform residual is then weighted by its skill
in the same test (:mod:`.shrunk`: static and date-to-date parts apart) and fitted with those weights.
Ranking by the weighted scores instead would favour every candidate over uniform: its weights are
least-squares fits to the very cells that score it (in-sample), uniform has none — measured at the
Delaware stations, that ranking picked a weighted bilinear residual over uniform (per-cell ubRMSE
0.01034 vs 0.01066) and lowered the stations' R.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...errors import InputError
from ...raster.aggregate import CellAccumulator
from ...raster.grid import Grid, Window, cell_index
from ..shrinkage import shrinkage_weight
from .base import FittedResidual, ResidualGeometry, ResidualModel

#: Relative margin a candidate must win by to replace an earlier (simpler) one.
MARGIN = 0.01


def beats(scores: Optional[dict[str, float]], than: Optional[dict[str, float]]) -> bool:
    """Whether a candidate's one-scale-up ``scores`` (:func:`one_scale_up_scores`) beat ``than``'s by
    :data:`MARGIN` in mean per-cell ubRMSE — as they are: the weights are fitted to this very test, so
    they cannot be its judge. A candidate without scores never wins; one beats a missing ``than``."""
    s = (scores or {}).get("cell_ubrmse", math.inf)
    return s < (than or {}).get("cell_ubrmse", math.inf) * (1 - MARGIN)


class AutoResidual(ResidualModel):
    """Picks one of ``candidates`` (residual models, simplest first) by the one-scale-up test."""
    name = "auto"
    label = "residual chosen one scale up"

    def __init__(self, candidates: Sequence[ResidualModel], shrink: bool = True) -> None:
        self.candidates = list(candidates)
        self.shrink = shrink

    def fit(self, residuals: Sequence[np.ndarray], geometry: ResidualGeometry,
            canceled: Callable[[], bool]) -> FittedResidual:
        table = one_scale_up_scores(residuals, geometry.coarse, self.candidates, canceled)
        ranked = [self.candidates[0]]
        for cand in self.candidates[1:]:  # a later candidate must beat the best so far by the margin
            if beats(table.get(cand.name), table.get(ranked[0].name)):
                ranked.insert(0, cand)
            else:
                ranked.append(cand)
        refused = {}
        for cand in ranked:
            scores = table.get(cand.name, {})
            if self.shrink and "beta_static" in scores:
                from .shrunk import ShrunkResidual
                cand = ShrunkResidual(cand, (scores["beta_static"], scores["beta_dynamic"]), scores)
            try:
                fitted = cand.fit(residuals, geometry, canceled)
            except InputError as e:  # e.g. kriging tables too large for this pixel size: the next best
                refused[cand.name] = e.problem
                continue
            return _Chosen(fitted, cand.name, table, refused)
        raise InputError(problem="no residual model could be fitted (" + "; ".join(refused.values()) + ")",
                         layer=None, fix="choose the uniform residual.")


class _Chosen(FittedResidual):
    def __init__(self, fitted: FittedResidual, name: str, table: dict[str, Any], refused: dict[str, str]) -> None:
        self.fitted, self.name, self.table, self.refused = fitted, name, table, refused
        self.has_variance = fitted.has_variance

    def predict(self, t: int, window: Window):
        return self.fitted.predict(t, window)

    def log(self) -> dict[str, Any]:
        out = {**self.fitted.log(), "chosen_by": "one scale up (2×2 blocks of coarse cells → cells)",
               "one_scale_up": self.table}
        if self.refused:
            out["refused_on_the_fine_grid"] = self.refused
        return out


def one_scale_up_scores(residuals: Sequence[np.ndarray], coarse: Grid, candidates: Sequence[ResidualModel],
                        canceled: Callable[[], bool]) -> dict[str, dict[str, float]]:
    """Mean per-cell ubRMSE and pooled RMSE of each candidate spreading 2×2-block means back onto
    the coarse cells (candidates that cannot be fitted there are left out), and, for a candidate that
    departs from the uniform spreading (the block mean at each of its cells), the least-squares
    weights of the static (per-cell time mean) and date-to-date parts of that departure
    (``beta_static``, ``beta_dynamic``) with the scores of the candidate so weighted (``weighted_…``)."""
    block = Grid(coarse.crs_wkt, coarse.x0, coarse.y0, 2 * coarse.dx, 2 * coarse.dy,
                 int(math.ceil(coarse.width / 2)), int(math.ceil(coarse.height / 2)))
    whole = Window(0, coarse.height)
    idx = cell_index(coarse, block, whole).ravel()
    fields = []
    for r in residuals:
        acc = CellAccumulator(block.size)
        acc.add(r, idx)
        fields.append(acc.mean().astype(np.float32))
    present = [np.isfinite(np.asarray(r, dtype=np.float64)).reshape(coarse.height, coarse.width) for r in residuals]
    geom = ResidualGeometry(coarse, block, [whole], support=lambda t, w: present[t],
                            cell_index=lambda w: cell_index(coarse, block, w))
    truth = np.array([np.asarray(r, dtype=np.float64) for r in residuals])
    uniform = np.array([f.astype(np.float64)[idx] for f in fields])
    table: dict[str, dict[str, float]] = {}
    for cand in candidates:
        try:
            fitted = cand.fit(fields, geom, canceled)
        except InputError:
            continue
        est = np.array([fitted.predict(t, whole)[0].ravel() for t in range(len(fields))], dtype=np.float64)
        ok = np.isfinite(est) & np.isfinite(truth) & np.isfinite(uniform)
        keep = ok.sum(axis=0) >= 3
        if not keep.any():
            continue
        row = _scores(est, truth, ok, keep)
        dep, obs = np.where(ok, est - uniform, np.nan)[:, keep], np.where(ok, truth - uniform, np.nan)[:, keep]
        if np.nanmax(np.abs(dep)) > 0:
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                dep_s, obs_s = np.nanmean(dep, axis=0), np.nanmean(obs, axis=0)
            # clustered by block: the departures of a block's cells from its mean are one piece of evidence
            cells = np.broadcast_to(idx[keep], dep.shape).ravel()
            b_s = shrinkage_weight(np.where(ok[:, keep], obs_s, np.nan).ravel(),
                                   np.where(ok[:, keep], dep_s, np.nan).ravel(), cells)
            b_d = shrinkage_weight((obs - obs_s).ravel(), (dep - dep_s).ravel(), cells)
            shrunk = uniform.copy()
            shrunk[:, keep] += b_s * dep_s + b_d * (dep - dep_s)
            weighted = _scores(shrunk, truth, ok, keep)
            row.update({"beta_static": b_s, "beta_dynamic": b_d, "weighted_cell_ubrmse": weighted["cell_ubrmse"],
                        "weighted_pooled_rmse": weighted["pooled_rmse"]})
        else:
            row.update({"weighted_cell_ubrmse": row["cell_ubrmse"], "weighted_pooled_rmse": row["pooled_rmse"]})
        table[cand.name] = row
    return table


def _scores(est: np.ndarray, truth: np.ndarray, ok: np.ndarray, keep: np.ndarray) -> dict[str, float]:
    """Mean per-cell ubRMSE and pooled RMSE over the cells ``keep`` (dates × cells arrays)."""
    e = np.where(ok, est - truth, np.nan)[:, keep]
    with np.errstate(invalid="ignore"):
        ub = np.sqrt(np.nanmean((e - np.nanmean(e, axis=0)) ** 2, axis=0))
    return {"cell_ubrmse": float(np.mean(ub)), "pooled_rmse": float(np.sqrt(np.nanmean(e ** 2)))}

