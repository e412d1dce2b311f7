"""The Inputs importers inside real QGIS: ISMN stations, SMAP granules, ESA CCI NetCDF — then scored.

The ISMN sample is real (tests/data/ismn). The SMAP granules are built here with Debian's h5py
in the documented layout (tests/smap_granules.py), with AM = in-situ + 0.03 and PM = in-situ −
0.01 at the cells holding the two ISMN stations, so the scores the chain ends with are known:
bias +0.03 and −0.01, ubRMSE 0 (float32 rounding), R 1.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsVectorLayer

from tests.smap_granules import ease2_cell_of, write_l3

gdal.UseExceptions()
DATA = Path(__file__).resolve().parents[1] / "data" / "ismn"
SEPARATE = DATA / "Data_seperate_files_20170810_20180809.zip"
DAYS = [dt.date(2017, 8, 10) + dt.timedelta(days=k) for k in range(6)]


@pytest.fixture
def ismn(run_alg, tmp_path, feedback):
    result = run_alg("import_ismn", {
        "INPUT": str(SEPARATE), "DEPTH_MAX": 0.25, "FLAGS": "G",
        "START": "2017-08-10", "END": "2017-08-31",
        "OUTPUT_STATIONS": str(tmp_path / "ismn_stations.gpkg"), "OUTPUT_SERIES": str(tmp_path / "ismn_daily.csv"),
    }, feedback=feedback)
    return result, feedback


def _daily(path: str) -> dict[str, dict[dt.date, float]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: {dt.date.fromisoformat(r["date"]): float(r[k]) for r in rows if r[k]} for k in rows[0] if k != "date"}


def test_import_ismn_writes_station_layer_and_daily_table(ismn):
    result, feedback = ismn
    layer = QgsVectorLayer(result["OUTPUT_STATIONS"], "ismn", "ogr")
    assert layer.isValid() and layer.featureCount() == 2 and layer.crs().authid() == "EPSG:4326"
    feats = {f["station"]: f for f in layer.getFeatures()}
    arm = feats["COSMOS_ARM-1"]
    assert (arm["network"], arm["land_cover"], arm["climate"], arm["soil_texture"]) == ("COSMOS", "Grassland", "Cfa", "loam")
    assert arm["depth_to_m"] == pytest.approx(0.19) and arm["clay_pct"] == pytest.approx(23.0)
    assert arm.geometry().asPoint().x() == pytest.approx(-97.4878) and arm.geometry().asPoint().y() == pytest.approx(36.6054)
    daily = _daily(result["OUTPUT_SERIES"])
    assert set(daily) == {"COSMOS_ARM-1", "COSMOS_Barrow-ARM"}
    assert min(daily["COSMOS_ARM-1"]) == dt.date(2017, 8, 10) and max(daily["COSMOS_ARM-1"]) <= dt.date(2017, 8, 31)
    assert daily["COSMOS_ARM-1"][dt.date(2017, 8, 10)] == pytest.approx(0.212792, abs=1e-6)
    assert any(m.startswith("COSMOS_ARM-1 · Cosmic-ray-Probe 0–0.19 m:") and "dropped by flag" in m for m in feedback.infos)


def test_import_ismn_takes_the_unpacked_folder(run_alg, tmp_path):
    import zipfile
    with zipfile.ZipFile(SEPARATE) as z:
        z.extractall(tmp_path / "download")
    result = run_alg("import_ismn", {"INPUT": str(tmp_path / "download"), "DEPTH_MAX": 0.25,
                                     "OUTPUT_STATIONS": str(tmp_path / "s.gpkg"), "OUTPUT_SERIES": str(tmp_path / "d.csv"),
                                     "OUTPUT_STATIONS_CSV": str(tmp_path / "s.csv")})
    assert (tmp_path / "d.csv").read_text().splitlines()[0] == "date,COSMOS_ARM-1,COSMOS_Barrow-ARM"
    assert result["OUTPUT_STATIONS_CSV"] == str(tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text().splitlines()[0].startswith("station,name,lat,lon,network,")


def test_import_ismn_explains_an_empty_depth_range(run_alg, tmp_path):
    with pytest.raises(QgsProcessingException, match="none of its 2 soil-moisture sensors lies within 0–0.05 m"):
        run_alg("import_ismn", {"INPUT": str(SEPARATE), "OUTPUT_STATIONS": str(tmp_path / "s.gpkg"),
                                "OUTPUT_SERIES": str(tmp_path / "d.csv")})
    assert not (tmp_path / "d.csv").exists()


def _granules(tmp_path: Path, daily: dict[str, dict[dt.date, float]], stations: dict[str, tuple[float, float]]) -> list[str]:
    files = []
    for day in DAYS:
        am, pm = {}, {}
        for sid, (lon, lat) in stations.items():
            cell = ease2_cell_of(36, lon, lat)
            am[cell] = daily[sid][day] + 0.03
            pm[cell] = daily[sid][day] - 0.01
        files.append(str(write_l3(tmp_path, day.strftime("%Y%m%d"), 36, am=am, pm=pm)))
    return files


def test_from_ismn_and_smap_granules_to_scores_and_site_report(ismn, run_alg, tmp_path):
    result, _ = ismn
    daily = _daily(result["OUTPUT_SERIES"])
    layer = QgsVectorLayer(result["OUTPUT_STATIONS"], "ismn", "ogr")
    where = {f["station"]: (f.geometry().asPoint().x(), f.geometry().asPoint().y()) for f in layer.getFeatures()}
    granules = _granules(tmp_path, daily, where)
    extent = "-160,-95,30,75 [EPSG:4326]"
    am = run_alg("import_product", {"INPUT": granules, "EXTENT": extent, "PASSES": 2, "OUTPUT": str(tmp_path / "am.tif")})
    pm = run_alg("import_product", {"INPUT": granules, "EXTENT": extent, "PASSES": 3, "OUTPUT": str(tmp_path / "pm.tif")})
    ds = gdal.Open(am["OUTPUT"])
    assert [ds.GetRasterBand(b + 1).GetDescription() for b in range(ds.RasterCount)] == [d.isoformat() for d in DAYS]
    assert ds.GetSpatialRef().GetAuthorityCode(None) == "6933" and ds.RasterXSize < 200

    scores = run_alg("score_stations", {
        "PRODUCT": [am["OUTPUT"]], "PRODUCT_NAME": "smap_am", "COARSE": [pm["OUTPUT"]], "COARSE_NAME": "smap_pm",
        "STATIONS": result["OUTPUT_STATIONS"], "INSITU_CSV": result["OUTPUT_SERIES"],
        "SCORES_CSV": str(tmp_path / "scores.csv"), "SCORES": str(tmp_path / "scores.gpkg"),
    })
    with open(scores["SCORES_CSV"], newline="") as f:
        rows = {(r["station"], r["product"]): r for r in csv.DictReader(f)}
    for sid in ("COSMOS_ARM-1", "COSMOS_Barrow-ARM"):
        for product, bias in (("smap_am", 0.03), ("smap_pm", -0.01)):
            row = rows[(sid, product)]
            assert int(row["n"]) == len(DAYS)
            assert float(row["bias"]) == pytest.approx(bias, abs=1e-6)
            assert float(row["ubrmse"]) < 1e-6 and float(row["r"]) == pytest.approx(1.0, abs=1e-5)
        assert rows[(sid, "smap_am")]["land_cover"] in ("Grassland", "Water")

    report = run_alg("site_report", {
        "PRODUCTS": [am["OUTPUT"]], "PRODUCT_NAMES": "smap_am", "COARSE": [pm["OUTPUT"]], "COARSE_NAME": "smap_pm",
        "STATIONS": result["OUTPUT_STATIONS"], "INSITU_CSV": result["OUTPUT_SERIES"],
        "REPORT": str(tmp_path / "report.html"),
    })
    html = Path(report["REPORT"]).read_text(encoding="utf-8")
    assert "By land_cover" in html and "By climate" in html and "Grassland" in html


def test_import_esa_cci_netcdf_in_qgis(run_alg, shared_data, tmp_path, feedback):
    files = sorted(str(p) for p in (shared_data / "esa_cci_netcdf").glob("*.nc"))
    result = run_alg("import_product", {"INPUT": files, "EXTENT": "-100,-90,30,40 [EPSG:4326]",
                                        "OUTPUT": str(tmp_path / "cci.tif")}, feedback=feedback)
    ds = gdal.Open(result["OUTPUT"])
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (40, 40, 5)
    assert ds.GetGeoTransform() == pytest.approx((-100, 0.25, 0, 40, 0, -0.25))
    assert ds.GetRasterBand(5).GetDescription() == "2016-12-31"
    data = ds.ReadAsArray()
    assert np.isfinite(data).sum() > 2000 and np.nanmax(data) <= 1
    assert any(m.startswith("2016-12-27:") and "of 1600 cells valid" in m for m in feedback.infos)


def test_import_product_refuses_a_foreign_file(run_alg, make_raster, tmp_path):
    tif = make_raster("sm_20180101.tif", np.full((2, 2), 0.2, np.float32))
    with pytest.raises(QgsProcessingException, match="not as a SMAP HDF5 or ESA CCI NetCDF product"):
        run_alg("import_product", {"INPUT": [str(tif)], "OUTPUT": str(tmp_path / "o.tif")})


@pytest.mark.slow
def test_qgis_process_runs_both_importers(qgis_process, tmp_path):
    g = write_l3(tmp_path, "20170810", 36, am={(100, 300): 0.2}, pm={(100, 301): 0.3})
    out = tmp_path / "smap.tif"
    proc = qgis_process("--json", "run", "soil_moisture_downscaling:import_product", "--", f"INPUT={g}",
                        "PASSES=1", f"OUTPUT={out}")
    assert json.loads(proc.stdout)["results"]["OUTPUT"] == str(out)
    ds = gdal.Open(str(out))
    assert ds.RasterCount == 1 and np.isfinite(ds.ReadAsArray()).sum() == 2
    series = tmp_path / "daily.csv"
    qgis_process("run", "soil_moisture_downscaling:import_ismn", "--", f"INPUT={SEPARATE}", "DEPTH_MAX=0.25",
                 f"OUTPUT_STATIONS={tmp_path / 'st.gpkg'}", f"OUTPUT_SERIES={series}")
    assert series.read_text().splitlines()[0] == "date,COSMOS_ARM-1,COSMOS_Barrow-ARM"


def test_prepare_covariates_ndvi_from_bands_is_a_dated_covariate(run_alg, make_raster, tmp_path, feedback):
    dates = [dt.date(2018, 1, 1) + dt.timedelta(days=8 * k) for k in range(12)]
    red, nir, qa = [], [], []
    for k, d in enumerate(dates):
        tag = d.strftime("%Y%m%d")
        red.append(str(make_raster(f"b1_{tag}.tif", np.full((3, 4), 500, np.int16), nodata=-28672)))
        nir.append(str(make_raster(f"b2_{tag}.tif", np.full((3, 4), 3500 if k != 5 else 9000, np.int16), nodata=-28672)))
        q = np.zeros((3, 4), np.uint8)
        q[1, 1] = 2 if k == 5 else 0
        qa.append(str(make_raster(f"qa_{tag}.tif", q, nodata=255)))
    out = str(tmp_path / "ndvi_ready.tif")
    run_alg("prepare_covariates", {"INDEX": 1, "RED": red, "NIR": nir, "REFLECTANCE_SCALE": 0.0001,
                                   "QUALITY": qa, "QUALITY_VALUES": "0", "VALID_MAX": 0.8, "OUTPUT": out},
            feedback=feedback)
    ds = gdal.Open(out)
    data = ds.ReadAsArray()
    assert ds.RasterCount == 12 and ds.GetRasterBand(6).GetDescription() == "2018-02-10"
    # date 6: NIR 0.9 → NDVI 0.89 > 0.8 masked everywhere (+ the cloudy pixel's QA), refilled from 0.75 around
    assert np.allclose(data, 0.75, atol=1e-6)
    assert any("of 144 pixel-dates: 12 masked, 12 filled" in m for m in feedback.infos), feedback.infos
    check = run_alg("check_inputs", {"INPUTS": [out], "OUTPUT_HTML": str(tmp_path / "c.html")})
    assert check["DATE_COUNT"] == 12
    with pytest.raises(QgsProcessingException, match="NDVI needs the Near infrared"):
        run_alg("prepare_covariates", {"INDEX": 1, "RED": red, "OUTPUT": str(tmp_path / "x.tif")})


def test_imported_esa_cci_is_downscaled_directly(run_alg, shared_data, tmp_path, feedback):
    """Real ESA CCI NetCDF over the Delaware sample's box → import → regression downscaling on the 1 km DEM."""
    files = sorted(str(p) for p in (shared_data / "esa_cci_netcdf").glob("*.nc"))
    imported = run_alg("import_product", {"INPUT": files, "EXTENT": "-76.5,-74.5,37.75,40.25 [EPSG:4326]",
                                          "OUTPUT": str(tmp_path / "cci_delaware.tif")}, feedback=feedback)
    ds = gdal.Open(imported["OUTPUT"])
    dates = [ds.GetRasterBand(b + 1).GetDescription() for b in range(ds.RasterCount)]
    assert dates and set(dates) <= {f"2016-12-{d}" for d in range(27, 32)}
    assert any("left out (no valid cell)" in m for m in feedback.infos)  # winter days without a retrieval here
    dem = Path(__file__).resolve().parents[2] / "sample_data" / "delaware" / "elevation_1km.tif"
    out = str(tmp_path / "down.tif")
    run_alg("downscale_regression", {"SOIL_MOISTURE": [imported["OUTPUT"]], "DEM": [str(dem)], "REGRESSOR": 1,
                                     "N_ESTIMATORS": 20, "OUTPUT": out})
    down = gdal.Open(out)
    assert [down.GetRasterBand(b + 1).GetDescription() for b in range(down.RasterCount)] == dates
    assert down.RasterXSize > 8 * 10  # 0.25° cells → the DEM's ~1 km pixels
    log = json.loads(Path(out).with_suffix(".json").read_text())
    conservation = {c["date"]: c for c in log["conservation"]}
    assert list(conservation) == dates
    ds_counts = [int(np.isfinite(ds.GetRasterBand(b + 1).ReadAsArray()).sum()) for b in range(ds.RasterCount)]
    assert [c["cells"] for c in conservation.values()] == ds_counts  # every imported cell is downscaled
    assert all(c["mean_abs_diff"] < 0.005 for c in conservation.values())
