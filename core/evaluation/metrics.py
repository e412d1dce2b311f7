"""Agreement metrics between in-situ soil moisture and a gridded product at one site.

The metrics follow the usual soil-moisture validation practice (Entekhabi et al. 2010;
Gruber et al. 2020) and the downscaling evaluations of Alemohammad et al. (2018) and
Poehls et al.:

* ``bias``   = mean(product − in-situ)
* ``rmse``   = sqrt(mean((product − in-situ)²))
* ``ubrmse`` = sqrt(rmse² − bias²), the unbiased RMSE (standard deviation of the differences)
* ``mae``    = mean(|product − in-situ|)
* ``r``      = Pearson correlation
* ``slope``  = ordinary-least-squares slope of the product regressed on in-situ
* ``anomaly_r`` = Pearson correlation of the anomalies, each series minus its own
  centred moving average over the calendar (30 days by default), so that the shared
  seasonal cycle does not inflate the agreement.
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from ..raster.blas import dot

#: Keys of :func:`pair_metrics`, in report order.
METRIC_KEYS: tuple[str, ...] = ("n", "r", "ubrmse", "bias", "rmse", "mae", "slope", "anomaly_r")


def pair_metrics(
    obs: Sequence[float] | np.ndarray,
    est: Sequence[float] | np.ndarray,
    dates: Optional[Sequence[Any]] = None,
    anomaly_window_days: int = 30,
    min_pairs: int = 3,
) -> dict[str, float]:
    """Agreement metrics of a product (``est``) against observations (``obs``) at one site.

    Only pairs where both values are finite are used.

    Parameters
    ----------
    obs, est : array-like of float, same length
        In-situ observations and product values, matched element by element.
    dates : sequence, optional
        Date of each pair: ``datetime.date``/``datetime.datetime``, ``numpy.datetime64``
        or a number of days. Needed for ``anomaly_r`` only (NaN without dates).
    anomaly_window_days : int
        Width of the centred moving average that defines the anomalies: the average
        at a date uses the values within ± ``anomaly_window_days // 2`` days (30 → ±15).
        It is computed on the matched pairs only, so both series are sampled alike.
    min_pairs : int
        Below this number of pairs every metric but ``n`` is NaN.

    Returns
    -------
    dict[str, float]
        ``n, r, ubrmse, bias, rmse, mae, slope, anomaly_r`` (see :data:`METRIC_KEYS`).
        A metric that is undefined (too few pairs, a series without variance) is NaN.

    Examples
    --------
    >>> m = pair_metrics([0.1, 0.2, 0.3], [0.15, 0.2, 0.4])
    >>> round(m["bias"], 4), round(m["slope"], 4)
    (0.05, 1.25)
    """
    o = np.asarray(obs, dtype=np.float64).ravel()
    e = np.asarray(est, dtype=np.float64).ravel()
    if o.shape != e.shape:
        raise ValueError(f"obs and est differ in length ({o.size} and {e.size} values)")
    days = None
    if dates is not None:
        days = _to_days(dates)
        if days.shape != o.shape:
            raise ValueError(f"dates has {days.size} items but obs has {o.size} values")
    if min_pairs < 1:
        raise ValueError("min_pairs must be at least 1")

    ok = np.isfinite(o) & np.isfinite(e)
    if days is not None:
        ok &= np.isfinite(days)
    o, e = o[ok], e[ok]
    n = int(o.size)
    out = {key: math.nan for key in METRIC_KEYS}
    out["n"] = float(n)
    if n < min_pairs:
        return out

    d = e - o
    bias = float(np.mean(d))
    mse = float(np.mean(d * d))
    out["bias"] = bias
    out["rmse"] = math.sqrt(mse)
    # rmse² − bias² is the variance of d; rounding can make it a tiny negative number.
    out["ubrmse"] = math.sqrt(max(mse - bias * bias, 0.0))
    out["mae"] = float(np.mean(np.abs(d)))
    out["r"] = _pearson(o, e)
    oc = o - o.mean()
    sxx = dot(oc, oc)
    if sxx > _tiny_variance(o):
        out["slope"] = dot(oc, e - e.mean()) / sxx
    if days is not None:
        t = days[ok]
        half = anomaly_window_days / 2.0
        # Constancy of the anomalies is judged on the scale of the series themselves:
        # anomalies that are pure rounding noise must give NaN, not a random R.
        out["anomaly_r"] = _pearson(o - moving_average(t, o, half), e - moving_average(t, e, half), o, e)
    return out


def moving_average(days: np.ndarray, values: np.ndarray, half_window_days: float) -> np.ndarray:
    """Centred moving average over the calendar.

    For each sample ``i`` the mean of all ``values[j]`` with
    ``|days[j] − days[i]| <= half_window_days``; gaps in the series simply leave fewer
    values in the window. ``days`` need not be sorted; all values must be finite.

    Examples
    --------
    >>> moving_average(np.array([0, 10, 40]), np.array([1.0, 3.0, 5.0]), 15).tolist()
    [2.0, 2.0, 5.0]
    """
    t = np.asarray(days, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(t, kind="stable")
    ts, vs = t[order], v[order]
    csum = np.concatenate(([0.0], np.cumsum(vs)))
    lo = np.searchsorted(ts, ts - half_window_days, side="left")
    hi = np.searchsorted(ts, ts + half_window_days, side="right")
    out = np.empty_like(v)
    out[order] = (csum[hi] - csum[lo]) / (hi - lo)
    return out


def summarize(rows: Iterable[Mapping[str, Any]], metric: str) -> dict[str, float]:
    """Mean and median of one metric over sites, ignoring sites where it is NaN.

    Parameters
    ----------
    rows : iterable of mappings
        Per-site rows (e.g. from ``core.evaluation.stations.score_products``, filtered to one product).
        Values may be numbers or numeric strings (as read back from a CSV); empty = NaN.
    metric : str
        Key to summarise, e.g. ``"ubrmse"``.

    Returns
    -------
    dict[str, float]
        ``mean``, ``median`` and ``n_sites`` (number of sites with a finite value).

    Examples
    --------
    >>> summarize([{"r": 0.25}, {"r": 0.5}, {"r": float("nan")}, {"r": 1.0}], "r")
    {'mean': 0.5833333333333334, 'median': 0.5, 'n_sites': 3.0}
    """
    vals = np.array([as_float(row.get(metric)) for row in rows], dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return {"mean": math.nan, "median": math.nan, "n_sites": 0.0}
    return {"mean": float(np.mean(vals)), "median": float(np.median(vals)), "n_sites": float(vals.size)}


def as_float(value: Any) -> float:
    """``float(value)``, or NaN for ``None``, empty strings and text that is not a number."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _pearson(a: np.ndarray, b: np.ndarray, scale_a: Optional[np.ndarray] = None,
             scale_b: Optional[np.ndarray] = None) -> float:
    ac, bc = a - a.mean(), b - b.mean()
    saa, sbb = dot(ac, ac), dot(bc, bc)
    if saa <= _tiny_variance(a if scale_a is None else scale_a) or sbb <= _tiny_variance(
        b if scale_b is None else scale_b
    ):
        return math.nan
    return float(np.clip(dot(ac, bc) / math.sqrt(saa * sbb), -1.0, 1.0))


def _tiny_variance(x: np.ndarray) -> float:
    """Sum of squared deviations below which a series counts as constant (rounding noise)."""
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    return x.size * (scale * 1e-12) ** 2


def _to_days(dates: Sequence[Any]) -> np.ndarray:
    """Dates as float days since 1970-01-01 (NaN for ``None``/NaT)."""
    out = np.full(len(dates), np.nan, dtype=np.float64)
    epoch = _dt.date(1970, 1, 1)
    for i, d in enumerate(dates):
        if d is None:
            continue
        if isinstance(d, _dt.datetime):
            out[i] = (d - _dt.datetime(1970, 1, 1, tzinfo=d.tzinfo)).total_seconds() / 86400.0
        elif isinstance(d, _dt.date):
            out[i] = float((d - epoch).days)
        elif isinstance(d, np.datetime64):
            if not np.isnat(d):
                out[i] = float((d - np.datetime64("1970-01-01T00:00:00")) / np.timedelta64(1, "s")) / 86400.0
        else:
            out[i] = float(d)
    return out
