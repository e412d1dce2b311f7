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

BUNDLED = os.path.join(os.path.dirname(__file__), "..", "..", "models", "poehls_dense_dem")
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


def test_outputs_are_the_members_mean_spread_and_domain(scene, tmp_path):
    ens = Ensemble.load(BUNDLED)
    assert ens.input_features == ["sm_coarse", "mtpi", "lat"]
    outs = EnsembleOutputs(*(str(tmp_path / f"{n}.tif") for n in ("mean", "sd", "mask")))
    res = predict(ens, scene, outs, block_pixels=400)
    w = next(scene.fine.windows(10 ** 6))
    for t in range(2):
        f = scene.features(t, w, extra=("sm_coarse", "lat"))
        X = np.column_stack([f[c].ravel() for c in ens.input_features]).astype(np.float32)
        mean, sd, ood = ens.predict(X)
        ds_m, ds_s, ds_o = (gdal.Open(p) for p in (outs.mean, outs.spread, outs.domain_mask))
        got_m = ds_m.GetRasterBand(t + 1).ReadAsArray().ravel()
        assert ds_m.GetRasterBand(t + 1).GetDescription() == DATES[t].isoformat()
        assert np.allclose(got_m, np.clip(mean, 0, None), atol=1e-6)
        assert np.allclose(ds_s.GetRasterBand(t + 1).ReadAsArray().ravel(), sd, atol=1e-6)
        assert np.array_equal(ds_o.GetRasterBand(t + 1).ReadAsArray().ravel() == 1, ood)
        assert ood.reshape(40, 40)[0].all() and not ood.all()
        assert res.extra["domain"][t]["outside_fraction"] == pytest.approx(ood.mean())
    # wetter coarse soil moisture gives wetter estimates
    a = gdal.Open(outs.mean).ReadAsArray()
    inside = gdal.Open(outs.domain_mask).ReadAsArray() == 0
    assert a[1][inside[1]].mean() > a[0][inside[0]].mean() + 0.02  # 0.15 → 0.30 coarse: ~+0.04 here


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
