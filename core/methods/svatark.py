"""SVATARK (Jin et al.): support-vector regression per stratum + area-to-area/area-to-point kriging
of the residual.

A configuration of the regression family, composed from the same pieces rather than a second
pipeline: the trend is an ε-SVR with an RBF kernel fitted on the coarse grid, one per land-cover
class (or any class raster given as land cover; classes with fewer than 30 coarse samples use the
global model), optionally with C, ε and γ tuned by cross-validation grouped by coarse cell; the
residual is area-to-point kriged with a deconvolved point variogram
(:class:`core.methods.residual.AtpkResidual`), so the map is coherent and comes with a kriging
standard deviation per date. Like every trend-based method here, the trend enters only as far as
its cross-validated skill on the coarse field allows (:mod:`core.methods.trend_weight`).

Optional bias correction (as in the paper): the mean coarse-minus-station difference over all
station-date pairs (:func:`station_bias`) is removed from the coarse series before downscaling.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
from osgeo import osr

from ..evaluation.stations import Station
from ..inputs.dates import as_date
from ..inputs.scene import IsCanceled, Progress, Scene
from . import regression
from .regression import RegressionModel, RegressionOptions
from .result import DownscaleResult, canceled_fn, progress_span
from .trend import coarse_samples, make_regressor

METHOD = "svatark"

#: The grid searched when tuning (γ as multiples of scikit-learn's "scale" value).
C_GRID = (0.3, 1.0, 3.0, 10.0)
EPSILON_GRID = (0.005, 0.01, 0.02)
GAMMA_FACTORS = (0.3, 1.0, 3.0)


@dataclass
class SvatarkOptions(RegressionOptions):
    """Regression options with SVATARK's defaults: SVR per land-cover class, ATPK residual."""
    regressor: str = "svr"
    per_class: bool = True
    residual: str = "atpk"
    #: Tune C, ε and γ by 5-fold CV grouped by coarse cell (on at most 3 000 coarse samples).
    tune_svr: bool = False


def fit(scene: Scene, options: Optional[SvatarkOptions] = None, progress: Optional[Progress] = None,
        is_canceled: Optional[IsCanceled] = None) -> RegressionModel:
    """Fit the stratified SVR trend (tuned when asked) on the coarse grid of ``scene``."""
    opts = dataclasses.replace(options or SvatarkOptions(), regressor="svr")
    # strata where a class raster exists; the global model otherwise
    opts.per_class = opts.per_class and "land_cover" in scene.covariate_names
    prog = progress or (lambda f, m: None)
    tuning: dict[str, Any] = {}
    if opts.tune_svr:
        opts, tuning = tune(scene, opts, progress_span(prog, 0.0, 0.4), is_canceled)
    model = regression.fit(scene, opts, progress_span(prog, 0.4 if tuning else 0.0, 1.0), is_canceled)
    if tuning:
        model.training["svr_tuning"] = tuning
    model.training["strata"] = "land_cover" if opts.per_class else "none (global model)"
    return model


def tune(scene: Scene, opts: SvatarkOptions, progress: Optional[Progress] = None,
         is_canceled: Optional[IsCanceled] = None, max_rows: int = 3000) -> tuple[SvatarkOptions, dict[str, Any]]:
    """C, ε and γ of the (global) SVR by grid search, 5-fold CV grouped by coarse cell."""
    from sklearn.model_selection import GridSearchCV, GroupKFold
    prog = progress or (lambda f, m: None)
    canceled = canceled_fn(is_canceled)
    names = scene.covariate_names + ["doy"]
    cats = [n for n in scene.categorical_names if n in names]
    view = scene.training_view(opts.block_pixels, lambda f, m: prog(0.5 * f, m), canceled)
    X, y, cells, _ = coarse_samples(scene, view, names, opts.coarse_offset)
    if len(np.unique(cells)) < 5:
        return opts, {"note": "fewer than 5 coarse cells: kept the given C, ε and γ"}
    if len(y) > max_rows:
        keep = np.random.default_rng(opts.seed).choice(len(y), max_rows, replace=False)
        X, y, cells = X[keep], y[keep], cells[keep]
    pipe = make_regressor(opts, [names.index(c) for c in cats], len(names))
    n_cols = pipe[:-1].fit(X).transform(X[:1]).shape[1]
    scale = 1.0 / (n_cols * max(float(np.var(pipe[:-1].transform(X))), 1e-12))
    grid = {"svr__C": list(C_GRID), "svr__epsilon": list(EPSILON_GRID),
            "svr__gamma": [f * scale for f in GAMMA_FACTORS]}
    prog(0.6, f"tuning the SVR: {len(C_GRID) * len(EPSILON_GRID) * len(GAMMA_FACTORS)} settings × 5 folds "
              f"on {len(y)} coarse samples")
    search = GridSearchCV(pipe, grid, cv=GroupKFold(5), scoring="neg_root_mean_squared_error", n_jobs=1)
    search.fit(X, y.astype(np.float64), groups=cells)
    best = search.best_params_
    tuned = dataclasses.replace(opts, svr_c=float(best["svr__C"]), svr_epsilon=float(best["svr__epsilon"]),
                                svr_gamma=float(best["svr__gamma"]))
    prog(1.0, "SVR tuned")
    return tuned, {"C": tuned.svr_c, "epsilon": tuned.svr_epsilon, "gamma": tuned.svr_gamma,
                   "cv_rmse": float(-search.best_score_), "samples": int(len(y))}


def predict(model: RegressionModel, scene: Scene, output_path: str, progress: Optional[Progress] = None,
            is_canceled: Optional[IsCanceled] = None, sd_path: Optional[str] = None) -> DownscaleResult:
    """Trend + ATPK residual on every fine pixel and date; writes the series, the kriging standard
    deviation (``sd_path``, default ``<output>_kriging_sd.tif``) and the run log with the fitted
    variograms."""
    return regression.predict(model, scene, output_path, progress, is_canceled, method=METHOD, sd_path=sd_path)


def downscale(scene: Scene, output_path: str, options: Optional[SvatarkOptions] = None,
              progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None,
              sd_path: Optional[str] = None) -> DownscaleResult:
    """:func:`fit` then :func:`predict` on the same scene (the Processing algorithm's path)."""
    t0 = time.time()
    model = fit(scene, options, progress_span(progress, 0.0, 0.3), is_canceled)
    result = predict(model, scene, output_path, progress_span(progress, 0.3, 1.0), is_canceled, sd_path)
    result.seconds = time.time() - t0
    return result


def station_bias(scene: Scene, stations: Sequence[Station], insitu_dates: Sequence, insitu: dict[str, np.ndarray]
                 ) -> dict[str, Any]:
    """Mean coarse-minus-station difference (m³/m³) over every station-date pair, the coarse value
    being that of the coarse cell holding the station (Jin et al. remove it before downscaling).

    Returns ``{"bias": float (NaN without pairs), "pairs": int, "stations": int}``.
    """
    g = scene.coarse
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst = osr.SpatialReference()
    dst.ImportFromWkt(g.crs_wkt)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(wgs84, dst)
    pos = {as_date(d): i for i, d in enumerate(insitu_dates)}
    diffs, used = [], set()
    for st in stations:
        if st.id not in insitu:
            continue
        x, y, _ = ct.TransformPoint(float(st.lon), float(st.lat))
        c, r = int(np.floor((x - g.x0) / g.dx)), int(np.floor((g.y0 - y) / g.dy))
        if not (0 <= c < g.width and 0 <= r < g.height):
            continue
        obs = np.asarray(insitu[st.id], dtype=np.float64)
        for t, d in enumerate(scene.dates):
            i = pos.get(as_date(d))
            if i is None:
                continue
            v = float(scene.coarse_sm(t)[r * g.width + c])
            if np.isfinite(v) and np.isfinite(obs[i]):
                diffs.append(v - obs[i])
                used.add(st.id)
    return {"bias": float(np.mean(diffs)) if diffs else float("nan"), "pairs": len(diffs), "stations": len(used)}


__all__ = ["METHOD", "SvatarkOptions", "downscale", "fit", "predict", "station_bias", "tune"]
