"""Shared command line of the recipes that rebuild the bundled ensembles.

Each recipe declares its inputs, architectures, schemes and hyper-parameters and calls
:func:`run`, which reads the CONUS station table, trains with fixed seeds, runs the
station-grouped 10-fold CV (and the 80/20 soil-stratified split), prints the scores of the
ensemble, its members, the coarse product and the coarse product linearly rescaled on the
training stations, and writes the ONNX members with their cards. With the CV on, a recipe that
sets ``require_beating_rescaled`` writes nothing (and exits with status 1) unless the ensemble
beats the rescaled coarse product on mean station R and ubRMSE. The table itself is never copied
into the repository.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.methods.insitu_ensemble import samples_from_station_table, train_ensemble  # noqa: E402
from core.learn.boosting import BoostingConfig  # noqa: E402
from core.learn.forest import ForestConfig  # noqa: E402
from core.learn.mlp import MLPConfig  # noqa: E402

DEFAULT_TABLE = str(Path(__file__).resolve().parents[3] / "shared" / "data" / "conus_stations"
                    / "station_10day_table.csv")


def run(name: str, description: str, features: Sequence[str], architectures: Sequence[str],
        schemes: Sequence[str], mlp_config: Optional[MLPConfig] = None,
        forest_config: Optional[ForestConfig] = None, seed: int = 20240301,
        boosting_config: Optional[BoostingConfig] = None, tier: Optional[dict] = None,
        require_beating_rescaled: bool = False) -> None:
    ap = argparse.ArgumentParser(description=f"Rebuild the bundled ensemble '{name}'.")
    ap.add_argument("--table", default=DEFAULT_TABLE, help="station_10day_table.csv")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / name), help="ensemble folder")
    ap.add_argument("--folds", type=int, default=10, help="station-grouped CV folds (0 = skip)")
    args = ap.parse_args()
    t0 = time.time()
    samples = samples_from_station_table(args.table, features)
    last = [-1.0]

    def progress(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.05 or fraction >= 1.0:
            last[0] = fraction
            print(f"  [{fraction:5.0%}] {message}", file=sys.stderr, flush=True)

    report = train_ensemble(samples, features, architectures, schemes, args.folds, seed, args.out,
                            progress=progress, name=name, description=description,
                            mlp_config=mlp_config, forest_config=forest_config, holdout_fraction=0.2,
                            boosting_config=boosting_config, tier=tier,
                            require_beating_rescaled=require_beating_rescaled)
    print(report.format())
    if report.refused:
        sys.exit(1)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in report.files)
    print(f"\n{args.out}: {len(report.files)} files, {total / 1024:.0f} KiB; {time.time() - t0:.0f} s")
