"""Site metrics checked against values worked out by hand (written down below)."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from core.evaluation.metrics import METRIC_KEYS, as_float, moving_average, pair_metrics, summarize

D0 = dt.date(2018, 1, 1)


def _days(*offsets: int) -> list[dt.date]:
    return [D0 + dt.timedelta(days=k) for k in offsets]


def test_three_pairs_by_hand():
    # obs = [0.1, 0.2, 0.3], est = [0.15, 0.2, 0.4]
    # differences est − obs = [0.05, 0, 0.10]
    # bias = 0.15 / 3 = 0.05 ; MAE = 0.05
    # MSE = (0.0025 + 0 + 0.01) / 3 = 0.0041667 -> RMSE = 0.0645497
    # ubRMSE² = 0.0041667 − 0.0025 = 0.0016667 -> ubRMSE = 0.0408248
    # deviations: obs [-0.1, 0, 0.1], est [-0.1, -0.05, 0.15]
    # Σxy = 0.01 + 0 + 0.015 = 0.025 ; Σx² = 0.02 ; Σy² = 0.01 + 0.0025 + 0.0225 = 0.035
    # slope = 0.025 / 0.02 = 1.25 ; r = 0.025 / sqrt(0.02 · 0.035) = 0.9449112
    m = pair_metrics([0.1, 0.2, 0.3], [0.15, 0.2, 0.4])
    assert list(m) == list(METRIC_KEYS)
    assert m["n"] == 3
    assert m["bias"] == pytest.approx(0.05)
    assert m["mae"] == pytest.approx(0.05)
    assert m["rmse"] == pytest.approx(0.0645497, abs=1e-7)
    assert m["ubrmse"] == pytest.approx(0.0408248, abs=1e-7)
    assert m["slope"] == pytest.approx(1.25)
    assert m["r"] == pytest.approx(0.9449112, abs=1e-7)
    assert math.isnan(m["anomaly_r"])  # no dates given


def test_non_finite_pairs_are_dropped():
    m = pair_metrics([0.1, np.nan, 0.2, 0.3, 0.5], [0.15, 0.3, 0.2, 0.4, np.inf])
    assert m["n"] == 3
    assert m["bias"] == pytest.approx(0.05)
    assert m["r"] == pytest.approx(0.9449112, abs=1e-7)


def test_too_few_pairs_gives_nan_but_counts():
    m = pair_metrics([0.1, 0.2, np.nan], [0.1, 0.3, 0.2])
    assert m["n"] == 2
    assert all(math.isnan(m[k]) for k in METRIC_KEYS if k != "n")
    assert not math.isnan(pair_metrics([0.1, 0.2], [0.1, 0.3], min_pairs=2)["bias"])


def test_constant_series():
    # est constant: r undefined, slope = 0, bias/ubRMSE still defined.
    m = pair_metrics([0.1, 0.2, 0.3], [0.2, 0.2, 0.2])
    assert math.isnan(m["r"])
    assert m["slope"] == pytest.approx(0.0)
    assert m["bias"] == pytest.approx(0.0)
    # ubRMSE = std of differences [0.1, 0, -0.1] = sqrt(0.02/3) = 0.0816497
    assert m["ubrmse"] == pytest.approx(0.0816497, abs=1e-7)
    # obs constant: r and slope undefined.
    m = pair_metrics([0.3, 0.3, 0.3], [0.1, 0.2, 0.4])
    assert math.isnan(m["r"]) and math.isnan(m["slope"])


def test_identical_series_has_zero_error_without_negative_rounding():
    x = [0.1, 0.2, 0.3, 0.37]
    m = pair_metrics(x, [v + 0.02 for v in x])
    assert m["bias"] == pytest.approx(0.02)
    assert m["ubrmse"] == pytest.approx(0.0, abs=1e-9)  # rmse² − bias² may round below 0
    assert m["r"] == pytest.approx(1.0)


def test_anomaly_r_by_hand():
    # Dates at days 0, 10, 20, 30; the ±15-day window of each date holds:
    #   d0: {0,10}  d10: {0,10,20}  d20: {10,20,30}  d30: {20,30}
    # obs = [1, 2, 4, 8]: moving averages 1.5, 7/3, 14/3, 6 -> anomalies -0.5, -1/3, -2/3, 2
    # est = [2, 1, 3, 5]: moving averages 1.5, 2, 3, 4 -> anomalies 0.5, -1, 0, 1
    # centred: a = [-0.625, -0.458333, -0.791667, 1.875], b = [0.375, -1.125, -0.125, 0.875]
    # Σab = 2.020833, Σa² = 4.743056, Σb² = 2.1875 -> R = 2.020833 / 3.221092 = 0.627375
    m = pair_metrics([1, 2, 4, 8], [2, 1, 3, 5], _days(0, 10, 20, 30))
    assert m["anomaly_r"] == pytest.approx(0.627375, abs=1e-6)
    # Order of the pairs does not matter.
    m2 = pair_metrics([8, 1, 4, 2], [5, 2, 3, 1], _days(30, 0, 20, 10))
    assert m2["anomaly_r"] == pytest.approx(m["anomaly_r"])


def test_anomaly_r_short_series_equals_r():
    # All dates within ±15 days of each other: the moving average is the series mean,
    # so the anomalies are the deviations and anomaly R equals R (0.9449112 above).
    m = pair_metrics([0.1, 0.2, 0.3], [0.15, 0.2, 0.4], _days(0, 5, 12))
    assert m["anomaly_r"] == pytest.approx(0.9449112, abs=1e-7)


def test_anomaly_r_undefined_when_each_value_is_its_own_average():
    # Dates 20 days apart: each window holds one value, anomalies are all 0.
    m = pair_metrics([0.1, 0.2, 0.3], [0.15, 0.2, 0.4], _days(0, 20, 40))
    assert math.isnan(m["anomaly_r"])
    assert m["r"] == pytest.approx(0.9449112, abs=1e-7)


def test_anomaly_r_accepts_datetime64_and_day_numbers():
    ref = pair_metrics([1, 2, 4, 8], [2, 1, 3, 5], _days(0, 10, 20, 30))["anomaly_r"]
    d64 = np.array(["2018-01-01", "2018-01-11", "2018-01-21", "2018-01-31"], dtype="datetime64[D]")
    assert pair_metrics([1, 2, 4, 8], [2, 1, 3, 5], list(d64))["anomaly_r"] == pytest.approx(ref)
    assert pair_metrics([1, 2, 4, 8], [2, 1, 3, 5], [0, 10, 20, 30])["anomaly_r"] == pytest.approx(ref)


def test_anomaly_window_parameter():
    # Window 60 days (±30): every window holds all four values -> anomaly R = R.
    m = pair_metrics([1, 2, 4, 8], [2, 1, 3, 5], _days(0, 10, 20, 30), anomaly_window_days=60)
    assert m["anomaly_r"] == pytest.approx(m["r"])


def test_moving_average_by_hand():
    out = moving_average(np.array([0, 10, 40]), np.array([1.0, 3.0, 5.0]), 15)
    assert out.tolist() == [2.0, 2.0, 5.0]


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="differ in length"):
        pair_metrics([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="dates"):
        pair_metrics([0.1, 0.2], [0.1, 0.2], _days(0))


def test_summarize_ignores_nan_and_reads_strings():
    rows = [{"r": 0.5}, {"r": "0.7"}, {"r": ""}, {"r": float("nan")}, {"r": 0.9}, {}]
    s = summarize(rows, "r")
    assert s == {"mean": pytest.approx(0.7), "median": pytest.approx(0.7), "n_sites": 3.0}
    # even count: median is the mean of the middle two: [0.1, 0.2, 0.4, 1.0] -> 0.3 ; mean 0.425
    s = summarize([{"x": v} for v in (1.0, 0.1, 0.4, 0.2)], "x")
    assert s["median"] == pytest.approx(0.3) and s["mean"] == pytest.approx(0.425)
    s = summarize([], "r")
    assert s["n_sites"] == 0 and math.isnan(s["mean"])


def test_as_float():
    assert as_float(" 0.25 ") == 0.25
    assert math.isnan(as_float("n/a")) and math.isnan(as_float(None)) and math.isnan(as_float(""))
