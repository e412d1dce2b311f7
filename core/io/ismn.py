"""ISMN downloads (International Soil Moisture Network) into the station tables the scoring tools read.

An ISMN download (a ``.zip`` or its unpacked folder) holds ``<network>/<station>/`` folders with
one file per sensor and variable, in one of two text formats:

- **header + values** (``.stm``): a first line ``CSE network station lat lon elevation depth_from
  depth_to sensor``, then one line per reading ``YYYY/MM/DD HH:MM value ismn_flag original_flag``;
- **CEOP-style separate files** (``.stm``): every line ``YYYY/MM/DD HH:MM YYYY/MM/DD HH:MM CSE
  network station lat lon elevation depth_from depth_to value ismn_flag original_flag`` (nominal
  then actual UTC time); the sensor is only in the file name.

File names read ``<CSE>_<network>_<station>_<variable>_<depth_from>_<depth_to>_<sensor>_<start>_<end>.stm``;
only soil moisture (``sm``, m³/m³) is imported. A station folder may hold
``…_static_variables.csv`` (land cover, Köppen–Geiger climate class, soil fractions): they become
station classes (the site report groups scores by them), with the USDA texture class derived from
the top layer's sand/silt/clay fractions.

Readings are kept when every ISMN quality flag they carry is one of the flags asked for (default
``G``, good) and the value is a volumetric fraction in [0, 1]. Hourly UTC readings become UTC daily
means when enough hours of the day are valid; sensors of one station in the depth range are
averaged day by day. This module is the project's own reader of the two formats (the ``ismn``
package is the reference; its dependency chain installs PyPI's netCDF4, which crashes inside QGIS).

Typical use::

    result = read_ismn("Data_separate_files_20170810_20180809.zip", IsmnOptions(depth_max=0.05))
    write_series_csv(result, "ismn_daily.csv")        # date + one column per station (m³/m³)
    write_stations_csv(result, "ismn_stations.csv")   # station, name, lat, lon, classes…
"""
from __future__ import annotations

import csv
import datetime as _dt
import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from ..errors import Canceled, InputError
from .atomic import atomic_open

#: ``…_sm_<from>_<to>_<sensor>_<start>_<end>.stm`` (the variable, depths and sensor of a file name).
_NAME = re.compile(r"_(?P<var>[a-z_]+?)_(?P<d0>-?\d+\.\d+)_(?P<d1>-?\d+\.\d+)_(?P<sensor>.+)_(?P<t0>\d{8})_(?P<t1>\d{8})\.stm$")
_DATE_TIME = re.compile(r"^\d{4}/\d{2}/\d{2}$")
#: Depths are compared with this tolerance (m): SCAN's 2-inch probes (0.0508 m) count as 5 cm.
DEPTH_TOLERANCE = 0.001

#: Station attributes written to tables and layers, in this order (after station, name, lat, lon).
STATION_FIELDS = ("network", "elevation_m", "depth_from_m", "depth_to_m", "sensors", "n_days", "land_cover",
                  "land_cover_code", "climate", "climate_name", "soil_texture", "clay_pct", "sand_pct", "silt_pct",
                  "saturation")


@dataclass(frozen=True)
class IsmnOptions:
    """Choices of :func:`read_ismn`; the defaults are the Processing algorithm's.

    Attributes
    ----------
    depth_min, depth_max : float
        Sensors whose depth range lies within [depth_min, depth_max] (m) are used.
    flags : tuple of str
        ISMN quality flags kept (``G`` good, ``M`` missing-parameter, ``D01``…, ``C01``…); a
        single letter keeps its whole family (``D`` = every ``D`` flag). A reading with several
        flags (``D02,D04``) is kept only if all of them are.
    start, end : datetime.date, optional
        Period kept (inclusive).
    min_hours_share : float
        A day's mean needs readings in at least this share of its 24 UTC hours.
    """

    depth_min: float = 0.0
    depth_max: float = 0.05
    flags: tuple[str, ...] = ("G",)
    start: Optional[_dt.date] = None
    end: Optional[_dt.date] = None
    min_hours_share: float = 0.5


@dataclass
class SensorSeries:
    """Daily means of one sensor, and what its readings became."""

    network: str
    station: str
    sensor: str
    depth_from: float
    depth_to: float
    lat: float
    lon: float
    elevation: float
    source: str
    days: dict[_dt.date, float] = field(default_factory=dict)
    kept: int = 0
    dropped_flag: int = 0
    dropped_range: int = 0
    short_days: int = 0
    #: Flag → number of readings dropped because of it.
    dropped_flags: dict[str, int] = field(default_factory=dict)


@dataclass
class IsmnStation:
    """One station: its sensors in the depth range, static metadata and daily series."""

    id: str
    network: str
    name: str
    lat: float
    lon: float
    elevation: float
    sensors: list[SensorSeries] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, str]:
        """The station's row: ``station, name, lat, lon`` then :data:`STATION_FIELDS`."""
        row = {"station": self.id, "name": self.name, "lat": f"{self.lat:.6f}", "lon": f"{self.lon:.6f}"}
        row.update({k: self.attrs.get(k, "") for k in STATION_FIELDS})
        return row


@dataclass
class IsmnImport:
    """Result of :func:`read_ismn`.

    Attributes
    ----------
    stations : list of IsmnStation
        Stations with at least one sensor in the depth range, sorted by id.
    dates : list of datetime.date
        Every day with a value at some station.
    values : numpy.ndarray, float64, (n_dates, n_stations)
        Daily means (m³/m³), NaN = no value; columns in the order of ``stations``.
    log : list of str
        Per station and sensor: readings kept, dropped by flag, dropped by range, short days.
    skipped : list of str
        Soil-moisture files not used (depth outside the range), with the reason.
    """

    stations: list[IsmnStation]
    dates: list[_dt.date]
    values: np.ndarray
    log: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading


def read_ismn(source: str, options: Optional[IsmnOptions] = None,
              progress: Optional[Callable[[float, str], None]] = None,
              is_canceled: Optional[Callable[[], bool]] = None) -> IsmnImport:
    """Read an ISMN download (``.zip`` or folder) into daily station series.

    Parameters
    ----------
    source : str
        The downloaded ``.zip``, or the folder it unpacks to.
    options : IsmnOptions, optional
    progress, is_canceled : callables, optional
        ``progress(fraction, message)`` after each file; a cancel raises :class:`Canceled`.

    Raises
    ------
    InputError
        Not an ISMN download, no soil-moisture file, no sensor in the depth range, a file that
        is neither of the two formats, or no reading left after the flags and the period.
    """
    opts = options or IsmnOptions()
    if opts.depth_max < opts.depth_min:
        raise InputError(problem=f"the maximum depth {opts.depth_max:g} m is above the minimum {opts.depth_min:g} m.",
                         fix="give depths in metres, minimum ≤ maximum (e.g. 0 and 0.05).")
    if not 0.0 <= opts.min_hours_share <= 1.0:
        raise InputError(problem=f"the share of valid hours {opts.min_hours_share:g} is not between 0 and 1.",
                         fix="give a fraction, e.g. 0.5 for 12 of 24 hours.")
    archive = _Archive(source)
    files = [n for n in archive.names() if n.lower().endswith(".stm")]
    sm_files = [n for n in files if (m := _NAME.search(os.path.basename(n))) and m.group("var") == "sm"]
    if not sm_files:
        raise InputError(layer=os.path.basename(source),
                         problem=f"it holds no ISMN soil-moisture file (…_sm_<depth>_<depth>_<sensor>_….stm; "
                                 f"{len(files)} .stm files found).",
                         fix="download soil moisture from ismn.earth in the 'header + values' or 'CEOP separate files' format.")
    stations: dict[str, IsmnStation] = {}
    skipped: list[str] = []
    for k, name in enumerate(sorted(sm_files)):
        if is_canceled is not None and is_canceled():
            raise Canceled()
        m = _NAME.search(os.path.basename(name))
        d0, d1 = float(m.group("d0")), float(m.group("d1"))
        if d0 < opts.depth_min - DEPTH_TOLERANCE or d1 > opts.depth_max + DEPTH_TOLERANCE:
            skipped.append(f"{name}: depth {d0:g}–{d1:g} m outside {opts.depth_min:g}–{opts.depth_max:g} m")
            continue
        series = _read_sensor(archive, name, m.group("sensor"), d0, d1, opts)
        sid = f"{series.network}_{series.station}"
        st = stations.get(sid)
        if st is None:
            st = IsmnStation(sid, series.network, series.station, series.lat, series.lon, series.elevation)
            st.attrs.update(_static_attributes(archive, name))
            stations[sid] = st
        st.sensors.append(series)
        if progress is not None:
            progress((k + 1) / len(sm_files), os.path.basename(name))
    if not stations:
        raise InputError(layer=os.path.basename(source),
                         problem=f"none of its {len(sm_files)} soil-moisture sensors lies within "
                                 f"{opts.depth_min:g}–{opts.depth_max:g} m (e.g. {skipped[0]}).",
                         fix="widen the depth range (maximum depth).")
    return _assemble(sorted(stations.values(), key=lambda s: s.id), skipped)


def _assemble(stations: list[IsmnStation], skipped: list[str]) -> IsmnImport:
    daily: list[dict[_dt.date, float]] = []
    log: list[str] = []
    for st in stations:
        days: dict[_dt.date, list[float]] = {}
        for s in st.sensors:
            for d, v in s.days.items():
                days.setdefault(d, []).append(v)
            log.append(f"{st.id} · {s.sensor} {s.depth_from:g}–{s.depth_to:g} m: {s.kept} readings kept, "
                       f"{s.dropped_flag} dropped by flag, {s.dropped_range} dropped by range; "
                       f"{len(s.days)} days, {s.short_days} days with too few valid hours")
        daily.append({d: float(np.mean(v)) for d, v in days.items()})
        st.attrs["depth_from_m"] = f"{min(s.depth_from for s in st.sensors):g}"
        st.attrs["depth_to_m"] = f"{max(s.depth_to for s in st.sensors):g}"
        st.attrs["sensors"] = "; ".join(sorted({s.sensor for s in st.sensors}))
        st.attrs["n_days"] = str(len(daily[-1]))
        st.attrs["network"] = st.network
        st.attrs["elevation_m"] = f"{st.elevation:g}" if math.isfinite(st.elevation) else ""
    all_days = sorted(set().union(*daily)) if daily else []
    if not all_days:
        sensors = [s for st in stations for s in st.sensors]
        flags: dict[str, int] = {}
        for s in sensors:
            for f, n in s.dropped_flags.items():
                flags[f] = flags.get(f, 0) + n
        common = ", ".join(f"{f} ×{n}" for f, n in sorted(flags.items(), key=lambda t: -t[1])[:5])
        raise InputError(problem=f"no daily value is left in {len(sensors)} sensors: "
                                 f"{sum(s.kept for s in sensors)} readings kept, {sum(s.dropped_flag for s in sensors)} "
                                 f"dropped by flag ({common or 'none'}), {sum(s.dropped_range for s in sensors)} by range, "
                                 f"{sum(s.short_days for s in sensors)} days with too few valid hours.",
                         fix="keep more quality flags (e.g. G,U for data ISMN has not checked), widen the period or "
                             "lower the share of valid hours.")
    pos = {d: i for i, d in enumerate(all_days)}
    values = np.full((len(all_days), len(stations)), np.nan)
    for j, series in enumerate(daily):
        for d, v in series.items():
            values[pos[d], j] = v
    return IsmnImport(stations, all_days, values, log, skipped)


def _read_sensor(archive: "_Archive", name: str, sensor: str, d0: float, d1: float, opts: IsmnOptions) -> SensorSeries:
    lines = archive.read_text(name).splitlines()
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise InputError(layer=name, problem="the file is empty.", fix="download the station again.")
    first = lines[0].split()
    folders = name.replace("\\", "/").split("/")
    net_dir, st_dir = (folders[-3], folders[-2]) if len(folders) >= 3 else ("", "")
    if first and _DATE_TIME.match(first[0]):  # CEOP-style separate file: metadata on every line
        if len(first) < 15:
            raise _format_error(name, lines[0])
        lat, lon, elev = (_float(t) for t in first[-8:-5])
        series = SensorSeries(net_dir or first[5], st_dir or first[6], sensor, d0, d1, lat, lon, elev, name)
        records = ((t[0], t[1], t[-3], t[-2]) for t in (ln.split() for ln in lines))
    else:  # header + values
        nums = [i for i in range(3, len(first)) if _is_number(first[i])]
        run = next((i for i in nums if all(i + k in nums for k in range(5))), None)
        if run is None or len(lines) < 2 or not _DATE_TIME.match(lines[1].split()[0]):
            raise _format_error(name, lines[0])
        lat, lon, elev = (_float(t) for t in first[run:run + 3])
        series = SensorSeries(net_dir or first[1], st_dir or " ".join(first[2:run]), sensor, d0, d1, lat, lon, elev, name)
        records = ((t[0], t[1], t[2], t[3] if len(t) > 3 else "") for t in (ln.split() for ln in lines[1:]))
    if not (math.isfinite(lat) and abs(lat) <= 90 and math.isfinite(lon) and abs(lon) <= 180):
        raise InputError(layer=name, problem=f"its coordinates ({lat}, {lon}) are not WGS84 degrees.",
                         fix="check the file is an unmodified ISMN download.")
    _daily_means(series, records, opts)
    return series


def _daily_means(series: SensorSeries, records: Iterator[tuple[str, str, str, str]], opts: IsmnOptions) -> None:
    """Fill ``series.days`` (UTC daily means) and its counters from (date, time, value, flag) records."""
    start = opts.start.strftime("%Y/%m/%d") if opts.start else None
    end = opts.end.strftime("%Y/%m/%d") if opts.end else None
    keep = _flag_filter(opts.flags)
    sums: dict[str, list] = {}
    for day, time, text, flag in records:
        if (start and day < start) or (end and day > end):
            continue
        if not keep(flag):
            series.dropped_flag += 1
            series.dropped_flags[flag] = series.dropped_flags.get(flag, 0) + 1
            continue
        v = _float(text)
        if not (0.0 <= v <= 1.0):  # NaN fails too
            series.dropped_range += 1
            continue
        series.kept += 1
        acc = sums.setdefault(day, [0.0, 0, set()])
        acc[0] += v
        acc[1] += 1
        acc[2].add(time[:2])
    need = opts.min_hours_share * 24.0
    for day, (total, n, hours) in sums.items():
        if len(hours) + 1e-9 < need:
            series.short_days += 1
            continue
        y, m, d = day.split("/")
        series.days[_dt.date(int(y), int(m), int(d))] = total / n


def _flag_filter(flags: Sequence[str]) -> Callable[[str], bool]:
    exact = {f.strip().upper() for f in flags if len(f.strip()) > 1}
    families = {f.strip().upper() for f in flags if len(f.strip()) == 1}

    def keep(flag: str) -> bool:
        parts = [p.strip().upper() for p in flag.split(",") if p.strip()]
        return bool(parts) and all(p in exact or p[:1] in families for p in parts)

    return keep


# --------------------------------------------------------------------------- static metadata


def _static_attributes(archive: "_Archive", name: str) -> dict[str, str]:
    """Land cover, climate class and top-layer soil of the station holding ``name``."""
    folder = name.replace("\\", "/").rsplit("/", 1)[0] if "/" in name.replace("\\", "/") else ""
    csv_name = next((n for n in archive.names()
                     if n.replace("\\", "/").rsplit("/", 1)[0] == folder and n.lower().endswith("_static_variables.csv")), None)
    if csv_name is None:
        return {}
    rows = list(csv.reader(archive.read_text(csv_name).splitlines(), delimiter=";"))
    if not rows:
        return {}
    head = [h.strip().lower() for h in rows[0]]

    def col(row: list[str], key: str) -> str:
        i = head.index(key) if key in head else -1
        return row[i].strip() if 0 <= i < len(row) else ""

    out: dict[str, str] = {}
    land: list[tuple[str, str, str]] = []
    soil: dict[str, tuple[float, str]] = {}
    for row in rows[1:]:
        quantity = col(row, "quantity_name").lower()
        value, desc, src = col(row, "value"), col(row, "description"), col(row, "quantity_source_name")
        if quantity == "land cover classification":
            land.append((src, value, desc))
        elif quantity == "climate classification":
            out["climate"], out["climate_name"] = value, desc
        elif quantity in ("clay fraction", "sand fraction", "silt fraction", "saturation"):
            top = _float(col(row, "depth_from[m]"))
            if math.isfinite(top) and top >= 0 and (quantity not in soil or top < soil[quantity][0]):
                soil[quantity] = (top, value)
    if land:
        # An in-situ description beats the satellite maps; among those, the latest map.
        src, code, desc = max(land, key=lambda t: ("insitu" in t[0].lower(), t[0]))
        out["land_cover"], out["land_cover_code"] = desc or code, code
    for quantity, key in (("clay fraction", "clay_pct"), ("sand fraction", "sand_pct"), ("silt fraction", "silt_pct"),
                          ("saturation", "saturation")):
        if quantity in soil:
            out[key] = soil[quantity][1]
    if all(k in out for k in ("clay_pct", "sand_pct", "silt_pct")):
        out["soil_texture"] = usda_texture(_float(out["sand_pct"]), _float(out["silt_pct"]), _float(out["clay_pct"]))
    return out


def usda_texture(sand: float, silt: float, clay: float) -> str:
    """USDA soil texture class from sand, silt and clay (% weight; they are rescaled to sum to 100).

    >>> usda_texture(36, 41, 23)
    'loam'
    >>> usda_texture(92, 5, 3)
    'sand'
    """
    total = sand + silt + clay
    if not (math.isfinite(total) and total > 0):
        return ""
    sand, silt, clay = (100.0 * v / total for v in (sand, silt, clay))
    if silt + 1.5 * clay < 15:
        return "sand"
    if silt + 2 * clay < 30:
        return "loamy sand"
    if clay >= 40:
        return "silty clay" if silt >= 40 else ("clay" if sand <= 45 else "sandy clay")
    if clay >= 35 and sand > 45:
        return "sandy clay"
    if clay >= 27:
        return "silty clay loam" if sand <= 20 else ("clay loam" if sand <= 45 else "sandy clay loam")
    if clay >= 20 and silt < 28 and sand > 45:
        return "sandy clay loam"
    if silt >= 80 and clay < 12:
        return "silt"
    if silt >= 50:
        return "silt loam"
    if clay >= 7 and silt >= 28 and sand <= 52:
        return "loam"
    return "sandy loam"


# --------------------------------------------------------------------------- writing


def ismn_log_lines(result: IsmnImport) -> list[str]:
    """What an import reports: per sensor readings kept and dropped, the files not used, the totals."""
    return (list(result.log) + [f"Not used: {line}" for line in result.skipped]
            + [f"{len(result.stations)} stations, {len(result.dates)} days "
               f"({result.dates[0].isoformat()} … {result.dates[-1].isoformat()})"])


def write_series_csv(result: IsmnImport, path: str) -> str:
    """``date`` + one column per station id (daily means, m³/m³; empty = no value), atomically.

    The layout of ``core.evaluation.stations.read_insitu_csv``.
    """
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date"] + [s.id for s in result.stations])
        for d, row in zip(result.dates, result.values):
            w.writerow([d.isoformat()] + ["" if not math.isfinite(v) else f"{v:.6g}" for v in row])
    return path


def write_stations_csv(result: IsmnImport, path: str) -> str:
    """``station, name, lat, lon`` + :data:`STATION_FIELDS`, atomically.

    The layout of ``core.evaluation.stations.read_stations_csv`` (other columns are classes).
    """
    columns = ["station", "name", "lat", "lon", *STATION_FIELDS]
    with atomic_open(path, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        for st in result.stations:
            w.writerow(st.record())
    return path


# --------------------------------------------------------------------------- helpers


class _Archive:
    """The files of a download, from a zip or a folder, by relative path with '/'."""

    def __init__(self, source: str) -> None:
        self.source = os.fspath(source)
        if os.path.isdir(self.source):
            self._zip = None
            self._names = sorted(
                os.path.relpath(os.path.join(root, n), self.source).replace(os.sep, "/")
                for root, _dirs, files in os.walk(self.source) for n in files)
        elif zipfile.is_zipfile(self.source):
            self._zip = zipfile.ZipFile(self.source)
            self._names = sorted(n for n in self._zip.namelist() if not n.endswith("/"))
        else:
            raise InputError(layer=os.path.basename(self.source) or self.source,
                             problem="it is neither a folder nor a .zip file.",
                             fix="give the ISMN download (.zip) as saved, or the folder it unpacks to.")

    def names(self) -> list[str]:
        return self._names

    def read_text(self, name: str) -> str:
        if self._zip is not None:
            data = self._zip.read(name)
        else:
            with open(os.path.join(self.source, name), "rb") as f:
                data = f.read()
        return data.decode("utf-8", errors="replace")


def _format_error(name: str, line: str) -> InputError:
    return InputError(layer=os.path.basename(name),
                      problem=f"its first line is neither an ISMN header nor a CEOP-style reading ('{line[:80]}').",
                      fix="download the data in the 'header + values' or the 'CEOP separate files' format.")


def _is_number(text: str) -> bool:
    return math.isfinite(_float(text))


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")
