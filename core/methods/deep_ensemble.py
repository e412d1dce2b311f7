"""Deep ensemble of a dense, a convolutional and an LSTM network trained over several resolutions.

After the 9 km → 30 m scheme of the deep-ensemble paper (``shared/papers/deep-ensemble-dnn-cnn-lstm-30m.txt``):

* **Members** (:mod:`core.learn.nn`): *DNN* — the covariates and day of year of the pixel; *CNN* —
  a ``kernel × kernel`` patch (default 5×5) of the covariates around the pixel, run fully
  convolutionally over raster tiles at prediction time (tiles read with a halo of ``kernel // 2``
  rows); *LSTM* — the last ``sequence_length`` dates (default 8) of the dated covariates at the pixel
  and of the soil moisture *of the date before* each step (never the date predicted).
* **Multi-resolution training** (the paper's scale-invariance assumption): samples on the coarse grid
  (target: the coarse product) and on intermediate grids that split each coarse cell into ``s × s``
  (``levels``, default 2 and 4, kept while coarser than 1.5 fine pixels), with the covariates averaged
  onto each grid and the cubic interpolation of the coarse product as target there
  (:func:`core.raster.grid.cubic_from_cells`). At the fine grid the LSTM's soil moisture inputs are the
  cubic interpolation of the coarse product as well.
* **Held-out cells**: whole 2×2 blocks of coarse cells (single cells on small grids; drawn among the blocks
  holding data) are kept out of training at every level — also out of the intermediate levels' cubic
  targets and the LSTM's earlier soil moisture, which are built from the coarse field with those cells
  filled from their surroundings (:func:`_known_fields`): ``stopping_fraction`` of them stop the training
  early, ``held_out_fraction`` score the members and the ensemble on the coarse product, weight the members
  (inverse held-out MSE, or their plain mean), measure the permutation importance of every input, and set
  the do-no-harm trend weight (:func:`core.methods.trend_weight.held_out_trend_weight`) — judged at
  prediction time on the *fine* trend averaged back to the coarse cells (:func:`fine_trend_weight`), pooled
  over ``judge_splits`` disjoint held-out splits (the members refitted for each, only to judge), and capped
  by the whole scheme's skill one scale up (:func:`_one_scale_up`); the judgement on the coarse samples is
  logged too (``coarse_trend_weight``). There the LSTM sees a
  held-out cell's earlier soil moisture only as filled in from the surrounding cells — as a fine pixel
  only knows the interpolated coarse field — so its scores are not flattered by the cell's own past.
* **Trend → residual**: the ensemble is the trend of :func:`core.methods.pipeline.trend_plus_residual`
  (weighted by its held-out skill), the residual any model of :mod:`core.methods.residual` (default
  ``auto``), so each cell's pixels average back to the coarse value as in the regression family.
  A root-zone product can be given instead of the surface one: nothing here assumes the depth.

Outputs: the series, the members' spread (weighted standard deviation of the members' fine
predictions, m³/m³), the run log (each member's and the ensemble's held-out scores, the weights, the
importance), an HTML run report with the importance chart, and optionally a model folder (ONNX member
graphs + the verified numpy state, the card recording every file's SHA-256) to apply later.
"""
from __future__ import annotations

import hashlib
import html
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import Canceled, InputError
from ..inputs.dates import day_of_year, format_date
from ..inputs.scene import IsCanceled, Progress, Scene
from ..io.atomic import atomic_open
from ..io.html_page import html_document
from ..io.output import (SPREAD_RAMP, RasterWriter, qml_pseudocolor, write_json_atomic, write_soil_moisture_style,
                         write_text_atomic)
from ..learn.mlp import MLPConfig
from ..learn.nn import ChannelEncoder, ConvNet, DenseNet, LSTMNet, patches_at
from ..learn.verified_state import read_state, write_state
from ..raster.aggregate import CellAccumulator
from ..raster.grid import Grid, Window, cell_index, cubic_from_cells
from .pipeline import ResidualOptions, trend_plus_residual
from .result import DownscaleResult, canceled_fn, progress_span
from .trend_weight import TrendWeights, block_departure_weights, held_out_trend_weight

__all__ = ["MEMBERS", "METHOD", "DeepEnsembleModel", "DeepEnsembleOptions", "downscale", "fit", "predict"]

METHOD = "deep_ensemble"
MEMBERS: tuple[str, ...] = ("dnn", "cnn", "lstm")
MEMBER_LABELS = {"dnn": "DNN (pixel)", "cnn": "CNN (patch)", "lstm": "LSTM (dates)", "ensemble": "ensemble"}
WEIGHTINGS: tuple[str, ...] = ("skill", "mean")
#: Name of the LSTM's soil-moisture input (the date before each step).
SM_PREVIOUS = "sm_previous"


@dataclass
class DeepEnsembleOptions(ResidualOptions):
    """Options of the deep ensemble (defaults = the Processing algorithm's)."""
    #: Members. The CNN is off by default: on the Delaware sample its patch context scored well on held-out
    #: coarse cells yet put a wrong pattern inside the cells (station R 0.25 vs 0.42 for bilinear) — harm
    #: nothing measured on the coarse product can detect. Add ``"cnn"`` where a finer truth shows it helps.
    members: tuple[str, ...] = ("dnn", "lstm")
    #: CNN kernel (odd): the patch of covariates around each pixel.
    kernel: int = 5
    #: LSTM: number of dates in each sequence (the date predicted and the ones before it).
    sequence_length: int = 8
    #: Intermediate training grids: each coarse cell split into s × s cells.
    levels: tuple[int, ...] = (2, 4)
    hidden: tuple[int, ...] = (32, 16)
    conv_filters: int = 16
    lstm_hidden: int = 8
    max_epochs: int = 60
    patience: int = 8
    learning_rate: float = 3e-3
    batch_size: int = 256
    #: Training samples drawn at most per level (all dates pooled).
    samples_per_level: int = 4000
    held_out_fraction: float = 0.2
    stopping_fraction: float = 0.15
    #: Held-out splits the do-no-harm weight is judged on: the members are refitted without each split's
    #: held-out cells (disjoint sets of 2×2 blocks), only to judge; the model of the first split makes the map.
    #: One split of ~50 blocks gave static weights from 0.00 to 0.81 on the shared 10 km patches by the seed.
    judge_splits: int = 4
    #: Cap the do-no-harm weights by the scheme's skill one scale up (:func:`_one_scale_up`): the members
    #: trained once more on 2×2 blocks of coarse cells and judged on the cells' departures from their block.
    one_scale_up: bool = True
    #: ``skill`` (inverse held-out MSE) or ``mean``.
    weighting: str = "skill"
    importance: bool = True
    block_pixels: int = 1 << 18
    seed: int = 42

    def __post_init__(self) -> None:
        self.members = tuple(self.members)
        self.levels = tuple(int(s) for s in self.levels)
        self.hidden = tuple(int(h) for h in self.hidden)
        bad = [m for m in self.members if m not in MEMBERS]
        if bad or not self.members:
            raise ValueError(f"members must be some of {MEMBERS}, not {self.members}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"the CNN kernel must be odd, not {self.kernel}")
        if self.judge_splits < 1:
            raise ValueError(f"judge_splits must be at least 1, not {self.judge_splits}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}")


@dataclass
class DeepEnsembleModel:
    """Fitted members, their encoders and weights, and the fit's log."""
    names: list[str]
    kinds: list[str]
    options: DeepEnsembleOptions
    encoder: ChannelEncoder
    lstm_encoder: ChannelEncoder
    members: dict[str, Any]
    weights: dict[str, float]
    training: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ predicting rows
    def member_predictions(self, X: np.ndarray, P: Optional[np.ndarray], S: Optional[np.ndarray]) -> dict[str, np.ndarray]:
        """Each member's prediction (m³/m³) from raw rows ``X`` (n, channels), encoded patch rows ``P`` and
        raw sequences ``S`` (T, n, channels + 1)."""
        out = {}
        for name, net in self.members.items():
            if name == "dnn":
                out[name] = net.predict(self.encoder.transform(X))
            elif name == "cnn":
                out[name] = net.predict(P)
            else:
                out[name] = net.predict(self.lstm_encoder.transform(S))
        return out

    def combine(self, preds: dict[str, np.ndarray]) -> np.ndarray:
        return sum(self.weights[m] * preds[m] for m in preds)

    # ------------------------------------------------------------------ saving
    def save(self, folder: str) -> str:
        """Write the members as ONNX graphs and the numpy state (verified joblib) into ``folder``; the card
        (``card.json``) records the SHA-256 of every file. Returns the folder."""
        from ..learn.onnx_export import conv_net_to_onnx, dense_net_to_onnx, lstm_net_to_onnx, model_sha256

        os.makedirs(folder, exist_ok=True)
        export = {"dnn": lambda n: dense_net_to_onnx(n, self.encoder, "dnn"),
                  "cnn": lambda n: conv_net_to_onnx(n, self.encoder, "cnn"),
                  "lstm": lambda n: lstm_net_to_onnx(n, self.lstm_encoder, "lstm")}
        files = []
        for name, net in self.members.items():
            model = export[name](net)
            blob = model.SerializeToString()
            path = os.path.join(folder, f"{name}.onnx")
            with atomic_open(path, "wb") as f:
                f.write(blob)
            inputs = self.lstm_encoder.names if name == "lstm" else self.names
            files.append({"member": name, "file": f"{name}.onnx", "sha256": model_sha256(model),
                          "file_sha256": hashlib.sha256(blob).hexdigest(), "inputs": list(inputs),
                          "input_layout": {"dnn": "[N, channels]", "cnn": "[1, channels, H, W]",
                                           "lstm": "[T, N, channels], oldest date first"}[name],
                          "weight": self.weights[name], "n_parameters": int(net.n_parameters)})
        card = {"method": METHOD, "inputs": self.names, "kinds": self.kinds, "members": files,
                "options": asdict(self.options), "training": public_training(self.training),
                "aggregation": "trend = Σ weight·member; spread = weighted standard deviation of the members"}
        state = {"names": self.names, "kinds": self.kinds, "options": asdict(self.options), "encoder": self.encoder,
                 "lstm_encoder": self.lstm_encoder, "members": self.members, "weights": self.weights,
                 "training": self.training}
        return write_state(folder, state, card)

    @classmethod
    def load(cls, folder: str) -> "DeepEnsembleModel":
        """A folder written by :meth:`save`; the state's and every ONNX file's hash are checked first."""
        from ..learn.verified_state import StateError, read_card

        try:
            card = read_card(folder)
            if card.get("method") != METHOD:
                raise StateError(f"it holds a '{card.get('method')}' model, not a deep ensemble")
            for m in card["members"]:
                path = os.path.join(folder, m["file"])
                with open(path, "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() != m["file_sha256"]:
                        raise StateError(f"{m['file']} was modified after it was written")
            state, _ = read_state(folder)
        except (StateError, OSError, KeyError) as exc:
            raise InputError(problem=f"the model folder was refused: {exc}", layer=folder,
                             fix="choose a folder written by the deep ensemble, unmodified.") from None
        opts = DeepEnsembleOptions(**state["options"])
        return cls(state["names"], state["kinds"], opts, state["encoder"], state["lstm_encoder"], state["members"],
                   state["weights"], state["training"])


# ------------------------------------------------------------------------------------------- levels
@dataclass
class _Level:
    """One training grid: raw channel images per date, the target per date, and each pixel's coarse cell."""
    name: str
    grid: Grid
    raw: list[np.ndarray]      # per date (channels, H, W) float32
    target: list[np.ndarray]   # per date (H·W,) float64: the target of the training samples
    cell: np.ndarray           # (H·W,) coarse cell (−1 outside)
    #: per date, the target of the early-stopping samples (None: ``target``, as on the coarse grid)
    stop_target: Optional[list[np.ndarray]] = None

    def targets(self, role: int) -> list[np.ndarray]:
        """The targets seen by samples of ``role`` (0 training, 1 early stopping, 2 held out)."""
        return self.stop_target if role == 1 and self.stop_target is not None else self.target


def _level_grids(scene: Scene, levels: Sequence[int]) -> list[tuple[str, Grid]]:
    c, f = scene.coarse, scene.fine
    out = [("coarse", c)]
    for s in sorted(set(levels)):
        if s < 2 or c.dx / s < 1.5 * f.dx or c.dy / s < 1.5 * f.dy:
            continue
        out.append((f"coarse/{s}", replace(c, dx=c.dx / s, dy=c.dy / s, width=c.width * s, height=c.height * s)))
    return out


def _build_level(scene: Scene, name: str, grid: Grid, names: list[str], block_pixels: int, canceled) -> _Level:
    """The covariates averaged onto ``grid`` (the targets come with :func:`_with_targets`)."""
    T = len(scene.dates)
    is_coarse = grid == scene.coarse
    view = scene.training_view(block_pixels, None, canceled, grid=None if is_coarse else grid)
    covs = [n for n in names if n != "doy"]
    raw = []
    for t in range(T):
        chans = [view[(n, scene.band_index(n, t))] for n in covs]
        chans.append(np.full(grid.size, day_of_year(scene.dates[t]), np.float32))
        raw.append(np.stack(chans).reshape(len(names), grid.height, grid.width))
    cell = cell_index(grid, scene.coarse, Window(0, grid.height)).ravel()
    return _Level(name, grid, raw, [], cell)


def _with_targets(level: _Level, scene: Scene, fields: dict[int, list[np.ndarray]]) -> _Level:
    """``level`` with its targets: on the coarse grid the coarse product (``fields[2]``), on an intermediate
    grid the cubic interpolation of the coarse field the samples of each role may know (``fields[0]`` for
    training, ``fields[1]`` for early stopping; see :func:`_known_fields`)."""
    if level.grid == scene.coarse:
        return replace(level, target=fields[2], stop_target=None)
    cubic = [[cubic_from_cells(sm, scene.coarse, level.grid).astype(np.float64).ravel() for sm in fields[r]]
             for r in (0, 1)]
    return replace(level, target=cubic[0], stop_target=cubic[1])


def _known_fields(scene: Scene, role: np.ndarray, offset: float) -> dict[int, list[np.ndarray]]:
    """Per role, the coarse field (per date) a sample of that role may learn from: ``2`` the coarse product
    itself; ``1`` (early stopping) with the held-out cells filled from their surroundings; ``0`` (training)
    with the early-stopping cells filled too (:func:`_without_cells`).

    The cubic spline behind the intermediate levels' targets reaches several cells out, so built from the
    whole field it would hand the held-out cells' values to the training samples next to them: the networks
    would learn the very cells that judge them, and the held-out skill — the ensemble weights, the do-no-harm
    trend weight — would be flattered."""
    out: dict[int, list[np.ndarray]] = {2: [], 1: [], 0: []}
    for t in range(len(scene.dates)):
        sm = scene.coarse_sm(t).astype(np.float64) - offset
        out[2].append(sm)
        out[1].append(_without_cells(sm, scene.coarse, role == 2))
        out[0].append(_without_cells(sm, scene.coarse, role >= 1))
    return out


def _blocks(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """The held-out unit of every coarse cell — its 2×2 block when at least 8 blocks hold data, else the cell
    itself — and the units that hold data (a cell with a value on some date): the splits draw from those, so
    a scene of scattered patches on a large empty grid still holds out its share of what can be judged."""
    g = scene.coarse
    has = np.zeros(g.size, bool)
    for t in range(len(scene.dates)):
        has |= np.isfinite(scene.coarse_sm(t))
    rows, cols = np.divmod(np.arange(g.size), g.width)
    block = (rows // 2) * ((g.width + 1) // 2) + cols // 2
    if len(np.unique(block[has])) < 8:
        block = np.arange(g.size)
    return block, np.unique(block[has]) if has.any() else np.unique(block)


def _n_splits(scene: Scene, opts: DeepEnsembleOptions) -> int:
    """How many disjoint held-out splits the scene's blocks allow, at most ``opts.judge_splits``."""
    n_ids = len(_blocks(scene)[1])
    n_held = max(1, int(round(opts.held_out_fraction * n_ids)))
    return max(1, min(int(opts.judge_splits), n_ids // n_held))


def _roles(scene: Scene, opts: DeepEnsembleOptions, split: int = 0) -> np.ndarray:
    """Role of every coarse cell: 0 training, 1 early stopping, 2 held out (whole 2×2 blocks when there
    are at least 8 of them, else single cells; drawn among those with data). Split ``j`` holds out the
    ``j``-th share of the same random order of blocks, so the held-out cells of splits ``0 … n − 1`` are
    disjoint (split 0 fits the model)."""
    g = scene.coarse
    block, ids = _blocks(scene)
    n_held = max(1, int(round(opts.held_out_fraction * len(ids))))
    n_stop = max(1, int(round(opts.stopping_fraction * len(ids))))
    perm = np.roll(np.random.default_rng(opts.seed).permutation(ids), -split * n_held)
    role = np.zeros(g.size, np.int64)
    role[np.isin(block, perm[:n_held])] = 2
    role[np.isin(block, perm[n_held:n_held + n_stop])] = 1
    return role


@dataclass
class _Samples:
    level: np.ndarray
    date: np.ndarray
    pixel: np.ndarray
    cell: np.ndarray
    y: np.ndarray


def _candidates(levels: list[_Level], role: np.ndarray, want: int, cap: int, rng: np.random.Generator,
                only_coarse: bool = False) -> _Samples:
    parts = []
    for li, lev in enumerate(levels):
        if only_coarse and li > 0:
            break
        rows = []
        for t, (raw, y) in enumerate(zip(lev.raw, lev.targets(want))):
            ok = np.isfinite(y) & np.isfinite(raw.reshape(raw.shape[0], -1)).all(axis=0) & (lev.cell >= 0)
            ok &= role[np.maximum(lev.cell, 0)] == want
            px = np.flatnonzero(ok)
            rows.append(np.column_stack([np.full(px.size, t), px]))
        r = np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)
        if cap and len(r) > cap:
            r = r[np.sort(rng.choice(len(r), cap, replace=False))]
        parts.append(np.column_stack([np.full(len(r), li), r]))
    a = np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 3), np.int64)
    y = np.array([levels[l].targets(want)[t][p] for l, t, p in a], dtype=np.float64)
    cells = np.array([levels[l].cell[p] for l, t, p in a], dtype=np.int64)
    return _Samples(a[:, 0], a[:, 1], a[:, 2], cells, y)


def _rows(levels: list[_Level], s: _Samples) -> np.ndarray:
    """Raw channel rows (n, channels) of the samples."""
    out = np.empty((len(s.y), levels[0].raw[0].shape[0]))
    for li, lev in enumerate(levels):
        for t in range(len(lev.raw)):
            m = (s.level == li) & (s.date == t)
            if m.any():
                out[m] = lev.raw[t].reshape(lev.raw[t].shape[0], -1)[:, s.pixel[m]].T
    return out


def _patches(levels: list[_Level], s: _Samples, encoder: ChannelEncoder, k: int) -> np.ndarray:
    out = np.empty((len(s.y), encoder.n_encoded * k * k))
    for li, lev in enumerate(levels):
        for t in range(len(lev.raw)):
            m = (s.level == li) & (s.date == t)
            if m.any():
                img = encoder.transform(lev.raw[t], axis=0)
                r, c = np.divmod(s.pixel[m], lev.grid.width)
                out[m] = patches_at(img, r, c, k)
    return out


def _sequences(levels: list[_Level], s: _Samples, n_steps: int,
               coarse_sm: Optional[list[np.ndarray]] = None, role: int = 0) -> np.ndarray:
    """Raw sequences (T, n, channels + 1): the channels of dates t − T + 1 … t and the level's soil moisture
    of the date before each (NaN before the first date: encoded as the training mean), as samples of
    ``role`` see it (:meth:`_Level.targets`). ``coarse_sm`` replaces the coarse level's soil moisture (see
    :func:`_without_cells`)."""
    n_ch = levels[0].raw[0].shape[0]
    out = np.full((n_steps, len(s.y), n_ch + 1), np.nan)
    for li, lev in enumerate(levels):
        for t in range(len(lev.raw)):
            m = (s.level == li) & (s.date == t)
            if not m.any():
                continue
            px = s.pixel[m]
            for k in range(n_steps):
                d = t - (n_steps - 1) + k
                if d < 0:
                    continue
                out[k, m, :n_ch] = lev.raw[d].reshape(n_ch, -1)[:, px].T
                if d >= 1:
                    source = coarse_sm if (coarse_sm is not None and li == 0) else lev.targets(role)
                    out[k, m, n_ch] = source[d - 1][px]
    return out


def _without_cells(values: np.ndarray, grid: Grid, hide: np.ndarray) -> np.ndarray:
    """``values`` (flat, on ``grid``) with the cells ``hide`` filled from the others by normalised
    convolution (repeated 3×3 means of the known cells) — what a held-out cell's soil moisture looks like
    when only its surroundings are known, as a fine pixel only knows the interpolated coarse field."""
    from scipy.ndimage import uniform_filter

    v = np.asarray(values, dtype=np.float64).reshape(grid.height, grid.width).copy()
    known = np.isfinite(v) & ~hide.reshape(v.shape)
    gap = ~known & np.isfinite(v)
    v[~known] = np.nan
    for _ in range(max(grid.width, grid.height)):
        if not (gap & ~np.isfinite(v)).any():
            break
        ok = np.isfinite(v)
        num = uniform_filter(np.where(ok, v, 0.0), 3, mode="nearest")
        den = uniform_filter(ok.astype(np.float64), 3, mode="nearest")
        fill = gap & ~ok & (den > 1e-9)
        v[fill] = num[fill] / den[fill]
    return v.ravel()


def _scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    d = pred - y
    rmse = float(np.sqrt(np.mean(d * d))) if len(y) else float("nan")
    bias = float(np.mean(d)) if len(y) else float("nan")
    r = float(np.corrcoef(pred, y)[0, 1]) if len(y) > 2 and np.std(pred) > 0 and np.std(y) > 0 else float("nan")
    return {"n": int(len(y)), "r": r, "rmse": rmse,
            "bias": bias, "ubrmse": float(np.sqrt(max(rmse ** 2 - bias ** 2, 0.0))) if len(y) else float("nan")}


@dataclass
class _Split:
    """What one held-out split's training leaves for judging: the levels with its targets, the samples, the
    held-out inputs and the members' predictions there."""
    levels: list[_Level]
    train: _Samples
    stop: _Samples
    held: _Samples
    data_held: dict[str, Any]
    hidden_sm: list[np.ndarray]
    preds: dict[str, np.ndarray]


def _train_members(levels: list[_Level], train: _Samples, stop: _Samples, names: list[str], kinds: list[str],
                   opts: DeepEnsembleOptions, prog: Progress, canceled) -> DeepEnsembleModel:
    """The members of ``opts`` trained on the samples ``train`` (early stopping on ``stop``), equal weights."""
    X_tr, X_st = _rows(levels, train), _rows(levels, stop)
    encoder = ChannelEncoder(names, kinds).fit(X_tr)
    lstm_encoder = ChannelEncoder(names + [SM_PREVIOUS], kinds + ["standardize"]).fit(
        np.column_stack([X_tr, train.y]))
    cfg = MLPConfig(hidden=opts.hidden, learning_rate=opts.learning_rate, batch_size=opts.batch_size,
                    max_epochs=opts.max_epochs, patience=opts.patience, seed=opts.seed)
    k, T = opts.kernel, max(1, opts.sequence_length)
    members: dict[str, Any] = {}
    for i, name in enumerate(opts.members):
        prog(i / len(opts.members), f"training the {MEMBER_LABELS[name]} member on {len(train.y)} samples "
                                    f"over {len(levels)} resolutions")
        if name == "dnn":
            members[name] = DenseNet(cfg).fit(encoder.transform(X_tr), train.y, encoder.transform(X_st), stop.y,
                                              canceled)
        elif name == "cnn":
            net = ConvNet(replace(cfg, hidden=(opts.conv_filters, opts.hidden[-1])), k, encoder.n_encoded)
            members[name] = net.fit(_patches(levels, train, encoder, k), train.y, _patches(levels, stop, encoder, k),
                                    stop.y, canceled)
        else:
            members[name] = LSTMNet(cfg, opts.lstm_hidden).fit(
                lstm_encoder.transform(_sequences(levels, train, T)), train.y,
                lstm_encoder.transform(_sequences(levels, stop, T, role=1)), stop.y, canceled)
        if canceled():
            raise Canceled()
    return DeepEnsembleModel(names, kinds, opts, encoder, lstm_encoder, members,
                             {m: 1.0 / len(members) for m in members})


def _train_split(scene: Scene, bare: list[_Level], role: np.ndarray, names: list[str], kinds: list[str],
                 opts: DeepEnsembleOptions, prog: Progress, canceled, strict: bool = False
                 ) -> tuple[Optional[DeepEnsembleModel], Optional[_Split]]:
    """The members trained on the cells of ``role`` 0 (early stopping on role 1) of the levels ``bare`` with
    the targets those cells may know (:func:`_known_fields`), weighted by their skill on the held-out cells
    (role 2). Too few samples: :class:`InputError` when ``strict``, else ``(None, None)``."""
    rng = np.random.default_rng(opts.seed)
    fields = _known_fields(scene, role, opts.coarse_offset)
    levels = [_with_targets(lev, scene, fields) for lev in bare]
    train = _candidates(levels, role, 0, opts.samples_per_level, rng)
    stop = _candidates(levels, role, 1, max(1, opts.samples_per_level // 4), rng)
    held = _candidates(levels, role, 2, 0, rng, only_coarse=True)
    if len(train.y) < 20 or len(held.y) < 3:
        if not strict:
            return None, None
        raise InputError(problem=f"only {len(train.y)} training and {len(held.y)} held-out samples have both soil "
                         "moisture and covariates; the deep ensemble needs more.", layer=scene.sm_bands[0].label,
                         fix="use more dates or a larger area (at least a few dozen coarse cells), or check the "
                             "layers' nodata values.")
    model = _train_members(levels, train, stop, names, kinds, opts, prog, canceled)
    k, T = opts.kernel, max(1, opts.sequence_length)
    # the LSTM judged at a held-out cell sees its earlier soil moisture only through its surroundings
    hidden_sm = fields[1]
    data_held: dict[str, Any] = {"X": _rows(levels, held), "P": None, "S": None}
    if "cnn" in model.members:
        data_held["P"] = _patches(levels, held, model.encoder, k)
    if "lstm" in model.members:
        data_held["S"] = _sequences(levels, held, T, hidden_sm)
    preds = model.member_predictions(data_held["X"], data_held["P"], data_held["S"])
    if opts.weighting == "skill":
        inv = {m: 1.0 / max(float(np.mean((p - held.y) ** 2)), 1e-12) for m, p in preds.items()}
        model.weights = {m: inv[m] / sum(inv.values()) for m in inv}
    return model, _Split(levels, train, stop, held, data_held, hidden_sm, preds)


# ------------------------------------------------------------------------------------------- fit
def fit(scene: Scene, options: Optional[DeepEnsembleOptions] = None, progress: Optional[Progress] = None,
        is_canceled: Optional[IsCanceled] = None) -> DeepEnsembleModel:
    """Train the members on the coarse and intermediate grids of ``scene``; score, weight and explain them
    on the held-out coarse cells."""
    opts = options or DeepEnsembleOptions()
    prog = progress or (lambda f, m: None)
    canceled = canceled_fn(is_canceled)
    names = scene.covariate_names + ["doy"]
    cats = set(scene.categorical_names)
    kinds = ["cyclic" if n == "doy" else ("one_hot" if n in cats else "standardize") for n in names]
    grids = _level_grids(scene, opts.levels)
    bare = []
    for i, (lname, grid) in enumerate(grids):
        prog(0.2 * i / len(grids), f"aggregating the covariates onto the {lname} grid ({grid.width}×{grid.height})")
        bare.append(_build_level(scene, lname, grid, names, opts.block_pixels, canceled))
    n_splits = _n_splits(scene, opts)
    share = 0.7 / n_splits
    role = _roles(scene, opts)
    model, sp = _train_split(scene, bare, role, names, kinds, opts, progress_span(prog, 0.2, 0.2 + share), canceled,
                             strict=True)
    held, levels, T = sp.held, sp.levels, max(1, opts.sequence_length)
    scores = {m: _scores(p, held.y) for m, p in sp.preds.items()}
    scores["ensemble"] = _scores(model.combine(sp.preds), held.y)
    training: dict[str, Any] = {
        "levels": [{"name": lev.name, "cell_size": lev.grid.dx, "width": lev.grid.width, "height": lev.grid.height,
                    "training_samples": int(np.sum(sp.train.level == i))} for i, lev in enumerate(levels)],
        "samples": {"training": int(len(sp.train.y)), "early_stopping": int(len(sp.stop.y)),
                    "held_out": int(len(held.y))},
        "held_out_cells": int(np.sum(role == 2)), "early_stopping_cells": int(np.sum(role == 1)),
        "members": {m: {"best_epoch": int(net.best_epoch), "epochs": len(net.history),
                        "n_parameters": int(net.n_parameters), "weight": model.weights[m]}
                    for m, net in model.members.items()},
        "held_out_scores": scores, "weighting": opts.weighting,
    }
    training["coarse_trend_weight"] = _trend_weight(scene, model, levels, role, T, sp.hidden_sm)
    if opts.importance:
        prog(0.2 + share, "permutation importance of every input on the held-out cells")
        training["importance"] = permutation_importance(model, sp.data_held, held.y, opts.seed)
    # the other splits: the members refitted without each split's held-out cells, their fine trend averaged
    # back to the cells — judged with the first split's when the model is applied to this scene
    judged = []
    for j in range(1, n_splits):
        span = progress_span(prog, 0.2 + share * j, 0.2 + share * (j + 1))
        role_j = _roles(scene, opts, j)
        other, _ = _train_split(scene, bare, role_j, names, kinds, opts, span, canceled)
        if other is None:
            continue
        span(0.9, f"the fine trend of held-out split {j + 1} of {n_splits} (do no harm)")
        ensemble = _EnsembleTrend(other, scene, None, role_j == 2)
        judged.append({"held": (role_j == 2).tolist(),
                       "cell_means": _judged_cell_means(ensemble, scene, opts.block_pixels, canceled)})
    training["judge_splits"] = 1 + len(judged)
    if opts.one_scale_up:
        span = progress_span(prog, 0.2 + share * n_splits, 1.0)
        training["one_scale_up"] = _one_scale_up(scene, levels, names, kinds, opts, model.weights, span, canceled)
    # kept with the model, not logged: which coarse cells were held out, the other splits' judged means and
    # the scene they belong to
    training["_roles"] = role.tolist()
    training["_judged_splits"] = judged
    training["_scene_key"] = _scene_key(scene)
    model.training = training
    prog(1.0, "deep ensemble fitted")
    return model


def _trend_weight(scene: Scene, model: DeepEnsembleModel, levels: list[_Level], role: np.ndarray,
                  T: int, hidden_sm: list[np.ndarray]) -> dict[str, Any]:
    """The do-no-harm weight from the held-out cells (the ensemble at every coarse sample; the LSTM sees
    the held-out cells' earlier soil moisture only through their surroundings)."""
    g = scene.coarse
    parts = [_candidates(levels, role, r, 0, np.random.default_rng(0), only_coarse=True) for r in (0, 1, 2)]
    every = _Samples(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("level", "date", "pixel", "cell", "y")))
    is_held = np.concatenate([np.full(len(p.y), r == 2) for r, p in zip((0, 1, 2), parts)])
    P = _patches(levels, every, model.encoder, model.options.kernel) if "cnn" in model.members else None
    S = _sequences(levels, every, T, hidden_sm) if "lstm" in model.members else None
    f = model.combine(model.member_predictions(_rows(levels, every), P, S))
    rows, cols = np.divmod(np.arange(g.size), g.width)
    cx, cy = g.pixel_size_m()
    xy = np.column_stack([(cols + 0.5) * cx, (rows + 0.5) * cy])
    return held_out_trend_weight(every.y, f, every.cell, every.date, is_held, np.column_stack([rows, cols]), xy)


def permutation_importance(model: DeepEnsembleModel, data: dict[str, Any], y: np.ndarray, seed: int
                           ) -> dict[str, dict[str, float]]:
    """Increase of the held-out RMSE when one input is shuffled across the held-out samples, per member
    and for the ensemble (the same shuffle for every member): ``{input: {member: ΔRMSE}}``."""
    rng = np.random.default_rng(seed)
    base = model.member_predictions(data["X"], data["P"], data["S"])
    rmse = lambda p: float(np.sqrt(np.mean((p - y) ** 2)))  # noqa: E731
    k2 = model.options.kernel ** 2
    widths = [len(s["codes"]) if kd == "one_hot" else (2 if kd == "cyclic" else 1)
              for kd, s in zip(model.encoder.kinds, model.encoder.specs)]
    starts = np.concatenate([[0], np.cumsum(widths)])
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(model.names + [SM_PREVIOUS]):
        perm = rng.permutation(len(y))
        preds = dict(base)
        row: dict[str, float] = {}
        for m in model.members:
            if m == "lstm":
                S = data["S"].copy()
                S[:, :, j] = S[:, perm, j]
                preds[m] = model.members[m].predict(model.lstm_encoder.transform(S))
            elif name == SM_PREVIOUS:
                continue
            elif m == "dnn":
                X = data["X"].copy()
                X[:, j] = X[perm, j]
                preds[m] = model.members[m].predict(model.encoder.transform(X))
            else:
                P = data["P"].copy()
                cols = np.arange(starts[j] * k2, starts[j + 1] * k2)
                P[:, cols] = P[perm][:, cols]
                preds[m] = model.members[m].predict(P)
            row[m] = rmse(preds[m]) - rmse(base[m])
        if not row:
            continue
        row["ensemble"] = rmse(model.combine(preds)) - rmse(model.combine(base))
        out[name] = row
    return out


# --------------------------------------------------------------------------------------- predict
class _EnsembleTrend:
    """The ensemble as a trend of :func:`core.methods.pipeline.trend_plus_residual`: reads each block with
    the CNN's halo rows and the LSTM's earlier dates (kept while the pipeline walks the dates of a block),
    and writes the members' spread as a side output."""

    def __init__(self, model: DeepEnsembleModel, scene: Scene, spread: Optional[RasterWriter],
                 hide: Optional[np.ndarray] = None) -> None:
        self.model, self.scene, self.spread, self.hide = model, scene, spread, hide
        self.halo = model.options.kernel // 2 if "cnn" in model.members else 0
        self.T = max(1, model.options.sequence_length) if "lstm" in model.members else 1
        self._window: Optional[Window] = None
        self._raw: dict[int, np.ndarray] = {}
        self._sm: dict[int, np.ndarray] = {}

    def _halo_window(self, w: Window) -> Window:
        r0 = max(0, w.row0 - self.halo)
        r1 = min(self.scene.fine.height, w.row0 + w.nrows + self.halo)
        return Window(r0, r1 - r0)

    def _raw_of(self, d: int, hw: Window) -> np.ndarray:
        if d not in self._raw:
            feats = self.scene.features(d, hw, self._static)
            self._raw[d] = np.stack([feats[n] for n in self.model.names]).astype(np.float32)
        return self._raw[d]

    def _sm_of(self, d: int, w: Window, hidden: bool = False) -> np.ndarray:
        if (d, hidden) not in self._sm:
            sm = self.scene.coarse_sm(d).astype(np.float64) - self.model.options.coarse_offset
            if hidden:
                sm = _without_cells(sm, self.scene.coarse, self.hide)
            self._sm[(d, hidden)] = cubic_from_cells(sm, self.scene.coarse, self.scene.fine, w).ravel()
        return self._sm[(d, hidden)]

    def predict_block(self, scene: Scene, t: int, w: Window, static: dict) -> np.ndarray:
        hw = self._halo_window(w)
        if self._window != w:
            self._window, self._raw, self._sm = w, {}, {}
            self._static = scene.static_block(hw)
        keep = set(range(t - self.T + 1, t + 1))
        for d in [d for d in self._raw if d not in keep]:
            del self._raw[d]
        for key in [key for key in self._sm if key[0] + 1 not in keep]:
            del self._sm[key]
        top = w.row0 - hw.row0
        raw = self._raw_of(t, hw)
        inner = raw[:, top:top + w.nrows].reshape(raw.shape[0], -1)
        X = inner.T
        valid = np.isfinite(X).all(axis=1)
        m = self.model
        preds = {}
        f32 = np.float32
        for name, net in m.members.items():
            if name == "dnn":
                preds[name] = net.predict(m.encoder.transform(X, dtype=f32))
            elif name == "cnn":
                preds[name] = net.predict_image(m.encoder.transform(raw, axis=0, dtype=f32))[top:top + w.nrows].ravel()
            else:
                preds[name] = net.predict(m.lstm_encoder.transform(self._sequence(t, w, hw, top), dtype=f32))
        trend = np.where(valid, m.combine(preds), np.nan)
        # the trend judged for do no harm: at held-out cells the LSTM sees their past only through the
        # surrounding cells (the map itself keeps the full input)
        self.judged = trend
        if self.hide is not None and "lstm" in preds:
            idx = scene.cell_index(w).ravel()
            sel = (idx >= 0) & self.hide[np.maximum(idx, 0)]
            if sel.any():
                lstm = preds["lstm"].copy()
                S = self._sequence(t, w, hw, top, hidden=True)[:, sel]
                lstm[sel] = m.members["lstm"].predict(m.lstm_encoder.transform(S, dtype=f32))
                self.judged = np.where(valid, m.combine({**preds, "lstm": lstm}), np.nan)
        if self.spread is not None:
            stack = np.stack([preds[n] for n in preds])
            wts = np.array([m.weights[n] for n in preds])[:, None]
            sd = np.sqrt(np.maximum((wts * (stack - trend) ** 2).sum(axis=0), 0.0))
            idx = scene.cell_index(w).ravel()
            has = (idx >= 0) & np.isfinite(scene.coarse_sm(t)[np.maximum(idx, 0)])
            self.spread.write(t, w, np.where(valid & has, sd, np.nan).reshape(w.nrows, -1).astype(np.float32))
        return trend.reshape(w.nrows, scene.fine.width).astype(np.float32)

    def _sequence(self, t: int, w: Window, hw: Window, top: int, hidden: bool = False) -> np.ndarray:
        n_ch = len(self.model.names)
        n = w.nrows * self.scene.fine.width
        S = np.full((self.T, n, n_ch + 1), np.nan, np.float32)
        for k in range(self.T):
            d = t - (self.T - 1) + k
            if d < 0:
                continue
            raw = self._raw_of(d, hw)
            S[k, :, :n_ch] = raw[:, top:top + w.nrows].reshape(n_ch, -1).T
            if d >= 1:
                S[k, :, n_ch] = self._sm_of(d - 1, w, hidden)
        return S


class _StoredTrend:
    """The ensemble trend of the first pass, read back block by block by the pipeline."""

    def __init__(self, stored: RasterWriter) -> None:
        self.stored = stored

    def predict_block(self, scene: Scene, t: int, w: Window, static: dict) -> np.ndarray:
        return self.stored.read(t, w)


def _judged_cell_means(ensemble: "_EnsembleTrend", scene: Scene, block_pixels: int, canceled,
                       sink: Optional[Callable[[int, Window, np.ndarray], None]] = None,
                       progress: Optional[Callable[[float], None]] = None) -> list[np.ndarray]:
    """Run ``ensemble`` over every fine block and date (each trend block handed to ``sink``); per date, the
    mean in every coarse cell of the trend as judged (:attr:`_EnsembleTrend.judged`)."""
    windows = list(scene.fine.windows(block_pixels))
    acc = [CellAccumulator(scene.coarse.size) for _ in scene.dates]
    for k, w in enumerate(windows):
        static = scene.static_block(w)
        idx = scene.cell_index(w)
        for t in range(len(scene.dates)):
            if canceled():
                raise Canceled()
            tr = ensemble.predict_block(scene, t, w, static)
            if sink is not None:
                sink(t, w, tr)
            acc[t].add(ensemble.judged, idx)
        if progress is not None:
            progress((k + 1) / len(windows))
    return [a.mean() for a in acc]


def _one_scale_up(scene: Scene, levels: list[_Level], names: list[str], kinds: list[str], opts: DeepEnsembleOptions,
                  weights: dict[str, float], prog: Progress, canceled) -> dict[str, Any]:
    """The do-no-harm weights of the whole scheme moved one scale up: the members trained on 2×2 blocks of
    coarse cells (covariates and soil moisture averaged; the intermediate levels one scale up too, so the
    coarse grid plays the fine grid's part), then applied to the coarse cells, whose departures from their
    block's mean — known here, never trained on — judge the detail they add (``trend_weight``,
    ``trend_weight_static``, ``trend_weight_dynamic``: the regression family's check one scale up,
    :func:`~core.methods.trend_weight.block_departure_weights`, its standard errors clustered by cell).

    The held-out checks judge a network at the scale it was trained at; the map uses it one scale finer,
    where a covariate's noise no longer averages out. This asks the question the map poses — detail one
    scale finer than the training targets — where the answer is known."""
    c = levels[0].grid
    W2, H2 = (c.width + 1) // 2, (c.height + 1) // 2
    up = replace(c, dx=2 * c.dx, dy=2 * c.dy, width=W2, height=H2)
    rows, cols = np.divmod(np.arange(c.size), c.width)
    block = (rows // 2) * W2 + cols // 2

    def coarsen(img: np.ndarray) -> np.ndarray:  # (…, H, W) → (…, H2, W2), NaN-aware block means
        pad = np.full(img.shape[:-2] + (2 * H2, 2 * W2), np.nan)
        pad[..., :c.height, :c.width] = img
        blocks = pad.reshape(img.shape[:-2] + (H2, 2, W2, 2))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(blocks, axis=(-3, -1))

    z_up = [coarsen(np.asarray(z, np.float64).reshape(c.height, c.width)).ravel() for z in levels[0].target]
    raw_up = [coarsen(r.astype(np.float64)).astype(np.float32) for r in levels[0].raw]
    for j, kind in enumerate(kinds):  # classes: the block's first class instead of a mean of codes
        if kind == "one_hot":
            for r_up, r in zip(raw_up, levels[0].raw):
                r_up[j] = r[j][::2, ::2][:H2, :W2]

    def moved(lev: _Level, grid: Grid, raw: list[np.ndarray], cell: np.ndarray) -> _Level:
        target = z_up if grid == up else [cubic_from_cells(z, up, grid).astype(np.float64).ravel() for z in z_up]
        return _Level(lev.name + " (one scale up)", grid, raw, target, cell)

    # the real levels coarse, coarse/2, … become coarse/2, coarse/4, … of the grid one scale up
    up_levels = [moved(levels[0], up, raw_up, np.arange(up.size))]
    for lev in levels[:-1]:
        sub = np.maximum(lev.cell, 0)
        up_levels.append(moved(lev, lev.grid, lev.raw, np.where(lev.cell >= 0, block[sub], -1)))
    rng = np.random.default_rng(opts.seed)
    role = np.where(rng.random(up.size) < opts.stopping_fraction, 1, 0)
    train = _candidates(up_levels, role, 0, opts.samples_per_level, rng)
    stop = _candidates(up_levels, role, 1, max(1, opts.samples_per_level // 4), rng)
    if up.size < 8 or len(train.y) < 20 or len(stop.y) < 3:
        return {"note": f"{up.size} cells one scale up: too few to judge the detail there"}
    model = _train_members(up_levels, train, stop, names, kinds, opts, prog, canceled)
    model.weights = dict(weights)
    # the coarse cells as the "fine" grid: their soil moisture is never an input, the LSTM's earlier soil
    # moisture is the cubic interpolation of the blocks' (as a fine pixel's is of the coarse cells')
    at = _Level("coarse", c, levels[0].raw, [cubic_from_cells(z, up, c).astype(np.float64).ravel() for z in z_up],
                block)
    every = _candidates([at], np.zeros(up.size, np.int64), 0, 0, rng)
    k, T = opts.kernel, max(1, opts.sequence_length)
    P = _patches([at], every, model.encoder, k) if "cnn" in model.members else None
    S = _sequences([at], every, T) if "lstm" in model.members else None
    f = model.combine(model.member_predictions(_rows([at], every), P, S))
    z = np.array([levels[0].target[t][p] for t, p in zip(every.date, every.pixel)], dtype=np.float64)
    ok = np.isfinite(z) & np.isfinite(f)
    cell, date, z, f = every.pixel[ok], every.date[ok], z[ok], f[ok]
    (w, w_static, w_dynamic), n_pairs, n_cells = block_departure_weights(z, f, cell, block[cell], date, cell)
    if n_cells < 8:
        return {"note": "fewer than 8 coarse cells share a block one scale up: too few to judge the detail there"}
    return {"trend_weight": w, "trend_weight_static": w_static, "trend_weight_dynamic": w_dynamic, "cells": n_cells,
            "samples": n_pairs, "training_samples": int(len(train.y)), "levels": [lev.grid.dx for lev in up_levels]}


def _capped(weights: dict[str, Any], ceiling: dict[str, Any]) -> dict[str, Any]:
    """``weights`` (a trend-weight dict) with each of its three weights at most the one of ``ceiling``; the
    weights before, as ``<name>_held_out``."""
    if "trend_weight" not in ceiling:
        return weights
    out = dict(weights)
    w = float(weights.get("trend_weight", 1.0))
    for k in ("trend_weight", "trend_weight_static", "trend_weight_dynamic"):
        before = float(weights.get(k, w))
        out[k + "_held_out"] = before
        out[k] = min(before, float(ceiling[k]))
    return out


def _scene_key(scene: Scene) -> str:
    """A fingerprint of the scene's coarse series and grids (the judged splits of the fit belong to it)."""
    h = hashlib.sha256(repr((scene.coarse, scene.fine, [format_date(d) for d in scene.dates])).encode())
    for t in range(len(scene.dates)):
        h.update(np.ascontiguousarray(scene.coarse_sm(t), dtype=np.float32).tobytes())
    return h.hexdigest()


def public_training(training: dict[str, Any]) -> dict[str, Any]:
    """The fit's log without what is only kept with the model (keys starting with ``_``)."""
    return {k: v for k, v in training.items() if not k.startswith("_")}


def fine_trend_weight(model: DeepEnsembleModel, scene: Scene, cell_means: list[np.ndarray]) -> dict[str, Any]:
    """The do-no-harm weight judged on the fine grid: the mean of the ensemble's *fine* trend in each coarse
    cell against the coarse product, on the held-out cells (:func:`~core.methods.trend_weight.held_out_trend_weight`).

    At the coarse level a CNN patch spans many coarse cells — regional context that can predict a held-out
    cell well and means nothing for the fine pixels, where the same patch spans a few pixels. Averaging the
    fine trend back to the cells asks whether the detail actually written to the fine grid adds up to what
    the coarse product shows where the networks never trained.

    Applied to the scene it was fitted on, the other held-out splits of the fit (``judge_splits``) are pooled
    with this one: each split's cells and dates count as cells and dates of their own, so each is judged
    exactly as alone, and the weight rests on every split's held-out blocks instead of one draw of them."""
    g = scene.coarse
    splits = [(_held_cells(model, scene), cell_means)]
    if model.training.get("_scene_key") == _scene_key(scene):
        splits += [(np.asarray(s["held"], bool), s["cell_means"]) for s in model.training.get("_judged_splits", [])]
    T = len(scene.dates)
    ys, fs, cells, dates, helds = [], [], [], [], []
    for j, (held, means) in enumerate(splits):
        for t, f in enumerate(means):
            z = scene.coarse_sm(t).astype(np.float64) - model.options.coarse_offset
            ok = np.isfinite(z) & np.isfinite(f)
            ys.append(z[ok])
            fs.append(np.asarray(f)[ok])
            cells.append(np.flatnonzero(ok) + j * g.size)
            dates.append(np.full(int(ok.sum()), t + j * T))
            helds.append(held[ok])
    y, f, cell, date, is_held = (np.concatenate(a) for a in (ys, fs, cells, dates, helds))
    rows, cols = np.divmod(np.arange(g.size), g.width)
    cx, cy = g.pixel_size_m()
    xy = np.column_stack([(cols + 0.5) * cx, (rows + 0.5) * cy])
    n = len(splits)
    out = held_out_trend_weight(y, f, cell, date, is_held, np.tile(np.column_stack([rows, cols]), (n, 1)),
                                np.tile(xy, (n, 1)))
    out["trend_weight_splits"] = n
    return out


def _held_cells(model: DeepEnsembleModel, scene: Scene) -> np.ndarray:
    """The coarse cells held out of training (those of the fit when the grid is the same, else a new split:
    every cell of another scene is out of sample)."""
    role = model.training.get("_roles")
    if role is None or len(role) != scene.coarse.size:
        role = _roles(scene, model.options)
    return np.asarray(role) == 2


def predict(model: DeepEnsembleModel, scene: Scene, output_path: str, progress: Optional[Progress] = None,
            is_canceled: Optional[IsCanceled] = None, sd_path: Optional[str] = None,
            spread_path: Optional[str] = None, report_path: Optional[str] = None) -> DownscaleResult:
    """The weighted ensemble as trend + the residual model on every fine pixel and date of ``scene``.

    Writes ``output_path`` (one band per date), its style, the members' spread (``spread_path``, default
    ``<output>_spread.tif``), with a kriged residual the kriging SD (``sd_path``), the run log
    ``<output>.json`` and the HTML report (``report_path``, default ``<output>_report.html``).
    """
    missing = [n for n in model.names if n != "doy" and n not in scene.covariate_names]
    if missing:
        raise InputError(problem=f"the deep ensemble needs the covariate(s) {', '.join(missing)}, which the given "
                         "layers do not provide.", layer=None,
                         fix="give layers with the same roles as when the model was fitted (its card lists them).")
    opts = model.options
    t0 = time.time()
    prog = progress or (lambda f, m: None)
    base = output_path.rsplit(".", 1)[0]
    spread_path = spread_path or base + "_spread.tif"
    report_path = report_path or base + "_report.html"
    sd_path = sd_path or base + "_kriging_sd.tif"
    canceled = canceled_fn(is_canceled)
    residual = opts.residual_model()
    band_names = [format_date(d) for d in scene.dates]
    spread = RasterWriter(spread_path, scene.fine, band_names,
                          metadata={"SOIL_MOISTURE_UNITS": "m3/m3", "QUANTITY": "spread of the ensemble members",
                                    "TIMES": ",".join(band_names)})
    try:
        with RasterWriter(output_path, scene.fine, band_names, temporary=True) as stored:
            # 1. the members on every block and date (spread written), the trend stored, its cell means
            ensemble = _EnsembleTrend(model, scene, spread, _held_cells(model, scene) if opts.shrink_trend else None)
            means = _judged_cell_means(ensemble, scene, opts.block_pixels, canceled, stored.write,
                                       lambda f: prog(0.5 * f, "running the ensemble members on the fine grid"))
            # 2. do no harm, judged on the fine trend; 3. trend × weight + residual
            fine_weight = fine_trend_weight(model, scene, means) if opts.shrink_trend else {}
            if fine_weight and model.options.one_scale_up:
                fine_weight = _capped(fine_weight, model.training.get("one_scale_up", {}))
            weights = TrendWeights.of(fine_weight)
            weight = weights.cells
            meta = {"SOIL_MOISTURE_UNITS": "m3/m3", "TREND_WEIGHT": f"{weight:.3f}", "TREND_WEIGHTS": weights.describe(),
                    "TIMES": ",".join(band_names),
                    "METHOD": f"deep ensemble ({', '.join(model.members)}) + {residual.label}"}
            piped = trend_plus_residual(scene, _StoredTrend(stored), model.names, residual, output_path,
                                        trend_weight=weights, coarse_offset=opts.coarse_offset, sd_path=sd_path,
                                        metadata=meta, block_pixels=opts.block_pixels,
                                        progress=lambda f, m: prog(0.5 + 0.45 * f, m), is_canceled=is_canceled)
        spread.commit(overviews=True)
    except BaseException:
        spread.discard()
        raise
    training = public_training(model.training)
    training.update(fine_weight)  # the applied weight and its figures, as the regression family logs them
    style = write_soil_moisture_style(output_path)
    write_text_atomic(spread_path.rsplit(".", 1)[0] + ".qml", qml_pseudocolor(SPREAD_RAMP))
    if piped.sd_path:
        write_text_atomic(piped.sd_path.rsplit(".", 1)[0] + ".qml", qml_pseudocolor(SPREAD_RAMP))
    write_text_atomic(report_path, training_report(training, list(model.members)))
    log_path = base + ".json"
    result = DownscaleResult(output_path, log_path, list(scene.dates), piped.conservation, training,
                             time.time() - t0, extra={"spread": spread_path, "kriging_sd": piped.sd_path,
                                                      "report": report_path, "residual": piped.residual_log,
                                                      "trend_weight": weight, "trend_weights": asdict(weights)})
    write_json_atomic(log_path, {
        "method": METHOD, "options": asdict(opts), "scene": scene.describe(), "training": training,
        "member_weights": model.weights, "trend_weight_applied": weight,
        "trend_weights_applied": asdict(weights), "residual": piped.residual_log,
        "conservation": [{"date": format_date(d), **c} for d, c in zip(scene.dates, piped.conservation)],
        "outputs": {"raster": output_path, "style": style, "spread": spread_path, "kriging_sd": piped.sd_path,
                    "report": report_path},
        "seconds": result.seconds})
    prog(1.0, "done")
    return result


def downscale(scene: Scene, output_path: str, options: Optional[DeepEnsembleOptions] = None,
              progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None,
              sd_path: Optional[str] = None, spread_path: Optional[str] = None,
              model_folder: Optional[str] = None, model: Optional[DeepEnsembleModel] = None) -> DownscaleResult:
    """:func:`fit` (and :meth:`DeepEnsembleModel.save` when ``model_folder`` is given), then :func:`predict`.
    With ``model`` (e.g. :meth:`DeepEnsembleModel.load`) its members are applied instead, with the residual
    and do-no-harm options of ``options``."""
    t0 = time.time()
    if model is None:
        model = fit(scene, options, progress_span(progress, 0.0, 0.5), is_canceled)
        span = progress_span(progress, 0.5, 1.0)
    else:
        if options is not None:
            shared = {f.name: getattr(options, f.name) for f in fields(ResidualOptions)}
            model = replace(model, options=replace(model.options, **shared))
        span = progress
    if model_folder:
        model.save(model_folder)
    result = predict(model, scene, output_path, span, is_canceled, sd_path, spread_path)
    if model_folder:
        result.extra["model_folder"] = model_folder
    result.seconds = time.time() - t0
    return result


# ---------------------------------------------------------------------------------------- report
def training_report(training: dict[str, Any], members: Sequence[str]) -> str:
    """HTML run report: held-out scores per member and the ensemble, the weights, the do-no-harm weight,
    and the permutation importance as a table and a bar chart."""
    cols = list(members) + ["ensemble"]
    sc = training["held_out_scores"]
    head = "".join(f"<th>{html.escape(MEMBER_LABELS[c])}</th>" for c in cols)
    rows = []
    for key, label in (("r", "R"), ("rmse", "RMSE (m³/m³)"), ("ubrmse", "ubRMSE (m³/m³)"), ("bias", "bias (m³/m³)")):
        rows.append(f"<tr><td class='txt'>{label}</td>" + "".join(f"<td>{sc[c][key]:.4f}</td>" for c in cols) + "</tr>")
    rows.append("<tr><td class='txt'>weight</td>" + "".join(
        f"<td>{training['members'][c]['weight']:.3f}</td>" if c in training["members"] else "<td>1</td>"
        for c in cols) + "</tr>")
    parts = ["<h1>Deep ensemble — run report</h1>",
             f"<p class='meta'>{training['samples']['training']} training samples over "
             f"{len(training['levels'])} resolutions ({', '.join(lv['name'] for lv in training['levels'])}); "
             f"{training['held_out_cells']} held-out coarse cells ({training['samples']['held_out']} cell-dates).</p>",
             "<h2>Held-out coarse cells</h2>", f"<table><tr><th class='txt'>score</th>{head}</tr>{''.join(rows)}</table>"]
    for label, tw in (("judged on the coarse samples", training.get("coarse_trend_weight")),
                      ("applied: judged on the fine trend averaged back to the cells", training)):
        if not tw or "trend_weight" not in tw:
            continue
        note = (f"held-out cells interpolated from their neighbours miss by {tw['cv_rmse_interpolation']:.4f} "
                f"m³/m³ (RMSE), with the ensemble's detail {tw['cv_rmse_trend']:.4f}"
                if "cv_rmse_interpolation" in tw else html.escape(tw.get("note", "")))
        parts.append(f"<p>Do-no-harm trend weight, {label}: <b>{tw['trend_weight']:.2f}</b> — {note}.</p>")
    imp = training.get("importance")
    if imp:
        parts.append("<h2>Permutation importance (increase of held-out RMSE, m³/m³)</h2>")
        t_rows = "".join(f"<tr><td class='txt'>{html.escape(n)}</td>" + "".join(
            f"<td>{v[c]:.4f}</td>" if c in v else "<td>—</td>" for c in cols) + "</tr>" for n, v in imp.items())
        parts.append(f"<table><tr><th class='txt'>input</th>{head}</tr>{t_rows}</table>")
        parts.append(_importance_chart(imp, cols))
    return html_document("Deep ensemble run report", parts)


def _importance_chart(imp: dict[str, dict[str, float]], cols: list[str]) -> str:
    """Horizontal grouped bars (inline SVG), one group per input, one bar per member and the ensemble."""
    colours = {"dnn": "#4c78a8", "cnn": "#f58518", "lstm": "#54a24b", "ensemble": "#222222"}
    top = max([abs(v) for row in imp.values() for v in row.values()] + [1e-9])
    bar, gap, label_w, width = 9, 8, 130, 420
    y, items = 20, []
    for name, row in imp.items():
        items.append(f"<text x='0' y='{y + bar * len(cols) / 2 + 4:.0f}' font-size='12'>{html.escape(name)}</text>")
        for c in cols:
            v = row.get(c)
            if v is not None:
                w = width * max(v, 0.0) / top
                items.append(f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='{bar - 1}' fill='{colours[c]}'>"
                             f"<title>{html.escape(MEMBER_LABELS[c])}: {v:.4f}</title></rect>")
            y += bar
        y += gap
    legend = "".join(f"<rect x='{label_w + 110 * i}' y='0' width='10' height='10' fill='{colours[c]}'/>"
                     f"<text x='{label_w + 14 + 110 * i}' y='9' font-size='11'>{html.escape(MEMBER_LABELS[c])}</text>"
                     for i, c in enumerate(cols))
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{label_w + width + 20}' height='{y + 10}'>"
            f"{legend}{''.join(items)}</svg>")

