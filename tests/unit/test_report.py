"""The HTML/CSV site report: numbers checked against hand-computed ones, HTML and images valid.

Four stations, two products ("Coarse" = the coarse input, "Fine" = downscaled), per-site
metrics set by hand:

    station  land_cover texture elev  ubRMSE coarse/fine   R coarse/fine
    A        crop       loam    10    0.04 / 0.030         0.5 / 0.6
    B        crop       sand    20    0.06 / 0.062         0.6 / 0.5
    C        forest     loam    30    0.05 / 0.040         0.7 / 0.8
    D        forest     loam    40    0.08 / 0.050         0.4 / 0.5

Worked out by hand:
    Coarse ubRMSE mean (0.04+0.06+0.05+0.08)/4 = 0.0575, median (0.05+0.06)/2 = 0.055
    Fine   ubRMSE mean 0.182/4 = 0.0455, median (0.04+0.05)/2 = 0.045
    Coarse R mean 0.55, median 0.55; Fine R mean 0.6, median 0.55
    Fine − Coarse ubRMSE: −0.01, +0.002, −0.01, −0.03 -> 3 lower, 1 higher, median −0.01
    Fine − Coarse R: +0.1, −0.1, +0.1, +0.1 -> 3 higher, 1 lower, median +0.1
    crop (A, B): Coarse ubRMSE mean 0.05, Fine 0.046 -> Fine preferred
    forest (C, D): Coarse ubRMSE median 0.065, Fine 0.045 -> Fine preferred
    elevation is numeric and differs at every station: not a class.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import os
from html.parser import HTMLParser

import matplotlib.image
import numpy as np
import pytest

from core.evaluation.diagnostics import summary
from core.evaluation.report import class_attributes, head_to_head, write_report
from core.evaluation.stations import INSITU, Station, build_series, score_products

STATIONS = [
    Station("A", 39.0, -75.0, "Alpha", {"land_cover": "crop", "texture": "loam", "elev_m": "10"}),
    Station("B", 39.5, -75.5, "Wolf's <Hollow>", {"land_cover": "crop", "texture": "sand", "elev_m": "20"}),
    Station("C", 38.5, -75.2, "Gamma", {"land_cover": "forest", "texture": "loam", "elev_m": "30"}),
    Station("D", 39.2, -75.8, "Delta", {"land_cover": "forest", "texture": "loam", "elev_m": "40"}),
]
UB = {"Coarse": (0.04, 0.06, 0.05, 0.08), "Fine": (0.03, 0.062, 0.04, 0.05)}
R = {"Coarse": (0.5, 0.6, 0.7, 0.4), "Fine": (0.6, 0.5, 0.8, 0.5)}
D0 = dt.date(2018, 1, 1)


def _rows():
    rows = []
    for k, st in enumerate(STATIONS):
        for p in ("Coarse", "Fine"):
            rows.append({"station": st.id, "name": st.name, "lat": st.lat, "lon": st.lon, **st.attrs,
                         "product": p, "n": 10.0, "r": R[p][k], "ubrmse": UB[p][k], "bias": 0.01 * (k + 1),
                         "rmse": 0.1, "mae": 0.05, "slope": 1.0, "anomaly_r": 0.3})
    return rows


def _series():
    days = [D0 + dt.timedelta(days=i) for i in range(10)]
    out = {}
    for k, st in enumerate(STATIONS):
        obs = 0.2 + 0.01 * np.arange(10) + 0.02 * k
        out[st.id] = {INSITU: (days, obs), "Coarse": (days, obs * 0.8 + 0.05), "Fine": (days, obs + 0.01)}
    return out


class _Doc(HTMLParser):
    """Tables by id (rows of cell texts) and image sources."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.imgs: list[str] = []
        self.text: list[str] = []
        self._table = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id", f"t{len(self.tables)}"), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "img":
            self.imgs.append(a["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _parse(path) -> _Doc:
    doc = _Doc()
    with open(path, encoding="utf-8") as f:
        doc.feed(f.read())
    doc.close()
    return doc


def _row(table, *first_cells):
    for row in table:
        if row[: len(first_cells)] == list(first_cells):
            return row
    raise AssertionError(f"no row starting with {first_cells} in {table}")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    # One report for the tests that only read it (figures take a moment to draw).
    tmp_path = tmp_path_factory.mktemp("report")
    html_path, csv_path = tmp_path / "report.html", tmp_path / "sites.csv"
    diag = {"Fine": summary(np.array([20.0, -10.0, np.nan]), np.array([0.3, 0.1]))}
    write_report(str(html_path), str(csv_path), _rows(), _series(), STATIONS, diagnostics=diag,
                 title="Delaware test", coarse_product="Coarse")
    return tmp_path, _parse(html_path), html_path.read_text(encoding="utf-8")


def test_only_the_two_outputs_are_left(report):
    folder, _, _ = report
    assert sorted(os.listdir(folder)) == ["report.html", "sites.csv"]


def test_summary_table_by_hand(report):
    _, doc, _ = report
    t = doc.tables["summary"]
    # columns: Product, Sites, Pairs median, then mean/median of r, ubrmse, bias, rmse, mae, slope, anomaly_r
    coarse = _row(t, "Coarse (coarse)")
    fine = _row(t, "Fine")
    assert coarse[1:7] == ["4", "10", "0.550", "0.550", "0.0575", "0.0550"]
    assert fine[1:7] == ["4", "10", "0.600", "0.550", "0.0455", "0.0450"]
    # bias 0.01, 0.02, 0.03, 0.04 -> mean 0.025, median 0.025
    assert fine[7:9] == ["0.0250", "0.0250"]


def test_head_to_head_by_hand(report):
    _, doc, html_text = report
    row = _row(doc.tables["head-to-head"], "Fine")
    assert row == ["Fine", "4", "3", "1", "-0.0100", "4", "3", "1", "+0.100"]
    assert "lower ubRMSE than Coarse at 3 of 4 sites and a higher R at 3 of 4 sites" in html_text
    h = head_to_head(_rows(), "Fine", "Coarse")
    assert (h["ubrmse_better"], h["ubrmse_worse"], h["r_better"], h["r_worse"]) == (3, 1, 3, 1)
    assert h["median_delta_ubrmse"] == pytest.approx(-0.01) and h["median_delta_r"] == pytest.approx(0.1)


def test_class_tables_domain_preference(report):
    _, doc, _ = report
    assert "class-land-cover" in doc.tables and "class-texture" in doc.tables
    assert "class-elev-m" not in doc.tables
    t = doc.tables["class-land-cover"]
    crop_coarse = _row(t, "crop", "Coarse (coarse)")
    crop_fine = _row(t, "crop", "Fine")
    # crop: Coarse ubRMSE 0.04, 0.06 -> 0.0500 ; Fine 0.03, 0.062 -> 0.0460 ; R Fine 0.6, 0.5 -> 0.550
    assert crop_coarse[2:8] == ["2", "10", "0.550", "0.550", "0.0500", "0.0500"]
    assert crop_fine[2:8] == ["2", "10", "0.550", "0.550", "0.0460", "0.0460"]
    assert crop_fine[-1] == "★" and crop_coarse[-1] == ""
    forest_fine = _row(t, "forest", "Fine")
    assert forest_fine[6:8] == ["0.0450", "0.0450"] and forest_fine[-1] == "★"
    sand = _row(doc.tables["class-texture"], "sand", "Fine")
    assert sand[2] == "1" and sand[6] == "0.0620"


def test_diagnostics_table(report):
    _, doc, _ = report
    # |conservation| 20, 10 -> mean 15, median 15, max 20 ; CV 0.3, 0.1 -> 0.2, 0.2, 0.3
    assert _row(doc.tables["diagnostics"], "Fine") == ["Fine", "15.00", "15.00", "20.00", "2",
                                                       "0.200", "0.200", "0.300", "2"]


def test_sites_table_and_escaping(report):
    _, doc, html_text = report
    t = doc.tables["sites"]
    assert _row(t, "B", "Wolf's <Hollow>", "Fine")[3:6] == ["10", "0.500", "0.0620"]
    assert "<Hollow>" not in html_text and "Wolf&#x27;s &lt;Hollow&gt;" in html_text


def test_definitions_are_stated(report):
    _, doc, _ = report
    text = " ".join(doc.text)
    assert "ubRMSE = √(RMSE² − bias²)" in text
    assert "bias = mean(product − in-situ)" in text


def test_every_image_is_a_decodable_png(report):
    _, doc, _ = report
    # boxplots + hexbins + one map + four site time series
    assert len(doc.imgs) == 7
    for src in doc.imgs:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        img = matplotlib.image.imread(io.BytesIO(data), format="png")
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def test_csv_matches_rows(report):
    folder, _, _ = report
    with open(folder / "sites.csv", newline="", encoding="utf-8") as f:
        back = list(csv.DictReader(f))
    assert len(back) == 8
    b_fine = next(r for r in back if r["station"] == "B" and r["product"] == "Fine")
    assert b_fine["ubrmse"] == "0.062" and b_fine["land_cover"] == "crop" and b_fine["name"] == "Wolf's <Hollow>"


def test_without_coarse_or_classes(tmp_path):
    html_path = tmp_path / "r.html"
    write_report(str(html_path), str(tmp_path / "r.csv"), _rows(), _series(), STATIONS, max_classes=1,
                 max_site_plots=2)
    doc = _parse(html_path)
    text = " ".join(doc.text)
    assert "head-to-head" not in doc.tables and not any(k.startswith("class-") for k in doc.tables)
    assert "No coarse product was named" in text and "not grouped by domain" in text
    assert "Showing the first 2 of 4 sites" in text
    assert len(doc.imgs) == 2 + 2  # boxplots, hexbins, two site plots; no map


def test_end_to_end_from_scores(tmp_path):
    # Fine = in-situ + 0.01 exactly -> bias 0.0100, ubRMSE 0.0000, R 1.000, slope 1.000 at each site.
    # Coarse = 0.5·in-situ + 0.1 -> slope 0.500, R 1.000.
    days = [D0 + dt.timedelta(days=i) for i in range(20)]
    obs = {s.id: 0.2 + 0.1 * np.sin(np.arange(20) / 3.0 + k) for k, s in enumerate(STATIONS)}
    obs["A"][5] = np.nan
    fine = np.stack([obs[s.id] + 0.01 for s in STATIONS], axis=1)
    coarse = np.stack([0.5 * obs[s.id] + 0.1 for s in STATIONS], axis=1)
    products = {"Coarse": (days, coarse), "Fine": (days, fine)}
    rows = score_products(STATIONS, days, obs, products)
    series = build_series(STATIONS, days, obs, products)
    write_report(str(tmp_path / "r.html"), str(tmp_path / "r.csv"), rows, series, STATIONS,
                 coarse_product="Coarse")
    doc = _parse(tmp_path / "r.html")
    fine_row = _row(doc.tables["summary"], "Fine")
    # Sites, pairs (A has 19, others 20 -> median 20), R mean/median, ubRMSE mean/median, bias mean/median
    assert fine_row[1:9] == ["4", "20", "1.000", "1.000", "0.0000", "0.0000", "0.0100", "0.0100"]
    coarse_row = _row(doc.tables["summary"], "Coarse (coarse)")
    assert coarse_row[13:15] == ["0.500", "0.500"]  # slope mean, median
    assert _row(doc.tables["head-to-head"], "Fine")[1:4] == ["4", "4", "0"]


def test_class_attributes_rule():
    st = [Station(str(i), 0, 0, attrs={"lc": "crop" if i % 2 else "forest", "elev": str(i), "one": "x",
                                       "code": str(i % 3), "id13": f"c{i}"}) for i in range(13)]
    # lc: 2 classes; code: numeric but repeated (3 classes); one: a single class;
    # elev: numeric, all distinct; id13: 13 distinct > 12
    assert class_attributes(st) == ["lc", "code"]
    assert class_attributes(st, max_classes=13) == ["lc", "code", "id13"]


def test_degenerate_inputs_still_give_a_report(tmp_path):
    # No rows at all, then a site without any pair: the report says so instead of failing.
    write_report(str(tmp_path / "e.html"), str(tmp_path / "e.csv"), [], {}, [])
    assert _parse(tmp_path / "e.html").tables["summary"][2:] == []
    rows = [{"station": "A", "product": p, "n": 0.0, "r": np.nan, "ubrmse": np.nan} for p in ("P", "Q")]
    series = {"A": {INSITU: ([D0], np.array([np.nan])), "P": ([D0], np.array([0.2]))}}
    write_report(str(tmp_path / "n.html"), str(tmp_path / "n.csv"), rows, series, STATIONS[:1],
                 coarse_product="P")
    doc = _parse(tmp_path / "n.html")
    assert _row(doc.tables["summary"], "Q")[1:5] == ["0", "0", "–", "–"]
    assert _row(doc.tables["head-to-head"], "Q")[1:4] == ["0", "0", "0"]


def test_drought_panel_shows_the_driest_date_or_why_there_is_none(tmp_path):
    import datetime as dt
    html_path = tmp_path / "r.html"
    dates = [dt.date(2019, 7, 1), dt.date(2020, 7, 1), dt.date(2021, 7, 1)]
    drought = {"Fine": {"dates": dates, "shares": [0.1, 0.42, 0.05], "period_days": 10},
               "Coarse": {"note": "the product spans 1 year(s)"}}
    write_report(str(html_path), str(tmp_path / "s.csv"), _rows(), _series(), STATIONS, title="t",
                 coarse_product="Coarse", drought=drought)
    text = html_path.read_text(encoding="utf-8")
    assert "<h2>7. Drought anomaly</h2>" in text and "spans 1 year(s)" in text
    assert "2020-07-01 (42%)" in text
