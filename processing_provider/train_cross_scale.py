"""Train the cross-scale network (Alemohammad et al.) and save it as a verified model folder."""
from __future__ import annotations

import os
import shutil
import tempfile

from qgis.core import QgsProcessingException, QgsProcessingOutputFolder

from ..core.errors import InputError
from ..core.inputs.scene import Scene
from . import cross_scale_params as cp
from . import layer_params as lp
from . import model_store
from . import spec_params as ps
from . import specs
from .base import CoreFeedback, SmAlgorithm, core_errors, steps
from .train_ensemble import _install

FINE_SOIL_MOISTURE = "FINE_SOIL_MOISTURE"


class TrainCrossScale(SmAlgorithm):
    NAME = "train_cross_scale"
    DISPLAY_NAME = "Train a cross-scale network"
    GROUP_ID = "models"
    GROUP = "Models"
    REQUIRED_PACKAGES = ("onnx", "onnxruntime")
    HELP = specs.TRAIN_CROSS_SCALE_HELP

    MODEL_NAME = "MODEL_NAME"
    MODEL_OUTPUT = "MODEL_OUTPUT"
    OVERWRITE = "OVERWRITE"
    REPORT = "REPORT"
    MODEL_FOLDER = "MODEL_FOLDER"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        ps.add_specs(self, specs.FINE_SOIL_MOISTURE_SPEC)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        cp.add_network_params(self)
        ps.add_specs(self, *specs.TRAIN_CROSS_SCALE_SPECS)
        self.addOutput(QgsProcessingOutputFolder(self.MODEL_FOLDER, self.tr("Model folder")))

    def _destination(self, parameters, context) -> tuple[str, str]:
        values = ps.spec_values(self, parameters, context, specs.TRAIN_CROSS_SCALE_SPECS)
        try:
            return specs.network_destination(values, model_store.cross_scale_models_dir())
        except InputError as e:
            raise QgsProcessingException(self.tr(str(e))) from None

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            dest, _ = self._destination(parameters, context)
        except QgsProcessingException as e:
            return False, str(e)
        try:
            specs.check_network_destination(dest, self.parameterAsBoolean(parameters, self.OVERWRITE, context))
        except InputError as e:
            return False, self.tr(str(e))
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.methods import cross_scale as cs

        dest, name = self._destination(parameters, context)
        overwrite = self.parameterAsBoolean(parameters, self.OVERWRITE, context)
        opts = cp.network_options(self, parameters, context)
        fine = lp.soil_moisture_refs(self, parameters, context, FINE_SOIL_MOISTURE) \
            if parameters.get(FINE_SOIL_MOISTURE) else []
        report_path = self.parameterAsFileOutput(parameters, self.REPORT, context) if parameters.get(self.REPORT) else ""
        labels = [self.tr("Checking inputs"), self.tr("Training and validating"), self.tr("Saving the network")]
        tmp = None
        results = {}
        try:
            with core_errors():
                for i, fb in steps(feedback, labels):
                    if i == 0:
                        scene = Scene(lp.scene_spec(self, parameters, context))
                        fb.pushInfo(self.tr(f"{len(scene.dates)} dates; coarse cells {scene.coarse.dx:g}; "
                                            + (f"finer product: {len(fine)} bands" if fine else "self-supervised")))
                    elif i == 1:
                        cf = CoreFeedback(fb)
                        model = cs.fit(scene, opts, fine, cf.progress, cf.is_canceled)
                        text = cs.training_report(model.training)
                        for line in text.splitlines():
                            fb.pushInfo(line)
                    else:
                        parent = os.path.dirname(dest)
                        os.makedirs(parent, exist_ok=True)
                        tmp = tempfile.mkdtemp(prefix=f".training-{name}-", dir=parent)
                        model.save(os.path.join(tmp, name), name=name)
                        dest = _install(os.path.join(tmp, name), dest, overwrite, tmp)
                        fb.pushInfo(self.tr(f"Saved in {dest}"))
                        if report_path:
                            specs.write_training_report(report_path, name, text)
                            results[self.REPORT] = report_path
                        results[self.MODEL_FOLDER] = dest
        finally:
            if tmp is not None and os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return results
