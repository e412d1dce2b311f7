"""Scoring products at stations from inside an algorithm: sample, compute metrics, write outputs, log."""
from __future__ import annotations

import datetime as dt
import os
from typing import Optional, Sequence

from ..core.methods.result import conservation_lines  # noqa: F401 (the algorithms' name)
from ..core.raster.align import BandRef
from ..core.evaluation.score_table import format_table
from ..core.evaluation.stations import write_scores_csv
from . import station_params as sp


def score_and_report(alg, parameters, context, feedback, products: dict[str, Sequence[BandRef]],
                     coarse: Optional[str]) -> dict:
    """Score every product at the stations; returns the Processing outputs it wrote."""
    got = sp.station_inputs(alg, parameters, context, feedback)
    sampled = {name: sp.sample_refs(refs, got.stations) for name, refs in products.items()}
    rows = sp.score_with_notes(got, sampled, products, feedback)
    feedback.pushInfo(format_table(rows, list(products)))
    out = {}
    csv_path = alg.parameterAsFileOutput(parameters, sp.SCORES_CSV, context)
    if csv_path:
        write_scores_csv(rows, csv_path)
        out[sp.SCORES_CSV] = csv_path
    dest = sp.write_score_layer(alg, parameters, context, rows, got.stations, list(products), coarse)
    if dest:
        out[sp.SCORES] = dest
    return out


def score_downscaled(alg, parameters, context, feedback, path: str, dates: Sequence[dt.date],
                     coarse: Sequence[BandRef]) -> dict:
    """Score a downscaled raster (band i = ``dates[i]``) next to the coarse product it came from."""
    refs = [BandRef(path, i + 1, os.path.basename(path), d) for i, d in enumerate(dates)]
    return score_and_report(alg, parameters, context, feedback, {"downscaled": refs, "coarse": list(coarse)},
                            coarse="coarse")


def tif_path(path: str) -> str:
    """``path`` with a GeoTIFF extension (Processing may hand over another one)."""
    return path if path.lower().endswith((".tif", ".tiff")) else os.path.splitext(path)[0] + ".tif"
