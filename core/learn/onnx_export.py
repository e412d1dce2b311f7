"""Write ensemble members as ONNX graphs, and hash them independently of their model card.

Every member graph has one input ``X`` (float32, shape [N, n_features], raw feature values
in the card's input order) and the output ``sm`` (float32, [N, 1], m³/m³); ``prob`` members
also output ``sigma`` (their own predicted spread, [N, 1]).

Networks are written node by node with :mod:`onnx.helper` — the input encoding is part of
the graph (``Gather → Sub → Mul`` standardisation, ``Sin``/``Cos`` for the day of year,
``Equal → Cast`` one-hot indicators), then ``MatMul → Add → Relu`` layers (``Tanh`` for networks with tanh hidden layers). Random forests are
converted with skl2onnx, behind a small prefix that maps NaN categorical codes to −1 as in
training.

:func:`model_sha256` is the SHA-256 of the model serialised *without* its ``metadata_props``:
the card (which lives in ``metadata_props``) can thus record the hashes of all members of its
ensemble, including the file it is stored in, and any change to the graph, weights or
opsets after writing is detected while the card itself stays editable only through
:mod:`core.learn.card` (which validates it).
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .mlp import MLP

#: Default opset of the graphs written here.
OPSET = 17
#: ONNX producer name. It is part of every member's graph hash, so it stays as the bundled models
#: were written (before core/ was split into rooms) and recipes keep rebuilding them byte for byte.
PRODUCER = "soil_moisture_downscaling.core.ensemble"
ML_OPSET = 3
INPUT_NAME = "X"
OUTPUT_NAME = "sm"
SIGMA_NAME = "sigma"


def model_sha256(model: onnx.ModelProto) -> str:
    """SHA-256 (hex) of ``model`` serialised deterministically without ``metadata_props``.

    Examples
    --------
    >>> m = mlp_to_onnx(trained_mlp)              # doctest: +SKIP
    >>> h = model_sha256(m); card.write(m, ...)   # doctest: +SKIP
    >>> model_sha256(m) == h                      # doctest: +SKIP
    True
    """
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.metadata_props[:]
    return hashlib.sha256(bare.SerializeToString(deterministic=True)).hexdigest()


def mlp_to_onnx(net: MLP, name: str = "member") -> onnx.ModelProto:
    """ONNX graph computing exactly :meth:`MLP.predict` (in float32).

    Parameters
    ----------
    net : MLP
        A trained network.
    name : str
        Graph name.
    """
    enc = net.encoder
    specs = enc.specs
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(n: str, arr: np.ndarray, dtype=np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=dtype), n))
        return n

    # Encoded column positions in MLP.encoder.transform order, to permute the first layer.
    pos, starts = 0, []
    for s in specs:
        starts.append(pos)
        pos += len(s["codes"]) if s["encoding"] == "one_hot" else (2 if s["encoding"] == "cyclic" else 1)
    parts: list[str] = []
    order: list[int] = []  # encoder column index of each graph-encoded column
    std_cols = [j for j, s in enumerate(specs) if s["encoding"] == "standardize"]
    if std_cols:
        const("std_idx", np.asarray(std_cols), np.int64)
        const("std_mean", [specs[j]["mean"] for j in std_cols])
        const("std_inv", [1.0 / specs[j]["std"] for j in std_cols])
        nodes += [helper.make_node("Gather", [INPUT_NAME, "std_idx"], ["std_raw"], axis=1),
                  helper.make_node("Sub", ["std_raw", "std_mean"], ["std_c"]),
                  helper.make_node("Mul", ["std_c", "std_inv"], ["std_z"])]
        parts.append("std_z")
        order += [starts[j] for j in std_cols]
    for j, s in enumerate(specs):
        if s["encoding"] == "cyclic":
            const(f"c{j}_idx", [j], np.int64)
            const(f"c{j}_w", 2.0 * np.pi / s["period"])
            nodes += [helper.make_node("Gather", [INPUT_NAME, f"c{j}_idx"], [f"c{j}_raw"], axis=1),
                      helper.make_node("Mul", [f"c{j}_raw", f"c{j}_w"], [f"c{j}_a"]),
                      helper.make_node("Sin", [f"c{j}_a"], [f"c{j}_sin"]),
                      helper.make_node("Cos", [f"c{j}_a"], [f"c{j}_cos"])]
            parts += [f"c{j}_sin", f"c{j}_cos"]
            order += [starts[j], starts[j] + 1]
        elif s["encoding"] == "one_hot":
            const(f"h{j}_idx", [j], np.int64)
            const(f"h{j}_codes", np.asarray(s["codes"], dtype=np.float32))
            nodes += [helper.make_node("Gather", [INPUT_NAME, f"h{j}_idx"], [f"h{j}_raw"], axis=1),
                      helper.make_node("Equal", [f"h{j}_raw", f"h{j}_codes"], [f"h{j}_eq"]),
                      helper.make_node("Cast", [f"h{j}_eq"], [f"h{j}_1h"], to=TensorProto.FLOAT)]
            parts.append(f"h{j}_1h")
            order += list(range(starts[j], starts[j] + len(s["codes"])))
    if len(parts) > 1:
        nodes.append(helper.make_node("Concat", parts, ["H"], axis=1))
        h = "H"
    else:
        h = parts[0]
    perm = np.asarray(order, dtype=np.int64)

    a = h
    n_layers = len(net.weights)
    for i, (W, b) in enumerate(zip(net.weights, net.biases)):
        Wg = W[perm] if i == 0 else W
        const(f"W{i}", Wg)
        const(f"b{i}", b)
        nodes += [helper.make_node("MatMul", [a, f"W{i}"], [f"mm{i}"]),
                  helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"z{i}"])]
        a = f"z{i}"
        if i < n_layers - 1:
            act = "Tanh" if net.config.activation == "tanh" else "Relu"
            nodes.append(helper.make_node(act, [a], [f"a{i}"]))
            a = f"a{i}"
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])]
    arch = net.config.architecture
    if arch == "prob":
        const("split", [1, 1], np.int64)
        const("var_eps", 1e-6)
        const("sigma_scale", net.target_scale)
        nodes += [helper.make_node("Split", [a, "split"], [OUTPUT_NAME, "raw_s"], axis=1),
                  helper.make_node("Softplus", ["raw_s"], ["sp"]),
                  helper.make_node("Add", ["sp", "var_eps"], ["var"]),
                  helper.make_node("Sqrt", ["var"], ["sd_z"]),
                  helper.make_node("Mul", ["sd_z", "sigma_scale"], [SIGMA_NAME])]
        outputs.append(helper.make_tensor_value_info(SIGMA_NAME, TensorProto.FLOAT, ["N", 1]))
    elif arch == "wdl":
        const("W_wide", net.wide_weight[perm][:, None])
        nodes += [helper.make_node("MatMul", [h, "W_wide"], ["wide"]),
                  helper.make_node("Add", [a, "wide"], [OUTPUT_NAME])]
    else:
        nodes.append(helper.make_node("Identity", [a], [OUTPUT_NAME]))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", len(specs)])],
        outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=PRODUCER)
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    onnx.checker.check_model(model, full_check=True)
    return model


def forest_to_onnx(forest, n_features: int, categorical_columns: Sequence[int],
                   name: str = "member") -> onnx.ModelProto:
    """ONNX graph of a fitted scikit-learn ``RandomForestRegressor`` via skl2onnx.

    NaN in a categorical column becomes −1 first (as :class:`core.learn.forest.ForestMember`
    does before scikit-learn sees it); NaN in a continuous column is left to the runtime,
    which masks such rows.
    """
    def tail(tree_out: str) -> tuple[list, list]:
        return [helper.make_node("Identity", [tree_out], [OUTPUT_NAME])], []

    return _sklearn_trees_to_onnx(forest, n_features, categorical_columns, name, tail)


def boosting_to_onnx(member, n_features: int, name: str = "member") -> onnx.ModelProto:
    """ONNX graph of a fitted :class:`core.learn.boosting.BoostingMember`: the scikit-learn
    ``HistGradientBoostingRegressor`` via skl2onnx (same NaN → −1 prefix for categorical
    columns as :func:`forest_to_onnx`) plus the member's straight line on the coarse column,
    ``sm = trees + intercept + slope · X[:, coarse_column]``.
    """
    col = member.coarse_column

    def tail(tree_out: str) -> tuple[list, list]:
        nodes = [helper.make_node("Add", [tree_out, "line_intercept"], ["tree_plus_b"])]
        inits = [numpy_helper.from_array(np.asarray([member.intercept], dtype=np.float32), "line_intercept")]
        if col is None:
            nodes.append(helper.make_node("Identity", ["tree_plus_b"], [OUTPUT_NAME]))
            return nodes, inits
        nodes += [helper.make_node("Gather", [INPUT_NAME, "line_idx"], ["line_x"], axis=1),
                  helper.make_node("Mul", ["line_x", "line_slope"], ["line_bx"]),
                  helper.make_node("Add", ["tree_plus_b", "line_bx"], [OUTPUT_NAME])]
        inits += [numpy_helper.from_array(np.asarray([col], dtype=np.int64), "line_idx"),
                  numpy_helper.from_array(np.asarray([member.slope], dtype=np.float32), "line_slope")]
        return nodes, inits

    return _sklearn_trees_to_onnx(member.model, n_features, member.categorical_columns, name, tail)


def _sklearn_trees_to_onnx(estimator, n_features: int, categorical_columns: Sequence[int], name: str,
                           tail) -> onnx.ModelProto:
    """A skl2onnx tree graph behind the NaN → −1 prefix of categorical columns, followed by the
    nodes ``tail(tree_output_name) -> (nodes, initializers)`` that end in :data:`OUTPUT_NAME`."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    inner = convert_sklearn(estimator, initial_types=[("X_clean", FloatTensorType([None, n_features]))],
                            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})
    g = inner.graph
    mask = np.zeros(n_features, dtype=bool)
    mask[list(categorical_columns)] = True
    prefix = [helper.make_node("IsNaN", [INPUT_NAME], ["x_nan"]),
              helper.make_node("And", ["x_nan", "cat_mask"], ["cat_nan"]),
              helper.make_node("Where", ["cat_nan", "minus_one", INPUT_NAME], ["X_clean"])]
    tail_nodes, tail_inits = tail(g.output[0].name)
    nodes = prefix + list(g.node) + tail_nodes
    inits = [numpy_helper.from_array(mask, "cat_mask"),
             numpy_helper.from_array(np.asarray(-1.0, dtype=np.float32), "minus_one"), *g.initializer, *tail_inits]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])],
        initializer=inits)
    opsets = {o.domain: o.version for o in inner.opset_import}
    opsets[""] = max(opsets.get("", OPSET), OPSET)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                              producer_name=PRODUCER)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ------------------------------------------------------------ deep-ensemble members (core.learn.nn)
def _encoder_nodes(encoder, source: str, axis: int, ndim: int, nodes: list, const) -> str:
    """Graph nodes of :meth:`core.learn.nn.ChannelEncoder.transform` along ``axis`` of an
    ``ndim``-dimensional input ``source``; returns the name of the encoded tensor."""
    def shaped(v) -> np.ndarray:
        v = np.asarray(v, dtype=np.float32).ravel()
        shape = [1] * ndim
        shape[axis] = v.size
        return v.reshape(shape)

    parts = []
    for j, (kind, s) in enumerate(zip(encoder.kinds, encoder.specs)):
        const(f"e{j}_idx", [j], np.int64)
        nodes.append(helper.make_node("Gather", [source, f"e{j}_idx"], [f"e{j}_raw"], axis=axis))
        if kind == "one_hot":
            const(f"e{j}_codes", shaped(s["codes"]))
            nodes += [helper.make_node("Equal", [f"e{j}_raw", f"e{j}_codes"], [f"e{j}_eq"]),
                      helper.make_node("Cast", [f"e{j}_eq"], [f"e{j}_out"], to=TensorProto.FLOAT)]
            parts.append(f"e{j}_out")
        elif kind == "cyclic":
            const(f"e{j}_w", 2.0 * np.pi / s["period"])
            nodes += [helper.make_node("Mul", [f"e{j}_raw", f"e{j}_w"], [f"e{j}_a"]),
                      helper.make_node("Sin", [f"e{j}_a"], [f"e{j}_sin"]),
                      helper.make_node("Cos", [f"e{j}_a"], [f"e{j}_cos"])]
            parts += [f"e{j}_sin", f"e{j}_cos"]
        else:
            const(f"e{j}_mean", s["mean"])
            const(f"e{j}_inv", 1.0 / s["std"])
            nodes += [helper.make_node("Sub", [f"e{j}_raw", f"e{j}_mean"], [f"e{j}_c"]),
                      helper.make_node("Mul", [f"e{j}_c", f"e{j}_inv"], [f"e{j}_out"])]
            parts.append(f"e{j}_out")
    const("enc_zero", 0.0)
    nodes += [helper.make_node("Concat", parts, ["enc_raw"], axis=axis),
              helper.make_node("IsNaN", ["enc_raw"], ["enc_nan"]),
              helper.make_node("Where", ["enc_nan", "enc_zero", "enc_raw"], ["enc"])]
    return "enc"


def _relu_layers(net, a: str, layer, nodes: list) -> None:
    """Nodes of ``net``'s layers (``layer(i, input, W, b)`` → nodes ending in ``z{i}``), ReLU between them,
    the last one's output named ``sm``."""
    for i, (W, b) in enumerate(zip(net.weights, net.biases)):
        nodes += layer(i, a, W, b)
        a = f"z{i}"
        if i < len(net.weights) - 1:
            nodes.append(helper.make_node("Relu", [a], [f"a{i}"]))
            a = f"a{i}"
    nodes.append(helper.make_node("Identity", [a], [OUTPUT_NAME]))


def _finish(nodes, inits, name: str, inputs, outputs) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER)
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _builder():
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(n: str, arr, dtype=np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=dtype), n))
        return n
    return nodes, inits, const


def dense_net_to_onnx(net, encoder, name: str = "dnn") -> onnx.ModelProto:
    """ONNX graph of a :class:`core.learn.nn.DenseNet`: ``X`` [N, channels] raw → ``sm`` [N, 1]."""
    nodes, inits, const = _builder()
    a = _encoder_nodes(encoder, INPUT_NAME, 1, 2, nodes, const)

    def dense(i: int, x: str, W: np.ndarray, b: np.ndarray) -> list:
        const(f"W{i}", W)
        const(f"b{i}", b)
        return [helper.make_node("MatMul", [x, f"W{i}"], [f"mm{i}"]),
                helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"z{i}"])]
    _relu_layers(net, a, dense, nodes)
    return _finish(nodes, inits, name, [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                                                       ["N", len(encoder.names)])],
                   [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])])


def conv_net_to_onnx(net, encoder, name: str = "cnn") -> onnx.ModelProto:
    """ONNX graph of a :class:`core.learn.nn.ConvNet`, fully convolutional: ``X`` [1, channels, H, W]
    raw → ``sm`` [1, 1, H, W] (``Pad`` repeating the edges, ``Conv`` k×k, then 1×1 ``Conv`` layers)."""
    nodes, inits, const = _builder()
    a = _encoder_nodes(encoder, INPUT_NAME, 1, 4, nodes, const)
    k, p = net.kernel, net.kernel // 2
    const("pads", [0, 0, p, p, 0, 0, p, p], np.int64)
    nodes.append(helper.make_node("Pad", [a, "pads"], ["padded"], mode="edge"))

    def conv(i: int, x: str, W: np.ndarray, b: np.ndarray) -> list:
        const(f"K{i}", net.conv_weight if i == 0 else W.T[:, :, None, None])
        const(f"b{i}", b)
        size = k if i == 0 else 1
        return [helper.make_node("Conv", [x, f"K{i}", f"b{i}"], [f"z{i}"], kernel_shape=[size, size])]
    _relu_layers(net, "padded", conv, nodes)
    return _finish(nodes, inits, name, [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                                                       [1, len(encoder.names), "H", "W"])],
                   [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, 1, "H", "W"])])


def lstm_net_to_onnx(net, encoder, name: str = "lstm") -> onnx.ModelProto:
    """ONNX graph of a :class:`core.learn.nn.LSTMNet`: ``X`` [T, N, channels] raw (oldest date first)
    → ``sm`` [N, 1], with the ``LSTM`` operator (gates reordered to ONNX's i, o, f, c)."""
    nodes, inits, const = _builder()
    a = _encoder_nodes(encoder, INPUT_NAME, 2, 3, nodes, const)
    Wx, Wh, b, Wo, bo = net.params
    H = net.hidden

    def onnx_gates(M: np.ndarray) -> np.ndarray:  # numpy blocks i, f, g, o → ONNX i, o, f, c
        i, f, g, o = (M[..., j * H:(j + 1) * H] for j in range(4))
        return np.concatenate([i, o, f, g], axis=-1)
    const("lstm_W", onnx_gates(Wx).T[None])
    const("lstm_R", onnx_gates(Wh).T[None])
    const("lstm_B", np.concatenate([onnx_gates(b), np.zeros(4 * H)])[None])
    const("sq_axes", [0], np.int64)
    const("Wo", Wo)
    const("bo", bo)
    nodes += [helper.make_node("LSTM", [a, "lstm_W", "lstm_R", "lstm_B"], ["", "Y_h"], hidden_size=H),
              helper.make_node("Squeeze", ["Y_h", "sq_axes"], ["h_last"]),
              helper.make_node("MatMul", ["h_last", "Wo"], ["mm_o"]),
              helper.make_node("Add", ["mm_o", "bo"], [OUTPUT_NAME])]
    return _finish(nodes, inits, name, [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                                                       ["T", "N", len(encoder.names)])],
                   [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])])


# ------------------------------------------------------------ several members as one graph
#: Output of :func:`fuse_members`: every member's ``sm`` side by side, ``[N, n_members]``.
MEMBERS_NAME = "members"


def fuse_members(models: Sequence[onnx.ModelProto], name: str = "ensemble") -> onnx.ModelProto:
    """One graph running every member on the same input ``X``: output :data:`MEMBERS_NAME`
    ``[N, len(models)]``, column ``k`` being member ``k``'s ``sm``.

    Each member's nodes and tensors get the prefix ``m{k}_`` (only ``X`` is shared); nodes that do
    not lead to ``sm`` (e.g. a ``prob`` member's ``sigma``) are left out. The members' arithmetic is
    unchanged, so each column equals that member's own session output to float32 rounding (tree
    sums may be split over threads differently). The result lives in memory only: files and their
    :func:`model_sha256` are untouched.

    Raises
    ------
    ValueError
        A member without input ``X`` and output ``sm``, not a row model (``X`` [N, features] →
        ``sm`` [N, 1]; e.g. a convolutional member), or with sub-graphs (``If``/``Loop``), whose inner
        names this renaming does not reach.
    """
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    outs: list[str] = []
    opsets: dict[str, int] = {}
    ir = 0
    for k, member in enumerate(models):
        g = member.graph
        if [i.name for i in g.input if i.name not in {t.name for t in g.initializer}] != [INPUT_NAME] \
                or OUTPUT_NAME not in [o.name for o in g.output]:
            raise ValueError(f"member {k} ({g.name}) does not map {INPUT_NAME} to {OUTPUT_NAME}")
        sm = next(o for o in g.output if o.name == OUTPUT_NAME)
        ranks = [len(v.type.tensor_type.shape.dim) for v in (g.input[0], sm)]
        if ranks != [2, 2]:
            raise ValueError(f"member {k} ({g.name}) is not a row model (X [N, features] -> sm [N, 1])")
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
            raise ValueError(f"member {k} ({g.name}) has sub-graphs")

        def renamed(t: str, k: int = k) -> str:
            return t if t in ("", INPUT_NAME) else f"m{k}_{t}"
        needed, kept = {OUTPUT_NAME}, []
        for n in reversed(g.node):  # the nodes are topologically sorted: walk back from sm
            if needed.intersection(n.output):
                kept.append(n)
                needed.update(n.input)
        for n in reversed(kept):
            c = onnx.NodeProto()
            c.CopyFrom(n)
            c.name = renamed(n.name or f"{n.op_type}_{len(nodes)}")
            c.input[:] = [renamed(t) for t in n.input]
            c.output[:] = [renamed(t) for t in n.output]
            nodes.append(c)
        for t in g.initializer:
            if t.name in needed:
                c = onnx.TensorProto()
                c.CopyFrom(t)
                c.name = renamed(t.name)
                inits.append(c)
        outs.append(renamed(OUTPUT_NAME))
        for o in member.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
        ir = max(ir, member.ir_version)
    nodes.append(helper.make_node("Concat", outs, [MEMBERS_NAME], axis=1, name="members_concat"))
    width = models[0].graph.input[0].type.tensor_type.shape.dim[-1]
    x_shape = ["N", width.dim_value if width.HasField("dim_value") else "F"]
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(MEMBERS_NAME, TensorProto.FLOAT, ["N", len(models)])],
                              initializer=inits)
    fused = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                              producer_name=PRODUCER)
    fused.ir_version = ir
    onnx.checker.check_model(fused)
    return fused
