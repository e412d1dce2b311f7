"""The site-metric report from files: the steps the *Site report* algorithm and ``smds report`` share —
group the given rasters into products, date their bands, score them at the stations next to the coarse
product, diagnose each against it (conservation, heterogeneity, drought share) and write the report."""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ..errors import InputError
from ..inputs.dates import parse_date
from ..io.output import qml_pseudocolor, write_text_atomic
from ..raster.align import BandRef
from .drought import dry_share_of_refs
from .product_diagnostics import diagnose_product, write_diagnostic_rasters
from .report import write_report
from .station_scoring import StationInputs, field_key, sample_refs, score_with_notes
from .stations import build_series

#: Conservation error (%): brown = fine drier than coarse, teal = wetter.
CONSERVATION_RAMP = ((-20.0, "#a6611a"), (-5.0, "#dfc27d"), (0.0, "#f7f7f7"), (5.0, "#80cdc1"), (20.0, "#018571"))
#: Heterogeneity (coefficient of variation): pale = uniform cell, dark red = strong sub-cell contrast.
HETEROGENEITY_RAMP = ((0.0, "#ffffcc"), (0.1, "#fed976"), (0.2, "#fd8d3c"), (0.3, "#e31a1c"), (0.5, "#800026"))
DEFAULT_TITLE = "Downscaled soil moisture: evaluation at in-situ stations"

_DATE_IN_NAME = re.compile(r"(?<!\d)\d{4}[-_]?\d{2}[-_]?\d{2}(?!\d)")


@dataclass(frozen=True)
class Raster:
    """A raster the user gave: GDAL source, band count, the name a user knows it by."""
    path: str
    bands: int
    name: str


def dated_refs(rasters: Sequence[Raster], what: str) -> list[BandRef]:
    """One :class:`BandRef` per band, dated by band description or (single band) file/layer name."""
    from osgeo import gdal
    refs: list[BandRef] = []
    for r in rasters:
        ds = gdal.Open(r.path)
        descs = [ds.GetRasterBand(b).GetDescription() or "" for b in range(1, r.bands + 1)]
        ds = None
        for b, desc in enumerate(descs, start=1):
            d = parse_date(desc)
            if d is None and r.bands == 1:
                d = parse_date(os.path.basename(r.path)) or parse_date(r.name)
            if d is None:
                raise InputError(f"band {b} of '{what}' has no date.", layer=r.name,
                                 fix="set each band description to its date (YYYY-MM-DD), or use one file per date "
                                     "with the date in the file name.")
            refs.append(BandRef(r.path, b, r.name, d))
    return refs


def without_date(name: str) -> str:
    return re.sub(r"[_\-. ]{2,}", "_", _DATE_IN_NAME.sub("", name)).strip("_-. ")


def group_products(rasters: Sequence[Raster], names: Sequence[str]) -> "OrderedDict[str, list[BandRef]]":
    """The products among ``rasters``: a multi-band raster is one, single-date files whose names differ only by
    the date are one; named by ``names`` (one per product, in order) or by the layer / the file name without
    the date."""
    if not rasters:
        raise InputError("Give at least one downscaled product.")
    groups: "OrderedDict[str, list[Raster]]" = OrderedDict()
    for r in rasters:
        stem, ext = os.path.splitext(os.path.basename(r.path))
        key = r.path if r.bands > 1 else os.path.join(os.path.dirname(r.path), without_date(stem) + ext)
        groups.setdefault(key, []).append(r)
    if names and len(names) != len(groups):
        raise InputError(f"{len(names)} product names were given for {len(groups)} products.",
                         fix="give one name per product (a multi-band raster, or a set of single-date files), in "
                             "layer order.")
    out: "OrderedDict[str, list[BandRef]]" = OrderedDict()
    for k, (key, members) in enumerate(groups.items()):
        if names:
            name = names[k]
        elif len(members) == 1 and members[0].bands > 1:
            name = members[0].name
        else:
            name = without_date(os.path.splitext(os.path.basename(key))[0]) or "product"
        if name in out:
            raise InputError(f"Two products are called '{name}'.", fix="name them in 'Product names' (advanced).")
        out[name] = dated_refs(members, name)
    return out


def product_names(text: str) -> list[str]:
    """The comma-separated product names of the *Product names* parameter."""
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def check_coarse_name(products: dict, coarse_name: str) -> None:
    if coarse_name in products:
        raise InputError(f"A downscaled product and the coarse product are both called '{coarse_name}'.",
                         fix="give the coarse product another name.")


@dataclass
class Scored:
    """The stations' side of a report: score rows, the series behind the figures, the products sampled."""
    rows: list[dict]
    series: Any
    sampled: "OrderedDict[str, Any]"
    warning: Optional[str]


def score_at_stations(got: StationInputs, products: "OrderedDict[str, list[BandRef]]", coarse_name: str,
                      coarse_refs: Sequence[BandRef]) -> Scored:
    sampled = OrderedDict((name, sample_refs(refs, got.stations)) for name, refs in products.items())
    sampled[coarse_name] = sample_refs(coarse_refs, got.stations)
    rows, warning = score_with_notes(got, sampled, {**products, coarse_name: coarse_refs})
    return Scored(rows, build_series(got.stations, got.insitu.dates, got.insitu.values, sampled), sampled, warning)


@dataclass
class Diagnosed:
    """One product's diagnostics: the report's summary, its drought share, log lines, warnings, rasters."""
    summary: dict
    drought: dict
    dates: list
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: ``(kind, path, style path)`` of each diagnostics raster written
    rasters: list[tuple[str, str, str]] = field(default_factory=list)


def suffixed(path: Optional[str], product: str, index: int) -> Optional[str]:
    """The diagnostics raster of the ``index``-th product: the path given, suffixed by the product after the first."""
    if not path or index == 0:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}_{field_key(product)}{ext}"


def diagnose(name: str, index: int, refs: Sequence[BandRef], coarse_refs: Sequence[BandRef], min_coverage: float,
             conservation_path: Optional[str], heterogeneity_path: Optional[str],
             progress: Optional[Callable[[float, str], None]] = None,
             is_canceled: Optional[Callable[[], bool]] = None) -> Diagnosed:
    """Conservation error and heterogeneity of one product against the coarse one, its drought share, and
    the diagnostics rasters (with their styles) when paths are given."""
    diag = diagnose_product(refs, coarse_refs, min_coverage=min_coverage, progress=progress, is_canceled=is_canceled)
    s = diag.summary()
    out = Diagnosed(s, dry_share_of_refs(refs), list(diag.dates))
    if "note" not in out.drought:
        out.lines.append(f"'{name}': drought anomaly over {len(refs)} dates (calendar periods of "
                         f"{out.drought['period_days']} days)")
    c, v = s["conservation_percent"], s["heterogeneity_cv"]
    out.lines.append(f"'{name}': {len(diag.dates)} dates on {diag.grid.width}×{diag.grid.height} coarse cells; "
                     f"conservation error mean |·| {c['mean_abs']:.2f} %, max {c['max_abs']:.2f} %; "
                     f"heterogeneity (CV) mean {v['mean_abs']:.3f}, max {v['max_abs']:.3f}")
    if diag.skipped:
        out.warnings.append(f"'{name}': {len(diag.skipped)} date(s) have no coarse counterpart and were not "
                            f"diagnosed (first: {diag.skipped[0]}).")
    for kind, first, ramp, units in (("conservation", conservation_path, CONSERVATION_RAMP, "%"),
                                     ("heterogeneity", heterogeneity_path, HETEROGENEITY_RAMP, "")):
        path = suffixed(first, name, index)
        if path:
            write_diagnostic_rasters(diag, **{f"{kind}_path": path})
            style = write_text_atomic(os.path.splitext(path)[0] + ".qml", qml_pseudocolor(ramp, 1, units))
            out.rasters.append((kind, path, style))
    return out


def subtitle(products: dict[str, Sequence[BandRef]], coarse: str, coarse_refs: Sequence[BandRef]) -> str:
    def span(refs):
        ds = sorted({r.date for r in refs})
        return f"{len(ds)} dates, {ds[0]} to {ds[-1]}" if ds else "no dates"
    parts = [f"{name} ({span(refs)})" for name, refs in products.items()]
    return f"Downscaled: {'; '.join(parts)}. Coarse: {coarse} ({span(coarse_refs)})."


def write_site_report(html_path: str, csv_path: str, scored: Scored, got: StationInputs,
                      products: dict[str, Sequence[BandRef]], coarse_name: str, coarse_refs: Sequence[BandRef],
                      diagnostics: dict, drought: dict, title: str = "") -> None:
    os.makedirs(os.path.dirname(os.path.abspath(html_path)), exist_ok=True)
    write_report(html_path, csv_path, scored.rows, scored.series, got.stations, diagnostics=diagnostics,
                 title=title.strip() or DEFAULT_TITLE, coarse_product=coarse_name, drought=drought,
                 subtitle=subtitle(products, coarse_name, coarse_refs))
