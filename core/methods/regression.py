"""Regression trend + residual correction (the backbone of DisTrad/ATPRK-style downscaling).

1. :func:`fit` — a trend regressor fitted on the coarse grid: coarse soil moisture ~ covariates
   aggregated to the coarse cells + day of year (:mod:`core.methods.trend`), optionally one model
   per land-cover class. The fitted :class:`RegressionModel` can be saved and applied later.
2. :func:`predict` — the trend on every fine pixel and date, block by block; then the residual
   (coarse soil moisture minus the mean fine trend in each coarse cell) interpolated bilinearly
   and refined (:mod:`core.methods.residual`) and added back, so each coarse cell's fine pixels
   average back close to the coarse value (the conservation figures report how close).

:func:`downscale` is both in one call.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

from ..errors import Canceled, InputError
from ..inputs.dates import format_date
from ..inputs.scene import IsCanceled, Progress, Scene
from ..io.output import RasterWriter, write_json_atomic, write_soil_moisture_style
from ..learn.verified_state import read_state, write_state
from ..raster.aggregate import CellAccumulator
from .residual import bilinear_residual, coarse_residual, refine_residual
from .result import DownscaleResult, canceled_fn, progress_span
from .trend import REGRESSOR_LABELS, REGRESSORS, TrendModel, TrendOptions, stack_features

__all__ = ["REGRESSORS", "REGRESSOR_LABELS", "RegressionModel", "RegressionOptions", "downscale", "fit",
           "predict", "conservation_figures"]

METHOD = "regression"


@dataclass
class RegressionOptions(TrendOptions):
    """Trend options plus the residual step and block size."""
    #: Extra passes that adjust the residual field so the fine pixels of each coarse cell average
    #: back to the coarse value (0 = plain bilinear residual).
    residual_iterations: int = 3
    block_pixels: int = 1 << 20


@dataclass
class RegressionModel:
    """A fitted trend: the covariates it needs (in order), the fitted models and the fit's log."""
    names: list[str]
    categorical: list[str]
    options: RegressionOptions
    trend: TrendModel
    training: dict[str, Any]

    def save(self, folder: str) -> str:
        """Write the model to ``folder`` (verified joblib state + JSON card); returns the folder."""
        card = {"method": METHOD, "inputs": self.names, "categorical": self.categorical,
                "options": asdict(self.options), "training": self.training}
        return write_state(folder, {"names": self.names, "categorical": self.categorical,
                                    "options": asdict(self.options), "trend": self.trend,
                                    "training": self.training}, card)

    @classmethod
    def load(cls, folder: str) -> "RegressionModel":
        """A model saved by :meth:`save` (its hash is checked before it is unpickled)."""
        state, card = read_state(folder)
        if card.get("method") != METHOD:
            raise InputError(problem=f"the model folder holds a '{card.get('method')}' model, not a regression trend.",
                             layer=folder, fix="choose a folder written by the regression method.")
        return cls(state["names"], state["categorical"], RegressionOptions(**state["options"]), state["trend"],
                   state["training"])


def fit(scene: Scene, options: Optional[RegressionOptions] = None, progress: Optional[Progress] = None,
        is_canceled: Optional[IsCanceled] = None) -> RegressionModel:
    """Fit the trend on the coarse grid of ``scene`` (pooled over its dates)."""
    opts = options or RegressionOptions()
    prog = progress or (lambda f, m: None)
    canceled = canceled_fn(is_canceled)
    names = scene.covariate_names + ["doy"]
    categorical = [n for n in scene.categorical_names if n in names]
    if opts.per_class and "land_cover" not in names:
        raise InputError(problem="one model per land-cover class was asked for, but no land-cover layer was given.",
                         layer=None, fix="add a land-cover layer, or untick the per-class option.")
    if opts.regressor not in REGRESSORS:
        raise ValueError(f"unknown regressor '{opts.regressor}' (choose one of {', '.join(REGRESSORS)})")
    view = scene.training_view(opts.block_pixels, lambda f, m: prog(0.8 * f, m), canceled)
    Xs, ys = [], []
    for t in range(len(scene.dates)):
        y = scene.coarse_sm(t)
        X = stack_features(scene.coarse_features(view, t), names)
        ok = np.isfinite(y) & np.isfinite(X).all(axis=1)
        Xs.append(X[ok])
        ys.append(y[ok])
    X_train, y_train = np.concatenate(Xs), np.concatenate(ys)
    if len(y_train) < 10:
        raise InputError(problem=f"only {len(y_train)} coarse cells have both soil moisture and covariates; "
                         "at least 10 are needed to fit the trend.", layer=scene.sm_bands[0].label,
                         fix="use more dates or a larger area, or check the layers' nodata values.")
    prog(0.85, f"fitting the trend ({REGRESSOR_LABELS[opts.regressor]}) on {len(y_train)} coarse samples")
    trend = TrendModel(names, categorical, opts)
    training = trend.fit(X_train, y_train.astype(np.float64))
    if canceled():
        raise Canceled()
    prog(1.0, "trend fitted")
    return RegressionModel(names, categorical, opts, trend, training)


def _check_scene(model: RegressionModel, scene: Scene) -> None:
    have = set(scene.covariate_names) | {"doy"}
    missing = [n for n in model.names if n not in have]
    if missing:
        raise InputError(problem=f"the fitted trend needs the covariate(s) {', '.join(missing)}, which the given "
                         "layers do not provide.", layer=None,
                         fix="give layers with the same roles as when the model was fitted (its card lists them).")


def predict(model: RegressionModel, scene: Scene, output_path: str, progress: Optional[Progress] = None,
            is_canceled: Optional[IsCanceled] = None) -> DownscaleResult:
    """Apply a fitted trend to every fine pixel and date of ``scene``, add the refined residual, and
    write a dated, styled GeoTIFF to ``output_path``.

    Writes ``output_path`` (one band per date, described by its ISO date), ``<output>.qml`` and a
    run log ``<output>.json``. Raises :class:`~core.errors.Canceled` if ``is_canceled()`` turns true
    (nothing is left behind).
    """
    _check_scene(model, scene)
    opts = model.options
    names = model.names
    t_start = time.time()
    prog = progress or (lambda f, m: None)
    canceled = canceled_fn(is_canceled)
    dates = scene.dates
    T = len(dates)
    windows = list(scene.fine.windows(opts.block_pixels))
    n_steps = 2 * len(windows) * T
    step = 0
    band_names = [format_date(d) for d in dates]
    meta = {"SOIL_MOISTURE_UNITS": "m3/m3", "METHOD": f"trend ({opts.regressor}) + bilinear residual",
            "TIMES": ",".join(band_names)}
    with RasterWriter(output_path, scene.fine, band_names, temporary=True) as trend_file, \
            RasterWriter(output_path, scene.fine, band_names, metadata=meta) as out:
        # 2. fine trend, and its mean in each coarse cell
        trend_acc = [CellAccumulator(scene.coarse.size) for _ in range(T)]
        for w in windows:
            static = scene.static_block(w)
            idx = scene.cell_index(w)
            for t in range(T):
                if canceled():
                    raise Canceled()
                feats = scene.features(t, w, static)
                trend = model.trend.predict(stack_features(feats, names)).reshape(w.nrows, scene.fine.width)
                trend_file.write(t, w, trend)
                trend_acc[t].add(trend, idx)
                step += 1
                prog(0.95 * step / n_steps, "predicting the trend on the fine grid")
        # 3. residual correction
        targets = [coarse_residual(scene.coarse_sm(t), trend_acc[t].mean()) for t in range(T)]
        residuals = targets
        for _ in range(opts.residual_iterations):
            # mean of the interpolated residual in each cell (over pixels with a trend) → correct it
            spread = [CellAccumulator(scene.coarse.size) for _ in range(T)]
            for w in windows:
                idx = scene.cell_index(w)
                for t in range(T):
                    if canceled():
                        raise Canceled()
                    has_trend = np.isfinite(trend_file.read(t, w))
                    interp = bilinear_residual(residuals[t], scene.fine, scene.coarse, w)
                    spread[t].add(np.where(has_trend, interp, np.nan), idx)
            residuals = [refine_residual(residuals[t], targets[t], spread[t].mean()) for t in range(T)]
            prog(0.95 * step / n_steps, "refining the residual so fine pixels average to the coarse value")
        final_acc = [CellAccumulator(scene.coarse.size) for _ in range(T)]
        for w in windows:
            idx = scene.cell_index(w)
            for t in range(T):
                if canceled():
                    raise Canceled()
                sm = scene.coarse_sm(t)
                has_sm = (idx >= 0) & np.isfinite(sm[np.maximum(idx, 0)])
                fine = trend_file.read(t, w) + bilinear_residual(residuals[t], scene.fine, scene.coarse, w)
                fine = np.where(has_sm, np.clip(fine, 0.0, None), np.nan).astype(np.float32)
                out.write(t, w, fine)
                final_acc[t].add(fine, idx)
                step += 1
                prog(0.95 * step / n_steps, "adding the interpolated coarse residual")
        conservation = [conservation_figures(final_acc[t].mean(), scene.coarse_sm(t)) for t in range(T)]
        prog(0.96, "building overviews")
        if canceled():
            raise Canceled()
        out.commit(overviews=True)
    style = write_soil_moisture_style(output_path)
    log_path = output_path.rsplit(".", 1)[0] + ".json"
    result = DownscaleResult(output_path, log_path, list(dates), conservation, model.training, time.time() - t_start)
    write_json_atomic(log_path, {
        "method": METHOD,
        "options": asdict(opts),
        "scene": scene.describe(),
        "training": model.training,
        "conservation": [{"date": format_date(d), **c} for d, c in zip(dates, conservation)],
        "outputs": {"raster": output_path, "style": style},
        "seconds": result.seconds,
    })
    prog(1.0, "done")
    return result


def downscale(scene: Scene, output_path: str, options: Optional[RegressionOptions] = None,
              progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None) -> DownscaleResult:
    """:func:`fit` then :func:`predict` on the same scene (the Processing algorithm's path)."""
    t0 = time.time()
    model = fit(scene, options, progress_span(progress, 0.0, 0.2), is_canceled)
    result = predict(model, scene, output_path, progress_span(progress, 0.2, 1.0), is_canceled)
    result.seconds = time.time() - t0
    return result


def conservation_figures(fine_cell_mean: np.ndarray, coarse: np.ndarray) -> dict[str, float]:
    """Mean and max absolute difference (m³/m³) between the mean of the fine pixels in each coarse
    cell and the coarse value, over cells that have both."""
    d = fine_cell_mean - coarse
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"cells": 0, "mean_abs_diff": float("nan"), "max_abs_diff": float("nan")}
    return {"cells": int(d.size), "mean_abs_diff": float(np.mean(np.abs(d))),
            "max_abs_diff": float(np.max(np.abs(d)))}
