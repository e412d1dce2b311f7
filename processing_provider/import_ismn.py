"""Import an ISMN download as a station layer and a daily in-situ table (the layout scoring reads)."""
from __future__ import annotations

import datetime as dt
import re

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.io.ismn import STATION_FIELDS, IsmnOptions, read_ismn, write_series_csv, write_stations_csv
from .base import CoreFeedback, SmAlgorithm, core_errors

#: Station-layer fields holding numbers (the others are text classes).
_NUMERIC = {"elevation_m", "depth_from_m", "depth_to_m", "n_days", "clay_pct", "sand_pct", "silt_pct", "saturation"}


class ImportIsmn(SmAlgorithm):
    NAME = "import_ismn"
    DISPLAY_NAME = "Import ISMN stations"
    GROUP_ID = "inputs"
    GROUP = "Inputs"
    HELP = (
        "Reads an ISMN download (International Soil Moisture Network, ismn.earth; a .zip or the folder it unpacks "
        "to, in the 'header + values' or the 'CEOP separate files' format) and writes what the scoring tools read: "
        "a station point layer (network, depths, sensors, and ISMN's static metadata — land cover, Köppen–Geiger "
        "climate, soil fractions and the USDA texture class — as station classes the site report groups by) and "
        "a CSV with a date column and one column per station: UTC daily means of soil moisture in m³/m³.<br>"
        "Readings are kept when every ISMN quality flag they carry is among the flags to keep and the value lies "
        "in 0–1 m³/m³; a day needs readings in a minimum share of its hours; several sensors of a station within "
        "the depth range are averaged. The log lists, per sensor, readings kept and dropped by flag and by range."
    )

    INPUT = "INPUT"
    DEPTH_MIN = "DEPTH_MIN"
    DEPTH_MAX = "DEPTH_MAX"
    FLAGS = "FLAGS"
    START = "START"
    END = "END"
    MIN_HOURS_SHARE = "MIN_HOURS_SHARE"
    OUTPUT_STATIONS = "OUTPUT_STATIONS"
    OUTPUT_SERIES = "OUTPUT_SERIES"
    OUTPUT_STATIONS_CSV = "OUTPUT_STATIONS_CSV"

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_param(QgsProcessingParameterFile(self.INPUT, self.tr("ISMN download (.zip or folder)"),
                                                  fileFilter="ZIP (*.zip);;All files (*)"),
                       "The file downloaded from ismn.earth, or the folder it unpacks to (type or paste the folder's path).")
        self.add_param(QgsProcessingParameterNumber(self.DEPTH_MIN, self.tr("Minimum sensor depth (m)"),
                                                    QgsProcessingParameterNumber.Double, 0.0, minValue=0.0),
                       "Sensors whose top lies above this depth are not used.")
        self.add_param(QgsProcessingParameterNumber(self.DEPTH_MAX, self.tr("Maximum sensor depth (m)"),
                                                    QgsProcessingParameterNumber.Double, 0.05, minValue=0.0),
                       "Sensors reaching below this depth are not used (1 mm tolerance: SCAN's 2-inch probes at "
                       "0.0508 m count as 5 cm). Satellite soil moisture senses the top ~5 cm.")
        self.add_param(QgsProcessingParameterString(self.FLAGS, self.tr("ISMN quality flags to keep"), "G"),
                       "Comma-separated ISMN flags: G = good, U = not checked, M = missing, C01…, D01…; a single "
                       "letter keeps its whole family (D = every D flag).")
        self.add_param(QgsProcessingParameterDateTime(self.START, self.tr("First day"),
                                                      QgsProcessingParameterDateTime.Date, optional=True),
                       "Optional: first day kept (UTC).")
        self.add_param(QgsProcessingParameterDateTime(self.END, self.tr("Last day"),
                                                      QgsProcessingParameterDateTime.Date, optional=True),
                       "Optional: last day kept (UTC).")
        self.add_param(QgsProcessingParameterNumber(self.MIN_HOURS_SHARE, self.tr("Minimum share of valid hours per day"),
                                                    QgsProcessingParameterNumber.Double, 0.5, minValue=0.0, maxValue=1.0),
                       "A daily mean needs kept readings in at least this share of the day's 24 UTC hours.", advanced=True)
        self.add_param(QgsProcessingParameterFeatureSink(self.OUTPUT_STATIONS, self.tr("ISMN stations"),
                                                         QgsProcessing.TypeVectorPoint),
                       "One point per station (WGS84): id ('station' = network_station, the in-situ table's column), "
                       "name, network, depths, sensors, days, land cover, climate, soil texture and fractions.")
        self.add_param(QgsProcessingParameterFileDestination(self.OUTPUT_SERIES, self.tr("Daily in-situ soil moisture (CSV)"),
                                                             self.tr("CSV files (*.csv)")),
                       "A date column (YYYY-MM-DD, UTC) and one column per station: daily means in m³/m³, empty = no value.")
        self.add_param(QgsProcessingParameterFileDestination(self.OUTPUT_STATIONS_CSV, self.tr("Stations (CSV)"),
                                                             self.tr("CSV files (*.csv)"), optional=True,
                                                             createByDefault=False),
                       "Optional: the stations as a CSV (station, name, lat, lon and the classes), for scripts.")

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        source = self.parameterAsFile(parameters, self.INPUT, context)
        flags = tuple(f for f in re.split(r"[,;\s]+", self.parameterAsString(parameters, self.FLAGS, context)) if f)
        if not flags:
            raise QgsProcessingException(self.tr("No quality flag to keep was given. Fix: give at least G (good)."))
        options = IsmnOptions(
            depth_min=self.parameterAsDouble(parameters, self.DEPTH_MIN, context),
            depth_max=self.parameterAsDouble(parameters, self.DEPTH_MAX, context),
            flags=flags,
            start=_date(self.parameterAsDateTime(parameters, self.START, context)) if parameters.get(self.START) else None,
            end=_date(self.parameterAsDateTime(parameters, self.END, context)) if parameters.get(self.END) else None,
            min_hours_share=self.parameterAsDouble(parameters, self.MIN_HOURS_SHARE, context),
        )
        cf = CoreFeedback(feedback, 0, 90)
        with core_errors():
            result = read_ismn(source, options, cf.progress, cf.is_canceled)
        for line in result.log:
            feedback.pushInfo(line)
        for line in result.skipped:
            feedback.pushInfo(self.tr("Not used: ") + line)
        feedback.pushInfo(self.tr(f"{len(result.stations)} stations, {len(result.dates)} days "
                                  f"({result.dates[0].isoformat()} … {result.dates[-1].isoformat()})"))
        out = {}
        series = self.parameterAsFileOutput(parameters, self.OUTPUT_SERIES, context)
        out[self.OUTPUT_SERIES] = write_series_csv(result, series)
        if parameters.get(self.OUTPUT_STATIONS_CSV):
            out[self.OUTPUT_STATIONS_CSV] = write_stations_csv(
                result, self.parameterAsFileOutput(parameters, self.OUTPUT_STATIONS_CSV, context))
        fields = QgsFields()
        for name in ("station", "name", *STATION_FIELDS):
            fields.append(QgsField(name, QVariant.Double if name in _NUMERIC else QVariant.String))
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT_STATIONS, context, fields, QgsWkbTypes.Point,
                                          QgsCoordinateReferenceSystem("EPSG:4326"))
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT_STATIONS))
        for st in result.stations:
            rec = st.record()
            feat = QgsFeature(fields)
            feat.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(st.lon, st.lat)))
            for name in ("station", "name", *STATION_FIELDS):
                text = rec.get(name, "")
                feat[name] = (float(text) if text else None) if name in _NUMERIC else text
            sink.addFeature(feat, QgsFeatureSink.FastInsert)
        out[self.OUTPUT_STATIONS] = dest
        feedback.setProgress(100)
        return out


def _date(qdt) -> dt.date:
    d = qdt.date()
    return dt.date(d.year(), d.month(), d.day())
