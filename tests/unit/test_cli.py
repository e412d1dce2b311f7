"""The command line: options and --help from the Processing parameter specs, runs on the engine with the
algorithms' defaults and messages, Ctrl-C cancels cleanly, and Dask gives the single-process output."""
from __future__ import annotations

import dataclasses
import datetime as dt
import filecmp
import glob
import os
import re
import signal
import time

import numpy as np
import pytest
from osgeo import gdal

from tests.unit.cli_package import package, popen_cli, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "sample_data", "delaware")
DELAWARE = ["--soil-moisture", *sorted(glob.glob(os.path.join(SAMPLE, "esa_cci_sm", "*.tif"))),
            "--dem", os.path.join(SAMPLE, "elevation_1km.tif")]
K, N = 10, 6
DATES = [dt.date(2018, 1, d) for d in (2, 9, 16)]


def _squash(text: str) -> str:
    """Whitespace as one space, and argparse's line breaks after a hyphen undone."""
    return re.sub(r"-\s+", "-", re.sub(r"\s+", " ", text))


@pytest.mark.parametrize("name", [m.name for m in package("cli.commands").DOWNSCALE_METHODS])
def test_help_is_built_from_the_algorithms_parameter_specs(name):
    main, commands, specs = package("cli.main"), package("cli.commands"), package("processing_provider.specs")
    method = next(m for m in commands.DOWNSCALE_METHODS if m.name == name)
    with pytest.raises(SystemExit) as done, _captured() as out:
        main.main(["downscale", name, "--help"])
    assert done.value.code == 0
    text = _squash(out.getvalue())
    for spec in specs.SCENE_SPECS + method.specs + method.outputs:
        assert spec.option in text
        # the spec's own help text, not a second copy written for the terminal
        assert _squash(main.plain(spec.help).replace("%%", "%"))[:60] in text, spec.name
    assert "--regressor {svr,rf,hgb}" in text if name == "regression" else "--regressor" not in text
    assert f"soil_moisture_downscaling:{method.algorithm}" in text


@pytest.mark.parametrize("name", [c.name for c in package("cli.commands").COMMANDS]
                         + [f"train {c.name}" for c in package("cli.commands").TRAIN_COMMANDS])
def test_every_commands_help_is_built_from_its_specs(name):
    main, commands = package("cli.main"), package("cli.commands")
    (command,) = [c for c in commands.COMMANDS + commands.TRAIN_COMMANDS if c.name == name.split()[-1]]
    with pytest.raises(SystemExit) as done, _captured() as out:
        main.main([*name.split(), "--help"])
    assert done.value.code == 0
    text = _squash(out.getvalue())
    for spec in command.specs:
        assert spec.option in text and _squash(main.plain(spec.help).replace("%%", "%"))[:60] in text, spec.name
    assert f"soil_moisture_downscaling:{command.algorithm}" in text
    if name == "import-product":
        assert "--passes {am-then-pm,mean,am,pm}" in text


def test_spec_defaults_are_the_methods_option_defaults():
    specs = package("processing_provider.specs")
    regression, svatark = package("core.methods.regression"), package("core.methods.svatark")
    defaults = lambda spec_list: {s.name: s.default for s in spec_list}  # noqa: E731
    assert specs.regression_options(defaults(specs.REGRESSION_SPECS)) == regression.RegressionOptions()
    assert specs.svatark_options(defaults(specs.SVATARK_SPECS)) == svatark.SvatarkOptions()
    assert specs.product_options(defaults(specs.IMPORT_PRODUCT_SPECS)) == package("core.io.products").ProductOptions()
    assert specs.ismn_options(defaults(specs.IMPORT_ISMN_SPECS)) == package("core.io.ismn").IsmnOptions()
    assert specs.cross_scale_options(defaults(specs.cross_scale_network_specs())) == \
        package("core.methods.cross_scale").CrossScaleOptions()
    assert specs.deep_ensemble_options(defaults(specs.deep_ensemble_specs())) == \
        package("core.methods.deep_ensemble").DeepEnsembleOptions()
    opts, rule = specs.stacking_options(defaults(specs.stacking_specs()))
    assert opts == package("core.methods.stacking").StackingMethodOptions() and rule == package("core.raster.zones").ZoneRule()
    import inspect
    predict = package("core.methods.insitu_ensemble.apply").predict
    assert inspect.signature(predict).parameters["anchor_to_coarse"].default is specs.ANCHOR_SPEC.default



def test_ensemble_trainer_spec_defaults_are_the_training_option_defaults():
    specs = package("processing_provider.specs")
    training = package("core.methods.insitu_ensemble.training")
    ens = package("core.methods.insitu_ensemble")
    opts = specs.ensemble_training_options({s.name: s.default for s in specs.TRAIN_ENSEMBLE_SPECS})
    default = training.EnsembleOptions()
    # no scheme chosen = every scheme (a run then keeps those the data support); the configs are the learners'
    assert opts == dataclasses.replace(default, mlp_config=opts.mlp_config, forest_config=opts.forest_config)
    assert opts.schemes == tuple(ens.SCHEMES) and list(specs.ENSEMBLE_FEATURES) == list(ens.FEATURES)
    mlp, forest = package("core.learn.mlp").MLPConfig(), package("core.learn.forest").ForestConfig()
    assert (opts.mlp_config.hidden, opts.mlp_config.max_epochs) == (mlp.hidden, mlp.max_epochs)
    assert opts.forest_config.n_estimators == forest.n_estimators
    with pytest.raises(package("core.errors").InputError, match="not a list of positive widths"):
        specs.hidden_widths("32,0")

def test_import_ismn_and_score_from_the_cli(tmp_path):
    """The real ISMN sample → daily table and stations; scoring a raster of a known field at those stations."""
    from osgeo import osr
    ismn = os.path.join(ROOT, "tests", "data", "ismn", "Data_seperate_files_20170810_20180809.zip")
    bad = run_cli("import-ismn", "--input", ismn, "--flags", ",", "--output-series", str(tmp_path / "x.csv"))
    assert bad.returncode == 1 and "No quality flag to keep was given. Fix: give at least G (good)." in bad.stderr
    proc = run_cli("import-ismn", "--input", ismn, "--depth-max", "0.25", "--output-series", str(tmp_path / "daily.csv"),
                   "--output-stations-csv", str(tmp_path / "stations.csv"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    import csv
    stations = list(csv.DictReader(open(tmp_path / "stations.csv", encoding="utf-8")))
    daily = list(csv.DictReader(open(tmp_path / "daily.csv", encoding="utf-8")))
    assert stations and {s["station"] for s in stations} == set(daily[0]) - {"date"}
    # a product that is the in-situ value + 0.02 at every station pixel: bias 0.02, R 1, ubRMSE 0
    days = [r["date"] for r in daily][:20]
    lon, lat = float(stations[0]["lon"]), float(stations[0]["lat"])
    sid = stations[0]["station"]
    obs = np.array([float(r[sid]) if r[sid] else np.nan for r in daily[:20]], dtype=np.float32)
    assert np.isfinite(obs).sum() >= 10
    drv = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "product.tif"), 3, 3, len(days), gdal.GDT_Float32)
    drv.SetGeoTransform((lon - 0.15, 0.1, 0, lat + 0.15, 0, -0.1))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    drv.SetProjection(srs.ExportToWkt())
    for b, (d, v) in enumerate(zip(days, obs), start=1):
        band = drv.GetRasterBand(b)
        band.SetDescription(d)
        band.SetNoDataValue(float("nan"))
        band.WriteArray(np.full((3, 3), v + 0.02, dtype=np.float32))
    drv = None
    proc = run_cli("score", "--product", str(tmp_path / "product.tif"), "--stations-csv", str(tmp_path / "stations.csv"),
                   "--insitu-csv", str(tmp_path / "daily.csv"), "--scores-csv", str(tmp_path / "scores.csv"))
    assert proc.returncode == 0, proc.stderr
    (row,) = [r for r in csv.DictReader(open(tmp_path / "scores.csv", encoding="utf-8")) if r["station"] == sid]
    assert int(row["n"]) == np.isfinite(obs).sum()
    assert abs(float(row["bias"]) - 0.02) < 1e-6 and float(row["ubrmse"]) < 1e-6 and float(row["r"]) > 0.999999


class _captured:
    def __enter__(self):
        import contextlib
        import io
        self._buf = io.StringIO()
        self._cm = contextlib.redirect_stdout(self._buf)
        self._cm.__enter__()
        return self._buf

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)


def _scene_files(make_raster):
    n = N * K
    y, x = np.mgrid[0:n, 0:n] / n
    ndvi = (0.45 + 0.3 * np.sin(7 * x) * np.cos(5 * y)).astype(np.float32)
    truth = [np.clip(0.1 + 0.03 * i + 0.3 * (0.8 - ndvi), 0.02, 0.6).astype(np.float32) for i in range(len(DATES))]
    coarse = [f.reshape(N, K, N, K).mean(axis=(1, 3)) for f in truth]
    sm = [str(make_raster(f"SM_{d:%Y%m%d}.tif", c, pixel=(10000.0, 10000.0))) for d, c in zip(DATES, coarse)]
    return sm, str(make_raster("ndvi.tif", ndvi)), truth, coarse


def test_a_cli_run_recovers_the_fine_pattern_and_conserves_the_cells(make_raster, tmp_path):
    sm, ndvi, truth, coarse = _scene_files(make_raster)
    out = tmp_path / "out" / "down.tif"
    out.parent.mkdir()
    proc = run_cli("downscale", "regression", "--soil-moisture", *sm, "--ndvi", ndvi, "--residual", "bilinear",
                   "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"OUTPUT: {out}" in proc.stdout and f"RUN_LOG: {out.with_suffix('.json')}" in proc.stdout
    assert "Conservation 2018-01-09" in proc.stderr and "Trend weight" in proc.stderr
    ds = gdal.Open(str(out))
    assert [ds.GetRasterBand(i + 1).GetDescription() for i in range(3)] == [d.isoformat() for d in DATES]
    for t in range(3):
        got = ds.GetRasterBand(t + 1).ReadAsArray()
        assert np.abs(got.reshape(N, K, N, K).mean(axis=(1, 3)) - coarse[t]).max() < 0.005
        assert np.corrcoef(got.ravel(), truth[t].ravel())[0, 1] > 0.9
    ds = None


def test_input_errors_give_the_engines_text_and_exit_code_1(make_raster, tmp_path):
    sm, ndvi, _, _ = _scene_files(make_raster)
    errors = package("core.errors")
    proc = run_cli("downscale", "regression", "--soil-moisture", *sm, "--output", str(tmp_path / "x.tif"))
    expected = errors.InputError(problem="no fine-resolution covariate was given.", layer=None,
                                 fix="add at least one covariate (e.g. a DEM, NDVI or LST layer).")
    assert (proc.returncode, proc.stderr.strip().splitlines()[-1]) == (1, str(expected))
    assert "Traceback" not in proc.stderr
    proc = run_cli("downscale", "regression", "--soil-moisture", *sm, "--ndvi", ndvi, "--regressor", "xgb",
                   "--output", str(tmp_path / "x.tif"))
    assert proc.returncode == 2 and "invalid choice: 'xgb'" in proc.stderr
    proc = run_cli("downscale", "regression", "--soil-moisture", *sm, "--ndvi", ndvi, "--kriging-neighbours", "2",
                   "--output", str(tmp_path / "x.tif"))
    assert proc.returncode == 2 and "outside 3 … 100" in proc.stderr
    assert not os.path.exists(tmp_path / "x.tif")


def test_deep_ensemble_refuses_dask_and_an_even_patch_before_reading_anything(tmp_path, capsys):
    main = package("cli.main")
    base = ["downscale", "deep-ensemble", "--soil-moisture", str(tmp_path / "none.tif"), "--output",
            str(tmp_path / "out.tif")]
    assert main.main(base + ["--dask", "local:1"]) == 1
    assert "--dask does not reach the deep ensemble" in capsys.readouterr().err
    assert main.main(base + ["--use-cnn", "--kernel", "4"]) == 1
    assert "must be odd" in capsys.readouterr().err and not (tmp_path / "out.tif").exists()


def test_ctrl_c_cancels_and_leaves_nothing_behind(tmp_path):
    proc = popen_cli("downscale", "regression", *DELAWARE, "--output", str(tmp_path / "down.tif"))
    for line in proc.stderr:
        if line.startswith("Downscaling"):
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert err.strip().splitlines()[-1] == "Canceled."
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        yield client


def test_two_dask_workers_write_the_single_process_output_bit_for_bit(cluster, make_raster, tmp_path):
    """In-process API on many row blocks, then the command line on the Delaware sample (--dask tcp://…)."""
    sm, ndvi, _, _ = _scene_files(make_raster)
    regression, blocks = package("core.methods.regression"), package("core.methods.blocks")
    scene_mod, layers, roles = package("core.inputs.scene"), package("core.inputs.layers"), package("core.inputs.roles")
    spec = scene_mod.SceneSpec(layers.soil_moisture_refs([layers.GivenLayer.of_file(p) for p in sm]),
                               layers.covariate_inputs([(roles.Role.NDVI, [layers.GivenLayer.of_file(ndvi)])]))
    opts = regression.RegressionOptions(residual="atpk", block_pixels=7 * N * K)  # 9 row blocks
    serial = regression.downscale(scene_mod.Scene(spec), str(tmp_path / "serial.tif"), opts)
    with blocks.use_blocks(blocks.DaskBlocks(cluster)):
        on_dask = regression.downscale(scene_mod.Scene(spec), str(tmp_path / "dask.tif"), opts)
    assert len(list(scene_mod.Scene(spec).fine.windows(opts.block_pixels))) == 9
    assert filecmp.cmp(serial.path, on_dask.path, shallow=False)
    assert filecmp.cmp(serial.extra["kriging_sd"], on_dask.extra["kriging_sd"], shallow=False)

    address = cluster.scheduler.address
    one = run_cli("downscale", "regression", *DELAWARE, "--quiet", "--output", str(tmp_path / "cli.tif"))
    two = run_cli("downscale", "regression", *DELAWARE, "--output", str(tmp_path / "cli_dask.tif"), "--dask", address)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert f"Dask: 2 workers at {address}" in two.stderr
    assert filecmp.cmp(tmp_path / "cli.tif", tmp_path / "cli_dask.tif", shallow=False)
    one = run_cli("downscale", "ensemble", *DELAWARE, "--quiet", "--output", str(tmp_path / "ens.tif"))
    two = run_cli("downscale", "ensemble", *DELAWARE, "--quiet", "--output", str(tmp_path / "ens_dask.tif"),
                  "--dask", address)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    for suffix in ("", "_spread", "_outside_domain"):
        assert filecmp.cmp(tmp_path / f"ens{suffix}.tif", tmp_path / f"ens_dask{suffix}.tif", shallow=False)
