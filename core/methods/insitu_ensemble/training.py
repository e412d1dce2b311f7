"""Train an in-situ ensemble (Poehls et al.), score it by station-grouped CV, write it as ONNX.

One call of :func:`train_ensemble` makes one ensemble folder:

* for each network architecture (``dense``, ``prob``, ``wdl``) one member per weighting
  scheme (:mod:`core.methods.insitu_ensemble.schemes`), named ``<architecture>_<scheme>``;
* for ``rf`` one forest per soil class (terciles of field capacity by default), named
  ``rf_<scheme><k>``, trained on that class's rows only (:mod:`core.learn.forest`).

The ensemble prediction is the mean of all members and its spread their standard deviation.
Before the final fit on all samples, the same member set is trained and scored in a
station-grouped k-fold cross-validation (and optionally an 80/20 station split stratified by
soil class); the scores go into the model card next to the coarse product's.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ...errors import Canceled
from ...learn import card as card_mod
from ...learn.validation import group_kfold, site_scores, stratified_site_split, summarize_sites
from ...learn.features import FEATURES, InputEncoder, check_feature_names
from ...learn.forest import ForestConfig, ForestMember
from ...learn.mlp import ARCHITECTURES_NN, MLP, MLPConfig
from ...learn.onnx_export import OPSET, forest_to_onnx, mlp_to_onnx, model_sha256
from .samples import Samples
from .schemes import SCHEMES, get_scheme

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]

#: File name of the optional retraining state (a joblib file whose sha256 the cards record).
STATE_FILE = "training_state.joblib"
#: Written into the cards as it was when the bundled ensembles were made (their bytes stay the same).
PACKAGE = "soil_moisture_downscaling.core.ensemble"


@dataclass(frozen=True)
class MemberSpec:
    """One member: its name, architecture and weighting scheme (or soil class for ``rf``)."""

    name: str
    architecture: str
    scheme: str
    soil_class: int = -1  # rf only


@dataclass
class ProtocolResult:
    """Scores of one evaluation protocol (per site and summarised over sites)."""

    protocol: str
    n_sites: int
    summary: dict[str, dict]          # "ensemble" | "coarse" | member name | "ensemble_<arch>" → stats
    sites: dict[str, dict[str, dict]]  # same keys → {site: metrics}
    beats_ensemble: dict[str, list[str]]  # metric → members better than the ensemble (mean over sites)


@dataclass
class TrainingReport:
    """What :func:`train_ensemble` did.

    Attributes
    ----------
    name : str
    out_folder : str or None
    members : list of MemberSpec
    feature_names : list of str
    n_samples, n_sites : int
    evaluations : dict of str → ProtocolResult
        ``"cv_<k>fold"`` and, when asked, ``"holdout_80_20"``.
    files : dict of str → int
        Written file names and their sizes in bytes.
    """

    name: str
    out_folder: Optional[str]
    members: list[MemberSpec]
    feature_names: list[str]
    n_samples: int
    n_sites: int
    evaluations: dict[str, ProtocolResult] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    def format(self) -> str:
        """A plain-text table of the evaluations (mean / median site ubRMSE and R)."""
        lines = [f"Ensemble '{self.name}': {len(self.members)} members, inputs {self.feature_names}, "
                 f"{self.n_samples} samples at {self.n_sites} sites"]
        for res in self.evaluations.values():
            lines.append(f"\n{res.protocol} ({res.n_sites} test sites; per-site metrics, mean | median)")
            lines.append(f"  {'model':<28}{'ubRMSE':>17}{'R':>17}{'bias':>17}")
            for key, st in res.summary.items():
                mean, med = st["mean"], st["median"]
                lines.append(f"  {key:<28}{mean['ubrmse']:>8.4f} | {med['ubrmse']:<6.4f}"
                             f"{mean['r']:>8.3f} | {med['r']:<6.3f}{mean['bias']:>8.4f} | {med['bias']:<7.4f}")
            for metric, names in res.beats_ensemble.items():
                lines.append(f"  members better than the ensemble on mean site {metric}: {', '.join(names) or 'none'}")
        if self.files:
            lines.append("\nfiles: " + ", ".join(f"{k} ({v / 1024:.0f} KiB)" for k, v in self.files.items()))
        return "\n".join(lines)


def plan_members(architectures: Sequence[str], schemes: Sequence[str], soil_classes: Sequence[int],
                 soil_class_scheme: str = "field_capacity") -> list[MemberSpec]:
    """Member list for the given architectures and schemes (see the module docstring)."""
    out = []
    for arch in architectures:
        if arch in ARCHITECTURES_NN:
            out += [MemberSpec(f"{arch}_{s}", arch, s) for s in schemes]
        elif arch == "rf":
            out += [MemberSpec(f"rf_{soil_class_scheme}{k}", "rf", soil_class_scheme, int(k)) for k in soil_classes]
        else:
            raise ValueError(f"Unknown architecture '{arch}': choose among {(*ARCHITECTURES_NN, 'rf')}")
    if not out:
        raise ValueError("No member to train: give at least one architecture (and a scheme for networks)")
    return out


def train_ensemble(samples: Samples, feature_names: Sequence[str], architectures: Sequence[str],
                   schemes: Sequence[str], cv_folds: int, seed: int, out_folder: Optional[str],
                   progress: Optional[ProgressFn] = None, is_canceled: Optional[CancelFn] = None, *,
                   name: str = "ensemble", description: str = "",
                   mlp_config: Optional[MLPConfig] = None, forest_config: Optional[ForestConfig] = None,
                   soil_class_scheme: str = "field_capacity", holdout_fraction: float = 0.0,
                   save_training_state: bool = False) -> TrainingReport:
    """Train, evaluate and write one ensemble.

    Parameters
    ----------
    samples : Samples
        Training samples (e.g. :func:`core.methods.insitu_ensemble.samples.samples_from_station_table`); must
        contain every name of ``feature_names`` among its columns.
    feature_names : sequence of str
        Inputs of the ensemble, in the column order the written models expect.
    architectures : sequence of {"dense", "prob", "wdl", "rf"}
    schemes : sequence of str
        Weighting schemes of the network members (:data:`core.methods.insitu_ensemble.schemes.SCHEMES`).
    cv_folds : int
        Station-grouped folds of the cross-validation; 0 or 1 skips it.
    seed : int
        Seed of the folds, the splits and every member.
    out_folder : str or None
        Ensemble folder to write (created if needed; earlier ``.onnx``/``.joblib`` files there are
        replaced). None evaluates only.
    progress : callable(fraction, message), optional
    is_canceled : callable() → bool, optional
        Polled between members and once per epoch; :class:`core.errors.Canceled` is raised, and
        nothing is written, when it returns True.
    name, description : str
        For the model card.
    mlp_config, forest_config : optional
        Hyper-parameters (architecture and seed of ``mlp_config`` are set per member).
    soil_class_scheme : str
        Scheme whose classes split the ``rf`` forests (the paper's texture classes).
    holdout_fraction : float
        When > 0, also score an 80/20-style station split stratified by soil class.
    save_training_state : bool
        Also write :data:`STATE_FILE` (the in-memory members) for retraining; its sha256 is
        recorded in the cards and checked before it is ever loaded.

    Returns
    -------
    TrainingReport
    """
    feature_names = check_feature_names(feature_names)
    missing = [f for f in feature_names if f not in samples.feature_names]
    if missing:
        raise ValueError(f"The samples have no column for {missing}")
    cols = [samples.feature_names.index(f) for f in feature_names]
    data = Samples(samples.X[:, cols], samples.y, samples.site_id, samples.date, samples.coarse_sm,
                   feature_names, samples.attributes, samples.source)
    for s in schemes:
        get_scheme(s)
    mlp_config = mlp_config or MLPConfig()
    forest_config = forest_config or ForestConfig()
    soil_scheme = get_scheme(soil_class_scheme)
    all_soil = soil_scheme.classes(data.attributes, data.site_id)
    soil_classes = sorted({int(k) for k in np.unique(all_soil) if int(k) >= 0}) if "rf" in architectures else []
    members = plan_members(architectures, schemes, soil_classes, soil_class_scheme)
    report = TrainingReport(name, out_folder, members, feature_names, len(data), int(data.sites.size))

    protocols: list[tuple[str, list[np.ndarray]]] = []
    if cv_folds and cv_folds > 1:
        folds = group_kfold(data.site_id, cv_folds, seed)
        protocols.append((f"cv_{cv_folds}fold", [folds == k for k in range(cv_folds)]))
    if holdout_fraction > 0:
        protocols.append(("holdout_80_20", [stratified_site_split(data.site_id, all_soil, holdout_fraction, seed)]))
    n_steps = (sum(len(t) for _, t in protocols) + 1) * len(members)
    step = [0]

    def tick(msg: str) -> None:
        if is_canceled is not None and is_canceled():
            raise Canceled("Training canceled")
        if progress is not None:
            progress(min(step[0] / n_steps, 1.0), msg)
        step[0] += 1

    for proto, tests in protocols:
        preds = {m.name: np.full(len(data), np.nan) for m in members}
        tested = np.zeros(len(data), dtype=bool)
        for k, test in enumerate(tests):
            train = data.subset(~test)
            fitted = _fit_members(train, members, mlp_config, forest_config, seed, k + 1,
                                  lambda m: tick(f"{proto}: fold {k + 1}/{len(tests)}, member {m}"), is_canceled)
            for m in members:
                if fitted.get(m.name) is not None:
                    preds[m.name][test] = _predict(fitted[m.name], data.X[test])
            tested |= test
        report.evaluations[proto] = _score(proto, data.subset(tested), {k: v[tested] for k, v in preds.items()},
                                           members)

    final = _fit_members(data, members, mlp_config, forest_config, seed, 0,
                         lambda m: tick(f"final fit: member {m}"), is_canceled)
    if out_folder is not None:
        if progress is not None:
            progress(0.99, f"writing {len(members)} members to {out_folder}")
        report.files = _write(data, final, members, report, out_folder, name, description, save_training_state)
    if progress is not None:
        progress(1.0, "done")
    return report


# ------------------------------------------------------------------------------------ fitting
def _member_seed(seed: int, fold: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(fold), int(index)]).generate_state(1)[0])


def _fit_members(data: Samples, members: Sequence[MemberSpec], mlp_config: MLPConfig,
                 forest_config: ForestConfig, seed: int, fold: int, tick: Callable[[str], None],
                 is_canceled: Optional[CancelFn]) -> dict:
    """Train every member on ``data``; an rf member whose soil class is absent gives None."""
    out: dict = {}
    cat_cols = [j for j, f in enumerate(data.feature_names) if FEATURES[f].encoding == "one_hot"]
    for i, m in enumerate(members):
        tick(m.name)
        s = _member_seed(seed, fold, i)
        scheme = get_scheme(m.scheme)
        if m.architecture == "rf":
            cls = scheme.classes(data.attributes, data.site_id)
            rows = np.asarray(cls) == m.soil_class
            if np.unique(data.site_id[rows]).size < 2:
                out[m.name] = None
                continue
            fm = ForestMember(dataclasses.replace(forest_config, seed=s), cat_cols)
            fm.soil_edges = _edges(scheme, data)
            out[m.name] = fm.fit(data.X[rows], data.y[rows])
        else:
            w = scheme.weights(data.attributes, data.site_id)
            cfg = dataclasses.replace(mlp_config, architecture=m.architecture, seed=s)
            out[m.name] = MLP(cfg, data.feature_names).fit(data.X, data.y, w, data.site_id, is_canceled)
    return out


def _edges(scheme, data: Samples) -> list[float]:
    from ...learn.weights import quantile_edges

    if scheme.binning != "quantile":
        return []
    return [float(e) for e in quantile_edges(np.asarray(data.attributes[scheme.attribute], dtype=float),
                                             scheme.n_bins, data.site_id)]


def _predict(model, X: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(X), dtype=np.float64)


def _score(proto: str, data: Samples, preds: dict[str, np.ndarray], members: Sequence[MemberSpec]) -> ProtocolResult:
    stack = np.stack([preds[m.name] for m in members])
    with np.errstate(invalid="ignore"):
        ens = np.nanmean(np.where(np.isfinite(stack), stack, np.nan), axis=0) if stack.size else stack
    estimates = {"ensemble": ens, "coarse": data.coarse_sm.astype(np.float64)}
    archs = sorted({m.architecture for m in members})
    if len(archs) > 1:
        for a in archs:
            idx = [i for i, m in enumerate(members) if m.architecture == a]
            estimates[f"ensemble_{a}"] = np.nanmean(stack[idx], axis=0)
    for m in members:
        estimates[m.name] = preds[m.name]
    sites = {k: site_scores(data.y, v, data.site_id) for k, v in estimates.items()}
    summary = {k: {s: summarize_sites(v)[s] for s in ("mean", "median")} for k, v in sites.items()}
    beats = {"ubrmse": [m.name for m in members if summary[m.name]["mean"]["ubrmse"] < summary["ensemble"]["mean"]["ubrmse"]],
             "r": [m.name for m in members if summary[m.name]["mean"]["r"] > summary["ensemble"]["mean"]["r"]]}
    return ProtocolResult(proto, int(data.sites.size), summary, sites, beats)


# ------------------------------------------------------------------------------------ writing
def _card_scores(report: TrainingReport) -> dict:
    out = {}
    for proto, res in report.evaluations.items():
        names = [m.name for m in report.members] + [k for k in res.summary if k.startswith("ensemble_")]
        desc = ("station-grouped k-fold cross-validation (whole stations per fold), per-site metrics"
                if proto.startswith("cv") else "80/20 station split stratified by soil class, per-site metrics")
        out[proto] = {"protocol": desc, "n_sites": res.n_sites, "ensemble": res.summary["ensemble"],
                      "coarse": res.summary["coarse"], "members": {n: res.summary[n] for n in names}}
    return out


def _member_file(m: MemberSpec) -> str:
    return f"{m.name}.onnx"


def _write(data: Samples, fitted: dict, members: Sequence[MemberSpec], report: TrainingReport,
           out_folder: str, name: str, description: str, save_state: bool) -> dict[str, int]:
    import onnx

    members = [m for m in members if fitted.get(m.name) is not None]
    report.members = list(members)
    os.makedirs(out_folder, exist_ok=True)
    cat_cols = [j for j, f in enumerate(data.feature_names) if FEATURES[f].encoding == "one_hot"]
    models = {}
    for m in members:
        mod = fitted[m.name]
        if m.architecture == "rf":
            models[m.name] = forest_to_onnx(mod.model, len(data.feature_names), cat_cols, name=m.name)
        else:
            models[m.name] = mlp_to_onnx(mod, name=m.name)
    hashes = {k: model_sha256(v) for k, v in models.items()}

    artifacts, state_bytes = [], None
    if save_state:
        import joblib

        buf = io.BytesIO()
        joblib.dump({"feature_names": list(data.feature_names), "members": list(members),
                     "models": {m.name: fitted[m.name] for m in members}}, buf)
        state_bytes = buf.getvalue()
        artifacts.append({"file": STATE_FILE, "kind": "joblib training state (members in memory)",
                          "sha256": hashlib.sha256(state_bytes).hexdigest()})

    enc = InputEncoder(list(data.feature_names)).fit(data.X)
    inputs = [{"name": f, "role": FEATURES[f].role, "units": FEATURES[f].units, "encoding": spec, "domain": dom}
              for f, spec, dom in zip(data.feature_names, _encodings(members, enc), enc.domain)]
    outputs = [{"name": "sm", "units": "m3/m3", "description": "downscaled surface soil moisture (member estimate)"}]
    if any(m.architecture == "prob" for m in members):
        outputs.append({"name": "sigma", "units": "m3/m3",
                        "description": "prob members only: the member's own predicted standard deviation"})
    src = data.source or {}
    card_base = {
        "schema_version": card_mod.SCHEMA_VERSION,
        "name": name,
        "description": description,
        "members": [{"name": m.name, "file": _member_file(m), "architecture": m.architecture,
                     "scheme": m.scheme, "sha256": hashes[m.name]} for m in members],
        "inputs": inputs,
        "outputs": outputs,
        "aggregation": "ensemble estimate = mean of the members' 'sm'; spread = standard deviation of the "
                       "members' 'sm' (population, ddof=0)",
        "training_data": {"description": str(src.get("description", "user samples")),
                          "file": str(src.get("file", "")),
                          "period": [str(data.date.min()), str(data.date.max())],
                          "n_sites": int(data.sites.size), "n_samples": int(len(data)),
                          "networks": [str(x) for x in src.get("networks", [])],
                          "coarse_product": str(src.get("coarse_product", "coarse soil moisture (sm_coarse)"))},
        "citations": [str(c) for c in src.get("citations", [])],
        "scores": _card_scores(report),
        "artifacts": artifacts,
        "software": {"package": PACKAGE, "onnx_opset": OPSET},
    }
    written: dict[str, int] = {}
    for m in members:
        model = models[m.name]
        scheme = SCHEMES[m.scheme]
        mod = fitted[m.name]
        if m.architecture == "rf":
            hp = {**dataclasses.asdict(mod.config), "soil_class": m.soil_class, "soil_class_edges": mod.soil_edges,
                  "trained_on": f"rows of soil class {m.soil_class} only"}
            sdesc = f"one forest per soil class: class {m.soil_class} of {scheme.describe()}"
        else:
            hp = {**dataclasses.asdict(mod.config), "n_parameters": mod.n_parameters, "best_epoch": mod.best_epoch}
            sdesc = scheme.describe()
        card = dict(card_base)
        card["member"] = {"name": m.name, "file": _member_file(m), "architecture": m.architecture,
                          "scheme": m.scheme, "scheme_description": sdesc, "paper_scheme": scheme.paper_scheme,
                          "hyperparameters": hp}
        card_mod.write_card(model, card)
        written[_member_file(m)] = _atomic_write(os.path.join(out_folder, _member_file(m)), model.SerializeToString())
    if state_bytes is not None:
        written[STATE_FILE] = _atomic_write(os.path.join(out_folder, STATE_FILE), state_bytes)
    for f in os.listdir(out_folder):  # stale members of an earlier ensemble in this folder
        if (f.endswith(".onnx") or f.endswith(".joblib")) and f not in written:
            os.remove(os.path.join(out_folder, f))
    return written


def _encodings(members: Sequence[MemberSpec], enc: InputEncoder) -> list[dict]:
    """Card ``encoding`` per input: the scaling every network member bakes into its graph
    (each fits it on all its training rows, so all share ``enc``); forests use raw values."""
    has_rf = any(m.architecture == "rf" for m in members)
    has_nn = any(m.architecture != "rf" for m in members)
    out = []
    for s in enc.specs:
        d = dict(s)
        if has_rf:
            d["note"] = "network members; forests use the raw value" if has_nn else "forests use the raw value"
        out.append(d)
    return out


def _atomic_write(path: str, data: bytes) -> int:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return len(data)


def file_sha256(path: str) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()



@dataclass
class EnsembleOptions:
    """What :func:`fit` trains: the inputs, the member set and how it is evaluated."""
    feature_names: Sequence[str] = ("sm_coarse", "mtpi", "lat")
    architectures: Sequence[str] = ("dense",)
    schemes: Sequence[str] = tuple(SCHEMES)
    cv_folds: int = 10
    seed: int = 42
    name: str = "ensemble"
    description: str = ""
    mlp_config: Optional[MLPConfig] = None
    forest_config: Optional[ForestConfig] = None
    soil_class_scheme: str = "field_capacity"
    holdout_fraction: float = 0.0
    save_training_state: bool = False


def fit(samples: Samples, options: Optional[EnsembleOptions] = None, out_folder: Optional[str] = None,
        progress: Optional[ProgressFn] = None, is_canceled: Optional[CancelFn] = None) -> TrainingReport:
    """The method contract's fit: train (and cross-validate) an ensemble on station samples and write
    it to ``out_folder`` as ONNX members with cards; :func:`core.learn.model_folder.Ensemble.load`
    reads it back for :func:`core.methods.insitu_ensemble.apply.predict`."""
    o = options or EnsembleOptions()
    return train_ensemble(samples, o.feature_names, o.architectures, o.schemes, o.cv_folds, o.seed, out_folder,
                          progress, is_canceled, name=o.name, description=o.description, mlp_config=o.mlp_config,
                          forest_config=o.forest_config, soil_class_scheme=o.soil_class_scheme,
                          holdout_fraction=o.holdout_fraction, save_training_state=o.save_training_state)
