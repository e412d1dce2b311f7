"""Plugin object: registers the Processing provider and, with a GUI, a menu action for the dock.

``qgis_process`` calls ``classFactory(None)`` and then only :meth:`initProcessing`, so nothing
here may touch ``iface`` outside :meth:`initGui`, and the dock module is imported only when
the user opens the panel.

Contract with ``ui/dock.py``: it defines ``SoilMoistureDock(iface, parent)``, a ``QDockWidget``.
"""
from __future__ import annotations

import importlib.util

from qgis.core import Qgis, QgsApplication, QgsMessageLog
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QAction

from .processing_provider.base import tr as _tr
from .processing_provider.provider import SoilMoistureProvider

PLUGIN_NAME = "Soil Moisture Downscaling"
_DOCK_MODULE = "ui.dock"


class SoilMoistureDownscalingPlugin:
    """What QGIS holds for this plugin between load and unload."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: SoilMoistureProvider | None = None
        self.action: QAction | None = None
        self.dock = None

    # -- Processing (also used headless by qgis_process) -------------------------------------
    def initProcessing(self) -> None:  # noqa: N802 (QGIS API name)
        if self.provider is not None:
            return
        provider = SoilMoistureProvider()
        if QgsApplication.processingRegistry().addProvider(provider):
            self.provider = provider
        else:  # the registry refused (and deleted) it: another copy of the plugin holds the id
            QgsMessageLog.logMessage(
                _tr("A Processing provider with id '{id}' is already registered; not adding a second one.")
                .format(id=provider.id()),
                PLUGIN_NAME,
                Qgis.MessageLevel.Warning,
            )

    # -- GUI --------------------------------------------------------------------------------
    def initGui(self) -> None:  # noqa: N802 (QGIS API name)
        self.initProcessing()
        if self.iface is None:
            return
        self.action = QAction(_tr("Soil Moisture Downscaling panel"), self.iface.mainWindow())
        self.action.setObjectName("soil_moisture_downscaling_toggle_dock")
        self.action.setCheckable(True)
        if self._dock_available():
            self.action.setToolTip(_tr("Show or hide the Soil Moisture Downscaling panel"))
        else:
            # The panel ships later than the algorithms: keep the menu entry, say why it is idle.
            self.action.setEnabled(False)
            self.action.setToolTip(
                _tr("The panel is not part of this build; use the Processing Toolbox algorithms")
            )
        self.action.toggled.connect(self._toggle_dock)
        self.iface.addPluginToRasterMenu(PLUGIN_NAME, self.action)

    @staticmethod
    def _dock_available() -> bool:
        try:
            return importlib.util.find_spec(f"{__package__}.{_DOCK_MODULE}") is not None
        except ImportError:  # parent package ``ui`` missing altogether
            return False

    def _toggle_dock(self, checked: bool) -> None:
        if self.dock is None:
            if not checked:
                return
            try:
                from .ui.dock import SoilMoistureDock
            except ModuleNotFoundError as exc:
                if exc.name is None or not exc.name.endswith(_DOCK_MODULE):
                    raise  # a real missing dependency inside the dock module: show it
                message = _tr("The panel is not available in this build of the plugin.")
                QgsMessageLog.logMessage(message, PLUGIN_NAME, Qgis.MessageLevel.Warning)
                self.iface.messageBar().pushWarning(PLUGIN_NAME, message)
                self.action.setChecked(False)
                return
            self.dock = SoilMoistureDock(self.iface, self.iface.mainWindow())
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
            self.dock.visibilityChanged.connect(self.action.setChecked)
        self.dock.setVisible(checked)

    def unload(self) -> None:
        if self.dock is not None:
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.action is not None:
            self.iface.removePluginRasterMenu(PLUGIN_NAME, self.action)
            self.action.deleteLater()
            self.action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
