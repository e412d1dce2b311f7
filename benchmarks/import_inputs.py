"""Time of the importers on the real samples and on full-size SMAP granules.

Prints figures only (no asserts):

- ISMN: both sample archives of ``tests/data/ismn`` (``read_ismn``);
- ESA CCI: the five real global NetCDF files of ``../shared/data/esa_cci_netcdf``, whole globe vs
  the Delaware box (skipped without ``../shared``);
- SMAP L4: eight 3-hourly 9 km granules (3856 × 1624, built in the documented layout with a
  random field, since no real granule is available; needs Debian's python3-h5py), daily mean of
  the globe vs a 5° × 5° box.

Usage: python benchmarks/import_inputs.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.io.ismn import IsmnOptions, read_ismn  # noqa: E402
from core.io.products import import_products  # noqa: E402


def timed(label: str, fn) -> None:
    t0 = time.perf_counter()
    out = fn()
    print(f"{label:<58} {time.perf_counter() - t0:7.2f} s   {out}")


def main() -> None:
    data = ROOT / "tests" / "data" / "ismn"
    timed("ISMN CEOP separate files (2 sensors, 14 k readings)",
          lambda: f"{len(read_ismn(str(data / 'Data_seperate_files_20170810_20180809.zip'), IsmnOptions(depth_max=0.25)).dates)} days")
    timed("ISMN header + values (8 sensors, 211 k readings)",
          lambda: f"{len(read_ismn(str(data / 'Data_header_values.zip'), IsmnOptions(flags=('G', 'U'))).dates)} days")
    with tempfile.TemporaryDirectory() as tmp:
        cci = sorted(str(p) for p in (ROOT.parent / "shared" / "data" / "esa_cci_netcdf").glob("*.nc"))
        if cci:
            timed("ESA CCI, 5 global daily files → whole globe (1440×720)",
                  lambda: f"{import_products(cci, f'{tmp}/cci_globe.tif').valid} valid cells")
            timed("ESA CCI, 5 files → Delaware box (8×10)",
                  lambda: f"{import_products(cci, f'{tmp}/cci_de.tif', (-76.5, 37.75, -74.5, 40.25), 'EPSG:4326').valid}")
        try:
            import h5py  # noqa: F401
        except ImportError:
            print("SMAP L4: skipped (apt-get install python3-h5py to build the granules)")
            return
        sys.path.insert(0, str(ROOT / "tests"))
        from smap_granules import write_l4

        rng = np.random.default_rng(0)
        cells = {(r, c): float(v) for r, c, v in zip(rng.integers(0, 1624, 200_000), rng.integers(0, 3856, 200_000),
                                                     rng.uniform(0.05, 0.45, 200_000))}
        granules = [str(write_l4(Path(tmp), f"20180105T{h:02d}3000", cells)) for h in range(1, 24, 3)]
        timed("SMAP L4, 8 granules → daily mean, whole globe (3856×1624)",
              lambda: f"{import_products(granules, f'{tmp}/l4_globe.tif').valid} valid cells")
        timed("SMAP L4, 8 granules → daily mean, 5° × 5° box",
              lambda: f"{import_products(granules, f'{tmp}/l4_box.tif', (-100, 35, -95, 40), 'EPSG:4326').valid}")


if __name__ == "__main__":
    main()
