"""downscale_stacking in real QGIS: zones from polygons, the report, a saved stack applied again."""
from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

DATES = [dt.date(2019, 5, d) for d in (1, 9, 17, 25)]
K, N = 8, 10
ORIGIN = (500000.0, 4400000.0)


@pytest.fixture
def scene(make_raster, tmp_path):
    n = N * K
    y, x = np.mgrid[0:n, 0:n] / n
    ndvi = (0.45 + 0.3 * np.sin(4 * x + 0.3) * np.cos(3 * y)).astype(np.float32)
    east = x >= 0.5
    fields = [np.where(east, 0.45 - 0.25 * ndvi, 0.1 + 0.25 * ndvi).astype(np.float32) + 0.01 * i for i in range(4)]
    block = lambda a: a.reshape(N, K, N, K).mean(axis=(1, 3))  # noqa: E731
    sm = [str(make_raster(f"SM_{d:%Y%m%d}.tif", block(f), origin=ORIGIN, pixel=(8000.0, 8000.0)))
          for d, f in zip(DATES, fields)]
    gpkg = str(tmp_path / "zones.gpkg")  # two polygons: "west" and "east" halves, a text field
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(gpkg)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32618)
    lay = ds.CreateLayer("units", srs, ogr.wkbPolygon)
    lay.CreateField(ogr.FieldDefn("unit", ogr.OFTString))
    x0, y0, w = ORIGIN[0], ORIGIN[1], n * 1000.0
    for name, (a, b) in (("west", (x0, x0 + w / 2)), ("east", (x0 + w / 2, x0 + w))):
        f = ogr.Feature(lay.GetLayerDefn())
        f.SetField("unit", name)
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({a} {y0},{b} {y0},{b} {y0 - w},{a} {y0 - w},{a} {y0}))"))
        lay.CreateFeature(f)
    f = lay = None  # a layer must go before its data source (GDAL)
    ds = None
    return {"sm": sm, "ndvi": str(make_raster("ndvi.tif", ndvi, origin=ORIGIN)), "zones": gpkg}


@pytest.mark.slow
def test_zones_from_polygons_report_and_a_saved_stack(run_alg, scene, tmp_path, feedback):
    out = str(tmp_path / "stack.tif")
    report = str(tmp_path / "stack.html")
    model = str(tmp_path / "model")
    res = run_alg("downscale_stacking", {
        "SOIL_MOISTURE": scene["sm"], "NDVI": [scene["ndvi"]], "ZONES": 4, "ZONE_POLYGONS": scene["zones"],
        "ZONE_FIELD": "unit", "LEARNERS": [0, 2], "N_ESTIMATORS": 40, "MIN_ZONE_SAMPLES": 60,
        "OUTPUT": out, "REPORT": report, "MODEL_OUT": model}, feedback=feedback)
    assert res["OUTPUT"] == out and os.path.exists(res["RUN_LOG"])
    assert any("Zones from polygons: 1 = east, 2 = west" in m for m in feedback.infos), feedback.infos
    # NDVI alone cannot tell the halves apart: both zones keep their own stack
    assert sorted(m for m in feedback.infos if m.startswith("Zone ")) == [
        "Zone 1: 200 samples, zone stack", "Zone 2: 200 samples, zone stack"], feedback.infos
    html = open(report, encoding="utf-8").read()
    assert "Zoned against unzoned" in html and "<svg" in html and ("SHAP" in html or "shuffled" in html)
    again = str(tmp_path / "again.tif")
    run_alg("downscale_stacking", {"SOIL_MOISTURE": scene["sm"], "NDVI": [scene["ndvi"]], "ZONES": 4,
                                   "ZONE_POLYGONS": scene["zones"], "ZONE_FIELD": "unit", "MODEL_IN": model,
                                   "OUTPUT": again})
    a, b = gdal.Open(out), gdal.Open(again)
    for i in range(1, len(DATES) + 1):
        np.testing.assert_array_equal(a.GetRasterBand(i).ReadAsArray(), b.GetRasterBand(i).ReadAsArray())


def test_asking_for_layer_zones_without_a_layer_says_what_to_give(run_alg, scene, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="zone raster, or zone polygons"):
        run_alg("downscale_stacking", {"SOIL_MOISTURE": scene["sm"], "NDVI": [scene["ndvi"]], "ZONES": 4,
                                       "OUTPUT": str(tmp_path / "x.tif")})
    assert not os.path.exists(tmp_path / "x.tif")


@pytest.mark.slow
def test_qgis_process_runs_every_installed_learner_inside_qgis(qgis_process, scene, tmp_path):
    """XGBoost, LightGBM and CatBoost (when installed, as in CI) import and export to ONNX inside QGIS's Python."""
    import json

    from soil_moisture_downscaling.core.learn.stacking import LEARNERS, missing_packages

    keys = list(LEARNERS)
    installed = [k for k in keys if not missing_packages([k])]
    out = str(tmp_path / "qp.tif")
    proc = qgis_process("run", "soil_moisture_downscaling:downscale_stacking", "--",
                        *[f"SOIL_MOISTURE={p}" for p in scene["sm"]], f"NDVI={scene['ndvi']}",
                        *[f"LEARNERS={keys.index(k)}" for k in ("hgb", "xgboost", "lightgbm", "catboost")],
                        "N_ESTIMATORS=30", f"OUTPUT={out}")
    assert os.path.exists(out), proc.stdout
    ds = gdal.Open(out)
    assert ds.RasterCount == len(DATES)
    log = json.load(open(out[:-4] + ".json"))
    used = log["training"]["global"]["learners"]
    assert used == [k for k in ("hgb", "xgboost", "lightgbm", "catboost") if k in installed]
    if os.environ.get("CI"):  # CI installs every optional learner and shap (requirements-dev*.txt)
        assert used == ["hgb", "xgboost", "lightgbm", "catboost"], log["training"]["skipped_learners"]
        assert log["training"]["shap"]["all"][0]["feature"] == "ndvi"  # SHAP values computed inside QGIS
