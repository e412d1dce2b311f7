"""What the user asked the dock to do, as a typed value — and the Processing parameters it means.

Pure Python (no Qt, no QGIS): the dock fills a :class:`RunRequest` from its widgets, and
:meth:`RunRequest.to_parameters` / :meth:`RunRequest.report_parameters` give the parameter
dictionaries of *our own* Processing algorithms, so the dock, the toolbox, the graphical
modeler and ``qgis_process`` run the same code. Layers are referred to by what Processing
accepts as a layer value: a project layer id or a file path.

The parameter names here are those of ``processing_provider/layer_params.py``,
``station_params.py`` and ``site_report.py``; a QGIS test checks that every algorithm in the
"downscaling" group accepts them.

Example
-------
>>> r = RunRequest("soil_moisture_downscaling:downscale_regression", "Regression", ["sm1", "sm2"],
...                {Role.DEM: ["dem"]}, "/tmp/out", "20240501-101500", options={"REGRESSOR": 1})
>>> r.to_parameters()["DEM"], r.to_parameters()["OUTPUT"]
(['dem'], '/tmp/out/regression_20240501-101500.tif')
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Collection, Mapping, Optional

from ..core.inputs.roles import COVARIATE_ROLES, Role

PROVIDER_ID = "soil_moisture_downscaling"
#: The algorithm run after a downscaling when stations and in-situ data are given.
SITE_REPORT_ID = f"{PROVIDER_ID}:site_report"

# Parameter names shared by the algorithms (one QGIS-free module, so the dock cannot drift from them).
from ..processing_provider.param_names import (  # noqa: E402
    INSITU_CSV,
    OUTPUT,
    RESOLUTION,
    SCORES,
    SCORES_CSV,
    SOIL_MOISTURE,
    STATION_ID_FIELD,
    STATIONS,
    STATIONS_CSV,
    TARGET_CRS,
)

# Site report (processing_provider/site_report.py).
PRODUCTS = "PRODUCTS"
PRODUCT_NAMES = "PRODUCT_NAMES"
COARSE = "COARSE"
COARSE_NAME = "COARSE_NAME"
REPORT = "REPORT"
CONSERVATION = "CONSERVATION"
HETEROGENEITY = "HETEROGENEITY"
TITLE = "TITLE"

#: Parameters the dock fills from its own widgets; every other simple parameter of a method is
#: shown as a method option.
HANDLED_PARAMETERS: frozenset[str] = frozenset(
    {SOIL_MOISTURE, "SM_DATES", TARGET_CRS, RESOLUTION, "EXTENT", OUTPUT, STATIONS, STATION_ID_FIELD,
     STATIONS_CSV, INSITU_CSV, SCORES, SCORES_CSV} | {r.value.upper() for r in COVARIATE_ROLES})

#: Names under which a method may ask for a trained model, most specific first: the dock fills the
#: first one a method has with the chosen model's folder (or, for a list, its position) and hides the rest.
MODEL_PARAMETERS: tuple[str, ...] = ("MODEL_FOLDER", "ENSEMBLE_FOLDER", "MODEL", "ENSEMBLE")


def role_parameter(role: Role) -> str:
    """Processing parameter name of a covariate role (``Role.LAND_COVER`` → ``LAND_COVER``)."""
    return role.value.upper()


def slug(text: str) -> str:
    """File-name-safe lower-case form: ``"Regression + residual"`` → ``regression_residual``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "run"


@dataclass
class RunRequest:
    """One run of the dock: a downscaling, then (with stations) a site report.

    Attributes
    ----------
    algorithm_id : str
        Full id of a downscaling algorithm (``soil_moisture_downscaling:downscale_regression``).
    method_label : str
        Its display name (for file and group names).
    soil_moisture : list of str
        Coarse soil-moisture layers (ids or paths), in the order the user sees them.
    covariates : dict Role → list of str
        Covariate layers by role.
    output_folder : str
        Where every file of the run is written.
    stamp : str
        Run time, ``YYYYMMDD-HHMMSS``; part of every file name, so runs never overwrite each other.
    resolution : float
        Target pixel size in target CRS units; 0 = the finest covariate's.
    crs : str
        Target CRS (authority id or WKT); empty = the finest covariate's.
    options : dict
        Method-specific parameters by name (e.g. ``{"REGRESSOR": 1, "N_ESTIMATORS": 50}``).
    model_parameter, model : str
        For a method that needs a trained model: its parameter name and the model (folder).
    stations_layer, station_id_field, stations_csv, insitu_csv : str
        Evaluation inputs (a point layer id or a CSV of stations, and the in-situ CSV).
    coarse_name : str
        Name of the coarse product in the report.
    """

    algorithm_id: str
    method_label: str
    soil_moisture: list[str]
    covariates: dict[Role, list[str]]
    output_folder: str
    stamp: str
    resolution: float = 0.0
    crs: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    model_parameter: str = ""
    model: str = ""
    stations_layer: str = ""
    station_id_field: str = ""
    stations_csv: str = ""
    insitu_csv: str = ""
    coarse_name: str = "coarse"

    # -- file names --------------------------------------------------------------------------
    def _path(self, what: str, ext: str) -> str:
        return os.path.join(self.output_folder, f"{slug(self.method_label)}{what}_{self.stamp}{ext}")

    @property
    def output_path(self) -> str:
        """The downscaled GeoTIFF (one band per date)."""
        return self._path("", ".tif")

    def destination(self, parameter: str, ext: str = ".tif") -> str:
        """File for a further output of the method (``SPREAD`` → ``<method>_spread_<stamp>.tif``)."""
        return self._path(f"_{parameter.lower()}", ext)

    @property
    def report_path(self) -> str:
        return self._path("_report", ".html")

    @property
    def sites_csv_path(self) -> str:
        return self._path("_sites", ".csv")

    @property
    def stations_path(self) -> str:
        return self._path("_stations", ".gpkg")

    @property
    def conservation_path(self) -> str:
        return self._path("_conservation", ".tif")

    @property
    def heterogeneity_path(self) -> str:
        return self._path("_heterogeneity", ".tif")

    #: Name of the downscaled product in the report (the method is named in its title).
    product_name = "downscaled"

    @property
    def report_title(self) -> str:
        return f"Soil moisture downscaled by '{self.method_label}': evaluation at in-situ stations"

    # -- checks ------------------------------------------------------------------------------
    @property
    def wants_report(self) -> bool:
        return bool(self.insitu_csv and (self.stations_layer or self.stations_csv))

    def problems(self) -> list[str]:
        """What is missing before anything can run, in plain words (empty = complete)."""
        out = []
        if not self.algorithm_id:
            out.append("No downscaling method is chosen.")
        if not self.soil_moisture:
            out.append("No coarse soil-moisture layer is ticked: tick the dates to downscale.")
        if not any(self.covariates.values()):
            out.append("No fine covariate is chosen: give at least one (e.g. a DEM, NDVI or LST layer).")
        if not self.output_folder:
            out.append("No output folder is set.")
        if self.model_parameter and not self.model:
            out.append("This method needs a trained model: choose one in the list.")
        if self.insitu_csv and not (self.stations_layer or self.stations_csv):
            out.append("An in-situ table is given but no stations: give a station point layer or a stations CSV.")
        if (self.stations_layer or self.stations_csv) and not self.insitu_csv:
            out.append("Stations are given but no in-situ table: give the CSV of in-situ soil moisture "
                       "(or clear the stations to skip the report).")
        if self.resolution < 0:
            out.append("The target resolution cannot be negative (0 = the finest covariate's).")
        return out

    # -- Processing parameters --------------------------------------------------------------
    def to_parameters(self, accepted: Optional[Collection[str]] = None) -> dict[str, Any]:
        """Parameters of :attr:`algorithm_id`; with ``accepted``, only the names it has.

        Stations are not passed to the downscaling: the site report scores the result.
        """
        p: dict[str, Any] = {SOIL_MOISTURE: list(self.soil_moisture), RESOLUTION: float(self.resolution),
                             OUTPUT: self.output_path}
        if self.crs:
            p[TARGET_CRS] = self.crs
        for role in COVARIATE_ROLES:
            layers = self.covariates.get(role) or []
            if layers:
                p[role_parameter(role)] = list(layers)
        p.update(self.options)
        if self.model_parameter and self.model:
            p[self.model_parameter] = self.model
        if accepted is not None:
            p = {k: v for k, v in p.items() if k in accepted}
        return p

    def report_parameters(self, product: str) -> dict[str, Any]:
        """Parameters of the site report of ``product`` (the downscaled file) against the coarse layers."""
        p: dict[str, Any] = {
            PRODUCTS: [product], PRODUCT_NAMES: self.product_name, TITLE: self.report_title,
            COARSE: list(self.soil_moisture), COARSE_NAME: self.coarse_name,
            INSITU_CSV: self.insitu_csv, REPORT: self.report_path, SCORES_CSV: self.sites_csv_path,
            SCORES: self.stations_path, CONSERVATION: self.conservation_path,
            HETEROGENEITY: self.heterogeneity_path,
        }
        if self.stations_layer:
            p[STATIONS] = self.stations_layer
            if self.station_id_field:
                p[STATION_ID_FIELD] = self.station_id_field
        else:
            p[STATIONS_CSV] = self.stations_csv
        return p

    def group_name(self, clock: str) -> str:
        """Layer-tree group of the run's results: ``Downscaled – <method> – <time>``."""
        return f"Downscaled – {self.method_label} – {clock}"


@dataclass
class DockChoices:
    """What the dock remembers between sessions (stored as JSON in the QGIS settings).

    Layers are remembered by their source (file path), which outlives project layer ids.
    """

    algorithm_id: str = ""
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per algorithm id
    roles: dict[str, list[str]] = field(default_factory=dict)  # role value → sources
    resolution: float = 0.0
    crs: str = ""
    output_folder: str = ""
    model: str = ""
    stations_source: str = ""
    station_id_field: str = ""
    stations_csv: str = ""
    insitu_csv: str = ""
    open_report: bool = True

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DockChoices":
        """Parse stored choices; unknown keys are ignored and bad values fall back to defaults.

        >>> DockChoices.from_json('{"resolution": 0.01, "stale": 1}').resolution
        0.01
        >>> DockChoices.from_json("not json").resolution
        0.0
        """
        try:
            raw = json.loads(text or "{}")
        except ValueError:
            raw = {}
        if not isinstance(raw, Mapping):
            raw = {}
        out = cls()
        for key, default in asdict(cls()).items():
            value = raw.get(key, default)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                value = float(value) if ok else default
            else:
                ok = isinstance(value, type(default))
            setattr(out, key, value if ok else default)
        return out
