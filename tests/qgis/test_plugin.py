"""The plugin loads the way QGIS and qgis_process load it."""
from __future__ import annotations

from qgis.core import QgsApplication


def test_plugin_loads_without_iface_and_registers_provider(plugin, provider):
    assert plugin.iface is None
    assert plugin.provider is provider
    assert provider.id() == "soil_moisture_downscaling"
    assert provider.name() == "Soil Moisture Downscaling"


def test_provider_lists_check_inputs(provider):
    ids = [alg.id() for alg in provider.algorithms()]
    assert "soil_moisture_downscaling:check_inputs" in ids
    alg = QgsApplication.processingRegistry().algorithmById("soil_moisture_downscaling:check_inputs")
    assert alg.displayName() == "Check soil-moisture inputs"
    assert alg.group() == "Inputs" and alg.groupId() == "inputs"


def test_a_second_copy_does_not_replace_the_registered_provider(plugin_package, provider):
    other = plugin_package.classFactory(None)
    other.initProcessing()  # same id: refused, logged, no crash
    assert other.provider is None
    other.unload()
    assert QgsApplication.processingRegistry().providerById("soil_moisture_downscaling") is provider


def test_init_gui_adds_a_panel_action_and_unload_removes_it(plugin_package, qgis_iface):
    gui_plugin = plugin_package.classFactory(qgis_iface)
    gui_plugin.initGui()
    try:
        action = gui_plugin.action
        assert action is not None and action.isCheckable()
        # Enabled exactly when ui/dock.py exists (written separately from the algorithms).
        assert action.isEnabled() == gui_plugin._dock_available()
    finally:
        gui_plugin.unload()
    assert gui_plugin.action is None
