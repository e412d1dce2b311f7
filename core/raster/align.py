"""Reading any source raster band on a target grid (reprojection + resampling on the fly).

A source band is wrapped in a GDAL warped VRT on the target grid, so blocks of the target
grid are read (and warped) one at a time: memory follows the block, not the grid.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from osgeo import gdal

from ..errors import InputError
from .grid import Grid, Window, transform_bounds

gdal.UseExceptions()


@dataclass(frozen=True)
class BandRef:
    """One band of a raster file: what a layer (or one date of it) points at."""

    path: str
    band: int = 1
    name: str = ""  # the layer name shown to the user, used in messages
    date: Optional[_dt.date] = None

    @property
    def label(self) -> str:
        return self.name or self.path


def open_band(ref: BandRef) -> tuple[gdal.Dataset, gdal.Band]:
    try:
        ds = gdal.Open(ref.path)
    except RuntimeError as e:
        raise InputError(problem=f"GDAL cannot open '{ref.path}' ({e}).", layer=ref.label,
                         fix="check the file exists and is a raster GDAL reads.") from None
    if ref.band < 1 or ref.band > ds.RasterCount:
        raise InputError(problem=f"it has {ds.RasterCount} band(s), band {ref.band} was asked for.", layer=ref.label,
                         fix="pick an existing band.")
    return ds, ds.GetRasterBand(ref.band)


def scale_offset(band: gdal.Band) -> tuple[float, float]:
    s = band.GetScale()
    o = band.GetOffset()
    return (1.0 if s in (None, 0) else float(s)), (0.0 if o is None else float(o))


def source_grid(ref: BandRef) -> Grid:
    ds, _ = open_band(ref)
    return Grid.from_dataset(ds, ref.label)


def choose_resampling(src: Grid, dst: Grid, categorical: bool) -> str:
    """``average``/``mode`` when the source is finer than the target, else ``bilinear``/``near``."""
    b = transform_bounds(src.bounds, src.crs_wkt, dst.crs_wkt)
    src_dx = (b[2] - b[0]) / src.width
    finer = src_dx < dst.dx * 0.999
    if categorical:
        return "mode" if finer else "near"
    return "average" if finer else "bilinear"


class AlignedBand:
    """A source band seen on ``grid``: ``read(window)`` gives float32 with NaN for no data,
    GDAL scale/offset applied."""

    def __init__(self, ref: BandRef, grid: Grid, categorical: bool = False,
                 resampling: Optional[str] = None) -> None:
        self.ref = ref
        self.grid = grid
        self.categorical = categorical
        src_ds, band = open_band(ref)
        src = Grid.from_dataset(src_ds, ref.label)
        self.resampling = resampling or choose_resampling(src, grid, categorical)
        self._scale, self._offset = scale_offset(band)
        nodata = band.GetNoDataValue()
        # Select the band first (GDAL 3.6 warp has no band selection), keeping its nodata.
        sel = gdal.Translate("", src_ds, format="VRT", bandList=[ref.band])
        self._ds = gdal.Warp(
            "", sel, format="VRT", dstSRS=grid.crs_wkt, outputBounds=grid.bounds,
            width=grid.width, height=grid.height, resampleAlg=self.resampling,
            outputType=gdal.GDT_Float32, dstNodata=float("nan"),
            srcNodata=nodata if nodata is not None else None, errorThreshold=0.125,
        )
        self._src_ds = src_ds  # keep the source alive while the VRT reads it
        self._band = self._ds.GetRasterBand(1)

    def read(self, window: Optional[Window] = None) -> np.ndarray:
        w = window or Window(0, self.grid.height)
        a = self._band.ReadAsArray(0, w.row0, self.grid.width, w.nrows).astype(np.float32, copy=False)
        if self._scale != 1.0 or self._offset != 0.0:
            a = a * np.float32(self._scale) + np.float32(self._offset)
        return a


def read_full(ref: BandRef) -> tuple[np.ndarray, Grid]:
    """Whole band on its own grid (for small, coarse layers), scale/offset applied, nodata → NaN."""
    ds, band = open_band(ref)
    grid = Grid.from_dataset(ds, ref.label)
    raw = band.ReadAsArray()
    a = raw.astype(np.float64)
    nd = band.GetNoDataValue()
    if nd is not None:
        a[np.isnan(a) if math.isnan(nd) else (raw == np.asarray(nd).astype(raw.dtype))] = np.nan
    s, o = scale_offset(band)
    return (a * s + o).astype(np.float32), grid
