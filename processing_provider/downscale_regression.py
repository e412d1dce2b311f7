"""Downscale (regression trend + residual correction)."""
from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..core.methods import regression
from ..core.methods.residual import RESIDUAL_LABELS, RESIDUALS
from ..core.methods.trend import REGRESSOR_LABELS, REGRESSORS
from ..core.inputs.scene import Scene
from . import layer_params as lp
from . import station_params as sp
from .base import CoreFeedback, SmAlgorithm, core_errors, steps
from .output_layers import load_on_completion
from .scoring import score_and_report


class DownscaleRegression(SmAlgorithm):
    NAME = "downscale_regression"
    DISPLAY_NAME = "Downscale (regression + residual correction)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    REQUIRED_PACKAGES = ("sklearn",)
    HELP = (
        "Downscales a coarse soil-moisture time series to the grid of fine covariates.<br>"
        "<b>Trend</b>: a regressor is fitted on the coarse grid — coarse soil moisture against the covariates "
        "averaged over each coarse cell (land cover: majority) and the day of year — optionally one model per "
        "land-cover class, and applied to every fine pixel and date.<br>"
        "<b>Do no harm</b>: the trend is scaled by its skill in explaining the coarse field out of sample "
        "(cross-validation on blocks of coarse cells; 0 = the covariates explain nothing beyond what neighbouring "
        "cells already tell, and the map becomes a smooth interpolation of the coarse cells).<br>"
        "<b>Residual</b>: the coarse soil moisture minus the mean fine trend in each cell is interpolated "
        "(bilinear with refinement passes, point kriging, or area-to-point kriging) and added back, so the fine "
        "pixels of a coarse cell average back to its value (the log reports this conservation per date). Kriged "
        "residuals also give a kriging standard deviation per date.<br>"
        "Output: a float32 GeoTIFF, one band per date (band description = date), styled, with the dates set "
        "for the temporal controller, and a JSON run log beside it. With stations and an in-situ table, "
        "N, R, ubRMSE, bias and RMSE of the downscaled and the coarse product are computed at each station "
        "(ubRMSE = sqrt(RMSE² − bias²))."
    )

    REGRESSOR = "REGRESSOR"
    PER_CLASS = "PER_CLASS"
    SVR_C = "SVR_C"
    SVR_EPSILON = "SVR_EPSILON"
    N_ESTIMATORS = "N_ESTIMATORS"
    SEED = "SEED"
    RESIDUAL_ITERATIONS = "RESIDUAL_ITERATIONS"
    RESIDUAL = "RESIDUAL"
    KRIGING_NEIGHBOURS = "KRIGING_NEIGHBOURS"
    WEIGHT_TREND = "WEIGHT_TREND"
    OUTPUT = "OUTPUT"
    KRIGING_SD = "KRIGING_SD"
    RUN_LOG = "RUN_LOG"
    #: Residual model of this algorithm by default (index into RESIDUALS).
    DEFAULT_RESIDUAL = "auto"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        self.add_param(QgsProcessingParameterEnum(self.REGRESSOR, self.tr("Regressor"),
                                                  [REGRESSOR_LABELS[r] for r in REGRESSORS], defaultValue=0),
                       "Support-vector regression with an RBF kernel (as in Jin et al., SVATARK), a random forest, "
                       "or histogram gradient boosting.")
        self.add_param(QgsProcessingParameterBoolean(self.PER_CLASS, self.tr("One model per land-cover class"), False),
                       "Fit one trend per land-cover class (classes with fewer than 30 coarse samples use the global "
                       "model). Needs a land-cover layer.")
        self.add_param(QgsProcessingParameterNumber(self.SVR_C, self.tr("SVR: C"), QgsProcessingParameterNumber.Double,
                                                    1.0, minValue=1e-4),
                       "Regularisation of the SVR: larger C fits the coarse samples more closely.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.SVR_EPSILON, self.tr("SVR: epsilon (m³/m³)"),
                                                    QgsProcessingParameterNumber.Double, 0.01, minValue=0.0),
                       "Errors smaller than this are not penalised; larger values give fewer support vectors "
                       "(faster prediction).", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.N_ESTIMATORS, self.tr("Trees / boosting iterations"),
                                                    QgsProcessingParameterNumber.Integer, 200, minValue=10),
                       "Number of trees of the random forest, or iterations of gradient boosting.", advanced=True)
        add_residual_params(self, self.DEFAULT_RESIDUAL)
        self.add_param(QgsProcessingParameterNumber(self.RESIDUAL_ITERATIONS, self.tr("Residual refinement passes"),
                                                    QgsProcessingParameterNumber.Integer, 3, minValue=0, maxValue=20),
                       "Each pass adjusts the coarse residual field so that, after bilinear interpolation, the fine "
                       "pixels of every coarse cell average back to its value more closely (each pass roughly halves "
                       "the difference). 0 = plain bilinear residual. Bilinear residual only.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"),
                                                    QgsProcessingParameterNumber.Integer, 42),
                       "Seed of the random forest / boosting, for reproducible runs.", advanced=True)
        sp.add_station_params(self)
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Downscaled soil moisture")),
                       "GeoTIFF, one band per date (m³/m³).")
        add_kriging_sd_output(self)
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        opts = regression.RegressionOptions(
            regressor=REGRESSORS[self.parameterAsEnum(parameters, self.REGRESSOR, context)],
            per_class=self.parameterAsBoolean(parameters, self.PER_CLASS, context),
            svr_c=self.parameterAsDouble(parameters, self.SVR_C, context),
            svr_epsilon=self.parameterAsDouble(parameters, self.SVR_EPSILON, context),
            n_estimators=self.parameterAsInt(parameters, self.N_ESTIMATORS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            residual_iterations=self.parameterAsInt(parameters, self.RESIDUAL_ITERATIONS, context),
            **residual_options(self, parameters, context),
        )
        return run_trend_residual(self, parameters, context, feedback, opts, regression.downscale)


def run_trend_residual(alg, parameters, context, feedback, opts, downscale, prepare=None) -> dict:
    """The phases every trend → residual algorithm shares: check inputs (then ``prepare(scene, opts,
    feedback)``, e.g. a bias correction), downscale with ``downscale(scene, out, opts, progress,
    is_canceled, sd_path)``, report, and score at the stations when given."""
    out_path = alg.parameterAsOutputLayer(parameters, alg.OUTPUT, context)
    if not out_path.lower().endswith((".tif", ".tiff")):
        out_path = os.path.splitext(out_path)[0] + ".tif"
    scoring = sp.wants_scoring(alg, parameters, context)
    labels = [alg.tr("Checking inputs"), alg.tr("Downscaling")] + ([alg.tr("Scoring at stations")] if scoring else [])
    results = {}
    with core_errors():
        for i, fb in steps(feedback, labels):
            if i == 0:
                scene = open_scene(alg, parameters, context, fb)
                lp.check_room(out_path, scene.fine.width, scene.fine.height, len(scene.dates),
                              what=alg.tr("Downscaled soil moisture"))
                if prepare is not None:
                    prepare(scene, opts, fb)
            elif i == 1:
                cf = CoreFeedback(fb)
                res = downscale(scene, out_path, opts, cf.progress, cf.is_canceled,
                                kriging_sd_path(alg, parameters, context, out_path))
                report_run(alg, fb, res)
                results.update(run_outputs(alg, context, res, out_path))
            else:
                results.update(score_and_report(alg, parameters, context, fb,
                                                {"downscaled": scene_refs_of(out_path, res.dates),
                                                 "coarse": scene.sm_bands}, coarse="coarse"))
    return results


def scene_refs_of(path: str, dates):
    from ..core.raster.align import BandRef
    return [BandRef(path, i + 1, os.path.basename(path), d) for i, d in enumerate(dates)]


def open_scene(alg, parameters, context, feedback) -> Scene:
    """The scene of the shared parameters, described in the log."""
    scene = Scene(lp.scene_spec(alg, parameters, context))
    d = scene.describe()
    feedback.pushInfo(alg.tr(f"{len(scene.dates)} dates {d['dates'][0]} … {d['dates'][-1]}; fine grid "
                             f"{scene.fine.width}×{scene.fine.height} px of {scene.fine.dx:g} in {d['crs']}; "
                             f"coarse grid {scene.coarse.width}×{scene.coarse.height} cells of {scene.coarse.dx:g}"))
    feedback.pushInfo(alg.tr("Covariates: " + ", ".join(f"{k} ← {v}" for k, v in d["covariates"].items())))
    return scene


def add_residual_params(alg, default_residual: str) -> None:
    """Residual model, kriging neighbours and the do-no-harm trend weighting (regression family)."""
    alg.add_param(QgsProcessingParameterEnum(alg.RESIDUAL, alg.tr("Residual model"),
                                             [RESIDUAL_LABELS[r] for r in RESIDUALS],
                                             defaultValue=RESIDUALS.index(default_residual)),
                  "How the coarse residual (coarse soil moisture − mean fine trend per cell) is spread onto the fine "
                  "grid. <i>Chosen one scale up</i> (default) tries uniform, bilinear and area-to-point kriging on 2×2 "
                  "blocks of coarse cells spread back onto the cells, and keeps the one that best reproduces the cells' "
                  "own series (uniform unless interpolation clearly helps). Or: uniform per cell, bilinear between "
                  "cell centres (+ refinement passes; SVRB), ordinary kriging from the cell "
                  "centres (SVRK), or area-to-point kriging with a variogram deconvolved to point support (ATPK, as in "
                  "SVATARK): the fine pixels of each cell average back to its value exactly, and a kriging standard "
                  "deviation is written per date.")
    add_kriging_params(alg)


def add_kriging_params(alg) -> None:
    """Kriging neighbours and the do-no-harm trend weighting (advanced)."""
    alg.add_param(QgsProcessingParameterNumber(alg.KRIGING_NEIGHBOURS, alg.tr("Kriging: neighbouring coarse cells"),
                                               QgsProcessingParameterNumber.Integer, 25, minValue=3, maxValue=100),
                  "Coarse cells used to krige each cell's fine pixels (Jin et al.: 25). Kriged residuals only.",
                  advanced=True)
    alg.add_param(QgsProcessingParameterBoolean(alg.WEIGHT_TREND, alg.tr("Weight the trend by its cross-validated skill"),
                                                True),
                  "Do no harm: the fine trend enters only as far as it explains the coarse field out of sample "
                  "(cross-validation on blocks of coarse cells, weight 0…1 in the log). Untick to add the full trend "
                  "(classic regression kriging), which can be worse than bilinear interpolation when the covariates "
                  "explain little.", advanced=True)


def add_kriging_sd_output(alg) -> None:
    alg.add_param(QgsProcessingParameterRasterDestination(alg.KRIGING_SD, alg.tr("Kriging standard deviation"),
                                                          optional=True),
                  "One band per date (m³/m³): the kriging standard deviation of the residual at each fine pixel — the "
                  "uncertainty band of a kriged residual (not of the trend). Written beside the output when not given; "
                  "none for the bilinear residual.")


def residual_options(alg, parameters, context) -> dict:
    """Options of :func:`add_residual_params` / :func:`add_kriging_params` as dataclass fields."""
    out = {"kriging_neighbours": alg.parameterAsInt(parameters, alg.KRIGING_NEIGHBOURS, context),
           "shrink_trend": alg.parameterAsBoolean(parameters, alg.WEIGHT_TREND, context)}
    if alg.parameterDefinition(DownscaleRegression.RESIDUAL) is not None:
        out["residual"] = RESIDUALS[alg.parameterAsEnum(parameters, DownscaleRegression.RESIDUAL, context)]
    return out


def report_run(alg, feedback, res) -> None:
    """Trend CV, trend weight, variograms and conservation of a regression-family run, in the log."""
    t = res.training
    tu = t.get("svr_tuning", {})
    if "C" in tu:
        feedback.pushInfo(alg.tr(f"SVR tuned: C = {tu['C']:g}, ε = {tu['epsilon']:g}, γ = {tu['gamma']:.3g} "
                                 f"(grouped CV RMSE {tu['cv_rmse']:.4f} m³/m³)"))
    if "cv_r" in t:
        feedback.pushInfo(alg.tr(f"Trend on {t['n_samples']} coarse samples: 5-fold CV R = {t['cv_r']:.3f}, "
                                 f"RMSE = {t['cv_rmse']:.4f} m³/m³"))
    if "cv_rmse_interpolation" in t:
        feedback.pushInfo(alg.tr(f"Trend weight {res.extra['trend_weight']:.2f}: held-out coarse cells interpolated from "
                                 f"their neighbours miss by {t['cv_rmse_interpolation']:.4f} m³/m³ (RMSE), with the full "
                                 f"trend {t['cv_rmse_trend']:.4f}, with the weighted trend {t['cv_rmse_weighted']:.4f}"))
    elif "note" in t:
        feedback.pushInfo(alg.tr(f"Trend weight 1: {t['note']}"))
    vg = res.extra.get("residual", {}).get("variogram")
    if vg:
        pm = vg["point_model"]
        feedback.pushInfo(alg.tr(f"Residual variogram (point support): {pm['model']}, sill {pm['sill']:.3g} (m³/m³)², "
                                 f"range {pm['range'] / 1000:.1f} km"))
    for day, c in zip(res.dates, res.conservation):
        feedback.pushInfo(alg.tr(f"Conservation {day}: mean |fine mean − coarse| = {c['mean_abs_diff']:.4f}, "
                                 f"max = {c['max_abs_diff']:.4f} m³/m³ over {c['cells']} cells"))


def kriging_sd_path(alg, parameters, context, out_path: str) -> str:
    """Where the kriging SD goes: the user's destination, else beside the output."""
    wanted = alg.parameterAsOutputLayer(parameters, alg.KRIGING_SD, context) if parameters.get(alg.KRIGING_SD) else ""
    if not wanted:
        return os.path.splitext(out_path)[0] + "_kriging_sd.tif"
    return wanted if wanted.lower().endswith((".tif", ".tiff")) else os.path.splitext(wanted)[0] + ".tif"


def run_outputs(alg, context, res, out_path: str) -> dict:
    """Processing outputs of a regression-family run, loaded with their dates when asked."""
    out = {alg.OUTPUT: out_path, alg.RUN_LOG: res.log_path}
    load_on_completion(context, out_path, res.dates, os.path.splitext(out_path)[0] + ".qml")
    sd = res.extra.get("kriging_sd")
    if sd:
        out[alg.KRIGING_SD] = sd
        load_on_completion(context, sd, res.dates, os.path.splitext(sd)[0] + ".qml")
    return out
