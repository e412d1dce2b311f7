"""Every algorithm of the *Downscaling* group runs with the shared parameters alone.

Scripts, the dock and the graphical modeler pass only the shared parameters (coarse soil moisture,
covariate roles, grid, stations, OUTPUT — ``processing_provider/param_names.py`` and the role
parameters of ``layer_params.py``); everything a method adds must be optional or have a default.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from osgeo import gdal

from soil_moisture_downscaling.processing_provider import param_names
from soil_moisture_downscaling.processing_provider.layer_params import COVARIATE_PARAMS

DATES = [dt.date(2018, 1, d) for d in (2, 9, 16)]
SHARED = {v for k, v in vars(param_names).items() if k.isupper()} | {name for name, _, _ in COVARIATE_PARAMS}


def _downscaling_algorithms(provider):
    algs = [a for a in provider.algorithms() if a.groupId() == "downscaling"]
    assert len(algs) >= 2, "the Downscaling group lost its algorithms: the checks below would be vacuous"
    return algs


def test_every_method_parameter_is_optional_or_has_a_default(provider):
    from qgis.core import QgsProcessingParameterDefinition

    problems = []
    for alg in _downscaling_algorithms(provider):
        for p in alg.parameterDefinitions():
            if p.name() in SHARED or p.isDestination():
                continue
            optional = bool(p.flags() & QgsProcessingParameterDefinition.FlagOptional)
            if not optional and p.defaultValue() is None:
                problems.append(f"{alg.id()}: {p.name()} is required and has no default")
    assert not problems, "\n".join(problems)


@pytest.fixture
def small_scene(make_raster):
    n, k = 40, 10
    y, x = np.mgrid[0:n, 0:n] / n
    dem = (60 + 50 * np.cos(4 * x + 1) + 30 * y).astype(np.float32)
    coarse = [np.full((n // k, n // k), 0.2 + 0.02 * i, np.float32) + 0.01 * np.arange(n // k, dtype=np.float32)
              for i in range(len(DATES))]
    sm = [str(make_raster(f"SM_{d:%Y%m%d}.tif", c, pixel=(10000.0, 10000.0))) for d, c in zip(DATES, coarse)]
    return {"sm": sm, "dem": str(make_raster("dem.tif", dem))}


@pytest.mark.slow
def test_each_downscaling_algorithm_runs_with_the_shared_parameters_alone(provider, run_alg, small_scene, tmp_path):
    for alg in _downscaling_algorithms(provider):
        out = str(tmp_path / f"{alg.name()}.tif")
        res = run_alg(alg.id(), {"SOIL_MOISTURE": small_scene["sm"], "DEM": [small_scene["dem"]], "OUTPUT": out})
        ds = gdal.Open(res["OUTPUT"])
        assert ds.RasterCount == len(DATES), alg.id()
        assert [ds.GetRasterBand(i + 1).GetDescription() for i in range(len(DATES))] == [d.isoformat() for d in DATES]
        first = ds.GetRasterBand(1).ReadAsArray()
        assert np.isfinite(first).mean() > 0.9, alg.id()
        assert 0.0 <= np.nanmin(first) and np.nanmax(first) < 1.0, alg.id()
