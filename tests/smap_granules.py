"""Small SMAP HDF5 granules built by the tests (no real granule is available here).

They follow the documented layout of the NSIDC products (groups, dataset names, attributes,
fill values, flag bits), with every cell empty except the few a test sets:

- SPL3SMP / SPL3SMP_E (``SMAP_L3_SM_P_YYYYMMDD_R18290_001.h5`` /
  ``SMAP_L3_SM_P_E_YYYYMMDD_R18290_001.h5``): groups ``Soil_Moisture_Retrieval_Data_AM`` with
  ``soil_moisture``, ``retrieval_qual_flag``, ``latitude``, ``longitude``, and
  ``Soil_Moisture_Retrieval_Data_PM`` with the same names suffixed ``_pm``; ``soil_moisture``
  float32, units ``cm**3/cm**3``, ``_FillValue`` −9999, ``valid_min`` 0.02, ``valid_max`` 0.5;
  ``retrieval_qual_flag`` uint16, ``_FillValue`` 65534, bit 0 = 1 "not recommended quality";
  ``Metadata/Extent`` ``rangeBeginningDateTime``. 406 × 964 cells (36 km) or 1624 × 3856 (9 km).
- SPL4SMGP (``SMAP_L4_SM_gph_YYYYMMDDThhmmss_Vv7032_001.h5``): ``Geophysical_Data/sm_surface`` and
  ``sm_rootzone``, float32 m³/m³, ``_FillValue`` −9999; 1624 × 3856 cells.

The 36 km granules carry ``latitude``/``longitude`` of the cell centres (as real ones do; GDAL
turns them into control points), computed here from the EASE-Grid 2.0 definition with a PROJ
string, not from EPSG:6933. Needs Debian's ``python3-h5py`` (a test module using this skips
without it; never pip-install h5py into QGIS's Python).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
from osgeo import osr

#: WGS84 and the EASE-Grid 2.0 global definition (Brodzik et al. 2012): Lambert cylindrical
#: equal-area, true at ±30°; the 36 km grid is 964 × 406 cells spanning the whole circumference.
WGS84_A, WGS84_E2 = 6378137.0, 0.0066943799901413165
EASE2_SHAPES = {36: (406, 964), 9: (1624, 3856)}


def ease2_cell_size(km: int) -> float:
    """Cell size (m) of the global EASE-Grid 2.0 from its definition: circumference at 30° / columns."""
    k0 = math.cos(math.radians(30)) / math.sqrt(1 - WGS84_E2 * math.sin(math.radians(30)) ** 2)
    return 2 * math.pi * WGS84_A * k0 / EASE2_SHAPES[km][1]


def ease2_centre_lonlat(km: int, row: int, col: int) -> tuple[float, float]:
    """Longitude and latitude of a cell centre, inverting the projection with PROJ (+proj=cea +lat_ts=30)."""
    size = ease2_cell_size(km)
    rows, cols = EASE2_SHAPES[km]
    x = (col + 0.5 - cols / 2) * size
    y = (rows / 2 - row - 0.5) * size
    cea, wgs = _cea_and_wgs84()
    lon, lat, _ = osr.CoordinateTransformation(cea, wgs).TransformPoint(x, y)
    return lon, lat


def ease2_cell_of(km: int, lon: float, lat: float) -> tuple[int, int]:
    """(row, col) of the cell holding a WGS84 point, projecting it with PROJ (+proj=cea +lat_ts=30)."""
    cea, wgs = _cea_and_wgs84()
    x, y, _ = osr.CoordinateTransformation(wgs, cea).TransformPoint(lon, lat)
    size = ease2_cell_size(km)
    rows, cols = EASE2_SHAPES[km]
    return int(math.floor(rows / 2 - y / size)), int(math.floor(x / size + cols / 2))


def _cea_and_wgs84():
    cea = osr.SpatialReference()
    cea.ImportFromProj4("+proj=cea +lon_0=0 +lat_ts=30 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    for srs in (cea, wgs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return cea, wgs


def _h5py():
    import pytest

    return pytest.importorskip("h5py", reason="Debian's python3-h5py builds the SMAP fixtures (apt-get install python3-h5py)")


def _grid(shape: tuple[int, int], cells: Mapping[tuple[int, int], float], fill: float, dtype) -> np.ndarray:
    a = np.full(shape, fill, dtype=dtype)
    for (r, c), v in cells.items():
        a[r, c] = v
    return a


def write_l3(folder: Path, date: str, km: int = 36, am: Optional[Mapping[tuple[int, int], float]] = None,
             pm: Optional[Mapping[tuple[int, int], float]] = None,
             am_flags: Optional[Mapping[tuple[int, int], int]] = None,
             pm_flags: Optional[Mapping[tuple[int, int], int]] = None, name: Optional[str] = None) -> Path:
    """An SPL3SMP (``km=36``) or SPL3SMP_E (``km=9``) granule of ``date`` (YYYYMMDD).

    ``am``/``pm`` map (row, col) → soil moisture; the quality flag of a set cell is 0
    (recommended) unless ``am_flags``/``pm_flags`` give another value; unset cells are fill.
    """
    h5py = _h5py()
    shape = EASE2_SHAPES[km]
    default = f"SMAP_L3_SM_P_{date}_R18290_001.h5" if km == 36 else f"SMAP_L3_SM_P_E_{date}_R18290_001.h5"
    path = Path(folder) / (name or default)
    with h5py.File(path, "w") as f:
        for group, suffix, values, flags in (("Soil_Moisture_Retrieval_Data_AM", "", am or {}, am_flags or {}),
                                             ("Soil_Moisture_Retrieval_Data_PM", "_pm", pm or {}, pm_flags or {})):
            g = f.create_group(group)
            sm = g.create_dataset("soil_moisture" + suffix, data=_grid(shape, values, -9999.0, np.float32),
                                  chunks=(min(shape[0], 256), min(shape[1], 256)), compression="gzip")
            sm.attrs["units"] = np.bytes_("cm**3/cm**3")
            sm.attrs["long_name"] = np.bytes_("Representative soil moisture measurement for the Earth based grid cell.")
            sm.attrs["_FillValue"] = np.float32(-9999.0)
            sm.attrs["valid_min"] = np.float32(0.02)
            sm.attrs["valid_max"] = np.float32(0.5)
            qual = {k: flags.get(k, 0) for k in values}
            qual.update(flags)
            q = g.create_dataset("retrieval_qual_flag" + suffix, data=_grid(shape, qual, 65534, np.uint16),
                                 chunks=(min(shape[0], 256), min(shape[1], 256)), compression="gzip")
            q.attrs["_FillValue"] = np.uint16(65534)
            q.attrs["flag_masks"] = np.bytes_("1s, 2s, 4s, 8s")
            q.attrs["flag_meanings"] = np.bytes_("Retrieval_recommended Retrieval_attempted Retrieval_success "
                                                 "FT_retrieval_success")
            if km == 36:
                lat, lon = _centres(km)
                g.create_dataset("latitude" + suffix, data=lat, compression="gzip")
                g.create_dataset("longitude" + suffix, data=lon, compression="gzip")
        ext = f.create_group("Metadata/Extent")
        ext.attrs["rangeBeginningDateTime"] = np.bytes_(f"{date[:4]}-{date[4:6]}-{date[6:]}T00:00:00.000Z")
        ext.attrs["rangeEndingDateTime"] = np.bytes_(f"{date[:4]}-{date[4:6]}-{date[6:]}T23:59:59.999Z")
    return path


def write_l4(folder: Path, stamp: str, surface: Mapping[tuple[int, int], float],
             rootzone: Optional[Mapping[tuple[int, int], float]] = None) -> Path:
    """An SPL4SMGP granule of ``stamp`` (YYYYMMDDThhmmss, the centre of its 3-hour step)."""
    h5py = _h5py()
    shape = EASE2_SHAPES[9]
    path = Path(folder) / f"SMAP_L4_SM_gph_{stamp}_Vv7032_001.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("Geophysical_Data")
        for name, cells in (("sm_surface", surface), ("sm_rootzone", rootzone or {})):
            d = g.create_dataset(name, data=_grid(shape, cells, -9999.0, np.float32), chunks=(256, 256), compression="gzip")
            d.attrs["units"] = np.bytes_("m3 m-3")
            d.attrs["_FillValue"] = np.float32(-9999.0)
            d.attrs["valid_min"] = np.float32(0.0)
            d.attrs["valid_max"] = np.float32(0.9)
    return path


def _centres(km: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of every cell centre (float32), from the PROJ inversion of rows and columns."""
    rows, cols = EASE2_SHAPES[km]
    lats = np.array([ease2_centre_lonlat(km, r, 0)[1] for r in range(rows)], dtype=np.float32)
    lons = (-180.0 + (np.arange(cols) + 0.5) * 360.0 / cols).astype(np.float32)
    return np.repeat(lats[:, None], cols, axis=1), np.repeat(lons[None, :], rows, axis=0)
