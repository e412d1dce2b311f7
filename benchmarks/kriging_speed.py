"""Benchmark: area-to-point and point kriging of a residual on a 1 000-cell scene with 625 fine
pixels per cell (25 × 40 coarse cells of 25 × 25 pixels = 625 000 fine pixels), 25 neighbours.

Prints the time to fit (experimental variogram, deconvolution, per-date sills) and to predict one
date (value + kriging variance, streamed in row blocks of ~64 k pixels), and the coherence of ATPK
(max |cell mean of the prediction − residual|).

    <venv python> benchmarks/kriging_speed.py [--dates 3]

Not a test: it prints figures and asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.methods.residual import AtpkResidual, PointKrigingResidual, ResidualGeometry  # noqa: E402
from core.raster.aggregate import CellAccumulator  # noqa: E402
from core.raster.grid import Grid, cell_index  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dates", type=int, default=3)
    args = ap.parse_args()
    rows, cols, r = 25, 40, 25
    coarse = Grid("EPSG:32618", 500000.0, 4400000.0, 1000.0 * r, 1000.0 * r, cols, rows)
    fine = Grid("EPSG:32618", 500000.0, 4400000.0, 1000.0, 1000.0, cols * r, rows * r)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:rows, 0:cols]
    res = [(0.03 * np.sin(x / 4.0 + t) * np.cos(y / 5.0) + 0.005 * rng.normal(size=x.shape)).ravel().astype(np.float32)
           for t in range(args.dates)]
    windows = list(fine.windows(1 << 16))
    geom = ResidualGeometry(fine, coarse, windows, None, lambda w: cell_index(fine, coarse, w))
    print(f"{coarse.size} cells × {r * r} px per cell = {fine.size} fine px, {args.dates} dates, 25 neighbours")
    for model in (AtpkResidual(), PointKrigingResidual()):
        t0 = time.time()
        fitted = model.fit(res, geom, lambda: False)
        t_fit = time.time() - t0
        t0 = time.time()
        worst = 0.0
        for t in range(args.dates):
            acc = CellAccumulator(coarse.size)
            for w in windows:
                v, _ = fitted.predict(t, w)
                acc.add(v, geom.cell_index(w))
            worst = max(worst, float(np.nanmax(np.abs(acc.mean() - res[t]))))
        per_date = (time.time() - t0) / args.dates
        print(f"{model.label:32s} fit {t_fit:5.2f} s, predict {per_date:5.2f} s per date "
              f"({fine.size / per_date / 1e6:.2f} Mpx/s); max |cell mean − residual| = {worst:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
