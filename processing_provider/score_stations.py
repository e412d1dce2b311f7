"""Score soil-moisture rasters at in-situ stations."""
from __future__ import annotations

import os

from qgis.core import QgsProcessingException, QgsProcessingParameterMultipleLayers, QgsProcessingParameterString

from ..core.raster.align import BandRef
from ..core.inputs.dates import parse_date
from . import station_params as sp
from .base import TYPE_RASTER, SmAlgorithm, core_errors, raster_source
from .scoring import score_and_report


class ScoreStations(SmAlgorithm):
    NAME = "score_stations"
    DISPLAY_NAME = "Score soil-moisture rasters at stations"
    GROUP_ID = "evaluation"
    GROUP = "Evaluation"
    HELP = (
        "Samples each soil-moisture product at the in-situ stations (the pixel holding the station, on every "
        "date) and computes per site: N, Pearson R, ubRMSE, bias, RMSE, MAE, slope and the R of anomalies "
        "(against a 30-day moving average). Definitions: bias = mean(product − in-situ); "
        "RMSE = sqrt(mean((product − in-situ)²)); ubRMSE = sqrt(RMSE² − bias²).<br>"
        "A product is one multi-band raster with dated bands (descriptions YYYY-MM-DD, as written by the "
        "downscaling algorithms) or several single-date rasters with the date in the file name."
    )

    PRODUCT = "PRODUCT"
    PRODUCT_NAME = "PRODUCT_NAME"
    COARSE = "COARSE"
    COARSE_NAME = "COARSE_NAME"

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_param(QgsProcessingParameterMultipleLayers(self.PRODUCT, self.tr("Soil-moisture product to score"),
                                                            TYPE_RASTER),
                       "The (downscaled) product: one dated multi-band raster or several single-date rasters.")
        self.add_param(QgsProcessingParameterString(self.PRODUCT_NAME, self.tr("Product name"), "downscaled"),
                       "Name of the product in tables and fields.")
        self.add_param(QgsProcessingParameterMultipleLayers(self.COARSE, self.tr("Coarse product to compare with"),
                                                            TYPE_RASTER, optional=True),
                       "Optional: the coarse product (same layout rules), scored side by side.")
        self.add_param(QgsProcessingParameterString(self.COARSE_NAME, self.tr("Coarse product name"), "coarse"),
                       "Name of the coarse product in tables and fields.")
        sp.add_station_params(self, optional=False)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        products = {}
        for key, name_key in ((self.PRODUCT, self.PRODUCT_NAME), (self.COARSE, self.COARSE_NAME)):
            layers = self.parameterAsLayerList(parameters, key, context)
            if not layers:
                continue
            name = self.parameterAsString(parameters, name_key, context).strip() or key.lower()
            if name in products:
                raise QgsProcessingException(self.tr(f"Both products are called '{name}'. Fix: give them different names."))
            refs = []
            for lay in layers:
                path, n = raster_source(lay, name)
                single_date = parse_date(os.path.basename(path)) if n == 1 else None
                refs.extend(BandRef(path, b, lay.name(), single_date) for b in range(1, n + 1))
            products[name] = refs
        coarse = self.parameterAsString(parameters, self.COARSE_NAME, context).strip() \
            if self.parameterAsLayerList(parameters, self.COARSE, context) else None
        with core_errors():
            return score_and_report(self, parameters, context, feedback, products, coarse)
