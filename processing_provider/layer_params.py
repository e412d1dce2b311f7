"""Parameters that several algorithms share — coarse soil moisture, covariates by role, target
grid — and their translation into a :class:`core.inputs.scene.SceneSpec`.

Not a base class: algorithms call these functions from ``initAlgorithm``/``processAlgorithm``.
"""
from __future__ import annotations

import contextlib
import dataclasses

from osgeo import gdal
from qgis.core import QgsProcessingException

from ..core.io.destination import check_destination, estimate_raster_bytes
from ..core.errors import InputError
from ..core.inputs import layers as layer_refs
from ..core.inputs.layers import GivenLayer
from ..core.inputs.roles import ROLE_INFO
from ..core.inputs.scene import DEFAULT_MAX_PIXELS, LayerInput, SceneSpec
from ..core.raster.align import BandRef
from . import spec_params as ps
from . import specs
from .base import raster_source
from .specs import COVARIATE_PARAMS  # noqa: F401 (re-exported: the dock and the tests read it here)
from .param_names import (DERIVE_TERRAIN, EXTENT, MAX_PIXELS, RESOLUTION, SM_DATES, SOIL_MOISTURE,  # noqa: F401
                          TARGET_CRS, TOLERANCE_DAYS)

gdal.UseExceptions()


def add_soil_moisture_params(alg, optional: bool = False, with_dates: bool = True) -> None:
    ps.add_specs(alg, dataclasses.replace(specs.SOIL_MOISTURE_SPEC, optional=optional))
    if with_dates:
        ps.add_specs(alg, specs.SM_DATES_SPEC)


def add_covariate_params(alg, optional_roles: bool = True) -> None:
    ps.add_specs(alg, *specs.covariate_specs(optional_roles))


def add_grid_params(alg) -> None:
    ps.add_specs(alg, *specs.GRID_SPECS)


def _given(alg, parameters, context, key: str, what: str) -> list[GivenLayer]:
    out = []
    for lay in alg.parameterAsLayerList(parameters, key, context):
        path, n = raster_source(lay, what)
        out.append(GivenLayer(path, lay.name(), n))
    return out


def soil_moisture_refs(alg, parameters, context, key: str = SOIL_MOISTURE) -> list[BandRef]:
    """Dated bands of the soil-moisture layers of parameter ``key`` (the coarse product by default)."""
    layers = _given(alg, parameters, context, key, alg.tr("soil moisture"))
    if not layers:
        raise QgsProcessingException(alg.tr("Give at least one coarse soil-moisture layer."))
    with _as_processing_error():
        return layer_refs.soil_moisture_refs(layers, alg.parameterAsString(parameters, SM_DATES, context), SM_DATES)


def covariate_inputs(alg, parameters, context) -> list[LayerInput]:
    """The covariate layers of every role, as scene inputs (rules: :func:`core.inputs.layers.covariate_inputs`)."""
    by_role = [(role, _given(alg, parameters, context, key, ROLE_INFO[role].label)) for key, role, _ in COVARIATE_PARAMS]
    with _as_processing_error():
        return layer_refs.covariate_inputs(by_role)


@contextlib.contextmanager
def _as_processing_error():
    try:
        yield
    except InputError as exc:
        raise QgsProcessingException(str(exc)) from None


def check_room(path: str, width: int, height: int, bands: int, rasters: int = 1, what: str = "output") -> None:
    """Raise :class:`InputError` unless ``path``'s disk holds ``rasters`` float32 rasters of this shape."""
    check_destination(path, estimate_raster_bytes(width, height, bands, rasters), what=f"{what} ({path})")


def scene_spec(alg, parameters, context, with_soil_moisture: bool = True) -> SceneSpec:
    crs = alg.parameterAsCrs(parameters, TARGET_CRS, context)
    crs_text = crs.toWkt() if crs.isValid() else None
    covs = covariate_inputs(alg, parameters, context)
    extent = None
    if parameters.get(EXTENT):
        target = crs if crs.isValid() else None
        if target is None and covs:
            from qgis.core import QgsCoordinateReferenceSystem
            ds = gdal.Open(covs[0].bands[0].path)
            target = QgsCoordinateReferenceSystem(ds.GetProjection())
            ds = None
        r = alg.parameterAsExtent(parameters, EXTENT, context, target) if target else \
            alg.parameterAsExtent(parameters, EXTENT, context)
        extent = (r.xMinimum(), r.yMinimum(), r.xMaximum(), r.yMaximum())
    values = ps.spec_values(alg, parameters, context, [g for g in specs.GRID_SPECS if alg.parameterDefinition(g.name)])
    return specs.scene_spec_of(values, soil_moisture_refs(alg, parameters, context) if with_soil_moisture else [],
                               covs, crs_text, extent, allow_no_soil_moisture=not with_soil_moisture)
