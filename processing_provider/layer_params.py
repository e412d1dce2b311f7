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

from ..core.io.destination import check_destination, estimate_raster_bytes
from ..core.raster.align import BandRef
from ..core.inputs.dates import parse_date, parse_date_list, strip_date
from ..core.inputs.roles import ROLE_INFO, Role
from ..core.inputs.scene import DEFAULT_MAX_PIXELS, LayerInput, SceneSpec, undated_bands_problem
from .base import TYPE_RASTER, raster_source
from .param_names import (DERIVE_TERRAIN, EXTENT, MAX_PIXELS, RESOLUTION, SM_DATES, SOIL_MOISTURE,  # noqa: F401
                          TARGET_CRS, TOLERANCE_DAYS)

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
    ("OTHER", Role.OTHER, "Any other continuous covariates, used as given: each layer is a covariate of its own, "
                          "named after the layer (a static multi-band layer: one per band; dated files whose "
                          "names differ only by the date: one time series). An ensemble input such as "
                          "field_capacity or vv_db takes the layer of that name, or the only Other layer."),
)


def add_soil_moisture_params(alg, optional: bool = False, with_dates: bool = True) -> None:
    alg.add_param(
        QgsProcessingParameterMultipleLayers(SOIL_MOISTURE, alg.tr("Coarse soil moisture (m³/m³)"), TYPE_RASTER,
                                             optional=optional),
        "The coarse product (SMAP, ESA CCI, …) in m³/m³: either one multi-band raster with one band per date "
        "(dates in the band descriptions) or several single-date rasters with the date in the file name "
        "(YYYYMMDD or YYYY-MM-DD).")
    if not with_dates:
        return
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
    alg.add_param(QgsProcessingParameterNumber(MAX_PIXELS, alg.tr("Largest target grid (million pixels)"),
                                               QgsProcessingParameterNumber.Double, DEFAULT_MAX_PIXELS / 1e6,
                                               minValue=0.0),
                  "A run whose target grid has more pixels stops before any work, with an estimate of its time and "
                  "disk space (a resolution typed 100× too fine gives 10 000× the pixels). Raise it when you mean "
                  "such a grid; 0 = no limit.", advanced=True)


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
    undated = [r for r in refs if r.date is None]
    if undated:
        raise QgsProcessingException(alg.tr(
            f"Layer '{undated[0].name}': {undated_bands_problem(undated)} Fix: give the dates of all "
            f"{len(refs)} soil-moisture bands, in layer and band order, in the advanced parameter "
            f"'Dates of the soil-moisture bands' ({SM_DATES}, e.g. 2018-01-01, 2018-01-02, …), or set each band "
            "description to its date (YYYY-MM-DD), or use one file per date with the date in its name."))
    return refs


def covariate_inputs(alg, parameters, context) -> list[LayerInput]:
    """The covariate layers of every role, as scene inputs.

    Per role: dated single-band files form one time series (under *Other*, one per name once the
    date is removed: ``S1_VV_20180101`` … and ``S1_VH_20180101`` … are two series); a layer with
    dated bands is a time series; every undated layer is a static covariate of its own, and a
    static multi-band layer gives one covariate per band. A DEM is one layer. Under a named
    role, dated and undated layers together are refused (an undated file of a series is a slip).
    """
    out: list[LayerInput] = []
    for key, role, _ in COVARIATE_PARAMS:
        layers = alg.parameterAsLayerList(parameters, key, context)
        if not layers:
            continue
        label = ROLE_INFO[role].label
        series: dict[str, list[BandRef]] = {}
        static: list[LayerInput] = []
        for lay in layers:
            path, n = raster_source(lay, label)
            dates = _band_dates(path)
            if n == 1:
                d = dates[0] or parse_date(os.path.basename(path))
                if d is None:
                    static.append(LayerInput(role, lay.name(), [BandRef(path, 1, lay.name(), None)]))
                else:
                    stem = strip_date(lay.name()) if role is Role.OTHER else label
                    series.setdefault(stem, []).append(BandRef(path, 1, lay.name(), d))
            elif all(d is not None for d in dates):
                stem = lay.name() if role is Role.OTHER else label
                series.setdefault(stem, []).extend(BandRef(path, i + 1, lay.name(), d) for i, d in enumerate(dates))
            elif all(d is None for d in dates) and role is not Role.DEM:
                static += [LayerInput(role, f"{lay.name()} {_band_label(path, b)}", [BandRef(path, b, lay.name(), None)])
                           for b in range(1, n + 1)]
            else:
                raise QgsProcessingException(alg.tr(
                    f"Layer '{lay.name()}': it has {n} bands and {_undated_text(path, dates)}, so it is unclear "
                    f"which bands are the {label}. Fix: set every band description to its date (YYYY-MM-DD) for a "
                    "time series, or extract the band you mean (Raster ▸ Conversion ▸ Translate, or "
                    "gdal_translate -b N) and use the new layer."))
        if series and static and role is not Role.OTHER:
            lay = static[0]
            raise QgsProcessingException(alg.tr(
                f"Layer '{lay.name}': the {label} was given as a dated series, but no date could be read in this "
                f"layer's name or file name ('{os.path.basename(lay.bands[0].path)}'). Fix: put the date in its file "
                "name (YYYYMMDD or YYYY-MM-DD), or give it under 'Other covariate' if it is a separate static "
                "covariate."))
        for stem, refs in series.items():
            names = sorted({r.name for r in refs})
            out.append(LayerInput(role, stem if role is Role.OTHER else ", ".join(names), refs))
        out += static
        if role is Role.DEM and sum(lay.role is Role.DEM for lay in out) > 1:
            raise QgsProcessingException(alg.tr(
                f"{len(layers)} DEM layers were given. Fix: give one elevation layer (merge tiles first, e.g. "
                "Raster ▸ Miscellaneous ▸ Merge); other terrain layers go under 'Other covariate'."))
    return out


def _band_label(path: str, band: int) -> str:
    ds = gdal.Open(path)
    desc = (ds.GetRasterBand(band).GetDescription() or "").strip()
    ds = None
    return desc or f"band {band}"


def _undated_text(path: str, dates: list) -> str:
    undated = [b for b, d in enumerate(dates, start=1) if d is None]
    shown = ", ".join(f"band {b} ('{_band_label(path, b)}')" for b in undated[:5])
    return f"no date could be read in the description of {shown}" + (" …" if len(undated) > 5 else "")


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
    res = alg.parameterAsDouble(parameters, RESOLUTION, context)
    max_mpx = alg.parameterAsDouble(parameters, MAX_PIXELS, context) if alg.parameterDefinition(MAX_PIXELS) \
        else DEFAULT_MAX_PIXELS / 1e6
    return SceneSpec(
        soil_moisture=soil_moisture_refs(alg, parameters, context) if with_soil_moisture else [],
        covariates=covs,
        crs=crs_text,
        resolution=res if res > 0 else None,
        derive_terrain=alg.parameterAsBoolean(parameters, DERIVE_TERRAIN, context),
        tolerance_days=alg.parameterAsInt(parameters, TOLERANCE_DAYS, context),
        extent=extent,
        allow_no_soil_moisture=not with_soil_moisture,
        max_pixels=int(max_mpx * 1e6) if max_mpx > 0 else None,
    )
