"""Where the fine-grid row blocks of a prediction are computed: in this process (the default) or on a
Dask cluster — the same arithmetic on the same windows either way, so the outputs are identical.

A method's block loop asks :func:`current_blocks` for the executor and consumes its blocks in window
order (reductions such as a cell mean add the blocks in that order, so floating-point sums do not
depend on which worker finished first). One writer — the caller — assembles the output.

>>> with use_blocks(DaskBlocks(client)):            # doctest: +SKIP
...     regression.downscale(scene, "out.tif")

On Dask a task carries only the scene's :class:`~core.inputs.scene.SceneSpec` (paths and settings),
the window and the key of the model's bytes: each worker opens its inputs with GDAL (datasets do not
pickle) and unpickles the model once (the bytes are broadcast to every worker once per run). The
bytes come from this process's own fitted model, never from a file.
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import hashlib
import pickle
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from ..errors import Canceled
from ..inputs.scene import Scene, SceneSpec
from ..raster.grid import Window
from .trend import stack_features

#: A block of the trend: ``(T, window.nrows, fine width)`` float32.
TrendBlocks = Iterator[tuple[Window, np.ndarray]]


def trend_block(scene: Scene, trend: Any, names: Sequence[str], weight: np.float32, window: Window,
                canceled: Callable[[], bool] = lambda: False) -> np.ndarray:
    """The weighted trend of every date on ``window`` (``trend.predict`` over the feature ``names``)."""
    static = scene.static_block(window)
    out = np.empty((len(scene.dates), window.nrows, scene.fine.width), dtype=np.float32)
    for t in range(len(scene.dates)):
        if canceled():
            raise Canceled()
        if hasattr(trend, "predict_block"):  # a trend that reads its own context (halo rows, past dates)
            out[t] = trend.predict_block(scene, t, window, static) * weight
        else:
            feats = scene.features(t, window, static)
            out[t] = trend.predict(stack_features(feats, names)).reshape(window.nrows, scene.fine.width) * weight
    return out


def ensemble_block(scene: Scene, ensemble: Any, cols: Sequence[str], extra: Sequence[str], window: Window,
                   canceled: Callable[[], bool] = lambda: False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The members' mean, spread and out-of-domain flag of every date on ``window``, each
    ``(T, window.nrows, fine width)`` (see :func:`core.methods.insitu_ensemble.apply.predict`)."""
    shape = (len(scene.dates), window.nrows, scene.fine.width)
    mean, sd, ood = np.empty(shape, np.float32), np.empty(shape, np.float32), np.empty(shape, bool)
    static = scene.static_block(window)
    for t in range(len(scene.dates)):
        if canceled():
            raise Canceled()
        f = scene.features(t, window, static, extra=tuple(extra))
        X = np.column_stack([f[c].ravel() for c in cols]).astype(np.float32)
        m, s, o = ensemble.predict(X)
        mean[t], sd[t], ood[t] = m.reshape(shape[1:]), s.reshape(shape[1:]), o.reshape(shape[1:])
    return mean, sd, ood


class SerialBlocks:
    """Every block in this process, one after the other."""

    def ensemble_blocks(self, scene: Scene, ensemble: Any, cols: Sequence[str], extra: Sequence[str],
                        windows: Sequence[Window], canceled: Callable[[], bool]):
        for w in windows:
            yield w, ensemble_block(scene, ensemble, cols, extra, w, canceled)

    def trend_blocks(self, scene: Scene, trend: Any, names: Sequence[str], weight: np.float32,
                     windows: Sequence[Window], canceled: Callable[[], bool]) -> TrendBlocks:
        for w in windows:
            yield w, trend_block(scene, trend, names, weight, w, canceled)


class DaskBlocks:
    """Blocks as tasks on a ``dask.distributed.Client``; at most ``ahead`` blocks in flight per worker
    (the client holds a block only until it is written)."""

    def __init__(self, client: Any, ahead: int = 2) -> None:
        self.client = client
        self.ahead = int(ahead)

    def trend_blocks(self, scene: Scene, trend: Any, names: Sequence[str], weight: np.float32,
                     windows: Sequence[Window], canceled: Callable[[], bool]) -> TrendBlocks:
        payload = pickle.dumps(trend, protocol=pickle.HIGHEST_PROTOCOL)
        key = hashlib.sha256(payload).hexdigest()
        model = self.client.scatter(payload, broadcast=True, hash=False)
        spec_bytes = pickle.dumps(scene.spec, protocol=pickle.HIGHEST_PROTOCOL)
        threads = thread_counts()
        try:
            yield from self._in_order(windows, canceled, lambda w: self.client.submit(
                _remote_trend_block, spec_bytes, key, model, list(names), float(weight), w, threads, pure=False))
        finally:
            model.cancel()

    def ensemble_blocks(self, scene: Scene, ensemble: Any, cols: Sequence[str], extra: Sequence[str],
                        windows: Sequence[Window], canceled: Callable[[], bool]):
        """The ensemble is a verified model folder: each worker loads it (hash-checked) from its path."""
        spec_bytes = pickle.dumps(scene.spec, protocol=pickle.HIGHEST_PROTOCOL)
        yield from self._in_order(windows, canceled, lambda w: self.client.submit(
            _remote_ensemble_block, spec_bytes, ensemble.folder, list(cols), list(extra), w, pure=False))

    def _in_order(self, windows: Sequence[Window], canceled: Callable[[], bool], submit: Callable[[Window], Any]):
        limit = max(1, self.ahead * max(1, len(self.client.scheduler_info().get("workers", {}))))
        pending: collections.deque = collections.deque()
        todo = iter(windows)
        try:
            while True:
                while len(pending) < limit:
                    w = next(todo, None)
                    if w is None:
                        break
                    pending.append((w, submit(w)))
                if not pending:
                    return
                w, future = pending.popleft()
                while True:
                    if canceled():
                        raise Canceled()
                    try:
                        block = future.result(timeout=0.2)
                        break
                    except TimeoutError:
                        continue
                yield w, block
        finally:
            for _, f in pending:
                f.cancel()


# -- on a worker ---------------------------------------------------------------------------------
_WORKER_SCENES: "collections.OrderedDict[str, Scene]" = collections.OrderedDict()
_WORKER_MODELS: "collections.OrderedDict[str, Any]" = collections.OrderedDict()


def _cached(cache: collections.OrderedDict, key: str, make: Callable[[], Any], keep: int = 2) -> Any:
    if key not in cache:
        cache[key] = make()
        while len(cache) > keep:
            cache.popitem(last=False)
    return cache[key]


def thread_counts() -> dict[str, int]:
    """Threads of this process's BLAS / OpenMP pools (``{}`` without threadpoolctl).

    A BLAS sum split over another number of threads rounds differently (1 ulp here and there), and Dask
    starts its workers with one thread: a worker takes the client's counts so its blocks are bit-identical.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    out: dict[str, int] = {}
    for pool in threadpool_info():
        out[pool["user_api"]] = max(out.get(pool["user_api"], 1), int(pool["num_threads"]))
    return out


def _remote_trend_block(spec_bytes: bytes, model_key: str, model_bytes: bytes, names: list[str], weight: float,
                        window: Window, threads: dict[str, int]) -> np.ndarray:
    """A trend block computed on a Dask worker (the scene and the model are opened once per worker)."""
    scene = _cached(_WORKER_SCENES, hashlib.sha256(spec_bytes).hexdigest(),
                    lambda: Scene(_load_spec(spec_bytes)))
    trend = _cached(_WORKER_MODELS, model_key, lambda: pickle.loads(model_bytes))  # noqa: S301 (our own bytes)
    with _threads(threads):
        return trend_block(scene, trend, names, np.float32(weight), window)


def _remote_ensemble_block(spec_bytes: bytes, folder: str, cols: list[str], extra: list[str], window: Window
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ensemble block on a Dask worker (the members are loaded and hash-checked once per worker)."""
    from ..learn.model_folder import Ensemble
    scene = _cached(_WORKER_SCENES, hashlib.sha256(spec_bytes).hexdigest(), lambda: Scene(_load_spec(spec_bytes)))
    ensemble = _cached(_WORKER_MODELS, "ensemble:" + folder, lambda: Ensemble.load(folder, intra_op_threads=1))
    return ensemble_block(scene, ensemble, cols, extra, window)


@contextlib.contextmanager
def _threads(counts: dict[str, int]) -> Iterator[None]:
    if not counts:
        yield
        return
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=counts):
        yield


def _load_spec(spec_bytes: bytes) -> SceneSpec:
    return pickle.loads(spec_bytes)  # noqa: S301 (the client's own scene spec)


# -- which executor a run uses ---------------------------------------------------------------------
_CURRENT: contextvars.ContextVar[Optional[Any]] = contextvars.ContextVar("smds_blocks", default=None)


def current_blocks() -> Any:
    """The executor of the run in progress (:class:`SerialBlocks` unless :func:`use_blocks` set one)."""
    return _CURRENT.get() or SerialBlocks()


@contextlib.contextmanager
def use_blocks(executor: Any) -> Iterator[Any]:
    """Run the block loops inside the ``with`` on ``executor``."""
    token = _CURRENT.set(executor)
    try:
        yield executor
    finally:
        _CURRENT.reset(token)
