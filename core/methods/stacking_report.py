"""The stacking method's HTML report: what each base learner contributes, zoned against unzoned on
held-out coarse cells, and which predictors matter (permutation importance) — self-contained HTML."""
from __future__ import annotations

import html
import math
from typing import Any, Optional

from ..io.html_page import html_document
from ..learn.stacking import LEARNERS

_CSS = ".bar{fill:#2b6c8f}.lab{font-size:12px}.val{font-size:11px;fill:#444}"


def _f(v: Optional[float], digits: int = 3) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def importance_svg(rows: list[dict[str, Any]], key: str = "rmse_rise", width: int = 640) -> str:
    """Horizontal bars of ``key`` per predictor (the held-out RMSE rise, or the mean |SHAP|; negatives as zero)."""
    rows = [r for r in rows if not r["feature"].startswith("(")]
    if not rows:
        return "<p class='note'>No importance was computed (too few coarse cells).</p>"
    top = max(max(r[key] for r in rows), 1e-12)
    bar_h, left, right = 22, 150, 90
    h = bar_h * len(rows) + 10
    parts = [f"<svg width='{width}' height='{h}' role='img' aria-label='predictor importance'>"]
    for i, r in enumerate(rows):
        y = 5 + i * bar_h
        w = max(r[key], 0.0) / top * (width - left - right)
        parts.append(f"<text class='lab' x='{left - 6}' y='{y + 15}' text-anchor='end'>{html.escape(r['feature'])}</text>"
                     f"<rect class='bar' x='{left}' y='{y + 3}' width='{w:.1f}' height='{bar_h - 6}'/>"
                     f"<text class='val' x='{left + w + 4:.1f}' y='{y + 15}'>{r[key]:.4f}</text>")
    parts.append("</svg>")
    return "".join(parts)


def report_html(training: dict[str, Any], title: str = "Stacking: learners, zones and predictors") -> str:
    """The report of one fit (``StackingModel.training``)."""
    g = training["global"]
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class='meta'>{training['n_samples']} coarse samples (cells × dates); predictors: "
            f"{html.escape(', '.join(training['features']))}; {g['folds']}-fold cross-validation with whole blocks "
            "of coarse cells held out.</p>"]
    skipped = training.get("skipped_learners") or {}
    if skipped:
        body.append("<p class='note'>Not installed, left out: " + ", ".join(
            f"{html.escape(LEARNERS[k][0])} (<code>{html.escape(v)}</code>)" for k, v in skipped.items()) + "</p>")
    rows = "".join(f"<tr><td class='txt'>{html.escape(LEARNERS[n][0])}</td><td>{_f(w)}</td>"
                   f"<td>{_f(g['oof_scores'].get(n, {}).get('r'))}</td><td>{_f(g['oof_scores'].get(n, {}).get('rmse'), 4)}</td></tr>"
                   for n, w in zip(g["learners"], g["weights"]))
    st = g["oof_scores"].get("stack", {})
    rows += (f"<tr><td class='txt'><b>Stack</b> (intercept {_f(g['intercept'], 4)})</td><td></td>"
             f"<td><b>{_f(st.get('r'))}</b></td><td><b>{_f(st.get('rmse'), 4)}</b></td></tr>")
    body += ["<h2>Base learners and the meta-learner</h2>",
             "<table><tr><th class='txt'>learner</th><th>weight</th><th>held-out R</th><th>held-out RMSE"
             "<small>m³/m³</small></th></tr>" + rows + "</table>",
             "<p class='note'>Held-out = out-of-fold predictions on coarse cells the learner did not see. The "
             "weights are non-negative; a learner with weight 0 added nothing the others did not.</p>"]
    zones = training.get("zones")
    if zones:
        zrows = "".join(
            f"<tr><td>{z['zone']}</td><td>{z['n_samples']}</td><td>{_f(z['unzoned']['r'])}</td>"
            f"<td>{_f(z['unzoned']['rmse'], 4)}</td><td>{_f(z.get('zoned', {}).get('r'))}</td>"
            f"<td>{_f(z.get('zoned', {}).get('rmse'), 4)}</td><td class='txt'>{html.escape(z['uses'])}</td></tr>"
            for z in zones)
        body += ["<h2>Zoned against unzoned, per zone</h2>",
                 "<table><tr><th>zone</th><th>samples</th><th>unzoned R</th><th>unzoned RMSE</th><th>zoned R</th>"
                 "<th>zoned RMSE</th><th class='txt'>used</th></tr>" + zrows + "</table>",
                 "<p class='note'>A zone keeps its own stack only where that stack beats the global one on the "
                 "zone's held-out cells.</p>"]
    shap = training.get("shap")
    if shap:
        body += ["<h2>Which predictors matter (SHAP)</h2>",
                 "<p>Mean absolute SHAP value (m³/m³) of each predictor for the stacked prediction on the coarse "
                 "samples: each base learner's TreeSHAP values combined by the meta-learner's weights.</p>",
                 importance_svg(shap["all"], "mean_abs_shap")]
        per_zone = {k: v for k, v in shap.items() if k != "all"}
        if per_zone:
            feats = [r["feature"] for r in shap["all"]]
            head = "".join(f"<th>{html.escape(f)}</th>" for f in feats)
            rows = "".join("<tr><td>zone " + html.escape(k) + "</td>" + "".join(
                f"<td>{_f(next(r['mean_abs_shap'] for r in v if r['feature'] == f), 4)}</td>" for f in feats)
                + "</tr>" for k, v in sorted(per_zone.items()))
            body += ["<h3>Per zone (zones with their own stack)</h3>",
                     f"<table><tr><th class='txt'>stack</th>{head}</tr>{rows}</table>"]
    imp = training.get("importance")
    if imp:
        base = next((r["rmse_rise"] for r in imp if r["feature"] == "(held-out RMSE)"), None)
        body += ["<h2>Which predictors matter</h2>",
                 "<p>Rise of the held-out RMSE (m³/m³) when a predictor's values are shuffled among held-out "
                 f"coarse cells (held-out RMSE without shuffling: {_f(base, 4)}).</p>", importance_svg(imp)]
    return html_document(title, body, _CSS)
