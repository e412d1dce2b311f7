"""Target grid, cell mapping and resampling on small grids whose answers are worked out by hand."""
import numpy as np
import pytest

from core.raster.align import AlignedBand, BandRef, choose_resampling, read_full
from core.errors import InputError
from core.raster.grid import Grid, Window, bilinear_from_cells, cell_index, crs_to_wkt, snap_grid

UTM = crs_to_wkt("EPSG:32618")


def test_snap_grid_nests_fine_pixels_in_coarse_cells():
    g = snap_grid((1003.0, 0.0, 2000.0, 997.0), UTM, 100.0, 100.0, anchor=(0.0, 1000.0))
    # inward snap on the anchor's lines: x 1100..2000, y 0..900
    assert (g.x0, g.y0, g.width, g.height) == (1100.0, 900.0, 9, 9)


def test_snap_grid_without_a_whole_pixel_is_an_input_error():
    with pytest.raises(InputError):
        snap_grid((0.0, 0.0, 50.0, 50.0), UTM, 100.0, 100.0)


def test_cell_index_maps_each_fine_pixel_to_its_coarse_cell():
    coarse = Grid(UTM, 0.0, 20.0, 10.0, 10.0, 2, 2)
    fine = Grid(UTM, 0.0, 20.0, 5.0, 5.0, 4, 4)
    idx = cell_index(fine, coarse)
    assert idx.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    part = cell_index(fine, coarse, Window(3, 1))
    assert part.tolist() == [[2, 2, 3, 3]]


def test_cell_index_marks_pixels_outside_the_coarse_grid():
    coarse = Grid(UTM, 0.0, 10.0, 10.0, 10.0, 1, 1)
    fine = Grid(UTM, 5.0, 10.0, 5.0, 5.0, 2, 1)
    assert cell_index(fine, coarse).tolist() == [[0, -1]]


def test_bilinear_from_cells_interpolates_between_cell_centres():
    coarse = Grid(UTM, 0.0, 10.0, 10.0, 10.0, 2, 1)  # centres at x=5 and x=15
    fine = Grid(UTM, 0.0, 10.0, 2.5, 10.0, 8, 1)      # centres 1.25, 3.75, ..., 18.75
    out = bilinear_from_cells(np.array([[0.0, 1.0]]), fine, coarse, Window(0, 1))
    # edge values held outside the centres; linear in between: (x − 5)/10
    assert np.allclose(out[0], [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1])


def test_bilinear_from_cells_skips_nan_cells():
    coarse = Grid(UTM, 0.0, 10.0, 10.0, 10.0, 2, 1)
    fine = Grid(UTM, 0.0, 10.0, 5.0, 10.0, 4, 1)
    out = bilinear_from_cells(np.array([[np.nan, 2.0]]), fine, coarse, Window(0, 1))[0]
    # the first pixel's weights fall on the NaN cell only; the others renormalise onto the valid cell
    assert np.isnan(out[0])
    assert np.allclose(out[1:], 2.0)


def test_bilinear_from_cells_without_nan_cells_gives_the_masked_sums_bit_for_bit():
    """Windows whose cells are all finite skip the NaN masks: the same float64 sums, so the same bits as with
    them (the NaN cell below sends the other windows through the masked sums)."""
    rng = np.random.default_rng(4)
    coarse = Grid(UTM, 0.0, 400.0, 40.0, 40.0, 10, 10)
    fine = Grid(UTM, 0.0, 400.0, 3.0, 3.0, 133, 133)
    v = rng.random((10, 10))
    v[9, 9] = np.nan
    for w in (Window(0, 40), Window(40, 50), Window(100, 33)):
        got = bilinear_from_cells(v, fine, coarse, w)
        xs, ys = fine.centers(w)
        fx = np.clip(xs / 40.0 - 0.5, 0, 9)
        fy = np.clip((400.0 - ys) / 40.0 - 0.5, 0, 9)
        x0, y0 = np.minimum(np.floor(fx).astype(int), 8), np.minimum(np.floor(fy).astype(int), 8)
        tx, ty = (fx - x0)[None, :], (fy - y0)[:, None]
        acc, wsum = np.zeros(got.shape), np.zeros(got.shape)
        for yy, wy in ((y0, 1 - ty), (y0 + 1, ty)):
            for xx, wx in ((x0, 1 - tx), (x0 + 1, tx)):
                q = v[yy[:, None], xx[None, :]]
                acc += np.where(np.isfinite(q), q, 0.0) * (wy * wx)
                wsum += np.where(np.isfinite(q), wy * wx, 0.0)
        assert got.tobytes() == np.where(wsum > 1e-12, acc / np.where(wsum > 0, wsum, 1), np.nan).astype(
            np.float32).tobytes()
    # the last window reads the NaN cell (its corner pixels have no value), the first does not
    assert np.isnan(got).any() and np.isfinite(bilinear_from_cells(v, fine, coarse, Window(0, 40))).all()


def test_average_when_coarsening_and_bilinear_when_refining(make_raster):
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    src = make_raster("fine.tif", a, origin=(0.0, 40.0), pixel=(10.0, 10.0))
    coarse = Grid(UTM, 0.0, 40.0, 20.0, 20.0, 2, 2)
    ab = AlignedBand(BandRef(str(src)), coarse)
    assert ab.resampling == "average"
    assert np.allclose(ab.read(), [[2.5, 4.5], [10.5, 12.5]])
    fine = Grid(UTM, 0.0, 40.0, 5.0, 5.0, 8, 8)
    ab2 = AlignedBand(BandRef(str(src)), fine)
    assert ab2.resampling == "bilinear"
    got = ab2.read()
    # fine pixel (2, 2) is centred at (12.5, 27.5): 0.75 of the way from source centre (5, 35)
    # to (15, 25) on both axes → 0.0625·a00 + 0.1875·a01 + 0.1875·a10 + 0.5625·a11
    # = 0.0625·0 + 0.1875·1 + 0.1875·4 + 0.5625·5 = 3.75
    assert got[2, 2] == pytest.approx(3.75, abs=1e-5)


def test_categorical_layers_take_the_mode_or_nearest(make_raster):
    lc = np.array([[1, 1, 2, 3], [1, 5, 3, 3], [7, 7, 9, 9], [7, 8, 9, 4]], dtype=np.uint8)
    src = make_raster("lc.tif", lc, origin=(0.0, 40.0), pixel=(10.0, 10.0))
    coarse = Grid(UTM, 0.0, 40.0, 20.0, 20.0, 2, 2)
    ab = AlignedBand(BandRef(str(src)), coarse, categorical=True)
    assert ab.resampling == "mode"
    assert ab.read().tolist() == [[1, 3], [7, 9]]
    fine = Grid(UTM, 0.0, 40.0, 5.0, 5.0, 8, 8)
    ab2 = AlignedBand(BandRef(str(src)), fine, categorical=True)
    assert ab2.resampling == "near"
    assert set(np.unique(ab2.read())) <= set(np.unique(lc).astype(float))


def test_reprojection_places_values_where_they_belong(make_raster):
    # a UTM raster read on a WGS84 grid: the pixel around a known point keeps its value
    a = np.zeros((20, 20), dtype=np.float32)
    a[10, 10] = 1.0  # UTM 18N cell centred at (510500, 4389500)
    src = make_raster("utm.tif", a, origin=(500000.0, 4400000.0), pixel=(1000.0, 1000.0))
    from osgeo import osr
    s = osr.SpatialReference(); s.ImportFromEPSG(32618); s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    w = osr.SpatialReference(); w.ImportFromEPSG(4326); w.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon, lat, _ = osr.CoordinateTransformation(s, w).TransformPoint(510500.0, 4389500.0)
    g = Grid(crs_to_wkt("EPSG:4326"), lon - 0.05, lat + 0.05, 0.002, 0.002, 50, 50)
    got = AlignedBand(BandRef(str(src)), g, resampling="near").read()
    assert got[25, 25] == 1.0
    assert got[5, 5] == 0.0


def test_scale_offset_and_nodata_are_honoured(make_raster):
    raw = np.array([[100, 200], [-1, 400]], dtype=np.int16)
    src = make_raster("ndvi.tif", raw, nodata=-1, scale=0.001, offset=0.1)
    vals, _ = read_full(BandRef(str(src)))
    assert np.allclose(vals[0], [0.2, 0.3])
    assert np.isnan(vals[1, 0]) and vals[1, 1] == pytest.approx(0.5)
    grid = Grid(UTM, 500000.0, 4400000.0, 1000.0, 1000.0, 2, 2)
    got = AlignedBand(BandRef(str(src)), grid).read()
    assert np.isnan(got[1, 0]) and got[0, 1] == pytest.approx(0.3)


def test_choose_resampling_compares_pixel_sizes():
    fine = Grid(UTM, 0, 100, 1, 1, 100, 100)
    coarse = Grid(UTM, 0, 100, 10, 10, 10, 10)
    assert choose_resampling(fine, coarse, False) == "average"
    assert choose_resampling(coarse, fine, False) == "bilinear"
    assert choose_resampling(fine, coarse, True) == "mode"
    assert choose_resampling(coarse, fine, True) == "near"


def test_the_fine_grid_keeps_non_square_covariate_pixels(make_raster):
    # lon/lat products often have non-square pixels (e.g. 0.140625° × 0.09375°): the fine grid
    # must be the covariate's, so fine pixels nest 2 × 2 in the coarse cells
    import datetime as dt
    from core.inputs.roles import Role
    from core.inputs.scene import LayerInput, Scene, SceneSpec
    from core.raster.align import BandRef
    origin = (-93.9, 39.0)
    sm = make_raster("sm_20190101.tif", np.full((3, 4), 0.2, np.float32), origin=origin, pixel=(0.28125, 0.1875),
                     epsg=4326)
    nd = make_raster("ndvi.tif", np.full((6, 8), 0.5, np.float32), origin=origin, pixel=(0.140625, 0.09375), epsg=4326)
    scene = Scene(SceneSpec([BandRef(str(sm), 1, "SM", dt.date(2019, 1, 1))],
                            [LayerInput(Role.NDVI, "NDVI", [BandRef(str(nd), 1, "NDVI")])], derive_terrain=False))
    assert (scene.fine.dx, scene.fine.dy) == pytest.approx((0.140625, 0.09375))
    assert (scene.fine.width, scene.fine.height, scene.coarse.width, scene.coarse.height) == (8, 6, 4, 3)
