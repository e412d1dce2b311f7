"""In-situ stations: reading station and observation tables, sampling rasters at stations, scoring.

Typical use (the plain-script path; the Processing algorithm does the same)::

    stations = read_stations_csv("deos_stations.csv")
    insitu_dates, insitu = read_insitu_csv("deos_daily_vwc.csv")
    coarse = sample_raster_series(sorted(glob("esa_cci_sm/*.tif")), stations)
    fine = sample_raster("downscaled.tif", stations)
    rows = score_products(stations, insitu_dates, insitu, {"ESA CCI": coarse, "Downscaled": fine})
    write_scores_csv(rows, "site_metrics.csv")

A station is sampled at the raster pixel that contains it (no interpolation): the
product value a user of that pixel would get.
"""
from __future__ import annotations

import csv
import datetime as _dt
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
from osgeo import gdal, osr

from ..io.atomic import atomic_open
from ..inputs.dates import as_date, format_date, parse_date
from ..errors import InputError
from .metrics import METRIC_KEYS, pair_metrics

gdal.UseExceptions()

#: Accepted column names (lower case), first match wins.
ID_COLUMNS: tuple[str, ...] = ("id", "station", "station_id", "site")
LAT_COLUMNS: tuple[str, ...] = ("lat", "latitude", "y")
LON_COLUMNS: tuple[str, ...] = ("lon", "long", "longitude", "lng", "x")
NAME_COLUMNS: tuple[str, ...] = ("name", "station_name", "site_name")

#: Text read as "no value" in an in-situ table (case-insensitive).
MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})

#: Key of the in-situ series in :func:`build_series` output.
INSITU = "in-situ"

#: Leading columns of a score row, before station attributes and metrics.
ROW_COLUMNS: tuple[str, ...] = ("station", "name", "lat", "lon")
#: Columns of a score row after the metrics: in-situ values dropped as impossible, why unscored.
SCORE_EXTRA_COLUMNS: tuple[str, ...] = ("n_dropped", "note")

# A (dates, values) pair: dates of the rows of ``values``; ``values`` is
# [n_dates, n_stations], columns in the order of the station list.
Sampled = tuple[list[_dt.date], np.ndarray]


@dataclass
class Station:
    """An in-situ station.

    Attributes
    ----------
    id : str
        Station identifier, as in the in-situ table's column header.
    lat, lon : float
        WGS84 latitude and longitude, degrees.
    name : str
        Readable name.
    attrs : dict[str, str]
        Further columns of the station table (land cover, soil texture, climate, elevation…),
        used to group results by domain in the report.
    """

    id: str
    lat: float
    lon: float
    name: str = ""
    attrs: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- tables

#: The physical range of volumetric soil moisture (m³/m³): values outside are impossible.
SOIL_MOISTURE_RANGE: tuple[float, float] = (0.0, 1.0)

#: At most this many skipped entries are spelled out in a message; the rest are counted.
MAX_LISTED = 40


@dataclass(frozen=True)
class Skipped:
    """A row, a cell or a whole column of a table that was left out, and why.

    Attributes
    ----------
    line : int or None
        Line of the file (the header is line 1); ``None`` for a whole column.
    column : str
        Header of the column holding the bad value.
    value : str
        The text found (for a whole column, its value range).
    why : str
        What is wrong and, where it helps, what to do.
    values : int
        Number of values this entry leaves out (a whole column: all of them).
    out_of_range : bool
        The value was read but is physically impossible (it is counted per station in the scores).
    """

    line: Optional[int]
    column: str
    value: str
    why: str
    values: int = 1
    out_of_range: bool = False

    def __str__(self) -> str:
        where = f"line {self.line}, column '{self.column}'" if self.line is not None else \
            f"column '{self.column}' (every line)"
        return f"{where}: '{self.value}' {self.why}"


@dataclass
class StationTable:
    """Stations read from a table, and the rows left out (see :func:`read_station_table`)."""

    path: str
    stations: list[Station]
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class InsituTable:
    """In-situ series read from a table, and what was left out (see :func:`read_insitu_table`).

    Attributes
    ----------
    dates : list of datetime.date
        Sorted, unique.
    values : dict[str, numpy.ndarray]
        Station id → float64 values aligned with ``dates``; NaN = missing or left out.
    out_of_range : dict[str, numpy.ndarray]
        Station id → bool mask aligned with ``dates``: values dropped as physically impossible.
    skipped : list of Skipped
        Every row, cell or column left out, in file order.
    """

    path: str
    dates: list[_dt.date]
    values: dict[str, np.ndarray]
    out_of_range: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


def skipped_message(path: str, skipped: Sequence[Skipped], kept: str, limit: int = MAX_LISTED) -> str:
    """Every skipped entry of one table in one message block (line, column, value, why).

    >>> print(skipped_message("st.csv", [Skipped(3, "lat", "abc", "is not a number")], "2 stations kept"))
    st.csv: 1 entry left out (2 stations kept):
      line 3, column 'lat': 'abc' is not a number
    """
    n = len(skipped)
    return f"{os.path.basename(path)}: {n} entr{'y' if n == 1 else 'ies'} left out ({kept}):\n" + \
        _listing(skipped, limit)


def _listing(skipped: Sequence[Skipped], limit: int = MAX_LISTED) -> str:
    lines = [f"  {s}" for s in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  … and {len(skipped) - limit} more of the same kinds.")
    return "\n".join(lines)


def read_station_table(path: str) -> StationTable:
    """Read a station table, leaving out (and reporting) the rows that cannot be used.

    Columns are matched case-insensitively: identifier ``id|station|station_id|site``,
    latitude ``lat|latitude|y``, longitude ``lon|long|longitude|lng|x`` (WGS84 degrees),
    optional name ``name|station_name|site_name``. Every other column goes to
    :attr:`Station.attrs`. The delimiter (comma, semicolon, tab) is detected. A row without
    identifier, with a repeated identifier or a coordinate that is not a number or outside
    ±90°/±180° is skipped and listed in :attr:`StationTable.skipped`.

    Raises
    ------
    ValueError (:class:`core.errors.InputError`)
        The file cannot be read, lacks a column, or no usable station remains.
    """
    header, records = _read_table(path)
    lower = [h.strip().lower() for h in header]
    i_id = _find_column(path, lower, header, ID_COLUMNS, "station identifier")
    i_lat = _find_column(path, lower, header, LAT_COLUMNS, "latitude")
    i_lon = _find_column(path, lower, header, LON_COLUMNS, "longitude")
    i_name = next((lower.index(c) for c in NAME_COLUMNS if c in lower), None)
    used = {i_id, i_lat, i_lon, i_name}
    extra = [i for i in range(len(header)) if i not in used and header[i].strip()]

    stations: list[Station] = []
    skipped: list[Skipped] = []
    first_line: dict[str, int] = {}
    for line, rec in records:
        rec = rec + [""] * (len(header) - len(rec))
        sid = rec[i_id].strip()
        if not sid:
            skipped.append(Skipped(line, header[i_id], "", "is empty: a station needs an identifier"))
            continue
        if sid in first_line:
            skipped.append(Skipped(line, header[i_id], sid, f"repeats the station of line {first_line[sid]} "
                                   "(the first one is kept): give each station a unique identifier"))
            continue
        lat, lat_why = _coordinate(rec[i_lat], 90.0)
        lon, lon_why = _coordinate(rec[i_lon], 180.0)
        if lat_why or lon_why:
            column, text, why = (header[i_lat], rec[i_lat], lat_why) if lat_why else (header[i_lon], rec[i_lon], lon_why)
            if lat_why and "outside" in lat_why and lon is not None and abs(lon) <= 90.0 and lat is not None \
                    and abs(lat) <= 180.0:
                why = "is outside ±90°: latitude and longitude look swapped"
            skipped.append(Skipped(line, column.strip(), text.strip(), f"{why}: station '{sid}' left out"))
            continue
        first_line[sid] = line
        name = rec[i_name].strip() if i_name is not None else ""
        attrs = {header[i].strip(): rec[i].strip() for i in extra}
        stations.append(Station(sid, lat, lon, name, attrs))  # type: ignore[arg-type]
    if not stations:
        problem = "the station table has no usable station"
        if skipped:
            problem += ":\n" + _listing(skipped) + "\n"
        raise _input_error(path, problem, "add one line per station with id, lat and lon in WGS84 degrees")
    return StationTable(path, stations, skipped)


def read_stations_csv(path: str) -> list[Station]:
    """Strict :func:`read_station_table`: every unusable row is an error, all listed in one message.

    Raises
    ------
    ValueError (:class:`core.errors.InputError`)
        Naming the file and every bad row (line, column, value, why).
    """
    table = read_station_table(path)
    if table.skipped:
        raise _input_error(path, f"{len(table.skipped)} line(s) cannot be used ({len(table.stations)} stations "
                           f"can):\n{_listing(table.skipped)}\n", "correct those lines")
    return table.stations


def read_insitu_table(path: str, valid_range: Optional[tuple[float, float]] = SOIL_MOISTURE_RANGE) -> InsituTable:
    """Read dated in-situ observations, one column per station, leaving out what cannot be used.

    The table has a ``date`` column (``YYYY-MM-DD``, ``YYYYMMDD``…; a time of day after
    the date is ignored) and one column per station whose header is the station id.
    Empty cells and ``NaN``/``NA``/``null`` are missing values. Rows are returned sorted
    by date. Left out and listed in :attr:`InsituTable.skipped`:

    * a row whose date cannot be read, or whose date an earlier row already gave;
    * a cell that is not a number;
    * a value outside ``valid_range`` (volumetric soil moisture: 0 … 1 m³/m³), flagged in
      :attr:`InsituTable.out_of_range`; a station whose values are mostly above 1 is in other
      units (percent, ×1000): all its values are left out, with the factor to apply.

    Raises
    ------
    ValueError (:class:`core.errors.InputError`)
        The file cannot be read, has no ``date`` column or no readable date.
    """
    header, records = _read_table(path)
    lower = [h.strip().lower() for h in header]
    i_date = _find_column(path, lower, header, ("date",), "date")
    cols = [i for i in range(len(header)) if i != i_date and header[i].strip()]
    names = [header[i].strip() for i in cols]
    skipped: list[Skipped] = []
    rows: dict[_dt.date, tuple[int, list[float]]] = {}
    for line, rec in records:
        rec = rec + [""] * (len(header) - len(rec))
        d = parse_date(rec[i_date])
        if d is None:
            skipped.append(Skipped(line, header[i_date].strip(), rec[i_date].strip(),
                                   "is not a date (write YYYY-MM-DD): the line is left out"))
            continue
        if d in rows:
            skipped.append(Skipped(line, header[i_date].strip(), rec[i_date].strip(),
                                   f"repeats the date of line {rows[d][0]} (that line is kept): keep one line per "
                                   "date (average sub-daily values first)"))
            continue
        values = [math.nan] * len(cols)
        for j, i in enumerate(cols):
            text = rec[i].strip()
            if text.lower() in MISSING_TEXT:
                continue
            try:
                values[j] = float(text)
            except ValueError:
                skipped.append(Skipped(line, names[j], text, "is not a number (use a dot as decimal separator and "
                                       "leave missing values empty)"))
        rows[d] = (line, values)
    if not rows:
        problem = "no line has a readable date"
        if skipped:
            problem += ":\n" + _listing(skipped) + "\n"
        raise _input_error(path, problem, "write dates as YYYY-MM-DD in the 'date' column")
    dates = sorted(rows)
    lines = [rows[d][0] for d in dates]
    data = np.array([rows[d][1] for d in dates], dtype=np.float64).reshape(len(dates), len(cols))
    out_of_range: dict[str, np.ndarray] = {}
    if valid_range is not None:
        for j, name in enumerate(names):
            mask, entries = _physical_range(data[:, j], lines, name, valid_range)
            data[mask, j] = np.nan
            out_of_range[name] = mask
            skipped.extend(entries)
    skipped.sort(key=lambda s: (s.line is not None, s.line or 0))
    return InsituTable(path, dates, {name: data[:, j].copy() for j, name in enumerate(names)}, out_of_range, skipped)


def read_insitu_csv(path: str) -> tuple[list[_dt.date], dict[str, np.ndarray]]:
    """Strict :func:`read_insitu_table`: anything it would leave out is an error, all listed at once.

    Returns
    -------
    dates : list of datetime.date
    values : dict[str, numpy.ndarray]
        Station id → float64 array aligned with ``dates`` (NaN = missing).

    Raises
    ------
    ValueError (:class:`core.errors.InputError`)
        No ``date`` column, or every bad line, value and out-of-range value (line and column).
    """
    table = read_insitu_table(path)
    if table.skipped:
        raise _input_error(path, f"{len(table.skipped)} entr{'y' if len(table.skipped) == 1 else 'ies'} cannot be "
                           f"used ({len(table.dates)} dates can):\n{_listing(table.skipped)}\n", "correct those lines")
    return table.dates, table.values


def out_of_range_counts(table: InsituTable, dates: Optional[Iterable[_dt.date]] = None) -> dict[str, int]:
    """Per station, the number of values dropped as physically impossible (on ``dates`` only, if given)."""
    keep = np.ones(len(table.dates), dtype=bool)
    if dates is not None:
        wanted = {as_date(d) for d in dates}
        keep = np.array([d in wanted for d in table.dates], dtype=bool)
    return {sid: int(np.count_nonzero(mask & keep)) for sid, mask in table.out_of_range.items()}


def _physical_range(values: np.ndarray, lines: Sequence[int], column: str,
                    valid_range: tuple[float, float]) -> tuple[np.ndarray, list[Skipped]]:
    """Values of one station outside ``valid_range`` (mask) and the entries that report them."""
    lo, hi = valid_range
    finite = np.isfinite(values)
    bad = finite & ((values < lo) | (values > hi))
    if not bad.any():
        return bad, []
    above = finite & (values > hi)
    n_above = np.count_nonzero(above)
    if hi == 1.0 and n_above >= 3 and n_above * 2 > np.count_nonzero(finite):
        # Most values above 1 m³/m³: the whole column is in other units, not a few glitches.
        vmax = float(np.nanmax(values[finite]))
        factor = 0.01 if vmax <= 100 else 0.001 if vmax <= 1000 else 0.0001
        units = {0.01: "percent", 0.001: "m³/m³ × 1000", 0.0001: "m³/m³ × 10000"}[factor]
        rng = f"{float(np.nanmin(values[finite])):g} … {vmax:g}"
        entry = Skipped(None, column, rng, f"looks like {units}, not m³/m³: all {int(finite.sum())} values of "
                        f"station '{column}' left out (multiply them by {factor:g})",
                        values=int(finite.sum()), out_of_range=True)
        return finite.copy(), [entry]
    entries = [Skipped(int(lines[k]), column, f"{values[k]:g}", f"is outside {lo:g} … {hi:g} m³/m³ (physically "
                       "impossible): value left out", out_of_range=True) for k in np.flatnonzero(bad)]
    return bad, entries


# --------------------------------------------------------------------------- rasters


def sample_raster(path: str, stations: Sequence[Station],
                  dates: Optional[Sequence[_dt.date]] = None) -> Sampled:
    """Values of every band of a raster at the pixel containing each station.

    Only the pixels under the stations are read (one small read per distinct pixel), so
    the raster may be far larger than memory. GDAL scale and offset are applied; nodata,
    masked pixels and stations outside the raster give NaN.

    Parameters
    ----------
    path : str
        A raster GDAL opens, with a CRS. Bands are dated by their description
        (``YYYY-MM-DD``); a single-band file may instead carry the date in its name
        (``ESA_CCI_SM_v45_Delaware_20180101.tif``).
    stations : sequence of Station
        WGS84 coordinates.
    dates : sequence of datetime.date, optional
        The date of each band, when the caller knows them (e.g. given by the user);
        then band descriptions and the file name are not consulted.

    Returns
    -------
    dates : list of datetime.date
        Date of each band, in band order.
    values : numpy.ndarray, float64, shape (n_bands, n_stations)

    Raises
    ------
    ValueError (:class:`core.errors.InputError`)
        The file has no CRS, or a band has no date.
    """
    ds = _open_raster(path)
    if dates is None:
        dates = raster_dates(ds, path)
    elif len(dates) != ds.RasterCount:
        raise ValueError(f"{len(dates)} dates given for the {ds.RasterCount} bands of '{path}'")
    dates = list(dates)
    cols, rows = station_pixels(ds, stations)
    n_bands = ds.RasterCount
    out = np.full((n_bands, len(stations)), np.nan, dtype=np.float64)
    inside = np.flatnonzero(cols >= 0)
    if inside.size == 0:
        return dates, out

    bands = [ds.GetRasterBand(b + 1) for b in range(n_bands)]
    scales = np.ones(n_bands)
    offsets = np.zeros(n_bands)
    nodata: list[Optional[float]] = []
    needs_mask: list[bool] = []
    for b, band in enumerate(bands):
        s, o = band.GetScale(), band.GetOffset()
        scales[b] = 1.0 if s in (None, 0) else float(s)
        offsets[b] = 0.0 if o is None else float(o)
        nodata.append(band.GetNoDataValue())
        flags = band.GetMaskFlags()
        needs_mask.append(not (flags & gdal.GMF_ALL_VALID) and not (flags & gdal.GMF_NODATA))

    pixels: dict[tuple[int, int], list[int]] = {}
    for j in inside:
        pixels.setdefault((int(cols[j]), int(rows[j])), []).append(int(j))
    for (col, row), members in pixels.items():
        raw = np.asarray(ds.ReadAsArray(col, row, 1, 1)).reshape(n_bands)
        vals = raw.astype(np.float64)
        for b in range(n_bands):
            if nodata[b] is not None and _is_nodata(raw[b], nodata[b]):
                vals[b] = np.nan
            elif needs_mask[b] and int(bands[b].GetMaskBand().ReadAsArray(col, row, 1, 1)[0, 0]) == 0:
                vals[b] = np.nan
        vals = vals * scales + offsets
        out[:, members] = vals[:, None]
    return dates, out


def sample_raster_series(paths: Iterable[str], stations: Sequence[Station]) -> Sampled:
    """:func:`sample_raster` over several files (e.g. one file per day), sorted by date.

    Raises
    ------
    ValueError (:class:`core.errors.InputError`)
        No file given, or the same date in two files (or bands).
    """
    paths = list(paths)
    if not paths:
        raise _input_error("product", "no raster file was given", "select the files of the product")
    found: dict[_dt.date, tuple[str, np.ndarray]] = {}
    for path in paths:
        dates, values = sample_raster(path, stations)
        for d, v in zip(dates, values):
            if d in found:
                raise _input_error(path, f"date {format_date(d)} is also in '{found[d][0]}'",
                                 "give each date once (remove the duplicate file)")
            found[d] = (path, v)
    dates = sorted(found)
    values = np.stack([found[d][1] for d in dates]) if dates else np.empty((0, len(stations)))
    return dates, values


def raster_dates(ds: gdal.Dataset, path: str) -> list[_dt.date]:
    """Date of each band: its description, or for a single-band file the file name."""
    dates = []
    for b in range(1, ds.RasterCount + 1):
        desc = ds.GetRasterBand(b).GetDescription()
        d = parse_date(desc)
        if d is None and ds.RasterCount == 1:
            d = parse_date(os.path.basename(path))
        if d is None:
            where = f"band {b} (description '{desc}')" if desc else f"band {b}"
            raise _input_error(path, f"{where} has no date",
                             "set each band description to its date (YYYY-MM-DD), or use one file per "
                             "date with the date in the file name (…_20180101.tif)")
        dates.append(d)
    return dates


def station_pixels(ds: gdal.Dataset, stations: Sequence[Station]) -> tuple[np.ndarray, np.ndarray]:
    """Column and row of the pixel containing each station (−1, −1 outside the raster)."""
    n = len(stations)
    cols = np.full(n, -1, dtype=np.int64)
    rows = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return cols, rows
    wkt = ds.GetProjection()
    if not wkt:
        raise _input_error(ds.GetDescription(), "the raster has no coordinate reference system",
                         "assign its CRS (for lon/lat grids EPSG:4326) before evaluating")
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst = osr.SpatialReference()
    dst.ImportFromWkt(wkt)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(wgs84, dst)
    inv = gdal.InvGeoTransform(ds.GetGeoTransform())
    for j, st in enumerate(stations):
        if not (math.isfinite(st.lat) and math.isfinite(st.lon)):
            continue
        try:
            x, y, _ = ct.TransformPoint(float(st.lon), float(st.lat))
        except RuntimeError:  # outside the projection's domain
            continue
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        px = inv[0] + inv[1] * x + inv[2] * y
        py = inv[3] + inv[4] * x + inv[5] * y
        c, r = math.floor(px), math.floor(py)
        if 0 <= c < ds.RasterXSize and 0 <= r < ds.RasterYSize:
            cols[j], rows[j] = c, r
    return cols, rows


def stations_outside(paths: Iterable[str], stations: Sequence[Station]) -> dict[str, str]:
    """Stations that lie outside every raster of ``paths``, each with the reason.

    When swapping a station's latitude and longitude would put it inside a raster, the
    reason says so (a station list with the two columns swapped is a common slip).

    >>> stations_outside([], [Station("A", 39.2, -75.6)])
    {'A': 'outside every raster (lat 39.2, lon -75.6)'}
    """
    inside = np.zeros(len(stations), dtype=bool)
    swapped_inside = np.zeros(len(stations), dtype=bool)
    swapped = [Station(s.id, s.lon, s.lat) if abs(s.lon) <= 90.0 else Station(s.id, math.nan, math.nan)
               for s in stations]
    for path in paths:
        ds = _open_raster(path)
        inside |= station_pixels(ds, stations)[0] >= 0
        swapped_inside |= station_pixels(ds, swapped)[0] >= 0
    out = {}
    for j, st in enumerate(stations):
        if inside[j]:
            continue
        why = f"outside every raster (lat {st.lat:g}, lon {st.lon:g})"
        if swapped_inside[j]:
            why += ": with latitude and longitude swapped it would lie inside — check the lat/lon columns"
        out[st.id] = why
    return out


# --------------------------------------------------------------------------- scoring


def score_products(
    stations: Sequence[Station],
    insitu_dates: Sequence[_dt.date],
    insitu: Mapping[str, np.ndarray],
    products: Mapping[str, Sampled],
    anomaly_window_days: int = 30,
    min_pairs: int = 3,
    out_of_range: Optional[Mapping[str, np.ndarray]] = None,
    outside: Optional[Mapping[str, str]] = None,
) -> list[dict[str, Any]]:
    """Metrics of each product at each station, matching in-situ and product by date.

    Parameters
    ----------
    stations : sequence of Station
        The stations the products were sampled at (column order of their values).
    insitu_dates, insitu : as returned by :func:`read_insitu_csv`
        Stations without an in-situ column are skipped.
    products : mapping str → (dates, values)
        Product name → output of :func:`sample_raster` / :func:`sample_raster_series`
        for the same ``stations``.
    anomaly_window_days, min_pairs :
        Passed to :func:`core.evaluation.metrics.pair_metrics`.
    out_of_range : mapping str → bool array, optional
        :attr:`InsituTable.out_of_range`: the in-situ values dropped as physically impossible;
        counted per station and product (on the product's dates) as ``n_dropped``.
    outside : mapping str → str, optional
        :func:`stations_outside` of the products' rasters: the reason a station has no product value.

    Returns
    -------
    list of dict
        One row per station and product (station-major, products in the given order):
        ``station, name, lat, lon``, the station attributes (an attribute whose name
        collides with a reserved column gets an ``attr_`` prefix), ``product``, the
        metrics of :data:`core.evaluation.metrics.METRIC_KEYS`, ``n_dropped`` and ``note``
        (why a station has fewer than ``min_pairs`` pairs; empty otherwise).
    """
    pos = {as_date(d): i for i, d in enumerate(insitu_dates)}
    matched: dict[str, tuple[list[_dt.date], np.ndarray, np.ndarray]] = {}
    for pname, (pdates, pvalues) in products.items():
        pvalues = np.asarray(pvalues, dtype=np.float64)
        if pvalues.shape != (len(pdates), len(stations)):
            raise ValueError(f"product '{pname}': values have shape {pvalues.shape}, expected "
                             f"({len(pdates)} dates, {len(stations)} stations)")
        pi = [k for k, d in enumerate(pdates) if as_date(d) in pos]
        dates = [as_date(pdates[k]) for k in pi]
        matched[pname] = (dates, np.array([pos[d] for d in dates], dtype=np.int64), pvalues[pi])

    reserved = set(ROW_COLUMNS) | {"product"} | set(METRIC_KEYS) | set(SCORE_EXTRA_COLUMNS)
    rows: list[dict[str, Any]] = []
    for j, st in enumerate(stations):
        if st.id not in insitu:
            continue
        obs_all = np.asarray(insitu[st.id], dtype=np.float64)
        dropped_all = out_of_range.get(st.id) if out_of_range is not None else None
        base: dict[str, Any] = {"station": st.id, "name": st.name, "lat": st.lat, "lon": st.lon}
        for key, value in st.attrs.items():
            base[f"attr_{key}" if key in reserved else key] = value
        for pname, (dates, ii, pv) in matched.items():
            m = pair_metrics(obs_all[ii], pv[:, j], dates, anomaly_window_days, min_pairs)
            n_dropped = int(np.count_nonzero(dropped_all[ii])) if dropped_all is not None else 0
            note = "" if m["n"] >= min_pairs else _why_unscored(
                obs_all, insitu_dates, products[pname], j, int(m["n"]), min_pairs, n_dropped,
                (outside or {}).get(st.id))
            rows.append({**base, "product": pname, **m, "n_dropped": n_dropped, "note": note})
    return rows


def unscored_stations(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Station → note for the stations no product could score (``note`` of :func:`score_products`)."""
    out: dict[str, list[str]] = {}
    scored = {r["station"] for r in rows if not r.get("note")}
    for r in rows:
        if r["station"] not in scored and r.get("note"):
            notes = out.setdefault(r["station"], [])
            if r["note"] not in notes:
                notes.append(r["note"])
    return {sid: "; ".join(notes) for sid, notes in out.items()}


def _why_unscored(obs: np.ndarray, insitu_dates: Sequence[_dt.date], product: Sampled, j: int, n: int,
                  min_pairs: int, n_dropped: int, outside: Optional[str]) -> str:
    """Plain words for why a station has fewer than ``min_pairs`` pairs with one product."""
    if outside:
        return outside
    pdates, pvalues = product
    pv = np.asarray(pvalues, dtype=np.float64)[:, j]
    have_obs = [as_date(d) for d, v in zip(insitu_dates, obs) if math.isfinite(v)]
    have_prod = [as_date(d) for d, v in zip(pdates, pv) if math.isfinite(v)]
    if not have_obs:
        return "no valid in-situ value" + (f" ({n_dropped} dropped as outside 0 … 1 m³/m³)" if n_dropped else "")
    if not have_prod:
        return "the product has no value at the station's pixel on any date (nodata there)"
    if n == 0:
        return (f"no overlap in time: in-situ {format_date(min(have_obs))} … {format_date(max(have_obs))}, "
                f"product {format_date(min(have_prod))} … {format_date(max(have_prod))}")
    return f"only {n} date(s) with both values (at least {min_pairs} needed)"


def build_series(
    stations: Sequence[Station],
    insitu_dates: Sequence[_dt.date],
    insitu: Mapping[str, np.ndarray],
    products: Mapping[str, Sampled],
    clip_to_products: bool = True,
) -> dict[str, dict[str, tuple[list[_dt.date], np.ndarray]]]:
    """Per-station dated series of in-situ and each product, for plots (``core.evaluation.report``).

    Returns ``{station_id: {INSITU: (dates, values), product: (dates, values), ...}}``
    for the stations present in ``insitu``. With ``clip_to_products`` the in-situ series
    is cut to the period the products cover (a year of in-situ data around one month of
    product would otherwise flatten the plot).
    """
    span: Optional[tuple[_dt.date, _dt.date]] = None
    all_pdates = [as_date(d) for pdates, _ in products.values() for d in pdates]
    if clip_to_products and all_pdates:
        span = (min(all_pdates), max(all_pdates))
    out: dict[str, dict[str, tuple[list[_dt.date], np.ndarray]]] = {}
    for j, st in enumerate(stations):
        if st.id not in insitu:
            continue
        obs = np.asarray(insitu[st.id], dtype=np.float64)
        keep = [k for k, d in enumerate(insitu_dates) if span is None or span[0] <= as_date(d) <= span[1]]
        entry = {INSITU: ([as_date(insitu_dates[k]) for k in keep], obs[keep])}
        for pname, (pdates, pvalues) in products.items():
            entry[pname] = ([as_date(d) for d in pdates], np.asarray(pvalues, dtype=np.float64)[:, j].copy())
        out[st.id] = entry
    return out


def write_scores_csv(rows: Sequence[Mapping[str, Any]], path: str) -> None:
    """Write score rows to CSV atomically (temporary file in the same folder, then replace).

    Columns are the union of the rows' keys in first-seen order. Floats are written with
    6 significant digits, counts as integers, NaN as an empty cell.
    """
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format_cell(key, row.get(key)) for key in columns])


# --------------------------------------------------------------------------- helpers


def _format_cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return ""
        if key == "n" and v.is_integer():
            return str(int(v))
        if key in ("lat", "lon"):
            return f"{v:.6f}".rstrip("0").rstrip(".")
        return f"{v:.6g}"
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return str(value)


def _input_error(layer: str, problem: str, fix: str) -> InputError:
    # Keyword arguments: the order of InputError's positional parameters has changed before.
    return InputError(layer=layer, problem=problem, fix=fix)


def _open_raster(path: str) -> gdal.Dataset:
    try:
        return gdal.Open(os.fspath(path))
    except RuntimeError as e:
        raise _input_error(path, f"GDAL cannot open it ({e})", "check the file exists and is a raster") from None


def _read_table(path: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) of a delimited text table; blank lines skipped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as e:
        raise _input_error(path, f"cannot read the file ({e.strerror})", "check the path") from None
    except UnicodeDecodeError:
        with open(path, newline="", encoding="latin-1") as f:
            text = f.read()
    lines = text.splitlines()
    if not lines:
        raise _input_error(path, "the file is empty", "export the table with a header line")
    # The header decides the delimiter: the most frequent of comma, semicolon, tab.
    delimiter = max(",;\t", key=lambda c: (lines[0].count(c), c == ","))
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader)
    records = [(k + 2, rec) for k, rec in enumerate(reader) if any(c.strip() for c in rec)]
    return header, records


def _find_column(path: str, lower: list[str], header: list[str], names: Sequence[str], what: str) -> int:
    for name in names:
        if name in lower:
            return lower.index(name)
    raise _input_error(path, f"no {what} column (looked for {', '.join(names)}; the columns are "
                           f"{', '.join(h.strip() for h in header) or 'none'})",
                     f"rename the {what} column to '{names[0]}'")


def _coordinate(text: str, limit: float) -> tuple[Optional[float], str]:
    """``(value, "")`` for a usable WGS84 coordinate, else ``(value or None, why)``."""
    try:
        v = float(text.strip())
    except ValueError:
        return None, "is not a number (write decimal degrees, WGS84, e.g. 39.1697)"
    if not math.isfinite(v) or abs(v) > limit:
        return v, f"is outside ±{limit:g}° (give WGS84 decimal degrees, not projected coordinates)"
    return v, ""


def _is_nodata(raw: Any, nodata: float) -> bool:
    """Compare a raw pixel with the nodata value in the pixel's own data type."""
    if isinstance(raw, (float, np.floating)):
        if math.isnan(nodata):
            return bool(np.isnan(raw))
        return bool(raw == np.asarray(nodata).astype(np.asarray(raw).dtype))
    if not math.isfinite(nodata) or not float(nodata).is_integer():
        return False
    return int(raw) == int(nodata)
