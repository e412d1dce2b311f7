"""Downscale with an ensemble (bundled or trained by the user), Poehls et al."""
from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterEnum,
)

from ..core.inputs.scene import Scene
from . import layer_params as lp
from . import spec_params as ps
from . import specs
from . import station_params as sp
from .base import CoreFeedback, SmAlgorithm, core_errors, steps
from .model_store import ensemble_folders, find_ensemble
from .output_layers import load_on_completion
from .scoring import score_and_report


class DownscaleEnsemble(SmAlgorithm):
    NAME = "downscale_ensemble"
    DISPLAY_NAME = "Downscale with an ensemble (in-situ trained)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    REQUIRED_PACKAGES = ("onnx", "onnxruntime")
    HELP = specs.ENSEMBLE_HELP

    MODEL = "MODEL"
    MODEL_FOLDER = "MODEL_FOLDER"
    OUTPUT = "OUTPUT"
    SPREAD = "SPREAD"
    DOMAIN_MASK = "DOMAIN_MASK"
    RUN_LOG = "RUN_LOG"

    def initAlgorithm(self, config=None):  # noqa: N802
        self._names = [os.path.basename(f) for f in ensemble_folders()]
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        self.add_param(QgsProcessingParameterEnum(self.MODEL, self.tr("Ensemble"), self._names or [""],
                                                  defaultValue=0, optional=True),
                       "A bundled or saved ensemble. Its card (inputs, training data, scores) is in the run log and "
                       "the dock's model list.")
        ps.add_specs(self, specs.ENSEMBLE_FOLDER_SPEC)
        sp.add_station_params(self)
        ps.add_specs(self, *specs.ENSEMBLE_OUTPUT_SPECS)
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def _folder(self, parameters, context) -> str:
        given = self.parameterAsFile(parameters, self.MODEL_FOLDER, context)
        if given:
            return given
        names = [os.path.basename(f) for f in ensemble_folders()]
        i = self.parameterAsEnum(parameters, self.MODEL, context)
        if not names or i >= len(names):
            raise QgsProcessingException(self.tr("No ensemble is installed. Fix: choose an ensemble folder."))
        return find_ensemble(names[i])

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.learn.model_folder import Ensemble, EnsembleError
        from ..core.methods.insitu_ensemble.apply import EnsembleOutputs, predict

        folder = self._folder(parameters, context)
        try:
            ensemble = Ensemble.load(folder, intra_op_threads=1)
        except EnsembleError as e:
            raise QgsProcessingException(self.tr(f"Ensemble '{os.path.basename(folder)}' refused: {e}")) from None
        out = _tif(self.parameterAsOutputLayer(parameters, self.OUTPUT, context))
        spread = self.parameterAsOutputLayer(parameters, self.SPREAD, context) if parameters.get(self.SPREAD) else None
        mask = self.parameterAsOutputLayer(parameters, self.DOMAIN_MASK, context) if parameters.get(self.DOMAIN_MASK) else None
        base = os.path.splitext(out)[0]
        outputs = EnsembleOutputs(out, _tif(spread) if spread else base + "_spread.tif",
                                  _tif(mask) if mask else base + "_outside_domain.tif")
        scoring = sp.wants_scoring(self, parameters, context)
        labels = [self.tr("Checking inputs"), self.tr("Predicting")] + ([self.tr("Scoring at stations")] if scoring else [])
        results = {}
        with core_errors():
            for i, fb in steps(feedback, labels):
                if i == 0:
                    scene = Scene(lp.scene_spec(self, parameters, context))
                    lp.check_room(outputs.mean, scene.fine.width, scene.fine.height, len(scene.dates), rasters=3,
                               what=self.tr("Ensemble mean, spread and domain mask"))
                    card = ensemble.card
                    fb.pushInfo(self.tr(f"Ensemble '{ensemble.name}': {ensemble.n_members} members; inputs "
                                        + ", ".join(f"{x['name']} ({x['units']})" for x in card["inputs"])))
                    fb.pushInfo(self.tr(f"Trained on: {card.get('training_data', {}).get('description', '?')}"))
                elif i == 1:
                    cf = CoreFeedback(fb)
                    res = predict(ensemble, scene, outputs, progress=cf.progress,
                                                  is_canceled=cf.is_canceled)
                    for d, dom in zip(res.dates, res.extra["domain"]):
                        if dom["outside_fraction"] > 0:
                            fb.pushInfo(self.tr(f"{d}: {dom['outside_fraction']:.1%} of pixels outside the training domain"))
                    results.update({self.OUTPUT: out, self.SPREAD: outputs.spread, self.DOMAIN_MASK: outputs.domain_mask,
                                    self.RUN_LOG: res.log_path})
                    for path in (out, outputs.spread, outputs.domain_mask):
                        load_on_completion(context, path, res.dates, os.path.splitext(path)[0] + ".qml")
                else:
                    from .downscale_regression import scene_refs_of
                    results.update(score_and_report(self, parameters, context, fb,
                                                    {"downscaled": scene_refs_of(out, res.dates),
                                                     "coarse": scene.sm_bands}, coarse="coarse"))
        return results


def _tif(path: str) -> str:
    return path if path.lower().endswith((".tif", ".tiff")) else os.path.splitext(path)[0] + ".tif"
