"""Import SMAP HDF5 granules or ESA CCI NetCDF files as one dated soil-moisture GeoTIFF."""
from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
)

from ..core.io.products import PASS_MODES, ProductOptions, import_products
from .base import CoreFeedback, SmAlgorithm, core_errors
from .output_layers import load_on_completion

try:  # 3.36+
    from qgis.core import Qgis
    TYPE_FILE = Qgis.ProcessingSourceType.File
except AttributeError:  # QGIS < 3.36
    TYPE_FILE = QgsProcessing.TypeFile

#: L4 time steps a user can pick (UTC centres of the 3-hourly SPL4SMGP granules); index 0 = daily mean.
L4_TIMES = ("", "01:30", "04:30", "07:30", "10:30", "13:30", "16:30", "19:30", "22:30")


class ImportProduct(SmAlgorithm):
    NAME = "import_product"
    DISPLAY_NAME = "Import a soil-moisture product (SMAP HDF5, ESA CCI NetCDF)"
    GROUP_ID = "inputs"
    GROUP = "Inputs"
    HELP = (
        "Turns the files as downloaded — SMAP L3 radiometer 36 km (SPL3SMP), enhanced 9 km (SPL3SMP_E), "
        "SMAP L4 (SPL4SMGP) from NSIDC, or ESA CCI SM daily NetCDF (COMBINED, PASSIVE) — into one float32 GeoTIFF "
        "in m³/m³, one band per date (band description = the ISO date), which the downscaling algorithms take "
        "directly.<br>SMAP is placed on the global EASE-Grid 2.0 (EPSG:6933) from the grid definition; ESA CCI "
        "files carry no CRS and are placed on EPSG:4326. Fill values, valid ranges and quality flags are honoured. "
        "With an extent, only the cells intersecting it are read. Dates come from the file name or metadata."
    )

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
        self.add_param(QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("Product files (.h5, .nc)"), TYPE_FILE),
                       "The downloaded files of one product: SMAP granules (SMAP_L3_SM_P_YYYYMMDD_….h5, "
                       "SMAP_L3_SM_P_E_…, SMAP_L4_SM_gph_YYYYMMDDThhmmss_….h5) or ESA CCI SM files "
                       "(ESACCI-SOILMOISTURE-L3S-SSMV-…-YYYYMMDD000000-….nc).")
        self.add_param(QgsProcessingParameterExtent(self.EXTENT, self.tr("Area to keep"), optional=True),
                       "Optional: the area of interest (any CRS). The product's cells that intersect it are kept; "
                       "empty = the whole globe.")
        self.add_param(QgsProcessingParameterEnum(self.PASSES, self.tr("SMAP L3: AM and PM retrievals"),
                                                  [self.tr("AM, gaps filled with PM"), self.tr("Mean of AM and PM"),
                                                   self.tr("AM only"), self.tr("PM only")], defaultValue=0),
                       "How the 6 am (descending) and 6 pm (ascending) retrievals of a day become one value: AM first "
                       "with PM filling its gaps, their mean where both exist (Poehls et al.), or one pass alone.")
        self.add_param(QgsProcessingParameterBoolean(self.RECOMMENDED_ONLY, self.tr("SMAP L3: recommended quality only"),
                                                     True),
                       "Keep only retrievals whose retrieval_qual_flag bit 0 is 0 (recommended quality).")
        self.add_param(QgsProcessingParameterEnum(self.L4_VARIABLE, self.tr("SMAP L4: variable"),
                                                  [self.tr("Surface (sm_surface, 0–5 cm)"),
                                                   self.tr("Root zone (sm_rootzone, 0–100 cm)")], defaultValue=0),
                       "Which SMAP L4 soil moisture to import.")
        self.add_param(QgsProcessingParameterEnum(self.L4_TIME, self.tr("SMAP L4: time step"),
                                                  [self.tr("Daily mean of the granules")] + [f"{t} UTC" for t in L4_TIMES[1:]],
                                                  defaultValue=0),
                       "SMAP L4 granules are 3-hourly: average every granule of a day, or keep the one of this UTC time step.")
        self.add_param(QgsProcessingParameterBoolean(self.MASK_FLAGGED, self.tr("ESA CCI: mask flagged cells"), True),
                       "Mask cells whose ESA CCI 'flag' is not 0 (snow, frozen soil, dense vegetation, no convergence…).",
                       advanced=True)
        self.add_param(QgsProcessingParameterBoolean(self.KEEP_EMPTY, self.tr("Keep dates without any valid cell"), False),
                       "By default a date with no valid cell in the area is left out (and named in the log): the "
                       "downscaling algorithms refuse an empty band.", advanced=True)
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Soil moisture (dated GeoTIFF)")),
                       "One float32 band per date in m³/m³ (NaN = no data), band description = ISO date.")

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
        options = ProductOptions(
            passes=PASS_MODES[self.parameterAsEnum(parameters, self.PASSES, context)],
            recommended_only=self.parameterAsBoolean(parameters, self.RECOMMENDED_ONLY, context),
            l4_variable=("sm_surface", "sm_rootzone")[self.parameterAsEnum(parameters, self.L4_VARIABLE, context)],
            l4_time=L4_TIMES[self.parameterAsEnum(parameters, self.L4_TIME, context)] or None,
            mask_flagged=self.parameterAsBoolean(parameters, self.MASK_FLAGGED, context),
            drop_empty=not self.parameterAsBoolean(parameters, self.KEEP_EMPTY, context),
        )
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
