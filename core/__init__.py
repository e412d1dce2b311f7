"""QGIS-free engine of the soil-moisture downscaling plugin.

Everything here works on numpy arrays, GDAL datasets and plain files, so a script,
a CLI or a cluster worker can call it without QGIS. Nothing in this package may
import ``qgis`` or ``PyQt`` (a unit test walks the AST to keep it so).
"""
