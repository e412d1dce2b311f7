"""Cross-check ``core/io/ismn.py`` against the ``ismn`` package (TU Wien), the reference reader.

``ismn`` pulls PyPI's netCDF4 wheel (through pygeogrids/repurpose), which crashes QGIS in-process:
install it only in a throwaway venv *without* system site packages, never in QGIS's Python::

    python3 -m venv /tmp/ismn-ref && /tmp/ismn-ref/bin/pip install ismn==1.5.4 'numpy<2'
    "$(scripts/setup.sh | tail -1)" scripts/compare_with_ismn_package.py --ismn-python /tmp/ismn-ref/bin/python

For each sample archive of ``tests/data/ismn`` the reference side reads every soil-moisture file
with ``ismn.filehandlers.DataFile``, keeps the same flags and 0–1 range and forms UTC daily means
of days with ≥ 12 valid hours; this side runs :func:`core.io.ismn.read_ismn`. It prints the
station-days compared and the largest difference, and exits 1 on any mismatch of stations, days,
coordinates or values (> 1e-9).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = (("Data_seperate_files_20170810_20180809.zip", 0.25, ("G",)), ("Data_header_values.zip", 0.05, ("G", "U")))


def reference(zip_path: str, flags: list[str]) -> dict:
    """Daily means by the ismn package (runs in the isolated venv)."""
    from ismn.base import IsmnRoot
    from ismn.filehandlers import DataFile

    root = IsmnRoot(zip_path)
    out = {}
    for name in (n for n in zipfile.ZipFile(zip_path).namelist() if n.endswith(".stm") and "_sm_" in n):
        f = DataFile(root, name)
        data = f.read_data()
        flag = next(c for c in data.columns if c.endswith("_flag") and "orig" not in c)
        keep = data[data[flag].isin(flags) & (data["soil_moisture"] >= 0) & (data["soil_moisture"] <= 1)]
        days = keep.groupby(keep.index.date)
        hours = days.apply(lambda d: d.index.hour.nunique())
        means = days["soil_moisture"].mean()[hours >= 12]
        md = f.metadata
        out[f"{md['network'].val}_{md['station'].val}"] = {
            "lat": md["latitude"].val, "lon": md["longitude"].val, "days": {str(d): float(v) for d, v in means.items()}}
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ismn-python", help="python of a venv holding the ismn package")
    ap.add_argument("--reference", nargs=2, metavar=("ZIP", "FLAGS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference:
        print(json.dumps(reference(args.reference[0], args.reference[1].split(","))))
        return 0
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from core.io.ismn import IsmnOptions, read_ismn

    bad = 0
    for name, depth_max, flags in SAMPLES:
        path = str(ROOT / "tests" / "data" / "ismn" / name)
        ref = json.loads(subprocess.run([args.ismn_python, __file__, "--reference", path, ",".join(flags)],
                                        check=True, capture_output=True, text=True).stdout)
        got = read_ismn(path, IsmnOptions(depth_max=depth_max, flags=flags))
        worst, n = 0.0, 0
        for j, st in enumerate(got.stations):
            mine = {d.isoformat(): v for d, v in zip(got.dates, got.values[:, j]) if np.isfinite(v)}
            theirs = ref.get(st.id, {}).get("days", {})
            if mine.keys() != theirs.keys() or (st.lat, st.lon) != (ref[st.id]["lat"], ref[st.id]["lon"]):
                print(f"{name} {st.id}: days or coordinates differ")
                bad += 1
                continue
            worst = max([worst] + [abs(mine[d] - theirs[d]) for d in theirs])
            n += len(theirs)
        if set(ref) != {s.id for s in got.stations}:
            print(f"{name}: stations differ: {sorted(set(ref) ^ {s.id for s in got.stations})}")
            bad += 1
        bad += worst > 1e-9
        print(f"{name}: {len(got.stations)} stations, {n} station-days, max |difference| {worst:.2g} m³/m³")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
