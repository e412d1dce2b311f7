"""Input features an ensemble may use, and how each is encoded before the network.

The names are the ones the raster pipeline provides; a model card lists its inputs by
these names, in the column order of the model's input matrix.

Encodings (applied inside the ONNX graph, so callers always pass raw values):

* ``standardize`` — ``(x − mean) / std`` with the training mean and standard deviation;
* ``cyclic`` — day of year as ``sin(2π·doy/365.25)`` and ``cos(2π·doy/365.25)``, so that
  31 December and 1 January are neighbours;
* ``one_hot`` — a categorical code (NLCD class) as one indicator per code seen in training;
  a code not seen in training (or NaN) gives all zeros and is flagged out of domain.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class FeatureInfo:
    """What the raster pipeline means by one feature name."""

    role: str
    units: str
    description: str
    encoding: str = "standardize"  # "standardize" | "cyclic" | "one_hot"


#: Every feature name the raster pipeline provides.
FEATURES: dict[str, FeatureInfo] = {
    "sm_coarse": FeatureInfo("soil_moisture", "m3/m3", "coarse soil moisture of the containing coarse cell"),
    "doy": FeatureInfo("calendar", "day of year (1..366)", "day of year of the coarse image", "cyclic"),
    "lat": FeatureInfo("coordinate", "degrees_north", "WGS84 latitude of the pixel centre"),
    "lon": FeatureInfo("coordinate", "degrees_east", "WGS84 longitude of the pixel centre"),
    "mtpi": FeatureInfo("dem", "m", "multi-scale topographic position index (SRTM mTPI definition, "
                                    "core.raster.terrain.mtpi)"),
    "slope": FeatureInfo("dem", "degrees", "terrain slope"),
    "dem": FeatureInfo("dem", "m", "elevation"),
    "ndvi": FeatureInfo("ndvi", "1", "NDVI = (NIR − red) / (NIR + red)"),
    "field_capacity": FeatureInfo("other", "%", "soil field capacity (volumetric %)"),
    "land_cover": FeatureInfo("land_cover", "NLCD class code", "NLCD land cover class", "one_hot"),
    "sand": FeatureInfo("sand", "%", "sand content"),
    "clay": FeatureInfo("clay", "%", "clay content"),
    "vv_db": FeatureInfo("other", "dB", "Sentinel-1 VV backscatter"),
    "vh_db": FeatureInfo("other", "dB", "Sentinel-1 VH backscatter"),
    "ndwi": FeatureInfo("other", "1", "NDWI (McFeeters 1996) = (green − NIR) / (green + NIR); Sentinel-2 B3, B8"),
    "evi": FeatureInfo("other", "1", "EVI = 2.5 (NIR − red) / (NIR + 6 red − 7.5 blue + 1), reflectances 0…1; "
                                    "Sentinel-2 B8, B4, B2"),
    "nsdsi": FeatureInfo("other", "1", "NSDSI (Yue et al. 2019) = (SWIR1 − SWIR2) / SWIR1, a soil dryness index; "
                                      "Sentinel-2 B11, B12"),
}

#: Moving-window inputs of the cross-scale network (Alemohammad et al., :mod:`core.methods.cross_scale`):
#: area-weighted over a window 1.25 coarse cells wide centred on the pixel (:mod:`core.raster.moving_window`).
WINDOW_FEATURES: dict[str, FeatureInfo] = {
    "sm_window": FeatureInfo("soil_moisture", "m3/m3", "window mean of the coarse soil moisture"),
    "ndvi_window": FeatureInfo("ndvi", "1", "window mean of NDVI"),
    "ndvi_window_std": FeatureInfo("ndvi", "1", "standard deviation of the NDVI pixels in the window"),
    "mtpi_window": FeatureInfo("dem", "m", "window mean of the multi-scale topographic position index"),
}

#: Every name a model input may have (the raster features and the moving-window inputs).
MODEL_INPUTS: dict[str, FeatureInfo] = {**FEATURES, **WINDOW_FEATURES}

#: Period of the cyclic day-of-year encoding, in days.
DOY_PERIOD = 365.25


def check_feature_names(names: Sequence[str]) -> list[str]:
    """Return ``names`` as a list after checking each is a known, unique feature name."""
    names = list(names)
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"Unknown feature(s) {unknown}; known: {sorted(FEATURES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"Feature names repeat: {names}")
    if not names:
        raise ValueError("At least one input feature is needed")
    return names


@dataclass
class InputEncoder:
    """Encoding of raw input columns into the network's first-layer input.

    Fitted on training rows by :meth:`fit`; :meth:`transform` gives the encoded matrix
    (float64) that the numpy models use; the ONNX export rebuilds the same steps as graph
    nodes from :attr:`specs`.

    Attributes
    ----------
    feature_names : list of str
    specs : list of dict
        One per input column: ``{"encoding": "standardize", "mean": m, "std": s}``,
        ``{"encoding": "cyclic", "period": 365.25}`` or ``{"encoding": "one_hot", "codes": [...]}``.
    domain : list of dict
        Training domain of each column: ``{"min": .., "max": ..}`` or ``{"codes": [...]}``.
    """

    feature_names: list[str]
    specs: list[dict] = field(default_factory=list)
    domain: list[dict] = field(default_factory=list)

    def fit(self, X: np.ndarray) -> "InputEncoder":
        """Learn means, standard deviations, category codes and the domain from ``X``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"X must have shape (n, {len(self.feature_names)}), not {X.shape}")
        self.specs, self.domain = [], []
        for j, name in enumerate(self.feature_names):
            col = X[:, j]
            fin = col[np.isfinite(col)]
            if fin.size == 0:
                raise ValueError(f"Feature '{name}' has no finite training value")
            enc = MODEL_INPUTS[name].encoding
            if enc == "one_hot":
                codes = sorted({int(round(c)) for c in fin})
                self.specs.append({"encoding": "one_hot", "codes": codes})
                self.domain.append({"codes": codes})
                continue
            if enc == "cyclic":
                self.specs.append({"encoding": "cyclic", "period": DOY_PERIOD})
            else:
                std = float(np.std(fin))
                self.specs.append({"encoding": "standardize", "mean": float(np.mean(fin)),
                                   "std": std if std > 0 else 1.0})
            self.domain.append({"min": float(fin.min()), "max": float(fin.max())})
        return self

    @property
    def n_encoded(self) -> int:
        """Width of the encoded matrix."""
        return sum(_width(s) for s in self.specs)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Encode raw columns; NaN in a continuous column stays NaN, in a one-hot column gives zeros."""
        X = np.asarray(X, dtype=np.float64)
        parts = []
        for j, s in enumerate(self.specs):
            col = X[:, j]
            if s["encoding"] == "standardize":
                parts.append(((col - s["mean"]) / s["std"])[:, None])
            elif s["encoding"] == "cyclic":
                a = 2.0 * np.pi * col / s["period"]
                parts.append(np.stack([np.sin(a), np.cos(a)], axis=1))
            else:
                codes = np.asarray(s["codes"], dtype=np.float64)
                parts.append((col[:, None] == codes[None, :]).astype(np.float64))
        return np.concatenate(parts, axis=1)

    def one_hot_columns(self) -> np.ndarray:
        """Indices (in the encoded matrix) of the one-hot indicator columns."""
        idx, pos = [], 0
        for s in self.specs:
            w = _width(s)
            if s["encoding"] == "one_hot":
                idx.extend(range(pos, pos + w))
            pos += w
        return np.asarray(idx, dtype=np.int64)

    def out_of_domain(self, X: np.ndarray) -> np.ndarray:
        """True for rows with a value outside the training domain (NaN counts as outside)."""
        return out_of_domain(X, self.domain)


def out_of_domain(X: np.ndarray, domain: Sequence[dict]) -> np.ndarray:
    """Rows of ``X`` with any column outside its training ``domain`` (see :class:`InputEncoder`).

    A continuous value is outside when below ``min`` or above ``max`` or NaN; a categorical
    value when it is not one of ``codes``.
    """
    X = np.asarray(X)
    bad = np.zeros(X.shape[0], dtype=bool)
    for j, d in enumerate(domain):
        col = X[:, j]
        if "codes" in d:
            bad |= ~np.isin(col, np.asarray(d["codes"], dtype=col.dtype))
        else:
            with np.errstate(invalid="ignore"):
                bad |= ~((col >= d["min"]) & (col <= d["max"]))
    return bad


def _width(spec: dict) -> int:
    if spec["encoding"] == "one_hot":
        return len(spec["codes"])
    return 2 if spec["encoding"] == "cyclic" else 1


def optional_float(value: Optional[str]) -> float:
    """Parse a CSV cell: empty or non-numeric text gives NaN."""
    try:
        return float(value) if value not in (None, "") else np.nan
    except ValueError:
        return np.nan
