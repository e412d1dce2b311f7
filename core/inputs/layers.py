"""Layers given by file (path + name) → the dated bands and covariate inputs of a scene.

The same rules for the Processing algorithms (a layer's name is its QGIS layer name) and the
command line (a file's name without extension, as QGIS names a layer loaded from a path), so
the same files give the same :class:`~core.inputs.scene.SceneSpec` either way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

from osgeo import gdal

from ..errors import InputError
from ..raster.align import BandRef
from .dates import parse_date, parse_date_list, strip_date
from .roles import ROLE_INFO, Role
from .scene import LayerInput, undated_bands_problem

gdal.UseExceptions()


@dataclass(frozen=True)
class GivenLayer:
    """A raster the user gave: its GDAL source, the name a user knows it by, its band count."""
    path: str
    name: str
    bands: int

    @classmethod
    def of_file(cls, path: str) -> "GivenLayer":
        """A file given on a command line, named like QGIS names a layer loaded from a path."""
        try:
            ds = gdal.Open(path)
        except RuntimeError as exc:
            raise InputError(problem=f"the file '{path}' cannot be read as a raster ({exc}).", layer=None,
                             fix="check the path, or convert the file to GeoTIFF.") from None
        n = ds.RasterCount
        ds = None
        return cls(path, os.path.splitext(os.path.basename(path))[0], n)


def band_dates(path: str) -> list[Optional[object]]:
    """The date read in each band description of ``path`` (``None`` where there is none)."""
    ds = gdal.Open(path)
    out = [parse_date(ds.GetRasterBand(i).GetDescription() or "") for i in range(1, ds.RasterCount + 1)]
    ds = None
    return out


def soil_moisture_refs(layers: Sequence[GivenLayer], given_dates: str = "", dates_param: str = "SM_DATES"
                       ) -> list[BandRef]:
    """Dated bands of the soil-moisture layers; ``given_dates`` (comma separated) overrides them."""
    refs: list[BandRef] = []
    for lay in layers:
        dates = band_dates(lay.path)
        if lay.bands == 1 and dates[0] is None:
            dates = [parse_date(os.path.basename(lay.path)) or parse_date(lay.name)]
        refs.extend(BandRef(lay.path, i + 1, lay.name, d) for i, d in enumerate(dates))
    given = given_dates.strip()
    if given:
        try:
            explicit = parse_date_list(given)
        except ValueError as e:
            raise InputError(str(e)) from None
        if len(explicit) != len(refs):
            raise InputError(f"{len(explicit)} dates were given for {len(refs)} soil-moisture bands. "
                             "Fix: give one date per band, in layer and band order.")
        refs = [BandRef(r.path, r.band, r.name, d) for r, d in zip(refs, explicit)]
    undated = [r for r in refs if r.date is None]
    if undated:
        raise InputError(
            f"Layer '{undated[0].name}': {undated_bands_problem(undated)} Fix: give the dates of all "
            f"{len(refs)} soil-moisture bands, in layer and band order, in the advanced parameter "
            f"'Dates of the soil-moisture bands' ({dates_param}, e.g. 2018-01-01, 2018-01-02, …), or set each band "
            "description to its date (YYYY-MM-DD), or use one file per date with the date in its name.")
    return refs


def covariate_inputs(by_role: Sequence[tuple[Role, Sequence[GivenLayer]]]) -> list[LayerInput]:
    """The covariate layers of every role, as scene inputs.

    Per role: dated single-band files form one time series (under *Other*, one per name once the
    date is removed: ``S1_VV_20180101`` … and ``S1_VH_20180101`` … are two series); a layer with
    dated bands is a time series; every undated layer is a static covariate of its own, and a
    static multi-band layer gives one covariate per band. A DEM is one layer. Under a named
    role, dated and undated layers together are refused (an undated file of a series is a slip).
    """
    out: list[LayerInput] = []
    for role, layers in by_role:
        if not layers:
            continue
        label = ROLE_INFO[role].label
        series: dict[str, list[BandRef]] = {}
        static: list[LayerInput] = []
        for lay in layers:
            path, n = lay.path, lay.bands
            dates = band_dates(path)
            if n == 1:
                d = dates[0] or parse_date(os.path.basename(path))
                if d is None:
                    static.append(LayerInput(role, lay.name, [BandRef(path, 1, lay.name, None)]))
                else:
                    stem = strip_date(lay.name) if role is Role.OTHER else label
                    series.setdefault(stem, []).append(BandRef(path, 1, lay.name, d))
            elif all(d is not None for d in dates):
                stem = lay.name if role is Role.OTHER else label
                series.setdefault(stem, []).extend(BandRef(path, i + 1, lay.name, d) for i, d in enumerate(dates))
            elif all(d is None for d in dates) and role is not Role.DEM:
                static += [LayerInput(role, f"{lay.name} {_band_label(path, b)}", [BandRef(path, b, lay.name, None)])
                           for b in range(1, n + 1)]
            else:
                raise InputError(
                    f"Layer '{lay.name}': it has {n} bands and {_undated_text(path, dates)}, so it is unclear "
                    f"which bands are the {label}. Fix: set every band description to its date (YYYY-MM-DD) for a "
                    "time series, or extract the band you mean (Raster ▸ Conversion ▸ Translate, or "
                    "gdal_translate -b N) and use the new layer.")
        if series and static and role is not Role.OTHER:
            first = static[0]
            raise InputError(
                f"Layer '{first.name}': the {label} was given as a dated series, but no date could be read in this "
                f"layer's name or file name ('{os.path.basename(first.bands[0].path)}'). Fix: put the date in its "
                "file name (YYYYMMDD or YYYY-MM-DD), or give it under 'Other covariate' if it is a separate static "
                "covariate.")
        for stem, refs in series.items():
            names = sorted({r.name for r in refs})
            out.append(LayerInput(role, stem if role is Role.OTHER else ", ".join(names), refs))
        out += static
        if role is Role.DEM and sum(lay.role is Role.DEM for lay in out) > 1:
            raise InputError(
                f"{len(layers)} DEM layers were given. Fix: give one elevation layer (merge tiles first, e.g. "
                "Raster ▸ Miscellaneous ▸ Merge); other terrain layers go under 'Other covariate'.")
    return out


def _band_label(path: str, band: int) -> str:
    ds = gdal.Open(path)
    desc = (ds.GetRasterBand(band).GetDescription() or "").strip()
    ds = None
    return desc or f"band {band}"


def _undated_text(path: str, dates: list) -> str:
    undated = [b for b, d in enumerate(dates, start=1) if d is None]
    shown = ", ".join(f"band {b} ('{_band_label(path, b)}')" for b in undated[:5])
    return f"no date could be read in the description of {shown}" + (" …" if len(undated) > 5 else "")
