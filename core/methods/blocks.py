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
import queue
import threading
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from ..errors import Canceled
from ..inputs.scene import Scene, SceneSpec
from ..raster.grid import Window
from .trend import stack_features

#: A block of the trend: ``(T, window.nrows, fine width)`` float32.
TrendBlocks = Iterator[tuple[Window, np.ndarray]]


#: Dates of features read ahead of the prediction by :class:`SerialBlocks` (one reader thread). Two
#: keep the reader busy while the model predicts and hold at most two dates' feature rows.
PREFETCH_DATES = 2


def trend_block(scene: Scene, trend: Any, names: Sequence[str], weight: np.float32, window: Window,
                canceled: Callable[[], bool] = lambda: False) -> np.ndarray:
    """The weighted trend of every date on ``window`` (``trend.predict`` over the feature ``names``)."""
    rows = _trend_rows(scene, trend, names, [window], canceled)
    return next(_trend_blocks(scene, trend, names, weight, rows, canceled))[1]


def _trend_rows(scene: Scene, trend: Any, names: Sequence[str], windows: Sequence[Window],
                canceled: Callable[[], bool]) -> Iterator[tuple[Window, int, Any, list[int]]]:
    """``(window, t, feature rows, dated columns)`` of every block and date, the static features read once per
    block (a trend that reads its own context gets the static block instead of rows). The dated columns are
    those of ``names`` that are not static layers (the day of year, dated covariates)."""
    reads_context = hasattr(trend, "predict_block")
    for w in windows:
        static = scene.static_block(w)
        dated = [j for j, n in enumerate(names) if n not in static]
        for t in range(len(scene.dates)):
            if canceled():
                raise Canceled()
            if reads_context:
                yield w, t, static, dated
            else:
                yield w, t, stack_features(scene.features(t, w, static), names), dated


def _trend_blocks(scene: Scene, trend: Any, names: Sequence[str], weight: np.float32,
                  rows: Iterator[tuple[Window, int, Any, list[int]]],
                  canceled: Callable[[], bool] = lambda: False) -> TrendBlocks:
    """``(window, weighted trend of every date)`` per block from the rows of its dates (in date order).

    A trend with ``predict_dates`` (:meth:`~core.methods.trend.TrendModel.predict_dates`) predicts a block's
    dates together once its last date is read: from the first date's rows and the later dates' dated columns
    only (held until then: as many values per date as the dated columns, about what the block's output
    holds), so the trees' work on the static columns is done once per block. When most columns are dated,
    each date is predicted as it comes (holding every date's rows would not pay)."""
    n_dates = len(scene.dates)
    reads_context = hasattr(trend, "predict_block")  # a trend that reads its own context (halo rows, past dates)
    by_block = hasattr(trend, "predict_dates") and not reads_context
    out: Optional[np.ndarray] = None
    first: Optional[np.ndarray] = None
    later: list[np.ndarray] = []
    for w, t, X, dated in rows:
        shape = (w.nrows, scene.fine.width)
        together = by_block and 2 * len(dated) <= len(names)
        if t == 0 and not together:
            out = np.empty((n_dates, *shape), dtype=np.float32)
        if reads_context:
            out[t] = trend.predict_block(scene, t, w, X) * weight
        elif not together:
            out[t] = trend.predict(X).reshape(shape) * weight
        elif t == 0:
            first, later = X, []
        else:
            later.append(X[:, dated])
        if t == n_dates - 1:
            if together:
                # the block's output is the prediction array itself (no second copy of every date)
                out = trend.predict_dates(first, dated, later, canceled).reshape((n_dates, *shape))
                out *= weight
                first, later = None, []
            yield w, out


def ensemble_block(scene: Scene, ensemble: Any, cols: Sequence[str], extra: Sequence[str], window: Window,
                   canceled: Callable[[], bool] = lambda: False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The members' mean, spread and out-of-domain flag of every date on ``window``, each
    ``(T, window.nrows, fine width)`` (see :func:`core.methods.insitu_ensemble.apply.predict`)."""
    return next(_ensemble_blocks(scene, ensemble, _ensemble_rows(scene, cols, extra, [window], canceled)))[1]


class _Rows:
    """The input rows of one block and date; ``static`` is shared by the dates of a block."""

    __slots__ = ("window", "t", "X", "static")

    def __init__(self, window: Window, t: int, X: np.ndarray, static: "_StaticColumns") -> None:
        self.window, self.t, self.X, self.static = window, t, X, static


class _StaticColumns:
    """The columns of a block that are the same for every date, stacked once, and their checks."""

    def __init__(self, template: np.ndarray, mask: np.ndarray) -> None:
        self.template = template
        self.mask = mask  # bool per model input: taken from ``template``
        self.checked: Optional[tuple[np.ndarray, np.ndarray]] = None  # (missing, outside) rows


def _ensemble_rows(scene: Scene, cols: Sequence[str], extra: Sequence[str], windows: Sequence[Window],
                   canceled: Callable[[], bool]) -> Iterator[_Rows]:
    """Model input rows of every block and date. Per block, once: the static layers and derived terrain
    (:meth:`Scene.static_block`), latitude/longitude, and their columns; per date only the dated layers,
    the day of year and the coarse soil moisture are read and copied into a copy of those columns."""
    dated_extra = tuple(c for c in extra if c == "sm_coarse")
    for w in windows:
        static = scene.static_block(w)
        if "lat" in extra or "lon" in extra:
            static["lon"], static["lat"] = scene.lonlat(w)
        mask = np.array([c in static for c in cols])
        template = np.empty((w.nrows * scene.fine.width, len(cols)), dtype=np.float32)
        for j in np.flatnonzero(mask):
            template[:, j] = static[cols[j]].ravel()
        shared = _StaticColumns(template, mask)
        for t in range(len(scene.dates)):
            if canceled():
                raise Canceled()
            dated = scene.features(t, w, {}, extra=dated_extra)
            X = template.copy()
            for j in np.flatnonzero(~mask):
                X[:, j] = dated[cols[j]].ravel()
            yield _Rows(w, t, X, shared)


def _ensemble_blocks(scene: Scene, ensemble: Any, rows: Iterator[_Rows]):
    """``(window, (mean, sd, ood))`` per block from the rows of its dates (in date order)."""
    n_dates = len(scene.dates)
    for r in rows:
        shape = (n_dates, r.window.nrows, scene.fine.width)
        if r.t == 0:
            mean, sd, ood = np.empty(shape, np.float32), np.empty(shape, np.float32), np.empty(shape, bool)
        if r.static.checked is None:
            r.static.checked = ensemble.check_inputs(r.X, r.static.mask)
        missing, outside = r.static.checked
        m, s, o = ensemble.predict(r.X, ~r.static.mask)
        m[missing] = np.nan
        s[missing] = np.nan
        mean[r.t], sd[r.t], ood[r.t] = m.reshape(shape[1:]), s.reshape(shape[1:]), (o | outside).reshape(shape[1:])
        if r.t == n_dates - 1:
            yield r.window, (mean, sd, ood)


def _read_ahead(items: Iterator[Any], depth: int, canceled: Callable[[], bool]) -> Iterator[Any]:
    """The items of ``items``, produced by a reader thread up to ``depth`` ahead of the consumer.

    GDAL and numpy release the GIL, so reading and warping the next rows overlaps the prediction of
    these. The reader is the only thread that touches the scene's datasets while it runs. Its
    exceptions (``Canceled`` included) are raised here; when the consumer stops early (an exception,
    cancel, or closing the generator), the reader stops at its next item and is joined before this
    returns, so no thread outlives the run.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for item in items:
                if stop.is_set() or not put((None, item)):
                    return
            put((None, done))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put((e, None))

    thread = threading.Thread(target=reader, name="smds-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            try:
                error, item = q.get(timeout=0.1)
            except queue.Empty:
                if canceled():
                    raise Canceled() from None
                continue
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        thread.join()


class SerialBlocks:
    """Every block in this process, in window order: a reader thread reads the inputs of the next dates
    (at most ``ahead``) while the current one is predicted. Same arithmetic as one block at a time
    (:func:`ensemble_block`, :func:`trend_block`), so the outputs are byte-identical."""

    def __init__(self, ahead: int = PREFETCH_DATES) -> None:
        self.ahead = int(ahead)

    def _rows(self, rows: Iterator[Any], canceled: Callable[[], bool]) -> Iterator[Any]:
        return _read_ahead(rows, self.ahead, canceled) if self.ahead > 0 else rows

    def ensemble_blocks(self, scene: Scene, ensemble: Any, cols: Sequence[str], extra: Sequence[str],
                        windows: Sequence[Window], canceled: Callable[[], bool]):
        rows = self._rows(_ensemble_rows(scene, cols, extra, windows, canceled), canceled)
        yield from _ensemble_blocks(scene, ensemble, rows)

    def trend_blocks(self, scene: Scene, trend: Any, names: Sequence[str], weight: np.float32,
                     windows: Sequence[Window], canceled: Callable[[], bool]) -> TrendBlocks:
        rows = _trend_rows(scene, trend, names, windows, canceled)
        if not hasattr(trend, "predict_block"):  # such a trend reads the scene itself: no second reader
            rows = self._rows(rows, canceled)
        yield from _trend_blocks(scene, trend, names, weight, rows, canceled)


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
        threads = int(getattr(ensemble, "intra_op_threads", 1))
        yield from self._in_order(windows, canceled, lambda w: self.client.submit(
            _remote_ensemble_block, spec_bytes, ensemble.folder, list(cols), list(extra), w, threads, pure=False))

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
                # poll the status, not result(timeout=…): under load a timeout racing the result
                # surfaced as an UnboundLocalError inside distributed's sync()
                while not future.done():
                    if canceled():
                        raise Canceled()
                    time.sleep(0.05)
                if canceled():
                    raise Canceled()
                yield w, future.result()
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


def _remote_ensemble_block(spec_bytes: bytes, folder: str, cols: list[str], extra: list[str], window: Window,
                           threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ensemble block on a Dask worker (the members are loaded and hash-checked once per worker, with
    the client's onnxruntime threads: tree sums split otherwise round differently)."""
    from ..learn.model_folder import Ensemble
    scene = _cached(_WORKER_SCENES, hashlib.sha256(spec_bytes).hexdigest(), lambda: Scene(_load_spec(spec_bytes)))
    ensemble = _cached(_WORKER_MODELS, f"ensemble:{folder}:{threads}",
                       lambda: Ensemble.load(folder, intra_op_threads=threads))
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
