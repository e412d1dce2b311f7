"""Cross-scale network on the shared patches, leave-patches-out: train 20 km → 10 km on six patches,
estimate the seventh from its 20 km cells, and score every estimate against the real 10 km product.

Data: ``../shared/data/cross_scale_regions`` (NASA-USDA enhanced SMAP 10 km and its 2×2 means at 20 km,
Sentinel-2 NDVI at 10 km, 109 ten-day windows 2019–2021, seven 7×7-cell patches). Each patch is held out
once (7 folds), so every patch is scored by a network that never saw it (neither its 20 km nor its 10 km
values). Estimates compared, per fine pixel over the 109 windows:

* copy — the 20 km value copied to its four 10 km cells;
* bilinear — bilinear interpolation between 20 km cell centres;
* coherent bilinear — bilinear shifted per cell so the four cells average to the 20 km value;
* network R… — the cross-scale network alone (raw), and made coherent;
* default R… — the algorithm's default output: shrunk toward bilinear by the weight chosen on the training
  level's held-out cells, then coherent.

Columns (core.evaluation.cross_scale_scores): per-pixel R and ubRMSE over time (mean, median), pooled RMSE,
within-cell pattern correlation with the truth, heterogeneity CV (truth's on the last line).

    python benchmarks/cross_scale_patches.py [--schemes R1 R2 R0] [--members 5] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import tempfile
import time

import numpy as np
from osgeo import gdal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core.evaluation.cross_scale_scores import format_table, heterogeneity_cv, score_series  # noqa: E402
from core.inputs.roles import Role  # noqa: E402
from core.inputs.scene import LayerInput, Scene, SceneSpec  # noqa: E402
from core.methods import cross_scale as cs  # noqa: E402
from core.raster.align import BandRef  # noqa: E402
from core.raster.grid import Window, bilinear_from_cells, cell_index  # noqa: E402

gdal.UseExceptions()


def _read(path):
    ds = gdal.Open(path)
    arr = ds.ReadAsArray().astype(np.float32)
    dates = [dt.date.fromisoformat(ds.GetRasterBand(i + 1).GetDescription()) for i in range(ds.RasterCount)]
    return arr, dates, ds.GetGeoTransform(), ds.GetProjection()


def _write(path, arr, dates, gt, wkt):
    ds = gdal.GetDriverByName("GTiff").Create(path, arr.shape[2], arr.shape[1], arr.shape[0], gdal.GDT_Float32)
    ds.SetGeoTransform(gt)
    ds.SetProjection(wkt)
    for i, d in enumerate(dates):
        b = ds.GetRasterBand(i + 1)
        b.WriteArray(arr[i])
        b.SetNoDataValue(float("nan"))
        b.SetDescription(d.isoformat())
    ds = None
    return path


def _bands(path, dates):
    return [BandRef(path, i + 1, os.path.basename(path), d) for i, d in enumerate(dates)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--schemes", nargs="+", default=["R1", "R2", "R0"])
    ap.add_argument("--members", type=int, default=cs.CrossScaleOptions.members)
    args = ap.parse_args()
    from scipy import ndimage

    d = os.path.join(args.data, "cross_scale_regions")
    fine, dates, gt_f, wkt = _read(os.path.join(d, "sm_10km.tif"))
    coarse, _, gt_c, _ = _read(os.path.join(d, "sm_20km.tif"))
    ndvi_path = os.path.join(d, "ndvi_10km.tif")
    labels, n_patches = ndimage.label(np.isfinite(fine).any(axis=0))
    T = len(dates)
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        ndvi = LayerInput(Role.NDVI, "ndvi_10km", _bands(ndvi_path, _read(ndvi_path)[1]))
        lattice = dict(resolution=gt_f[1], resolution_y=-gt_f[5])  # the 10 km lattice (not square in degrees)
        full = Scene(SceneSpec(_bands(os.path.join(d, "sm_20km.tif"), dates), [ndvi], **lattice))
        fg, cg = full.fine, full.coarse
        idx = cell_index(fg, cg).ravel()
        lab = labels[:fg.height, :fg.width].ravel()
        c_flat = coarse.reshape(T, -1)
        copy = np.stack([np.where(idx >= 0, c_flat[t][np.maximum(idx, 0)], np.nan) for t in range(T)])
        bil = np.stack([bilinear_from_cells(c_flat[t], fg, cg, Window(0, fg.height)).ravel() for t in range(T)])
        bil = np.where(np.isfinite(copy), bil, np.nan)
        truth = fine[:, :fg.height, :fg.width].reshape(T, -1)
        estimates = {"copy": copy, "bilinear": bil,
                     "coherent bilinear": np.stack([cs.coherent(bil[t], idx, c_flat[t]) for t in range(T)])}
        training_scores = {}
        for scheme in args.schemes:
            net = np.full_like(truth, np.nan)
            default = np.full_like(truth, np.nan)
            opts = cs.CrossScaleOptions(scheme=scheme, members=args.members)
            for p in range(1, n_patches + 1):
                held_f = labels == p
                held_c = held_f[::2, ::2][:coarse.shape[1], :coarse.shape[2]]
                tr_f = _write(os.path.join(tmp, f"f{p}.tif"), np.where(held_f[None], np.nan, fine), dates, gt_f, wkt)
                tr_c = _write(os.path.join(tmp, f"c{p}.tif"), np.where(held_c[None], np.nan, coarse), dates, gt_c, wkt)
                model = cs.fit(Scene(SceneSpec(_bands(tr_c, dates), [ndvi], **lattice)), opts, _bands(tr_f, dates))
                training_scores.setdefault(scheme, []).append(model.training)
                alone = dataclasses.replace(model, options=dataclasses.replace(model.options, shrink=False))
                res = cs.predict(alone, full, cs.CrossScaleOutputs(os.path.join(tmp, f"net_{scheme}_{p}.tif")),
                                 coherent_output=False)
                net[:, lab == p] = _read(res.path)[0].reshape(T, -1)[:, lab == p]
                res = cs.predict(model, full, cs.CrossScaleOutputs(os.path.join(tmp, f"out_{scheme}_{p}.tif")))
                default[:, lab == p] = _read(res.path)[0].reshape(T, -1)[:, lab == p]
            estimates[f"network {scheme}"] = net
            estimates[f"network {scheme} coherent"] = np.stack([cs.coherent(net[t], idx, c_flat[t]) for t in range(T)])
            estimates[f"default {scheme}"] = default
            print(f"{scheme}: {n_patches} folds done ({time.time() - t_start:.0f} s)", file=sys.stderr)
    scored = np.isfinite(truth).any(axis=0) & (idx >= 0) & np.isfinite(copy).any(axis=0)
    rows = {name: score_series(est[:, scored], truth[:, scored], copy[:, scored], idx[scored])
            for name, est in estimates.items()}
    truth_cv = heterogeneity_cv(np.where(np.isfinite(copy), truth, np.nan)[:, scored], idx[scored])
    print(format_table(rows, f"Leave-one-patch-out, {n_patches} patches, {int(scored.sum())} fine pixels × {T} "
                             f"windows; network: {args.members} members, 5 tanh units, window 1.25 cells"))
    print(f"{'truth (10 km) CV':<28}{'':>84}{truth_cv:>14.4f}")
    for scheme, folds in training_scores.items():
        pr = np.mean([f["held_out"]["network_coherent"]["pattern_r"] for f in folds])
        bp = np.mean([f["held_out"]["coherent_bilinear"]["pattern_r"] for f in folds])
        ws = [f["blend"]["coherent"] for f in folds]
        print(f"training report, {scheme} (held-out 20 % of the training cells, mean of folds): pattern R "
              f"network coherent {pr:.3f} vs coherent bilinear {bp:.3f}; network weight per fold {ws}")
    print(f"wall time {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
