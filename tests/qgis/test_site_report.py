"""'Site report' through processing.run on a scene small enough to work out by hand.

Grid (EPSG:4326): the coarse product has 2 × 2 cells of 0.5° from (−76, 40); the downscaled
product 4 × 4 pixels of 0.25° on the same corner, so each coarse cell holds 2 × 2 fine pixels.
Three dates, 2018-01-01 … 03. Station S1 sits in fine pixel (0, 0) of coarse cell 0, S2 in
fine pixel (3, 3) of cell 3.

    cell 0 fine pixels (S1 first)   coarse     cells 1, 2: fine 0.2 = coarse 0.2
    d1: 0.22 0.28 0.24 0.26         0.25       cell 3: fine 0.33 everywhere, coarse 0.30
    d2: 0.26 0.24 0.25 0.25         0.25
    d3: 0.33 0.29 0.29 0.29         0.30

In situ: S1 0.20 0.25 0.30, S2 0.30 0.32 0.31.

By hand, S1 downscaled (0.22 0.26 0.33): differences 0.02 0.01 0.03 → bias 0.02,
    RMSE √(0.0014/3) = 0.0216025, ubRMSE √(0.0014/3 − 0.0004) = 0.0081650,
    R = 0.0055 / √(0.005 · 0.0062) = 0.987829;
S1 coarse (0.25 0.25 0.30): differences 0.05 0 0 → bias 0.0166667, RMSE 0.0288675,
    ubRMSE √(0.0025/3 − 0.0166667²) = 0.0235702 → d_ubrmse = −0.0154052 (better);
S2 downscaled (0.33 ×3): differences 0.03 0.01 0.02 → bias 0.02, ubRMSE 0.0081650, R undefined
    (constant product); S2 coarse (0.30 ×3): −0 −0.02 −0.01 → bias −0.01, ubRMSE 0.0081650
    → d_ubrmse = 0.
Diagnostics: every cell keeps the coarse mean except cell 3 (+10 %); CV of cell 0 is
    d1 √0.0005/0.25 = 0.0894427, d2 √0.00005/0.25 = 0.0282843, d3 √0.0003/0.30 = 0.0577350,
    0 elsewhere → |conservation| mean over 12 cell-dates 30/12 = 2.5 %, max 10 %;
    CV mean 0.175462/12 = 0.0146218, max 0.0894427.
"""
from __future__ import annotations

import base64
import csv
from html.parser import HTMLParser

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import (
    QgsFeature,
    QgsGeometry,
    QgsGraduatedSymbolRenderer,
    QgsPointXY,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProject,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QImage

ALG = "site_report"
DATES = ["2018-01-01", "2018-01-02", "2018-01-03"]
CELL0 = [[0.22, 0.28, 0.24, 0.26], [0.26, 0.24, 0.25, 0.25], [0.33, 0.29, 0.29, 0.29]]
COARSE0 = [0.25, 0.25, 0.30]
INSITU = {"S1": [0.20, 0.25, 0.30], "S2": [0.30, 0.32, 0.31]}
GEO = dict(epsg=4326, origin=(-76.0, 40.0))


def _fine(t: int) -> np.ndarray:
    a = np.full((4, 4), 0.2, np.float32)
    a[0, 0], a[0, 1], a[1, 0], a[1, 1] = CELL0[t]
    a[2:, 2:] = 0.33
    return a


@pytest.fixture
def scene(make_raster, tmp_path):
    fine = make_raster("downscaled.tif", np.stack([_fine(t) for t in range(3)]), pixel=(0.25, 0.25),
                       descriptions=DATES, **GEO)
    coarse = []
    for t, d in enumerate(DATES):
        c = np.array([[COARSE0[t], 0.2], [0.2, 0.30]], np.float32)
        coarse.append(str(make_raster(f"esa_{d.replace('-', '')}.tif", c, pixel=(0.5, 0.5), nodata=-9999, **GEO)))
    insitu = tmp_path / "insitu.csv"
    insitu.write_text("date,S1,S2\n" + "".join(f"{d},{INSITU['S1'][t]},{INSITU['S2'][t]}\n"
                                               for t, d in enumerate(DATES)), encoding="utf-8")
    stations = QgsVectorLayer("Point?crs=EPSG:4326&field=station:string&field=name:string&field=land_cover:string",
                              "stations", "memory")
    feats = []
    for sid, name, lc, lon, lat in (("S1", "North", "crop", -75.9, 39.9), ("S2", "South", "forest", -75.1, 39.1)):
        f = QgsFeature(stations.fields())
        f.setAttributes([sid, name, lc])
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(lon, lat)))
        feats.append(f)
    stations.dataProvider().addFeatures(feats)
    return {"fine": str(fine), "coarse": coarse, "insitu": str(insitu), "stations": stations}


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return {(r["station"], r["product"]): r for r in csv.DictReader(f)}


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "table":
            self.tables.append(a.get("id", ""))


def test_metrics_report_styled_stations_and_diagnostics(run_alg, scene, tmp_path, feedback):
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    out = tmp_path / "out"
    out.mkdir()
    result = run_alg(ALG, {
        "PRODUCTS": [scene["fine"]], "COARSE": scene["coarse"], "COARSE_NAME": "ESA CCI",
        "STATIONS": scene["stations"], "INSITU_CSV": scene["insitu"],
        "REPORT": str(out / "report.html"), "SCORES_CSV": str(out / "sites.csv"),
        "SCORES": QgsProcessingOutputLayerDefinition(str(out / "stations.gpkg"), QgsProject.instance()),
        "CONSERVATION": str(out / "conservation.tif"), "HETEROGENEITY": str(out / "heterogeneity.tif"),
    }, feedback=feedback, context=context)

    rows = _rows(result["SCORES_CSV"])
    s1, s1c = rows[("S1", "downscaled")], rows[("S1", "ESA CCI")]
    assert int(s1["n"]) == 3
    assert float(s1["bias"]) == pytest.approx(0.02, abs=1e-6)
    assert float(s1["rmse"]) == pytest.approx(0.0216025, abs=1e-6)
    assert float(s1["ubrmse"]) == pytest.approx(0.0081650, abs=1e-6)
    assert float(s1["r"]) == pytest.approx(0.987829, abs=1e-5)
    assert float(s1c["bias"]) == pytest.approx(0.0166667, abs=1e-6)
    assert float(s1c["rmse"]) == pytest.approx(0.0288675, abs=1e-6)
    assert float(s1c["ubrmse"]) == pytest.approx(0.0235702, abs=1e-6)
    assert s1["land_cover"] == "crop"
    s2, s2c = rows[("S2", "downscaled")], rows[("S2", "ESA CCI")]
    assert float(s2["ubrmse"]) == pytest.approx(0.0081650, abs=1e-6)
    assert s2["r"] == ""  # a constant product has no correlation
    assert float(s2c["bias"]) == pytest.approx(-0.01, abs=1e-6)

    # station layer: the ubRMSE change, styled once Processing loads it
    layer = QgsVectorLayer(result["SCORES"], "scores", "ogr")
    d = {f["station"]: f["d_ubrmse"] for f in layer.getFeatures()}
    assert d["S1"] == pytest.approx(-0.0154052, abs=1e-6)
    assert d["S2"] == pytest.approx(0.0, abs=1e-6)
    details = context.layerToLoadOnCompletionDetails(result["SCORES"])
    details.postProcessor().postProcessLayer(layer, context, feedback)
    renderer = layer.renderer()
    assert isinstance(renderer, QgsGraduatedSymbolRenderer) and renderer.classAttribute() == "d_ubrmse"
    colour = {r.label(): r.symbol().color().name() for r in renderer.ranges()}
    assert [r.lowerValue() for r in renderer.ranges()] == [-1.0, -0.02, -0.005, 0.005, 0.02]
    s1_range = next(r for r in renderer.ranges() if r.lowerValue() < d["S1"] <= r.upperValue())
    assert colour[s1_range.label()] == "#a6d96a"  # light green: better by 0.005–0.02

    # diagnostics rasters on the coarse grid, one band per date
    cons = gdal.Open(result["CONSERVATION"])
    assert cons.RasterXSize == 2 and cons.RasterYSize == 2 and cons.RasterCount == 3
    assert [cons.GetRasterBand(b).GetDescription() for b in (1, 2, 3)] == DATES
    for b in (1, 2, 3):
        np.testing.assert_allclose(cons.GetRasterBand(b).ReadAsArray(), [[0, 0], [0, 10]], atol=1e-3)
    cv = gdal.Open(result["HETEROGENEITY"])
    for b, v in zip((1, 2, 3), (0.0894427, 0.0282843, 0.0577350)):
        np.testing.assert_allclose(cv.GetRasterBand(b).ReadAsArray(), [[v, 0], [0, 0]], atol=1e-5)
    assert result["DIAGNOSTIC_RASTERS"] == [result["CONSERVATION"], result["HETEROGENEITY"]]
    assert (out / "conservation.qml").exists() and (out / "heterogeneity.qml").exists()

    # the report: valid HTML with decodable figures and the diagnostics summary
    html = (out / "report.html").read_text(encoding="utf-8")
    parser = _Images()
    parser.feed(html)
    assert len(parser.images) >= 4
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert not QImage.fromData(base64.b64decode(src.split(",", 1)[1]), "PNG").isNull()
    assert {"summary", "diagnostics", "sites"} <= set(parser.tables)
    diag_row = html.split('<table id="diagnostics">', 1)[1].split("</table>", 1)[0]
    cells = [c.split("<", 1)[0] for c in diag_row.split("<td>")[1:]]
    assert cells[:4] == ["2.50", "0.00", "10.00", "12"]  # |conservation| mean, median, max, cell-dates
    assert cells[4:6] == ["0.015", "0.000"]  # CV mean 0.0146, median 0
    assert "By land_cover" in html
    assert any("'downscaled': 3 dates on 2×2 coarse cells" in m for m in feedback.infos)
    assert not [p.name for p in out.iterdir() if ".part" in p.name]


def test_single_date_files_csv_stations_and_two_products(run_alg, scene, make_raster, tmp_path):
    files = [str(make_raster(f"ds_{d.replace('-', '')}.tif", _fine(t), pixel=(0.25, 0.25), **GEO))
             for t, d in enumerate(DATES)]
    stations_csv = tmp_path / "stations.csv"
    stations_csv.write_text("id,lat,lon\nS1,39.9,-75.9\nS2,39.1,-75.1\n", encoding="utf-8")
    result = run_alg(ALG, {
        "PRODUCTS": [scene["fine"]] + files, "COARSE": scene["coarse"],
        "STATIONS_CSV": str(stations_csv), "INSITU_CSV": scene["insitu"],
        "REPORT": str(tmp_path / "r.html"), "CONSERVATION": str(tmp_path / "cons.tif"),
        "SCORES": str(tmp_path / "st.gpkg"),
    })
    # no SCORES_CSV given: the per-site table lands beside the report
    assert result["SCORES_CSV"] == str(tmp_path / "r_sites.csv")
    rows = _rows(result["SCORES_CSV"])
    assert {p for _, p in rows} == {"downscaled", "ds", "coarse"}
    for key in ("bias", "ubrmse", "r"):  # the same numbers, whichever layout
        assert rows[("S1", "ds")][key] == rows[("S1", "downscaled")][key]
    assert result["DIAGNOSTIC_RASTERS"] == [str(tmp_path / "cons.tif"), str(tmp_path / "cons_ds.tif")]
    second = gdal.Open(str(tmp_path / "cons_ds.tif"))  # keep the dataset alive while its band is read
    np.testing.assert_allclose(second.GetRasterBand(2).ReadAsArray(), [[0, 0], [0, 10]], atol=1e-3)
    fields = QgsVectorLayer(result["SCORES"], "s", "ogr").fields().names()
    assert "d_ubrmse_downscaled" in fields and "d_ubrmse_ds" in fields


def test_a_product_outside_the_coarse_period_is_explained(run_alg, scene, make_raster, tmp_path):
    other = make_raster("later.tif", _fine(0)[None], pixel=(0.25, 0.25), descriptions=["2019-06-01"], **GEO)
    with pytest.raises(QgsProcessingException, match="is a date of the coarse product"):
        run_alg(ALG, {"PRODUCTS": [str(other)], "COARSE": scene["coarse"], "STATIONS": scene["stations"],
                      "INSITU_CSV": scene["insitu"], "REPORT": str(tmp_path / "x.html")})
    assert not (tmp_path / "x.html").exists()


def test_missing_stations_are_refused_before_running(run_alg, scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="No stations were given"):
        run_alg(ALG, {"PRODUCTS": [scene["fine"]], "COARSE": scene["coarse"], "INSITU_CSV": scene["insitu"],
                      "REPORT": str(tmp_path / "x.html")})
