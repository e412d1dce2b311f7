"""A small numpy multilayer perceptron for the Dense, Prob and WDL ensemble members.

No deep-learning framework is available to the plugin, and these networks are tiny
(a few thousand weights), so they are trained here with plain numpy:

* architecture ``dense`` — encoded inputs → [Dense + ReLU]* → 1 output, weighted MSE (hidden layers may
  be ``tanh`` instead, as in the cross-scale network of Alemohammad et al.);
* architecture ``prob``  — same body, 2 outputs (mean, raw spread); the spread is
  ``σ = sqrt(softplus(raw) + 1e-6)`` and the loss is the weighted Gaussian negative
  log-likelihood ``½·log σ² + (y − μ)² / (2σ²)``;
* architecture ``wdl``   — wide & deep (Xu et al. 2022): the deep body above plus a *wide*
  linear term over the one-hot indicators of the categorical inputs and the encoded
  continuous inputs, added to the deep output; weighted MSE.

Training: Adam (Kingma & Ba 2015) on mini-batches, decoupled L2 weight decay, early stopping
on the weighted loss of a validation set made of *whole stations* held out of the training
rows (so the stopping point rewards generalisation to unseen sites), restoring the best
epoch's weights. The target is standardised internally; the scale is folded back into the
output layer, so :meth:`MLP.predict` and the ONNX graph return m³/m³ directly.
All randomness comes from one ``numpy.random.Generator`` seeded by ``MLPConfig.seed``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import numpy as np

from ..raster.blas import matmul
from .features import InputEncoder

ARCHITECTURES_NN: tuple[str, ...] = ("dense", "prob", "wdl")
ACTIVATIONS: tuple[str, ...] = ("relu", "tanh")
_VAR_EPS = 1e-6


@dataclass(frozen=True)
class MLPConfig:
    """Hyper-parameters of one network member.

    Parameters
    ----------
    architecture : {"dense", "prob", "wdl"}
    hidden : tuple of int
        Widths of the hidden ReLU layers.
    learning_rate, batch_size, max_epochs, patience : training loop settings.
    weight_decay : float
        Decoupled L2 decay per step (AdamW), on weights, not biases.
    validation_fraction : float
        Share of the training *stations* held out for early stopping.
    seed : int
        Seed of the generator for initialisation, the validation split and batch order.
    activation : {"relu", "tanh"}
        Activation of the hidden layers (He initialisation for relu, Glorot for tanh).
    """

    architecture: str = "dense"
    hidden: tuple[int, ...] = (32, 16)
    learning_rate: float = 2e-3
    batch_size: int = 256
    max_epochs: int = 300
    patience: int = 25
    weight_decay: float = 1e-4
    validation_fraction: float = 0.15
    seed: int = 0
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, not {self.activation!r}")
        if self.architecture not in ARCHITECTURES_NN:
            raise ValueError(f"architecture must be one of {ARCHITECTURES_NN}, not {self.architecture!r}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden layer widths must be positive, not {self.hidden}")


class MLP:
    """A trained (or trainable) network member; see the module docstring.

    Attributes
    ----------
    encoder : InputEncoder
        Input encoding fitted on the training rows.
    weights, biases : list of numpy.ndarray
        Deep layers; the last layer already includes the target scale.
    wide_weight : numpy.ndarray or None
        ``wdl`` only: weights of the wide linear term over the encoded inputs, shape (n_encoded,)
        (target scale included).
    history : list of tuple
        ``(epoch, train_loss, validation_loss)`` per epoch.
    """

    def __init__(self, config: MLPConfig, feature_names: Sequence[str]) -> None:
        self.config = config
        self.encoder = InputEncoder(list(feature_names))
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        self.wide_weight: Optional[np.ndarray] = None
        self.history: list[tuple[int, float, float]] = []
        self.best_epoch = -1

    # ------------------------------------------------------------------ training
    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray] = None,
            groups: Optional[np.ndarray] = None,
            is_canceled: Optional[Callable[[], bool]] = None) -> "MLP":
        """Train on rows ``X`` (raw feature columns) with targets ``y`` (m³/m³).

        Parameters
        ----------
        X : numpy.ndarray, shape (n, n_features)
            Raw inputs; rows with NaN in a continuous column must have been removed.
        y : numpy.ndarray, shape (n,)
        sample_weight : numpy.ndarray, optional
            Per-row weights (e.g. :func:`core.learn.weights.balanced_weights`); default 1.
        groups : numpy.ndarray, optional
            Station of each row: the early-stopping validation set is made of whole stations.
            Without it, rows are held out at random.
        is_canceled : callable, optional
            Polled once per epoch; when it returns True, :class:`core.errors.Canceled` is raised.
        """
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        n = y.size
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
        if X.shape[0] != n or w.size != n:
            raise ValueError("X, y and sample_weight differ in length")
        tr, va = _validation_split(n, groups, cfg.validation_fraction, rng)
        self.encoder.fit(X)  # all rows: the scaling is then the same for every member of a fit
        H = self.encoder.transform(X)
        if not np.all(np.isfinite(H)):
            raise ValueError("Training inputs contain NaN in a continuous feature")
        y_mean, y_std = float(np.average(y[tr], weights=w[tr])), float(np.std(y[tr])) or 1.0
        z = (y - y_mean) / y_std

        n_out = 2 if cfg.architecture == "prob" else 1
        sizes = [H.shape[1], *[int(h) for h in cfg.hidden], n_out]
        params = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            gain = 2.0 if cfg.activation == "relu" else 1.0  # He (relu) or Glorot-like (tanh) initialisation
            params.append(rng.normal(0.0, np.sqrt(gain / a), size=(a, b)))
            params.append(np.zeros(b))
        if cfg.architecture == "wdl":
            params.append(np.zeros(H.shape[1]))
        w_scale = float(w[tr].mean())  # weights normalised to mean 1 over the training rows
        w_va = w[va] / float(w[va].mean()) if va.size else w[va]

        def batch(p: list[np.ndarray], rows: np.ndarray):
            idx = tr[rows]
            return _loss_and_grads(p, H[idx], z[idx], w[idx] / w_scale, cfg.architecture, activation=cfg.activation)

        def validation(p: list[np.ndarray]) -> float:
            return _loss_and_grads(p, H[va], z[va], w_va, cfg.architecture, need_grads=False,
                                   activation=cfg.activation)[0]

        best_params, self.history, self.best_epoch = train_adam(params, batch, tr.size,
                                                                validation if va.size else None, cfg, rng, is_canceled)
        self._set_params(best_params, y_mean, y_std)
        return self

    def _set_params(self, params: list[np.ndarray], y_mean: float, y_std: float) -> None:
        """Store the deep/wide weights with the target scale folded into the output layer."""
        n_layers = len(self.config.hidden) + 1
        Ws = [params[2 * i].copy() for i in range(n_layers)]
        bs = [params[2 * i + 1].copy() for i in range(n_layers)]
        # output column 0 is the (standardised) mean: μ = y_std·z + y_mean
        Ws[-1][:, 0] *= y_std
        bs[-1][0] = bs[-1][0] * y_std + y_mean
        self.weights, self.biases = Ws, bs
        self.wide_weight = params[-1] * y_std if self.config.architecture == "wdl" else None
        self.target_scale = float(y_std)  # σ of the prob head is in standardised units × this

    # ---------------------------------------------------------------- prediction
    def predict(self, X: np.ndarray, return_std: bool = False):
        """Predicted soil moisture (m³/m³), float64; with ``return_std`` also σ (prob only, else NaN)."""
        H = self.encoder.transform(np.asarray(X, dtype=np.float64))
        out, _ = _forward(self.weights, self.biases, H, self.config.activation)
        mu = out[:, 0].copy()
        if self.wide_weight is not None:
            mu += matmul(H, self.wide_weight)
        if not return_std:
            return mu
        if self.config.architecture == "prob":
            sd = np.sqrt(_softplus(out[:, 1]) + _VAR_EPS) * self.target_scale
        else:
            sd = np.full_like(mu, np.nan)
        return mu, sd

    @property
    def n_parameters(self) -> int:
        n = sum(W.size + b.size for W, b in zip(self.weights, self.biases))
        return n + (0 if self.wide_weight is None else self.wide_weight.size)


def _validation_split(n: int, groups: Optional[np.ndarray], fraction: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation); the validation rows are whole groups when given."""
    idx = np.arange(n)
    if fraction <= 0:
        return idx, idx[:0]
    if groups is None:
        perm = rng.permutation(n)
        k = max(1, int(round(fraction * n)))
        return np.sort(perm[k:]), np.sort(perm[:k])
    g = np.asarray(groups).ravel()
    uniq = np.unique(g)
    if uniq.size < 2:
        return idx, idx[:0]
    k = min(uniq.size - 1, max(1, int(round(fraction * uniq.size))))
    held = rng.permutation(uniq)[:k]
    is_va = np.isin(g, held)
    return idx[~is_va], idx[is_va]


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _forward(Ws: list[np.ndarray], bs: list[np.ndarray], H: np.ndarray, activation: str = "relu"):
    acts = [H]
    a = H
    for i, (W, b) in enumerate(zip(Ws, bs)):
        a = matmul(a, W) + b
        if i < len(Ws) - 1:
            a = np.tanh(a) if activation == "tanh" else np.maximum(a, 0.0)
        acts.append(a)
    return a, acts


def _loss_and_grads(params: list[np.ndarray], H: np.ndarray, z: np.ndarray, w: np.ndarray,
                    architecture: str, need_grads: bool = True, activation: str = "relu"):
    """Weighted mean loss of a batch and the gradients of every parameter (standardised target)."""
    n_layers = (len(params) - (1 if architecture == "wdl" else 0)) // 2
    Ws = params[0:2 * n_layers:2]
    bs = params[1:2 * n_layers:2]
    out, acts = _forward(Ws, bs, H, activation)
    n = z.size
    mu = out[:, 0]
    if architecture == "wdl":
        mu = mu + matmul(H, params[-1])
    d_out = np.zeros_like(out)
    if architecture == "prob":
        raw = out[:, 1]
        var = _softplus(raw) + _VAR_EPS
        r = z - mu
        loss = float(np.sum(w * (0.5 * np.log(var) + 0.5 * r * r / var)) / n)
        if not need_grads:
            return loss, None
        d_out[:, 0] = w * (-r / var) / n
        dvar = w * (0.5 / var - 0.5 * r * r / (var * var)) / n
        d_out[:, 1] = dvar * _sigmoid(raw)
    else:
        r = mu - z
        loss = float(np.sum(w * r * r) / n)
        if not need_grads:
            return loss, None
        d_out[:, 0] = 2.0 * w * r / n
    grads: list[np.ndarray] = [None] * len(params)  # type: ignore[list-item]
    delta = d_out
    for i in range(n_layers - 1, -1, -1):
        grads[2 * i] = matmul(acts[i].T, delta)
        grads[2 * i + 1] = delta.sum(axis=0)
        if i > 0:
            slope = 1.0 - acts[i] * acts[i] if activation == "tanh" else (acts[i] > 0)
            delta = matmul(delta, Ws[i].T) * slope
    if architecture == "wdl":
        grads[-1] = matmul(H.T, d_out[:, 0])
    return loss, grads


def with_seed(config: MLPConfig, seed: int) -> MLPConfig:
    """A copy of ``config`` with another seed."""
    return replace(config, seed=int(seed))


def train_adam(params: list[np.ndarray], loss_and_grads: Callable[[list[np.ndarray], np.ndarray], tuple],
               n_rows: int, validation_loss: Optional[Callable[[list[np.ndarray]], float]], config: MLPConfig,
               rng: np.random.Generator, is_canceled: Optional[Callable[[], bool]] = None
               ) -> tuple[list[np.ndarray], list[tuple[int, float, float]], int]:
    """The training loop of :meth:`MLP.fit` (and of :mod:`core.learn.nn`'s networks): any network given as
    parameters and a loss.

    Adam on mini-batches of ``config.batch_size`` training rows (decoupled weight decay on the
    matrices), early stopping when ``validation_loss`` has not improved for ``config.patience``
    epochs; the best epoch's parameters are returned.

    Parameters
    ----------
    params : list of numpy.ndarray
        Initial parameters (updated in place during training).
    loss_and_grads : callable
        ``loss_and_grads(params, rows) -> (mean loss, gradients)`` on the training rows ``rows``.
    n_rows : int
        Number of training rows (indices ``0 … n_rows − 1``).
    validation_loss : callable or None
        ``validation_loss(params) -> float`` on the held-out rows; None: the epoch's training loss.

    Returns
    -------
    best_params, history, best_epoch
        ``history`` holds ``(epoch, train_loss, validation_loss)``.
    """
    from ..errors import Canceled

    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    best, best_params, wait, best_epoch = np.inf, [p.copy() for p in params], 0, -1
    history: list[tuple[int, float, float]] = []
    for epoch in range(config.max_epochs):
        if is_canceled is not None and is_canceled():
            raise Canceled("Training canceled")
        order = rng.permutation(n_rows)
        tot = 0.0
        for start in range(0, n_rows, config.batch_size):
            idx = order[start:start + config.batch_size]
            loss, grads = loss_and_grads(params, idx)
            tot += loss * idx.size
            t += 1
            lr_t = config.learning_rate * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            for k, (p, g) in enumerate(zip(params, grads)):
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                p -= lr_t * m[k] / (np.sqrt(v[k]) + eps)
                if p.ndim >= 2:
                    p -= config.learning_rate * config.weight_decay * p
        train_loss = tot / max(n_rows, 1)
        val = float(validation_loss(params)) if validation_loss is not None else float(train_loss)
        history.append((epoch, float(train_loss), val))
        if val < best - 1e-6:
            best, best_params, wait, best_epoch = val, [p.copy() for p in params], 0, epoch
        else:
            wait += 1
            if wait >= config.patience:
                break
    return best_params, history, best_epoch
