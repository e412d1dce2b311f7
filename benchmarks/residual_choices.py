"""Benchmark: residual choices of the regression family, and whether the defaults do no harm.

Two real data sets from ``../shared/data`` (``--data`` to point elsewhere):

* **cross_scale_regions** — SMAP 20 km (``sm_20km.tif``, 109 ten-day windows 2019–2021) downscaled to
  10 km with Sentinel-2 NDVI and Sentinel-1 VV/VH at 10 km; the truth is SMAP 10 km
  (``sm_10km.tif``). Scored per fine pixel over the windows: mean per-pixel R and ubRMSE, pooled
  RMSE, and the within-cell pattern correlation (fine value minus its 20 km cell mean, estimate vs
  truth, pooled).
* **delaware** — ESA CCI 0.25° (January 2018) downscaled to 1 km with elevation (+ slope, mTPI);
  scored at the DEOS stations (mean over sites with ≥ 3 pairs of R and ubRMSE).

Rows: the coarse value copied to its pixels (uniform), bilinear interpolation of the coarse cells,
SVR trend + uniform, bilinear (SVRB, the regression method before this issue), point-kriged (SVRK)
and area-to-point kriged (SVATARK) residual, each with the full trend, and the same with the trend
weighted by its cross-validated skill; the coarse field alone spread by bilinear + refinement and
by ATPK (trend weight 0); and the defaults of ``downscale_regression`` (weighted trend + residual
chosen one scale up) and ``downscale_svatark`` (weighted SVR + ATPK).

    <venv python> benchmarks/residual_choices.py [--data ../shared/data] [--only cross_scale|delaware]

Not a test: it prints a table and asserts nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from typing import Optional, Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from osgeo import gdal  # noqa: E402

from core.evaluation.cross_scale_scores import score_series  # noqa: E402
from core.evaluation.stations import raster_dates, read_insitu_csv, read_stations_csv, sample_raster, \
    sample_raster_series, score_products  # noqa: E402
from core.inputs.roles import Role  # noqa: E402
from core.inputs.scene import LayerInput, Scene, SceneSpec  # noqa: E402
from core.methods import regression, svatark  # noqa: E402
from core.raster.align import BandRef  # noqa: E402
from core.raster.grid import bilinear_from_cells  # noqa: E402

gdal.UseExceptions()

#: (row label, residual, trend and residual weighted?) for the SVR trend variants
VARIANTS = [("SVR + uniform residual, full trend", "uniform", False),
            ("SVRB (SVR + bilinear residual), full trend", "bilinear", False),
            ("SVRK (SVR + point kriging), full trend", "point_kriging", False),
            ("SVATARK (SVR + ATPK), full trend", "atpk", False),
            ("SVR + uniform, weighted trend", "uniform", True),
            ("SVR + bilinear, weighted trend and residual", "bilinear", True),
            ("SVR + point kriging, weighted trend and residual", "point_kriging", True),
            ("SVR + ATPK, weighted trend and residual", "atpk", True)]

#: Columns of the cross-scale table (keys of :func:`core.evaluation.cross_scale_scores.score_series`): mean
#: per-pixel R and ubRMSE, pooled RMSE, pattern R against each cell's own mean and against the coarse value.
CROSS_SCALE_COLUMNS = ["r_mean", "ubrmse_mean", "rmse", "pattern_r_cell", "pattern_r", "coverage"]
#: Columns of the Delaware table: station means, and R paired with the coarse product at the same sites
#: (mean difference, its standard error, sites where R drops by more than 0.001).
DELAWARE_COLUMNS = ["R", "ubRMSE", "bias", "sites", "dR_vs_coarse", "dR_se", "sites_worse"]


def dated_bands(path: str, label: str) -> list[BandRef]:
    ds = gdal.Open(path)
    return [BandRef(path, i + 1, label, d) for i, d in enumerate(raster_dates(ds, path))]


def estimates(scene: Scene, folder: str, svatark_folder_name: str) -> dict[str, str]:
    """Run every variant on ``scene``; returns {row label: output raster}."""
    out: dict[str, str] = {}
    t0 = time.time()
    base = regression.fit(scene, regression.RegressionOptions(regressor="svr"))
    tr = base.training
    print(f"  SVR trend fitted on {tr['n_samples']} coarse samples, CV R = {tr.get('cv_r', float('nan')):.3f} "
          f"({time.time() - t0:.0f} s); cross-validated trend weights (between cells / within 2×2 blocks → applied):",
          flush=True)
    for part, key in (("cell means", "trend_weight"), ("static within-cell pattern", "trend_weight_static"),
                      ("date-to-date anomaly", "trend_weight_dynamic")):
        print(f"    {part}: {tr[key + '_between_cells']:.3f} / {tr[key + '_within_blocks']:.3f} → {tr[key]:.3f}")
    print(f"    held-out cells, RMSE (ubRMSE): interpolated {tr['cv_rmse_interpolation']:.4f} "
          f"({tr['cv_ubrmse_interpolation']:.4f}), full trend {tr['cv_rmse_trend']:.4f} ({tr['cv_ubrmse_trend']:.4f}), "
          f"weighted {tr['cv_rmse_weighted']:.4f} ({tr['cv_ubrmse_weighted']:.4f})", flush=True)
    for label, residual, weighted in VARIANTS:
        opts = dataclasses.replace(base.options, residual=residual, shrink_trend=weighted, shrink_residual=weighted)
        model = regression.RegressionModel(base.names, base.categorical, opts, base.trend, base.training)
        path = os.path.join(folder, f"{residual}_{int(weighted)}.tif")
        t0 = time.time()
        regression.predict(model, scene, path)
        print(f"  {label}: {time.time() - t0:.1f} s", flush=True)
        out[label] = path
    opts = dataclasses.replace(base.options, residual="atpk", shrink_trend=True, shrink_residual=False)
    model = regression.RegressionModel(base.names, base.categorical, opts, base.trend, base.training)
    path = os.path.join(folder, "atpk_full_departure.tif")
    regression.predict(model, scene, path)
    out["SVR + ATPK (full departure), weighted trend"] = path
    zero = {"trend_weight": 0.0, "trend_weight_static": 0.0, "trend_weight_dynamic": 0.0}
    for residual, label in (("bilinear", "bilinear + refinement of the coarse field alone (trend weight 0)"),
                            ("atpk", "ATPK of the coarse field alone (trend weight 0)")):
        opts = dataclasses.replace(base.options, residual=residual, shrink_trend=True, shrink_residual=False)
        model = regression.RegressionModel(base.names, base.categorical, opts, base.trend, {**base.training, **zero})
        path = os.path.join(folder, f"{residual}_alone.tif")
        regression.predict(model, scene, path)
        out[label] = path
    path = os.path.join(folder, "regression_defaults.tif")
    res = regression.downscale(scene, path)
    log = res.extra["residual"]
    print(f"  downscale_regression defaults: residual chosen one scale up = {log['residual']}, departure weights "
          f"{log.get('departure_weight_static', 1.0):.3f} static / {log.get('departure_weight_dynamic', 1.0):.3f} "
          "date-to-date; one scale up (mean per-cell ubRMSE, full → weighted; β static, dynamic):", flush=True)
    for name, sc in log.get("one_scale_up", {}).items():
        print(f"    {name}: {sc['cell_ubrmse']:.5f} → {sc['weighted_cell_ubrmse']:.5f}; "
              f"β {sc.get('beta_static', float('nan')):.3f}, {sc.get('beta_dynamic', float('nan')):.3f}", flush=True)
    out["downscale_regression defaults"] = path
    path = os.path.join(folder, svatark_folder_name)
    res = svatark.downscale(scene, path)
    log = res.extra["residual"]
    print(f"  downscale_svatark defaults: ATPK departure weights {log.get('departure_weight_static', 1.0):.3f} static / "
          f"{log.get('departure_weight_dynamic', 1.0):.3f} date-to-date", flush=True)
    out["downscale_svatark defaults"] = path
    return out


def read_stack(path: str) -> np.ndarray:
    ds = gdal.Open(path)
    return ds.ReadAsArray().astype(np.float64).reshape(ds.RasterCount, ds.RasterYSize, ds.RasterXSize)


def baselines(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Uniform (coarse value per pixel) and bilinear stacks on the scene's fine grid."""
    from core.raster.grid import Window
    w = Window(0, scene.fine.height)
    idx = scene.cell_index(w)
    uni, bil = [], []
    for t in range(len(scene.dates)):
        z = scene.coarse_sm(t)
        u = np.where(idx >= 0, z[np.maximum(idx, 0)], np.nan)
        uni.append(u)
        bil.append(np.where(np.isfinite(u), bilinear_from_cells(z, scene.fine, scene.coarse, w), np.nan))
    return np.array(uni), np.array(bil)


def cross_scale(data: str, folder: str, estimate=None) -> list[tuple[str, dict]]:
    """Rows of the cross_scale_regions table; ``estimate(scene, folder, name) -> {label: raster}`` gives the
    estimates scored besides the baselines (default: :func:`estimates`)."""
    d = os.path.join(data, "cross_scale_regions")
    spec = SceneSpec(dated_bands(os.path.join(d, "sm_20km.tif"), "SMAP 20 km"),
                     [LayerInput(Role.NDVI, "NDVI 10 km", dated_bands(os.path.join(d, "ndvi_10km.tif"), "NDVI")),
                      LayerInput(Role.OTHER, "VV 10 km", dated_bands(os.path.join(d, "vv_10km.tif"), "VV")),
                      LayerInput(Role.OTHER, "VH 10 km", dated_bands(os.path.join(d, "vh_10km.tif"), "VH"))],
                     derive_terrain=False, tolerance_days=0, check_units=False)
    scene = Scene(spec)
    truth = read_stack(os.path.join(d, "sm_10km.tif"))
    assert truth.shape[1:] == (scene.fine.height, scene.fine.width), "the fine grid must be the 10 km grid"
    print(f"cross_scale_regions: {len(scene.dates)} windows, fine {scene.fine.width}×{scene.fine.height}, "
          f"coarse {scene.coarse.width}×{scene.coarse.height}", flush=True)
    from core.raster.grid import Window
    cell = scene.cell_index(Window(0, scene.fine.height)).ravel()
    uni, bil = baselines(scene)
    T = len(scene.dates)

    def scores(stack: np.ndarray) -> dict:
        return score_series(stack.reshape(T, -1), truth.reshape(T, -1), uni.reshape(T, -1), cell, min_pairs=10)

    rows = [("uniform (coarse value per pixel)", scores(uni)), ("bilinear interpolation of the coarse cells", scores(bil))]
    for label, path in (estimate or estimates)(scene, folder, "svatark_cross.tif").items():
        rows.append((label, scores(read_stack(path))))
    return rows


def delaware(data: str, folder: str, estimate=None) -> list[tuple[str, dict]]:
    """Rows of the Delaware station table (``estimate`` as in :func:`cross_scale`)."""
    sample = os.path.join(ROOT, "sample_data", "delaware")
    sm_dir = os.path.join(sample, "esa_cci_sm")
    sm_files = sorted(os.path.join(sm_dir, f) for f in os.listdir(sm_dir) if f.endswith(".tif"))
    from core.inputs.dates import parse_date
    spec = SceneSpec([BandRef(p, 1, "ESA CCI", parse_date(os.path.basename(p))) for p in sm_files],
                     [LayerInput(Role.DEM, "elevation 1 km", [BandRef(os.path.join(sample, "elevation_1km.tif"), 1, "DEM")])])
    scene = Scene(spec)
    print(f"delaware: {len(scene.dates)} days, fine {scene.fine.width}×{scene.fine.height}, "
          f"coarse {scene.coarse.width}×{scene.coarse.height}", flush=True)
    stations = read_stations_csv(os.path.join(sample, "deos_stations.csv"))
    dates, insitu = read_insitu_csv(os.path.join(sample, "deos_daily_vwc.csv"))
    uni, bil = baselines(scene)
    products = {}
    paths = {}
    for name, stack in (("uniform (coarse value per pixel)", uni), ("bilinear interpolation of the coarse cells", bil)):
        p = os.path.join(folder, name.split()[0] + ".tif")
        _write_like(p, stack, scene)
        paths[name] = p
    paths.update((estimate or estimates)(scene, folder, "svatark_delaware.tif"))
    products = {name: sample_raster(p, stations) for name, p in paths.items()}
    products["coarse (ESA CCI at its 0.25° cell)"] = sample_raster_series(sm_files, stations)
    rows = score_products(stations, dates, insitu, products)
    coarse_name = "coarse (ESA CCI at its 0.25° cell)"
    coarse_r = {r["station"]: r["r"] for r in rows if r["product"] == coarse_name and r.get("n", 0) >= 3}
    out = []
    for name in [*paths, coarse_name]:
        sel = [r for r in rows if r["product"] == name and r.get("n", 0) >= 3]
        # paired with the coarse product at the same sites: mean R difference, its standard error, sites worse
        diff = np.array([r["r"] - coarse_r[r["station"]] for r in sel if r["station"] in coarse_r], dtype=np.float64)
        diff = diff[np.isfinite(diff)]
        out.append((name, {"R": float(np.nanmean([r["r"] for r in sel])),
                           "ubRMSE": float(np.nanmean([r["ubrmse"] for r in sel])),
                           "bias": float(np.nanmean([r["bias"] for r in sel])), "sites": len(sel),
                           "dR_vs_coarse": float(diff.mean()) if diff.size else float("nan"),
                           "dR_se": float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else float("nan"),
                           "sites_worse": int(np.sum(diff < -1e-3))}))
    return out


def _write_like(path: str, stack: np.ndarray, scene: Scene) -> None:
    from core.io.output import RasterWriter
    from core.inputs.dates import format_date
    from core.raster.grid import Window
    with RasterWriter(path, scene.fine, [format_date(d) for d in scene.dates]) as w:
        for t in range(stack.shape[0]):
            w.write(t, Window(0, scene.fine.height), stack[t])
        w.commit(overviews=False)


def print_table(title: str, rows: list[tuple[str, dict]], keys: list[str]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(["method"] + keys) + " |")
    print("|" + "---|" * (len(keys) + 1))
    for name, m in rows:
        print("| " + " | ".join([name] + [f"{m[k]:.3f}" if isinstance(m[k], float) else str(m[k]) for k in keys]) + " |")


def table_arguments(doc: str, more: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The command line of a benchmark printing these tables: ``--data``, ``--only`` (a table, or one of ``more``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data"))
    ap.add_argument("--only", choices=["cross_scale", "delaware", *more])
    return ap


def print_tables(data: str, only: Optional[str] = None, estimate=None, prefix: str = "smds-residual-bench-") -> None:
    """Both tables (or the one ``only`` names; another name prints none) for ``estimate`` (as in
    :func:`cross_scale`), their rasters in a temporary folder."""
    data = data if os.path.isdir(data) else "/work/shared/data"
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        if only in (None, "cross_scale"):
            print_table("cross_scale_regions: SMAP 20 km → 10 km with NDVI, VV, VH (truth: SMAP 10 km), "
                        "per fine pixel over 109 windows", cross_scale(data, folder, estimate), CROSS_SCALE_COLUMNS)
        if only in (None, "delaware"):
            print_table("delaware: ESA CCI 0.25° → 1 km with elevation, slope, mTPI; DEOS stations "
                        "(means over sites with ≥ 3 pairs)", delaware(data, folder, estimate), DELAWARE_COLUMNS)


def main() -> int:
    args = table_arguments(__doc__).parse_args()
    print_tables(args.data, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
