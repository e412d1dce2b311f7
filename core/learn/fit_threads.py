"""How many OpenMP threads a model fit on the coarse or station samples gets: one.

The engine sets ``OMP_WAIT_POLICY=PASSIVE`` (``core/__init__.py``) so that idle OpenMP threads do not
spin against the raster pipeline's readers and writers. The price is paid by fits made of many small
parallel regions: scikit-learn's histogram gradient boosting opens a few per tree node, and each
wakes the sleeping threads. Measured on this project's 2-core machine with that policy (100–200
iterations): 2 500 samples 4.8 s with two threads vs 0.36 s with one, 20 000 samples 2.0 s vs 0.35 s,
100 000 samples 2.9 s vs 1.2 s, 400 000 samples 4.3 s vs 2.9 s — one thread wins at every size a
coarse grid or a station network gives. The fitted model does not depend on the thread count
(each feature's histogram is summed by one thread; ``tests/unit/test_fit_threads.py``), only its
speed does. Prediction on fine rasters keeps every thread.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

#: Above this many samples a fit keeps every OpenMP thread (fits that large are not made of small
#: parallel regions any more; none of the measured sizes reached it).
MANY_SAMPLES = 2_000_000


@contextlib.contextmanager
def fit_threads(n_samples: int) -> Iterator[None]:
    """Run the fits inside with one OpenMP thread when ``n_samples`` is below :data:`MANY_SAMPLES`
    (a no-op without threadpoolctl, which scikit-learn installs)."""
    if n_samples >= MANY_SAMPLES:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits

        import sklearn.ensemble  # noqa: F401  loads scikit-learn's OpenMP runtime, so the limit reaches it
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        yield
        return
    with threadpool_limits(limits=1, user_api="openmp"):
        yield
