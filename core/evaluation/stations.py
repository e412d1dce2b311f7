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


def read_stations_csv(path: str) -> list[Station]:
    """Read a station table.

    Columns are matched case-insensitively: identifier ``id|station|station_id|site``,
    latitude ``lat|latitude|y``, longitude ``lon|long|longitude|lng|x`` (WGS84 degrees),
    optional name ``name|station_name|site_name``. Every other column goes to
    :attr:`Station.attrs`. The delimiter (comma, semicolon, tab) is detected.

    Raises
    ------
    ValueError (:class:`core.errors.InputError`)
        Naming the file and the missing column, a bad coordinate or a repeated identifier.
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
    seen: set[str] = set()
    for line, rec in records:
        rec = rec + [""] * (len(header) - len(rec))
        sid = rec[i_id].strip()
        if not sid:
            raise _input_error(path, f"line {line} has no station identifier in column '{header[i_id]}'",
                             "fill in the identifier or delete the line")
        if sid in seen:
            raise _input_error(path, f"station '{sid}' appears twice (line {line})",
                             "give each station one line and a unique identifier")
        seen.add(sid)
        lat = _coordinate(path, line, header[i_lat], rec[i_lat], 90.0)
        lon = _coordinate(path, line, header[i_lon], rec[i_lon], 180.0)
        name = rec[i_name].strip() if i_name is not None else ""
        attrs = {header[i].strip(): rec[i].strip() for i in extra}
        stations.append(Station(sid, lat, lon, name, attrs))
    if not stations:
        raise _input_error(path, "the station table has no stations", "add one line per station")
    return stations


def read_insitu_csv(path: str) -> tuple[list[_dt.date], dict[str, np.ndarray]]:
    """Read daily (or any dated) in-situ observations, one column per station.

    The table has a ``date`` column (``YYYY-MM-DD``, ``YYYYMMDD``…; a time of day after
    the date is ignored) and one column per station whose header is the station id.
    Empty cells and ``NaN``/``NA``/``null`` are missing values. Rows are returned sorted
    by date.

    Returns
    -------
    dates : list of datetime.date
    values : dict[str, numpy.ndarray]
        Station id → float64 array aligned with ``dates`` (NaN = missing).

    Raises
    ------
    ValueError (:class:`core.errors.InputError`)
        No ``date`` column, an unreadable date or value (naming line and column), a date
        given twice.
    """
    header, records = _read_table(path)
    lower = [h.strip().lower() for h in header]
    i_date = _find_column(path, lower, header, ("date",), "date")
    cols = [i for i in range(len(header)) if i != i_date and header[i].strip()]
    dates: list[_dt.date] = []
    data = np.full((len(records), len(cols)), np.nan, dtype=np.float64)
    for k, (line, rec) in enumerate(records):
        rec = rec + [""] * (len(header) - len(rec))
        d = parse_date(rec[i_date])
        if d is None:
            raise _input_error(path, f"line {line}: '{rec[i_date]}' in column '{header[i_date]}' is not a date",
                             "write dates as YYYY-MM-DD")
        dates.append(d)
        for j, i in enumerate(cols):
            text = rec[i].strip()
            if text.lower() in MISSING_TEXT:
                continue
            try:
                data[k, j] = float(text)
            except ValueError:
                raise _input_error(path, f"line {line}, column '{header[i]}': '{text}' is not a number",
                                 "use a dot as decimal separator and leave missing values empty") from None
    order = sorted(range(len(dates)), key=dates.__getitem__)
    dates = [dates[i] for i in order]
    for a, b in zip(dates, dates[1:]):
        if a == b:
            raise _input_error(path, f"date {format_date(a)} appears on two lines",
                             "keep one line per date (average sub-daily values first)")
    data = data[order]
    return dates, {header[i].strip(): data[:, j].copy() for j, i in enumerate(cols)}


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


# --------------------------------------------------------------------------- scoring


def score_products(
    stations: Sequence[Station],
    insitu_dates: Sequence[_dt.date],
    insitu: Mapping[str, np.ndarray],
    products: Mapping[str, Sampled],
    anomaly_window_days: int = 30,
    min_pairs: int = 3,
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

    Returns
    -------
    list of dict
        One row per station and product (station-major, products in the given order):
        ``station, name, lat, lon``, the station attributes (an attribute whose name
        collides with a reserved column gets an ``attr_`` prefix), ``product``, then the
        metrics of :data:`core.evaluation.metrics.METRIC_KEYS`.
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

    reserved = set(ROW_COLUMNS) | {"product"} | set(METRIC_KEYS)
    rows: list[dict[str, Any]] = []
    for j, st in enumerate(stations):
        if st.id not in insitu:
            continue
        obs_all = np.asarray(insitu[st.id], dtype=np.float64)
        base: dict[str, Any] = {"station": st.id, "name": st.name, "lat": st.lat, "lon": st.lon}
        for key, value in st.attrs.items():
            base[f"attr_{key}" if key in reserved else key] = value
        for pname, (dates, ii, pv) in matched.items():
            m = pair_metrics(obs_all[ii], pv[:, j], dates, anomaly_window_days, min_pairs)
            rows.append({**base, "product": pname, **m})
    return rows


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


def _coordinate(path: str, line: int, column: str, text: str, limit: float) -> float:
    try:
        v = float(text.strip())
    except ValueError:
        raise _input_error(path, f"line {line}, column '{column}': '{text}' is not a number",
                         "write coordinates as decimal degrees (WGS84), e.g. 39.1697") from None
    if not math.isfinite(v) or abs(v) > limit:
        raise _input_error(path, f"line {line}, column '{column}': {text} is outside ±{limit:g}°",
                         "give WGS84 decimal degrees; check latitude and longitude are not swapped "
                         "or projected coordinates")
    return v


def _is_nodata(raw: Any, nodata: float) -> bool:
    """Compare a raw pixel with the nodata value in the pixel's own data type."""
    if isinstance(raw, (float, np.floating)):
        if math.isnan(nodata):
            return bool(np.isnan(raw))
        return bool(raw == np.asarray(nodata).astype(np.asarray(raw).dtype))
    if not math.isfinite(nodata) or not float(nodata).is_integer():
        return False
    return int(raw) == int(nodata)
