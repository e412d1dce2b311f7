"""Roles a layer can play, with the units the engine expects and how to resample it."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(str, Enum):
    SOIL_MOISTURE = "soil_moisture"
    LST = "lst"
    NDVI = "ndvi"
    ET = "et"
    PRECIPITATION = "precipitation"
    SAND = "sand"
    CLAY = "clay"
    PH = "ph"
    DEM = "dem"
    LAND_COVER = "land_cover"
    OTHER = "other"
    #: Zones for per-zone models (terrain units, basins): a class raster, not a predictor.
    ZONE = "zone"


@dataclass(frozen=True)
class RoleInfo:
    label: str
    units: str
    categorical: bool = False
    dynamic: bool = False  # usually a time series


ROLE_INFO: dict[Role, RoleInfo] = {
    Role.SOIL_MOISTURE: RoleInfo("Soil moisture", "m³/m³", dynamic=True),
    Role.LST: RoleInfo("Land surface temperature", "K", dynamic=True),
    Role.NDVI: RoleInfo("NDVI", "-1…1", dynamic=True),
    Role.ET: RoleInfo("Evapotranspiration", "mm/day", dynamic=True),
    Role.PRECIPITATION: RoleInfo("Precipitation", "mm/day", dynamic=True),
    Role.SAND: RoleInfo("Sand content", "%"),
    Role.CLAY: RoleInfo("Clay content", "%"),
    Role.PH: RoleInfo("Soil pH", "pH"),
    Role.DEM: RoleInfo("Elevation (DEM)", "m"),
    Role.LAND_COVER: RoleInfo("Land cover", "class code", categorical=True),
    Role.OTHER: RoleInfo("Other covariate", "as given"),
    Role.ZONE: RoleInfo("Zones", "class code", categorical=True),
}

#: Covariate roles (everything but the coarse soil moisture itself).
#: Zones are given by the methods that model per zone, not as a covariate of every method.
COVARIATE_ROLES: tuple[Role, ...] = tuple(r for r in Role if r not in (Role.SOIL_MOISTURE, Role.ZONE))
