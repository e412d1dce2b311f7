"""The deep ensemble (core.methods.deep_ensemble) on synthetic scenes whose fine truth is known: it adds the
detail an informative covariate explains and does no harm with a useless one; the CNN's halo makes tiling
invisible; the saved folder re-applies exactly and refuses modified files; the pieces it is built from."""
import datetime as dt
import json
import os
from dataclasses import replace

import numpy as np
import pytest
from osgeo import gdal

from core.errors import InputError
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec
from core.methods import deep_ensemble as de
from core.methods.trend_weight import held_out_trend_weight
from core.raster.align import BandRef
from core.raster.grid import Grid, Window, bilinear_from_cells, cubic_from_cells

K = 6          # fine pixels per coarse cell side
N = 8          # coarse cells per side
DATES = [dt.date(2018, 1, d) for d in (3, 10, 17, 24)]
ORIGIN = (500000.0, 4400000.0)
FAST = de.DeepEnsembleOptions(members=de.MEMBERS, max_epochs=25, patience=5, samples_per_level=1500, sequence_length=3,
                              hidden=(16, 8), conv_filters=8, lstm_hidden=8, residual="atpk")


def _block_mean(a):
    return a.reshape(N, K, N, K).mean(axis=(1, 3))


def _scene(make_raster, cov, truth, prefix=""):
    sm = [make_raster(f"{prefix}sm_{d:%Y%m%d}.tif", _block_mean(f), origin=ORIGIN, pixel=(K * 1000.0, K * 1000.0))
          for d, f in zip(DATES, truth)]
    c = make_raster(f"{prefix}ndvi.tif", cov, origin=ORIGIN, pixel=(1000.0, 1000.0))
    return Scene(SceneSpec([BandRef(str(p), 1, "SM", d) for p, d in zip(sm, DATES)],
                           [LayerInput(Role.NDVI, "ndvi", [BandRef(str(c), 1, "ndvi")])], derive_terrain=False))


def _field():
    n = N * K
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n
    return (0.5 + 0.3 * np.sin(9 * x) * np.cos(7 * y)).astype(np.float32)


def _read(path):
    return gdal.Open(path).ReadAsArray().astype(np.float64)


def _rmse(a, b):
    return float(np.sqrt(np.nanmean((np.asarray(a) - np.asarray(b)) ** 2)))


def _bilinear(scene):
    w = Window(0, scene.fine.height)
    return np.stack([bilinear_from_cells(scene.coarse_sm(t), scene.fine, scene.coarse, w) for t in range(len(DATES))])


@pytest.fixture
def informative(make_raster):
    cov = _field()
    truth = np.stack([0.1 + 0.3 * cov + 0.02 * i for i in range(len(DATES))]).astype(np.float32)
    return _scene(make_raster, cov, truth), truth


def test_an_informative_covariate_beats_bilinear_with_every_output(informative, tmp_path):
    scene, truth = informative
    res = de.downscale(scene, str(tmp_path / "out.tif"), FAST, model_folder=str(tmp_path / "model"))
    got = _read(res.path)
    assert _rmse(got, truth) < 0.6 * _rmse(_bilinear(scene), truth)
    for t in range(len(DATES)):  # ATPK residual: every cell averages back to its coarse value
        np.testing.assert_allclose(_block_mean(got[t]), scene.coarse_sm(t).reshape(N, N), atol=1e-5)
    tr = res.training
    assert [lv["name"] for lv in tr["levels"]] == ["coarse", "coarse/2", "coarse/4"]  # 3, 1.5 km: ≥ 1.5 px
    assert set(tr["held_out_scores"]) == {"dnn", "cnn", "lstm", "ensemble"}
    assert tr["held_out_scores"]["ensemble"]["r"] > 0.9
    assert sum(m["weight"] for m in tr["members"].values()) == pytest.approx(1.0)
    assert tr["trend_weight"] > 0.5
    # one scale up (trained on 2×2 blocks of cells, judged on the cells) the covariate explains the field too;
    # the applied weights are the held-out ones capped by it
    up = tr["one_scale_up"]
    assert up["trend_weight_static"] > 0.5 and up["cells"] == N * N
    for k in ("trend_weight", "trend_weight_static", "trend_weight_dynamic"):
        assert tr[k] == min(tr[k + "_held_out"], up[k])
    imp = tr["importance"]
    assert imp["ndvi"]["ensemble"] > 0.005 and set(imp[de.SM_PREVIOUS]) == {"lstm", "ensemble"}
    spread = _read(res.extra["spread"])
    assert spread.shape == got.shape and np.nanmin(spread) >= 0 and np.isfinite(spread).all()
    report = open(res.extra["report"], encoding="utf-8").read()
    assert "<svg" in report and "Permutation importance" in report and "LSTM (dates)" in report
    log = json.load(open(res.log_path))
    assert log["trend_weight_applied"] == pytest.approx(tr["trend_weight"])
    # the saved folder re-applies to the same result; a modified member is refused
    again = de.predict(de.DeepEnsembleModel.load(str(tmp_path / "model")), scene, str(tmp_path / "again.tif"))
    np.testing.assert_allclose(_read(again.path), got, atol=1e-6)
    with open(tmp_path / "model" / "cnn.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(InputError, match="modified"):
        de.DeepEnsembleModel.load(str(tmp_path / "model"))


def test_tiles_with_a_halo_give_the_same_map_as_one_block(informative, tmp_path):
    scene, _ = informative
    model = de.fit(scene, replace(FAST, members=("cnn", "lstm"), importance=False, max_epochs=4))
    one = de.predict(model, scene, str(tmp_path / "one.tif"))
    model.options = replace(model.options, block_pixels=5 * scene.fine.width)  # 5-row tiles, halo 2 rows
    tiled = de.predict(model, scene, str(tmp_path / "tiled.tif"))
    np.testing.assert_allclose(_read(tiled.path), _read(one.path), atol=1e-6)
    np.testing.assert_allclose(_read(tiled.extra["spread"]), _read(one.extra["spread"]), atol=1e-6)


def test_a_useless_covariate_does_no_harm(make_raster, tmp_path):
    n = N * K
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n
    truth = np.stack([0.22 + 0.06 * np.sin(3 * x + 0.7 * i) * np.cos(2.5 * y) for i in range(len(DATES))])
    noise = np.random.default_rng(0).uniform(0.1, 0.9, size=(n, n)).astype(np.float32)
    scene = _scene(make_raster, noise, truth.astype(np.float32))
    bil = _rmse(_bilinear(scene), truth)
    pixel = de.downscale(scene, str(tmp_path / "pixel.tif"), replace(FAST, importance=False, members=("dnn", "cnn")))
    assert pixel.training["trend_weight"] < 0.2, pixel.training  # the covariate's detail is noise: dropped
    assert pixel.training["one_scale_up"]["trend_weight_static"] < 0.3  # one scale up low too (measured 0.22)
    assert _rmse(_read(pixel.path), truth) <= bil
    # with the LSTM, the trend also carries the interpolated past soil moisture: smooth, and no harm either
    full = de.downscale(scene, str(tmp_path / "full.tif"), replace(FAST, importance=False))
    assert _rmse(_read(full.path), truth) <= bil


def test_the_networks_never_learn_the_held_out_cells_values(informative, make_raster):
    """The intermediate levels' cubic targets (and the LSTM's earlier soil moisture there) are built without
    the held-out cells: changing only those cells' coarse values leaves every trained network identical, so
    the held-out skill that weights the members and the trend is out of sample."""
    scene, truth = informative
    opts = replace(FAST, members=("dnn", "lstm"), importance=False, judge_splits=1, max_epochs=6)
    held = (de._roles(scene, opts) == 2).reshape(N, N)
    assert 0 < held.sum() < N * N
    changed = truth.copy()
    changed[:, np.kron(held, np.ones((K, K), bool))] += 0.15
    other = _scene(make_raster, _field(), changed, prefix="changed_")
    assert not np.allclose(other.coarse_sm(0), scene.coarse_sm(0))
    a, b = de.fit(scene, opts), de.fit(other, opts)
    assert [lv["name"] for lv in a.training["levels"]] == ["coarse", "coarse/2", "coarse/4"]
    for Wa, Wb in zip(a.members["dnn"].weights, b.members["dnn"].weights):
        np.testing.assert_array_equal(Wa, Wb)
    for Pa, Pb in zip(a.members["lstm"].params, b.members["lstm"].params):
        np.testing.assert_array_equal(Pa, Pb)
    # while the held-out scores see the change
    assert a.training["held_out_scores"]["dnn"]["rmse"] != b.training["held_out_scores"]["dnn"]["rmse"]


def test_the_fine_detail_is_judged_on_disjoint_held_out_splits(informative, make_raster, tmp_path):
    scene, truth = informative
    opts = replace(FAST, members=("dnn",), importance=False, judge_splits=3)
    held = [de._roles(scene, opts, j) == 2 for j in range(3)]
    assert held[0].sum() == held[1].sum() == held[2].sum() == 12  # 3 of the 16 2×2 blocks each
    assert not (held[0] & held[1]).any() and not (held[0] & held[2]).any() and not (held[1] & held[2]).any()
    assert de._n_splits(scene, replace(opts, judge_splits=9)) == 5  # at most 16 // 3 disjoint splits
    model = de.fit(scene, opts)
    assert model.training["judge_splits"] == 3 and len(model.training["_judged_splits"]) == 2
    res = de.predict(model, scene, str(tmp_path / "out.tif"))
    # the covariate explains the field: trusted on the 36 held-out cells of the three splits together
    assert res.training["trend_weight_splits"] == 3 and res.training["trend_weight"] > 0.5
    assert not any(k.startswith("_") for k in json.load(open(res.log_path))["training"])
    # another series on the same grid: the fit's other splits are not about it, only the first split judges
    other = _scene(make_raster, _field(), truth + 0.05, prefix="other_")
    assert de.predict(model, other, str(tmp_path / "other.tif")).training["trend_weight_splits"] == 1


def test_lstm_sequences_hold_the_dates_before_never_the_target():
    g = Grid("", 0.0, 2.0, 1.0, 1.0, 2, 2)
    raw = [np.full((2, 2, 2), t, np.float32) for t in range(3)]
    target = [np.full(4, 10.0 + t) for t in range(3)]
    lev = de._Level("coarse", g, raw, target, np.arange(4))
    s = de._Samples(np.zeros(2, np.int64), np.array([0, 2]), np.array([1, 3]), np.array([1, 3]), np.array([10.0, 12.0]))
    S = de._sequences([lev], s, 3)
    assert np.isnan(S[:, 0]).all(axis=1).tolist() == [True, True, False]  # date 0: no earlier dates
    np.testing.assert_array_equal(S[:, 1, 0], [0, 1, 2])                    # covariates of dates 0, 1, 2
    np.testing.assert_array_equal(S[1:, 1, 2], [10.0, 11.0])                # soil moisture of the date before
    assert np.isnan(S[0, 1, 2]) and np.isnan(S[2, 0, 2])


def test_cubic_resampling_is_exact_on_a_plane_and_keeps_empty_cells_empty():
    coarse = Grid("", 0.0, 120.0, 10.0, 10.0, 12, 12)
    fine = Grid("", 0.0, 120.0, 2.5, 2.5, 48, 48)
    r, c = np.divmod(np.arange(144), 12)
    plane = 0.1 + 0.01 * r + 0.02 * c
    out = cubic_from_cells(plane, coarse, fine)
    xs, ys = fine.centers()
    fx, fy = xs / 10.0 - 0.5, (120.0 - ys) / 10.0 - 0.5
    inner = np.ix_((fy > 4) & (fy < 7), (fx > 4) & (fx < 7))  # away from the held edges
    np.testing.assert_allclose(out[inner], (0.1 + 0.01 * fy[:, None] + 0.02 * fx[None, :])[inner], atol=1e-4)
    holed = plane.copy()
    holed[13] = np.nan
    out = cubic_from_cells(holed, coarse, fine)
    assert np.isnan(out[4:8, 4:8]).all() and np.isfinite(out).sum() == 48 * 48 - 16


def test_held_out_trend_weight_trusts_a_right_trend_and_drops_a_wrong_one():
    rng = np.random.default_rng(0)
    rows, cols = np.divmod(np.arange(100), 10)
    rc, xy = np.column_stack([rows, cols]), np.column_stack([cols, rows]) * 1000.0
    cell = np.tile(np.arange(100), 3)
    date = np.repeat(np.arange(3), 100)
    detail = rng.normal(0, 0.03, size=300)
    y = 0.2 + detail
    held = np.isin(cell, [0, 1, 10, 11, 44, 45, 54, 55, 88, 89, 98, 99])
    right = held_out_trend_weight(y, 0.2 + detail, cell, date, held, rc, xy)
    wrong = held_out_trend_weight(y, 0.2 + rng.normal(0, 0.03, size=300), cell, date, held, rc, xy)
    assert right["trend_weight"] > 0.95 and wrong["trend_weight"] < 0.25
    assert right["cv_rmse_trend"] < 0.2 * right["cv_rmse_interpolation"]


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="odd"):
        de.DeepEnsembleOptions(kernel=4)
    with pytest.raises(ValueError, match="members"):
        de.DeepEnsembleOptions(members=("gru",))
    with pytest.raises(ValueError, match="judge_splits"):
        de.DeepEnsembleOptions(judge_splits=0)
