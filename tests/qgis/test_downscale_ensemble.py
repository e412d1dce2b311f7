"""'Downscale with an ensemble' in real QGIS: bundled model, qgis_process, refusals."""
from __future__ import annotations

import glob
import os
import shutil

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SAMPLE = os.path.join(ROOT, "sample_data", "delaware")
BUNDLED = os.path.join(ROOT, "models", "insitu_hgb_dem")


def _sm(n=4):
    return sorted(glob.glob(os.path.join(SAMPLE, "esa_cci_sm", "*.tif")))[-n:]


def test_bundled_ensemble_downscales_the_delaware_sample(run_alg, tmp_path, feedback):
    out = str(tmp_path / "ens.tif")
    res = run_alg("downscale_ensemble", {"SOIL_MOISTURE": _sm(), "DEM": [os.path.join(SAMPLE, "elevation_1km.tif")],
                                         "MODEL_FOLDER": BUNDLED, "OUTPUT": out,
                                         "STATIONS_CSV": os.path.join(SAMPLE, "deos_stations.csv"),
                                         "INSITU_CSV": os.path.join(SAMPLE, "deos_daily_vwc.csv"),
                                         "SCORES_CSV": str(tmp_path / "s.csv")}, feedback=feedback)
    m, s, d = (gdal.Open(res[k]) for k in ("OUTPUT", "SPREAD", "DOMAIN_MASK"))
    assert m.RasterCount == s.RasterCount == d.RasterCount == 4
    assert m.GetRasterBand(4).GetDescription() == "2018-01-31"
    mean, spread = m.GetRasterBand(4).ReadAsArray(), s.GetRasterBand(4).ReadAsArray()
    ok = np.isfinite(mean)
    assert ok.sum() > 10000
    assert 0.0 <= np.nanmin(mean) and np.nanmax(mean) < 0.6
    assert np.all(spread[ok] >= 0) and np.nanmean(spread) < 0.1
    assert any("insitu_hgb_dem" in i for i in feedback.infos)
    assert (tmp_path / "s.csv").exists()


def test_missing_role_and_tampered_model_are_refused(run_alg, tmp_path, make_raster):
    nd = make_raster("ndvi.tif", np.full((300, 240), 0.5, np.float32), origin=(-76.5, 40.25),
                     pixel=(1 / 120, 1 / 120), epsg=4326)
    with pytest.raises(QgsProcessingException, match="mtpi"):
        run_alg("downscale_ensemble", {"SOIL_MOISTURE": _sm(1), "NDVI": [str(nd)], "MODEL_FOLDER": BUNDLED,
                                       "OUTPUT": str(tmp_path / "x.tif")})
    copy = tmp_path / "tampered"
    shutil.copytree(BUNDLED, copy)
    member = sorted(copy.glob("*.onnx"))[-1]
    data = bytearray(member.read_bytes())
    data[len(data) // 2] ^= 0xFF
    member.write_bytes(bytes(data))
    with pytest.raises(QgsProcessingException, match="refused"):
        run_alg("downscale_ensemble", {"SOIL_MOISTURE": _sm(1), "DEM": [os.path.join(SAMPLE, "elevation_1km.tif")],
                                       "MODEL_FOLDER": str(copy), "OUTPUT": str(tmp_path / "y.tif")})
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob("y*"))


def test_qgis_process_runs_the_bundled_ensemble(qgis_process, tmp_path):
    out = tmp_path / "qp_ens.tif"
    qgis_process("run", "soil_moisture_downscaling:downscale_ensemble", "--",
                 *[f"SOIL_MOISTURE={p}" for p in _sm(2)], f"DEM={os.path.join(SAMPLE, 'elevation_1km.tif')}",
                 "MODEL=0", f"OUTPUT={out}")
    assert gdal.Open(str(out)).RasterCount == 2


def test_automatic_choice_takes_the_richest_tier_the_layers_satisfy(run_alg, tmp_path, feedback, make_raster):
    dem = os.path.join(SAMPLE, "elevation_1km.tif")
    res = run_alg("downscale_ensemble", {"SOIL_MOISTURE": _sm(2), "DEM": [dem], "OUTPUT": str(tmp_path / "a.tif")},
                  feedback=feedback)
    chosen = [i for i in feedback.infos if "Chose the bundled tier" in i]
    assert chosen and "'insitu_hgb_dem'" in chosen[0] and "'insitu_hgb_veg' (rank 2) would also need 'ndvi'" in chosen[0]
    # the calibrated interval is written next to the output: scale · (spread + floor) of the tier's card
    from soil_moisture_downscaling.core.learn.model_folder import Ensemble
    cal = Ensemble.load(os.path.join(ROOT, "models", "insitu_hgb_dem")).card["uncertainty"]
    half, sd = gdal.Open(res["INTERVAL"]).ReadAsArray(), gdal.Open(res["SPREAD"]).ReadAsArray()
    ok = np.isfinite(half)
    assert ok.sum() > 10000 and np.allclose(half[ok], cal["scale"] * (sd[ok] + cal["floor"]), atol=1e-6)
    assert any("Interval: 90%" in i for i in feedback.infos)
    nd = make_raster("ndvi.tif", np.full((300, 240), 0.5, np.float32), origin=(-76.5, 40.25),
                     pixel=(1 / 120, 1 / 120), epsg=4326)
    feedback.infos.clear()
    run_alg("downscale_ensemble", {"SOIL_MOISTURE": _sm(1), "DEM": [dem], "NDVI": [str(nd)],
                                   "OUTPUT": str(tmp_path / "b.tif")}, feedback=feedback)
    assert any("Chose the bundled tier 'insitu_hgb_veg'" in i for i in feedback.infos)
