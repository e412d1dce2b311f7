"""Regression trend + residual correction (the backbone of DisTrad/ATPRK-style downscaling).

1. :func:`fit` — a trend regressor fitted on the coarse grid: coarse soil moisture ~ covariates
   aggregated to the coarse cells + day of year (:mod:`core.methods.trend`), optionally one model
   per land-cover class. The fitted :class:`RegressionModel` can be saved and applied later.
2. :func:`predict` — the trend on every fine pixel and date, block by block, scaled by its
   cross-validated skill on the coarse field (:mod:`core.methods.trend_weight`: do no harm); then
   the residual (coarse soil moisture minus the mean fine trend in each coarse cell) spread by a
   residual model — bilinear + refinement, point kriging or area-to-point kriging
   (:mod:`core.methods.residual`) — and added back, so each coarse cell's fine pixels average back
   to (or close to) the coarse value (the conservation figures report how close). The pipeline
   itself is :func:`core.methods.pipeline.trend_plus_residual`, shared with SVATARK.

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
from ..io.output import SPREAD_RAMP, qml_pseudocolor, write_json_atomic, write_soil_moisture_style, write_text_atomic
from ..learn.verified_state import read_state, write_state
from .pipeline import ResidualOptions, conservation_figures, trend_plus_residual
from .residual import RESIDUALS
from .result import DownscaleResult, canceled_fn, progress_span
from .trend import REGRESSOR_LABELS, REGRESSORS, TrendModel, TrendOptions, coarse_samples
from .trend_weight import TrendWeights, trend_weight

__all__ = ["REGRESSORS", "REGRESSOR_LABELS", "RESIDUALS", "RegressionModel", "RegressionOptions", "downscale",
           "fit", "predict", "conservation_figures"]

METHOD = "regression"


@dataclass
class RegressionOptions(TrendOptions, ResidualOptions):
    """Trend options, the residual step (:class:`core.methods.pipeline.ResidualOptions`) and block size."""
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
    X_train, y_train, cells_train, dates_train = coarse_samples(scene, view, names, opts.coarse_offset)
    if len(y_train) < 10:
        raise InputError(problem=f"only {len(y_train)} coarse cells have both soil moisture and covariates; "
                         "at least 10 are needed to fit the trend.", layer=scene.sm_bands[0].label,
                         fix="use more dates or a larger area, or check the layers' nodata values.")
    prog(0.85, f"fitting the trend ({REGRESSOR_LABELS[opts.regressor]}) on {len(y_train)} coarse samples")
    trend = TrendModel(names, categorical, opts)
    # with the trend weight, its spatially grouped folds give the trend's CV scores too (no 5 extra fits)
    training = trend.fit(X_train, y_train.astype(np.float64), scores=not opts.shrink_trend)
    if canceled():
        raise Canceled()
    if opts.shrink_trend:
        prog(0.92, "cross-validating the trend's skill on the coarse field (spatial blocks of cells)")
        training.update(trend_weight_of(scene, trend, X_train, y_train, cells_train, dates_train, opts.seed))
        if canceled():
            raise Canceled()
    prog(1.0, "trend fitted")
    return RegressionModel(names, categorical, opts, trend, training)


def trend_weight_of(scene: Scene, trend: TrendModel, X: np.ndarray, y: np.ndarray, cells: np.ndarray,
                    dates: np.ndarray, seed: int) -> dict[str, Any]:
    """The cross-validated trend weight (:mod:`core.methods.trend_weight`) on the scene's coarse grid."""
    g = scene.coarse
    rows, cols = np.divmod(np.arange(g.size), g.width)
    cx, cy = g.pixel_size_m()
    xy = np.column_stack([(cols + 0.5) * cx, (rows + 0.5) * cy])
    return trend_weight(trend.fit_predict, X, y.astype(np.float64), cells, dates, np.column_stack([rows, cols]), xy,
                        seed=seed)


def _check_scene(model: RegressionModel, scene: Scene) -> None:
    have = set(scene.covariate_names) | {"doy"}
    missing = [n for n in model.names if n not in have]
    if missing:
        raise InputError(problem=f"the fitted trend needs the covariate(s) {', '.join(missing)}, which the given "
                         "layers do not provide.", layer=None,
                         fix="give layers with the same roles as when the model was fitted (its card lists them).")


def applied_trend_weight(model: RegressionModel) -> TrendWeights:
    """The shares of the trend applied: the cross-validated weights when the options ask for them, else 1."""
    return TrendWeights.of(model.training) if model.options.shrink_trend else TrendWeights()


def predict(model: RegressionModel, scene: Scene, output_path: str, progress: Optional[Progress] = None,
            is_canceled: Optional[IsCanceled] = None, method: str = METHOD, sd_path: Optional[str] = None
            ) -> DownscaleResult:
    """Apply a fitted trend to every fine pixel and date of ``scene``, add the residual, and
    write a dated, styled GeoTIFF to ``output_path``.

    Writes ``output_path`` (one band per date, described by its ISO date), ``<output>.qml``, with a
    kriged residual the kriging standard deviation (``sd_path``, default ``<output>_kriging_sd.tif``)
    and a run log ``<output>.json``. Raises :class:`~core.errors.Canceled` if ``is_canceled()`` turns true
    (nothing is left behind).
    """
    _check_scene(model, scene)
    opts = model.options
    t_start = time.time()
    prog = progress or (lambda f, m: None)
    residual = opts.residual_model()
    weights = applied_trend_weight(model)
    meta = {"SOIL_MOISTURE_UNITS": "m3/m3", "METHOD": f"trend ({opts.regressor}) + {residual.label}",
            "TREND_WEIGHT": f"{weights.cells:.3f}", "TREND_WEIGHTS": weights.describe(),
            "TIMES": ",".join(format_date(d) for d in scene.dates)}
    sd_path = sd_path or output_path.rsplit(".", 1)[0] + "_kriging_sd.tif"
    piped = trend_plus_residual(scene, model.trend, model.names, residual, output_path, trend_weight=weights,
                                coarse_offset=opts.coarse_offset, sd_path=sd_path, metadata=meta, block_pixels=opts.block_pixels,
                                progress=lambda f, m: prog(0.95 * f, m), is_canceled=is_canceled)
    style = write_soil_moisture_style(output_path)
    if piped.sd_path:
        write_text_atomic(piped.sd_path.rsplit(".", 1)[0] + ".qml", qml_pseudocolor(SPREAD_RAMP))
    log_path = output_path.rsplit(".", 1)[0] + ".json"
    dates = scene.dates
    result = DownscaleResult(output_path, log_path, list(dates), piped.conservation, model.training,
                             time.time() - t_start, extra={"kriging_sd": piped.sd_path, "residual": piped.residual_log,
                                                           "trend_weight": weights.cells,
                                                           "trend_weights": asdict(weights)})
    write_json_atomic(log_path, {
        "method": method,
        "options": asdict(opts),
        "scene": scene.describe(),
        "training": model.training,
        "trend_weight_applied": weights.cells,
        "trend_weights_applied": asdict(weights),
        "trend_predictor": model.trend.predictor() if hasattr(model.trend, "predictor") else "onnxruntime",
        "residual": piped.residual_log,
        "conservation": [{"date": format_date(d), **c} for d, c in zip(dates, piped.conservation)],
        "outputs": {"raster": output_path, "style": style, "kriging_sd": piped.sd_path},
        "seconds": result.seconds,
    })
    prog(1.0, "done")
    return result


def downscale(scene: Scene, output_path: str, options: Optional[RegressionOptions] = None,
              progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None,
              sd_path: Optional[str] = None) -> DownscaleResult:
    """:func:`fit` then :func:`predict` on the same scene (the Processing algorithm's path)."""
    t0 = time.time()
    model = fit(scene, options, progress_span(progress, 0.0, 0.2), is_canceled)
    result = predict(model, scene, output_path, progress_span(progress, 0.2, 1.0), is_canceled, sd_path=sd_path)
    result.seconds = time.time() - t0
    return result
