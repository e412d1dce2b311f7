"""Train the cross-scale network (Alemohammad et al.) and save it as a verified model folder."""
from __future__ import annotations

import html
import os
import shutil
import tempfile

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFolder,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
)

from ..core.inputs.scene import Scene
from . import cross_scale_params as cp
from . import layer_params as lp
from . import model_store
from .base import TYPE_RASTER, CoreFeedback, SmAlgorithm, core_errors, steps
from .train_ensemble import _NAME_RE, _install

FINE_SOIL_MOISTURE = "FINE_SOIL_MOISTURE"


class TrainCrossScale(SmAlgorithm):
    NAME = "train_cross_scale"
    DISPLAY_NAME = "Train a cross-scale network"
    GROUP_ID = "models"
    GROUP = "Models"
    REQUIRED_PACKAGES = ("onnx", "onnxruntime")
    HELP = (
        "Trains the cross-scale neural network of Alemohammad et al. (2018) — one hidden layer of tanh units, "
        "several seeds — and saves it as a folder of ONNX members whose model cards record the scheme, the "
        "inputs, the scales, the training period, the hashes of every member and the held-out scores next to "
        "the baselines. <i>Downscale with the cross-scale network</i> applies it.<br>"
        "<b>With a finer product</b> of the same quantity (e.g. SMAP 36 km with SMAP enhanced 9 km) the network "
        "learns coarse → finer. <b>Without</b>, it is <i>self-supervised</i>: the coarse product averaged over "
        "ratio × ratio cells → the product itself.<br>"
        "Validation: 20 % of the target cells (all dates) are held out; the report scores the network (raw and "
        "coherent) against copying the coarse value, bilinear interpolation and a coherent bilinear: per-pixel "
        "R and ubRMSE over time, pooled RMSE, the correlation of the within-cell pattern with the truth, and the "
        "heterogeneity (CV of the fine pixels per coarse cell)."
    )

    MODEL_NAME = "MODEL_NAME"
    MODEL_OUTPUT = "MODEL_OUTPUT"
    OVERWRITE = "OVERWRITE"
    REPORT = "REPORT"
    MODEL_FOLDER = "MODEL_FOLDER"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        self.add_param(QgsProcessingParameterMultipleLayers(
            FINE_SOIL_MOISTURE, self.tr("Finer soil-moisture product (m³/m³), optional"), TYPE_RASTER, optional=True),
            "A finer product of the same quantity and dates (SMAP enhanced 9 km for SMAP 36 km, as in the paper), "
            "dated like the coarse one. Empty: self-supervised (the coarse product aggregated by the ratio).")
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        cp.add_network_params(self)
        self.add_param(QgsProcessingParameterString(self.MODEL_NAME, self.tr("Network name"), "cross_scale"),
                       "Saved as a folder of this name in the profile's soil_moisture_downscaling/cross_scale_models "
                       "(unless a model folder is given below); letters, digits, '_', '-' and '.'.")
        self.add_param(QgsProcessingParameterBoolean(self.OVERWRITE, self.tr("Replace a network of the same name"),
                                                     False),
                       "Without it, a folder already in use is refused. The old one is replaced only once the new one "
                       "is complete.")
        self.add_param(QgsProcessingParameterString(self.MODEL_OUTPUT, self.tr("Model folder (instead of the profile)"),
                                                    "", optional=True),
                       "A folder path to save the network in, e.g. to share it. Empty: the profile folder above.",
                       advanced=True)
        self.add_param(QgsProcessingParameterFileDestination(self.REPORT, self.tr("Training report"),
                                                             self.tr("HTML files (*.html);;Text files (*.txt)"),
                                                             optional=True),
                       "The held-out scores of the network and the baselines (a .txt name gives plain text).")
        self.addOutput(QgsProcessingOutputFolder(self.MODEL_FOLDER, self.tr("Model folder")))

    def _destination(self, parameters, context) -> tuple[str, str]:
        given = self.parameterAsString(parameters, self.MODEL_OUTPUT, context).strip()
        name = self.parameterAsString(parameters, self.MODEL_NAME, context).strip()
        if given:
            return os.path.abspath(given), os.path.basename(os.path.normpath(given))
        if not _NAME_RE.match(name):
            raise QgsProcessingException(self.tr(
                f"The network name '{name}' cannot be a folder name. Fix: use letters, digits, '_', '-' or '.'."))
        return os.path.join(model_store.cross_scale_models_dir(), name), name

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            dest, _ = self._destination(parameters, context)
        except QgsProcessingException as e:
            return False, str(e)
        if os.path.exists(dest) and not self.parameterAsBoolean(parameters, self.OVERWRITE, context):
            return False, self.tr(f"'{dest}' already exists. Fix: choose another name, or tick 'Replace a network "
                                  "of the same name'.")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.io.atomic import atomic_write_text
        from ..core.io.html_page import html_document
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
                            body = [f"<h1>{html.escape(name)}: cross-scale network</h1>",
                                    f"<pre>{html.escape(text)}</pre>"]
                            atomic_write_text(report_path, text + "\n" if report_path.lower().endswith(".txt")
                                              else html_document(f"{name}: training report", body))
                            results[self.REPORT] = report_path
                        results[self.MODEL_FOLDER] = dest
        finally:
            if tmp is not None and os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return results
