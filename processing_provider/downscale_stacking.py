"""Downscale by stacking boosted trees per terrain zone (the stacking paper on Anhui)."""
from __future__ import annotations

import os
import tempfile

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.inputs.roles import Role
from ..core.inputs.scene import LayerInput, Scene
from ..core.learn.stacking import DEFAULT_LEARNERS, LEARNERS
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

LEARNER_KEYS = tuple(LEARNERS)
IMPORTANCE_KEYS = ("auto", "shap", "permutation", "none")
IMPORTANCE_LABELS = ("SHAP when installed, else permutation", "SHAP values", "Permutation on held-out cells", "None")
ZONE_SOURCES = ("auto", "none", "relief", "kmeans", "layer")
ZONE_LABELS = ("Automatic: terrain relief classes when a DEM is given, else none", "No zones",
               "Relief classes from the DEM (plains, hills, mountains)", "Clusters of elevation and relief (k-means)",
               "The zone layer below (class raster or polygons)")


class DownscaleStacking(SmAlgorithm):
    NAME = "downscale_stacking"
    DISPLAY_NAME = "Downscale (stacked boosted trees per terrain zone)"
    GROUP_ID = "downscaling"
    GROUP = "Downscaling"
    REQUIRED_PACKAGES = ("sklearn", "onnx", "onnxruntime", "skl2onnx")
    HELP = (
        "Downscales a coarse soil-moisture series with a <b>stack</b> of tree ensembles, as the stacking paper "
        "does for SMAP L4 over Anhui: base learners (scikit-learn's histogram gradient boosting, random forest and "
        "extra trees; XGBoost, LightGBM and CatBoost when installed) are trained on the coarse grid — coarse soil "
        "moisture against the covariates averaged over each cell and the day of year — with 5-fold cross-validation "
        "that holds out whole blocks of cells; their held-out predictions are fused by a non-negative linear "
        "meta-learner.<br><b>Zones</b>: one stack per terrain zone (relief classes or clusters from the DEM, or your "
        "own zones); a zone keeps its own stack only where it beats the global stack on its held-out cells.<br>"
        "The stack is applied on the fine grid as the trend; the coarse residual is spread back and refined so the "
        "fine pixels of each coarse cell average to its value. Outputs: the series (GeoTIFF, one band per date), "
        "the run log, an HTML report (learner weights, zoned vs unzoned, predictor importance) and, if asked, the "
        "fitted stack (ONNX + card) to apply to other dates and areas."
    )

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
        self.add_param(QgsProcessingParameterEnum(self.LEARNERS, self.tr("Base learners"),
                                                  [LEARNERS[k][0] for k in LEARNER_KEYS], allowMultiple=True,
                                                  defaultValue=[LEARNER_KEYS.index(k) for k in DEFAULT_LEARNERS]),
                       "The tree ensembles to stack. The scikit-learn ones always work; XGBoost (pip package "
                       "xgboost-cpu), LightGBM and CatBoost need their packages (and onnxmltools for XGBoost/LightGBM) "
                       "in QGIS's Python — a missing one is left out and the log names the pip command.")
        self.add_param(QgsProcessingParameterEnum(self.ZONES, self.tr("Zones"), list(ZONE_LABELS), defaultValue=0),
                       "Separate stacks per zone (the paper's geomorphic units). Relief = highest minus lowest "
                       "elevation within the radius: plains below the first threshold, mountains above the second.")
        self.add_param(QgsProcessingParameterRasterLayer(self.ZONE_RASTER, self.tr("Zone raster (class codes)"),
                                                         optional=True),
                       "Integer zone codes (0 or nodata = no zone); used when Zones is 'the zone layer below'.")
        self.add_param(QgsProcessingParameterFeatureSource(self.ZONE_POLYGONS, self.tr("Zone polygons"), POLYGONS,
                                                           optional=True),
                       "Polygons of zones (basins, geomorphic units); used when Zones is 'the zone layer below'.")
        self.add_param(QgsProcessingParameterField(self.ZONE_FIELD, self.tr("Zone field"), None, self.ZONE_POLYGONS,
                                                   optional=True),
                       "The polygons' field naming their zone (numbers or names).")
        self.add_param(QgsProcessingParameterNumber(self.RELIEF_RADIUS, self.tr("Relief radius (m)"),
                                                    QgsProcessingParameterNumber.Double, 5000.0, minValue=100.0),
                       "Radius within which local relief is measured.", advanced=True)
        self.add_param(QgsProcessingParameterString(self.RELIEF_THRESHOLDS, self.tr("Relief thresholds (m)"), "50, 300"),
                       "Plains below the first, mountains above the second (Meybeck et al. 2001).", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.N_ZONES, self.tr("Clusters (k-means zones)"),
                                                    QgsProcessingParameterNumber.Integer, 3, minValue=2, maxValue=12),
                       "Number of zones when clustering elevation and relief.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.MIN_ZONE_SAMPLES, self.tr("Minimum coarse samples per zone"),
                                                    QgsProcessingParameterNumber.Integer, 300, minValue=20),
                       "Zones with fewer coarse samples (cells × dates) use the global stack.", advanced=True)
        self.add_param(QgsProcessingParameterEnum(self.IMPORTANCE, self.tr("Predictor importance"),
                                                  list(IMPORTANCE_LABELS), defaultValue=0),
                       "SHAP values of the stack (pip package shap) when installed, else the rise of the held-out RMSE "
                       "when a predictor is shuffled; or either explicitly, or none (faster).", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.FOLDS, self.tr("Cross-validation folds"),
                                                    QgsProcessingParameterNumber.Integer, 5, minValue=2, maxValue=20),
                       "Folds of the out-of-fold predictions that train the meta-learner.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.N_ESTIMATORS, self.tr("Trees / boosting iterations"),
                                                    QgsProcessingParameterNumber.Integer, 200, minValue=10),
                       "Boosting iterations (forests: half as many trees).", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.LEARNING_RATE, self.tr("Learning rate"),
                                                    QgsProcessingParameterNumber.Double, 0.05, minValue=0.001,
                                                    maxValue=1.0), "Of the boosted learners.", advanced=True)
        ps.add_specs(self, specs.residual_spec("auto"), *specs.KRIGING_SPECS)
        self.add_param(QgsProcessingParameterNumber(self.RESIDUAL_ITERATIONS, self.tr("Residual refinement passes"),
                                                    QgsProcessingParameterNumber.Integer, 3, minValue=0, maxValue=20),
                       "Bilinear residual: passes that make the fine pixels of each coarse cell average back to its "
                       "value.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"),
                                                    QgsProcessingParameterNumber.Integer, 42), "For reproducible runs.",
                       advanced=True)
        self.add_param(QgsProcessingParameterFile(self.MODEL_IN, self.tr("Apply a saved stack (folder)"),
                                                  QgsProcessingParameterFile.Folder, optional=True),
                       "A folder written by this algorithm's 'Save the fitted stack': no fitting, the saved stack is "
                       "applied to these layers (they must have the same roles).", advanced=True)
        sp.add_station_params(self)
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Downscaled soil moisture")),
                       "GeoTIFF, one band per date (m³/m³).")
        ps.add_specs(self, specs.KRIGING_SD_SPEC)
        self.add_param(QgsProcessingParameterFileDestination(self.REPORT, self.tr("Stacking report (HTML)"),
                                                             "HTML files (*.html)", optional=True,
                                                             createByDefault=True),
                       "Learner weights and held-out scores, zoned vs unzoned per zone, predictor importance.")
        self.add_param(QgsProcessingParameterFolderDestination(self.MODEL_OUT, self.tr("Save the fitted stack"),
                                                               optional=True, createByDefault=False),
                       "A folder for the fitted stack (ONNX graphs + card with their SHA-256).")
        self.addOutput(QgsProcessingOutputFile(self.RUN_LOG, self.tr("Run log (JSON)")))

    def _options(self, parameters, context):
        from ..core.methods.stacking import StackingMethodOptions
        from ..core.raster.zones import ZoneRule

        picks = self.parameterAsEnums(parameters, self.LEARNERS, context) or \
            [LEARNER_KEYS.index(k) for k in DEFAULT_LEARNERS]
        text = self.parameterAsString(parameters, self.RELIEF_THRESHOLDS, context) or "50, 300"
        try:
            thresholds = tuple(float(t) for t in text.replace(";", ",").split(","))
            assert len(thresholds) == 2 and thresholds[0] < thresholds[1]
        except (ValueError, AssertionError):
            raise QgsProcessingException(self.tr(f"Relief thresholds '{text}': give two increasing numbers in metres, "
                                                 "e.g. '50, 300'.")) from None
        rule = ZoneRule(method="kmeans" if ZONE_SOURCES[self.parameterAsEnum(parameters, self.ZONES, context)] == "kmeans"
                        else "relief", radius_m=self.parameterAsDouble(parameters, self.RELIEF_RADIUS, context),
                        thresholds_m=thresholds, n_clusters=self.parameterAsInt(parameters, self.N_ZONES, context),
                        seed=self.parameterAsInt(parameters, self.SEED, context))
        opts = StackingMethodOptions(
            learners=tuple(LEARNER_KEYS[i] for i in picks), folds=self.parameterAsInt(parameters, self.FOLDS, context),
            n_estimators=self.parameterAsInt(parameters, self.N_ESTIMATORS, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            min_zone_samples=self.parameterAsInt(parameters, self.MIN_ZONE_SAMPLES, context),
            importance=IMPORTANCE_KEYS[self.parameterAsEnum(parameters, self.IMPORTANCE, context)],
            residual_iterations=self.parameterAsInt(parameters, self.RESIDUAL_ITERATIONS, context),
            **specs.residual_fields(ps.spec_values(self, parameters, context,
                                                   (specs.residual_spec("auto"), *specs.KRIGING_SPECS))))
        return opts, rule

    def _zone_layer(self, parameters, context, spec, rule, folder, feedback):
        """The zone layer to add to the scene (``None`` for no zones), and a line for the log."""
        from ..core.methods.stacking import write_dem_zones
        from ..core.raster.zones import rasterize_polygons

        source = ZONE_SOURCES[self.parameterAsEnum(parameters, self.ZONES, context)]
        dem = next((c for c in spec.covariates if c.role is Role.DEM), None)
        if source == "none" or (source == "auto" and dem is None):
            return None
        if source == "layer":
            raster = self.parameterAsRasterLayer(parameters, self.ZONE_RASTER, context)
            if raster is not None:
                path, _ = raster_source(raster, self.tr("zone"))
                return LayerInput(Role.ZONE, raster.name(), [BandRef(path, 1, raster.name())])
            vec = self.parameterAsVectorLayer(parameters, self.ZONE_POLYGONS, context)
            field = self.parameterAsString(parameters, self.ZONE_FIELD, context)
            if vec is None or not field:
                raise QgsProcessingException(self.tr("Zones are to come from a zone layer, but none was given. Fix: "
                                                     "choose a zone raster, or zone polygons and their zone field."))
            try:
                path, labels = rasterize_polygons(vec.source().split("|")[0], field, os.path.join(folder, "zones.tif"),
                                                  layer=_layer_name(vec.source()))
            except ValueError as exc:
                raise QgsProcessingException(self.tr(f"Zone polygons '{vec.name()}': {exc}.")) from None
            feedback.pushInfo(self.tr("Zones from polygons: " + ", ".join(f"{c} = {v}" for c, v in labels.items())))
            return LayerInput(Role.ZONE, vec.name(), [BandRef(path, 1, vec.name())])
        if dem is None:
            raise QgsProcessingException(self.tr("Zones from the terrain need a DEM. Fix: give a DEM, or choose "
                                                 "another zone source."))
        ref, info = write_dem_zones(dem.bands[0], os.path.join(folder, "zones.tif"), rule)
        feedback.pushInfo(self.tr(f"Terrain zones ({info['method']}, radius {info['radius_m']:g} m): " + ", ".join(
            f"{info['labels'].get(k, k)} {n} px" for k, n in info["pixels"].items())))
        return LayerInput(Role.ZONE, "terrain zones", [ref])

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
        opts, rule = self._options(parameters, context)
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
                        zone = self._zone_layer(parameters, context, spec, rule, tmp, fb)
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
                    t = model.training
                    for k, cmd in t.get("skipped_learners", {}).items():
                        fb.pushWarning(self.tr(f"{LEARNERS[k][0]} is not installed and was left out. To use it: "
                                               f"pip install {cmd} (in QGIS's Python)."))
                    g = t["global"]
                    fb.pushInfo(self.tr("Stack weights: " + ", ".join(f"{n} {w:.2f}" for n, w in zip(g["learners"], g["weights"]))))
                    if "stack" in g["oof_scores"]:
                        s = g["oof_scores"]["stack"]
                        fb.pushInfo(self.tr(f"Held-out coarse cells: stack R = {s['r']:.3f}, RMSE = {s['rmse']:.4f} m³/m³"))
                    for z in t.get("zones", []):
                        fb.pushInfo(self.tr(f"Zone {z['zone']}: {z['n_samples']} samples, {z['uses']}"))
                    if model_out:
                        os.makedirs(model_out, exist_ok=True)
                        results[self.MODEL_OUT] = model.save(model_out)
                    if report:
                        results[self.REPORT] = write_text_atomic(report, report_html(t))
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
