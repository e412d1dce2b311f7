"""The cross-scale network through Processing: training a verified folder, applying it, self-supervised
runs on the Delaware sample (ESA CCI 0.25° + 1 km elevation, no NDVI) from qgis_process."""
from __future__ import annotations

import datetime as dt
import glob
import json
import os

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

K, N = 10, 5  # 1 km pixels per 10 km cell, cells per side
DATES = [dt.date(2018, 1, d) for d in (2, 9, 16, 23)]
ORIGIN = (500000.0, 4400000.0)
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data", "delaware")


def _mean(a, k):
    n = a.shape[-1] // k
    return a.reshape(n, k, n, k).mean(axis=(1, 3)).astype(np.float32)


@pytest.fixture
def products(make_raster):
    """A 1 km truth driven by NDVI; the 10 km product and a 5 km 'finer product' are its block means."""
    n = N * K
    y, x = np.mgrid[0:n, 0:n] / n
    ndvi = (0.5 + 0.25 * np.sin(11 * x) * np.cos(9 * y)).astype(np.float32)
    truth = [(0.12 + 0.04 * i + 0.1 * y + 0.3 * (0.5 - ndvi)).astype(np.float32) for i in range(len(DATES))]
    coarse = [str(make_raster(f"SM_{d:%Y%m%d}.tif", _mean(f, K), origin=ORIGIN, pixel=(10000.0, 10000.0)))
              for d, f in zip(DATES, truth)]
    finer = [str(make_raster(f"SM5_{d:%Y%m%d}.tif", _mean(f, K // 2), origin=ORIGIN, pixel=(5000.0, 5000.0)))
             for d, f in zip(DATES, truth)]
    return {"sm": coarse, "fine": finer, "ndvi": str(make_raster("ndvi.tif", ndvi, origin=ORIGIN)), "truth": truth}


def test_train_saves_a_verified_folder_that_downscaling_applies(run_alg, products, tmp_path, feedback):
    folder = tmp_path / "net"
    report = tmp_path / "report.txt"
    res = run_alg("train_cross_scale", {"SOIL_MOISTURE": products["sm"], "FINE_SOIL_MOISTURE": products["fine"],
                                        "NDVI": [products["ndvi"]], "MODEL_OUTPUT": str(folder), "MEMBERS": 2,
                                        "REPORT": str(report)}, feedback=feedback)
    assert res["MODEL_FOLDER"] == str(folder) and sorted(os.listdir(folder)) == ["member_0.onnx", "member_1.onnx"]
    text = report.read_text()
    assert "scheme R1: inputs sm_window, ndvi_window, ndvi" in text and "coherent_bilinear" in text
    assert any("beat" in m for m in feedback.infos)
    out = str(tmp_path / "down.tif")
    res = run_alg("downscale_cross_scale", {"SOIL_MOISTURE": products["sm"], "NDVI": [products["ndvi"]],
                                            "MODEL_FOLDER": str(folder), "OUTPUT": out})
    ds = gdal.Open(out)
    # the model was trained 10 → 5 km: the default output is the product's cell ÷ 2
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (2 * N, 2 * N, len(DATES))
    est = ds.ReadAsArray()
    truth5 = np.stack([_mean(f, K // 2) for f in products["truth"]])
    blocky = np.stack([np.kron(_mean(f, K), np.ones((2, 2))) for f in products["truth"]])
    assert np.sqrt(np.mean((est - truth5) ** 2)) < 0.6 * np.sqrt(np.mean((blocky - truth5) ** 2))
    assert os.path.exists(res["SPREAD"]) and json.load(open(res["RUN_LOG"]))["coherent"] is True
    # a member changed after writing is refused, with the reason, not a traceback
    member = folder / "member_1.onnx"
    blob = bytearray(member.read_bytes())
    blob[len(blob) // 2] ^= 0x04
    member.write_bytes(bytes(blob))
    with pytest.raises(QgsProcessingException, match="refused"):
        run_alg("downscale_cross_scale", {"SOIL_MOISTURE": products["sm"], "NDVI": [products["ndvi"]],
                                          "MODEL_FOLDER": str(folder), "OUTPUT": str(tmp_path / "x.tif")})


def test_an_existing_model_folder_is_not_overwritten_by_default(run_alg, products, tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    with pytest.raises(QgsProcessingException, match="already exists"):
        run_alg("train_cross_scale", {"SOIL_MOISTURE": products["sm"], "NDVI": [products["ndvi"]],
                                      "MODEL_OUTPUT": str(folder)})


@pytest.mark.slow
def test_qgis_process_self_supervised_on_the_delaware_sample(qgis_process, tmp_path):
    sm = sorted(glob.glob(os.path.join(SAMPLE, "esa_cci_sm", "*.tif")))[:10]
    out = tmp_path / "delaware_cs.tif"
    res = qgis_process("run", "soil_moisture_downscaling:downscale_cross_scale", "--",
                       *[f"SOIL_MOISTURE={p}" for p in sm], f"DEM={os.path.join(SAMPLE, 'elevation_1km.tif')}",
                       "MEMBERS=2", f"OUTPUT={out}")
    log = res.stdout + res.stderr
    assert "needs NDVI and none was given: the topographic index" in log
    ds = gdal.Open(str(out))
    # ESA CCI 0.25° → 0.125° (self-supervised ratio 2) over the 2° × 2.5° box
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (16, 20, 10)
    run_log = json.load(open(str(out)[:-4] + ".json"))
    assert run_log["inputs"] == ["sm_window", "mtpi_window", "mtpi"]
    held = run_log["training"]["held_out"]
    assert set(held) >= {"copy", "bilinear", "coherent_bilinear", "network", "network_coherent"}
    assert max(c["mean_abs_diff"] for c in run_log["conservation"] if c["cells"]) < 0.005
    est = ds.ReadAsArray()
    coarse = np.stack([gdal.Open(p).ReadAsArray() for p in sm])
    has_coarse = np.kron(coarse > -1.0, np.ones((2, 2))).astype(bool)  # nodata is -3.4e38
    assert np.isfinite(est[has_coarse]).mean() > 0.8 and not np.isfinite(est[~has_coarse]).any()
    assert 0.0 <= np.nanmin(est) and np.nanmax(est) < 0.6
