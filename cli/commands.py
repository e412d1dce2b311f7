"""What the command line offers: the downscaling methods, each tied to its Processing algorithm's specs.

Adding a method's subcommand (``smds downscale <name>``) is one entry in :data:`DOWNSCALE_METHODS`: the
CLI name, the Processing algorithm id, its help and method specs (:mod:`processing_provider.specs`), the
function turning the parameter values into the method's options dataclass, and the ``core.methods``
module whose ``downscale(scene, output, options, progress, is_canceled, sd_path)`` runs it. The shared
scene, grid and output options come with every method.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from ..processing_provider import specs


@dataclass(frozen=True)
class DownscaleMethod:
    name: str                                  #: subcommand: ``smds downscale <name>``
    algorithm: str                             #: Processing id (``soil_moisture_downscaling:<algorithm>``)
    title: str
    help: str                                  #: the algorithm's help (simple HTML)
    specs: tuple[specs.ParamSpec, ...]         #: the method's own parameters, in dialog order
    options: Callable[[dict[str, Any]], Any]   #: parameter values → the method's options dataclass
    module: str = ""                           #: ``core.methods.<module>.downscale`` runs it, or:
    run: str = ""                              #: the function of ``cli/main.py`` that runs it
    outputs: tuple[specs.ParamSpec, ...] = (specs.OUTPUT_SPEC, specs.KRIGING_SD_SPEC)


DOWNSCALE_METHODS: tuple[DownscaleMethod, ...] = (
    DownscaleMethod("regression", "downscale_regression", "regression trend + residual correction",
                    specs.REGRESSION_HELP, specs.REGRESSION_SPECS, specs.regression_options, "regression"),
    DownscaleMethod("svatark", "downscale_svatark", "SVATARK: SVR per stratum + area-to-point kriging",
                    specs.SVATARK_HELP, specs.SVATARK_SPECS, specs.svatark_options, "svatark"),
    DownscaleMethod("ensemble", "downscale_ensemble", "in-situ-trained ensemble (Poehls et al.): mean, spread, domain",
                    specs.ENSEMBLE_HELP, specs.ENSEMBLE_SPECS, dict, run="run_ensemble",
                    outputs=specs.ENSEMBLE_OUTPUT_SPECS),
    DownscaleMethod("stacking", "downscale_stacking", "stacked boosted trees per terrain zone + residual correction",
                    specs.STACKING_HELP, specs.stacking_specs(), dict, run="run_stacking",
                    outputs=specs.STACKING_OUTPUT_SPECS),
    DownscaleMethod("deep-ensemble", "downscale_deep_ensemble", "deep ensemble of DNN, CNN and LSTM networks over "
                    "several resolutions + residual correction", specs.DEEP_ENSEMBLE_HELP, specs.deep_ensemble_specs(),
                    specs.deep_ensemble_options, run="run_deep_ensemble", outputs=specs.DEEP_ENSEMBLE_OUTPUT_SPECS),
    DownscaleMethod("cross-scale", "downscale_cross_scale", "cross-scale network (Alemohammad et al.): a trained "
                    "folder, or self-supervised", specs.CROSS_SCALE_HELP,
                    specs.CROSS_SCALE_SPECS + specs.cross_scale_network_specs(self_supervised_only=True), dict,
                    run="run_cross_scale", outputs=specs.CROSS_SCALE_OUTPUT_SPECS),
)

@dataclass(frozen=True)
class Command:
    """A subcommand that mirrors one Processing algorithm outside ``downscale``."""
    name: str                                  #: ``smds <name>``
    algorithm: str
    title: str
    help: str
    specs: tuple[specs.ParamSpec, ...]
    run: str                                   #: the function of ``cli/main.py`` that runs it


COMMANDS: tuple[Command, ...] = (
    Command("import-product", "import_product", "SMAP HDF5 / ESA CCI NetCDF files → one dated GeoTIFF (m³/m³)",
            specs.IMPORT_PRODUCT_HELP, specs.IMPORT_PRODUCT_SPECS, "run_import_product"),
    Command("score", "score_stations", "score soil-moisture rasters at in-situ stations (N, R, ubRMSE, bias, RMSE …)",
            specs.SCORE_HELP, specs.SCORE_SPECS, "run_score"),
    Command("report", "site_report", "site-metric report: scores at stations and downscaling diagnostics (HTML + CSV)",
            specs.SITE_REPORT_HELP, specs.SITE_REPORT_CLI_SPECS, "run_report"),
    Command("import-ismn", "import_ismn", "ISMN download (.zip or folder) → daily in-situ table and stations (CSV)",
            specs.IMPORT_ISMN_HELP, specs.IMPORT_ISMN_SPECS + specs.IMPORT_ISMN_OUTPUT_SPECS, "run_import_ismn"),
    Command("check", "check_inputs", "what each raster is (CRS, grid, dates, value ranges) and what would stop a "
            "run; exit status 1 on a blocking problem", specs.CHECK_INPUTS_HELP,
            specs.CHECK_INPUTS_SPECS + (dataclasses.replace(specs.CHECK_INPUTS_OUTPUT_SPEC, optional=True),),
            "run_check"),
)



#: ``smds train <name>``: the training algorithms.
TRAIN_COMMANDS: tuple[Command, ...] = (
    Command("cross-scale", "train_cross_scale", "train a cross-scale network (self-supervised or on a finer product) "
            "and save it as a verified model folder", specs.TRAIN_CROSS_SCALE_HELP,
            (specs.SOIL_MOISTURE_SPEC, specs.SM_DATES_SPEC, specs.FINE_SOIL_MOISTURE_SPEC) + specs.covariate_specs()
            + specs.GRID_SPECS + specs.cross_scale_network_specs() + specs.TRAIN_CROSS_SCALE_SPECS,
            "run_train_cross_scale"),
    Command("ensemble", "train_ensemble", "train an in-situ ensemble (Poehls et al.) on a station table or on rasters at "
            "stations, and save it as a verified model folder", specs.TRAIN_ENSEMBLE_HELP,
            (specs.STATION_TABLE_SPEC, dataclasses.replace(specs.SOIL_MOISTURE_SPEC, optional=True),
             specs.SM_DATES_SPEC) + specs.covariate_specs() + specs.GRID_SPECS
            + (specs.STATIONS_CSV_SPEC, specs.insitu_spec()) + specs.TRAIN_ENSEMBLE_SPECS[:-1]
            + (dataclasses.replace(specs.TRAIN_ENSEMBLE_SPECS[-1], optional=True), specs.ENSEMBLE_MODEL_OUTPUT_SPEC),
            "run_train_ensemble"),
)
