"""Boosted members, honest baselines, calibrated intervals, spectral indices and the tier choice."""
import csv

import numpy as np
import onnxruntime as ort
import pytest

from core.errors import InputError
from core.learn.boosting import BoostingConfig, BoostingMember
from core.learn.calibration import calibrate_interval, coverage, cross_fitted_coverage
from core.learn.model_folder import Ensemble, EnsembleInfo
from core.learn.onnx_export import boosting_to_onnx
from core.methods.insitu_ensemble import samples_from_station_table, train_ensemble
from core.methods.insitu_ensemble.tiers import LayerRoles, pick_tier
from tests.unit.ensemble_synthetic import synthetic_samples
from tests.unit.test_ensemble_evaluation import HEADER, _row

FEATS = ["sm_coarse", "doy", "mtpi", "land_cover"]
SMALL = BoostingConfig(max_iter=40, max_leaf_nodes=7, min_samples_leaf=10)


@pytest.fixture(scope="module")
def data():
    return synthetic_samples(n_sites=16, n_dates=30, seed=1)


def test_boosted_member_is_a_line_plus_trees_and_onnx_matches(data):
    X = data.X.copy()
    X[::7, 3] = np.nan                      # unknown land cover → −1 on both sides
    X[::11, 2] = np.nan                     # a missing continuous value: the trees' learned missing side
    w = np.where(data.attributes["land_cover"] == 81, 3.0, 1.0)
    bm = BoostingMember(SMALL, [3], coarse_column=0).fit(X, data.y, w)
    x = X[:, 0].astype(np.float64)          # the line is the weighted least-squares fit of y on sm_coarse
    slope, icpt = np.polyfit(x, data.y.astype(np.float64), 1, w=np.sqrt(w))
    assert bm.slope == pytest.approx(slope, rel=1e-6) and bm.intercept == pytest.approx(icpt, abs=1e-7)
    model = boosting_to_onnx(bm, X.shape[1])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"X": X})[0][:, 0], bm.predict(X), rtol=1e-5, atol=2e-6)
    assert np.sqrt(np.mean((bm.predict(X) - data.y) ** 2)) < 0.01   # learns the known relationship


def test_boosting_without_a_coarse_input_fits_a_constant_line(data):
    bm = BoostingMember(SMALL, [], coarse_column=None).fit(data.X[:, 1:3], data.y)
    assert bm.slope == 0.0 and bm.intercept == pytest.approx(float(np.mean(data.y)), abs=1e-7)
    sess = ort.InferenceSession(boosting_to_onnx(bm, 2).SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"X": data.X[:, 1:3]})[0][:, 0], bm.predict(data.X[:, 1:3]),
                               rtol=1e-5, atol=2e-6)


def test_hgb_ensemble_with_baselines_interval_and_card(data, tmp_path):
    rep = train_ensemble(data, FEATS, ["hgb"], ["free", "land_cover"], cv_folds=4, seed=3, out_folder=str(tmp_path),
                         boosting_config=SMALL, holdout_fraction=0.25, tier={"name": "t", "rank": 1, "layers": ["x"]})
    assert [m.name for m in rep.members] == ["hgb_free", "hgb_land_cover"]
    cv = rep.evaluations["cv_4fold"]
    # the synthetic coarse product is 1.6 · truth − 0.02: rescaled on any training stations it is (nearly) exact
    resc, raw = cv.summary["coarse_rescaled"]["mean"], cv.summary["coarse"]["mean"]
    assert resc["ubrmse"] < 0.004 and abs(resc["bias"]) < 0.002 and raw["ubrmse"] > 0.02
    assert resc["amplitude"] == pytest.approx(1.0, abs=0.05) and raw["amplitude"] == pytest.approx(1.6, abs=0.1)
    assert not cv.beats_rescaled()          # so such an ensemble would not be bundled
    assert 0.8 <= cv.interval["coverage"] <= 1.0 and rep.calibration.level == 0.9
    ens = Ensemble.load(str(tmp_path))
    assert ens.card["tier"] == {"name": "t", "rank": 1, "layers": ["x"]}
    assert ens.card["scores"]["holdout_80_20"]["coarse_rescaled"]["mean"]["ubrmse"] < 0.004
    assert ens.card["uncertainty"]["scale"] == pytest.approx(rep.calibration.scale)
    assert {m["architecture"] for m in ens.card["members"]} == {"hgb"}
    refit = train_ensemble(data, FEATS, ["hgb"], ["free", "land_cover"], cv_folds=0, seed=3, out_folder=None,
                           boosting_config=SMALL)
    assert refit.evaluations == {} and refit.calibration is None


def test_require_beating_rescaled_writes_nothing(data, tmp_path):
    rep = train_ensemble(data, FEATS, ["hgb"], ["free"], cv_folds=3, seed=3, out_folder=str(tmp_path / "e"),
                         boosting_config=SMALL, require_beating_rescaled=True)
    assert "does not beat the rescaled coarse product" in rep.refused and "NOT WRITTEN" in rep.format()
    assert not (tmp_path / "e").exists()


def test_interval_calibration_holds_its_level_on_new_data():
    rng = np.random.default_rng(5)

    def draw(n):
        spread = rng.uniform(0.005, 0.03, n)
        err = rng.normal(0, 1, n) * (3 * spread)   # true error 3× the spread: mean ± 2 spread is far too narrow
        return np.zeros(n), err, spread

    o, e, s = draw(4000)
    cal = calibrate_interval(o, e, s, 0.9)
    o2, e2, s2 = draw(4000)
    assert coverage(o2, e2, cal.half_width(s2)) == pytest.approx(0.9, abs=0.02)
    assert coverage(o2, e2, 2 * s2) < 0.55
    folds = np.repeat(np.arange(8), 500)
    assert np.nanmean(cross_fitted_coverage(o, e, s, folds, 0.9)) == pytest.approx(0.9, abs=0.02)


def test_station_table_reader_derives_spectral_indices(tmp_path):
    r = _row("USCRN", "A", "36.5", "2019-01-01", "2019-01-11", "10", "600", "3000", "52", "0.2")
    r.update(B2="500", B3="800", B11="2000", B12="1000")
    bad = dict(r, start_date="2019-01-11", end_date="2019-01-21", B11="0")  # SWIR1 0 → NSDSI undefined
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, HEADER)
        w.writeheader()
        w.writerows([r, bad])
    s = samples_from_station_table(str(path), ["ndvi", "ndwi", "evi", "nsdsi"], min_samples_per_site=1)
    assert len(s) == 1
    b2, b3, b4, b8, b11, b12 = 0.05, 0.08, 0.06, 0.30, 0.20, 0.10
    np.testing.assert_allclose(s.X[0], [(b8 - b4) / (b8 + b4), (b3 - b8) / (b3 + b8),
                                        2.5 * (b8 - b4) / (b8 + 6 * b4 - 7.5 * b2 + 1), (b11 - b12) / b11], rtol=1e-5)


def _info(name, rank, inputs):
    return EnsembleInfo(name, f"/models/{name}", inputs=inputs, n_members=1, tier={"name": name, "rank": rank,
                                                                                    "layers": []})


TIERS = [_info("dem", 1, ["sm_coarse", "mtpi", "lat", "doy"]),
         _info("veg", 2, ["sm_coarse", "mtpi", "lat", "doy", "ndvi"]),
         _info("full", 3, ["sm_coarse", "mtpi", "lat", "doy", "ndvi", "vv_db", "vh_db", "land_cover"])]


def test_the_richest_tier_the_layers_satisfy_is_chosen_and_said():
    assert pick_tier(TIERS, LayerRoles.of({"dem": 1})).name == "dem"
    choice = pick_tier(TIERS, LayerRoles.of({"dem": 1, "ndvi": 1, "land_cover": 1}))
    assert choice.name == "veg" and "'full' (rank 3) would also need 'vv_db'" in choice.message()
    # one 'Other' layer cannot feed both polarisations: named after their inputs they can
    assert pick_tier(TIERS, LayerRoles.of({"dem": 1, "ndvi": 1, "land_cover": 1, "other": 2})).name == "veg"
    named = LayerRoles(("dem", "ndvi", "land_cover", "vv_db", "vh_db", "slope", "mtpi"))
    assert pick_tier(TIERS, named).name == "full"
    with pytest.raises(InputError, match="mtpi"):
        pick_tier(TIERS, LayerRoles.of({"ndvi": 1}))
    with pytest.raises(InputError, match="mtpi"):
        pick_tier(TIERS, LayerRoles.of({"dem": 1}, derive_terrain=False))
