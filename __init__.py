"""Soil Moisture Downscaling: QGIS plugin entry point.

QGIS (and ``qgis_process``) calls :func:`classFactory`; everything heavy is imported
lazily there so that merely scanning the plugin folder stays cheap.
"""


def classFactory(iface):  # noqa: N802 (name fixed by QGIS)
    """Return the plugin instance; ``iface`` is ``None`` under ``qgis_process``."""
    from .plugin import SoilMoistureDownscalingPlugin

    return SoilMoistureDownscalingPlugin(iface)
