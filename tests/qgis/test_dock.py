"""The dock on the Delaware sample: roles guessed, inputs checked, a run in the background, cancel.

The run downscales 4 days of ESA CCI SM (0.25°) to the 1 km elevation grid with a small random
forest (20 trees) and writes the site report at the 13 DEOS stations; it takes a few seconds.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsSettings
from qgis.PyQt.QtCore import QEvent, Qt
from qgis.PyQt.QtWidgets import QApplication

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "delaware"
SM_FILES = sorted((SAMPLE / "esa_cci_sm").glob("*.tif"))
DAYS = 4
ALG_ID = "soil_moisture_downscaling:downscale_regression"


def _wait(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s")
        QApplication.processEvents()
        time.sleep(0.02)


@pytest.fixture
def project(qgis_new_project):
    layers = [QgsRasterLayer(str(p), p.stem) for p in SM_FILES[:8]]
    layers.append(QgsRasterLayer(str(SAMPLE / "elevation_1km.tif"), "elevation_1km"))
    assert all(lay.isValid() for lay in layers)
    qgis_new_project.addMapLayers(layers)
    return qgis_new_project


@pytest.fixture
def dock(plugin, project, qgis_iface, monkeypatch, tmp_path):
    monkeypatch.setenv("SOIL_MOISTURE_DOWNSCALING_NO_BROWSER", "1")
    QgsSettings().remove("soil_moisture_downscaling/dock")
    from soil_moisture_downscaling.ui.dock import SoilMoistureDock

    d = SoilMoistureDock(qgis_iface, qgis_iface.mainWindow())
    d.outputFolder.setFilePath(str(tmp_path / "runs"))
    yield d
    if d.is_running():
        d.cancel()
        _wait(lambda: not d.is_running(), 60)
    d.close()
    d.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)


def _run_to_the_end(dock, timeout: float = 240) -> dict:
    """Start a run, wait for it, assert it succeeded; the run's info."""
    finished = []
    dock.runFinished.connect(lambda ok, info: finished.append((ok, info)))
    assert dock.run()
    _wait(lambda: bool(finished), timeout)
    ok, info = finished[0]
    assert ok, dock.messages.toPlainText()
    return info


def _setup_delaware_run(dock, days: int = DAYS, stations: bool = True) -> None:
    for i in range(dock.smList.count()):  # keep the first `days` dates
        item = dock.smList.item(i)
        item.setCheckState(Qt.Checked if i < days else Qt.Unchecked)
    dock.methodCombo.setCurrentIndex(dock.methodCombo.findData(ALG_ID))
    dock.set_option("REGRESSOR", 1)  # random forest
    dock.set_option("N_ESTIMATORS", 20)
    if stations:
        dock.stationsCsv.setFilePath(str(SAMPLE / "deos_stations.csv"))
        dock.insituCsv.setFilePath(str(SAMPLE / "deos_daily_vwc.csv"))


def test_roles_are_guessed_and_dates_shown(dock, project):
    sm = [dock.smList.item(i).text() for i in range(dock.smList.count())
          if dock.smList.item(i).checkState() == Qt.Checked]
    assert sm == [p.stem for p in SM_FILES[:8]]
    assert dock.smDatesLabel.text() == "8 dates, 2018-01-01 … 2018-01-08 (daily)"
    from soil_moisture_downscaling.core.inputs.roles import Role
    dem = project.mapLayersByName("elevation_1km")[0]
    assert dock.pickers[Role.DEM].selected() == [dem.id()]
    assert dock.pickers[Role.NDVI].selected() == []
    # the method list is every algorithm of our provider in the "downscaling" group, found at run time
    provider = QgsApplication.processingRegistry().providerById("soil_moisture_downscaling")
    expected = {a.id() for a in provider.algorithms() if a.groupId() == "downscaling"}
    assert ALG_ID in expected
    assert {dock.methodCombo.itemData(i) for i in range(dock.methodCombo.count())} == expected


def test_request_parameters_are_accepted_by_every_downscaling_method(dock):
    from soil_moisture_downscaling.processing_provider import layer_params as lp
    from soil_moisture_downscaling.ui import run_request as rr

    assert {key for key, _role, _help in lp.COVARIATE_PARAMS} == {rr.role_parameter(r) for r in rr.COVARIATE_ROLES}
    req = dock.request()
    for alg in dock.downscaling_algorithms():
        names = {p.name() for p in alg.parameterDefinitions()}
        assert {rr.SOIL_MOISTURE, rr.OUTPUT} <= names, alg.id()
    report = QgsApplication.processingRegistry().algorithmById(rr.SITE_REPORT_ID)
    names = {p.name() for p in report.parameterDefinitions()}
    assert set(req.report_parameters("x.tif")) | {rr.STATIONS, rr.STATION_ID_FIELD, rr.STATIONS_CSV} <= names


def test_check_lists_every_problem(dock, project, make_raster):
    import numpy as np
    # a soil-moisture layer in percent and one whose band is all nodata, next to the good ones
    pct = make_raster("SMAP_sm_20180109.tif", np.full((10, 8), 25.0, np.float32), epsg=4326,
                      origin=(-76.5, 40.25), pixel=(0.25, 0.25))
    empty = make_raster("SMAP_sm_20180110.tif", np.full((10, 8), -9999, np.float32), epsg=4326,
                        origin=(-76.5, 40.25), pixel=(0.25, 0.25), nodata=-9999)
    project.addMapLayers([QgsRasterLayer(str(pct), "SMAP_sm_20180109"), QgsRasterLayer(str(empty), "SMAP_sm_20180110")])
    dock.refresh_layers(guess=True)
    dock.stationsCsv.setFilePath(str(SAMPLE / "deos_stations.csv"))  # stations without an in-situ table
    res = dock.check_inputs()
    text = "\n".join(res.errors)
    assert "looks like percent" in text
    assert "all nodata" in text
    assert "no in-situ table" in text
    assert not res.ok and "problem(s) to fix" in dock.messages.toPlainText()
    assert dock.run() is False and not dock.is_running()


def test_check_explains_a_missing_crs_and_no_overlap(dock, project, tmp_path, make_raster):
    import numpy as np
    from osgeo import gdal
    from soil_moisture_downscaling.core.inputs.roles import Role

    far = make_raster("ndvi_far.tif", np.full((5, 5), 0.5, np.float32), epsg=4326, origin=(10.0, 50.0),
                      pixel=(0.01, 0.01))
    bare = tmp_path / "lst_no_crs.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(bare), 5, 5, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((-76.0, 0.01, 0, 39.5, 0, -0.01))
    ds.GetRasterBand(1).Fill(290.0)
    ds = None
    far_layer, bare_layer = QgsRasterLayer(str(far), "ndvi_far"), QgsRasterLayer(str(bare), "lst_no_crs")
    project.addMapLayers([far_layer, bare_layer])
    # layers added after the panel opened are guessed into the roles still empty
    assert dock.pickers[Role.NDVI].selected() == [far_layer.id()]
    assert dock.pickers[Role.LST].selected() == [bare_layer.id()]
    _setup_delaware_run(dock, days=2, stations=False)
    dock.pickers[Role.LST].set_selected([])
    res = dock.check_inputs()
    assert any("Layer 'ndvi_far': it does not overlap" in e for e in res.errors), res.errors
    dock.pickers[Role.NDVI].set_selected([])
    dock.pickers[Role.LST].set_selected([bare_layer.id()])
    res = dock.check_inputs()
    assert any("lst_no_crs" in e and "no coordinate reference system" in e for e in res.errors), res.errors


def test_check_passes_on_the_sample(dock):
    _setup_delaware_run(dock)
    res = dock.check_inputs()
    assert res.ok, res.errors
    assert res.summary.startswith("4 date(s), 2018-01-01 … 2018-01-04; fine grid 240 × 300 px")
    assert "Inputs look fine" in dock.messages.toPlainText()


def test_run_loads_a_dated_group_and_writes_the_report(dock, project, tmp_path):
    _setup_delaware_run(dock)
    finished = []
    dock.runFinished.connect(lambda ok, info: finished.append((ok, info)))
    t0 = time.monotonic()
    assert dock.run() is True
    assert dock.is_running() and not dock.runButton.isEnabled() and dock.cancelButton.isEnabled()
    _wait(lambda: bool(finished), 240)
    elapsed = time.monotonic() - t0
    ok, info = finished[0]
    assert ok, dock.messages.toPlainText()
    print(f"dock run (4 days, RF 20 trees, report): {elapsed:.1f} s")

    group = project.layerTreeRoot().findGroup(info["group"])
    assert group is not None and info["group"].startswith("Downscaled – Downscale (regression + residual correction) – ")
    layers = [project.mapLayer(i) for i in info["layers"]]
    names = [lay.name() for lay in layers]
    assert any(n.startswith("Soil moisture") for n in names)
    assert "Stations: ubRMSE change vs coarse" in names
    sm = next(lay for lay in layers if lay.name().startswith("Soil moisture"))
    assert sm.temporalProperties().isActive()
    assert sm.renderer().type() == "singlebandpseudocolor"
    dated = [lay for lay in group.findLayers() if lay.layer().temporalProperties().isActive()]
    assert len(dated) >= DAYS  # one per date on 3.22 (or one layer with a range per band on ≥ 3.38)
    stations = project.mapLayersByName("Stations: ubRMSE change vs coarse")[0]
    assert stations.renderer().type() == "graduatedSymbol"
    assert Path(info["report"]).is_file() and Path(info["report"]).stat().st_size > 50_000
    assert Path(info["sites_csv"]).is_file()
    out = Path(info["output"])
    assert out.is_file() and out.parent == tmp_path / "runs"
    assert not [p.name for p in out.parent.iterdir() if ".part" in p.name]
    assert not dock.is_running() and dock.runButton.isEnabled() and dock.progressBar.value() == 100
    assert project.timeSettings().temporalRange().begin().date().toString("yyyy-MM-dd") == "2018-01-01"


def test_cancel_right_after_start_leaves_nothing(dock, tmp_path):
    _setup_delaware_run(dock, days=8)
    finished = []
    dock.runFinished.connect(lambda ok, info: finished.append(ok))
    assert dock.run() is True
    dock.cancel()
    _wait(lambda: bool(finished), 120)
    assert finished == [False]
    runs = tmp_path / "runs"
    assert not [p.name for p in runs.iterdir()], "a canceled run must leave no file (not even a partial one)"
    assert not dock.is_running() and dock.runButton.isEnabled() and not dock.cancelButton.isEnabled()
    assert dock.progressBar.value() == 0
    assert "Canceled" in dock.messages.toPlainText()


def test_choices_persist_between_sessions(plugin, project, qgis_iface, monkeypatch, tmp_path):
    monkeypatch.setenv("SOIL_MOISTURE_DOWNSCALING_NO_BROWSER", "1")
    QgsSettings().remove("soil_moisture_downscaling/dock")
    from soil_moisture_downscaling.ui.dock import SoilMoistureDock

    first = SoilMoistureDock(qgis_iface, None)
    _setup_delaware_run(first, days=2)
    first.resolutionSpin.setValue(0.02)
    first.outputFolder.setFilePath(str(tmp_path / "keep"))
    first.close()  # saves
    first.deleteLater()
    second = SoilMoistureDock(qgis_iface, None)
    try:
        assert second.resolutionSpin.value() == pytest.approx(0.02)
        assert second.outputFolder.filePath() == str(tmp_path / "keep")
        assert second.option_values()["REGRESSOR"] == 1 and second.option_values()["N_ESTIMATORS"] == 20
        assert second.insituCsv.filePath() == str(SAMPLE / "deos_daily_vwc.csv")
        assert len(second.soil_moisture_ids()) == 2  # the dates ticked last time, found by file
    finally:
        second.close()
        second.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.DeferredDelete)
        QgsSettings().remove("soil_moisture_downscaling/dock")


def test_ensemble_method_shows_models_with_cards_and_runs(dock, project):
    alg_id = "soil_moisture_downscaling:downscale_ensemble"
    if dock.methodCombo.findData(alg_id) < 0:
        pytest.skip("no ensemble method in this build")
    _setup_delaware_run(dock, days=2, stations=False)
    dock.methodCombo.setCurrentIndex(dock.methodCombo.findData(alg_id))
    assert not dock.modelBox.isHidden()
    names = [dock.modelCombo.itemText(i) for i in range(dock.modelCombo.count())]
    assert names[0].startswith("Automatic") and "insitu_hgb_dem" in names
    dock.modelCombo.setCurrentIndex(0)      # with a DEM and no NDVI: the DEM tier, and the card says why
    assert "Chose the bundled tier 'insitu_hgb_dem'" in dock.modelCard.toPlainText()
    assert dock.request().model.endswith("insitu_hgb_dem")
    dock.modelCombo.setCurrentIndex(names.index("insitu_hgb_dem"))
    card = dock.modelCard.toPlainText()
    assert "Inputs: sm_coarse, mtpi, lat" in card and "Trained on:" in card and "R model / coarse" in card
    req = dock.request()
    assert req.model_parameter == "MODEL_FOLDER" and req.model.endswith("insitu_hgb_dem")
    res = dock.check_inputs()
    assert res.ok, res.errors
    assert not any("'lat'" in w for w in res.warnings)  # Delaware lies inside the CONUS training area
    info = _run_to_the_end(dock)
    names = {project.mapLayer(i).name().rsplit(" 2018", 1)[0] for i in info["layers"]}
    assert {"Soil moisture", "Spread of the members (std)", "Outside the training domain"} <= names
    assert "report" not in info  # no stations: no report


def test_cross_scale_method_runs_self_supervised_from_the_dock(dock, project):
    alg_id = "soil_moisture_downscaling:downscale_cross_scale"
    _setup_delaware_run(dock, days=3, stations=False)
    dock.methodCombo.setCurrentIndex(dock.methodCombo.findData(alg_id))
    assert dock.modelBox.isHidden() and dock.request().model_parameter == ""  # no model needed
    dock.set_option("MEMBERS", 2)
    res = dock.check_inputs()
    assert res.ok, res.errors
    info = _run_to_the_end(dock)
    assert "the topographic index (mTPI of the DEM) at window and pixel takes its place" in dock.messages.toPlainText()
    from osgeo import gdal
    ds = gdal.Open(info["output"])
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (16, 20, 3)  # 0.25° ÷ 2


def test_stacking_method_runs_from_the_dock_with_terrain_zones(dock, project):
    alg_id = "soil_moisture_downscaling:downscale_stacking"
    _setup_delaware_run(dock, days=3, stations=False)
    dock.methodCombo.setCurrentIndex(dock.methodCombo.findData(alg_id))
    dock.set_option("N_ESTIMATORS", 30)
    res = dock.check_inputs()
    assert res.ok, res.errors
    info = _run_to_the_end(dock)
    log = dock.messages.toPlainText()
    assert "Terrain zones (relief" in log and "Stack weights:" in log  # the DEM gave zones by default
    from osgeo import gdal
    ds = gdal.Open(info["output"])
    assert ds.RasterCount == 3 and (ds.RasterXSize, ds.RasterYSize) == (240, 300)  # the 1 km DEM grid


def test_model_domain_and_missing_inputs_are_problems(dock, project):
    alg_id = "soil_moisture_downscaling:downscale_ensemble"
    if dock.methodCombo.findData(alg_id) < 0:
        pytest.skip("no ensemble method in this build")
    _setup_delaware_run(dock, days=2, stations=False)
    dock.methodCombo.setCurrentIndex(dock.methodCombo.findData(alg_id))
    from soil_moisture_downscaling.core.inputs.roles import Role
    dem = dock.pickers[Role.DEM].selected()
    dock.pickers[Role.DEM].set_selected([])
    dock.pickers[Role.OTHER].set_selected(dem)  # the elevation given as "other": no mTPI can be derived
    res = dock.check_inputs()
    assert any("needs 'mtpi'" in e and "Elevation" in e for e in res.errors), res.errors
    # the coarse product dips below the driest coarse value the model saw (ESA CCI 0.005 in a coastal cell)
    assert any(w.startswith("'sm_coarse' spans 0.00544") and "trained on 0.0303" in w for w in res.warnings)


def test_deleting_the_panel_mid_run_stops_the_run_cleanly(plugin, project, qgis_iface, monkeypatch, tmp_path):
    """Unloading the plugin deletes the panel; a run under way is canceled, nothing half-written stays."""
    monkeypatch.setenv("SOIL_MOISTURE_DOWNSCALING_NO_BROWSER", "1")
    QgsSettings().remove("soil_moisture_downscaling/dock")
    from soil_moisture_downscaling.ui import dock as dock_module

    d = dock_module.SoilMoistureDock(qgis_iface, None)
    d.outputFolder.setFilePath(str(tmp_path / "runs"))
    _setup_delaware_run(d, days=8, stations=False)
    assert d.run()
    d.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)  # processEvents() leaves deferred deletes
    _wait(lambda: QgsApplication.taskManager().countActiveTasks() == 0 and not dock_module._RUNNING, 120)
    assert not [p.name for p in (tmp_path / "runs").iterdir()]
    QgsSettings().remove("soil_moisture_downscaling/dock")


def test_start_from_downloads_opens_our_algorithms_and_uses_the_ismn_outputs(dock, run_alg, tmp_path, monkeypatch):
    import processing
    from qgis.core import QgsVectorLayer

    opened = []
    monkeypatch.setattr(processing, "execAlgorithmDialog", lambda alg_id, params: opened.append(alg_id) or {})
    dock.importProductButton.click()
    dock.prepareCovariatesButton.click()
    assert opened == ["soil_moisture_downscaling:import_product", "soil_moisture_downscaling:prepare_covariates"]

    # what the ISMN dialog returns once Processing has loaded the station layer
    zip_path = REPO / "tests" / "data" / "ismn" / "Data_seperate_files_20170810_20180809.zip"
    results = run_alg("import_ismn", {"INPUT": str(zip_path), "DEPTH_MAX": 0.25,
                                      "OUTPUT_STATIONS": str(tmp_path / "ismn.gpkg"),
                                      "OUTPUT_SERIES": str(tmp_path / "ismn.csv")})
    layer = QgsVectorLayer(results["OUTPUT_STATIONS"], "ISMN stations", "ogr")
    QgsProject.instance().addMapLayer(layer)
    monkeypatch.setattr(processing, "execAlgorithmDialog", lambda alg_id, params: opened.append(alg_id) or results)
    dock.importIsmnButton.click()
    assert opened[-1] == "soil_moisture_downscaling:import_ismn"
    assert dock.insituCsv.filePath() == str(tmp_path / "ismn.csv")
    assert dock.stationsLayerCombo.currentLayer() is layer
    assert dock.stationIdCombo.currentField() == "station"
