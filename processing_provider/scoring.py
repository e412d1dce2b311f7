"""Scoring products at stations from inside an algorithm: sample, compute metrics, write outputs, log."""
from __future__ import annotations

from typing import Optional, Sequence

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
