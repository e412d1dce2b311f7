"""Trend models shared by the regression family: a scikit-learn regressor fitted on the coarse grid
(coarse soil moisture ~ covariates aggregated to the coarse cells + day of year), optionally one
model per land-cover class, predicted on fine pixels in float32 chunks.

Used by :mod:`core.methods.regression`; other trend-based methods (SVR per stratum with kriged
residuals, stacking) compose the same pieces with another residual step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import Canceled
from ..learn.fit_threads import fit_threads

REGRESSORS = ("svr", "rf", "hgb")
REGRESSOR_LABELS = {"svr": "Support-vector regression (RBF kernel)", "rf": "Random forest",
                    "hgb": "Histogram gradient boosting"}
MIN_CLASS_SAMPLES = 30


@dataclass
class TrendOptions:
    """How the trend is fitted (the regressor and its hyper-parameters)."""
    regressor: str = "svr"
    per_class: bool = False
    svr_c: float = 1.0
    svr_epsilon: float = 0.01
    #: RBF kernel width of the SVR; 0 = scikit-learn's "scale" (1 / (features × variance)).
    svr_gamma: float = 0.0
    n_estimators: int = 200
    seed: int = 42
    n_jobs: int = 2


def make_regressor(opts: TrendOptions, categorical_columns: Sequence[int], n_columns: int):
    """A scikit-learn pipeline: categorical columns one-hot encoded, the rest standardised."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVR

    cont = [i for i in range(n_columns) if i not in categorical_columns]
    parts = [("num", StandardScaler(), cont)]
    if categorical_columns:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(categorical_columns)))
    prep = ColumnTransformer(parts)
    if opts.regressor == "svr":
        reg = SVR(kernel="rbf", C=opts.svr_c, epsilon=opts.svr_epsilon, gamma=opts.svr_gamma or "scale")
    elif opts.regressor == "rf":
        reg = RandomForestRegressor(n_estimators=opts.n_estimators, min_samples_leaf=2, n_jobs=opts.n_jobs,
                                    random_state=opts.seed)
    elif opts.regressor == "hgb":
        reg = HistGradientBoostingRegressor(max_iter=opts.n_estimators, learning_rate=0.05, random_state=opts.seed)
    else:
        raise ValueError(f"unknown regressor '{opts.regressor}' (choose one of {', '.join(REGRESSORS)})")
    return make_pipeline(prep, reg)


class TrendModel:
    """The fitted trend: a global model and, optionally, one model per land-cover class."""

    def __init__(self, names: list[str], categorical: list[str], opts: TrendOptions) -> None:
        self.names = names
        self.categorical = categorical
        self.opts = opts
        self.cat_cols = [names.index(c) for c in categorical]
        self.global_model = None
        self.class_models: dict[int, Any] = {}
        self.class_feature = "land_cover" if (opts.per_class and "land_cover" in names) else None

    def _new(self):
        return make_regressor(self.opts, self.cat_cols, len(self.names))

    def fit(self, X: np.ndarray, y: np.ndarray, scores: bool = True) -> dict[str, Any]:
        """Fit on coarse samples; returns what was fitted (with a 5-fold CV when ``scores``)."""
        with fit_threads(len(y)):
            return self._fit(X, y, scores)

    def _fit(self, X: np.ndarray, y: np.ndarray, scores: bool) -> dict[str, Any]:
        self.global_model = self._new().fit(X, y)
        info: dict[str, Any] = {"n_samples": int(len(y)), "features": self.names}
        if scores:
            info.update(cv_scores(self._new, X, y, self.opts.seed))
        if self.class_feature is not None:
            col = X[:, self.names.index(self.class_feature)]
            counts = {}
            for code in np.unique(col[np.isfinite(col)]):
                sel = col == code
                counts[int(code)] = int(sel.sum())
                if sel.sum() >= MIN_CLASS_SAMPLES:
                    self.class_models[int(code)] = self._new().fit(X[sel], y[sel])
            info["class_samples"] = counts
            info["class_models"] = sorted(self.class_models)
        return info

    def fit_predict(self, X_train: np.ndarray, y_train: np.ndarray, X: np.ndarray) -> np.ndarray:
        """A fresh trend of the same kind fitted on ``X_train, y_train``, predicted at ``X``
        (for cross-validation)."""
        other = TrendModel(self.names, self.categorical, self.opts)
        other.fit(X_train, y_train, scores=False)
        return other.predict(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.full(len(X), np.nan, dtype=np.float32)
        ok = np.isfinite(X).all(axis=1)
        if not ok.any():
            return out
        Xo = X[ok]
        # a map is predicted through the compiled trees from its first block on; the coarse cross-validation
        # folds (a few thousand rows) stay in scikit-learn, where compiling would cost more than it saves
        fast = len(Xo) >= COMPILE_MIN_ROWS or "_compiled" in self.__dict__
        pred = self._predict_with("global", self.global_model, Xo, fast)
        if self.class_models:
            col = Xo[:, self.names.index(self.class_feature)]
            for code, m in self.class_models.items():
                sel = col == code
                if sel.any():
                    pred[sel] = self._predict_with(code, m, Xo[sel], fast)
        out[ok] = pred
        return out

    def predict_dates(self, X: np.ndarray, dynamic: Sequence[int], later: Sequence[np.ndarray],
                      canceled: Callable[[], bool] = lambda: False) -> np.ndarray:
        """:meth:`predict` of several dates' rows at once, ``[1 + len(later), N]``: the first date's rows are
        ``X``, date ``t``'s are ``X`` with its ``dynamic`` columns replaced by ``later[t - 1]``. The same values
        as :meth:`predict` of each date; through bitvector trees (a global model, no per-class ones) the work on
        the columns that are not dynamic — the static covariates — is done once for all dates. ``canceled`` is
        asked between dates and every :data:`DATES_PIECE` rows (raises :class:`~core.errors.Canceled`)."""
        from sklearn.compose import ColumnTransformer

        from ..learn.bitvector_trees import BitvectorTrees

        dynamic = [int(j) for j in dynamic]
        n_dates = 1 + len(later)
        fast = len(X) * n_dates >= COMPILE_MIN_ROWS or "_compiled" in self.__dict__
        compiled = (self._compiled_for("global", self.global_model, X.shape[1])
                    if fast and not self.class_models else None)
        if not (isinstance(compiled, BitvectorTrees) and isinstance(self.global_model[0], ColumnTransformer)):
            out = np.empty((n_dates, len(X)), dtype=np.float32)
            out[0] = self.predict(X)
            for t, columns in enumerate(later, start=1):
                if canceled():
                    raise Canceled()
                Xt = X.copy()
                Xt[:, dynamic] = columns
                out[t] = self.predict(Xt)
            return out
        static = [j for j in range(X.shape[1]) if j not in dynamic]
        rows = np.flatnonzero(np.isfinite(X[:, static]).all(axis=1))
        prep = self.global_model[:-1]
        z_dynamic = _transformed_columns(self.global_model[0], dynamic)
        out = np.full((n_dates, len(X)), np.nan, dtype=np.float32)
        for i in range(0, len(rows), DATES_PIECE):
            if canceled():
                raise Canceled()
            r = rows[i:i + DATES_PIECE]
            Xt = X[r]
            Zs = []
            for t in range(n_dates):
                if t:
                    Xt[:, dynamic] = later[t - 1][r]
                Zs.append(prep.transform(Xt).astype(np.float32, copy=False))  # as predict_pipeline does
            out[:, r] = compiled.predict_dates(Zs, z_dynamic)
        for t, columns in enumerate([X[:, dynamic], *later]):
            out[t, ~np.isfinite(columns).all(axis=1)] = np.nan  # a dated layer's gap: no trend, as in predict
        return out

    def _compiled_for(self, key: Any, pipeline, n_columns: int) -> Any:
        compiled = self.__dict__.setdefault("_compiled", {})
        if key not in compiled:
            compiled[key] = compile_pipeline(pipeline, n_columns)
        return compiled[key]

    def _predict_with(self, key: Any, pipeline, X: np.ndarray, fast: bool) -> np.ndarray:
        if not fast:
            return predict_pipeline(pipeline, X)
        return predict_pipeline(pipeline, X, compiled=self._compiled_for(key, pipeline, X.shape[1]))

    def predictor(self) -> str:
        """How the fine grid is predicted (for the run log): compiled trees, BLAS SVR or scikit-learn."""
        reg = self.global_model[-1] if self.global_model is not None else None
        return _predictor_label(reg, self.__dict__.get("_compiled", {}).get("global"))

    def __getstate__(self) -> dict[str, Any]:
        # the compiled graphs are rebuilt from the fitted trees on first use (deterministic, a fraction of a
        # second): a saved model holds the scikit-learn pipelines only, as before
        state = dict(self.__dict__)
        state.pop("_compiled", None)
        return state


#: Rows from which a prediction goes through the compiled trees (see :meth:`TrendModel.predict`).
COMPILE_MIN_ROWS = 50_000
#: Rows transformed at a time by :meth:`TrendModel.predict_dates` (every date's design matrix of that many rows).
DATES_PIECE = 65_536
#: Rows per float32 kernel block of the BLAS SVR (``rows × support vectors`` floats; see the README's
#: "Performance" section for the measurement that chose it).
SVR_CHUNK = 8192
_UNAVAILABLE = "unavailable"


def compile_pipeline(pipeline, n_columns: int) -> Any:
    """The compiled predictor of a fitted pipeline's gradient boosting, or ``"unavailable"`` (an SVR, a random
    forest, nothing that compiles): numpy bitvectors
    (:class:`~core.learn.bitvector_trees.BitvectorTrees`) for trees of up to 64 leaves, else onnxruntime's
    tree ensemble (:class:`~core.learn.compiled_trees.CompiledTrees`).

    Random forests compile too (:mod:`core.learn.compiled_trees`), but their default trees here are deep
    (``min_samples_leaf=2``) and onnxruntime predicted them slower than scikit-learn's two-thread ``predict``
    (0.8×, ``benchmarks/throughput_regression.py``), so they stay in scikit-learn."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from ..learn import bitvector_trees, compiled_trees
    reg = pipeline[-1]
    if not (isinstance(reg, HistGradientBoostingRegressor) and compiled_trees.supports(reg)):
        return _UNAVAILABLE
    n_in = pipeline[:-1].transform(np.zeros((1, n_columns), dtype=np.float32)).shape[1]
    if bitvector_trees.supports(reg):
        return bitvector_trees.BitvectorTrees.from_estimator(reg, n_in)
    try:
        import onnxruntime  # noqa: F401  (a required package; without it the trees stay in scikit-learn)
    except ImportError:
        return _UNAVAILABLE
    return compiled_trees.CompiledTrees.from_estimator(reg, n_in)


def _transformed_columns(prep, columns: Sequence[int]) -> list[int]:
    """The output columns of the column transformer ``prep`` (fitted) that depend on its input ``columns``:
    a standardised column gives one, an encoder's block of columns all of its block."""
    from sklearn.preprocessing import StandardScaler
    wanted = set(columns)
    out: list[int] = []
    for name, transformer, inputs in prep.transformers_:
        where = prep.output_indices_.get(name, slice(0, 0))
        width = where.stop - where.start
        if not width or not wanted.intersection(inputs):
            continue
        if isinstance(transformer, StandardScaler):
            out += [where.start + k for k, c in enumerate(inputs) if c in wanted]
        else:
            out += list(range(where.start, where.stop))
    return out


def _predictor_label(reg, compiled) -> str:
    from sklearn.svm import SVR

    from ..learn.bitvector_trees import BitvectorTrees
    if reg is None:
        return "none"
    if isinstance(reg, SVR) and reg.kernel == "rbf":
        return f"RBF kernel in float32 BLAS blocks of {SVR_CHUNK} rows"
    if isinstance(compiled, BitvectorTrees):
        return (f"numpy bitvectors (QuickScorer; {compiled.n_trees} trees, {compiled.values.shape[1]}-bit leaf masks, "
                f"{compiled.threads} thread(s), chunks of {compiled.chunk} rows)")
    if compiled is not None and compiled != _UNAVAILABLE:
        return f"onnxruntime TreeEnsembleRegressor ({compiled.threads} threads; thresholds rounded down to float32)"
    if compiled == _UNAVAILABLE:
        return f"scikit-learn {type(reg).__name__}.predict (not compiled: see compile_pipeline)"
    return f"scikit-learn {type(reg).__name__}.predict"


def predict_pipeline(pipeline, X: np.ndarray, chunk: int = SVR_CHUNK, compiled: Any = None) -> np.ndarray:
    """Predict with a fitted pipeline: through ``compiled`` trees (:func:`compile_pipeline`) when given, an
    RBF SVR with BLAS in float32 chunks, anything else with scikit-learn.

    The BLAS SVR is ~100× faster than libsvm's per-sample loop on large rasters, the compiled trees several
    times faster than scikit-learn's ``predict``; both give the same result within float32 rounding."""
    from sklearn.svm import SVR

    from ..raster.blas import matmul
    reg = pipeline[-1]
    if compiled is not None and compiled != _UNAVAILABLE:
        # the bitvectors compare in float64 like scikit-learn, onnxruntime in float32 (the features are float32
        # values either way: float32 covariates standardised in float32, one-hot codes 0/1)
        return compiled.predict(pipeline[:-1].transform(X).astype(np.float32, copy=False))
    if not isinstance(reg, SVR) or reg.kernel != "rbf":
        return pipeline.predict(X).astype(np.float32)
    Z = pipeline[:-1].transform(X).astype(np.float32)
    sv = reg.support_vectors_.astype(np.float32)
    coef = reg.dual_coef_.ravel().astype(np.float32)
    gamma = np.float32(reg._gamma)
    sv_sq = (sv * sv).sum(axis=1)
    out = np.empty(len(Z), dtype=np.float32)
    neg_g = np.float32(-gamma)
    for i in range(0, len(Z), chunk):
        z = Z[i:i + chunk]
        k = matmul(z, sv.T)                            # x·sv
        k *= np.float32(-2.0)
        k += (z * z).sum(axis=1)[:, None]
        k += sv_sq[None, :]                            # ‖x − sv‖²
        np.maximum(k, 0.0, out=k)
        k *= neg_g
        np.exp(k, out=k)
        out[i:i + chunk] = matmul(k, coef) + np.float32(reg.intercept_[0])
    return out


def cv_scores(factory, X: np.ndarray, y: np.ndarray, seed: int, max_rows: int = 5000) -> dict[str, float]:
    """5-fold CV of the trend on the coarse grid (R and RMSE), a guide to how well covariates explain SM.

    On at most ``max_rows`` coarse samples (a seeded subsample), so large scenes do not pay five
    extra full fits for a diagnostic.
    """
    from sklearn.model_selection import KFold
    if len(y) < 25:
        return {}
    if len(y) > max_rows:
        keep = np.random.default_rng(seed).choice(len(y), max_rows, replace=False)
        X, y = X[keep], y[keep]
    pred = np.empty_like(y)
    for tr, te in KFold(5, shuffle=True, random_state=seed).split(X):
        pred[te] = factory().fit(X[tr], y[tr]).predict(X[te])
    r = float(np.corrcoef(pred, y)[0, 1]) if np.std(pred) > 0 else float("nan")
    return {"cv_r": r, "cv_rmse": float(np.sqrt(np.mean((pred - y) ** 2))), "cv_folds": "5 random folds of coarse samples"}


def stack_features(features: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    return np.column_stack([np.asarray(features[n], dtype=np.float32).ravel() for n in names])



def coarse_samples(scene, view: dict, names: Sequence[str], offset: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coarse training samples pooled over the scene's dates: the covariates of ``names`` aggregated
    to each coarse cell (columns in that order; ``doy`` is the date's day of year), its soil moisture
    (minus ``offset``), the flat coarse cell and the date index of each. Rows with a NaN are dropped."""
    Xs, ys, cs, ts = [], [], [], []
    for t in range(len(scene.dates)):
        y = scene.coarse_sm(t) - np.float32(offset)
        X = stack_features(scene.coarse_features(view, t), names)
        ok = np.isfinite(y) & np.isfinite(X).all(axis=1)
        Xs.append(X[ok])
        ys.append(y[ok])
        cs.append(np.flatnonzero(ok))
        ts.append(np.full(int(ok.sum()), t))
    return np.concatenate(Xs), np.concatenate(ys), np.concatenate(cs), np.concatenate(ts)
