"""Self-supervised cross-scale neural network (Alemohammad et al.): downscaling without stations.

A small network learns, from the soil-moisture product itself, how a cell's value splits among
finer cells, and is then applied one scale further down.

* **Training level.** Inputs on a *source* grid (the coarser level), targets on a *target* grid (the
  finer level). With a finer product of the same quantity (SMAP 36 km → SMAP enhanced 9 km in the
  paper; 20 km → 10 km in the shared patches) the coarse product is the source and the finer one the
  target. Without it — **self-supervised** — the coarse product is averaged over ``ratio × ratio``
  cells to make the source level, and the network learns coarser → native.
* **Inputs** (by scheme), for each target pixel: the coarse soil moisture averaged over a moving
  window ``window_cells`` (1.25) source cells wide centred on the pixel, area weighted
  (:mod:`core.raster.moving_window`; 45 km over 36 km in the paper), NDVI averaged over the same
  window and NDVI of the pixel (R1), + the σ of the NDVI pixels in the window (R2), + a topographic
  index over the window and at the pixel (R3; here the DEM's multi-scale TPI, the paper uses the
  TWI of Marthews et al.), or all (R4). R0 is the window soil moisture alone. Without NDVI, its pair
  of inputs is replaced by the topographic pair (when a DEM is given) and the log says so.
* **Network**: one hidden layer of 5 tanh units, linear output (:class:`core.learn.mlp.MLP`),
  several members with their own seeds (estimate = their mean, spread = their σ). Rows are split
  60/20/20 by whole target cells: 20 % of the cells are held out for the scores, 25 % of the rest
  stop the training early.
* **Retrieval level**: the coarse product is the source and the output grid the target (default:
  the native resolution ÷ the training ratio); the window is ``window_cells`` coarse cells wide.
* **Coherent** (default on): each coarse cell's fine pixels are shifted by one value per cell and
  date so that they average back to the coarse value (the network's within-cell pattern is kept).
* **Shrinkage** (default on, "first, do no harm"): the estimate is ``w·network + (1 − w)·bilinear``
  (then made coherent), ``w`` chosen on the held-out cells of the training level — where the network's
  pattern has no skill over interpolation, ``w`` goes to 0 and the output is the coherent bilinear.
* **Validation** (in :attr:`CrossScaleModel.training`, the model card and the run log): on the
  held-out cells, the network (raw and coherent) against copying the coarse value, bilinear
  interpolation of the coarse cells and a coherent bilinear, by :mod:`core.evaluation.cross_scale_scores`.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import Canceled, InputError
from ..evaluation.cross_scale_scores import score_series
from ..inputs.dates import format_date
from ..inputs.scene import IsCanceled, Progress, Scene
from ..io.output import RasterWriter, write_json_atomic, write_soil_moisture_style
from ..learn.mlp import MLP, MLPConfig
from ..raster.aggregate import CellAccumulator
from ..raster.align import AlignedBand, BandRef, source_grid
from ..raster.grid import Grid, Window, bilinear_from_cells, cell_index, same_crs, snap_grid
from ..raster.moving_window import WindowAverager
from .regression import conservation_figures
from .result import DownscaleResult, canceled_fn, progress_span

__all__ = ["SCHEMES", "CrossScaleModel", "CrossScaleOptions", "CrossScaleOutputs", "coherent", "default_resolution",
           "downscale", "fit", "predict", "resolve_inputs"]

METHOD = "cross_scale"
#: Inputs of each scheme (Alemohammad et al., Table 1; R0 = the window soil moisture alone).
SCHEMES: dict[str, tuple[str, ...]] = {
    "R0": ("sm_window",),
    "R1": ("sm_window", "ndvi_window", "ndvi"),
    "R2": ("sm_window", "ndvi_window", "ndvi", "ndvi_window_std"),
    "R3": ("sm_window", "ndvi_window", "ndvi", "mtpi_window", "mtpi"),
    "R4": ("sm_window", "ndvi_window", "ndvi", "ndvi_window_std", "mtpi_window", "mtpi"),
}
_NDVI_INPUTS = ("ndvi_window", "ndvi", "ndvi_window_std")
_TI_INPUTS = ("mtpi_window", "mtpi")


@dataclass
class CrossScaleOptions:
    """Settings of the cross-scale network; the defaults are the Processing algorithms'."""
    scheme: str = "R1"
    hidden: int = 5
    members: int = 5
    #: Self-supervised only: native cells per side of a cell of the coarser training level.
    ratio: int = 2
    #: Moving-window width in cells of the level the soil moisture comes from (45 km / 36 km).
    window_cells: float = 1.25
    coherent: bool = True
    #: Shrink toward bilinear interpolation: estimate = w·network + (1 − w)·bilinear, with the weight w
    #: (0…1, steps of 0.1) that gives the lowest pooled RMSE on the held-out cells of the training level.
    shrink: bool = True
    test_fraction: float = 0.2
    validation_fraction: float = 0.25
    max_epochs: int = 300
    learning_rate: float = 3e-3
    seed: int = 42
    #: Self-supervised only: share of a coarser cell's native cells that must have data.
    min_coverage: float = 0.5
    block_pixels: int = 1 << 20


@dataclass
class CrossScaleOutputs:
    """Where :func:`predict` writes: the estimate (coherent by default) and the members' spread."""
    path: str
    spread: Optional[str] = None


def resolve_inputs(scheme: str, has_ndvi: bool, has_ti: bool) -> tuple[list[str], str]:
    """The inputs of ``scheme`` that the given layers can provide, and a note on any replacement.

    Without NDVI, its inputs are replaced by the topographic pair (window and pixel) when a DEM is
    there, else dropped; without a DEM the topographic inputs are dropped.

    >>> resolve_inputs("R1", has_ndvi=False, has_ti=True)[0]
    ['sm_window', 'mtpi_window', 'mtpi']
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r} (choose one of {', '.join(SCHEMES)})")
    wanted = list(SCHEMES[scheme])
    notes = []
    if not has_ndvi and any(n in wanted for n in _NDVI_INPUTS):
        wanted = [n for n in wanted if n not in _NDVI_INPUTS]
        if has_ti:
            wanted += [n for n in _TI_INPUTS if n not in wanted]
            notes.append(f"scheme {scheme} needs NDVI and none was given: the topographic index (mTPI of the DEM) "
                         "at window and pixel takes its place")
        else:
            notes.append(f"scheme {scheme} needs NDVI and none was given: only the window soil moisture is used")
    if not has_ti and any(n in wanted for n in _TI_INPUTS):
        wanted = [n for n in wanted if n not in _TI_INPUTS]
        notes.append(f"scheme {scheme} needs a DEM (topographic index) and none was given: left out")
    return wanted, "; ".join(notes)


def coherent(values: np.ndarray, idx: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Shift the fine ``values`` of each coarse cell by one number so that they average to ``coarse``.

    ``idx`` is the coarse cell of each value (−1 = none); cells without a coarse value or without
    fine values stay as they are. Works on any shape of ``values``/``idx`` (flat ``coarse``).
    """
    acc = CellAccumulator(coarse.size)
    acc.add(values, idx)
    offset = np.asarray(coarse, dtype=np.float64) - acc.mean()
    offset[~np.isfinite(offset)] = 0.0
    return (values + np.where(idx >= 0, offset[np.maximum(idx, 0)], 0.0)).astype(np.float32)


def default_resolution(coarse_dx: float, ratio: float) -> float:
    """The output pixel size when the user gives none: the native cell size ÷ the training ratio."""
    return float(coarse_dx) / float(ratio)


@dataclass
class CrossScaleModel:
    """Fitted members (numpy, or a verified ONNX ensemble after :meth:`load`), inputs and validation."""
    inputs: list[str]
    options: CrossScaleOptions
    ratio: float
    training: dict[str, Any]
    members: list[MLP] = field(default_factory=list)
    ensemble: Any = None

    def predict_rows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Members' mean and σ (m³/m³) for raw input rows (columns in :attr:`inputs` order)."""
        if self.ensemble is not None:
            mean, std, _ = self.ensemble.predict(X.astype(np.float32))
            return mean, std
        outs = np.stack([m.predict(X) for m in self.members])
        return outs.mean(axis=0).astype(np.float32), outs.std(axis=0).astype(np.float32)

    def save(self, folder: str, name: str = "cross_scale", description: str = "") -> str:
        """Write the members as ONNX files with model cards (hashes of every member) into ``folder``."""
        from ..learn import card as card_mod
        from ..learn.features import MODEL_INPUTS
        from ..learn.onnx_export import OPSET, mlp_to_onnx, model_sha256

        if not self.members:
            raise ValueError("only a freshly fitted model (numpy members) can be saved")
        os.makedirs(folder, exist_ok=True)
        models = [mlp_to_onnx(m, f"member_{k}") for k, m in enumerate(self.members)]
        files = [f"member_{k}.onnx" for k in range(len(models))]
        enc = self.members[0].encoder
        t = self.training
        sc = t["held_out"]
        stats = lambda s: {"mean": {"r": s["r_mean"], "ubrmse": s["ubrmse_mean"], "rmse": s["rmse"]},  # noqa: E731
                           "median": {"r": s["r_median"], "ubrmse": s["ubrmse_median"]}}
        base = {
            "schema_version": card_mod.SCHEMA_VERSION, "name": name,
            "description": description or f"Cross-scale network (Alemohammad et al.), scheme {t['scheme']}: "
                                          f"{', '.join(self.inputs)}; {t['mode']}.",
            "members": [{"name": f"member_{k}", "file": f, "architecture": "dense", "scheme": t["scheme"],
                         "sha256": model_sha256(m)} for k, (f, m) in enumerate(zip(files, models))],
            "inputs": [{"name": n, "role": MODEL_INPUTS[n].role, "units": MODEL_INPUTS[n].units, "encoding": s,
                        "domain": d} for n, s, d in zip(self.inputs, enc.specs, enc.domain)],
            "outputs": [{"name": "sm", "units": "m3/m3", "description": "soil moisture of the fine pixel (member)"}],
            "aggregation": "estimate = mean of the members' 'sm'; spread = their standard deviation (ddof=0); "
                           "coherent output: shifted per coarse cell to average back to the coarse value",
            "training_data": {"description": t["mode"], "file": "", "period": t["period"],
                              "n_sites": int(t["n_cells"]), "n_samples": int(t["n_samples"]), "networks": [],
                              "coarse_product": t["source_product"]},
            "citations": ["Alemohammad, S. H., Kolassa, J., Prigent, C., Aires, F. and Gentine, P.: Global downscaling "
                          "of remotely sensed soil moisture using neural networks, Hydrol. Earth Syst. Sci., 22, "
                          "5341-5356, 2018."],
            "scores": {"held_out_cells": {"protocol": "held-out target cells (all dates), training level",
                                          "n_sites": int(sc["network_coherent"]["n_pixels"]),
                                          "ensemble": stats(sc["network_coherent"]), "coarse": stats(sc["copy"]),
                                          "members": {}}},
            "artifacts": [],
            "software": {"package": "soil_moisture_downscaling", "onnx_opset": OPSET},
            "cross_scale": {"scheme": t["scheme"], "inputs": self.inputs, "note": t["note"], "ratio": self.ratio,
                            "window_cells": self.options.window_cells, "mode": t["mode"], "levels": t["levels"],
                            "options": asdict(self.options), "held_out": sc, "blend": t["blend"]},
        }
        for k, (f, m) in enumerate(zip(files, models)):
            card = dict(base)
            card["member"] = {"name": f"member_{k}", "file": f, "architecture": "dense", "scheme": t["scheme"],
                              "scheme_description": f"cross-scale scheme {t['scheme']}: {', '.join(self.inputs)}",
                              "paper_scheme": f"Alemohammad et al. {t['scheme']}",
                              "hyperparameters": {**asdict(self.members[k].config),
                                                  "n_parameters": self.members[k].n_parameters,
                                                  "best_epoch": self.members[k].best_epoch}}
            card_mod.write_card(m, card)
            _write_bytes(os.path.join(folder, f), m.SerializeToString())
        return folder

    @classmethod
    def load(cls, folder: str) -> "CrossScaleModel":
        """A model folder written by :meth:`save`: every member's card and hash is verified first."""
        from ..learn.model_folder import Ensemble, EnsembleError

        try:
            ens = Ensemble.load(folder, intra_op_threads=1)
        except EnsembleError as e:
            raise InputError(problem=f"the model folder was refused: {e}", layer=folder,
                             fix="choose a folder written by 'Train a cross-scale network', unmodified.") from None
        cs = ens.card.get("cross_scale")
        if cs is None:
            raise InputError(problem="it holds an ensemble that is not a cross-scale network.", layer=folder,
                             fix="choose a folder written by 'Train a cross-scale network'.")
        opts = CrossScaleOptions(**{k: v for k, v in cs["options"].items() if k in CrossScaleOptions.__annotations__})
        training = {"scheme": cs["scheme"], "note": cs["note"], "mode": cs["mode"], "levels": cs["levels"],
                    "held_out": cs["held_out"], "blend": cs["blend"], "model_folder": folder}
        return cls(list(cs["inputs"]), opts, float(cs["ratio"]), training, ensemble=ens)


# ---------------------------------------------------------------------------------------- features
def _needs(inputs: Sequence[str]) -> tuple[bool, bool]:
    return any(n in _NDVI_INPUTS for n in inputs), any(n in _TI_INPUTS for n in inputs)


def _stack(inputs: Sequence[str], feats: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([np.asarray(feats[n], dtype=np.float64).ravel() for n in inputs])


def _window_features(inputs: Sequence[str], sm_avg: WindowAverager, sm_source: np.ndarray,
                     px_avg: WindowAverager, window: Window, ndvi_rows: Optional[np.ndarray],
                     ti_rows: Optional[np.ndarray], row0: int) -> dict[str, np.ndarray]:
    """The inputs for the target rows of ``window``: ``*_rows`` are target-grid rows from ``row0`` on."""
    out: dict[str, np.ndarray] = {"sm_window": sm_avg.mean(sm_source, window)[0]}
    cut = slice(window.row0 - row0, window.row0 - row0 + window.nrows)
    if ndvi_rows is not None:
        m, s = px_avg.mean(ndvi_rows, window, with_std="ndvi_window_std" in inputs, row0=row0)
        out.update(ndvi_window=m, ndvi=ndvi_rows[cut])
        if s is not None:
            out["ndvi_window_std"] = s
    if ti_rows is not None:
        out.update(mtpi_window=px_avg.mean(ti_rows, window, row0=row0)[0], mtpi=ti_rows[cut])
    return out


def _coarser_grid(g: Grid, ratio: int) -> Grid:
    return Grid(g.crs_wkt, g.x0, g.y0, g.dx * ratio, g.dy * ratio, int(math.ceil(g.width / ratio)),
                int(math.ceil(g.height / ratio)))


def _aggregate(values: np.ndarray, fine: Grid, coarse: Grid, min_coverage: float) -> np.ndarray:
    """Mean of the ``fine`` cells in each ``coarse`` cell, NaN where fewer than ``min_coverage`` have data."""
    idx = cell_index(fine, coarse)
    acc = CellAccumulator(coarse.size)
    acc.add(values, idx)
    total = np.bincount(idx[idx >= 0], minlength=coarse.size)
    mean = acc.mean()
    mean[acc.count < min_coverage * np.maximum(total, 1)] = np.nan
    return mean.astype(np.float32)


# --------------------------------------------------------------------------------------------- fit
def fit(scene: Scene, options: Optional[CrossScaleOptions] = None, fine_soil_moisture: Sequence[BandRef] = (),
        progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None) -> CrossScaleModel:
    """Train the members on ``scene``: self-supervised, or on ``fine_soil_moisture`` (one band per date of
    a finer product of the same quantity, dated like the scene's soil moisture) when given."""
    opts = options or CrossScaleOptions()
    prog = progress or (lambda f, m: None)
    canceled = canceled_fn(is_canceled)
    names = set(scene.covariate_names)
    inputs, note = resolve_inputs(opts.scheme, "ndvi" in names, "mtpi" in names)
    T = len(scene.dates)
    if fine_soil_moisture:
        source, target, sm_in, sm_t = _supervised_levels(scene, fine_soil_moisture)
        ratio = source.dx / target.dx
        mode = (f"trained on a finer product ({fine_soil_moisture[0].label}, {target.dx:g}) from the coarse "
                f"product ({scene.sm_bands[0].label}, {source.dx:g})")
    else:
        if opts.ratio < 2:
            raise InputError(problem=f"a training ratio of {opts.ratio} makes no coarser level.", layer=None,
                             fix="use a ratio of 2 or more.")
        target, ratio = scene.coarse, float(opts.ratio)
        source = _coarser_grid(target, opts.ratio)
        sm_t = [scene.coarse_sm(t) for t in range(T)]
        sm_in = [_aggregate(v, target, source, opts.min_coverage) for v in sm_t]
        mode = (f"self-supervised: {scene.sm_bands[0].label} averaged over {opts.ratio}×{opts.ratio} cells "
                f"({source.dx:g}) → native ({target.dx:g})")
    prog(0.05, "training levels ready")
    need_ndvi, need_ti = _needs(inputs)
    view = scene.training_view(opts.block_pixels, lambda f, m: prog(0.05 + 0.15 * f, m), canceled, grid=target) \
        if need_ndvi or need_ti else {}
    full = Window(0, target.height)
    sm_avg = WindowAverager(source, target, opts.window_cells * source.dx, opts.window_cells * source.dy)
    px_avg = WindowAverager(target, target, opts.window_cells * source.dx, opts.window_cells * source.dy)
    shape = (target.height, target.width)
    ti = view[("mtpi", 0)].reshape(shape) if need_ti else None
    Xs, feats_t = [], []
    for t in range(T):
        ndvi = view[("ndvi", scene.band_index("ndvi", t))].reshape(shape) if need_ndvi else None
        f = _window_features(inputs, sm_avg, sm_in[t].reshape(source.height, source.width), px_avg, full,
                             ndvi, ti, 0)
        Xs.append(_stack(inputs, f))
    X_all = np.stack(Xs)                                       # (T, P, n_inputs)
    y_all = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in sm_t])  # (T, P)
    ok = np.isfinite(X_all).all(axis=2) & np.isfinite(y_all)
    cells_with = np.flatnonzero(ok.any(axis=0))
    if ok.sum() < 30 or cells_with.size < 5:
        raise InputError(problem=f"only {int(ok.sum())} pixel-dates at {cells_with.size} cells of the training level "
                         f"have soil moisture and every input ({', '.join(inputs)}).", layer=scene.sm_bands[0].label,
                         fix="use a larger area or more dates, a smaller training ratio, or check the layers' nodata.")
    rng = np.random.default_rng(opts.seed)
    n_test = int(round(opts.test_fraction * cells_with.size))
    test_cells = np.sort(rng.permutation(cells_with)[:n_test])
    is_test = np.zeros(y_all.shape[1], dtype=bool)
    is_test[test_cells] = True
    train = ok & ~is_test[None, :]
    tt, pp = np.nonzero(train)
    X_tr, y_tr, g_tr = X_all[tt, pp], y_all[tt, pp], pp
    members = []
    for k in range(opts.members):
        if canceled():
            raise Canceled()
        cfg = MLPConfig(hidden=(int(opts.hidden),), activation="tanh", learning_rate=opts.learning_rate,
                        max_epochs=opts.max_epochs, validation_fraction=opts.validation_fraction,
                        weight_decay=0.0, seed=opts.seed + k)
        members.append(MLP(cfg, inputs).fit(X_tr, y_tr, groups=g_tr, is_canceled=canceled))
        prog(0.2 + 0.7 * (k + 1) / opts.members, f"trained member {k + 1} of {opts.members}")
    model = CrossScaleModel(inputs, opts, ratio, {}, members=members)
    # validation at the training level, on the held-out cells
    pred = np.full(y_all.shape, np.nan)
    rows = np.isfinite(X_all).all(axis=2)
    pred[rows] = model.predict_rows(X_all[rows])[0]
    idx = cell_index(target, source).ravel()
    copy = np.stack([np.where(idx >= 0, sm_in[t][np.maximum(idx, 0)], np.nan) for t in range(T)])
    bil = np.stack([bilinear_from_cells(sm_in[t], target, source, full).ravel() for t in range(T)])
    bil = np.where(np.isfinite(copy), bil, np.nan)
    pred = np.where(np.isfinite(copy), pred, np.nan)
    estimates = {"copy": copy, "bilinear": bil,
                 "coherent_bilinear": np.stack([coherent(bil[t], idx, sm_in[t]) for t in range(T)]),
                 "network": pred, "network_coherent": np.stack([coherent(pred[t], idx, sm_in[t]) for t in range(T)])}
    truth = np.where(is_test[None, :], y_all, np.nan)
    blend = {"raw": _best_weight(estimates["network"], bil, truth, is_test),
             "coherent": _best_weight(estimates["network_coherent"], estimates["coherent_bilinear"], truth, is_test)}
    w = blend["coherent"]
    estimates["shrunk_coherent"] = w * estimates["network_coherent"] + (1 - w) * estimates["coherent_bilinear"]
    held = {k: score_series(v[:, is_test], truth[:, is_test], copy[:, is_test], idx[is_test])
            for k, v in estimates.items()}
    held["truth"] = {"cv": score_series(truth[:, is_test], truth[:, is_test], copy[:, is_test], idx[is_test])["cv"]}
    model.training = {
        "method": METHOD, "scheme": opts.scheme, "inputs": inputs, "note": note, "mode": mode,
        "source_product": scene.sm_bands[0].label,
        "levels": {"training": {"source_cell": source.dx, "target_cell": target.dx},
                   "ratio": ratio, "window": opts.window_cells * source.dx},
        "period": [scene.dates[0].isoformat(), scene.dates[-1].isoformat()],
        "n_samples": int(len(y_tr)), "n_cells": int(cells_with.size - n_test), "n_test_cells": int(n_test),
        "best_epochs": [m.best_epoch for m in members], "held_out": held, "blend": blend,
    }
    prog(1.0, "network trained and validated")
    return model


def _best_weight(network: np.ndarray, bilinear: np.ndarray, truth: np.ndarray, cells: np.ndarray) -> float:
    """Weight w in 0, 0.1 … 1 of ``w·network + (1 − w)·bilinear`` with the lowest pooled RMSE on ``cells``."""
    net, bil, tru = network[:, cells], bilinear[:, cells], truth[:, cells]
    ok = np.isfinite(net) & np.isfinite(bil) & np.isfinite(tru)
    if not ok.any():
        return 1.0
    weights = np.round(np.linspace(0.0, 1.0, 11), 1)
    rmse = [np.sqrt(np.mean((w * net[ok] + (1 - w) * bil[ok] - tru[ok]) ** 2)) for w in weights]
    return float(weights[int(np.argmin(rmse))])


def _supervised_levels(scene: Scene, fine: Sequence[BandRef]):
    """Source = the scene's coarse grid; target = the finer product's grid cut to it; both series."""
    by_date = {b.date: b for b in fine}
    missing = [d for d in scene.dates if d not in by_date]
    if missing:
        raise InputError(problem=f"the finer soil-moisture product has no band for {missing[0]} "
                         f"({len(missing)} of {len(scene.dates)} dates missing).", layer=fine[0].label,
                         fix="give the finer product for the same dates as the coarse one.")
    g = source_grid(fine[0])
    coarse = scene.coarse
    if not same_crs(g.crs_wkt, coarse.crs_wkt):
        raise InputError(problem="its CRS differs from the coarse product's (on the target CRS).", layer=fine[0].label,
                         fix="give both products in one CRS, or set the target CRS to theirs.")
    if g.dx >= coarse.dx * 0.999:
        raise InputError(problem=f"its cells ({g.dx:g}) are not finer than the coarse product's ({coarse.dx:g}).",
                         layer=fine[0].label, fix="give the finer product here and the coarse one as soil moisture.")
    target = snap_grid(coarse.bounds, coarse.crs_wkt, g.dx, g.dy, anchor=(coarse.x0, coarse.y0))
    sm_t = [AlignedBand(by_date[d], target, resampling="average").read().ravel() for d in scene.dates]
    sm_in = [scene.coarse_sm(t) for t in range(len(scene.dates))]
    return coarse, target, sm_in, sm_t


# ----------------------------------------------------------------------------------------- predict
def predict(model: CrossScaleModel, scene: Scene, outputs: CrossScaleOutputs, progress: Optional[Progress] = None,
            is_canceled: Optional[IsCanceled] = None, coherent_output: Optional[bool] = None) -> DownscaleResult:
    """Apply the members to every pixel of ``scene.fine`` and date, from the coarse product's windows.

    Writes ``outputs.path`` (one band per date; coherent unless ``coherent_output`` is False or the
    model's option says so), ``outputs.spread`` (members' σ) if given, the style and a JSON run log.
    """
    t0 = time.time()
    prog = progress or (lambda f, m: None)
    canceled = canceled_fn(is_canceled)
    opts = model.options
    make_coherent = opts.coherent if coherent_output is None else coherent_output
    weight = float(model.training["blend"]["coherent" if make_coherent else "raw"]) if opts.shrink else 1.0
    need_ndvi, need_ti = _needs(model.inputs)
    names = set(scene.covariate_names)
    lacking = [what for what, need, have in (("an NDVI layer", need_ndvi, "ndvi" in names),
                                            ("a DEM (for the mTPI topographic index)", need_ti, "mtpi" in names))
               if need and not have]
    if lacking:
        raise InputError(problem=f"the network's inputs ({', '.join(model.inputs)}) need {' and '.join(lacking)}.",
                         layer=None, fix="give the same layer roles as when the network was trained.")
    coarse, fine = scene.coarse, scene.fine
    dates = scene.dates
    T = len(dates)
    w_x, w_y = opts.window_cells * coarse.dx, opts.window_cells * coarse.dy
    sm_avg = WindowAverager(coarse, fine, w_x, w_y)
    px_avg = WindowAverager(fine, fine, w_x, w_y)
    windows = list(fine.windows(opts.block_pixels))
    band_names = [format_date(d) for d in dates]
    meta = {"SOIL_MOISTURE_UNITS": "m3/m3", "TIMES": ",".join(band_names),
            "METHOD": f"cross-scale network {model.training.get('scheme', '')}" + (" (coherent)" if make_coherent else "")}
    spread_path = outputs.spread or os.path.splitext(outputs.path)[0] + "_spread.tif"
    n_steps = len(windows) * T * (2 if make_coherent else 1)
    step = 0
    with RasterWriter(outputs.path, fine, band_names, temporary=True) as raw_file, \
            RasterWriter(outputs.path, fine, band_names, metadata=meta) as out, \
            RasterWriter(spread_path, fine, band_names, metadata={"CONTENT": "spread of the members (std), m3/m3",
                                                                  "TIMES": ",".join(band_names)}) as spread:
        raw_acc = [CellAccumulator(coarse.size) for _ in range(T)]
        for w in windows:
            r0, r1 = px_avg.source_rows(w)
            halo = Window(r0, r1 - r0)
            ti = scene.static_block(halo)["mtpi"] if need_ti else None
            idx = scene.cell_index(w)
            for t in range(T):
                if canceled():
                    raise Canceled()
                ndvi = scene.read_band("ndvi", scene.band_index("ndvi", t), halo) if need_ndvi else None
                sm = scene.coarse_sm(t)
                f = _window_features(model.inputs, sm_avg, sm.reshape(coarse.height, coarse.width), px_avg, w,
                                     ndvi, ti, r0)
                X = _stack(model.inputs, f)
                mean = np.full(X.shape[0], np.nan, dtype=np.float32)
                sd = np.full(X.shape[0], np.nan, dtype=np.float32)
                good = np.isfinite(X).all(axis=1)
                if good.any():
                    mean[good], sd[good] = model.predict_rows(X[good])
                if weight < 1.0:
                    bil = bilinear_from_cells(sm, fine, coarse, w).ravel()
                    mean, sd = weight * mean + (1.0 - weight) * bil, weight * sd
                has_sm = ((idx >= 0) & np.isfinite(sm[np.maximum(idx, 0)])).ravel()
                mean = np.where(has_sm, np.clip(mean, 0.0, None), np.nan).reshape(w.nrows, fine.width)
                sd = np.where(has_sm, sd, np.nan).reshape(w.nrows, fine.width)
                spread.write(t, w, sd)
                (raw_file if make_coherent else out).write(t, w, mean)
                raw_acc[t].add(mean, idx)
                step += 1
                prog(0.95 * step / n_steps, "applying the network to the fine grid")
        final = raw_acc
        if make_coherent:
            offsets = []
            for t in range(T):
                o = scene.coarse_sm(t).astype(np.float64) - raw_acc[t].mean()
                offsets.append(np.where(np.isfinite(o), o, 0.0))
            final = [CellAccumulator(coarse.size) for _ in range(T)]
            for w in windows:
                idx = scene.cell_index(w)
                for t in range(T):
                    if canceled():
                        raise Canceled()
                    v = raw_file.read(t, w) + np.where(idx >= 0, offsets[t][np.maximum(idx, 0)], 0.0)
                    v = np.clip(v, 0.0, None).astype(np.float32)
                    out.write(t, w, v)
                    final[t].add(v, idx)
                    step += 1
                    prog(0.95 * step / n_steps, "making each coarse cell's pixels average to its value")
        conservation = [conservation_figures(final[t].mean(), scene.coarse_sm(t)) for t in range(T)]
        if canceled():
            raise Canceled()
        prog(0.96, "building overviews")
        out.commit(overviews=True)
        spread.commit(overviews=True)
    style = write_soil_moisture_style(outputs.path)
    log_path = os.path.splitext(outputs.path)[0] + ".json"
    result = DownscaleResult(outputs.path, log_path, list(dates), conservation, model.training, time.time() - t0,
                             extra={"spread": spread_path, "coherent": make_coherent, "network_weight": weight})
    write_json_atomic(log_path, {
        "method": METHOD, "options": asdict(opts), "inputs": model.inputs, "coherent": make_coherent,
        "network_weight": weight,
        "scene": scene.describe(), "training": _jsonable(model.training),
        "retrieval": {"source_cell": coarse.dx, "target_cell": fine.dx, "window": w_x},
        "conservation": [{"date": format_date(d), **c} for d, c in zip(dates, conservation)],
        "outputs": {"raster": outputs.path, "spread": spread_path, "style": style}, "seconds": result.seconds,
    })
    prog(1.0, "done")
    return result


def downscale(scene: Scene, outputs: CrossScaleOutputs, options: Optional[CrossScaleOptions] = None,
              progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None) -> DownscaleResult:
    """Self-supervised :func:`fit` then :func:`predict` on the same scene (the algorithm's path without a model)."""
    t0 = time.time()
    model = fit(scene, options, (), progress_span(progress, 0.0, 0.5), is_canceled)
    result = predict(model, scene, outputs, progress_span(progress, 0.5, 1.0), is_canceled)
    result.seconds = time.time() - t0
    return result


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _write_bytes(path: str, data: bytes) -> None:
    from ..io.atomic import atomic_open

    with atomic_open(path, "wb") as f:
        f.write(data)


def training_report(training: dict[str, Any]) -> str:
    """Plain-text summary of a fit: mode, inputs, levels and the held-out scores next to the baselines."""
    from ..evaluation.cross_scale_scores import format_table

    held = training["held_out"]
    rows = {k: v for k, v in held.items() if k != "truth"}
    lev = training["levels"]
    lines = [f"Cross-scale network, scheme {training['scheme']}: inputs {', '.join(training['inputs'])}",
             f"{training['mode']}; window {lev['window']:g} (training level)"]
    if training.get("note"):
        lines.append(f"Note: {training['note']}")
    lines += [f"{training['n_samples']} training samples at {training['n_cells']} cells; scores on "
              f"{training['n_test_cells']} held-out cells (all dates):", "",
              format_table(rows), f"{'truth CV':<28}{'':>84}{held['truth']['cv']:>14.4f}"]
    net, bil = held["network_coherent"], held["bilinear"]
    verdict = "beats" if net["rmse"] < bil["rmse"] and net["pattern_r"] > bil["pattern_r"] else "does NOT beat"
    lines.append(f"The coherent network {verdict} bilinear interpolation on these cells (pooled RMSE "
                 f"{net['rmse']:.4f} vs {bil['rmse']:.4f}, pattern R {net['pattern_r']:.3f} vs {bil['pattern_r']:.3f}).")
    b = training["blend"]
    lines.append(f"Shrinkage toward bilinear (weight of the network chosen on these cells): coherent output "
                 f"{b['coherent']:.1f}, raw output {b['raw']:.1f} (0 = the coherent bilinear; 'shrunk_coherent' row).")
    return "\n".join(lines)
