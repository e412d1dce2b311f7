"""downscale_deep_ensemble through qgis_process: the shared parameters plus the CNN and a model folder; every
output is written, the saved members load back (hashes verified) and, applied through MODEL_IN to the same
inputs, give the same map."""
from __future__ import annotations

import filecmp
import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_deep_ensemble_through_qgis_process_writes_every_output(qgis_process, make_raster, tmp_path):
    from osgeo import gdal

    from soil_moisture_downscaling.core.methods.deep_ensemble import DeepEnsembleModel

    n, k = 36, 6
    y, x = np.mgrid[0:n, 0:n] / n
    dem = make_raster("dem.tif", (60 + 50 * np.cos(4 * x + 1) + 30 * y).astype(np.float32))
    sm = [make_raster(f"SM_201801{d:02d}.tif", (0.2 + 0.03 * np.sin(np.mgrid[0:n // k, 0:n // k][1] + d)).astype(np.float32),
                      pixel=(6000.0, 6000.0)) for d in (2, 9, 16)]
    out, folder = tmp_path / "deep.tif", tmp_path / "members"
    common = [*[f"SOIL_MOISTURE={p}" for p in sm], f"DEM={dem}", "USE_CNN=true", "MAX_EPOCHS=15", "JUDGE_SPLITS=2"]
    proc = qgis_process("--json", "run", "soil_moisture_downscaling:downscale_deep_ensemble", "--", *common,
                        f"OUTPUT={out}", f"MODEL_OUT={folder}")
    results = json.loads(proc.stdout)["results"]
    assert gdal.Open(str(out)).RasterCount == 3
    spread = gdal.Open(results["SPREAD"]).ReadAsArray()
    assert spread.shape == (3, n, n) and np.nanmin(spread) >= 0
    log = json.load(open(results["RUN_LOG"]))
    assert set(log["training"]["held_out_scores"]) == {"dnn", "cnn", "lstm", "ensemble"}
    assert log["training"]["judge_splits"] == 2 and log["training"]["trend_weight_splits"] == 2
    assert "<svg" in open(results["REPORT"], encoding="utf-8").read()
    model = DeepEnsembleModel.load(str(folder))
    assert sorted(model.members) == ["cnn", "dnn", "lstm"]
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["cnn.onnx", "dnn.onnx", "lstm.onnx"]
    again = tmp_path / "again.tif"
    qgis_process("--json", "run", "soil_moisture_downscaling:downscale_deep_ensemble", "--", *common,
                 f"OUTPUT={again}", f"MODEL_IN={folder}")
    assert filecmp.cmp(out, again, shallow=False)
