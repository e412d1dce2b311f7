"""Train an ensemble through Processing: from a station table, from rasters, refusals, cancel, qgis_process.

Synthetic station table: 12 stations × 30 ten-day windows; in-situ soil moisture is
0.05 + 0.6·c − 0.004·mtpi + noise(0.004) for a regional series c, and the coarse product is the same
field seen through a biased, stretched lens (2·sm − 0.05, in mm of a 50 mm layer), so a model that
learns the relationship beats the coarse product in ubRMSE.

The models folder of the QGIS profile is replaced by a temporary folder in every test
(``model_store.user_models_dir`` is patched), so nothing is written into a real profile.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os

import numpy as np
import pytest
from osgeo import osr
from qgis.core import QgsProcessingException

from soil_moisture_downscaling.processing_provider import model_store
from soil_moisture_downscaling.processing_provider import train_ensemble as alg_module

COLUMNS = ["network", "station", "lat", "lon", "start_date", "end_date", "smap10km_ssm_mm", "B4", "B8", "mtpi",
           "field_capacity", "nlcd_landcover", "insitu_sm"]
TINY = {"HIDDEN_LAYERS": "6", "MAX_EPOCHS": 200, "CV_FOLDS": 3}


def write_table(path, n_sites=12, n_rows=30, seed=0, drop=()):
    rng = np.random.default_rng(seed)
    start = dt.date(2019, 1, 1)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([c for c in COLUMNS if c not in drop])
        for s in range(n_sites):
            mtpi, fc = rng.normal(0, 6), rng.uniform(10, 35)
            lat, lon = 30 + s, -100 + 0.5 * s
            lc = (41, 52, 81)[s % 3]
            regional = np.clip(0.15 + 0.1 * np.sin(np.arange(n_rows) / 4 + s) + rng.normal(0, 0.02, n_rows), 0.03, 0.4)
            for k in range(n_rows):
                a = start + dt.timedelta(days=10 * k)
                sm = 0.05 + 0.6 * regional[k] - 0.004 * mtpi + rng.normal(0, 0.004)
                row = {"network": "NA" if s % 2 else "NB", "station": f"st{s:02d}", "lat": lat, "lon": lon,
                       "start_date": a.isoformat(), "end_date": (a + dt.timedelta(days=10)).isoformat(),
                       "smap10km_ssm_mm": 50 * (2.0 * sm - 0.05), "B4": 800, "B8": 3000, "mtpi": mtpi,
                       "field_capacity": fc, "nlcd_landcover": lc, "insitu_sm": sm}
                w.writerow([row[c] for c in COLUMNS if c not in drop])
    return str(path)


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    root = tmp_path / "profile" / "soil_moisture_downscaling" / "models"

    def user_models_dir(create=False):
        if create:
            root.mkdir(parents=True, exist_ok=True)
        return str(root)

    monkeypatch.setattr(model_store, "user_models_dir", user_models_dir)
    return root


@pytest.fixture
def table(tmp_path):
    return write_table(tmp_path / "stations.csv")


def _params(table, tmp_path, **kw):
    return {"STATION_TABLE": table, "ENSEMBLE_NAME": "syn", "REPORT": str(tmp_path / "report.html"), **TINY, **kw}


def test_choices_match_the_engine():
    from soil_moisture_downscaling.core.methods.insitu_ensemble import FEATURES, SCHEMES
    from soil_moisture_downscaling.core.methods.insitu_ensemble.preflight import ARCHITECTURES

    assert list(alg_module.FEATURE_CHOICES) == list(FEATURES)
    assert list(alg_module.SCHEME_CHOICES) == list(SCHEMES)
    assert alg_module.ARCHITECTURE_CHOICES == ARCHITECTURES


def test_train_from_station_table(run_alg, table, models_dir, tmp_path, feedback):
    from soil_moisture_downscaling.core.methods.insitu_ensemble import Ensemble, list_ensembles

    res = run_alg("train_ensemble", _params(table, tmp_path), feedback=feedback)
    folder = res["ENSEMBLE_FOLDER"]
    assert folder == str(models_dir / "syn") and res["SAVED_NAME"] == "syn"
    ens = Ensemble.load(folder, intra_op_threads=1)
    assert ens.input_features == ["sm_coarse", "mtpi", "lat"]                 # the default features
    assert [i["name"] for i in ens.card["inputs"]] == ["sm_coarse", "mtpi", "lat"]
    # default schemes: all six are supported by this table (two networks, three land covers, ...)
    assert sorted(m["scheme"] for m in ens.card["members"]) == sorted(alg_module.SCHEME_CHOICES)
    assert res["N_MEMBERS"] == ens.n_members == 6
    assert ens.card["training_data"]["n_sites"] == 12 and ens.card["training_data"]["n_samples"] == 360
    cv = ens.card["scores"]["cv_3fold"]
    assert cv["ensemble"]["mean"]["ubrmse"] < cv["coarse"]["mean"]["ubrmse"]  # coarse: stretched by 2
    listed = {i.name: i for i in list_ensembles(model_store.ensemble_folders())}
    assert listed["syn"].valid and listed["syn"].inputs == ["sm_coarse", "mtpi", "lat"]
    assert model_store.find_ensemble("syn") == folder
    page = open(res["REPORT"], encoding="utf-8").read()
    assert "Station-grouped 3-fold cross-validation" in page
    for key in ("coarse", "ensemble", "dense_free", "dense_network"):
        assert f"<td class='txt'>{key}</td>" in page
    assert "st00" in page and "Members better than the ensemble" in page
    assert any("cv_3fold" in m for m in feedback.infos)
    assert any(m.startswith("Station-grouped 3-fold cross-validation: ensemble ubRMSE") for m in feedback.infos)
    assert not [p for p in os.listdir(models_dir.parent) if p.startswith(".")]  # no temporary folder left


def test_train_boosted_members_with_the_rescaled_baseline(run_alg, table, models_dir, tmp_path):
    from soil_moisture_downscaling.core.methods.insitu_ensemble import Ensemble

    hgb = alg_module.ARCHITECTURE_CHOICES.index("hgb")
    res = run_alg("train_ensemble", _params(table, tmp_path, ARCHITECTURES=[hgb], SCHEMES=[0, 2]))
    ens = Ensemble.load(res["ENSEMBLE_FOLDER"], intra_op_threads=1)
    assert [m["name"] for m in ens.card["members"]] == ["hgb_free", "hgb_land_cover"]
    cv = ens.card["scores"]["cv_3fold"]
    # the table's coarse product is 2 · truth − 0.05: rescaled on the training stations it is nearly exact
    assert cv["coarse_rescaled"]["mean"]["ubrmse"] < 0.3 * cv["coarse"]["mean"]["ubrmse"]
    assert 0.0 < cv["interval"]["coverage"] <= 1.0 and ens.card["uncertainty"]["level"] == 0.9
    page = open(res["REPORT"], encoding="utf-8").read()
    assert "<td class='txt'>coarse_rescaled</td>" in page and "Against the rescaled coarse product" in page


def test_existing_name_is_refused_then_replaced(run_alg, table, models_dir, tmp_path):
    from soil_moisture_downscaling.core.methods.insitu_ensemble import Ensemble

    params = _params(table, tmp_path, CV_FOLDS=0, SCHEMES=[0], FEATURES=[0])
    run_alg("train_ensemble", params)
    with pytest.raises(QgsProcessingException, match="already exists"):
        run_alg("train_ensemble", params)
    txt = str(tmp_path / "report.txt")
    res = run_alg("train_ensemble", {**params, "OVERWRITE": True, "FEATURES": [0, 4], "ARCHITECTURES": [0, 3],
                                     "REPORT": txt})
    ens = Ensemble.load(res["ENSEMBLE_FOLDER"], intra_op_threads=1)
    assert ens.input_features == ["sm_coarse", "mtpi"]
    assert {m["architecture"] for m in ens.card["members"]} == {"dense", "rf"}   # rf: one per field-capacity tercile
    assert ens.n_members == 1 + 3
    assert open(txt).read().startswith("Ensemble 'syn': 4 members")
    assert os.listdir(models_dir) == ["syn"]


def _fails(run_alg, params, *needles):
    with pytest.raises(QgsProcessingException) as e:
        run_alg("train_ensemble", params)
    msg = str(e.value)
    assert "Traceback" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_bad_inputs_give_messages(run_alg, table, models_dir, tmp_path):
    _fails(run_alg, _params(table, tmp_path, STATION_TABLE=None), "No training data")
    no_target = write_table(tmp_path / "no_target.csv", drop=("insitu_sm",))
    _fails(run_alg, _params(no_target, tmp_path), "no_target.csv", "lacks the column(s) insitu_sm")
    no_lc = write_table(tmp_path / "no_lc.csv", drop=("nlcd_landcover",))
    _fails(run_alg, _params(no_lc, tmp_path, FEATURES=[0, 9]), "'land_cover' needs the column(s) nlcd_landcover")
    _fails(run_alg, _params(table, tmp_path, FEATURES=[0, 5]), "'slope' cannot be read from a station table")
    _fails(run_alg, _params(table, tmp_path, CV_FOLDS=20), "20-fold", "at least 20 stations", "only 12")
    _fails(run_alg, _params(table, tmp_path, ENSEMBLE_NAME="../escape"), "cannot be a folder name")
    _fails(run_alg, _params(table, tmp_path, ENSEMBLE_NAME="insitu_hgb_dem"), "bundled with the plugin")
    _fails(run_alg, _params(table, tmp_path, HIDDEN_LAYERS="a,b"), "not a list of positive widths")
    few = write_table(tmp_path / "few.csv", n_rows=5)
    _fails(run_alg, _params(few, tmp_path), "No usable sample", "Minimum samples per station")
    assert not models_dir.exists() or not os.listdir(models_dir)


def test_cancel_leaves_nothing(run_alg, table, models_dir, tmp_path, feedback):
    def cancel_midway(p):
        if p > 45:
            feedback.cancel()

    feedback.progressChanged.connect(cancel_midway)
    with pytest.raises(QgsProcessingException, match="Canceled"):
        run_alg("train_ensemble", _params(table, tmp_path, MAX_EPOCHS=200), feedback=feedback)
    assert feedback.isCanceled()
    assert not os.listdir(models_dir)
    assert os.listdir(models_dir.parent) == ["models"]                   # no temporary folder either
    assert not os.path.exists(tmp_path / "report.html")


# ------------------------------------------------------------------------------- rasters
ORIGIN = (500000.0, 4400000.0)
DATES = [dt.date(2018, 1, 1) + dt.timedelta(days=3 * k) for k in range(8)]


def _lonlat(row, col):
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32618)
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon, lat, _ = osr.CoordinateTransformation(utm, wgs).TransformPoint(ORIGIN[0] + (col + 0.5) * 1000.0,
                                                                        ORIGIN[1] - (row + 0.5) * 1000.0)
    return lat, lon


def _raster_inputs(make_raster, tmp_path):
    """Coarse soil moisture, a DEM, stations and in-situ tables of a known field (see the test below)."""
    # 3 × 3 coarse cells of 10 km, 30 × 30 fine pixels of 1 km; one station in each coarse cell
    coarse = [np.full((3, 3), 0.1, np.float32) + 0.03 * t + 0.02 * np.arange(9, dtype=np.float32).reshape(3, 3)
              for t in range(len(DATES))]
    sm = [str(make_raster(f"sm_{d:%Y%m%d}.tif", c, origin=ORIGIN, pixel=(10000.0, 10000.0)))
          for d, c in zip(DATES, coarse)]
    r, c = np.mgrid[0:30, 0:30]
    dem_arr = (100 + 5 * r + 3 * c).astype(np.float32)
    dem = str(make_raster("dem.tif", dem_arr, origin=ORIGIN))
    pix = {f"S{i}": (10 * (i // 3) + 4, 10 * (i % 3) + 6) for i in range(9)}
    stations = tmp_path / "stations.csv"
    stations.write_text("id,lat,lon,network\n" + "".join(f"{k},{_lonlat(*rc)[0]:.6f},{_lonlat(*rc)[1]:.6f},"
                                                          f"{'A' if int(k[1]) % 2 else 'B'}\n"
                                                          for k, rc in pix.items()))
    insitu = tmp_path / "insitu.csv"
    lines = ["date," + ",".join(pix)]
    for t, d in enumerate(DATES):
        vals = [0.8 * coarse[t][rc[0] // 10, rc[1] // 10] + 0.0004 * (dem_arr[rc] - 150) for rc in pix.values()]
        lines.append(d.isoformat() + "," + ",".join(f"{v:.5f}" for v in vals))
    insitu.write_text("\n".join(lines) + "\n")
    return sm, dem, str(stations), str(insitu), coarse, dem_arr, pix


def test_train_from_rasters(run_alg, make_raster, models_dir, tmp_path, feedback):
    from soil_moisture_downscaling.core.methods.insitu_ensemble import Ensemble

    sm, dem, stations, insitu, coarse, dem_arr, pix = _raster_inputs(make_raster, tmp_path)
    res = run_alg("train_ensemble", {
        "SOIL_MOISTURE": sm, "DEM": [dem], "DERIVE_TERRAIN": False, "STATIONS_CSV": stations,
        "INSITU_CSV": insitu, "FEATURES": [0, 6], "SCHEMES": [0, 5], "MIN_SAMPLES_PER_STATION": 5,
        "ENSEMBLE_NAME": "from_rasters", "REPORT": str(tmp_path / "r.html"), **TINY}, feedback=feedback)
    ens = Ensemble.load(res["ENSEMBLE_FOLDER"], intra_op_threads=1)
    assert ens.input_features == ["sm_coarse", "dem"]
    td = ens.card["training_data"]
    assert (td["n_sites"], td["n_samples"]) == (9, 9 * len(DATES))
    assert td["networks"] == ["A", "B"] and td["period"] == [DATES[0].isoformat(), DATES[-1].isoformat()]
    dom = {i["name"]: i["domain"] for i in ens.card["inputs"]}
    assert dom["dem"]["min"] == pytest.approx(min(dem_arr[rc] for rc in pix.values()))
    assert dom["sm_coarse"]["max"] == pytest.approx(float(coarse[-1].max()), abs=1e-6)
    assert any("72 samples at 9 stations" in m for m in feedback.infos)


def test_raster_training_needs_insitu_and_a_dem_for_mtpi(run_alg, make_raster, models_dir, tmp_path):
    sm = [str(make_raster(f"sm_{d:%Y%m%d}.tif", np.full((3, 3), 0.2, np.float32), origin=ORIGIN,
                          pixel=(10000.0, 10000.0))) for d in DATES[:2]]
    ndvi = str(make_raster("ndvi.tif", np.full((30, 30), 0.5, np.float32), origin=ORIGIN))
    st = tmp_path / "st.csv"
    st.write_text("id,lat,lon\nS0,%f,%f\n" % _lonlat(3, 3))
    ins = tmp_path / "ins.csv"
    ins.write_text(f"date,S0\n{DATES[0]},0.2\n")
    base = {"SOIL_MOISTURE": sm, "NDVI": [ndvi], "STATIONS_CSV": str(st), "REPORT": str(tmp_path / "r.html")}
    _fails(run_alg, base, "needs in-situ soil moisture")
    _fails(run_alg, {**base, "INSITU_CSV": str(ins)}, "mtpi needs a DEM layer")
    _fails(run_alg, {**base, "INSITU_CSV": str(ins), "STATION_TABLE": write_table(tmp_path / "t.csv")},
           "Both a station table and soil-moisture layers")


# ------------------------------------------------------------------------------- qgis_process
@pytest.mark.slow
def test_qgis_process_trains_into_its_own_profile(qgis_process, table, tmp_path):
    report = tmp_path / "cli.html"
    proc = qgis_process("--json", "run", "soil_moisture_downscaling:train_ensemble", "--",
                        f"STATION_TABLE={table}", "FEATURES=0,4", "ARCHITECTURES=0", "SCHEMES=0,2",
                        "CV_FOLDS=3", "HIDDEN_LAYERS=4", "MAX_EPOCHS=10", "ENSEMBLE_NAME=cli_ensemble",
                        f"REPORT={report}")
    results = json.loads(proc.stdout)["results"]
    folder = results["ENSEMBLE_FOLDER"]
    assert folder.endswith(os.path.join("soil_moisture_downscaling", "models", "cli_ensemble"))
    assert sorted(os.listdir(folder)) == ["dense_free.onnx", "dense_land_cover.onnx"]
    assert int(results["N_MEMBERS"]) == 2
    assert "Station-grouped 3-fold cross-validation" in report.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------- real data
def test_real_station_table(run_alg, shared_data, models_dir, tmp_path, feedback):
    path = shared_data / "conus_stations" / "station_10day_table.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    res = run_alg("train_ensemble", {"STATION_TABLE": str(path), "ENSEMBLE_NAME": "conus_tiny", "FEATURES": [0, 4, 2],
                                     "ARCHITECTURES": [0], "SCHEMES": [0, 2], "CV_FOLDS": 3, "HIDDEN_LAYERS": "8",
                                     "MAX_EPOCHS": 15, "REPORT": str(tmp_path / "conus.html")}, feedback=feedback)
    page = open(res["REPORT"], encoding="utf-8").read()
    assert "<td class='txt'>coarse</td>" in page and "<td class='txt'>ensemble</td>" in page
    from soil_moisture_downscaling.core.methods.insitu_ensemble import Ensemble
    ens = Ensemble.load(res["ENSEMBLE_FOLDER"], intra_op_threads=1)
    cv = ens.card["scores"]["cv_3fold"]
    assert cv["n_sites"] == ens.card["training_data"]["n_sites"] > 50
    for who in ("coarse", "ensemble"):
        assert 0.0 < cv[who]["mean"]["ubrmse"] < 0.2 and -1 <= cv[who]["mean"]["r"] <= 1
    assert f"{cv['ensemble']['mean']['ubrmse']:.4f}" in page and f"{cv['coarse']['mean']['ubrmse']:.4f}" in page


# ------------------------------------------------------------------------------- without the packages
@pytest.mark.slow
def test_loads_and_explains_missing_packages_in_a_plain_qgis_python(plugin_dir, tmp_path):
    """Debian's /usr/bin/python3 has QGIS but none of onnx, onnxruntime, scikit-learn, skl2onnx."""
    import subprocess
    import textwrap

    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no system Python")
    script = textwrap.dedent("""
        import os, sys
        sys.path.insert(0, sys.argv[1])
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        try:
            import onnx  # noqa: F401
            print("HAS_ONNX")
        except ImportError:
            pass
        from qgis.core import QgsApplication, QgsProcessingContext
        app = QgsApplication([], False); app.initQgis()
        import soil_moisture_downscaling as p
        plugin = p.classFactory(None)
        plugin.initProcessing()
        alg = QgsApplication.processingRegistry().algorithmById("soil_moisture_downscaling:train_ensemble")
        print("LOADED", alg is not None)
        ok, msg = alg.checkParameterValues({}, QgsProcessingContext())
        print("CHECK", ok)
        print("MESSAGE", msg)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QGIS_CUSTOM_CONFIG_PATH=str(tmp_path), HOME=str(tmp_path))
    proc = subprocess.run(["/usr/bin/python3", "-I", "-c", script, str(plugin_dir)], env=env, capture_output=True,
                          text=True, timeout=120)
    if "HAS_ONNX" in proc.stdout:
        pytest.skip("the system Python has onnx: no missing package to test with")
    assert proc.returncode == 0, proc.stderr
    assert "LOADED True" in proc.stdout and "CHECK False" in proc.stdout
    assert "onnx" in proc.stdout and "pip install" in proc.stdout


@pytest.mark.parametrize("data", ["table", "rasters"])
def test_cli_trains_the_toolbox_ensemble(run_alg, make_raster, models_dir, table, tmp_path, plugin_dir, data):
    import filecmp
    import subprocess
    import sys

    if data == "table":
        params, options = {"STATION_TABLE": table, "ARCHITECTURES": [0, 4]}, ["--station-table", table,
                                                                              "--architectures", "dense", "hgb"]
    else:
        sm, dem, stations, insitu, *_ = _raster_inputs(make_raster, tmp_path)
        params = {"SOIL_MOISTURE": sm, "DEM": [dem], "DERIVE_TERRAIN": False, "STATIONS_CSV": stations,
                  "INSITU_CSV": insitu, "FEATURES": [0, 6], "SCHEMES": [0, 5], "MIN_SAMPLES_PER_STATION": 5}
        options = ["--soil-moisture", *sm, "--dem", dem, "--no-derive-terrain", "--stations-csv", stations,
                   "--insitu-csv", insitu, "--features", "sm_coarse", "dem", "--schemes", "free", "network",
                   "--min-samples-per-station", "5"]
    res = run_alg(alg_module.TrainEnsemble.NAME, {**_params(None, tmp_path), **params})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "cli" / "syn"
    proc = subprocess.run([sys.executable, "-m", "soil_moisture_downscaling", "train", "ensemble", *options,
                           "--ensemble-name", "syn", "--hidden-layers", "6", "--max-epochs", "200", "--cv-folds", "3",
                           "--model-output", str(out), "--report", str(tmp_path / "cli.html"), "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"MODEL_FOLDER: {out}" in proc.stdout and f"N_MEMBERS: {res['N_MEMBERS']}" in proc.stdout
    files = sorted(os.listdir(res["ENSEMBLE_FOLDER"]))
    assert len([f for f in files if f.endswith(".onnx")]) == res["N_MEMBERS"] >= 2 and files == sorted(os.listdir(out))
    for f in files:  # the same weights, and the same cards (hashes, cross-validated scores) in every member
        assert filecmp.cmp(os.path.join(res["ENSEMBLE_FOLDER"], f), out / f, shallow=False), f
    assert not [p for p in os.listdir(tmp_path / "cli") if p.startswith(".training-")]
