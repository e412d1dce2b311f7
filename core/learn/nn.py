"""Convolution and LSTM building blocks on top of :mod:`core.learn.mlp`, numpy only, exact gradients.

The deep ensemble (:mod:`core.methods.deep_ensemble`) has three kinds of member:

* :class:`DenseNet` — the per-pixel dense network of :mod:`core.learn.mlp` (its forward pass and
  gradients, ``relu`` hidden layers) on encoded input rows;
* :class:`ConvNet` — a ``k×k`` 2-D convolution (same padding repeating the edge pixels) with ``relu``, then 1×1 convolutions (= the dense layers, pixel by pixel). It is
  trained on ``k×k`` patches around the sample pixels: a patch flattened channel-major
  (:func:`im2col` order) times the kernel matrix *is* the convolution at the patch centre, so the
  training path uses the dense code on patch vectors, and prediction runs the convolution over
  whole raster tiles (:func:`conv2d_forward`, vectorised with im2col);
* :class:`LSTMNet` — one LSTM layer over a sequence of dated inputs (:func:`lstm_forward` /
  :func:`lstm_backward`, back-propagation through time), its last hidden state → a linear output.

All train with :func:`core.learn.mlp.train_adam` (Adam, weight decay, early stopping on held-out
rows). Inputs are encoded by :class:`ChannelEncoder` (standardised continuous channels, a cyclic
day of year, one-hot classes; NaN → 0 after encoding, i.e. "unknown = the training mean"); the
target is standardised and its scale folded back into the output layer, so ``predict`` returns
m³/m³. :mod:`core.learn.onnx_export` writes each as an ONNX graph with the encoding inside.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .mlp import MLPConfig, _forward, _loss_and_grads, train_adam

ENCODINGS: tuple[str, ...] = ("standardize", "cyclic", "one_hot")
DOY_PERIOD = 365.25


# --------------------------------------------------------------------------------------- encoding
@dataclass
class ChannelEncoder:
    """Encoding of raw input channels (last axis) into network inputs.

    Attributes
    ----------
    names : list of str
        Raw channel names, in order.
    kinds : list of str
        ``standardize``, ``cyclic`` (day of year: sin, cos) or ``one_hot`` per channel.
    specs : list of dict
        Fitted: ``{"mean", "std"}``, ``{"period"}`` or ``{"codes"}`` per channel.
    """

    names: list[str]
    kinds: list[str]
    specs: list[dict] = field(default_factory=list)

    def fit(self, X: np.ndarray) -> "ChannelEncoder":
        """Means, standard deviations and class codes from raw rows ``X`` (n, n_channels)."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(self.names))
        self.specs = []
        for j, kind in enumerate(self.kinds):
            col = X[:, j][np.isfinite(X[:, j])]
            if kind == "one_hot":
                self.specs.append({"codes": sorted({int(round(c)) for c in col})})
            elif kind == "cyclic":
                self.specs.append({"period": DOY_PERIOD})
            else:
                std = float(np.std(col)) if col.size else 1.0
                self.specs.append({"mean": float(np.mean(col)) if col.size else 0.0, "std": std if std > 0 else 1.0})
        return self

    @property
    def n_encoded(self) -> int:
        return sum(len(s["codes"]) if k == "one_hot" else (2 if k == "cyclic" else 1)
                   for k, s in zip(self.kinds, self.specs))

    def transform(self, X: np.ndarray, axis: int = -1, dtype=np.float64) -> np.ndarray:
        """Encoded array (``dtype``), channels on ``axis``; NaN becomes 0 (the training mean)."""
        X = np.moveaxis(np.asarray(X, dtype=dtype), axis, -1)
        parts = []
        for j, (kind, s) in enumerate(zip(self.kinds, self.specs)):
            x = X[..., j:j + 1]
            if kind == "one_hot":
                parts.append((x == np.asarray(s["codes"], dtype=dtype)).astype(dtype))
            elif kind == "cyclic":
                a = x * dtype(2.0 * np.pi / s["period"])
                parts += [np.sin(a), np.cos(a)]
            else:
                parts.append((x - dtype(s["mean"])) * dtype(1.0 / s["std"]))
        out = np.concatenate(parts, axis=-1)
        out[~np.isfinite(out)] = 0.0
        return np.moveaxis(out, -1, axis)


# ---------------------------------------------------------------------------------- convolution
def im2col(x: np.ndarray, k: int) -> np.ndarray:
    """Same-padded ``k×k`` patches of ``x`` (N, C, H, W) as rows (N·H·W, C·k·k), channel-major then kernel
    row, kernel column — the order of an ONNX ``Conv`` weight ``(F, C, k, k)`` flattened. The padding
    repeats the edge pixels (ONNX ``Pad`` mode ``edge``): zeros would tell the network where the grid
    ends, a position it would learn on small coarse grids and that means nothing at the fine scale."""
    n, c, h, w = x.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))  # N, C, H, W, k, k
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * k * k)


def conv2d_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2-D convolution (cross-correlation, stride 1, same edge padding) of ``x`` (N, C, H, W) with
    ``W`` (F, C, k, k) and bias ``b`` (F,): (N, F, H, W)."""
    n, _, h, w = x.shape
    f, _, k, _ = W.shape
    out = im2col(x, k) @ W.reshape(f, -1).T + b
    return out.reshape(n, h, w, f).transpose(0, 3, 1, 2)


def conv2d_backward(x: np.ndarray, W: np.ndarray, d_out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dW, db)`` of a scalar loss given ``d_out`` = its gradient w.r.t. the output of
    :func:`conv2d_forward` (col2im by summing the shifted kernel taps; the padding's share goes back to
    the edge pixels it repeats)."""
    n, c, h, w = x.shape
    f, _, k, _ = W.shape
    p = k // 2
    g = d_out.transpose(0, 2, 3, 1).reshape(-1, f)
    dW = (g.T @ im2col(x, k)).reshape(W.shape)
    db = g.sum(axis=0)
    dcols = (g @ W.reshape(f, -1)).reshape(n, h, w, c, k, k)
    dxp = np.zeros((n, c, h + 2 * p, w + 2 * p))
    for dy in range(k):
        for dx in range(k):
            dxp[:, :, dy:dy + h, dx:dx + w] += dcols[:, :, :, :, dy, dx].transpose(0, 3, 1, 2)
    if p:
        dxp[:, :, p] += dxp[:, :, :p].sum(axis=2)
        dxp[:, :, p + h - 1] += dxp[:, :, p + h:].sum(axis=2)
        dxp[:, :, :, p] += dxp[:, :, :, :p].sum(axis=3)
        dxp[:, :, :, p + w - 1] += dxp[:, :, :, p + w:].sum(axis=3)
    return dxp[:, :, p:p + h, p:p + w], dW, db


def patches_at(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """The same-padded ``k×k`` patches of ``image`` (C, H, W) centred on pixels (rows, cols), as rows
    (n, C·k·k) in :func:`im2col` order (edge pixels repeated outside the image)."""
    p = k // 2
    xp = np.pad(image, ((0, 0), (p, p), (p, p)), mode="edge")
    off = np.arange(k)
    rr = rows[:, None, None] + off[None, :, None]
    cc = cols[:, None, None] + off[None, None, :]
    return xp[:, rr, cc].transpose(1, 0, 2, 3).reshape(len(rows), -1)


# ------------------------------------------------------------------------------------------ LSTM
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def lstm_forward(X: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray, keep_cache: bool = True):
    """One LSTM layer over ``X`` (T, N, D); gates ``i, f, g, o`` in blocks of ``H`` columns of
    ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,); zero initial state. Returns the last hidden state
    (N, H) and the cache for :func:`lstm_backward` (empty without ``keep_cache``: prediction)."""
    T, n, _ = X.shape
    H = Wh.shape[0]
    h = np.zeros((n, H))
    c = np.zeros((n, H))
    cache = []
    for t in range(T):
        a = X[t] @ Wx + h @ Wh + b
        i, f, g, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
        c_prev, h_prev = c, h
        c = f * c_prev + i * g
        tc = np.tanh(c)
        h = o * tc
        if keep_cache:
            cache.append((h_prev, c_prev, i, f, g, o, tc))
    return h, cache


def lstm_backward(X: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, cache, d_h: np.ndarray):
    """Gradients ``(dWx, dWh, db)`` given ``d_h`` = the loss gradient w.r.t. the last hidden state."""
    H = Wh.shape[0]
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H)
    dh, dc = d_h, np.zeros_like(d_h)
    for t in range(X.shape[0] - 1, -1, -1):
        h_prev, c_prev, i, f, g, o, tc = cache[t]
        do = dh * tc
        dc = dc + dh * o * (1.0 - tc * tc)
        di, df, dg = dc * g, dc * c_prev, dc * i
        da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1)
        dWx += X[t].T @ da
        dWh += h_prev.T @ da
        db += da.sum(axis=0)
        dh = da @ Wh.T
        dc = dc * f
    return dWx, dWh, db


def lstm_loss_and_grads(params: list[np.ndarray], S: np.ndarray, z: np.ndarray, need_grads: bool = True):
    """Mean squared error of the LSTM network ``[Wx, Wh, b, Wo, bo]`` on sequences ``S`` (T, n, D)
    against standardised targets ``z`` (n,), and its gradients."""
    Wx, Wh, b, Wo, bo = params
    h, cache = lstm_forward(S, Wx, Wh, b)
    r = (h @ Wo + bo)[:, 0] - z
    n = max(z.size, 1)
    loss = float(np.sum(r * r) / n)
    if not need_grads:
        return loss, None
    d_out = (2.0 * r / n)[:, None]
    dWx, dWh, db = lstm_backward(S, Wx, Wh, cache, d_out @ Wo.T)
    return loss, [dWx, dWh, db, h.T @ d_out, d_out.sum(axis=0)]


# -------------------------------------------------------------------------------------- networks
def _standardised(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    mean, std = float(np.mean(y)), float(np.std(y)) or 1.0
    return (y - mean) / std, mean, std


def _dense_loss(params: list[np.ndarray], H: np.ndarray, z: np.ndarray, need_grads: bool = True):
    return _loss_and_grads(params, H, z, np.ones(len(z)), "dense", need_grads=need_grads)


def _fit_standardised(params: list[np.ndarray], loss, take, X, y, X_val, y_val, config: MLPConfig,
                      rng: np.random.Generator, is_canceled):
    """:func:`core.learn.mlp.train_adam` on the standardised target: ``loss(params, X, z, need_grads)``,
    ``take(X, rows)`` the training rows of a batch. Returns the best parameters, the history, the best
    epoch and the target's mean and standard deviation."""
    z, mean, std = _standardised(np.asarray(y, dtype=np.float64))
    z_val = (np.asarray(y_val, dtype=np.float64) - mean) / std
    best, history, best_epoch = train_adam(
        params, lambda p, idx: loss(p, take(X, idx), z[idx]), len(z),
        (lambda p: loss(p, X_val, z_val, False)[0]) if len(z_val) else None, config, rng, is_canceled)
    return best, history, best_epoch, mean, std


def _dense_init(sizes: Sequence[int], rng: np.random.Generator) -> list[np.ndarray]:
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(0.0, np.sqrt(2.0 / a), size=(a, b)), np.zeros(b)]
    return params


class DenseNet:
    """Per-pixel dense network: encoded row → [Dense + ReLU]* → soil moisture (m³/m³).

    ``weights``/``biases`` include the target scale in the last layer (as :class:`core.learn.mlp.MLP`).
    """

    kind = "dnn"

    def __init__(self, config: MLPConfig) -> None:
        self.config = config
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        self.history: list[tuple[int, float, float]] = []
        self.best_epoch = -1

    def fit(self, H: np.ndarray, y: np.ndarray, H_val: np.ndarray, y_val: np.ndarray,
            is_canceled: Optional[Callable[[], bool]] = None) -> "DenseNet":
        """Train on encoded rows ``H`` (n, n_in) → ``y``; early stopping on ``(H_val, y_val)``."""
        rng = np.random.default_rng(self.config.seed)
        params = _dense_init([H.shape[1], *self.config.hidden, 1], rng)
        best, self.history, self.best_epoch, mean, std = _fit_standardised(
            params, _dense_loss, lambda X, idx: X[idx], H, y, H_val, y_val, self.config, rng, is_canceled)
        self.weights, self.biases = best[0::2], best[1::2]
        self.weights[-1] = self.weights[-1] * std
        self.biases[-1] = self.biases[-1] * std + mean
        return self

    def predict(self, H: np.ndarray, chunk: int = 1 << 15) -> np.ndarray:
        """Soil moisture (m³/m³) of encoded rows ``H``, in float32, ``chunk`` rows at a time (bounded memory)."""
        Ws = [W.astype(np.float32) for W in self.weights]
        bs = [b.astype(np.float32) for b in self.biases]
        out = np.empty(len(H))
        for s in range(0, len(H), chunk):
            z, _ = _forward(Ws, bs, np.asarray(H[s:s + chunk], dtype=np.float32))
            out[s:s + chunk] = z[:, 0]
        return out

    @property
    def n_parameters(self) -> int:
        return sum(W.size + b.size for W, b in zip(self.weights, self.biases))


class ConvNet(DenseNet):
    """``k×k`` convolution + ReLU, then 1×1 convolutions; trained on patch rows (:func:`patches_at`)."""

    kind = "cnn"

    def __init__(self, config: MLPConfig, kernel: int, channels: int) -> None:
        super().__init__(config)
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"the convolution kernel must be odd and positive, not {kernel}")
        self.kernel, self.channels = int(kernel), int(channels)

    @property
    def conv_weight(self) -> np.ndarray:
        """The first layer as a convolution kernel (F, C, k, k)."""
        k = self.kernel
        return self.weights[0].T.reshape(-1, self.channels, k, k)

    def predict_image(self, image: np.ndarray, max_pixels: int = 1 << 14) -> np.ndarray:
        """Fully convolutional prediction on an encoded image (C, H, W): soil moisture (H, W).

        Runs in float32, in strips of about ``max_pixels`` pixels, each read with ``kernel // 2`` rows of
        context above and below, so the im2col matrix stays small; the result equals one pass over the image."""
        _, h, w = image.shape
        p = self.kernel // 2
        step = max(1, max_pixels // max(w, 1))
        image = np.asarray(image, dtype=np.float32)
        kernel, Ws = self.conv_weight.astype(np.float32), [W.astype(np.float32) for W in self.weights[1:]]
        bs = [b.astype(np.float32) for b in self.biases]
        out = np.empty((h, w))
        for r in range(0, h, step):
            r0, r1 = max(0, r - p), min(h, r + step + p)
            a = np.maximum(conv2d_forward(image[None, :, r0:r1], kernel, bs[0])[0], 0.0)
            a = a[:, r - r0:r - r0 + min(step, h - r)]
            z, _ = _forward(Ws, bs[1:], a.reshape(a.shape[0], -1).T)
            out[r:r + a.shape[1]] = z[:, 0].reshape(a.shape[1], w)
        return out


class LSTMNet:
    """One LSTM layer over a sequence of encoded dated inputs; last hidden state → soil moisture."""

    kind = "lstm"

    def __init__(self, config: MLPConfig, hidden: int) -> None:
        self.config = config
        self.hidden = int(hidden)
        self.params: list[np.ndarray] = []
        self.history: list[tuple[int, float, float]] = []
        self.best_epoch = -1

    def fit(self, S: np.ndarray, y: np.ndarray, S_val: np.ndarray, y_val: np.ndarray,
            is_canceled: Optional[Callable[[], bool]] = None) -> "LSTMNet":
        """Train on sequences ``S`` (T, n, D) → ``y``; early stopping on ``(S_val, y_val)``."""
        rng = np.random.default_rng(self.config.seed)
        D, H = S.shape[2], self.hidden
        params = [rng.normal(0.0, np.sqrt(1.0 / D), size=(D, 4 * H)), rng.normal(0.0, np.sqrt(1.0 / H), size=(H, 4 * H)),
                  np.concatenate([np.zeros(H), np.ones(H), np.zeros(2 * H)]),  # forget gate bias 1
                  rng.normal(0.0, np.sqrt(1.0 / H), size=(H, 1)), np.zeros(1)]
        best, self.history, self.best_epoch, mean, std = _fit_standardised(
            params, lstm_loss_and_grads, lambda X, idx: X[:, idx], S, y, S_val, y_val, self.config, rng, is_canceled)
        best[3] = best[3] * std
        best[4] = best[4] * std + mean
        self.params = best
        return self

    def predict(self, S: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Soil moisture (m³/m³) of encoded sequences ``S`` (T, n, D), in float32, ``chunk`` sequences at a
        time (small enough for the gate arrays to stay in the processor's cache)."""
        Wx, Wh, b, Wo, bo = (p.astype(np.float32) for p in self.params)
        H = self.hidden
        out = np.empty(S.shape[1])
        for s in range(0, S.shape[1], chunk):
            X = np.asarray(S[:, s:s + chunk], dtype=np.float32)
            A = (X.reshape(-1, X.shape[2]) @ Wx + b).reshape(X.shape[0], X.shape[1], -1)  # every step's input part
            h = np.zeros((X.shape[1], H), np.float32)
            c = np.zeros_like(h)
            for t in range(X.shape[0]):
                a = A[t] + h @ Wh
                gates = _sigmoid(a)
                c = gates[:, H:2 * H] * c + gates[:, :H] * np.tanh(a[:, 2 * H:3 * H])
                h = gates[:, 3 * H:] * np.tanh(c)
            out[s:s + chunk] = (h @ Wo + bo)[:, 0]
        return out

    @property
    def n_parameters(self) -> int:
        return sum(p.size for p in self.params)
