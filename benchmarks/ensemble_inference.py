"""Throughput of ensemble inference: onnxruntime vs the same members in numpy / scikit-learn.

Prints figures only (no asserts). Members are trained on synthetic stations with the sizes of
the recipes (6 Dense members 32-16; 3 random forests of 30 trees, depth 8; 6 boosted members of the
bundled tiers: 100 iterations of 15 leaves + a line), written as
ONNX and loaded through :class:`core.methods.insitu_ensemble.Ensemble` (verified cards and hashes); the numpy
side predicts with the very same in-memory members (numpy MLP, scikit-learn ``predict``).
Pixels are rows of (sm_coarse, doy, mtpi, lat), i.e. the per-pixel work of a raster run.

Usage: python benchmarks/ensemble_inference.py [--pixels 2000000] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import best_time  # noqa: E402

from core.methods.insitu_ensemble import Ensemble, load_training_state, train_ensemble  # noqa: E402
from core.learn.boosting import BoostingConfig  # noqa: E402
from core.learn.forest import ForestConfig, ForestMember  # noqa: E402
from core.learn.mlp import MLPConfig  # noqa: E402
from core.methods.insitu_ensemble.samples import Samples  # noqa: E402

FEATS = ["sm_coarse", "doy", "mtpi", "lat"]


def synthetic(n_sites: int = 60, n_dates: int = 60, seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), n_dates)
    doy = np.tile(np.linspace(1, 360, n_dates), n_sites)
    mtpi = np.repeat(rng.normal(0, 8, n_sites), n_dates)
    lat = np.repeat(rng.uniform(28, 48, n_sites), n_dates)
    sm = np.clip(rng.uniform(0.03, 0.45, site.size), 0, 1)
    y = 0.05 + 0.5 * sm - 0.003 * mtpi + 0.02 * np.sin(doy / 58) + rng.normal(0, 0.02, site.size)
    fc = np.repeat(rng.uniform(10, 35, n_sites), n_dates)
    X = np.stack([sm, doy, mtpi, lat], axis=1)
    dates = np.datetime64("2020-01-01") + (doy - 1).astype(int)
    return Samples(X, y, site.astype(str), dates, sm, FEATS,
                   {"field_capacity": fc, "lat": lat, "network": np.array(["n"] * site.size),
                    "land_cover": np.full(site.size, 52.0), "wetness": fc})


def rate(fn, n: int, repeat: int = 3) -> float:
    """Million rows per second of ``fn`` over ``n`` rows, best of ``repeat`` after a warm-up."""
    return n / best_time(fn, repeat, warm_up=True) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixels", type=int, default=2_000_000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="onnxruntime intra-op threads / sklearn n_jobs (one row per value)")
    args = ap.parse_args()
    data = synthetic()
    rng = np.random.default_rng(1)
    n = args.pixels
    X = np.stack([rng.uniform(0.03, 0.45, n), rng.integers(1, 366, n), rng.normal(0, 8, n),
                  rng.uniform(28, 48, n)], axis=1).astype(np.float32)
    schemes = ["free", "field_capacity", "land_cover", "climate_lat", "climate_wetness", "network"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n / 1e6:.1f} Mpx, {len(FEATS)} inputs, {os.cpu_count()} cores, load average {load:.1f} at start")
    print(f"{'ensemble':<34}{'threads':>8}{'onnxruntime Mpx/s':>19}{'numpy/sklearn Mpx/s':>21}{'files KiB':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, archs, kw in [
            ("Dense, 6 members (32-16)", ["dense"], dict(mlp_config=MLPConfig(hidden=(32, 16), max_epochs=20))),
            ("RF, 3 forests (30 trees, depth 8)", ["rf"], dict(forest_config=ForestConfig())),
            ("HGB, 6 members (100 × 15 leaves)", ["hgb"], dict(boosting_config=BoostingConfig(max_iter=100))),
        ]:
            folder = os.path.join(tmp, archs[0])
            train_ensemble(data, FEATS, archs, schemes, 0, 0, folder, save_training_state=True, **kw)
            models = list(load_training_state(folder)["models"].values())
            size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith(".onnx"))
            for threads in args.threads:
                ens = Ensemble.load(folder, intra_op_threads=threads)
                for m in models:
                    if isinstance(m, ForestMember):
                        m.model.set_params(n_jobs=threads)

                def numpy_predict():
                    acc = np.zeros(n)
                    for m in models:
                        acc += m.predict(X)   # numpy MLP in float64 / scikit-learn forest
                    return acc / len(models)

                onnx_rate = rate(lambda: ens.predict(X), n)
                np_rate = rate(numpy_predict, n, repeat=1 if archs != ["dense"] else 2)
                print(f"{label:<34}{threads:>8}{onnx_rate:>19.2f}{np_rate:>21.2f}{size / 1024:>11.0f}")
    root = Path(__file__).resolve().parents[1] / "models"
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("*.onnx"))):
        files = sorted(folder.glob("*.onnx"))
        print(f"bundled {folder.name}: {len(files)} members, "
              f"{sum(f.stat().st_size for f in files) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
