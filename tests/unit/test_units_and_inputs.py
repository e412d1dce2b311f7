"""Each bad input of the foundation issue gives a clear error naming the layer and the fix."""
import dataclasses
import datetime as dt
import os

import numpy as np
import pytest

from core.raster.align import BandRef
from core.errors import InputError
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec
from core.inputs.units import check_layer

D = dt.date(2018, 1, 5)


def _err(role, path, name="L"):
    with pytest.raises(InputError) as e:
        check_layer(role, BandRef(str(path), 1, name))
    return str(e.value)


@pytest.mark.parametrize("values,needle", [
    (np.array([[12.0, 35.0]], np.float32), "percent"),
    (np.array([[-0.5, 0.3]], np.float32), "negative"),
])
def test_soil_moisture_units(make_raster, values, needle):
    msg = _err(Role.SOIL_MOISTURE, make_raster("sm.tif", values), "SMAP_20180105")
    assert "SMAP_20180105" in msg and needle in msg and "Fix:" in msg


def test_soil_moisture_with_scale_factor_is_accepted(make_raster):
    p = make_raster("sm.tif", np.array([[12, 35]], np.int16), scale=0.01)
    assert check_layer(Role.SOIL_MOISTURE, BandRef(str(p))) == pytest.approx((0.12, 0.35))


@pytest.mark.parametrize("raw, factor, looks", [
    (np.array([[12, 35]], np.int16), "0.01", "percent"),
    (np.array([[50, 450]], np.int16), "0.001", "× 1000"),
    (np.array([[500, 4500]], np.int16), "0.0001", "× 10000"),
])
def test_soil_moisture_scale_is_inferred_from_the_range(make_raster, raw, factor, looks):
    msg = _err(Role.SOIL_MOISTURE, make_raster("sm.tif", raw), "SMAP")
    assert looks in msg and f"set its scale factor to {factor} (e.g. `gdal_edit.py -scale {factor} " in msg


def test_millimetres_of_a_5cm_layer_are_offered_for_small_values(make_raster):
    msg = _err(Role.SOIL_MOISTURE, make_raster("sm.tif", np.array([[8, 22]], np.int16)))
    assert "millimetres of water in the top 5 cm" in msg and "use 0.02 (1/50)" in msg
    assert "millimetres" not in _err(Role.SOIL_MOISTURE, make_raster("sm2.tif", np.array([[80, 420]], np.int16)))


def test_scale_advice_knows_the_scale_already_set(make_raster):
    # ×10000 integers with the (wrong) scale 0.01 a user set after the old advice: 5 … 45 m³/m³
    p = make_raster("sm.tif", np.array([[500, 4500]], np.int16), scale=0.01)
    msg = _err(Role.SOIL_MOISTURE, p, "SMAP")
    assert "its scale factor is already 0.01, which turns the raw values 500 … 4500 into 5 … 45" in msg
    assert "set its scale factor to 0.0001 instead" in msg and "scale factor to 0.01 " not in msg
    ok = make_raster("sm_ok.tif", np.array([[500, 4500]], np.int16), scale=0.0001)
    assert check_layer(Role.SOIL_MOISTURE, BandRef(str(ok))) == pytest.approx((0.05, 0.45))


def test_ndvi_and_lst_advice_replace_a_wrong_scale(make_raster):
    ndvi = _err(Role.NDVI, make_raster("ndvi.tif", np.array([[-2000, 9000]], np.int16), scale=0.001))
    assert "already 0.001" in ndvi and "-2 … 9" in ndvi and "set its scale factor to 0.0001 instead" in ndvi
    lst = _err(Role.LST, make_raster("lst.tif", np.array([[14000, 15500]], np.uint16), scale=0.2))
    assert "already 0.2" in lst and "2800 … 3100" in lst and "set its scale factor to 0.02 instead" in lst


def test_raw_modis_ndvi(make_raster):
    msg = _err(Role.NDVI, make_raster("ndvi.tif", np.array([[-2000, 9000]], np.int16)), "MOD13A2 NDVI")
    assert "0.0001" in msg and "MOD13A2 NDVI" in msg


def test_lst_raw_and_celsius(make_raster):
    assert "0.02" in _err(Role.LST, make_raster("lst.tif", np.array([[14000, 15500]], np.uint16)))
    assert "273.15" in _err(Role.LST, make_raster("lstc.tif", np.array([[-5.0, 30.0]], np.float32)))


def test_sand_in_g_per_kg_and_ph_times_ten(make_raster):
    assert "g/kg" in _err(Role.SAND, make_raster("sand.tif", np.array([[150, 700]], np.int16)))
    assert "0.1" in _err(Role.PH, make_raster("ph.tif", np.array([[55, 72]], np.int16)))


def test_all_nodata_band(make_raster):
    p = make_raster("empty.tif", np.full((3, 3), -9999, np.float32), nodata=-9999)
    assert "no valid pixel" in _err(Role.DEM, p, "DEM")


def test_layer_without_crs(tmp_path):
    from osgeo import gdal
    p = str(tmp_path / "nocrs.tif")
    ds = gdal.GetDriverByName("GTiff").Create(p, 4, 4, 1, gdal.GDT_Float32)
    ds.GetRasterBand(1).WriteArray(np.full((4, 4), 10.0, np.float32))
    ds = None
    sm = tmp_path / "sm_20180105.tif"
    _write(sm, np.full((2, 2), 0.2, np.float32), (500000.0, 4400000.0), 2000.0)
    with pytest.raises(InputError) as e:
        Scene(SceneSpec([BandRef(str(sm), 1, "SM", D)], [LayerInput(Role.DEM, "my DEM", [BandRef(p, 1, "my DEM")])]))
    assert "my DEM" in str(e.value) and "coordinate reference system" in str(e.value)


def test_layers_that_do_not_overlap(make_raster):
    sm = make_raster("sm_20180105.tif", np.full((2, 2), 0.2, np.float32), origin=(500000.0, 4400000.0),
                     pixel=(2000.0, 2000.0))
    dem = make_raster("dem.tif", np.full((4, 4), 10.0, np.float32), origin=(700000.0, 4400000.0))
    with pytest.raises(InputError) as e:
        Scene(SceneSpec([BandRef(str(sm), 1, "SM", D)], [LayerInput(Role.DEM, "far DEM", [BandRef(str(dem), 1, "far DEM")])]))
    assert "far DEM" in str(e.value) and "overlap" in str(e.value)


def test_undated_soil_moisture(make_raster):
    sm = make_raster("sm.tif", np.full((2, 2), 0.2, np.float32), pixel=(2000.0, 2000.0))
    dem = make_raster("dem.tif", np.full((4, 4), 10.0, np.float32))
    with pytest.raises(InputError, match="no date"):
        Scene(SceneSpec([BandRef(str(sm), 1, "SM")], [LayerInput(Role.DEM, "DEM", [BandRef(str(dem), 1, "DEM")])]))


def test_dynamic_covariate_picks_the_nearest_earlier_date_within_tolerance(make_raster):
    sm = [make_raster(f"sm_{d:%Y%m%d}.tif", np.full((2, 2), 0.2, np.float32), pixel=(2000.0, 2000.0))
          for d in (dt.date(2018, 1, 10), dt.date(2018, 1, 20))]
    nd = [make_raster(f"ndvi_{d:%Y%m%d}.tif", np.full((4, 4), v, np.float32))
          for d, v in ((dt.date(2018, 1, 1), 0.1), (dt.date(2018, 1, 9), 0.2), (dt.date(2018, 1, 17), 0.3))]
    refs = [BandRef(str(p), 1, "NDVI", d) for p, d in zip(nd, (dt.date(2018, 1, 1), dt.date(2018, 1, 9), dt.date(2018, 1, 17)))]
    spec = SceneSpec([BandRef(str(p), 1, "SM", d) for p, d in zip(sm, (dt.date(2018, 1, 10), dt.date(2018, 1, 20)))],
                     [LayerInput(Role.NDVI, "NDVI", refs)])
    scene = Scene(spec)
    w = next(scene.fine.windows())
    assert float(scene.features(0, w)["ndvi"][0, 0]) == pytest.approx(0.2)  # Jan 9 for Jan 10
    assert float(scene.features(1, w)["ndvi"][0, 0]) == pytest.approx(0.3)  # Jan 17 for Jan 20
    spec.tolerance_days = 2
    with pytest.raises(InputError, match="NDVI"):
        Scene(spec)  # Jan 20 has nothing within 2 days


def _write(path, a, origin, px, epsg=32618):
    from osgeo import gdal, osr
    ds = gdal.GetDriverByName("GTiff").Create(str(path), a.shape[1], a.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform((origin[0], px, 0, origin[1], 0, -px))
    s = osr.SpatialReference(); s.ImportFromEPSG(epsg)
    ds.SetProjection(s.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(a)
    ds = None


def test_destination_checks_folder_and_free_space(tmp_path):
    from core.io.destination import check_destination, estimate_raster_bytes
    check_destination(str(tmp_path / "new" / "sub" / "out.tif"), need_bytes=1000)  # created later by the writer
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_destination(str(blocker / "out.tif"))
    with pytest.raises(InputError, match="cannot be written"):
        check_destination("/proc/smds_out.tif")
    with pytest.raises(InputError, match=r"needs up to 4\.0 EB|needs up to .* but only .* are free"):
        check_destination(str(tmp_path / "out.tif"), need_bytes=4 * 10 ** 18)
    assert estimate_raster_bytes(100, 50, 3, rasters=2) == 4 * 100 * 50 * 3 * 2 * 4 // 3
    assert os.listdir(tmp_path) == ["file.txt"]  # the write probe leaves nothing


def test_scene_refuses_a_grid_above_its_limit_before_reading_covariates(make_raster):
    sm = make_raster("sm_20180105.tif", np.full((2, 2), 0.2, np.float32), pixel=(2000.0, 2000.0))
    dem = make_raster("dem.tif", np.full((4, 4), 10.0, np.float32))
    spec = SceneSpec([BandRef(str(sm), 1, "SM", D)], [LayerInput(Role.DEM, "DEM", [BandRef(str(dem), 1, "DEM")])],
                     resolution=1.0, max_pixels=1_000_000)
    with pytest.raises(InputError) as e:
        Scene(spec)  # 1 m instead of 1000 m: 4000 × 4000 px
    msg = str(e.value)
    assert "4000 × 4000 = 16 million pixels" in msg and "above the limit of 1 million" in msg
    assert "for 1 date(s) expect roughly 1 minute of computing" in msg and "0.0853 GB of output" in msg
    spec.max_pixels = None
    assert Scene(dataclasses.replace(spec, derive_terrain=False)).fine.width == 4000


def test_undated_soil_moisture_names_each_band_and_its_description(make_raster):
    sm = make_raster("sm.tif", np.stack([np.full((2, 2), 0.2, np.float32)] * 2), pixel=(2000.0, 2000.0),
                     descriptions=["B1", ""])
    dem = make_raster("dem.tif", np.full((4, 4), 10.0, np.float32))
    with pytest.raises(InputError) as e:
        Scene(SceneSpec([BandRef(str(sm), 1, "SM"), BandRef(str(sm), 2, "SM")],
                        [LayerInput(Role.DEM, "DEM", [BandRef(str(dem), 1, "DEM")])]))
    msg = str(e.value)
    assert "2 band(s) have no date: band 1 of 'sm.tif' (description 'B1'), band 2 of 'sm.tif' (description empty)" in msg
    assert "Dates of the soil-moisture bands" in msg
