"""Regression + residual correction on a synthetic scene whose fine-scale truth is known."""
import datetime as dt
import json
import os

import numpy as np
import pytest
from osgeo import gdal

from core.raster.align import BandRef
from core.errors import Canceled, InputError
from core.learn.verified_state import StateError
from core.methods.regression import RegressionModel, RegressionOptions, downscale, fit, predict
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec

K = 10  # fine pixels per coarse cell side
N_COARSE = 6
DATES = [dt.date(2018, 1, d) for d in (3, 10, 17, 24)]


def _truth(rng):
    n = N_COARSE * K
    y, x = np.mgrid[0:n, 0:n] / n
    ndvi = 0.45 + 0.3 * np.sin(7 * x) * np.cos(5 * y) + 0.02 * rng.normal(size=(n, n))
    dem = 100 + 80 * np.cos(4 * x + 1) + 40 * y
    fields = [np.clip(0.08 + 0.03 * i + 0.3 * (0.8 - ndvi) + 0.0004 * (dem - 100), 0.02, 0.6)
              for i in range(len(DATES))]
    return ndvi.astype(np.float32), dem.astype(np.float32), [f.astype(np.float32) for f in fields]


def _block_mean(a):
    return a.reshape(N_COARSE, K, N_COARSE, K).mean(axis=(1, 3))


@pytest.fixture
def scene_files(make_raster):
    rng = np.random.default_rng(1)
    ndvi, dem, truth = _truth(rng)
    origin = (500000.0, 4400000.0)
    sm = [make_raster(f"sm_{d:%Y%m%d}.tif", _block_mean(f), origin=origin, pixel=(10000.0, 10000.0))
          for d, f in zip(DATES, truth)]
    nd = make_raster("ndvi.tif", ndvi, origin=origin, pixel=(1000.0, 1000.0))
    de = make_raster("dem.tif", dem, origin=origin, pixel=(1000.0, 1000.0))
    return sm, nd, de, truth


def _scene(sm, nd, de, derive=False):
    return Scene(SceneSpec([BandRef(str(p), 1, "SM", d) for p, d in zip(sm, DATES)],
                           [LayerInput(Role.NDVI, "NDVI", [BandRef(str(nd), 1, "NDVI")]),
                            LayerInput(Role.DEM, "DEM", [BandRef(str(de), 1, "DEM")])],
                           derive_terrain=derive))


@pytest.mark.parametrize("regressor", ["svr", "rf", "hgb"])
def test_recovers_the_sub_pixel_pattern_and_conserves_the_coarse_mean(scene_files, tmp_path, regressor):
    sm, nd, de, truth = scene_files
    scene = _scene(sm, nd, de)
    assert (scene.fine.width, scene.coarse.width) == (N_COARSE * K, N_COARSE)
    out = str(tmp_path / "down.tif")
    res = downscale(scene, out, RegressionOptions(regressor=regressor, n_estimators=60))
    ds = gdal.Open(out)
    assert ds.RasterCount == len(DATES)
    assert [ds.GetRasterBand(i + 1).GetDescription() for i in range(len(DATES))] == [d.isoformat() for d in DATES]
    for t, f in enumerate(truth):
        got = ds.GetRasterBand(t + 1).ReadAsArray()
        # the sub-pixel pattern: deviation from the coarse cell mean, truth vs downscaled
        dev_true = f - np.kron(_block_mean(f), np.ones((K, K)))
        dev_got = got - np.kron(_block_mean(got), np.ones((K, K)))
        r = np.corrcoef(dev_true.ravel(), dev_got.ravel())[0, 1]
        assert r > 0.8, (regressor, t, r)
        assert np.sqrt(np.mean((got - f) ** 2)) < 0.5 * np.std(f)
    for c in res.conservation:
        assert c["cells"] == N_COARSE ** 2
        assert c["mean_abs_diff"] < 0.01
    assert os.path.exists(out[:-4] + ".qml")
    log = json.load(open(out[:-4] + ".json"))
    assert log["scene"]["dates"] == [d.isoformat() for d in DATES]
    assert log["training"]["n_samples"] == N_COARSE ** 2 * len(DATES)


def test_coarse_cells_without_soil_moisture_stay_empty(make_raster, tmp_path):
    rng = np.random.default_rng(2)
    ndvi, dem, truth = _truth(rng)
    origin = (500000.0, 4400000.0)
    sm = []
    for d, f in zip(DATES, truth):
        c = _block_mean(f)
        c[0, 0] = -9999
        sm.append(make_raster(f"sm_{d:%Y%m%d}.tif", c, origin=origin, pixel=(10000.0, 10000.0), nodata=-9999))
    nd = make_raster("ndvi.tif", ndvi, origin=origin, pixel=(1000.0, 1000.0))
    de = make_raster("dem.tif", dem, origin=origin, pixel=(1000.0, 1000.0))
    out = str(tmp_path / "down.tif")
    downscale(_scene(sm, nd, de), out, RegressionOptions(regressor="hgb"))
    ds = gdal.Open(out)
    got = ds.GetRasterBand(1).ReadAsArray()
    assert np.isnan(got[:K, :K]).all()
    assert np.isfinite(got[K:, K:]).all()


def test_cancel_leaves_nothing_behind(scene_files, tmp_path):
    sm, nd, de, _ = scene_files
    calls = {"n": 0}

    def cancel_after_a_while():
        calls["n"] += 1
        return calls["n"] > 5

    with pytest.raises(Canceled):
        downscale(_scene(sm, nd, de), str(tmp_path / "down.tif"),
                                 RegressionOptions(regressor="hgb", block_pixels=600),
                                 is_canceled=cancel_after_a_while)
    left = [p for p in os.listdir(tmp_path) if p.startswith("down") or p.startswith(".down")]
    assert left == []


def test_terrain_is_derived_from_the_dem(scene_files):
    sm, nd, de, _ = scene_files
    scene = _scene(sm, nd, de, derive=True)
    assert scene.covariate_names == ["ndvi", "dem", "slope", "mtpi"]
    f = scene.features(0, next(scene.fine.windows()), extra=("sm_coarse",))
    assert np.nanmax(f["slope"]) > 0
    assert np.allclose(f["sm_coarse"][:K, :K], scene.coarse_sm(0)[0])


def test_per_class_without_land_cover_is_refused(scene_files, tmp_path):
    sm, nd, de, _ = scene_files
    with pytest.raises(InputError, match="land-cover"):
        downscale(_scene(sm, nd, de), str(tmp_path / "x.tif"), RegressionOptions(per_class=True))


def test_one_model_per_land_cover_class(make_raster, tmp_path):
    rng = np.random.default_rng(5)
    ndvi, dem, truth = _truth(rng)
    n = N_COARSE * K
    lc = np.where(np.arange(n)[None, :] < n // 2, 1, 2).repeat(n, axis=0).astype(np.uint8)
    origin = (500000.0, 4400000.0)
    # wetter with NDVI in class 1, drier with NDVI in class 2
    fields = [np.where(lc == 1, 0.1 + 0.3 * ndvi, 0.45 - 0.3 * ndvi).astype(np.float32) + 0.02 * i
              for i in range(len(DATES))]
    sm = [make_raster(f"sm_{d:%Y%m%d}.tif", _block_mean(f), origin=origin, pixel=(10000.0, 10000.0))
          for d, f in zip(DATES, fields)]
    nd = make_raster("ndvi.tif", ndvi, origin=origin, pixel=(1000.0, 1000.0))
    lcp = make_raster("lc.tif", lc, origin=origin, pixel=(1000.0, 1000.0))
    scene = Scene(SceneSpec([BandRef(str(p), 1, "SM", d) for p, d in zip(sm, DATES)],
                            [LayerInput(Role.NDVI, "NDVI", [BandRef(str(nd))]),
                             LayerInput(Role.LAND_COVER, "LC", [BandRef(str(lcp))])]))
    assert scene.categorical_names == ["land_cover"]
    out = str(tmp_path / "pc.tif")
    res = downscale(scene, out, RegressionOptions(regressor="svr", per_class=True))
    assert res.training["class_models"] == [1, 2]
    assert res.training["class_samples"] == {1: 18 * len(DATES), 2: 18 * len(DATES)}
    ds = gdal.Open(out)  # keep the dataset alive while its band is read (GDAL 3.6)
    got = ds.GetRasterBand(1).ReadAsArray()
    dev_true = fields[0] - np.kron(_block_mean(fields[0]), np.ones((K, K)))
    dev_got = got - np.kron(_block_mean(got), np.ones((K, K)))
    assert np.corrcoef(dev_true.ravel(), dev_got.ravel())[0, 1] > 0.8


def test_residual_refinement_tightens_conservation(scene_files, tmp_path):
    sm, nd, de, _ = scene_files
    # a scene whose trend cannot explain everything: drop NDVI so the residual carries the pattern
    scene = Scene(SceneSpec([BandRef(str(p), 1, "SM", d) for p, d in zip(sm, DATES)],
                            [LayerInput(Role.DEM, "DEM", [BandRef(str(de), 1, "DEM")])], derive_terrain=False))
    errs = []
    for it in (0, 3):
        res = downscale(scene, str(tmp_path / f"it{it}.tif"),
                                       RegressionOptions(regressor="hgb", residual="bilinear", residual_iterations=it,
                                                     shrink_residual=False))
        errs.append(np.mean([c["mean_abs_diff"] for c in res.conservation]))
    assert errs[0] > 0.002  # plain bilinear leaks residual between cells
    assert errs[1] < errs[0] / 4  # each pass roughly halves it


def test_a_saved_trend_applied_later_gives_the_same_map(scene_files, tmp_path):
    """fit and predict are separate: a model fitted once, saved and loaded, reproduces the one-call run."""
    sm, nd, de, _ = scene_files
    opts = RegressionOptions(regressor="hgb", n_estimators=40)
    one_call = str(tmp_path / "one.tif")
    downscale(_scene(sm, nd, de), one_call, opts)
    model = fit(_scene(sm, nd, de), opts)
    folder = model.save(str(tmp_path / "model"))
    later = str(tmp_path / "later.tif")
    predict(RegressionModel.load(folder), _scene(sm, nd, de), later)
    a, b = gdal.Open(one_call), gdal.Open(later)
    for i in range(1, len(DATES) + 1):
        np.testing.assert_array_equal(a.GetRasterBand(i).ReadAsArray(), b.GetRasterBand(i).ReadAsArray())
    card = json.load(open(os.path.join(folder, "card.json")))
    assert card["method"] == "regression" and card["inputs"] == ["ndvi", "dem", "doy"]


def test_a_modified_model_folder_is_not_unpickled(scene_files, tmp_path):
    sm, nd, de, _ = scene_files
    folder = fit(_scene(sm, nd, de), RegressionOptions(regressor="hgb", n_estimators=10)).save(str(tmp_path / "m"))
    with open(os.path.join(folder, "state.joblib"), "ab") as f:
        f.write(b"tampered")
    with pytest.raises(StateError, match="SHA-256"):
        RegressionModel.load(folder)


def test_a_trend_needs_the_layers_it_was_fitted_with(scene_files, tmp_path):
    sm, nd, de, _ = scene_files
    model = fit(_scene(sm, nd, de), RegressionOptions(regressor="hgb", n_estimators=10))
    dem_only = Scene(SceneSpec([BandRef(str(p), 1, "SM", d) for p, d in zip(sm, DATES)],
                               [LayerInput(Role.DEM, "DEM", [BandRef(str(de), 1, "DEM")])]))
    with pytest.raises(InputError, match="ndvi"):
        predict(model, dem_only, str(tmp_path / "x.tif"))
    assert not os.listdir(tmp_path) or not any(p.startswith("x") for p in os.listdir(tmp_path))
