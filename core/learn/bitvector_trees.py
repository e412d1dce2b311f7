"""A fitted gradient boosting (``HistGradientBoostingRegressor``) evaluated as bitvectors in numpy — the
QuickScorer scheme (Lucchese et al., SIGIR 2015): faster than onnxruntime's tree walk on this project's
trees, and exactly scikit-learn's decisions (float64 thresholds, missing values as scikit-learn sends them).

How a row is scored, without walking any tree:

* the leaves of every tree are numbered left to right, one bit each (``uint32`` masks up to 32 leaves,
  ``uint64`` up to 64);
* a split node that a row leaves to the *right* rules out its left subtree: its *keep mask* has those
  leaves' bits cleared. Per feature, the nodes splitting on it are sorted by threshold; row ``k`` of the
  feature's table holds, per tree, the AND of the keep masks of the nodes with the ``k`` smallest thresholds
  (the nodes a value above exactly those thresholds sends right), so ``k = searchsorted(thresholds, x)``
  (the number of thresholds ``< x``; scikit-learn goes left when ``x <= threshold``);
* one extra row per feature is the missing value's: the AND of the keep masks of the nodes whose
  ``missing_go_to_left`` is false. An ``inf`` appended to the thresholds makes ``searchsorted`` put every
  finite or infinite value at or below it and NaN — sorted last by numpy — one row further;
* the AND of a row's table rows over all features leaves, per tree, the bits of the leaves the row can
  still reach; the leftmost one (lowest set bit, ``m & (~m + 1)``, read as the exponent of its float) is
  the leaf scikit-learn's walk ends in. The prediction is the baseline plus the sum of those leaves' values
  (float64, then float32).

Rows are scored in chunks (bounded work arrays, reused), optionally on several threads over disjoint chunks
(numpy releases the GIL in the gathers and bitwise operations used). The tables are small (at most 256
unique thresholds per feature: scikit-learn bins every feature into 255 bins; 0.8 MB for the regression's
200 trees on 9 features). Several dates whose rows differ only in some columns (the day of year) share the
AND over the others (:meth:`BitvectorTrees.predict_dates`).

>>> trees = BitvectorTrees.from_estimator(fitted_hgb)     # doctest: +SKIP
>>> trees.predict(Z)                                      # doctest: +SKIP
"""
from __future__ import annotations

import threading
from typing import Any, Optional, Sequence

import numpy as np

#: Leaves a tree may have (a wider tree is not compiled here: the caller falls back to onnxruntime).
MAX_LEAVES = 64
#: Rows scored at a time: the work arrays hold ``rows × trees`` masks, indices and leaf values (512 rows × 200
#: trees: ~3.5 MB, reused). On the regression's default model (200 trees, 9 features), one thread, load ~5:
#: 512 rows 590 kpx/s (4 dates together: 1030 per date), 256: 400 (690), 1024: 510 (890), 2048: 410 (480);
#: ``benchmarks/throughput_regression.py`` prints the sweep.
DEFAULT_CHUNK = 512
#: Threads on disjoint chunks. Numpy releases the GIL in these loops, but a second thread measured no faster
#: on the shared 2 cores (the gathers are bound by memory): 560 vs 590 kpx/s at 512 rows (920 vs 1030 with
#: 4 dates together), faster only at 256 rows (580 vs 400), still below one thread at 512.
DEFAULT_THREADS = 1


def supports(estimator: Any) -> bool:
    """Whether :class:`BitvectorTrees` can evaluate ``estimator``: a fitted ``HistGradientBoostingRegressor``
    with squared-error loss, numeric splits only and at most :data:`MAX_LEAVES` leaves per tree."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    if not isinstance(estimator, HistGradientBoostingRegressor) or not hasattr(estimator, "_predictors"):
        return False
    if getattr(estimator, "_loss", None) is None or type(estimator._loss).__name__ != "HalfSquaredError":
        return False
    if np.any(getattr(estimator, "is_categorical_", None) or False):
        return False
    return all(p[0].get_n_leaf_nodes() <= MAX_LEAVES and not p[0].nodes["is_categorical"].any()
               for p in estimator._predictors)


def _leaf_order(nodes: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Leaf node ids left to right, and per split node the mask (an int) of the leaves of its left subtree."""
    leaves: list[int] = []
    left_bits: dict[int, int] = {}

    def walk(i: int) -> int:  # the bits of the leaves under node i
        if nodes["is_leaf"][i]:
            leaves.append(i)
            return 1 << (len(leaves) - 1)
        left = walk(int(nodes["left"][i]))
        right = walk(int(nodes["right"][i]))
        left_bits[i] = left
        return left | right

    walk(0)
    return np.asarray(leaves, dtype=np.int64), left_bits


class BitvectorTrees:
    """The bitvector tables of a fitted gradient boosting (see the module docstring).

    Parameters
    ----------
    thresholds : list of ndarray
        Per used feature, its sorted unique split thresholds (float64) followed by ``inf``.
    tables : list of ndarray
        Per used feature, ``(len(thresholds) + 1, trees)`` masks: row ``k`` for a value above the ``k``
        smallest thresholds, the last row for a missing value.
    features : ndarray
        The input column of each table.
    values : ndarray
        ``(trees, bits)`` leaf values (float64), leaves left to right.
    baseline : float
        scikit-learn's baseline prediction.
    n_features : int
        Input columns.
    chunk, threads : int
        Rows per chunk and threads on disjoint chunks.
    """

    def __init__(self, thresholds: list[np.ndarray], tables: list[np.ndarray], features: np.ndarray,
                 values: np.ndarray, baseline: float, n_features: int, chunk: int = DEFAULT_CHUNK,
                 threads: int = DEFAULT_THREADS) -> None:
        self.thresholds = thresholds
        self.tables = tables
        self.features = np.asarray(features, dtype=np.int64)
        self.values = np.ascontiguousarray(values, dtype=np.float64)
        self.baseline = float(baseline)
        self.n_features = int(n_features)
        self.chunk = int(chunk)
        self.threads = int(threads)
        n_trees, bits = self.values.shape
        self.mask_dtype = np.dtype(np.uint32 if bits == 32 else np.uint64)
        # flat index of a tree's leaf = exponent field of its bit's float + offset (float32 for uint32 masks,
        # float64 for uint64): offset = tree × bits − exponent bias
        bias = 127 if bits == 32 else 1023
        self._offsets = (np.arange(n_trees, dtype=np.int64) * bits - bias).astype(
            np.int32 if bits == 32 else np.int64)
        self._flat_values = self.values.ravel()

    @classmethod
    def from_estimator(cls, estimator: Any, n_features: Optional[int] = None, chunk: int = DEFAULT_CHUNK,
                       threads: int = DEFAULT_THREADS) -> "BitvectorTrees":
        """The tables of a fitted ``HistGradientBoostingRegressor`` (see :func:`supports`)."""
        if not supports(estimator):
            raise TypeError(f"cannot evaluate a {type(estimator).__name__} as bitvectors "
                            f"(numeric squared-error gradient boosting with at most {MAX_LEAVES} leaves per tree)")
        n_features = int(estimator.n_features_in_ if n_features is None else n_features)
        trees = [p[0].nodes for p in estimator._predictors]
        bits = 32 if max(int(t["is_leaf"].sum()) for t in trees) <= 32 else 64
        full = (1 << bits) - 1
        values = np.zeros((len(trees), bits), dtype=np.float64)
        # per feature: (threshold, tree, keep mask, missing goes left) of every split on it
        splits: dict[int, list[tuple[float, int, int, bool]]] = {}
        for k, nodes in enumerate(trees):
            leaves, left_bits = _leaf_order(nodes)
            values[k, :leaves.size] = nodes["value"][leaves]
            for i, bits_left in left_bits.items():
                splits.setdefault(int(nodes["feature_idx"][i]), []).append(
                    (float(nodes["num_threshold"][i]), k, full & ~bits_left, bool(nodes["missing_go_to_left"][i])))
        dtype = np.uint32 if bits == 32 else np.uint64
        features = sorted(splits)
        thresholds, tables = [], []
        for f in features:
            nodes_f = sorted(splits[f], key=lambda s: s[0])
            unique = np.unique(np.array([s[0] for s in nodes_f], dtype=np.float64))
            table = np.full((unique.size + 2, len(trees)), full, dtype=dtype)
            current = np.full(len(trees), full, dtype=dtype)
            j = 0
            for row, threshold in enumerate(unique, start=1):
                while j < len(nodes_f) and nodes_f[j][0] == threshold:
                    current[nodes_f[j][1]] &= dtype(nodes_f[j][2])
                    j += 1
                table[row] = current
            for _, tree, keep, missing_left in nodes_f:
                if not missing_left:
                    table[-1, tree] &= dtype(keep)
            thresholds.append(np.append(unique, np.inf))
            tables.append(table)
        return cls(thresholds, tables, np.asarray(features), values,
                   float(np.ravel(estimator._baseline_prediction)[0]), n_features, chunk, threads)

    @property
    def n_trees(self) -> int:
        return int(self.values.shape[0])

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """Prediction (float32, one per row) on features ``Z`` (``[N, n_features]``, any float dtype; NaN is a
        missing value, sent where scikit-learn sends it)."""
        return self.predict_dates([Z], ())[0]

    def predict_dates(self, Zs: Sequence[np.ndarray], dynamic: Sequence[int]) -> np.ndarray:
        """Predictions ``[len(Zs), N]`` (float32) on the features ``Zs`` of several dates, whose columns other
        than ``dynamic`` are the same on every date: the AND over those columns' tables is computed once
        per chunk of rows (from ``Zs[0]``), then per date only the ``dynamic`` columns'. Equal, bit for bit,
        to :meth:`predict` of each ``Zs[t]``."""
        Zs = [np.asarray(Z) for Z in Zs]
        for Z in Zs:
            if Z.ndim != 2 or Z.shape != (len(Zs[0]), self.n_features):
                raise ValueError(f"expected {len(Zs[0])} rows of {self.n_features} features, got shape {Z.shape}")
        dyn = {int(f) for f in dynamic}
        static = [j for j, f in enumerate(self.features) if f not in dyn]
        dated = [j for j, f in enumerate(self.features) if f in dyn]
        out = np.empty((len(Zs), len(Zs[0])), dtype=np.float32)
        starts = range(0, len(Zs[0]), self.chunk)
        threads = min(self.threads, len(starts))
        if threads <= 1:
            self._score_chunks(Zs, static, dated, out, starts)
            return out
        errors: list[BaseException] = []

        def work(part: range) -> None:
            try:
                self._score_chunks(Zs, static, dated, out, part)
            except BaseException as e:  # noqa: BLE001 - raised in the caller's thread below
                errors.append(e)

        pool = [threading.Thread(target=work, args=(starts[s::threads],), name=f"smds-bitvector-{s}")
                for s in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        if errors:
            raise errors[0]
        return out

    def _score_chunks(self, Zs: list[np.ndarray], static: list[int], dated: list[int], out: np.ndarray,
                      starts: range) -> None:
        """Score the chunks of rows starting at ``starts`` into ``out``, with work arrays of this thread."""
        buf = _Work(min(self.chunk, len(Zs[0])), self.n_trees, self.mask_dtype)
        for i in starts:
            m = len(Zs[0][i:i + self.chunk])
            acc, gathered = buf.acc[:m], buf.gathered[:m]
            if len(Zs) == 1 or not dated:  # one date, or dates that do not differ in any table
                self._and_tables(Zs[0][i:i + m], static + dated, acc, gathered)
                out[:, i:i + m] = self._leaf_sum(acc, buf)
                continue
            shared = buf.shared[:m]
            self._and_tables(Zs[0][i:i + m], static, shared, gathered)
            for t, Z in enumerate(Zs):
                self._and_tables(Z[i:i + m], dated, acc, gathered, start=shared)
                out[t, i:i + m] = self._leaf_sum(acc, buf)

    def _and_tables(self, rows: np.ndarray, tables: list[int], acc: np.ndarray, gathered: np.ndarray,
                    start: Optional[np.ndarray] = None) -> None:
        """Write into ``acc`` the AND of ``start`` (all ones if None) and of the table rows of ``rows`` in
        the tables ``tables``."""
        if not tables:
            if start is None:
                acc.fill(np.iinfo(self.mask_dtype).max)
            else:
                np.copyto(acc, start)
        for n, j in enumerate(tables):
            column = rows[:, self.features[j]]
            into = acc if n == 0 and start is None else gathered
            if column[0] == column[-1] and np.all(column == column[0]):
                # one value in the whole chunk (the day of year of a date): one table row, broadcast
                into = self.tables[j][np.searchsorted(self.thresholds[j], column[:1], side="left")]
                if n == 0 and start is None:
                    np.copyto(acc, into)
            else:
                np.take(self.tables[j], np.searchsorted(self.thresholds[j], column, side="left"), axis=0,
                        out=into, mode="clip")
            if n or start is not None:
                np.bitwise_and(start if n == 0 else acc, into, out=acc)

    def _leaf_sum(self, acc: np.ndarray, buf: "_Work") -> np.ndarray:
        """The baseline plus each row's exit-leaf values (float64) of the masks ``acc``."""
        m = len(acc)
        # lowest set bit (m & −m) → the exponent field of its float → flat leaf index (an intp: np.take would
        # convert any other index type itself, slower)
        low = buf.gathered[:m]
        np.negative(acc, out=low)
        np.bitwise_and(low, acc, out=low)
        as_float = buf.as_float[:m]
        np.copyto(as_float, low, casting="unsafe")
        exponent = as_float.view(buf.exponent_dtype)
        np.right_shift(exponent, buf.mantissa_bits, out=exponent)
        exponent += self._offsets
        idx = buf.index[:m]
        np.copyto(idx, exponent)
        leaf = buf.leaf[:m]
        np.take(self._flat_values, idx, out=leaf, mode="wrap")  # every index is in range; "wrap" is the fastest
        total = leaf.sum(axis=1)
        total += self.baseline
        return total

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("thresholds", "tables", "features", "values", "baseline",
                                              "n_features", "chunk", "threads")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)


class _Work:
    """Reusable work arrays of one thread: masks, their floats, leaf indices and leaf values of a chunk."""

    def __init__(self, rows: int, trees: int, mask_dtype: np.dtype) -> None:
        wide = mask_dtype == np.uint64
        self.acc = np.empty((rows, trees), dtype=mask_dtype)
        self.shared = np.empty((rows, trees), dtype=mask_dtype)  # the dates' common AND (predict_dates)
        self.gathered = np.empty((rows, trees), dtype=mask_dtype)
        self.as_float = np.empty((rows, trees), dtype=np.float64 if wide else np.float32)
        self.exponent_dtype = np.dtype(np.int64 if wide else np.int32)
        self.mantissa_bits = 52 if wide else 23
        self.index = np.empty((rows, trees), dtype=np.intp)
        self.leaf = np.empty((rows, trees), dtype=np.float64)
