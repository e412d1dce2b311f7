"""Terrain zones derived from a DEM: relief classes and clusters, and their mapping onto other grids."""
import numpy as np
import pytest

from core.raster.grid import Grid
from core.raster.zones import ZoneRule, decimation_grid, derive_zones, local_relief, relief_classes, zones_on

WKT_UTM = 'PROJCS["WGS 84 / UTM zone 18N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",-75],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'


def _three_landscapes(n=90, px=1000.0):
    """Columns 0–29 flat (±5 m), 30–59 hills (±60 m), 60–89 mountains (±400 m), ripples 6 px apart."""
    y, x = np.mgrid[0:n, 0:n]
    amp = np.where(x < 30, 5.0, np.where(x < 60, 60.0, 400.0))
    dem = 100 + amp * np.sin(2 * np.pi * x / 6) * np.cos(2 * np.pi * y / 6)
    return dem.astype(np.float32), Grid(WKT_UTM, 500000.0, 4400000.0, px, px, n, n)


def test_local_relief_is_max_minus_min_within_the_radius():
    dem = np.zeros((9, 9), np.float32)
    dem[4, 4] = 10.0
    rel = local_relief(dem, 2.0)
    assert rel[4, 4] == 10.0 and rel[4, 6] == 10.0 and rel[4, 7] == 0.0  # 3 px away: outside the disk
    assert rel[6, 6] == 0.0  # diagonal distance 2.83 > 2
    dem[0, 0] = np.nan
    assert np.isnan(local_relief(dem, 2.0)[0, 0])


def test_relief_classes_put_plains_hills_and_mountains_where_they_are():
    dem, grid = _three_landscapes()
    z, info = derive_zones(dem, grid, ZoneRule(radius_m=5000.0))
    core = (slice(10, 80),)
    assert (z[10:80, 5:24] == 1).mean() > 0.95
    assert (z[10:80, 36:54] == 2).mean() > 0.95
    assert (z[10:80, 66:85] == 3).mean() > 0.95
    assert info["labels"]["1"] == "plains" and sum(info["pixels"].values()) == z.size
    with pytest.raises(ValueError, match="increase"):
        relief_classes(np.zeros((2, 2)), (300.0, 50.0))


def test_kmeans_zones_are_numbered_by_elevation():
    n = 40
    dem = np.where(np.arange(n)[None, :] < 20, 50.0, 900.0).repeat(n, axis=0).astype(np.float32)
    grid = Grid(WKT_UTM, 500000.0, 4400000.0, 1000.0, 1000.0, n, n)
    z, info = derive_zones(dem, grid, ZoneRule(method="kmeans", n_clusters=2, radius_m=2000.0))
    assert set(np.unique(z)) == {1, 2}
    assert (z[:, :15] == 1).all() and (z[:, 25:] == 2).all()
    assert info["clusters"][0]["elevation_m"] == pytest.approx(50.0, abs=1)


def test_zones_map_onto_a_finer_grid_through_the_decimated_one():
    fine = Grid(WKT_UTM, 500000.0, 4400000.0, 100.0, 100.0, 400, 300)
    g = decimation_grid(fine, 5000.0)
    assert (g.dx, g.width, g.height) == (500.0, 80, 60)
    zones = (np.arange(g.width)[None, :] // 20 + 1).repeat(g.height, axis=0).astype(np.uint8)
    on_fine = zones_on(zones, g, fine)
    assert on_fine.shape == (300, 400)
    assert (on_fine[:, :100] == 1).all() and (on_fine[:, 300:] == 4).all()
    off = Grid(WKT_UTM, 400000.0, 4400000.0, 100.0, 100.0, 10, 10)
    assert (zones_on(zones, g, off) == 0).all()
