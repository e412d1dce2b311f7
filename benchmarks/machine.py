"""What this machine can do right now, measured in the same run as a benchmark: single-precision
matrix multiply (GFLOP/s through numpy's BLAS) and memory copy (GB/s). Printing these next to a
method's throughput lets figures from a busy, shared machine be read as ratios.

Usage: python benchmarks/machine.py
"""
from __future__ import annotations

import resource
import time

import numpy as np


def best_time(fn, repeat: int = 1, warm_up: bool = False) -> float:
    """The shortest of ``repeat`` timed calls of ``fn`` (seconds), after one untimed call if ``warm_up``."""
    if warm_up:
        fn()
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def sgemm_gflops(n: int = 1024, repeat: int = 5) -> float:
    """float32 ``n × n`` matrix product, all BLAS threads: 2·n³ operations per call."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    return 2.0 * n ** 3 / best_time(lambda: a @ b, repeat, warm_up=True) / 1e9


def copy_gbps(megabytes: int = 256, repeat: int = 5) -> float:
    """Copy of a ``megabytes`` float32 array into another: bytes read plus bytes written per second."""
    src = np.ones(megabytes * (1 << 20) // 4, dtype=np.float32)
    dst = np.empty_like(src)
    return 2.0 * src.nbytes / best_time(lambda: np.copyto(dst, src), repeat, warm_up=True) / 1e9


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB: Linux's ``VmHWM`` of the process's own memory.

    Not ``getrusage``'s ``ru_maxrss``: on Linux a process started with ``subprocess`` inherits its
    parent's high-water mark through ``fork`` + ``exec`` (a child of an 800 MB parent reports ≥ 800 MB
    however little it uses), so every "fresh process" figure would be at least the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def describe() -> str:
    """One line for a benchmark's header."""
    return f"machine now: sgemm {sgemm_gflops():.1f} GFLOP/s, copy {copy_gbps():.1f} GB/s"


if __name__ == "__main__":
    print(describe())
