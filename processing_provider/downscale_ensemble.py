"""Downscale with an ensemble (bundled or trained by the user), Poehls et al."""
from __future__ import annotations

import os

from qgis.core import QgsProcessingException, QgsProcessingOutputFile, QgsProcessingParameterEnum

from ..core.inputs.scene import Scene
from . import layer_params as lp
from . import spec_params as ps
from . import specs
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
    HELP = specs.ENSEMBLE_HELP
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
        ps.add_specs(self, *specs.ENSEMBLE_SPECS)
        sp.add_station_params(self)
        ps.add_specs(self, *specs.ENSEMBLE_OUTPUT_SPECS)
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
        from ..core.methods.insitu_ensemble.apply import (EnsembleOutputs, card_lines, coarse_level_warning,
                                                          domain_lines, predict)

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
        anchor = ps.spec_values(self, parameters, context, specs.ENSEMBLE_SPECS)[self.ANCHOR]
        scoring = sp.wants_scoring(self, parameters, context)
        labels = [self.tr("Checking inputs"), self.tr("Predicting")] + ([self.tr("Scoring at stations")] if scoring else [])
        results = {}
        with core_errors():
            for i, fb in steps(feedback, labels):
                if i == 0:
                    n_rasters = 4 if outputs.interval else 3
                    lp.check_room(outputs.mean, scene.fine.width, scene.fine.height, len(scene.dates),
                                  rasters=n_rasters, what=self.tr("Ensemble mean, spread, interval and domain mask"))
                    for line in card_lines(ensemble):
                        fb.pushInfo(self.tr(line))
                elif i == 1:
                    cf = CoreFeedback(fb)
                    res = predict(ensemble, scene, outputs, progress=cf.progress,
                                  is_canceled=cf.is_canceled, anchor_to_coarse=anchor)
                    warning = coarse_level_warning(res)
                    if warning:
                        fb.reportError(self.tr(warning), fatalError=False)
                    for line in domain_lines(res):
                        fb.pushInfo(self.tr(line))
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
