"""The input check outside QGIS (core.inputs.check and ``smds check``): what blocks a run is found with the
run's own message, and the exit status says so."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from core.inputs.check import BLOCKING, BLOCKS, INFO, WARNING, check_layers
from core.inputs.roles import Role
from tests.unit.cli_package import run_cli


def test_percent_soil_moisture_blocks_with_the_runs_message(make_raster):
    sm = make_raster("SMAP_sm_20180131.tif", np.array([[12.0, 35.0], [20.0, -9999]], np.float32), nodata=-9999,
                     pixel=(36000.0, 36000.0))
    dem = make_raster("elevation.tif", np.array([[10.0, 80.0], [150.0, 40.0]], np.float32))  # no NoData value
    report = check_layers([(str(dem), "elevation", Role.DEM, "given"), (str(sm), "SMAP_sm_20180131", None, "")])
    smap = report.layers[1]
    assert (smap.role, smap.role_source) == (Role.SOIL_MOISTURE, "guessed from the name")
    assert smap.bands[0].stats[:2] == pytest.approx((12.0, 35.0))
    assert report.blocking_count == 1 and "percent" in smap.blocking[0] and "scale factor to 0.01" in smap.blocking[0]
    assert report.layers[0].blocking == [] and report.warning_count == 2  # the DEM's missing NoData value
    lines = report.lines()
    assert [level for level, _ in lines] == [INFO] * 4 + [WARNING, BLOCKING]
    assert lines[0][1] == "2 layer(s); CRS: EPSG:32618"
    assert lines[1][1] == "dates: 2018-01-31 … 2018-01-31 (1 distinct)"
    assert lines[2][1].startswith("elevation: EPSG:32618, 2 × 2 pixels of 1000 × 1000 meters, 1 band(s); "
                                  "dates: none found (static layer); role: Elevation (DEM) (given;")
    assert lines[-1][1].startswith(f"SMAP_sm_20180131: {BLOCKS}unit check as Soil moisture, band 1: ")


def test_no_crs_and_south_up_grids_block(make_raster, tmp_path):
    path = str(make_raster("ndvi_20180101.tif", np.full((2, 2), 0.4, np.float32), nodata=-1))
    ds = gdal.Open(path, gdal.GA_Update)
    ds.SetProjection("")
    ds.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    ds = None
    (info,) = check_layers([(path, "ndvi_20180101", None, "")]).layers
    assert info.crs == "none" and info.role is Role.NDVI
    assert [b.split(".")[0] for b in info.blocking] == ["it has no coordinate reference system",
                                                        "it is not a north-up georeferenced raster"]


def test_cli_check_prints_the_lines_and_exits_1_on_a_blocking_problem(make_raster, tmp_path):
    good = str(make_raster("ESA_CCI_SM_20180101.tif", np.full((2, 2), 0.25, np.float32), nodata=-9999,
                           pixel=(25000.0, 25000.0)))
    bad = str(make_raster("ESA_CCI_SM_20180102.tif", np.full((2, 2), 25.0, np.float32), nodata=-9999,
                          pixel=(25000.0, 25000.0)))
    ok = run_cli("check", "--soil-moisture", good, "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[:2] == ["1 layer(s); CRS: EPSG:32618", "dates: 2018-01-01 … 2018-01-01 (1 distinct)"]
    html = tmp_path / "report.html"
    refused = run_cli("check", "--inputs", good, bad, "--output-html", str(html), "--quiet")
    assert refused.returncode == 1
    lines = refused.stdout.splitlines()
    assert lines[-1] == f"OUTPUT_HTML: {html}"
    assert lines[-2].startswith(f"ESA_CCI_SM_20180102: {BLOCKS}unit check as Soil moisture, band 1: values from 25")
    assert not any(line.startswith("ESA_CCI_SM_20180101: blocks") for line in lines)
    assert "percent" in html.read_text(encoding="utf-8")
    empty = run_cli("check", "--quiet")
    assert empty.returncode == 1 and "Give at least one raster layer" in empty.stderr
