"""Import SMAP HDF5 granules or ESA CCI NetCDF files as one dated soil-moisture GeoTIFF."""
from __future__ import annotations

from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingException

from ..core.io.products import import_products
from . import spec_params as ps
from . import specs
from .base import CoreFeedback, SmAlgorithm, core_errors
from .output_layers import load_on_completion


class ImportProduct(SmAlgorithm):
    NAME = "import_product"
    DISPLAY_NAME = "Import a soil-moisture product (SMAP HDF5, ESA CCI NetCDF)"
    GROUP_ID = "inputs"
    GROUP = "Inputs"
    HELP = specs.IMPORT_PRODUCT_HELP

    INPUT = "INPUT"
    EXTENT = "EXTENT"
    PASSES = "PASSES"
    RECOMMENDED_ONLY = "RECOMMENDED_ONLY"
    L4_VARIABLE = "L4_VARIABLE"
    L4_TIME = "L4_TIME"
    MASK_FLAGGED = "MASK_FLAGGED"
    KEEP_EMPTY = "KEEP_EMPTY"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: N802
        ps.add_specs(self, *specs.IMPORT_PRODUCT_SPECS)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        paths = [p for p in self.parameterAsFileList(parameters, self.INPUT, context) if p]
        if not paths:
            raise QgsProcessingException(self.tr("No product file was given. Fix: select the downloaded .h5 or .nc files."))
        bounds, bounds_crs = None, None
        if parameters.get(self.EXTENT):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context)
            crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
            if not rect.isNull() and not rect.isEmpty():
                bounds = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
                bounds_crs = _crs_text(crs if crs.isValid() else context.project().crs())
        options = specs.product_options(ps.spec_values(self, parameters, context, specs.IMPORT_PRODUCT_SPECS))
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        cf = CoreFeedback(feedback)
        with core_errors():
            result = import_products(paths, out, bounds, bounds_crs, options, cf.progress, cf.is_canceled)
        feedback.pushInfo(self.tr(f"{result.product}: {len(result.dates)} dates on a {result.grid.width}×"
                                  f"{result.grid.height} grid of {result.grid.dx:g}"))
        for line in result.log:
            feedback.pushInfo(line)
        load_on_completion(context, out, result.dates, out.rsplit(".", 1)[0] + ".qml")
        return {self.OUTPUT: out}


def _crs_text(crs: QgsCoordinateReferenceSystem) -> str:
    return crs.authid() if crs.authid().upper().startswith("EPSG:") else crs.toWkt(QgsCoordinateReferenceSystem.WKT1_GDAL)
