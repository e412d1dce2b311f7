"""Spectral indices from surface-reflectance bands given by role (as the stacking paper builds them).

Reflectances are fractions (0–1; MODIS/Sentinel-2 integers × 0.0001). With the MODIS band
numbers of the paper — red 1, NIR 2, blue 3, green 4, SWIR1 6 (1.6 µm), SWIR2 7 (2.1 µm):

- NDVI  = (nir − red) / (nir + red)
- EVI   = 2.5 (nir − red) / (nir + 6 red − 7.5 blue + 1)
- NDWI  = (green − nir) / (green + nir)        (McFeeters 1996, as in the paper)
- NSDSI = (swir1 − swir2) / swir1              (Yue et al. 2019)

A zero denominator gives NaN, never ±inf.

>>> import numpy as np
>>> spectral_index("ndvi", {"red": np.array([0.1]), "nir": np.array([0.3])})
array([0.5], dtype=float32)
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ..errors import InputError

#: Reflectance roles, in the order the Processing algorithm shows them.
BAND_ROLES = ("red", "nir", "blue", "green", "swir1", "swir2")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~np.isfinite(out)] = np.nan
    return out


_FORMULAS: dict[str, tuple[tuple[str, ...], Callable[..., np.ndarray]]] = {
    "ndvi": (("red", "nir"), lambda red, nir: _ratio(nir - red, nir + red)),
    "evi": (("red", "nir", "blue"), lambda red, nir, blue: _ratio(2.5 * (nir - red), nir + 6 * red - 7.5 * blue + 1)),
    "ndwi": (("green", "nir"), lambda green, nir: _ratio(green - nir, green + nir)),
    "nsdsi": (("swir1", "swir2"), lambda swir1, swir2: _ratio(swir1 - swir2, swir1)),
}

#: Index name → the band roles it needs.
INDEX_BANDS: dict[str, tuple[str, ...]] = {k: v[0] for k, v in _FORMULAS.items()}


def spectral_index(name: str, bands: Mapping[str, np.ndarray]) -> np.ndarray:
    """The index ``name`` (ndvi, evi, ndwi, nsdsi) from reflectance arrays by role, float32.

    Raises
    ------
    InputError
        A band the index needs is missing.
    """
    key = name.lower()
    if key not in _FORMULAS:
        raise ValueError(f"unknown index {name!r}; known: {', '.join(_FORMULAS)}")
    roles, formula = _FORMULAS[key]
    missing = [r for r in roles if r not in bands]
    if missing:
        raise InputError(problem=f"{name.upper()} needs the {', '.join(missing)} band(s).",
                         fix=f"give the {' and '.join(roles)} reflectance layers.")
    arrays = [np.asarray(bands[r], dtype=np.float64) for r in roles]
    return formula(*arrays).astype(np.float32)
