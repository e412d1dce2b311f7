"""Residual choices in the regression pipeline, the cross-validated trend weight (do no harm), and
SVATARK — on synthetic scenes whose fine truth is known."""
import datetime as dt
import json

import numpy as np
import pytest
from osgeo import gdal

from core.evaluation.stations import Station
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec
from core.methods import svatark
from core.methods.regression import RegressionOptions, downscale
from core.raster.align import BandRef
from core.raster.grid import Window, bilinear_from_cells

K = 6          # fine pixels per coarse cell side
N = 9          # coarse cells per side
DATES = [dt.date(2018, 1, d) for d in (3, 10, 17, 24, 31)]
ORIGIN = (500000.0, 4400000.0)


def _block_mean(a):
    return a.reshape(N, K, N, K).mean(axis=(1, 3))


def _smooth_truth():
    n = N * K
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n
    return [(0.22 + 0.06 * np.sin(3.0 * x + 0.7 * i) * np.cos(2.5 * y) + 0.01 * i).astype(np.float32)
            for i in range(len(DATES))]


def _scene(make_raster, fields, covariate, role=Role.NDVI, extra=()):
    sm = [make_raster(f"sm_{d:%Y%m%d}.tif", _block_mean(f), origin=ORIGIN, pixel=(K * 1000.0, K * 1000.0))
          for d, f in zip(DATES, fields)]
    cov = make_raster("cov.tif", covariate, origin=ORIGIN, pixel=(1000.0, 1000.0))
    layers = [LayerInput(role, "covariate", [BandRef(str(cov), 1, "covariate")])]
    for name, arr, r in extra:
        layers.append(LayerInput(r, name, [BandRef(str(make_raster(f"{name}.tif", arr, origin=ORIGIN,
                                                                   pixel=(1000.0, 1000.0))), 1, name)]))
    return Scene(SceneSpec([BandRef(str(p), 1, "SM", d) for p, d in zip(sm, DATES)], layers, derive_terrain=False))


def _read(path):
    ds = gdal.Open(path)
    return np.stack([ds.GetRasterBand(i + 1).ReadAsArray() for i in range(ds.RasterCount)])


def _rmse(a, b):
    return float(np.sqrt(np.nanmean((np.asarray(a) - np.asarray(b)) ** 2)))


def _bilinear(scene):
    w = Window(0, scene.fine.height)
    return np.stack([bilinear_from_cells(scene.coarse_sm(t), scene.fine, scene.coarse, w)
                     for t in range(len(scene.dates))])


def test_uninformative_covariates_fall_back_to_a_smooth_coherent_interpolation(make_raster, tmp_path):
    truth = _smooth_truth()
    noise = np.random.default_rng(0).uniform(0.1, 0.9, size=(N * K, N * K)).astype(np.float32)  # NDVI unrelated to SM
    scene = _scene(make_raster, truth, noise)
    bil = _rmse(_bilinear(scene), truth)
    full = downscale(scene, str(tmp_path / "full.tif"),
                     RegressionOptions(regressor="rf", n_estimators=60, residual="atpk", shrink_trend=False))
    weighted = downscale(scene, str(tmp_path / "weighted.tif"),
                         RegressionOptions(regressor="rf", n_estimators=60, residual="atpk"))
    assert weighted.training["trend_weight"] < 0.15, weighted.training
    got_full, got = _read(full.path), _read(weighted.path)
    assert _rmse(got_full, truth) > 1.2 * bil        # the full noise trend does harm ...
    assert _rmse(got, truth) <= bil                  # ... the weighted one does not
    # coherent: every cell averages back to its coarse value
    for t in range(len(DATES)):
        np.testing.assert_allclose(_block_mean(got[t]), scene.coarse_sm(t).reshape(N, N), atol=1e-5)
    log = json.load(open(weighted.log_path))
    assert log["trend_weight_applied"] == pytest.approx(weighted.training["trend_weight"])
    assert log["residual"]["variogram"]["point_model"]["model"] == "exponential"


def test_an_informative_trend_keeps_its_weight_and_beats_bilinear(make_raster, tmp_path):
    n = N * K
    rng = np.random.default_rng(1)
    ndvi = (0.45 + 0.3 * np.sin(9 * np.mgrid[0:n, 0:n][1] / n) * np.cos(7 * np.mgrid[0:n, 0:n][0] / n)
            + 0.02 * rng.normal(size=(n, n))).astype(np.float32)
    truth = [(0.1 + 0.02 * i + 0.35 * (0.8 - ndvi)).astype(np.float32) for i in range(len(DATES))]
    scene = _scene(make_raster, truth, ndvi)
    for residual in ("bilinear", "point_kriging", "atpk"):
        res = downscale(scene, str(tmp_path / f"{residual}.tif"), RegressionOptions(regressor="svr", residual=residual))
        assert res.training["trend_weight"] > 0.7, (residual, res.training)
        assert _rmse(_read(res.path), truth) < 0.5 * _rmse(_bilinear(scene), truth), residual
        if residual == "atpk":
            sd = _read(res.extra["kriging_sd"])
            assert sd.shape == (len(DATES), n, n) and np.nanmin(sd) >= 0.0
            assert res.conservation[0]["max_abs_diff"] < 1e-5


def test_svatark_fits_one_svr_per_stratum_and_writes_the_kriging_sd(make_raster, tmp_path):
    n = N * K
    cols = np.mgrid[0:n, 0:n][1]
    lc = np.where(cols < n // 2, 1, 2).astype(np.uint8)
    ndvi = (0.45 + 0.3 * np.sin(9 * cols / n) * np.cos(7 * np.mgrid[0:n, 0:n][0] / n)).astype(np.float32)
    truth = [np.where(lc == 1, 0.1 + 0.3 * ndvi, 0.45 - 0.3 * ndvi).astype(np.float32) + 0.02 * i
             for i in range(len(DATES))]
    scene = _scene(make_raster, truth, ndvi, extra=[("lc", lc, Role.LAND_COVER)])
    out = str(tmp_path / "svatark.tif")
    res = svatark.downscale(scene, out, svatark.SvatarkOptions(tune_svr=True))
    assert res.training["class_models"] == [1, 2] and res.training["strata"] == "land_cover"
    assert set(res.training["svr_tuning"]) >= {"C", "epsilon", "gamma", "cv_rmse"}
    log = json.load(open(res.log_path))
    assert log["method"] == "svatark" and log["residual"]["residual"] == "atpk"
    assert log["residual"]["variogram"]["deconvolution"]["D_final"] <= log["residual"]["variogram"]["deconvolution"]["D_initial"]
    got = _read(out)
    dev_true = truth[0] - np.kron(_block_mean(truth[0]), np.ones((K, K)))
    dev_got = got[0] - np.kron(_block_mean(got[0]), np.ones((K, K)))
    assert np.corrcoef(dev_true.ravel(), dev_got.ravel())[0, 1] > 0.8
    assert _read(res.extra["kriging_sd"]).shape == got.shape


def test_station_bias_is_the_mean_coarse_minus_station_difference(make_raster):
    truth = _smooth_truth()
    scene = _scene(make_raster, truth, np.ones((N * K, N * K), np.float32) * 0.5)
    from osgeo import osr
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32618)
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(utm, wgs)
    cells = [(1, 2), (4, 4), (7, 0)]
    stations, insitu = [], {}
    for k, (r, c) in enumerate(cells):
        lon, lat, _ = ct.TransformPoint(ORIGIN[0] + (c + 0.5) * K * 1000.0, ORIGIN[1] - (r + 0.5) * K * 1000.0)
        stations.append(Station(f"s{k}", lat, lon))
        coarse = np.array([scene.coarse_sm(t)[r * N + c] for t in range(len(DATES))])
        insitu[f"s{k}"] = coarse - (0.03 + 0.01 * k)   # stations 3, 4 and 5 % drier than their cells
    insitu["s2"][1] = np.nan
    got = svatark.station_bias(scene, stations, DATES, insitu)
    assert got["pairs"] == 3 * len(DATES) - 1 and got["stations"] == 3
    expected = (5 * 0.03 + 5 * 0.04 + 4 * 0.05) / 14
    assert got["bias"] == pytest.approx(expected, abs=1e-6)
