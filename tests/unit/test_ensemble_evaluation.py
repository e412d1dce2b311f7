"""Station-grouped splits (no station in both train and test) and the station-table reader."""
import csv

import numpy as np
import pytest

from core.methods.insitu_ensemble import group_kfold, samples_from_station_table, stratified_site_split, train_ensemble
from core.methods.insitu_ensemble import training
from core.learn.validation import site_scores, summarize_sites
from core.learn.mlp import MLPConfig
from tests.unit.ensemble_synthetic import synthetic_samples


def test_group_kfold_keeps_stations_whole_and_balanced():
    sites = np.repeat([f"s{i}" for i in range(23)], 5)
    folds = group_kfold(sites, 10, seed=3)
    for s in np.unique(sites):
        assert np.unique(folds[sites == s]).size == 1
    per_fold = [np.unique(sites[folds == k]).size for k in range(10)]
    assert sorted(per_fold) == [2] * 7 + [3] * 3
    np.testing.assert_array_equal(folds, group_kfold(sites, 10, seed=3))   # seeded
    with pytest.raises(ValueError, match="station-grouped folds"):
        group_kfold(sites[:10], 3, seed=0)


def test_stratified_split_takes_a_fifth_of_each_class():
    sites = np.repeat([f"s{i}" for i in range(20)], 3)
    cls = np.repeat(["lo"] * 10 + ["hi"] * 5 + ["mid"] * 5, 3)
    test = stratified_site_split(sites, cls, 0.2, seed=1)
    test_sites = set(sites[test])
    assert set(sites[~test]).isdisjoint(test_sites)
    by_class = {c: len({s for s in test_sites if cls[sites == s][0] == c}) for c in ("lo", "hi", "mid")}
    assert by_class == {"lo": 2, "hi": 1, "mid": 1}


def test_cross_validation_never_trains_on_a_test_station(monkeypatch):
    data = synthetic_samples(n_sites=9, n_dates=8, seed=5)
    trained_on = []
    real = training._fit_members

    def spy(train_data, *args, **kwargs):
        trained_on.append(set(train_data.site_id))
        return real(train_data, *args, **kwargs)

    monkeypatch.setattr(training, "_fit_members", spy)
    train_ensemble(data, ["sm_coarse", "doy"], ["dense"], ["free"], 3, 11, None, holdout_fraction=0.2,
                   mlp_config=MLPConfig(hidden=(3,), max_epochs=3))
    all_sites = set(data.site_id)
    cv_held = [all_sites - s for s in trained_on[:3]]
    assert all(h for h in cv_held)
    assert set.union(*cv_held) == all_sites and sum(len(h) for h in cv_held) == len(all_sites)  # a partition
    folds = group_kfold(data.site_id, 3, 11)
    assert sorted(map(sorted, cv_held)) == sorted(sorted(set(data.site_id[folds == k])) for k in range(3))
    assert trained_on[3] < all_sites          # the 80/20 holdout fit
    assert trained_on[4] == all_sites         # the final fit uses every station


def test_site_scores_by_hand():
    obs = np.array([0.1, 0.2, 0.3, 0.2, 0.2, 0.2])
    est = np.array([0.15, 0.25, 0.35, 0.1, 0.3, 0.2])
    sc = site_scores(obs, est, np.array(["a"] * 3 + ["b"] * 3))
    assert sc["a"]["bias"] == pytest.approx(0.05) and sc["a"]["ubrmse"] == pytest.approx(0.0, abs=1e-9)
    assert sc["a"]["r"] == pytest.approx(1.0)
    # site b: d = (−0.1, 0.1, 0): bias 0, rmse = ubrmse = sqrt(0.02/3); obs constant → R undefined
    assert sc["b"]["rmse"] == pytest.approx(np.sqrt(0.02 / 3)) and np.isnan(sc["b"]["r"])
    summ = summarize_sites(sc)
    assert summ["mean"]["r"] == pytest.approx(1.0) and summ["mean"]["n"] == 3.0


HEADER = ("network,station,lat,lon,start_date,end_date,smap10km_ssm_mm,B1,B2,B3,B4,B5,B6,B7,B8,B8A,B9,B10,B11,"
          "B12,vv_db,vh_db,incidence_angle,mtpi,field_capacity,nlcd_landcover,insitu_sm").split(",")


def _row(net, st, lat, start, end, smap, b4, b8, lc, insitu, mtpi="-2", fc="14.5"):
    r = dict.fromkeys(HEADER, "")
    r.update(network=net, station=st, lat=lat, lon="-100.5", start_date=start, end_date=end, smap10km_ssm_mm=smap,
             B4=b4, B8=b8, mtpi=mtpi, field_capacity=fc, nlcd_landcover=lc, insitu_sm=insitu, vv_db="-10")
    return r


def test_station_table_reader(tmp_path):
    rows = [_row("USCRN", "A", "36.5", "2019-01-01", "2019-01-11", "10", "1000", "3000", "52", "0.2"),
            _row("USCRN", "A", "36.5", "2019-01-11", "2019-01-21", "12.5", "1000", "3000", "52", ""),
            _row("", "", "36.3735", "2019-12-27", "2020-01-06", "5", "", "", "32.75503356", "0.1")]
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, HEADER)
        w.writeheader()
        w.writerows(rows)
    s = samples_from_station_table(str(path), ["sm_coarse", "doy", "land_cover", "mtpi"], min_samples_per_site=1)
    assert len(s) == 2                                   # the row without in-situ value is dropped
    np.testing.assert_allclose(s.X[:, 0], [10 / 50, 5 / 50])   # mm / 50 mm → m³/m³
    assert s.X[0, 1] == 6 and s.X[1, 1] == 1             # mid dates 2019-01-06 and 2020-01-01
    assert s.X[0, 2] == 52 and np.isnan(s.X[1, 2])       # averaged NLCD code → unknown
    assert s.site_id.tolist() == ["USCRN:A", "@36.3735,-100.5"]
    assert s.attributes["wetness"][0] == pytest.approx((0.2 + 0.25) / 2)
    nd = samples_from_station_table(str(path), ["ndvi"], min_samples_per_site=1)
    assert len(nd) == 1 and nd.X[0, 0] == pytest.approx(0.5)  # (3000 − 1000) / 4000; no bands → dropped
    with pytest.raises(ValueError, match="no column for \\['slope'\\]"):
        samples_from_station_table(str(path), ["sm_coarse", "slope"])


def test_real_station_table(shared_data):
    s = samples_from_station_table(str(shared_data / "conus_stations" / "station_10day_table.csv"),
                                   ["sm_coarse", "doy", "mtpi"])
    assert len(s.sites) >= 80 and len(s) > 8000
    assert 0.0 < float(np.median(s.X[:, 0])) < 0.5 and s.X[:, 1].min() >= 1 and s.X[:, 1].max() <= 366
    assert np.isfinite(s.y).all() and set(s.attributes["network"]) >= {"USCRN", "TxSON", "ARM"}
