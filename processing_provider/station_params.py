"""Station parameters shared by the algorithms that score rasters at in-situ stations."""
from __future__ import annotations

import math
import re
from collections import OrderedDict
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
from ..core.evaluation.stations import Sampled, Station, read_insitu_csv, read_stations_csv, sample_raster
from .param_names import INSITU_CSV, SCORES, SCORES_CSV, STATION_ID_FIELD, STATIONS, STATIONS_CSV  # noqa: F401


#: Metrics copied into the station point layer, per product.
LAYER_METRICS = ("n", "r", "ubrmse", "bias", "rmse", "mae", "anomaly_r")


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


def read_station_inputs(alg, parameters, context):
    """(stations, insitu dates, insitu values) from the parameters, with clear errors."""
    insitu_path = alg.parameterAsFile(parameters, INSITU_CSV, context)
    csv_path = alg.parameterAsFile(parameters, STATIONS_CSV, context)
    source = alg.parameterAsSource(parameters, STATIONS, context)
    if source is None and not csv_path:
        raise QgsProcessingException(alg.tr(
            "In-situ data were given but no stations. Fix: give a station point layer or a stations CSV."))
    if source is not None:
        stations = _stations_from_source(alg, source, alg.parameterAsString(parameters, STATION_ID_FIELD, context),
                                         context)
    else:
        stations = read_stations_csv(csv_path)
    dates, insitu = read_insitu_csv(insitu_path)
    known = [s for s in stations if s.id in insitu]
    if not known:
        raise QgsProcessingException(alg.tr(
            f"None of the {len(stations)} station ids ({', '.join(s.id for s in stations[:5])}…) is a column of "
            f"the in-situ table. Fix: pick the station id field whose values are the table's column names."))
    return stations, dates, insitu


def _stations_from_source(alg, source, id_field: str, context) -> list[Station]:
    names = [f.name() for f in source.fields()]
    if not id_field:
        id_field = next((n for n in names if n.lower() in ("id", "station", "station_id", "site", "code")), "")
    if not id_field:
        raise QgsProcessingException(alg.tr(
            f"The station layer has no field called id, station or site (fields: {', '.join(names)}). "
            "Fix: choose the station id field."))
    wgs = QgsCoordinateReferenceSystem("EPSG:4326")
    xf = QgsCoordinateTransform(source.sourceCrs(), wgs, context.transformContext())
    out = []
    for f in source.getFeatures():
        g = f.geometry()
        if g is None or g.isEmpty():
            continue
        p = xf.transform(g.centroid().asPoint())
        attrs = {n: str(f[n]) for n in names if n != id_field and f[n] is not None and str(f[n]) != "NULL"}
        name = attrs.pop("name", "")
        out.append(Station(str(f[id_field]), p.y(), p.x(), name, attrs))
    return out


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
    keys = {p: field_key(p) for p in products}
    for p in products:
        for m in LAYER_METRICS:
            fields.append(QgsField(f"{keys[p]}_{m}", QVariant.Int if m == "n" else QVariant.Double))
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
        for p in products:
            for m in LAYER_METRICS:
                v = got.get(p, {}).get(m)
                feat[f"{keys[p]}_{m}"] = _num(v, m == "n")
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

