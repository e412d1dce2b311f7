"""Downscale with SVATARK (Jin et al.): SVR per stratum + area-to-point kriging of the residual."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
)

from ..core.methods import svatark
from . import layer_params as lp
from . import spec_params as ps
from . import specs
from . import station_params as sp
from .base import SmAlgorithm
from .downscale_regression import run_trend_residual


class DownscaleSvatark(SmAlgorithm):
    NAME = "downscale_svatark"
    DISPLAY_NAME = "Downscale with SVATARK (SVR + area-to-point kriging)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    REQUIRED_PACKAGES = ("sklearn", "scipy")
    HELP = specs.SVATARK_HELP

    PER_CLASS = "PER_CLASS"
    TUNE_SVR = "TUNE_SVR"
    SVR_C = "SVR_C"
    SVR_EPSILON = "SVR_EPSILON"
    KRIGING_NEIGHBOURS = "KRIGING_NEIGHBOURS"
    WEIGHT_TREND = "WEIGHT_TREND"
    WEIGHT_RESIDUAL = "WEIGHT_RESIDUAL"
    BIAS_CORRECTION = "BIAS_CORRECTION"
    OUTPUT = "OUTPUT"
    KRIGING_SD = "KRIGING_SD"
    RUN_LOG = "RUN_LOG"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        ps.add_specs(self, *specs.SVATARK_SPECS)
        sp.add_station_params(self)
        self.add_param(QgsProcessingParameterBoolean(self.BIAS_CORRECTION,
                                                     self.tr("Remove the coarse product's bias against the stations"),
                                                     False),
                       "Subtract the mean coarse-minus-station difference (over every station and date with both "
                       "values) from the coarse series before downscaling (Jin et al.). Needs stations and an in-situ "
                       "table.")
        ps.add_specs(self, specs.OUTPUT_SPEC, specs.KRIGING_SD_SPEC)
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if ok and self.parameterAsBoolean(parameters, self.BIAS_CORRECTION, context) \
                and not sp.wants_scoring(self, parameters, context):
            return False, self.tr("The bias correction needs stations and an in-situ table. Fix: give both, or untick "
                                  "the bias correction.")
        return ok, message

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        opts = specs.svatark_options(ps.spec_values(self, parameters, context, specs.SVATARK_SPECS))
        correct = self.parameterAsBoolean(parameters, self.BIAS_CORRECTION, context)

        def remove_bias(scene, options, fb):
            if not correct:
                return
            stations, dates, insitu = sp.read_station_inputs(self, parameters, context)
            bias = svatark.station_bias(scene, stations, dates, insitu)
            if not bias["pairs"]:
                raise QgsProcessingException(self.tr(
                    "No station has an in-situ value on a date of the coarse series inside its coarse cells, so the "
                    "bias cannot be estimated. Fix: check the station table's dates and ids, or untick the bias "
                    "correction."))
            options.coarse_offset = bias["bias"]
            fb.pushInfo(self.tr(f"Bias correction: mean coarse − station = {bias['bias']:+.4f} m³/m³ over "
                                f"{bias['pairs']} pairs at {bias['stations']} stations; removed from the coarse series"))

        return run_trend_residual(self, parameters, context, feedback, opts, svatark.downscale, remove_bias)
