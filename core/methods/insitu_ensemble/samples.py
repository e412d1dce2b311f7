"""Training samples of an in-situ-trained ensemble, and the reader of the CONUS station table."""
from __future__ import annotations

import csv
import datetime as _dt
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ...learn.features import check_feature_names, optional_float

#: Depth of the layer the coarse product's millimetres are spread over (5 cm = 50 mm).
SMAP_LAYER_MM = 50.0


@dataclass
class Samples:
    """Matched in-situ / covariate samples, one row per station and date.

    Attributes
    ----------
    X : numpy.ndarray of float32, shape (n, n_features)
        Raw inputs, columns named by ``feature_names``.
    y : numpy.ndarray of float32, shape (n,)
        In-situ soil moisture, m³/m³ (the target).
    site_id : numpy.ndarray of str, shape (n,)
        Station of each row: every split groups by it.
    date : numpy.ndarray of datetime64[D], shape (n,)
    coarse_sm : numpy.ndarray of float32, shape (n,)
        The coarse product at the station (m³/m³), scored next to the ensemble.
    feature_names : list of str
    attributes : dict of str → numpy.ndarray
        Static class attributes per row for the weighting schemes (``field_capacity``,
        ``land_cover``, ``lat``, ``wetness``, ``network``, ...).
    source : dict
        Provenance for the model card (description, file name, period, citations).
    """

    X: np.ndarray
    y: np.ndarray
    site_id: np.ndarray
    date: np.ndarray
    coarse_sm: np.ndarray
    feature_names: list[str]
    attributes: dict[str, np.ndarray] = field(default_factory=dict)
    source: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.float32).ravel()
        self.site_id = np.asarray(self.site_id).astype(str).ravel()
        self.date = np.asarray(self.date, dtype="datetime64[D]").ravel()
        self.coarse_sm = np.asarray(self.coarse_sm, dtype=np.float32).ravel()
        self.feature_names = check_feature_names(self.feature_names)
        n = self.y.size
        if self.X.shape != (n, len(self.feature_names)):
            raise ValueError(f"X has shape {self.X.shape}, expected ({n}, {len(self.feature_names)})")
        for name, arr in [("site_id", self.site_id), ("date", self.date), ("coarse_sm", self.coarse_sm),
                          *self.attributes.items()]:
            if len(arr) != n:
                raise ValueError(f"'{name}' has {len(arr)} rows but y has {n}")

    def __len__(self) -> int:
        return int(self.y.size)

    def subset(self, rows: np.ndarray) -> "Samples":
        """The samples of the given row indices or boolean mask."""
        return Samples(self.X[rows], self.y[rows], self.site_id[rows], self.date[rows], self.coarse_sm[rows],
                       list(self.feature_names), {k: np.asarray(v)[rows] for k, v in self.attributes.items()},
                       dict(self.source))

    @property
    def sites(self) -> np.ndarray:
        return np.unique(self.site_id)


#: Citations of the sources sampled by the CONUS station table.
STATION_TABLE_CITATIONS: tuple[str, ...] = (
    "NASA-USDA Enhanced SMAP Global Soil Moisture (10 km), Mladenova et al. 2020, doi:10.3389/fdata.2020.00010",
    "International Soil Moisture Network (ISMN), Dorigo et al. 2021, doi:10.5194/hess-25-5749-2021 "
    "(networks USCRN, TxSON, ARM)",
    "Copernicus Sentinel-2 surface reflectance and Sentinel-1 backscatter (ESA)",
    "SRTM multi-scale topographic position index (ERGo, Theobald et al. 2015, doi:10.1371/journal.pone.0143619)",
    "NLCD land cover (USGS MRLC)",
    "Poehls et al. 2024, Downscaling soil moisture to sub-km resolutions with simple machine learning "
    "ensembles, SSRN 4743411",
)

#: Sentinel-2 bands the spectral indices are computed from, and the indices.
_S2_BANDS = ("B2", "B3", "B4", "B8", "B11", "B12")
_INDICES = ("ndvi", "ndwi", "evi", "nsdsi")
#: Physical range of each index; values outside (a zero or corrupt reflectance) count as missing.
_INDEX_RANGE = {"ndvi": (-1.0, 1.0), "ndwi": (-1.0, 1.0), "evi": (-1.0, 1.0), "nsdsi": (-1.0, 1.0)}


def spectral_indices(bands: dict) -> dict[str, np.ndarray]:
    """NDVI, NDWI, EVI and NSDSI from Sentinel-2 surface reflectances (0…1) ``B2, B3, B4, B8, B11, B12``.

    Examples
    --------
    >>> r = spectral_indices({"B2": np.array([0.05]), "B3": np.array([0.08]), "B4": np.array([0.06]),
    ...                       "B8": np.array([0.30]), "B11": np.array([0.20]), "B12": np.array([0.10])})
    >>> {k: round(float(v[0]), 4) for k, v in r.items()}
    {'ndvi': 0.6667, 'ndwi': -0.5789, 'evi': 0.4669, 'nsdsi': 0.5}
    """
    b = {k: np.asarray(v, dtype=np.float64) for k, v in bands.items()}
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"ndvi": (b["B8"] - b["B4"]) / (b["B8"] + b["B4"]),
               "ndwi": (b["B3"] - b["B8"]) / (b["B3"] + b["B8"]),
               "evi": 2.5 * (b["B8"] - b["B4"]) / (b["B8"] + 6.0 * b["B4"] - 7.5 * b["B2"] + 1.0),
               "nsdsi": (b["B11"] - b["B12"]) / b["B11"]}
        for k, (lo, hi) in _INDEX_RANGE.items():
            v = out[k]
            out[k] = np.where(np.isfinite(v) & (v >= lo) & (v <= hi), v, np.nan)
    return out


_TABLE_DIRECT = {"lat": "lat", "lon": "lon", "mtpi": "mtpi", "field_capacity": "field_capacity",
                 "vv_db": "vv_db", "vh_db": "vh_db"}


def samples_from_station_table(csv_path: str, feature_names: Sequence[str],
                               min_samples_per_site: int = 10) -> Samples:
    """Read the CONUS station × 10-day table into :class:`Samples`.

    Columns used: ``insitu_sm`` (target, m³/m³); ``smap10km_ssm_mm`` / 50 mm → ``sm_coarse``
    and the coarse product (m³/m³ of a 5 cm layer); the window's mid date → ``date`` and
    ``doy``; the Sentinel-2 bands (reflectance × 10000 → 0…1) → ``ndvi`` = (B8 − B4)/(B8 + B4),
    ``ndwi`` = (B3 − B8)/(B3 + B8), ``evi`` = 2.5 (B8 − B4)/(B8 + 6 B4 − 7.5 B2 + 1) and
    ``nsdsi`` = (B11 − B12)/B11 (an index outside its physical range, e.g. from a reflectance
    of 0, counts as missing); ``nlcd_landcover`` →
    ``land_cover`` (averaged, non-integer codes → NaN, i.e. unknown class); ``lat``, ``lon``,
    ``mtpi``, ``field_capacity``, ``vv_db``, ``vh_db`` as they are.

    Rows without an in-situ value, or with NaN in a requested continuous feature, are
    dropped; then sites with fewer than ``min_samples_per_site`` rows. A station is
    ``network:station`` (``@lat,lon`` when the table leaves its names empty).

    Class attributes for the weighting schemes: ``field_capacity``, ``land_cover``, ``lat``,
    ``network``, and ``wetness`` (the site's mean coarse soil moisture over all its rows).

    Parameters
    ----------
    csv_path : str
        Path of ``station_10day_table.csv``.
    feature_names : sequence of str
        Inputs wanted, from :data:`core.learn.features.FEATURES`.
    min_samples_per_site : int

    Raises
    ------
    ValueError
        For a feature the table cannot provide (``slope``, ``dem``, ``sand``, ``clay``).
    """
    names = check_feature_names(feature_names)
    missing = [n for n in names if n not in _TABLE_DIRECT and n not in ("sm_coarse", "doy", "land_cover", *_INDICES)]
    if missing:
        raise ValueError(f"The station table has no column for {missing}: choose among sm_coarse, doy, "
                         f"{', '.join(_INDICES)}, land_cover, {', '.join(_TABLE_DIRECT)}")
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{csv_path} holds no rows")
    n = len(rows)
    col = {k: np.array([optional_float(r.get(k)) for r in rows]) for k in
           ("insitu_sm", "smap10km_ssm_mm", *_S2_BANDS, "nlcd_landcover", *_TABLE_DIRECT.values())}
    coarse = col["smap10km_ssm_mm"] / SMAP_LAYER_MM
    mid = np.empty(n, dtype="datetime64[D]")
    doy = np.empty(n)
    for i, r in enumerate(rows):
        a = _dt.date.fromisoformat(r["start_date"])
        b = _dt.date.fromisoformat(r["end_date"])
        m = a + (b - a) / 2
        mid[i] = np.datetime64(m.isoformat())
        doy[i] = m.timetuple().tm_yday
    indices = spectral_indices({b: col[b] / 10000.0 for b in _S2_BANDS})
    lc = col["nlcd_landcover"]
    lc = np.where(np.isfinite(lc) & (np.abs(lc - np.round(lc)) < 1e-6), np.round(lc), np.nan)
    network = np.array([r.get("network", "") or "unknown" for r in rows])
    site = np.array([f"{r['network']}:{r['station']}" if r.get("station") else f"@{r['lat']},{r['lon']}"
                     for r in rows])
    feats = {"sm_coarse": coarse, "doy": doy, **indices, "land_cover": lc,
             **{k: col[v] for k, v in _TABLE_DIRECT.items()}}
    X = np.stack([feats[k] for k in names], axis=1)
    keep = np.isfinite(col["insitu_sm"]) & np.isfinite(coarse)
    for j, k in enumerate(names):
        if k != "land_cover":
            keep &= np.isfinite(X[:, j])
    uniq, counts = np.unique(site[keep], return_counts=True)
    keep &= np.isin(site, uniq[counts >= min_samples_per_site])
    wet = {s: float(np.nanmean(coarse[site == s])) for s in np.unique(site)}
    attributes = {
        "field_capacity": col["field_capacity"], "land_cover": lc, "lat": col["lat"], "network": network,
        "wetness": np.array([wet[s] for s in site]),
    }
    d = mid[keep]
    source = {
        "description": "CONUS station x 10-day table: ISMN in-situ surface soil moisture matched with "
                       "NASA-USDA enhanced SMAP 10 km, Sentinel-1/2, SRTM mTPI, field capacity and NLCD",
        "file": csv_path.replace("\\", "/").rsplit("/", 1)[-1],
        "period": [str(d.min()), str(d.max())] if d.size else [],
        "networks": sorted(set(network[keep].tolist())),
        "citations": list(STATION_TABLE_CITATIONS),
        "coarse_product": "NASA-USDA enhanced SMAP surface soil moisture 10 km (mm / 50 mm -> m3/m3)",
    }
    return Samples(X[keep], col["insitu_sm"][keep], site[keep], d, coarse[keep], names,
                   {k: v[keep] for k, v in attributes.items()}, source)
