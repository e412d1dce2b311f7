"""The bitvector evaluation of gradient boosting (core.learn.bitvector_trees) against scikit-learn's ``predict``
on what the real Delaware rows (test_compiled_trees.py) do not hold: missing and infinite values, trees of
more than 32 leaves, pickling, threads and chunk edges."""
import pickle

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from core.learn.bitvector_trees import BitvectorTrees, supports
from core.learn.compiled_trees import CompiledTrees
from core.learn.fit_threads import fit_threads
from core.methods import trend


def _within_float32_step(got, native):
    """``got`` (float32) is scikit-learn's float64 ``native`` rounded to float32, give or take one float32 step
    (the leaf values are summed in another order)."""
    assert got.dtype == np.float32
    return np.all(np.abs(got - native) <= np.spacing(np.abs(native).astype(np.float32)))


def _fit(n=4000, max_leaf_nodes=31, max_iter=40, nan_fraction=0.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * (X[:, 3] > 0.3) + 0.05 * rng.normal(size=n)
    if nan_fraction:
        # missing values that mean something (feature 0 missing ⇒ high target) and that do not (feature 2)
        miss0 = rng.random(n) < nan_fraction
        y[miss0] += 2.0
        X[miss0, 0] = np.nan
        X[rng.random(n) < nan_fraction, 2] = np.nan
    reg = HistGradientBoostingRegressor(max_iter=max_iter, max_leaf_nodes=max_leaf_nodes, learning_rate=0.1,
                                        early_stopping=False, random_state=seed)
    with fit_threads(n):
        reg.fit(X, y)
    return reg, rng


def test_missing_and_infinite_values_go_where_scikit_learn_sends_them():
    reg, rng = _fit(nan_fraction=0.15)
    nodes = np.concatenate([p[0].nodes for p in reg._predictors])
    split = nodes[~nodes["is_leaf"].astype(bool)]
    # the trees learnt both directions for missing values, and thresholds of +inf ("only NaN goes right")
    assert split["missing_go_to_left"].any() and not split["missing_go_to_left"].all()
    assert np.isinf(split["num_threshold"]).any()
    rows = rng.normal(size=(30_000, 4)).astype(np.float32)
    for j in range(4):
        rows[rng.random(len(rows)) < 0.2, j] = np.nan
    rows[:500, 1] = np.inf
    rows[500:1000, 3] = -np.inf
    rows[1000:1100] = np.nan  # every feature missing
    trees = BitvectorTrees.from_estimator(reg)
    got, native = trees.predict(rows), reg.predict(rows)
    assert np.isfinite(got).all()
    assert _within_float32_step(got, native)
    # a missing feature 0 (meaning +2) moves the prediction as scikit-learn's does
    miss = np.isnan(rows[:, 0])
    assert np.mean(got[miss]) - np.mean(got[~miss]) > 1.0


def test_trees_of_more_than_32_leaves_use_64_bit_masks_and_wider_ones_fall_back_to_onnxruntime():
    reg, rng = _fit(n=6000, max_leaf_nodes=60, max_iter=15)
    leaves = [p[0].get_n_leaf_nodes() for p in reg._predictors]
    assert max(leaves) > 32 and max(leaves) <= 64
    trees = BitvectorTrees.from_estimator(reg)
    assert trees.mask_dtype == np.uint64 and trees.values.shape == (15, 64)
    rows = rng.normal(size=(20_000, 4)).astype(np.float32)
    rows[::7, 1] = np.nan
    assert _within_float32_step(trees.predict(rows), reg.predict(rows))

    wide, _ = _fit(n=6000, max_leaf_nodes=90, max_iter=3)
    assert max(p[0].get_n_leaf_nodes() for p in wide._predictors) > 64
    assert not supports(wide)
    with pytest.raises(TypeError):
        BitvectorTrees.from_estimator(wide)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    pipe = make_pipeline(StandardScaler(), wide).fit(rows[:6000], np.nan_to_num(rows[:6000, 0]))
    assert isinstance(trend.compile_pipeline(pipe, 4), CompiledTrees)
    assert "onnxruntime" in trend._predictor_label(pipe[-1], trend.compile_pipeline(pipe, 4))


def test_pickled_tables_threads_and_chunk_edges_give_the_same_prediction():
    reg, rng = _fit(nan_fraction=0.05)
    rows = rng.normal(size=(10_001, 4)).astype(np.float32)  # not a multiple of any chunk
    rows[::11, 0] = np.nan
    trees = BitvectorTrees.from_estimator(reg, chunk=1024)
    ref = trees.predict(rows)
    assert _within_float32_step(ref, reg.predict(rows))
    again = pickle.loads(pickle.dumps(trees))
    assert again.chunk == 1024 and again.mask_dtype == np.uint32
    np.testing.assert_array_equal(again.predict(rows), ref)
    for chunk, threads in ((333, 1), (4096, 2), (1 << 20, 2)):
        np.testing.assert_array_equal(BitvectorTrees.from_estimator(reg, chunk=chunk, threads=threads).predict(rows),
                                      ref)
    assert trees.predict(rows[:0]).shape == (0,)
    with pytest.raises(ValueError):
        trees.predict(rows[:, :3])


def test_trees_without_splits_predict_the_baseline():
    """A constant target: every tree is a single leaf, no feature has a table."""
    X = np.random.default_rng(1).normal(size=(200, 3))
    reg = HistGradientBoostingRegressor(max_iter=5, early_stopping=False).fit(X, np.full(200, 0.25))
    trees = BitvectorTrees.from_estimator(reg)
    assert trees.tables == []
    np.testing.assert_array_equal(trees.predict(X), reg.predict(X).astype(np.float32))


def test_several_dates_share_their_static_columns_and_give_each_date_s_prediction():
    """Columns 0–2 static (covariates), column 3 dated (a dated layer with gaps, or one value per date as a day
    of year): the static AND once for all dates gives, bit for bit, each date's own prediction."""
    reg, rng = _fit(nan_fraction=0.05)
    base = rng.normal(size=(5000, 4)).astype(np.float32)
    base[::13, 1] = np.nan
    dates = []
    for t in range(3):
        Z = base.copy()
        if t == 1:
            Z[:, 3] = np.float32(0.7)  # one value on the whole date (as a day of year)
        else:
            Z[:, 3] = rng.normal(size=len(Z))
            Z[rng.random(len(Z)) < 0.1, 3] = np.nan
        dates.append(Z)
    trees = BitvectorTrees.from_estimator(reg, chunk=512)
    got = trees.predict_dates(dates, dynamic=[3])
    assert got.shape == (3, 5000)
    for t, Z in enumerate(dates):
        np.testing.assert_array_equal(got[t], trees.predict(Z))
        assert _within_float32_step(got[t], reg.predict(Z))
    assert not np.array_equal(got[0], got[1])
    constant = base.copy()
    constant[:, 0] = np.float32(-0.2)  # the first table's column constant
    assert _within_float32_step(trees.predict(constant), reg.predict(constant))
    # nothing dated: every date is the first one's
    np.testing.assert_array_equal(trees.predict_dates([base, base], dynamic=[]), np.stack([trees.predict(base)] * 2))
