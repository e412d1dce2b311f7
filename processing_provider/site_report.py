"""Site-metric report: score downscaled products at stations, diagnose them, write one HTML report."""
from __future__ import annotations

import os
from typing import Optional

from qgis.core import (
    QgsGraduatedSymbolRenderer,
    QgsMarkerSymbol,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputMultipleLayers,
    QgsRendererRange,
    QgsVectorLayer,
)

from ..core.errors import InputError
from ..core.evaluation import site_run as sr
from ..core.evaluation.score_table import format_table
from ..core.raster.align import BandRef
from . import spec_params as ps
from . import specs
from . import station_params as sp
from .base import CoreFeedback, SmAlgorithm, core_errors, raster_source, steps
from .output_layers import load_on_completion

#: Classes of the ubRMSE change (product − coarse, m³/m³) of the station layer: green = improvement.
D_UBRMSE_CLASSES = (
    (-1.0, -0.02, "#1a9641", "ubRMSE lower by more than 0.02 (better)"),
    (-0.02, -0.005, "#a6d96a", "lower by 0.005 to 0.02"),
    (-0.005, 0.005, "#f7f7f7", "within ±0.005 (no real change)"),
    (0.005, 0.02, "#fdae61", "higher by 0.005 to 0.02"),
    (0.02, 1.0, "#d7191c", "higher by more than 0.02 (worse)"),
)


class SiteReport(SmAlgorithm):
    NAME = "site_report"
    DISPLAY_NAME = "Site report: scores at stations and downscaling diagnostics"
    GROUP_ID = "evaluation"
    GROUP = "Evaluation"
    HELP = specs.SITE_REPORT_HELP

    PRODUCTS = "PRODUCTS"
    PRODUCT_NAMES = "PRODUCT_NAMES"
    COARSE = "COARSE"
    COARSE_NAME = "COARSE_NAME"
    TITLE = "TITLE"
    MIN_COVERAGE = "MIN_COVERAGE"
    REPORT = "REPORT"
    CONSERVATION = "CONSERVATION"
    HETEROGENEITY = "HETEROGENEITY"
    DIAGNOSTIC_RASTERS = "DIAGNOSTIC_RASTERS"

    def initAlgorithm(self, config=None):  # noqa: N802
        ps.add_specs(self, *specs.SITE_REPORT_PRODUCT_SPECS)
        sp.add_station_params(self, optional=False, outputs=True)
        ps.add_specs(self, *specs.SITE_REPORT_SPECS)
        self.addOutput(QgsProcessingOutputMultipleLayers(self.DIAGNOSTIC_RASTERS, self.tr("All diagnostics rasters")))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if ok and not parameters.get(sp.STATIONS) and not self.parameterAsFile(parameters, sp.STATIONS_CSV, context):
            return False, self.tr("No stations were given. Fix: give a station point layer or a stations CSV "
                                  "(id, lat, lon) whose ids are the column names of the in-situ table.")
        return ok, message

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        values = ps.spec_values(self, parameters, context, specs.SITE_REPORT_PRODUCT_SPECS + specs.SITE_REPORT_SPECS)
        coarse_name = values[self.COARSE_NAME].strip() or "coarse"
        with core_errors():
            products = sr.group_products(self._rasters(parameters, self.PRODUCTS, context, self.tr("downscaled product")),
                                         sr.product_names(values[self.PRODUCT_NAMES]))
            sr.check_coarse_name(products, coarse_name)
            coarse_refs = sr.dated_refs(self._rasters(parameters, self.COARSE, context, coarse_name), coarse_name)
        html_path = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if not html_path.lower().endswith((".html", ".htm")):
            html_path += ".html"
        csv_path = self.parameterAsFileOutput(parameters, sp.SCORES_CSV, context) or \
            os.path.splitext(html_path)[0] + "_sites.csv"
        cons_path = self._optional_raster(parameters, self.CONSERVATION, context)
        cv_path = self._optional_raster(parameters, self.HETEROGENEITY, context)

        labels = [self.tr("Sampling the products at the stations")]
        labels += [self.tr(f"Diagnostics of '{name}' against '{coarse_name}'") for name in products]
        labels += [self.tr("Writing the report")]
        results: dict = {}
        diag_summaries: dict = {}
        drought: dict = {}
        rasters: list[str] = []
        labels_of = {"conservation": self.tr("Conservation error (%)"), "heterogeneity": self.tr("Heterogeneity (CV)")}
        with core_errors():
            for i, fb in steps(feedback, labels):
                if i == 0:
                    got = sp.station_inputs(self, parameters, context, fb)
                    scored = sr.score_at_stations(got, products, coarse_name, coarse_refs)
                    if scored.warning:
                        fb.pushWarning(scored.warning)
                    fb.pushInfo(format_table(scored.rows, list(scored.sampled)))
                elif i <= len(products):
                    name, refs = list(products.items())[i - 1]
                    cf = CoreFeedback(fb)
                    d = sr.diagnose(name, i - 1, refs, coarse_refs, values[self.MIN_COVERAGE], cons_path, cv_path,
                                    cf.progress, cf.is_canceled)
                    diag_summaries[name], drought[name] = d.summary, d.drought
                    for line in d.lines:
                        fb.pushInfo(self.tr(line))
                    for line in d.warnings:
                        fb.pushWarning(self.tr(line))
                    for kind, path, style in d.rasters:
                        first = cons_path if kind == "conservation" else cv_path
                        _open_with(context, first, path, d.dates, style, f"{labels_of[kind]} – {name}")
                        rasters.append(path)
                else:
                    sr.write_site_report(html_path, csv_path, scored, got, products, coarse_name, coarse_refs,
                                         diag_summaries, drought, values[self.TITLE])
                    dest = sp.write_score_layer(self, parameters, context, scored.rows, got.stations,
                                                list(scored.sampled), coarse_name)
                    if dest:
                        results[sp.SCORES] = dest
                        field = "d_ubrmse" if len(products) == 1 else f"d_ubrmse_{sp.field_key(next(iter(products)))}"
                        if context.willLoadLayerOnCompletion(dest):
                            context.layerToLoadOnCompletionDetails(dest).setPostProcessor(
                                ScoreLayerStyler.create(field))
        results.update({self.REPORT: html_path, sp.SCORES_CSV: csv_path, self.DIAGNOSTIC_RASTERS: rasters})
        if cons_path:
            results[self.CONSERVATION] = cons_path
        if cv_path:
            results[self.HETEROGENEITY] = cv_path
        return results

    # -- inputs ----------------------------------------------------------------------------
    def _rasters(self, parameters, key: str, context, what: str) -> list:
        return [sr.Raster(*raster_source(lay, what), lay.name())
                for lay in self.parameterAsLayerList(parameters, key, context)]

    def _optional_raster(self, parameters, key: str, context) -> Optional[str]:
        if not parameters.get(key):
            return None
        path = self.parameterAsOutputLayer(parameters, key, context)
        if not path:
            return None
        return path if path.lower().endswith((".tif", ".tiff")) else os.path.splitext(path)[0] + ".tif"


def dated_refs(alg, layers, what: str) -> list[BandRef]:
    """:func:`core.evaluation.site_run.dated_refs` of QGIS raster layers (a missing date: a Processing error)."""
    try:
        return sr.dated_refs([sr.Raster(*raster_source(lay, what), lay.name()) for lay in layers], what)
    except InputError as e:
        raise QgsProcessingException(alg.tr(str(e))) from None


def _open_with(context, first_path: str, path: str, dates, style: str, name: str) -> None:
    """Open ``path`` (the diagnostics raster of a further product) when the first one is to be
    opened — Processing itself knows only the path the user gave — and date/style it."""
    if path != first_path and context.willLoadLayerOnCompletion(first_path):
        context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails(name, context.project(), name))
    load_on_completion(context, path, dates, style)


# -- styling of the station layer ---------------------------------------------------------------
def d_ubrmse_renderer(field: str) -> QgsGraduatedSymbolRenderer:
    """Diverging classes of the ubRMSE change: green where the product beats the coarse one."""
    ranges = []
    for lo, hi, color, label in D_UBRMSE_CLASSES:
        symbol = QgsMarkerSymbol.createSimple({"name": "circle", "color": color, "outline_color": "#333333",
                                               "outline_width": "0.3", "size": "3.4"})
        ranges.append(QgsRendererRange(lo, hi, symbol, label))
    renderer = QgsGraduatedSymbolRenderer(field, ranges)
    return renderer


class ScoreLayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles the station score layer by the change of ubRMSE once Processing has loaded it."""

    _alive: list["ScoreLayerStyler"] = []  # Processing keeps only a C++ pointer

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    @classmethod
    def create(cls, field: str) -> "ScoreLayerStyler":
        inst = cls(field)
        cls._alive.append(inst)
        return inst

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        if isinstance(layer, QgsVectorLayer) and layer.fields().indexOf(self.field) >= 0:
            layer.setRenderer(d_ubrmse_renderer(self.field))
            layer.triggerRepaint()
