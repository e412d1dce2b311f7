"""Align / downscale / score through Processing in real QGIS, and each bad input's message."""
from __future__ import annotations

import csv
import datetime as dt
import glob
import os

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsVectorLayer

from soil_moisture_downscaling.core.raster.align import BandRef

K, N = 10, 5
DATES = [dt.date(2018, 1, d) for d in (2, 9, 16)]
ORIGIN = (500000.0, 4400000.0)
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data", "delaware")


def _truth():
    n = N * K
    y, x = np.mgrid[0:n, 0:n] / n
    ndvi = (0.45 + 0.3 * np.sin(7 * x) * np.cos(5 * y)).astype(np.float32)
    dem = (100 + 80 * np.cos(4 * x + 1) + 40 * y).astype(np.float32)
    fields = [np.clip(0.1 + 0.03 * i + 0.3 * (0.8 - ndvi), 0.02, 0.6).astype(np.float32) for i in range(len(DATES))]
    return ndvi, dem, fields


def _coarse(a):
    return a.reshape(N, K, N, K).mean(axis=(1, 3))


@pytest.fixture
def scene(make_raster):
    ndvi, dem, fields = _truth()
    sm = [str(make_raster(f"SM_{d:%Y%m%d}.tif", _coarse(f), origin=ORIGIN, pixel=(10000.0, 10000.0)))
          for d, f in zip(DATES, fields)]
    return {"sm": sm, "ndvi": str(make_raster("ndvi.tif", ndvi, origin=ORIGIN)),
            "dem": str(make_raster("dem.tif", dem, origin=ORIGIN)), "truth": fields}


def test_downscale_regression_writes_a_dated_conserving_raster(run_alg, scene, tmp_path, feedback):
    out = str(tmp_path / "down.tif")
    res = run_alg("downscale_regression", {"SOIL_MOISTURE": scene["sm"], "NDVI": [scene["ndvi"]],
                                           "DEM": [scene["dem"]], "DERIVE_TERRAIN": False, "REGRESSOR": 0,
                                           "OUTPUT": out}, feedback=feedback)
    assert res["OUTPUT"] == out
    ds = gdal.Open(out)
    assert ds.RasterCount == 3 and (ds.RasterXSize, ds.RasterYSize) == (N * K, N * K)
    assert [ds.GetRasterBand(i + 1).GetDescription() for i in range(3)] == [d.isoformat() for d in DATES]
    for t, f in enumerate(scene["truth"]):
        got = ds.GetRasterBand(t + 1).ReadAsArray()
        assert np.abs(_coarse(got) - _coarse(f)).mean() < 0.01
        assert np.corrcoef(got.ravel(), f.ravel())[0, 1] > 0.9
    assert os.path.exists(str(tmp_path / "down.qml")) and os.path.exists(res["RUN_LOG"])
    assert any("Conservation 2018-01-09" in m for m in feedback.infos)
    assert any(m.startswith("Trend weight 0.") or m.startswith("Trend weight 1.") for m in feedback.infos)


def test_align_covariates_and_training_view(run_alg, scene, tmp_path):
    out, coarse = str(tmp_path / "aligned.tif"), str(tmp_path / "coarse.tif")
    run_alg("align_covariates", {"NDVI": [scene["ndvi"]], "DEM": [scene["dem"]], "SOIL_MOISTURE": [scene["sm"][0]],
                                 "RESOLUTION": 2000.0, "OUTPUT": out, "COARSE_OUTPUT": coarse})
    ds = gdal.Open(out)
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (25, 25, 4)
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(4)]
    assert sorted(names) == ["dem", "mtpi", "ndvi", "slope"]
    ndvi = ds.GetRasterBand(names.index("ndvi") + 1).ReadAsArray()
    src = gdal.Open(scene["ndvi"]).ReadAsArray()
    assert ndvi[0, 0] == pytest.approx(src[:2, :2].mean(), abs=1e-5)  # 2×2 average
    cds = gdal.Open(coarse)
    assert (cds.RasterXSize, cds.RasterYSize) == (N, N)
    assert cds.GetRasterBand(names.index("ndvi") + 1).ReadAsArray()[0, 0] == pytest.approx(src[:K, :K].mean(), abs=1e-5)


def _product_of_three_dates(make_raster) -> str:
    """3 × 3 pixels of 0.1° from 76° W, 39° N, holding 0.2, 0.3, 0.4 on the three DATES."""
    stack = np.stack([np.full((3, 3), v, np.float32) for v in (0.2, 0.3, 0.4)])
    return str(make_raster("product.tif", stack, origin=(-76.0, 39.0), pixel=(0.1, 0.1), epsg=4326,
                           descriptions=[d.isoformat() for d in DATES]))


def test_score_stations_matches_hand_computed_metrics(run_alg, make_raster, tmp_path):
    # one station over a pixel whose values are 0.2, 0.3, 0.4 on three dates; in-situ 0.25, 0.3, 0.45
    r = _product_of_three_dates(make_raster)
    st = tmp_path / "st.csv"
    st.write_text("id,lat,lon\nS1,38.85,-75.85\nFAR,10,10\n")
    ins = tmp_path / "insitu.csv"
    ins.write_text("date,S1,FAR\n" + "\n".join(f"{d.isoformat()},{v},0.1" for d, v in zip(DATES, (0.25, 0.3, 0.45))))
    out_csv = str(tmp_path / "scores.csv")
    out_gpkg = str(tmp_path / "scores.gpkg")
    run_alg("score_stations", {"PRODUCT": [str(r)], "STATIONS_CSV": str(st), "INSITU_CSV": str(ins),
                               "SCORES_CSV": out_csv, "SCORES": out_gpkg})
    rows = {row["station"]: row for row in csv.DictReader(open(out_csv))}
    s1 = rows["S1"]
    # errors: −0.05, 0, −0.05 → bias −1/30, RMSE sqrt(0.005/3), ubRMSE sqrt(RMSE² − bias²)
    bias, rmse = -0.1 / 3, np.sqrt(0.005 / 3)
    assert float(s1["bias"]) == pytest.approx(bias, abs=1e-6)
    assert float(s1["rmse"]) == pytest.approx(rmse, abs=1e-6)
    assert float(s1["ubrmse"]) == pytest.approx(np.sqrt(rmse ** 2 - bias ** 2), abs=1e-6)
    assert int(s1["n"]) == 3
    lay = QgsVectorLayer(out_gpkg, "s", "ogr")
    feats = {f["station"]: f for f in lay.getFeatures()}
    assert feats["S1"]["downscaled_ubrmse"] == pytest.approx(np.sqrt(rmse ** 2 - bias ** 2), abs=1e-6)


def test_score_stations_skips_bad_rows_and_names_unscored_stations(run_alg, make_raster, tmp_path, feedback):
    # S1 as in the test above, plus: a bad station row, a station with lat/lon swapped, an in-situ value of
    # 1.3 m³/m³ (dropped, counted) and an unreadable in-situ cell; the rest is scored.
    r = _product_of_three_dates(make_raster)
    st = tmp_path / "st.csv"
    st.write_text("id,lat,lon\nS1,38.85,-75.85\nBAD,north,-75.8\nSWAP,-75.85,38.85\n")
    ins = tmp_path / "insitu.csv"
    ins.write_text("date,S1,SWAP\n2018-01-02,0.25,0.1\n2018-01-09,1.3,0.1\n2018-01-16,0.45,dry\n"
                   "2018-01-17,0.3,0.1\n")
    out_csv = str(tmp_path / "scores.csv")
    run_alg("score_stations", {"PRODUCT": [str(r)], "STATIONS_CSV": str(st), "INSITU_CSV": str(ins),
                               "SCORES_CSV": out_csv}, feedback=feedback)
    rows = {row["station"]: row for row in csv.DictReader(open(out_csv))}
    assert set(rows) == {"S1", "SWAP"}
    # S1 pairs on 01-02 (0.2 vs 0.25) and 01-16 (0.4 vs 0.45): the 1.3 of 01-09 is not a pair
    assert (rows["S1"]["n"], rows["S1"]["n_dropped"]) == ("2", "1")
    assert "swapped" in rows["SWAP"]["note"] and rows["SWAP"]["n"] == "0"
    warnings = "\n".join(feedback.warnings)
    assert "st.csv: 1 entry left out (2 station(s) kept)" in warnings and "line 3, column 'lat': 'north'" in warnings
    assert "line 3, column 'S1': '1.3' is outside 0 … 1 m³/m³" in warnings
    assert "line 4, column 'SWAP': 'dry' is not a number" in warnings
    assert "SWAP: outside every raster (lat -75.85, lon 38.85): with latitude and longitude swapped" in warnings


def _expect_error(run_alg, params, *needles):
    with pytest.raises(QgsProcessingException) as e:
        run_alg("downscale_regression", params)
    msg = str(e.value)
    assert "Traceback" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_bad_inputs_give_messages_not_tracebacks(run_alg, scene, make_raster, tmp_path):
    out = str(tmp_path / "x.tif")
    base = {"SOIL_MOISTURE": scene["sm"], "DEM": [scene["dem"]], "OUTPUT": out, "REGRESSOR": 2}
    pct = [str(make_raster(f"SMpct_{d:%Y%m%d}.tif", np.full((N, N), 25.0, np.float32), origin=ORIGIN,
                           pixel=(10000.0, 10000.0))) for d in DATES]
    _expect_error(run_alg, {**base, "SOIL_MOISTURE": pct}, "SMpct_20180102", "percent", "Fix:")
    raw_ndvi = str(make_raster("MOD13_ndvi.tif", np.full((50, 50), 6500, np.int16), origin=ORIGIN))
    _expect_error(run_alg, {**base, "NDVI": [raw_ndvi]}, "MOD13_ndvi", "0.0001")
    raw_lst = str(make_raster("MOD11_lst.tif", np.full((50, 50), 14500, np.uint16), origin=ORIGIN))
    _expect_error(run_alg, {**base, "LST": [raw_lst]}, "MOD11_lst", "0.02")
    far = str(make_raster("far_dem.tif", np.full((50, 50), 10.0, np.float32), origin=(900000.0, 4400000.0)))
    _expect_error(run_alg, {**base, "DEM": [far]}, "far_dem", "overlap")
    empty = str(make_raster("empty_dem.tif", np.full((50, 50), -9999, np.float32), origin=ORIGIN, nodata=-9999))
    _expect_error(run_alg, {**base, "DEM": [empty]}, "empty_dem", "nodata")
    nocrs = str(tmp_path / "nocrs_dem.tif")
    d = gdal.GetDriverByName("GTiff").Create(nocrs, 50, 50, 1, gdal.GDT_Float32)
    d.SetGeoTransform((ORIGIN[0], 1000, 0, ORIGIN[1], 0, -1000))
    d.GetRasterBand(1).WriteArray(np.full((50, 50), 10.0, np.float32))
    d = None
    # QGIS itself may refuse a layer without CRS earlier; either way the message names it
    with pytest.raises(QgsProcessingException) as e:
        run_alg("downscale_regression", {**base, "DEM": [nocrs]})
    assert "nocrs_dem" in str(e.value) or "CRS" in str(e.value)
    assert not [p for p in os.listdir(tmp_path) if p.startswith("x.") or p.startswith(".x.")]


def test_unwritable_output_folder_is_refused_before_any_work(run_alg, scene, tmp_path, feedback):
    blocker = tmp_path / "not_a_folder.txt"
    blocker.write_text("a file where a folder should be")
    params = {"SOIL_MOISTURE": scene["sm"], "NDVI": [scene["ndvi"]], "REGRESSOR": 2}
    for out, needle in ((str(blocker / "down.tif"), "is a file, not a folder"),
                        ("/proc/smds_down.tif", "cannot be written")):
        with pytest.raises(QgsProcessingException) as e:
            run_alg("downscale_regression", {**params, "OUTPUT": out}, feedback=feedback)
        assert needle in str(e.value) and "Downscaled soil moisture" in str(e.value) and "Fix:" in str(e.value)
        assert "Traceback" not in str(e.value)
    assert not any("Trend on" in m for m in feedback.infos)  # nothing was fitted


def test_a_target_grid_above_the_limit_is_refused_with_time_and_disk(run_alg, scene, tmp_path):
    params = {"SOIL_MOISTURE": scene["sm"], "NDVI": [scene["ndvi"]], "REGRESSOR": 2,
              "OUTPUT": str(tmp_path / "down.tif")}
    # resolution 10 m instead of 1000 m: 5000 × 5000 px, above a limit of 1 million pixels
    msg = _expect_error(run_alg, {**params, "RESOLUTION": 10.0, "MAX_PIXELS": 1.0},
                        "5000 × 5000 = 25 million pixels", "above the limit of 1 million", "for 3 date(s)",
                        "GB of output", "Largest target grid (million pixels)")
    assert "minutes of computing" in msg  # 25 Mpx × 3 dates at 0.25 Mpx/s: 5 minutes
    assert not os.path.exists(tmp_path / "down.tif")
    # the same run, with the limit lifted, is not refused for its size (1000 m: the covariate grid)
    run_alg("downscale_regression", {**params, "MAX_PIXELS": 0.003})
    _expect_error(run_alg, {**params, "MAX_PIXELS": 0.002}, "50 × 50 = 0.0025 million pixels")


def test_undated_soil_moisture_bands_are_named_with_the_parameter_to_use(run_alg, scene, make_raster, tmp_path):
    stack = np.stack([np.full((N, N), v, np.float32) for v in (0.1, 0.2)])
    sm = str(make_raster("sm_stack.tif", stack, origin=ORIGIN, pixel=(10000.0, 10000.0),
                         descriptions=["Band_A", "week two"]))
    params = {"SOIL_MOISTURE": [sm], "NDVI": [scene["ndvi"]], "REGRESSOR": 2, "OUTPUT": str(tmp_path / "d.tif")}
    _expect_error(run_alg, params, "band 1 of 'sm_stack.tif' (description 'Band_A')",
                  "band 2 of 'sm_stack.tif' (description 'week two')", "'Dates of the soil-moisture bands' (SM_DATES")
    run_alg("downscale_regression", {**params, "SM_DATES": "2018-01-02, 2018-01-09"})


def test_several_other_covariates_static_per_band_and_dated(run_alg, scene, make_raster, tmp_path):
    grid = {"origin": ORIGIN}
    n = N * K
    twi = str(make_raster("twi.tif", np.full((n, n), 7.0, np.float32), **grid))
    depth = str(make_raster("valley_depth.tif", np.full((n, n), 12.0, np.float32), **grid))
    soils = str(make_raster("soil_stack.tif", np.stack([np.full((n, n), v, np.float32) for v in (1.0, 2.0)]),
                            descriptions=["bulk density", ""], **grid))
    vv = [str(make_raster(f"S1_VV_{d:%Y%m%d}.tif", np.full((n, n), -10.0 - i, np.float32), **grid))
          for i, d in enumerate(DATES)]
    vh = [str(make_raster(f"S1_VH_{d:%Y%m%d}.tif", np.full((n, n), -20.0 - i, np.float32), **grid))
          for i, d in enumerate(DATES)]
    out = str(tmp_path / "aligned.tif")
    run_alg("align_covariates", {"NDVI": [scene["ndvi"]], "OTHER": [twi, depth, soils] + vv + vh,
                                 "SOIL_MOISTURE": scene["sm"], "OUTPUT": out})
    ds = gdal.Open(out)
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)]
    for name, value in (("twi", 7.0), ("valley_depth", 12.0), ("soil_stack_bulk_density", 1.0),
                        ("soil_stack_band_2", 2.0)):
        assert name in names, names
        assert float(ds.GetRasterBand(names.index(name) + 1).ReadAsArray()[0, 0]) == pytest.approx(value)
    # the VV and VH files form two dated series, named after what their names share
    assert [nm for nm in names if nm.startswith("s1_")] == [f"s1_{p} {d.isoformat()}" for p in ("vv", "vh")
                                                            for d in DATES]
    assert float(ds.GetRasterBand(names.index("s1_vh 2018-01-09") + 1).ReadAsArray()[0, 0]) == pytest.approx(-21.0)
    # under a named role, a series with one undated file is refused with the layer and the way out
    undated = str(make_raster("ndvi_january.tif", np.full((n, n), 0.5, np.float32), **grid))
    dated = str(make_raster("ndvi_20180101.tif", np.full((n, n), 0.5, np.float32), **grid))
    with pytest.raises(QgsProcessingException) as e:
        run_alg("align_covariates", {"NDVI": [dated, undated], "OUTPUT": str(tmp_path / "x.tif")})
    assert "ndvi_january" in str(e.value) and "'Other covariate'" in str(e.value)


def test_delaware_sample_through_processing_scores_both_products(run_alg, tmp_path, feedback):
    sm = sorted(glob.glob(os.path.join(SAMPLE, "esa_cci_sm", "*.tif")))[24:31]
    out = str(tmp_path / "delaware.tif")
    csv_out = str(tmp_path / "scores.csv")
    run_alg("downscale_regression", {"SOIL_MOISTURE": sm, "DEM": [os.path.join(SAMPLE, "elevation_1km.tif")],
                                     "REGRESSOR": 0, "OUTPUT": out,
                                     "STATIONS_CSV": os.path.join(SAMPLE, "deos_stations.csv"),
                                     "INSITU_CSV": os.path.join(SAMPLE, "deos_daily_vwc.csv"),
                                     "SCORES_CSV": csv_out}, feedback=feedback)
    ds = gdal.Open(out)
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (240, 300, 7)
    rows = list(csv.DictReader(open(csv_out)))
    products = {r["product"] for r in rows}
    assert products == {"downscaled", "coarse"}
    dsea = {r["product"]: r for r in rows if r["station"] == "DSEA"}
    assert int(dsea["downscaled"]["n"]) == int(dsea["coarse"]["n"]) >= 5
    assert 0.0 < float(dsea["downscaled"]["ubrmse"]) < 0.15
    assert any("downscaled" in m and "coarse" in m for m in feedback.infos)


def test_dated_output_reaches_the_temporal_controller(plugin_package, scene, tmp_path, run_alg):
    from qgis.core import QgsProject, QgsRasterLayer
    from soil_moisture_downscaling.processing_provider.output_layers import present_time_series
    out = str(tmp_path / "down.tif")
    run_alg("downscale_regression", {"SOIL_MOISTURE": scene["sm"], "NDVI": [scene["ndvi"]], "REGRESSOR": 2,
                                     "OUTPUT": out})
    project = QgsProject.instance()
    layer = QgsRasterLayer(out, "down", "gdal")
    project.addMapLayer(layer)
    layers = present_time_series(layer, DATES, out[:-4] + ".qml", project)
    ranges = []
    for lay in layers:
        props = lay.temporalProperties()
        assert props.isActive()
        if len(layers) == 1:  # QGIS >= 3.38: one layer, one range per band
            ranges = [props.fixedRangePerBand()[i + 1].begin().date().toPyDate() for i in range(len(DATES))]
        else:
            ranges.append(props.fixedTemporalRange().begin().date().toPyDate())
    assert ranges == DATES
    assert layers[0].renderer().type() == "singlebandpseudocolor"
    project.removeAllMapLayers()


def test_qgis_process_runs_downscaling_and_the_sample_model(qgis_process, scene, tmp_path):
    out = tmp_path / "qp.tif"
    args = ["run", "soil_moisture_downscaling:downscale_regression", "--"] + [f"SOIL_MOISTURE={p}" for p in scene["sm"]] + \
        [f"NDVI={scene['ndvi']}", "REGRESSOR=2", f"OUTPUT={out}"]
    qgis_process(*args)
    assert gdal.Open(str(out)).RasterCount == 3
    model = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "downscale_and_score.model3")
    st = tmp_path / "st.csv"
    st.write_text("id,lat,lon\nS1,39.7,-75.0\n")
    ins = tmp_path / "in.csv"
    ins.write_text("date,S1\n" + "\n".join(f"{d.isoformat()},0.2" for d in DATES))
    res = qgis_process("run", model, "--", *[f"sm={p}" for p in scene["sm"]], f"dem={scene['dem']}",
                       f"stations={st}", f"insitu={ins}", f"align:aligned={tmp_path / 'm_al.tif'}",
                       f"downscale:downscaled={tmp_path / 'm_ds.tif'}", f"score:scores_csv={tmp_path / 'm.csv'}",
                       f"score:scores={tmp_path / 'm.gpkg'}")
    assert "Model processed OK" in res.stdout + res.stderr
    assert gdal.Open(str(tmp_path / "m_ds.tif")).RasterCount == 3
    assert (tmp_path / "m.csv").exists()


def test_downscale_svatark_writes_series_kriging_sd_and_variograms_and_corrects_the_bias(run_alg, scene, tmp_path,
                                                                                         feedback):
    import json
    # three stations at cell centres, each 0.04 m³/m³ drier than its coarse cell on every date
    from osgeo import osr
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32618)
    wgs.ImportFromEPSG(4326)
    for s in (utm, wgs):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(utm, wgs)
    cells = [(0, 1), (2, 2), (4, 3)]
    st_csv, in_csv = tmp_path / "st.csv", tmp_path / "insitu.csv"
    with open(st_csv, "w", encoding="utf-8") as f:
        f.write("id,lat,lon\n")
        for k, (r, c) in enumerate(cells):
            lon, lat, _ = ct.TransformPoint(ORIGIN[0] + (c + 0.5) * 10000.0, ORIGIN[1] - (r + 0.5) * 10000.0)
            f.write(f"s{k},{lat:.8f},{lon:.8f}\n")
    with open(in_csv, "w", encoding="utf-8") as f:
        f.write("date,s0,s1,s2\n")
        for d, fld in zip(DATES, scene["truth"]):
            c = _coarse(fld)
            f.write(d.isoformat() + "," + ",".join(f"{c[r, cc] - 0.04:.6f}" for r, cc in cells) + "\n")
    out, sd = str(tmp_path / "svatark.tif"), str(tmp_path / "sd.tif")
    res = run_alg("downscale_svatark", {"SOIL_MOISTURE": scene["sm"], "NDVI": [scene["ndvi"]], "DERIVE_TERRAIN": False,
                                        "STATIONS_CSV": str(st_csv), "INSITU_CSV": str(in_csv), "BIAS_CORRECTION": True,
                                        "OUTPUT": out, "KRIGING_SD": sd}, feedback=feedback)
    assert res["OUTPUT"] == out and res["KRIGING_SD"] == sd
    assert any("mean coarse − station = +0.0400" in m for m in feedback.infos), feedback.infos
    ds, sds = gdal.Open(out), gdal.Open(sd)
    assert ds.RasterCount == sds.RasterCount == 3
    for t, f in enumerate(scene["truth"]):
        got = ds.GetRasterBand(t + 1).ReadAsArray()
        # coherent with the bias-corrected coarse field
        np.testing.assert_allclose(_coarse(got), _coarse(f) - 0.04, atol=1e-4)
        assert np.nanmin(sds.GetRasterBand(t + 1).ReadAsArray()) >= 0.0
    log = json.load(open(res["RUN_LOG"]))
    assert log["method"] == "svatark" and log["options"]["coarse_offset"] == pytest.approx(0.04, abs=1e-6)
    assert {"point_model", "areal_model", "sill_per_date", "pooled_areal_experimental"} <= set(log["residual"]["variogram"])


def test_bias_correction_without_stations_is_refused_before_running(run_alg, scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="needs stations and an in-situ table"):
        run_alg("downscale_svatark", {"SOIL_MOISTURE": scene["sm"], "NDVI": [scene["ndvi"]], "BIAS_CORRECTION": True,
                                      "OUTPUT": str(tmp_path / "x.tif")})
    assert not os.path.exists(tmp_path / "x.tif")


def test_drought_anomaly_writes_anomalies_and_the_dry_share(run_alg, make_raster, tmp_path):
    dates = [dt.date(y, 7, 1) for y in (2019, 2020, 2021, 2022)]
    stack = np.stack([np.full((4, 5), v, np.float32) for v in (0.30, 0.32, 0.34, 0.20)])
    stack[:, 0, 0] = 0.25
    src = make_raster("series.tif", stack, descriptions=[d.isoformat() for d in dates])
    out, csv_path = str(tmp_path / "anom.tif"), str(tmp_path / "dry.csv")
    res = run_alg("drought_anomaly", {"INPUT": str(src), "PERIOD_DAYS": 10, "OUTPUT": out, "SHARES_CSV": csv_path})
    ds = gdal.Open(res["OUTPUT"])
    a = ds.GetRasterBand(4).ReadAsArray()
    others = np.array([0.30, 0.32, 0.34])
    assert a[1, 1] == pytest.approx((0.20 - others.mean()) / others.std(ddof=1), rel=1e-4)
    assert np.isnan(a[0, 0])                          # no variation over the years: no anomaly
    rows = list(csv.DictReader(open(csv_path, encoding="utf-8")))
    assert [r["date"] for r in rows] == [d.isoformat() for d in dates]
    assert float(rows[3]["share_below_minus_1sd"]) == pytest.approx(1.0)
