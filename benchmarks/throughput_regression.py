"""Benchmark: throughput of the trend methods, end to end next to their model's inference alone — as ratios
from one run, because absolute times on a shared two-core machine are noisy.

On synthetic scenes of ``downscale_scaling.py`` (6 covariates + slope and mTPI derived from the DEM, coarse
cells of 40 × 40 fine pixels), for each trend:

* **end to end**: ``regression.downscale`` (fit on the coarse grid + apply: read, align, derive terrain,
  predict, residual, write with overviews) and the apply step alone (``regression.predict`` of the fitted
  model), in fine px/s per date;
* **scikit-learn predict**: the fitted pipeline's own ``predict`` on rows of the same scene (the naive
  baseline), and **compiled**: the compiled predictors, inference only on the same rows — for gradient
  boosting the numpy bitvectors the method uses (:mod:`core.learn.bitvector_trees`: one date at a time,
  a block's dates together as the pipeline predicts them, and a chunk × thread sweep of the kernel) and the
  onnxruntime tree ensemble it used before (:mod:`core.learn.compiled_trees`, 1 and 2 threads); the SVR's
  float32 BLAS kernel at several block sizes; the stack's ONNX graph;
* peak memory of a whole ``downscale`` for 1, 4 and 16 Mpx (each in a fresh process, GDAL cache 128 MB,
  a small gradient-boosting trend: memory does not depend on the model size);
* the machine's sgemm GFLOP/s and copy GB/s (``machine.py``) in the same run.

    <venv python> benchmarks/throughput_regression.py [--code DIR] [--mpx 4] [--small-mpx 1] [--dates 4]

``--code`` runs the methods of another checkout (e.g. main's code, for the "before" figures); the compiled
tree predictors are always this checkout's (loaded by file path, they import no other module of the plugin).
Gradient boosting runs on the ``--mpx`` scene with its default size (200 iterations); SVR, random forest
and stacking on the ``--small-mpx`` scene (their fits are slower). Baselines are timed on at most
``--rows`` rows of the scene (all dates of its first blocks).

Not a test: it prints figures (for README and issue notes) and asserts nothing.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from machine import best_time, peak_rss_mb  # noqa: E402


def _own_module(name: str):
    """This checkout's ``core/learn/<name>.py`` (it imports no other module of the plugin), whatever ``--code``."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(ROOT, "core", "learn", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _scene(folder: str):
    from core.inputs.dates import parse_date
    from core.inputs.roles import Role
    from core.inputs.scene import LayerInput, Scene, SceneSpec
    from core.raster.align import BandRef
    sm = [BandRef(p, 1, os.path.basename(p), parse_date(os.path.basename(p)))
          for p in sorted(glob.glob(os.path.join(folder, "sm_*.tif")))]
    roles = {"dem": Role.DEM, "ndvi": Role.NDVI, "lst": Role.LST, "sand": Role.SAND, "clay": Role.CLAY, "ph": Role.PH}
    covs = [LayerInput(r, k, [BandRef(os.path.join(folder, f"{k}.tif"), 1, k)]) for k, r in roles.items()]
    return Scene(SceneSpec(sm, covs, derive_terrain=True))


def _rows(scene, names, max_rows: int):
    """Feature rows of every date on the scene's first blocks (finite rows only), at most ``max_rows``."""
    import numpy as np
    from core.methods.trend import stack_features
    parts, n = [], 0
    for w in scene.fine.windows(1 << 20):
        static = scene.static_block(w)
        for t in range(len(scene.dates)):
            X = stack_features(scene.features(t, w, static), names)
            parts.append(X[np.isfinite(X).all(axis=1)])
            n += len(parts[-1])
        if n >= max_rows:
            break
    return np.concatenate(parts)[:max_rows]


def run_case(code: str, folder: str, method: str, max_rows: int) -> dict:
    """One trend on one scene, in this process (``code`` first on the path)."""
    sys.path.insert(0, code)
    import numpy as np
    from core.methods import regression
    scene = _scene(folder)
    px = scene.fine.size * len(scene.dates)
    out = {"method": method, "mpx": scene.fine.size / 1e6, "dates": len(scene.dates)}
    if method == "stacking":
        from core.methods import stacking
        opts = stacking.StackingMethodOptions(importance="permutation", importance_repeats=0)
        t0 = time.perf_counter()
        model = stacking.fit(scene, opts)
        fit_s = time.perf_counter() - t0
        apply_s = best_time(lambda: stacking.predict(model, scene, os.path.join(folder, f"out_{method}.tif")))
        X = _rows(scene, model.names, max_rows)
        out["compiled_px_s"] = len(X) / best_time(lambda: model.trend.predict(X))
    else:
        opts = regression.RegressionOptions(regressor=method)
        t0 = time.perf_counter()
        model = regression.fit(scene, opts)
        fit_s = time.perf_counter() - t0
        apply_s = best_time(lambda: regression.predict(model, scene, os.path.join(folder, f"out_{method}.tif")))
        pipe = model.trend.global_model
        X = _rows(scene, model.names, max_rows)
        sk_rows = X if method != "svr" else X[:20000]   # libsvm's per-sample loop: a sample of rows
        out["sklearn_px_s"] = len(sk_rows) / best_time(lambda: pipe.predict(sk_rows))
        if method == "svr":
            from core.methods.trend import predict_pipeline
            for chunk in (2048, 8192, 32768):
                out[f"compiled_px_s chunk {chunk}"] = len(X) / best_time(lambda: predict_pipeline(pipe, X, chunk=chunk))
            out["support_vectors"] = int(len(pipe[-1].support_))
        else:
            ct = _own_module("compiled_trees")
            Z = pipe[:-1].transform(X).astype(np.float32)
            for threads in (1, 2):
                trees = ct.CompiledTrees.from_estimator(pipe[-1], Z.shape[1], threads=threads)
                trees.predict(Z[:1000])
                out[f"compiled_px_s {threads} thr"] = len(X) / best_time(
                    lambda: trees.predict(pipe[:-1].transform(X).astype(np.float32)))
            ref = pipe.predict(X)
            out["max_abs_diff_compiled"] = float(np.max(np.abs(trees.predict(Z) - ref)))
            if method == "hgb":
                out.update(_bitvector_case(pipe, scene, model.names, X, Z, ref, max_rows))
    out.update({"fit_s": fit_s, "apply_s": apply_s, "e2e_px_s": px / (fit_s + apply_s), "apply_px_s": px / apply_s,
                "rows": len(X), "predictor": getattr(getattr(model, "trend", None), "predictor", lambda: "")()})
    return out


def _bitvector_case(pipe, scene, names, X, Z, ref, max_rows: int) -> dict:
    """The bitvector predictor (this checkout's :mod:`core.learn.bitvector_trees`) on the same rows, one date at a
    time (transform included, as for onnxruntime), all dates of the first block together (``predict_dates``,
    transform of every date included), and its chunk × thread sweep (kernel only, on 2¹⁸ rows)."""
    import numpy as np
    from core.methods.trend import stack_features
    bv = _own_module("bitvector_trees")
    trees = bv.BitvectorTrees.from_estimator(pipe[-1], Z.shape[1])
    trees.predict(Z[:1000])
    out = {"bitvector_px_s": len(X) / best_time(lambda: trees.predict(pipe[:-1].transform(X).astype(np.float32))),
           "max_abs_diff_bitvector": float(np.max(np.abs(trees.predict(Z) - ref)))}
    w = next(iter(scene.fine.windows(1 << 20)))
    static = scene.static_block(w)
    dates = [stack_features(scene.features(t, w, static), names) for t in range(len(scene.dates))]
    ok = np.all([np.isfinite(d).all(axis=1) for d in dates], axis=0)
    dates = [d[ok][:max_rows // len(dates)] for d in dates]
    Zs = [pipe[:-1].transform(d).astype(np.float32) for d in dates]
    dynamic = [j for j in range(Z.shape[1]) if not np.array_equal(Zs[0][:, j], Zs[1][:, j], equal_nan=True)]
    out["bitvector_dates_px_s"] = len(dates) * len(dates[0]) / best_time(lambda: trees.predict_dates(
        [pipe[:-1].transform(d).astype(np.float32) for d in dates], dynamic))
    out["dynamic_columns"] = len(dynamic)
    for chunk in (256, 512, 1024, 2048):
        for threads in (1, 2):
            t = bv.BitvectorTrees.from_estimator(pipe[-1], Z.shape[1], chunk=chunk, threads=threads)
            out[f"sweep {chunk}×{threads}"] = round(len(Z[:1 << 18]) / best_time(lambda: t.predict(Z[:1 << 18])) / 1e3)
    return out


def run_memory(code: str, folder: str) -> dict:
    sys.path.insert(0, code)
    from core.methods import regression
    scene = _scene(folder)
    t0 = time.perf_counter()
    regression.downscale(scene, os.path.join(folder, "out.tif"),
                         regression.RegressionOptions(regressor="hgb", n_estimators=20))
    wall = time.perf_counter() - t0
    return {"mpx": scene.fine.size / 1e6, "px_s": scene.fine.size * len(scene.dates) / wall,
            "peak_mb": peak_rss_mb()}


def _child(args: list[str], gdal_cache_mb: int = 128) -> dict:
    env = dict(os.environ, GDAL_CACHEMAX=str(gdal_cache_mb))
    done = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _make(folder: str, mpx: float, dates: int) -> None:
    from downscale_scaling import make_scene
    make_scene(folder, mpx, dates)


def _ratio_line(r: dict, base_key: str, base_label: str) -> str:
    comp = {k: v for k, v in r.items() if k.startswith("compiled_px_s")}
    parts = [f"{r['method']:>8} {r['mpx']:.1f} Mpx × {r['dates']}: end-to-end {r['e2e_px_s'] / 1e3:7.1f} kpx/s/date, "
             f"apply {r['apply_px_s'] / 1e3:7.1f}"]
    if base_key in r:
        parts.append(f"{base_label} {r[base_key] / 1e3:7.1f} → end-to-end {r['e2e_px_s'] / r[base_key]:.2f}×, "
                     f"apply {r['apply_px_s'] / r[base_key]:.2f}× of it")
    for k, v in comp.items():
        label = k.replace("compiled_px_s", "onnxruntime" if "thr" in k else "compiled").strip()
        parts.append(f"{label} {v / 1e3:7.1f} (apply = {r['apply_px_s'] / v:.2f}× of it)")
    for k, label in (("bitvector_px_s", "bitvectors, one date at a time"),
                     ("bitvector_dates_px_s", "bitvectors, a block's dates together")):
        if k in r:
            parts.append(f"{label} {r[k] / 1e3:7.1f} (= {r[k] / r[base_key]:.2f}× scikit-learn; "
                         f"apply = {r['apply_px_s'] / r[k]:.2f}× of it)")
    return ";\n      ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", default=ROOT, help="checkout whose core/ runs the methods")
    ap.add_argument("--mpx", type=float, default=4)
    ap.add_argument("--small-mpx", type=float, default=1)
    ap.add_argument("--dates", type=int, default=4)
    ap.add_argument("--rows", type=int, default=1 << 20)
    ap.add_argument("--methods", nargs="+", default=["hgb", "svr", "rf", "stacking"])
    ap.add_argument("--memory-sizes", type=float, nargs="*", default=[1, 4, 16])
    ap.add_argument("--_make", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--_case", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--_memory", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._make:
        _make(a._make[0], float(a._make[1]), a.dates)
        return
    if a._case:
        print(json.dumps(run_case(a.code, a._case[1], a._case[0], a.rows)))
        return
    if a._memory:
        print(json.dumps(run_memory(a.code, a._memory)))
        return
    from machine import describe
    print(f"code: {os.path.abspath(a.code)}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {describe()}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="smds-throughput-") as tmp:
        scenes = {}
        for mpx in sorted({a.mpx, a.small_mpx, *a.memory_sizes}):
            scenes[mpx] = os.path.join(tmp, f"{mpx:g}mpx")
            os.makedirs(scenes[mpx])
            subprocess.run([sys.executable, __file__, "--dates", str(a.dates), "--_make", scenes[mpx], str(mpx)],
                           check=True)
        for method in a.methods:
            folder = scenes[a.mpx if method == "hgb" else a.small_mpx]
            r = _child(["--code", a.code, "--rows", str(a.rows), "--_case", method, folder])
            base = ("sklearn_px_s", "scikit-learn predict") if method != "stacking" else ("", "")
            print(_ratio_line(r, *base), flush=True)
            extra = {k: r[k] for k in ("support_vectors", "max_abs_diff_compiled", "max_abs_diff_bitvector",
                                       "dynamic_columns", "fit_s", "apply_s", "rows") if k in r}
            sweep = {k[6:]: v for k, v in r.items() if k.startswith("sweep ")}
            if sweep:
                print(f"      bitvector kernel, kpx/s by chunk rows × threads: {sweep}", flush=True)
            print(f"      {json.dumps(extra)}; predictor: {r['predictor'] or '(not reported by this code)'}", flush=True)
        if a.memory_sizes:
            print("peak memory of downscale (hgb, 20 iterations), fresh process each:")
            for mpx in a.memory_sizes:
                r = _child(["--code", a.code, "--_memory", scenes[mpx]])
                print(f"  {r['mpx']:5.1f} Mpx × {a.dates}: peak {r['peak_mb']:6.0f} MB, {r['px_s'] / 1e3:7.1f} kpx/s/date",
                      flush=True)
        print(f"machine at the end: {describe()}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
