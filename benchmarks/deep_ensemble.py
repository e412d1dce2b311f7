"""Benchmark: the deep ensemble (DNN + CNN + LSTM, multi-resolution) against bilinear, the coarse product and
the regression defaults; and its prediction speed and peak memory on large synthetic grids.

* **cross_scale_regions** and **delaware** — the scenes and scores of :mod:`benchmarks.residual_choices`
  (SMAP 20 km → 10 km against SMAP 10 km per pixel; ESA CCI 0.25° → 1 km at the DEOS stations). Rows: the
  baselines, ``downscale_regression`` defaults, the deep ensemble with its defaults (held-out trend weight,
  residual chosen one scale up), the ensemble with its full trend (weight 1), and each member alone with
  its full trend; the held-out scores the fit logs are printed on the way.
* **speed** — one model fitted on a synthetic 1 Mpx scene (30 m pixels, 3 km coarse cells, NDVI + DEM,
  3 dates), then applied (:func:`core.methods.deep_ensemble.predict`, defaults) to 1, 4 and 16 Mpx grids, each
  in a fresh process with ``GDAL_CACHEMAX=128`` MB: Mpx per second per date (the whole prediction: members,
  residual, writing) and the process's peak resident memory.

    <venv python> benchmarks/deep_ensemble.py [--data ../shared/data] [--only cross_scale|delaware|speed]

Not a test: it prints tables and asserts nothing.
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from osgeo import gdal, osr  # noqa: E402

from machine import peak_rss_mb  # noqa: E402
import residual_choices as rc  # noqa: E402
from core.inputs.roles import Role  # noqa: E402
from core.inputs.scene import LayerInput, Scene, SceneSpec  # noqa: E402
from core.methods import deep_ensemble as de  # noqa: E402
from core.methods import regression  # noqa: E402
from core.raster.align import BandRef  # noqa: E402

gdal.UseExceptions()
SPEED_DATES = [dt.date(2020, 6, d) for d in (1, 4, 7)]
#: GDAL block cache of the measured runs (as benchmarks/downscale_scaling.py): a fixed budget of its own.
GDAL_CACHE_MB = 128


def deep_estimates(scene: Scene, folder: str, name: str) -> dict[str, str]:
    """The rows this benchmark adds to the tables of :mod:`residual_choices`: {row label: raster}."""
    out: dict[str, str] = {}
    t0 = time.time()
    model = de.fit(scene)
    t = model.training
    ct = t["coarse_trend_weight"]
    print(f"  deep ensemble fitted in {time.time() - t0:.0f} s on {t['samples']['training']} samples over "
          f"{', '.join(lv['name'] for lv in t['levels'])}; trend weight judged on the coarse samples "
          f"{ct['trend_weight']:.3f} (held-out interpolation RMSE {ct.get('cv_rmse_interpolation', float('nan')):.4f}, "
          f"with the ensemble's detail {ct.get('cv_rmse_trend', float('nan')):.4f})", flush=True)
    for m, s in t["held_out_scores"].items():
        print(f"    held-out coarse cells, {de.MEMBER_LABELS[m]}: R {s['r']:.3f}, RMSE {s['rmse']:.4f}, bias "
              f"{s['bias']:+.4f}" + (f", weight {model.weights[m]:.2f}" if m in model.weights else ""), flush=True)
    for inp, row in t.get("importance", {}).items():
        print(f"    importance of {inp}: " + ", ".join(f"{k} {v:+.4f}" for k, v in row.items()), flush=True)
    path = os.path.join(folder, "regression_" + name)
    regression.downscale(scene, path)
    out["downscale_regression defaults"] = path
    path = os.path.join(folder, "deep_" + name)
    t0 = time.time()
    res = de.predict(model, scene, path)
    r = res.training
    print(f"  deep ensemble predicted in {time.time() - t0:.0f} s; applied trend weight (fine trend averaged back to "
          f"the held-out cells) {r['trend_weight']:.3f} (interpolation RMSE {r.get('cv_rmse_interpolation', float('nan')):.4f}, "
          f"with the fine detail {r.get('cv_rmse_trend', float('nan')):.4f}); static / date-to-date weights "
          f"{r.get('trend_weight_static', float('nan')):.3f} / {r.get('trend_weight_dynamic', float('nan')):.3f}; residual "
          f"{res.extra['residual'].get('residual')} (departure weights {res.extra['residual'].get('departure_weight_static', 1.0):.3f}"
          f" / {res.extra['residual'].get('departure_weight_dynamic', 1.0):.3f})", flush=True)
    out["deep ensemble (defaults: held-out trend weight, auto residual)"] = path
    full = replace(model, options=replace(model.options, shrink_trend=False, shrink_residual=False))
    path = os.path.join(folder, "deep_full_" + name)
    de.predict(full, scene, path)
    out["deep ensemble, full trend (weight 1)"] = path
    for m in model.members:
        alone = replace(full, weights={k: float(k == m) for k in model.members})
        path = os.path.join(folder, f"deep_{m}_" + name)
        de.predict(alone, scene, path)
        out[f"{de.MEMBER_LABELS[m]} alone, full trend"] = path
    return out


# ------------------------------------------------------------------------------------------- speed
def _write(path: str, arr: np.ndarray, pixel: float) -> str:
    ds = gdal.GetDriverByName("GTiff").Create(path, arr.shape[1], arr.shape[0], 1, gdal.GDT_Float32,
                                              ["TILED=YES", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform((400000.0, pixel, 0.0, 4500000.0, 0.0, -pixel))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32618)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(arr)
    ds.FlushCache()
    ds = None
    return path


def synthetic_scene(folder: str, side: int) -> Scene:
    """A ``side × side`` grid of 30 m pixels with NDVI and a DEM, and 3 km soil moisture for 3 dates that
    follows the NDVI (rows written in strips, so building the 16 Mpx scene stays light)."""
    coarse = int(np.ceil(side * 30.0 / 3000.0))
    rng = np.random.default_rng(side)
    cy, cx = (np.mgrid[0:coarse, 0:coarse] + 0.5) / coarse
    names = {}
    for key in ("ndvi", "dem"):
        path = os.path.join(folder, f"{key}_{side}.tif")
        ds = gdal.GetDriverByName("GTiff").Create(path, side, side, 1, gdal.GDT_Float32, ["TILED=YES"])
        ds.SetGeoTransform((400000.0, 30.0, 0.0, 4500000.0, 0.0, -30.0))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(32618)
        ds.SetProjection(srs.ExportToWkt())
        band = ds.GetRasterBand(1)
        for r0 in range(0, side, 512):
            y, x = np.mgrid[r0:min(side, r0 + 512), 0:side] / 400.0
            a = 0.5 + 0.3 * np.sin(x) * np.cos(0.7 * y) if key == "ndvi" else 50 + 30 * np.cos(0.5 * x + 0.3 * y)
            band.WriteArray((a + rng.normal(0, 0.02 if key == "ndvi" else 1.0, a.shape)).astype(np.float32), 0, r0)
        ds.FlushCache()
        band, ds = None, None
        names[key] = path
    sm = []
    for i, d in enumerate(SPEED_DATES):
        field = (0.2 + 0.1 * np.sin(3 * cx + 0.5 * i) * np.cos(2 * cy)).astype(np.float32)
        sm.append(BandRef(_write(os.path.join(folder, f"sm_{side}_{d:%Y%m%d}.tif"), field, 3000.0), 1, "SM", d))
    return Scene(SceneSpec(sm, [LayerInput(Role.NDVI, "ndvi", [BandRef(names["ndvi"], 1, "ndvi")]),
                                LayerInput(Role.DEM, "dem", [BandRef(names["dem"], 1, "dem")])],
                           derive_terrain=False, check_units=False))


def speed_one(side: int, model_folder: str, folder: str) -> None:
    """Apply the saved model to a ``side²`` grid; print seconds, Mpx/s per date and peak memory (child)."""
    scene = synthetic_scene(folder, side)
    model = de.DeepEnsembleModel.load(model_folder)
    t0 = time.time()
    de.predict(model, scene, os.path.join(folder, f"out_{side}.tif"))
    sec = time.time() - t0
    peak = peak_rss_mb()
    mpx = side * side / 1e6
    print(f"| {mpx:.0f} | {side}×{side} | {sec:.1f} | {mpx * len(SPEED_DATES) / sec:.2f} | {peak:.0f} |", flush=True)


def speed() -> None:
    with tempfile.TemporaryDirectory(prefix="smds-deep-speed-") as folder:
        t0 = time.time()
        model = de.fit(synthetic_scene(folder, 1000))
        model.save(os.path.join(folder, "model"))
        print(f"\nspeed: model fitted on the 1 Mpx scene in {time.time() - t0:.0f} s\n")
        print("| Mpx | grid | seconds (3 dates) | Mpx/s per date | peak memory (MB) |")
        print("|---|---|---|---|---|")
        for side in (1000, 2000, 4000):
            subprocess.run([sys.executable, os.path.abspath(__file__), "--speed-one", str(side),
                            os.path.join(folder, "model"), folder], check=True,
                           env=dict(os.environ, GDAL_CACHEMAX=str(GDAL_CACHE_MB)))


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--speed-one":
        speed_one(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return 0
    args = rc.table_arguments(__doc__, more=["speed"]).parse_args()
    rc.print_tables(args.data, args.only, deep_estimates, prefix="smds-deep-bench-")
    if args.only in (None, "speed"):
        speed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
