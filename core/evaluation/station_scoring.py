"""Scoring products at stations from files: the steps the Processing algorithms and the command line share —
read the station and in-situ tables (bad rows reported, not fatal), sample dated bands at the stations,
score, and say which stations could not be scored and why."""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..inputs.dates import parse_date
from ..raster.align import BandRef
from .stations import (InsituTable, Sampled, Station, read_insitu_table, read_station_table, sample_raster,
                       score_products, skipped_message, stations_outside, unscored_stations)


@dataclass
class StationInputs:
    """Stations and in-situ series as read, with what was left out of them."""

    stations: list[Station]
    insitu: InsituTable
    #: One message block per table that had rows, cells or features left out.
    reports: list[str] = field(default_factory=list)


def read_station_inputs(stations: Optional[Sequence[Station]], stations_csv: Optional[str], insitu_csv: str,
                        reports: Sequence[str] = ()) -> StationInputs:
    """The stations (given, else read from ``stations_csv``) and the in-situ table; the tables' skipped rows
    are in ``reports``. Raises :class:`InputError` when nothing usable remains."""
    reports = list(reports)
    if stations is None:
        if not stations_csv:
            raise InputError("In-situ data were given but no stations.",
                             fix="give a station point layer or a stations CSV.")
        table = read_station_table(stations_csv)
        stations = table.stations
        if table.skipped:
            reports.append(skipped_message(stations_csv, table.skipped, f"{len(stations)} station(s) kept"))
    insitu = read_insitu_table(insitu_csv)
    if insitu.skipped:
        n_values = sum(s.values for s in insitu.skipped if s.out_of_range)
        kept = f"{len(insitu.dates)} dates kept" + (f"; {n_values} value(s) outside 0 … 1 m³/m³ dropped"
                                                    if n_values else "")
        reports.append(skipped_message(insitu_csv, insitu.skipped, kept))
    if not any(s.id in insitu.values for s in stations):
        raise InputError(f"None of the {len(stations)} station ids ({', '.join(s.id for s in stations[:5])}…) is a "
                         "column of the in-situ table.",
                         fix="pick the station id field whose values are the table's column names.")
    return StationInputs(list(stations), insitu, reports)


def product_refs(paths: Sequence[tuple[str, str]], band_counts: Sequence[int]) -> list[BandRef]:
    """The dated bands of a product given as rasters ``(path, layer name)`` with ``band_counts`` bands: a
    single-band raster takes the date in its file name, a multi-band one its band descriptions."""
    refs = []
    for (path, name), n in zip(paths, band_counts):
        single_date = parse_date(os.path.basename(path)) if n == 1 else None
        refs.extend(BandRef(path, b, name, single_date) for b in range(1, n + 1))
    return refs


def sample_refs(refs: Sequence[BandRef], stations: Sequence[Station]) -> Sampled:
    """Sample dated bands (possibly across several files) at the stations, sorted by date."""
    from osgeo import gdal
    by_path: "OrderedDict[str, list[BandRef]]" = OrderedDict()
    for r in refs:
        by_path.setdefault(r.path, []).append(r)
    found = {}
    for path, rs in by_path.items():
        given = {r.band: r.date for r in rs if r.date is not None}
        ds = gdal.Open(path)
        n_bands = ds.RasterCount
        ds = None
        known = [given.get(b) for b in range(1, n_bands + 1)]
        dates, values = sample_raster(path, stations, known if all(known) else None)
        for b, (d, v) in enumerate(zip(dates, values), start=1):
            if not given or b in given:
                found[d] = v
    ds = sorted(found)
    return ds, (np.stack([found[d] for d in ds]) if ds else np.empty((0, len(stations))))


def score_with_notes(got: StationInputs, sampled: dict[str, Sampled], products: dict[str, Sequence[BandRef]]
                     ) -> tuple[list[dict], Optional[str]]:
    """Rows of :func:`~.stations.score_products` of the ``sampled`` products, and one warning naming every
    station that could not be scored, with the reason (``None`` when all were)."""
    paths = list(OrderedDict.fromkeys(r.path for refs in products.values() for r in refs))
    outside = stations_outside(paths, got.stations)
    rows = score_products(got.stations, got.insitu.dates, got.insitu.values, sampled,
                          out_of_range=got.insitu.out_of_range, outside=outside)
    lines = [f"  {sid}: {why}" for sid, why in unscored_stations(rows).items()]
    lines += [f"  {s.id}: no column in the in-situ table" for s in got.stations if s.id not in got.insitu.values]
    warning = f"{len(lines)} of {len(got.stations)} stations could not be scored:\n" + "\n".join(lines) if lines else None
    return rows, warning


def field_key(product: str) -> str:
    """A product's name as a field / file-name key: lower case, runs of other characters as '_', 20 at most."""
    return re.sub(r"[^a-z0-9]+", "_", product.lower()).strip("_")[:20] or "product"
