"""Score soil-moisture rasters at in-situ stations."""
from __future__ import annotations

from ..core.evaluation.station_scoring import product_refs
from . import spec_params as ps
from . import specs
from . import station_params as sp
from .base import SmAlgorithm, core_errors, raster_source
from .scoring import score_and_report


class ScoreStations(SmAlgorithm):
    NAME = "score_stations"
    DISPLAY_NAME = "Score soil-moisture rasters at stations"
    GROUP_ID = "evaluation"
    GROUP = "Evaluation"
    HELP = specs.SCORE_HELP

    PRODUCT = "PRODUCT"
    PRODUCT_NAME = "PRODUCT_NAME"
    COARSE = "COARSE"
    COARSE_NAME = "COARSE_NAME"

    def initAlgorithm(self, config=None):  # noqa: N802
        ps.add_specs(self, *specs.SCORE_PRODUCT_SPECS)
        sp.add_station_params(self, optional=False)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        values = ps.spec_values(self, parameters, context, specs.SCORE_PRODUCT_SPECS)
        layers = {key: self.parameterAsLayerList(parameters, key, context) for key in (self.PRODUCT, self.COARSE)}
        with core_errors():
            names = specs.score_product_names(values, {k: bool(v) for k, v in layers.items()})
            products = {}
            for key, name in names.items():
                sources = [raster_source(lay, name) for lay in layers[key]]
                products[name] = product_refs([(path, lay.name()) for (path, _), lay in zip(sources, layers[key])],
                                              [n for _, n in sources])
            return score_and_report(self, parameters, context, feedback, products, names.get(self.COARSE))
