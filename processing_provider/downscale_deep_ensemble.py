"""Downscale with a deep ensemble of DNN, CNN and LSTM networks trained over several resolutions."""
from __future__ import annotations

import os

from qgis.core import QgsProcessingOutputFile

from ..core.methods import deep_ensemble as de
from . import layer_params as lp
from . import spec_params as ps
from . import specs
from . import station_params as sp
from .base import SmAlgorithm, core_errors
from .downscale_regression import run_trend_residual
from .output_layers import load_on_completion


class DownscaleDeepEnsemble(SmAlgorithm):
    NAME = "downscale_deep_ensemble"
    DISPLAY_NAME = "Downscale with a deep ensemble (DNN + CNN + LSTM, multi-resolution)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    REQUIRED_PACKAGES = ("scipy", "onnx")
    HELP = specs.DEEP_ENSEMBLE_HELP

    USE_DNN = "USE_DNN"
    USE_CNN = "USE_CNN"
    USE_LSTM = "USE_LSTM"
    KERNEL = "KERNEL"
    SEQUENCE_LENGTH = "SEQUENCE_LENGTH"
    MAX_EPOCHS = "MAX_EPOCHS"
    WEIGHTING = "WEIGHTING"
    JUDGE_SPLITS = "JUDGE_SPLITS"
    SEED = "SEED"
    MODEL_IN = "MODEL_IN"
    RESIDUAL = "RESIDUAL"
    KRIGING_NEIGHBOURS = "KRIGING_NEIGHBOURS"
    WEIGHT_TREND = "WEIGHT_TREND"
    WEIGHT_RESIDUAL = "WEIGHT_RESIDUAL"
    OUTPUT = "OUTPUT"
    SPREAD = "SPREAD"
    KRIGING_SD = "KRIGING_SD"
    MODEL_OUT = "MODEL_OUT"
    RUN_LOG = "RUN_LOG"
    REPORT = "REPORT"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        ps.add_specs(self, *specs.deep_ensemble_specs())
        sp.add_station_params(self)
        ps.add_specs(self, *specs.DEEP_ENSEMBLE_OUTPUT_SPECS)
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))
        self.addOutput(QgsProcessingOutputFile(self.REPORT, self.tr("Run report (HTML)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        values = ps.spec_values(self, parameters, context, specs.deep_ensemble_specs())
        with core_errors():
            opts = specs.deep_ensemble_options(values)
        model_in = self.parameterAsFile(parameters, self.MODEL_IN, context)
        spread = self.parameterAsOutputLayer(parameters, self.SPREAD, context) if parameters.get(self.SPREAD) else ""
        if spread and not spread.lower().endswith((".tif", ".tiff")):
            spread = os.path.splitext(spread)[0] + ".tif"
        model_out = self.parameterAsString(parameters, self.MODEL_OUT, context) if parameters.get(self.MODEL_OUT) \
            else ""
        ran = {}

        def downscale(scene, out, options, progress, is_canceled, sd_path):
            saved = de.DeepEnsembleModel.load(model_in) if model_in else None
            res = de.downscale(scene, out, options, progress, is_canceled, sd_path, spread or None, model_out or None,
                               saved)
            for line in specs.deep_ensemble_lines(res.training):
                feedback.pushInfo(self.tr(line))
            ran["res"] = res
            return res

        results = run_trend_residual(self, parameters, context, feedback, opts, downscale)
        res = ran["res"]
        results[self.SPREAD] = res.extra["spread"]
        results[self.REPORT] = res.extra["report"]
        load_on_completion(context, res.extra["spread"], res.dates, os.path.splitext(res.extra["spread"])[0] + ".qml")
        if model_out:
            results[self.MODEL_OUT] = model_out
        return results
