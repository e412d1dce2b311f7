"""Downscale with a deep ensemble of DNN, CNN and LSTM networks trained over several resolutions."""
from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..core.methods import deep_ensemble as de
from . import layer_params as lp
from . import station_params as sp
from .base import SmAlgorithm
from .downscale_regression import add_kriging_sd_output, add_residual_params, residual_options, run_trend_residual
from .output_layers import load_on_completion


class DownscaleDeepEnsemble(SmAlgorithm):
    NAME = "downscale_deep_ensemble"
    DISPLAY_NAME = "Downscale with a deep ensemble (DNN + CNN + LSTM, multi-resolution)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    REQUIRED_PACKAGES = ("scipy", "onnx")
    HELP = (
        "An ensemble of three small networks trained here in numpy (after the deep-ensemble 9 km → 30 m scheme):<br>"
        "<b>DNN</b> — the covariates and day of year of the pixel; <b>CNN</b> — a k×k patch of the covariates around "
        "the pixel (default 5×5), run fully convolutionally over raster tiles; <b>LSTM</b> — the last N dates "
        "(default 8) of the dated covariates and of the soil moisture of the date before each.<br>"
        "<b>Several resolutions</b>: training samples on the coarse grid (target: the coarse product) and on grids "
        "that split each coarse cell into 2×2 and 4×4 (covariates averaged, target: cubic interpolation of the coarse "
        "product), so the learned relation holds across scales.<br>"
        "<b>Held-out cells</b> (blocks of coarse cells never trained on) stop the training early, score every member "
        "and the ensemble, weight the members and measure the permutation importance of every input (HTML report).<br>"
        "<b>Do no harm</b>: the ensemble is the trend of the regression family, weighted by its skill on the held-out "
        "cells; the coarse residual is spread by the chosen residual model so each cell's pixels average back to its "
        "value. A root-zone product can be given instead of the surface one.<br>"
        "Outputs: the series, the members' spread per date, the run log, the report, and optionally the fitted "
        "members as a verified model folder (ONNX graphs + state, SHA-256 in the card)."
    )

    USE_DNN = "USE_DNN"
    USE_CNN = "USE_CNN"
    USE_LSTM = "USE_LSTM"
    KERNEL = "KERNEL"
    SEQUENCE_LENGTH = "SEQUENCE_LENGTH"
    MAX_EPOCHS = "MAX_EPOCHS"
    WEIGHTING = "WEIGHTING"
    SEED = "SEED"
    RESIDUAL = "RESIDUAL"
    KRIGING_NEIGHBOURS = "KRIGING_NEIGHBOURS"
    WEIGHT_TREND = "WEIGHT_TREND"
    OUTPUT = "OUTPUT"
    SPREAD = "SPREAD"
    KRIGING_SD = "KRIGING_SD"
    MODEL_FOLDER = "MODEL_FOLDER"
    RUN_LOG = "RUN_LOG"
    REPORT = "REPORT"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        for name, label, text, on in (
                (self.USE_DNN, "Member: DNN (per pixel)", "the dense network on the pixel's inputs", True),
                (self.USE_CNN, "Member: CNN (covariate patch)", "the convolutional network (off by default: on the "
                 "Delaware sample its patch context put a wrong pattern inside the coarse cells, which no check on "
                 "the coarse product can see — turn it on where a finer truth shows it helps)", False),
                (self.USE_LSTM, "Member: LSTM (preceding dates)", "the LSTM over the last dates", True)):
            self.add_param(QgsProcessingParameterBoolean(name, self.tr(label), on),
                           f"Include {text} in the ensemble (at least one member).", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.KERNEL, self.tr("CNN patch size (pixels, odd)"),
                                                    QgsProcessingParameterNumber.Integer, 5, minValue=1, maxValue=15),
                       "Side of the covariate patch the CNN sees around each pixel; the fine grid is read with a halo "
                       "of half of it.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.SEQUENCE_LENGTH, self.tr("LSTM: dates per sequence"),
                                                    QgsProcessingParameterNumber.Integer, 8, minValue=1, maxValue=60),
                       "The date predicted and the ones before it that the LSTM reads.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.MAX_EPOCHS, self.tr("Maximum training epochs"),
                                                    QgsProcessingParameterNumber.Integer, 60, minValue=1, maxValue=2000),
                       "Upper bound of the training passes; training stops earlier when the early-stopping cells stop "
                       "improving for 8 epochs.", advanced=True)
        self.add_param(QgsProcessingParameterEnum(self.WEIGHTING, self.tr("Ensemble weights"),
                                                  [self.tr("By held-out skill (inverse MSE)"), self.tr("Plain mean")],
                                                  defaultValue=0),
                       "How the members are combined: weighted by their skill on the held-out coarse cells, or "
                       "averaged.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"),
                                                    QgsProcessingParameterNumber.Integer, 42),
                       "Seed of the held-out split, the sampling and the networks' initialisation.", advanced=True)
        add_residual_params(self, "auto")
        sp.add_station_params(self)
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Downscaled soil moisture")),
                       "GeoTIFF, one band per date (m³/m³).")
        spread = QgsProcessingParameterRasterDestination(self.SPREAD, self.tr("Members' spread"), optional=True)
        spread.setCreateByDefault(False)
        self.add_param(spread, "One band per date (m³/m³): the weighted standard deviation of the members' fine "
                               "predictions. Written beside the output when not given.")
        add_kriging_sd_output(self)
        folder = QgsProcessingParameterFolderDestination(self.MODEL_FOLDER, self.tr("Save the fitted members to"),
                                                         optional=True)
        folder.setCreateByDefault(False)
        self.add_param(folder, "Folder for the fitted members (ONNX graphs, the numpy state and a card with the "
                               "SHA-256 of every file), to apply them later. Not saved when empty.")
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))
        self.addOutput(QgsProcessingOutputFile(self.REPORT, self.tr("Run report (HTML)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        members = tuple(m for m, key in zip(de.MEMBERS, (self.USE_DNN, self.USE_CNN, self.USE_LSTM))
                        if self.parameterAsBoolean(parameters, key, context))
        kernel = self.parameterAsInt(parameters, self.KERNEL, context)
        from qgis.core import QgsProcessingException
        if not members:
            raise QgsProcessingException(self.tr("No ensemble member is ticked. Fix: tick at least one of DNN, CNN "
                                                 "and LSTM."))
        if kernel % 2 == 0:
            raise QgsProcessingException(self.tr(f"The CNN patch size must be odd (the pixel at its centre), not "
                                                 f"{kernel}. Fix: use {kernel + 1}."))
        opts = de.DeepEnsembleOptions(
            members=members, kernel=kernel,
            sequence_length=self.parameterAsInt(parameters, self.SEQUENCE_LENGTH, context),
            max_epochs=self.parameterAsInt(parameters, self.MAX_EPOCHS, context),
            weighting=de.WEIGHTINGS[self.parameterAsEnum(parameters, self.WEIGHTING, context)],
            seed=self.parameterAsInt(parameters, self.SEED, context),
            **residual_options(self, parameters, context))
        spread = self.parameterAsOutputLayer(parameters, self.SPREAD, context) if parameters.get(self.SPREAD) else ""
        if spread and not spread.lower().endswith((".tif", ".tiff")):
            spread = os.path.splitext(spread)[0] + ".tif"
        folder = self.parameterAsString(parameters, self.MODEL_FOLDER, context) if parameters.get(self.MODEL_FOLDER) \
            else ""
        ran = {}

        def downscale(scene, out, options, progress, is_canceled, sd_path):
            res = de.downscale(scene, out, options, progress, is_canceled, sd_path, spread or None, folder or None)
            _report(self, feedback, res)
            ran["res"] = res
            return res

        results = run_trend_residual(self, parameters, context, feedback, opts, downscale)
        res = ran["res"]
        results[self.SPREAD] = res.extra["spread"]
        results[self.REPORT] = res.extra["report"]
        load_on_completion(context, res.extra["spread"], res.dates, os.path.splitext(res.extra["spread"])[0] + ".qml")
        if folder:
            results[self.MODEL_FOLDER] = folder
        return results


def _report(alg, feedback, res) -> None:
    """Held-out scores of every member and the ensemble, and the weights, in the log."""
    t = res.training
    ct = t.get("coarse_trend_weight", {})
    if "trend_weight" in ct:
        feedback.pushInfo(alg.tr(f"Trend weight judged on the coarse samples: {ct['trend_weight']:.2f} (applied: the "
                                 f"one judged on the fine trend, below)"))
    levels = ", ".join(f"{lv['name']} ({lv['cell_size']:g}, {lv['training_samples']} samples)" for lv in t["levels"])
    feedback.pushInfo(alg.tr(f"Training resolutions: {levels}"))
    for name, s in t["held_out_scores"].items():
        w = t["members"].get(name, {}).get("weight")
        feedback.pushInfo(alg.tr(f"Held-out cells, {de.MEMBER_LABELS[name]}: R = {s['r']:.3f}, RMSE = {s['rmse']:.4f}, "
                                 f"bias = {s['bias']:+.4f} m³/m³" + (f", weight {w:.2f}" if w is not None else "")))
