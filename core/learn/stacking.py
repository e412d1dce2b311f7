"""Stacking of tree ensembles: base learners fused by a non-negative linear meta-learner.

Base learners (each optional but the scikit-learn ones): XGBoost (``xgboost-cpu``), LightGBM,
CatBoost, and scikit-learn's histogram gradient boosting, random forest and extra trees. They are
trained with grouped K-fold (whole groups — e.g. coarse cells — per fold, so samples of one cell on
other dates never score their own fold); their out-of-fold predictions feed the meta-learner,
``y ≈ b + Σ wᵢ·predᵢ`` with ``wᵢ ≥ 0`` (the weights say how much each learner is trusted); the base
learners are then refitted on all samples.

The fitted stack exports to **one** ONNX graph: every base learner's tree ensemble side by side on
the same input, their outputs concatenated and combined by the meta-learner's weights — one
session, one call per block. Each learner's output is also a graph output, so its ONNX prediction
can be checked against its native one.

Example
-------
>>> stack = Stack(StackingOptions(learners=("hgb", "rf"))).fit(X, y, groups)   # doctest: +SKIP
>>> model = stack.to_onnx(feature_names)                                       # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import Canceled
from ..raster.blas import dot, matmul
from .fit_threads import fit_threads
from .validation import group_kfold

#: name → (label, import name, pip requirement); the first three need only scikit-learn.
LEARNERS: dict[str, tuple[str, str, str]] = {
    "hgb": ("Histogram gradient boosting (scikit-learn)", "sklearn", "scikit-learn"),
    "rf": ("Random forest (scikit-learn)", "sklearn", "scikit-learn"),
    "extra_trees": ("Extra trees (scikit-learn)", "sklearn", "scikit-learn"),
    "xgboost": ("XGBoost", "xgboost", "xgboost-cpu"),
    "lightgbm": ("LightGBM", "lightgbm", "lightgbm"),
    "catboost": ("CatBoost", "catboost", "catboost"),
}
DEFAULT_LEARNERS: tuple[str, ...] = ("hgb", "rf", "extra_trees")
#: What each learner needs beyond scikit-learn to be exported to ONNX.
_ONNX_CONVERTER = {"xgboost": "onnxmltools", "lightgbm": "onnxmltools"}
INPUT_NAME, OUTPUT_NAME = "X", "sm"
#: Run by :meth:`Stack.shap_values` in its own Python process: argv = job file (joblib: the fitted
#: models this process wrote, and X), output .npy (learners × rows × features).
_SHAP_WORKER = """
import sys
import joblib
import numpy as np
job = joblib.load(sys.argv[1])
out = []
for name, model in job["models"]:
    if name == "xgboost":
        import xgboost
        phi = model.get_booster().predict(xgboost.DMatrix(job["X"]), pred_contribs=True)[:, :-1]
    else:
        import shap
        phi = shap.TreeExplainer(model).shap_values(job["X"])
    out.append(np.asarray(phi, dtype=np.float64))
np.save(sys.argv[2], np.stack(out))
"""
OPSET, ML_OPSET = 17, 3
ProgressFn = Callable[[float, str], None]


@dataclass
class StackingOptions:
    """Base learners and their shared hyper-parameters (small, robust defaults)."""
    learners: Sequence[str] = DEFAULT_LEARNERS
    folds: int = 5
    n_estimators: int = 200
    learning_rate: float = 0.05
    max_depth: int = 8
    min_samples_leaf: int = 5
    seed: int = 42
    n_jobs: int = 2


def missing_packages(learners: Sequence[str]) -> dict[str, str]:
    """``{learner: pip requirement}`` for every learner in ``learners`` whose package (or ONNX
    converter) is not importable; an unknown name raises ``ValueError``."""
    out = {}
    for name in learners:
        if name not in LEARNERS:
            raise ValueError(f"unknown base learner '{name}' (choose among {', '.join(LEARNERS)})")
        _, module, pip = LEARNERS[name]
        needs = [(module, pip)] + ([(_ONNX_CONVERTER[name], _ONNX_CONVERTER[name])] if name in _ONNX_CONVERTER else [])
        absent = [p for m, p in needs if importlib.util.find_spec(m) is None]
        if absent:
            out[name] = " ".join(absent)
    return out


def make_learner(name: str, opts: StackingOptions):
    """A fresh, seeded regressor for base learner ``name``."""
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingRegressor
        return HistGradientBoostingRegressor(max_iter=opts.n_estimators, learning_rate=opts.learning_rate,
                                             max_depth=opts.max_depth, min_samples_leaf=max(opts.min_samples_leaf, 1),
                                             random_state=opts.seed)
    if name in ("rf", "extra_trees"):
        from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
        cls = RandomForestRegressor if name == "rf" else ExtraTreesRegressor
        return cls(n_estimators=max(opts.n_estimators // 2, 10), max_depth=opts.max_depth + 4,
                   min_samples_leaf=opts.min_samples_leaf, n_jobs=opts.n_jobs, random_state=opts.seed)
    if name == "xgboost":
        import xgboost
        return xgboost.XGBRegressor(n_estimators=opts.n_estimators, learning_rate=opts.learning_rate,
                                    max_depth=min(opts.max_depth, 6), subsample=0.8, colsample_bytree=0.8,
                                    n_jobs=opts.n_jobs, random_state=opts.seed)
    if name == "lightgbm":
        import lightgbm
        return lightgbm.LGBMRegressor(n_estimators=opts.n_estimators, learning_rate=opts.learning_rate,
                                      num_leaves=31, min_child_samples=max(opts.min_samples_leaf, 1), subsample=0.8,
                                      subsample_freq=1, colsample_bytree=0.8, n_jobs=opts.n_jobs,
                                      random_state=opts.seed, verbose=-1)
    if name == "catboost":
        import catboost
        return catboost.CatBoostRegressor(iterations=opts.n_estimators, learning_rate=opts.learning_rate,
                                          depth=min(opts.max_depth, 8), random_seed=opts.seed,
                                          thread_count=opts.n_jobs, verbose=False, allow_writing_files=False)
    raise ValueError(f"unknown base learner '{name}'")


def nonnegative_linear(P: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None) -> tuple[np.ndarray, float]:
    """Weights ``≥ 0`` and a free intercept minimising the (weighted) squared error of ``b + P @ w``."""
    from scipy.optimize import nnls

    sw = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    sw = sw / sw.sum()
    pm = matmul(np.ascontiguousarray(P, dtype=np.float64).T, sw)
    ym = dot(sw, y)
    root = np.sqrt(sw)[:, None]
    weights, _ = nnls((P - pm) * root, (y - ym) * root[:, 0])
    return weights, ym - dot(pm, weights)


def _scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    r = float(np.corrcoef(pred, y)[0, 1]) if np.std(pred) > 0 and np.std(y) > 0 else float("nan")
    return {"r": r, "rmse": float(np.sqrt(np.mean((pred - y) ** 2)))}


@dataclass
class Stack:
    """A stacking regressor; :meth:`fit` it, then :meth:`predict` natively or export :meth:`to_onnx`."""
    options: StackingOptions = field(default_factory=StackingOptions)
    learners: list[str] = field(default_factory=list)
    models: list[Any] = field(default_factory=list)
    weights: Optional[np.ndarray] = None
    intercept: float = 0.0
    oof_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    #: The stacked out-of-fold prediction of every training row (NaN without folds).
    oof_prediction: Optional[np.ndarray] = None
    fit_seconds: dict[str, float] = field(default_factory=dict)

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray, sample_weight: Optional[np.ndarray] = None,
            progress: Optional[ProgressFn] = None, is_canceled: Optional[Callable[[], bool]] = None) -> "Stack":
        """Out-of-fold predictions by grouped K-fold → meta-learner → base learners refitted on all rows.

        ``groups`` assigns rows to folds as a whole (e.g. the coarse cell of each sample). Learners
        whose package is missing are left out (see :func:`missing_packages`); at least one must remain.
        """
        prog = progress or (lambda f, m: None)
        canceled = is_canceled or (lambda: False)
        missing = missing_packages(self.options.learners)
        self.learners = [n for n in self.options.learners if n not in missing]
        self.models, self.oof_scores, self.fit_seconds = [], {}, {}
        if not self.learners:
            raise ValueError("no base learner is available: " + ", ".join(f"{k} needs pip install {v}"
                                                                        for k, v in missing.items()))
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64)
        k = self.options.folds
        n_groups = np.unique(groups).size
        fold = group_kfold(groups, min(k, n_groups), self.options.seed) if k >= 2 and n_groups >= 2 else None
        steps = len(self.learners) * ((fold.max() + 1 if fold is not None else 0) + 1)
        done = 0
        oof = np.full((len(y), len(self.learners)), np.nan)
        for j, name in enumerate(self.learners):
            t0 = time.time()
            if fold is not None:
                for f in range(fold.max() + 1):
                    if canceled():
                        raise Canceled()
                    tr, te = fold != f, fold == f
                    m = _fit_one(name, self.options, X[tr], y[tr], None if sample_weight is None else sample_weight[tr])
                    oof[te, j] = _predict_native(m, X[te])
                    done += 1
                    prog(done / steps, f"{LEARNERS[name][0]}: fold {f + 1} of {fold.max() + 1}")
            if canceled():
                raise Canceled()
            self.models.append(_fit_one(name, self.options, X, y, sample_weight))
            self.fit_seconds[name] = time.time() - t0
            done += 1
            prog(done / steps, f"{LEARNERS[name][0]}: fitted on all {len(y)} samples")
        if fold is not None:
            self.weights, self.intercept = nonnegative_linear(oof, y, sample_weight)
            for j, name in enumerate(self.learners):
                self.oof_scores[name] = _scores(oof[:, j], y)
            self.oof_prediction = matmul(oof, self.weights) + self.intercept
            self.oof_scores["stack"] = _scores(self.oof_prediction, y)
        else:  # no folds asked, or too few groups: the mean of the learners
            self.weights, self.intercept = np.full(len(self.learners), 1.0 / len(self.learners)), 0.0
            self.oof_prediction = np.full(len(y), np.nan)
        if not np.any(self.weights > 0):  # every learner useless out of fold: their mean
            self.weights = np.full(len(self.learners), 1.0 / len(self.learners))
        return self

    def refit(self, X: np.ndarray, y: np.ndarray) -> "Stack":
        """A new stack of this one's learners fitted on ``X``, ``y`` (no folds), combined with this one's
        meta-learner weights — for held-out checks of a fitted stack."""
        from dataclasses import replace

        other = Stack(replace(self.options, learners=tuple(self.learners), folds=0)).fit(X, y, np.zeros(len(y)))
        other.weights, other.intercept = self.weights, self.intercept
        return other

    def predict_learners(self, X: np.ndarray) -> np.ndarray:
        """Native prediction of each base learner, shape ``(n, n_learners)``."""
        X = np.asarray(X, dtype=np.float32)
        return np.column_stack([_predict_native(m, X) for m in self.models])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Native stacked prediction (float32)."""
        return (matmul(self.predict_learners(X), self.weights) + self.intercept).astype(np.float32)

    def shap_values(self, X: np.ndarray, python: Optional[str] = None) -> np.ndarray:
        """SHAP values of the stacked prediction, shape ``(n, n_features)``: each learner's TreeSHAP values
        combined by the meta-learner's weights (SHAP values are linear in the model, so this is exact).

        Computed in a separate Python process (``python``, default the interpreter behind this process
        even inside QGIS): TreeSHAP's native code, once run inside a QGIS process, makes QGIS crash when
        it exits. XGBoost's values come from its own ``pred_contribs``; the others need the ``shap``
        package (``ImportError`` when it is missing). Learners with weight 0 are skipped.
        """
        import subprocess
        import tempfile

        import joblib

        from ..deps import python_executable

        used = [(n, m, w) for n, m, w in zip(self.learners, self.models, self.weights) if w > 0]
        if any(n != "xgboost" for n, _, _ in used) and importlib.util.find_spec("shap") is None:
            raise ImportError("the shap package is not installed")
        X = np.asarray(X, dtype=np.float32)
        with tempfile.TemporaryDirectory(prefix="smds-shap-") as tmp:
            job, out = os.path.join(tmp, "job.joblib"), os.path.join(tmp, "phi.npy")
            joblib.dump({"models": [(n, m) for n, m, _ in used], "X": X}, job)
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
            proc = subprocess.run([python or python_executable(), "-c", _SHAP_WORKER, job, out], env=env,
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                if "No module named" in proc.stderr:
                    raise ImportError(proc.stderr.strip().splitlines()[-1])
                raise RuntimeError(f"SHAP values could not be computed: {proc.stderr.strip()[-600:]}")
            phi = np.load(out)
        return np.tensordot(np.asarray([w for _, _, w in used], dtype=np.float64), phi, axes=1)

    def describe(self) -> dict[str, Any]:
        return {"learners": list(self.learners), "weights": [float(w) for w in self.weights],
                "intercept": float(self.intercept), "oof_scores": self.oof_scores,
                "fit_seconds": self.fit_seconds, "folds": self.options.folds}

    def to_onnx(self, n_features: int, name: str = "stack"):
        """One ONNX graph: all base learners side by side, fused by the meta-learner.

        Input ``X`` (float32, ``[N, n_features]``); outputs ``sm`` (``[N, 1]``, the stack) and one
        ``learner_<name>`` output (``[N, 1]``) per base learner.
        """
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        nodes, inits, opsets, outs = [], [], {"": OPSET}, []
        for name_j, model in zip(self.learners, self.models):
            sub = _learner_onnx(name_j, model, n_features)
            prefix = f"{name_j}_"
            sub = onnx.compose.add_prefix(sub, prefix)
            g = sub.graph
            sub_in = g.input[0].name
            nodes.append(helper.make_node("Identity", [INPUT_NAME], [sub_in]))
            nodes.extend(g.node)
            inits.extend(g.initializer)
            out_j = f"learner_{name_j}"
            nodes.append(helper.make_node("Reshape", [g.output[0].name, "col_shape"], [out_j]))
            outs.append(out_j)
            for o in sub.opset_import:
                opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
        nodes += [helper.make_node("Concat", outs, ["learners"], axis=1),
                  helper.make_node("MatMul", ["learners", "meta_w"], ["weighted"]),
                  helper.make_node("Add", ["weighted", "meta_b"], [OUTPUT_NAME])]
        inits += [numpy_helper.from_array(np.asarray([-1, 1], dtype=np.int64), "col_shape"),
                  numpy_helper.from_array(np.asarray(self.weights, dtype=np.float32)[:, None], "meta_w"),
                  numpy_helper.from_array(np.asarray([self.intercept], dtype=np.float32), "meta_b")]
        graph = helper.make_graph(
            nodes, name, [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_features])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])]
            + [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N", 1]) for o in outs],
            initializer=inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                                  producer_name="soil_moisture_downscaling.core.learn.stacking")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _fit_one(name: str, opts: StackingOptions, X: np.ndarray, y: np.ndarray, w: Optional[np.ndarray]):
    m = make_learner(name, opts)
    # one OpenMP thread for scikit-learn's boosting only: xgboost and lightgbm manage their own
    with fit_threads(len(y)) if name == "hgb" else contextlib.nullcontext():
        return m.fit(X, y) if w is None else m.fit(X, y, sample_weight=w)


def _predict_native(model, X: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(X), dtype=np.float64).ravel()


def _learner_onnx(name: str, model, n_features: int):
    """ONNX graph of one fitted base learner (input ``X`` float32 ``[N, n_features]``)."""
    if name in ("hgb", "rf", "extra_trees"):
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
        return convert_sklearn(model, initial_types=[("X", FloatTensorType([None, n_features]))],
                               target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})
    if name in ("xgboost", "lightgbm"):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
        convert = onnxmltools.convert_xgboost if name == "xgboost" else onnxmltools.convert_lightgbm
        return convert(model, initial_types=[("X", FloatTensorType([None, n_features]))], target_opset=15)
    if name == "catboost":
        import os
        import tempfile

        import onnx
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "catboost.onnx")
            model.save_model(path, format="onnx")
            return onnx.load(path)
    raise ValueError(f"unknown base learner '{name}'")
