"""Benchmark: the stacking method against each base learner, zoned against unzoned, and against
bilinear interpolation of the coarse cells — on the two real data sets of ``residual_choices.py``
(same scenes, same scores, so the tables compare row for row):

* **cross_scale_regions** — SMAP 20 km → 10 km with Sentinel-2 NDVI and Sentinel-1 VV/VH at 10 km,
  truth SMAP 10 km: per-pixel R and ubRMSE over 109 windows, pooled RMSE, within-cell pattern R;
* **delaware** — ESA CCI 0.25° → 1 km with elevation (+ slope, mTPI): R and ubRMSE at the DEOS
  stations (means over sites with ≥ 3 pairs). Zoned rows use the relief classes of the DEM.

Every row is a full ``downscale_stacking`` run (defaults: the stack's detail weighted by its
cross-validated skill, residual chosen one scale up) unless it says "full trend"; wall time per row.

    <venv python> benchmarks/stacking.py [--data ../shared/data] [--only cross_scale|delaware]

Not a test: it prints tables and asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import residual_choices as rc  # noqa: E402  (scenes, baselines and scores shared with that benchmark)

from core.evaluation.stations import read_insitu_csv, read_stations_csv, sample_raster, sample_raster_series, \
    score_products  # noqa: E402
from core.inputs.roles import Role  # noqa: E402
from core.inputs.scene import LayerInput, Scene, SceneSpec  # noqa: E402
from core.learn.stacking import DEFAULT_LEARNERS, missing_packages  # noqa: E402
from core.methods import stacking  # noqa: E402
from core.raster.align import BandRef  # noqa: E402
from core.raster.grid import Window  # noqa: E402


def variants() -> list[tuple[str, dict, bool]]:
    """(row label, option overrides, zoned?) — single learners, the default stack, the paper's three."""
    rows = [(f"{name} alone", {"learners": (name,)}, False)
            for name in ("hgb", "rf", "extra_trees", "xgboost", "lightgbm", "catboost") if not missing_packages([name])]
    rows.append(("stack (default: hgb + rf + extra trees)", {}, False))
    rows.append(("stack, full trend (no skill weighting)", {"shrink_trend": False}, False))
    paper = ("xgboost", "lightgbm", "catboost")
    if not missing_packages(paper):
        rows.append(("stack of XGBoost + LightGBM + CatBoost (paper)", {"learners": paper}, False))
    return rows


def run_rows(spec: SceneSpec, folder: str, zones: bool) -> dict[str, tuple[str, float, dict]]:
    """{row label: (output raster, seconds, training log)} for every variant (and zoned ones)."""
    out = {}
    todo = variants()
    if zones:
        todo += [("stack per terrain zone (relief classes of the DEM)", {}, True),
                 ("stack per terrain zone, full trend", {"shrink_trend": False}, True)]
    for label, over, zoned in todo:
        s = spec
        if zoned:
            dem = next(c for c in spec.covariates if c.role is Role.DEM)
            ref, info = stacking.write_dem_zones(dem.bands[0], os.path.join(folder, "zones.tif"))
            s = SceneSpec(spec.soil_moisture, [*spec.covariates, LayerInput(Role.ZONE, "terrain zones", [ref])],
                          derive_terrain=spec.derive_terrain, tolerance_days=spec.tolerance_days,
                          check_units=spec.check_units)
        opts = stacking.StackingMethodOptions(**{"learners": DEFAULT_LEARNERS, **over})
        path = os.path.join(folder, f"row{len(out)}.tif")
        t0 = time.time()
        res = stacking.downscale(Scene(s), path, opts)
        seconds = time.time() - t0
        t = res.training
        extra = f", zones: {[(z['zone'], z['uses']) for z in t.get('zones', [])]}" if zoned else ""
        print(f"  {label}: {seconds:.0f} s; held-out stack R {t['global']['oof_scores'].get('stack', {}).get('r', float('nan')):.3f}, "
              f"weights {dict(zip(t['global']['learners'], [round(w, 2) for w in t['global']['weights']]))}, "
              f"trend weight {res.extra.get('trend_weight', 1.0):.2f}, residual {res.extra['residual'].get('residual')}"
              f"{extra}", flush=True)
        out[label] = (path, seconds, t)
    return out


def cross_scale(data: str, folder: str) -> list[tuple[str, dict]]:
    d = os.path.join(data, "cross_scale_regions")
    spec = SceneSpec(rc.dated_bands(os.path.join(d, "sm_20km.tif"), "SMAP 20 km"),
                     [LayerInput(Role.NDVI, "NDVI 10 km", rc.dated_bands(os.path.join(d, "ndvi_10km.tif"), "NDVI")),
                      LayerInput(Role.OTHER, "VV 10 km", rc.dated_bands(os.path.join(d, "vv_10km.tif"), "VV")),
                      LayerInput(Role.OTHER, "VH 10 km", rc.dated_bands(os.path.join(d, "vh_10km.tif"), "VH"))],
                     derive_terrain=False, tolerance_days=0, check_units=False)
    scene = Scene(spec)
    truth = rc.read_stack(os.path.join(d, "sm_10km.tif"))
    cell = scene.cell_index(Window(0, scene.fine.height))
    uni, bil = rc.baselines(scene)
    nan = float("nan")
    rows = [("uniform (coarse value per pixel)", {**rc.pixel_scores(uni, truth, cell), "seconds": nan}),
            ("bilinear interpolation of the coarse cells", {**rc.pixel_scores(bil, truth, cell), "seconds": nan})]
    for label, (path, seconds, _) in run_rows(spec, folder, zones=False).items():
        rows.append((label, {**rc.pixel_scores(rc.read_stack(path), truth, cell), "seconds": seconds}))
    return rows


def delaware(folder: str) -> list[tuple[str, dict]]:
    sample = os.path.join(ROOT, "sample_data", "delaware")
    sm_dir = os.path.join(sample, "esa_cci_sm")
    sm_files = sorted(os.path.join(sm_dir, f) for f in os.listdir(sm_dir) if f.endswith(".tif"))
    from core.inputs.dates import parse_date
    spec = SceneSpec([BandRef(p, 1, "ESA CCI", parse_date(os.path.basename(p))) for p in sm_files],
                     [LayerInput(Role.DEM, "elevation 1 km", [BandRef(os.path.join(sample, "elevation_1km.tif"), 1, "DEM")])])
    scene = Scene(spec)
    stations = read_stations_csv(os.path.join(sample, "deos_stations.csv"))
    dates, insitu = read_insitu_csv(os.path.join(sample, "deos_daily_vwc.csv"))
    uni, bil = rc.baselines(scene)
    paths, seconds = {}, {}
    for name, stack in (("uniform (coarse value per pixel)", uni), ("bilinear interpolation of the coarse cells", bil)):
        p = os.path.join(folder, name.split()[0] + ".tif")
        rc._write_like(p, stack, scene)
        paths[name] = p
    for label, (path, sec, _) in run_rows(spec, folder, zones=True).items():
        paths[label], seconds[label] = path, sec
    products = {name: sample_raster(p, stations) for name, p in paths.items()}
    coarse = "coarse (ESA CCI at its 0.25° cell)"
    products[coarse] = sample_raster_series(sm_files, stations)
    scored = score_products(stations, dates, insitu, products)
    out = []
    for name in [*paths, coarse]:
        sel = [r for r in scored if r["product"] == name and r.get("n", 0) >= 3]
        out.append((name, {"R": float(sum(r["r"] for r in sel) / len(sel)),
                           "ubRMSE": float(sum(r["ubrmse"] for r in sel) / len(sel)),
                           "sites": len(sel), "seconds": seconds.get(name, float("nan"))}))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data"))
    ap.add_argument("--only", choices=["cross_scale", "delaware"])
    args = ap.parse_args()
    data = args.data if os.path.isdir(args.data) else "/work/shared/data"
    with tempfile.TemporaryDirectory(prefix="smds-stacking-bench-") as folder:
        if args.only in (None, "cross_scale"):
            rows = cross_scale(data, folder)
            rc.print_table("cross_scale_regions: SMAP 20 km → 10 km with NDVI, VV, VH (truth: SMAP 10 km)", rows,
                           ["R", "ubRMSE", "RMSE", "pattern_R", "seconds"])
        if args.only in (None, "delaware"):
            rows = delaware(folder)
            rc.print_table("delaware: ESA CCI 0.25° → 1 km with elevation, slope, mTPI; DEOS stations "
                           "(means over sites with ≥ 3 pairs)", rows, ["R", "ubRMSE", "sites", "seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
