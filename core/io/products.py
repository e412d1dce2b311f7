"""Satellite soil-moisture products as distributed, into one dated GeoTIFF in m³/m³.

Reads, with GDAL's own HDF5 and netCDF drivers (no h5py / netCDF4 in QGIS's Python):

- **SMAP L3 radiometer** SPL3SMP (36 km) and **enhanced** SPL3SMP_E (9 km):
  ``Soil_Moisture_Retrieval_Data_AM/soil_moisture`` and ``…_PM/soil_moisture_pm``, with
  ``retrieval_qual_flag`` (``…_pm``): bit 0 = 0 is "recommended quality";
- **SMAP L4** SPL4SMGP (9 km, 3-hourly granules): ``Geophysical_Data/sm_surface`` or
  ``sm_rootzone``; several granules of a day give their daily mean, or one time step is kept;
- **ESA CCI SM** daily NetCDF (COMBINED, PASSIVE; ACTIVE is in % of saturation and is
  refused): variable ``sm``, ``flag`` ≠ 0 masked.

SMAP granules are on the global EASE-Grid 2.0 (EPSG:6933) but GDAL exposes them without a
geotransform (with thousands of lat/lon control points instead): the grid is set here from the
grid definition, so nothing depends on the control points. ESA CCI files carry no CRS: they are
on EPSG:4326. Fill values and ``valid_min``/``valid_max`` are honoured; the extent is cut on the
product's own grid before anything is read, and only that window is read, in row blocks.

Typical use::

    result = import_products(sorted(glob("SMAP_L3_SM_P_201801*.h5")), "smap_jan.tif",
                             bounds=(-76.5, 37.75, -74.5, 40.25), bounds_crs="EPSG:4326")
    result.dates, result.log
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
from osgeo import gdal

from ..errors import Canceled, InputError
from ..inputs.dates import parse_date
from ..raster.grid import Bounds, Grid, Window, crs_to_wkt, transform_bounds
from .output import RasterWriter, write_soil_moisture_style

gdal.UseExceptions()

Progress = Callable[[float, str], None]

#: EASE-Grid 2.0 global (EPSG:6933): cell size (m) by grid shape (rows, columns) — NSIDC's definition.
EASE2_CELL = {(406, 964): 36032.220840584, (1624, 3856): 9008.055210146}
#: Upper-left corner of the EASE-Grid 2.0 global grids (m).
EASE2_X0, EASE2_Y0 = -17367530.445161372, 7314540.830638504

SPL3SMP, SPL3SMP_E, SPL4SMGP, ESA_CCI = "SMAP L3 (SPL3SMP)", "SMAP L3 enhanced (SPL3SMP_E)", "SMAP L4 (SPL4SMGP)", "ESA CCI SM"

#: How the AM (descending, 6 am) and PM (ascending, 6 pm) SMAP L3 retrievals become one value a day.
PASS_MODES = ("am_then_pm", "mean", "am", "pm")

_L3_GROUP = {"am": "Soil_Moisture_Retrieval_Data_AM", "pm": "Soil_Moisture_Retrieval_Data_PM"}
_L3_SUFFIX = {"am": "", "pm": "_pm"}
_L4_GROUP = "Geophysical_Data"
_L4_VARIABLES = ("sm_surface", "sm_rootzone")
_NAME_TIME = re.compile(r"(?<!\d)(\d{8})T(\d{6})(?!\d)")


@dataclass(frozen=True)
class ProductOptions:
    """Choices of :func:`import_products`; the defaults are the Processing algorithm's.

    Attributes
    ----------
    passes : {"am_then_pm", "mean", "am", "pm"}
        SMAP L3: AM first and PM filling its gaps (default), the mean of both where both exist
        (Poehls et al.), or one pass alone.
    recommended_only : bool
        SMAP L3: keep only retrievals whose ``retrieval_qual_flag`` bit 0 is 0.
    l4_variable : {"sm_surface", "sm_rootzone"}
        SMAP L4 variable.
    l4_time : str, optional
        SMAP L4: keep only the granule of this UTC time step each day (``"01:30"``); ``None``
        averages every granule of a day (daily mean).
    mask_flagged : bool
        ESA CCI: mask cells whose ``flag`` is not 0.
    drop_empty : bool
        Leave out dates without a single valid cell in the area (the downscaling algorithms refuse
        an all-empty band); they are named in the log.
    block_pixels : int
        Pixels per row block read and written at once.
    """

    passes: str = "am_then_pm"
    recommended_only: bool = True
    l4_variable: str = "sm_surface"
    l4_time: Optional[str] = None
    mask_flagged: bool = True
    drop_empty: bool = True
    block_pixels: int = 1 << 20


@dataclass
class ProductFile:
    """One file as understood: which product, when, on which native grid."""

    path: str
    product: str
    when: _dt.datetime
    grid: Grid

    @property
    def date(self) -> _dt.date:
        return self.when.date()


@dataclass
class ImportResult:
    """What :func:`import_products` wrote.

    Attributes
    ----------
    path : str
        The GeoTIFF (one float32 band per date, m³/m³, NaN = no data).
    product : str
    dates : list of datetime.date
        Date of each band (dates without a valid cell left out unless ``drop_empty`` is off).
    grid : Grid
        The cut grid of the output.
    valid : list of int
        Valid cells of each band.
    log : list of str
        One line per date read (sources, valid cells, what the quality flags removed, left out).
    """

    path: str
    product: str
    dates: list[_dt.date]
    grid: Grid
    valid: list[int] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- identifying files


def identify(path: str) -> ProductFile:
    """Which product ``path`` is, its time stamp (UTC) and its native grid.

    Raises
    ------
    InputError
        The file is not one of the supported products, has no date, or uses units that are not
        volumetric (ESA CCI ACTIVE is in percent of saturation).
    """
    path = os.fspath(path)
    ds = _open(path, path)
    subs = ds.GetMetadata("SUBDATASETS") or {}
    names = {v for k, v in subs.items() if k.endswith("_NAME")}
    driver = ds.GetDriver().ShortName
    if driver == "HDF5" or any(n.startswith("HDF5:") for n in names):
        datasets = {n.split("://", 1)[-1] for n in names}
        l3 = [k for k in (f"{_L3_GROUP['am']}/soil_moisture", f"{_L3_GROUP['pm']}/soil_moisture_pm") if k in datasets]
        if l3:
            key = l3[0]
            grid = _ease2_grid(path, _hdf5(path, key))
            product = SPL3SMP if grid.dx > 20000 else SPL3SMP_E
            return ProductFile(path, product, _smap_time(path, ds, daily=True), grid)
        if any(f"{_L4_GROUP}/{v}" in datasets for v in _L4_VARIABLES):
            key = next(f"{_L4_GROUP}/{v}" for v in _L4_VARIABLES if f"{_L4_GROUP}/{v}" in datasets)
            return ProductFile(path, SPL4SMGP, _smap_time(path, ds, daily=False), _ease2_grid(path, _hdf5(path, key)))
        raise InputError(layer=os.path.basename(path),
                         problem="this HDF5 file has neither SMAP L3 soil_moisture (Soil_Moisture_Retrieval_Data_AM/PM) "
                                 "nor SMAP L4 Geophysical_Data/sm_surface.",
                         fix="give SMAP SPL3SMP, SPL3SMP_E or SPL4SMGP granules (.h5) as downloaded from NSIDC.")
    if driver == "netCDF" or any(n.startswith("NETCDF:") for n in names):
        sm_name = next((n for n in names if n.endswith(":sm")), None)
        if sm_name is None:
            raise InputError(layer=os.path.basename(path), problem="this NetCDF file has no variable 'sm'.",
                             fix="give ESA CCI SM daily files (ESACCI-SOILMOISTURE-L3S-SSMV-…nc).")
        sm = _open(sm_name, path)
        units = (sm.GetRasterBand(1).GetMetadataItem("units") or "").strip().lower()
        if "percent" in units or "%" in units:
            raise InputError(layer=os.path.basename(path),
                             problem=f"its soil moisture is in '{units}' (ESA CCI ACTIVE: degree of saturation), not m³/m³.",
                             fix="use the COMBINED or PASSIVE product, or convert ACTIVE to m³/m³ with a porosity map "
                                 "first (Raster Calculator: sm / 100 × porosity).")
        gt = sm.GetGeoTransform(can_return_null=True)
        if gt is None or gt[2] != 0 or gt[4] != 0 or gt[5] >= 0:
            raise InputError(layer=os.path.basename(path), problem="GDAL finds no regular lat/lon grid in it.",
                             fix="give the ESA CCI SM files as distributed (0.25° global grid).")
        grid = Grid(crs_to_wkt("EPSG:4326"), gt[0], gt[3], gt[1], -gt[5], sm.RasterXSize, sm.RasterYSize)
        return ProductFile(path, ESA_CCI, _cci_time(path, sm), grid)
    raise InputError(layer=os.path.basename(path), problem=f"GDAL reads it as '{driver}', not as a SMAP HDF5 or ESA CCI NetCDF product.",
                     fix="give SMAP .h5 granules or ESA CCI SM .nc files; GeoTIFFs can be used directly.")


# --------------------------------------------------------------------------- import


def import_products(
    paths: Sequence[str],
    output: str,
    bounds: Optional[Bounds] = None,
    bounds_crs: Optional[str] = None,
    options: Optional[ProductOptions] = None,
    progress: Optional[Progress] = None,
    is_canceled: Optional[Callable[[], bool]] = None,
) -> ImportResult:
    """Write the product files as one float32 GeoTIFF in m³/m³, one band per date.

    Parameters
    ----------
    paths : sequence of str
        Files of one product (SMAP L3, L3 enhanced, L4, or ESA CCI).
    output : str
        The GeoTIFF to write (atomically; a ``.qml`` style is written beside it).
    bounds, bounds_crs : optional
        Area to keep (xmin, ymin, xmax, ymax) and its CRS (default: the product's). The cells
        that intersect it are kept; nothing outside is read.
    options : ProductOptions, optional
    progress, is_canceled : callables, optional
        ``progress(fraction, message)``; ``is_canceled()`` is polled in every block, and a
        cancel raises :class:`core.errors.Canceled` leaving no file.

    Returns
    -------
    ImportResult

    Raises
    ------
    InputError
        No file, files of different products or grids, the same date twice (SMAP L3 / ESA CCI),
        an extent that misses the product's grid.
    """
    opts = options or ProductOptions()
    if opts.passes not in PASS_MODES:
        raise ValueError(f"passes must be one of {PASS_MODES}, not {opts.passes!r}")
    if opts.l4_variable not in _L4_VARIABLES:
        raise ValueError(f"l4_variable must be one of {_L4_VARIABLES}, not {opts.l4_variable!r}")
    if not paths:
        raise InputError(problem="no product file was given.", fix="select the downloaded .h5 or .nc files.")
    files = [identify(p) for p in paths]
    first = files[0]
    for f in files[1:]:
        if f.product != first.product or f.grid != first.grid:
            raise InputError(layer=os.path.basename(f.path),
                             problem=f"it is {f.product}, the first file ({os.path.basename(first.path)}) is {first.product} "
                                     "on another grid; one output holds one product.",
                             fix="import each product separately.")
    days = _group_by_day(files, opts)
    x0, y0, grid = cut_window(first.grid, bounds, bounds_crs)
    dates = sorted(days)
    windows = list(grid.windows(opts.block_pixels))
    n_steps = max(1, 2 * len(dates) * len(windows))
    step = 0
    valid: list[int] = []
    log: list[str] = []
    # Pass 1 into a scratch file (counting valid cells), pass 2 copies the dates kept into the output.
    with RasterWriter(output, grid, [d.isoformat() for d in dates], temporary=True) as scratch:
        for b, day in enumerate(dates):
            counts: dict[str, int] = {}
            n_valid = 0
            for win in windows:
                if is_canceled is not None and is_canceled():
                    raise Canceled()
                block = _read_day(days[day], first.product, opts, x0, y0 + win.row0, grid.width, win.nrows, counts)
                n_valid += int(np.isfinite(block).sum())
                scratch.write(b, win, block)
                step += 1
                if progress is not None:
                    progress(step / n_steps, day.isoformat())
            valid.append(n_valid)
            log.append(_log_line(day, days[day], n_valid, grid.size, counts))
        keep = [b for b, n in enumerate(valid) if n > 0 or not opts.drop_empty]
        if not keep:
            raise InputError(problem=f"no date has a valid cell in the area ({len(dates)} dates read; flags, fill values "
                                     "and the valid range removed everything).",
                             fix="widen the area, pick other dates, or relax the quality options.")
        for b in sorted(set(range(len(dates))) - set(keep)):
            log[b] += " — left out (no valid cell)"
        kept_dates = [dates[b] for b in keep]
        metadata = {"PRODUCT": first.product, "UNITS": "m3/m3", "TIMES": ",".join(d.isoformat() for d in kept_dates),
                    "SOURCES": ",".join(os.path.basename(f.path) for f in files)}
        with RasterWriter(output, grid, [d.isoformat() for d in kept_dates], metadata) as writer:
            for i, b in enumerate(keep):
                for win in windows:
                    if is_canceled is not None and is_canceled():
                        raise Canceled()
                    writer.write(i, win, scratch.read(b, win))
                    step += 1
                    if progress is not None:
                        progress(step / n_steps, dates[b].isoformat())
            writer.commit()
    result = ImportResult(output, first.product, kept_dates, grid, [valid[b] for b in keep], log)
    write_soil_moisture_style(output)
    return result


def cut_window(grid: Grid, bounds: Optional[Bounds], bounds_crs: Optional[str]) -> tuple[int, int, Grid]:
    """Column and row offset of the cells of ``grid`` that intersect ``bounds``, and their grid.

    ``bounds`` in ``bounds_crs`` (default: the grid's CRS) are transformed to the grid's CRS
    (edges densified). ``None`` keeps the whole grid.

    Raises
    ------
    InputError
        The bounds do not intersect the grid.
    """
    if bounds is None:
        return 0, 0, grid
    src = crs_to_wkt(bounds_crs) if bounds_crs else grid.crs_wkt
    xmin, ymin, xmax, ymax = transform_bounds(tuple(bounds), src, grid.crs_wkt)
    c0 = max(0, int(math.floor((xmin - grid.x0) / grid.dx + 1e-9)))
    c1 = min(grid.width, int(math.ceil((xmax - grid.x0) / grid.dx - 1e-9)))
    r0 = max(0, int(math.floor((grid.y0 - ymax) / grid.dy + 1e-9)))
    r1 = min(grid.height, int(math.ceil((grid.y0 - ymin) / grid.dy - 1e-9)))
    if c1 <= c0 or r1 <= r0:
        gb = grid.bounds
        raise InputError(problem=f"the extent ({xmin:.6g}, {ymin:.6g}, {xmax:.6g}, {ymax:.6g} in the product's CRS) does not "
                                 f"overlap the product's grid ({gb[0]:.6g}, {gb[1]:.6g}, {gb[2]:.6g}, {gb[3]:.6g}).",
                         fix="draw the extent over land the product covers, or leave it empty for the whole grid.")
    cut = Grid(grid.crs_wkt, grid.x0 + c0 * grid.dx, grid.y0 - r0 * grid.dy, grid.dx, grid.dy, c1 - c0, r1 - r0)
    return c0, r0, cut


# --------------------------------------------------------------------------- reading one day


def _group_by_day(files: list[ProductFile], opts: ProductOptions) -> dict[_dt.date, list[ProductFile]]:
    days: dict[_dt.date, list[ProductFile]] = {}
    if files[0].product == SPL4SMGP and opts.l4_time:
        want = _parse_hhmm(opts.l4_time)
        files = [f for f in files if (f.when.hour, f.when.minute) == want]
        if not files:
            raise InputError(problem=f"no SMAP L4 granule has the time step {opts.l4_time} UTC.",
                             fix="pick a time step the granules have (01:30, 04:30, …, 22:30) or the daily mean.")
    for f in files:
        days.setdefault(f.date, []).append(f)
    if files[0].product != SPL4SMGP:
        for day, group in days.items():
            if len(group) > 1:
                raise InputError(layer=os.path.basename(group[1].path),
                                 problem=f"its date {day.isoformat()} is also the date of {os.path.basename(group[0].path)}.",
                                 fix="give each date once (remove the duplicate or older version).")
    for group in days.values():
        group.sort(key=lambda f: f.when)
    return days


def _read_day(group: list[ProductFile], product: str, opts: ProductOptions, x0: int, y0: int, w: int, h: int,
              counts: dict[str, int]) -> np.ndarray:
    if product == SPL4SMGP:
        total = np.zeros((h, w), np.float64)
        n = np.zeros((h, w), np.int32)
        for f in group:
            v = _read_masked(_hdf5(f.path, f"{_L4_GROUP}/{opts.l4_variable}"), f.path, x0, y0, w, h, counts, "")
            ok = np.isfinite(v)
            total[ok] += v[ok]
            n += ok
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(np.float32)
    (f,) = group
    if product == ESA_CCI:
        flag = _cci_variable(f.path, "flag") if opts.mask_flagged else None
        return _read_masked(_cci_variable(f.path, "sm"), f.path, x0, y0, w, h, counts, "", flag, _cci_flagged)
    passes = {"am_then_pm": ("am", "pm"), "mean": ("am", "pm"), "am": ("am",), "pm": ("pm",)}[opts.passes]
    values = {}
    for p in passes:
        sm = _hdf5(f.path, f"{_L3_GROUP[p]}/soil_moisture{_L3_SUFFIX[p]}")
        qual = _hdf5(f.path, f"{_L3_GROUP[p]}/retrieval_qual_flag{_L3_SUFFIX[p]}") if opts.recommended_only else None
        values[p] = _read_masked(sm, f.path, x0, y0, w, h, counts, p.upper() + " ", qual, _not_recommended)
    if len(passes) == 1:
        out = values[passes[0]]
    elif opts.passes == "mean":
        with np.errstate(invalid="ignore"):
            both = np.isfinite(values["am"]) & np.isfinite(values["pm"])
            out = np.where(both, (values["am"] + values["pm"]) / 2, np.where(np.isfinite(values["am"]), values["am"], values["pm"]))
    else:
        out = np.where(np.isfinite(values["am"]), values["am"], values["pm"])
        counts["PM filled"] = counts.get("PM filled", 0) + int((~np.isfinite(values["am"]) & np.isfinite(values["pm"])).sum())
    return out.astype(np.float32)


def _read_masked(name: str, path: str, x0: int, y0: int, w: int, h: int, counts: dict[str, int], label: str,
                 flag_name: Optional[str] = None,
                 flag_bad: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> np.ndarray:
    """One window of a soil-moisture variable in m³/m³: fill, valid range and flags → NaN."""
    ds = _open(name, path)
    band = ds.GetRasterBand(1)
    raw = band.ReadAsArray(x0, y0, w, h)
    values = raw.astype(np.float64)
    meta = _band_attrs(ds)
    fill = band.GetNoDataValue()
    if fill is None and "_FillValue" in meta:
        fill = _number(meta["_FillValue"])
    missing = ~np.isfinite(values)
    if fill is not None:
        missing |= values == fill
    lo, hi = _valid_range(meta)
    with np.errstate(invalid="ignore"):
        out_of_range = ~missing & ((values < lo) | (values > hi))
    counts[label + "out of valid range"] = counts.get(label + "out of valid range", 0) + int(out_of_range.sum())
    scale, offset = band.GetScale(), band.GetOffset()
    if scale not in (None, 0, 1) or offset not in (None, 0):
        values = values * (scale or 1.0) + (offset or 0.0)
    values[missing | out_of_range] = np.nan
    if flag_name is not None:
        fds = _open(flag_name, path)
        flags = fds.GetRasterBand(1).ReadAsArray(x0, y0, w, h).astype(np.int64)
        bad = flag_bad(flags)
        removed = bad & np.isfinite(values)
        counts[label + "removed by quality flag"] = counts.get(label + "removed by quality flag", 0) + int(removed.sum())
        values[bad] = np.nan
    return values.astype(np.float32)


def _cci_flagged(flags: np.ndarray) -> np.ndarray:
    return flags != 0  # 0 = no inconsistency detected; 127 = no data


def _not_recommended(flags: np.ndarray) -> np.ndarray:
    return (flags & 1) == 1  # SMAP retrieval_qual_flag bit 0: retrieval not of recommended quality


def _valid_range(meta: dict[str, str]) -> tuple[float, float]:
    """``valid_min``/``valid_max`` or ``valid_range`` of the variable; else [0, 1] (a volumetric fraction)."""
    lo, hi = 0.0, 1.0
    parts = [_number(p) for p in re.split(r"[{},\s]+", meta.get("valid_range", "")) if p]
    if len(parts) == 2 and None not in parts:
        lo, hi = parts
    vmin, vmax = _number(meta.get("valid_min", "")), _number(meta.get("valid_max", ""))
    return (lo if vmin is None else vmin), (hi if vmax is None else vmax)


def _band_attrs(ds: gdal.Dataset) -> dict[str, str]:
    """Attributes of the variable: netCDF names them plainly, HDF5 prefixes them with the dataset path."""
    md = ds.GetRasterBand(1).GetMetadata() or {}
    out: dict[str, str] = {}
    for key, value in md.items():
        for attr in ("_FillValue", "valid_range", "valid_min", "valid_max", "units"):
            if key == attr or key.endswith("_" + attr):
                out[attr] = value
    return out


def _log_line(day: _dt.date, group: list[ProductFile], valid: int, total: int, counts: dict[str, int]) -> str:
    src = ", ".join(os.path.basename(f.path) for f in group) if len(group) <= 2 else f"{len(group)} granules"
    extra = "; ".join(f"{k}: {v}" for k, v in sorted(counts.items()) if v)
    return f"{day.isoformat()}: {valid} of {total} cells valid ({src})" + (f"; {extra}" if extra else "")


# --------------------------------------------------------------------------- helpers


def _open(name: str, path: str) -> gdal.Dataset:
    try:
        return gdal.Open(name)
    except RuntimeError as e:
        raise InputError(layer=os.path.basename(path), problem=f"GDAL cannot read it ({e}).",
                         fix="check the file is complete (re-download it) and that GDAL has the HDF5/netCDF driver.") from None


def _hdf5(path: str, dataset: str) -> str:
    return f'HDF5:"{path}"://{dataset}'


def _cci_variable(path: str, name: str) -> str:
    return f'NETCDF:"{path}":{name}'


def _ease2_grid(path: str, name: str) -> Grid:
    ds = _open(name, path)
    shape = (ds.RasterYSize, ds.RasterXSize)
    if shape not in EASE2_CELL:
        raise InputError(layer=os.path.basename(path),
                         problem=f"its grid is {shape[1]}×{shape[0]} cells, not a global EASE-Grid 2.0 grid "
                                 "(964×406 at 36 km or 3856×1624 at 9 km).",
                         fix="give the global SMAP L3/L4 granules (the polar grids are not supported).")
    cell = EASE2_CELL[shape]
    return Grid(crs_to_wkt("EPSG:6933"), EASE2_X0, EASE2_Y0, cell, cell, shape[1], shape[0])


def _smap_time(path: str, ds: gdal.Dataset, daily: bool) -> _dt.datetime:
    """UTC time stamp: the file name (``…_20180105T013000_…`` or ``…_20180105_…``), else the metadata."""
    base = os.path.basename(path)
    m = _NAME_TIME.search(base)
    if m:
        return _dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
    d = parse_date(base)
    if d is not None and daily:
        return _dt.datetime(d.year, d.month, d.day)
    md = ds.GetMetadata() or {}
    begin = next((v for k, v in md.items() if k.endswith("rangeBeginningDateTime")), None)
    end = next((v for k, v in md.items() if k.endswith("rangeEndingDateTime")), None)
    t0 = _iso_time(begin)
    if t0 is not None:
        t1 = _iso_time(end)
        return t0 if daily or t1 is None else t0 + (t1 - t0) / 2
    if d is not None:
        return _dt.datetime(d.year, d.month, d.day)
    raise InputError(layer=base, problem="neither its name nor its metadata give a date.",
                     fix="keep the NSIDC file name (SMAP_L3_SM_P_YYYYMMDD_…h5).")


def _cci_time(path: str, sm: gdal.Dataset) -> _dt.datetime:
    """The date of a daily ESA CCI file: its ``time`` (days since 1970-01-01), else its name."""
    md = sm.GetRasterBand(1).GetMetadata() or {}
    units = (sm.GetMetadataItem("time#units") or "").strip()
    value = md.get("NETCDF_DIM_time")
    m = re.match(r"days since (\d{4}-\d{2}-\d{2})", units)
    if value is not None and m:
        base = _dt.datetime.fromisoformat(m.group(1))
        return base + _dt.timedelta(days=float(value))
    d = parse_date(os.path.basename(path))
    if d is None:
        raise InputError(layer=os.path.basename(path), problem="neither its time variable nor its name give a date.",
                         fix="keep the ESA CCI file name (ESACCI-SOILMOISTURE-…-YYYYMMDD000000-….nc).")
    return _dt.datetime(d.year, d.month, d.day)


def _iso_time(text: Optional[str]) -> Optional[_dt.datetime]:
    if not text:
        return None
    m = re.match(r"\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})", text)
    if not m:
        return None
    return _dt.datetime(*(int(g) for g in m.groups()))


def _parse_hhmm(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{1,2}):?(\d{2})\s*", text or "")
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise InputError(problem=f"'{text}' is not a time of day.", fix="write the UTC time step as HH:MM, e.g. 01:30.")
    return int(m.group(1)), int(m.group(2))


def _number(text: str) -> Optional[float]:
    try:
        return float(str(text).strip().strip("{}"))
    except ValueError:
        return None
