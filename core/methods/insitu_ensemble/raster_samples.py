"""Training samples of an in-situ ensemble read from the user's own rasters (Poehls et al.).

The CONUS station table (:func:`core.methods.insitu_ensemble.samples.samples_from_station_table`) is one way
to get training samples; this module is the other: the user's coarse soil moisture and
covariate layers (a :class:`core.inputs.scene.Scene`), their stations and their in-situ table.

One sample per station and scene date with an in-situ value on that day:

* inputs — the scene's features at the *fine* pixel that holds the station, exactly what
  :meth:`core.inputs.scene.Scene.features` gives the ensemble when it downscales (``sm_coarse`` is the
  soil moisture of the coarse cell holding that pixel; ``doy``, ``lat``, ``lon`` likewise);
* target — the in-situ value of that day (m³/m³);
* coarse product — ``sm_coarse``, scored next to the ensemble.

Only the fine-grid rows that hold stations are read (``Window(row, 1)``), so the grid may be
far larger than memory.

Class attributes of the weighting schemes (:mod:`core.methods.insitu_ensemble.schemes`) — a column of the
station table wins over a raster, for every station, when the table has that column:

==================  =================================================================  ==================
attribute           from                                                               used by scheme
==================  =================================================================  ==================
``land_cover``      station column ``land_cover|landcover|nlcd_landcover|nlcd|lc``,    ``land_cover``
                    else the land-cover layer at the station (non-integer → missing)
``field_capacity``  station column ``field_capacity|fc`` (volumetric %), else the      ``field_capacity``,
                    Saxton & Rawls (2006) field capacity θ₃₃ (%) from the sand and      ``rf`` soil classes,
                    clay layers at the station (both needed; organic matter 2.5 %)      holdout strata
``lat``             the station's latitude                                             ``climate_lat``
``wetness``         the station's mean coarse soil moisture over all scene dates       ``climate_wetness``
``network``         station column ``network``, else ``"unknown"``                    ``network``
==================  =================================================================  ==================

An attribute nobody can provide is all missing (NaN): its scheme then has one class, and
:func:`core.methods.insitu_ensemble.preflight.scheme_support` says so.
"""
from __future__ import annotations

import datetime as _dt
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
from osgeo import osr

from ...errors import Canceled, InputError
from ...raster.grid import Window, srs_from_wkt
from ...learn.features import check_feature_names
from .samples import Samples

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]

#: Features every scene provides besides its covariates.
SCENE_EXTRA_FEATURES: tuple[str, ...] = ("sm_coarse", "doy", "lat", "lon")

#: Station-table columns (lower case) read as class attributes, first match wins.
ATTRIBUTE_COLUMNS: dict[str, tuple[str, ...]] = {
    "land_cover": ("land_cover", "landcover", "nlcd_landcover", "nlcd", "lc"),
    "field_capacity": ("field_capacity", "fc"),
    "network": ("network",),
}

#: Organic matter (weight %) assumed by :func:`field_capacity_saxton_rawls` when none is known.
DEFAULT_ORGANIC_MATTER_PCT = 2.5

#: Which layer gives a feature, for the message when it is missing.
_FEATURE_SOURCE = {
    "dem": "a DEM layer", "slope": "a DEM layer with 'Derive terrain covariates' ticked",
    "mtpi": "a DEM layer with 'Derive terrain covariates' ticked", "ndvi": "an NDVI layer",
    "sand": "a sand layer", "clay": "a clay layer", "land_cover": "a land-cover layer",
}


def field_capacity_saxton_rawls(sand_pct: np.ndarray, clay_pct: np.ndarray,
                                organic_matter_pct: float = DEFAULT_ORGANIC_MATTER_PCT) -> np.ndarray:
    """Field capacity (volumetric water content at −33 kPa, %) from sand and clay content.

    Saxton & Rawls (2006), Soil water characteristic estimates by texture and organic matter
    for hydrologic solutions, SSSA J. 70:1569–1578, Table 1 (S, C as weight fractions, OM in %):

    θ₃₃t = −0.251 S + 0.195 C + 0.011 OM + 0.006 S·OM − 0.027 C·OM + 0.452 S·C + 0.299
    θ₃₃  = θ₃₃t + 1.283 θ₃₃t² − 0.374 θ₃₃t − 0.015

    Parameters
    ----------
    sand_pct, clay_pct : array-like
        Sand and clay content, weight % (0–100). NaN gives NaN.
    organic_matter_pct : float
        Organic matter, weight %.

    Returns
    -------
    numpy.ndarray of float64
        Field capacity in volumetric % (the unit of the CONUS table's ``field_capacity``).

    Examples
    --------
    The paper's texture-class values: sand ≈ 10 %, loam ≈ 28 %, clay ≈ 42 %.

    >>> field_capacity_saxton_rawls([88.0, 40.0, 25.0], [5.0, 20.0, 50.0]).round(0).tolist()
    [10.0, 28.0, 42.0]
    """
    s = np.asarray(sand_pct, dtype=np.float64) / 100.0
    c = np.asarray(clay_pct, dtype=np.float64) / 100.0
    om = float(organic_matter_pct)
    t = (-0.251 * s + 0.195 * c + 0.011 * om + 0.006 * s * om - 0.027 * c * om + 0.452 * s * c + 0.299)
    return 100.0 * (t + 1.283 * t * t - 0.374 * t - 0.015)


def scene_feature_names(scene) -> list[str]:
    """Every feature name ``scene`` can give an ensemble (its covariates, then ``sm_coarse``,
    ``doy``, ``lat``, ``lon``)."""
    return [*scene.covariate_names, *SCENE_EXTRA_FEATURES]


def station_pixels(grid, stations: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the ``grid`` pixel holding each station (WGS84 ``lat``/``lon``); −1 outside.

    Parameters
    ----------
    grid : core.raster.grid.Grid
    stations : sequence of core.evaluation.stations.Station

    Returns
    -------
    rows, cols : numpy.ndarray of int64
    """
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst = srs_from_wkt(grid.crs_wkt)
    n = len(stations)
    rows = np.full(n, -1, dtype=np.int64)
    cols = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return rows, cols
    lonlat = np.array([[float(s.lon), float(s.lat)] for s in stations])
    if dst.IsSame(wgs):
        xy = lonlat
    else:
        xy = np.array(osr.CoordinateTransformation(wgs, dst).TransformPoints(lonlat))[:, :2]
    with np.errstate(invalid="ignore"):
        c = np.floor((xy[:, 0] - grid.x0) / grid.dx)
        r = np.floor((grid.y0 - xy[:, 1]) / grid.dy)
    inside = np.isfinite(c) & np.isfinite(r) & (c >= 0) & (c < grid.width) & (r >= 0) & (r < grid.height)
    rows[inside] = r[inside].astype(np.int64)
    cols[inside] = c[inside].astype(np.int64)
    return rows, cols


def samples_from_scene(scene, stations: Sequence, insitu_dates: Sequence[_dt.date],
                       insitu: Mapping[str, np.ndarray], feature_names: Sequence[str],
                       progress: Optional[ProgressFn] = None, is_canceled: Optional[CancelFn] = None, *,
                       min_samples_per_site: int = 3,
                       organic_matter_pct: float = DEFAULT_ORGANIC_MATTER_PCT) -> Samples:
    """Training samples from a scene, stations and their in-situ series (see the module docstring).

    Parameters
    ----------
    scene : core.inputs.scene.Scene
        Coarse soil moisture (its dates are the sample dates) and covariates on the fine grid.
    stations : sequence of core.evaluation.stations.Station
        WGS84 coordinates; ``attrs`` may hold class attributes (see :data:`ATTRIBUTE_COLUMNS`).
    insitu_dates : sequence of datetime.date
        Dates of the in-situ rows (as :func:`core.evaluation.stations.read_insitu_csv` returns them).
    insitu : mapping of station id → numpy.ndarray
        In-situ soil moisture (m³/m³) aligned with ``insitu_dates``; NaN = none.
    feature_names : sequence of str
        Inputs wanted, from :data:`core.learn.features.FEATURES` and
        :func:`scene_feature_names`.
    progress : callable(fraction, message), optional
    is_canceled : callable() → bool, optional
        Polled once per station row; :class:`core.errors.Canceled` is raised when it returns True.
    min_samples_per_site : int
        Stations with fewer usable samples are left out.
    organic_matter_pct : float
        Organic matter assumed for the field capacity from sand and clay.

    Returns
    -------
    Samples
        ``source["stations_used"]``, ``["stations_outside"]`` (outside the fine grid) and
        ``["stations_too_few"]`` (fewer than ``min_samples_per_site`` samples) tell what was kept.

    Raises
    ------
    core.errors.InputError
        A feature the layers cannot give; no station with in-situ data inside the grid; no
        date shared by the scene and the in-situ table; no station left with enough samples.
    """
    names = check_feature_names(feature_names)
    available = scene_feature_names(scene)
    missing = [n for n in names if n not in available]
    if missing:
        needs = "; ".join(f"{n} needs {_FEATURE_SOURCE.get(n, 'a layer this tool does not take')}" for n in missing)
        raise InputError(problem=f"the input feature(s) {', '.join(missing)} cannot be read from the given layers "
                         f"({needs}). The layers give: {', '.join(available)}.", layer=None,
                         fix="add the layer, or remove the feature from the input features.")
    grid = scene.fine
    with_data = [s for s in stations if s.id in insitu and np.isfinite(np.asarray(insitu[s.id], float)).any()]
    if not with_data:
        raise InputError(problem="no station has an in-situ value (station ids must be the in-situ table's "
                         "column names).", layer=None, fix="check the station ids and the in-situ table.")
    rows, cols = station_pixels(grid, with_data)
    outside = [s.id for s, r in zip(with_data, rows) if r < 0]
    keep = rows >= 0
    sts = [s for s, k in zip(with_data, keep) if k]
    rows, cols = rows[keep], cols[keep]
    if not sts:
        raise InputError(problem=f"none of the {len(with_data)} stations with in-situ data lies inside the fine "
                         f"grid of the layers ({', '.join(outside[:5])}…).", layer=None,
                         fix="use layers that cover the stations (station coordinates are WGS84 lat/lon).")
    day_index = {d: i for i, d in enumerate(insitu_dates)}
    t_rows = [(t, day_index[d]) for t, d in enumerate(scene.dates) if d in day_index]
    if not t_rows:
        raise InputError(problem=f"no date of the soil-moisture layers ({scene.dates[0]} … {scene.dates[-1]}) is in "
                         f"the in-situ table.", layer=None,
                         fix="give soil moisture and in-situ data of the same period.")
    obs = np.array([[float(np.asarray(insitu[s.id], float)[i]) for s in sts] for _, i in t_rows])  # (n_t, n_st)

    need_lonlat = any(n in names for n in ("lat", "lon"))
    extra = ("sm_coarse", "lat", "lon") if need_lonlat else ("sm_coarse",)
    wanted_attr = [a for a in ("land_cover", "sand", "clay") if a in scene.covariate_names]
    out: dict[str, list] = {k: [] for k in ("X", "y", "site", "date", "coarse", "station", *wanted_attr)}
    wetness = np.full(len(sts), np.nan)
    uniq_rows = np.unique(rows)
    for k, r in enumerate(uniq_rows):
        if is_canceled is not None and is_canceled():
            raise Canceled("Reading training samples canceled")
        on_row = np.flatnonzero(rows == r)
        window = Window(int(r), 1)
        cell = scene.cell_index(window)[0]
        for j in on_row:
            c = cell[cols[j]]
            if c >= 0:
                series = np.array([scene.coarse_sm(t)[c] for t in range(len(scene.dates))], dtype=np.float64)
                if np.isfinite(series).any():
                    wetness[j] = float(np.nanmean(series))
        static = scene.static_block(window)
        for ti, (t, _) in enumerate(t_rows):
            here = [j for j in on_row if np.isfinite(obs[ti, j])]
            if not here:
                continue
            feats = scene.features(t, window, static, extra=extra)
            cc = cols[here]
            out["X"].append(np.stack([np.asarray(feats[n][0, cc], dtype=np.float64) for n in names], axis=1))
            out["y"].append(obs[ti, here])
            out["coarse"].append(np.asarray(feats["sm_coarse"][0, cc], dtype=np.float64))
            out["station"].append(np.asarray(here, dtype=np.int64))
            out["date"].append(np.full(len(here), np.datetime64(scene.dates[t].isoformat()), dtype="datetime64[D]"))
            for a in wanted_attr:
                out[a].append(np.asarray(feats[a][0, cc], dtype=np.float64))
        if progress is not None:
            progress((k + 1) / len(uniq_rows), f"reading covariates at stations: row {k + 1}/{len(uniq_rows)}")
    if not out["y"]:
        raise InputError(problem="no station has an in-situ value on a date of the soil-moisture layers.",
                         layer=None, fix="give soil moisture and in-situ data of the same days.")
    X = np.concatenate(out["X"])
    y = np.concatenate(out["y"])
    coarse = np.concatenate(out["coarse"])
    st_idx = np.concatenate(out["station"])
    dates = np.concatenate(out["date"])
    sampled = {a: np.concatenate(out[a]) for a in wanted_attr}

    attributes = _attributes(sts, st_idx, sampled, wetness, organic_matter_pct)
    ok = np.isfinite(y) & np.isfinite(coarse)
    for j, n in enumerate(names):
        if n != "land_cover":
            ok &= np.isfinite(X[:, j])
    site = np.array([sts[i].id for i in st_idx])
    uniq, counts = np.unique(site[ok], return_counts=True)
    enough = uniq[counts >= min_samples_per_site]
    too_few = sorted(set(s.id for s in sts) - set(enough.tolist()))
    ok &= np.isin(site, enough)
    if not ok.any():
        raise InputError(problem=f"no station has {min_samples_per_site} or more days with an in-situ value, coarse "
                         f"soil moisture and every input feature ({', '.join(names)}) at its pixel.", layer=None,
                         fix="check that the layers have values (not nodata) at the stations, or lower the "
                         "minimum number of samples per station.")
    networks = sorted(set(attributes["network"][ok].tolist()))
    d = dates[ok]
    sm_label = scene.sm_bands[0].label if scene.sm_bands else "coarse soil moisture"
    source = {
        "description": "in-situ stations matched with the user's coarse soil moisture and covariates at the "
                       f"station's pixel of a {grid.dx:g} x {grid.dy:g} fine grid",
        "file": "",
        "period": [str(d.min()), str(d.max())],
        "networks": networks,
        "citations": [],
        "coarse_product": f"{sm_label} (coarse cell holding the station)",
        "stations_used": sorted(enough.tolist()),
        "stations_outside": outside,
        "stations_too_few": too_few,
    }
    return Samples(X[ok], y[ok], site[ok], d, coarse[ok], names,
                   {k: v[ok] for k, v in attributes.items()}, source)


def _attributes(sts: Sequence, st_idx: np.ndarray, sampled: Mapping[str, np.ndarray], wetness: np.ndarray,
                organic_matter_pct: float) -> dict[str, np.ndarray]:
    """Per-row class attributes (see the module docstring): station columns first, then rasters."""
    n = st_idx.size
    column = {key: _station_column(sts, cands) for key, cands in ATTRIBUTE_COLUMNS.items()}

    lc = column["land_cover"]
    if lc is not None:
        land_cover = _numeric_or_text(lc)[st_idx]
    elif "land_cover" in sampled:
        v = sampled["land_cover"]
        land_cover = np.where(np.isfinite(v) & (np.abs(v - np.round(v)) < 1e-6), np.round(v), np.nan)
    else:
        land_cover = np.full(n, np.nan)

    fc = column["field_capacity"]
    if fc is not None:
        field_capacity = np.array([_float(v) for v in fc])[st_idx]
    elif "sand" in sampled and "clay" in sampled:
        field_capacity = field_capacity_saxton_rawls(sampled["sand"], sampled["clay"], organic_matter_pct)
    else:
        field_capacity = np.full(n, np.nan)

    net = column["network"]
    network = np.array([(v or "unknown") for v in net])[st_idx] if net is not None else np.full(n, "unknown")
    return {
        "field_capacity": field_capacity,
        "land_cover": land_cover,
        "lat": np.array([float(s.lat) for s in sts])[st_idx],
        "network": network.astype(str),
        "wetness": wetness[st_idx],
    }


def _station_column(sts: Sequence, candidates: Sequence[str]) -> Optional[list[str]]:
    """Values of the first station attribute named like one of ``candidates`` (any case), or None."""
    keys = {k.strip().lower(): k for s in sts for k in s.attrs}
    for c in candidates:
        if c in keys:
            key = keys[c]
            return [str(s.attrs.get(key, "")).strip() for s in sts]
    return None


def _float(text: str) -> float:
    try:
        return float(text) if text not in ("", None) else np.nan
    except ValueError:
        return np.nan


def _numeric_or_text(values: Sequence[str]) -> np.ndarray:
    """Class codes as floats when every non-empty value is a number, else as text ('' = missing)."""
    nums = [_float(v) for v in values]
    if all(np.isfinite(x) or not v for x, v in zip(nums, values)):
        return np.array(nums, dtype=np.float64)
    return np.array([v for v in values], dtype=object).astype(str)
