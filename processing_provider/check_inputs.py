"""Check soil-moisture inputs: what each raster is (CRS, grid, dates, value ranges) before a run."""
from __future__ import annotations

import datetime as dt
import html
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from osgeo import gdal
from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsUnitTypes,
)

from ..core.inputs.dates import format_date, parse_date
from ..core.errors import Canceled, InputError
from ..core.inputs.roles import ROLE_INFO, Role
from ..core.inputs.units import check_layer
from ..core.raster.align import BandRef
from ..ui.guess import LayerFacts, guess_role
from . import layer_params as lp
from .base import TYPE_RASTER, CoreFeedback, SmAlgorithm, core_errors, raster_source

gdal.UseExceptions()


@dataclass
class BandInfo:
    index: int
    description: str
    date: Optional[dt.date]
    data_type: str
    nodata: Optional[float]
    scale: float
    offset: float
    stats: Optional[tuple[float, float, float, float]]  # min, max, mean, std after scale/offset


@dataclass
class LayerInfo:
    name: str
    source: str
    crs: str
    crs_name: str
    units: str
    width: int
    height: int
    res_x: float
    res_y: float
    extent: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax
    file_date: Optional[dt.date]
    bands: list[BandInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The role whose unit checks were run, and how it was known ("given" or "guessed from the name").
    role: Optional[Role] = None
    role_source: str = ""

    def dates(self) -> list[dt.date]:
        """Date of each band: its description's, else the file name's; static layers give none."""
        dated = [b.date or self.file_date for b in self.bands]
        return [d for d in dated if d is not None]


def _read_bands(source: str, approximate: bool, feedback: CoreFeedback) -> list[BandInfo]:
    """Band metadata and statistics by GDAL, without writing ``.aux.xml`` next to the user's file."""
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO")
    try:
        ds = gdal.Open(source)
        out = []
        n_bands = ds.RasterCount
        for i in range(1, n_bands + 1):
            band = ds.GetRasterBand(i)  # ds stays referenced while band is used (GDAL 3.6)
            scale = band.GetScale() or 1.0  # GetScale() is None or 0 when unset
            offset = band.GetOffset() or 0.0
            step = feedback.sub((i - 1) / n_bands, i / n_bands)
            try:
                mn, mx, mean, std = band.ComputeStatistics(approximate, callback=step.gdal_callback)
                lo, hi = sorted((mn * scale + offset, mx * scale + offset))
                stats = (lo, hi, mean * scale + offset, std * abs(scale))
            except RuntimeError:  # no valid pixel, or canceled through the callback
                if step.is_canceled():
                    raise Canceled() from None
                stats = None
            description = band.GetDescription() or ""
            out.append(
                BandInfo(
                    index=i,
                    description=description,
                    date=parse_date(description),
                    data_type=gdal.GetDataTypeName(band.DataType),
                    nodata=band.GetNoDataValue(),
                    scale=scale,
                    offset=offset,
                    stats=stats,
                )
            )
            band = None
        ds = None
        return out
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", None)


def _fmt(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.6g}"


def _layer_html(info: LayerInfo) -> str:
    e = html.escape
    dates = info.dates()
    if not dates:
        date_text = "none found (static layer)"
    elif len(set(dates)) == 1:
        date_text = format_date(dates[0])
    else:
        date_text = f"{len(set(dates))} dates, {format_date(min(dates))} … {format_date(max(dates))}"
    if dates:
        described = any(b.date for b in info.bands)
        date_text += " (from band descriptions)" if described else " (from the file name)"
    rows = [
        ("Source", info.source),
        ("CRS", f"{info.crs} — {info.crs_name}"),
        ("Size", f"{info.width} × {info.height} pixels, {len(info.bands)} band(s)"),
        ("Resolution", f"{info.res_x:.6g} × {info.res_y:.6g} {info.units}"),
        ("Extent", "xmin {:.6g}, ymin {:.6g}, xmax {:.6g}, ymax {:.6g}".format(*info.extent)),
        ("Date(s)", date_text),
        ("Role", f"{ROLE_INFO[info.role].label} ({info.role_source}; units checked as {ROLE_INFO[info.role].units})"
         if info.role is not None else "none given or guessed: units not checked"),
    ]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    band_rows = "".join(
        "<tr>" + "".join(
            f"<td>{e(str(c))}</td>"
            for c in (
                b.index,
                b.description,
                format_date(b.date) if b.date else "",
                b.data_type,
                _fmt(b.nodata),
                f"×{b.scale:g} + {b.offset:g}" if (b.scale, b.offset) != (1.0, 0.0) else "",
                *(_fmt(s) for s in (b.stats or (None,) * 4)),
            )
        ) + "</tr>"
        for b in info.bands
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Band", "Description", "Date", "Type", "NoData", "Scale/offset", "Min", "Max", "Mean", "Std")
    )
    warn = "".join(f"<li>{e(w)}</li>" for w in info.warnings)
    return (
        f"<h2>{e(info.name)}</h2><table>{table}</table>"
        f"<table><tr>{head}</tr>{band_rows}</table>" + (f"<ul class='warn'>{warn}</ul>" if warn else "")
    )


def _unit_problems(role: Role, source: str, name: str, bands: list[BandInfo]) -> list[str]:
    """The unit check a run makes (:func:`core.inputs.units.check_layer`) on every band with data."""
    out = []
    for b in bands:
        if b.stats is None:
            continue  # already reported as having no valid pixel
        try:
            check_layer(role, BandRef(source, b.index, name))
        except InputError as exc:
            out.append(f"unit check as {ROLE_INFO[role].label}, band {b.index}: {exc.problem} Fix: {exc.fix}")
    return out


class CheckInputs(SmAlgorithm):
    NAME = "check_inputs"
    DISPLAY_NAME = "Check soil-moisture inputs"
    GROUP_ID = "inputs"
    GROUP = "Inputs"
    HELP = (
        "Reports, for each raster, what a downscaling run will see: CRS, pixel size, extent, "
        "bands, the date of each band (from its description, else from the file name, "
        "e.g. <i>ESA_CCI_SM_v45_20180131.tif</i>) and its value range (scale factor and offset "
        "applied). Warns about bands without valid pixels or without a NoData value, "
        "layers sharing a date, and mixed CRSs. Layers given under a role (soil moisture, DEM, NDVI, …) "
        "get the same unit checks a downscaling run makes; for the others the role is guessed from the "
        "name (e.g. <i>MOD13A2_NDVI</i> → NDVI). Your files are not changed."
    )

    INPUTS = "INPUTS"
    APPROXIMATE = "APPROXIMATE"
    OUTPUT_HTML = "OUTPUT_HTML"
    LAYER_COUNT = "LAYER_COUNT"
    CRS_COUNT = "CRS_COUNT"
    DATE_COUNT = "DATE_COUNT"
    WARNING_COUNT = "WARNING_COUNT"

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        inputs = QgsProcessingParameterMultipleLayers(self.INPUTS, self.tr("Raster layers"), TYPE_RASTER,
                                                      optional=True)
        self.add_param(
            inputs, "Soil moisture, covariates, or both. Each must be a file-based raster (GeoTIFF, NetCDF, …). "
            "Their role is guessed from the name for the unit checks; give layers under a role below to be sure."
        )
        lp.add_soil_moisture_params(self, optional=True, with_dates=False)
        lp.add_covariate_params(self)
        self.add_param(
            QgsProcessingParameterBoolean(self.APPROXIMATE, self.tr("Approximate statistics"), False),
            "Compute value ranges from overviews or a subsample: faster on very large rasters, "
            "but the minimum and maximum may miss extreme pixels.",
            advanced=True,
        )
        self.add_param(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_HTML, self.tr("Report"), self.tr("HTML files (*.html)")
            ),
            "The report, as an HTML page (opens in the Results Viewer and any browser).",
        )
        for key, label in (
            (self.LAYER_COUNT, "Number of layers"),
            (self.CRS_COUNT, "Number of distinct CRSs"),
            (self.DATE_COUNT, "Number of distinct dates"),
            (self.WARNING_COUNT, "Number of warnings"),
        ):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def _layers_with_roles(self, parameters, context) -> list[tuple[object, Optional[Role], str]]:
        """(layer, role, how the role is known) for every layer given, role parameters first."""
        out = []
        for key, role in [(lp.SOIL_MOISTURE, Role.SOIL_MOISTURE)] + [(k, r) for k, r, _ in lp.COVARIATE_PARAMS]:
            out += [(lay, role, "given") for lay in self.parameterAsLayerList(parameters, key, context)]
        for lay in self.parameterAsLayerList(parameters, self.INPUTS, context):
            crs = lay.crs()
            facts = LayerFacts(lay.name(), lay.source(), lay.bandCount(), pixel_size=lay.rasterUnitsPerPixelX(),
                               geographic=crs.isGeographic())
            role = guess_role(facts)
            out.append((lay, role, "guessed from the name" if role is not None else ""))
        return out

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if ok:
            layers = self._layers_with_roles(parameters, context)
            if not layers:
                return False, self.tr("Give at least one raster layer (under 'Raster layers' or a role).")
            try:
                for layer, _, _ in layers:
                    raster_source(layer)
            except QgsProcessingException as exc:
                return False, str(exc)
        return ok, message

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layers = self._layers_with_roles(parameters, context)
        approximate = self.parameterAsBoolean(parameters, self.APPROXIMATE, context)
        out_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        progress = CoreFeedback(feedback)
        infos = []
        for k, (layer, role, role_source) in enumerate(layers):
            source, _ = raster_source(layer)
            feedback.pushInfo(self.tr("Reading {name}").format(name=layer.name()))
            part = progress.sub(k / len(layers), (k + 1) / len(layers))
            with core_errors():
                info = self._describe(layer, source, approximate, part)
            if role is not None:
                info.role, info.role_source = role, role_source
                info.warnings += _unit_problems(role, source, layer.name(), info.bands)
            for w in info.warnings:
                feedback.pushWarning(f"{info.name}: {w}")
            infos.append(info)

        summary = self._cross_checks(infos)
        for w in summary:
            feedback.pushWarning(w)
        all_dates = sorted({d for info in infos for d in info.dates()})
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(self._report(infos, all_dates, summary))
        return {
            self.OUTPUT_HTML: out_path,
            self.LAYER_COUNT: len(infos),
            self.CRS_COUNT: len({info.crs for info in infos}),
            self.DATE_COUNT: len(all_dates),
            self.WARNING_COUNT: len(summary) + sum(len(info.warnings) for info in infos),
        }

    @staticmethod
    def _describe(layer, source: str, approximate: bool, progress: CoreFeedback) -> LayerInfo:
        crs = layer.crs()
        ext = layer.extent()
        info = LayerInfo(
            name=layer.name(),
            source=source,
            crs=crs.authid() or crs.toProj(),
            crs_name=crs.description(),
            units=QgsUnitTypes.toString(crs.mapUnits()),
            width=layer.width(),
            height=layer.height(),
            res_x=layer.rasterUnitsPerPixelX(),
            res_y=layer.rasterUnitsPerPixelY(),
            extent=(ext.xMinimum(), ext.yMinimum(), ext.xMaximum(), ext.yMaximum()),
            file_date=parse_date(os.path.basename(source)),
            bands=_read_bands(source, approximate, progress),
        )
        if not crs.isValid():
            info.warnings.append("has no CRS: assign one (Layer Properties → Source) before using it.")
        for b in info.bands:
            if b.stats is None:
                info.warnings.append(f"band {b.index} has no valid pixel (everything is NoData).")
            if b.nodata is None:
                info.warnings.append(
                    f"band {b.index} has no NoData value: fill values (e.g. -9999) would be read as data."
                )
        dates = info.dates()
        repeated = sorted(d for d, n in Counter(dates).items() if n > 1)
        if repeated:
            info.warnings.append(
                "several bands carry the same date: " + ", ".join(format_date(d) for d in repeated) + "."
            )
        return info

    @staticmethod
    def _cross_checks(infos: list[LayerInfo]) -> list[str]:
        out = []
        crss = Counter(info.crs for info in infos)
        if len(crss) > 1:
            out.append(
                "Layers use different CRSs ("
                + ", ".join(f"{c}: {n} layer(s)" for c, n in crss.most_common())
                + "): they will be reprojected onto the fine grid's CRS."
            )
        owners: dict[dt.date, list[str]] = {}
        for info in infos:
            if len(info.bands) == 1 and info.file_date is not None:
                owners.setdefault(info.file_date, []).append(info.name)
        for d, names in sorted(owners.items()):
            if len(names) > 1:
                out.append(f"Date {format_date(d)} appears in several single-band layers: {', '.join(names)}.")
        return out

    def _report(self, infos: list[LayerInfo], dates: list[dt.date], summary: list[str]) -> str:
        e = html.escape
        overview = [
            f"{len(infos)} layer(s); CRS: {', '.join(sorted({i.crs for i in infos})) or '—'}",
            f"dates: {format_date(dates[0])} … {format_date(dates[-1])} ({len(dates)} distinct)"
            if dates else "dates: none found",
        ]
        style = (
            "body{font-family:sans-serif}table{border-collapse:collapse;margin:.5em 0}"
            "th,td{border:1px solid #bbb;padding:2px 6px;text-align:left}.warn{color:#a40}"
        )
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(self.displayName())}</title>"
            f"<style>{style}</style></head><body><h1>{e(self.displayName())}</h1>"
            + "".join(f"<p>{e(line)}</p>" for line in overview)
            + (("<ul class='warn'>" + "".join(f"<li>{e(w)}</li>" for w in summary) + "</ul>") if summary else "")
            + "".join(_layer_html(info) for info in infos)
            + "</body></html>"
        )
