"""Downscale with the cross-scale network (Alemohammad et al.): a trained model, or self-supervised."""
from __future__ import annotations

import dataclasses
import os

from qgis.core import QgsProcessingOutputFile

from ..core.inputs.scene import Scene
from . import cross_scale_params as cp
from . import layer_params as lp
from . import spec_params as ps
from . import specs
from . import station_params as sp
from .base import CoreFeedback, SmAlgorithm, core_errors, steps
from .output_layers import load_on_completion
from .scoring import conservation_lines, score_downscaled, tif_path


class DownscaleCrossScale(SmAlgorithm):
    NAME = "downscale_cross_scale"
    DISPLAY_NAME = "Downscale with the cross-scale network (no stations needed)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    HELP = specs.CROSS_SCALE_HELP

    #: The dock lists ensembles for a MODEL_FOLDER; this method needs none (self-supervised without one), so the
    #: dock runs it self-supervised and a trained network is applied from the toolbox or qgis_process.
    DOCK_LISTS_MODELS = False
    MODEL_FOLDER = "MODEL_FOLDER"
    COHERENT = "COHERENT"
    OUTPUT = "OUTPUT"
    SPREAD = "SPREAD"
    RUN_LOG = "RUN_LOG"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        ps.add_specs(self, *specs.CROSS_SCALE_SPECS)
        cp.add_network_params(self, self_supervised_only=True)
        sp.add_station_params(self)
        ps.add_specs(self, *specs.CROSS_SCALE_OUTPUT_SPECS)
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if ok and self.parameterAsFile(parameters, self.MODEL_FOLDER, context):
            ok, message = self.require_packages(("onnx", "onnxruntime"))
        return ok, message

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.methods import cross_scale as cs

        out = tif_path(self.parameterAsOutputLayer(parameters, self.OUTPUT, context))
        spread = self.parameterAsOutputLayer(parameters, self.SPREAD, context) if parameters.get(self.SPREAD) else None
        outputs = cs.CrossScaleOutputs(out, tif_path(spread) if spread else None)
        folder = self.parameterAsFile(parameters, self.MODEL_FOLDER, context)
        coherent = ps.spec_values(self, parameters, context, specs.CROSS_SCALE_SPECS)[self.COHERENT]
        scoring = sp.wants_scoring(self, parameters, context)
        labels = [self.tr("Checking inputs"), self.tr("Training (self-supervised)" if not folder else "Loading the network"),
                  self.tr("Downscaling")] + ([self.tr("Scoring at stations")] if scoring else [])
        results = {}
        with core_errors():
            for i, fb in steps(feedback, labels):
                if i == 0:
                    model = cs.CrossScaleModel.load(folder) if folder else None
                    opts = cp.network_options(self, parameters, context, coherent=coherent)
                    ratio = model.ratio if model is not None else opts.ratio
                    spec = lp.scene_spec(self, parameters, context)
                    if spec.resolution is None:  # default: the product's cell ÷ the training ratio
                        first = Scene(spec).coarse
                        spec = dataclasses.replace(spec, resolution=cs.default_resolution(first.dx, ratio),
                                                   resolution_y=cs.default_resolution(first.dy, ratio))
                    scene = Scene(spec)
                    fb.pushInfo(self.tr(f"{len(scene.dates)} dates; coarse cells {scene.coarse.dx:g} × "
                                        f"{scene.coarse.dy:g}; output pixels {scene.fine.dx:g} × {scene.fine.dy:g} "
                                        f"({scene.fine.width}×{scene.fine.height})"))
                elif i == 1:
                    cf = CoreFeedback(fb)
                    if model is None:
                        model = cs.fit(scene, opts, (), cf.progress, cf.is_canceled)
                    for line in cs.training_report(model.training).splitlines() if "n_samples" in model.training \
                            else [f"Network from {folder}: inputs {', '.join(model.inputs)}"]:
                        fb.pushInfo(line)
                elif i == 2:
                    cf = CoreFeedback(fb)
                    res = cs.predict(model, scene, outputs, cf.progress, cf.is_canceled, coherent_output=coherent)
                    for line in conservation_lines(res.dates, res.conservation):
                        fb.pushInfo(line)
                    results.update({self.OUTPUT: out, self.SPREAD: res.extra["spread"], self.RUN_LOG: res.log_path})
                    load_on_completion(context, out, res.dates, os.path.splitext(out)[0] + ".qml")
                else:
                    results.update(score_downscaled(self, parameters, context, fb, out, res.dates, scene.sm_bands))
        return results
