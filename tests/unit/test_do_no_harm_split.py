"""Do no harm at stations: the trend weight split into its static and dynamic parts, and the residual's
departure from the uniform one weighted one scale up — on synthetic fields whose answer is known."""
import datetime as dt

import numpy as np
import pytest

from core.inputs.roles import Role
from core.methods.regression import RegressionOptions, downscale
from core.methods.residual import AtpkResidual, BilinearResidual, ResidualGeometry, ShrunkResidual
from core.methods.shrinkage import shrinkage_weight, static_dynamic
from core.methods.trend_weight import trend_weight
from core.raster.grid import Grid, Window, cell_index

from tests.unit.test_do_no_harm import DATES, K, N, _block_mean, _read, _scene

CELLS = 14   # coarse cells per side of the sample grids
T = 24       # dates


def _samples(rng):
    """Every (cell, date) of a CELLS × CELLS grid: flat cell index, date, row/col and centres (metres)."""
    cell = np.repeat(np.arange(CELLS * CELLS), T)
    date = np.tile(np.arange(T), CELLS * CELLS)
    rows, cols = np.divmod(np.arange(CELLS * CELLS), CELLS)
    xy = np.column_stack([(cols + 0.5) * 1000.0, (rows + 0.5) * 1000.0])
    return cell, date, np.column_stack([rows, cols]), xy


def _linear_fit(extra=lambda X: 0.0):
    """``fit_predict`` of a least-squares line on the first column, plus ``extra(X)`` (a fixed claim)."""
    def fit_predict(X_train, y_train, X):
        A = np.column_stack([X_train[:, 0], np.ones(len(X_train))])
        coef, *_ = np.linalg.lstsq(A, y_train, rcond=None)
        return coef[0] * X[:, 0] + coef[1] + extra(X)
    return fit_predict


def test_a_trend_whose_dynamic_part_is_noise_keeps_only_its_static_weight():
    rng = np.random.default_rng(3)
    cell, date, rc, xy = _samples(rng)
    static = rng.normal(size=CELLS * CELLS)                      # a static covariate, rough in space
    season = 0.05 * np.sin(np.arange(T) / 3.0)
    y = 0.25 + season[date] + 0.04 * static[cell] + 0.003 * rng.normal(size=len(cell))
    X = np.column_stack([static[cell], date])
    # the trend gets the static pattern right and claims a date-to-date pattern that is not there
    claim = lambda X: 0.02 * X[:, 0] * np.sin(1.7 * X[:, 1])     # noqa: E731
    tw = trend_weight(_linear_fit(claim), X, y, cell, date, rc, xy)
    assert tw["trend_weight_static"] > 0.9, tw
    assert tw["trend_weight_dynamic"] < 0.05, tw
    assert tw["cv_ubrmse_weighted"] < tw["cv_ubrmse_trend"]


def test_a_trend_whose_dynamic_part_is_real_keeps_it():
    rng = np.random.default_rng(4)
    cell, date, rc, xy = _samples(rng)
    ndvi = rng.uniform(0.2, 0.8, size=len(cell))                 # dated, varies cell by cell and date by date
    y = 0.1 + 0.3 * ndvi + 0.002 * rng.normal(size=len(cell))
    tw = trend_weight(_linear_fit(), np.column_stack([ndvi, date]), y, cell, date, rc, xy)
    assert tw["trend_weight_dynamic"] > 0.95 and tw["trend_weight_static"] > 0.9, tw


def test_shrinkage_weight_knows_least_squares_and_distrusts_one_group():
    d = np.array([1.0, -1.0, 2.0, -2.0])
    assert shrinkage_weight(0.5 * d, d) == pytest.approx(0.5)
    assert shrinkage_weight(-d, d) == 0.0 and shrinkage_weight(3 * d, d) == 1.0
    # the whole agreement carried by one of many groups: clustered by group, it is not confirmed
    rng = np.random.default_rng(0)
    d = rng.normal(size=400)
    e = rng.normal(size=400)
    e[:20] = d[:20] * 5
    group = np.arange(400) // 20
    assert shrinkage_weight(e, d, group) < 0.5 * shrinkage_weight(e, d)
    s, a = static_dynamic(np.array([1.0, 3.0, 10.0, np.nan]), np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(s, [2.0, 2.0, 10.0, 10.0])
    np.testing.assert_allclose(a[:3], [-1.0, 1.0, 0.0])


def test_a_detail_that_explains_nothing_is_confirmed_at_most_one_time_in_twenty():
    """The weight is a one-sided 95 % bound: for a detail unrelated to the observed departures, a positive
    weight is a false confirmation, and happens in about 5 % of samples (the James–Stein factor used before
    let through 15 % here)."""
    rng = np.random.default_rng(11)
    group = np.arange(600) // 12                                  # 50 clusters of 12 dependent samples
    confirmed = 0
    for _ in range(300):
        shared = rng.normal(size=50)[group]                       # within-cluster dependence
        d = shared + rng.normal(size=600)
        e = rng.normal(size=50)[group] + rng.normal(size=600)
        confirmed += shrinkage_weight(e, d, group) > 0
    assert confirmed / 300 < 0.09, confirmed
    # a real detail keeps most of its least-squares weight
    d = rng.normal(size=600)
    e = 0.6 * d + 0.3 * rng.normal(size=600)
    assert 0.5 < shrinkage_weight(e, d, group) <= shrinkage_weight(e, d) < 0.7


def test_the_standard_error_is_clustered_by_the_unit_of_independent_evidence():
    """Four copies of each sample (the cells of one 2×2 block sharing one piece of evidence): clustered by
    the copies' common unit, the weight is that of the single samples; clustered by copy it is overconfident."""
    rng = np.random.default_rng(12)
    d = rng.normal(size=80)
    e = 0.2 * d + rng.normal(size=80)
    unit = np.arange(80)
    single = shrinkage_weight(e, d, unit)
    e4, d4, block = np.repeat(e, 4), np.repeat(d, 4), np.repeat(unit, 4)
    assert shrinkage_weight(e4, d4, block) == pytest.approx(single)
    assert shrinkage_weight(e4, d4, np.arange(320)) > single + 0.05


def test_static_covariate_keeps_each_pixels_series_correlated_with_its_cell(make_raster, tmp_path):
    """Elevation-like covariate, soil moisture = a dated field per cell + a static pattern: the trend of
    (covariate, day of year) may only shift levels inside a cell, so with the uniform residual every
    pixel's series is its coarse cell's series plus a constant."""
    n = N * K
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:n, 0:n] / n
    elev = (np.sin(7 * xx) * np.cos(5 * yy) + 0.3 * rng.normal(size=(n, n))).astype(np.float32)
    cells = np.kron(rng.normal(size=(len(DATES), N, N)), np.ones((1, K, K)))   # each cell's own weather
    truth = [(0.25 + 0.01 * cells[i] + 0.04 * elev).astype(np.float32) for i in range(len(DATES))]
    scene = _scene(make_raster, truth, (100.0 + 20.0 * elev).astype(np.float32), role=Role.DEM)
    res = downscale(scene, str(tmp_path / "out.tif"),
                    RegressionOptions(regressor="rf", n_estimators=40, residual="uniform"))
    assert res.training["trend_weight_dynamic"] < 0.1, res.training
    assert res.training["trend_weight_static"] > 0.5, res.training
    got = _read(res.path).reshape(len(DATES), -1)
    coarse = np.stack([np.kron(scene.coarse_sm(t).reshape(N, N), np.ones((K, K))).ravel() for t in range(len(DATES))])
    # the series of every pixel against its cell's coarse series
    dg, dc = got - got.mean(axis=0), coarse - coarse.mean(axis=0)
    r = (dg * dc).sum(axis=0) / np.sqrt((dg ** 2).sum(axis=0) * (dc ** 2).sum(axis=0))
    assert np.min(r) > 0.97 and np.mean(r) > 0.99, (np.min(r), np.mean(r))
    # coherent: each cell still averages back to its coarse value
    for t in range(len(DATES)):
        np.testing.assert_allclose(_block_mean(_read(res.path)[t]), scene.coarse_sm(t).reshape(N, N), atol=1e-5)


def _residual_geometry(n_cells: int, k: int):
    coarse = Grid("", 0.0, n_cells * k * 100.0, k * 100.0, k * 100.0, n_cells, n_cells)
    fine = Grid("", 0.0, n_cells * k * 100.0, 100.0, 100.0, n_cells * k, n_cells * k)
    windows = list(fine.windows(1 << 20))
    return ResidualGeometry(fine, coarse, windows, support=None, cell_index=lambda w: cell_index(fine, coarse, w)), fine


def test_interpolated_residual_is_shrunk_to_uniform_where_cells_do_not_share_their_series():
    geom, fine = _residual_geometry(16, 4)
    rng = np.random.default_rng(6)
    noise = [rng.normal(size=16 * 16).astype(np.float32) for _ in range(12)]      # no spatial structure
    r, c = np.divmod(np.arange(16 * 16), 16)
    smooth = [(np.sin(0.35 * c + 0.2 * t) * np.cos(0.3 * r)).astype(np.float32) for t in range(12)]
    whole = Window(0, fine.height)
    for model in (BilinearResidual(3), AtpkResidual(25)):
        shrunk = ShrunkResidual(model).fit(noise, geom, lambda: False)
        log = shrunk.log()
        assert log["departure_weight_dynamic"] < 0.1, log
        # as it is, the candidate does not beat the uniform residual one scale up: its departure is left out
        assert log["departure_weight_static"] == log["departure_weight_dynamic"] == 0.0, log
        assert "did not beat the uniform residual" in log["note"], log
        smooth_fit = ShrunkResidual(model).fit(smooth, geom, lambda: False).log()
        assert smooth_fit["departure_weight_dynamic"] > 0.8 and smooth_fit["departure_weight_static"] > 0.8, smooth_fit
    # the shrunk ATPK stays coherent: each cell's pixels average back to its residual
    fitted = ShrunkResidual(AtpkResidual(25), betas=(0.7, 0.2)).fit(smooth, geom, lambda: False)
    for t in (0, 5):
        got = fitted.predict(t, whole)[0]
        np.testing.assert_allclose(got.reshape(16, 4, 16, 4).mean(axis=(1, 3)).ravel(), smooth[t], atol=1e-5)


def test_the_two_pattern_correlations_differ_exactly_by_the_cells_level():
    """``pattern_r`` measures departures from the coarse value, ``pattern_r_cell`` from the cell's own mean:
    an estimate with the right shape inside each cell but a level offset per cell scores 1 on the second only."""
    from core.evaluation.cross_scale_scores import score_series
    rng = np.random.default_rng(7)
    cell = np.repeat(np.arange(10), 4)                        # 10 cells of 4 pixels
    coarse = np.repeat(rng.uniform(0.1, 0.4, size=(6, 10)), 4, axis=1)
    shape = rng.normal(scale=0.02, size=(6, 40))
    shape -= np.repeat(shape.reshape(6, 10, 4).mean(axis=2), 4, axis=1)   # zero mean in each cell
    truth = coarse + shape
    offset = np.repeat(rng.normal(scale=0.05, size=(6, 10)), 4, axis=1)   # each cell's level off
    sc = score_series(truth + offset, truth, coarse, cell)
    assert sc["pattern_r_cell"] == pytest.approx(1.0)
    assert sc["pattern_r"] < 0.6
    assert sc["coverage"] == 1.0
    half = truth + offset
    half[:, :20] = np.nan
    assert score_series(half, truth, coarse, cell)["coverage"] == pytest.approx(0.5)


def test_the_trends_cv_scores_come_from_spatial_folds_that_do_not_leak_a_cells_dates():
    """A covariate that names each cell (unrelated to its soil moisture level) lets a memorising trend look
    skilful when a cell's other dates are in the training folds (random folds), not when whole cells are
    held out (the trend weight's folds, which now also give ``cv_r``)."""
    from sklearn.neighbors import KNeighborsRegressor

    from core.methods.trend import cv_scores
    rng = np.random.default_rng(13)
    cell, date, rc, xy = _samples(rng)
    tag = rng.permutation(CELLS * CELLS).astype(float)          # a static covariate unique to each cell
    level = rng.normal(size=CELLS * CELLS)                        # each cell's own level, not in the covariate
    y = 0.25 + 0.03 * level[cell] + 0.002 * rng.normal(size=len(cell))
    X = np.column_stack([tag[cell]])

    def memorise(X_train, y_train, X):
        return KNeighborsRegressor(1).fit(X_train, y_train).predict(X)

    tw = trend_weight(memorise, X, y, cell, date, rc, xy)
    assert abs(tw["cv_r"]) < 0.3 and tw["cv_folds"].startswith("5 folds of spatial blocks"), tw
    leaky = cv_scores(lambda: KNeighborsRegressor(1), X, y, seed=0)
    assert leaky["cv_r"] > 0.9, leaky
