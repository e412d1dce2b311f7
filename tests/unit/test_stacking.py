"""Stacking regressor (base learners fused by a non-negative meta-learner) and its one-graph ONNX export."""
import numpy as np
import pytest

from core.learn import stacking
from core.learn.stacking import Stack, StackingOptions, missing_packages, nonnegative_linear

SKLEARN_ONLY = ("hgb", "rf", "extra_trees")

def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=n)
    return X, y, np.arange(n) // 10


def test_meta_learner_recovers_known_nonnegative_weights_and_intercept():
    rng = np.random.default_rng(1)
    P = rng.normal(size=(500, 3))
    y = 0.3 + 0.7 * P[:, 0] + 0.3 * P[:, 1] - 0.0 * P[:, 2]
    w, b = nonnegative_linear(P, y)
    np.testing.assert_allclose(w, [0.7, 0.3, 0.0], atol=1e-9)
    assert b == pytest.approx(0.3, abs=1e-9)
    # a learner anti-correlated with y gets weight 0, never a negative one
    w2, _ = nonnegative_linear(np.column_stack([P[:, 0], -y]), y)
    assert w2[1] == 0.0 and w2[0] > 0


def test_stack_is_at_least_as_good_as_its_best_learner_out_of_fold():
    X, y, groups = _data()
    s = Stack(StackingOptions(learners=SKLEARN_ONLY, n_estimators=80)).fit(X, y, groups)
    assert (s.weights >= 0).all() and s.weights.sum() > 0
    best = min(s.oof_scores[n]["rmse"] for n in s.learners)
    assert s.oof_scores["stack"]["rmse"] <= best + 1e-9
    assert s.oof_scores["stack"]["r"] > 0.9


def test_folds_keep_whole_groups_out():
    """A value that only its group knows cannot be predicted out of fold (a sample-wise split would leak it)."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(300), 8)
    secret = rng.normal(size=300)[groups]
    X = np.column_stack([groups.astype(np.float32), rng.normal(size=groups.size)]).astype(np.float32)
    s = Stack(StackingOptions(learners=("rf",), n_estimators=40)).fit(X, secret, groups)
    assert abs(s.oof_scores["rf"]["r"]) < 0.2
    # in sample, the forest knows every group's value: the grouping, not the learner, makes it fail
    assert np.corrcoef(s.predict_learners(X)[:, 0], secret)[0, 1] > 0.7


@pytest.mark.parametrize("learners", [SKLEARN_ONLY, ("xgboost",), ("lightgbm",), ("catboost",)],
                         ids=["sklearn", "xgboost", "lightgbm", "catboost"])
def test_one_onnx_graph_matches_the_native_stack_and_every_learner(learners):
    pytest.importorskip("onnxruntime")
    missing = missing_packages(learners)
    if missing:
        pytest.skip(f"optional base learner not installed: pip install {' '.join(missing.values())}")
    import onnxruntime as ort

    X, y, groups = _data(n=1500, seed=2)
    s = Stack(StackingOptions(learners=learners, n_estimators=60)).fit(X, y, groups)
    model = s.to_onnx(X.shape[1])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"X": X})))
    np.testing.assert_allclose(got["sm"].ravel(), s.predict(X), atol=2e-5)
    native = s.predict_learners(X)
    for j, name in enumerate(s.learners):
        np.testing.assert_allclose(got[f"learner_{name}"].ravel(), native[:, j], atol=2e-5)


def test_a_missing_package_removes_its_learner_with_the_pip_name(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(stacking.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("xgboost", "lightgbm") else real(name, *a))
    assert missing_packages(("hgb", "xgboost", "lightgbm")) == {"xgboost": "xgboost-cpu", "lightgbm": "lightgbm"}
    X, y, groups = _data(n=600)
    s = Stack(StackingOptions(learners=("hgb", "xgboost"), n_estimators=20)).fit(X, y, groups)
    assert s.learners == ["hgb"]
    with pytest.raises(ValueError, match="pip install xgboost-cpu"):
        Stack(StackingOptions(learners=("xgboost",))).fit(X, y, groups)
    with pytest.raises(ValueError, match="unknown base learner"):
        missing_packages(("svm",))
