"""Fitted scikit-learn tree ensembles compiled into one ONNX ``TreeEnsembleRegressor`` and predicted with
onnxruntime — the same decisions as scikit-learn, several times cheaper per row than its ``predict``.

Supported: ``HistGradientBoostingRegressor`` (squared-error loss, numeric splits) and
``RandomForestRegressor`` / ``ExtraTreesRegressor``. The graph is written node by node from the fitted
trees (no converter package), so every threshold is under our control:

* ONNX holds thresholds in float32, scikit-learn in float64. A float64 threshold ``t`` rounded *to
  nearest* can land on a float32 value ``z > t``, and then ``z <= t32`` sends ``z`` the other way.
  Each threshold is therefore rounded *down* to the largest float32 ``t32 <= t``: for every float32 input
  ``z``, ``z <= t`` exactly when ``z <= t32``, so no split ever flips.
* The inputs must then be float32 on both sides. They are: the trend pipelines standardise float32
  covariates in float32 (and one-hot codes are 0/1), so the features the trees see are float32 values even
  where scikit-learn carries them as float64, and a random forest casts its input to float32 itself.

What remains is the sum of the leaf values: scikit-learn adds them in float64, onnxruntime in float32, so
the two predictions differ by float32 rounding (a few 1e-8 m³/m³ on soil moisture), never by a leaf.

>>> trees = CompiledTrees.from_estimator(fitted_hgb, n_features=5)   # doctest: +SKIP
>>> trees.predict(Z32)                                               # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

INPUT_NAME, OUTPUT_NAME = "X", "y"
#: onnxruntime's intra-op threads for the tree ensemble (without spinning threads). Measured on this project's
#: 2 shared cores with other jobs running: 2 threads were 1.4× faster than 1 for the regression's default
#: gradient boosting in the throughput benchmark, 0–25 % slower in shorter runs; with onnxruntime's default
#: spinning, 2 threads were 2.4× slower (see the README's "Performance" section).
DEFAULT_THREADS = 2


def supports(estimator: Any) -> bool:
    """Whether :class:`CompiledTrees` can compile ``estimator`` (a fitted regressor)."""
    from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor, RandomForestRegressor
    if isinstance(estimator, HistGradientBoostingRegressor):
        return (getattr(estimator, "_loss", None) is not None and type(estimator._loss).__name__ == "HalfSquaredError"
                and not np.any(getattr(estimator, "is_categorical_", None) or False))
    return isinstance(estimator, (RandomForestRegressor, ExtraTreesRegressor)) and estimator.n_outputs_ == 1


def float32_floor(values: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 value (``t32 <= t``; equal where ``t`` is a float32).

    >>> float(float32_floor(np.array([0.1]))[0]) <= 0.1
    True
    """
    values = np.asarray(values, dtype=np.float64)
    near = values.astype(np.float32)
    above = near.astype(np.float64) > values
    near[above] = np.nextafter(near[above], np.float32(-np.inf))
    return near


def _hgb_nodes(model) -> tuple[list[dict[str, np.ndarray]], float, str]:
    trees = []
    for per_iteration in model._predictors:
        nodes = per_iteration[0].nodes
        trees.append({"leaf": nodes["is_leaf"].astype(bool), "feature": nodes["feature_idx"],
                      "threshold": nodes["num_threshold"], "left": nodes["left"], "right": nodes["right"],
                      "missing_left": nodes["missing_go_to_left"].astype(bool), "value": nodes["value"]})
    return trees, float(np.ravel(model._baseline_prediction)[0]), "SUM"


def _forest_nodes(model) -> tuple[list[dict[str, np.ndarray]], float, str]:
    trees = []
    for est in model.estimators_:
        t = est.tree_
        leaf = t.children_left < 0
        missing_left = getattr(t, "missing_go_to_left", None)
        trees.append({"leaf": leaf, "feature": t.feature, "threshold": t.threshold, "left": t.children_left,
                      "right": t.children_right, "value": t.value[:, 0, 0],
                      "missing_left": (np.zeros(leaf.size, bool) if missing_left is None
                                       else np.asarray(missing_left, bool))})
    return trees, 0.0, "AVERAGE"


def tree_ensemble_onnx(estimator: Any, n_features: int, name: str = "trees") -> bytes:
    """The serialised ONNX graph (input ``X`` float32 ``[N, n_features]``, output ``y`` float32 ``[N, 1]``)
    of a fitted tree ensemble (see :func:`supports`)."""
    from onnx import TensorProto, helper
    from sklearn.ensemble import HistGradientBoostingRegressor

    if not supports(estimator):
        raise TypeError(f"cannot compile a {type(estimator).__name__} into a tree ensemble graph")
    trees, base, aggregate = (_hgb_nodes if isinstance(estimator, HistGradientBoostingRegressor)
                              else _forest_nodes)(estimator)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("tree", "node", "feature", "value", "mode", "true", "false",
                                                          "missing", "t_tree", "t_node", "t_weight")}
    for k, tr in enumerate(trees):
        n = tr["leaf"].size
        ids = np.arange(n, dtype=np.int64)
        leaf = tr["leaf"]
        cols["tree"].append(np.full(n, k, np.int64))
        cols["node"].append(ids)
        cols["feature"].append(np.where(leaf, 0, tr["feature"]).astype(np.int64))
        cols["value"].append(np.where(leaf, np.float32(0), float32_floor(np.where(leaf, 0.0, tr["threshold"]))))
        cols["mode"].append(np.where(leaf, "LEAF", "BRANCH_LEQ"))
        cols["true"].append(np.where(leaf, 0, tr["left"]).astype(np.int64))
        cols["false"].append(np.where(leaf, 0, tr["right"]).astype(np.int64))
        cols["missing"].append((~leaf & tr["missing_left"]).astype(np.int64))
        cols["t_tree"].append(np.full(int(leaf.sum()), k, np.int64))
        cols["t_node"].append(ids[leaf])
        cols["t_weight"].append(np.asarray(tr["value"], np.float64)[leaf])
    flat = {k: np.concatenate(v) for k, v in cols.items()}
    node = helper.make_node(
        "TreeEnsembleRegressor", [INPUT_NAME], [OUTPUT_NAME], domain="ai.onnx.ml", n_targets=1,
        nodes_treeids=flat["tree"].tolist(), nodes_nodeids=flat["node"].tolist(),
        nodes_featureids=flat["feature"].tolist(), nodes_values=flat["value"].astype(np.float32).tolist(),
        nodes_modes=flat["mode"].tolist(), nodes_truenodeids=flat["true"].tolist(),
        nodes_falsenodeids=flat["false"].tolist(), nodes_missing_value_tracks_true=flat["missing"].tolist(),
        target_treeids=flat["t_tree"].tolist(), target_nodeids=flat["t_node"].tolist(),
        target_ids=[0] * int(flat["t_node"].size), target_weights=flat["t_weight"].astype(np.float32).tolist(),
        aggregate_function=aggregate, base_values=[base], post_transform="NONE")
    graph = helper.make_graph([node], name, [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                                                           ["N", int(n_features)])],
                              [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                              producer_name="soil_moisture_downscaling.compiled_trees")
    model.ir_version = 8
    return model.SerializeToString()


class CompiledTrees:
    """A tree ensemble's ONNX graph in one onnxruntime session.

    Pickles as its graph bytes; the session is opened again on first use after unpickling.

    Parameters
    ----------
    model_bytes : bytes
        A graph from :func:`tree_ensemble_onnx`.
    threads : int
        onnxruntime intra-op threads.
    """

    def __init__(self, model_bytes: bytes, threads: int = DEFAULT_THREADS) -> None:
        self.bytes = model_bytes
        self.threads = int(threads)
        self._session: Optional[Any] = None

    @classmethod
    def from_estimator(cls, estimator: Any, n_features: int, threads: int = DEFAULT_THREADS) -> "CompiledTrees":
        return cls(tree_ensemble_onnx(estimator, n_features), threads)

    def _open(self):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(self.bytes, so, providers=["CPUExecutionProvider"])

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """Prediction (float32, one per row) on features ``Z`` (float32 values, ``[N, n_features]``)."""
        if self._session is None:
            self._session = self._open()
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(Z, dtype=np.float32)})[0].ravel()

    def __getstate__(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.bytes, self.threads, self._session = state["bytes"], state["threads"], None
