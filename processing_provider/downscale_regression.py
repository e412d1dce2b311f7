"""Downscale (regression trend + residual correction)."""
from __future__ import annotations

import os

from qgis.core import QgsProcessingOutputFile

from ..core.methods import regression
from ..core.methods.result import trend_residual_summary
from ..core.inputs.scene import Scene
from . import layer_params as lp
from . import spec_params as ps
from . import specs
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
    HELP = specs.REGRESSION_HELP

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
    WEIGHT_RESIDUAL = "WEIGHT_RESIDUAL"
    OUTPUT = "OUTPUT"
    KRIGING_SD = "KRIGING_SD"
    RUN_LOG = "RUN_LOG"
    #: Residual model of this algorithm by default (index into RESIDUALS).
    DEFAULT_RESIDUAL = "auto"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        ps.add_specs(self, *specs.REGRESSION_SPECS)
        sp.add_station_params(self)
        ps.add_specs(self, specs.OUTPUT_SPEC, specs.KRIGING_SD_SPEC)
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        opts = specs.regression_options(ps.spec_values(self, parameters, context, specs.REGRESSION_SPECS))
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
    for line in scene.summary_lines():
        feedback.pushInfo(alg.tr(line))
    return scene


def report_run(alg, feedback, res) -> None:
    """Trend CV, trend weight, variograms and conservation of a regression-family run, in the log."""
    for line in trend_residual_summary(res):
        feedback.pushInfo(alg.tr(line))


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
