"""The hydrologist's desk: a dock that picks layers by role, checks them and runs our algorithms.

The dock holds no numerical code. It turns widget state into a :class:`~.run_request.RunRequest`,
checks it (:func:`~.precheck.precheck`), and runs *our own* Processing algorithms as a
background ``QgsProcessingAlgRunnerTask`` — the downscaling method chosen, then, with stations,
``site_report`` — so the toolbox, the modeler and ``qgis_process`` share its code path. Results
land in one layer group per run, styled and dated for the temporal controller. Its "start from
downloads" buttons open our Inputs algorithms (product import, ISMN import, covariate preparation)
in Processing's own dialog and point the dock at what they produced.

Set the environment variable ``SOIL_MOISTURE_DOWNSCALING_NO_BROWSER=1`` (tests, CI) to keep the
report from opening in a browser.
"""
from __future__ import annotations

import datetime as _dt
import functools
import html
import os
import traceback
from typing import Any, Optional

from osgeo import gdal
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsDateTimeRange,
    QgsMapLayerProxyModel,
    QgsMessageLog,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterDefinition,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRectangle,
    QgsSettings,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsCheckableComboBox, QgsCollapsibleGroupBox, QgsDoubleSpinBox, QgsFileWidget, QgsMapLayerComboBox, \
    QgsProjectionSelectionWidget, QgsSpinBox
from qgis.PyQt import uic
from qgis.PyQt.QtCore import QDate, QDateTime, Qt, QTime, QUrl, pyqtSignal
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QDockWidget, QFormLayout, QLabel, QLineEdit, QListWidgetItem

from ..core.inputs.roles import COVARIATE_ROLES, ROLE_INFO, Role
from ..processing_provider.base import FLAG_ADVANCED
from ..core.inputs.guess import MULTI_LAYER_ROLES, LayerFacts, describe_dates, guess_role, guess_roles, layer_dates, series_name
from .precheck import CheckResult, precheck
from .run_request import (
    HANDLED_PARAMETERS,
    MODEL_PARAMETERS,
    PROVIDER_ID,
    SITE_REPORT_ID,
    DockChoices,
    RunRequest,
)

FLAG_HIDDEN = getattr(getattr(Qgis, "ProcessingParameterFlag", None), "Hidden", None) or \
    QgsProcessingParameterDefinition.FlagHidden
FORM_CLASS, _ = uic.loadUiType(os.path.join(os.path.dirname(__file__), "dock.ui"))

SETTINGS_KEY = "soil_moisture_downscaling/dock/choices"
NO_BROWSER_ENV = "SOIL_MOISTURE_DOWNSCALING_NO_BROWSER"
DOWNSCALING_GROUP = "downscaling"
LOG_TAG = "Soil Moisture Downscaling"
PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Names the loaded outputs get in the run's group (destination parameter → layer name).
OUTPUT_NAMES = {"OUTPUT": "Soil moisture", "SCORES": "Stations: ubRMSE change vs coarse",
                "CONSERVATION": "Conservation error (%)", "HETEROGENEITY": "Heterogeneity (CV)",
                "SPREAD": "Spread of the members (std)", "DOMAIN_MASK": "Outside the training domain"}
#: Outputs added to the group but not shown until the user ticks them.
HIDDEN_OUTPUTS = ("CONSERVATION", "HETEROGENEITY", "SPREAD", "DOMAIN_MASK")
_LAYER_OUTPUTS = ("rasterDestination", "sink", "vectorDestination")


#: Task, context and feedback of every run under way, held here rather than by the dock alone, so
#: that closing the panel (or unloading the plugin) mid-run cannot free what the task still uses.
_RUNNING: dict[int, tuple] = {}


#: The "start from downloads" buttons → our Inputs algorithms (run in Processing's own dialog).
INPUT_ALGORITHMS = {"importProductButton": "import_product", "importIsmnButton": "import_ismn",
                    "prepareCovariatesButton": "prepare_covariates"}


def _forget(key: int, *_args) -> None:
    _RUNNING.pop(key, None)


def model_folders() -> list[str]:
    """Where trained models are looked for: the bundled ``models/`` and the user's profile folder."""
    try:
        from ..processing_provider.model_store import BUNDLED_DIR, user_models_dir
        return [BUNDLED_DIR, user_models_dir()]
    except ImportError:  # a build without ensembles
        return [os.path.join(PLUGIN_DIR, "models"),
                os.path.join(QgsApplication.qgisSettingsDirPath(), "soil_moisture_downscaling", "models")]


class _Feedback(QgsProcessingFeedback):
    """Processing feedback that also hands every message to the dock (queued to the GUI thread)."""

    message = pyqtSignal(str, str)  # level ("info", "warning", "error"), text

    def pushInfo(self, info):  # noqa: N802 (QGIS API)
        super().pushInfo(info)
        self.message.emit("info", info)

    def pushWarning(self, warning):  # noqa: N802
        super().pushWarning(warning)
        self.message.emit("warning", warning)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803
        super().reportError(error, fatalError)
        self.message.emit("error", error)


class _RolePicker:
    """One covariate role: a layer combo box, or a checkable list where a role may be a time series."""

    def __init__(self, role: Role, parent) -> None:
        self.role = role
        self.multi = role in MULTI_LAYER_ROLES
        if self.multi:
            self.widget = QgsCheckableComboBox(parent)
            self.widget.setDefaultText("—")
        else:
            self.widget = QgsMapLayerComboBox(parent)
            self.widget.setFilters(QgsMapLayerProxyModel.RasterLayer)
            self.widget.setAllowEmptyLayer(True)
            self.widget.setLayer(None)
        _compact(self.widget)
        self.widget.setObjectName(f"role_{role.value}")
        self.widget.setToolTip(f"{ROLE_INFO[role].label} in {ROLE_INFO[role].units}"
                               + (" — tick several layers for a time series" if self.multi else ""))

    def refresh(self, layers: list[QgsRasterLayer]) -> None:
        if not self.multi:
            return  # QgsMapLayerComboBox follows the project by itself
        keep = set(self.selected())
        self.widget.blockSignals(True)
        self.widget.clear()
        for lay in layers:
            self.widget.addItem(lay.name(), lay.id())
        self.set_selected(keep)
        self.widget.blockSignals(False)

    def selected(self) -> list[str]:
        if self.multi:
            return [str(v) for v in self.widget.checkedItemsData()]
        lay = self.widget.currentLayer()
        return [lay.id()] if lay is not None else []

    def set_selected(self, ids) -> None:
        ids = list(ids)
        if self.multi:
            for i in range(self.widget.count()):
                self.widget.setItemCheckState(i, Qt.Checked if self.widget.itemData(i) in ids else Qt.Unchecked)
        else:
            self.widget.setLayer(QgsProject.instance().mapLayer(ids[0]) if ids else None)


class SoilMoistureDock(QDockWidget, FORM_CLASS):
    """The plugin's dock panel (see the module docstring)."""

    #: Emitted when a run ends: success, and the outputs (``group``, ``output``, ``report``, …).
    runFinished = pyqtSignal(bool, dict)

    def __init__(self, iface, parent=None) -> None:
        super().__init__(parent)
        self.setupUi(self)
        self.setObjectName("SoilMoistureDownscalingDock")
        self.iface = iface
        self.project = QgsProject.instance()
        self.open_reports = not os.environ.get(NO_BROWSER_ENV)
        self.last_run: dict[str, Any] = {}
        self._choices = self._load_choices()
        self._task: Optional[QgsProcessingAlgRunnerTask] = None
        self._context: Optional[QgsProcessingContext] = None
        self._feedback: Optional[_Feedback] = None
        self._request: Optional[RunRequest] = None
        self._stage = ""
        self._group = None
        self._option_widgets: dict[str, tuple[Any, Any]] = {}
        self._advanced_box: Optional[QgsCollapsibleGroupBox] = None
        self._facts_cache: dict[str, LayerFacts] = {}
        self._seen_layers: set[str] = set()
        self._options_alg_id = ""
        self._sm_guess: list[str] = []

        self.pickers: dict[Role, _RolePicker] = {}
        for role in COVARIATE_ROLES:
            picker = _RolePicker(role, self)
            self.pickers[role] = picker
            self.covariateForm.addRow(QLabel(f"{ROLE_INFO[role].label}"), picker.widget)

        self.stationsLayerCombo.setFilters(QgsMapLayerProxyModel.PointLayer)
        self.stationsLayerCombo.setAllowEmptyLayer(True)
        self.stationsLayerCombo.setLayer(None)
        self.stationIdCombo.setAllowEmptyFieldName(True)
        self.stationsLayerCombo.layerChanged.connect(self.stationIdCombo.setLayer)
        for w in (self.stationsCsv, self.insituCsv):
            w.setFilter("CSV (*.csv *.txt);;All files (*)")
        self.outputFolder.setStorageMode(QgsFileWidget.GetDirectory)
        self.crsWidget.setOptionVisible(QgsProjectionSelectionWidget.CrsNotSet, True)
        self.crsWidget.setNotSetText("CRS of the finest covariate")
        self.crsWidget.setCrs(QgsCoordinateReferenceSystem())

        for combo in (self.methodCombo, self.modelCombo, self.stationsLayerCombo, self.stationIdCombo):
            _compact(combo)
        self.scrollArea.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.methodCombo.currentIndexChanged.connect(self._method_changed)
        self.modelCombo.currentIndexChanged.connect(self._model_changed)
        self.smList.itemChanged.connect(self._update_dates)
        self.smAllButton.clicked.connect(lambda: self._check_all_sm(True))
        self.smNoneButton.clicked.connect(lambda: self._check_all_sm(False))
        self.guessButton.clicked.connect(lambda: self.refresh_layers(guess=True))
        for button, name in INPUT_ALGORITHMS.items():
            getattr(self, button).clicked.connect(functools.partial(self.open_input_algorithm, name))
        self.checkButton.clicked.connect(self.check_inputs)
        self.runButton.clicked.connect(self.run)
        self.cancelButton.clicked.connect(self.cancel)
        # bound methods (not lambdas): PyQt drops these connections when the dock is deleted
        self.project.layersAdded.connect(self._on_layers_changed)
        self.project.layersRemoved.connect(self._on_layers_changed)
        registry = QgsApplication.processingRegistry()
        registry.providerAdded.connect(self._on_providers_changed)
        registry.providerRemoved.connect(self._on_providers_changed)

        self._apply_choices()
        self.refresh_methods()
        self.refresh_layers(guess=True, use_saved=True)
        self._set_busy(False)

    # ------------------------------------------------------------------ start from downloads
    def open_input_algorithm(self, name: str, *_args) -> dict:
        """Open our Inputs algorithm ``name`` in Processing's dialog; use what it produced.

        The dialog loads its outputs into the project (an imported product then appears under 1);
        an ISMN import also fills in the stations and in-situ table under 5.
        """
        import processing  # QGIS's Processing plugin (present whenever the provider is)

        results = processing.execAlgorithmDialog(f"{PROVIDER_ID}:{name}", {}) or {}
        self.apply_input_results(name, results)
        return results

    def apply_input_results(self, name: str, results: dict) -> None:
        """Point the dock at the outputs of an Inputs algorithm (results as Processing returns them)."""
        if name == "import_ismn" and results.get("OUTPUT_SERIES"):
            self.insituCsv.setFilePath(str(results["OUTPUT_SERIES"]))
            layer = _loaded_layer(self.project, str(results.get("OUTPUT_STATIONS") or ""))
            if layer is not None:
                self.stationsCsv.setFilePath("")
                self.stationsLayerCombo.setLayer(layer)
                self.stationIdCombo.setField("station")
            self.stationsGroup.setCollapsed(False)
        self.refresh_layers(guess=True)

    # ------------------------------------------------------------------ layers and roles
    def _on_layers_changed(self, *_args) -> None:
        self.refresh_layers()

    def _on_providers_changed(self, *_args) -> None:
        self.refresh_methods()

    def _raster_layers(self) -> list[QgsRasterLayer]:
        layers = [lay for lay in self.project.mapLayers().values() if isinstance(lay, QgsRasterLayer) and lay.isValid()]
        return sorted(layers, key=lambda lay: lay.name().lower())

    def _facts(self, layer: QgsRasterLayer) -> LayerFacts:
        """What the role guess needs to know about a layer (metadata only; values for unnamed layers)."""
        key = layer.id()
        if key in self._facts_cache:
            return self._facts_cache[key]
        descriptions: tuple[str, ...] = ()
        meta: dict[str, str] = {}
        if layer.providerType() == "gdal":
            try:
                ds = gdal.Open(layer.source())
                descriptions = tuple(ds.GetRasterBand(b).GetDescription() or "" for b in range(1, ds.RasterCount + 1))
                meta = dict(ds.GetMetadata() or {})
                ds = None
            except RuntimeError:
                pass
        md = layer.metadata()
        keywords = " ".join([md.title(), md.abstract()] + [k for ks in md.keywords().values() for k in ks])
        facts = LayerFacts(layer.name(), layer.source(), layer.bandCount(), descriptions,
                           layer.rasterUnitsPerPixelX(), layer.crs().isGeographic(), None, keywords, meta)
        if guess_role(facts) is None and layer.bandCount() == 1:
            stats = layer.dataProvider().bandStatistics(1, QgsRasterBandStats.Min | QgsRasterBandStats.Max,
                                                        QgsRectangle(), 250_000)
            facts = LayerFacts(facts.name, facts.source, facts.band_count, facts.band_descriptions, facts.pixel_size,
                               facts.geographic, (stats.minimumValue, stats.maximumValue), keywords, meta)
        self._facts_cache[key] = facts
        return facts

    def refresh_layers(self, guess: bool = False, use_saved: bool = False) -> None:
        """Re-list the project's rasters; with ``guess`` pre-fill every role from names and values.

        Without ``guess`` the current choices stay, and only layers new to the dock are guessed
        into roles that are still empty (or, for soil moisture, when no date is ticked).
        """
        layers = self._raster_layers()
        ids = {lay.id() for lay in layers}
        self._facts_cache = {k: v for k, v in self._facts_cache.items() if k in ids}
        facts = [self._facts(lay) for lay in layers]
        roles = guess_roles(facts)
        new = {lay.id() for lay in layers} - self._seen_layers
        self._seen_layers = ids
        checked = set(self.soil_moisture_ids())
        roles = {r: [layers[i].id() for i in v] for r, v in roles.items()}
        if use_saved:  # the layers chosen last time, when they are in this project
            by_source = {lay.source(): lay.id() for lay in layers}
            for key, sources in self._choices.roles.items():
                found = [by_source[s] for s in sources if s in by_source]
                if found and key in {r.value for r in Role}:
                    roles[Role(key)] = found
        sm_guess = roles.get(Role.SOIL_MOISTURE, [])
        self._sm_guess = list(sm_guess)
        if guess:
            checked = set(sm_guess)
        elif not checked:
            checked = {i for i in sm_guess if i in new}
        else:
            checked &= ids
        # soil-moisture list: guessed layers first, then the others
        self.smList.blockSignals(True)
        self.smList.clear()
        order = [lay for lay in layers if lay.id() in sm_guess] + [lay for lay in layers if lay.id() not in sm_guess]
        for lay in order:
            item = QListWidgetItem(lay.name())
            item.setData(Qt.UserRole, lay.id())
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if lay.id() in checked else Qt.Unchecked)
            self.smList.addItem(item)
        self.smList.blockSignals(False)
        for role, picker in self.pickers.items():
            picker.refresh(layers)
            wanted = roles.get(role, [])
            if guess or (not picker.selected() and any(i in new for i in wanted)):
                picker.set_selected(wanted if guess else [i for i in wanted if i in new])
        if guess and self.stationsLayerCombo.currentLayer() is None:
            self._guess_stations_layer(use_saved)
        self._update_dates()

    def _guess_stations_layer(self, use_saved: bool) -> None:
        points = [lay for lay in self.project.mapLayers().values()
                  if isinstance(lay, QgsVectorLayer) and lay.geometryType() == QgsWkbTypes.PointGeometry]
        saved = [lay for lay in points if use_saved and lay.source() == self._choices.stations_source]
        named = [lay for lay in points if any(w in lay.name().lower() for w in ("station", "site", "insitu", "in-situ"))]
        pick = (saved or named or [None])[0]
        self.stationsLayerCombo.setLayer(pick)
        if pick is not None and self._choices.station_id_field:
            self.stationIdCombo.setField(self._choices.station_id_field)

    def soil_moisture_ids(self) -> list[str]:
        return [self.smList.item(i).data(Qt.UserRole) for i in range(self.smList.count())
                if self.smList.item(i).checkState() == Qt.Checked]

    def _check_all_sm(self, on: bool) -> None:
        """Tick every layer that looks like coarse soil moisture (``on``), or untick all."""
        self.smList.blockSignals(True)
        for i in range(self.smList.count()):
            item = self.smList.item(i)
            item.setCheckState(Qt.Checked if on and item.data(Qt.UserRole) in self._sm_guess else Qt.Unchecked)
        self.smList.blockSignals(False)
        self._update_dates()

    def _update_dates(self, *_args) -> None:
        dates, undated = [], 0
        for lid in self.soil_moisture_ids():
            lay = self.project.mapLayer(lid)
            if lay is None:
                continue
            found = layer_dates(self._facts(lay))
            dates.extend(found)
            undated += not found
        self.smDatesLabel.setText(describe_dates(dates, undated) if self.soil_moisture_ids() else "no layer ticked")

    # ------------------------------------------------------------------ methods and models
    def downscaling_algorithms(self) -> list:
        """Every algorithm of our provider in the "downscaling" group, by display name."""
        provider = QgsApplication.processingRegistry().providerById(PROVIDER_ID)
        if provider is None:
            return []
        return sorted((a for a in provider.algorithms() if a.groupId() == DOWNSCALING_GROUP),
                      key=lambda a: a.displayName().lower())

    def refresh_methods(self) -> None:
        current = self.methodCombo.currentData() or self._choices.algorithm_id
        self.methodCombo.blockSignals(True)
        self.methodCombo.clear()
        for alg in self.downscaling_algorithms():
            self.methodCombo.addItem(alg.displayName(), alg.id())
        i = self.methodCombo.findData(current)
        self.methodCombo.setCurrentIndex(max(i, 0))
        self.methodCombo.blockSignals(False)
        if self.methodCombo.count() == 0:
            self.methodHelp.setText("The plugin's Processing provider is not loaded: no method to offer.")
        self._method_changed()

    def current_algorithm(self):
        alg_id = self.methodCombo.currentData()
        return QgsApplication.processingRegistry().algorithmById(alg_id) if alg_id else None

    def _method_changed(self, *_args) -> None:
        self._save_option_values()
        alg = self.current_algorithm()
        while self.optionsForm.rowCount():
            self.optionsForm.removeRow(0)
        self._option_widgets = {}
        self._advanced_box = None
        if alg is None:
            self.modelBox.setVisible(False)
            return
        help_text = alg.shortHelpString().split("<br>")[0].split("<h3>")[0]
        self.methodHelp.setText(help_text)
        saved = self._choices.options.get(alg.id(), {})
        advanced_form = None
        for param in alg.parameterDefinitions():
            name = param.name()
            if name in HANDLED_PARAMETERS or name in MODEL_PARAMETERS or param.isDestination() or \
                    param.flags() & FLAG_HIDDEN:
                continue
            widget = self._option_widget(param, saved.get(name, param.defaultValue()))
            if widget is None:
                continue
            widget.setObjectName(f"option_{name}")
            widget.setToolTip(param.help() or param.description())
            self._option_widgets[name] = (param, widget)
            label = QLabel(param.description())
            label.setWordWrap(True)
            if param.flags() & FLAG_ADVANCED:
                if advanced_form is None:
                    self._advanced_box = QgsCollapsibleGroupBox("Advanced options", self)
                    self._advanced_box.setObjectName("advancedOptions")
                    advanced_form = QFormLayout(self._advanced_box)
                    self._advanced_box.setCollapsed(True)
                advanced_form.addRow(label, widget)
            else:
                self.optionsForm.addRow(label, widget)
        if self._advanced_box is not None:
            self.optionsForm.addRow(self._advanced_box)
        self._refresh_models()

    @staticmethod
    def _option_widget(param, value):
        kind = param.type()
        if kind == "enum":
            w = QComboBox()
            _compact(w)
            w.addItems(param.options())
            try:
                w.setCurrentIndex(int(value) if value is not None else 0)
            except (TypeError, ValueError):
                pass
            return w
        if kind == "boolean":
            w = QCheckBox()
            w.setChecked(bool(value))
            return w
        if kind == "number":
            integer = param.dataType() == param.Integer
            w = QgsSpinBox() if integer else QgsDoubleSpinBox()
            if not integer:
                w.setDecimals(6)
            lo = param.minimum() if param.minimum() > -1e300 else -1e9
            hi = param.maximum() if param.maximum() < 1e300 else 1e9
            w.setRange(int(max(lo, -2**31 + 1)) if integer else lo, int(min(hi, 2**31 - 1)) if integer else hi)
            if value is not None:
                try:
                    w.setValue(int(value) if integer else float(value))
                except (TypeError, ValueError):
                    pass
            if param.defaultValue() is not None:
                w.setClearValue(int(param.defaultValue()) if integer else float(param.defaultValue()))
            return w
        if kind == "string":
            w = QLineEdit()
            w.setText("" if value is None else str(value))
            return w
        return None

    def option_values(self) -> dict[str, Any]:
        out = {}
        for name, (param, w) in self._option_widgets.items():
            if isinstance(w, QComboBox):
                out[name] = w.currentIndex()
            elif isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QLineEdit):
                if w.text().strip():
                    out[name] = w.text().strip()
            else:
                out[name] = w.value()
        return out

    def set_option(self, name: str, value: Any) -> None:
        """Set a method option by parameter name (as a user would in the form)."""
        _param, w = self._option_widgets[name]
        if isinstance(w, QComboBox):
            w.setCurrentIndex(int(value))
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QLineEdit):
            w.setText(str(value))
        else:
            w.setValue(value)

    def _save_option_values(self) -> None:
        alg_id = getattr(self, "_options_alg_id", "")
        if alg_id and self._option_widgets:
            self._choices.options[alg_id] = self.option_values()
        alg = self.current_algorithm()
        self._options_alg_id = alg.id() if alg is not None else ""

    def model_parameter(self) -> str:
        alg = self.current_algorithm()
        if alg is None:
            return ""
        if not getattr(alg, "DOCK_LISTS_MODELS", True):  # its model is optional (e.g. trained on the fly)
            return ""
        names = {p.name() for p in alg.parameterDefinitions()}
        return next((n for n in MODEL_PARAMETERS if n in names), "")

    def _refresh_models(self) -> None:
        param = self.model_parameter()
        self.modelBox.setVisible(bool(param))
        self.modelCombo.blockSignals(True)
        self.modelCombo.clear()
        if param:
            try:
                from ..core.learn.model_folder import list_ensembles
                infos = list_ensembles(model_folders())
            except ImportError as exc:  # onnx/onnxruntime missing: say so instead of failing
                infos = []
                self.modelCard.setHtml(f"<p>Trained models cannot be listed: {html.escape(str(exc))}</p>")
            if any(i.valid and i.tier for i in infos):
                from ..core.learn.model_folder import EnsembleInfo
                self.modelCombo.addItem(AUTO_MODEL_LABEL, EnsembleInfo(AUTO_MODEL_LABEL, ""))
            for info in infos:
                self.modelCombo.addItem(info.name + ("" if info.valid else " (cannot be used)"), info)
            i = next((k for k in range(self.modelCombo.count())
                      if self.modelCombo.itemData(k).folder == self._choices.model), 0)
            self.modelCombo.setCurrentIndex(i)
        self.modelCombo.blockSignals(False)
        self._model_changed()

    def _auto_choice(self):
        """``(info of the richest bundled tier the picked layers satisfy, TierChoice)``, or ``(None, reason)``."""
        from ..core.errors import InputError
        from ..core.methods.insitu_ensemble.tiers import LayerRoles, pick_tier

        infos = [self.modelCombo.itemData(k) for k in range(self.modelCombo.count())]
        infos = [i for i in infos if i is not None and i.folder]
        roles = {role.value: len(p.selected()) for role, p in self.pickers.items() if p.selected()}
        derive = bool(self.option_values().get("DERIVE_TERRAIN", True))
        try:
            choice = pick_tier(infos, LayerRoles.of(roles, derive))
        except InputError as exc:
            return None, str(exc)
        return next(i for i in infos if i.folder == choice.folder), choice

    def _resolved_info(self):
        """The chosen model's info; for *Automatic*, that of the tier it resolves to — or, when the layers
        satisfy none, the least demanding tier, so that the check names what is missing."""
        info = self.modelCombo.currentData()
        if info is not None and not info.folder and info.valid:
            chosen, _ = self._auto_choice()
            if chosen is None:
                tiers = [self.modelCombo.itemData(k) for k in range(self.modelCombo.count())]
                tiers = [i for i in tiers if i is not None and i.folder and i.valid and i.tier]
                chosen = min(tiers, key=lambda i: int(i.tier["rank"]), default=None)
            return chosen
        return info

    def _model_changed(self, *_args) -> None:
        info = self.modelCombo.currentData()
        if info is not None and not info.folder:
            chosen, why = self._auto_choice()
            self.modelCard.setHtml(f"<p><i>{html.escape(why if chosen is None else why.message())}</i></p>"
                                   + (card_html(chosen) if chosen is not None else ""))
        elif info is not None:
            self.modelCard.setHtml(card_html(info))
        elif self.model_parameter():
            self.modelCard.setHtml("<p>No trained model found in: " + ", ".join(
                html.escape(f) for f in model_folders()) + "</p>")

    def model_value(self) -> str:
        """The value passed to the method's model parameter: an option index for an enum, else the folder."""
        info = self._resolved_info()
        if info is None or not info.valid:
            return ""
        alg = self.current_algorithm()
        param = alg.parameterDefinition(self.model_parameter()) if alg is not None else None
        if param is not None and param.type() == "enum":
            names = [o.lower() for o in param.options()]
            for key in (info.name.lower(), os.path.basename(info.folder).lower()):
                if key in names:
                    return str(names.index(key))
            return ""
        return info.folder

    def _model_card(self) -> Optional[dict]:
        info = self._resolved_info() if self.model_parameter() else None
        if info is None or not info.valid:
            return None
        try:
            import onnx

            from ..core.learn.card import read_card
            from ..core.learn.model_folder import member_files
            return read_card(onnx.load(member_files(info.folder)[0]))
        except Exception as exc:  # noqa: BLE001 — a bad card shows as a problem, not a crash
            QgsMessageLog.logMessage(f"Model card of {info.folder}: {exc}", LOG_TAG, Qgis.Warning)
            return None

    # ------------------------------------------------------------------ the request
    def request(self) -> RunRequest:
        """The widgets' state as a :class:`RunRequest` (a new time stamp each call)."""
        sm = self.soil_moisture_ids()
        crs = self.crsWidget.crs()
        stations = self.stationsLayerCombo.currentLayer()
        names = [self.project.mapLayer(i).name() for i in sm if self.project.mapLayer(i) is not None]
        now = _dt.datetime.now()
        return RunRequest(
            algorithm_id=self.methodCombo.currentData() or "",
            method_label=self.methodCombo.currentText(),
            soil_moisture=sm,
            covariates={role: p.selected() for role, p in self.pickers.items()},
            output_folder=self.outputFolder.filePath().strip(),
            stamp=now.strftime("%Y%m%d-%H%M%S"),
            resolution=self.resolutionSpin.value(),
            crs=(crs.authid() or crs.toWkt()) if crs.isValid() else "",
            options=self.option_values(),
            model_parameter=self.model_parameter(),
            model=self.model_value() if self.model_parameter() else "",
            stations_layer=stations.id() if stations is not None else "",
            station_id_field=self.stationIdCombo.currentField() if stations is not None else "",
            stations_csv="" if stations is not None else self.stationsCsv.filePath().strip(),
            insitu_csv=self.insituCsv.filePath().strip(),
            coarse_name=series_name(names),
        )

    # ------------------------------------------------------------------ checking
    def check_inputs(self) -> CheckResult:
        """Run the pre-run check and list its findings; returns them."""
        result = self._precheck(self.request())
        self._show_check(result)
        return result

    def _precheck(self, req: RunRequest) -> CheckResult:
        alg = self.current_algorithm()
        if alg is None:
            return CheckResult(errors=["No downscaling method is available."])
        context = QgsProcessingContext()
        context.setProject(self.project)
        try:
            return precheck(req, alg, context, self._model_card())
        except Exception as exc:  # noqa: BLE001 — show it, and keep the traceback for a bug report
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.Critical)
            return CheckResult(errors=[f"The check itself failed ({type(exc).__name__}: {exc}); "
                                       "details are in the log panel."])

    def _show_check(self, res: CheckResult) -> None:
        parts = []
        if res.errors:
            parts.append(f"<p><b style='color:#b2182b'>{len(res.errors)} problem(s) to fix before running:</b></p><ul>"
                         + "".join(f"<li style='color:#b2182b'>{html.escape(e)}</li>" for e in res.errors) + "</ul>")
        if res.warnings:
            parts.append("<ul>" + "".join(f"<li style='color:#b35806'>⚠ {html.escape(w)}</li>" for w in res.warnings)
                         + "</ul>")
        if res.ok:
            parts.insert(0, "<p><b style='color:#1a9641'>✔ Inputs look fine.</b> " + html.escape(res.summary) + "</p>")
        self.messages.setHtml("".join(parts))

    # ------------------------------------------------------------------ running
    def is_running(self) -> bool:
        return bool(self._stage)

    def run(self) -> bool:
        """Check, then start the run in the background; ``False`` if the check found problems."""
        if self.is_running():
            return False
        req = self.request()
        self._save_choices()
        res = self._precheck(req)
        self._show_check(res)
        if not res.ok:
            return False
        os.makedirs(req.output_folder, exist_ok=True)
        self._request = req
        self._group = None
        self.last_run = {"request": req}
        alg = self.current_algorithm()
        names = {p.name() for p in alg.parameterDefinitions()}
        self._log("info", f"Run {req.stamp}: {req.method_label} on {len(req.soil_moisture)} coarse layer(s) → "
                          f"{req.output_folder}")
        params = req.to_parameters(accepted=names)
        for param in alg.destinationParameterDefinitions():  # further outputs of the method, e.g. an ensemble's spread
            if param.name() not in params and param.name() not in HANDLED_PARAMETERS and \
                    param.type() == "rasterDestination":
                params[param.name()] = req.destination(param.name())
        self._start(req.algorithm_id, params, "downscale")
        return True

    def cancel(self) -> None:
        if self._feedback is not None and self.is_running():
            self._log("warning", "Canceling…")
            self._feedback.cancel()
            self.cancelButton.setEnabled(False)

    def _start(self, alg_id: str, params: dict, stage: str) -> None:
        registry = QgsApplication.processingRegistry()
        alg = registry.algorithmById(alg_id)
        self._context = QgsProcessingContext()
        self._context.setProject(self.project)
        self._feedback = _Feedback()
        self._feedback.progressChanged.connect(self._on_progress)
        self._feedback.message.connect(self._log)
        for param in alg.destinationParameterDefinitions():
            name = param.name()
            if name in params and param.type() in _LAYER_OUTPUTS:
                definition = QgsProcessingOutputLayerDefinition(params[name], self.project)
                definition.destinationName = OUTPUT_NAMES.get(name, param.description())
                params[name] = definition
        self._stage = stage
        self._set_busy(True)
        self._task = QgsProcessingAlgRunnerTask(alg, params, self._context, self._feedback)
        key = id(self._task)
        _RUNNING[key] = (self._task, self._context, self._feedback)
        self._task.executed.connect(self._on_executed)
        self._task.executed.connect(functools.partial(_forget, key))
        self.destroyed.connect(self._feedback.cancel)  # the panel deleted mid-run: stop the run
        QgsApplication.taskManager().addTask(self._task)

    def _on_progress(self, value: float) -> None:
        self.progressBar.setValue(int(value))

    def _on_executed(self, ok: bool, results: dict) -> None:
        stage, req = self._stage, self._request
        self._task = None
        if not ok:
            canceled = self._feedback is not None and self._feedback.isCanceled()
            self._log("warning" if canceled else "error",
                      "Canceled: nothing was written." if canceled else
                      f"The {'site report' if stage == 'report' else 'downscaling'} failed; see the messages above.")
            self._finish(False)
            return
        if stage == "downscale":
            self._group = self._result_group(req)
            self.last_run.update(group=self._group.name(), output=results.get("OUTPUT"))
            self._load_outputs()
            if req.wants_report:
                self._start(SITE_REPORT_ID, req.report_parameters(results["OUTPUT"]), "report")
                return
        else:
            self._load_outputs()
            self.last_run.update(report=results.get("REPORT"), sites_csv=results.get("SCORES_CSV"))
            if self.openReportCheck.isChecked() and self.open_reports and results.get("REPORT"):
                QDesktopServices.openUrl(QUrl.fromLocalFile(results["REPORT"]))
        self._finish(True)

    def _result_group(self, req: RunRequest):
        root = self.project.layerTreeRoot()
        return root.insertGroup(0, req.group_name(_dt.datetime.now().strftime("%H:%M:%S")))

    def _load_outputs(self) -> None:
        """Open the outputs Processing listed for loading, into the run's group, and apply their
        post-processors (styles, dates for the temporal controller)."""
        context, group = self._context, self._group
        names = {v: k for k, v in OUTPUT_NAMES.items()}
        dates: list[_dt.date] = []
        for path, details in context.layersToLoadOnCompletion().items():
            layer = QgsProcessingUtils.mapLayerFromString(path, context, True)
            if layer is None:
                self._log("warning", f"Could not open the output {path}.")
                continue
            if details.name:
                layer.setName(details.name)
            taken = context.temporaryLayerStore().takeMapLayer(layer)
            layer = taken or layer
            self.project.addMapLayer(layer, False)
            node = group.insertLayer(0, layer) if isinstance(layer, QgsVectorLayer) else group.addLayer(layer)
            kind = names.get(details.name.split(" – ")[0], "")
            if kind in HIDDEN_OUTPUTS:
                node.setItemVisibilityChecked(False)
                node.setExpanded(False)
            processor = details.postProcessor()
            if processor is not None:
                processor.postProcessLayer(layer, context, self._feedback)
                dates.extend(getattr(processor, "dates", []))
            self.last_run.setdefault("layers", []).append(layer.id())
        context.setLayersToLoadOnCompletion({})
        if dates:
            start = QDateTime(QDate(min(dates).year, min(dates).month, min(dates).day), QTime(0, 0))
            end = max(dates) + _dt.timedelta(days=1)
            self.project.timeSettings().setTemporalRange(
                QgsDateTimeRange(start, QDateTime(QDate(end.year, end.month, end.day), QTime(0, 0))))

    def _finish(self, ok: bool) -> None:
        self._stage = ""
        self._set_busy(False)
        if ok:
            self.progressBar.setValue(100)
            self._log("info", "Done: the results are in the group "
                              f"'{self.last_run.get('group', '')}'" + (f"; report: {self.last_run['report']}"
                                                                       if self.last_run.get("report") else "."))
        else:
            self.progressBar.setValue(0)
        self.runFinished.emit(ok, {k: v for k, v in self.last_run.items() if k != "request"})

    def _set_busy(self, busy: bool) -> None:
        self.runButton.setEnabled(not busy)
        self.checkButton.setEnabled(not busy)
        self.cancelButton.setEnabled(busy)
        for box in (self.downloadsGroup, self.smGroup, self.covariatesGroup, self.methodGroup, self.gridGroup,
                    self.stationsGroup):
            box.setEnabled(not busy)
        if busy:
            self.progressBar.setValue(0)

    def _log(self, level: str, text: str) -> None:
        colour = {"warning": "#b35806", "error": "#b2182b"}.get(level, "#333333")
        first = text.splitlines()[0] if text else ""
        if "\n" in text and level == "info":  # tables from the algorithms: keep them legible
            self.messages.append(f"<pre style='color:{colour}'>{html.escape(text)}</pre>")
        else:
            self.messages.append(f"<span style='color:{colour}'>{html.escape(first if level == 'info' else text)}</span>")

    # ------------------------------------------------------------------ settings
    def _load_choices(self) -> DockChoices:
        return DockChoices.from_json(QgsSettings().value(SETTINGS_KEY, "", type=str))

    def _apply_choices(self) -> None:
        c = self._choices
        self.resolutionSpin.setValue(c.resolution)
        crs = QgsCoordinateReferenceSystem(c.crs) if c.crs else QgsCoordinateReferenceSystem()
        self.crsWidget.setCrs(crs)
        home = self.project.homePath() or os.path.expanduser("~")
        self.outputFolder.setFilePath(c.output_folder or os.path.join(home, "soil_moisture_runs"))
        self.stationsCsv.setFilePath(c.stations_csv)
        self.insituCsv.setFilePath(c.insitu_csv)
        self.openReportCheck.setChecked(c.open_report)

    def _save_choices(self) -> None:
        self._save_option_values()
        c = self._choices
        c.algorithm_id = self.methodCombo.currentData() or c.algorithm_id
        c.roles = {}
        sm = [self.project.mapLayer(i).source() for i in self.soil_moisture_ids() if self.project.mapLayer(i)]
        if sm:
            c.roles[Role.SOIL_MOISTURE.value] = sm
        for role, picker in self.pickers.items():
            sources = [self.project.mapLayer(i).source() for i in picker.selected() if self.project.mapLayer(i)]
            if sources:
                c.roles[role.value] = sources
        c.resolution = self.resolutionSpin.value()
        crs = self.crsWidget.crs()
        c.crs = (crs.authid() or crs.toWkt()) if crs.isValid() else ""
        c.output_folder = self.outputFolder.filePath()
        info = self.modelCombo.currentData()
        c.model = info.folder if info is not None else c.model
        stations = self.stationsLayerCombo.currentLayer()
        c.stations_source = stations.source() if stations is not None else ""
        c.station_id_field = self.stationIdCombo.currentField()
        c.stations_csv = self.stationsCsv.filePath()
        c.insitu_csv = self.insituCsv.filePath()
        c.open_report = self.openReportCheck.isChecked()
        QgsSettings().setValue(SETTINGS_KEY, c.to_json())

    def closeEvent(self, event):  # noqa: N802 (Qt API)
        self._save_choices()
        super().closeEvent(event)


def _loaded_layer(project: QgsProject, output: str):
    """The project layer Processing loaded for ``output`` (a layer id, or a file path / source)."""
    if not output:
        return None
    layer = project.mapLayer(output)
    if layer is not None:
        return layer
    path = os.path.normcase(os.path.abspath(output.split("|", 1)[0]))
    for lay in project.mapLayers().values():
        if os.path.normcase(os.path.abspath(lay.source().split("|", 1)[0])) == path:
            return lay
    return None


def _compact(combo: QComboBox) -> None:
    """Let a combo box shrink to the dock's width instead of growing to its longest item."""
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)


#: First entry of the model list when bundled tiers exist: resolved to a tier at run time.
AUTO_MODEL_LABEL = "Automatic: the richest bundled tier your layers satisfy"


def card_html(info) -> str:
    """A model's card for the dock: what it needs, what it was trained on, how it scored."""
    e = html.escape
    if not info.valid:
        return f"<p style='color:#b2182b'><b>{e(info.name)}</b> cannot be used: {e(info.error)}</p>"
    td = info.training_data or {}
    period = " to ".join(td.get("period", []) or [])
    rows = []
    for protocol, s in (info.scores or {}).items():
        ens, coarse = (s.get("ensemble") or {}).get("mean", {}), (s.get("coarse") or {}).get("mean", {})

        def f(d, k):
            v = d.get(k)
            return "—" if v is None else f"{v:.3f}"
        resc = (s.get("coarse_rescaled") or {}).get("mean", {})
        cov = (s.get("interval") or {}).get("coverage")
        rows.append(f"<tr><td>{e(protocol)}</td><td>{f(ens, 'r')} / {f(coarse, 'r')}</td>"
                    f"<td>{f(ens, 'ubrmse')} / {f(coarse, 'ubrmse')}</td><td>{f(resc, 'r')} / {f(resc, 'ubrmse')}</td>"
                    f"<td>{'—' if cov is None else f'{cov:.0%}'}</td></tr>")
    table = ("<table border='0' cellspacing='0' cellpadding='2'><tr><th align='left'>Validation</th>"
             "<th>R model / coarse</th><th>ubRMSE model / coarse</th><th>rescaled coarse R / ubRMSE</th>"
             "<th>interval holds</th></tr>" + "".join(rows) + "</table>") if rows else ""
    return (f"<p><b>{e(info.name)}</b> — {info.n_members} members<br>{e(info.description)}</p>"
            f"<p><b>Inputs:</b> {e(', '.join(info.inputs))}<br>"
            f"<b>Trained on:</b> {e(td.get('description', ''))}"
            + (f"; {td.get('n_sites')} sites, {td.get('n_samples')} samples" if td.get("n_sites") else "")
            + (f"; {e(period)}" if period else "") + "</p>"
            + (f"<p><b>Layers needed:</b> {e('; '.join(info.tier.get('layers', [])))}</p>" if info.tier else "")
            + table)
