"""Benchmark: regression + residual downscaling on synthetic scenes of growing size.

For fine grids of 1, 4 and 16 Mpx (6 covariate layers: DEM, NDVI, LST, sand, clay, pH; slope and
mTPI derived from the DEM; 10 dates; coarse cells of 40×40 fine pixels), prints wall time,
Mpx/s per date and the peak resident memory of the run. Each run is a fresh process, so the
peak belongs to that run alone; scene files are written by another process beforehand.

    <venv python> benchmarks/downscale_scaling.py [--sizes 1 4 16] [--regressor hgb] [--dates 10]

GDAL's block cache is a fixed budget that fills with the grid until it is reached (default 5 % of
RAM); the figures are taken with ``--gdal-cache-mb`` (default 128) so the peak shows what the
engine itself holds.

Not a test: it prints figures (for README and issue notes) and asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATIO = 40


def make_scene(folder: str, mpx: float, n_dates: int) -> None:
    """Write the synthetic scene (fine covariates, coarse soil moisture) block by block."""
    import numpy as np
    from osgeo import gdal, osr
    gdal.UseExceptions()
    side = int(round((mpx * 1e6) ** 0.5 / RATIO)) * RATIO
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32618)
    drv = gdal.GetDriverByName("GTiff")

    def create(name, w, h, px):
        ds = drv.Create(os.path.join(folder, name), w, h, 1, gdal.GDT_Float32, ["TILED=YES", "COMPRESS=NONE"])
        ds.SetGeoTransform((500000.0, px, 0, 4500000.0, 0, -px))
        ds.SetProjection(srs.ExportToWkt())
        return ds

    rng = np.random.default_rng(0)
    cov = {"dem": (100, 400), "ndvi": (0.1, 0.8), "lst": (270, 300), "sand": (10, 80), "clay": (5, 50), "ph": (4.5, 8)}
    coarse_side = side // RATIO
    fine_sum = np.zeros((coarse_side, coarse_side))
    dss = {k: create(f"{k}.tif", side, side, 1000.0) for k in cov}
    rows = max(1, (1 << 20) // side)
    phase = rng.uniform(0, 6, size=len(cov))
    for r0 in range(0, side, rows):
        n = min(rows, side - r0)
        y, x = np.mgrid[r0:r0 + n, 0:side] / side
        weight = np.zeros((n, side))
        for j, (k, (lo, hi)) in enumerate(cov.items()):
            a = lo + (hi - lo) * (0.5 + 0.4 * np.sin(6 * x + phase[j]) * np.cos(5 * y + j)
                                  + 0.05 * rng.standard_normal((n, side)))
            dss[k].GetRasterBand(1).WriteArray(a.astype(np.float32), 0, r0)
            if k == "ndvi":
                weight = a
        # sum of the fine "truth" pattern per coarse cell rows
        block = (0.4 - 0.3 * weight)
        rr = (np.arange(r0, r0 + n) // RATIO)
        for cr in np.unique(rr):
            sel = rr == cr
            fine_sum[cr] += block[sel].reshape(-1, coarse_side, RATIO).sum(axis=(0, 2))
    dss = None
    base = fine_sum / (RATIO * RATIO)
    for t in range(n_dates):
        ds = create(f"sm_2018{1 + t // 28:02d}{1 + t % 28:02d}.tif", coarse_side, coarse_side, 1000.0 * RATIO)
        ds.GetRasterBand(1).WriteArray((base + 0.01 * t).astype(np.float32))
        ds = None


def run_scene(folder: str, regressor: str) -> dict:
    """Downscale the scene in this process and report time and peak memory."""
    import glob

    from machine import peak_rss_mb
    sys.path.insert(0, ROOT)
    from core.raster.align import BandRef
    from core.inputs.dates import parse_date
    from core.methods.regression import RegressionOptions, downscale
    from core.inputs.roles import Role
    from core.inputs.scene import LayerInput, Scene, SceneSpec
    sm = [BandRef(p, 1, os.path.basename(p), parse_date(os.path.basename(p)))
          for p in sorted(glob.glob(os.path.join(folder, "sm_*.tif")))]
    roles = {"dem": Role.DEM, "ndvi": Role.NDVI, "lst": Role.LST, "sand": Role.SAND, "clay": Role.CLAY, "ph": Role.PH}
    covs = [LayerInput(r, k, [BandRef(os.path.join(folder, f"{k}.tif"), 1, k)]) for k, r in roles.items()]
    t0 = time.perf_counter()
    scene = Scene(SceneSpec(sm, covs, derive_terrain=True))
    res = downscale(scene, os.path.join(folder, "out.tif"),
                                   RegressionOptions(regressor=regressor, n_estimators=100))
    wall = time.perf_counter() - t0
    peak_mb = peak_rss_mb()
    return {"mpx": scene.fine.size / 1e6, "dates": len(scene.dates), "wall_s": wall,
            "mpx_per_s_per_date": scene.fine.size / 1e6 * len(scene.dates) / wall, "peak_rss_mb": peak_mb,
            "train_samples": res.training["n_samples"],
            "conservation_mean_abs": sum(c["mean_abs_diff"] for c in res.conservation) / len(res.conservation)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 16])
    ap.add_argument("--dates", type=int, default=10)
    ap.add_argument("--regressor", default="hgb", choices=["svr", "rf", "hgb"])
    ap.add_argument("--gdal-cache-mb", type=int, default=128, help="GDAL_CACHEMAX of the measured run")
    ap.add_argument("--_make", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--_run", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._make:
        make_scene(a._make[0], float(a._make[1]), a.dates)
        return
    if a._run:
        print(json.dumps(run_scene(a._run, a.regressor)))
        return
    print(f"regressor={a.regressor}, {a.dates} dates, 6 covariates (+ slope, mTPI), coarse cell = {RATIO}×{RATIO} px, "
          f"{os.cpu_count()} cores, GDAL cache {a.gdal_cache_mb} MB")
    print(f"{'fine Mpx':>9} {'wall s':>8} {'Mpx/s/date':>11} {'peak MB':>8} {'train n':>8} {'cons. m³/m³':>11}")
    for mpx in a.sizes:
        with tempfile.TemporaryDirectory(prefix="smds-bench-") as d:
            subprocess.run([sys.executable, __file__, "--dates", str(a.dates), "--_make", d, str(mpx)], check=True)
            env = dict(os.environ, GDAL_CACHEMAX=str(a.gdal_cache_mb))
            out = subprocess.run([sys.executable, __file__, "--regressor", a.regressor, "--_run", d],
                                 check=True, capture_output=True, text=True, env=env).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{r['mpx']:>9.2f} {r['wall_s']:>8.1f} {r['mpx_per_s_per_date']:>11.3f} {r['peak_rss_mb']:>8.0f} "
                  f"{r['train_samples']:>8d} {r['conservation_mean_abs']:>11.4f}", flush=True)


if __name__ == "__main__":
    main()
