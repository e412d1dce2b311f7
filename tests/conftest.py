"""Fixtures shared by unit and QGIS tests. Nothing here imports QGIS (unit tests run without it).

- ``repo_root``: the checkout (the plugin folder).
- ``shared_data``: ``../shared/data`` beside the checkout; the test is skipped when it is absent
  (a user's clone has no shared/).
- ``make_raster``: writes a small GeoTIFF whose every value the test knows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real sample data not found at {path} (only developers and CI have ../shared)")
    return path


@pytest.fixture
def make_raster(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_raster(name, array, ...) -> Path`` of a GeoTIFF in ``tmp_path``.

    ``array`` is 2-D (one band) or 3-D ``(bands, rows, cols)``. Keywords: ``origin`` (x, y of
    the upper-left corner), ``pixel`` (width, height > 0), ``epsg``, ``nodata``, ``descriptions``
    (one per band), ``scale``/``offset`` (applied to every band).

    Example: ``make_raster("sm_20180131.tif", np.full((3, 4), 0.25, np.float32), epsg=32618)``.
    """
    from osgeo import gdal, osr

    gdal.UseExceptions()
    dtypes = {
        np.dtype("float32"): gdal.GDT_Float32,
        np.dtype("float64"): gdal.GDT_Float64,
        np.dtype("int16"): gdal.GDT_Int16,
        np.dtype("uint16"): gdal.GDT_UInt16,
        np.dtype("int32"): gdal.GDT_Int32,
        np.dtype("uint8"): gdal.GDT_Byte,
    }

    def make(
        name: str,
        array: np.ndarray,
        *,
        origin: tuple[float, float] = (500000.0, 4400000.0),
        pixel: tuple[float, float] = (1000.0, 1000.0),
        epsg: int = 32618,
        nodata: Optional[float] = None,
        descriptions: Optional[Sequence[str]] = None,
        scale: Optional[float] = None,
        offset: Optional[float] = None,
    ) -> Path:
        data = np.asarray(array)
        data = data[None] if data.ndim == 2 else data
        path = tmp_path / name
        ds = gdal.GetDriverByName("GTiff").Create(
            str(path), data.shape[2], data.shape[1], data.shape[0], dtypes[data.dtype]
        )
        ds.SetGeoTransform((origin[0], pixel[0], 0.0, origin[1], 0.0, -pixel[1]))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
        for i, plane in enumerate(data, start=1):
            band = ds.GetRasterBand(i)
            band.WriteArray(plane)
            if nodata is not None:
                band.SetNoDataValue(nodata)
            if descriptions is not None:
                band.SetDescription(descriptions[i - 1])
            if scale is not None:
                band.SetScale(scale)
            if offset is not None:
                band.SetOffset(offset)
            band = None
        ds = None  # flush and close
        return path

    return make
