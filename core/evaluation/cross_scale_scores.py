"""Scores of a downscaled series against a finer truth, as Alemohammad et al. validate (and more).

All inputs are arrays of shape ``(dates, pixels)`` over the fine pixels scored; ``coarse`` is, for
each fine pixel and date, the value of the coarse cell holding it, and ``cell`` the index of that
cell (for the heterogeneity). NaN = no value; a pair counts only where truth and estimate exist.

* per-pixel **R** and **ubRMSE** over time (mean and median over pixels with ≥ 3 pairs);
* pooled **RMSE** over every pixel and date;
* **pattern R** (``pattern_r``): Pearson correlation, pooled over pixels and dates, of the within-cell
  pattern (estimate − its coarse cell's value) with the truth's (truth − the same value). A method that
  copies the coarse value has no pattern (NaN);
* **pattern R against the cell's own mean** (``pattern_r_cell``): the same with each departure taken from
  the mean of the cell's pixels that have both values, of the estimate and of the truth apart — blind to
  a level offset between the estimate's cell and the coarse value, it asks only whether the *shape*
  inside each cell is right (the residual benchmarks' definition);
* **heterogeneity CV**: coefficient of variation (σ / mean) of the fine pixels in each coarse cell
  and date, averaged over cells and dates — of the estimate, to compare with the truth's;
* **coverage**: the share of the truth's values that have an estimate.

Every benchmark and method that scores against a finer truth uses :func:`score_series`.
"""
from __future__ import annotations

import numpy as np

#: Keys of :func:`score_series`, in table order.
SCORE_KEYS: tuple[str, ...] = ("r_mean", "r_median", "ubrmse_mean", "ubrmse_median", "rmse", "pattern_r", "cv")
MIN_PAIRS = 3


def score_series(estimate: np.ndarray, truth: np.ndarray, coarse: np.ndarray, cell: np.ndarray,
                 min_pairs: int = MIN_PAIRS) -> dict[str, float]:
    """The scores of the module docstring for one estimate (arrays ``(dates, pixels)``, ``cell`` ``(pixels,)``;
    per-pixel R and ubRMSE over pixels with at least ``min_pairs`` pairs)."""
    est = np.asarray(estimate, dtype=np.float64)
    tru = np.asarray(truth, dtype=np.float64)
    crs = np.asarray(coarse, dtype=np.float64)
    both = np.isfinite(est) & np.isfinite(tru)
    n = both.sum(axis=0)
    e = np.where(both, est, np.nan)
    t = np.where(both, tru, np.nan)
    keep = n >= min_pairs
    with np.errstate(invalid="ignore", divide="ignore"):
        de = e[:, keep] - np.nanmean(e[:, keep], axis=0)
        dt = t[:, keep] - np.nanmean(t[:, keep], axis=0)
        cov = np.nansum(de * dt, axis=0)
        r = cov / np.sqrt(np.nansum(de * de, axis=0) * np.nansum(dt * dt, axis=0))
        ubrmse = np.sqrt(np.nanmean((de - dt) ** 2, axis=0))
    pooled = both & np.isfinite(crs)
    pe, pt = (est - crs)[pooled], (tru - crs)[pooled]
    pattern = float(np.corrcoef(pe, pt)[0, 1]) if pe.size > 2 and pe.std() > 1e-12 and pt.std() > 1e-12 else float("nan")
    return {
        "n_pixels": int(keep.sum()),
        "n_pairs": int(both.sum()),
        "r_mean": _finite_stat(np.nanmean, r),
        "r_median": _finite_stat(np.nanmedian, r),
        "ubrmse_mean": _finite_stat(np.nanmean, ubrmse),
        "ubrmse_median": _finite_stat(np.nanmedian, ubrmse),
        "rmse": float(np.sqrt(np.mean((est[both] - tru[both]) ** 2))) if both.any() else float("nan"),
        "pattern_r": pattern,
        "pattern_r_cell": pattern_against_cell_mean(np.where(both, est, np.nan), np.where(both, tru, np.nan), cell),
        "cv": heterogeneity_cv(np.where(both, est, np.nan), cell),
        "coverage": float(both.sum() / max(1, int(np.isfinite(tru).sum()))),
    }


def pattern_against_cell_mean(estimate: np.ndarray, truth: np.ndarray, cell: np.ndarray) -> float:
    """Pooled correlation of the departures from each cell's mean, per date, of ``estimate`` and ``truth``
    (``(dates, pixels)``, NaN where a pair is missing; cells with a single pair left out; NaN when the
    estimate has no within-cell pattern)."""
    c = np.asarray(cell).ravel()
    dev_e, dev_t = [], []
    for et, tt in zip(np.asarray(estimate, dtype=np.float64), np.asarray(truth, dtype=np.float64)):
        ok = np.isfinite(et) & np.isfinite(tt) & (c >= 0)
        if not ok.any():
            continue
        ids, inv, cnt = np.unique(c[ok], return_inverse=True, return_counts=True)
        me = np.bincount(inv, weights=et[ok]) / cnt
        mt = np.bincount(inv, weights=tt[ok]) / cnt
        multi = cnt[inv] > 1
        dev_e.append((et[ok] - me[inv])[multi])
        dev_t.append((tt[ok] - mt[inv])[multi])
    if not dev_e:
        return float("nan")
    pe, pt = np.concatenate(dev_e), np.concatenate(dev_t)
    if pe.size < 3 or pe.std() <= 1e-12 or pt.std() <= 1e-12:
        return float("nan")
    return float(np.corrcoef(pe, pt)[0, 1])


def heterogeneity_cv(values: np.ndarray, cell: np.ndarray) -> float:
    """Mean over coarse cells and dates of σ / mean of the fine ``values`` (``(dates, pixels)``) in each cell
    (cells with fewer than two values on a date are left out)."""
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(cell).ravel()
    ids, inv = np.unique(c, return_inverse=True)
    out = []
    for row in v:
        ok = np.isfinite(row)
        cnt = np.bincount(inv[ok], minlength=ids.size)
        s = np.bincount(inv[ok], weights=row[ok], minlength=ids.size)
        s2 = np.bincount(inv[ok], weights=row[ok] ** 2, minlength=ids.size)
        use = (cnt >= 2) & (s > 0)
        m = s[use] / cnt[use]
        sd = np.sqrt(np.clip(s2[use] / cnt[use] - m * m, 0.0, None))
        out.append(sd / m)
    allcv = np.concatenate(out) if out else np.array([])
    return float(allcv.mean()) if allcv.size else float("nan")


def format_table(rows: dict[str, dict[str, float]], title: str = "") -> str:
    """A plain-text table: one line per estimate, the columns of :data:`SCORE_KEYS`."""
    head = f"{'estimate':<28}" + "".join(f"{k:>14}" for k in SCORE_KEYS)
    lines = ([title] if title else []) + [head, "-" * len(head)]
    for name, sc in rows.items():
        lines.append(f"{name:<28}" + "".join(f"{sc.get(k, float('nan')):>14.4f}" for k in SCORE_KEYS))
    return "\n".join(lines)


def _finite_stat(fn, x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(fn(x)) if x.size else float("nan")
