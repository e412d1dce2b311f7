"""Terrain covariates derived from a DEM: slope and the multi-scale topographic position index.

All functions take a DEM array in metres with NaN for no data, and pixel sizes in metres.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

#: Neighbourhood radii (km) of the multi-scale TPI of Theobald et al. (2015), as used by the
#: ERGo/CSP mTPI product that the station table's ``mtpi`` column was sampled from.
MTPI_RADII_KM: tuple[float, ...] = (115.8, 89.9, 35.3, 13.1, 5.6, 2.8, 1.2)


def slope_degrees(dem: np.ndarray, dx_m: float, dy_m: float) -> np.ndarray:
    """Slope in degrees by Horn's (1981) 3×3 finite differences; edges use the nearest value."""
    z = _filled(dem)
    p = np.pad(z, 1, mode="edge")
    a, b, c = p[:-2, :-2], p[:-2, 1:-1], p[:-2, 2:]
    d, f = p[1:-1, :-2], p[1:-1, 2:]
    g, h, i = p[2:, :-2], p[2:, 1:-1], p[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * dx_m)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * dy_m)
    out = np.degrees(np.arctan(np.hypot(dzdx, dzdy))).astype(np.float32)
    out[~np.isfinite(dem)] = np.nan
    return out


def focal_mean(dem: np.ndarray, radius_px: float) -> np.ndarray:
    """Mean of valid DEM values in a square window of half-size ``radius_px`` (NaN-aware)."""
    size = int(2 * max(1, round(radius_px)) + 1)
    ok = np.isfinite(dem)
    z = np.where(ok, dem, 0.0).astype(np.float64)
    s = ndimage.uniform_filter(z, size=size, mode="constant")
    n = ndimage.uniform_filter(ok.astype(np.float64), size=size, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1e-9, s / n, np.nan)


def tpi(dem: np.ndarray, radius_px: float) -> np.ndarray:
    """Topographic position index: elevation minus the focal mean within ``radius_px``."""
    return (dem - focal_mean(dem, radius_px)).astype(np.float32)


def mtpi_radii_px(pixel_size_m: float, radii_km: Sequence[float] = MTPI_RADII_KM) -> list[float]:
    """The mTPI radii in pixels that a DEM of ``pixel_size_m`` resolves.

    Radii smaller than one pixel are skipped; if every radius is sub-pixel, a 1-pixel TPI is used.
    """
    return [r * 1000.0 / pixel_size_m for r in radii_km if r * 1000.0 / pixel_size_m >= 1.0] or [1.0]


def mtpi(dem: np.ndarray, pixel_size_m: float, radii_km: Sequence[float] = MTPI_RADII_KM) -> np.ndarray:
    """Multi-scale TPI (metres): the mean of TPIs over ``radii_km`` (Theobald et al. 2015), on a
    whole array — the reference the block-wise derivation of :mod:`core.inputs.scene` reproduces.

    Radii are those of :func:`mtpi_radii_px`.
    """
    usable = mtpi_radii_px(pixel_size_m, radii_km)
    acc = np.zeros(dem.shape, dtype=np.float64)
    for r in usable:
        acc += dem - focal_mean(dem, r)
    out = (acc / len(usable)).astype(np.float32)
    out[~np.isfinite(dem)] = np.nan
    return out


def _filled(dem: np.ndarray) -> np.ndarray:
    z = np.asarray(dem, dtype=np.float64)
    if np.isfinite(z).all():
        return z
    ok = np.isfinite(z)
    if not ok.any():
        return np.zeros_like(z)
    idx = ndimage.distance_transform_edt(~ok, return_distances=False, return_indices=True)
    return z[tuple(idx)]
