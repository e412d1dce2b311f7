"""The stacking method on a synthetic scene whose fine truth and terrain zones are known."""
import datetime as dt
import json
import os

import numpy as np
import pytest
from osgeo import gdal

from core.errors import InputError
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec
from core.methods import stacking
from core.methods.stacking import StackingMethodOptions, StackingModel
from core.raster.align import BandRef

pytest.importorskip("onnxruntime")
K, N = 8, 12  # fine pixels per coarse cell side, coarse cells per side
DATES = [dt.date(2019, 5, d) for d in (1, 6, 11, 16, 21, 26)]
ORIGIN = (500000.0, 4400000.0)


def _block(a):
    return a.reshape(N, K, N, K).mean(axis=(1, 3))


@pytest.fixture
def scene_files(make_raster):
    n = N * K
    y, x = np.mgrid[0:n, 0:n] / n
    ndvi = (0.45 + 0.3 * np.sin(4 * x + 0.3) * np.cos(3 * y) + 0.05 * np.sin(60 * x) * np.cos(50 * y)).astype(np.float32)
    hills = x >= 0.5  # flat on the left, mountains (relief ≫ 300 m within 5 km) on the right
    dem = np.where(hills, 600 + 500 * np.sin(2 * np.pi * x * n / 6) * np.cos(2 * np.pi * y * n / 6), 50 + 5 * y)
    # soil moisture rises with NDVI in the plains and falls with it in the mountains
    truth = [np.where(hills, 0.45 - 0.25 * ndvi, 0.1 + 0.25 * ndvi).astype(np.float32) + 0.01 * i
             for i in range(len(DATES))]
    sm = [make_raster(f"sm_{d:%Y%m%d}.tif", _block(f), origin=ORIGIN, pixel=(1000.0 * K, 1000.0 * K))
          for d, f in zip(DATES, truth)]
    return {"sm": sm, "ndvi": make_raster("ndvi.tif", ndvi, origin=ORIGIN),
            "dem": make_raster("dem.tif", dem.astype(np.float32), origin=ORIGIN),
            "zones": make_raster("zones.tif", np.where(hills, 2, 1).astype(np.float32), origin=ORIGIN),
            "truth": truth}


def _scene(f, zones=None):
    cov = [LayerInput(Role.NDVI, "NDVI", [BandRef(str(f["ndvi"]))])]
    if zones is not None:
        cov.append(LayerInput(Role.ZONE, "zones", [zones]))
    return Scene(SceneSpec([BandRef(str(p), 1, "SM", d) for p, d in zip(f["sm"], DATES)], cov, derive_terrain=False))


OPTS = StackingMethodOptions(learners=("hgb", "extra_trees"), n_estimators=30, folds=3, n_jobs=1, importance_repeats=2,
                              min_zone_samples=100)


def test_dem_zones_find_the_plains_and_the_mountains(scene_files, tmp_path):
    ref, info = stacking.write_dem_zones(BandRef(str(scene_files["dem"])), str(tmp_path / "zones.tif"))
    ds = gdal.Open(ref.path)
    z = ds.GetRasterBand(1).ReadAsArray()
    n = N * K
    assert (z[10:-10, 5:n // 2 - 6] == 1).mean() > 0.95  # plains
    assert (z[10:-10, n // 2 + 6:-5] == 3).mean() > 0.95  # mountains
    assert info["labels"]["3"] == "mountains"


def test_zoned_stack_downscales_conserves_and_reports(scene_files, tmp_path):
    """Without its zone, NDVI cannot tell plains from mountains: the zone stacks must win and be used."""
    out = str(tmp_path / "stack.tif")
    res = stacking.downscale(_scene(scene_files, BandRef(str(scene_files["zones"]), 1, "zones")), out, OPTS)
    t = res.training
    assert t["zone_input"] == "zone" and "zone" not in t["features"]
    by_zone = {row["zone"]: row for row in t["zones"]}
    assert set(by_zone) == {1, 2}
    for row in by_zone.values():
        assert row["zoned"]["rmse"] < 0.5 * row["unzoned"]["rmse"] and row["uses"] == "zone stack"
    if t["shap"] is not None:  # SHAP values of the stack, overall and per zone stack
        assert t["shap"]["all"][0]["feature"] == "ndvi" and set(t["shap"]) == {"all", "1", "2"}
    else:
        assert t["importance"][0]["feature"] == "ndvi"
    ds = gdal.Open(out)
    for i, f in enumerate(scene_files["truth"]):
        got = ds.GetRasterBand(i + 1).ReadAsArray()
        assert np.abs(_block(got) - _block(f)).mean() < 0.005
        dev_t = f - np.kron(_block(f), np.ones((K, K)))
        dev_g = got - np.kron(_block(got), np.ones((K, K)))
        assert np.corrcoef(dev_t.ravel(), dev_g.ravel())[0, 1] > 0.8
    log = json.load(open(res.log_path))
    assert log["training"]["global"]["learners"] == ["hgb", "extra_trees"]


def test_saved_stack_reapplies_identically_and_refuses_a_modified_graph(scene_files, tmp_path):
    scene = _scene(scene_files)
    model = stacking.fit(scene, StackingMethodOptions(learners=("hgb",), n_estimators=40, importance_repeats=0))
    a = stacking.predict(model, scene, str(tmp_path / "a.tif"))
    folder = model.save(str(tmp_path / "model"))
    b = stacking.predict(StackingModel.load(folder), _scene(scene_files), str(tmp_path / "b.tif"))
    da, db = gdal.Open(a.path), gdal.Open(b.path)
    np.testing.assert_array_equal(da.GetRasterBand(3).ReadAsArray(), db.GetRasterBand(3).ReadAsArray())
    with open(os.path.join(folder, "global.onnx"), "ab") as f:
        f.write(b"x")
    with pytest.raises(InputError, match="differs from the file the card records"):
        StackingModel.load(folder)


def test_no_installed_learner_is_refused_with_the_pip_command(scene_files, monkeypatch):
    monkeypatch.setattr(stacking, "missing_packages", lambda names: {n: "xgboost-cpu" for n in names})
    with pytest.raises(InputError, match="pip install xgboost-cpu"):
        stacking.fit(_scene(scene_files), StackingMethodOptions(learners=("xgboost",)))


def test_without_shap_importance_is_by_permutation_on_held_out_cells(scene_files, monkeypatch):
    def no_shap(*a, **k):
        raise ImportError("shap")
    monkeypatch.setattr(stacking, "shap_importance", no_shap)
    scene = _scene(scene_files, BandRef(str(scene_files["zones"]), 1, "zones"))
    t = stacking.fit(scene, OPTS).training
    assert t["shap"] is None
    imp = [d["feature"] for d in t["importance"]]
    assert imp[0] == "ndvi" and imp[-1] == "(held-out RMSE)" and set(imp[:-1]) == {"ndvi", "doy"}
