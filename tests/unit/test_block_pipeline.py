"""The block pipeline that reads ahead (a reader thread) and writes behind (writer threads) gives the
same bytes as the plain serial loop, reads the static inputs once per block, and a cancel stops it
leaving neither files nor threads."""
import datetime as dt
import os
import threading

import numpy as np
import pytest
from osgeo import gdal

from core.errors import Canceled
from core.inputs.roles import Role
from core.inputs.scene import LayerInput, Scene, SceneSpec
from core.io.output import RasterWriter
from core.learn.model_folder import Ensemble
from core.methods import blocks
from core.methods.insitu_ensemble.apply import EnsembleOutputs, predict
from core.methods.trend import stack_features
from core.raster.align import BandRef

BUNDLED = os.path.join(os.path.dirname(__file__), "..", "..", "models", "insitu_hgb_dem")
DATES = [dt.date(2018, 1, 5), dt.date(2018, 1, 6), dt.date(2018, 4, 9)]


@pytest.fixture
def scene(make_raster):
    rng = np.random.default_rng(4)
    dem = (50 + 30 * rng.random((40, 40))).astype(np.float32)
    dem[0, :] = 3000.0     # mTPI far outside the training range: the domain mask has ones
    dem[7, 3:9] = np.nan   # missing terrain: NaN rows in the outputs
    sm = [make_raster(f"sm_{d:%Y%m%d}.tif", (v + 0.05 * rng.random((4, 4))).astype(np.float32), origin=(-76.0, 39.0),
                      pixel=(0.1, 0.1), epsg=4326) for d, v in zip(DATES, (0.15, 0.3, 0.55))]
    d = make_raster("dem.tif", dem, origin=(-76.0, 39.0), pixel=(0.01, 0.01), epsg=4326)
    return Scene(SceneSpec([BandRef(str(p), 1, "sm", day) for p, day in zip(sm, DATES)],
                           [LayerInput(Role.DEM, "dem", [BandRef(str(d), 1, "dem")])]))


class _ReferenceBlocks:
    """The serial loop as it was: every date's features read and stacked, all columns checked."""

    def ensemble_blocks(self, scene, ensemble, cols, extra, windows, canceled):
        for w in windows:
            shape = (len(scene.dates), w.nrows, scene.fine.width)
            mean, sd, ood = np.empty(shape, np.float32), np.empty(shape, np.float32), np.empty(shape, bool)
            static = scene.static_block(w)
            for t in range(len(scene.dates)):
                f = scene.features(t, w, static, extra=tuple(extra))
                m, s, o = ensemble.predict(np.column_stack([f[c].ravel() for c in cols]).astype(np.float32))
                mean[t], sd[t], ood[t] = m.reshape(shape[1:]), s.reshape(shape[1:]), o.reshape(shape[1:])
            yield w, (mean, sd, ood)


def _outputs(folder):
    os.makedirs(folder, exist_ok=True)
    return EnsembleOutputs(*(os.path.join(folder, f"{n}.tif") for n in ("mean", "sd", "mask", "interval")))


def _arrays(outs):
    return [gdal.Open(p).ReadAsArray() for p in (outs.mean, outs.spread, outs.domain_mask, outs.interval)]


def test_pipeline_writes_the_bytes_of_the_serial_reference(scene, tmp_path):
    ens = Ensemble.load(BUNDLED)
    ref_outs = _outputs(tmp_path / "ref")
    with blocks.use_blocks(_ReferenceBlocks()):
        predict(ens, scene, ref_outs, block_pixels=400)
    ref = _arrays(ref_outs)
    new_outs = _outputs(tmp_path / "new")
    predict(ens, scene, new_outs, block_pixels=400)   # 4 blocks of 10 rows, 3 dates each
    new = _arrays(new_outs)
    for a, b in zip(ref, new):
        assert a.shape == (3, 40, 40) and a.tobytes() == b.tobytes()
    mean, mask = new[0], new[2]
    assert np.isnan(mean[:, 7, 3:9]).all() and (mask[:, 0] == 1).all()
    assert 0 < np.nanmean(mask[0]) < 1 and np.nanmean(mask[2]) == 1.0   # date 3 (0.55+) is above training
    assert np.nanmean(mean[1]) > np.nanmean(mean[0]) + 0.02   # the wetter date (0.30 vs 0.15) is wetter


def test_static_inputs_are_read_once_per_block(scene, tmp_path, monkeypatch):
    calls = {"static_block": 0, "lonlat": 0}
    for name in calls:
        original = getattr(scene, name)

        def counted(*a, _name=name, _original=original, **k):
            calls[_name] += 1
            return _original(*a, **k)
        monkeypatch.setattr(scene, name, counted)
    predict(Ensemble.load(BUNDLED), scene, _outputs(tmp_path), block_pixels=400)
    assert calls == {"static_block": 4, "lonlat": 4}   # 4 blocks, whatever the number of dates


class _Linear:
    """A trend with a known answer: 0.1 + 0.001 · mTPI + 0.0001 · doy."""

    def predict(self, X):
        return (0.1 + 0.001 * X[:, 0] + 0.0001 * X[:, 1]).astype(np.float32)


def test_trend_blocks_read_ahead_equal_one_block_at_a_time(scene):
    windows = list(scene.fine.windows(400))
    names = ["mtpi", "doy"]
    got = list(blocks.SerialBlocks().trend_blocks(scene, _Linear(), names, np.float32(0.5), windows, lambda: False))
    assert [w for w, _ in got] == windows
    for w, block in got:
        ref = np.stack([_Linear().predict(stack_features(scene.features(t, w), names)).reshape(w.nrows, 40)
                        * np.float32(0.5) for t in range(3)])
        assert block.tobytes() == ref.tobytes()
        assert block.tobytes() == blocks.trend_block(scene, _Linear(), names, np.float32(0.5), w).tobytes()


def _smds_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("smds-")]


def test_cancel_stops_the_pipeline_and_leaves_nothing(scene, tmp_path):
    asked = {"n": 0}

    def cancel_soon():
        asked["n"] += 1
        return asked["n"] > 5
    outs = _outputs(tmp_path / "out")
    with pytest.raises(Canceled):
        predict(Ensemble.load(BUNDLED), scene, outs, block_pixels=400, is_canceled=cancel_soon)
    assert os.listdir(tmp_path / "out") == [] and _smds_threads() == []


def test_a_reader_error_reaches_the_caller_and_stops_the_reader(scene):
    def rows():
        yield 1
        raise RuntimeError("disk gone")
    got = []
    with pytest.raises(RuntimeError, match="disk gone"):
        for item in blocks._read_ahead(rows(), 2, lambda: False):
            got.append(item)
    assert got == [1] and _smds_threads() == []
    early = blocks._read_ahead(iter(range(100)), 2, lambda: False)
    assert next(early) == 0
    early.close()                                  # the consumer stops early: the reader is joined
    assert _smds_threads() == []


def test_write_behind_writes_the_same_file_and_discard_leaves_nothing(scene, tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((2, 40, 40)).astype(np.float32)
    windows = list(scene.fine.windows(400))
    paths = []
    for behind in (0, 2):
        path = str(tmp_path / f"w{behind}.tif")
        with RasterWriter(path, scene.fine, ["a", "b"], write_behind=behind) as w:
            for b in range(2):
                for win in windows:
                    w.write(b, win, data[b, win.row0:win.row0 + win.nrows])
            assert np.array_equal(w.read(1, windows[2]), data[1, 20:30])   # read waits for the queue
            w.commit()
        paths.append(path)
    a, b = (gdal.Open(p).ReadAsArray() for p in paths)
    assert a.tobytes() == b.tobytes() == data.tobytes()
    folder = tmp_path / "discarded"
    with pytest.raises(KeyError):
        with RasterWriter(str(folder / "x.tif"), scene.fine, ["a"], write_behind=1) as w:
            for win in windows:
                w.write(0, win, data[0, win.row0:win.row0 + win.nrows])
            raise KeyError("stop")
    assert os.listdir(folder) == [] and _smds_threads() == []


def test_lonlat_through_pyproj_equals_osr(make_raster, monkeypatch):
    """UTM 18N pixel centres: the vectorised pyproj path gives OSR's float32 longitudes and latitudes."""
    pytest.importorskip("pyproj")
    sm = make_raster("sm_20180105.tif", np.full((2, 2), 0.2, np.float32), origin=(500000.0, 4500000.0),
                     pixel=(4000.0, 4000.0), epsg=32618)
    dem = make_raster("dem.tif", np.full((80, 80), 10.0, np.float32), origin=(500000.0, 4500000.0),
                      pixel=(100.0, 100.0), epsg=32618)
    scene = Scene(SceneSpec([BandRef(str(sm), 1, "sm", dt.date(2018, 1, 5))],
                            [LayerInput(Role.DEM, "dem", [BandRef(str(dem), 1, "dem")])]))
    w = next(scene.fine.windows(10 ** 6))
    lon, lat = scene.lonlat(w)
    monkeypatch.setitem(__import__("sys").modules, "pyproj", None)   # import pyproj now fails: the OSR path
    lon_osr, lat_osr = scene.lonlat(w)
    assert lon.dtype == np.float32 and lon.tobytes() == lon_osr.tobytes() and lat.tobytes() == lat_osr.tobytes()
    assert -75.1 < lon.min() < lon.max() < -74.9 and 40.5 < lat.min() < lat.max() < 40.7   # 75° W, 40.6° N
