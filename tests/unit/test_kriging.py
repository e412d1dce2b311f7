"""Area-to-point / area-to-area kriging and variogram deconvolution against known answers."""
import numpy as np
import pytest

from core.learn.geostat.deconvolution import deconvolve, regularize
from core.learn.geostat.kriging import BlockCovariance, OrdinaryKriging, PointCovariance
from core.learn.geostat.variogram import VariogramModel, fit_variogram, lattice_variogram
from core.methods.residual import AtpkResidual, BilinearResidual, PointKrigingResidual, ResidualGeometry
from core.raster.aggregate import CellAccumulator
from core.raster.grid import Grid, cell_index, cell_pixel_blocks

CRS = "EPSG:32618"  # metres


def _grids(rows, cols, coarse_m, fine_m):
    coarse = Grid(CRS, 500000.0, 4400000.0, coarse_m, coarse_m, cols, rows)
    n_r, n_c = int(rows * coarse_m // fine_m), int(cols * coarse_m // fine_m)
    fine = Grid(CRS, 500000.0, 4400000.0, fine_m, fine_m, n_c, n_r)
    return fine, coarse


def _geometry(fine, coarse, block_pixels=4096):
    return ResidualGeometry(fine, coarse, list(fine.windows(block_pixels)), None,
                            lambda w: cell_index(fine, coarse, w))


def _residuals(coarse, n_dates=2, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:coarse.height, 0:coarse.width]
    return [(0.03 * np.sin(x / 2.5 + t) + 0.02 * np.cos(y / 3.0) + 0.01 * rng.normal(size=x.shape)).ravel()
            .astype(np.float32) for t in range(n_dates)]


def _predict_all(fitted, geometry, t):
    acc = CellAccumulator(geometry.coarse.size)
    values, variances = [], []
    for w in geometry.windows:
        v, var = fitted.predict(t, w)
        acc.add(v, geometry.cell_index(w))
        values.append(v)
        variances.append(var)
    return acc.mean(), np.vstack(values), (np.vstack(variances) if variances[0] is not None else None)


def test_block_covariances_equal_brute_force_averages_for_a_non_integer_ratio():
    fine, coarse = _grids(3, 4, 2500.0, 1000.0)            # 2.5 fine pixels per cell side
    blocks = cell_pixel_blocks(fine, coarse)
    sizes = {(b[1] - b[0], b[3] - b[2]) for b in blocks}
    assert sizes == {(2, 2), (2, 3), (3, 2), (3, 3)}      # uneven cells, as the ratio demands
    model = VariogramModel("spherical", 2.0, 4000.0)
    bc = BlockCovariance(model, 1000.0, 1000.0, blocks, fine.height, fine.width)

    def pixels(b):
        r, c = np.mgrid[b[0]:b[1], b[2]:b[3]]
        return np.column_stack([r.ravel(), c.ravel()]) * 1000.0

    for i, j in [(0, 0), (0, 5), (3, 8), (11, 2)]:
        d = pixels(blocks[i])[:, None, :] - pixels(blocks[j])[None, :, :]
        assert bc.between(np.array(i), np.array(j)) == pytest.approx(model.covariance(np.hypot(d[..., 0], d[..., 1])).mean(), rel=1e-10)
    rows, cols = np.array([0, 4, 6]), np.array([1, 9])
    got = bc.pixels_to_blocks(rows[None], cols[None], np.array([[0, 7]]))[0]
    for a, r in enumerate(rows):
        for b, c in enumerate(cols):
            for k, j in enumerate([0, 7]):
                d = pixels(blocks[j]) - np.array([r, c]) * 1000.0
                assert got[a, b, k] == pytest.approx(model.covariance(np.hypot(d[:, 0], d[:, 1])).mean(), rel=1e-10)


@pytest.mark.parametrize("coarse_m, fine_m", [(5000.0, 1000.0), (2500.0, 1000.0)])
def test_area_to_point_kriging_is_coherent(coarse_m, fine_m):
    fine, coarse = _grids(8, 9, coarse_m, fine_m)
    g = _geometry(fine, coarse, block_pixels=3 * fine.width)   # several row blocks cut through cells
    res = _residuals(coarse)
    res[1][[3, 40]] = np.nan                                   # missing cells on the second date
    fitted = AtpkResidual(neighbours=25).fit(res, g, lambda: False)
    for t in range(2):
        cell_mean, values, var = _predict_all(fitted, g, t)
        ok = np.isfinite(res[t])
        np.testing.assert_allclose(cell_mean[ok], res[t][ok], atol=1e-6)
        assert np.all(np.isfinite(values))                    # missing cells are predicted from neighbours
        assert np.nanmin(var) >= 0.0
    log = fitted.log()["variogram"]
    assert log["point_model"]["sill"] > 0 and len(log["sill_per_date"]) == 2


def test_point_kriging_and_bilinear_are_not_coherent_but_smooth():
    fine, coarse = _grids(8, 9, 5000.0, 1000.0)
    g = _geometry(fine, coarse)
    res = _residuals(coarse)
    for model in (PointKrigingResidual(), BilinearResidual(passes=0)):
        cell_mean, values, _ = _predict_all(model.fit(res, g, lambda: False), g, 0)
        assert np.max(np.abs(cell_mean - res[0])) > 1e-3, model.name  # smoothing leaks between cells
        # ... but they interpolate: the residual field is reproduced to within its own spread
        assert np.corrcoef(cell_mean, res[0])[0, 1] > 0.9


def test_point_support_limit_equals_point_kriging():
    # cells of 5×5 pixels whose data support is the single centre pixel: block kriging with
    # one-pixel blocks must give ordinary point kriging from the cell centres
    fine, coarse = _grids(6, 7, 5000.0, 1000.0)
    blocks = cell_pixel_blocks(fine, coarse)
    centre = np.column_stack([blocks[:, 0] + 2, blocks[:, 0] + 3, blocks[:, 2] + 2, blocks[:, 2] + 3])
    model = VariogramModel("exponential", 1.0, 12000.0)
    block_cov = BlockCovariance(model, 1000.0, 1000.0, centre, fine.height, fine.width)
    point_cov = PointCovariance(model, 1000.0, 1000.0, centre[:, [0, 2]] + 0.5)
    xy = (centre[:, [2, 0]] + 0.5) * 1000.0
    data = np.flatnonzero(np.arange(coarse.size) % 5 != 0)
    z = np.random.default_rng(2).normal(size=coarse.size)
    a, b = OrdinaryKriging(block_cov, xy[data], data, 12), OrdinaryKriging(point_cov, xy[data], data, 12)
    targets = np.arange(coarse.size)
    nb_a, inv_a = a.systems(xy[targets])
    nb_b, inv_b = b.systems(xy[targets])
    np.testing.assert_array_equal(nb_a, nb_b)
    for j in (0, 8, 17, 41):
        rows, cols = np.arange(blocks[j, 0], blocks[j, 1]), np.arange(blocks[j, 2], blocks[j, 3])
        pa, va = a.predict_cell(rows, cols, nb_a[j], inv_a[j], z[nb_a[j]])
        pb, vb = b.predict_cell(rows, cols, nb_b[j], inv_b[j], z[nb_b[j]])
        np.testing.assert_allclose(pa, pb, atol=1e-9)
        np.testing.assert_allclose(va, vb, atol=1e-9)
    # point kriging honours its data: zero variance and the datum at a data centre pixel
    j = data[3]
    p, v = b.predict_cell(np.array([centre[j, 0]]), np.array([centre[j, 2]]), nb_b[j], inv_b[j], z[nb_b[j]])
    assert p[0, 0] == pytest.approx(z[j], abs=1e-6) and v[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_area_to_area_variance_is_zero_at_data_blocks_and_positive_elsewhere():
    fine, coarse = _grids(6, 6, 4000.0, 1000.0)
    blocks = cell_pixel_blocks(fine, coarse)
    model = VariogramModel("exponential", 1.0, 10000.0)
    cov = BlockCovariance(model, 1000.0, 1000.0, blocks, fine.height, fine.width)
    xy = (blocks[:, [2, 0]] + 2.0) * 1000.0
    data = np.flatnonzero(np.arange(coarse.size) != 14)
    z = np.random.default_rng(5).normal(size=coarse.size)
    ok = OrdinaryKriging(cov, xy[data], data, 25)
    pred, var = ok.predict_blocks(blocks, xy, z)
    np.testing.assert_allclose(pred[data], z[data], atol=1e-6)
    np.testing.assert_allclose(var[data], 0.0, atol=1e-6)
    assert var[14] > 0.01                       # the missing block is uncertain
    # a block straddling four data cells: positive but smaller than the missing block's
    straddle = np.array([[2, 6, 2, 6]])
    _, v2 = ok.predict_blocks(straddle, np.array([[4000.0, 4000.0]]), z)
    assert 0.0 < v2[0] < var[14]


def test_deconvolution_recovers_a_known_point_variogram():
    true = VariogramModel("exponential", 1.0, 12.0)          # metres; pixels of 1 m
    n, r = 40, 4
    yy, xx = np.mgrid[0:n, 0:n]
    pts = np.column_stack([yy.ravel(), xx.ravel()]).astype(float)
    cov = true.covariance(np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1]))
    chol = np.linalg.cholesky(cov + 1e-9 * np.eye(len(cov)))
    rng = np.random.default_rng(3)
    blocks = [(chol @ rng.normal(size=len(cov))).reshape(n, n).reshape(n // r, r, n // r, r).mean(axis=(1, 3))
              for _ in range(60)]
    areal = lattice_variogram(blocks, float(r), float(r), 5)
    point, areal_fit, info = deconvolve(areal, float(r), float(r), r, r)
    assert areal_fit.sill < 0.75                          # block averaging hides a third of the variance
    assert point.sill == pytest.approx(1.0, rel=0.15)
    assert point.range == pytest.approx(12.0, rel=0.2)
    assert info["D_final"] < info["D_initial"]
    # and regularising the recovered model reproduces the areal variogram
    reg = regularize(point, areal.offsets, float(r), float(r), r, r)
    big = areal.offset_count > 200
    np.testing.assert_allclose(reg[big], areal.offset_gamma[big], rtol=0.15)


def test_fit_variogram_recovers_model_parameters_from_exact_values():
    m = VariogramModel("spherical", 0.004, 30000.0)
    lags = np.linspace(2000, 50000, 20)
    fit = fit_variogram(lags, m.gamma(lags), np.full(20, 100), "spherical")
    assert fit.sill == pytest.approx(0.004, rel=1e-3) and fit.range == pytest.approx(30000.0, rel=1e-3)


def test_the_residual_is_chosen_one_scale_up():
    from core.methods.residual import make_residual
    from core.methods.residual.auto import one_scale_up_scores
    fine, coarse = _grids(12, 12, 4000.0, 1000.0)
    g = _geometry(fine, coarse)
    rng = np.random.default_rng(4)
    y, x = np.mgrid[0:12, 0:12]
    smooth = [(0.03 * np.sin(x / 3.0 + t) * np.cos(y / 4.0)).ravel().astype(np.float32) for t in range(6)]
    noise = [(0.03 * rng.normal(size=(12, 12))).ravel().astype(np.float32) for _ in range(6)]
    auto = make_residual("auto")
    # a smooth residual: interpolating neighbouring blocks reproduces the cells far better than uniform
    scores = one_scale_up_scores(smooth, coarse, auto.candidates, lambda: False)
    assert min(scores["bilinear"]["cell_ubrmse"], scores["atpk"]["cell_ubrmse"]) < 0.5 * scores["uniform"]["cell_ubrmse"]
    assert auto.fit(smooth, g, lambda: False).log()["residual"] in ("bilinear", "atpk")
    # white noise: neighbours tell nothing about a cell, and uniform is kept
    chosen = auto.fit(noise, g, lambda: False).log()
    assert chosen["residual"] == "uniform" and set(chosen["one_scale_up"]) == {"uniform", "bilinear", "atpk"}


def test_kriging_refuses_a_pixel_too_fine_with_a_clear_message(monkeypatch):
    import core.methods.residual.kriged as kriged
    from core.errors import InputError
    fine, coarse = _grids(10, 10, 5000.0, 1000.0)
    monkeypatch.setattr(kriged, "_MAX_TABLE", 1000)        # as if the fine pixels were far smaller
    with pytest.raises(InputError, match="covariance tables would not fit"):
        AtpkResidual().fit(_residuals(coarse), _geometry(fine, coarse), lambda: False)


def test_auto_falls_back_to_the_next_best_when_the_winner_cannot_be_fitted():
    from core.errors import InputError
    from core.methods.residual import AutoResidual, UniformResidual
    fine, coarse = _grids(10, 10, 5000.0, 1000.0)
    g = _geometry(fine, coarse)
    y, x = np.mgrid[0:10, 0:10]
    smooth = [(0.03 * np.sin(x / 3.0 + t) * np.cos(y / 4.0)).ravel().astype(np.float32) for t in range(4)]

    class RefusedOnTheFineGrid(AtpkResidual):
        def fit(self, residuals, geometry, canceled):
            if geometry.fine == fine:
                raise InputError(problem="too fine")
            return super().fit(residuals, geometry, canceled)

    log = AutoResidual([UniformResidual(), RefusedOnTheFineGrid()]).fit(smooth, g, lambda: False).log()
    assert log["one_scale_up"]["atpk"]["cell_ubrmse"] < log["one_scale_up"]["uniform"]["cell_ubrmse"]
    assert log["residual"] == "uniform" and log["refused_on_the_fine_grid"] == {"atpk": "too fine"}


def test_auto_ranks_the_candidates_as_they_are_not_by_their_fitted_weights(monkeypatch):
    # the weights are least-squares fits to the cells that score them: ranked by the weighted scores,
    # a candidate no better than uniform as it is would win on its in-sample fit alone
    import core.methods.residual.auto as auto_mod
    from core.methods.residual import AutoResidual, BilinearResidual, UniformResidual
    fine, coarse = _grids(10, 10, 5000.0, 1000.0)
    g = _geometry(fine, coarse)
    table = {"uniform": {"cell_ubrmse": 0.0100, "weighted_cell_ubrmse": 0.0100},
             "bilinear": {"cell_ubrmse": 0.0101, "weighted_cell_ubrmse": 0.0095,
                          "beta_static": 1.0, "beta_dynamic": 0.6}}
    monkeypatch.setattr(auto_mod, "one_scale_up_scores", lambda *a: table)
    residuals = _residuals(coarse)
    chosen = AutoResidual([UniformResidual(), BilinearResidual()], shrink=True).fit(residuals, g, lambda: False)
    assert chosen.log()["residual"] == "uniform"
    table["bilinear"]["cell_ubrmse"] = 0.0090          # better as it is, by more than the margin
    chosen = AutoResidual([UniformResidual(), BilinearResidual()], shrink=True).fit(residuals, g, lambda: False)
    assert chosen.name == "bilinear"
