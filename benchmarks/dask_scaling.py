"""Benchmark: the prediction of a regression downscaling on 1 and 2 Dask workers (LocalCluster), against
the single-process run — throughput, scaling efficiency, peak memory per worker, identical output.

The scene is ``downscale_scaling.py``'s synthetic one (6 covariates, slope and mTPI derived from the DEM,
coarse cells of 40×40 fine pixels). The trend (default SVR) is fitted once, in this process, as the
command line does (training stays on the client); then ``regression.predict`` runs with the trend's row
blocks in this process, on a LocalCluster of 1 worker, and of 2 workers (one thread each). The residual
(fit and the final pass) stays on the client, so the wall time is the trend's share divided by the workers
plus the client's share: the figures show both.

    <venv python> benchmarks/dask_scaling.py [--mpx 2] [--dates 4] [--block-mpx 0.25]

Not a test: it prints figures (for README) and asserts nothing but the identical outputs.
"""
from __future__ import annotations

import argparse
import filecmp
import glob
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])  # for the workers


def _peak_mb() -> float:
    from machine import peak_rss_mb
    return peak_rss_mb()


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mpx", type=float, default=2.0, help="fine grid size (million pixels)")
    ap.add_argument("--dates", type=int, default=4)
    ap.add_argument("--block-mpx", type=float, default=0.25, help="row-block size (million pixels)")
    a = ap.parse_args()
    from distributed import Client, LocalCluster

    from core.inputs.layers import GivenLayer, covariate_inputs, soil_moisture_refs
    from core.inputs.roles import Role
    from core.inputs.scene import Scene, SceneSpec
    from core.methods import regression
    from core.methods.blocks import DaskBlocks, use_blocks

    with tempfile.TemporaryDirectory(prefix="smds-dask-bench-") as d:
        subprocess.run([sys.executable, os.path.join(HERE, "downscale_scaling.py"), "--dates", str(a.dates),
                        "--_make", d, str(a.mpx)], check=True)
        roles = {"dem": Role.DEM, "ndvi": Role.NDVI, "lst": Role.LST, "sand": Role.SAND, "clay": Role.CLAY,
                 "ph": Role.PH}
        spec = SceneSpec(soil_moisture_refs([GivenLayer.of_file(p) for p in sorted(glob.glob(f"{d}/sm_*.tif"))]),
                         covariate_inputs([(r, [GivenLayer.of_file(f"{d}/{k}.tif")]) for k, r in roles.items()]))
        scene = Scene(spec)
        opts = regression.RegressionOptions(block_pixels=int(a.block_mpx * 1e6))
        t0 = time.perf_counter()
        model = regression.fit(scene, opts)
        fit_s = time.perf_counter() - t0
        px_dates = scene.fine.size * len(scene.dates)
        n_blocks = len(list(scene.fine.windows(opts.block_pixels)))
        print(f"fine grid {scene.fine.width}×{scene.fine.height} = {scene.fine.size / 1e6:.2f} Mpx × {len(scene.dates)} "
              f"dates, {n_blocks} row blocks; SVR trend on {model.training['n_samples']} coarse samples "
              f"(fit {fit_s:.1f} s, client); residual: {opts.residual}; {os.cpu_count()} cores")
        print(f"load average before: {os.getloadavg()[0]:.1f} (the machine is shared: wall times include others' work; "
              "worker CPU seconds do not)")
        print(f"{'run':<20} {'wall s':>7} {'trend s':>8} {'Mpx·dates/s':>12} {'efficiency':>10} {'worker CPU s':>13} "
              f"{'Mpx·dates/CPU-s':>16} {'peak MB/worker':>15}")

        def run(label: str, client=None) -> tuple[float, float, str]:
            trend_s = [0.0]

            def progress(f, m):  # the trend phase ends when the residual fit starts
                if m.startswith("fitting the residual") and not trend_s[0]:
                    trend_s[0] = time.perf_counter() - t
            out = os.path.join(d, f"{label.replace(' ', '_')}.tif")
            t = time.perf_counter()
            if client is None:
                regression.predict(model, scene, out, progress)
            else:
                with use_blocks(DaskBlocks(client)):
                    regression.predict(model, scene, out, progress)
            return time.perf_counter() - t, trend_s[0], out

        cpu0 = _cpu_s()
        wall0, trend0, out0 = run("single process")
        cpu0 = _cpu_s() - cpu0
        print(f"{'single process':<20} {wall0:>7.1f} {trend0:>8.1f} {px_dates / 1e6 / wall0:>12.3f} {'':>10} "
              f"{cpu0:>13.1f} {'':>16} {_peak_mb():>15.0f}", flush=True)
        base = None
        for n in (1, 2):
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                client.run(lambda: None)  # workers up before timing
                before = client.run(_cpu_s)
                wall, trend, out = run(f"dask {n} worker", client)
                after = client.run(_cpu_s)
                peaks = client.run(_peak_mb)
            cpu = sum(after[w] - before[w] for w in after)
            base = base or wall
            same = filecmp.cmp(out0, out, shallow=False)
            print(f"{f'dask {n} worker(s)':<20} {wall:>7.1f} {trend:>8.1f} {px_dates / 1e6 / wall:>12.3f} "
                  f"{base / (n * wall):>10.2f} {cpu:>13.1f} {px_dates / 1e6 / cpu:>16.3f} {max(peaks.values()):>15.0f}"
                  f"   identical output: {same}", flush=True)


if __name__ == "__main__":
    main()
