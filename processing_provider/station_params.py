"""Station parameters shared by the algorithms that score rasters at in-situ stations."""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional, Sequence

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsWkbTypes,
)
from osgeo import gdal
from qgis.PyQt.QtCore import QVariant

from ..core.raster.align import BandRef
from ..core.evaluation.stations import (InsituTable, Sampled, Station, read_insitu_table, read_station_table,
                                        sample_raster, score_products, skipped_message, stations_outside,
                                        unscored_stations)
from .param_names import INSITU_CSV, SCORES, SCORES_CSV, STATION_ID_FIELD, STATIONS, STATIONS_CSV  # noqa: F401


#: Metrics copied into the station point layer, per product.
LAYER_METRICS = ("n", "r", "ubrmse", "bias", "rmse", "mae", "anomaly_r", "n_dropped")
#: Integer fields among them.
_COUNTS = ("n", "n_dropped")


def add_station_params(alg, optional: bool = True, outputs: bool = True) -> None:
    alg.add_param(QgsProcessingParameterFeatureSource(STATIONS, alg.tr("Stations (point layer)"),
                                                      [QgsProcessing.TypeVectorPoint], optional=True),
                  "In-situ stations as points (any CRS). Their id field must match the column names of the "
                  "in-situ table. Other fields (land cover, texture, climate…) group the scores in reports.")
    alg.add_param(QgsProcessingParameterField(STATION_ID_FIELD, alg.tr("Station id field"), None, STATIONS,
                                              optional=True),
                  "Field of the point layer holding the station id. Default: a field called id, station or site.")
    alg.add_param(QgsProcessingParameterFile(STATIONS_CSV, alg.tr("Stations (CSV with id, lat, lon)"),
                                             extension="csv", optional=True),
                  "Instead of a point layer: a CSV with columns id (or station), lat and lon in WGS84 degrees.")
    alg.add_param(QgsProcessingParameterFile(INSITU_CSV, alg.tr("In-situ soil moisture (CSV, m³/m³)"),
                                             extension="csv", optional=optional),
                  "A CSV with a date column (YYYY-MM-DD) and one column per station id; empty = no data.")
    if outputs:
        alg.add_param(QgsProcessingParameterFeatureSink(SCORES, alg.tr("Station scores (points)"),
                                                        QgsProcessing.TypeVectorPoint, optional=True),
                      "One point per station with N, R, ubRMSE, bias, RMSE, MAE and anomaly R of each product, "
                      "and the change of ubRMSE and R against the coarse product (d_ubrmse < 0 = better).")
        alg.add_param(QgsProcessingParameterFileDestination(SCORES_CSV, alg.tr("Station scores (CSV)"),
                                                            alg.tr("CSV files (*.csv)"), optional=True),
                      "The same scores, one row per station and product. "
                      "ubRMSE = sqrt(RMSE² − bias²); bias = mean(product − in-situ).")


def wants_scoring(alg, parameters, context) -> bool:
    return bool(alg.parameterAsFile(parameters, INSITU_CSV, context))


@dataclass
class StationInputs:
    """Stations and in-situ series as read from the parameters, with what was left out of them."""

    stations: list[Station]
    insitu: InsituTable
    #: One message block per table that had rows, cells or features left out.
    reports: list[str] = field(default_factory=list)


def station_inputs(alg, parameters, context, feedback=None) -> StationInputs:
    """Read the stations and the in-situ table, skipping bad rows; each table's skipped rows are one
    warning on ``feedback``. Raises ``QgsProcessingException`` when nothing usable remains."""
    insitu_path = alg.parameterAsFile(parameters, INSITU_CSV, context)
    csv_path = alg.parameterAsFile(parameters, STATIONS_CSV, context)
    source = alg.parameterAsSource(parameters, STATIONS, context)
    if source is None and not csv_path:
        raise QgsProcessingException(alg.tr(
            "In-situ data were given but no stations. Fix: give a station point layer or a stations CSV."))
    reports = []
    if source is not None:
        stations, left_out = _stations_from_source(alg, source, alg.parameterAsString(parameters, STATION_ID_FIELD,
                                                                                      context), context)
        if left_out:
            reports.append(alg.tr(f"Station layer: {len(left_out)} feature(s) left out ({len(stations)} stations "
                                  "kept):\n") + "\n".join(f"  {m}" for m in left_out))
    else:
        table = read_station_table(csv_path)
        stations = table.stations
        if table.skipped:
            reports.append(skipped_message(csv_path, table.skipped, f"{len(stations)} station(s) kept"))
    insitu = read_insitu_table(insitu_path)
    if insitu.skipped:
        n_values = sum(s.values for s in insitu.skipped if s.out_of_range)
        kept = f"{len(insitu.dates)} dates kept" + (f"; {n_values} value(s) outside 0 … 1 m³/m³ dropped"
                                                    if n_values else "")
        reports.append(skipped_message(insitu_path, insitu.skipped, kept))
    if feedback is not None:
        for text in reports:
            feedback.pushWarning(text)
    known = [s for s in stations if s.id in insitu.values]
    if not known:
        raise QgsProcessingException(alg.tr(
            f"None of the {len(stations)} station ids ({', '.join(s.id for s in stations[:5])}…) is a column of "
            f"the in-situ table. Fix: pick the station id field whose values are the table's column names."))
    return StationInputs(stations, insitu, reports)


def read_station_inputs(alg, parameters, context, feedback=None):
    """(stations, insitu dates, insitu values) from the parameters, with clear errors (see :func:`station_inputs`)."""
    got = station_inputs(alg, parameters, context, feedback)
    return got.stations, got.insitu.dates, got.insitu.values


def _stations_from_source(alg, source, id_field: str, context) -> tuple[list[Station], list[str]]:
    names = [f.name() for f in source.fields()]
    if not id_field:
        id_field = next((n for n in names if n.lower() in ("id", "station", "station_id", "site", "code")), "")
    if not id_field:
        raise QgsProcessingException(alg.tr(
            f"The station layer has no field called id, station or site (fields: {', '.join(names)}). "
            "Fix: choose the station id field."))
    wgs = QgsCoordinateReferenceSystem("EPSG:4326")
    xf = QgsCoordinateTransform(source.sourceCrs(), wgs, context.transformContext())
    out, left_out, seen = [], [], set()
    for f in source.getFeatures():
        sid = f[id_field]
        sid = "" if sid is None or str(sid) == "NULL" else str(sid).strip()
        g = f.geometry()
        if not sid:
            left_out.append(f"feature {f.id()}: field '{id_field}' is empty: a station needs an identifier")
            continue
        if g is None or g.isEmpty():
            left_out.append(f"feature {f.id()} (station '{sid}'): it has no geometry")
            continue
        if sid in seen:
            left_out.append(f"feature {f.id()}: station '{sid}' appears again (the first one is kept)")
            continue
        seen.add(sid)
        p = xf.transform(g.centroid().asPoint())
        attrs = {n: str(f[n]) for n in names if n != id_field and f[n] is not None and str(f[n]) != "NULL"}
        name = attrs.pop("name", "")
        out.append(Station(sid, p.y(), p.x(), name, attrs))
    if not out:
        raise QgsProcessingException(alg.tr("The station layer has no usable station:\n" + "\n".join(left_out[:20])
                                            + "\nFix: give point features with a station id."))
    return out, left_out


def sample_refs(refs: Sequence[BandRef], stations: Sequence[Station]) -> Sampled:
    """Sample dated bands (possibly across several files) at the stations, sorted by date."""
    import numpy as np
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


def score_with_notes(got: StationInputs, sampled: dict[str, Sampled], products: dict[str, Sequence[BandRef]],
                     feedback=None) -> list[dict]:
    """:func:`score_products` with the dropped in-situ values counted and every station that could not be
    scored named, with the reason, in one warning on ``feedback``."""
    paths = list(OrderedDict.fromkeys(r.path for refs in products.values() for r in refs))
    outside = stations_outside(paths, got.stations)
    rows = score_products(got.stations, got.insitu.dates, got.insitu.values, sampled,
                          out_of_range=got.insitu.out_of_range, outside=outside)
    lines = [f"  {sid}: {why}" for sid, why in unscored_stations(rows).items()]
    lines += [f"  {s.id}: no column in the in-situ table" for s in got.stations if s.id not in got.insitu.values]
    if lines and feedback is not None:
        feedback.pushWarning(f"{len(lines)} of {len(got.stations)} stations could not be scored:\n" + "\n".join(lines))
    return rows


def field_key(product: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", product.lower()).strip("_")[:20] or "product"


def write_score_layer(alg, parameters, context, rows: list[dict], stations: Sequence[Station],
                      products: Sequence[str], coarse: Optional[str]) -> Optional[str]:
    """The wide station layer: one point per station, metrics of each product, change vs coarse."""
    if parameters.get(SCORES) is None:
        return None
    fields = QgsFields()
    fields.append(QgsField("station", QVariant.String))
    fields.append(QgsField("name", QVariant.String))
    fields.append(QgsField("note", QVariant.String))
    keys = {p: field_key(p) for p in products}
    for p in products:
        for m in LAYER_METRICS:
            fields.append(QgsField(f"{keys[p]}_{m}", QVariant.Int if m in _COUNTS else QVariant.Double))
    others = [p for p in products if p != coarse]
    if coarse is not None:
        for p in others:
            fields.append(QgsField(f"d_ubrmse_{keys[p]}" if len(others) > 1 else "d_ubrmse", QVariant.Double))
            fields.append(QgsField(f"d_r_{keys[p]}" if len(others) > 1 else "d_r", QVariant.Double))
    sink, dest = alg.parameterAsSink(parameters, SCORES, context, fields, QgsWkbTypes.Point,
                                     QgsCoordinateReferenceSystem("EPSG:4326"))
    if sink is None:
        return None
    by_station: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_station.setdefault(row["station"], {})[row["product"]] = row
    for st in stations:
        if st.id not in by_station:
            continue
        feat = QgsFeature(fields)
        feat.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(st.lon, st.lat)))
        feat["station"] = st.id
        feat["name"] = st.name
        got = by_station[st.id]
        feat["note"] = "; ".join(dict.fromkeys(r["note"] for r in got.values() if r.get("note")))
        for p in products:
            for m in LAYER_METRICS:
                v = got.get(p, {}).get(m)
                feat[f"{keys[p]}_{m}"] = _num(v, m in _COUNTS)
        if coarse is not None:
            for p in others:
                suffix = f"_{keys[p]}" if len(others) > 1 else ""
                for m, name in (("ubrmse", "d_ubrmse"), ("r", "d_r")):
                    a, b = got.get(p, {}).get(m), got.get(coarse, {}).get(m)
                    feat[name + suffix] = _num(a - b if a is not None and b is not None else None, False)
        sink.addFeature(feat, QgsFeatureSink.FastInsert)
    return dest


def _num(v, integer: bool):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v) if integer else float(v)

