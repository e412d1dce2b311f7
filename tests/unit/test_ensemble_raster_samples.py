"""Training samples from rasters at stations: every value of the synthetic scene is known.

Scene (UTM 18N, origin 500 000 E / 4 400 000 N): a 20 × 20 fine grid of 1 km, a 2 × 2 coarse
grid of 10 km. Coarse soil moisture of cell (cr, cc) on date t is 0.10 + 0.05 t + 0.02 cr + 0.01 cc;
elevation at fine pixel (r, c) is 100 + 10 r + c; land cover is 41 on the left half, 81 on the
right; sand/clay are 88/5 (a sand) on the top half and 25/50 (a clay) below.
Stations sit at pixel centres; S1 and S2 share a row.
"""
import datetime as dt

import numpy as np
import pytest
from osgeo import osr

from core.raster.align import BandRef
from core.methods.insitu_ensemble.preflight import check_training_plan, scheme_support, supported_schemes
from core.methods.insitu_ensemble.raster_samples import field_capacity_saxton_rawls, samples_from_scene, station_pixels
from core.errors import Canceled, InputError
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec
from core.evaluation.stations import Station

ORIGIN = (500000.0, 4400000.0)
DATES = [dt.date(2018, 1, d) for d in (2, 9, 16, 23)]
PIXELS = {"S1": (2, 3), "S2": (2, 15), "S3": (17, 8), "S4": (12, 12)}


def coarse_sm(t, cr, cc):
    return 0.10 + 0.05 * t + 0.02 * cr + 0.01 * cc


def lonlat(row, col):
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32618)
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x, y = ORIGIN[0] + (col + 0.5) * 1000.0, ORIGIN[1] - (row + 0.5) * 1000.0
    lon, lat, _ = osr.CoordinateTransformation(utm, wgs).TransformPoint(x, y)
    return lat, lon


@pytest.fixture
def scene(make_raster):
    sm = [make_raster(f"sm_{d:%Y%m%d}.tif",
                      np.array([[coarse_sm(t, r, c) for c in range(2)] for r in range(2)], np.float32),
                      origin=ORIGIN, pixel=(10000.0, 10000.0)) for t, d in enumerate(DATES)]
    r, c = np.mgrid[0:20, 0:20]
    dem = make_raster("dem.tif", (100 + 10 * r + c).astype(np.float32), origin=ORIGIN)
    lc = make_raster("lc.tif", np.where(c < 10, 41, 81).astype(np.uint8), origin=ORIGIN)
    sand = make_raster("sand.tif", np.where(r < 10, 88.0, 25.0).astype(np.float32), origin=ORIGIN)
    clay = make_raster("clay.tif", np.where(r < 10, 5.0, 50.0).astype(np.float32), origin=ORIGIN)
    spec = SceneSpec([BandRef(str(p), 1, "SM", d) for p, d in zip(sm, DATES)],
                     [LayerInput(Role.DEM, "DEM", [BandRef(str(dem), 1, "DEM")]),
                      LayerInput(Role.LAND_COVER, "LC", [BandRef(str(lc), 1, "LC")]),
                      LayerInput(Role.SAND, "Sand", [BandRef(str(sand), 1, "Sand")]),
                      LayerInput(Role.CLAY, "Clay", [BandRef(str(clay), 1, "Clay")])],
                     derive_terrain=False)
    return Scene(spec)


def stations(**attrs):
    out = [Station(sid, *lonlat(*rc), attrs=dict(attrs.get(sid, {}))) for sid, rc in PIXELS.items()]
    out.append(Station("FAR", 10.0, 10.0))
    return out


# in-situ: one day before the scene, the scene days, one after; S3 misses 2018-01-09; S4 has no column
INSITU_DATES = [dt.date(2018, 1, 1), *DATES, dt.date(2018, 1, 30)]
INSITU = {
    "S1": np.array([0.5, 0.21, 0.22, 0.23, 0.24, 0.5]),
    "S2": np.array([0.5, 0.31, 0.32, 0.33, 0.34, 0.5]),
    "S3": np.array([0.5, 0.11, np.nan, 0.13, 0.14, 0.5]),
    "FAR": np.full(6, 0.2),
}


def test_samples_hold_the_known_values_at_each_station(scene):
    feats = ["sm_coarse", "dem", "doy", "land_cover", "lat"]
    s = samples_from_scene(scene, stations(), INSITU_DATES, INSITU, feats)
    assert s.feature_names == feats
    assert sorted(set(s.site_id)) == ["S1", "S2", "S3"]          # S4: no in-situ column; FAR: outside
    assert len(s) == 4 + 4 + 3                                     # S3 has no value on 2018-01-09
    assert s.source["stations_outside"] == ["FAR"]
    lat = {sid: lonlat(*rc)[0] for sid, rc in PIXELS.items()}
    for i in range(len(s)):
        sid, day = s.site_id[i], s.date[i].astype(object)
        t = DATES.index(day)
        r, c = PIXELS[sid]
        expected_sm = coarse_sm(t, r // 10, c // 10)
        assert s.X[i, 0] == pytest.approx(expected_sm, abs=1e-6)
        assert s.coarse_sm[i] == pytest.approx(expected_sm, abs=1e-6)
        assert s.X[i, 1] == pytest.approx(100 + 10 * r + c)
        assert s.X[i, 2] == day.timetuple().tm_yday
        assert s.X[i, 3] == (41 if c < 10 else 81)
        assert s.X[i, 4] == pytest.approx(lat[sid], abs=0.01)     # pixel centre ≈ station
        assert s.y[i] == pytest.approx(INSITU[sid][INSITU_DATES.index(day)])
    # class attributes of the weighting schemes
    a = s.attributes
    fc_sand, fc_clay = field_capacity_saxton_rawls([88.0, 25.0], [5.0, 50.0])
    for i in range(len(s)):
        sid = s.site_id[i]
        r, c = PIXELS[sid]
        assert a["field_capacity"][i] == pytest.approx(fc_sand if r < 10 else fc_clay, abs=1e-4)
        assert a["land_cover"][i] == (41 if c < 10 else 81)
        assert a["lat"][i] == pytest.approx(lat[sid])
        assert a["wetness"][i] == pytest.approx(np.mean([coarse_sm(t, r // 10, c // 10) for t in range(4)]), abs=1e-6)
        assert a["network"][i] == "unknown"


def test_saxton_rawls_field_capacity_of_texture_classes():
    # Saxton & Rawls (2006) Table 3: sand 10 %, loam 28 %, silt loam 31 %, clay 42 %
    got = field_capacity_saxton_rawls([88.0, 40.0, 20.0, 25.0], [5.0, 20.0, 15.0, 50.0])
    assert got.round(0).tolist() == [10.0, 28.0, 31.0, 42.0]
    assert np.isnan(field_capacity_saxton_rawls([np.nan], [20.0])[0])


def test_station_columns_win_over_rasters(scene):
    st = stations(S1={"Network": "A", "nlcd_landcover": "52", "field_capacity": "30"},
                  S2={"Network": "B", "nlcd_landcover": "71", "field_capacity": "12"},
                  S3={"Network": "A", "nlcd_landcover": "", "field_capacity": "x"})
    s = samples_from_scene(scene, st, INSITU_DATES, INSITU, ["sm_coarse"])
    a = s.attributes
    by = {sid: i for i, sid in enumerate(s.site_id)}
    assert a["network"][by["S1"]] == "A" and a["network"][by["S2"]] == "B"
    assert a["land_cover"][by["S1"]] == 52 and np.isnan(a["land_cover"][by["S3"]])
    assert a["field_capacity"][by["S2"]] == 12 and np.isnan(a["field_capacity"][by["S3"]])
    assert s.source["networks"] == ["A", "B"]


def test_only_station_rows_are_read(scene, monkeypatch):
    seen = []
    real = scene.features

    def spy(t, window, static=None, extra=()):
        seen.append(window)
        return real(t, window, static, extra)

    monkeypatch.setattr(scene, "features", spy)
    samples_from_scene(scene, stations(), INSITU_DATES, INSITU, ["sm_coarse", "dem"])
    assert {w.nrows for w in seen} == {1}
    assert {w.row0 for w in seen} == {2, 17}                       # S1 and S2 share row 2
    assert len(seen) == 4 + 3                                      # row 17 (S3): 3 dates with a value


def test_station_pixels_in_another_crs(scene):
    rows, cols = station_pixels(scene.fine, stations())
    assert rows.tolist()[:4] == [rc[0] for rc in PIXELS.values()]
    assert cols.tolist()[:4] == [rc[1] for rc in PIXELS.values()]
    assert (rows[4], cols[4]) == (-1, -1)


def test_errors_name_the_cause(scene):
    with pytest.raises(InputError, match="ndvi needs an NDVI layer"):
        samples_from_scene(scene, stations(), INSITU_DATES, INSITU, ["sm_coarse", "ndvi"])
    with pytest.raises(InputError, match="mtpi needs a DEM layer with 'Derive terrain"):
        samples_from_scene(scene, stations(), INSITU_DATES, INSITU, ["mtpi"])
    with pytest.raises(InputError, match="no date of the soil-moisture layers"):
        samples_from_scene(scene, stations(), [dt.date(2019, 5, 1)], {k: v[:1] for k, v in INSITU.items()},
                           ["sm_coarse"])
    with pytest.raises(InputError, match="lies inside the fine grid"):
        samples_from_scene(scene, stations()[4:], INSITU_DATES, INSITU, ["sm_coarse"])
    with pytest.raises(InputError, match="no station has 5 or more days"):
        samples_from_scene(scene, stations(), INSITU_DATES, INSITU, ["sm_coarse"], min_samples_per_site=5)
    s = samples_from_scene(scene, stations(), INSITU_DATES, INSITU, ["sm_coarse"], min_samples_per_site=4)
    assert sorted(set(s.site_id)) == ["S1", "S2"] and s.source["stations_too_few"] == ["S3"]
    with pytest.raises(Canceled):
        samples_from_scene(scene, stations(), INSITU_DATES, INSITU, ["sm_coarse"], is_canceled=lambda: True)


def test_scheme_support_and_plan_checks(scene):
    st = stations(S1={"network": "A"}, S2={"network": "B"}, S3={"network": "A"})
    s = samples_from_scene(scene, st, INSITU_DATES, INSITU, ["sm_coarse", "dem"])
    why = scheme_support(s)
    assert why["free"] == "" and why["land_cover"] == "" and why["network"] == ""
    assert why["field_capacity"] == "" and why["climate_wetness"] == ""
    assert supported_schemes(s)[0] == "free"
    check_training_plan(s, ["sm_coarse", "dem"], ["dense"], ["free", "land_cover"], cv_folds=3)
    with pytest.raises(InputError, match="needs at least 4 stations.*only 3"):
        check_training_plan(s, ["sm_coarse"], ["dense"], ["free"], cv_folds=4)
    with pytest.raises(InputError, match="no scheme"):
        check_training_plan(s, ["sm_coarse"], ["dense"], [], cv_folds=0)
    with pytest.raises(InputError, match="no 'ndvi'"):
        check_training_plan(s, ["ndvi"], ["dense"], ["free"], cv_folds=0)
    one_net = samples_from_scene(scene, stations(), INSITU_DATES, INSITU, ["sm_coarse"])
    assert "one class" in scheme_support(one_net)["network"]
    with pytest.raises(InputError, match="network .*one class"):
        check_training_plan(one_net, ["sm_coarse"], ["dense"], ["free", "network"], cv_folds=0)


def test_rf_needs_a_field_capacity(scene):
    s = samples_from_scene(scene, stations(S1={"field_capacity": ""}), INSITU_DATES, INSITU, ["sm_coarse"])
    assert np.isnan(s.attributes["field_capacity"]).all()
    with pytest.raises(InputError, match="sand and clay layers"):
        check_training_plan(s, ["sm_coarse"], ["rf"], [], cv_folds=0)
