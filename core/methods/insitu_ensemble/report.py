"""The training report of an ensemble as one self-contained HTML page.

For each evaluation protocol of a :class:`core.methods.insitu_ensemble.training.TrainingReport` (station-grouped
k-fold CV, optional station holdout): the mean and median over test stations of ubRMSE, R,
bias, RMSE and amplitude for the coarse product as it is and linearly rescaled on the training
stations, the ensemble, each architecture's sub-ensemble and every member; whether the ensemble
beats the rescaled coarse product; which members beat the ensemble; the coverage of the
calibrated interval; then the per-station ubRMSE and R of all of them.
"""
from __future__ import annotations

import html
import math
from typing import Optional, Sequence

from ...io.html_page import html_document
from .samples import Samples

#: Summary columns: metric key, label, what is better.
_METRICS: tuple[tuple[str, str, str], ...] = (
    ("ubrmse", "ubRMSE (m³/m³)", "↓ better"), ("r", "R", "↑ better"), ("bias", "Bias (m³/m³)", "0 best"),
    ("rmse", "RMSE (m³/m³)", "↓ better"), ("amplitude", "Amplitude (σ est / σ in-situ)", "1 best"),
)

_CSS = """
tr.coarse td{background:#f7f7f7;color:#444}tr.ens td{background:#eef6ee;font-weight:600}
td.beats{font-weight:700;color:#1d6b33}
.wide{overflow-x:auto}
"""


def training_report_html(report, samples: Optional[Samples] = None, title: str = "") -> str:
    """HTML page of a training run (see the module docstring).

    Parameters
    ----------
    report : core.methods.insitu_ensemble.training.TrainingReport
    samples : Samples, optional
        The training samples, for their provenance (``source``) and period.
    title : str
        Page title; default ``"Ensemble '<name>': training report"``.
    """
    title = title or f"Ensemble '{report.name}': training report"
    src = dict(samples.source) if samples is not None else {}
    parts = [f"<h1>{_e(title)}</h1>",
             f"<p class='meta'>{len(report.members)} members · inputs {_e(', '.join(report.feature_names))} · "
             f"{report.n_samples} samples at {report.n_sites} stations"
             + (f" · {_e(src['period'][0])} … {_e(src['period'][1])}" if len(src.get("period") or []) == 2 else "")
             + (f" · saved in <code>{_e(report.out_folder)}</code>" if report.out_folder else "") + "</p>"]
    if src.get("description"):
        parts.append(f"<p class='note'>Training data: {_e(src['description'])}"
                     + (f"; coarse product: {_e(src['coarse_product'])}" if src.get("coarse_product") else "") + ".</p>")
    for key, label in (("stations_outside", "outside the fine grid"),
                       ("stations_too_few", "with too few usable samples")):
        if src.get(key):
            parts.append(f"<p class='note'>Stations left out ({label}): {_e(', '.join(map(str, src[key])))}.</p>")
    parts.append(
        "<div class='defs'>Scores are computed per test station and then summarised by their mean and median "
        "over stations (Poehls et al., Table 6). Every split keeps whole stations together, so each score is that "
        "of stations the models never saw. ubRMSE = sqrt(RMSE² − bias²); bias = mean(estimate − in-situ). "
        "The ensemble estimate is the mean of its members; <i>ensemble_&lt;architecture&gt;</i> is the mean of "
        "that architecture's members. The coarse product is scored on the same samples, as it is and "
        "<i>coarse_rescaled</i>: a + b · coarse with a, b fitted by least squares on the training stations of each "
        "fold — the baseline an ensemble has to beat. Amplitude = standard deviation of the estimate over that of "
        "the in-situ series at a station (below 1: flattened).</div>")
    members = [m.name for m in report.members]
    parts.append("<h2>Members</h2><table><tr><th class='txt'>member</th><th>architecture</th>"
                 "<th class='txt'>scheme / soil class</th></tr>"
                 + "".join(f"<tr><td class='txt'>{_e(m.name)}</td><td>{_e(m.architecture)}</td>"
                           f"<td class='txt'>{_e(m.scheme)}{'' if m.soil_class < 0 else f' class {m.soil_class}'}</td></tr>"
                           for m in report.members) + "</table>")
    if not report.evaluations:
        parts.append("<p class='note'>No evaluation was run (cross-validation folds 0 and no holdout).</p>")
    for res in report.evaluations.values():
        parts.append(_protocol_section(res, members))
    if report.files:
        parts.append("<h2>Files</h2><ul>" + "".join(f"<li><code>{_e(f)}</code> ({size / 1024:.0f} KiB)</li>"
                                                     for f, size in report.files.items()) + "</ul>")
    return html_document(title, parts, _CSS)


def _protocol_section(res, members: Sequence[str]) -> str:
    name = _protocol_label(res.protocol)
    keys = ["coarse", *(["coarse_rescaled"] if "coarse_rescaled" in res.summary else []), "ensemble",
            *sorted(k for k in res.summary if k.startswith("ensemble_")),
            *[m for m in members if m in res.summary]]
    beats = {metric: set(names) for metric, names in res.beats_ensemble.items()}
    head = "".join(f"<th colspan='2'>{_e(label)}<small>{_e(hint)}</small></th>" for _, label, hint in _METRICS)
    sub = "".join("<th>mean</th><th>median</th>" for _ in _METRICS)
    rows = []
    for k in keys:
        st = res.summary[k]
        cls = " class='coarse'" if k.startswith("coarse") else (" class='ens'" if k == "ensemble" else "")
        cells = []
        for metric, _, _ in _METRICS:
            mark = " class='beats'" if k in beats.get(metric, ()) else ""
            cells.append(f"<td{mark}>{_num(st['mean'].get(metric), metric)}</td>"
                         f"<td>{_num(st['median'].get(metric), metric)}</td>")
        rows.append(f"<tr{cls}><td class='txt'>{_e(k)}</td>{''.join(cells)}</tr>")
    out = [f"<h2>{_e(name)}</h2>",
           f"<p class='meta'>{res.n_sites} test stations.</p>",
           f"<table><tr><th class='txt' rowspan='2'>model</th>{head}</tr><tr>{sub}</tr>{''.join(rows)}</table>"]
    for metric, label in (("ubrmse", "ubRMSE"), ("r", "R")):
        who = [m for m in members if m in beats.get(metric, set())]
        out.append(f"<p>Members better than the ensemble on mean station {label}: "
                   f"<b>{_e(', '.join(who)) if who else 'none'}</b>.</p>")
    coarse, ens = res.summary["coarse"]["mean"], res.summary["ensemble"]["mean"]
    if _finite(coarse.get("ubrmse")) and _finite(ens.get("ubrmse")):
        verdict = "better than" if ens["ubrmse"] < coarse["ubrmse"] else "not better than"
        out.append(f"<p>The ensemble is <b>{verdict}</b> the coarse product on mean station ubRMSE "
                   f"({ens['ubrmse']:.4f} vs {coarse['ubrmse']:.4f} m³/m³).</p>")
    if "coarse_rescaled" in res.summary:
        resc = res.summary["coarse_rescaled"]["mean"]
        verdict = "beats" if res.beats_rescaled() else "does <b>not</b> beat"
        out.append(f"<p>Against the rescaled coarse product the ensemble {verdict} it on both mean station R "
                   f"({_num(ens.get('r'), 'r')} vs {_num(resc.get('r'), 'r')}) and ubRMSE "
                   f"({_num(ens.get('ubrmse'), 'ubrmse')} vs {_num(resc.get('ubrmse'), 'ubrmse')} m³/m³).</p>")
    if res.interval:
        iv = res.interval
        out.append(f"<p>Interval: the {iv['level']:.0%} interval mean ± scale·(spread + floor), calibrated on the "
                   f"cross-validation residuals, held <b>{iv['coverage']:.1%}</b> of these test values (median "
                   f"station {iv['coverage_median_station']:.1%}; mean half-width {iv['mean_half_width']:.3f} m³/m³); "
                   f"mean ± 2 spread, uncalibrated, would have held {iv['raw_2sd_coverage']:.1%}.</p>")
    sites = sorted(res.sites.get("ensemble", {}))
    for metric, label, lower_is_better in (("ubrmse", "ubRMSE (m³/m³)", True), ("r", "R", False)):
        ths = "".join(f"<th>{_e(k)}</th>" for k in keys)
        body = []
        for s in sites:
            ens_v = res.sites["ensemble"][s].get(metric)
            tds = []
            for k in keys:
                v = res.sites[k].get(s, {}).get(metric)
                good = (k not in ("ensemble", "coarse", "coarse_rescaled") and _finite(v) and _finite(ens_v)
                        and (v < ens_v if lower_is_better else v > ens_v))
                tds.append(f"<td{' class=beats' if good else ''}>{_num(v, metric)}</td>")
            n = res.sites["ensemble"][s].get("n")
            body.append(f"<tr><td class='txt'>{_e(s)}</td><td>{'' if not _finite(n) else int(n)}</td>{''.join(tds)}</tr>")
        out.append(f"<h3>{label} per station</h3><p class='note'>Bold green: better than the ensemble at that "
                   f"station.</p><div class='wide'><table><tr><th class='txt'>station</th><th>N</th>{ths}</tr>"
                   + "".join(body) + "</table></div>")
    return "\n".join(out)


def _protocol_label(protocol: str) -> str:
    if protocol.startswith("cv_") and protocol.endswith("fold"):
        return f"Station-grouped {protocol[3:-4]}-fold cross-validation"
    if protocol.startswith("holdout"):
        return "Station holdout (stratified by soil class)"
    return protocol


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _num(v, metric: str) -> str:
    if not _finite(v):
        return "–"
    return f"{v:.3f}" if metric in ("r", "amplitude") else f"{v:.4f}"


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def summary_lines(report, coarse_label: str = "coarse") -> list[str]:
    """One line per protocol: the coarse product's and the ensemble's mean station ubRMSE and R."""
    out = []
    for res in report.evaluations.values():
        c, e = res.summary["coarse"]["mean"], res.summary["ensemble"]["mean"]
        out.append(f"{_protocol_label(res.protocol)}: ensemble ubRMSE {_num(e.get('ubrmse'), 'ubrmse')}, "
                   f"R {_num(e.get('r'), 'r')} vs {coarse_label} ubRMSE {_num(c.get('ubrmse'), 'ubrmse')}, "
                   f"R {_num(c.get('r'), 'r')} (mean over {res.n_sites} stations)")
    return out
