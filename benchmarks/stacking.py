"""Benchmark: the stacking method against each base learner, zoned against unzoned, and against
bilinear interpolation of the coarse cells — on the two real data sets of ``residual_choices.py``
(same scenes, same scores, so the tables compare row for row):

* **cross_scale_regions** — SMAP 20 km → 10 km with Sentinel-2 NDVI and Sentinel-1 VV/VH at 10 km,
  truth SMAP 10 km: per-pixel R and ubRMSE over 109 windows, pooled RMSE, within-cell pattern R;
* **delaware** — ESA CCI 0.25° → 1 km with elevation (+ slope, mTPI): R and ubRMSE at the DEOS
  stations (means over sites with ≥ 3 pairs). Zoned rows use the relief classes of the DEM.

Every stacking row is a full ``downscale_stacking`` run (defaults: the stack's detail weighted by its
cross-validated skill, residual chosen one scale up) unless it says "full trend"; wall time per row in
the log lines.

    <venv python> benchmarks/stacking.py [--data ../shared/data] [--only cross_scale|delaware]

Not a test: it prints tables and asserts nothing.
"""
from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import residual_choices as rc  # noqa: E402  (scenes, baselines and scores shared with that benchmark)

from core.inputs.roles import Role  # noqa: E402
from core.inputs.scene import LayerInput, Scene, SceneSpec  # noqa: E402
from core.learn.stacking import DEFAULT_LEARNERS, missing_packages  # noqa: E402
from core.methods import stacking  # noqa: E402


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


def stack_estimates(scene: Scene, folder: str, _name: str) -> dict[str, str]:
    """The estimate function of ``residual_choices.cross_scale`` / ``delaware``: every stacking row
    (zoned rows where the scene has a DEM), {row label: output raster}; wall times are printed."""
    has_dem = any(c.role is Role.DEM for c in scene.spec.covariates)
    return {label: path for label, (path, _, _) in run_rows(scene.spec, folder, zones=has_dem).items()}


def main() -> int:
    args = rc.table_arguments(__doc__).parse_args()
    rc.print_tables(args.data, args.only, stack_estimates, prefix="smds-stacking-bench-")
    return 0


if __name__ == "__main__":
    sys.exit(main())
