"""Parameters that several algorithms share — coarse soil moisture, covariates by role, target
grid — and their translation into a :class:`core.inputs.scene.SceneSpec`.

Not a base class: algorithms call these functions from ``initAlgorithm``/``processAlgorithm``.
"""
from __future__ import annotations

import os
from typing import Optional

from osgeo import gdal
from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterExtent,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core.raster.align import BandRef
from ..core.inputs.dates import parse_date, parse_date_list
from ..core.inputs.roles import ROLE_INFO, Role
from ..core.inputs.scene import LayerInput, SceneSpec
from .base import TYPE_RASTER, raster_source
from .param_names import DERIVE_TERRAIN, EXTENT, RESOLUTION, SM_DATES, SOIL_MOISTURE, TARGET_CRS, TOLERANCE_DAYS  # noqa: F401

gdal.UseExceptions()


#: Parameter name of each covariate role, and the help a user sees.
COVARIATE_PARAMS: tuple[tuple[str, Role, str], ...] = (
    ("DEM", Role.DEM, "Elevation in metres. Slope and a multi-scale topographic position index (mTPI) "
                      "are derived from it when 'Derive terrain covariates' is ticked."),
    ("NDVI", Role.NDVI, "NDVI (−1…1): one layer per date (date in the file name or band description), "
                        "a multi-band layer with dated bands, or one static layer."),
    ("LST", Role.LST, "Land surface temperature in kelvin (MODIS: set scale 0.02), static or dated like NDVI."),
    ("ET", Role.ET, "Evapotranspiration (mm/day), static or dated."),
    ("PRECIPITATION", Role.PRECIPITATION, "Precipitation (mm/day), static or dated."),
    ("SAND", Role.SAND, "Sand content in % (SoilGrids g/kg: set scale 0.1)."),
    ("CLAY", Role.CLAY, "Clay content in % (SoilGrids g/kg: set scale 0.1)."),
    ("PH", Role.PH, "Soil pH (SoilGrids pH×10: set scale 0.1)."),
    ("LAND_COVER", Role.LAND_COVER, "Land-cover classes (integer codes); taken by majority when coarsened, "
                                    "nearest when refined. Enables one model per class."),
    ("OTHER", Role.OTHER, "Any other continuous covariate, used as given."),
)


def add_soil_moisture_params(alg) -> None:
    alg.add_param(
        QgsProcessingParameterMultipleLayers(SOIL_MOISTURE, alg.tr("Coarse soil moisture (m³/m³)"), TYPE_RASTER),
        "The coarse product (SMAP, ESA CCI, …) in m³/m³: either one multi-band raster with one band per date "
        "(dates in the band descriptions) or several single-date rasters with the date in the file name "
        "(YYYYMMDD or YYYY-MM-DD).")
    alg.add_param(
        QgsProcessingParameterString(SM_DATES, alg.tr("Dates of the soil-moisture bands"), optional=True),
        "Only needed when neither band descriptions nor file names carry dates: the dates of all bands in "
        "order, comma separated (2018-01-01, 2018-01-02, …).", advanced=True)


def add_covariate_params(alg, optional_roles: bool = True) -> None:
    for key, role, help_text in COVARIATE_PARAMS:
        alg.add_param(
            QgsProcessingParameterMultipleLayers(key, alg.tr(f"{ROLE_INFO[role].label} ({ROLE_INFO[role].units})"),
                                                 TYPE_RASTER, optional=optional_roles),
            help_text)


def add_grid_params(alg) -> None:
    alg.add_param(QgsProcessingParameterCrs(TARGET_CRS, alg.tr("Target CRS"), optional=True),
                  "CRS of the output. Default: the CRS of the finest covariate.")
    alg.add_param(QgsProcessingParameterNumber(RESOLUTION, alg.tr("Target resolution (in target CRS units)"),
                                               QgsProcessingParameterNumber.Double, 0.0, minValue=0.0),
                  "Pixel size of the output in the units of the target CRS (degrees for EPSG:4326). "
                  "0 = the finest covariate's pixel size.")
    alg.add_param(QgsProcessingParameterExtent(EXTENT, alg.tr("Area of interest"), optional=True),
                  "Limit the output to this extent. Default: where all inputs overlap.")
    alg.add_param(QgsProcessingParameterBoolean(DERIVE_TERRAIN, alg.tr("Derive terrain covariates from the DEM"), True),
                  "Add slope (degrees) and the multi-scale topographic position index (m; mean of TPIs at radii "
                  "1.2–115.8 km, Theobald et al. 2015) computed from the DEM on the target grid.")
    alg.add_param(QgsProcessingParameterNumber(TOLERANCE_DAYS, alg.tr("Date tolerance for dated covariates (days)"),
                                               QgsProcessingParameterNumber.Integer, 8, minValue=0),
                  "A dated covariate serves a soil-moisture date if it is at most this many days earlier "
                  "(8 = the 8-day composites of MODIS, as padded by Poehls et al.).", advanced=True)


def _band_dates(path: str) -> list[Optional[object]]:
    ds = gdal.Open(path)
    out = [parse_date(ds.GetRasterBand(i).GetDescription() or "") for i in range(1, ds.RasterCount + 1)]
    ds = None
    return out


def soil_moisture_refs(alg, parameters, context, key: str = SOIL_MOISTURE) -> list[BandRef]:
    """Dated bands of the soil-moisture layers of parameter ``key`` (the coarse product by default)."""
    layers = alg.parameterAsLayerList(parameters, key, context)
    if not layers:
        raise QgsProcessingException(alg.tr("Give at least one coarse soil-moisture layer."))
    given = alg.parameterAsString(parameters, SM_DATES, context).strip()
    refs: list[BandRef] = []
    for lay in layers:
        path, n = raster_source(lay, alg.tr("soil moisture"))
        dates = _band_dates(path)
        if n == 1 and dates[0] is None:
            dates = [parse_date(os.path.basename(path)) or parse_date(lay.name())]
        refs.extend(BandRef(path, i + 1, lay.name(), d) for i, d in enumerate(dates))
    if given:
        try:
            explicit = parse_date_list(given)
        except ValueError as e:
            raise QgsProcessingException(str(e)) from None
        if len(explicit) != len(refs):
            raise QgsProcessingException(alg.tr(
                f"{len(explicit)} dates were given for {len(refs)} soil-moisture bands. "
                "Fix: give one date per band, in layer and band order."))
        refs = [BandRef(r.path, r.band, r.name, d) for r, d in zip(refs, explicit)]
    return refs


def covariate_inputs(alg, parameters, context) -> list[LayerInput]:
    out: list[LayerInput] = []
    for key, role, _ in COVARIATE_PARAMS:
        layers = alg.parameterAsLayerList(parameters, key, context)
        if not layers:
            continue
        refs: list[BandRef] = []
        for lay in layers:
            path, n = raster_source(lay, ROLE_INFO[role].label)
            dates = _band_dates(path)
            if n == 1:
                d = dates[0] or parse_date(os.path.basename(path))
                refs.append(BandRef(path, 1, lay.name(), d))
            elif all(d is not None for d in dates):
                refs.extend(BandRef(path, i + 1, lay.name(), d) for i, d in enumerate(dates))
            else:
                raise QgsProcessingException(alg.tr(
                    f"Layer '{lay.name()}': it has {n} bands but not every band description is a date, so it is "
                    f"unclear which band is the {ROLE_INFO[role].label}. Fix: extract that band "
                    "(Raster ▸ Conversion ▸ Translate, or gdal_translate -b N) and use the new layer."))
        if len(refs) > 1 and any(r.date is None for r in refs):
            undated = next(r for r in refs if r.date is None)
            raise QgsProcessingException(alg.tr(
                f"Layer '{undated.name}': {ROLE_INFO[role].label} was given as several layers, but this one has "
                "no date. Fix: put the date in its file name (YYYYMMDD) or give a single static layer."))
        out.append(LayerInput(role, ", ".join(sorted({r.name for r in refs})), refs))
    return out


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
    res = alg.parameterAsDouble(parameters, RESOLUTION, context)
    return SceneSpec(
        soil_moisture=soil_moisture_refs(alg, parameters, context) if with_soil_moisture else [],
        covariates=covs,
        crs=crs_text,
        resolution=res if res > 0 else None,
        derive_terrain=alg.parameterAsBoolean(parameters, DERIVE_TERRAIN, context),
        tolerance_days=alg.parameterAsInt(parameters, TOLERANCE_DAYS, context),
        extent=extent,
        allow_no_soil_moisture=not with_soil_moisture,
    )
