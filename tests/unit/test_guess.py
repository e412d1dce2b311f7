"""Guessing each layer's role from names, metadata and values (core/inputs/guess.py, no Qt)."""
from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from tests.unit.plugin_import import ROOT, plugin_module

guess = plugin_module("core.inputs.guess")
Role = plugin_module("core.inputs.roles").Role
Facts = guess.LayerFacts

ESA = dict(pixel_size=0.25, geographic=True)  # ESA CCI SM, 0.25°


@pytest.mark.parametrize("name, facts, role", [
    ("ESA CCI file", Facts("ESA_CCI_SM_v45_Delaware_20180101", **ESA), Role.SOIL_MOISTURE),
    ("SMAP 9 km", Facts("SMAP_L3_SM_P_E_20180101_R17000_001", pixel_size=9000.0), Role.SOIL_MOISTURE),
    ("words 'soil moisture'", Facts("Soil moisture 2018-01-01", pixel_size=0.1, geographic=True), Role.SOIL_MOISTURE),
    ("camelCase", Facts("esaCciSm", **ESA), Role.SOIL_MOISTURE),
    ("DEM by file name", Facts("layer", "/data/srtm_90m.tif"), Role.DEM),
    ("elevation prefix", Facts("elevation_1km"), Role.DEM),
    ("NDVI", Facts("MOD13A2_NDVI_2018_001"), Role.NDVI),
    ("LST", Facts("MOD11A2_LST_Day_1km_2018001"), Role.LST),
    ("land surface temperature", Facts("Land surface temperature (K)"), Role.LST),
    ("land cover words", Facts("nlcd_2019_land_cover"), Role.LAND_COVER),
    ("land cover short", Facts("LC_2018"), Role.LAND_COVER),
    ("sand", Facts("SoilGrids_sand_0-5cm_mean"), Role.SAND),
    ("clay", Facts("clay_content"), Role.CLAY),
    ("pH", Facts("phh2o_0-5cm_mean"), Role.PH),
    ("precipitation", Facts("CHIRPS_20180101"), Role.PRECIPITATION),
    ("rainfall prefix", Facts("rainfall_daily"), Role.PRECIPITATION),
    ("ET", Facts("MOD16A2_ET_500m"), Role.ET),
    ("metadata keywords", Facts("band1", keywords="Normalized difference vegetation index, NDVI"), Role.NDVI),
])
def test_names_give_roles(name, facts, role):
    assert guess.guess_role(facts) is role, name


@pytest.mark.parametrize("facts", [
    Facts("downscaled_sm_20180101", pixel_size=0.00833, geographic=True),  # 1 km: a fine product
    Facts("regression_20240501-101500", metadata={"METHOD": "trend (svr) + bilinear residual"}),
    Facts("ESA_CCI_SM_downscaled", pixel_size=1000.0),
    Facts("my_layer"),
])
def test_fine_soil_moisture_and_unknown_names_are_not_coarse_inputs(facts):
    assert guess.guess_role(facts) is None


def test_guess_roles_delaware_like_project():
    layers = [Facts(f"ESA_CCI_SM_v45_Delaware_201801{d:02d}", **ESA) for d in (1, 2, 3)]
    layers += [Facts("elevation_1km", pixel_size=0.00833, geographic=True, value_range=(-2.0, 290.0)),
               Facts("NDVI_20180101"), Facts("NDVI_20180117"),
               Facts("srtm_second_dem"),  # a second DEM: single-layer role, first one wins
               Facts("regression_20240501", metadata={"METHOD": "trend"})]
    roles = guess.guess_roles(layers)
    assert roles == {Role.SOIL_MOISTURE: [0, 1, 2], Role.DEM: [3], Role.NDVI: [4, 5]}


def test_values_like_elevations_make_an_unnamed_layer_the_dem():
    layers = [Facts("band_a", value_range=(0.0, 0.9)),          # fraction: not elevation
              Facts("band_b", value_range=(2.0, 450.0)),        # metres of a coastal plain
              Facts("band_c", value_range=(100.0, 900.0)),      # also, but the first one wins
              Facts("stack", band_count=5, value_range=(0.0, 500.0))]
    assert guess.guess_roles(layers) == {Role.DEM: [1]}
    # a named DEM takes precedence over value cues
    assert guess.guess_roles(layers + [Facts("dem_30m")]) == {Role.DEM: [4]}
    # a named LST in kelvin is not taken for an elevation
    assert guess.guess_roles([Facts("LST_kelvin", value_range=(260.0, 310.0))]) == {Role.LST: [0]}


def test_layer_dates_and_their_description():
    assert guess.layer_dates(Facts("x", "/d/ESA_CCI_SM_v45_Delaware_20180102.tif")) == [dt.date(2018, 1, 2)]
    assert guess.layer_dates(Facts("SMAP 2018-03-04")) == [dt.date(2018, 3, 4)]
    stack = Facts("stack", band_count=2, band_descriptions=("2018-01-01", "2018-01-05"))
    assert guess.layer_dates(stack) == [dt.date(2018, 1, 1), dt.date(2018, 1, 5)]
    assert guess.layer_dates(Facts("stack", band_count=2, band_descriptions=("2018-01-01", "band 2"))) == []
    days = [dt.date(2018, 1, d) for d in range(1, 32)]
    assert guess.describe_dates(days) == "31 dates, 2018-01-01 … 2018-01-31 (daily)"
    assert guess.describe_dates([days[0], days[1], days[5]]) == "3 dates, 2018-01-01 … 2018-01-06 (irregular)"
    assert guess.describe_dates([], undated=2) == "no dates found; 2 layers without a date"


def test_series_name_drops_the_date():
    assert guess.series_name(["SMAP_L3_SM_P_E_20180101_R17000"]) == "SMAP_L3_SM_P_E_R17000"
    assert guess.series_name(["sm 2018-01-01 daily"]) == "sm_daily"
    assert guess.series_name([]) == "coarse"


def test_words_drop_dates_and_split_camel_case():
    assert guess.words("SMAP_L3_SM_P_E_20180101") == ["smap", "l3", "sm", "p", "e"]
    assert guess.words("landCover2019") == ["land", "cover2019"]


@pytest.mark.parametrize("module", ["core/inputs/guess.py", "ui/run_request.py"])
def test_pure_modules_import_neither_qt_nor_qgis(module):
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0]
    assert not [n for n in names if n.split(".")[0] in {"qgis", "PyQt5", "PyQt6", "sip"}]
