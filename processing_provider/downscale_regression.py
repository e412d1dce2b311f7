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
        "<b>Residual</b>: the coarse soil moisture minus the mean fine trend in each cell is interpolated "
        "bilinearly and added back, so the fine pixels of a coarse cell average back close to its value "
        "(the log reports this conservation per date).<br>"
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
    OUTPUT = "OUTPUT"
    RUN_LOG = "RUN_LOG"

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
        self.add_param(QgsProcessingParameterNumber(self.RESIDUAL_ITERATIONS, self.tr("Residual refinement passes"),
                                                    QgsProcessingParameterNumber.Integer, 3, minValue=0, maxValue=20),
                       "Each pass adjusts the coarse residual field so that, after bilinear interpolation, the fine "
                       "pixels of every coarse cell average back to its value more closely (each pass roughly halves "
                       "the difference). 0 = plain bilinear residual.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"),
                                                    QgsProcessingParameterNumber.Integer, 42),
                       "Seed of the random forest / boosting, for reproducible runs.", advanced=True)
        sp.add_station_params(self)
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Downscaled soil moisture")),
                       "GeoTIFF, one band per date (m³/m³).")
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        out_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if not out_path.lower().endswith((".tif", ".tiff")):
            out_path = os.path.splitext(out_path)[0] + ".tif"
        opts = regression.RegressionOptions(
            regressor=REGRESSORS[self.parameterAsEnum(parameters, self.REGRESSOR, context)],
            per_class=self.parameterAsBoolean(parameters, self.PER_CLASS, context),
            svr_c=self.parameterAsDouble(parameters, self.SVR_C, context),
            svr_epsilon=self.parameterAsDouble(parameters, self.SVR_EPSILON, context),
            n_estimators=self.parameterAsInt(parameters, self.N_ESTIMATORS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            residual_iterations=self.parameterAsInt(parameters, self.RESIDUAL_ITERATIONS, context),
        )
        scoring = sp.wants_scoring(self, parameters, context)
        labels = [self.tr("Checking inputs"), self.tr("Downscaling")] + ([self.tr("Scoring at stations")] if scoring else [])
        results = {}
        with core_errors():
            for i, fb in steps(feedback, labels):
                if i == 0:
                    spec = lp.scene_spec(self, parameters, context)
                    scene = Scene(spec)
                    lp.check_room(out_path, scene.fine.width, scene.fine.height, len(scene.dates),
                               what=self.tr("Downscaled soil moisture"))
                    d = scene.describe()
                    fb.pushInfo(self.tr(f"{len(scene.dates)} dates {d['dates'][0]} … {d['dates'][-1]}; fine grid "
                                        f"{scene.fine.width}×{scene.fine.height} px of {scene.fine.dx:g} in {d['crs']}; "
                                        f"coarse grid {scene.coarse.width}×{scene.coarse.height} cells of {scene.coarse.dx:g}"))
                    fb.pushInfo(self.tr("Covariates: " + ", ".join(f"{k} ← {v}" for k, v in d["covariates"].items())))
                elif i == 1:
                    cf = CoreFeedback(fb)
                    res = regression.downscale(scene, out_path, opts, cf.progress, cf.is_canceled)
                    t = res.training
                    if "cv_r" in t:
                        fb.pushInfo(self.tr(f"Trend on {t['n_samples']} coarse samples: 5-fold CV R = {t['cv_r']:.3f}, "
                                            f"RMSE = {t['cv_rmse']:.4f} m³/m³"))
                    for day, c in zip(res.dates, res.conservation):
                        fb.pushInfo(self.tr(f"Conservation {day}: mean |fine mean − coarse| = {c['mean_abs_diff']:.4f}, "
                                            f"max = {c['max_abs_diff']:.4f} m³/m³ over {c['cells']} cells"))
                    results[self.OUTPUT] = out_path
                    results[self.RUN_LOG] = res.log_path
                    load_on_completion(context, out_path, res.dates, os.path.splitext(out_path)[0] + ".qml")
                else:
                    results.update(score_and_report(self, parameters, context, fb,
                                                    {"downscaled": scene_refs_of(out_path, res.dates),
                                                     "coarse": scene.sm_bands}, coarse="coarse"))
        return results


def scene_refs_of(path: str, dates):
    from ..core.raster.align import BandRef
    return [BandRef(path, i + 1, os.path.basename(path), d) for i, d in enumerate(dates)]
