"""The plugin as qgis_process sees it: classFactory(None), initProcessing(), nothing else."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_list_shows_provider_and_algorithm(qgis_process):
    out = qgis_process("list").stdout
    assert "Soil Moisture Downscaling" in out
    assert "soil_moisture_downscaling:check_inputs" in out


def test_run_check_inputs(qgis_process, make_raster, tmp_path):
    a = make_raster("sm_20180105.tif", np.full((2, 3), 0.2, np.float32), nodata=-9999)
    b = make_raster("sm_20180106.tif", np.full((2, 3), 0.3, np.float32), nodata=-9999)
    report = tmp_path / "report.html"
    proc = qgis_process(
        "--json", "run", "soil_moisture_downscaling:check_inputs", "--",
        f"INPUTS={a}", f"INPUTS={b}", f"OUTPUT_HTML={report}",
    )
    results = json.loads(proc.stdout)["results"]
    assert (results["LAYER_COUNT"], results["DATE_COUNT"], results["WARNING_COUNT"]) == (2, 2, 0)
    html = report.read_text(encoding="utf-8")
    assert "2018-01-05 … 2018-01-06 (2 distinct)" in html and "EPSG:32618" in html


def test_run_reports_a_bad_input_as_failure(qgis_process, tmp_path):
    proc = qgis_process(
        "run", "soil_moisture_downscaling:check_inputs", "--",
        f"INPUTS={tmp_path / 'absent.tif'}", f"OUTPUT_HTML={tmp_path / 'r.html'}", check=False,
    )
    assert proc.returncode != 0
    assert not (tmp_path / "r.html").exists()


def test_run_svatark_with_the_shared_parameters_alone(qgis_process, make_raster, tmp_path):
    from osgeo import gdal
    n, k = 30, 6
    y, x = np.mgrid[0:n, 0:n] / n
    dem = make_raster("dem.tif", (60 + 50 * np.cos(4 * x + 1) + 30 * y).astype(np.float32))
    sm = [make_raster(f"SM_201801{d:02d}.tif", (0.2 + 0.03 * np.sin(np.mgrid[0:n // k, 0:n // k][1] + d)).astype(np.float32),
                      pixel=(6000.0, 6000.0)) for d in (2, 9)]
    out = tmp_path / "svatark.tif"
    proc = qgis_process("--json", "run", "soil_moisture_downscaling:downscale_svatark", "--",
                        *[f"SOIL_MOISTURE={p}" for p in sm], f"DEM={dem}", f"OUTPUT={out}")
    results = json.loads(proc.stdout)["results"]
    ds = gdal.Open(str(out))
    assert ds.RasterCount == 2 and results["KRIGING_SD"].endswith("svatark_kriging_sd.tif")
    assert gdal.Open(results["KRIGING_SD"]).RasterCount == 2
