"""Downscale with SVATARK (Jin et al.): SVR per stratum + area-to-point kriging of the residual."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..core.methods import svatark
from . import layer_params as lp
from . import station_params as sp
from .base import SmAlgorithm
from .downscale_regression import add_kriging_params, add_kriging_sd_output, residual_options, run_trend_residual


class DownscaleSvatark(SmAlgorithm):
    NAME = "downscale_svatark"
    DISPLAY_NAME = "Downscale with SVATARK (SVR + area-to-point kriging)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    REQUIRED_PACKAGES = ("sklearn", "scipy")
    HELP = (
        "Support vector area-to-area regression kriging (Jin et al.).<br>"
        "<b>Trend</b>: an ε-SVR with an RBF kernel fitted on the coarse grid — coarse soil moisture against the "
        "covariates averaged over each coarse cell and the day of year — one per land-cover class when a land-cover "
        "(or any class) layer is given; classes with fewer than 30 coarse samples use the global model. C, ε and γ "
        "can be tuned by cross-validation grouped by coarse cell.<br>"
        "<b>Residual</b>: area-to-point kriging of the coarse residual with the 25 nearest cells; its point-support "
        "variogram is deconvolved from the areal one (Goovaerts 2008). The fine pixels of every coarse cell average "
        "back to its value exactly, and a kriging standard deviation is written per date.<br>"
        "<b>Do no harm</b>: the trend is weighted by its cross-validated skill on the coarse field, so uninformative "
        "covariates leave a smooth, coherent interpolation of the coarse cells.<br>"
        "Outputs: the downscaled series, the kriging standard deviation per date, and a JSON run log with the "
        "fitted variograms (areal, deconvolved point model, sill per date). With stations and an in-situ table, "
        "both products are scored; ticking the bias correction removes the mean coarse-minus-station difference "
        "first, as in the paper."
    )

    PER_CLASS = "PER_CLASS"
    TUNE_SVR = "TUNE_SVR"
    SVR_C = "SVR_C"
    SVR_EPSILON = "SVR_EPSILON"
    KRIGING_NEIGHBOURS = "KRIGING_NEIGHBOURS"
    WEIGHT_TREND = "WEIGHT_TREND"
    BIAS_CORRECTION = "BIAS_CORRECTION"
    OUTPUT = "OUTPUT"
    KRIGING_SD = "KRIGING_SD"
    RUN_LOG = "RUN_LOG"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        self.add_param(QgsProcessingParameterBoolean(self.PER_CLASS, self.tr("One SVR per land-cover class"), True),
                       "Stratify the trend by the land-cover layer (any class raster given as land cover). Without "
                       "such a layer one global SVR is fitted.")
        self.add_param(QgsProcessingParameterBoolean(self.TUNE_SVR, self.tr("Tune C, ε and γ by cross-validation"),
                                                     False),
                       "Grid search of the SVR's C, ε and RBF width γ, 5-fold cross-validation grouped by coarse cell "
                       "(on at most 3 000 coarse samples). Slower; the chosen values are in the run log.")
        self.add_param(QgsProcessingParameterNumber(self.SVR_C, self.tr("SVR: C"), QgsProcessingParameterNumber.Double,
                                                    1.0, minValue=1e-4),
                       "Regularisation of the SVR when not tuned: larger C fits the coarse samples more closely.",
                       advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.SVR_EPSILON, self.tr("SVR: epsilon (m³/m³)"),
                                                    QgsProcessingParameterNumber.Double, 0.01, minValue=0.0),
                       "Errors smaller than this are not penalised (when not tuned).", advanced=True)
        add_kriging_params(self)
        sp.add_station_params(self)
        self.add_param(QgsProcessingParameterBoolean(self.BIAS_CORRECTION,
                                                     self.tr("Remove the coarse product's bias against the stations"),
                                                     False),
                       "Subtract the mean coarse-minus-station difference (over every station and date with both "
                       "values) from the coarse series before downscaling (Jin et al.). Needs stations and an in-situ "
                       "table.")
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Downscaled soil moisture")),
                       "GeoTIFF, one band per date (m³/m³).")
        add_kriging_sd_output(self)
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if ok and self.parameterAsBoolean(parameters, self.BIAS_CORRECTION, context) \
                and not sp.wants_scoring(self, parameters, context):
            return False, self.tr("The bias correction needs stations and an in-situ table. Fix: give both, or untick "
                                  "the bias correction.")
        return ok, message

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        opts = svatark.SvatarkOptions(
            per_class=self.parameterAsBoolean(parameters, self.PER_CLASS, context),
            tune_svr=self.parameterAsBoolean(parameters, self.TUNE_SVR, context),
            svr_c=self.parameterAsDouble(parameters, self.SVR_C, context),
            svr_epsilon=self.parameterAsDouble(parameters, self.SVR_EPSILON, context),
            **residual_options(self, parameters, context),
        )
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
