"""Plausibility of each layer's values for its role, checked before anything runs."""
from __future__ import annotations

import math
import os
from typing import Optional

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


def _scale_fix(ref: BandRef, factor: str, offset: Optional[str] = None) -> str:
    cmd = f"gdal_edit.py -scale {factor}" + (f" -offset {offset}" if offset else "")
    return (f"set its scale factor to {factor}" + (f" and offset to {offset}" if offset else "")
            + f" (e.g. `{cmd} \"{os.path.basename(ref.path)}\"`) or rescale it with the Raster Calculator.")


def check_role_values(role: Role, ref: BandRef, lo: float, hi: float) -> None:
    """Raise :class:`InputError` if ``[lo, hi]`` is implausible for ``role``."""
    rng = f"values from {lo:g} to {hi:g}"
    if role is Role.SOIL_MOISTURE:
        if hi > 1.0:
            raise InputError(
                problem=f"{rng}, but volumetric soil moisture in m³/m³ never exceeds 1: this looks like percent "
                "(÷100) or millimetres of water in the top layer (÷ the layer depth in mm, e.g. 50 for 5 cm).",
                layer=ref.label, fix=_scale_fix(ref, "0.01") + " For mm, use 1/depth in mm (0.02 for 50 mm).")
        if lo < -0.05:
            raise InputError(problem=f"{rng}: soil moisture cannot be negative.", layer=ref.label,
                             fix="set the layer's nodata value (e.g. -9999) so fill values are not read as data.")
    elif role is Role.LST:
        if hi > 1000:
            raise InputError(problem=f"{rng}: this looks like raw MODIS LST integers, not kelvin.", layer=ref.label,
                             fix=_scale_fix(ref, "0.02"))
        if hi < 120:
            raise InputError(problem=f"{rng}: land surface temperature is expected in kelvin; this looks like °C.",
                             layer=ref.label, fix=_scale_fix(ref, "1", "273.15"))
        if lo < 150 or hi > 380:
            raise InputError(problem=f"{rng}: not plausible land surface temperatures in kelvin.", layer=ref.label,
                             fix="check its nodata value and units.")
    elif role is Role.NDVI:
        if hi > 1.5:
            raise InputError(problem=f"{rng}: this looks like raw MODIS NDVI integers (×10000), not −1…1.", layer=ref.label,
                             fix=_scale_fix(ref, "0.0001"))
        if lo < -1.01:
            raise InputError(problem=f"{rng}: NDVI lies between −1 and 1.", layer=ref.label,
                             fix="set the layer's nodata value so fill values are not read as data.")
    elif role in (Role.SAND, Role.CLAY):
        if hi > 100:
            raise InputError(problem=f"{rng}: {role.value} content is expected in %; this looks like g/kg (SoilGrids).",
                             layer=ref.label, fix=_scale_fix(ref, "0.1"))
        if hi <= 1.0:
            raise InputError(problem=f"{rng}: {role.value} content is expected in %; this looks like a fraction.",
                             layer=ref.label, fix=_scale_fix(ref, "100"))
        if lo < 0:
            raise InputError(problem=f"{rng}: {role.value} content cannot be negative.", layer=ref.label,
                             fix="set the layer's nodata value.")
    elif role is Role.PH:
        if hi > 14:
            raise InputError(problem=f"{rng}: pH ×10 as in SoilGrids, not pH units.", layer=ref.label, fix=_scale_fix(ref, "0.1"))
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
