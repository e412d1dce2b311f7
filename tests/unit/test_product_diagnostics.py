"""Diagnostics streamed from a downscaled product file against coarse files, values by hand.

Fine product: 4 rows × 5 columns of 1 km (UTM 18N, corner 500 km E, 4400 km N), two dated
bands. Coarse product: 3 × 3 cells of 2 km with its corner one cell up and left (498 km E,
4402 km N), one file per date, nodata −9999. The product covers coarse cells (row 1–2,
col 1–2) only, so the diagnostics grid is those 2 × 2 cells; the fifth fine column lies
right of the coarse grid (value 9, must be ignored); the 0.9 cells must be cut away.

    date 1 fine                    coarse (cut)       date 2 fine          coarse (cut)
    0.2 0.4 | 0.1 0.1 | 9          0.25  0.10         0.2 0.2 | 0.2 0.2    0.2  0.25
    0.2 0.4 | 0.1 0.1 | 9          0.40  nodata       0.2 0.2 | 0.2 0.2    0.2  0.2
    0.3 NaN | 0.5 0.5 | 9                             0.2 0.2 | 0.1 0.3
    0.3 0.3 | 0.5 0.5 | 9                             0.2 0.2 | 0.1 0.3

By hand (cells in row order):
    date 1: means 0.3, 0.1, 0.3 (3 of 4 valid), 0.5; std 0.1, 0, 0, 0
            conservation +20 %, 0 %, −25 %, NaN (coarse nodata); CV 1/3, 0, 0, 0
    date 2: means 0.2, 0.2, 0.2, 0.2; std 0, 0, 0, 0.1
            conservation 0 %, (0.2 − 0.25)/0.25 = −20 %, 0 %, 0 %; CV 0, 0, 0, 0.5
    summary |conservation| over the 7 defined cell-dates {20, 0, 25, 0, 20, 0, 0}:
            mean 65/7 = 9.285714, median 0, max 25
    summary |CV| over 8 cell-dates {1/3, 0, 0, 0, 0, 0, 0, 0.5}: mean (5/6)/8 = 0.1041667, max 0.5
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from osgeo import gdal

from core.raster.align import BandRef
from core.errors import Canceled, InputError
from core.evaluation.product_diagnostics import diagnose_product, write_diagnostic_rasters

D1, D2 = dt.date(2018, 1, 1), dt.date(2018, 1, 2)
N = np.nan
FINE_1 = [[0.2, 0.4, 0.1, 0.1, 9], [0.2, 0.4, 0.1, 0.1, 9], [0.3, N, 0.5, 0.5, 9], [0.3, 0.3, 0.5, 0.5, 9]]
FINE_2 = [[0.2, 0.2, 0.2, 0.2, 9], [0.2, 0.2, 0.2, 0.2, 9], [0.2, 0.2, 0.1, 0.3, 9], [0.2, 0.2, 0.1, 0.3, 9]]
COARSE_1 = [[0.9, 0.9, 0.9], [0.9, 0.25, 0.10], [0.9, 0.40, -9999]]
COARSE_2 = [[0.9, 0.9, 0.9], [0.9, 0.2, 0.25], [0.9, 0.2, 0.2]]
CONS = [[20.0, 0.0, -25.0, N], [0.0, -20.0, 0.0, 0.0]]
CV = [[1 / 3, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5]]


@pytest.fixture
def scene(make_raster):
    fine = make_raster("downscaled.tif", np.array([FINE_1, FINE_2], dtype=np.float32),
                       descriptions=[D1.isoformat(), D2.isoformat()])
    c1 = make_raster("coarse_20180101.tif", np.array(COARSE_1, dtype=np.float32), origin=(498000.0, 4402000.0),
                     pixel=(2000.0, 2000.0), nodata=-9999)
    c2 = make_raster("coarse_20180102.tif", np.array(COARSE_2, dtype=np.float32), origin=(498000.0, 4402000.0),
                     pixel=(2000.0, 2000.0), nodata=-9999)
    fine_refs = [BandRef(str(fine), 1, "downscaled", D1), BandRef(str(fine), 2, "downscaled", D2)]
    coarse_refs = [BandRef(str(c1), 1, "coarse", D1), BandRef(str(c2), 1, "coarse", D2)]
    return fine_refs, coarse_refs


def _check(d):
    assert d.dates == [D1, D2]
    assert (d.grid.x0, d.grid.y0, d.grid.dx, d.grid.dy, d.grid.width, d.grid.height) == \
        (500000.0, 4400000.0, 2000.0, 2000.0, 2, 2)
    np.testing.assert_allclose(d.conservation.reshape(2, 4), CONS, atol=1e-4)
    # std comes from sqrt(E[x²] − E[x]²): a constant cell gives ~1e-9, not exactly 0
    np.testing.assert_allclose(d.heterogeneity.reshape(2, 4), CV, atol=1e-5)
    np.testing.assert_allclose(d.coverage.reshape(2, 4), [[1, 1, 0.75, 1], [1, 1, 1, 1]])
    s = d.summary()
    assert s["conservation_percent"]["n_cells"] == 7
    assert s["conservation_percent"]["mean_abs"] == pytest.approx(65 / 7, abs=1e-3)
    assert s["conservation_percent"]["median_abs"] == pytest.approx(0.0, abs=1e-3)
    assert s["conservation_percent"]["max_abs"] == pytest.approx(25.0, abs=1e-3)
    assert s["heterogeneity_cv"]["n_cells"] == 8
    assert s["heterogeneity_cv"]["mean_abs"] == pytest.approx((1 / 3 + 0.5) / 8, abs=1e-5)
    assert s["heterogeneity_cv"]["max_abs"] == pytest.approx(0.5, abs=1e-5)


def test_hand_computed_cells_and_summary(scene):
    _check(diagnose_product(*scene))


def test_row_by_row_blocks_give_the_same_result(scene):
    messages = []
    d = diagnose_product(*scene, block_pixels=5, progress=lambda f, m: messages.append(f))
    _check(d)
    assert len(messages) == 4 and messages[-1] == 1.0  # one block per fine row


def test_single_date_files_equal_one_multiband_file(make_raster, scene):
    _, coarse_refs = scene
    f1 = make_raster("ds_20180101.tif", np.array(FINE_1, dtype=np.float32))
    f2 = make_raster("ds_20180102.tif", np.array(FINE_2, dtype=np.float32))
    _check(diagnose_product([BandRef(str(f2), 1, "ds", D2), BandRef(str(f1), 1, "ds", D1)], coarse_refs))


def test_min_coverage_blanks_partly_empty_cells(scene):
    d = diagnose_product(*scene, min_coverage=0.8)
    assert np.isnan(d.conservation[0].ravel()[2]) and np.isnan(d.heterogeneity[0].ravel()[2])
    assert d.conservation[0].ravel()[0] == pytest.approx(20.0, abs=1e-4)


def test_product_dates_without_a_coarse_date_are_skipped(scene):
    fine_refs, coarse_refs = scene
    d = diagnose_product(fine_refs, coarse_refs[:1])
    assert d.dates == [D1] and d.skipped == [D2]
    np.testing.assert_allclose(d.conservation.reshape(1, 4), CONS[:1], atol=1e-4)
    with pytest.raises(InputError, match="is a date of the coarse product"):
        diagnose_product(fine_refs[1:], coarse_refs[:1])


def test_coarse_product_in_another_crs_is_warped(make_raster):
    """Constant fields make the answer independent of the warp: 0.22 over 0.2 is +10 %, CV 0."""
    fine = make_raster("fine.tif", np.full((20, 20), 0.22, np.float32), origin=(490000.0, 4410000.0))
    coarse = make_raster("esa_20180101.tif", np.full((4, 4), 0.2, np.float32), origin=(-75.5, 40.25),
                         pixel=(0.25, 0.25), epsg=4326)
    d = diagnose_product([BandRef(str(fine), 1, "fine", D1)], [BandRef(str(coarse), 1, "esa", D1)])
    assert "UTM zone 18N" in d.grid.crs_wkt
    ok = np.isfinite(d.conservation)
    assert ok.sum() >= 2
    np.testing.assert_allclose(d.conservation[ok], 10.0, atol=1e-3)
    np.testing.assert_allclose(d.heterogeneity[ok], 0.0, atol=1e-5)


def test_rasters_written_on_the_coarse_grid(scene, tmp_path):
    d = diagnose_product(*scene)
    paths = write_diagnostic_rasters(d, str(tmp_path / "cons.tif"), str(tmp_path / "cv.tif"))
    assert paths == [str(tmp_path / "cons.tif"), str(tmp_path / "cv.tif")]
    ds = gdal.Open(paths[0])
    assert ds.GetGeoTransform() == (500000.0, 2000.0, 0.0, 4400000.0, 0.0, -2000.0)
    assert [ds.GetRasterBand(b).GetDescription() for b in (1, 2)] == ["2018-01-01", "2018-01-02"]
    np.testing.assert_allclose(ds.GetRasterBand(1).ReadAsArray().ravel(), CONS[0], atol=1e-4)
    ds = gdal.Open(paths[1])
    np.testing.assert_allclose(ds.GetRasterBand(2).ReadAsArray().ravel(), CV[1], atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_grids_that_differ_within_a_product_are_refused(make_raster, scene):
    _, coarse_refs = scene
    f1 = make_raster("a_20180101.tif", np.array(FINE_1, dtype=np.float32))
    f2 = make_raster("b_20180102.tif", np.array(FINE_2, dtype=np.float32), origin=(501000.0, 4400000.0))
    with pytest.raises(InputError, match="grid differs"):
        diagnose_product([BandRef(str(f1), 1, "a", D1), BandRef(str(f2), 1, "b", D2)], coarse_refs)


def test_no_overlap_and_missing_dates_are_input_errors(make_raster, scene):
    fine_refs, _ = scene
    far = make_raster("far_20180101.tif", np.full((2, 2), 0.2, np.float32), origin=(600000.0, 4400000.0),
                      pixel=(2000.0, 2000.0))
    with pytest.raises(InputError, match="does not overlap"):
        diagnose_product(fine_refs, [BandRef(str(far), 1, "far", D1)])
    with pytest.raises(InputError, match="has no date"):
        diagnose_product([BandRef(fine_refs[0].path, 1, "downscaled", None)], [BandRef(str(far), 1, "far", D1)])


def test_cancel_stops_before_reading(scene):
    with pytest.raises(Canceled):
        diagnose_product(*scene, is_canceled=lambda: True)
