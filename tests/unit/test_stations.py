"""Station tables, raster sampling at stations and per-site scoring.

The rasters are made here, a few pixels each, with values chosen so the expected sample
is read off the array by eye; the projected case places the station in a known pixel by
building the grid around the station's UTM coordinates.
"""
from __future__ import annotations

import csv
import datetime as dt
import glob
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from core.errors import InputError
from core.evaluation.stations import (
    INSITU,
    Skipped,
    Station,
    build_series,
    out_of_range_counts,
    read_insitu_csv,
    read_insitu_table,
    read_station_table,
    read_stations_csv,
    sample_raster,
    sample_raster_series,
    score_products,
    skipped_message,
    stations_outside,
    unscored_stations,
    write_scores_csv,
)

gdal.UseExceptions()

DELAWARE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "delaware"


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _make_tif(path: Path, arrays, epsg: int, gt, dtype=gdal.GDT_Float32, descriptions=(), nodata=None,
              scale=None, offset=None, options=()) -> str:
    arrays = [np.asarray(a) for a in arrays]
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(str(path), arrays[0].shape[1], arrays[0].shape[0], len(arrays), dtype, list(options))
    if epsg:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    ds.SetGeoTransform(gt)
    for b, a in enumerate(arrays, start=1):
        band = ds.GetRasterBand(b)
        band.WriteArray(a)
        if b <= len(descriptions):
            band.SetDescription(descriptions[b - 1])
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if scale is not None:
            band.SetScale(scale)
        if offset is not None:
            band.SetOffset(offset)
    ds.FlushCache()
    ds = None
    return str(path)


# --------------------------------------------------------------------------- tables


def test_read_stations_aliases_semicolon_and_attrs(tmp_path):
    p = _write(tmp_path / "st.csv",
               "Site;Latitude;LNG;Site_Name;Land cover;Texture\n"
               "A1;39.5;-75.25;Alpha;cropland;loam\n"
               "\n"
               "B2;38.75;-75.5;Beta;forest;sand\n")
    st = read_stations_csv(p)
    assert st == [
        Station("A1", 39.5, -75.25, "Alpha", {"Land cover": "cropland", "Texture": "loam"}),
        Station("B2", 38.75, -75.5, "Beta", {"Land cover": "forest", "Texture": "sand"}),
    ]


def test_read_stations_x_y_and_station_id_with_bom(tmp_path):
    p = tmp_path / "st.csv"
    p.write_bytes("\ufeffstation_id,Y,X\nS1,10.5,20.25\n".encode("utf-8"))
    assert read_stations_csv(str(p)) == [Station("S1", 10.5, 20.25)]


def test_read_stations_missing_column_names_file_and_column(tmp_path):
    p = _write(tmp_path / "stations_bad.csv", "id,lat,elev\nA,39,10\n")
    with pytest.raises(ValueError) as e:
        read_stations_csv(p)
    msg = str(e.value)
    assert "stations_bad.csv" in msg and "longitude" in msg and "lon" in msg and "id, lat, elev" in msg


@pytest.mark.parametrize("body, words", [
    ("id,lat,lon\nA,95,10\n", ["line 2", "lat", "outside"]),
    ("id,lat,lon\nA,abc,10\n", ["line 2", "'abc'", "not a number"]),
    ("id,lat,lon\nA,1,2\nA,3,4\n", ["line 3", "'A'", "repeats the station of line 2"]),
    ("id,lat,lon\n", ["no usable station"]),
])
def test_read_stations_bad_content(tmp_path, body, words):
    p = _write(tmp_path / "s.csv", body)
    with pytest.raises(ValueError) as e:
        read_stations_csv(p)
    for w in words:
        assert w in str(e.value)


def test_read_insitu_missing_values_and_sorting(tmp_path):
    p = _write(tmp_path / "vwc.csv",
               "Date,S1,S2\n"
               "2018-01-03,0.30,\n"
               "2018-01-01,0.10,NaN\n"
               "2018-01-02,,0.22\n"
               "2018-01-04,NA,0.24\n")
    dates, values = read_insitu_csv(p)
    assert dates == [dt.date(2018, 1, d) for d in (1, 2, 3, 4)]
    np.testing.assert_array_equal(values["S1"], [0.10, np.nan, 0.30, np.nan])
    np.testing.assert_array_equal(values["S2"], [np.nan, 0.22, np.nan, 0.24])
    assert values["S1"].dtype == np.float64


@pytest.mark.parametrize("body, words", [
    ("day,S1\n2018-01-01,0.1\n", ["no date column"]),
    ("date,S1\nyesterday,0.1\n", ["line 2", "'yesterday'"]),
    ("date,S1\n2018-01-01,0.1\n2018-01-01,0.2\n", ["line 3", "2018-01-01", "repeats the date of line 2"]),
    ("date,S1\n2018-01-01,1.3\n", ["line 2", "'S1'", "'1.3'", "outside 0 … 1"]),
    ("date,S1\n2018-01-01,wet\n", ["line 2", "'S1'", "'wet'"]),
])
def test_read_insitu_errors(tmp_path, body, words):
    p = _write(tmp_path / "v.csv", body)
    with pytest.raises(ValueError) as e:
        read_insitu_csv(p)
    for w in words:
        assert w in str(e.value)


# --------------------------------------------------------------------------- sampling


def test_sample_geographic_scale_offset_nodata_outside(tmp_path):
    # 0.25° grid from lon −76.5, lat 40.25 (the Delaware box), 3 rows × 4 cols, int16,
    # value = raw × 0.001 + 0.01, nodata −9999.
    raw1 = np.array([[100, 110, 120, 130],
                     [140, 150, 250, -9999],
                     [160, 170, 180, 190]], dtype=np.int16)
    raw2 = raw1 + 1
    raw2[1, 3] = 300
    path = _make_tif(tmp_path / "sm.tif", [raw1, raw2], 4326, (-76.5, 0.25, 0, 40.25, 0, -0.25),
                     gdal.GDT_Int16, ("2018-01-02", "2018-01-01"), nodata=-9999, scale=0.001, offset=0.01)
    stations = [
        Station("in", lat=39.9, lon=-75.9),      # row 1 (40.0…39.75), col 2 (−76.0…−75.75): raw 250
        Station("nodata", lat=39.8, lon=-75.6),  # row 1, col 3: −9999 in band 1, 300 in band 2
        Station("out", lat=41.0, lon=-75.9),     # north of the grid
        Station("corner", lat=39.6, lon=-76.4),  # row 2, col 0: raw 160
    ]
    dates, values = sample_raster(path, stations)
    assert dates == [dt.date(2018, 1, 2), dt.date(2018, 1, 1)]  # band order kept
    expected = np.array([[0.26, np.nan, np.nan, 0.17],
                         [0.261, 0.31, np.nan, 0.171]])
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)


def test_sample_float_nodata_written_as_float32(tmp_path):
    # A float32 nodata like ESA CCI's −3.4e38 must match after the float32 round trip.
    a = np.array([[0.2, -3.4e38]], dtype=np.float32)
    path = _make_tif(tmp_path / "f.tif", [a], 4326, (0, 1, 0, 1, 0, -1), descriptions=("2018-01-01",),
                     nodata=-3.4e38)
    _, v = sample_raster(path, [Station("a", 0.5, 0.5), Station("b", 0.5, 1.5)])
    assert v[0, 0] == pytest.approx(0.2) and math.isnan(v[0, 1])


def test_sample_projected_utm(tmp_path):
    # Station at 39°N 75.5°W; in UTM 18N (EPSG:32618) its easting/northing (x, y).
    # Grid of 1000 m pixels whose origin is 1500 m west and 2500 m north of the station:
    # the station lies in column 1, row 2 (value 5·2 + 1 + 2 = 13); a lat/lon mix-up would miss it.
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(32618)
    utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x, y, _ = osr.CoordinateTransformation(wgs84, utm).TransformPoint(-75.5, 39.0)
    arr = np.arange(20, dtype=np.float32).reshape(4, 5) + 2  # row r, col c -> 5r + c + 2
    path = _make_tif(tmp_path / "utm.tif", [arr], 32618, (x - 1500, 1000, 0, y + 2500, 0, -1000),
                     descriptions=("2018-06-30",))
    # 0.02° further east is about 1.7 km: column 3, same row -> 5·2 + 3 + 2 = 15.
    dates, v = sample_raster(path, [Station("s", 39.0, -75.5), Station("e", 39.0, -75.48)])
    assert dates == [dt.date(2018, 6, 30)]
    np.testing.assert_array_equal(v, [[13.0, 15.0]])


def test_sample_date_from_file_name_for_single_band(tmp_path):
    path = _make_tif(tmp_path / "ESA_CCI_SM_v45_Delaware_20180107.tif", [[[0.3]]], 4326, (0, 1, 0, 1, 0, -1))
    dates, v = sample_raster(path, [Station("a", 0.5, 0.5)])
    assert dates == [dt.date(2018, 1, 7)] and v.tolist() == [[pytest.approx(0.3)]]


def test_sample_band_without_date_raises(tmp_path):
    path = _make_tif(tmp_path / "stack_20180101.tif", [[[1.0]], [[2.0]]], 4326, (0, 1, 0, 1, 0, -1),
                     descriptions=("2018-01-01",))
    with pytest.raises(ValueError, match="band 2 has no date"):
        sample_raster(path, [Station("a", 0.5, 0.5)])


def test_sample_without_crs_raises(tmp_path):
    path = _make_tif(tmp_path / "nocrs_20180101.tif", [[[1.0]]], 0, (0, 1, 0, 1, 0, -1))
    with pytest.raises(ValueError, match="no coordinate reference system"):
        sample_raster(path, [Station("a", 0.5, 0.5)])


def test_sample_honours_mask_band(tmp_path):
    path = _make_tif(tmp_path / "m.tif", [[[0.1, 0.2]]], 4326, (0, 1, 0, 1, 0, -1), descriptions=("2018-01-01",))
    ds = gdal.Open(path, gdal.GA_Update)
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    ds.GetRasterBand(1).GetMaskBand().WriteArray(np.array([[255, 0]], dtype=np.uint8))
    ds = None
    _, v = sample_raster(path, [Station("a", 0.5, 0.5), Station("b", 0.5, 1.5)])
    assert v[0, 0] == pytest.approx(0.1) and math.isnan(v[0, 1])


def test_sample_reads_only_station_pixels(tmp_path):
    # 100 000 × 100 000 float32 pixels = 40 GB if read whole; sparse on disk (a few MB).
    path = str(tmp_path / "huge.tif")
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(path, 100_000, 100_000, 1, gdal.GDT_Float32,
                    ["TILED=YES", "SPARSE_OK=TRUE", "BIGTIFF=YES"])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    ds.SetGeoTransform((0.0, 1e-5, 0, 1.0, 0, -1e-5))
    band = ds.GetRasterBand(1)
    band.SetDescription("2018-01-01")
    band.WriteArray(np.array([[0.42]], dtype=np.float32), 73_000, 51_000)
    ds = None
    t0 = time.perf_counter()
    # pixel (col 73 000, row 51 000) has centre lon 0.730005, lat 1 − 0.510005 = 0.489995
    _, v = sample_raster(path, [Station("a", 0.489995, 0.730005), Station("b", 0.2, 0.2)])
    assert time.perf_counter() - t0 < 5
    assert v[0, 0] == pytest.approx(0.42) and v[0, 1] == 0.0  # unwritten sparse tiles read as 0


def test_sample_series_sorted_and_duplicates(tmp_path):
    gt = (0, 1, 0, 1, 0, -1)
    p2 = _make_tif(tmp_path / "sm_20180102.tif", [[[0.2]]], 4326, gt)
    p1 = _make_tif(tmp_path / "sm_20180101.tif", [[[0.1]]], 4326, gt)
    dates, v = sample_raster_series([p2, p1], [Station("a", 0.5, 0.5)])
    assert dates == [dt.date(2018, 1, 1), dt.date(2018, 1, 2)]
    np.testing.assert_allclose(v[:, 0], [0.1, 0.2])
    p3 = _make_tif(tmp_path / "other.tif", [[[0.3]]], 4326, gt, descriptions=("2018-01-01",))
    with pytest.raises(ValueError, match="2018-01-01"):
        sample_raster_series([p1, p3], [Station("a", 0.5, 0.5)])
    with pytest.raises(ValueError, match="no raster"):
        sample_raster_series([], [Station("a", 0.5, 0.5)])


# --------------------------------------------------------------------------- scoring


def _toy():
    d = [dt.date(2018, 1, k) for k in range(1, 6)]
    stations = [Station("S1", 39.0, -75.0, "One", {"land cover": "crop"}),
                Station("S2", 39.5, -75.5, "Two", {"land cover": "forest"}),
                Station("S3", 38.0, -75.0)]  # no in-situ column: skipped
    insitu = {"S1": np.array([0.10, 0.20, 0.30, np.nan, 0.50]),
              "S2": np.array([0.30, 0.30, 0.30, 0.30, 0.30])}
    # product from day 2 to day 6 (day 6 has no in-situ), stations S1 S2 S3
    pd = [dt.date(2018, 1, k) for k in range(2, 7)]
    pv = np.array([[0.25, 0.20, 0.0],
                   [0.30, 0.40, 0.0],
                   [0.35, 0.20, 0.0],
                   [0.60, 0.30, 0.0],
                   [0.70, 0.30, 0.0]])
    return d, stations, insitu, {"coarse": (pd, pv)}


def test_score_products_matches_dates_by_hand():
    dates, stations, insitu, products = _toy()
    rows = score_products(stations, dates, insitu, products)
    assert [(r["station"], r["product"]) for r in rows] == [("S1", "coarse"), ("S2", "coarse")]
    s1, s2 = rows
    # S1 pairs on days 2, 3, 5: obs [0.2, 0.3, 0.5], est [0.25, 0.30, 0.60]
    # diffs [0.05, 0, 0.10] -> bias 0.05, MAE 0.05
    # obs dev [-1/3·0.3, …]: mean obs 1/3, dev [-0.1333, -0.0333, 0.1667];
    # mean est 0.38333, dev [-0.13333, -0.08333, 0.21667]
    # Σxy = 0.017778 + 0.002778 + 0.036111 = 0.056667 ; Σx² = 0.046667 -> slope = 1.214286
    assert s1["n"] == 3
    assert s1["bias"] == pytest.approx(0.05)
    assert s1["mae"] == pytest.approx(0.05)
    assert s1["slope"] == pytest.approx(1.214286, abs=1e-6)
    assert (s1["name"], s1["lat"], s1["lon"], s1["land cover"]) == ("One", 39.0, -75.0, "crop")
    # S2: obs constant 0.3 on days 2–5, est [0.2, 0.4, 0.2, 0.3] -> bias −0.025, r undefined
    assert s2["n"] == 4 and s2["bias"] == pytest.approx(-0.025) and math.isnan(s2["r"])


def test_score_products_reserved_attribute_names_are_prefixed():
    dates, stations, insitu, products = _toy()
    stations[0].attrs["r"] = "x"
    rows = score_products(stations, dates, insitu, products)
    assert rows[0]["attr_r"] == "x" and isinstance(rows[0]["r"], float)


def test_score_products_shape_check():
    dates, stations, insitu, (products) = _toy()
    pd, pv = products["coarse"]
    with pytest.raises(ValueError, match="shape"):
        score_products(stations, dates, insitu, {"bad": (pd, pv[:, :2])})


def test_build_series_clips_insitu_to_product_period():
    dates, stations, insitu, products = _toy()
    series = build_series(stations, dates, insitu, products)
    assert set(series) == {"S1", "S2"}
    idates, ivals = series["S1"][INSITU]
    assert idates == [dt.date(2018, 1, k) for k in (2, 3, 4, 5)]
    np.testing.assert_array_equal(ivals, [0.2, 0.3, np.nan, 0.5])
    np.testing.assert_array_equal(series["S2"]["coarse"][1], [0.2, 0.4, 0.2, 0.3, 0.3])


def test_write_scores_csv_round_trip_and_atomic(tmp_path):
    dates, stations, insitu, products = _toy()
    rows = score_products(stations, dates, insitu, products)
    out = tmp_path / "scores.csv"
    write_scores_csv(rows, str(out))
    with open(out, newline="", encoding="utf-8") as f:
        back = list(csv.DictReader(f))
    assert [r["station"] for r in back] == ["S1", "S2"]
    assert back[0]["n"] == "3" and back[0]["bias"] == "0.05" and back[0]["land cover"] == "crop"
    assert back[1]["r"] == ""  # NaN -> empty cell
    assert list(back[0])[:5] == ["station", "name", "lat", "lon", "land cover"]
    assert os.listdir(tmp_path) == ["scores.csv"]  # no temporary file left

    class Boom:
        def __str__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_scores_csv([{"station": "x", "bad": Boom()}], str(out))
    assert os.listdir(tmp_path) == ["scores.csv"]
    with open(out, newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 2  # previous file intact


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(not DELAWARE.is_dir(), reason=f"shared Delaware sample data not found at {DELAWARE}")
def test_delaware_esa_cci_against_deos():
    stations = read_stations_csv(str(DELAWARE / "deos_stations.csv"))
    assert len(stations) == 13 and stations[0].id == "DDFS" and stations[0].name == "Dover, DE-DSFS"
    assert stations[0].attrs == {"elev_m": "15.5"}
    dates, insitu = read_insitu_csv(str(DELAWARE / "deos_daily_vwc.csv"))
    assert len(dates) == 365 and dates[0] == dt.date(2018, 1, 1) and set(insitu) == {s.id for s in stations}
    paths = sorted(glob.glob(str(DELAWARE / "esa_cci_sm" / "ESA_CCI_SM_v45_Delaware_*.tif")))
    pdates, pvals = sample_raster_series(paths, stations)
    assert len(pdates) == 31 and pdates[-1] == dt.date(2018, 1, 31) and pvals.shape == (31, 13)

    # Seaford (DSEA, 38.6525 N, 75.7036 W) lies in column floor((−75.7036 + 76.5)/0.25) = 3,
    # row floor((40.25 − 38.6525)/0.25) = 6 of the 0.25° grid: compare with the whole array.
    j = [s.id for s in stations].index("DSEA")
    ds = gdal.Open(paths[0])
    band = ds.GetRasterBand(1)
    whole = band.ReadAsArray()
    assert pvals[0, j] == pytest.approx(float(whole[6, 3]))
    assert np.isnan(pvals).any() and np.isfinite(pvals).sum() > 100  # sea / gaps are NaN

    rows = score_products(stations, dates, insitu, {"ESA CCI SM v4.5": (pdates, pvals)})
    assert len(rows) == 13
    scored = [r for r in rows if r["n"] >= 10]
    assert len(scored) >= 8
    for r in scored:
        assert -1 <= r["r"] <= 1 and 0 <= r["ubrmse"] <= r["rmse"] < 0.5
        assert r["rmse"] ** 2 == pytest.approx(r["ubrmse"] ** 2 + r["bias"] ** 2)


def test_score_products_accepts_datetimes_for_insitu():
    dates, stations, insitu, products = _toy()
    as_datetimes = [dt.datetime(d.year, d.month, d.day, 12) for d in dates]
    rows = score_products(stations, as_datetimes, insitu, products)
    assert rows[0]["n"] == 3 and rows[0]["bias"] == pytest.approx(0.05)
