"""The dock's request → Processing parameters (ui/run_request.py, no Qt)."""
from __future__ import annotations

import os

from tests.unit.plugin_import import plugin_module

rr = plugin_module("ui.run_request")
Role = plugin_module("core.inputs.roles").Role

ALG = "soil_moisture_downscaling:downscale_regression"


def _request(**kw):
    base = dict(algorithm_id=ALG, method_label="Downscale (regression + residual correction)",
                soil_moisture=["sm_1", "sm_2"], covariates={Role.DEM: ["dem"], Role.NDVI: ["ndvi_1", "ndvi_2"]},
                output_folder="/data/runs", stamp="20240501-101500")
    base.update(kw)
    return rr.RunRequest(**base)


def test_downscaling_parameters():
    r = _request(resolution=0.01, crs="EPSG:4326", options={"REGRESSOR": 1, "N_ESTIMATORS": 20})
    p = r.to_parameters()
    out = os.path.join("/data/runs", "downscale_regression_residual_correction_20240501-101500.tif")
    assert p == {"SOIL_MOISTURE": ["sm_1", "sm_2"], "DEM": ["dem"], "NDVI": ["ndvi_1", "ndvi_2"],
                 "RESOLUTION": 0.01, "TARGET_CRS": "EPSG:4326", "REGRESSOR": 1, "N_ESTIMATORS": 20, "OUTPUT": out}
    assert "STATIONS" not in p and "INSITU_CSV" not in p  # the site report scores the result


def test_defaults_leave_crs_and_empty_roles_out():
    p = _request(covariates={Role.DEM: ["dem"], Role.LST: []}).to_parameters()
    assert "TARGET_CRS" not in p and "LST" not in p
    assert p["RESOLUTION"] == 0.0


def test_accepted_names_filter_what_a_method_does_not_have():
    p = _request(options={"REGRESSOR": 2}).to_parameters(accepted={"SOIL_MOISTURE", "DEM", "OUTPUT"})
    assert set(p) == {"SOIL_MOISTURE", "DEM", "OUTPUT"}


def test_model_parameter_and_further_outputs():
    r = _request(model_parameter="MODEL_FOLDER", model="/plugin/models/conus_dense")
    assert r.to_parameters()["MODEL_FOLDER"] == "/plugin/models/conus_dense"
    assert rr.MODEL_PARAMETERS[0] == "MODEL_FOLDER"  # a folder is unambiguous: preferred over a list
    assert r.destination("SPREAD") == os.path.join(
        "/data/runs", "downscale_regression_residual_correction_spread_20240501-101500.tif")
    assert r.problems() == []
    assert _request(model_parameter="MODEL_FOLDER").problems() == ["This method needs a trained model: choose one in the list."]


def test_role_parameters_are_the_upper_case_role_names():
    assert rr.role_parameter(Role.LAND_COVER) == "LAND_COVER"
    assert rr.role_parameter(Role.PRECIPITATION) == "PRECIPITATION"
    assert {"DEM", "NDVI", "LST", "ET", "SAND", "CLAY", "PH", "OTHER"} <= rr.HANDLED_PARAMETERS


def test_report_parameters_with_a_station_layer():
    r = _request(stations_layer="stations_id", station_id_field="station", insitu_csv="/d/insitu.csv",
                 coarse_name="ESA CCI")
    assert r.wants_report
    p = r.report_parameters("/data/runs/out.tif")
    stem = os.path.join("/data/runs", "downscale_regression_residual_correction")
    assert p == {
        "PRODUCTS": ["/data/runs/out.tif"], "PRODUCT_NAMES": "downscaled",
        "TITLE": "Soil moisture downscaled by 'Downscale (regression + residual correction)': evaluation at in-situ "
                 "stations",
        "COARSE": ["sm_1", "sm_2"], "COARSE_NAME": "ESA CCI", "INSITU_CSV": "/d/insitu.csv",
        "STATIONS": "stations_id", "STATION_ID_FIELD": "station",
        "REPORT": f"{stem}_report_20240501-101500.html", "SCORES_CSV": f"{stem}_sites_20240501-101500.csv",
        "SCORES": f"{stem}_stations_20240501-101500.gpkg",
        "CONSERVATION": f"{stem}_conservation_20240501-101500.tif",
        "HETEROGENEITY": f"{stem}_heterogeneity_20240501-101500.tif",
    }


def test_report_parameters_with_a_stations_csv():
    r = _request(stations_csv="/d/st.csv", insitu_csv="/d/in.csv")
    p = r.report_parameters("/x.tif")
    assert p["STATIONS_CSV"] == "/d/st.csv" and "STATIONS" not in p
    assert p["COARSE_NAME"] == "coarse"


def test_problems_in_plain_words():
    assert _request().problems() == []
    assert not _request().wants_report
    r = _request(soil_moisture=[], covariates={}, output_folder="", insitu_csv="/d/in.csv")
    assert r.problems() == [
        "No coarse soil-moisture layer is ticked: tick the dates to downscale.",
        "No fine covariate is chosen: give at least one (e.g. a DEM, NDVI or LST layer).",
        "No output folder is set.",
        "An in-situ table is given but no stations: give a station point layer or a stations CSV.",
    ]
    assert "no in-situ table" in _request(stations_csv="/d/st.csv").problems()[0]


def test_group_name_and_slug():
    assert _request(method_label="Random forest").group_name("10:15:00") == "Downscaled – Random forest – 10:15:00"
    assert rr.slug("SVR (RBF) + résidu") == "svr_rbf_r_sidu"


def test_choices_round_trip_and_tolerate_bad_settings():
    c = rr.DockChoices(algorithm_id=ALG, options={ALG: {"REGRESSOR": 1}}, roles={"dem": ["/d/dem.tif"]},
                       resolution=0.01, open_report=False)
    back = rr.DockChoices.from_json(c.to_json())
    assert back == c
    bad = rr.DockChoices.from_json('{"resolution": "fine", "open_report": 1, "roles": [], "output_folder": "/o"}')
    assert (bad.resolution, bad.open_report, bad.roles, bad.output_folder) == (0.0, True, {}, "/o")
    assert rr.DockChoices.from_json("[1, 2]") == rr.DockChoices()
