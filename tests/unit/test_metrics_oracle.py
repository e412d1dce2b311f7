"""The station metrics against a peer: pytesmo (TU Wien's soil-moisture validation toolbox).

pytesmo is a dev-only dependency, installed by ``scripts/setup.sh dev`` with ``--no-deps`` (see
requirements-dev-nodeps.txt): the two modules used here need only numpy and scipy —
``pytesmo.metrics.pairwise`` (bias, RMSD, ubRMSD, Pearson R, mean absolute difference) and
``pytesmo.time_series.filters.boxcar_filter``, the moving average behind pytesmo's
``calc_anomaly``, which gives the anomaly R. Mapping: our ``bias`` = mean(product − in-situ) =
``pairwise.bias(product, in_situ)``; ``rmse`` = ``rmsd``; ``ubrmse`` = ``ubrmsd``; ``mae`` = ``aad``.
"""
from __future__ import annotations

import datetime as dt
import glob
from pathlib import Path

import numpy as np
import pytest
from pytesmo.metrics import pairwise
from pytesmo.time_series.filters import boxcar_filter

from core.evaluation.metrics import pair_metrics
from core.evaluation.stations import read_insitu_csv, read_stations_csv, sample_raster_series

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "delaware"
DAY0 = dt.date(2018, 1, 1)


def _pytesmo(obs: np.ndarray, est: np.ndarray, days: np.ndarray, window: float = 30.0) -> dict[str, float]:
    """pytesmo's metrics on the pairs where both values are finite."""
    ok = np.isfinite(obs) & np.isfinite(est)
    o, e, t = obs[ok], est[ok], days[ok].astype(np.float64)
    order = np.argsort(t, kind="stable")  # boxcar_filter walks a sorted series
    o, e, t = o[order], e[order], t[order]
    anom_o = o - boxcar_filter(o, t, window=window)
    anom_e = e - boxcar_filter(e, t, window=window)
    return {"n": float(o.size), "bias": pairwise.bias(e, o), "rmse": pairwise.rmsd(e, o),
            "ubrmse": pairwise.ubrmsd(e, o), "r": pairwise.pearson_r(o, e), "mae": pairwise.aad(e, o),
            "anomaly_r": pairwise.pearson_r(anom_o, anom_e)}


def _compare(obs, est, days):
    dates = [DAY0 + dt.timedelta(days=int(d)) for d in days]
    ours = pair_metrics(obs, est, dates, anomaly_window_days=30)
    peer = _pytesmo(np.asarray(obs, float), np.asarray(est, float), np.asarray(days))
    for key, value in peer.items():
        assert ours[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    return ours


@pytest.mark.parametrize("seed", range(5))
def test_random_series_with_gaps_agree_with_pytesmo(seed):
    rng = np.random.default_rng(seed)
    n = 200
    days = np.sort(rng.choice(np.arange(400), size=n, replace=False))  # irregular sampling
    season = 0.25 + 0.08 * np.sin(2 * np.pi * days / 365.0)
    wet = rng.normal(0, 0.03, n)  # short-term wetting and drying both series see
    obs = season + wet + rng.normal(0, 0.02, n)
    est = 0.8 * season + 0.07 + 0.7 * wet + rng.normal(0, 0.02, n)
    obs[rng.random(n) < 0.15] = np.nan
    est[rng.random(n) < 0.10] = np.nan
    m = _compare(obs, est, days)
    assert m["n"] > 100 and 0 < m["anomaly_r"] < m["r"] < 1  # the seasonal cycle inflates R, as it should


def test_real_series_esa_cci_against_deos_agree_with_pytesmo():
    stations = read_stations_csv(str(SAMPLE / "deos_stations.csv"))
    dates, insitu = read_insitu_csv(str(SAMPLE / "deos_daily_vwc.csv"))
    pdates, pvals = sample_raster_series(sorted(glob.glob(str(SAMPLE / "esa_cci_sm" / "*.tif"))), stations)
    pos = {d: i for i, d in enumerate(dates)}
    days = np.array([(d - DAY0).days for d in pdates])
    compared = 0
    for j, st in enumerate(stations):
        obs = np.array([insitu[st.id][pos[d]] if d in pos else np.nan for d in pdates])
        if np.count_nonzero(np.isfinite(obs) & np.isfinite(pvals[:, j])) < 10:
            continue
        _compare(obs, pvals[:, j], days)
        compared += 1
    assert compared >= 5
