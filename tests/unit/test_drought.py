"""Standardised drought anomalies against the other years, on a series with a known answer."""
import datetime as dt

import numpy as np
import pytest

from core.evaluation import drought


def _series():
    # 4 years × 3 ten-day windows; pixel (0, 0): 0.20, 0.22, 0.24, 0.10 in window 1 of each year
    dates = [dt.date(y, 1, d) for y in (2019, 2020, 2021, 2022) for d in (1, 11, 21)]
    stack = np.full((len(dates), 2, 2), 0.3)
    rng = np.random.default_rng(0)
    stack += 0.01 * rng.normal(size=stack.shape)
    stack[[0, 3, 6, 9], 0, 0] = [0.20, 0.22, 0.24, 0.10]
    return dates, stack


def test_anomaly_of_a_pixel_is_its_distance_from_the_other_years_in_sigma():
    dates, stack = _series()
    plan = drought.plan(dates)
    assert plan.period_days == 10 and plan.periods[:3] == [0, 1, 2] and plan.periods[9] == 0
    a = drought.anomalies(stack, plan)
    others = np.array([0.20, 0.22, 0.24])
    assert a[9, 0, 0] == pytest.approx((0.10 - others.mean()) / others.std(ddof=1))   # the dry year: −6 σ
    others = np.array([0.22, 0.24, 0.10])
    assert a[0, 0, 0] == pytest.approx((0.20 - others.mean()) / others.std(ddof=1))


def test_a_leap_year_keeps_its_composites_in_their_periods():
    assert drought.calendar_period(dt.date(2020, 12, 27), 8) == drought.calendar_period(dt.date(2019, 12, 27), 8)
    assert drought.calendar_period(dt.date(2020, 2, 29), 8) == drought.calendar_period(dt.date(2019, 2, 28), 8)


def test_share_of_dry_pixels_per_date_and_a_climatology_reference():
    dates, stack = _series()
    plan = drought.plan(dates)
    out = {}
    shares = drought.stream_anomalies(lambda r0, n: stack[:, r0:r0 + n], 2, 2, plan,
                                      lambda r0, block: out.__setitem__(r0, block), block_pixels=12)
    assert sorted(out) == [0, 1]                     # streamed one row at a time
    a = np.concatenate([out[0], out[1]], axis=1)
    np.testing.assert_allclose(a, drought.anomalies(stack, plan), equal_nan=True)
    expected = [(np.sum(a[t] < -1.0) / np.isfinite(a[t]).sum()) for t in range(len(dates))]
    np.testing.assert_allclose(shares, expected)
    assert shares[9] >= 0.25                         # the dry pixel of 2022
    # against a climatology of the first three years only (all of them, no leave-one-out)
    clim_plan = drought.plan(dates[9:], 10, dates[:9])
    c = drought.anomalies(stack[9:], clim_plan, reference=stack[:9])
    others = np.array([0.20, 0.22, 0.24])
    assert c[0, 0, 0] == pytest.approx((0.10 - others.mean()) / others.std(ddof=1))


def test_too_few_reference_years_give_no_anomaly():
    dates = [dt.date(2019, 1, 1), dt.date(2020, 1, 1)]
    a = drought.anomalies(np.ones((2, 1, 1)), drought.plan(dates, 10))
    assert np.isnan(a).all()
