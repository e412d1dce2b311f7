"""Downscale by stacking boosted trees per terrain zone (the stacking paper on Anhui)."""
from __future__ import annotations

import os
import tempfile

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
)

from ..core.inputs.roles import Role
from ..core.inputs.scene import LayerInput, Scene
from ..core.raster.align import BandRef
from . import layer_params as lp
from . import station_params as sp
from .base import CoreFeedback, SmAlgorithm, core_errors, raster_source, steps
from . import spec_params as ps
from . import specs
from .downscale_regression import kriging_sd_path, report_run, run_outputs, scene_refs_of
from .scoring import score_and_report

try:  # QGIS ≥ 3.36
    from qgis.core import Qgis
    POLYGONS = [Qgis.ProcessingSourceType.VectorPolygon]
except AttributeError:  # QGIS 3.22
    from qgis.core import QgsProcessing
    POLYGONS = [QgsProcessing.TypeVectorPolygon]

class DownscaleStacking(SmAlgorithm):
    NAME = "downscale_stacking"
    DISPLAY_NAME = "Downscale (stacked boosted trees per terrain zone)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    REQUIRED_PACKAGES = ("sklearn", "onnx", "onnxruntime", "skl2onnx")
    HELP = specs.STACKING_HELP

    LEARNERS = "LEARNERS"
    ZONES = "ZONES"
    ZONE_RASTER = "ZONE_RASTER"
    ZONE_POLYGONS = "ZONE_POLYGONS"
    ZONE_FIELD = "ZONE_FIELD"
    RELIEF_RADIUS = "RELIEF_RADIUS"
    RELIEF_THRESHOLDS = "RELIEF_THRESHOLDS"
    N_ZONES = "N_ZONES"
    MIN_ZONE_SAMPLES = "MIN_ZONE_SAMPLES"
    IMPORTANCE = "IMPORTANCE"
    FOLDS = "FOLDS"
    N_ESTIMATORS = "N_ESTIMATORS"
    LEARNING_RATE = "LEARNING_RATE"
    RESIDUAL = "RESIDUAL"
    RESIDUAL_ITERATIONS = "RESIDUAL_ITERATIONS"
    KRIGING_NEIGHBOURS = "KRIGING_NEIGHBOURS"
    WEIGHT_TREND = "WEIGHT_TREND"
    WEIGHT_RESIDUAL = "WEIGHT_RESIDUAL"
    SEED = "SEED"
    MODEL_IN = "MODEL_IN"
    OUTPUT = "OUTPUT"
    KRIGING_SD = "KRIGING_SD"
    REPORT = "REPORT"
    MODEL_OUT = "MODEL_OUT"
    RUN_LOG = "RUN_LOG"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_soil_moisture_params(self)
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        head = specs.stacking_specs()[:3]
        ps.add_specs(self, *head)
        self.add_param(QgsProcessingParameterFeatureSource(self.ZONE_POLYGONS, self.tr("Zone polygons"), POLYGONS,
                                                           optional=True),
                       "Polygons of zones (basins, geomorphic units); used when Zones is 'the zone layer below'.")
        self.add_param(QgsProcessingParameterField(self.ZONE_FIELD, self.tr("Zone field"), None, self.ZONE_POLYGONS,
                                                   optional=True),
                       "The polygons' field naming their zone (numbers or names).")
        ps.add_specs(self, *specs.STACKING_TAIL_SPECS)
        sp.add_station_params(self)
        ps.add_specs(self, *specs.STACKING_OUTPUT_SPECS)
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def _zone_layer(self, parameters, context, values, spec, rule, folder, feedback):
        """The zone layer to add to the scene (``None`` for no zones), its line in the log."""
        from ..core.raster.zones import rasterize_polygons

        raster = self.parameterAsRasterLayer(parameters, self.ZONE_RASTER, context)
        zone_raster = (raster_source(raster, self.tr("zone"))[0], raster.name()) if raster is not None else None
        vec = self.parameterAsVectorLayer(parameters, self.ZONE_POLYGONS, context)
        field = self.parameterAsString(parameters, self.ZONE_FIELD, context)

        def polygons():
            try:
                path, labels = rasterize_polygons(vec.source().split("|")[0], field, os.path.join(folder, "zones.tif"),
                                                  layer=_layer_name(vec.source()))
            except ValueError as exc:
                raise QgsProcessingException(self.tr(f"Zone polygons '{vec.name()}': {exc}.")) from None
            return (LayerInput(Role.ZONE, vec.name(), [BandRef(path, 1, vec.name())]),
                    "Zones from polygons: " + ", ".join(f"{c} = {v}" for c, v in labels.items()))
        zone, line = specs.stacking_zone(values, spec.covariates, rule, folder, zone_raster,
                                         polygons if vec is not None and field else None)
        if line:
            feedback.pushInfo(self.tr(line))
        return zone

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.io.output import write_text_atomic
        from ..core.methods import stacking
        from ..core.methods.stacking_report import report_html

        out_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if not out_path.lower().endswith((".tif", ".tiff")):
            out_path = os.path.splitext(out_path)[0] + ".tif"
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        model_out = self.parameterAsString(parameters, self.MODEL_OUT, context)
        model_in = self.parameterAsFile(parameters, self.MODEL_IN, context)
        values = ps.spec_values(self, parameters, context, specs.stacking_specs())
        with core_errors():
            opts, rule = specs.stacking_options(values)
        scoring = sp.wants_scoring(self, parameters, context)
        labels = [self.tr("Checking inputs"), self.tr("Fitting the stack" if not model_in else "Loading the stack"),
                  self.tr("Downscaling")] + ([self.tr("Scoring at stations")] if scoring else [])
        results = {}
        with core_errors(), tempfile.TemporaryDirectory(prefix="smds-zones-") as tmp:
            saved = stacking.StackingModel.load(model_in) if model_in else None
            for i, fb in steps(feedback, labels):
                if i == 0:
                    spec = lp.scene_spec(self, parameters, context)
                    if saved is None or saved.trend.zone_name:
                        zone = self._zone_layer(parameters, context, values, spec, rule, tmp, fb)
                        if zone is not None:
                            spec.covariates.append(zone)
                    scene = Scene(spec)
                    lp.check_room(out_path, scene.fine.width, scene.fine.height, len(scene.dates),
                                  what=self.tr("Downscaled soil moisture"))
                    fb.pushInfo(self.tr(f"{len(scene.dates)} dates; fine grid {scene.fine.width}×{scene.fine.height} px; "
                                        f"coarse grid {scene.coarse.width}×{scene.coarse.height} cells"))
                elif i == 1:
                    cf = CoreFeedback(fb)
                    model = saved or stacking.fit(scene, opts, cf.progress, cf.is_canceled)
                    warnings, lines = specs.stacking_fit_lines(model.training)
                    for line in warnings:
                        fb.pushWarning(self.tr(line))
                    for line in lines:
                        fb.pushInfo(self.tr(line))
                    if model_out:
                        os.makedirs(model_out, exist_ok=True)
                        results[self.MODEL_OUT] = model.save(model_out)
                    if report:
                        results[self.REPORT] = write_text_atomic(report, report_html(model.training))
                elif i == 2:
                    cf = CoreFeedback(fb)
                    res = stacking.predict(model, scene, out_path, cf.progress, cf.is_canceled,
                                           kriging_sd_path(self, parameters, context, out_path))
                    report_run(self, fb, res)
                    results.update(run_outputs(self, context, res, out_path))
                else:
                    results.update(score_and_report(self, parameters, context, fb,
                                                    {"downscaled": scene_refs_of(out_path, res.dates),
                                                     "coarse": scene.sm_bands}, coarse="coarse"))
        return results


def _layer_name(source: str):
    """The OGR layer named in a QGIS vector source ``path|layername=x`` (``None`` if not given)."""
    for part in source.split("|")[1:]:
        if part.startswith("layername="):
            return part.split("=", 1)[1]
    return None
