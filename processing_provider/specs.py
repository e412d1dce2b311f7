"""Declarative, QGIS-free definitions of the algorithms' parameters: one :class:`ParamSpec` per parameter.

The Processing algorithms build their QGIS parameters from these (``SmAlgorithm.add_spec``) and the
command line (``cli/``) builds its options and ``--help`` from the same objects, so a name, a default,
an enum's order or a help text is written once. An option is the parameter name in kebab case
(``SOIL_MOISTURE`` → ``--soil-moisture``); an enum takes the short values of :attr:`ParamSpec.values`
on the command line and their index in Processing (``qgis_process``: ``REGRESSOR=0``).

Adding a method's parameters: write its specs here (a tuple), add them in the algorithm's
``initAlgorithm`` with ``spec_params.add_specs(self, ...)``, read them with ``spec_params.spec_values``, register the
method in ``cli/commands.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..core.inputs.roles import ROLE_INFO, Role
from ..core.inputs.scene import DEFAULT_MAX_PIXELS
from ..core.methods.residual import RESIDUAL_LABELS, RESIDUALS
from ..core.methods.trend import REGRESSOR_LABELS, REGRESSORS
from .param_names import (DERIVE_TERRAIN, EXTENT, INSITU_CSV, MAX_PIXELS, OUTPUT, RESOLUTION, SCORES_CSV, SM_DATES,
                          SOIL_MOISTURE, STATIONS_CSV, TARGET_CRS, TOLERANCE_DAYS)

# kinds
LAYERS = "layers"          #: several rasters (QgsProcessingParameterMultipleLayers of rasters)
NUMBER = "number"          #: a float
INTEGER = "integer"
BOOL = "bool"
ENUM = "enum"              #: one of :attr:`ParamSpec.values` (Processing: its index)
STRING = "string"
CRS = "crs"                #: EPSG:xxxx, WKT or PROJ text
AREA = "extent"            #: xmin,xmax,ymin,ymax (Processing's order), optionally followed by " [EPSG:xxxx]"
RASTER_OUT = "raster_out"  #: a GeoTIFF to write
FILES = "files"            #: several files of any kind (Processing: a multiple-layer parameter of files)
FOLDER = "folder"          #: an existing folder
FILE = "file"              #: one existing file (:attr:`ParamSpec.extension`, e.g. ``csv``)
FILE_OUT = "file_out"      #: a file to write (:attr:`ParamSpec.extension`)
DATE = "date"              #: a day, YYYY-MM-DD
ENUMS = "enums"            #: several of :attr:`ParamSpec.values` (default: a tuple of indices)
RASTER = "raster"          #: one raster layer
FOLDER_OUT = "folder_out"  #: a folder to write


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str
    label: str
    help: str
    default: Any = None
    optional: bool = False
    advanced: bool = False
    #: enum: labels shown in QGIS, and the command line's short values, in the same order
    choices: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    #: files: the extension without the dot (Processing's file filter)
    extension: str = ""
    #: an input file: Processing's file filter instead of one extension (e.g. a .zip or a folder typed in)
    file_filter: str = ""
    #: an optional file to write: written (to a temporary file) unless the user unticks it
    create_by_default: bool = True

    @property
    def option(self) -> str:
        """The command-line option, e.g. ``--soil-moisture``."""
        return "--" + self.name.lower().replace("_", "-")


# -- shared: coarse soil moisture, covariates, target grid --------------------------------------
SOIL_MOISTURE_SPEC = ParamSpec(
    SOIL_MOISTURE, LAYERS, "Coarse soil moisture (m³/m³)",
    "The coarse product (SMAP, ESA CCI, …) in m³/m³: either one multi-band raster with one band per date "
    "(dates in the band descriptions) or several single-date rasters with the date in the file name "
    "(YYYYMMDD or YYYY-MM-DD).")
SM_DATES_SPEC = ParamSpec(
    SM_DATES, STRING, "Dates of the soil-moisture bands",
    "Only needed when neither band descriptions nor file names carry dates: the dates of all bands in "
    "order, comma separated (2018-01-01, 2018-01-02, …).", optional=True, advanced=True)

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


def covariate_specs(optional: bool = True) -> tuple[ParamSpec, ...]:
    return tuple(ParamSpec(key, LAYERS, f"{ROLE_INFO[role].label} ({ROLE_INFO[role].units})", help_text,
                           optional=optional) for key, role, help_text in COVARIATE_PARAMS)


GRID_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec(TARGET_CRS, CRS, "Target CRS", "CRS of the output. Default: the CRS of the finest covariate.",
              optional=True),
    ParamSpec(RESOLUTION, NUMBER, "Target resolution (in target CRS units)",
              "Pixel size of the output in the units of the target CRS (degrees for EPSG:4326). "
              "0 = the finest covariate's pixel size.", default=0.0, minimum=0.0),
    ParamSpec(EXTENT, AREA, "Area of interest", "Limit the output to this extent. Default: where all inputs overlap.",
              optional=True),
    ParamSpec(DERIVE_TERRAIN, BOOL, "Derive terrain covariates from the DEM",
              "Add slope (degrees) and the multi-scale topographic position index (m; mean of TPIs at radii "
              "1.2–115.8 km, Theobald et al. 2015) computed from the DEM on the target grid.", default=True),
    ParamSpec(TOLERANCE_DAYS, INTEGER, "Date tolerance for dated covariates (days)",
              "A dated covariate serves a soil-moisture date if it is at most this many days earlier "
              "(8 = the 8-day composites of MODIS, as padded by Poehls et al.).", default=8, minimum=0, advanced=True),
    ParamSpec(MAX_PIXELS, NUMBER, "Largest target grid (million pixels)",
              "A run whose target grid has more pixels stops before any work, with an estimate of its time and "
              "disk space (a resolution typed 100× too fine gives 10 000× the pixels). Raise it when you mean "
              "such a grid; 0 = no limit.", default=DEFAULT_MAX_PIXELS / 1e6, minimum=0.0, advanced=True),
)

#: Everything a downscaling algorithm shares, in dialog order.
SCENE_SPECS: tuple[ParamSpec, ...] = (SOIL_MOISTURE_SPEC, SM_DATES_SPEC) + covariate_specs() + GRID_SPECS


def scene_spec_of(values: dict[str, Any], soil_moisture: list, covariates: list, crs: Optional[str],
                  extent: Optional[tuple[float, float, float, float]], allow_no_soil_moisture: bool = False):
    """The :class:`~core.inputs.scene.SceneSpec` of the values of :data:`GRID_SPECS` (a missing one: its default)."""
    from ..core.inputs.scene import SceneSpec
    v = {g.name: g.default for g in GRID_SPECS} | dict(values)
    res, max_mpx = float(v[RESOLUTION]), float(v[MAX_PIXELS])
    return SceneSpec(soil_moisture=soil_moisture, covariates=covariates, crs=crs, resolution=res if res > 0 else None,
                     derive_terrain=bool(v[DERIVE_TERRAIN]), tolerance_days=int(v[TOLERANCE_DAYS]), extent=extent,
                     allow_no_soil_moisture=allow_no_soil_moisture,
                     max_pixels=int(max_mpx * 1e6) if max_mpx > 0 else None)


# -- the trend → residual family (regression, SVATARK) -------------------------------------------
REGRESSION_HELP = (
    "Downscales a coarse soil-moisture time series to the grid of fine covariates.<br>"
    "<b>Trend</b>: a regressor is fitted on the coarse grid — coarse soil moisture against the covariates "
    "averaged over each coarse cell (land cover: majority) and the day of year — optionally one model per "
    "land-cover class, and applied to every fine pixel and date.<br>"
    "<b>Do no harm</b>: the trend is scaled by its skill in explaining the coarse field out of sample "
    "(cross-validation on blocks of coarse cells; 0 = the covariates explain nothing beyond what neighbouring "
    "cells already tell, and the map becomes a smooth interpolation of the coarse cells); its static "
    "within-cell pattern and its date-to-date part get weights of their own, since only the latter changes "
    "a pixel's series. An interpolated residual's departure from each cell's own value is weighted the same "
    "way, by how well it rebuilds the coarse cells from 2×2 blocks of cells (all weights in the log).<br>"
    "<b>Residual</b>: the coarse soil moisture minus the mean fine trend in each cell is interpolated "
    "(bilinear with refinement passes, point kriging, or area-to-point kriging) and added back, so the fine "
    "pixels of a coarse cell average back to its value (the log reports this conservation per date). Kriged "
    "residuals also give a kriging standard deviation per date.<br>"
    "Output: a float32 GeoTIFF, one band per date (band description = date), styled, with the dates set "
    "for the temporal controller, and a JSON run log beside it. With stations and an in-situ table, "
    "N, R, ubRMSE, bias and RMSE of the downscaled and the coarse product are computed at each station "
    "(ubRMSE = sqrt(RMSE² − bias²))."
)

def residual_spec(default_residual: str) -> ParamSpec:
    return ParamSpec(
        "RESIDUAL", ENUM, "Residual model",
        "How the coarse residual (coarse soil moisture − mean fine trend per cell) is spread onto the fine "
        "grid. <i>Chosen one scale up</i> (default) tries uniform, bilinear and area-to-point kriging on 2×2 "
        "blocks of coarse cells spread back onto the cells, and keeps the one that best reproduces the cells' "
        "own series (uniform unless interpolation clearly helps). Or: uniform per cell, bilinear between "
        "cell centres (+ refinement passes; SVRB), ordinary kriging from the cell "
        "centres (SVRK), or area-to-point kriging with a variogram deconvolved to point support (ATPK, as in "
        "SVATARK): the fine pixels of each cell average back to its value exactly, and a kriging standard "
        "deviation is written per date.",
        default=RESIDUALS.index(default_residual), choices=tuple(RESIDUAL_LABELS[r] for r in RESIDUALS),
        values=tuple(RESIDUALS))


KRIGING_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("KRIGING_NEIGHBOURS", INTEGER, "Kriging: neighbouring coarse cells",
              "Coarse cells used to krige each cell's fine pixels (Jin et al.: 25). Kriged residuals only.",
              default=25, minimum=3, maximum=100, advanced=True),
    ParamSpec("WEIGHT_TREND", BOOL, "Weight the trend by its cross-validated skill",
              "Do no harm: the fine trend enters only as far as it explains the coarse field out of sample "
              "(cross-validation on blocks of coarse cells, weight 0…1 in the log). Untick to add the full trend "
              "(classic regression kriging), which can be worse than bilinear interpolation when the covariates "
              "explain little.", default=True, advanced=True),
    ParamSpec("WEIGHT_RESIDUAL", BOOL, "Weight the interpolated residual by its skill one scale up",
              "Do no harm at stations: a bilinear or kriged residual's departure from the uniform one (each cell's "
              "own value) enters only as far as it reproduces the coarse cells from 2×2 blocks of cells, its "
              "static pattern and its date-to-date part weighted apart (weights 0…1 in the log). Untick to add "
              "the full interpolated residual (e.g. plain area-to-point kriging).", default=True, advanced=True),
)

OUTPUT_SPEC = ParamSpec(OUTPUT, RASTER_OUT, "Downscaled soil moisture", "GeoTIFF, one band per date (m³/m³).")
KRIGING_SD_SPEC = ParamSpec(
    "KRIGING_SD", RASTER_OUT, "Kriging standard deviation",
    "One band per date (m³/m³): the kriging standard deviation of the residual at each fine pixel — the "
    "uncertainty band of a kriged residual (not of the trend). Written beside the output when not given; "
    "none for the bilinear residual.", optional=True)


def _svr_c(help_text: str) -> ParamSpec:
    return ParamSpec("SVR_C", NUMBER, "SVR: C", help_text, default=1.0, minimum=1e-4, advanced=True)


def _svr_epsilon(help_text: str) -> ParamSpec:
    return ParamSpec("SVR_EPSILON", NUMBER, "SVR: epsilon (m³/m³)", help_text, default=0.01, minimum=0.0, advanced=True)


REGRESSION_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("REGRESSOR", ENUM, "Regressor",
              "Support-vector regression with an RBF kernel (as in Jin et al., SVATARK), a random forest, "
              "or histogram gradient boosting.", default=0, choices=tuple(REGRESSOR_LABELS[r] for r in REGRESSORS),
              values=tuple(REGRESSORS)),
    ParamSpec("PER_CLASS", BOOL, "One model per land-cover class",
              "Fit one trend per land-cover class (classes with fewer than 30 coarse samples use the global "
              "model). Needs a land-cover layer.", default=False),
    _svr_c("Regularisation of the SVR: larger C fits the coarse samples more closely."),
    _svr_epsilon("Errors smaller than this are not penalised; larger values give fewer support vectors "
                 "(faster prediction)."),
    ParamSpec("N_ESTIMATORS", INTEGER, "Trees / boosting iterations",
              "Number of trees of the random forest, or iterations of gradient boosting.", default=200, minimum=10,
              advanced=True),
    residual_spec("auto"),
) + KRIGING_SPECS + (
    ParamSpec("RESIDUAL_ITERATIONS", INTEGER, "Residual refinement passes",
              "Each pass adjusts the coarse residual field so that, after bilinear interpolation, the fine "
              "pixels of every coarse cell average back to its value more closely (each pass roughly halves "
              "the difference). 0 = plain bilinear residual. Bilinear residual only.", default=3, minimum=0,
              maximum=20, advanced=True),
    ParamSpec("SEED", INTEGER, "Random seed", "Seed of the random forest / boosting, for reproducible runs.",
              default=42, advanced=True),
)

SVATARK_HELP = (
    "Support vector area-to-area regression kriging (Jin et al.).<br>"
    "<b>Trend</b>: an ε-SVR with an RBF kernel fitted on the coarse grid — coarse soil moisture against the "
    "covariates averaged over each coarse cell and the day of year — one per land-cover class when a land-cover "
    "(or any class) layer is given; classes with fewer than 30 coarse samples use the global model. C, ε and γ "
    "can be tuned by cross-validation grouped by coarse cell.<br>"
    "<b>Residual</b>: area-to-point kriging of the coarse residual with the 25 nearest cells; its point-support "
    "variogram is deconvolved from the areal one (Goovaerts 2008). The fine pixels of every coarse cell average "
    "back to its value exactly, and a kriging standard deviation is written per date.<br>"
    "<b>Do no harm</b>: the trend is weighted by its cross-validated skill on the coarse field, so uninformative "
    "covariates leave a smooth, coherent interpolation of the coarse cells.<br>"
    "Outputs: the downscaled series, the kriging standard deviation per date, and a JSON run log with the "
    "fitted variograms (areal, deconvolved point model, sill per date). With stations and an in-situ table, "
    "both products are scored; ticking the bias correction removes the mean coarse-minus-station difference "
    "first, as in the paper."
)

SVATARK_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("PER_CLASS", BOOL, "One SVR per land-cover class",
              "Stratify the trend by the land-cover layer (any class raster given as land cover). Without "
              "such a layer one global SVR is fitted.", default=True),
    ParamSpec("TUNE_SVR", BOOL, "Tune C, ε and γ by cross-validation",
              "Grid search of the SVR's C, ε and RBF width γ, 5-fold cross-validation grouped by coarse cell "
              "(on at most 3 000 coarse samples). Slower; the chosen values are in the run log.", default=False),
    _svr_c("Regularisation of the SVR when not tuned: larger C fits the coarse samples more closely."),
    _svr_epsilon("Errors smaller than this are not penalised (when not tuned)."),
) + KRIGING_SPECS


def residual_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The residual/kriging options among ``values`` (by parameter name) as dataclass fields."""
    out = {"kriging_neighbours": int(values["KRIGING_NEIGHBOURS"]), "shrink_trend": bool(values["WEIGHT_TREND"]),
           "shrink_residual": bool(values.get("WEIGHT_RESIDUAL", True))}
    if "RESIDUAL" in values:
        out["residual"] = RESIDUALS[int(values["RESIDUAL"])]
    return out


def regression_options(values: dict[str, Any]):
    """:class:`~core.methods.regression.RegressionOptions` of the values of :data:`REGRESSION_SPECS`."""
    from ..core.methods.regression import RegressionOptions
    return RegressionOptions(
        regressor=REGRESSORS[int(values["REGRESSOR"])], per_class=bool(values["PER_CLASS"]),
        svr_c=float(values["SVR_C"]), svr_epsilon=float(values["SVR_EPSILON"]),
        n_estimators=int(values["N_ESTIMATORS"]), seed=int(values["SEED"]),
        residual_iterations=int(values["RESIDUAL_ITERATIONS"]), **residual_fields(values))


def svatark_options(values: dict[str, Any]):
    """:class:`~core.methods.svatark.SvatarkOptions` of the values of :data:`SVATARK_SPECS`."""
    from ..core.methods.svatark import SvatarkOptions
    return SvatarkOptions(per_class=bool(values["PER_CLASS"]), tune_svr=bool(values["TUNE_SVR"]),
                          svr_c=float(values["SVR_C"]), svr_epsilon=float(values["SVR_EPSILON"]),
                          **residual_fields(values))


# -- downscale_deep_ensemble -----------------------------------------------------------------------
DEEP_ENSEMBLE_HELP = (
    "An ensemble of small networks trained here in numpy (after the deep-ensemble 9 km → 30 m scheme):<br>"
    "<b>DNN</b> — the covariates and day of year of the pixel; <b>CNN</b> (off by default) — a k×k patch of the "
    "covariates around the pixel, run fully convolutionally over raster tiles; <b>LSTM</b> — the last N dates "
    "(default 8) of the dated covariates and of the soil moisture of the date before each.<br>"
    "<b>Several resolutions</b>: training samples on the coarse grid (target: the coarse product) and on grids "
    "that split each coarse cell into 2×2 and 4×4 where they are coarser than 1.5 fine pixels (covariates "
    "averaged, target: cubic interpolation of the coarse product without the held-out cells).<br>"
    "<b>Held-out cells</b> (2×2 blocks of coarse cells never trained on) stop the training early, score every "
    "member and the ensemble, weight the members and measure the permutation importance of every input (HTML "
    "report).<br>"
    "<b>Do no harm</b>: the ensemble is the trend of the regression family, its fine detail weighted by how well "
    "it rebuilds held-out coarse cells — judged on several disjoint held-out splits, the members refitted for "
    "each; the coarse residual is spread by the chosen residual model so each cell's pixels average back to its "
    "value. A root-zone product can be given instead of the surface one.<br>"
    "Outputs: the series, the members' spread per date, the run log, the report, and optionally the fitted "
    "members as a verified model folder (ONNX graphs + state, SHA-256 in the card) to apply later."
)


def deep_ensemble_specs() -> tuple[ParamSpec, ...]:
    """The deep ensemble's own parameters (defaults: :class:`~core.methods.deep_ensemble.DeepEnsembleOptions`)."""
    from ..core.methods.deep_ensemble import WEIGHTINGS, DeepEnsembleOptions
    d = DeepEnsembleOptions()
    members = (
        ParamSpec("USE_DNN", BOOL, "Member: DNN (per pixel)",
                  "Include the dense network on the pixel's covariates and day of year (at least one member).",
                  default="dnn" in d.members, advanced=True),
        ParamSpec("USE_CNN", BOOL, "Member: CNN (covariate patch)",
                  "Include the convolutional network on a patch of covariates. Off by default: on the Delaware "
                  "sample its patch context put a wrong pattern inside the coarse cells that no check on the "
                  "coarse product can see; turn it on where a finer truth shows it helps.",
                  default="cnn" in d.members, advanced=True),
        ParamSpec("USE_LSTM", BOOL, "Member: LSTM (preceding dates)",
                  "Include the LSTM over the last dates of the dated covariates and the soil moisture of the date "
                  "before each.", default="lstm" in d.members, advanced=True),
    )
    return members + (
        ParamSpec("KERNEL", INTEGER, "CNN patch size (pixels, odd)",
                  "Side of the covariate patch the CNN sees around each pixel; the fine grid is read with a halo "
                  "of half of it.", default=d.kernel, minimum=1, maximum=15, advanced=True),
        ParamSpec("SEQUENCE_LENGTH", INTEGER, "LSTM: dates per sequence",
                  "The date predicted and the ones before it that the LSTM reads.", default=d.sequence_length,
                  minimum=1, maximum=60, advanced=True),
        ParamSpec("MAX_EPOCHS", INTEGER, "Maximum training epochs",
                  f"Upper bound of the training passes; training stops earlier when the early-stopping cells stop "
                  f"improving for {d.patience} epochs.", default=d.max_epochs, minimum=1, maximum=2000, advanced=True),
        ParamSpec("WEIGHTING", ENUM, "Ensemble weights",
                  "How the members are combined: weighted by their skill on the held-out coarse cells (inverse "
                  "MSE), or averaged.", default=WEIGHTINGS.index(d.weighting), values=WEIGHTINGS,
                  choices=("By held-out skill (inverse MSE)", "Plain mean"), advanced=True),
        ParamSpec("JUDGE_SPLITS", INTEGER, "Held-out splits judging the fine detail",
                  "Disjoint sets of held-out 2×2 blocks of coarse cells on which the do-no-harm weight of the "
                  "ensemble's fine detail is judged; the members are refitted once more for each split beyond the "
                  "first (training time grows in proportion). 1 = one split, as fast as possible but a noisy weight.",
                  default=d.judge_splits, minimum=1, maximum=5, advanced=True),
        ParamSpec("SEED", INTEGER, "Random seed",
                  "Seed of the held-out splits, the sampling and the networks' initialisation.", default=d.seed,
                  advanced=True),
        ParamSpec("MODEL_IN", FOLDER, "Apply saved members (folder)",
                  "A folder written by this algorithm ('Save the fitted members'): its members are applied (their "
                  "files' SHA-256 checked first) instead of training new ones; the layers need the roles they "
                  "were trained with. Empty: train on the given soil moisture.", optional=True),
        residual_spec("auto"),
    ) + KRIGING_SPECS


DEEP_ENSEMBLE_OUTPUT_SPECS: tuple[ParamSpec, ...] = (
    OUTPUT_SPEC,
    ParamSpec("SPREAD", RASTER_OUT, "Members' spread",
              "One band per date (m³/m³): the weighted standard deviation of the members' fine predictions — their "
              "disagreement, not a calibrated error. Default: <output>_spread.tif.", optional=True),
    KRIGING_SD_SPEC,
    ParamSpec("MODEL_OUT", FOLDER_OUT, "Save the fitted members",
              "A folder for the fitted members (ONNX graphs, the numpy state and a card with the SHA-256 of every "
              "file), to apply them later. Not saved when empty.", optional=True, create_by_default=False),
)


def deep_ensemble_options(values: dict[str, Any]):
    """:class:`~core.methods.deep_ensemble.DeepEnsembleOptions` of the values of :func:`deep_ensemble_specs`."""
    from ..core.errors import InputError
    from ..core.methods.deep_ensemble import MEMBERS, WEIGHTINGS, DeepEnsembleOptions
    members = tuple(m for m in MEMBERS if values[f"USE_{m.upper()}"])
    if not members:
        raise InputError("No ensemble member is chosen.", fix="choose at least one of DNN, CNN and LSTM.")
    kernel = int(values["KERNEL"])
    if kernel % 2 == 0:
        raise InputError(f"The CNN patch size must be odd (the pixel at its centre), not {kernel}.",
                         fix=f"use {kernel + 1}.")
    return DeepEnsembleOptions(members=members, kernel=kernel, sequence_length=int(values["SEQUENCE_LENGTH"]),
                               max_epochs=int(values["MAX_EPOCHS"]), weighting=WEIGHTINGS[int(values["WEIGHTING"])],
                               judge_splits=int(values["JUDGE_SPLITS"]), seed=int(values["SEED"]),
                               **residual_fields(values))


def deep_ensemble_lines(training: dict[str, Any]) -> list[str]:
    """The fit's figures for the run log: training resolutions, held-out scores and weights of every member and
    the ensemble, the do-no-harm weights."""
    from ..core.methods.deep_ensemble import MEMBER_LABELS
    levels = ", ".join(f"{lv['name']} ({lv['cell_size']:g}, {lv['training_samples']} samples)"
                       for lv in training["levels"])
    lines = [f"Training resolutions: {levels}"]
    for name, s in training["held_out_scores"].items():
        w = training["members"].get(name, {}).get("weight")
        lines.append(f"Held-out cells, {MEMBER_LABELS[name]}: R = {s['r']:.3f}, RMSE = {s['rmse']:.4f}, "
                     f"bias = {s['bias']:+.4f} m³/m³" + (f", weight {w:.2f}" if w is not None else ""))
    ct = training.get("coarse_trend_weight", {})
    if "trend_weight" in ct:
        lines.append(f"Trend weight judged on the coarse samples (first split): {ct['trend_weight']:.2f}; applied: "
                     f"the one judged on the fine trend over {training.get('judge_splits', 1)} held-out split(s)")
    return lines


# -- import_product ------------------------------------------------------------------------------
IMPORT_PRODUCT_HELP = (
    "Turns the files as downloaded — SMAP L3 radiometer 36 km (SPL3SMP), enhanced 9 km (SPL3SMP_E), "
    "SMAP L4 (SPL4SMGP) from NSIDC, or ESA CCI SM daily NetCDF (COMBINED, PASSIVE) — into one float32 GeoTIFF "
    "in m³/m³, one band per date (band description = the ISO date), which the downscaling algorithms take "
    "directly.<br>SMAP is placed on the global EASE-Grid 2.0 (EPSG:6933) from the grid definition; ESA CCI "
    "files carry no CRS and are placed on EPSG:4326. Fill values, valid ranges and quality flags are honoured. "
    "With an extent, only the cells intersecting it are read. Dates come from the file name or metadata."
)

#: L4 time steps a user can pick (UTC centres of the 3-hourly SPL4SMGP granules); index 0 = daily mean.
L4_TIMES = ("", "01:30", "04:30", "07:30", "10:30", "13:30", "16:30", "19:30", "22:30")

IMPORT_PRODUCT_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("INPUT", FILES, "Product files (.h5, .nc)",
              "The downloaded files of one product: SMAP granules (SMAP_L3_SM_P_YYYYMMDD_….h5, "
              "SMAP_L3_SM_P_E_…, SMAP_L4_SM_gph_YYYYMMDDThhmmss_….h5) or ESA CCI SM files "
              "(ESACCI-SOILMOISTURE-L3S-SSMV-…-YYYYMMDD000000-….nc)."),
    ParamSpec("EXTENT", AREA, "Area to keep",
              "Optional: the area of interest (any CRS). The product's cells that intersect it are kept; "
              "empty = the whole globe.", optional=True),
    ParamSpec("PASSES", ENUM, "SMAP L3: AM and PM retrievals",
              "How the 6 am (descending) and 6 pm (ascending) retrievals of a day become one value: AM first "
              "with PM filling its gaps, their mean where both exist (Poehls et al.), or one pass alone.", default=0,
              choices=("AM, gaps filled with PM", "Mean of AM and PM", "AM only", "PM only"),
              values=("am-then-pm", "mean", "am", "pm")),
    ParamSpec("RECOMMENDED_ONLY", BOOL, "SMAP L3: recommended quality only",
              "Keep only retrievals whose retrieval_qual_flag bit 0 is 0 (recommended quality).", default=True),
    ParamSpec("L4_VARIABLE", ENUM, "SMAP L4: variable", "Which SMAP L4 soil moisture to import.", default=0,
              choices=("Surface (sm_surface, 0–5 cm)", "Root zone (sm_rootzone, 0–100 cm)"),
              values=("surface", "rootzone")),
    ParamSpec("L4_TIME", ENUM, "SMAP L4: time step",
              "SMAP L4 granules are 3-hourly: average every granule of a day, or keep the one of this UTC time step.",
              default=0, choices=("Daily mean of the granules",) + tuple(f"{t} UTC" for t in L4_TIMES[1:]),
              values=("daily",) + tuple(t.replace(":", "") for t in L4_TIMES[1:])),
    ParamSpec("MASK_FLAGGED", BOOL, "ESA CCI: mask flagged cells",
              "Mask cells whose ESA CCI 'flag' is not 0 (snow, frozen soil, dense vegetation, no convergence…).",
              default=True, advanced=True),
    ParamSpec("KEEP_EMPTY", BOOL, "Keep dates without any valid cell",
              "By default a date with no valid cell in the area is left out (and named in the log): the "
              "downscaling algorithms refuse an empty band.", default=False, advanced=True),
    ParamSpec(OUTPUT, RASTER_OUT, "Soil moisture (dated GeoTIFF)",
              "One float32 band per date in m³/m³ (NaN = no data), band description = ISO date."),
)


def product_options(values: dict[str, Any]):
    """:class:`~core.io.products.ProductOptions` of the values of :data:`IMPORT_PRODUCT_SPECS`."""
    from ..core.io.products import PASS_MODES, ProductOptions
    return ProductOptions(passes=PASS_MODES[int(values["PASSES"])], recommended_only=bool(values["RECOMMENDED_ONLY"]),
                          l4_variable=("sm_surface", "sm_rootzone")[int(values["L4_VARIABLE"])],
                          l4_time=L4_TIMES[int(values["L4_TIME"])] or None, mask_flagged=bool(values["MASK_FLAGGED"]),
                          drop_empty=not bool(values["KEEP_EMPTY"]))


# -- downscale_ensemble --------------------------------------------------------------------------
ENSEMBLE_HELP = (
    "Runs an ensemble of simple models trained on in-situ soil moisture (Poehls et al.) on your layers: "
    "every fine pixel, every date. The ensemble's model card says which inputs it needs (e.g. coarse soil "
    "moisture, the DEM's multi-scale TPI, latitude) and in which units; the layers are mapped to them by "
    "role, and a missing input, wrong units, or a model file whose hash does not match its card is "
    "refused.<br>Outputs, one band per date: the members' mean (m³/m³), their spread (standard deviation), "
    "the half-width of the calibrated interval (mean ± half-width held the card's stated share of held-out "
    "station values in cross-validation) and a mask of pixels whose inputs — or whose coarse cell's level — lie "
    "outside the training domain (1 = outside: treat with care). "
    "<i>Automatic</i> (the default) picks the richest bundled tier your layers satisfy and says which: "
    "coarse soil moisture + DEM; + NDVI; + Sentinel-1 backscatter, field capacity and land cover. "
    "Bundled ensembles live in the plugin's <i>models</i> folder; ensembles you train are saved in your "
    "QGIS profile and listed here too."
)
ENSEMBLE_FOLDER_SPEC = ParamSpec(
    "MODEL_FOLDER", FOLDER, "Ensemble folder (overrides the list)",
    "A folder of ONNX members written by this plugin (e.g. shared by a colleague).", optional=True, advanced=True)
ANCHOR_SPEC = ParamSpec(
    "ANCHOR_TO_COARSE", BOOL, "Keep the coarse product's level",
    "Shift the ensemble per coarse cell and season so that its cell mean over the season's dates "
    "equals the coarse product's: the ensemble's pattern and dynamics, the product's level. Use it "
    "where your region is unlike the training stations (e.g. much wetter); costs a second pass.",
    default=False, advanced=True)
#: The ensemble's own parameters after the choice of ensemble (the list of installed ensembles is the
#: algorithm's: it depends on the QGIS profile; the command line takes the automatic tier or a folder).
ENSEMBLE_SPECS: tuple[ParamSpec, ...] = (ENSEMBLE_FOLDER_SPEC, ANCHOR_SPEC)
ENSEMBLE_OUTPUT_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec(OUTPUT, RASTER_OUT, "Downscaled soil moisture (ensemble mean)", "GeoTIFF, one band per date (m³/m³)."),
    ParamSpec("SPREAD", RASTER_OUT, "Spread of the members (std)",
              "Standard deviation of the members' estimates (m³/m³): their disagreement, not a calibrated error.",
              optional=True),
    ParamSpec("DOMAIN_MASK", RASTER_OUT, "Outside the training domain",
              "1 where an input lies outside the range seen in training, or where the coarse cell's mean "
              "over the dates lies outside the 5–95 % range of the training stations' mean coarse soil "
              "moisture; 0 inside.", optional=True),
    ParamSpec("INTERVAL", RASTER_OUT, "Interval half-width (calibrated)",
              "Half-width (m³/m³) of the interval mean ± half-width calibrated on the cross-validation "
              "residuals; the card states the level and the coverage measured at held-out stations. "
              "Written next to the output when not given, if the ensemble has a calibration.", optional=True),
)


# -- stations and scores (every algorithm that scores at stations) --------------------------------
STATIONS_CSV_SPEC = ParamSpec(
    STATIONS_CSV, FILE, "Stations (CSV with id, lat, lon)",
    "Instead of a point layer: a CSV with columns id (or station), lat and lon in WGS84 degrees.", optional=True,
    extension="csv")
SCORES_CSV_SPEC = ParamSpec(
    SCORES_CSV, FILE_OUT, "Station scores (CSV)",
    "The same scores, one row per station and product. ubRMSE = sqrt(RMSE² − bias²); bias = mean(product − in-situ).",
    optional=True, extension="csv")


def insitu_spec(optional: bool = True) -> ParamSpec:
    return ParamSpec(INSITU_CSV, FILE, "In-situ soil moisture (CSV, m³/m³)",
                     "A CSV with a date column (YYYY-MM-DD) and one column per station id; empty = no data.",
                     optional=optional, extension="csv")


# -- score_stations --------------------------------------------------------------------------------
SCORE_HELP = (
    "Samples each soil-moisture product at the in-situ stations (the pixel holding the station, on every "
    "date) and computes per site: N, Pearson R, ubRMSE, bias, RMSE, MAE, slope and the R of anomalies "
    "(against a 30-day moving average). Definitions: bias = mean(product − in-situ); "
    "RMSE = sqrt(mean((product − in-situ)²)); ubRMSE = sqrt(RMSE² − bias²).<br>"
    "A product is one multi-band raster with dated bands (descriptions YYYY-MM-DD, as written by the "
    "downscaling algorithms) or several single-date rasters with the date in the file name."
)
SCORE_PRODUCT_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("PRODUCT", LAYERS, "Soil-moisture product to score",
              "The (downscaled) product: one dated multi-band raster or several single-date rasters."),
    ParamSpec("PRODUCT_NAME", STRING, "Product name", "Name of the product in tables and fields.", default="downscaled"),
    ParamSpec("COARSE", LAYERS, "Coarse product to compare with",
              "Optional: the coarse product (same layout rules), scored side by side.", optional=True),
    ParamSpec("COARSE_NAME", STRING, "Coarse product name", "Name of the coarse product in tables and fields.",
              default="coarse"),
)
#: What the command line offers of the station parameters (the point layer, its id field and the
#: scores layer are QGIS layers: the toolbox's).
SCORE_SPECS: tuple[ParamSpec, ...] = SCORE_PRODUCT_SPECS + (STATIONS_CSV_SPEC, insitu_spec(optional=False),
                                                            SCORES_CSV_SPEC)


def score_product_names(values: dict[str, Any], given: dict[str, bool]) -> dict[str, str]:
    """``{parameter: product name}`` of the products given (PRODUCT, COARSE); a blank name: the parameter's."""
    from ..core.errors import InputError
    names: dict[str, str] = {}
    for key in ("PRODUCT", "COARSE"):
        if not given[key]:
            continue
        name = str(values[key + "_NAME"] or "").strip() or key.lower()
        if name in names.values():
            raise InputError(f"Both products are called '{name}'.", fix="give them different names.")
        names[key] = name
    return names


# -- import_ismn -----------------------------------------------------------------------------------
IMPORT_ISMN_HELP = (
    "Reads an ISMN download (International Soil Moisture Network, ismn.earth; a .zip or the folder it unpacks "
    "to, in the 'header + values' or the 'CEOP separate files' format) and writes what the scoring tools read: "
    "a station point layer (network, depths, sensors, and ISMN's static metadata — land cover, Köppen–Geiger "
    "climate, soil fractions and the USDA texture class — as station classes the site report groups by) and "
    "a CSV with a date column and one column per station: UTC daily means of soil moisture in m³/m³.<br>"
    "Readings are kept when every ISMN quality flag they carry is among the flags to keep and the value lies "
    "in 0–1 m³/m³; a day needs readings in a minimum share of its hours; several sensors of a station within "
    "the depth range are averaged. The log lists, per sensor, readings kept and dropped by flag and by range."
)
IMPORT_ISMN_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("INPUT", FILE, "ISMN download (.zip or folder)",
              "The file downloaded from ismn.earth, or the folder it unpacks to (type or paste the folder's path).",
              file_filter="ZIP (*.zip);;All files (*)"),
    ParamSpec("DEPTH_MIN", NUMBER, "Minimum sensor depth (m)", "Sensors whose top lies above this depth are not used.",
              default=0.0, minimum=0.0),
    ParamSpec("DEPTH_MAX", NUMBER, "Maximum sensor depth (m)",
              "Sensors reaching below this depth are not used (1 mm tolerance: SCAN's 2-inch probes at "
              "0.0508 m count as 5 cm). Satellite soil moisture senses the top ~5 cm.", default=0.05, minimum=0.0),
    ParamSpec("FLAGS", STRING, "ISMN quality flags to keep",
              "Comma-separated ISMN flags: G = good, U = not checked, M = missing, C01…, D01…; a single "
              "letter keeps its whole family (D = every D flag).", default="G"),
    ParamSpec("START", DATE, "First day", "Optional: first day kept (UTC).", optional=True),
    ParamSpec("END", DATE, "Last day", "Optional: last day kept (UTC).", optional=True),
    ParamSpec("MIN_HOURS_SHARE", NUMBER, "Minimum share of valid hours per day",
              "A daily mean needs kept readings in at least this share of the day's 24 UTC hours.", default=0.5,
              minimum=0.0, maximum=1.0, advanced=True),
)
#: Written by the toolbox and the command line alike (the station point layer is the toolbox's: a QGIS sink).
IMPORT_ISMN_OUTPUT_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("OUTPUT_SERIES", FILE_OUT, "Daily in-situ soil moisture (CSV)",
              "A date column (YYYY-MM-DD, UTC) and one column per station: daily means in m³/m³, empty = no value.",
              extension="csv"),
    ParamSpec("OUTPUT_STATIONS_CSV", FILE_OUT, "Stations (CSV)",
              "Optional: the stations as a CSV (station, name, lat, lon and the classes), for scripts.", optional=True,
              extension="csv", create_by_default=False),
)


def ismn_options(values: dict[str, Any]):
    """:class:`~core.io.ismn.IsmnOptions` of the values of :data:`IMPORT_ISMN_SPECS` (dates: ``datetime.date``)."""
    import re

    from ..core.errors import InputError
    from ..core.io.ismn import IsmnOptions
    flags = tuple(f for f in re.split(r"[,;\s]+", str(values["FLAGS"] or "")) if f)
    if not flags:
        raise InputError("No quality flag to keep was given.", fix="give at least G (good).")
    return IsmnOptions(depth_min=float(values["DEPTH_MIN"]), depth_max=float(values["DEPTH_MAX"]), flags=flags,
                       start=values["START"], end=values["END"], min_hours_share=float(values["MIN_HOURS_SHARE"]))


# -- the cross-scale network (downscale_cross_scale, train_cross_scale) ----------------------------
CROSS_SCALE_HELP = (
    "Downscales a coarse soil-moisture series with the cross-scale neural network of Alemohammad et al. "
    "(2018), which learns from the product itself how a cell's value splits among finer cells — no "
    "in-situ stations needed.<br>"
    "<b>With a model folder</b> (written by <i>Train a cross-scale network</i>) its network is applied; its "
    "files are verified against the hashes in its cards first.<br>"
    "<b>Without one</b> the network is trained on the fly, <i>self-supervised</i>: the product averaged over "
    "ratio × ratio cells is the input level, the product itself the target; the network is then applied "
    "one level down. The training log gives its scores on held-out cells next to copying the coarse value, "
    "bilinear interpolation and a coherent bilinear.<br>"
    "Inputs per pixel: the coarse soil moisture averaged over a window 1.25 coarse cells wide centred on "
    "the pixel (area weighted, cells without data left out), and NDVI / the DEM's topographic index by "
    "scheme.<br>Output resolution: the one you set, else the product's cell ÷ the training ratio. Outputs, "
    "one band per date: the estimate (by default <i>coherent</i>: each coarse cell's pixels average back to "
    "its value) and the members' spread. On the shared SMAP patches (20 → 10 km, held-out patches) the "
    "coherent network beats bilinear interpolation and ties the coherent bilinear; see the README."
)
CROSS_SCALE_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("MODEL_FOLDER", FOLDER, "Trained cross-scale network (folder)",
              "A folder written by 'Train a cross-scale network' (saved networks are in the profile's "
              "soil_moisture_downscaling/cross_scale_models). Empty: train self-supervised on the given "
              "soil moisture.", optional=True),
    ParamSpec("COHERENT", BOOL, "Coherent output",
              "Shift each coarse cell's fine pixels by one value per date so that they average back to the "
              "coarse value (the network's pattern inside the cell is kept). Recommended: on held-out "
              "patches it is what makes the network beat bilinear interpolation.", default=True),
)
CROSS_SCALE_OUTPUT_SPECS: tuple[ParamSpec, ...] = (
    OUTPUT_SPEC,
    ParamSpec("SPREAD", RASTER_OUT, "Spread of the members (std)",
              "Standard deviation of the members' estimates (m³/m³): their disagreement, not a calibrated "
              "error. Default: <output>_spread.tif.", optional=True),
)


def cross_scale_network_specs(self_supervised_only: bool = False) -> tuple[ParamSpec, ...]:
    """Scheme, training ratio, hidden units, members, epochs and seed (``self_supervised_only``: say that they
    apply only when no trained model is given)."""
    from ..core.methods.cross_scale import SCHEMES, CrossScaleOptions
    d = CrossScaleOptions()
    when = "Without a model folder: " if self_supervised_only else ""
    names = tuple(SCHEMES)
    return (
        ParamSpec("SCHEME", ENUM, "Scheme (inputs)",
                  when + "Inputs of the network (Alemohammad et al.): the coarse soil moisture averaged over a window "
                  "1.25 coarse cells wide centred on the pixel (area weighted), and, by scheme, NDVI over the window "
                  "and at the pixel, its σ in the window, the topographic index (mTPI of the DEM). Without NDVI its "
                  "inputs are replaced by the topographic ones (with a DEM) or left out; the log says so.",
                  default=names.index(d.scheme), values=names,
                  choices=("R0: window soil moisture only", "R1: + window and pixel NDVI",
                           "R2: R1 + σ of NDVI in the window", "R3: R1 + window and pixel topographic index (mTPI)",
                           "R4: R1 + R2 + R3")),
        ParamSpec("RATIO", INTEGER, "Self-supervised training ratio",
                  when + "Without a finer product, the coarse product averaged over ratio × ratio cells is the "
                  "training input and the product itself the target; the output resolution defaults to the "
                  "product's cell ÷ this ratio (the paper: 36 km → 9 km, ratio 4).", default=d.ratio, minimum=2,
                  maximum=8),
        ParamSpec("HIDDEN_UNITS", INTEGER, "Hidden tanh units",
                  when + "Neurons of the one hidden layer (tanh; linear output). The paper's choice: 5.",
                  default=d.hidden, minimum=1, maximum=64, advanced=True),
        ParamSpec("MEMBERS", INTEGER, "Members (seeds)",
                  when + "Networks trained with different seeds; the estimate is their mean, the spread their σ.",
                  default=d.members, minimum=1, maximum=50, advanced=True),
        ParamSpec("MAX_EPOCHS", INTEGER, "Maximum epochs",
                  when + "Upper bound of training passes; training stops earlier when the loss on the 20 % "
                  "early-stopping cells stops improving.", default=d.max_epochs, minimum=1, advanced=True),
        ParamSpec("SEED", INTEGER, "Random seed",
                  when + "Seed of the held-out cells and of member k (seed + k): same inputs, same network.",
                  default=d.seed, advanced=True),
    )


def cross_scale_options(values: dict[str, Any], **extra):
    """:class:`~core.methods.cross_scale.CrossScaleOptions` of the values of :func:`cross_scale_network_specs`."""
    from ..core.methods.cross_scale import SCHEMES, CrossScaleOptions
    return CrossScaleOptions(scheme=tuple(SCHEMES)[int(values["SCHEME"])], ratio=int(values["RATIO"]),
                             hidden=int(values["HIDDEN_UNITS"]), members=int(values["MEMBERS"]),
                             max_epochs=int(values["MAX_EPOCHS"]), seed=int(values["SEED"]), **extra)


# -- train_cross_scale ---------------------------------------------------------------------------
TRAIN_CROSS_SCALE_HELP = (
    "Trains the cross-scale neural network of Alemohammad et al. (2018) — one hidden layer of tanh units, "
    "several seeds — and saves it as a folder of ONNX members whose model cards record the scheme, the "
    "inputs, the scales, the training period, the hashes of every member and the held-out scores next to "
    "the baselines. <i>Downscale with the cross-scale network</i> applies it.<br>"
    "<b>With a finer product</b> of the same quantity (e.g. SMAP 36 km with SMAP enhanced 9 km) the network "
    "learns coarse → finer. <b>Without</b>, it is <i>self-supervised</i>: the coarse product averaged over "
    "ratio × ratio cells → the product itself.<br>"
    "Validation: 20 % of the target cells (all dates) are held out; the report scores the network (raw and "
    "coherent) against copying the coarse value, bilinear interpolation and a coherent bilinear: per-pixel "
    "R and ubRMSE over time, pooled RMSE, the correlation of the within-cell pattern with the truth, and the "
    "heterogeneity (CV of the fine pixels per coarse cell)."
)
FINE_SOIL_MOISTURE_SPEC = ParamSpec(
    "FINE_SOIL_MOISTURE", LAYERS, "Finer soil-moisture product (m³/m³), optional",
    "A finer product of the same quantity and dates (SMAP enhanced 9 km for SMAP 36 km, as in the paper), "
    "dated like the coarse one. Empty: self-supervised (the coarse product aggregated by the ratio).", optional=True)
TRAIN_CROSS_SCALE_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("MODEL_NAME", STRING, "Network name",
              "Saved as a folder of this name in the profile's soil_moisture_downscaling/cross_scale_models "
              "(unless a model folder is given below); letters, digits, '_', '-' and '.'.", default="cross_scale"),
    ParamSpec("OVERWRITE", BOOL, "Replace a network of the same name",
              "Without it, a folder already in use is refused. The old one is replaced only once the new one "
              "is complete.", default=False),
    ParamSpec("MODEL_OUTPUT", STRING, "Model folder (instead of the profile)",
              "A folder path to save the network in, e.g. to share it. Empty: the profile folder above (the "
              "command line has no QGIS profile: give this folder).", default="", optional=True, advanced=True),
    ParamSpec("REPORT", FILE_OUT, "Training report",
              "The held-out scores of the network and the baselines (a .txt name gives plain text).", optional=True,
              extension="html", file_filter="HTML files (*.html);;Text files (*.txt)"),
)
#: A model folder's name: letters, digits, '_', '-' and '.' (64 at most), starting with a letter or digit.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def network_destination(values: dict[str, Any], profile_folder: Optional[str]) -> tuple[str, str]:
    """``(folder, name)`` where a trained network goes: MODEL_OUTPUT, else ``profile_folder``/MODEL_NAME."""
    import os
    import re

    from ..core.errors import InputError
    given = str(values.get("MODEL_OUTPUT") or "").strip()
    name = str(values.get("MODEL_NAME") or "").strip()
    if given:
        return os.path.abspath(given), os.path.basename(os.path.normpath(given))
    if profile_folder is None:
        raise InputError("No model folder was given, and the command line has no QGIS profile to save in.",
                         fix="give --model-output FOLDER.")
    if not re.match(MODEL_NAME_PATTERN, name):
        raise InputError(f"The network name '{name}' cannot be a folder name.", fix="use letters, digits, '_', '-' or '.'.")
    return os.path.join(profile_folder, name), name


def check_network_destination(dest: str, overwrite: bool) -> None:
    """Refuse a folder in use unless the user asked to replace it."""
    import os

    from ..core.errors import InputError
    if os.path.exists(dest) and not overwrite:
        raise InputError(f"'{dest}' already exists.", fix="choose another name, or tick 'Replace a network of the "
                         "same name' (--overwrite).")


def write_training_report(path: str, name: str, text: str) -> None:
    """The training report of a network: plain text for a ``.txt`` name, else an HTML page."""
    import html

    from ..core.io.atomic import atomic_write_text
    from ..core.io.html_page import html_document
    body = [f"<h1>{html.escape(name)}: cross-scale network</h1>", f"<pre>{html.escape(text)}</pre>"]
    atomic_write_text(path, text + "\n" if path.lower().endswith(".txt") else html_document(f"{name}: training report",
                                                                                            body))


# -- site_report -----------------------------------------------------------------------------------
SITE_REPORT_HELP = (
    "Compares one or more downscaled soil-moisture products and the coarse product they came from with "
    "in-situ stations, and writes one self-contained HTML report (tables and figures inline, for mailing "
    "or archiving) with the per-site CSV beside it.<br>"
    "<b>Scores</b> per site and product, on the dates both have a value, at the pixel holding the "
    "station: N, R, ubRMSE, bias, RMSE, MAE, slope, anomaly R. bias = mean(product − in-situ); "
    "ubRMSE = sqrt(RMSE² − bias²).<br>"
    "<b>Diagnostics</b> per downscaled product, on the coarse grid and for every date both products have "
    "(Alemohammad et al. 2018): conservation error = (mean of the fine pixels in a coarse cell − coarse "
    "value) / coarse value × 100 (0 = the coarse water content is kept), and heterogeneity = standard "
    "deviation / mean of the fine pixels in the cell (0 = the coarse field repeated). Their summary is in "
    "the report; the rasters are optional outputs (one band per date).<br>"
    "A product is one multi-band raster with dated bands (descriptions YYYY-MM-DD, as the downscaling "
    "algorithms write them) or several single-date rasters with the date in the file name; single-date "
    "files whose names differ only by the date form one product.<br>"
    "<b>Drought anomaly</b> per downscaled product spanning at least three years: the share of pixels whose "
    "standardised anomaly against the same calendar period of the other years is below −1σ, per date "
    "(Jin et al.; the <i>Drought anomaly</i> algorithm writes the anomaly rasters)."
)
SITE_REPORT_PRODUCT_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("PRODUCTS", LAYERS, "Downscaled product(s)",
              "One or more downscaled products: each a multi-band raster with dated bands, or several "
              "single-date rasters with the date in the file name."),
    ParamSpec("PRODUCT_NAMES", STRING, "Product names",
              "Names of the products in the report, comma separated, in the order of the layers. "
              "Default: the layer name (single-date files: the file name without the date).", optional=True,
              advanced=True),
    ParamSpec("COARSE", LAYERS, "Coarse product",
              "The coarse soil moisture the products were downscaled from (same layout rules): the "
              "reference of the head-to-head comparison and of the diagnostics."),
    ParamSpec("COARSE_NAME", STRING, "Coarse product name", "Name of the coarse product in the report, tables and "
              "fields.", default="coarse"),
)
SITE_REPORT_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("TITLE", STRING, "Report title",
              "Heading of the report. Default: 'Downscaled soil moisture: evaluation at in-situ stations'.",
              optional=True, advanced=True),
    ParamSpec("MIN_COVERAGE", NUMBER, "Minimum valid fraction of a coarse cell",
              "Diagnostics are left empty for coarse cells where fewer of the fine pixels hold a value "
              "(coast, gaps), since a few pixels do not represent the cell.", default=0.5, minimum=0.0, maximum=1.0,
              advanced=True),
    ParamSpec("REPORT", FILE_OUT, "Site report (HTML)",
              "One self-contained HTML file; the per-site CSV is 'Station scores (CSV)' or, if that is "
              "not set, <report>_sites.csv beside it.", extension="html"),
    ParamSpec("CONSERVATION", RASTER_OUT, "Conservation error (% of coarse)",
              "On the coarse grid, one band per date. With several products the file of each product "
              "after the first gets its name as suffix.", optional=True, create_by_default=False),
    ParamSpec("HETEROGENEITY", RASTER_OUT, "Heterogeneity (CV of fine pixels per coarse cell)",
              "On the coarse grid, one band per date (same naming as the conservation raster).", optional=True,
              create_by_default=False),
)
#: The command line's: the stations and scores as CSV.
SITE_REPORT_CLI_SPECS: tuple[ParamSpec, ...] = SITE_REPORT_PRODUCT_SPECS + (
    STATIONS_CSV_SPEC, insitu_spec(optional=False), SCORES_CSV_SPEC) + SITE_REPORT_SPECS


# -- downscale_stacking --------------------------------------------------------------------------
STACKING_HELP = (
    "Downscales a coarse soil-moisture series with a <b>stack</b> of tree ensembles, as the stacking paper "
    "does for SMAP L4 over Anhui: base learners (scikit-learn's histogram gradient boosting, random forest and "
    "extra trees; XGBoost, LightGBM and CatBoost when installed) are trained on the coarse grid — coarse soil "
    "moisture against the covariates averaged over each cell and the day of year — with 5-fold cross-validation "
    "that holds out whole blocks of cells; their held-out predictions are fused by a non-negative linear "
    "meta-learner.<br><b>Zones</b>: one stack per terrain zone (relief classes or clusters from the DEM, or your "
    "own zones); a zone keeps its own stack only where it beats the global stack on its held-out cells.<br>"
    "The stack is applied on the fine grid as the trend; the coarse residual is spread back and refined so the "
    "fine pixels of each coarse cell average to its value. Outputs: the series (GeoTIFF, one band per date), "
    "the run log, an HTML report (learner weights, zoned vs unzoned, predictor importance) and, if asked, the "
    "fitted stack (ONNX + card) to apply to other dates and areas."
)
ZONE_SOURCES = ("auto", "none", "relief", "kmeans", "layer")
IMPORTANCE_KEYS = ("auto", "shap", "permutation", "none")


def _stacking_head() -> tuple[ParamSpec, ...]:
    from ..core.learn.stacking import DEFAULT_LEARNERS, LEARNERS
    keys = tuple(LEARNERS)
    return (
        ParamSpec("LEARNERS", ENUMS, "Base learners",
                  "The tree ensembles to stack. The scikit-learn ones always work; XGBoost (pip package "
                  "xgboost-cpu), LightGBM and CatBoost need their packages (and onnxmltools for XGBoost/LightGBM) "
                  "in QGIS's Python — a missing one is left out and the log names the pip command.",
                  default=tuple(keys.index(k) for k in DEFAULT_LEARNERS), choices=tuple(LEARNERS[k][0] for k in keys),
                  values=keys),
        ParamSpec("ZONES", ENUM, "Zones",
                  "Separate stacks per zone (the paper's geomorphic units). Relief = highest minus lowest "
                  "elevation within the radius: plains below the first threshold, mountains above the second.",
                  default=0, values=ZONE_SOURCES,
                  choices=("Automatic: terrain relief classes when a DEM is given, else none", "No zones",
                           "Relief classes from the DEM (plains, hills, mountains)",
                           "Clusters of elevation and relief (k-means)", "The zone layer below (class raster or polygons)")),
        ParamSpec("ZONE_RASTER", RASTER, "Zone raster (class codes)",
                  "Integer zone codes (0 or nodata = no zone); used when Zones is 'the zone layer below'.", optional=True),
    )


#: After the zone polygons and their field (QGIS vector parameters: the toolbox's).
STACKING_TAIL_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("RELIEF_RADIUS", NUMBER, "Relief radius (m)", "Radius within which local relief is measured.",
              default=5000.0, minimum=100.0, advanced=True),
    ParamSpec("RELIEF_THRESHOLDS", STRING, "Relief thresholds (m)",
              "Plains below the first, mountains above the second (Meybeck et al. 2001).", default="50, 300",
              advanced=True),
    ParamSpec("N_ZONES", INTEGER, "Clusters (k-means zones)", "Number of zones when clustering elevation and relief.",
              default=3, minimum=2, maximum=12, advanced=True),
    ParamSpec("MIN_ZONE_SAMPLES", INTEGER, "Minimum coarse samples per zone",
              "Zones with fewer coarse samples (cells × dates) use the global stack.", default=300, minimum=20,
              advanced=True),
    ParamSpec("IMPORTANCE", ENUM, "Predictor importance",
              "SHAP values of the stack (pip package shap) when installed, else the rise of the held-out RMSE "
              "when a predictor is shuffled; or either explicitly, or none (faster).", default=0, values=IMPORTANCE_KEYS,
              choices=("SHAP when installed, else permutation", "SHAP values", "Permutation on held-out cells", "None"),
              advanced=True),
    ParamSpec("FOLDS", INTEGER, "Cross-validation folds", "Folds of the out-of-fold predictions that train the "
              "meta-learner.", default=5, minimum=2, maximum=20, advanced=True),
    ParamSpec("N_ESTIMATORS", INTEGER, "Trees / boosting iterations", "Boosting iterations (forests: half as many "
              "trees).", default=200, minimum=10, advanced=True),
    ParamSpec("LEARNING_RATE", NUMBER, "Learning rate", "Of the boosted learners.", default=0.05, minimum=0.001,
              maximum=1.0, advanced=True),
    residual_spec("auto"),
) + KRIGING_SPECS + (
    ParamSpec("RESIDUAL_ITERATIONS", INTEGER, "Residual refinement passes",
              "Bilinear residual: passes that make the fine pixels of each coarse cell average back to its "
              "value.", default=3, minimum=0, maximum=20, advanced=True),
    ParamSpec("SEED", INTEGER, "Random seed", "For reproducible runs.", default=42, advanced=True),
    ParamSpec("MODEL_IN", FOLDER, "Apply a saved stack (folder)",
              "A folder written by this algorithm's 'Save the fitted stack': no fitting, the saved stack is "
              "applied to these layers (they must have the same roles).", optional=True, advanced=True),
)
STACKING_OUTPUT_SPECS: tuple[ParamSpec, ...] = (
    OUTPUT_SPEC, KRIGING_SD_SPEC,
    ParamSpec("REPORT", FILE_OUT, "Stacking report (HTML)",
              "Learner weights and held-out scores, zoned vs unzoned per zone, predictor importance.", optional=True,
              extension="html"),
    ParamSpec("MODEL_OUT", FOLDER_OUT, "Save the fitted stack",
              "A folder for the fitted stack (ONNX graphs + card with their SHA-256).", optional=True,
              create_by_default=False),
)


def stacking_specs() -> tuple[ParamSpec, ...]:
    """The stacking parameters the toolbox and the command line share, in dialog order."""
    return _stacking_head() + STACKING_TAIL_SPECS


def stacking_options(values: dict[str, Any]):
    """``(StackingMethodOptions, ZoneRule)`` of the values of :func:`stacking_specs`."""
    from ..core.errors import InputError
    from ..core.learn.stacking import DEFAULT_LEARNERS, LEARNERS
    from ..core.methods.stacking import StackingMethodOptions
    from ..core.raster.zones import ZoneRule
    keys = tuple(LEARNERS)
    picks = list(values["LEARNERS"]) or [keys.index(k) for k in DEFAULT_LEARNERS]
    text = str(values["RELIEF_THRESHOLDS"] or "") or "50, 300"
    try:
        thresholds = tuple(float(t) for t in text.replace(";", ",").split(","))
        if len(thresholds) != 2 or thresholds[0] >= thresholds[1]:
            raise ValueError
    except ValueError:
        raise InputError(f"Relief thresholds '{text}': give two increasing numbers in metres, e.g. '50, 300'.") from None
    rule = ZoneRule(method="kmeans" if ZONE_SOURCES[int(values["ZONES"])] == "kmeans" else "relief",
                    radius_m=float(values["RELIEF_RADIUS"]), thresholds_m=thresholds, n_clusters=int(values["N_ZONES"]),
                    seed=int(values["SEED"]))
    opts = StackingMethodOptions(
        learners=tuple(keys[i] for i in picks), folds=int(values["FOLDS"]), n_estimators=int(values["N_ESTIMATORS"]),
        learning_rate=float(values["LEARNING_RATE"]), seed=int(values["SEED"]),
        min_zone_samples=int(values["MIN_ZONE_SAMPLES"]), importance=IMPORTANCE_KEYS[int(values["IMPORTANCE"])],
        residual_iterations=int(values["RESIDUAL_ITERATIONS"]), **residual_fields(values))
    return opts, rule


def stacking_zone(values: dict[str, Any], covariates: list, rule, folder: str, zone_raster=None, polygons=None):
    """``(zone LayerInput or None, log line or None)`` of the ZONES choice: terrain zones from the DEM written in
    ``folder``, the zone raster ``(path, name)`` or ``polygons()`` (a callable giving the toolbox's rasterised
    polygons, or ``None``)."""
    from ..core.errors import InputError
    from ..core.inputs.roles import Role
    from ..core.inputs.scene import LayerInput
    from ..core.methods.stacking import write_dem_zones
    from ..core.raster.align import BandRef
    source = ZONE_SOURCES[int(values["ZONES"])]
    dem = next((c for c in covariates if c.role is Role.DEM), None)
    if source == "none" or (source == "auto" and dem is None):
        return None, None
    if source == "layer":
        if zone_raster is not None:
            path, name = zone_raster
            return LayerInput(Role.ZONE, name, [BandRef(path, 1, name)]), None
        if polygons is None:
            raise InputError("Zones are to come from a zone layer, but none was given.",
                             fix="choose a zone raster, or zone polygons and their zone field.")
        return polygons()
    if dem is None:
        raise InputError("Zones from the terrain need a DEM.", fix="give a DEM, or choose another zone source.")
    import os
    ref, info = write_dem_zones(dem.bands[0], os.path.join(folder, "zones.tif"), rule)
    line = (f"Terrain zones ({info['method']}, radius {info['radius_m']:g} m): "
            + ", ".join(f"{info['labels'].get(k, k)} {n} px" for k, n in info["pixels"].items()))
    return LayerInput(Role.ZONE, "terrain zones", [ref]), line


def stacking_fit_lines(training: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(warnings, log lines)`` of a fitted stack: learners left out, weights, held-out scores, zones."""
    from ..core.learn.stacking import LEARNERS
    warnings = [f"{LEARNERS[k][0]} is not installed and was left out. To use it: pip install {cmd} (in QGIS's Python)."
                for k, cmd in training.get("skipped_learners", {}).items()]
    g = training["global"]
    lines = ["Stack weights: " + ", ".join(f"{n} {w:.2f}" for n, w in zip(g["learners"], g["weights"]))]
    if "stack" in g["oof_scores"]:
        sc = g["oof_scores"]["stack"]
        lines.append(f"Held-out coarse cells: stack R = {sc['r']:.3f}, RMSE = {sc['rmse']:.4f} m³/m³")
    lines += [f"Zone {z['zone']}: {z['n_samples']} samples, {z['uses']}" for z in training.get("zones", [])]
    return warnings, lines


# -- check_inputs --------------------------------------------------------------------------------
CHECK_INPUTS_HELP = (
    "Reports, for each raster, what a downscaling run will see: CRS, pixel size, extent, "
    "bands, the date of each band (from its description, else from the file name, "
    "e.g. <i>ESA_CCI_SM_v45_20180131.tif</i>) and its value range (scale factor and offset "
    "applied). Warns about bands without valid pixels or without a NoData value, "
    "layers sharing a date, and mixed CRSs. Layers given under a role (soil moisture, DEM, NDVI, …) "
    "get the same unit checks a downscaling run makes; for the others the role is guessed from the "
    "name (e.g. <i>MOD13A2_NDVI</i> → NDVI). <b>Blocking</b> problems are those a run stops at with the same "
    "message: no CRS, a grid that is not north-up, values that fail the unit check (soil moisture in percent, "
    "raw MODIS integers, …); the command line exits with status 1 when it finds one. Your files are not changed."
)
CHECK_INPUTS_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("INPUTS", LAYERS, "Raster layers",
              "Soil moisture, covariates, or both. Each must be a file-based raster (GeoTIFF, NetCDF, …). "
              "Their role is guessed from the name for the unit checks; give layers under a role below to be sure.",
              optional=True),
    ParamSpec(SOIL_MOISTURE, LAYERS, SOIL_MOISTURE_SPEC.label, SOIL_MOISTURE_SPEC.help, optional=True),
) + covariate_specs() + (
    ParamSpec("APPROXIMATE", BOOL, "Approximate statistics",
              "Compute value ranges from overviews or a subsample: faster on very large rasters, "
              "but the minimum and maximum may miss extreme pixels.", default=False, advanced=True),
)
#: The report page: always written by the toolbox (a temporary file by default), on request by the CLI.
CHECK_INPUTS_OUTPUT_SPEC = ParamSpec("OUTPUT_HTML", FILE_OUT, "Report",
                                     "The report, as an HTML page (opens in the Results Viewer and any browser).",
                                     extension="html")


#: ``(parameter, role, how the role is known)`` of the layers of ``check_inputs``, role parameters first; the role
#: of a layer under INPUTS is guessed from its name (``None`` here).
CHECK_INPUTS_ROLES: tuple[tuple[str, Optional[Role], str], ...] = (
    ((SOIL_MOISTURE, Role.SOIL_MOISTURE, "given"),) + tuple((k, r, "given") for k, r, _ in COVARIATE_PARAMS)
    + (("INPUTS", None, ""),))


# -- train_ensemble ------------------------------------------------------------------------------
# core.methods.insitu_ensemble imports onnx: the algorithm must load without it, so names are listed here and a
# test checks they equal core.methods.insitu_ensemble.FEATURES / SCHEMES. Order = enum index: append only.
ENSEMBLE_FEATURES: tuple[str, ...] = ("sm_coarse", "doy", "lat", "lon", "mtpi", "slope", "dem", "ndvi",
                                      "field_capacity", "land_cover", "sand", "clay", "vv_db", "vh_db", "ndwi", "evi",
                                      "nsdsi")
ENSEMBLE_SCHEMES: tuple[str, ...] = ("free", "field_capacity", "land_cover", "climate_lat", "climate_wetness", "network")
ENSEMBLE_ARCHITECTURES: tuple[str, ...] = ("dense", "prob", "wdl", "rf", "hgb")
ENSEMBLE_DEFAULT_FEATURES: tuple[str, ...] = ("sm_coarse", "mtpi", "lat")

TRAIN_ENSEMBLE_HELP = (
    "Trains an ensemble of simple models on in-situ soil moisture (Poehls et al. 2024) and saves it in your "
    "QGIS profile, where the ensemble downscaling tools find it by name.<br>"
    "<b>Training data</b>, either<br>"
    "• a <i>station table</i> CSV with one row per station and date window (the layout of "
    "station_10day_table.csv: network, station, lat, lon, start_date, end_date, smap10km_ssm_mm, insitu_sm and "
    "covariate columns), or<br>"
    "• your own <i>rasters</i>: the coarse soil moisture, covariate layers, stations and an in-situ table. One "
    "sample per station and soil-moisture date with an in-situ value that day: the covariates at the station's "
    "pixel of the fine grid, the coarse soil moisture of the cell holding it, the in-situ value as target.<br>"
    "<b>Members</b>: for each network architecture (dense, prob, wdl) and for hgb (a straight line on the coarse "
    "product plus histogram gradient boosting of its residual) one member per weighting scheme, the scheme's "
    "weights as sample weights; for rf one forest per soil class (terciles of field capacity). The ensemble "
    "estimate is the members' mean, its spread their standard deviation.<br>"
    "<b>Evaluation</b>: a station-grouped k-fold cross-validation (whole stations per fold) and optionally a "
    "station holdout score every member, the ensemble, the coarse product and the coarse product linearly "
    "rescaled on the training stations of each fold per station (N, R, ubRMSE, bias, RMSE, amplitude = ratio of "
    "standard deviations; ubRMSE = sqrt(RMSE² − bias²)); the report gives them per station and their mean and "
    "median over stations, and names the members that beat the ensemble. The CV residuals calibrate a 90 % "
    "interval (mean ± scale·(spread + floor)); its coverage at held-out stations is stated. The scores go into "
    "the model card.<br>"
    "Nothing is saved when the run fails or is canceled."
)
STATION_TABLE_SPEC = ParamSpec(
    "STATION_TABLE", FILE, "Station table (CSV)",
    "Training samples as one table: one row per station and date window, with columns network, "
    "station, lat, lon, start_date, end_date, smap10km_ssm_mm (coarse SMAP in mm of a 5 cm layer, "
    "÷ 50 → m³/m³), insitu_sm (m³/m³) and the covariates (mtpi, field_capacity, nlcd_landcover, "
    "B4/B8 for NDVI, vv_db, vh_db). Leave empty to train on rasters instead.", optional=True, extension="csv")
#: The trainer's own parameters, after the training data (station table, or rasters and stations), in dialog order.
TRAIN_ENSEMBLE_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("FEATURES", ENUMS, "Input features",
              "Inputs of every member, by the names the downscaling uses: sm_coarse (coarse soil moisture of the "
              "cell), doy (day of year), lat/lon (WGS84), mtpi/slope (from the DEM), dem, ndvi, land_cover, sand, "
              "clay; from a station table also field_capacity, vv_db, vh_db and the Sentinel-2 indices ndwi, evi, "
              "nsdsi (derived from its bands). To downscale with the ensemble later, "
              "each must be available from your layers (sm_coarse, mtpi, lat: a DEM is enough).",
              default=tuple(ENSEMBLE_FEATURES.index(f) for f in ENSEMBLE_DEFAULT_FEATURES),
              choices=ENSEMBLE_FEATURES, values=ENSEMBLE_FEATURES),
    ParamSpec("ARCHITECTURES", ENUMS, "Architectures",
              "dense: a small fully connected network; prob: the same with a predicted spread; wdl: wide & deep "
              "(adds a linear term over the inputs and land-cover classes); rf: random forests, one per soil class; "
              "hgb: boosted trees (a line on the coarse product + histogram gradient boosting), one per scheme. "
              "Several architectures make one ensemble of all their members.",
              default=(0,), choices=ENSEMBLE_ARCHITECTURES, values=ENSEMBLE_ARCHITECTURES),
    ParamSpec("SCHEMES", ENUMS, "Weighting schemes (networks)",
              "One network member per scheme, its samples weighted so that each class of a site attribute counts "
              "alike: free (unweighted), field_capacity (terciles; soil texture in the paper), land_cover, "
              "climate_lat (latitude terciles), climate_wetness (terciles of mean coarse soil moisture), network. "
              "Empty = every scheme the data support (an attribute with a single class is left out).",
              default=(), optional=True, choices=ENSEMBLE_SCHEMES, values=ENSEMBLE_SCHEMES),
    ParamSpec("HOLDOUT_FRACTION", NUMBER, "Station holdout fraction",
              "When above 0, also score a split that holds out this share of the stations (0.2 = the "
              "paper's 80/20), stratified by soil class. 0 = cross-validation only.", default=0.0, minimum=0.0,
              maximum=0.5),
    ParamSpec("ENSEMBLE_NAME", STRING, "Ensemble name",
              "Saved as a folder of this name in the plugin's models folder of your QGIS profile; letters, "
              "digits, '_', '-' and '.'.", default="my_ensemble"),
    ParamSpec("OVERWRITE", BOOL, "Replace an ensemble of the same name",
              "Without it, a name already in use is refused. The old ensemble is replaced only once the new "
              "one is complete.", default=False),
    ParamSpec("DESCRIPTION", STRING, "Description", "Text stored in the model card (what, where, which period).",
              default="", optional=True, advanced=True),
    ParamSpec("CV_FOLDS", INTEGER, "Cross-validation folds",
              "Station-grouped k-fold cross-validation: each fold's stations are scored by members trained "
              "without them. Needs at least as many stations as folds (and 3). 0 skips it (faster, but the "
              "report then has no scores).", default=10, minimum=0, maximum=100, advanced=True),
    ParamSpec("SEED", INTEGER, "Random seed",
              "Seed of the folds, the splits and every member: the same inputs and seed give the same "
              "ensemble.", default=42, advanced=True),
    ParamSpec("MIN_SAMPLES_PER_STATION", INTEGER, "Minimum samples per station",
              "Stations with fewer usable samples (in-situ value, coarse soil moisture and every input) "
              "are left out.", default=10, minimum=1, advanced=True),
    ParamSpec("HIDDEN_LAYERS", STRING, "Network hidden layers",
              "Widths of the hidden layers of the dense, prob and wdl networks, comma separated.", default="32,16",
              advanced=True),
    ParamSpec("MAX_EPOCHS", INTEGER, "Network maximum epochs",
              "Upper bound of training passes per network; training stops earlier when the loss on held-out "
              "stations stops improving.", default=300, minimum=1, advanced=True),
    ParamSpec("N_TREES", INTEGER, "Trees per forest", "Trees of each rf member (more trees: smoother, larger files).",
              default=30, minimum=1, advanced=True),
    ParamSpec("REPORT", FILE_OUT, "Training report",
              "Scores of every member, the ensemble and the coarse product per station, with their mean "
              "and median over stations, and the members that beat the ensemble. A .txt name gives a "
              "plain-text table.", extension="html", file_filter="HTML files (*.html);;Text files (*.txt)"),
)


def hidden_widths(text: str) -> tuple[int, ...]:
    """``"32,16"`` → ``(32, 16)``; raises :class:`~core.errors.InputError` unless it lists positive widths."""
    import re

    from ..core.errors import InputError
    try:
        hidden = tuple(int(h) for h in re.split(r"[,;\s]+", text.strip()) if h)
    except ValueError:
        hidden = ()
    if not hidden or any(h < 1 for h in hidden):
        raise InputError(f"Network hidden layers '{text}' is not a list of positive widths.", fix="write e.g. 32,16.")
    return hidden


def ensemble_training_options(values: dict[str, Any], **extra):
    """The :class:`~core.methods.insitu_ensemble.training.EnsembleOptions` of the trainer's parameter values
    (enums as indices; no scheme chosen = every scheme, of which a run keeps those the data support)."""
    from ..core.learn.forest import ForestConfig
    from ..core.learn.mlp import MLPConfig
    from ..core.methods.insitu_ensemble.training import EnsembleOptions
    return EnsembleOptions(
        feature_names=tuple(ENSEMBLE_FEATURES[i] for i in values["FEATURES"]),
        architectures=tuple(ENSEMBLE_ARCHITECTURES[i] for i in values["ARCHITECTURES"]),
        schemes=tuple(ENSEMBLE_SCHEMES[i] for i in values["SCHEMES"]) or ENSEMBLE_SCHEMES,
        cv_folds=int(values["CV_FOLDS"]), seed=int(values["SEED"]), holdout_fraction=float(values["HOLDOUT_FRACTION"]),
        mlp_config=MLPConfig(hidden=hidden_widths(values["HIDDEN_LAYERS"]), max_epochs=int(values["MAX_EPOCHS"])),
        forest_config=ForestConfig(n_estimators=int(values["N_TREES"])), **extra)
#: The command line has no QGIS profile: the ensemble folder to write (``--model-output``).
ENSEMBLE_MODEL_OUTPUT_SPEC = ParamSpec(
    "MODEL_OUTPUT", FOLDER_OUT, "Ensemble folder",
    "The folder to save the ensemble in (the toolbox saves it in the profile's models folder, under its name); "
    "it is written whole once training is done, and a folder already there is replaced only with --overwrite.")


def ensemble_description(samples, table: str) -> str:
    """The model card's description when none is given: where the samples come from."""
    import os
    src = samples.source
    what = f"station table {os.path.basename(table)}" if table else "the user's rasters at in-situ stations"
    return (f"In-situ ensemble trained on {what}: {len(samples)} samples at {samples.sites.size} stations, "
            f"{samples.date.min()} … {samples.date.max()}" + (f", networks {', '.join(src['networks'])}"
                                                              if src.get("networks") else "") + ".")


def chosen_schemes(samples, chosen: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(schemes, left out)``: the chosen weighting schemes, or without a choice every scheme the samples
    support (and those left out, with why)."""
    from ..core.methods.insitu_ensemble.preflight import scheme_support
    support = scheme_support(samples)
    schemes = list(chosen) or [s for s in ENSEMBLE_SCHEMES if not support[s]]
    return schemes, [f"{s} ({why})" for s, why in support.items() if why and s not in schemes]


def write_ensemble_report(path: str, report, samples, coarse_label: str) -> None:
    """The training report of an ensemble: a plain-text table for a ``.txt`` name, else the HTML page."""
    from ..core.io.atomic import atomic_write_text
    from ..core.methods.insitu_ensemble.report import summary_lines, training_report_html
    atomic_write_text(path, report.format() + "\n\n" + "\n".join(summary_lines(report, coarse_label)) + "\n"
                      if path.lower().endswith(".txt") else training_report_html(report, samples))
