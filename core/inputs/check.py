"""What each raster is before a run — CRS, grid, dates, value ranges — and what would stop a run.

QGIS-free: the toolbox's *Check soil-moisture inputs* and ``smds check`` both describe every file with
:func:`describe_layer`, run the unit checks of its role (given, or guessed from the name by
:func:`core.inputs.guess.guess_role`) with :func:`check_roles`, and report through one :class:`CheckReport`:
the same text lines (:meth:`CheckReport.lines`) and the same HTML page (:meth:`CheckReport.html`).

A *warning* is something to look at (a band without a NoData value, two layers of one date); a *blocking*
problem is one a downscaling run refuses with the same message: no CRS, a grid that is not north-up, a
band whose values fail its role's unit check (e.g. soil moisture in percent, raw MODIS NDVI integers).

Example
-------
>>> report = check_layers([("ESA_CCI_SM_v45_20180101.tif", "ESA_CCI_SM_v45_20180101", None, "")])  # doctest: +SKIP
>>> print("\\n".join(text for _, text in report.lines()))                                           # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
import html
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from osgeo import gdal, osr

from ..errors import Canceled, InputError
from ..raster.align import BandRef
from .dates import format_date, parse_date
from .guess import LayerFacts, guess_role
from .roles import ROLE_INFO, Role
from .units import check_layer

gdal.UseExceptions()

Progress = Callable[[float, str], None]

#: Line levels of :meth:`CheckReport.lines`.
INFO, WARNING, BLOCKING = "info", "warning", "blocking"
#: How a blocking problem's line starts, after the layer's name.
BLOCKS = "blocks a run: "
#: GDAL's linear unit names → the plural a report shows (as QGIS names map units).
_UNIT_NAMES = {"metre": "meters", "meter": "meters", "foot": "feet", "us survey foot": "US survey feet",
               "kilometre": "kilometers", "kilometer": "kilometers"}


@dataclass
class BandInfo:
    index: int
    description: str
    date: Optional[dt.date]
    data_type: str
    nodata: Optional[float]
    scale: float
    offset: float
    stats: Optional[tuple[float, float, float, float]]  #: min, max, mean, std after scale/offset


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
    extent: tuple[float, float, float, float]  #: xmin, ymin, xmax, ymax
    file_date: Optional[dt.date]
    bands: list[BandInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Problems a run stops at (its ``InputError`` texts, without the layer name).
    blocking: list[str] = field(default_factory=list)
    #: The role whose unit checks were run, and how it was known ("given" or "guessed from the name").
    role: Optional[Role] = None
    role_source: str = ""

    def dates(self) -> list[dt.date]:
        """Date of each band: its description's, else the file name's; static layers give none."""
        dated = [b.date or self.file_date for b in self.bands]
        return [d for d in dated if d is not None]

    def date_text(self) -> str:
        dates = self.dates()
        if not dates:
            return "none found (static layer)"
        if len(set(dates)) == 1:
            text = format_date(dates[0])
        else:
            text = f"{len(set(dates))} dates, {format_date(min(dates))} … {format_date(max(dates))}"
        return text + (" (from band descriptions)" if any(b.date for b in self.bands) else " (from the file name)")

    def role_text(self) -> str:
        if self.role is None:
            return "none given or guessed: units not checked"
        info = ROLE_INFO[self.role]
        return f"{info.label} ({self.role_source}; units checked as {info.units})"


def read_bands(source: str, approximate: bool = False, progress: Optional[Progress] = None,
               is_canceled: Callable[[], bool] = lambda: False) -> list[BandInfo]:
    """Band metadata and statistics by GDAL, without writing ``.aux.xml`` next to the user's file.

    Raises :class:`~core.errors.Canceled` when ``is_canceled()`` turns true during the statistics.
    """
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO")
    try:
        ds = gdal.Open(source)
        out = []
        n_bands = ds.RasterCount
        for i in range(1, n_bands + 1):
            band = ds.GetRasterBand(i)  # ds stays referenced while band is used (GDAL 3.6)
            scale = band.GetScale() or 1.0  # GetScale() is None or 0 when unset
            offset = band.GetOffset() or 0.0

            def callback(complete: float, _message: str = "", _data: object = None, i: int = i) -> int:
                if progress is not None:
                    progress((i - 1 + complete) / n_bands, "")
                return 0 if is_canceled() else 1
            try:
                mn, mx, mean, std = band.ComputeStatistics(approximate, callback=callback)
                lo, hi = sorted((mn * scale + offset, mx * scale + offset))
                stats = (lo, hi, mean * scale + offset, std * abs(scale))
            except RuntimeError:  # no valid pixel, or canceled through the callback
                if is_canceled():
                    raise Canceled() from None
                stats = None
            description = band.GetDescription() or ""
            out.append(BandInfo(index=i, description=description, date=parse_date(description),
                                data_type=gdal.GetDataTypeName(band.DataType), nodata=band.GetNoDataValue(),
                                scale=scale, offset=offset, stats=stats))
            band = None
        ds = None
        return out
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", None)


def _crs_facts(wkt: str) -> tuple[str, str, str, bool]:
    """``(id, name, units, geographic)`` of a CRS: ``EPSG:xxxx`` (else its PROJ text), its name, its units."""
    if not wkt:
        return "", "no CRS", "<unknown>", False
    srs = osr.SpatialReference()
    srs.SetFromUserInput(wkt)
    authority, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
    if not (authority and code) and srs.AutoIdentifyEPSG() == 0:
        authority, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
    crs_id = f"{authority}:{code}" if authority and code else srs.ExportToProj4().strip()
    geographic = bool(srs.IsGeographic())
    units = "degrees" if geographic else _UNIT_NAMES.get((srs.GetLinearUnitsName() or "").lower(),
                                                         srs.GetLinearUnitsName() or "<unknown>")
    return crs_id, srs.GetName() or "", units, geographic


def describe_layer(source: str, name: str, approximate: bool = False, progress: Optional[Progress] = None,
                   is_canceled: Callable[[], bool] = lambda: False) -> LayerInfo:
    """CRS, grid, bands, dates and value ranges of one raster, with the warnings and blocking problems of
    the file itself (no CRS, not north-up, empty bands, missing NoData values, repeated dates)."""
    try:
        ds = gdal.Open(source)
    except RuntimeError as exc:
        raise InputError(problem=f"the file '{source}' cannot be read as a raster ({exc}).", layer=name,
                         fix="check the path, or convert the file to GeoTIFF.") from None
    wkt = ds.GetProjection()
    gt = ds.GetGeoTransform(can_return_null=True) or (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    width, height = ds.RasterXSize, ds.RasterYSize
    ds = None
    crs_id, crs_name, units, _ = _crs_facts(wkt)
    xs = (gt[0], gt[0] + width * gt[1] + height * gt[2])
    ys = (gt[3], gt[3] + width * gt[4] + height * gt[5])
    info = LayerInfo(name=name, source=source, crs=crs_id or "none", crs_name=crs_name, units=units,
                     width=width, height=height, res_x=abs(gt[1]), res_y=abs(gt[5]),
                     extent=(min(xs), min(ys), max(xs), max(ys)), file_date=parse_date(os.path.basename(source)),
                     bands=read_bands(source, approximate, progress, is_canceled))
    if not wkt:
        info.blocking.append("it has no coordinate reference system. Fix: assign its CRS (Layer Properties ▸ "
                             "Source, or gdal_edit.py -a_srs EPSG:xxxx).")
    if gt[2] != 0 or gt[4] != 0 or gt[5] >= 0:
        info.blocking.append("it is not a north-up georeferenced raster. Fix: warp it to a north-up grid first "
                             "(Raster ▸ Projections ▸ Warp).")
    for b in info.bands:
        if b.stats is None:
            info.warnings.append(f"band {b.index} has no valid pixel (everything is NoData).")
        if b.nodata is None:
            info.warnings.append(f"band {b.index} has no NoData value: fill values (e.g. -9999) would be read as data.")
    repeated = sorted(d for d, n in Counter(info.dates()).items() if n > 1)
    if repeated:
        info.warnings.append("several bands carry the same date: " + ", ".join(format_date(d) for d in repeated) + ".")
    return info


def guessed_role(source: str, name: str) -> Optional[Role]:
    """The role a layer's name or file name suggests (the pixel size tells coarse soil moisture from a fine
    product), as the dock would guess it."""
    ds = gdal.Open(source)
    gt, wkt, n = ds.GetGeoTransform(), ds.GetProjection(), ds.RasterCount
    ds = None
    return guess_role(LayerFacts(name, source, n, pixel_size=abs(gt[1]), geographic=_crs_facts(wkt)[3]))


def check_role(info: LayerInfo, role: Role, role_source: str) -> None:
    """Run the unit check of ``role`` a downscaling run makes (:func:`core.inputs.units.check_layer`) on
    every band with data; a failure is a blocking problem (the run stops with the same text)."""
    info.role, info.role_source = role, role_source
    for b in info.bands:
        if b.stats is None:
            continue  # already reported as having no valid pixel
        try:
            check_layer(role, BandRef(info.source, b.index, info.name))
        except InputError as exc:
            info.blocking.append(f"unit check as {ROLE_INFO[role].label}, band {b.index}: {exc.problem} "
                                 f"Fix: {exc.fix}")


def cross_checks(infos: Sequence[LayerInfo]) -> list[str]:
    """Warnings across layers: mixed CRSs, single-band layers sharing a date."""
    out = []
    crss = Counter(info.crs for info in infos)
    if len(crss) > 1:
        out.append("Layers use different CRSs (" + ", ".join(f"{c}: {n} layer(s)" for c, n in crss.most_common())
                   + "): they will be reprojected onto the fine grid's CRS.")
    owners: dict[dt.date, list[str]] = {}
    for info in infos:
        if len(info.bands) == 1 and info.file_date is not None:
            owners.setdefault(info.file_date, []).append(info.name)
    for d, names in sorted(owners.items()):
        if len(names) > 1:
            out.append(f"Date {format_date(d)} appears in several single-band layers: {', '.join(names)}.")
    return out


@dataclass
class CheckReport:
    layers: list[LayerInfo]
    summary: list[str]  #: warnings across layers (:func:`cross_checks`)

    def dates(self) -> list[dt.date]:
        return sorted({d for info in self.layers for d in info.dates()})

    @property
    def warning_count(self) -> int:
        """Warnings and blocking problems, of every layer and across layers."""
        return len(self.summary) + sum(len(i.warnings) + len(i.blocking) for i in self.layers)

    @property
    def blocking_count(self) -> int:
        return sum(len(i.blocking) for i in self.layers)

    def overview(self) -> list[str]:
        dates = self.dates()
        return [f"{len(self.layers)} layer(s); CRS: {', '.join(sorted({i.crs for i in self.layers})) or '—'}",
                f"dates: {format_date(dates[0])} … {format_date(dates[-1])} ({len(dates)} distinct)"
                if dates else "dates: none found"]

    def lines(self) -> list[tuple[str, str]]:
        """``(level, text)`` of the report: the overview and one line per layer (:data:`INFO`), then every
        warning (:data:`WARNING`) and blocking problem (:data:`BLOCKING`, its text after :data:`BLOCKS`)."""
        out = [(INFO, text) for text in self.overview()]
        for i in self.layers:
            out.append((INFO, f"{i.name}: {i.crs}, {i.width} × {i.height} pixels of {i.res_x:.6g} × {i.res_y:.6g} "
                              f"{i.units}, {len(i.bands)} band(s); dates: {i.date_text()}; role: {i.role_text()}"))
        out += [(WARNING, f"{i.name}: {w}") for i in self.layers for w in i.warnings]
        out += [(WARNING, w) for w in self.summary]
        out += [(BLOCKING, f"{i.name}: {BLOCKS}{b}") for i in self.layers for b in i.blocking]
        return out

    def html(self, title: str) -> str:
        """The report as one HTML page."""
        e = html.escape
        style = ("body{font-family:sans-serif}table{border-collapse:collapse;margin:.5em 0}"
                 "th,td{border:1px solid #bbb;padding:2px 6px;text-align:left}.warn{color:#a40}.block{color:#c00}")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
                f"<style>{style}</style></head><body><h1>{e(title)}</h1>"
                + "".join(f"<p>{e(line)}</p>" for line in self.overview())
                + (("<ul class='warn'>" + "".join(f"<li>{e(w)}</li>" for w in self.summary) + "</ul>")
                   if self.summary else "")
                + "".join(_layer_html(info) for info in self.layers) + "</body></html>")


def check_layers(layers: Sequence[tuple[str, str, Optional[Role], str]], approximate: bool = False,
                 progress: Optional[Progress] = None, is_canceled: Callable[[], bool] = lambda: False) -> CheckReport:
    """The report of ``(source, name, role, how the role is known)`` layers; a role of ``None`` is guessed
    from the name (no unit check when nothing is guessed)."""
    infos = []
    for k, (source, name, role, role_source) in enumerate(layers):
        if progress is not None:
            progress(k / len(layers), f"Reading {name}")

        def part(fraction: float, _message: str = "", k: int = k) -> None:
            if progress is not None:
                progress((k + fraction) / len(layers), f"Reading {name}")
        info = describe_layer(source, name, approximate, part, is_canceled)
        if role is None:
            role = guessed_role(source, name)
            role_source = "guessed from the name" if role is not None else ""
        if role is not None:
            check_role(info, role, role_source)
        infos.append(info)
    return CheckReport(infos, cross_checks(infos))


def _fmt(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.6g}"


def _layer_html(info: LayerInfo) -> str:
    e = html.escape
    rows = [
        ("Source", info.source),
        ("CRS", f"{info.crs} — {info.crs_name}"),
        ("Size", f"{info.width} × {info.height} pixels, {len(info.bands)} band(s)"),
        ("Resolution", f"{info.res_x:.6g} × {info.res_y:.6g} {info.units}"),
        ("Extent", "xmin {:.6g}, ymin {:.6g}, xmax {:.6g}, ymax {:.6g}".format(*info.extent)),
        ("Date(s)", info.date_text()),
        ("Role", info.role_text()),
    ]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    band_rows = "".join(
        "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in (
            b.index, b.description, format_date(b.date) if b.date else "", b.data_type, _fmt(b.nodata),
            f"×{b.scale:g} + {b.offset:g}" if (b.scale, b.offset) != (1.0, 0.0) else "",
            *(_fmt(s) for s in (b.stats or (None,) * 4)))) + "</tr>"
        for b in info.bands)
    head = "".join(f"<th>{h}</th>" for h in ("Band", "Description", "Date", "Type", "NoData", "Scale/offset", "Min",
                                             "Max", "Mean", "Std"))
    warn = "".join(f"<li>{e(w)}</li>" for w in info.warnings)
    block = "".join(f"<li>{e(BLOCKS + b)}</li>" for b in info.blocking)
    return (f"<h2>{e(info.name)}</h2><table>{table}</table><table><tr>{head}</tr>{band_rows}</table>"
            + (f"<ul class='block'>{block}</ul>" if block else "") + (f"<ul class='warn'>{warn}</ul>" if warn else ""))
