"""Several covariates under one role, each named after its layer, and what feeds an ensemble's inputs.

Tiny rasters whose values are constants, so each feature's read-back value tells which layer it is.
"""
import datetime as dt

import numpy as np
import pytest

from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec, covariate_feature_names
from core.methods.insitu_ensemble.apply import scene_feature_for
from core.raster.align import BandRef

D = dt.date(2018, 1, 5)


def _scene(make_raster, others, extra=()):
    sm = make_raster("sm_20180105.tif", np.full((2, 2), 0.2, np.float32), pixel=(2000.0, 2000.0))
    layers = [LayerInput(Role.OTHER, name, [BandRef(str(make_raster(f"o{k}.tif", np.full((4, 4), v, np.float32))),
                                                    1, name)])
              for k, (name, v) in enumerate(others)]
    return Scene(SceneSpec([BandRef(str(sm), 1, "SM", D)], layers + list(extra), derive_terrain=False))


def test_several_other_layers_are_covariates_named_after_their_layers(make_raster):
    scene = _scene(make_raster, [("TWI", 7.0), ("Valley depth", 12.0)])
    assert scene.covariate_names == ["twi", "valley_depth"]
    w = next(scene.fine.windows())
    f = scene.features(0, w)
    assert float(f["twi"][0, 0]) == pytest.approx(7.0) and float(f["valley_depth"][0, 0]) == pytest.approx(12.0)
    assert scene.describe()["covariates"] == {"twi": "TWI", "valley_depth": "Valley depth"}


def test_names_of_several_layers_of_a_named_role_and_clashes():
    lay = lambda role, name: LayerInput(role, name, [])  # noqa: E731
    names = covariate_feature_names([lay(Role.SAND, "0-5 cm"), lay(Role.SAND, "5-15 cm"), lay(Role.OTHER, "slope"),
                                     lay(Role.OTHER, "2m wind"), lay(Role.OTHER, "TWI"), lay(Role.OTHER, "twi"),
                                     lay(Role.NDVI, "MOD13")])
    assert names == ["sand_0_5_cm", "sand_5_15_cm", "other_slope", "other_2m_wind", "twi", "twi_2", "ndvi"]


def test_ensemble_inputs_from_other_layers(make_raster):
    # one Other layer keeps feeding every Other-type input, as before
    single = _scene(make_raster, [("my field capacity", 30.0)])
    assert single.covariate_names == ["other"]
    assert [scene_feature_for(n, single) for n in ("field_capacity", "vv_db", "lat")] == ["other", "other", "lat"]
    # several: each input takes the layer named after it, and no other layer stands in for a missing one
    several = _scene(make_raster, [("field_capacity", 30.0), ("VV dB", -12.0), ("TWI", 7.0)])
    assert several.covariate_names == ["field_capacity", "vv_db", "twi"]
    assert [scene_feature_for(n, several) for n in ("field_capacity", "vv_db", "vh_db")] == \
        ["field_capacity", "vv_db", None]
    w = next(several.fine.windows())
    assert float(several.features(0, w)["vv_db"][0, 0]) == pytest.approx(-12.0)
