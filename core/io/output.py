"""Writing results a user keeps: atomic tiled GeoTIFFs, QML styles and JSON run logs.

Every file is written under a temporary name in the destination folder and renamed into
place only when complete, so a failed or cancelled run leaves nothing half-written.
"""
from __future__ import annotations

import json
import math
import os
import queue
import tempfile
import threading
from typing import Any, Optional, Sequence

import numpy as np
from osgeo import gdal

from .atomic import atomic_write_text
from ..raster.grid import Grid, Window

gdal.UseExceptions()

_CREATE_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "PREDICTOR=3",
                   "BIGTIFF=IF_SAFER", "INTERLEAVE=BAND"]


def _temp_name(path: str, suffix: str) -> str:
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".part-", suffix=suffix, dir=folder)
    os.close(fd)
    return tmp


class RasterWriter:
    """A float32 multi-band GeoTIFF written block by block, then renamed into place.

    Use as a context manager: leaving the block with an exception removes the temporary file.

    Parameters
    ----------
    path : str
        Final file name (``.tif``).
    grid : Grid
        Grid of every band.
    band_names : sequence of str
        Band descriptions (ISO dates for a time series).
    temporary : bool
        A scratch file (no compression, no overviews) that :meth:`discard` removes.
    write_behind : int
        Blocks queued for a writer thread (0 = write in the caller's thread). The caller goes on
        computing while GDAL compresses and writes (it releases the GIL); at most this many blocks
        wait, so memory stays bounded. :meth:`read`, :meth:`commit` and :meth:`discard` wait for
        the queue first; a write error is raised by the next call.
    """

    def __init__(self, path: str, grid: Grid, band_names: Sequence[str],
                 metadata: Optional[dict[str, str]] = None, temporary: bool = False,
                 write_behind: int = 0) -> None:
        self.path = path
        self.grid = grid
        self.temporary = temporary
        self._tmp = _temp_name(path, ".tif")
        opts = ["TILED=YES", "BIGTIFF=IF_SAFER"] if temporary else _CREATE_OPTIONS
        drv = gdal.GetDriverByName("GTiff")
        self._ds = drv.Create(self._tmp, grid.width, grid.height, len(band_names), gdal.GDT_Float32, opts)
        self._ds.SetGeoTransform(grid.transform)
        self._ds.SetProjection(grid.crs_wkt)
        for i, name in enumerate(band_names):
            b = self._ds.GetRasterBand(i + 1)
            b.SetNoDataValue(float("nan"))
            b.SetDescription(str(name))
        if metadata:
            self._ds.SetMetadata({k: str(v) for k, v in metadata.items()})
        self.n_bands = len(band_names)
        self._queue: Optional[queue.Queue] = None
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        if write_behind > 0:
            self._queue = queue.Queue(maxsize=int(write_behind))
            self._thread = threading.Thread(target=self._write_queued, name="smds-write-behind", daemon=True)
            self._thread.start()

    def write(self, band: int, window: Window, values: np.ndarray) -> None:
        """Write ``values`` (``window.nrows × grid.width``) into 0-based ``band`` (queued with
        ``write_behind``: do not modify ``values`` afterwards)."""
        values = np.asarray(values, dtype=np.float32)
        if self._queue is None:
            self._ds.GetRasterBand(band + 1).WriteArray(values, 0, window.row0)
            return
        self._raise_error()
        self._queue.put((band, window.row0, values))

    def _write_queued(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:  # after an error, the rest is dropped (the file is discarded)
                    band, row0, values = item
                    self._ds.GetRasterBand(band + 1).WriteArray(values, 0, row0)
            except BaseException as e:  # noqa: BLE001 - raised in the caller's thread
                self._error = e
            finally:
                self._queue.task_done()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        """Wait until every queued block is written, stop the writer thread; raise its error."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            self._queue = None
        self._raise_error()

    def read(self, band: int, window: Window) -> np.ndarray:
        """Read back a block (for scratch files)."""
        if self._queue is not None:
            self._queue.join()
            self._raise_error()
        return self._ds.GetRasterBand(band + 1).ReadAsArray(0, window.row0, self.grid.width, window.nrows)

    def commit(self, overviews: bool = True) -> str:
        """Compute statistics and overviews, close, and rename to the final name."""
        self._drain()
        ds = self._ds
        if overviews:
            levels, f = [], 2
            while max(self.grid.width, self.grid.height) / f >= 128:
                levels.append(f)
                f *= 2
            if levels:
                ds.BuildOverviews("AVERAGE", levels)
        ds.FlushCache()
        self._ds = None
        ds = None
        os.chmod(self._tmp, 0o644)  # mkstemp made it 0600; outputs are ordinary files
        os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        if self._thread is not None:
            self._error = self._error or RuntimeError("discarded")  # the queued blocks are dropped
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            self._queue = None
        self._ds = None
        for p in (self._tmp, self._tmp + ".aux.xml", self._tmp + ".ovr"):
            if os.path.exists(p):
                os.remove(p)

    def __enter__(self) -> "RasterWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self.temporary:
            self.discard()


def write_text_atomic(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, text)
    return path


def write_json_atomic(path: str, obj: Any) -> str:
    return write_text_atomic(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating,)):
        v = float(o)
        return None if math.isnan(v) else v
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


# --------------------------------------------------------------------------- styles
#: Brown (dry) → green → blue (wet), for volumetric soil moisture in m³/m³.
SOIL_MOISTURE_RAMP = ((0.0, "#8c510a"), (0.1, "#d8b365"), (0.2, "#f6e8c3"), (0.3, "#5ab4ac"),
                      (0.4, "#2c7fb8"), (0.5, "#253494"))
SPREAD_RAMP = ((0.0, "#ffffcc"), (0.02, "#fed976"), (0.04, "#fd8d3c"), (0.06, "#e31a1c"), (0.08, "#800026"))


def qml_pseudocolor(ramp: Sequence[tuple[float, str]], band: int = 1, label_units: str = "m³/m³",
                    opacity: float = 1.0) -> str:
    """QGIS style (QML) of a single-band pseudocolour raster with an interpolated ramp."""
    lo, hi = ramp[0][0], ramp[-1][0]
    items = "\n".join(
        f'          <item alpha="255" value="{v:g}" label="{v:g} {label_units}" color="{c}"/>' for v, c in ramp)
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="{band}" opacity="{opacity:g}" alphaBand="-1"
                    classificationMin="{lo:g}" classificationMax="{hi:g}" nodataColor="">
      <rasterTransparency/>
      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor></minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0"
                         minimumValue="{lo:g}" maximumValue="{hi:g}">
{items}
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>
    <rasterresampler maxOversample="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def write_soil_moisture_style(raster_path: str, band: int = 1) -> str:
    """Write ``<raster>.qml`` (QGIS loads it as the layer's default style)."""
    return write_text_atomic(os.path.splitext(raster_path)[0] + ".qml", qml_pseudocolor(SOIL_MOISTURE_RAMP, band))
