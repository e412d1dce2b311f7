"""Product import: real ESA CCI NetCDF files (../shared/data) and SMAP HDF5 granules built here.

No real SMAP granule is available: ``tests/smap_granules.py`` writes granules that follow the
documented NSIDC layout (groups, dataset names, fill values, flag bits) with a few known cells.
Georeferencing is checked against cell centres computed in the test from the EASE-Grid 2.0
definition (Lambert cylindrical equal-area true at 30° on WGS84, inverted with a PROJ string),
not from the EPSG:6933 code the reader uses; the ESA CCI grid against the files' own lat/lon
variables.
"""
from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from core.errors import Canceled, InputError
from core.evaluation.stations import Station, sample_raster
from core.io import products
from core.io.products import ESA_CCI, SPL3SMP, SPL3SMP_E, SPL4SMGP, ProductOptions, identify, import_products
from tests.smap_granules import EASE2_SHAPES, ease2_cell_size, ease2_centre_lonlat, write_l3, write_l4

gdal.UseExceptions()


def _cci_files(shared_data: Path) -> list[str]:
    files = sorted(str(p) for p in (shared_data / "esa_cci_netcdf").glob("ESACCI-*.nc"))
    assert len(files) == 5
    return files


def _bands(path: str) -> tuple[np.ndarray, list[str], gdal.Dataset]:
    ds = gdal.Open(path)
    return ds.ReadAsArray().reshape(ds.RasterCount, ds.RasterYSize, ds.RasterXSize), \
        [ds.GetRasterBand(b + 1).GetDescription() for b in range(ds.RasterCount)], ds


# --------------------------------------------------------------------------- ESA CCI (real files)


def test_esa_cci_grid_matches_the_files_coordinate_variables(shared_data):
    path = _cci_files(shared_data)[0]
    f = identify(path)
    assert f.product == ESA_CCI and f.date == dt.date(2016, 12, 27)  # from time = 17162 days since 1970
    lat = gdal.Open(f'NETCDF:"{path}":lat').ReadAsArray().ravel()
    lon = gdal.Open(f'NETCDF:"{path}":lon').ReadAsArray().ravel()
    xs, ys = f.grid.centers()
    # the lat variable may run south→north in the file; the grid is north-up
    assert np.allclose(np.sort(ys), np.sort(lat)) and ys[0] == pytest.approx(lat.max())
    assert np.allclose(xs, np.sort(lon))
    assert f.grid.srs.GetAuthorityCode(None) == "4326"


def test_esa_cci_cut_values_flags_and_dates(shared_data, tmp_path):
    files = _cci_files(shared_data)
    out = str(tmp_path / "cci.tif")
    bounds = (-100.1, 30.0, -90.0, 40.05)  # cells intersecting: lon −100.25…−90, lat 30…40.25
    result = import_products(files, out, bounds, "EPSG:4326")
    assert result.dates == [dt.date(2016, 12, d) for d in range(27, 32)]
    data, names, ds = _bands(out)
    assert names == [d.isoformat() for d in result.dates]
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Float32
    assert ds.GetGeoTransform() == pytest.approx((-100.25, 0.25, 0, 40.25, 0, -0.25))
    assert data.shape == (5, 41, 41)
    # expected: the same window read here from the file, fill and flags masked
    for b, path in enumerate(files):
        sm = gdal.Open(f'NETCDF:"{path}":sm').ReadAsArray(319, 199, 41, 41).astype(np.float32)
        flag = gdal.Open(f'NETCDF:"{path}":flag').ReadAsArray(319, 199, 41, 41)
        expect = np.where((sm == -9999) | (flag != 0), np.nan, sm)
        assert np.array_equal(data[b], expect, equal_nan=True)
        assert result.valid[b] == int(np.isfinite(expect).sum()) > 300
    assert np.nanmax(data) <= 1.0 and np.nanmin(data) >= 0.0
    assert Path(out).with_suffix(".qml").exists()


def test_esa_cci_dates_without_a_valid_cell_are_left_out(shared_data, tmp_path):
    files = _cci_files(shared_data)
    delaware = (-76.5, 37.75, -74.5, 40.25)  # 8 × 10 cells: columns 414…421, rows 199…208
    counts = []
    for path in files:
        sm = gdal.Open(f'NETCDF:"{path}":sm').ReadAsArray(414, 199, 8, 10)
        flag = gdal.Open(f'NETCDF:"{path}":flag').ReadAsArray(414, 199, 8, 10)
        counts.append(int(((sm != -9999) & (flag == 0)).sum()))
    assert 0 in counts and max(counts) > 0  # winter: some days have nothing over Delaware
    res = import_products(files, str(tmp_path / "de.tif"), delaware, "EPSG:4326")
    kept = [dt.date(2016, 12, 27 + k) for k, n in enumerate(counts) if n > 0]
    assert res.dates == kept and res.valid == [n for n in counts if n > 0]
    assert sum("left out (no valid cell)" in line for line in res.log) == counts.count(0)
    assert gdal.Open(str(tmp_path / "de.tif")).RasterCount == len(kept)
    every = import_products(files, str(tmp_path / "all.tif"), delaware, "EPSG:4326", ProductOptions(drop_empty=False))
    assert every.valid == counts
    with pytest.raises(InputError, match="no date has a valid cell"):
        import_products(files, str(tmp_path / "sea.tif"), (-30.0, -10.0, -29.0, -9.0), "EPSG:4326")  # Atlantic


def test_esa_cci_reads_only_the_window(shared_data, tmp_path, monkeypatch):
    reads = []
    real_open = products._open

    class Band:
        def __init__(self, band):
            self._band = band

        def ReadAsArray(self, *args):  # noqa: N802
            reads.append(args)
            return self._band.ReadAsArray(*args)

        def __getattr__(self, name):
            return getattr(self._band, name)

    class Dataset:
        def __init__(self, ds):
            self._ds = ds

        def GetRasterBand(self, i):  # noqa: N802
            return Band(self._ds.GetRasterBand(i))

        def __getattr__(self, name):
            return getattr(self._ds, name)

    monkeypatch.setattr(products, "_open", lambda name, path: Dataset(real_open(name, path)))
    import_products(_cci_files(shared_data)[:1], str(tmp_path / "one.tif"), (10.0, 40.0, 12.0, 41.0), "EPSG:4326",
                    ProductOptions(drop_empty=False))
    assert reads and all(args[2] * args[3] <= 8 * 4 for args in reads), reads  # 8 × 4 cells, never the globe


# --------------------------------------------------------------------------- SMAP L3 (fixtures)


def _station_at(km: int, row: int, col: int, sid: str) -> Station:
    lon, lat = ease2_centre_lonlat(km, row, col)
    return Station(sid, lat, lon)


def test_smap_l3_georeferencing_against_ease2_definition(tmp_path):
    # cells near Delaware and near the grid's corners; values tell them apart
    cells = {(98, 288): 0.11, (99, 290): 0.22, (0, 0): 0.33, (405, 963): 0.44}
    path = write_l3(tmp_path, "20180105", 36, am=cells)
    raw = gdal.Open(f'HDF5:"{path}"://Soil_Moisture_Retrieval_Data_AM/soil_moisture')
    assert raw.GetGeoTransform(can_return_null=True) is None and raw.GetGCPCount() > 0  # what GDAL gives
    f = identify(str(path))
    assert f.product == SPL3SMP and f.date == dt.date(2018, 1, 5)
    size = ease2_cell_size(36)
    assert f.grid.dx == pytest.approx(size, abs=1e-6) and size == pytest.approx(36032.22, abs=0.01)
    assert f.grid.x0 == pytest.approx(-964 / 2 * size, abs=1e-3)
    assert f.grid.y0 == pytest.approx(406 / 2 * size, abs=1e-3)

    out = str(tmp_path / "smap.tif")
    result = import_products([str(path)], out)
    ds = gdal.Open(out)
    assert ds.GetGCPCount() == 0 and ds.GetSpatialRef().GetAuthorityCode(None) == "6933"
    assert (ds.RasterXSize, ds.RasterYSize) == (964, 406) and result.valid == [4]
    stations = [_station_at(36, r, c, f"{r}_{c}") for r, c in cells]
    _, values = sample_raster(out, stations)
    assert values[0] == pytest.approx(list(cells.values()), abs=1e-7)
    # the definition's symmetries: longitude linear in the column, the equator between rows 202 and 203
    lon, _ = ease2_centre_lonlat(36, 98, 288)
    assert lon == pytest.approx(-180 + 288.5 * 360 / 964)
    north, south = ease2_centre_lonlat(36, 202, 0)[1], ease2_centre_lonlat(36, 203, 0)[1]
    assert north > 0 and north == pytest.approx(-south)


def test_smap_l3e_georeferencing_and_cut(tmp_path):
    cells = {(395, 1155): 0.25, (396, 1157): 0.35}
    path = write_l3(tmp_path, "20180106", 9, am=cells)
    assert identify(str(path)).product == SPL3SMP_E
    out = str(tmp_path / "smap9.tif")
    lon0, lat0 = ease2_centre_lonlat(9, 395, 1155)
    result = import_products([str(path)], out, (lon0 - 0.2, lat0 - 0.2, lon0 + 0.3, lat0 + 0.1), "EPSG:4326")
    ds = gdal.Open(out)
    size = ease2_cell_size(9)
    gt = ds.GetGeoTransform()
    col0 = round((gt[0] + 3856 / 2 * size) / size)
    row0 = round((1624 / 2 * size - gt[3]) / size)
    assert gt[0] == pytest.approx(-3856 / 2 * size + col0 * size, abs=1e-3) and gt[1] == pytest.approx(size)
    assert row0 <= 395 < row0 + ds.RasterYSize and col0 <= 1157 < col0 + ds.RasterXSize
    assert ds.RasterXSize < 12 and ds.RasterYSize < 12
    _, values = sample_raster(out, [_station_at(9, r, c, str(c)) for r, c in cells])
    assert values[0] == pytest.approx([0.25, 0.35], abs=1e-7)
    assert result.valid == [2]


def test_smap_l3_am_pm_merge_flags_and_valid_range(tmp_path):
    A, B, C, D, E = (100, 300), (100, 301), (100, 302), (100, 303), (100, 304)
    am = {A: 0.10, C: 0.30, D: 0.60, E: 0.15}           # D above valid_max 0.5
    pm = {A: 0.20, B: 0.25, C: 0.35, D: 0.40}
    path = write_l3(tmp_path, "20180107", 36, am=am, pm=pm, am_flags={C: 1, E: 0b1110}, pm_flags={B: 0})
    stations = [_station_at(36, r, c, k) for k, (r, c) in zip("ABCDE", (A, B, C, D, E))]

    def run(**kw):
        out = str(tmp_path / f"m_{len(list(tmp_path.iterdir()))}.tif")
        res = import_products([str(path)], out, options=ProductOptions(**kw))
        return sample_raster(out, stations)[1][0], res

    nan = np.nan
    merged, res = run()  # AM first, PM fills: A=AM; B=PM; C AM not recommended → PM; D AM out of range → PM; E AM (bits 1–3 only)
    assert merged == pytest.approx([0.10, 0.25, 0.35, 0.40, 0.15], abs=1e-7)
    assert "AM removed by quality flag: 1" in res.log[0] and "AM out of valid range: 1" in res.log[0]
    assert "PM filled: 3" in res.log[0]
    mean, _ = run(passes="mean")
    assert mean == pytest.approx([0.15, 0.25, 0.35, 0.40, 0.15], abs=1e-7)
    am_only, _ = run(passes="am")
    assert np.allclose(am_only, [0.10, nan, nan, nan, 0.15], equal_nan=True)
    pm_only, _ = run(passes="pm")
    assert np.allclose(pm_only, [0.20, 0.25, 0.35, 0.40, nan], equal_nan=True, atol=1e-7)
    all_quality, _ = run(passes="am", recommended_only=False)
    assert np.allclose(all_quality, [0.10, nan, 0.30, nan, 0.15], equal_nan=True, atol=1e-7)


def test_smap_l3_dates_sorted_and_duplicates_refused(tmp_path):
    a = write_l3(tmp_path, "20180109", 36, am={(10, 10): 0.2})
    b = write_l3(tmp_path, "20180108", 36, am={(10, 10): 0.3})
    out = str(tmp_path / "two.tif")
    lon, lat = ease2_centre_lonlat(36, 10, 10)
    res = import_products([str(a), str(b)], out, (lon - 1, lat - 1, lon + 1, lat + 1), "EPSG:4326")
    data, names, _ = _bands(out)
    assert names == ["2018-01-08", "2018-01-09"] and res.dates == [dt.date(2018, 1, 8), dt.date(2018, 1, 9)]
    c = write_l3(tmp_path, "20180108", 36, am={(10, 10): 0.4}, name="SMAP_L3_SM_P_20180108_R19240_002.h5")
    with pytest.raises(InputError, match="date 2018-01-08 is also the date of"):
        import_products([str(b), str(c)], str(tmp_path / "dup.tif"))
    e = write_l3(tmp_path, "20180108", 9, am={(10, 10): 0.4})
    with pytest.raises(InputError, match="one output holds one product"):
        import_products([str(a), str(e)], str(tmp_path / "mixed.tif"))


def test_extent_outside_and_cancel_leave_nothing(tmp_path):
    path = write_l3(tmp_path, "20180110", 36, am={(100, 300): 0.2})
    with pytest.raises(InputError, match="does not overlap the product's grid"):
        import_products([str(path)], str(tmp_path / "x.tif"), (-10.0, -89.9, 10.0, -89.5), "EPSG:4326")
    with pytest.raises(Canceled):
        import_products([str(path)], str(tmp_path / "c.tif"), is_canceled=lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# --------------------------------------------------------------------------- SMAP L4 (fixtures)


def test_smap_l4_daily_mean_time_step_and_rootzone(tmp_path):
    cell, other = (400, 1200), (401, 1200)
    g1 = write_l4(tmp_path, "20180105T013000", {cell: 0.20, other: 0.30}, {cell: 0.25})
    g2 = write_l4(tmp_path, "20180105T043000", {cell: 0.26}, {cell: 0.27})
    g3 = write_l4(tmp_path, "20180105T073000", {cell: 0.29, other: -9999.0})
    g4 = write_l4(tmp_path, "20180106T013000", {cell: 0.10})
    files = [str(p) for p in (g3, g1, g4, g2)]
    assert identify(files[0]).product == SPL4SMGP and identify(files[0]).when == dt.datetime(2018, 1, 5, 7, 30)
    stations = [_station_at(9, *cell, "c"), _station_at(9, *other, "o")]
    box = (-80, 30, -60, 45)

    out = str(tmp_path / "l4.tif")
    res = import_products(files, out, box, "EPSG:4326")
    dates, values = sample_raster(out, stations)
    assert dates == [dt.date(2018, 1, 5), dt.date(2018, 1, 6)] and res.dates == dates
    assert values[0] == pytest.approx([(0.20 + 0.26 + 0.29) / 3, 0.30], abs=1e-6)  # fill skipped, not averaged
    assert values[1][0] == pytest.approx(0.10, abs=1e-7) and math.isnan(values[1][1])
    assert "3 granules" in res.log[0]

    out2 = str(tmp_path / "l4_0430.tif")
    import_products(files, out2, box, "EPSG:4326", ProductOptions(l4_time="04:30"))
    dates, values = sample_raster(out2, stations)
    assert dates == [dt.date(2018, 1, 5)] and values[0][0] == pytest.approx(0.26, abs=1e-7)

    out3 = str(tmp_path / "l4_rz.tif")
    import_products(files, out3, box, "EPSG:4326", ProductOptions(l4_variable="sm_rootzone"))
    _, values = sample_raster(out3, stations)
    assert values[0][0] == pytest.approx((0.25 + 0.27) / 2, abs=1e-6)
    with pytest.raises(InputError, match="no SMAP L4 granule has the time step 02:00"):
        import_products(files, str(tmp_path / "none.tif"), options=ProductOptions(l4_time="02:00"))


def test_ease2_shapes_are_the_products():
    assert EASE2_SHAPES[36] == (406, 964) and EASE2_SHAPES[9] == (1624, 3856)
    assert ease2_cell_size(9) == pytest.approx(9008.055, abs=0.001)
