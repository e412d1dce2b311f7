"""Method: stacking of boosted trees per terrain zone (the stacking paper on Anhui).

1. :func:`fit` — samples on the coarse grid (covariates aggregated to each coarse cell + day of
   year, pooled over dates, as :mod:`core.methods.trend`); a :class:`core.learn.stacking.Stack`
   (base learners fused by a non-negative meta-learner, grouped K-fold over blocks of coarse cells)
   for the whole scene and one per zone with enough samples. A zone keeps its own stack only where
   it beats the global stack on that zone's held-out cells (do no harm); the comparison is in the
   run log and the report. Permutation importance of every predictor on held-out cells.
2. :func:`predict` — the zoned stack as the trend of the regression pipeline
   (:func:`core.methods.regression.predict`): trend on every fine pixel, coarse residual spread
   back and refined, so each coarse cell's pixels average back to its value.

The stacks are exported to ONNX (one graph per stack: learners side by side + meta-learner) and
predicted through onnxruntime; :meth:`StackingModel.save` writes those graphs with a JSON card
recording their SHA-256, and :meth:`StackingModel.load` checks the hashes before using them.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from ..errors import Canceled, InputError
from ..inputs.roles import Role
from ..inputs.scene import IsCanceled, Progress, Scene
from ..io.atomic import atomic_open, atomic_write_text
from ..io.output import RasterWriter
from ..learn.stacking import LEARNERS, Stack, StackingOptions, missing_packages
from ..raster.align import AlignedBand, BandRef, source_grid
from ..raster.grid import Grid
from ..raster.zones import ZoneRule, decimation_grid, derive_zones
from . import regression
from .pipeline import ResidualOptions
from .result import DownscaleResult, canceled_fn, progress_span
from .trend import coarse_samples

METHOD = "stacking"
CARD_FILE = "card.json"
CARD_SCHEMA_VERSION = 1


@dataclass
class StackingMethodOptions(StackingOptions, ResidualOptions):
    """Stacking options plus zoning, evaluation and the residual step (:class:`~.pipeline.ResidualOptions`)."""
    #: A zone gets its own stack only with at least this many coarse samples (cells × dates).
    min_zone_samples: int = 300
    #: Folds group blocks of ``block_cells`` × ``block_cells`` coarse cells (neighbours are alike).
    block_cells: int = 3
    #: Predictor importance: ``auto`` (SHAP values when the ``shap`` package is installed, else
    #: permutation), ``shap``, ``permutation`` or ``none``.
    importance: str = "auto"
    #: Repeats of each permutation when measuring predictor importance by permutation.
    importance_repeats: int = 3
    block_pixels: int = 1 << 20

    def regression_options(self) -> regression.RegressionOptions:
        """The options of the trend → residual pipeline this method runs."""
        return regression.RegressionOptions(
            regressor=METHOD, seed=self.seed, residual=self.residual, residual_iterations=self.residual_iterations,
            kriging_neighbours=self.kriging_neighbours, variogram_model=self.variogram_model,
            shrink_trend=self.shrink_trend, shrink_residual=self.shrink_residual, coarse_offset=self.coarse_offset,
            block_pixels=self.block_pixels)


class OnnxStack:
    """A stack as its ONNX graph in an onnxruntime session (what prediction uses)."""

    def __init__(self, model_bytes: bytes) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.bytes = model_bytes
        self.session = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.session.run(["sm"], {"X": np.ascontiguousarray(X, dtype=np.float32)})[0].ravel()


@dataclass
class ZonedStack:
    """The trend: a global stack and per-zone stacks, routed by the zone column of ``X``."""
    names: list[str]
    zone_name: Optional[str]
    global_stack: OnnxStack
    zone_stacks: dict[int, OnnxStack] = field(default_factory=dict)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Trend of each row (NaN where a predictor is missing; rows outside every zone use the global stack)."""
        if self.zone_name is None:
            P, zone = X, None
        else:
            zc = self.names.index(self.zone_name)
            P, zone = np.delete(X, zc, axis=1), X[:, zc]
        out = np.full(len(X), np.nan, dtype=np.float32)
        ok = np.isfinite(P).all(axis=1)
        if not ok.any():
            return out
        out[ok] = self.global_stack.predict(P[ok])
        for code, st in self.zone_stacks.items():
            sel = ok & (zone == code)
            if sel.any():
                out[sel] = st.predict(P[sel])
        return out


@dataclass
class StackingModel:
    """A fitted zoned stack, its training log, and the options it was fitted with."""
    options: StackingMethodOptions
    trend: ZonedStack
    training: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return self.trend.names

    def save(self, folder: str) -> str:
        """ONNX graphs (``global.onnx``, ``zone_<k>.onnx``) + ``card.json`` with their SHA-256."""
        os.makedirs(folder, exist_ok=True)
        graphs = {"global.onnx": self.trend.global_stack.bytes}
        graphs.update({f"zone_{k}.onnx": st.bytes for k, st in self.trend.zone_stacks.items()})
        files = []
        for name, blob in graphs.items():
            with atomic_open(os.path.join(folder, name), "wb") as f:
                f.write(blob)
            files.append({"file": name, "sha256": hashlib.sha256(blob).hexdigest()})
        card = {"schema_version": CARD_SCHEMA_VERSION, "method": METHOD, "inputs": self.trend.names,
                "zone_input": self.trend.zone_name, "zones": sorted(self.trend.zone_stacks),
                "options": asdict(self.options), "training": self.training, "files": files,
                "outputs": [{"name": "sm", "units": "m3/m3", "description": "trend on the fine grid"}]}
        atomic_write_text(os.path.join(folder, CARD_FILE), json.dumps(card, indent=1, default=_json))
        return folder

    @classmethod
    def load(cls, folder: str) -> "StackingModel":
        """A model written by :meth:`save`; every graph's hash is checked against the card."""
        path = os.path.join(folder, CARD_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                card = json.load(f)
        except (OSError, ValueError) as exc:
            raise InputError(problem=f"no readable stacking model card ({exc}).", layer=folder,
                             fix="choose a folder written by the stacking method.") from None
        if card.get("method") != METHOD or card.get("schema_version") != CARD_SCHEMA_VERSION:
            raise InputError(problem="this folder does not hold a stacking model.", layer=folder,
                             fix="choose a folder written by the stacking method.")
        blobs = {}
        for entry in card["files"]:
            with open(os.path.join(folder, entry["file"]), "rb") as f:
                blob = f.read()
            if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
                raise InputError(problem=f"{entry['file']} differs from the file the card records (modified or "
                                 "damaged); it is not used.", layer=folder, fix="save the model again.")
            blobs[entry["file"]] = blob
        trend = ZonedStack(card["inputs"], card["zone_input"], OnnxStack(blobs["global.onnx"]),
                           {int(k): OnnxStack(blobs[f"zone_{k}.onnx"]) for k in card["zones"]})
        opts = StackingMethodOptions(**card["options"])
        return cls(opts, trend, card["training"])


def _json(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def zone_feature(scene: Scene) -> Optional[str]:
    """Name of the scene feature read from a zone layer (``None`` without one)."""
    for name in scene.covariate_names:
        lay = scene.feature_layer(name)
        if lay is not None and lay.role is Role.ZONE:
            return name
    return None


def write_dem_zones(dem: BandRef, path: str, rule: Optional[ZoneRule] = None) -> tuple[BandRef, dict]:
    """Derive terrain zones from ``dem`` (on its own grid, decimated) and write them as a GeoTIFF.

    Returns the zone layer's band (to give the scene as a :attr:`Role.ZONE` layer) and what was done.
    """
    rule = rule or ZoneRule()
    src = source_grid(dem)
    grid = decimation_grid(src, rule.radius_m)
    ds_dem = AlignedBand(dem, grid, resampling="average").read()
    zones, info = derive_zones(ds_dem, grid, rule)
    with RasterWriter(path, grid, ["zones"], metadata={"CONTENT": "terrain zones", "RULE": rule.method}) as w:
        w.write(0, next(iter(grid.windows(grid.size + 1))), np.where(zones > 0, zones, np.nan))
        w.commit(overviews=False)
    info["zone_grid"] = {"dx": grid.dx, "dy": grid.dy, "width": grid.width, "height": grid.height}
    return BandRef(path, 1, "terrain zones"), info


def _cell_blocks(cells: np.ndarray, coarse: Grid, b: int) -> np.ndarray:
    row, col = np.divmod(cells, coarse.width)
    return (row // b) * (coarse.width // b + 1) + col // b


def _holdout_scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    r = float(np.corrcoef(pred, y)[0, 1]) if len(y) > 2 and np.std(pred) > 0 and np.std(y) > 0 else float("nan")
    return {"n": int(len(y)), "r": r, "rmse": float(np.sqrt(np.mean((pred - y) ** 2))) if len(y) else float("nan")}


def permutation_importance(fitted: Stack, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                           names: list[str], repeats: int, seed: int) -> list[dict[str, Any]]:
    """Rise of the held-out RMSE when each predictor is shuffled, largest first: the learners of
    ``fitted`` are refitted on 80 % of the groups and combined with its meta-learner's weights, then
    scored on the other 20 % (the last row is that held-out RMSE itself)."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    test_groups = rng.choice(uniq, max(1, len(uniq) // 5), replace=False)
    te = np.isin(groups, test_groups)
    stack = fitted.refit(X[~te], y[~te])
    base = float(np.sqrt(np.mean((stack.predict(X[te]) - y[te]) ** 2)))
    out = []
    for j, name in enumerate(names):
        rises = []
        for _ in range(repeats):
            Xp = X[te].copy()
            Xp[:, j] = rng.permutation(Xp[:, j])
            rises.append(float(np.sqrt(np.mean((stack.predict(Xp) - y[te]) ** 2))) - base)
        out.append({"feature": name, "rmse_rise": float(np.mean(rises)), "sd": float(np.std(rises))})
    return sorted(out, key=lambda d: -d["rmse_rise"]) + [{"feature": "(held-out RMSE)", "rmse_rise": base, "sd": 0.0}]


def shap_importance(stack: Stack, X: np.ndarray, names: list[str], max_rows: int, seed: int) -> list[dict[str, Any]]:
    """Mean |SHAP value| of each predictor for the stacked prediction, on at most ``max_rows`` samples
    (raises ``ImportError`` without the ``shap`` package)."""
    if len(X) > max_rows:
        X = X[np.random.default_rng(seed).choice(len(X), max_rows, replace=False)]
    phi = stack.shap_values(X)
    return sorted(({"feature": n, "mean_abs_shap": float(v)} for n, v in zip(names, np.abs(phi).mean(axis=0))),
                  key=lambda d: -d["mean_abs_shap"])


def fit(scene: Scene, options: Optional[StackingMethodOptions] = None, progress: Optional[Progress] = None,
        is_canceled: Optional[IsCanceled] = None) -> StackingModel:
    """Fit the global and per-zone stacks on the coarse grid of ``scene``."""
    opts = options or StackingMethodOptions()
    prog = progress or (lambda f, m: None)
    canceled = canceled_fn(is_canceled)
    t0 = time.time()
    missing = missing_packages(opts.learners)
    usable = [n for n in opts.learners if n not in missing]
    if not usable:
        raise InputError(problem="none of the chosen base learners is installed.", layer=None,
                         fix="install one (" + "; ".join(f"{LEARNERS[k][0]}: pip install {v}" for k, v in missing.items())
                         + ") or choose a scikit-learn learner.")
    zname = zone_feature(scene)
    names = [n for n in scene.covariate_names if n != zname] + ["doy"]
    all_names = names + ([zname] if zname else [])
    view = scene.training_view(opts.block_pixels, lambda f, m: prog(0.2 * f, m), canceled)
    X, y, cells, dates = coarse_samples(scene, view, names)
    if len(y) < 20:
        raise InputError(problem=f"only {len(y)} coarse samples have soil moisture and every covariate; a stack "
                         "needs at least 20.", layer=scene.sm_bands[0].label,
                         fix="use more dates or a larger area, or check the layers' nodata values.")
    groups = _cell_blocks(cells, scene.coarse, max(opts.block_cells, 1))
    prog(0.22, f"stacking {', '.join(usable)} on {len(y)} coarse samples")
    span = 0.5 if zname else 0.7
    glob = Stack(opts).fit(X, y, groups, progress=progress_span(prog, 0.22, 0.22 + span), is_canceled=canceled)
    training: dict[str, Any] = {"n_samples": int(len(y)), "features": names, "zone_input": zname,
                                "skipped_learners": {k: f"pip install {v}" for k, v in missing.items()},
                                "global": glob.describe()}
    zone_stacks: dict[int, Stack] = {}
    if zname:
        zone = np.nan_to_num(view[(zname, scene.band_index(zname, 0))][cells], nan=0.0)  # a static layer
        table = []
        codes = [int(c) for c in np.unique(zone[np.isfinite(zone)]) if c > 0]
        for i, code in enumerate(codes):
            if canceled():
                raise Canceled()
            sel = zone == code
            row: dict[str, Any] = {"zone": code, "n_samples": int(sel.sum()),
                                   "unzoned": _holdout_scores(glob.oof_prediction[sel], y[sel])}
            if sel.sum() >= opts.min_zone_samples and np.unique(groups[sel]).size >= max(opts.folds, 2):
                st = Stack(opts).fit(X[sel], y[sel], groups[sel])
                row["zoned"] = _holdout_scores(st.oof_prediction, y[sel])
                row["uses"] = "zone stack" if row["zoned"]["rmse"] < row["unzoned"]["rmse"] else "global stack"
                if row["uses"] == "zone stack":
                    zone_stacks[code] = st
                row["weights"] = dict(zip(st.learners, [float(w) for w in st.weights]))
            else:
                row["uses"] = "global stack (too few samples or blocks of cells for its folds)"
            table.append(row)
            prog(0.72 + 0.1 * (i + 1) / len(codes), f"zone {code}: {row['uses']}")
        training["zones"] = table
    training["shap"] = None
    if opts.importance in ("auto", "shap"):
        try:  # SHAP values (the paper's explanation) when the shap package is there
            prog(0.85, "SHAP values of the stack")
            training["shap"] = {"all": shap_importance(glob, X, names, 2000, opts.seed)}
            if zname:
                for code, st in zone_stacks.items():
                    training["shap"][str(code)] = shap_importance(st, X[zone == code], names, 2000, opts.seed)
        except ImportError:
            if opts.importance == "shap":
                raise InputError(problem="SHAP values were asked for, but the shap package is not installed.",
                                 layer=None, fix="pip install shap (in QGIS's Python), or choose permutation "
                                 "importance.") from None
    wants_permutation = opts.importance == "permutation" or (opts.importance == "auto" and training["shap"] is None)
    if wants_permutation and opts.importance_repeats > 0 and np.unique(groups).size >= 5:
        prog(0.88, "permutation importance on held-out cells (pip install shap for SHAP values)")
        training["importance"] = permutation_importance(glob, X, y, groups, names, opts.importance_repeats, opts.seed)
    if opts.shrink_trend:
        prog(0.92, "cross-validating the stack's skill on the coarse field (spatial blocks of cells)")
        Xz = np.column_stack([X, zone]) if zname else X
        refit = _RefitZonedStack(glob, zone_stacks, zone_col=X.shape[1] if zname else None)
        training.update(regression.trend_weight_of(scene, refit, Xz, y, cells, dates, opts.seed))
    if canceled():
        raise Canceled()
    prog(0.97, "exporting the stacks to ONNX")
    trend = ZonedStack(all_names, zname, OnnxStack(glob.to_onnx(len(names)).SerializeToString()),
                       {k: OnnxStack(st.to_onnx(len(names)).SerializeToString()) for k, st in zone_stacks.items()})
    training["seconds"] = time.time() - t0
    prog(1.0, "stack fitted")
    return StackingModel(opts, trend, training)


class _RefitZonedStack:
    """``fit_predict`` for the trend weight: the fitted stacks' learners refitted on the training rows
    (per zone where a zone has its own stack) and combined with their meta-learners' weights."""

    def __init__(self, glob: Stack, zone_stacks: dict[int, Stack], zone_col: Optional[int]) -> None:
        self.glob, self.zone_stacks, self.zone_col = glob, zone_stacks, zone_col

    def fit_predict(self, X_train: np.ndarray, y_train: np.ndarray, X: np.ndarray) -> np.ndarray:
        zc = self.zone_col
        P_train = X_train if zc is None else np.delete(X_train, zc, axis=1)
        P = X if zc is None else np.delete(X, zc, axis=1)
        out = self.glob.refit(P_train, y_train).predict(P).astype(np.float64)
        for code, fitted in self.zone_stacks.items():
            tr, te = X_train[:, zc] == code, X[:, zc] == code
            if tr.sum() >= 10 and te.any():
                out[te] = fitted.refit(P_train[tr], y_train[tr]).predict(P[te])
        return out


def predict(model: StackingModel, scene: Scene, output_path: str, progress: Optional[Progress] = None,
            is_canceled: Optional[IsCanceled] = None, sd_path: Optional[str] = None) -> DownscaleResult:
    """The zoned stack as trend on every fine pixel and date (scaled by its cross-validated weight),
    plus the coarse residual spread by the chosen residual model (:func:`core.methods.regression.predict`)."""
    zname = zone_feature(scene)
    if (zname is None) != (model.trend.zone_name is None):
        raise InputError(problem="the model was fitted " + ("with" if model.trend.zone_name else "without")
                         + " zones, but the layers given now " + ("have none." if zname is None else "include zones."),
                         layer=None, fix="give the same kind of zone layer as when the model was fitted.")
    names = model.trend.names if zname is None else [zname if n == model.trend.zone_name else n
                                                       for n in model.trend.names]
    trend = ZonedStack(names, zname, model.trend.global_stack, model.trend.zone_stacks)
    reg = regression.RegressionModel(names, [n for n in names if n == zname], model.options.regression_options(),
                                     trend, model.training)
    return regression.predict(reg, scene, output_path, progress, is_canceled, method=METHOD, sd_path=sd_path)


def downscale(scene: Scene, output_path: str, options: Optional[StackingMethodOptions] = None,
              progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None,
              sd_path: Optional[str] = None) -> DownscaleResult:
    """:func:`fit` then :func:`predict` on the same scene (the Processing algorithm's path)."""
    t0 = time.time()
    model = fit(scene, options, progress_span(progress, 0.0, 0.4), is_canceled)
    result = predict(model, scene, output_path, progress_span(progress, 0.4, 1.0), is_canceled, sd_path)
    result.seconds = time.time() - t0
    result.extra["model"] = model
    return result
