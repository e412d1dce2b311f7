"""Terrain derivatives against values worked out by hand."""
import numpy as np
import pytest

from core.raster.terrain import focal_mean, mtpi, slope_degrees, tpi


def test_slope_of_a_plane():
    # z rises 1 m per 10 m eastwards: slope = atan(0.1) = 5.7106°
    x = np.arange(6, dtype=float) * 10.0
    dem = np.tile(x * 0.1, (5, 1))
    s = slope_degrees(dem, 10.0, 10.0)
    assert s[2, 2] == pytest.approx(np.degrees(np.arctan(0.1)), abs=1e-4)


def test_tpi_of_a_peak():
    dem = np.zeros((5, 5))
    dem[2, 2] = 9.0
    # 3×3 mean around the peak = 1 → TPI = 8; beside the peak the mean is 1 (or 1.5 at edges)
    t = tpi(dem, 1)
    assert t[2, 2] == pytest.approx(8.0)
    assert t[2, 1] == pytest.approx(-1.0)


def test_focal_mean_ignores_nan():
    dem = np.array([[1.0, np.nan, 3.0]])
    assert focal_mean(dem, 1)[0, 1] == pytest.approx(2.0)


def test_mtpi_skips_sub_pixel_radii_and_averages_the_rest():
    rng = np.random.default_rng(0)
    dem = rng.normal(size=(40, 40)) * 10
    # 10 km pixels: only radii ≥ 10 km count (115.8, 89.9, 35.3, 13.1 km → 11.6, 9.0, 3.5, 1.3 px)
    got = mtpi(dem, 10000.0)
    want = np.mean([dem - focal_mean(dem, r) for r in (11.58, 8.99, 3.53, 1.31)], axis=0)
    assert np.allclose(got, want, atol=1e-4)


def test_block_wise_derivation_equals_the_whole_array_mtpi(make_raster):
    """With 3 km pixels every mTPI radius is local (≤ 48 px): blocks + halo must give the reference."""
    import datetime as dt

    from core.raster.align import BandRef
    from core.inputs.roles import Role
    from core.inputs.scene import LayerInput, Scene, SceneSpec

    rng = np.random.default_rng(7)
    dem = (100 + 50 * rng.random((90, 90))).astype(np.float32)
    d = make_raster("dem.tif", dem, pixel=(3000.0, 3000.0))
    sm = make_raster("sm_20180105.tif", np.full((9, 9), 0.2, np.float32), pixel=(30000.0, 30000.0))
    scene = Scene(SceneSpec([BandRef(str(sm), 1, "sm", dt.date(2018, 1, 5))],
                            [LayerInput(Role.DEM, "dem", [BandRef(str(d))])]))
    got = np.concatenate([scene.static_block(w)["mtpi"] for w in scene.fine.windows(900)])  # 10-row blocks
    assert got.shape == dem.shape
    assert np.allclose(got, mtpi(dem, 3000.0), atol=1e-4)
    got_slope = np.concatenate([scene.static_block(w)["slope"] for w in scene.fine.windows(900)])
    assert np.allclose(got_slope, slope_degrees(dem, 3000.0, 3000.0), atol=1e-4)
