"""'Check soil-moisture inputs' through processing.run, on GeoTIFFs made here (values known)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsRasterLayer

ALG = "check_inputs"


def _run(run_alg, tmp_path, paths, **extra):
    out = tmp_path / "report.html"
    result = run_alg(ALG, {"INPUTS": [str(p) for p in paths], "OUTPUT_HTML": str(out), **extra.pop("params", {})}, **extra)
    return result, out.read_text(encoding="utf-8")


def test_report_names_date_crs_and_scaled_range(run_alg, make_raster, tmp_path, feedback):
    raw = np.array([[100, 200, 300], [400, -9999, 3500]], dtype=np.int16)  # ×0.0001 → 0.01…0.35
    sm = make_raster("SMAP_sm_20180131.tif", raw, epsg=32618, nodata=-9999, scale=0.0001)
    result, html = _run(run_alg, tmp_path, [sm], feedback=feedback)

    assert result["LAYER_COUNT"] == 1
    assert result["CRS_COUNT"] == 1
    assert result["DATE_COUNT"] == 1
    assert result["WARNING_COUNT"] == 0
    assert "2018-01-31" in html and "(from the file name)" in html
    assert "EPSG:32618" in html and "WGS 84 / UTM zone 18N" in html
    row = re.search(r"<td>Int16</td><td>-9999</td><td>×0.0001 \+ 0</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", html)
    assert row, html
    assert [float(v) for v in row.groups()] == pytest.approx([0.01, 0.35, 0.09])  # min, max, mean (nodata skipped)
    assert "1000 × 1000 meters" in html
    assert "xmin 500000, ymin 4.398e+06, xmax 503000, ymax 4.4e+06" in html
    assert any("SMAP_sm_20180131" in m for m in feedback.infos)


def test_band_descriptions_give_dates_and_warnings_are_counted(run_alg, make_raster, tmp_path, feedback):
    stack = np.stack([np.full((2, 2), v, np.float32) for v in (0.1, 0.2, 0.3)])
    series = make_raster("series.tif", stack, descriptions=["sm 2018-01-01", "sm 2018-01-02", "sm 2018-01-02"], nodata=-1)
    dem = make_raster("dem.tif", np.full((2, 2), 12.0, np.float32), epsg=4326, pixel=(0.01, 0.01), origin=(-75, 39))
    result, html = _run(run_alg, tmp_path, [series, dem], feedback=feedback)

    assert result["LAYER_COUNT"] == 2
    assert result["CRS_COUNT"] == 2
    assert result["DATE_COUNT"] == 2  # 2018-01-01, 2018-01-02; dem is static
    # series: repeated date; dem: no NoData value; across layers: two CRSs
    assert result["WARNING_COUNT"] == 3
    assert "2 dates, 2018-01-01 … 2018-01-02 (from band descriptions)" in html
    assert "none found (static layer)" in html
    assert any("several bands carry the same date: 2018-01-02" in w for w in feedback.warnings)
    assert any("band 1 has no NoData value" in w for w in feedback.warnings)
    assert any("different CRSs" in w for w in feedback.warnings)


def test_own_statistics_are_not_written_next_to_the_input(plugin_package, make_raster):
    # (QGIS itself writes .aux.xml when it opens a raster layer without statistics; we do not add to it.)
    from soil_moisture_downscaling.core.inputs.check import read_bands

    sm = make_raster("sm_20180101.tif", np.arange(9, dtype=np.float32).reshape(3, 3), nodata=-9999)
    (band,) = read_bands(str(sm))
    assert band.stats == pytest.approx((0.0, 8.0, 4.0, np.arange(9).std()))
    assert not sm.with_name(sm.name + ".aux.xml").exists()


def test_all_nodata_band_is_reported(run_alg, make_raster, tmp_path):
    empty = make_raster("empty.tif", np.full((2, 2), -9999, np.float32), nodata=-9999)
    result, html = _run(run_alg, tmp_path, [empty])
    assert result["WARNING_COUNT"] == 1
    assert "band 1 has no valid pixel" in html


def test_cancel_stops_with_a_message(run_alg, make_raster, tmp_path, feedback):
    sm = make_raster("sm_20180101.tif", np.ones((3, 3), np.float32), nodata=-9999)
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Canceled"):
        _run(run_alg, tmp_path, [sm], feedback=feedback)


def test_real_esa_cci_days(run_alg, shared_data, tmp_path):
    files = sorted((shared_data / "delaware" / "esa_cci_sm").glob("ESA_CCI_SM_v45_Delaware_2018010[1-3].tif"))
    assert len(files) == 3
    result, html = _run(run_alg, tmp_path, files)
    assert (result["LAYER_COUNT"], result["CRS_COUNT"], result["DATE_COUNT"]) == (3, 1, 3)
    assert "2018-01-01 … 2018-01-03 (3 distinct)" in html
    assert "8 × 10 pixels, 1 band(s)" in html and "0.25 × 0.25 degrees" in html
    # ESA CCI of 2018-01-01 over Delaware: 0.0054…0.2375 m³/m³
    assert "<td>0.00543743</td><td>0.237535</td>" in html
    assert not any(p.with_name(p.name + ".aux.xml").exists() for p in files)


def test_non_file_layer_is_refused_with_a_fix(plugin_package, make_raster):
    from soil_moisture_downscaling.processing_provider.base import raster_source

    path = make_raster("sm.tif", np.ones((2, 2), np.float32))
    layer = QgsRasterLayer(str(path), "sm")
    assert raster_source(layer) == (str(path), 1)

    class WmsLike:
        def isValid(self):
            return True

        def providerType(self):
            return "wms"

        def name(self):
            return "OpenStreetMap"

    with pytest.raises(QgsProcessingException, match=r"Layer 'OpenStreetMap' comes from a 'wms' source.*GeoTIFF"):
        raster_source(WmsLike())
    with pytest.raises(QgsProcessingException, match="missing or cannot be read"):
        raster_source(None, "soil moisture")


def test_a_non_file_layer_is_refused_before_running(run_alg, tmp_path):
    # A virtual raster (raster calculator formula, no file behind it) stands in for WMS/XYZ layers.
    from qgis.core import QgsProject

    layer = QgsRasterLayer(
        "?crs=EPSG:4326&extent=0,0,1,1&width=2&height=2&formula=1", "virtual formula", "virtualraster"
    )
    if not layer.isValid():
        pytest.skip("this QGIS has no virtualraster provider")
    QgsProject.instance().addMapLayer(layer)
    try:
        with pytest.raises(QgsProcessingException, match=r"Layer 'virtual formula' comes from a 'virtualraster' source"):
            _run(run_alg, tmp_path, [layer.id()])
        assert not (tmp_path / "report.html").exists()
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_roles_given_or_guessed_get_the_runs_unit_checks(run_alg, make_raster, tmp_path, feedback):
    # the same raw MODIS NDVI integers, once under the NDVI role and once guessed from its name;
    # an unnamed layer gets no role and no unit check
    raw = np.full((3, 3), 6500, np.int16)
    given = make_raster("greenness.tif", raw, nodata=-3000)
    guessed = make_raster("MOD13A2_NDVI_2018.tif", raw, nodata=-3000)
    plain = make_raster("layer_x.tif", raw, nodata=-3000)
    out = tmp_path / "report.html"
    result = run_alg(ALG, {"INPUTS": [str(guessed), str(plain)], "NDVI": [str(given)], "OUTPUT_HTML": str(out)},
                     feedback=feedback)
    html = out.read_text(encoding="utf-8")
    checks = [w for w in feedback.warnings if "unit check as NDVI" in w]
    assert len(checks) == 2 and all("set its scale factor to 0.0001" in w for w in checks)
    assert any(w.startswith("greenness:") for w in checks) and any(w.startswith("MOD13A2_NDVI_2018:") for w in checks)
    assert result["WARNING_COUNT"] == 2
    assert "NDVI (given; units checked as -1…1)" in html and "NDVI (guessed from the name" in html
    assert "none given or guessed: units not checked" in html
