"""Station parameters shared by the algorithms that score rasters at in-situ stations."""
from __future__ import annotations

import math
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
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.errors import InputError
from ..core.evaluation.station_scoring import StationInputs, field_key, sample_refs  # noqa: F401 (the algorithms' names)
from ..core.evaluation.station_scoring import read_station_inputs as read_station_inputs_of
from ..core.evaluation.station_scoring import score_with_notes as score_rows
from ..core.evaluation.stations import Sampled, Station
from ..core.raster.align import BandRef
from . import specs
from .spec_params import add_specs
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
    add_specs(alg, specs.STATIONS_CSV_SPEC, specs.insitu_spec(optional))
    if outputs:
        alg.add_param(QgsProcessingParameterFeatureSink(SCORES, alg.tr("Station scores (points)"),
                                                        QgsProcessing.TypeVectorPoint, optional=True),
                      "One point per station with N, R, ubRMSE, bias, RMSE, MAE and anomaly R of each product, "
                      "and the change of ubRMSE and R against the coarse product (d_ubrmse < 0 = better).")
        add_specs(alg, specs.SCORES_CSV_SPEC)


def wants_scoring(alg, parameters, context) -> bool:
    return bool(alg.parameterAsFile(parameters, INSITU_CSV, context))


def station_inputs(alg, parameters, context, feedback=None) -> StationInputs:
    """Read the stations and the in-situ table, skipping bad rows; each table's skipped rows are one
    warning on ``feedback``. Raises ``QgsProcessingException`` when nothing usable remains."""
    source = alg.parameterAsSource(parameters, STATIONS, context)
    stations, reports = None, []
    if source is not None:
        stations, left_out = _stations_from_source(alg, source, alg.parameterAsString(parameters, STATION_ID_FIELD,
                                                                                      context), context)
        if left_out:
            reports.append(alg.tr(f"Station layer: {len(left_out)} feature(s) left out ({len(stations)} stations "
                                  "kept):\n") + "\n".join(f"  {m}" for m in left_out))
    try:
        got = read_station_inputs_of(stations, alg.parameterAsFile(parameters, STATIONS_CSV, context),
                                     alg.parameterAsFile(parameters, INSITU_CSV, context), reports)
    except InputError as exc:
        raise QgsProcessingException(alg.tr(str(exc))) from None
    if feedback is not None:
        for text in got.reports:
            feedback.pushWarning(text)
    return got


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


def score_with_notes(got: StationInputs, sampled: dict[str, Sampled], products: dict[str, Sequence[BandRef]],
                     feedback=None) -> list[dict]:
    """:func:`core.evaluation.station_scoring.score_with_notes`, its warning on ``feedback``."""
    rows, warning = score_rows(got, sampled, products)
    if warning and feedback is not None:
        feedback.pushWarning(warning)
    return rows


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

