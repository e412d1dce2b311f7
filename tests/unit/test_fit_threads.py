"""Fits on coarse/station samples run with one OpenMP thread; the fitted model does not change."""
import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")
pytest.importorskip("sklearn.ensemble")  # loads the OpenMP runtime

from core.learn.fit_threads import MANY_SAMPLES, fit_threads  # noqa: E402
from core.methods.trend import TrendModel, TrendOptions  # noqa: E402


def _openmp_threads() -> set[int]:
    return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp"}


def _samples(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = 0.2 + 0.05 * X[:, 0] + 0.03 * np.sin(3 * X[:, 1]) + rng.normal(0, 0.01, n)
    return X, y


def test_one_openmp_thread_inside_and_all_of_them_after():
    before = _openmp_threads()
    if not before:
        pytest.skip("no OpenMP runtime loaded")
    with fit_threads(1000):
        assert _openmp_threads() == {1}
    assert _openmp_threads() == before
    with fit_threads(MANY_SAMPLES):
        assert _openmp_threads() == before


def test_gradient_boosting_trend_is_the_same_fitted_with_one_or_two_threads():
    X, y = _samples()
    names = ["a", "b", "c", "d"]
    opts = TrendOptions(regressor="hgb", n_estimators=60, seed=3)
    limited = TrendModel(names, [], opts)
    limited.fit(X, y, scores=False)                      # one thread (fit_threads)
    free = TrendModel(names, [], opts)
    with threadpoolctl.threadpool_limits(limits=2, user_api="openmp"):
        free.global_model = free._new().fit(X, y)        # the same estimator, two threads
    Xq, _ = _samples(500, seed=1)
    a, b = limited.global_model.predict(Xq), free.global_model.predict(Xq)
    assert np.array_equal(a, b)
    assert np.std(a) > 0.01                              # a fitted model, not a constant
