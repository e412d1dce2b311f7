"""Site-evaluation report: one self-contained HTML file (plus the per-site CSV).

The HTML carries its CSS and its figures (PNG, base64) inline, so it can be mailed or
archived as a single file. Figures are drawn with matplotlib's object API on the Agg
canvas: no ``pyplot``, no global backend switch, safe in a QGIS background task.

Sections: summary of every metric per product (mean and median over sites); a
head-to-head count against the coarse product; the same summary by station class
(land cover, soil texture, climate…: the "domain preference" view of Poehls et al.);
distributions of per-site R and ubRMSE; density of all pairs; a map of the ubRMSE change;
the downscaling diagnostics (Alemohammad et al. 2018) if given; per-site time series;
the per-site table.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import os
import re
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..io.atomic import atomic_write_text
from ..inputs.dates import as_date
from ..io.html_page import html_document
from .metrics import METRIC_KEYS, as_float, pair_metrics, summarize
from .stations import INSITU, Station, write_scores_csv

#: Column labels of the metrics.
METRIC_LABELS: dict[str, str] = {
    "n": "Pairs", "r": "R", "ubrmse": "ubRMSE", "bias": "Bias", "rmse": "RMSE", "mae": "MAE",
    "slope": "Slope", "anomaly_r": "Anomaly R",
}
#: What a better value looks like, shown under each metric heading.
METRIC_HINTS: dict[str, str] = {
    "n": "", "r": "↑ better", "ubrmse": "↓ better", "bias": "0 best", "rmse": "↓ better",
    "mae": "↓ better", "slope": "1 best", "anomaly_r": "↑ better",
}
#: Metrics summarised over sites (``n`` is reported separately as pairs per site).
SUMMARY_METRICS: tuple[str, ...] = tuple(k for k in METRIC_KEYS if k != "n")

_CSS = """
tr.coarse td{background:#f7f7f7;color:#444}td.best{font-weight:700;color:#1d6b33}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}img{max-width:100%}
details summary{cursor:pointer;color:#1d4e69;font-weight:600}
"""

# Colours: in-situ black, coarse grey, other products from a colour-blind-safe list.
_INSITU_COLOR = "#111111"
_COARSE_COLOR = "#8c8c8c"
_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")

Series = Mapping[str, Mapping[str, tuple[Sequence[Any], np.ndarray]]]


def write_report(
    html_path: str,
    csv_path: str,
    rows: Sequence[Mapping[str, Any]],
    series: Series,
    stations: Sequence[Station],
    diagnostics: Optional[Mapping[str, Mapping[str, Mapping[str, float]]]] = None,
    title: str = "Downscaled soil moisture: evaluation at in-situ stations",
    coarse_product: Optional[str] = None,
    subtitle: str = "",
    units: str = "m³/m³",
    anomaly_window_days: int = 30,
    max_classes: int = 12,
    max_site_plots: Optional[int] = None,
    drought: Optional[Mapping[str, Mapping[str, Any]]] = None,
) -> None:
    """Write the HTML site-evaluation report and the per-site CSV, each atomically.

    Parameters
    ----------
    html_path, csv_path : str
        Output files (their folders must exist).
    rows : sequence of mappings
        Per-site, per-product rows from :func:`core.evaluation.stations.score_products`.
    series : mapping
        ``{station_id: {"in-situ": (dates, values), product: (dates, values), ...}}``
        (:func:`core.evaluation.stations.build_series`), for the time-series and density plots.
    stations : sequence of Station
        Coordinates for the map and class attributes (land cover, texture, climate…)
        for the grouped tables.
    diagnostics : mapping, optional
        Product name → :func:`core.evaluation.diagnostics.summary` of that downscaled product.
    title, subtitle : str
        Heading and a line under it (e.g. the data sources).
    coarse_product : str, optional
        Name of the coarse input product in ``rows``: the reference of the head-to-head
        count and of the ubRMSE-change map (both omitted without it).
    units : str
        Units of soil moisture, for labels.
    anomaly_window_days : int
        The moving-average window used for anomaly R (stated in the definitions).
    max_classes : int
        A station attribute is a class (grouped table) when it has between 2 and this
        many distinct values, unless it is numeric with a different value at every
        station (elevation, say).
    max_site_plots : int, optional
        Plot at most this many sites' time series (all by default).
    drought : mapping, optional
        Product name → :func:`core.evaluation.drought.dry_share_of_refs` (share of pixels below
        −1 σ per date, or a note why there is none): the drought-anomaly panel.
    """
    rows = [dict(r) for r in rows]
    products = _products(rows)
    if coarse_product is not None and coarse_product not in products:
        coarse_product = None
    others = [p for p in products if p != coarse_product]
    colors = _product_colors(products, coarse_product)
    by_id = {s.id: s for s in stations}

    parts: list[str] = []
    parts.append(_header(title, subtitle, rows, series, products, coarse_product))
    parts.append(_definitions(units, anomaly_window_days))

    parts.append("<h2>1. Summary over sites</h2>")
    parts.append("<p>Mean and median over sites of each metric, per product. <i>Sites</i> counts the sites "
                 "where the product could be scored (enough dates with both values); a site counts for a "
                 "metric when the metric is defined there (R needs some variability in both series).</p>")
    parts.append(_summary_table(rows, products, coarse_product, table_id="summary"))

    parts.append("<h2>2. Head-to-head against the coarse product</h2>")
    parts.append(_head_to_head(rows, others, coarse_product, units))

    parts.append("<h2>3. Results by site class (domain preference)</h2>")
    parts.append(_class_sections(rows, stations, products, coarse_product, max_classes))

    parts.append("<h2>4. Distribution of per-site R and ubRMSE</h2>")
    parts.append(_figure(_boxplots(rows, products, colors, units),
                         "Per-site R (left) and ubRMSE (right) by product; each dot is a site."))

    parts.append("<h2>5. Agreement of all pairs</h2>")
    pooled = _pooled_pairs(series, products)
    parts.append(_figure(_hexbins(pooled, products, units),
                         "Density of all in-situ / product pairs of all sites (hexagonal bins, colour = "
                         "number of pairs); dashed line 1:1. Statistics of the pooled pairs in each panel."))

    parts.append("<h2>6. Map of the ubRMSE change</h2>")
    parts.append(_maps(rows, stations, others, coarse_product, units))

    n = 7
    if diagnostics:
        parts.append(f"<h2>{n}. Downscaling diagnostics</h2>")
        parts.append(_diagnostics_table(diagnostics))
        n += 1
    if drought:
        parts.append(f"<h2>{n}. Drought anomaly</h2>")
        parts.append(_drought_panel(drought, colors))
        n += 1

    parts.append(f"<h2>{n}. Time series at each site</h2>")
    parts.append(_site_plots(rows, series, by_id, products, coarse_product, colors, units, max_site_plots))

    parts.append(f"<h2>{n + 1}. Metrics at each site</h2>")
    parts.append(f"<p>The same numbers are in <code>{_e(os.path.basename(csv_path))}</code>.</p>")
    parts.append(_sites_table(rows, coarse_product))

    doc = html_document(title, parts, _CSS)
    write_scores_csv(rows, csv_path)
    atomic_write_text(html_path, doc)


def class_attributes(stations: Sequence[Station], max_classes: int = 12) -> list[str]:
    """Station attributes usable as classes: 2 … ``max_classes`` distinct non-empty values,
    excluding numeric attributes that differ at every station (continuous quantities).

    Examples
    --------
    >>> st = [Station("a", 0, 0, attrs={"lc": "crop", "elev": "3"}),
    ...       Station("b", 0, 0, attrs={"lc": "forest", "elev": "7"})]
    >>> class_attributes(st)
    ['lc']
    """
    keys: list[str] = []
    for s in stations:
        for k in s.attrs:
            if k not in keys:
                keys.append(k)
    out = []
    for k in keys:
        values = [s.attrs.get(k, "").strip() for s in stations]
        values = [v for v in values if v]
        distinct = set(values)
        if not 2 <= len(distinct) <= max_classes:
            continue
        numeric = all(math.isfinite(as_float(v)) for v in distinct)
        if numeric and len(distinct) == len(values):
            continue
        out.append(k)
    return out


# --------------------------------------------------------------------------- text and tables


def _header(title: str, subtitle: str, rows: list[dict], series: Series, products: list[str],
            coarse: Optional[str]) -> str:
    sites = sorted({str(r.get("station")) for r in rows})
    dates = [d for entry in series.values() for d, _ in _dated_points(entry.get(INSITU))]
    period = f"{min(dates).isoformat()} to {max(dates).isoformat()}" if dates else "not given"
    names = ", ".join(_e(p) + (" (coarse)" if p == coarse else "") for p in products) or "none"
    out = [f"<h1>{_e(title)}</h1>"]
    if subtitle:
        out.append(f"<p class=\"meta\">{_e(subtitle)}</p>")
    out.append(f"<p class=\"meta\">{len(sites)} sites · products: {names} · in-situ period: {period} · "
               f"written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>")
    return "\n".join(out)


def _definitions(units: str, window: int) -> str:
    return (
        "<div class=\"defs\"><p>Each product is compared with the in-situ observations of a station on the "
        "dates both have a value, using the product pixel that contains the station. "
        "<b>bias = mean(product − in-situ)</b>; <b>RMSE</b> is the root-mean-square difference; "
        "<b>ubRMSE = √(RMSE² − bias²)</b>, the unbiased RMSE, i.e. the random part of the error once the "
        f"mean offset is removed (all three in {_e(units)}). <b>R</b> is the Pearson correlation; "
        f"<b>anomaly R</b> the correlation of the departures of each series from its own {window}-day "
        "centred moving average, i.e. of the short-term dynamics without the seasonal cycle; "
        "<b>slope</b> is the least-squares slope of the product regressed on in-situ (1 = same amplitude); "
        "<b>MAE</b> the mean absolute difference.</p>"
        "<p>A point measurement and a pixel-average value differ even for a perfect product "
        "(representativeness error), so compare products with one another rather than with zero.</p></div>"
    )


def _summary_table(rows: list[dict], products: list[str], coarse: Optional[str], table_id: str,
                   label_rows: Optional[list[tuple[str, list[dict]]]] = None,
                   label_title: str = "") -> str:
    """Table of mean/median per metric; one line per product (per group when ``label_rows``)."""
    groups = label_rows if label_rows is not None else [("", rows)]
    head1 = ([f"<th class=\"txt\" rowspan=\"2\">{_e(label_title)}</th>"] if label_rows is not None else [])
    head1 += ["<th class=\"txt\" rowspan=\"2\">Product</th>", "<th rowspan=\"2\">Sites</th>",
              "<th rowspan=\"2\">Pairs per site<small>median</small></th>"]
    head1 += [f"<th colspan=\"2\">{METRIC_LABELS[m]}<small>{METRIC_HINTS[m]}</small></th>" for m in SUMMARY_METRICS]
    if label_rows is not None:
        head1.append("<th rowspan=\"2\">Preferred<small>lowest median ubRMSE</small></th>")
    head2 = ["<th>mean</th><th>median</th>" for _ in SUMMARY_METRICS]
    body = []
    for label, grows in groups:
        best = _preferred(grows, products)
        for p in products:
            prow = [r for r in grows if r.get("product") == p]
            if not prow:
                continue
            scored = [r for r in prow if math.isfinite(as_float(r.get("ubrmse")))]
            cells = []
            if label_rows is not None:
                cells.append(f"<td class=\"txt\">{_e(label)}</td>")
            cells.append(f"<td class=\"txt\">{_e(p)}{' (coarse)' if p == coarse else ''}</td>")
            cells.append(f"<td>{len(scored)}</td>")
            cells.append(f"<td>{_fmt('n', summarize(prow, 'n')['median'])}</td>")
            for m in SUMMARY_METRICS:
                s = summarize(prow, m)
                cells.append(f"<td>{_fmt(m, s['mean'])}</td><td>{_fmt(m, s['median'])}</td>")
            if label_rows is not None:
                star = "★" if p in best else ""
                cells.append(f"<td class=\"{'best' if star else ''}\">{star}</td>")
            cls = " class=\"coarse\"" if p == coarse else ""
            body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (f"<table id=\"{_e(table_id)}\"><thead><tr>{''.join(head1)}</tr><tr>{''.join(head2)}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _preferred(rows: list[dict], products: list[str]) -> set[str]:
    med = {p: summarize([r for r in rows if r.get("product") == p], "ubrmse")["median"] for p in products}
    finite = {p: v for p, v in med.items() if math.isfinite(v)}
    if not finite:
        return set()
    low = min(finite.values())
    return {p for p, v in finite.items() if v == low}


def head_to_head(rows: Sequence[Mapping[str, Any]], product: str, coarse: str) -> dict[str, float]:
    """Sites where ``product`` beats ``coarse`` on ubRMSE (lower) and R (higher).

    Only sites where both products have a finite value are compared; equal values count
    as neither better nor worse.

    Returns
    -------
    dict
        ``sites_ubrmse, ubrmse_better, ubrmse_worse, median_delta_ubrmse`` and the same for
        ``r``; deltas are product − coarse.
    """
    table: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        table.setdefault(str(r.get("station")), {})[str(r.get("product"))] = r
    out: dict[str, float] = {}
    for metric, lower_is_better in (("ubrmse", True), ("r", False)):
        deltas = []
        for entry in table.values():
            if product in entry and coarse in entry:
                a, b = as_float(entry[product].get(metric)), as_float(entry[coarse].get(metric))
                if math.isfinite(a) and math.isfinite(b):
                    deltas.append(a - b)
        d = np.array(deltas, dtype=np.float64)
        better = int(np.sum(d < 0)) if lower_is_better else int(np.sum(d > 0))
        worse = int(np.sum(d > 0)) if lower_is_better else int(np.sum(d < 0))
        out[f"sites_{metric}"] = float(d.size)
        out[f"{metric}_better"] = float(better)
        out[f"{metric}_worse"] = float(worse)
        out[f"median_delta_{metric}"] = float(np.median(d)) if d.size else math.nan
    return out


def _head_to_head(rows: list[dict], others: list[str], coarse: Optional[str], units: str) -> str:
    if coarse is None:
        return ("<p class=\"note\">No coarse product was named, so products are not compared site by site "
                "with it.</p>")
    if not others:
        return "<p class=\"note\">Only the coarse product was evaluated: nothing to compare with it.</p>"
    head = ("<tr><th class=\"txt\" rowspan=\"2\">Product</th><th colspan=\"4\">ubRMSE</th>"
            "<th colspan=\"4\">R</th></tr><tr>"
            "<th>Sites</th><th>Lower (better)</th><th>Higher (worse)</th><th>Median change</th>"
            "<th>Sites</th><th>Higher (better)</th><th>Lower (worse)</th><th>Median change</th></tr>")
    body, sentences = [], []
    for p in others:
        h = head_to_head(rows, p, coarse)
        body.append(
            f"<tr><td class=\"txt\">{_e(p)}</td>"
            f"<td>{h['sites_ubrmse']:.0f}</td><td>{h['ubrmse_better']:.0f}</td><td>{h['ubrmse_worse']:.0f}</td>"
            f"<td>{_fmt('ubrmse', h['median_delta_ubrmse'], signed=True)}</td>"
            f"<td>{h['sites_r']:.0f}</td><td>{h['r_better']:.0f}</td><td>{h['r_worse']:.0f}</td>"
            f"<td>{_fmt('r', h['median_delta_r'], signed=True)}</td></tr>")
        sentences.append(
            f"{_e(p)} has a lower ubRMSE than {_e(coarse)} at {h['ubrmse_better']:.0f} of "
            f"{h['sites_ubrmse']:.0f} sites and a higher R at {h['r_better']:.0f} of {h['sites_r']:.0f} sites.")
    return (f"<p>Count of sites where each product does better than the coarse product "
            f"<b>{_e(coarse)}</b>; changes are product − coarse ({_e(units)} for ubRMSE).</p>"
            f"<table id=\"head-to-head\"><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
            f"<p>{' '.join(sentences)}</p>")


def _class_sections(rows: list[dict], stations: Sequence[Station], products: list[str],
                    coarse: Optional[str], max_classes: int) -> str:
    keys = class_attributes(stations, max_classes)
    if not keys:
        return ("<p class=\"note\">The station table has no class attribute (a column such as land cover, "
                f"soil texture or climate with 2 to {max_classes} distinct values), so results are not "
                "grouped by domain.</p>")
    out = ["<p>The summary of section 1 for each class of the station attributes: which product is "
           "preferable in which domain (after Poehls et al.). ★ marks the product with the lowest median "
           "ubRMSE in the class. Classes with few sites give fragile numbers.</p>"]
    attrs = {s.id: s.attrs for s in stations}
    for key in keys:
        classes = sorted({attrs[s.id].get(key, "").strip() for s in stations if attrs[s.id].get(key, "").strip()},
                         key=_natural_key)
        groups = []
        for c in classes:
            members = {sid for sid, a in attrs.items() if a.get(key, "").strip() == c}
            groups.append((c, [r for r in rows if str(r.get("station")) in members]))
        out.append(f"<h3>By {_e(key)}</h3>")
        out.append(_summary_table(rows, products, coarse, table_id=f"class-{_slug(key)}",
                                  label_rows=groups, label_title=key))
    return "\n".join(out)


def _diagnostics_table(diagnostics: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    head = ("<tr><th class=\"txt\" rowspan=\"2\">Product</th><th colspan=\"4\">Conservation error (%)</th>"
            "<th colspan=\"4\">Heterogeneity (coefficient of variation)</th></tr><tr>"
            + "<th>mean |·|</th><th>median |·|</th><th>max |·|</th><th>cell-dates</th>" * 2 + "</tr>")
    body = []
    for p, s in diagnostics.items():
        c = s.get("conservation_percent", {})
        v = s.get("heterogeneity_cv", {})
        body.append(
            f"<tr><td class=\"txt\">{_e(p)}</td>"
            + "".join(f"<td>{_num(c.get(k), 2)}</td>" for k in ("mean_abs", "median_abs", "max_abs"))
            + f"<td>{_num(c.get('n_cells'), 0)}</td>"
            + "".join(f"<td>{_num(v.get(k), 3)}</td>" for k in ("mean_abs", "median_abs", "max_abs"))
            + f"<td>{_num(v.get('n_cells'), 0)}</td></tr>")
    return ("<p>Computed over every coarse cell and date of the downscaled grid (Alemohammad et al. 2018). "
            "<b>Conservation error</b> = (mean of the fine pixels in a coarse cell − coarse value) / coarse "
            "value × 100: near 0 when the downscaling keeps the coarse water content. "
            "<b>Heterogeneity</b> = standard deviation / mean of the fine pixels in a coarse cell: the "
            "sub-cell variability the downscaling adds (0 = the coarse field repeated).</p>"
            f"<table id=\"diagnostics\"><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>")


def _sites_table(rows: list[dict], coarse: Optional[str]) -> str:
    head = ("<tr><th class=\"txt\">Station</th><th class=\"txt\">Name</th><th class=\"txt\">Product</th>"
            + "".join(f"<th>{METRIC_LABELS[m]}</th>" for m in METRIC_KEYS) + "</tr>")
    body = []
    for r in rows:
        cls = " class=\"coarse\"" if r.get("product") == coarse else ""
        body.append(f"<tr{cls}><td class=\"txt\">{_e(r.get('station'))}</td><td class=\"txt\">{_e(r.get('name', ''))}"
                    f"</td><td class=\"txt\">{_e(r.get('product'))}</td>"
                    + "".join(f"<td>{_fmt(m, as_float(r.get(m)))}</td>" for m in METRIC_KEYS) + "</tr>")
    return (f"<details open><summary>{len(rows)} rows</summary><table id=\"sites\"><thead>{head}</thead>"
            f"<tbody>{''.join(body)}</tbody></table></details>")


# --------------------------------------------------------------------------- figures


def _boxplots(rows: list[dict], products: list[str], colors: dict[str, str], units: str) -> Figure:
    fig = Figure(figsize=(max(6.0, 1.6 * len(products) * 2 + 2), 3.6))
    for k, (metric, label) in enumerate((("r", "R"), ("ubrmse", f"ubRMSE ({units})"))):
        ax = fig.add_subplot(1, 2, k + 1)
        data = []
        for p in products:
            v = np.array([as_float(r.get(metric)) for r in rows if r.get("product") == p])
            data.append(v[np.isfinite(v)])
        pos = np.arange(1, len(products) + 1)
        nonempty = [i for i, d in enumerate(data) if d.size]
        if nonempty:
            ax.boxplot([data[i] for i in nonempty], positions=pos[nonempty], widths=0.5, showfliers=False,
                       medianprops={"color": "black"})
        for i, d in enumerate(data):
            jitter = np.linspace(-0.12, 0.12, d.size) if d.size > 1 else np.zeros(d.size)
            ax.scatter(pos[i] + jitter, d, s=16, color=colors[products[i]], alpha=0.8, zorder=3,
                       edgecolors="white", linewidths=0.4)
        ax.set_xticks(pos)
        ax.set_xticklabels([_short(p) for p in products], rotation=15 if len(products) > 2 else 0)
        ax.set_xlim(0.4, len(products) + 0.6)
        ax.set_ylabel(label)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        if metric == "r":
            ax.axhline(0, color="#999999", linewidth=0.6)
    fig.tight_layout()
    return fig


def _pooled_pairs(series: Series, products: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for p in products:
        xs, ys = [], []
        for entry in series.values():
            if INSITU not in entry or p not in entry:
                continue
            obs = {d: v for d, v in _dated_points(entry[INSITU])}
            for d, v in _dated_points(entry[p]):
                if d in obs:
                    xs.append(obs[d])
                    ys.append(v)
        out[p] = (np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64))
    return out


def _hexbins(pooled: dict[str, tuple[np.ndarray, np.ndarray]], products: list[str], units: str) -> Figure:
    n = max(len(products), 1)
    ncol = min(n, 3)
    nrow = math.ceil(n / ncol)
    fig = Figure(figsize=(3.9 * ncol + 0.6, 3.7 * nrow))
    allv = np.concatenate([np.concatenate(pooled[p]) for p in products] or [np.array([])])
    allv = allv[np.isfinite(allv)]
    hi = float(np.max(allv)) * 1.05 if allv.size else 0.5
    lo = min(0.0, float(np.min(allv))) if allv.size else 0.0
    for k, p in enumerate(products):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        x, y = pooled[p]
        ax.plot([lo, hi], [lo, hi], "--", color="#666666", linewidth=0.8)
        if x.size:
            hb = ax.hexbin(x, y, gridsize=25, extent=(lo, hi, lo, hi), mincnt=1, cmap="viridis",
                           bins="log" if x.size > 200 else None, linewidths=0.2)
            cb = fig.colorbar(hb, ax=ax, shrink=0.85)
            cb.set_label("pairs")
            if x.size > 200:  # log colour scale: ticks 1, 2, 5, 10, 20, 50…
                cb.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                cb.ax.yaxis.set_minor_formatter(NullFormatter())
            m = pair_metrics(x, y)
            ax.text(0.03, 0.97, f"n = {x.size}\nR = {_fmt('r', m['r'])}\nubRMSE = {_fmt('ubrmse', m['ubrmse'])}"
                    f"\nbias = {_fmt('bias', m['bias'])}", transform=ax.transAxes, va="top", fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
        else:
            ax.text(0.5, 0.5, "no pairs", transform=ax.transAxes, ha="center", color="#666666")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_title(_short(p, 40), fontsize=10)
        ax.set_xlabel(f"in-situ ({units})")
        ax.set_ylabel(f"product ({units})")
    fig.tight_layout()
    return fig


def _maps(rows: list[dict], stations: Sequence[Station], others: list[str], coarse: Optional[str],
          units: str) -> str:
    if coarse is None or not others:
        return ("<p class=\"note\">The map needs a coarse product and at least one other product: "
                "not drawn.</p>")
    ub = {(str(r.get("station")), str(r.get("product"))): as_float(r.get("ubrmse")) for r in rows}
    located = [s for s in stations if math.isfinite(s.lat) and math.isfinite(s.lon)]
    if not located:
        return "<p class=\"note\">No station has coordinates: no map.</p>"
    out = []
    for p in others:
        delta = np.array([ub.get((s.id, p), math.nan) - ub.get((s.id, coarse), math.nan) for s in located])
        fig = Figure(figsize=(6.4, 5.2))
        ax = fig.add_subplot(1, 1, 1)
        lon = np.array([s.lon for s in located])
        lat = np.array([s.lat for s in located])
        ok = np.isfinite(delta)
        if (~ok).any():
            ax.scatter(lon[~ok], lat[~ok], s=40, facecolors="none", edgecolors="#999999",
                       label="not compared")
        if ok.any():
            m = float(np.max(np.abs(delta[ok]))) or 1e-3
            sc = ax.scatter(lon[ok], lat[ok], c=delta[ok], cmap="RdBu_r",
                            norm=TwoSlopeNorm(vcenter=0.0, vmin=-m, vmax=m), s=70, edgecolors="#333333",
                            linewidths=0.6, zorder=3)
            cb = fig.colorbar(sc, ax=ax, shrink=0.85)
            cb.set_label(f"ubRMSE change ({units}), product − coarse")
        for s in located:
            ax.annotate(s.id, (s.lon, s.lat), xytext=(4, 4), textcoords="offset points", fontsize=7,
                        color="#333333")
        _pad_extent(ax, lon, lat)
        ax.set_aspect(1.0 / max(math.cos(math.radians(float(np.mean(lat)))), 0.1))
        ax.set_xlabel("longitude (°)")
        ax.set_ylabel("latitude (°)")
        ax.grid(color="#eeeeee", linewidth=0.6)
        if (~ok).any():
            ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"{_short(p, 40)} vs {_short(coarse, 40)}", fontsize=10)
        fig.subplots_adjust(left=0.15, right=0.95, top=0.93, bottom=0.1)
        out.append(_figure(fig, f"Change of ubRMSE at each site, {_e(p)} − {_e(coarse)}: blue = lower error "
                                f"than the coarse product, red = higher, white = no change."))
    return "\n".join(out)


def _site_plots(rows: list[dict], series: Series, by_id: Mapping[str, Station], products: list[str],
                coarse: Optional[str], colors: dict[str, str], units: str, max_plots: Optional[int]) -> str:
    metrics = {(str(r.get("station")), str(r.get("product"))): r for r in rows}
    ids = [sid for sid in series]
    if max_plots is not None and len(ids) > max_plots:
        note = f"<p class=\"note\">Showing the first {max_plots} of {len(ids)} sites.</p>"
        ids = ids[:max_plots]
    else:
        note = ""
    out = [note] if note else []
    ordered = ([coarse] if coarse in products else []) + [p for p in products if p != coarse]
    for sid in ids:
        entry = series[sid]
        st = by_id.get(sid)
        fig = Figure(figsize=(9.5, 2.9))
        ax = fig.add_subplot(1, 1, 1)
        pts = _dated_points(entry.get(INSITU))
        if pts:
            d, v = zip(*pts)
            ax.plot(*_broken_at_gaps(d, v), "-", color=_INSITU_COLOR, linewidth=1.3, label="in-situ", zorder=4)
        for p in ordered:
            pts = _dated_points(entry.get(p))
            if not pts:
                continue
            d, v = zip(*pts)
            r = metrics.get((sid, p), {})
            label = f"{_short(p)} (R {_fmt('r', as_float(r.get('r')))}, ubRMSE {_fmt('ubrmse', as_float(r.get('ubrmse')))})"
            style = "--" if p == coarse else "-"
            ax.plot(*_broken_at_gaps(d, v), style, marker="o", markersize=2.5, linewidth=1.0, color=colors[p],
                    label=label, zorder=3)
        loc = AutoDateLocator()
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
        ax.set_ylabel(f"soil moisture ({units})")
        ax.grid(color="#eeeeee", linewidth=0.6)
        name = f"{sid} — {st.name}" if st is not None and st.name else sid
        n_pairs = max((as_float(metrics.get((sid, p), {}).get("n")) for p in products), default=math.nan)
        gap = "" if n_pairs > 0 else "   (no date with both in-situ and product values)"
        ax.set_title(name + gap, fontsize=10, loc="left")
        ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.subplots_adjust(left=0.08, right=0.72, top=0.88, bottom=0.15)  # legend sits right of the axes
        out.append(_figure(fig, f"{_e(name)}: in-situ and product values at the station's pixel."))
    if not ids:
        out.append("<p class=\"note\">No series given.</p>")
    return "\n".join(out)


def _drought_panel(drought: Mapping[str, Mapping[str, Any]], colors: dict[str, str]) -> str:
    """Share of pixels below −1 σ per date, per product (Jin et al. §4), or why there is none."""
    intro = ("<p>Per pixel and calendar period, the standardised anomaly (value − mean) / standard deviation "
             "against the same period of the other years; the share of pixels below −1 σ per date is a relative "
             "drought indicator (Jin et al. 2018, §4).</p>")
    notes = [f"<p class=\"note\">{_e(name)}: {_e(d['note'])}</p>" for name, d in drought.items() if "note" in d]
    plotted = {name: d for name, d in drought.items() if "shares" in d}
    if not plotted:
        return intro + "".join(notes)
    fig = Figure(figsize=(9.5, 3.0))
    ax = fig.add_subplot(1, 1, 1)
    for name, d in plotted.items():
        ax.plot(_np_dates(list(d["dates"])), d["shares"], color=colors.get(name, "#333333"), lw=1.2, label=name)
    ax.set_ylabel("share of pixels below −1 σ")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    loc = AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
    rows = "".join(f"<tr><td>{_e(name)}</td><td>{d['period_days']}</td><td>{_e(_worst(d))}</td></tr>"
                   for name, d in plotted.items())
    table = ("<table><tr><th>product</th><th>calendar period (days)</th><th>driest date (share below −1 σ)</th></tr>"
             + rows + "</table>")
    return intro + "".join(notes) + table + _figure(fig, "Share of pixels below −1 σ per date.")


def _worst(d: Mapping[str, Any]) -> str:
    s = np.asarray(d["shares"], dtype=np.float64)
    if not np.isfinite(s).any():
        return "–"
    k = int(np.nanargmax(s))
    return f"{as_date(d['dates'][k]).isoformat()} ({s[k]:.0%})"


def _figure(fig: Figure, caption: str) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    alt = re.sub(r"<[^>]+>", "", caption)
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{_e(alt)}\">"
            f"<figcaption>{caption}</figcaption></figure>")


# --------------------------------------------------------------------------- helpers


def _products(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for r in rows:
        p = str(r.get("product"))
        if p not in out:
            out.append(p)
    return out


def _product_colors(products: list[str], coarse: Optional[str]) -> dict[str, str]:
    colors, k = {}, 0
    for p in products:
        if p == coarse:
            colors[p] = _COARSE_COLOR
        else:
            colors[p] = _PALETTE[k % len(_PALETTE)]
            k += 1
    return colors


def _dated_points(pair: Optional[tuple[Sequence[Any], np.ndarray]]) -> list[tuple[_dt.date, float]]:
    """Finite (date, value) points of a (dates, values) series, as ``datetime.date``."""
    if pair is None:
        return []
    dates, values = pair
    v = np.asarray(values, dtype=np.float64).ravel()
    out = []
    for d, x in zip(dates, v):
        if math.isfinite(x):
            out.append((as_date(d), float(x)))
    return out


def _np_dates(dates: Sequence[_dt.date]) -> np.ndarray:
    return np.array([np.datetime64(d.isoformat(), "D") for d in dates])


def _broken_at_gaps(dates: Sequence[_dt.date], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Dates and values with a NaN inserted where the series skips more than twice its usual
    step, so a line plot does not draw across missing data."""
    t = _np_dates(dates)
    v = np.asarray(values, dtype=np.float64)
    if t.size < 3:
        return t, v
    step = np.diff(t).astype(np.float64)
    usual = float(np.median(step))
    cut = np.flatnonzero(step > 2 * usual) + 1
    if cut.size == 0:
        return t, v
    gap_t = t[cut - 1] + np.timedelta64(1, "D")
    return np.insert(t, cut, gap_t), np.insert(v, cut, np.nan)


def _pad_extent(ax: Any, lon: np.ndarray, lat: np.ndarray) -> None:
    w = max(float(np.ptp(lon)), 0.05)
    h = max(float(np.ptp(lat)), 0.05)
    ax.set_xlim(float(lon.min()) - 0.12 * w, float(lon.max()) + 0.12 * w)
    ax.set_ylim(float(lat.min()) - 0.12 * h, float(lat.max()) + 0.12 * h)


def _fmt(metric: str, value: float, signed: bool = False) -> str:
    """Metric value for a table: R-like to 3 decimals, errors (m³/m³) to 4; NaN as '–'."""
    if value is None or not math.isfinite(value):
        return "–"
    if metric == "n":
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    digits = 3 if metric in ("r", "anomaly_r", "slope") else 4
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _num(value: Any, digits: int) -> str:
    v = as_float(value)
    return "–" if not math.isfinite(v) else f"{v:.{digits}f}"


def _short(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "attr"


def _natural_key(text: str) -> tuple:
    v = as_float(text)
    return (0, v, "") if math.isfinite(v) else (1, 0.0, text.lower())


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
