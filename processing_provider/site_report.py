"""Site-metric report: score downscaled products at stations, diagnose them, write one HTML report."""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Optional, Sequence

from osgeo import gdal
from qgis.core import (
    QgsGraduatedSymbolRenderer,
    QgsMarkerSymbol,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsRendererRange,
    QgsVectorLayer,
)

from ..core.raster.align import BandRef
from ..core.inputs.dates import parse_date
from ..core.io.output import qml_pseudocolor, write_text_atomic
from ..core.evaluation.drought import dry_share_of_refs
from ..core.evaluation.product_diagnostics import diagnose_product, write_diagnostic_rasters
from ..core.evaluation.report import write_report
from ..core.evaluation.score_table import format_table
from ..core.evaluation.stations import build_series
from . import station_params as sp
from .base import TYPE_RASTER, CoreFeedback, SmAlgorithm, core_errors, raster_source, steps
from .output_layers import load_on_completion

gdal.UseExceptions()

#: Conservation error (%): brown = fine drier than coarse, teal = wetter.
CONSERVATION_RAMP = ((-20.0, "#a6611a"), (-5.0, "#dfc27d"), (0.0, "#f7f7f7"), (5.0, "#80cdc1"), (20.0, "#018571"))
#: Heterogeneity (coefficient of variation): pale = uniform cell, dark red = strong sub-cell contrast.
HETEROGENEITY_RAMP = ((0.0, "#ffffcc"), (0.1, "#fed976"), (0.2, "#fd8d3c"), (0.3, "#e31a1c"), (0.5, "#800026"))
#: Classes of the ubRMSE change (product − coarse, m³/m³) of the station layer: green = improvement.
D_UBRMSE_CLASSES = (
    (-1.0, -0.02, "#1a9641", "ubRMSE lower by more than 0.02 (better)"),
    (-0.02, -0.005, "#a6d96a", "lower by 0.005 to 0.02"),
    (-0.005, 0.005, "#f7f7f7", "within ±0.005 (no real change)"),
    (0.005, 0.02, "#fdae61", "higher by 0.005 to 0.02"),
    (0.02, 1.0, "#d7191c", "higher by more than 0.02 (worse)"),
)

_DATE_IN_NAME = re.compile(r"(?<!\d)\d{4}[-_]?\d{2}[-_]?\d{2}(?!\d)")


class SiteReport(SmAlgorithm):
    NAME = "site_report"
    DISPLAY_NAME = "Site report: scores at stations and downscaling diagnostics"
    GROUP_ID = "evaluation"
    GROUP = "Evaluation"
    HELP = (
        "Compares one or more downscaled soil-moisture products and the coarse product they came from with "
        "in-situ stations, and writes one self-contained HTML report (tables and figures inline, for mailing "
        "or archiving) with the per-site CSV beside it.<br>"
        "<b>Scores</b> per site and product, on the dates both have a value, at the pixel holding the "
        "station: N, R, ubRMSE, bias, RMSE, MAE, slope, anomaly R. bias = mean(product − in-situ); "
        "ubRMSE = sqrt(RMSE² − bias²).<br>"
        "<b>Diagnostics</b> per downscaled product, on the coarse grid and for every date both products have "
        "(Alemohammad et al. 2018): conservation error = (mean of the fine pixels in a coarse cell − coarse "
        "value) / coarse value × 100 (0 = the coarse water content is kept), and heterogeneity = standard "
        "deviation / mean of the fine pixels in the cell (0 = the coarse field repeated). Their summary is in "
        "the report; the rasters are optional outputs (one band per date).<br>"
        "A product is one multi-band raster with dated bands (descriptions YYYY-MM-DD, as the downscaling "
        "algorithms write them) or several single-date rasters with the date in the file name; single-date "
        "files whose names differ only by the date form one product.<br>"
        "<b>Drought anomaly</b> per downscaled product spanning at least three years: the share of pixels whose "
        "standardised anomaly against the same calendar period of the other years is below −1σ, per date "
        "(Jin et al.; the <i>Drought anomaly</i> algorithm writes the anomaly rasters)."
    )

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
        self.add_param(QgsProcessingParameterMultipleLayers(self.PRODUCTS, self.tr("Downscaled product(s)"),
                                                            TYPE_RASTER),
                       "One or more downscaled products: each a multi-band raster with dated bands, or several "
                       "single-date rasters with the date in the file name.")
        self.add_param(QgsProcessingParameterString(self.PRODUCT_NAMES, self.tr("Product names"), optional=True),
                       "Names of the products in the report, comma separated, in the order of the layers. "
                       "Default: the layer name (single-date files: the file name without the date).",
                       advanced=True)
        self.add_param(QgsProcessingParameterMultipleLayers(self.COARSE, self.tr("Coarse product"), TYPE_RASTER),
                       "The coarse soil moisture the products were downscaled from (same layout rules): the "
                       "reference of the head-to-head comparison and of the diagnostics.")
        self.add_param(QgsProcessingParameterString(self.COARSE_NAME, self.tr("Coarse product name"), "coarse"),
                       "Name of the coarse product in the report, tables and fields.")
        sp.add_station_params(self, optional=False, outputs=True)
        self.add_param(QgsProcessingParameterString(self.TITLE, self.tr("Report title"), optional=True),
                       "Heading of the report. Default: 'Downscaled soil moisture: evaluation at in-situ stations'.",
                       advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.MIN_COVERAGE, self.tr("Minimum valid fraction of a coarse cell"),
                                                    QgsProcessingParameterNumber.Double, 0.5, minValue=0.0, maxValue=1.0),
                       "Diagnostics are left empty for coarse cells where fewer of the fine pixels hold a value "
                       "(coast, gaps), since a few pixels do not represent the cell.", advanced=True)
        self.add_param(QgsProcessingParameterFileDestination(self.REPORT, self.tr("Site report (HTML)"),
                                                             self.tr("HTML files (*.html)")),
                       "One self-contained HTML file; the per-site CSV is 'Station scores (CSV)' or, if that is "
                       "not set, <report>_sites.csv beside it.")
        self.add_param(QgsProcessingParameterRasterDestination(self.CONSERVATION,
                                                               self.tr("Conservation error (% of coarse)"),
                                                               optional=True, createByDefault=False),
                       "On the coarse grid, one band per date. With several products the file of each product "
                       "after the first gets its name as suffix.")
        self.add_param(QgsProcessingParameterRasterDestination(self.HETEROGENEITY,
                                                               self.tr("Heterogeneity (CV of fine pixels per coarse cell)"),
                                                               optional=True, createByDefault=False),
                       "On the coarse grid, one band per date (same naming as the conservation raster).")
        self.addOutput(QgsProcessingOutputMultipleLayers(self.DIAGNOSTIC_RASTERS, self.tr("All diagnostics rasters")))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if ok and not parameters.get(sp.STATIONS) and not self.parameterAsFile(parameters, sp.STATIONS_CSV, context):
            return False, self.tr("No stations were given. Fix: give a station point layer or a stations CSV "
                                  "(id, lat, lon) whose ids are the column names of the in-situ table.")
        return ok, message

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        products = self._products(parameters, context)
        coarse_name = self.parameterAsString(parameters, self.COARSE_NAME, context).strip() or "coarse"
        if coarse_name in products:
            raise QgsProcessingException(self.tr(
                f"A downscaled product and the coarse product are both called '{coarse_name}'. "
                "Fix: give the coarse product another name."))
        coarse_refs = dated_refs(self, self.parameterAsLayerList(parameters, self.COARSE, context), coarse_name)
        html_path = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if not html_path.lower().endswith((".html", ".htm")):
            html_path += ".html"
        csv_path = self.parameterAsFileOutput(parameters, sp.SCORES_CSV, context) or \
            os.path.splitext(html_path)[0] + "_sites.csv"
        cons_path = self._optional_raster(parameters, self.CONSERVATION, context)
        cv_path = self._optional_raster(parameters, self.HETEROGENEITY, context)
        min_coverage = self.parameterAsDouble(parameters, self.MIN_COVERAGE, context)

        labels = [self.tr("Sampling the products at the stations")]
        labels += [self.tr(f"Diagnostics of '{name}' against '{coarse_name}'") for name in products]
        labels += [self.tr("Writing the report")]
        results: dict = {}
        diag_summaries: dict = {}
        drought: dict = {}
        rasters: list[str] = []
        with core_errors():
            for i, fb in steps(feedback, labels):
                if i == 0:
                    got = sp.station_inputs(self, parameters, context, fb)
                    stations, dates, insitu = got.stations, got.insitu.dates, got.insitu.values
                    sampled = OrderedDict((name, sp.sample_refs(refs, stations)) for name, refs in products.items())
                    sampled[coarse_name] = sp.sample_refs(coarse_refs, stations)
                    rows = sp.score_with_notes(got, sampled, {**products, coarse_name: coarse_refs}, fb)
                    series = build_series(stations, dates, insitu, sampled)
                    fb.pushInfo(format_table(rows, list(sampled)))
                elif i <= len(products):
                    name, refs = list(products.items())[i - 1]
                    cf = CoreFeedback(fb)
                    diag = diagnose_product(refs, coarse_refs, min_coverage=min_coverage,
                                            progress=cf.progress, is_canceled=cf.is_canceled)
                    s = diag.summary()
                    diag_summaries[name] = s
                    drought[name] = dry_share_of_refs(refs)
                    if "note" not in drought[name]:
                        fb.pushInfo(self.tr(f"'{name}': drought anomaly over {len(refs)} dates (calendar periods of "
                                            f"{drought[name]['period_days']} days)"))
                    c, v = s["conservation_percent"], s["heterogeneity_cv"]
                    fb.pushInfo(self.tr(
                        f"'{name}': {len(diag.dates)} dates on {diag.grid.width}×{diag.grid.height} coarse cells; "
                        f"conservation error mean |·| {c['mean_abs']:.2f} %, max {c['max_abs']:.2f} %; "
                        f"heterogeneity (CV) mean {v['mean_abs']:.3f}, max {v['max_abs']:.3f}"))
                    if diag.skipped:
                        fb.pushWarning(self.tr(f"'{name}': {len(diag.skipped)} date(s) have no coarse counterpart "
                                               f"and were not diagnosed (first: {diag.skipped[0]})."))
                    for kind, first, ramp, units, label in (
                            ("conservation", cons_path, CONSERVATION_RAMP, "%", self.tr("Conservation error (%)")),
                            ("heterogeneity", cv_path, HETEROGENEITY_RAMP, "", self.tr("Heterogeneity (CV)"))):
                        path = _suffixed(first, name, i - 1)
                        if not path:
                            continue
                        write_diagnostic_rasters(diag, **{f"{kind}_path": path})
                        style = write_text_atomic(os.path.splitext(path)[0] + ".qml", qml_pseudocolor(ramp, 1, units))
                        _open_with(context, first, path, diag.dates, style, f"{label} – {name}")
                        rasters.append(path)
                else:
                    os.makedirs(os.path.dirname(os.path.abspath(html_path)), exist_ok=True)
                    title = self.parameterAsString(parameters, self.TITLE, context).strip() or \
                        "Downscaled soil moisture: evaluation at in-situ stations"
                    write_report(html_path, csv_path, rows, series, stations, diagnostics=diag_summaries,
                                 title=title, coarse_product=coarse_name, drought=drought,
                                 subtitle=_subtitle(products, coarse_name, coarse_refs))
                    dest = sp.write_score_layer(self, parameters, context, rows, stations,
                                                list(sampled), coarse_name)
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
    def _products(self, parameters, context) -> "OrderedDict[str, list[BandRef]]":
        layers = self.parameterAsLayerList(parameters, self.PRODUCTS, context)
        if not layers:
            raise QgsProcessingException(self.tr("Give at least one downscaled product."))
        groups: "OrderedDict[str, list]" = OrderedDict()
        for lay in layers:
            path, n = raster_source(lay, self.tr("downscaled product"))
            stem, ext = os.path.splitext(os.path.basename(path))
            key = path if n > 1 else os.path.join(os.path.dirname(path), _without_date(stem) + ext)
            groups.setdefault(key, []).append(lay)
        given = [s.strip() for s in self.parameterAsString(parameters, self.PRODUCT_NAMES, context).split(",")
                 if s.strip()]
        if given and len(given) != len(groups):
            raise QgsProcessingException(self.tr(
                f"{len(given)} product names were given for {len(groups)} products. "
                "Fix: give one name per product (a multi-band raster, or a set of single-date files), in layer order."))
        out: "OrderedDict[str, list[BandRef]]" = OrderedDict()
        for k, (key, lays) in enumerate(groups.items()):
            if given:
                name = given[k]
            elif len(lays) == 1 and raster_source(lays[0])[1] > 1:
                name = lays[0].name()
            else:
                name = _without_date(os.path.splitext(os.path.basename(key))[0]) or "product"
            if name in out:
                raise QgsProcessingException(self.tr(
                    f"Two products are called '{name}'. Fix: name them in 'Product names' (advanced)."))
            out[name] = dated_refs(self, lays, name)
        return out

    def _optional_raster(self, parameters, key: str, context) -> Optional[str]:
        if not parameters.get(key):
            return None
        path = self.parameterAsOutputLayer(parameters, key, context)
        if not path:
            return None
        return path if path.lower().endswith((".tif", ".tiff")) else os.path.splitext(path)[0] + ".tif"


def dated_refs(alg, layers, what: str) -> list[BandRef]:
    """One :class:`BandRef` per band of ``layers``, dated by band description or (single band) file/layer name."""
    refs: list[BandRef] = []
    for lay in layers:
        path, n = raster_source(lay, what)
        ds = gdal.Open(path)
        descs = [ds.GetRasterBand(b).GetDescription() or "" for b in range(1, n + 1)]
        ds = None
        for b, desc in enumerate(descs, start=1):
            d = parse_date(desc)
            if d is None and n == 1:
                d = parse_date(os.path.basename(path)) or parse_date(lay.name())
            if d is None:
                raise QgsProcessingException(alg.tr(
                    f"Layer '{lay.name()}': band {b} of '{what}' has no date. Fix: set each band description to "
                    "its date (YYYY-MM-DD), or use one file per date with the date in the file name."))
            refs.append(BandRef(path, b, lay.name(), d))
    return refs


def _without_date(name: str) -> str:
    return re.sub(r"[_\-. ]{2,}", "_", _DATE_IN_NAME.sub("", name)).strip("_-. ")


def _suffixed(path: Optional[str], product: str, index: int) -> Optional[str]:
    if not path or index == 0:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}_{sp.field_key(product)}{ext}"


def _subtitle(products: dict[str, Sequence[BandRef]], coarse: str, coarse_refs: Sequence[BandRef]) -> str:
    def span(refs):
        ds = sorted({r.date for r in refs})
        return f"{len(ds)} dates, {ds[0]} to {ds[-1]}" if ds else "no dates"
    parts = [f"{name} ({span(refs)})" for name, refs in products.items()]
    return f"Downscaled: {'; '.join(parts)}. Coarse: {coarse} ({span(coarse_refs)})."


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
