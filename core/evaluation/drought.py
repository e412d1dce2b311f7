"""Drought anomaly of a soil-moisture series (Jin et al. §4): per pixel and calendar period, the
standardised anomaly against the other years, and the share of pixels below −1 σ per date.

A date's *calendar period* is its day of year on a 365-day calendar (29 February counts as
28 February) divided into periods of ``period_days``: with 8- or 10-day composites, the same
composite of every year falls in one period. The anomaly of pixel ``p`` on date ``d`` is
``(x − mean) / std`` over the same pixel and period in the *other* years (leave-one-year-out, so
a dry year does not dampen its own anomaly), or over a given climatology series (all its years).
It needs at least ``min_years`` other values; otherwise it is NaN.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

#: Standardised anomaly below which a pixel counts as dry (Jin et al.: one standard deviation).
DRY_BELOW = -1.0


def calendar_period(d: _dt.date, period_days: int) -> int:
    """Period index of ``d`` (0-based) on a 365-day calendar.

    >>> calendar_period(_dt.date(2020, 3, 1), 10), calendar_period(_dt.date(2019, 3, 1), 10)
    (5, 5)
    """
    doy = d.timetuple().tm_yday
    leap = d.year % 4 == 0 and (d.year % 100 != 0 or d.year % 400 == 0)
    if leap and doy > 59:
        doy -= 1
    return (doy - 1) // int(period_days)


def typical_spacing(dates: Sequence[_dt.date]) -> int:
    """Median spacing in days between consecutive distinct dates (1 for fewer than two)."""
    ds = sorted(set(dates))
    if len(ds) < 2:
        return 1
    return max(1, int(round(float(np.median(np.diff([d.toordinal() for d in ds]))))))


@dataclass
class AnomalyPlan:
    """For every date: the indices of the reference values (other years of its period)."""
    periods: list[int]
    references: list[np.ndarray]
    period_days: int


def plan(dates: Sequence[_dt.date], period_days: Optional[int] = None,
         climatology_dates: Optional[Sequence[_dt.date]] = None) -> AnomalyPlan:
    """Which values each date is compared with: the same period of the other years of ``dates``, or
    of ``climatology_dates`` (all years) when a climatology is given."""
    p = int(period_days or typical_spacing(dates))
    periods = [calendar_period(d, p) for d in dates]
    refs = []
    if climatology_dates is None:
        years = np.array([d.year for d in dates])
        per = np.array(periods)
        for d, k in zip(dates, periods):
            refs.append(np.flatnonzero((per == k) & (years != d.year)))
    else:
        cper = np.array([calendar_period(d, p) for d in climatology_dates])
        for k in periods:
            refs.append(np.flatnonzero(cper == k))
    return AnomalyPlan(periods, refs, p)


def anomalies(stack: np.ndarray, plan_: AnomalyPlan, reference: Optional[np.ndarray] = None,
              min_years: int = 2) -> np.ndarray:
    """Standardised anomalies of ``stack`` (``(dates, ...)``) following ``plan_``; the reference
    values come from ``stack`` itself or from ``reference`` (a climatology stack). float32."""
    ref = stack if reference is None else reference
    out = np.full(stack.shape, np.nan, dtype=np.float32)
    for t, idx in enumerate(plan_.references):
        if len(idx) < min_years:
            continue
        r = ref[idx].astype(np.float64)
        n = np.isfinite(r).sum(axis=0)
        mean = np.nansum(r, axis=0) / np.maximum(n, 1)
        std = np.sqrt(np.nansum((r - mean) ** 2, axis=0) / np.maximum(n - 1, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            a = (stack[t] - mean) / std
        a[(n < min_years) | ~(std > 1e-9)] = np.nan
        out[t] = a.astype(np.float32)
    return out


class DryShare:
    """Accumulates, per date, the pixels with an anomaly and those below :data:`DRY_BELOW`."""

    def __init__(self, n_dates: int) -> None:
        self.valid = np.zeros(n_dates, dtype=np.int64)
        self.dry = np.zeros(n_dates, dtype=np.int64)

    def add(self, anomaly_block: np.ndarray) -> None:
        a = anomaly_block.reshape(anomaly_block.shape[0], -1)
        ok = np.isfinite(a)
        self.valid += ok.sum(axis=1)
        self.dry += (ok & (a < DRY_BELOW)).sum(axis=1)

    def shares(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.valid > 0, self.dry / np.maximum(self.valid, 1), np.nan)


def stream_anomalies(read: Callable[[int, int], np.ndarray], height: int, width: int, plan_: AnomalyPlan,
                     write: Callable[[int, np.ndarray], None], read_reference: Optional[Callable[[int, int], np.ndarray]] = None,
                     block_pixels: int = 1 << 20, is_canceled: Optional[Callable[[], bool]] = None,
                     progress: Optional[Callable[[float, str], None]] = None) -> np.ndarray:
    """Anomalies of a raster series, block of rows by block of rows; returns the dry share per date.

    ``read(row0, nrows)`` → ``(dates, nrows, width)``; ``write(row0, block)`` stores the anomalies;
    ``read_reference`` reads the climatology the same way (when given).
    """
    from ..errors import Canceled
    n_dates = len(plan_.periods)
    rows = max(1, block_pixels // max(1, width * max(1, n_dates)))
    share = DryShare(n_dates)
    for r0 in range(0, height, rows):
        if is_canceled is not None and is_canceled():
            raise Canceled()
        n = min(rows, height - r0)
        block = read(r0, n).astype(np.float64)
        ref = read_reference(r0, n).astype(np.float64) if read_reference is not None else None
        a = anomalies(block, plan_, ref)
        write(r0, a)
        share.add(a)
        if progress is not None:
            progress((r0 + n) / height, "standardised anomalies")
    return share.shares()


def dry_share_of_refs(refs: Sequence, period_days: Optional[int] = None, block_pixels: int = 1 << 20,
                      min_years: int = 3) -> dict:
    """Share of pixels below −1 σ per date of a dated product given as band references
    (:class:`core.raster.align.BandRef`, all on one grid), for the site report.

    Returns ``{"dates", "shares", "period_days"}``, or ``{"note": …}`` when the product spans fewer
    than ``min_years`` years (each date then has fewer than two other years to compare with).
    """
    from ..raster.align import open_band
    dates = [r.date for r in refs]
    years = {d.year for d in dates}
    if len(years) < min_years:
        return {"note": f"the product spans {len(years)} year(s); standardised anomalies against the other years "
                        f"need at least {min_years}."}
    opened = [open_band(r) for r in refs]  # keep each dataset alive while its band is read (GDAL 3.6)
    width, height = opened[0][0].RasterXSize, opened[0][0].RasterYSize

    def read(r0: int, n: int) -> np.ndarray:
        out = np.empty((len(opened), n, width))
        for k, (_, band) in enumerate(opened):
            a = band.ReadAsArray(0, r0, width, n).astype(np.float64)
            nd = band.GetNoDataValue()
            if nd is not None and np.isfinite(nd):
                a[a == nd] = np.nan
            out[k] = a
        return out

    p = plan(dates, period_days)
    shares = stream_anomalies(read, height, width, p, lambda r0, block: None, block_pixels=block_pixels)
    return {"dates": dates, "shares": [float(s) for s in shares], "period_days": p.period_days}
