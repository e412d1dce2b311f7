"""Train an in-situ ensemble (Poehls et al.), score it by station-grouped CV, write it as ONNX.

One call of :func:`train_ensemble` makes one ensemble folder:

* for each network architecture (``dense``, ``prob``, ``wdl``) one member per weighting
  scheme (:mod:`core.methods.insitu_ensemble.schemes`), named ``<architecture>_<scheme>``;
* for ``rf`` one forest per soil class (terciles of field capacity by default), named
  ``rf_<scheme><k>``, trained on that class's rows only (:mod:`core.learn.forest`);
* for ``hgb`` one boosted member per weighting scheme, named ``hgb_<scheme>``: a straight line on
  the coarse product plus histogram gradient boosting of what it leaves, both with the scheme's
  sample weights (:mod:`core.learn.boosting`).

The ensemble prediction is the mean of all members and its spread their standard deviation.
Before the final fit on all samples, the same member set is trained and scored in a
station-grouped k-fold cross-validation (and optionally an 80/20 station split stratified by
soil class); the scores go into the model card next to two honest baselines on the same rows:
the coarse product as it is, and the coarse product linearly rescaled (``a + b · coarse``, least
squares on the training stations of each fold). The out-of-fold residuals calibrate the
ensemble's interval (:mod:`core.learn.calibration`); its coverage at held-out stations goes
into the card too.
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
from ...learn.boosting import BoostingConfig, BoostingMember
from ...learn.calibration import IntervalCalibration, calibrate_interval, coverage, cross_fitted_coverage
from ...learn.forest import ForestConfig, ForestMember
from ...learn.mlp import ARCHITECTURES_NN, MLP, MLPConfig
from ...learn.onnx_export import OPSET, boosting_to_onnx, forest_to_onnx, mlp_to_onnx, model_sha256
from .samples import Samples
from .schemes import SCHEMES, get_scheme

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]

#: File name of the optional retraining state (a joblib file whose sha256 the cards record).
STATE_FILE = "training_state.joblib"
#: Written into the cards as it was when the bundled ensembles were made (their bytes stay the same).
PACKAGE = "soil_moisture_downscaling.core.ensemble"
#: Architectures whose members are trees on raw inputs (no scaling in the graph).
_TREES = ("rf", "hgb")


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
    interval: dict = field(default_factory=dict)  # level, coverage at the test stations, ...
    rows: Optional[np.ndarray] = None      # indices of the scored samples (not saved)
    estimate: Optional[np.ndarray] = None  # ensemble estimate at those rows
    spread: Optional[np.ndarray] = None    # members' standard deviation at those rows

    def beats_rescaled(self) -> bool:
        """True when the ensemble beats the rescaled coarse product on mean station R *and* ubRMSE."""
        e, c = self.summary["ensemble"]["mean"], self.summary["coarse_rescaled"]["mean"]
        return bool(e["r"] > c["r"] and e["ubrmse"] < c["ubrmse"])


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
    calibration: Optional[IntervalCalibration] = None
    refused: str = ""  # why nothing was written (require_beating_rescaled)

    def format(self) -> str:
        """A plain-text table of the evaluations (mean / median site ubRMSE and R)."""
        lines = [f"Ensemble '{self.name}': {len(self.members)} members, inputs {self.feature_names}, "
                 f"{self.n_samples} samples at {self.n_sites} sites"]
        for res in self.evaluations.values():
            lines.append(f"\n{res.protocol} ({res.n_sites} test sites; per-site metrics, mean | median)")
            lines.append(f"  {'model':<28}{'ubRMSE':>17}{'R':>17}{'bias':>17}{'amplitude':>17}")
            for key, st in res.summary.items():
                mean, med = st["mean"], st["median"]
                lines.append(f"  {key:<28}{mean['ubrmse']:>8.4f} | {med['ubrmse']:<6.4f}"
                             f"{mean['r']:>8.3f} | {med['r']:<6.3f}{mean['bias']:>8.4f} | {med['bias']:<7.4f}"
                             f"{mean['amplitude']:>8.3f} | {med['amplitude']:<6.3f}")
            for metric, names in res.beats_ensemble.items():
                lines.append(f"  members better than the ensemble on mean site {metric}: {', '.join(names) or 'none'}")
            verdict = "beats" if res.beats_rescaled() else "does NOT beat"
            lines.append(f"  the ensemble {verdict} the rescaled coarse product on mean site R and ubRMSE")
            if res.interval:
                iv = res.interval
                lines.append(f"  {iv['level']:.0%} interval (scale·(spread + floor)): holds {iv['coverage']:.1%} of the "
                             f"test values (mean ± 2 spread, uncalibrated: {iv['raw_2sd_coverage']:.1%})")
        if self.refused:
            lines.append(f"\nNOT WRITTEN: {self.refused}")
        if self.files:
            lines.append("\nfiles: " + ", ".join(f"{k} ({v / 1024:.0f} KiB)" for k, v in self.files.items()))
        return "\n".join(lines)


def plan_members(architectures: Sequence[str], schemes: Sequence[str], soil_classes: Sequence[int],
                 soil_class_scheme: str = "field_capacity") -> list[MemberSpec]:
    """Member list for the given architectures and schemes (see the module docstring)."""
    out = []
    for arch in architectures:
        if arch in ARCHITECTURES_NN or arch == "hgb":
            out += [MemberSpec(f"{arch}_{s}", arch, s) for s in schemes]
        elif arch == "rf":
            out += [MemberSpec(f"rf_{soil_class_scheme}{k}", "rf", soil_class_scheme, int(k)) for k in soil_classes]
        else:
            raise ValueError(f"Unknown architecture '{arch}': choose among {(*ARCHITECTURES_NN, 'rf', 'hgb')}")
    if not out:
        raise ValueError("No member to train: give at least one architecture (and a scheme for networks)")
    return out


def train_ensemble(samples: Samples, feature_names: Sequence[str], architectures: Sequence[str],
                   schemes: Sequence[str], cv_folds: int, seed: int, out_folder: Optional[str],
                   progress: Optional[ProgressFn] = None, is_canceled: Optional[CancelFn] = None, *,
                   name: str = "ensemble", description: str = "",
                   mlp_config: Optional[MLPConfig] = None, forest_config: Optional[ForestConfig] = None,
                   boosting_config: Optional[BoostingConfig] = None,
                   soil_class_scheme: str = "field_capacity", holdout_fraction: float = 0.0,
                   save_training_state: bool = False, interval_level: float = 0.9,
                   require_beating_rescaled: bool = False, tier: Optional[dict] = None) -> TrainingReport:
    """Train, evaluate and write one ensemble.

    Parameters
    ----------
    samples : Samples
        Training samples (e.g. :func:`core.methods.insitu_ensemble.samples.samples_from_station_table`); must
        contain every name of ``feature_names`` among its columns.
    feature_names : sequence of str
        Inputs of the ensemble, in the column order the written models expect.
    architectures : sequence of {"dense", "prob", "wdl", "rf", "hgb"}
    schemes : sequence of str
        Weighting schemes of the network and boosted members (:data:`core.methods.insitu_ensemble.schemes.SCHEMES`).
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
    mlp_config, forest_config, boosting_config : optional
        Hyper-parameters (architecture and seed are set per member).
    soil_class_scheme : str
        Scheme whose classes split the ``rf`` forests (the paper's texture classes).
    holdout_fraction : float
        When > 0, also score an 80/20-style station split stratified by soil class.
    save_training_state : bool
        Also write :data:`STATE_FILE` (the in-memory members) for retraining; its sha256 is
        recorded in the cards and checked before it is ever loaded.
    interval_level : float
        Share of held-out station values the calibrated interval is to hold (needs the CV).
    require_beating_rescaled : bool
        Write nothing (and say why in :attr:`TrainingReport.refused`) unless the ensemble beats the
        rescaled coarse product on mean station R and ubRMSE in the cross-validation — the rule
        the bundled ensembles follow.
    tier : dict, optional
        ``{name, rank, layers}`` of a bundled feature tier, for the card.

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
    configs = {"mlp": mlp_config, "forest": forest_config, "boosting": boosting_config or BoostingConfig()}
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

    fold_of = {}
    for proto, tests in protocols:
        preds = {m.name: np.full(len(data), np.nan) for m in members}
        rescaled = np.full(len(data), np.nan)
        fold_of[proto] = np.full(len(data), -1)
        tested = np.zeros(len(data), dtype=bool)
        for k, test in enumerate(tests):
            train = data.subset(~test)
            rescaled[test] = _rescale(train, data.coarse_sm[test])
            fold_of[proto][test] = k
            fitted = _fit_members(train, members, configs, seed, k + 1,
                                  lambda m: tick(f"{proto}: fold {k + 1}/{len(tests)}, member {m}"), is_canceled)
            for m in members:
                if fitted.get(m.name) is not None:
                    preds[m.name][test] = _predict(fitted[m.name], data.X[test])
            tested |= test
        report.evaluations[proto] = _score(proto, data.subset(tested), {k: v[tested] for k, v in preds.items()},
                                           members, rescaled[tested])
        report.evaluations[proto].rows = np.flatnonzero(tested)
    _calibrate(report, data, fold_of, interval_level)
    cv = next((r for p, r in report.evaluations.items() if p.startswith("cv_")), None)
    if require_beating_rescaled and cv is not None and not cv.beats_rescaled():
        e, c = cv.summary["ensemble"]["mean"], cv.summary["coarse_rescaled"]["mean"]
        report.refused = (f"in the {cv.protocol} the ensemble does not beat the rescaled coarse product on both mean "
                          f"station R ({e['r']:.3f} vs {c['r']:.3f}) and ubRMSE ({e['ubrmse']:.4f} vs "
                          f"{c['ubrmse']:.4f} m³/m³)")
        return report

    final = _fit_members(data, members, configs, seed, 0,
                         lambda m: tick(f"final fit: member {m}"), is_canceled)
    if out_folder is not None:
        if progress is not None:
            progress(0.99, f"writing {len(members)} members to {out_folder}")
        report.files = _write(data, final, members, report, out_folder, name, description, save_training_state,
                              tier)
    if progress is not None:
        progress(1.0, "done")
    return report


# ------------------------------------------------------------------------------------ fitting
def _member_seed(seed: int, fold: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(fold), int(index)]).generate_state(1)[0])


def _fit_members(data: Samples, members: Sequence[MemberSpec], configs: dict, seed: int, fold: int,
                 tick: Callable[[str], None], is_canceled: Optional[CancelFn]) -> dict:
    """Train every member on ``data``; an rf member whose soil class is absent gives None.

    ``configs`` holds the ``"mlp"``, ``"forest"`` and ``"boosting"`` hyper-parameters."""
    out: dict = {}
    coarse_col = data.feature_names.index("sm_coarse") if "sm_coarse" in data.feature_names else None
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
            fm = ForestMember(dataclasses.replace(configs["forest"], seed=s), cat_cols)
            fm.soil_edges = _edges(scheme, data)
            out[m.name] = fm.fit(data.X[rows], data.y[rows])
        elif m.architecture == "hgb":
            w = scheme.weights(data.attributes, data.site_id)
            bm = BoostingMember(dataclasses.replace(configs["boosting"], seed=s), cat_cols, coarse_col)
            out[m.name] = bm.fit(data.X, data.y, w)
        else:
            w = scheme.weights(data.attributes, data.site_id)
            cfg = dataclasses.replace(configs["mlp"], architecture=m.architecture, seed=s)
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


def _rescale(train: Samples, coarse: np.ndarray) -> np.ndarray:
    """The coarse product linearly rescaled: least-squares line in-situ ~ coarse on ``train``."""
    x = train.coarse_sm.astype(np.float64)
    y = train.y.astype(np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    b, a = np.polyfit(x[ok], y[ok], 1)
    return a + b * np.asarray(coarse, dtype=np.float64)


def _calibrate(report: TrainingReport, data: Samples, fold_of: dict, level: float) -> None:
    """Interval calibration on the CV's out-of-fold residuals; coverage per protocol (see
    :mod:`core.learn.calibration`): in the CV cross-fitted over folds, on the holdout with a scale
    fitted on the CV rows of the holdout's training stations only."""
    cv_proto = next((p for p in report.evaluations if p.startswith("cv_")), None)
    if cv_proto is None:
        return
    cv = report.evaluations[cv_proto]
    obs = data.y[cv.rows].astype(np.float64)
    report.calibration = calibrate_interval(obs, cv.estimate, cv.spread, level)
    for proto, res in report.evaluations.items():
        o = data.y[res.rows].astype(np.float64)
        if proto == cv_proto:
            inside = cross_fitted_coverage(o, res.estimate, res.spread, fold_of[proto][res.rows], level)
        else:
            cal_rows = ~np.isin(data.site_id[cv.rows], data.site_id[res.rows])
            cal = calibrate_interval(obs[cal_rows], cv.estimate[cal_rows], cv.spread[cal_rows], level)
            inside = np.abs(o - res.estimate) <= cal.half_width(res.spread)
            inside = np.where(np.isfinite(res.estimate), inside.astype(np.float64), np.nan)
        sites = data.site_id[res.rows]
        per_site = [np.nanmean(inside[sites == s]) for s in np.unique(sites) if np.isfinite(inside[sites == s]).any()]
        res.interval = {"level": float(level), "coverage": float(np.nanmean(inside)),
                        "coverage_median_station": float(np.median(per_site)),
                        "raw_2sd_coverage": coverage(o, res.estimate, 2.0 * res.spread),
                        "mean_half_width": float(np.nanmean(report.calibration.half_width(res.spread)))}


def _score(proto: str, data: Samples, preds: dict[str, np.ndarray], members: Sequence[MemberSpec],
           rescaled: np.ndarray) -> ProtocolResult:
    stack = np.stack([preds[m.name] for m in members])
    with np.errstate(invalid="ignore"):
        ens = np.nanmean(np.where(np.isfinite(stack), stack, np.nan), axis=0) if stack.size else stack
        spread = np.nanstd(np.where(np.isfinite(stack), stack, np.nan), axis=0) if stack.size else stack
    estimates = {"ensemble": ens, "coarse": data.coarse_sm.astype(np.float64), "coarse_rescaled": rescaled}
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
    return ProtocolResult(proto, int(data.sites.size), summary, sites, beats, estimate=ens, spread=spread)


# ------------------------------------------------------------------------------------ writing
def _card_scores(report: TrainingReport) -> dict:
    out = {}
    for proto, res in report.evaluations.items():
        names = [m.name for m in report.members] + [k for k in res.summary if k.startswith("ensemble_")]
        desc = ("station-grouped k-fold cross-validation (whole stations per fold), per-site metrics"
                if proto.startswith("cv") else "80/20 station split stratified by soil class, per-site metrics")
        out[proto] = {"protocol": desc, "n_sites": res.n_sites, "ensemble": res.summary["ensemble"],
                      "coarse": res.summary["coarse"], "coarse_rescaled": res.summary["coarse_rescaled"],
                      "members": {n: res.summary[n] for n in names}}
        if res.interval:
            out[proto]["interval"] = dict(res.interval)
    return out


def _member_file(m: MemberSpec) -> str:
    return f"{m.name}.onnx"


def _write(data: Samples, fitted: dict, members: Sequence[MemberSpec], report: TrainingReport,
           out_folder: str, name: str, description: str, save_state: bool,
           tier: Optional[dict] = None) -> dict[str, int]:
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
        elif m.architecture == "hgb":
            models[m.name] = boosting_to_onnx(mod, len(data.feature_names), name=m.name)
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
    cal = report.calibration
    if cal is not None:
        card_base["uncertainty"] = {
            "method": "normalised split-conformal interval on the station-grouped CV residuals "
                      "(core.learn.calibration)",
            "level": cal.level, "scale": cal.scale, "floor": cal.floor,
            "half_width": "scale * (spread + floor), m3/m3; spread = standard deviation of the members",
            "coverage": {p: r.interval["coverage"] for p, r in report.evaluations.items() if r.interval}}
    site_level = [float(np.nanmean(data.coarse_sm[data.site_id == st])) for st in data.sites]
    site_level = [v for v in site_level if np.isfinite(v)]
    if site_level:
        q = np.quantile(site_level, [0.0, 0.05, 0.5, 0.95, 1.0])
        card_base["coarse_level"] = dict(zip(("station_mean_min", "station_mean_p05", "station_mean_median",
                                              "station_mean_p95", "station_mean_max"), map(float, q)))
    if tier:
        card_base["tier"] = {"name": str(tier["name"]), "rank": int(tier["rank"]),
                             "layers": [str(x) for x in tier["layers"]]}
    written: dict[str, int] = {}
    for m in members:
        model = models[m.name]
        scheme = SCHEMES[m.scheme]
        mod = fitted[m.name]
        if m.architecture == "rf":
            hp = {**dataclasses.asdict(mod.config), "soil_class": m.soil_class, "soil_class_edges": mod.soil_edges,
                  "trained_on": f"rows of soil class {m.soil_class} only"}
            sdesc = f"one forest per soil class: class {m.soil_class} of {scheme.describe()}"
        elif m.architecture == "hgb":
            hp = {**dataclasses.asdict(mod.config), "line_slope": mod.slope, "line_intercept": mod.intercept,
                  "n_iterations": int(mod.model.n_iter_)}
            sdesc = scheme.describe() + "; line on sm_coarse + histogram gradient boosting of its residual"
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
    trees = {m.architecture for m in members if m.architecture in _TREES}
    has_nn = any(m.architecture not in _TREES for m in members)
    what = "forests" if trees == {"rf"} else "tree members"
    out = []
    for s in enc.specs:
        d = dict(s)
        if trees:
            d["note"] = f"network members; {what} use the raw value" if has_nn else f"{what} use the raw value"
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
    boosting_config: Optional[BoostingConfig] = None
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
                          forest_config=o.forest_config, boosting_config=o.boosting_config,
                          soil_class_scheme=o.soil_class_scheme,
                          holdout_fraction=o.holdout_fraction, save_training_state=o.save_training_state)
