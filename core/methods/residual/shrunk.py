"""A bilinear or kriged residual shrunk towards the uniform one by its skill one scale up.

Station scores are temporal, and spreading a residual from neighbouring cells mixes their series
into each pixel's: where the cells' series differ for reasons the neighbours do not share (coast,
land cover), the pixel's series gets worse even when the map's pattern looks better. So a
candidate's departure from the uniform residual ``D = C(r) − U(r)`` enters only as far as it
explains the coarse cells one scale up (2×2 blocks of cells spread back onto the cells,
:func:`.auto.one_scale_up_scores`), and — like the trend (:mod:`core.methods.trend_weight`) — its
static part (the departure of the cells' time-mean residual) and its date-to-date rest get weights
of their own: ``U(r_t) + β_s·D(r̄) + β_d·(D(r_t) − D(r̄))``, each ``β`` the least-squares weight in
[0, 1]. The candidate is linear in the residual, so ``D(r̄)`` is the static part of ``D(r_t)``.
Coherent where the candidate is; the variance is the candidate's (of the full departure).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...raster.grid import Window
from .base import FittedResidual, ResidualGeometry, ResidualModel
from .uniform import UniformResidual


class ShrunkResidual(ResidualModel):
    """``candidate``'s departure from the uniform residual, weighted by ``betas`` = (β_s, β_d), or by
    the weights measured one scale up when ``betas`` is ``None``."""

    def __init__(self, candidate: ResidualModel, betas: Optional[tuple[float, float]] = None,
                 one_scale_up: Optional[dict[str, float]] = None) -> None:
        self.candidate, self.betas, self.one_scale_up = candidate, betas, one_scale_up
        self.name = candidate.name
        self.label = f"{candidate.label}, weighted by its skill one scale up"

    def fit(self, residuals: Sequence[np.ndarray], geometry: ResidualGeometry,
            canceled: Callable[[], bool]) -> FittedResidual:
        scores = self.one_scale_up
        note = None
        if self.betas is None:
            from .auto import beats, one_scale_up_scores
            table = one_scale_up_scores(residuals, geometry.coarse, [UniformResidual(), self.candidate], canceled)
            scores, uniform = table.get(self.candidate.name), table.get(UniformResidual.name)
            if scores is not None and uniform is not None and "beta_static" in scores and not beats(scores, uniform):
                # as in the chosen-one-scale-up residual: the candidate as it is must beat the uniform residual
                scores = {**scores, "beta_static": 0.0, "beta_dynamic": 0.0, "uniform_cell_ubrmse": uniform["cell_ubrmse"]}
                note = (f"{self.candidate.label} did not beat the uniform residual one scale up (mean per-cell "
                        f"ubRMSE {scores['cell_ubrmse']:.5f} vs {uniform['cell_ubrmse']:.5f}): its departure is "
                        "left out and the coarse residual is spread uniformly (the variance is still the candidate's)")
        if scores is None or "beta_static" not in scores:
            betas = self.betas or (1.0, 1.0)
            if self.betas is None:
                note = "too few cells to judge the residual one scale up: its full departure is kept"
        else:
            betas = self.betas or (scores["beta_static"], scores["beta_dynamic"])
        fields = list(residuals)
        if betas[0] != betas[1]:  # the cells' time-mean residual as one more field: its departure is the static part
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # cells without any residual
                mean = np.nanmean(np.array([np.asarray(r, dtype=np.float64) for r in residuals]), axis=0)
            fields.append(mean.astype(np.float32))
            support = geometry.support
            geometry = ResidualGeometry(geometry.fine, geometry.coarse, geometry.windows,
                                        None if support is None else (lambda t, w: support(min(t, len(residuals) - 1), w)),
                                        geometry.cell_index)
        fitted = self.candidate.fit(fields, geometry, canceled)
        uniform = UniformResidual().fit(fields, geometry, canceled)
        return _FittedShrunk(fitted, uniform, len(residuals), betas, scores, note)


class _FittedShrunk(FittedResidual):
    def __init__(self, fitted: FittedResidual, uniform: FittedResidual, n_dates: int, betas: tuple[float, float],
                 scores: Optional[dict[str, float]], note: Optional[str]) -> None:
        self.fitted, self.uniform, self.T, self.betas, self.scores, self.note = fitted, uniform, n_dates, betas, scores, note
        self.has_variance = fitted.has_variance
        self._static: tuple[Optional[Window], Optional[np.ndarray]] = (None, None)

    def _static_departure(self, window: Window) -> np.ndarray:
        if self._static[0] != window:  # the pipeline walks the dates of one window at a time
            c, _ = self.fitted.predict(self.T, window)
            u, _ = self.uniform.predict(self.T, window)
            self._static = (window, c.astype(np.float64) - u)
        return self._static[1]

    def predict(self, t: int, window: Window) -> tuple[np.ndarray, Optional[np.ndarray]]:
        c, var = self.fitted.predict(t, window)
        u, _ = self.uniform.predict(t, window)
        dep = c.astype(np.float64) - u
        b_s, b_d = self.betas
        if b_s == b_d:
            return (u + b_s * dep).astype(np.float32), var
        static = np.where(np.isfinite(dep), np.nan_to_num(self._static_departure(window)), np.nan)
        return (u + b_s * static + b_d * (dep - static)).astype(np.float32), var

    def log(self) -> dict[str, Any]:
        out = {**self.fitted.log(), "departure_weight_static": self.betas[0], "departure_weight_dynamic": self.betas[1],
               "departure_weighted_by": "one scale up (2×2 blocks of coarse cells → cells)"}
        if self.scores:
            out["one_scale_up"] = self.scores
        if self.note:
            out["note"] = self.note
        return out

