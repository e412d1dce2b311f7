"""Plausibility of each layer's values for its role, checked before anything runs."""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal

from ..raster.align import BandRef, open_band, scale_offset
from ..errors import InputError
from .roles import Role

gdal.UseExceptions()


def band_range(ref: BandRef) -> tuple[float, float]:
    """(min, max) of a band with scale/offset applied; raises InputError if it holds no data."""
    ds, band = open_band(ref)
    try:
        try:
            lo, hi = band.ComputeRasterMinMax(True)
        except RuntimeError:
            lo, hi = band.ComputeRasterMinMax(False)
    except RuntimeError:
        raise InputError(problem=f"band {ref.band} holds no valid pixel (all nodata).", layer=ref.label,
                         fix="pick another date/band, or check its nodata value.") from None
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(problem=f"band {ref.band} holds no valid pixel (all nodata).", layer=ref.label,
                         fix="pick another date/band, or check its nodata value.")
    s, o = scale_offset(band)
    a, b = lo * s + o, hi * s + o
    return (min(a, b), max(a, b))


#: Factors tried, largest first, when soil moisture exceeds 1 m³/m³ (×10 is not a convention for it).
SOIL_MOISTURE_FACTORS: tuple[tuple[float, str], ...] = ((0.01, "percent (m³/m³ × 100)"), (0.001, "m³/m³ × 1000"),
                                                      (0.0001, "m³/m³ × 10000"))
#: Factors tried, largest first, for NDVI above 1.5.
NDVI_FACTORS: tuple[tuple[float, str], ...] = ((0.1, "NDVI × 10"), (0.01, "NDVI × 100"), (0.001, "NDVI × 1000"),
                                             (0.0001, "raw MODIS NDVI integers (×10000)"))
#: Raw MODIS LST integers (MOD11/MYD11, scale 0.02 K) lie in this range.
_MODIS_LST_RAW = (7500.0, 65535.0)


def decimal_factor(hi: float, factors: Sequence[tuple[float, str]] = SOIL_MOISTURE_FACTORS,
                   limit: float = 1.0) -> Optional[tuple[float, str]]:
    """The largest of ``factors`` that brings ``hi`` to at most ``limit``, with its name (``None``: none does).

    >>> decimal_factor(45.0), decimal_factor(4500.0), decimal_factor(2e6)
    ((0.01, 'percent (m³/m³ × 100)'), (0.0001, 'm³/m³ × 10000'), None)
    """
    for factor, name in factors:
        if hi * factor <= limit:
            return factor, name
    return None


def _current(ref: BandRef) -> tuple[float, float]:
    """(scale, offset) the band has now (1, 0 when unset)."""
    _, band = open_band(ref)
    return scale_offset(band)


def _scale_fix(ref: BandRef, lo: float, hi: float, scale: float, offset: float = 0.0) -> str:
    """The fix that makes ``ref`` read ``raw × scale + offset``, saying what is set now and what it gives."""
    s, o = _current(ref)
    cmd = f"gdal_edit.py -scale {scale:g}" + (f" -offset {offset:g}" if offset or o else "")
    target = f"{scale:g}" + (f" and its offset to {offset:g}" if offset or o else "")
    how = f" (e.g. `{cmd} \"{os.path.basename(ref.path)}\"`) or rescale it with the Raster Calculator."
    if (s, o) == (1.0, 0.0):
        return f"set its scale factor to {target}{how}"
    raw_lo, raw_hi = sorted(((lo - o) / s, (hi - o) / s))
    now = f"{s:g}" + (f" and offset {o:g}" if o else "")
    return (f"its scale factor is already {now}, which turns the raw values {raw_lo:g} … {raw_hi:g} into "
            f"{lo:g} … {hi:g}; set its scale factor to {target} instead{how}")


def _relative_fix(ref: BandRef, lo: float, hi: float, factor: float) -> str:
    """:func:`_scale_fix` for values that must be multiplied by ``factor`` (on top of any scale set)."""
    s, o = _current(ref)
    return _scale_fix(ref, lo, hi, s * factor, o * factor)


def _soil_moisture_fix(ref: BandRef, lo: float, hi: float) -> tuple[str, str]:
    """(what the values look like, the fix) for soil moisture above 1 m³/m³."""
    found = decimal_factor(hi)
    if found is None:
        return ("values this large are no soil-moisture unit the plugin knows.",
                "check the layer's units and nodata value, and scale it to m³/m³.")
    factor, name = found
    looks = f"this looks like {name}"
    fix = _relative_fix(ref, lo, hi, factor)
    if hi <= 50:
        looks += " or millimetres of water in the top 5 cm"
        fix += f" For millimetres of a 5 cm layer use {_current(ref)[0] * 0.02:g} (1/50) instead."
    return looks + ".", fix


def check_role_values(role: Role, ref: BandRef, lo: float, hi: float) -> None:
    """Raise :class:`InputError` if ``[lo, hi]`` (scale and offset applied) is implausible for ``role``.

    The fix names the scale factor that makes the values plausible; when the layer already has a
    scale factor (or offset), the message says which, what the data look like after it, and
    which factor to set instead.
    """
    rng = f"values from {lo:g} to {hi:g}"
    if role is Role.SOIL_MOISTURE:
        if hi > 1.0:
            looks, fix = _soil_moisture_fix(ref, lo, hi)
            raise InputError(problem=f"{rng}, but volumetric soil moisture in m³/m³ never exceeds 1: {looks}",
                             layer=ref.label, fix=fix)
        if lo < -0.05:
            raise InputError(problem=f"{rng}: soil moisture cannot be negative.", layer=ref.label,
                             fix="set the layer's nodata value (e.g. -9999) so fill values are not read as data.")
    elif role is Role.LST:
        if 150 <= lo and hi <= 380:
            return
        s, o = _current(ref)
        raw_hi = max((lo - o) / s, (hi - o) / s)
        if hi > 1000 or (_MODIS_LST_RAW[0] <= raw_hi <= _MODIS_LST_RAW[1] and (s, o) != (0.02, 0.0)):
            raise InputError(problem=f"{rng}: this looks like raw MODIS LST integers, not kelvin.", layer=ref.label,
                             fix=_scale_fix(ref, lo, hi, 0.02))
        if hi < 120:
            raise InputError(problem=f"{rng}: land surface temperature is expected in kelvin; this looks like °C.",
                             layer=ref.label, fix=_scale_fix(ref, lo, hi, s, o + 273.15))
        raise InputError(problem=f"{rng}: not plausible land surface temperatures in kelvin.", layer=ref.label,
                         fix="check its nodata value and units.")
    elif role is Role.NDVI:
        if hi > 1.5:
            found = decimal_factor(hi, NDVI_FACTORS)
            raise InputError(problem=f"{rng}: NDVI lies between −1 and 1; this looks like "
                             f"{found[1] if found else 'another unit'}.", layer=ref.label,
                             fix=_relative_fix(ref, lo, hi, found[0]) if found else "check its units and nodata value.")
        if lo < -1.01:
            raise InputError(problem=f"{rng}: NDVI lies between −1 and 1.", layer=ref.label,
                             fix="set the layer's nodata value so fill values are not read as data.")
    elif role in (Role.SAND, Role.CLAY):
        if hi > 100:
            raise InputError(problem=f"{rng}: {role.value} content is expected in %; this looks like g/kg (SoilGrids).",
                             layer=ref.label, fix=_relative_fix(ref, lo, hi, 0.1))
        if hi <= 1.0:
            raise InputError(problem=f"{rng}: {role.value} content is expected in %; this looks like a fraction.",
                             layer=ref.label, fix=_relative_fix(ref, lo, hi, 100.0))
        if lo < 0:
            raise InputError(problem=f"{rng}: {role.value} content cannot be negative.", layer=ref.label,
                             fix="set the layer's nodata value.")
    elif role is Role.PH:
        if hi > 14:
            raise InputError(problem=f"{rng}: pH ×10 as in SoilGrids, not pH units.", layer=ref.label,
                             fix=_relative_fix(ref, lo, hi, 0.1))
        if lo < 0:
            raise InputError(problem=f"{rng}: pH cannot be negative.", layer=ref.label, fix="set the layer's nodata value.")
    elif role is Role.DEM:
        if lo < -500 or hi > 9000:
            raise InputError(problem=f"{rng}: not plausible elevations in metres.", layer=ref.label,
                             fix="set the layer's nodata value, or convert it to metres.")
    elif role in (Role.ET, Role.PRECIPITATION):
        if lo < 0:
            raise InputError(problem=f"{rng}: {role.value} cannot be negative.", layer=ref.label,
                             fix="set the layer's nodata value so fill values are not read as data.")
    elif role is Role.LAND_COVER:
        ds, band = open_band(ref)
        if band.DataType in (gdal.GDT_Float32, gdal.GDT_Float64):
            sample = band.ReadAsArray(0, 0, min(ds.RasterXSize, 512), min(ds.RasterYSize, 512))
            sample = sample[np.isfinite(sample)]
            if sample.size and np.any(sample != np.round(sample)):
                raise InputError(problem="it holds fractional values, but land cover must be integer class codes.",
                                 layer=ref.label, fix="use the original classified raster (not a resampled average).")


def check_layer(role: Role, ref: BandRef) -> tuple[float, float]:
    """Check one band for data and plausible units; return its (min, max)."""
    lo, hi = band_range(ref)
    check_role_values(role, ref, lo, hi)
    return lo, hi
