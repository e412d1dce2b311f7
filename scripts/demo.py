"""Demo on the bundled Delaware sample, through the plugin's Processing algorithms in qgis_process.

    scripts/demo.sh [OUT]            (installs what is missing, then runs this)

Writes into OUT (default output/demo): the downscaled GeoTIFF (+ .qml style, .json run log),
station scores (CSV and GeoPackage), a PNG quick-look; prints station scores for the downscaled
and the coarse product side by side.
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SAMPLE = os.path.join(ROOT, "sample_data", "delaware")
PLUGIN_ID = "soil_moisture_downscaling"
sys.path.insert(0, HERE)

from qgis_headless import QgisProcess  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "output", "demo"))
    ap.add_argument("--regressor", type=int, default=0, help="0 = SVR (RBF), 1 = random forest, 2 = gradient boosting")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    sm_files = sorted(glob.glob(os.path.join(SAMPLE, "esa_cci_sm", "*.tif")))
    dem = os.path.join(SAMPLE, "elevation_1km.tif")
    stations = os.path.join(SAMPLE, "deos_stations.csv")
    insitu = os.path.join(SAMPLE, "deos_daily_vwc.csv")

    with QgisProcess(ROOT) as qp:
        t0 = time.time()
        raster = os.path.join(out, "delaware_sm_1km_201801.tif")
        print(f"[demo] downscaling {len(sm_files)} days of ESA CCI SM (0.25°) to 1 km with elevation, slope and mTPI …",
              flush=True)
        qp.run("downscale_regression",
               SOIL_MOISTURE=sm_files, DEM=dem, REGRESSOR=args.regressor, DERIVE_TERRAIN=True,
               STATIONS_CSV=stations, INSITU_CSV=insitu, OUTPUT=raster,
               SCORES=os.path.join(out, "station_scores.gpkg"), SCORES_CSV=os.path.join(out, "station_scores.csv"))
        print(f"[demo] done in {time.time() - t0:.1f} s → {raster}")
        t0 = time.time()
        ens_raster = os.path.join(out, "delaware_sm_1km_201801_ensemble.tif")
        print("[demo] downscaling the same days with the richest bundled in-situ-trained ensemble these layers "
              "satisfy (a DEM: insitu_hgb_dem) …", flush=True)
        qp.run("downscale_ensemble",
               SOIL_MOISTURE=sm_files, DEM=dem, DERIVE_TERRAIN=True,
               STATIONS_CSV=stations, INSITU_CSV=insitu, OUTPUT=ens_raster,
               SCORES_CSV=os.path.join(out, "station_scores_ensemble.csv"))
        print(f"[demo] done in {time.time() - t0:.1f} s → {ens_raster} (+ _spread, _interval, _outside_domain)")
        t0 = time.time()
        report = os.path.join(out, "site_report.html")
        print("[demo] writing the site-metric report (both products vs ESA CCI, diagnostics) …", flush=True)
        qp.run("site_report", PRODUCTS=[raster, ens_raster], PRODUCT_NAMES="regression 1 km,ensemble 1 km",
               COARSE=sm_files, COARSE_NAME="ESA CCI 0.25°", STATIONS_CSV=stations,
               INSITU_CSV=insitu, REPORT=report, CONSERVATION=os.path.join(out, "conservation_pct.tif"),
               HETEROGENEITY=os.path.join(out, "heterogeneity_cv.tif"))
        print(f"[demo] done in {time.time() - t0:.1f} s → {report}")

    sys.path.insert(0, os.path.dirname(ROOT))
    core = _core()
    for title, name in (("regression (SVR trend + residual)", "station_scores.csv"),
                        ("ensemble insitu_hgb_dem", "station_scores_ensemble.csv")):
        rows = list(csv.DictReader(open(os.path.join(out, name), encoding="utf-8")))
        print(f"\nStation scores, January 2018 — downscaled by {title} vs. ESA CCI (DEOS in-situ, m³/m³):")
        print(core.evaluation.score_table.format_table(rows, ["downscaled", "coarse"]))
    png = os.path.join(out, "quicklook.png")
    st = [(float(r["lon"]), float(r["lat"]), r["station"]) for r in csv.DictReader(open(stations, encoding="utf-8"))]
    coarse = {core.inputs.dates.parse_date(os.path.basename(p)): p for p in sm_files}
    core.io.quicklook.write_quicklook(png, raster, core.io.quicklook.band_dates(raster), coarse, st,
                                   title="ESA CCI SM v4.5 (0.25°) downscaled to 1 km — Delaware, January 2018")
    print(f"\n[demo] outputs in {out}:")
    for name in sorted(os.listdir(out)):
        print(f"  {name}  ({os.path.getsize(os.path.join(out, name)) / 1024:.0f} KiB)")
    return 0


def _core():
    """The plugin's QGIS-free engine, imported under the plugin id (as QGIS itself does)."""
    import importlib
    link = tempfile.mkdtemp(prefix="smds-core-")
    os.symlink(ROOT, os.path.join(link, PLUGIN_ID))
    sys.path.insert(0, link)
    pkg = importlib.import_module(PLUGIN_ID + ".core")
    for mod in ("evaluation.score_table", "io.quicklook", "inputs.dates"):
        importlib.import_module(f"{PLUGIN_ID}.core.{mod}")
    return pkg


if __name__ == "__main__":
    sys.exit(main())
