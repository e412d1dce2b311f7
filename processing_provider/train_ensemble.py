"""Train an in-situ ensemble (Poehls et al.) from a station table or from the user's rasters."""
from __future__ import annotations

import os
import re
import shutil
import tempfile

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterDefinition,
)

from ..core.errors import InputError
from . import layer_params as lp
from . import model_store
from . import spec_params as ps
from . import specs
from . import station_params as sp
from .base import CoreFeedback, SmAlgorithm, core_errors, steps

# The enum names (order = index) live with the specs: QGIS-free, loadable without onnx.
FEATURE_CHOICES: tuple[str, ...] = specs.ENSEMBLE_FEATURES
SCHEME_CHOICES: tuple[str, ...] = specs.ENSEMBLE_SCHEMES
ARCHITECTURE_CHOICES: tuple[str, ...] = specs.ENSEMBLE_ARCHITECTURES
DEFAULT_FEATURES: tuple[str, ...] = specs.ENSEMBLE_DEFAULT_FEATURES

_NAME_RE = re.compile(specs.MODEL_NAME_PATTERN)

try:  # QGIS >= 3.36
    from qgis.core import Qgis
    FLAG_OPTIONAL = Qgis.ProcessingParameterFlag.Optional
except AttributeError:  # QGIS < 3.36
    FLAG_OPTIONAL = QgsProcessingParameterDefinition.FlagOptional


class TrainEnsemble(SmAlgorithm):
    NAME = "train_ensemble"
    DISPLAY_NAME = "Train an in-situ ensemble"
    GROUP_ID = "models"
    GROUP = "Models"
    REQUIRED_PACKAGES = ("sklearn", "onnx", "onnxruntime", "skl2onnx")
    HELP = specs.TRAIN_ENSEMBLE_HELP

    STATION_TABLE = "STATION_TABLE"
    FEATURES = "FEATURES"
    ARCHITECTURES = "ARCHITECTURES"
    SCHEMES = "SCHEMES"
    CV_FOLDS = "CV_FOLDS"
    HOLDOUT_FRACTION = "HOLDOUT_FRACTION"
    SEED = "SEED"
    ENSEMBLE_NAME = "ENSEMBLE_NAME"
    DESCRIPTION = "DESCRIPTION"
    OVERWRITE = "OVERWRITE"
    MIN_SAMPLES = "MIN_SAMPLES_PER_STATION"
    HIDDEN_LAYERS = "HIDDEN_LAYERS"
    MAX_EPOCHS = "MAX_EPOCHS"
    N_TREES = "N_TREES"
    REPORT = "REPORT"
    ENSEMBLE_FOLDER = "ENSEMBLE_FOLDER"
    N_MEMBERS = "N_MEMBERS"
    SAVED_NAME = "SAVED_NAME"

    def initAlgorithm(self, config=None):  # noqa: N802
        ps.add_specs(self, specs.STATION_TABLE_SPEC)
        lp.add_soil_moisture_params(self)
        sm = self.parameterDefinition(lp.SOIL_MOISTURE)
        sm.setFlags(sm.flags() | FLAG_OPTIONAL)
        sm.setHelp(self.tr("Raster training only: ") + sm.help())
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        sp.add_station_params(self, optional=True, outputs=False)
        ps.add_specs(self, *specs.TRAIN_ENSEMBLE_SPECS)
        self.addOutput(QgsProcessingOutputFolder(self.ENSEMBLE_FOLDER, self.tr("Ensemble folder")))
        self.addOutput(QgsProcessingOutputString(self.SAVED_NAME, self.tr("Ensemble name")))
        self.addOutput(QgsProcessingOutputNumber(self.N_MEMBERS, self.tr("Number of members")))

    # ------------------------------------------------------------------ checks
    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            self._check(parameters, context)
        except QgsProcessingException as e:
            return False, str(e)
        return True, ""

    def _check(self, parameters, context) -> dict:
        """The run's settings, or ``QgsProcessingException`` with what to fix."""
        table = self.parameterAsFile(parameters, self.STATION_TABLE, context)
        has_rasters = bool(parameters.get(lp.SOIL_MOISTURE))
        if table and has_rasters:
            raise QgsProcessingException(self.tr(
                "Both a station table and soil-moisture layers were given. Fix: give either the station table, or "
                "the rasters (coarse soil moisture, covariates, stations and in-situ table), not both."))
        if not table and not has_rasters:
            raise QgsProcessingException(self.tr(
                "No training data. Fix: give a station table (CSV), or coarse soil-moisture layers with covariates, "
                "stations and an in-situ table."))
        if has_rasters and not self.parameterAsFile(parameters, sp.INSITU_CSV, context):
            raise QgsProcessingException(self.tr(
                "Training on rasters needs in-situ soil moisture. Fix: give the in-situ table (CSV) and the stations."))
        features = [FEATURE_CHOICES[i] for i in self.parameterAsEnums(parameters, self.FEATURES, context)]
        if not features:
            raise QgsProcessingException(self.tr("No input feature was chosen. Fix: choose at least sm_coarse."))
        archs = [ARCHITECTURE_CHOICES[i] for i in self.parameterAsEnums(parameters, self.ARCHITECTURES, context)]
        if not archs:
            raise QgsProcessingException(self.tr("No architecture was chosen. Fix: choose dense, prob, wdl, rf or hgb."))
        # an empty optional multiple enum reads as [0] ("free") in QGIS 3.22: look at the raw value first
        raw = parameters.get(self.SCHEMES)
        schemes = [] if raw is None or raw == [] or raw == "" else \
            [SCHEME_CHOICES[i] for i in self.parameterAsEnums(parameters, self.SCHEMES, context)]
        try:
            hidden = specs.hidden_widths(self.parameterAsString(parameters, self.HIDDEN_LAYERS, context))
        except InputError as e:
            raise QgsProcessingException(self.tr(str(e))) from None
        name = self.parameterAsString(parameters, self.ENSEMBLE_NAME, context).strip()
        if not _NAME_RE.match(name):
            raise QgsProcessingException(self.tr(
                f"The ensemble name '{name}' cannot be a folder name. Fix: use letters, digits, '_', '-' or '.' "
                "(64 at most), starting with a letter or digit."))
        if os.path.isdir(os.path.join(model_store.BUNDLED_DIR, name)):
            raise QgsProcessingException(self.tr(
                f"'{name}' is the name of an ensemble bundled with the plugin. Fix: choose another name."))
        dest = os.path.join(model_store.user_models_dir(), name)
        overwrite = self.parameterAsBoolean(parameters, self.OVERWRITE, context)
        if os.path.exists(dest) and not overwrite:
            raise QgsProcessingException(self.tr(
                f"An ensemble called '{name}' already exists ({dest}). Fix: choose another name, or tick "
                "'Replace an ensemble of the same name'."))
        if table:
            try:
                from ..core.methods.insitu_ensemble.preflight import check_station_table
                check_station_table(table, features)
            except InputError as e:
                raise QgsProcessingException(str(e)) from None
        return {"table": table, "features": features, "architectures": archs, "schemes": schemes,
                "hidden": hidden, "name": name, "dest": dest, "overwrite": overwrite}

    # ------------------------------------------------------------------ run
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.methods.insitu_ensemble import samples_from_station_table, train_ensemble
        from ..core.methods.insitu_ensemble.preflight import check_training_plan
        from ..core.methods.insitu_ensemble.raster_samples import samples_from_scene
        from ..core.methods.insitu_ensemble.report import summary_lines
        from ..core.inputs.scene import Scene

        run = self._check(parameters, context)
        values = ps.spec_values(self, parameters, context, specs.TRAIN_ENSEMBLE_SPECS)
        values["SCHEMES"] = [SCHEME_CHOICES.index(s) for s in run["schemes"]]  # the raw-value rule of _check
        opts = specs.ensemble_training_options(values, name=run["name"])
        folds, holdout, seed = opts.cv_folds, opts.holdout_fraction, opts.seed
        mlp, forest = opts.mlp_config, opts.forest_config
        min_samples = int(values["MIN_SAMPLES_PER_STATION"])
        report_path = self.parameterAsFileOutput(parameters, self.REPORT, context)
        description = str(values["DESCRIPTION"] or "").strip()
        features, name = run["features"], run["name"]

        labels = [self.tr("Reading training samples"), self.tr("Training and cross-validating the members"),
                  self.tr("Saving the ensemble and the report")]
        tmp = None
        results = {}
        try:
            with core_errors():
                for i, fb in steps(feedback, labels):
                    if i == 0:
                        if run["table"]:
                            try:
                                samples = samples_from_station_table(run["table"], features, min_samples)
                            except ValueError as e:
                                raise QgsProcessingException(self.tr(
                                    f"Station table {os.path.basename(run['table'])}: {e}")) from None
                            coarse_label = "coarse SMAP (smap10km_ssm_mm / 50 mm)"
                        else:
                            scene = Scene(lp.scene_spec(self, parameters, context))
                            stations, dates, insitu = sp.read_station_inputs(self, parameters, context, fb)
                            cf = CoreFeedback(fb)
                            samples = samples_from_scene(scene, stations, dates, insitu, features, cf.progress,
                                                         cf.is_canceled, min_samples_per_site=min_samples)
                            coarse_label = "coarse soil moisture"
                            src = samples.source
                            if src.get("stations_outside"):
                                fb.pushWarning(self.tr("Stations outside the layers, left out: "
                                                       + ", ".join(src["stations_outside"])))
                            if src.get("stations_too_few"):
                                fb.pushWarning(self.tr(f"Stations with fewer than {min_samples} usable samples, "
                                                       "left out: " + ", ".join(src["stations_too_few"])))
                        if len(samples) == 0:
                            raise QgsProcessingException(self.tr(
                                f"No usable sample: no station has {min_samples} or more rows with an in-situ value, "
                                f"coarse soil moisture and every input feature ({', '.join(features)}). Fix: lower "
                                "'Minimum samples per station' or choose features the data have."))
                        fb.pushInfo(self.tr(f"{len(samples)} samples at {samples.sites.size} stations, "
                                            f"{samples.date.min()} … {samples.date.max()}; inputs "
                                            f"{', '.join(features)}"))
                        schemes, skipped = specs.chosen_schemes(samples, run["schemes"])
                        if not run["schemes"] and skipped:
                            fb.pushInfo(self.tr("Weighting schemes the data do not support, left out: "
                                                + "; ".join(skipped)))
                        check_training_plan(samples, features, run["architectures"], schemes, folds, holdout)
                        fb.pushInfo(self.tr(f"Architectures {', '.join(run['architectures'])}; schemes "
                                            f"{', '.join(schemes)}"))
                    elif i == 1:
                        models_dir = model_store.user_models_dir(create=True)
                        # the temporary folder sits beside the models folder (same file system: the final
                        # rename is atomic) and outside it (never listed as an ensemble while half written)
                        tmp = tempfile.mkdtemp(prefix=f".training-{name}-", dir=os.path.dirname(models_dir))
                        cf = CoreFeedback(fb)
                        try:
                            report = train_ensemble(
                                samples, features, run["architectures"], schemes, folds, seed,
                                os.path.join(tmp, name), cf.progress, cf.is_canceled, name=name,
                                description=description or specs.ensemble_description(samples, run["table"]),
                                mlp_config=mlp, forest_config=forest, holdout_fraction=holdout)
                        except InputError:
                            raise
                        except ValueError as e:
                            raise QgsProcessingException(self.tr(f"Training failed: {e}")) from None
                    else:
                        dest = _install(os.path.join(tmp, name), run["dest"], run["overwrite"], tmp)
                        report.out_folder = dest
                        for line in report.format().splitlines():
                            fb.pushInfo(line)
                        for line in summary_lines(report, coarse_label):
                            fb.pushInfo(line)
                        specs.write_ensemble_report(report_path, report, samples, coarse_label)
                        results = {self.ENSEMBLE_FOLDER: dest, self.SAVED_NAME: name,
                                   self.N_MEMBERS: len(report.members), self.REPORT: report_path}
        finally:
            if tmp is not None and os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return results


def _install(built: str, dest: str, overwrite: bool, scratch: str) -> str:
    """:func:`core.io.atomic.install_folder` of a finished ensemble folder (its refusal as a Processing error)."""
    from ..core.errors import InputError
    from ..core.io.atomic import install_folder
    try:
        return install_folder(built, dest, overwrite, scratch, what="An ensemble")
    except InputError as e:
        raise QgsProcessingException(str(e)) from None
