"""Downscale with an ensemble (bundled or trained by the user), Poehls et al."""
from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingOutputFile,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
)

from ..core.inputs.scene import Scene
from . import layer_params as lp
from . import station_params as sp
from .base import CoreFeedback, SmAlgorithm, core_errors, steps
from .model_store import BUNDLED_DIR, ensemble_folders, find_ensemble
from .output_layers import load_on_completion
from .scoring import score_and_report


class DownscaleEnsemble(SmAlgorithm):
    NAME = "downscale_ensemble"
    DISPLAY_NAME = "Downscale with an ensemble (in-situ trained)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    REQUIRED_PACKAGES = ("onnx", "onnxruntime")
    HELP = (
        "Runs an ensemble of simple models trained on in-situ soil moisture (Poehls et al.) on your layers: "
        "every fine pixel, every date. The ensemble's model card says which inputs it needs (e.g. coarse soil "
        "moisture, the DEM's multi-scale TPI, latitude) and in which units; the layers are mapped to them by "
        "role, and a missing input, wrong units, or a model file whose hash does not match its card is "
        "refused.<br>Outputs, one band per date: the members' mean (m³/m³), their spread (standard deviation), "
        "the half-width of the calibrated interval (mean ± half-width held the card's stated share of held-out "
        "station values in cross-validation) and a mask of pixels whose inputs — or whose coarse cell's level — lie "
        "outside the training domain (1 = outside: treat with care). "
        "<i>Automatic</i> (the default) picks the richest bundled tier your layers satisfy and says which: "
        "coarse soil moisture + DEM; + NDVI; + Sentinel-1 backscatter, field capacity and land cover. "
        "Bundled ensembles live in the plugin's <i>models</i> folder; ensembles you train are saved in your "
        "QGIS profile and listed here too."
    )
    AUTO = "Automatic: the richest bundled tier your layers satisfy"

    MODEL = "MODEL"
    MODEL_FOLDER = "MODEL_FOLDER"
    OUTPUT = "OUTPUT"
    SPREAD = "SPREAD"
    DOMAIN_MASK = "DOMAIN_MASK"
    INTERVAL = "INTERVAL"
    ANCHOR = "ANCHOR_TO_COARSE"
    RUN_LOG = "RUN_LOG"

    def initAlgorithm(self, config=None):  # noqa: N802
        self._names = [os.path.basename(f) for f in ensemble_folders()]
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        self.add_param(QgsProcessingParameterEnum(self.MODEL, self.tr("Ensemble"), [self.tr(self.AUTO), *self._names],
                                                  defaultValue=0, optional=True),
                       "Automatic (default): the richest bundled tier your layers satisfy, named in the log. Or a "
                       "bundled or saved ensemble. Its card (inputs, training data, scores) is in the run log and "
                       "the dock's model list.")
        self.add_param(QgsProcessingParameterFile(self.MODEL_FOLDER, self.tr("Ensemble folder (overrides the list)"),
                                                  QgsProcessingParameterFile.Folder, optional=True),
                       "A folder of ONNX members written by this plugin (e.g. shared by a colleague).", advanced=True)
        sp.add_station_params(self)
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Downscaled soil moisture (ensemble mean)")),
                       "GeoTIFF, one band per date (m³/m³).")
        self.add_param(QgsProcessingParameterRasterDestination(self.SPREAD, self.tr("Spread of the members (std)"),
                                                               optional=True),
                       "Standard deviation of the members' estimates (m³/m³): their disagreement, not a calibrated error.")
        self.add_param(QgsProcessingParameterRasterDestination(self.DOMAIN_MASK, self.tr("Outside the training domain"),
                                                               optional=True),
                       "1 where an input lies outside the range seen in training, or where the coarse cell's mean "
                       "over the dates lies outside the 5–95 % range of the training stations' mean coarse soil "
                       "moisture; 0 inside.")
        self.add_param(QgsProcessingParameterRasterDestination(self.INTERVAL, self.tr("Interval half-width (calibrated)"),
                                                               optional=True),
                       "Half-width (m³/m³) of the interval mean ± half-width calibrated on the cross-validation "
                       "residuals; the card states the level and the coverage measured at held-out stations. "
                       "Written next to the output when not given, if the ensemble has a calibration.")
        self.add_param(QgsProcessingParameterBoolean(self.ANCHOR, self.tr("Keep the coarse product's level"), False),
                       "Shift the ensemble per coarse cell and season so that its cell mean over the season's dates "
                       "equals the coarse product's: the ensemble's pattern and dynamics, the product's level. Use it "
                       "where your region is unlike the training stations (e.g. much wetter); costs a second pass.",
                       advanced=True)
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def _folder(self, parameters, context, scene, feedback) -> str:
        given = self.parameterAsFile(parameters, self.MODEL_FOLDER, context)
        if given:
            return given
        names = [os.path.basename(f) for f in ensemble_folders()]
        i = self.parameterAsEnum(parameters, self.MODEL, context)
        if i == 0:
            from ..core.learn.model_folder import list_ensembles
            from ..core.methods.insitu_ensemble.tiers import pick_tier

            choice = pick_tier(list_ensembles([BUNDLED_DIR]), scene)
            feedback.pushInfo(self.tr(choice.message()))
            return choice.folder
        if not names or i - 1 >= len(names):
            raise QgsProcessingException(self.tr("No ensemble is installed. Fix: choose an ensemble folder."))
        return find_ensemble(names[i - 1])

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.learn.model_folder import Ensemble, EnsembleError
        from ..core.methods.insitu_ensemble.apply import EnsembleOutputs, predict

        with core_errors():
            scene = Scene(lp.scene_spec(self, parameters, context))
            folder = self._folder(parameters, context, scene, feedback)
        try:
            ensemble = Ensemble.load(folder)
        except EnsembleError as e:
            raise QgsProcessingException(self.tr(f"Ensemble '{os.path.basename(folder)}' refused: {e}")) from None
        out = _tif(self.parameterAsOutputLayer(parameters, self.OUTPUT, context))
        spread = self.parameterAsOutputLayer(parameters, self.SPREAD, context) if parameters.get(self.SPREAD) else None
        mask = self.parameterAsOutputLayer(parameters, self.DOMAIN_MASK, context) if parameters.get(self.DOMAIN_MASK) else None
        interval = self.parameterAsOutputLayer(parameters, self.INTERVAL, context) if parameters.get(self.INTERVAL) else None
        base = os.path.splitext(out)[0]
        calibrated = "uncertainty" in ensemble.card
        outputs = EnsembleOutputs(out, _tif(spread) if spread else base + "_spread.tif",
                                  _tif(mask) if mask else base + "_outside_domain.tif",
                                  (_tif(interval) if interval else base + "_interval.tif") if calibrated else None)
        anchor = self.parameterAsBoolean(parameters, self.ANCHOR, context)
        scoring = sp.wants_scoring(self, parameters, context)
        labels = [self.tr("Checking inputs"), self.tr("Predicting")] + ([self.tr("Scoring at stations")] if scoring else [])
        results = {}
        with core_errors():
            for i, fb in steps(feedback, labels):
                if i == 0:
                    n_rasters = 4 if outputs.interval else 3
                    lp.check_room(outputs.mean, scene.fine.width, scene.fine.height, len(scene.dates),
                                  rasters=n_rasters, what=self.tr("Ensemble mean, spread, interval and domain mask"))
                    card = ensemble.card
                    fb.pushInfo(self.tr(f"Ensemble '{ensemble.name}': {ensemble.n_members} members; inputs "
                                        + ", ".join(f"{x['name']} ({x['units']})" for x in card["inputs"])))
                    fb.pushInfo(self.tr(f"Trained on: {card.get('training_data', {}).get('description', '?')}"))
                    if calibrated:
                        u = card["uncertainty"]
                        cov = ", ".join(f"{k}: {v:.0%}" for k, v in u["coverage"].items())
                        fb.pushInfo(self.tr(f"Interval: {u['level']:.0%} (held at held-out stations: {cov})"))
                elif i == 1:
                    cf = CoreFeedback(fb)
                    res = predict(ensemble, scene, outputs, progress=cf.progress,
                                  is_canceled=cf.is_canceled, anchor_to_coarse=anchor)
                    lev = res.extra["coarse_level"]
                    if lev.get("cells_outside"):
                        lo, hi = lev["training_station_mean_range"]
                        fb.reportError(self.tr(
                            f"{lev['cells_outside_fraction']:.0%} of the coarse cells have a mean soil moisture over "
                            f"these dates outside the 5–95 % range of the training stations' ({lo:.3f}–{hi:.3f} m³/m³; scene "
                            f"mean {lev['scene_mean']:.3f}): they are flagged in the domain mask. Consider "
                            f"'Keep the coarse product's level'."), fatalError=False)
                    for d, dom in zip(res.dates, res.extra["domain"]):
                        if dom["outside_fraction"] > 0:
                            fb.pushInfo(self.tr(f"{d}: {dom['outside_fraction']:.1%} of pixels outside the training domain"))
                    results.update({self.OUTPUT: out, self.SPREAD: outputs.spread, self.DOMAIN_MASK: outputs.domain_mask,
                                    self.RUN_LOG: res.log_path})
                    if res.extra["interval"]:
                        results[self.INTERVAL] = res.extra["interval"]
                    for path in (out, outputs.spread, outputs.domain_mask, res.extra["interval"]):
                        if path:
                            load_on_completion(context, path, res.dates, os.path.splitext(path)[0] + ".qml")
                else:
                    from .downscale_regression import scene_refs_of
                    results.update(score_and_report(self, parameters, context, fb,
                                                    {"downscaled": scene_refs_of(out, res.dates),
                                                     "coarse": scene.sm_bands}, coarse="coarse"))
        return results


def _tif(path: str) -> str:
    return path if path.lower().endswith((".tif", ".tiff")) else os.path.splitext(path)[0] + ".tif"
