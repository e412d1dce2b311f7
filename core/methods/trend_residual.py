"""Regression trend + residual correction (the backbone of DisTrad/ATPRK-style downscaling).

1. Trend: a regressor fitted on the coarse grid — coarse soil moisture ~ covariates aggregated
   to the coarse cells + day of year — optionally one model per land-cover class.
2. The trend is applied on the fine grid, block by block, for every date.
3. Residual: coarse soil moisture minus the mean fine trend in each coarse cell, interpolated
   bilinearly to the fine pixels and added back, so each coarse cell's fine pixels average back
   close to the coarse value (the conservation figures report how close).
"""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..aggregate import CellAccumulator
from ..dates import format_date
from ..errors import Canceled, InputError
from ..output import RasterWriter, write_json_atomic, write_soil_moisture_style
from ..residual import bilinear_residual, coarse_residual, refine_residual
from ..scene import IsCanceled, Progress, Scene

REGRESSORS = ("svr", "rf", "hgb")
REGRESSOR_LABELS = {"svr": "Support-vector regression (RBF kernel)", "rf": "Random forest",
                    "hgb": "Histogram gradient boosting"}
MIN_CLASS_SAMPLES = 30


@dataclass
class TrendResidualOptions:
    regressor: str = "svr"
    per_class: bool = False
    svr_c: float = 1.0
    svr_epsilon: float = 0.01
    n_estimators: int = 200
    #: Extra passes that adjust the residual field so the fine pixels of each coarse cell average
    #: back to the coarse value (0 = plain bilinear residual).
    residual_iterations: int = 3
    seed: int = 42
    block_pixels: int = 1 << 20
    n_jobs: int = 2


@dataclass
class DownscaleResult:
    path: str
    log_path: str
    dates: list[_dt.date]
    conservation: list[dict[str, float]]
    training: dict[str, Any]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def make_regressor(opts: TrendResidualOptions, categorical_columns: Sequence[int], n_columns: int):
    """A scikit-learn pipeline: categorical columns one-hot encoded, the rest standardised."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVR

    cont = [i for i in range(n_columns) if i not in categorical_columns]
    parts = [("num", StandardScaler(), cont)]
    if categorical_columns:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(categorical_columns)))
    prep = ColumnTransformer(parts)
    if opts.regressor == "svr":
        reg = SVR(kernel="rbf", C=opts.svr_c, epsilon=opts.svr_epsilon, gamma="scale")
    elif opts.regressor == "rf":
        reg = RandomForestRegressor(n_estimators=opts.n_estimators, min_samples_leaf=2, n_jobs=opts.n_jobs,
                                    random_state=opts.seed)
    elif opts.regressor == "hgb":
        reg = HistGradientBoostingRegressor(max_iter=opts.n_estimators, learning_rate=0.05, random_state=opts.seed)
    else:
        raise ValueError(f"unknown regressor '{opts.regressor}' (choose one of {', '.join(REGRESSORS)})")
    return make_pipeline(prep, reg)


class TrendModel:
    """The fitted trend: a global model and, optionally, one model per land-cover class."""

    def __init__(self, names: list[str], categorical: list[str], opts: TrendResidualOptions) -> None:
        self.names = names
        self.categorical = categorical
        self.opts = opts
        self.cat_cols = [names.index(c) for c in categorical]
        self.global_model = None
        self.class_models: dict[int, Any] = {}
        self.class_feature = "land_cover" if (opts.per_class and "land_cover" in names) else None

    def _new(self):
        return make_regressor(self.opts, self.cat_cols, len(self.names))

    def fit(self, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        self.global_model = self._new().fit(X, y)
        info: dict[str, Any] = {"n_samples": int(len(y)), "features": self.names}
        info.update(_cv_scores(self._new, X, y, self.opts.seed))
        if self.class_feature is not None:
            col = X[:, self.names.index(self.class_feature)]
            counts = {}
            for code in np.unique(col[np.isfinite(col)]):
                sel = col == code
                counts[int(code)] = int(sel.sum())
                if sel.sum() >= MIN_CLASS_SAMPLES:
                    self.class_models[int(code)] = self._new().fit(X[sel], y[sel])
            info["class_samples"] = counts
            info["class_models"] = sorted(self.class_models)
        return info

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.full(len(X), np.nan, dtype=np.float32)
        ok = np.isfinite(X).all(axis=1)
        if not ok.any():
            return out
        Xo = X[ok]
        pred = _predict(self.global_model, Xo)
        if self.class_models:
            col = Xo[:, self.names.index(self.class_feature)]
            for code, m in self.class_models.items():
                sel = col == code
                if sel.any():
                    pred[sel] = _predict(m, Xo[sel])
        out[ok] = pred
        return out


def _predict(pipeline, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Predict with a fitted pipeline; an RBF SVR is evaluated with BLAS in float32 chunks,
    which is ~100× faster than libsvm's per-sample loop on large rasters (same result within
    float32 rounding)."""
    from sklearn.svm import SVR
    reg = pipeline[-1]
    if not isinstance(reg, SVR) or reg.kernel != "rbf":
        return pipeline.predict(X).astype(np.float32)
    Z = pipeline[:-1].transform(X).astype(np.float32)
    sv = reg.support_vectors_.astype(np.float32)
    coef = reg.dual_coef_.ravel().astype(np.float32)
    gamma = np.float32(reg._gamma)
    sv_sq = (sv * sv).sum(axis=1)
    out = np.empty(len(Z), dtype=np.float32)
    neg_g = np.float32(-gamma)
    for i in range(0, len(Z), chunk):
        z = Z[i:i + chunk]
        k = z @ sv.T                                   # x·sv
        k *= np.float32(-2.0)
        k += (z * z).sum(axis=1)[:, None]
        k += sv_sq[None, :]                            # ‖x − sv‖²
        np.maximum(k, 0.0, out=k)
        k *= neg_g
        np.exp(k, out=k)
        out[i:i + chunk] = k @ coef + np.float32(reg.intercept_[0])
    return out


def _cv_scores(factory, X: np.ndarray, y: np.ndarray, seed: int, max_rows: int = 5000) -> dict[str, float]:
    """5-fold CV of the trend on the coarse grid (R and RMSE), a guide to how well covariates explain SM.

    On at most ``max_rows`` coarse samples (a seeded subsample), so large scenes do not pay five
    extra full fits for a diagnostic.
    """
    from sklearn.model_selection import KFold
    if len(y) < 25:
        return {}
    if len(y) > max_rows:
        keep = np.random.default_rng(seed).choice(len(y), max_rows, replace=False)
        X, y = X[keep], y[keep]
    pred = np.empty_like(y)
    for tr, te in KFold(5, shuffle=True, random_state=seed).split(X):
        pred[te] = factory().fit(X[tr], y[tr]).predict(X[te])
    r = float(np.corrcoef(pred, y)[0, 1]) if np.std(pred) > 0 else float("nan")
    return {"cv_r": r, "cv_rmse": float(np.sqrt(np.mean((pred - y) ** 2)))}


def _stack(features: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    return np.column_stack([np.asarray(features[n], dtype=np.float32).ravel() for n in names])


def downscale_trend_residual(scene: Scene, output_path: str, opts: Optional[TrendResidualOptions] = None,
                             progress: Optional[Progress] = None,
                             is_canceled: Optional[IsCanceled] = None) -> DownscaleResult:
    """Downscale every date of ``scene`` and write a dated, styled GeoTIFF to ``output_path``.

    Writes ``output_path`` (one band per date, described by its ISO date), ``<output>.qml`` and a
    run log ``<output>.json``. Raises :class:`~core.errors.Canceled` if ``is_canceled()`` turns true
    (nothing is left behind).
    """
    opts = opts or TrendResidualOptions()
    t_start = time.time()
    prog = progress or (lambda f, m: None)
    canceled = is_canceled or (lambda: False)
    names = scene.covariate_names + ["doy"]
    categorical = [n for n in scene.categorical_names if n in names]
    if opts.per_class and "land_cover" not in names:
        raise InputError(problem="one model per land-cover class was asked for, but no land-cover layer was given.",
                         layer=None, fix="add a land-cover layer, or untick the per-class option.")

    # 1. training view on the coarse grid
    view = scene.training_view(opts.block_pixels, lambda f, m: prog(0.15 * f, m), canceled)
    Xs, ys = [], []
    for t in range(len(scene.dates)):
        y = scene.coarse_sm(t)
        X = _stack(scene.coarse_features(view, t), names)
        ok = np.isfinite(y) & np.isfinite(X).all(axis=1)
        Xs.append(X[ok])
        ys.append(y[ok])
    X_train, y_train = np.concatenate(Xs), np.concatenate(ys)
    if len(y_train) < 10:
        raise InputError(problem=f"only {len(y_train)} coarse cells have both soil moisture and covariates; "
                         "at least 10 are needed to fit the trend.", layer=scene.sm_bands[0].label,
                         fix="use more dates or a larger area, or check the layers' nodata values.")
    prog(0.17, f"fitting the trend ({REGRESSOR_LABELS[opts.regressor]}) on {len(y_train)} coarse samples")
    model = TrendModel(names, categorical, opts)
    training = model.fit(X_train, y_train.astype(np.float64))
    if canceled():
        raise Canceled()

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
                trend = model.predict(_stack(feats, names)).reshape(w.nrows, scene.fine.width)
                trend_file.write(t, w, trend)
                trend_acc[t].add(trend, idx)
                step += 1
                prog(0.2 + 0.75 * step / n_steps, "predicting the trend on the fine grid")
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
            prog(0.2 + 0.75 * step / n_steps, "refining the residual so fine pixels average to the coarse value")
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
                prog(0.2 + 0.75 * step / n_steps, "adding the interpolated coarse residual")
        conservation = [conservation_figures(final_acc[t].mean(), scene.coarse_sm(t)) for t in range(T)]
        prog(0.96, "building overviews")
        if canceled():
            raise Canceled()
        out.commit(overviews=True)
    style = write_soil_moisture_style(output_path)
    log_path = output_path.rsplit(".", 1)[0] + ".json"
    result = DownscaleResult(output_path, log_path, list(dates), conservation, training, time.time() - t_start)
    write_json_atomic(log_path, {
        "method": "trend_residual",
        "options": opts.__dict__,
        "scene": scene.describe(),
        "training": training,
        "conservation": [{"date": format_date(d), **c} for d, c in zip(dates, conservation)],
        "outputs": {"raster": output_path, "style": style},
        "seconds": result.seconds,
    })
    prog(1.0, "done")
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
