"""The cross-scale network on synthetic scenes whose fine-scale truth is known.

Truth: fine soil moisture = a date's level + 0.3 × (0.5 − NDVI), NDVI varying at every scale, so the
coarse product (2×2 means) and every coarser level obey the same rule: a network that reads the window
soil moisture, the window NDVI and the pixel NDVI (scheme R1) can learn it one level up and apply it
one level down; bilinear interpolation of the coarse cells cannot see the NDVI pattern.
"""
import datetime as dt
import json
import os

import numpy as np
import pytest
from osgeo import gdal

from core.errors import Canceled, InputError
from core.evaluation.cross_scale_scores import heterogeneity_cv, score_series
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec
from core.methods import cross_scale as cs
from core.raster.align import BandRef

N = 32  # fine pixels per side (1 km)
DATES = [dt.date(2019, 5, d) for d in (1, 11, 21)]
FAST = cs.CrossScaleOptions(members=2, max_epochs=150, learning_rate=1e-2)


def _block(a, k):
    n = a.shape[-1] // k
    return a.reshape(*a.shape[:-2], n, k, n, k).mean(axis=(-3, -1))


@pytest.fixture
def files(make_raster):
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:N, 0:N] / N
    ndvi = 0.5 + 0.2 * np.sin(9 * x + 2 * y) * np.cos(7 * y) + 0.1 * rng.uniform(-1, 1, (N, N))
    truth = np.stack([0.15 + 0.05 * i + 0.1 * x + 0.3 * (0.5 - ndvi) for i in range(len(DATES))]).astype(np.float32)
    fine_px, origin = (1000.0, 1000.0), (500000.0, 4400000.0)
    paths = {"ndvi": make_raster("ndvi.tif", ndvi.astype(np.float32), origin=origin, pixel=fine_px),
             "fine": make_raster("sm_fine.tif", truth, origin=origin, pixel=fine_px,
                                 descriptions=[d.isoformat() for d in DATES]),
             "coarse": make_raster("sm_coarse.tif", _block(truth, 2).astype(np.float32), origin=origin,
                                   pixel=(2000.0, 2000.0), descriptions=[d.isoformat() for d in DATES]),
             "coarser": make_raster("sm_coarser.tif", _block(truth, 4).astype(np.float32), origin=origin,
                                    pixel=(4000.0, 4000.0), descriptions=[d.isoformat() for d in DATES])}
    return {k: str(v) for k, v in paths.items()}, truth


def _bands(path):
    return [BandRef(path, i + 1, os.path.basename(path), d) for i, d in enumerate(DATES)]


def _scene(sm_path, ndvi_path, resolution=None):
    return Scene(SceneSpec(_bands(sm_path), [LayerInput(Role.NDVI, "ndvi", [BandRef(ndvi_path, 1, "ndvi")])],
                           resolution=resolution))


def _read(path):
    ds = gdal.Open(path)
    return ds.ReadAsArray()


def test_supervised_network_beats_bilinear_on_held_out_cells_and_applies_one_level_down(files, tmp_path):
    paths, truth = files
    # train 4 km → 2 km (coarser product as source, the 2 km product as the finer one) …
    scene = _scene(paths["coarser"], paths["ndvi"])
    model = cs.fit(scene, FAST, _bands(paths["coarse"]))
    held = model.training["held_out"]
    assert model.inputs == ["sm_window", "ndvi_window", "ndvi"] and model.ratio == pytest.approx(2.0)
    assert held["network_coherent"]["pattern_r"] > 0.9 > held["bilinear"]["pattern_r"]
    assert held["network_coherent"]["rmse"] < 0.5 * held["bilinear"]["rmse"]
    assert np.isnan(held["copy"]["pattern_r"])
    # the network has skill here, so shrinkage toward bilinear keeps (nearly) all of it
    assert model.training["blend"]["coherent"] >= 0.8
    assert held["shrunk_coherent"]["rmse"] <= held["network_coherent"]["rmse"] + 1e-12
    # … apply 2 km → 1 km and compare with the 1 km truth
    target = _scene(paths["coarse"], paths["ndvi"], resolution=1000.0)
    res = cs.predict(model, target, cs.CrossScaleOutputs(str(tmp_path / "down.tif")))
    est = _read(res.path)
    rmse = np.sqrt(np.nanmean((est - truth) ** 2))
    interp = np.repeat(np.repeat(_block(truth, 2), 2, axis=1), 2, axis=2)
    assert rmse < 0.5 * np.sqrt(np.mean((interp - truth) ** 2))
    assert max(c["mean_abs_diff"] for c in res.conservation) < 1e-5  # coherent: cells average to the coarse value
    assert _read(res.extra["spread"]).shape == est.shape
    log = json.load(open(res.log_path))
    assert log["coherent"] and log["retrieval"]["window"] == pytest.approx(2500.0)


def test_self_supervised_learns_from_the_product_alone(files, tmp_path):
    paths, truth = files
    scene = _scene(paths["coarse"], paths["ndvi"], resolution=1000.0)
    res = cs.downscale(scene, cs.CrossScaleOutputs(str(tmp_path / "self.tif")), FAST)
    assert res.training["levels"]["training"] == {"source_cell": 4000.0, "target_cell": 2000.0}
    est = _read(res.path)
    r, c = np.mgrid[0:N, 0:N]
    idx = ((r // 2) * (N // 2) + c // 2).ravel()  # the 2 km cell of each 1 km pixel
    coarse = np.repeat(np.repeat(_block(truth, 2), 2, axis=1), 2, axis=2)
    sc = score_series(est.reshape(len(DATES), -1), truth.reshape(len(DATES), -1), coarse.reshape(len(DATES), -1),
                      idx)
    assert sc["pattern_r"] > 0.8 and sc["cv"] == pytest.approx(heterogeneity_cv(truth.reshape(len(DATES), -1), idx),
                                                               rel=0.3)


def test_saved_folder_is_verified_and_predicts_like_the_numpy_members(files, tmp_path):
    pytest.importorskip("onnxruntime")
    paths, _ = files
    model = cs.fit(_scene(paths["coarser"], paths["ndvi"]), FAST, _bands(paths["coarse"]))
    folder = model.save(str(tmp_path / "net"))
    loaded = cs.CrossScaleModel.load(folder)
    assert loaded.inputs == model.inputs and loaded.training["held_out"]["network"]["rmse"] == pytest.approx(
        model.training["held_out"]["network"]["rmse"])
    X = np.random.default_rng(0).uniform([0.1, 0.3, 0.3], [0.4, 0.7, 0.7], (100, 3))
    np.testing.assert_allclose(loaded.predict_rows(X)[0], model.predict_rows(X)[0], atol=1e-5)
    member = os.path.join(folder, "member_0.onnx")
    blob = bytearray(open(member, "rb").read())
    blob[len(blob) // 3] ^= 0x01  # one flipped bit in the weights
    open(member, "wb").write(bytes(blob))
    with pytest.raises(InputError, match="refused"):
        cs.CrossScaleModel.load(folder)


def test_without_ndvi_the_topographic_index_takes_its_place_and_without_it_sm_alone():
    assert cs.resolve_inputs("R2", False, True) == (["sm_window", "mtpi_window", "mtpi"],
                                                    "scheme R2 needs NDVI and none was given: the topographic index "
                                                    "(mTPI of the DEM) at window and pixel takes its place")
    assert cs.resolve_inputs("R4", True, False)[0] == ["sm_window", "ndvi_window", "ndvi", "ndvi_window_std"]
    assert cs.resolve_inputs("R1", False, False)[0] == ["sm_window"]


def test_cancel_leaves_nothing(files, tmp_path):
    paths, _ = files
    model = cs.fit(_scene(paths["coarser"], paths["ndvi"]), FAST, _bands(paths["coarse"]))
    calls = {"n": 0}

    def cancel_late():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Canceled):
        cs.predict(model, _scene(paths["coarse"], paths["ndvi"], 1000.0), cs.CrossScaleOutputs(str(tmp_path / "c.tif")),
                   is_canceled=cancel_late)
    assert not [f for f in os.listdir(tmp_path) if f.startswith("c")]


def test_heterogeneity_cv_of_known_cells():
    v = np.array([[0.1, 0.3, 0.2, 0.2]])
    assert heterogeneity_cv(v, np.array([0, 0, 1, 1])) == pytest.approx((0.1 / 0.2 + 0.0) / 2)
