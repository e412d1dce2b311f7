"""Station scores as a plain-text table: each product's per-site metrics side by side."""
from __future__ import annotations

import math

from .metrics import as_float, summarize


def format_table(rows: list[dict], products: list[str]) -> str:
    """Per-site N, R, ubRMSE, bias, RMSE of each product side by side, then the mean over sites."""
    metrics = ("n", "r", "ubrmse", "bias", "rmse")
    head = f"{'station':<10}" + "".join(f" | {p[:24]:^40}" for p in products)
    sub = f"{'':<10}" + "".join(" | " + " ".join(f"{m:>7}" for m in metrics) for _ in products)
    lines = [head, sub]
    by_station: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_station.setdefault(r["station"], {})[r["product"]] = r
    for st, got in by_station.items():
        lines.append(f"{st:<10}" + "".join(" | " + " ".join(_fmt(got.get(p, {}).get(m), m) for m in metrics)
                                           for p in products))
    means = f"{'mean':<10}"
    for p in products:
        mine = [r for r in rows if r["product"] == p]
        cells = [_fmt(summarize(mine, "r")["n_sites"], "n")]  # the n column counts the sites here
        cells += [_fmt(summarize(mine, m)["mean"], m) for m in metrics[1:]]
        means += " | " + " ".join(cells)
    lines.append(means)
    lines.append("mean: over sites with at least 3 pairs (its n column is the number of such sites).")
    lines.append("ubRMSE = sqrt(RMSE² − bias²); bias = mean(product − in-situ); units m³/m³.")
    return "\n".join(lines)


def _fmt(v, metric: str) -> str:
    v = as_float(v)  # rows read back from a CSV hold text
    if math.isnan(v):
        return f"{'—':>7}"
    return f"{int(v):>7d}" if metric == "n" else f"{v:>7.3f}"
