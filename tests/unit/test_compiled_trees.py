"""The compiled tree trends (numpy bitvectors, onnxruntime TreeEnsembleRegressor) against scikit-learn's own
prediction, and the lean trend → residual pipeline against the scratch-file path it replaces."""
import glob
import os
import pickle

import numpy as np
import pytest
from osgeo import gdal

from core.errors import Canceled
from core.inputs.dates import parse_date
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec
from core.learn.bitvector_trees import BitvectorTrees
from core.learn.compiled_trees import CompiledTrees, float32_floor, supports, tree_ensemble_onnx
from core.methods import pipeline, regression, trend
from core.methods.trend import TrendModel, TrendOptions, stack_features
from core.raster.align import BandRef

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data", "delaware")


def _delaware(n_dates):
    paths = sorted(glob.glob(os.path.join(SAMPLE, "esa_cci_sm", "*.tif")))[:n_dates]
    sm = [BandRef(p, 1, os.path.basename(p), parse_date(os.path.basename(p))) for p in paths]
    dem = LayerInput(Role.DEM, "dem", [BandRef(os.path.join(SAMPLE, "elevation_1km.tif"), 1, "dem")])
    return Scene(SceneSpec(sm, [dem], derive_terrain=True))


def _fine_rows(scene, names, n_dates):
    w = next(iter(scene.fine.windows(scene.fine.size)))
    static = scene.static_block(w)
    X = np.concatenate([stack_features(scene.features(t, w, static), names) for t in range(n_dates)])
    return X[np.isfinite(X).all(axis=1)]


@pytest.fixture(scope="module")
def delaware_rows():
    scene = _delaware(31)  # the trend learns on every date of January 2018 (~400 coarse samples)
    names = scene.covariate_names + ["doy"]
    view = scene.training_view(1 << 20)
    X, y, _, _ = trend.coarse_samples(scene, view, names)
    return names, X, y.astype(np.float64), _fine_rows(scene, names, 1)


@pytest.mark.parametrize("regressor", ["hgb", "rf"])
def test_compiled_trees_predict_real_delaware_rows_as_scikit_learn(delaware_rows, regressor, monkeypatch):
    """Every fine land pixel of a Delaware date (ESA CCI + elevation, slope, mTPI, day of year): each
    row reaches the same leaf of every tree in onnxruntime as in scikit-learn (no split flips), and the
    predictions differ by float32 rounding of the leaf sum only."""
    names, X, y, rows = delaware_rows
    model = TrendModel(names, [], TrendOptions(regressor=regressor, n_estimators=30))
    model.fit(X, y, scores=False)
    pipe = model.global_model
    native = pipe.predict(rows)
    compiled = CompiledTrees.from_estimator(pipe[-1], pipe[:-1].transform(rows[:1]).shape[1])
    fast = trend.predict_pipeline(pipe, rows, compiled=compiled)
    assert fast.dtype == np.float32 and len(rows) > 30_000
    assert np.max(np.abs(fast - native)) < 1e-6
    Z = pipe[:-1].transform(rows).astype(np.float32)
    leaves = _onnx_leaves(pipe[-1], Z)
    assert leaves.shape == (len(rows), 30) and len(np.unique(leaves[:, -1])) > 1
    np.testing.assert_array_equal(leaves, _sklearn_leaves(pipe[-1], Z))
    monkeypatch.setattr(trend, "COMPILE_MIN_ROWS", len(rows))
    # the regression compiles its gradient boosting (as bitvectors, test_bitvector_trees.py); its random forest
    # stays in scikit-learn (faster there)
    assert ("bitvectors" in _predictor_after(model, rows)) == (regressor == "hgb")


def _onnx_leaves(reg, Z):
    """The leaf each row reaches in every tree of the compiled graph: the graph with one output per tree
    whose leaf weights are the leaves' node ids."""
    import onnx
    import onnxruntime as ort
    from onnx import helper
    m = onnx.load_from_string(tree_ensemble_onnx(reg, Z.shape[1]))
    node = m.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    n_trees = len(set(attrs["nodes_treeids"]))
    attrs.update(n_targets=n_trees, target_ids=list(attrs["target_treeids"]),
                 target_weights=[float(i) for i in attrs["target_nodeids"]], base_values=[0.0] * n_trees,
                 aggregate_function="SUM")
    attrs = {k: (v.decode() if isinstance(v, bytes) else [x.decode() for x in v] if k == "nodes_modes" else v)
             for k, v in attrs.items()}
    del node.attribute[:]
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = n_trees
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": Z})[0].astype(np.int64)


def _sklearn_leaves(reg, Z):
    if not hasattr(reg, "_predictors"):
        return np.column_stack([e.apply(Z) for e in reg.estimators_])
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    known, f_idx_map = reg._bin_mapper.make_known_categories_bitsets()
    out = []
    for (p,) in reg._predictors:
        nodes = p.nodes.copy()
        nodes["value"] = np.arange(len(nodes))
        ids = TreePredictor(nodes, p.binned_left_cat_bitsets, p.raw_left_cat_bitsets)
        out.append(ids.predict(Z.astype(np.float64), known, f_idx_map, 1))
    return np.column_stack(out).astype(np.int64)


def _predictor_after(model, rows) -> str:
    model.predict(rows)  # a map-sized call compiles the trees
    return model.predictor()


def test_a_threshold_that_rounds_up_in_float32_does_not_flip_its_split():
    """Two neighbouring float32 values a < b: scikit-learn splits at their float64 midpoint, which rounds to
    b in float32 (ties to even). A graph holding that rounded threshold would send b left; rounded down, it
    keeps b right like scikit-learn."""
    from sklearn.ensemble import RandomForestRegressor
    a = np.nextafter(np.float32(1000.0), np.float32(2000.0))  # odd last mantissa bit; ulp 6e-5 (> the 1e-7
    b = np.nextafter(a, np.float32(2000.0))                     # scikit-learn needs between split values)
    X = np.array([[a]] * 10 + [[b]] * 10, dtype=np.float32)
    y = np.array([0.0] * 10 + [1.0] * 10)
    rf = RandomForestRegressor(n_estimators=1, bootstrap=False, random_state=0).fit(X, y)
    t = rf.estimators_[0].tree_.threshold[0]
    assert np.float32(t) == b                                 # round-to-nearest would flip b
    assert float32_floor(np.array([t]))[0] == a
    got = CompiledTrees.from_estimator(rf, 1).predict(np.array([[a], [b]], dtype=np.float32))
    np.testing.assert_array_equal(got, [0.0, 1.0])
    np.testing.assert_array_equal(rf.predict(np.array([[a], [b]])), [0.0, 1.0])


def test_float32_floor_keeps_every_comparison():
    rng = np.random.default_rng(3)
    t = rng.normal(size=2000) * 10.0 ** rng.integers(-3, 4, size=2000)
    t32 = float32_floor(t)
    assert np.all(t32.astype(np.float64) <= t)
    # every float32 just below, at and above t32 compares with t32 as with t
    for z in (t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf))):
        np.testing.assert_array_equal(z <= t32, z.astype(np.float64) <= t)


def test_one_hot_land_cover_and_per_class_models_compile_too():
    """Categorical columns go through the one-hot encoder (0/1, float64 in scikit-learn): still float32 values,
    so the compiled per-class and global trends match scikit-learn's."""
    rng = np.random.default_rng(0)
    n = 3000
    lc = rng.choice([11.0, 41.0, 82.0], size=n)
    ndvi = rng.uniform(0.1, 0.8, n)
    X = np.column_stack([ndvi, lc, rng.uniform(1, 365, n)]).astype(np.float32)
    y = 0.4 - 0.3 * ndvi + 0.05 * (lc == 41) + 0.01 * rng.normal(size=n)
    model = TrendModel(["ndvi", "land_cover", "doy"], ["land_cover"],
                       TrendOptions(regressor="hgb", n_estimators=30, per_class=True))
    model.fit(X, y, scores=False)
    assert sorted(model.class_models) == [11, 41, 82]
    rows = np.column_stack([rng.uniform(0.1, 0.8, 60_000), rng.choice([11.0, 41.0, 82.0, 90.0], 60_000),
                            rng.uniform(1, 365, 60_000)]).astype(np.float32)
    native = model.global_model.predict(rows)
    for code, m in model.class_models.items():
        sel = rows[:, 1] == code
        native[sel] = m.predict(rows[sel])
    got = model.predict(rows)
    assert set(model.__dict__["_compiled"]) == {"global", 11, 41, 82}
    assert np.max(np.abs(got - native)) < 1e-6


def test_a_pickled_trend_holds_no_graph_and_compiles_again(delaware_rows, monkeypatch):
    names, X, y, rows = delaware_rows
    monkeypatch.setattr(trend, "COMPILE_MIN_ROWS", len(rows))
    model = TrendModel(names, [], TrendOptions(regressor="hgb", n_estimators=20))
    model.fit(X, y, scores=False)
    before = model.predict(rows)
    assert "_compiled" in model.__dict__
    again = pickle.loads(pickle.dumps(model))
    assert "_compiled" not in again.__dict__
    np.testing.assert_array_equal(again.predict(rows), before)
    assert supports(again.global_model[-1]) and not supports(object())


def _raster(path):
    ds = gdal.Open(path)
    return np.stack([ds.GetRasterBand(i + 1).ReadAsArray() for i in range(ds.RasterCount)])


def test_the_in_memory_trend_writes_the_same_map_as_the_scratch_file(tmp_path, monkeypatch):
    """The lean pipeline keeps the trend in memory: same map, to the bit, as through the scratch GeoTIFF."""
    scene = _delaware(4)
    model = regression.fit(scene, regression.RegressionOptions(regressor="rf", n_estimators=10, shrink_trend=False,
                                                               residual="bilinear"))
    lean = str(tmp_path / "lean.tif")
    regression.predict(model, scene, lean)
    monkeypatch.setattr(pipeline, "TREND_MEMORY_BYTES", 0)
    scratch = str(tmp_path / "scratch.tif")
    regression.predict(model, scene, scratch)
    a, b = _raster(lean), _raster(scratch)
    assert np.isfinite(a).sum() > 40_000
    np.testing.assert_array_equal(a, b)
    assert not [f for f in os.listdir(tmp_path) if ".part-" in f]


def test_the_compiled_trend_map_equals_the_scikit_learn_map_within_float32_rounding(tmp_path, monkeypatch):
    scene = _delaware(10)  # ~130 coarse samples: trees with several leaves
    model = regression.fit(scene, regression.RegressionOptions(regressor="hgb", n_estimators=20, shrink_trend=False,
                                                               residual="bilinear"))
    fast = str(tmp_path / "fast.tif")
    monkeypatch.setattr(trend, "COMPILE_MIN_ROWS", 0)
    regression.predict(model, scene, fast)
    assert "bitvectors" in model.trend.predictor()
    model.trend.__dict__.pop("_compiled")
    monkeypatch.setattr(trend, "COMPILE_MIN_ROWS", 1 << 62)
    native = str(tmp_path / "native.tif")
    regression.predict(model, scene, native)
    assert model.trend.predictor().startswith("scikit-learn")
    assert model.trend.global_model[-1]._predictors[0][0].get_n_leaf_nodes() > 2
    a, b = _raster(fast), _raster(native)
    np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
    assert np.isfinite(a).sum() > 40_000
    assert np.nanmax(np.abs(a - b)) < 2e-6


def test_the_bitvectors_predict_real_delaware_rows_as_scikit_learn(delaware_rows):
    """The regression's default gradient boosting (200 iterations, up to 31 leaves) on every fine land pixel
    of a Delaware date: the bitvector evaluation gives scikit-learn's float64 prediction rounded to float32
    (the leaf sums are added in another order: at most one float32 step apart, in practice none)."""
    names, X, y, rows = delaware_rows
    model = TrendModel(names, [], TrendOptions(regressor="hgb"))
    model.fit(X, y, scores=False)
    pipe = model.global_model
    reg = pipe[-1]
    assert reg.n_iter_ == 200 and max(p[0].get_n_leaf_nodes() for p in reg._predictors) > 8
    compiled = trend.compile_pipeline(pipe, len(names))
    assert isinstance(compiled, BitvectorTrees) and compiled.mask_dtype == np.uint32
    native = pipe.predict(rows)
    fast = trend.predict_pipeline(pipe, rows, compiled=compiled)
    assert fast.dtype == np.float32 and len(rows) > 30_000
    step = np.spacing(np.abs(native).astype(np.float32))
    assert np.all(np.abs(fast - native) <= step)
    assert np.mean(fast == native.astype(np.float32)) > 0.999


def test_a_block_s_dates_predicted_together_equal_each_date_s_prediction(delaware_rows):
    """The Delaware block's rows as the pipeline reads them: the day of year is the one dated column; the
    dates predicted together (static covariates' AND once) equal each date's own prediction bit for bit, and a
    gap in a dated column gives no trend there, as per date."""
    from core.methods import blocks
    names, X, y, _ = delaware_rows
    model = TrendModel(names, [], TrendOptions(regressor="hgb", n_estimators=60))
    model.fit(X, y, scores=False)
    scene = _delaware(31)
    w = next(iter(scene.fine.windows(scene.fine.size)))
    rows = list(blocks._trend_rows(scene, model, names, [w], lambda: False))[::15]  # 1, 16 and 31 January
    dated = rows[0][3]
    assert [names[j] for j in dated] == ["doy"]
    first, later = rows[0][2], [r[2][:, dated] for r in rows[1:]]
    later[0] = later[0].copy()
    later[0][::5] = np.nan
    got = model.predict_dates(first, dated, later)
    assert isinstance(model.__dict__["_compiled"]["global"], BitvectorTrees)
    assert np.isfinite(got[0]).sum() > 40_000 and np.isnan(got[1, ::5]).all()
    for t, X_t in enumerate([first, *[r[2] for r in rows[1:]]]):
        if t == 1:
            X_t = X_t.copy()
            X_t[::5, dated] = np.nan
        np.testing.assert_array_equal(got[t], model.predict(X_t))
        ok = np.isfinite(X_t).all(axis=1)
        native = model.global_model.predict(X_t[ok])
        assert np.all(np.abs(got[t][ok] - native) <= np.spacing(np.abs(native).astype(np.float32)))
    assert not np.array_equal(got[0], got[2], equal_nan=True)
    with pytest.raises(Canceled):
        model.predict_dates(first, dated, later, canceled=lambda: True)


def test_the_map_of_dates_predicted_together_is_the_map_of_dates_one_by_one(tmp_path, monkeypatch):
    scene = _delaware(4)
    model = regression.fit(scene, regression.RegressionOptions(regressor="hgb", n_estimators=20, shrink_trend=False,
                                                               residual="bilinear"))
    monkeypatch.setattr(trend, "COMPILE_MIN_ROWS", 0)
    together = str(tmp_path / "together.tif")
    regression.predict(model, scene, together)
    monkeypatch.delattr(TrendModel, "predict_dates")
    one_by_one = str(tmp_path / "one_by_one.tif")
    regression.predict(model, scene, one_by_one)
    assert "bitvectors" in model.trend.predictor()
    a, b = _raster(together), _raster(one_by_one)
    assert np.isfinite(a).sum() > 40_000
    np.testing.assert_array_equal(a, b)
