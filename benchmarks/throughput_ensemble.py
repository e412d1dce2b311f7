"""Throughput of ``downscale_ensemble`` end to end, as ratios to plain inference of the same members.

From ONE run (absolute times on a shared 2-core machine are noisy; ratios measured side by side are not):

* a synthetic scene (``downscale_scaling.make_scene``: UTM 18N, coarse cells of 40 × 40 fine pixels, the
  DEM as the only covariate, slope and mTPI derived) of ``--mpx`` fine pixels × ``--dates`` dates;
* two ensembles taking (sm_coarse, mTPI, lat, doy): a dense-style one (6 Dense members 32-16, trained here
  on synthetic stations as in ``ensemble_inference.py``) and the bundled boosted tier ``insitu_hgb_dem``
  (6 HGB members);
* per ensemble, in a fresh process: end-to-end px/s per date (scene, verified load, prediction, the four
  written outputs), next to, on the rows of that same scene (its first ``--infer-mpx`` Mpx of block × date
  rows, built as the run builds them): the naive baseline — each member in its own onnxruntime session,
  one after another, inference only, with 1 and with 2 intra-op threads (the ratios use the faster; the
  1-thread run is timed before and after the others, to show the drift of a shared machine) — and the
  ensemble's own inference as loaded (:meth:`Ensemble.members`; the fused graph when the code has one);
* peak resident memory of end-to-end runs of 1, 4 and 16 Mpx (dense ensemble, ``--memory-dates`` dates);
* the machine's sgemm GFLOP/s and copy GB/s, measured in the same run (``machine.describe``).

Works on the code before the fused graph too (the fused column then reads n/a), so "before" and
"after" come from the same script. Prints figures only.

    <venv python> benchmarks/throughput_ensemble.py [--mpx 4] [--dates 4] [--memory-sizes 1 4 16]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

FEATS = ["sm_coarse", "doy", "mtpi", "lat"]


def train_dense(folder: str) -> None:
    """The dense-style ensemble: 6 Dense members 32-16 on synthetic stations (seeded)."""
    from core.learn.mlp import MLPConfig
    from core.methods.insitu_ensemble import train_ensemble
    from ensemble_inference import synthetic
    schemes = ["free", "field_capacity", "land_cover", "climate_lat", "climate_wetness", "network"]
    train_ensemble(synthetic(), FEATS, ["dense"], schemes, 0, 0, folder,
                   mlp_config=MLPConfig(hidden=(32, 16), max_epochs=20))


def _scene(folder: str):
    from core.inputs.dates import parse_date
    from core.inputs.roles import Role
    from core.inputs.scene import LayerInput, Scene, SceneSpec
    from core.raster.align import BandRef
    sm = [BandRef(p, 1, os.path.basename(p), parse_date(os.path.basename(p)))
          for p in sorted(glob.glob(os.path.join(folder, "sm_*.tif")))]
    dem = LayerInput(Role.DEM, "dem", [BandRef(os.path.join(folder, "dem.tif"), 1, "dem")])
    return Scene(SceneSpec(sm, [dem], derive_terrain=True))


def run_end_to_end(scene_folder: str, ensemble_folder: str, out_folder: str) -> dict:
    """Scene + verified load + prediction with its outputs, timed; peak memory of this process."""
    from core.learn.model_folder import Ensemble
    from machine import peak_rss_mb
    from core.methods.insitu_ensemble.apply import EnsembleOutputs, predict
    t0 = time.perf_counter()
    scene = _scene(scene_folder)
    ens = Ensemble.load(ensemble_folder)
    outs = EnsembleOutputs(*(os.path.join(out_folder, f"{k}.tif") for k in ("mean", "spread", "mask", "interval")))
    predict(ens, scene, outs)
    wall = time.perf_counter() - t0
    return {"px": scene.fine.size, "dates": len(scene.dates), "wall_s": wall,
            "px_per_s_per_date": scene.fine.size * len(scene.dates) / wall,
            "peak_rss_mb": peak_rss_mb()}


def run_inference(scene_folder: str, ensemble_folder: str, infer_mpx: float) -> dict:
    """Inference only on the scene's own rows (first blocks × dates up to ``infer_mpx``): the naive
    per-member sessions and the ensemble's own path, each timed over the same rows."""
    import numpy as np
    import onnxruntime as ort
    from core.learn.model_folder import Ensemble
    from core.methods.insitu_ensemble.apply import check_inputs
    scene = _scene(scene_folder)
    ens = Ensemble.load(ensemble_folder)
    cols = check_inputs(ens, scene)
    extra = tuple(c for c in cols if c in ("sm_coarse", "lat", "lon"))
    rows = []
    for w in scene.fine.windows(1 << 19):
        static = scene.static_block(w)
        for t in range(len(scene.dates)):
            f = scene.features(t, w, static, extra=extra)
            rows.append(np.column_stack([f[c].ravel() for c in cols]).astype(np.float32))
        if sum(len(r) for r in rows) >= infer_mpx * 1e6:
            break
    n = sum(len(r) for r in rows)
    files = sorted(glob.glob(os.path.join(ensemble_folder, "*.onnx")))

    def naive(threads: int):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sessions = [ort.InferenceSession(p, sess_options=so, providers=["CPUExecutionProvider"]) for p in files]

        def run() -> None:
            for X in rows:
                for a in range(0, len(X), 1 << 15):  # the chunk the per-member runtime used
                    for s in sessions:
                        s.run(["sm"], {"X": X[a:a + (1 << 15)]})
        return run

    def own() -> None:
        for X in rows:
            ens.members(X) if hasattr(ens, "members") else ens.predict(X)

    out = {"rows": n, "fused": bool(getattr(ens, "fused", False))}
    for name, fn in (("naive1", naive(1)), ("naive2", naive(2)), ("own", own), ("naive1_again", naive(1))):
        t = time.perf_counter()
        fn()
        out[name] = n / (time.perf_counter() - t)
    return out


def _child(*args: str, env: dict | None = None) -> dict:
    r = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    if r.returncode:
        raise SystemExit(f"child {args} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mpx", type=float, default=4)
    ap.add_argument("--dates", type=int, default=4)
    ap.add_argument("--infer-mpx", type=float, default=2.0, help="rows (millions) of the inference-only timings")
    ap.add_argument("--memory-sizes", type=float, nargs="*", default=[1, 4, 16])
    ap.add_argument("--memory-dates", type=int, default=1)
    ap.add_argument("--gdal-cache-mb", type=int, default=128, help="GDAL_CACHEMAX of the measured runs")
    ap.add_argument("--_e2e", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_infer", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._e2e:
        print(json.dumps(run_end_to_end(*a._e2e)))
        return
    if a._infer:
        print(json.dumps(run_inference(*a._infer, a.infer_mpx)))
        return
    from downscale_scaling import make_scene
    from machine import describe
    env = {"GDAL_CACHEMAX": str(a.gdal_cache_mb)}
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; {describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        dense = os.path.join(tmp, "dense")
        train_dense(dense)
        ensembles = [("dense-style (6 Dense 32-16)", dense),
                     ("boosted (bundled insitu_hgb_dem, 6 HGB)", os.path.join(ROOT, "models", "insitu_hgb_dem"))]
        scene = os.path.join(tmp, "scene")
        os.makedirs(scene)
        make_scene(scene, a.mpx, a.dates)
        print(f"scene {a.mpx:g} Mpx × {a.dates} dates; inference-only on its first {a.infer_mpx:g} M rows; "
              f"GDAL cache {a.gdal_cache_mb} MB")
        print(f"{'ensemble':<40}{'end-to-end':>11}{'naive 1t':>9}{'naive 2t':>9}{'own':>8}{'e2e/naive':>10}"
              f"{'own/naive':>10}{'fused':>6}  (million px/s per date; naive = the faster of 1 and 2 threads)")
        for label, folder in ensembles:
            out = os.path.join(tmp, "out")
            os.makedirs(out, exist_ok=True)
            e2e = _child("--_e2e", scene, folder, out, env=env)
            inf = _child("--_infer", scene, folder, "--infer-mpx", str(a.infer_mpx), env=env)
            one = (inf["naive1"] + inf["naive1_again"]) / 2
            naive = max(one, inf["naive2"])
            print(f"{label:<40}{e2e['px_per_s_per_date'] / 1e6:>11.3f}{one / 1e6:>9.3f}{inf['naive2'] / 1e6:>9.3f}"
                  f"{inf['own'] / 1e6:>8.3f}{e2e['px_per_s_per_date'] / naive:>10.2f}{inf['own'] / naive:>10.2f}"
                  f"{'yes' if inf['fused'] else 'n/a':>6}  (naive 1t before/after: {inf['naive1'] / 1e6:.3f} / "
                  f"{inf['naive1_again'] / 1e6:.3f}; end-to-end peak {e2e['peak_rss_mb']:.0f} MB)", flush=True)
        if a.memory_sizes:
            print(f"peak memory, dense-style ensemble end to end, {a.memory_dates} date(s):")
            for mpx in a.memory_sizes:
                folder = os.path.join(tmp, f"mem{mpx:g}")
                os.makedirs(folder)
                make_scene(folder, mpx, a.memory_dates)
                r = _child("--_e2e", folder, dense, folder, env=env)
                print(f"  {r['px'] / 1e6:>5.1f} Mpx: peak {r['peak_rss_mb']:>6.0f} MB, "
                      f"{r['px_per_s_per_date'] / 1e6:.3f} Mpx/s per date")
    print(f"load average {os.getloadavg()[0]:.1f} at the end; {describe()}")


if __name__ == "__main__":
    main()
