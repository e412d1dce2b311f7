"""Covariate series preparation: masks, gap filling in time, Savitzky–Golay, spectral indices.

Known answers: linear interpolation by hand; Savitzky–Golay reproduces any polynomial up to its
order exactly (on any spacing) and equals scipy's filter on regular dates; index formulas by hand.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from osgeo import gdal
from scipy.signal import savgol_filter

from core.errors import Canceled, InputError
from core.inputs.indices import spectral_index
from core.inputs.series_prep import fill_gaps, quality_mask, savitzky_golay_weights, smooth
from core.io.covariate_series import SeriesOptions, prepare_series
from core.raster.align import BandRef

nan = np.nan


def test_fill_gaps_linear_within_the_limit_only():
    days = np.array([0, 8, 16, 24, 40, 56, 64])
    v = np.array([0.1, nan, 0.3, nan, nan, 0.7, nan])
    out = fill_gaps(v, days, max_gap_days=15)
    # day 8: 0.1…0.3 → 0.2; day 24: prev 16 (8 d), next 56 (32 d) → not filled; day 40: 24 d back → not;
    # day 64: nothing after → never extrapolated
    assert np.allclose(out, [0.1, 0.2, 0.3, nan, nan, 0.7, nan], equal_nan=True)
    wide = fill_gaps(v, days, max_gap_days=40)
    assert np.allclose(wide[3:5], [0.3 + 8 / 40 * 0.4, 0.3 + 24 / 40 * 0.4])
    assert np.array_equal(fill_gaps(v, days, 0), v, equal_nan=True)
    # pixels are independent: a second axis
    block = np.stack([v, v[::-1]], axis=1)
    assert np.allclose(fill_gaps(block, days, 15)[:, 0], out, equal_nan=True)


def test_savitzky_golay_equals_scipy_on_regular_dates_and_keeps_polynomials():
    rng = np.random.default_rng(3)
    y = rng.normal(size=23)
    w = savitzky_golay_weights(np.arange(23) * 8, half_width=5, order=4)
    assert np.allclose(w @ y, savgol_filter(y, 11, 4, mode="interp"), atol=1e-10)
    days = np.cumsum(rng.integers(5, 20, size=17)).astype(float)  # irregular
    t = (days - days.mean()) / 50
    poly = 0.3 - 0.2 * t + 0.05 * t ** 2 + 0.01 * t ** 3 - 0.02 * t ** 4
    assert np.allclose(savitzky_golay_weights(days, 5, 4) @ poly, poly, atol=1e-9)
    with pytest.raises(InputError, match="fewer than the smoothing window of 11"):
        savitzky_golay_weights(np.arange(10), 5, 4)
    with pytest.raises(InputError, match="order of 11 does not fit"):
        savitzky_golay_weights(np.arange(20), 5, 11)


def test_smooth_leaves_dates_whose_window_has_a_gap():
    days = np.arange(15) * 8.0
    y = np.sin(days / 30)
    y[12] = nan
    w = savitzky_golay_weights(days, 2, 2)
    out, applied = smooth(y, w)
    full, _ = smooth(np.sin(days / 30), w)
    window_has_gap = [i for i in range(15) if np.any(w[i] != 0) and w[i, 12] != 0]
    assert not applied[window_has_gap].any() and np.isnan(out[12])
    keep = [i for i in range(15) if i not in window_has_gap]
    assert np.allclose(out[keep], full[keep]) and np.allclose(out[window_has_gap[:-1]], y[window_has_gap[:-1]], equal_nan=True)


def test_quality_mask_values_and_bits():
    q = np.array([0, 1, 2, 3, 4, nan])
    assert quality_mask(q, (0, 1)).tolist() == [True, True, False, False, False, False]
    assert quality_mask(q, bad_bits=3).tolist() == [True, False, False, False, True, False]


def test_spectral_indices_by_hand():
    b = {"red": np.array([0.05]), "nir": np.array([0.35]), "blue": np.array([0.03]), "green": np.array([0.08]),
         "swir1": np.array([0.25]), "swir2": np.array([0.15])}
    assert spectral_index("ndvi", b)[0] == pytest.approx(0.30 / 0.40)
    assert spectral_index("evi", b)[0] == pytest.approx(2.5 * 0.30 / (0.35 + 0.30 - 0.225 + 1))
    assert spectral_index("ndwi", b)[0] == pytest.approx(-0.27 / 0.43)
    assert spectral_index("nsdsi", b)[0] == pytest.approx(0.10 / 0.25)
    assert np.isnan(spectral_index("ndvi", {"red": np.array([0.0]), "nir": np.array([0.0])})[0])
    with pytest.raises(InputError, match="EVI needs the blue band"):
        spectral_index("evi", {"red": b["red"], "nir": b["nir"]})


DATES = [dt.date(2018, 1, 1) + dt.timedelta(days=8 * k) for k in range(12)]


def _series(make_raster, name, planes, nodata=-9999.0, scale=None):
    refs = []
    for d, plane in zip(DATES, planes):
        p = make_raster(f"{name}_{d:%Y%m%d}.tif", np.asarray(plane, np.float32), nodata=nodata, scale=scale)
        refs.append(BandRef(str(p), 1, p.name, d))
    return refs


def test_prepare_series_fills_smooths_and_never_invents(make_raster, tmp_path):
    t = np.array([(d - DATES[0]).days for d in DATES], float)
    curve = 0.2 + 0.004 * t - 2e-5 * t ** 2          # a quadratic: SG (order 4) keeps it exactly
    planes = np.zeros((12, 2, 3), np.float32)
    planes[:, 0, 0] = curve
    planes[:, 0, 1] = curve
    planes[:, 0, 1][[4, 5]] = -9999.0                 # a 24-day hole: each gap ≤ 16 days from a value
    planes[:, 0, 2] = 0.5
    planes[:, 0, 2][3:8] = -9999.0                    # a 48-day hole: no date has values ≤ 16 days on both sides
    planes[:, 1, :] = 0.3
    planes[2, 1, 0] = 0.95                            # out of the valid range → masked, then filled
    out = str(tmp_path / "ready.tif")
    res = prepare_series(_series(make_raster, "ndvi", planes), out, SeriesOptions(valid_max=0.9, max_gap_days=16))
    ds = gdal.Open(out)
    data = ds.ReadAsArray()
    assert [ds.GetRasterBand(b + 1).GetDescription() for b in range(12)] == [d.isoformat() for d in DATES]
    assert np.allclose(data[:, 0, 0], curve, atol=1e-6)
    lin = curve.copy()
    lin[4], lin[5] = curve[3] + (curve[6] - curve[3]) / 3, curve[3] + 2 * (curve[6] - curve[3]) / 3
    # filled linearly; the dates whose window touches the filled values are smoothed from them
    assert np.allclose(data[[4, 5], 0, 1], [np.polyval(np.polyfit(t[:11], lin[:11], 4), t[k]) for k in (4, 5)], atol=1e-6)
    col = data[:, 0, 2]
    assert np.isnan(col[3:8]).all() and np.allclose(col[[2, 8]], 0.5)  # not even the ends of the hole
    assert np.allclose(data[:, 1, 0], 0.3, atol=1e-6)
    assert res.masked == 1 and res.missing == 5 and res.filled == 2 + 1
    with pytest.raises(Canceled):
        prepare_series(_series(make_raster, "c", planes), str(tmp_path / "c.tif"), is_canceled=lambda: True)
    assert not (tmp_path / "c.tif").exists()


def test_prepare_series_index_from_bands_with_quality(make_raster, tmp_path):
    red = [np.full((2, 2), 500, np.int16) for _ in DATES]    # raw ×10000
    nir = [np.full((2, 2), 3500, np.int16) for _ in DATES]
    qa = [np.zeros((2, 2), np.uint8) for _ in DATES]
    qa[6][0, 0] = 2                                           # cloudy on one date
    bands = {"red": _series(make_raster, "b1", red, nodata=-28672),
             "nir": _series(make_raster, "b2", nir, nodata=-28672)}
    quality = _series(make_raster, "qa", qa, nodata=255)
    with pytest.raises(InputError, match="look like scaled integers"):
        prepare_series(None, str(tmp_path / "x.tif"), SeriesOptions(smooth=False), "ndvi", bands)
    out = str(tmp_path / "ndvi.tif")
    res = prepare_series(None, out, SeriesOptions(reflectance_scale=0.0001, quality_values=(0, 1)), "ndvi", bands, quality)
    data = gdal.Open(out).ReadAsArray()
    assert np.allclose(data, 0.75, atol=1e-6)                 # the cloudy value is refilled from its neighbours
    assert res.masked == 1 and res.filled == 1
    bands["nir"] = bands["nir"][:-1]
    with pytest.raises(InputError, match="its dates differ"):
        prepare_series(None, str(tmp_path / "y.tif"), SeriesOptions(reflectance_scale=1e-4), "ndvi", bands)
