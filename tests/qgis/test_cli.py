"""The command line gives the toolbox's output bit for bit: same inputs and defaults as ``processing.run``
(small scene, regression and SVATARK) and as ``qgis_process`` (the Delaware demo)."""
from __future__ import annotations

import datetime as dt
import filecmp
import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest

K, N = 10, 5
DATES = [dt.date(2018, 1, d) for d in (2, 9, 16)]
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data", "delaware")


@pytest.fixture
def cli(plugin_dir):
    def run(*args: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, "-m", "soil_moisture_downscaling", *args], capture_output=True,
                              text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc
    return run


@pytest.fixture
def scene(make_raster):
    n = N * K
    y, x = np.mgrid[0:n, 0:n] / n
    ndvi = (0.45 + 0.3 * np.sin(7 * x) * np.cos(5 * y)).astype(np.float32)
    dem = (100 + 80 * np.cos(4 * x + 1) + 40 * y).astype(np.float32)
    sm = [str(make_raster(f"SM_{d:%Y%m%d}.tif",
                          np.clip(0.1 + 0.03 * i + 0.3 * (0.8 - ndvi), 0.02, 0.6).reshape(N, K, N, K).mean(axis=(1, 3)),
                          pixel=(10000.0, 10000.0)))
          for i, d in enumerate(DATES)]
    return sm, str(make_raster("ndvi.tif", ndvi)), str(make_raster("dem.tif", dem))


def _options(extra: dict) -> list[str]:
    """Processing parameters → command-line options (kebab case; True → the bare flag)."""
    out = []
    for k, v in extra.items():
        out += [f"--{k.lower().replace('_', '-')}"] + ([] if v is True else [str(v)])
    return out


@pytest.mark.parametrize("method, extra", [("regression", {}), ("svatark", {}), ("ensemble", {}),
                                           ("ensemble", {"ANCHOR_TO_COARSE": True}),
                                           ("cross_scale", {"MEMBERS": 2, "MAX_EPOCHS": 20}),
                                           ("stacking", {"N_ESTIMATORS": 20, "FOLDS": 3}),
                                           ("deep_ensemble", {"MAX_EPOCHS": 10, "JUDGE_SPLITS": 2})])
def test_cli_output_is_the_processing_output_bit_for_bit(run_alg, cli, scene, tmp_path, method, extra):
    sm, ndvi, dem = scene
    # enums: indices in Processing, short values on the command line
    enums = {"IMPORTANCE": (3, "none"), "LEARNERS": ([0, 1], "hgb rf")} if method == "stacking" else {}
    res = run_alg(f"downscale_{method}", {"SOIL_MOISTURE": sm, "NDVI": [ndvi], "DEM": [dem],
                                          "OUTPUT": str(tmp_path / "toolbox.tif"), **extra,
                                          **{k: i for k, (i, _) in enums.items()}})
    cli("downscale", method.replace("_", "-"), "--soil-moisture", *sm, "--ndvi", ndvi, "--dem", dem, "--output",
        str(tmp_path / "cli.tif"), *_options(extra),
        *[a for k, (_, v) in enums.items() for a in (f"--{k.lower()}", *v.split())])
    assert filecmp.cmp(res["OUTPUT"], tmp_path / "cli.tif", shallow=False)
    if method == "svatark":  # ATPK residual: the kriging SD beside the output, also identical
        assert filecmp.cmp(res["KRIGING_SD"], tmp_path / "cli_kriging_sd.tif", shallow=False)
    if method in ("cross_scale", "deep_ensemble"):  # networks trained in both: the same ones, so the same spread
        assert filecmp.cmp(res["SPREAD"], tmp_path / "cli_spread.tif", shallow=False)
    if method == "ensemble":  # the automatic tier (MODEL=0) in both, its spread beside the mean
        assert filecmp.cmp(res["SPREAD"], tmp_path / "cli_spread.tif", shallow=False)
        assert filecmp.cmp(res["INTERVAL"], tmp_path / "cli_interval.tif", shallow=False)  # the bundled tiers are calibrated
        assert filecmp.cmp(res["DOMAIN_MASK"], tmp_path / "cli_outside_domain.tif", shallow=False)


def test_delaware_demo_from_the_cli_is_the_toolbox_and_the_qgis_process_output_bit_for_bit(
        run_alg, qgis_process, cli, tmp_path):
    """The demo's regression on its first 10 days (trend weight 0.46: the trend reaches the pixels).
    ``qgis_process`` binds GSL's CBLAS ahead of OpenBLAS; before ``core.raster.blas`` its output differed
    from the command line's by up to 1.8e-6 m³/m³ on these days (1.6e-5 on the whole month)."""
    from osgeo import gdal
    sm = sorted(glob.glob(os.path.join(SAMPLE, "esa_cci_sm", "*.tif")))[:10]
    dem = os.path.join(SAMPLE, "elevation_1km.tif")
    res = run_alg("downscale_regression", {"SOIL_MOISTURE": sm, "DEM": [dem], "OUTPUT": str(tmp_path / "toolbox.tif")})
    cli("downscale", "regression", "--soil-moisture", *sm, "--dem", dem, "--quiet", "--output", str(tmp_path / "cli.tif"))
    assert filecmp.cmp(res["OUTPUT"], tmp_path / "cli.tif", shallow=False)
    qgis_process("run", "soil_moisture_downscaling:downscale_regression", "--", *[f"SOIL_MOISTURE={p}" for p in sm],
                 f"DEM={dem}", f"OUTPUT={tmp_path / 'qp.tif'}")
    cli_ds, qp_ds = (gdal.Open(str(tmp_path / n)) for n in ("cli.tif", "qp.tif"))
    a, b = cli_ds.ReadAsArray(), qp_ds.ReadAsArray()
    assert a.shape == (10, 300, 240) and np.isfinite(a).mean() > 0.15  # land pixels of the coarse cells with data
    assert np.array_equal(a, b, equal_nan=True)


def test_import_product_from_the_cli_is_the_toolbox_output(run_alg, cli, shared_data, tmp_path):
    files = sorted(str(p) for p in (shared_data / "esa_cci_netcdf").glob("*.nc"))
    extent = "-76.5,-74.5,37.75,40.25 [EPSG:4326]"
    res = run_alg("import_product", {"INPUT": files, "EXTENT": extent, "OUTPUT": str(tmp_path / "toolbox.tif")})
    proc = cli("import-product", "--input", *files, "--extent", extent, "--output", str(tmp_path / "cli.tif"))
    assert f"OUTPUT: {tmp_path / 'cli.tif'}" in proc.stdout
    assert filecmp.cmp(res["OUTPUT"], tmp_path / "cli.tif", shallow=False)


def test_score_from_the_cli_is_the_toolbox_output(run_alg, cli, tmp_path):
    sm = sorted(glob.glob(os.path.join(SAMPLE, "esa_cci_sm", "*.tif")))[:10]
    stations, insitu = os.path.join(SAMPLE, "deos_stations.csv"), os.path.join(SAMPLE, "deos_daily_vwc.csv")
    res = run_alg("score_stations", {"PRODUCT": sm[:5], "PRODUCT_NAME": "first", "COARSE": sm, "STATIONS_CSV": stations,
                                     "INSITU_CSV": insitu, "SCORES_CSV": str(tmp_path / "toolbox.csv")})
    proc = cli("score", "--product", *sm[:5], "--product-name", "first", "--coarse", *sm, "--stations-csv", stations,
               "--insitu-csv", insitu, "--scores-csv", str(tmp_path / "cli.csv"))
    assert filecmp.cmp(res["SCORES_CSV"], tmp_path / "cli.csv", shallow=False)
    assert "DDAG" in proc.stdout  # the table of the log, on stdout


def test_import_ismn_from_the_cli_is_the_toolbox_output(run_alg, cli, tmp_path):
    ismn = os.path.join(os.path.dirname(__file__), "..", "data", "ismn", "Data_seperate_files_20170810_20180809.zip")
    res = run_alg("import_ismn", {"INPUT": ismn, "DEPTH_MAX": 0.25, "START": "2017-09-01", "OUTPUT_STATIONS": "memory:",
                                  "OUTPUT_SERIES": str(tmp_path / "toolbox.csv"),
                                  "OUTPUT_STATIONS_CSV": str(tmp_path / "toolbox_stations.csv")})
    cli("import-ismn", "--input", ismn, "--depth-max", "0.25", "--start", "2017-09-01", "--output-series",
        str(tmp_path / "cli.csv"), "--output-stations-csv", str(tmp_path / "cli_stations.csv"))
    assert filecmp.cmp(res["OUTPUT_SERIES"], tmp_path / "cli.csv", shallow=False)
    assert filecmp.cmp(res["OUTPUT_STATIONS_CSV"], tmp_path / "cli_stations.csv", shallow=False)
    with open(tmp_path / "cli.csv", encoding="utf-8") as f:
        assert next(f).startswith("date,") and next(f).startswith("2017-09-01")


def test_train_cross_scale_from_the_cli_saves_the_toolbox_network(run_alg, cli, scene, tmp_path):
    sm, ndvi, dem = scene
    net = {"MEMBERS": 2, "MAX_EPOCHS": 20}
    res = run_alg("train_cross_scale", {"SOIL_MOISTURE": sm, "NDVI": [ndvi], "MODEL_OUTPUT": str(tmp_path / "toolbox" / "net"),
                                        **net})
    proc = cli("train", "cross-scale", "--soil-moisture", *sm, "--ndvi", ndvi, "--model-output",
               str(tmp_path / "cli" / "net"), "--quiet", *_options(net))
    assert f"MODEL_FOLDER: {tmp_path / 'cli' / 'net'}" in proc.stdout
    members = sorted(os.listdir(res["MODEL_FOLDER"]))
    assert members == ["member_0.onnx", "member_1.onnx"] == sorted(os.listdir(tmp_path / "cli" / "net"))
    for m in members:  # the same weights and the same card (hashes, held-out scores) inside each member
        assert filecmp.cmp(os.path.join(res["MODEL_FOLDER"], m), tmp_path / "cli" / "net" / m, shallow=False)


def test_report_from_the_cli_is_the_toolbox_output(run_alg, cli, tmp_path):
    sm = sorted(glob.glob(os.path.join(SAMPLE, "esa_cci_sm", "*.tif")))[:8]
    stations, insitu = os.path.join(SAMPLE, "deos_stations.csv"), os.path.join(SAMPLE, "deos_daily_vwc.csv")
    common = {"PRODUCTS": sm[:6], "COARSE": sm, "STATIONS_CSV": stations, "INSITU_CSV": insitu}
    res = run_alg("site_report", {**common, "REPORT": str(tmp_path / "toolbox.html"),
                                  "CONSERVATION": str(tmp_path / "toolbox_cons.tif")})
    proc = cli("report", "--products", *sm[:6], "--coarse", *sm, "--stations-csv", stations, "--insitu-csv", insitu,
               "--report", str(tmp_path / "cli.html"), "--conservation", str(tmp_path / "cli_cons.tif"), "--quiet")
    assert f"REPORT: {tmp_path / 'cli.html'}" in proc.stdout
    assert filecmp.cmp(res["SCORES_CSV"], tmp_path / "cli_sites.csv", shallow=False)
    assert filecmp.cmp(res["CONSERVATION"], tmp_path / "cli_cons.tif", shallow=False)
    def html(path, csv_name):  # the same page but for the CSV's name and the minute it was written
        text = open(path, encoding="utf-8").read().replace(csv_name, "SITES.csv")
        return re.sub(r"written \d{4}-\d\d-\d\d \d\d:\d\d", "written …", text)
    assert html(res["REPORT"], "toolbox_sites.csv") == html(tmp_path / "cli.html", "cli_sites.csv")
    # one product, ESA_CCI_SM_v45_Delaware (the single-date files without their dates), scored next to 'coarse'
    assert "ESA_CCI_SM_v45_Delaware" in open(tmp_path / "cli_sites.csv", encoding="utf-8").read()


def test_check_from_the_cli_prints_the_toolbox_lines_and_fails_on_percent(run_alg, plugin_dir, make_raster, tmp_path,
                                                                          feedback):
    # coarse soil moisture in percent (blocks a run), a DEM without NoData value (a warning), two CRSs
    sm = str(make_raster("SMAP_sm_20180131.tif", np.array([[12.0, 35.0], [20.0, -9999]], np.float32), nodata=-9999,
                         pixel=(36000.0, 36000.0)))
    dem = str(make_raster("srtm.tif", np.array([[10.0, 80.0], [150.0, 40.0]], np.float32), epsg=4326,
                          pixel=(0.01, 0.01), origin=(-75.0, 39.0)))
    res = run_alg("check_inputs", {"INPUTS": [sm], "DEM": [dem], "OUTPUT_HTML": str(tmp_path / "toolbox.html")},
                  feedback=feedback)
    assert (res["BLOCKING_COUNT"], res["WARNING_COUNT"]) == (1, 3)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "soil_moisture_downscaling", "check", "--inputs", sm, "--dem", dem,
                           "--output-html", str(tmp_path / "cli.html"), "--quiet"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines.pop() == f"OUTPUT_HTML: {tmp_path / 'cli.html'}"
    logged = [i for i in feedback.infos if not i.startswith(("Reading ", "Results: "))] + feedback.warnings
    assert lines == logged and len(lines) == 4 + 3
    assert lines[-1].startswith("SMAP_sm_20180131: blocks a run: unit check as Soil moisture, band 1: values from 12 "
                                "to 35") and "percent" in lines[-1]
    assert filecmp.cmp(tmp_path / "toolbox.html", tmp_path / "cli.html", shallow=False)
