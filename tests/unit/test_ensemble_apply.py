"""Downscaling with a bundled ensemble on a synthetic scene: outputs equal the ensemble's own answers."""
import datetime as dt
import os
import shutil

import numpy as np
import pytest
from osgeo import gdal

from core.raster.align import BandRef
from core.learn.model_folder import Ensemble, EnsembleError
from core.errors import InputError
from core.methods.insitu_ensemble.apply import EnsembleOutputs, predict
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec

BUNDLED = os.path.join(os.path.dirname(__file__), "..", "..", "models", "insitu_hgb_dem")
DATES = [dt.date(2018, 1, 5), dt.date(2018, 1, 6)]


@pytest.fixture
def scene(make_raster):
    rng = np.random.default_rng(3)
    dem = (50 + 30 * rng.random((40, 40))).astype(np.float32)
    dem[0, :] = 3000.0  # a ridge whose mTPI lies far outside the training range
    sm = [make_raster(f"sm_{d:%Y%m%d}.tif", np.full((4, 4), v, np.float32), origin=(-76.0, 39.0),
                      pixel=(0.1, 0.1), epsg=4326) for d, v in zip(DATES, (0.15, 0.3))]
    d = make_raster("dem.tif", dem, origin=(-76.0, 39.0), pixel=(0.01, 0.01), epsg=4326)
    return Scene(SceneSpec([BandRef(str(p), 1, "sm", day) for p, day in zip(sm, DATES)],
                           [LayerInput(Role.DEM, "dem", [BandRef(str(d), 1, "dem")])]))


def test_outputs_are_the_members_mean_spread_interval_and_domain(scene, tmp_path):
    ens = Ensemble.load(BUNDLED)
    assert ens.input_features == ["sm_coarse", "mtpi", "lat", "doy"]
    outs = EnsembleOutputs(*(str(tmp_path / f"{n}.tif") for n in ("mean", "sd", "mask", "interval")))
    res = predict(ens, scene, outs, block_pixels=400)
    cal = ens.card["uncertainty"]
    w = next(scene.fine.windows(10 ** 6))
    ds_m, ds_s, ds_o, ds_i = (gdal.Open(p) for p in (outs.mean, outs.spread, outs.domain_mask, outs.interval))
    for t in range(2):
        f = scene.features(t, w, extra=("sm_coarse", "lat"))
        X = np.column_stack([f[c].ravel() for c in ens.input_features]).astype(np.float32)
        mean, sd, ood = ens.predict(X)
        got_m = ds_m.GetRasterBand(t + 1).ReadAsArray().ravel()
        assert ds_m.GetRasterBand(t + 1).GetDescription() == DATES[t].isoformat()
        assert np.allclose(got_m, np.clip(mean, 0, None), atol=1e-6)
        assert np.allclose(ds_s.GetRasterBand(t + 1).ReadAsArray().ravel(), sd, atol=1e-6)
        assert np.allclose(ds_i.GetRasterBand(t + 1).ReadAsArray().ravel(), cal["scale"] * (sd + cal["floor"]),
                           atol=1e-6)
        assert np.array_equal(ds_o.GetRasterBand(t + 1).ReadAsArray().ravel() == 1, ood)
        assert ood.reshape(40, 40)[0].all() and not ood.all()
        assert res.extra["domain"][t]["outside_fraction"] == pytest.approx(ood.mean())
    assert res.extra["interval"] == outs.interval and not res.extra["coarse_level"]["cells_outside"]
    # wetter coarse soil moisture gives wetter estimates
    a = ds_m.ReadAsArray()
    inside = ds_o.ReadAsArray() == 0
    assert a[1][inside[1]].mean() > a[0][inside[0]].mean() + 0.02  # 0.15 → 0.30 coarse


def _scene_with_levels(make_raster, levels):
    """2 × 2 coarse cells (0.1°, 10 × 10 fine pixels each) whose coarse value per date is ``levels[t]``
    (a 2 × 2 array), and a flat DEM."""
    sm = [make_raster(f"sm_{d:%Y%m%d}.tif", np.asarray(v, np.float32), origin=(-76.0, 39.0), pixel=(0.1, 0.1),
                      epsg=4326) for d, v in zip(DATES, levels)]
    dem = make_raster("dem.tif", np.full((20, 20), 40.0, np.float32), origin=(-76.0, 39.0), pixel=(0.01, 0.01),
                      epsg=4326)
    return Scene(SceneSpec([BandRef(str(p), 1, "sm", day) for p, day in zip(sm, DATES)],
                           [LayerInput(Role.DEM, "dem", [BandRef(str(dem), 1, "dem")])]))


def test_a_coarse_level_unlike_the_training_stations_is_flagged(make_raster, tmp_path):
    ens = Ensemble.load(BUNDLED)
    lev = ens.card["coarse_level"]
    wet = lev["station_mean_p95"] + 0.05              # within the per-date range of sm_coarse, but wetter than
    assert wet < ens.card["inputs"][0]["domain"]["max"]  # 19 in 20 training stations on average
    cells = np.array([[0.2, wet], [0.2, 0.2]])
    scene = _scene_with_levels(make_raster, [cells, cells])
    outs = EnsembleOutputs(*(str(tmp_path / f"{n}.tif") for n in ("mean", "sd", "mask")))
    res = predict(ens, scene, outs)
    mask = gdal.Open(outs.domain_mask).ReadAsArray()
    assert (mask[:, :10, 10:] == 1).all()             # the wet cell, every date
    assert res.extra["coarse_level"]["cells_outside"] == 1
    assert res.extra["interval"] is None and not os.path.exists(str(tmp_path / "interval.tif"))


def test_anchoring_keeps_the_coarse_level_per_cell_and_season(make_raster, tmp_path):
    ens = Ensemble.load(BUNDLED)
    levels = [np.array([[0.12, 0.25], [0.18, 0.30]]), np.array([[0.16, 0.29], [0.22, 0.34]])]
    scene = _scene_with_levels(make_raster, levels)
    plain = EnsembleOutputs(*(str(tmp_path / f"p_{n}.tif") for n in ("mean", "sd", "mask")))
    anchored = EnsembleOutputs(*(str(tmp_path / f"a_{n}.tif") for n in ("mean", "sd", "mask")))
    predict(ens, scene, plain)
    res = predict(ens, scene, anchored, anchor_to_coarse=True)
    p, a = gdal.Open(plain.mean).ReadAsArray(), gdal.Open(anchored.mean).ReadAsArray()
    cell_mean = lambda x: x.reshape(2, 2, 10, 2, 10).mean(axis=(2, 4))  # noqa: E731  (date, row, col)
    # both dates are January (one season): the mean over the dates of each cell equals the coarse one's
    assert np.allclose(cell_mean(a).mean(axis=0), np.mean(levels, axis=0), atol=1e-5)
    # the ensemble's dynamics are kept: one shift per cell for both dates
    assert np.allclose(a - p, (a - p)[:1], atol=1e-5)
    assert res.extra["anchored"] and not np.allclose(a, p)


def test_a_missing_input_names_what_to_add(make_raster, tmp_path):
    sm = make_raster("sm_20180105.tif", np.full((4, 4), 0.2, np.float32), origin=(-76.0, 39.0), pixel=(0.1, 0.1),
                     epsg=4326)
    nd = make_raster("ndvi.tif", np.full((40, 40), 0.5, np.float32), origin=(-76.0, 39.0), pixel=(0.01, 0.01),
                     epsg=4326)
    scene = Scene(SceneSpec([BandRef(str(sm), 1, "sm", DATES[0])], [LayerInput(Role.NDVI, "ndvi", [BandRef(str(nd))])]))
    outs = EnsembleOutputs(*(str(tmp_path / f"{n}.tif") for n in ("mean", "sd", "mask")))
    with pytest.raises(InputError, match="mtpi.*DEM"):
        predict(Ensemble.load(BUNDLED), scene, outs)
    assert not list(tmp_path.glob("mean*"))


def test_a_tampered_bundled_member_is_refused(tmp_path):
    copy = tmp_path / "ens"
    shutil.copytree(BUNDLED, copy)
    member = sorted(copy.glob("*.onnx"))[0]
    data = bytearray(member.read_bytes())
    i = data.find(b"\x00\x00\x80\x3f")  # a float32 1.0 somewhere in the weights, or any byte near the end
    data[i if i > 0 else len(data) - 10] ^= 0x01
    member.write_bytes(bytes(data))
    with pytest.raises(EnsembleError):
        Ensemble.load(str(copy))
