"""Import an ISMN download as a station layer and a daily in-situ table (the layout scoring reads)."""
from __future__ import annotations

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
    QgsProcessingParameterFeatureSink,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.io.ismn import STATION_FIELDS, ismn_log_lines, read_ismn, write_series_csv, write_stations_csv
from . import spec_params as ps
from . import specs
from .base import CoreFeedback, SmAlgorithm, core_errors

#: Station-layer fields holding numbers (the others are text classes).
_NUMERIC = {"elevation_m", "depth_from_m", "depth_to_m", "n_days", "clay_pct", "sand_pct", "silt_pct", "saturation"}


class ImportIsmn(SmAlgorithm):
    NAME = "import_ismn"
    DISPLAY_NAME = "Import ISMN stations"
    GROUP_ID = "inputs"
    GROUP = "Inputs"
    HELP = specs.IMPORT_ISMN_HELP

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
        ps.add_specs(self, *specs.IMPORT_ISMN_SPECS)
        self.add_param(QgsProcessingParameterFeatureSink(self.OUTPUT_STATIONS, self.tr("ISMN stations"),
                                                         QgsProcessing.TypeVectorPoint),
                       "One point per station (WGS84): id ('station' = network_station, the in-situ table's column), "
                       "name, network, depths, sensors, days, land cover, climate, soil texture and fractions.")
        ps.add_specs(self, *specs.IMPORT_ISMN_OUTPUT_SPECS)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        source = self.parameterAsFile(parameters, self.INPUT, context)
        with core_errors():
            options = specs.ismn_options(ps.spec_values(self, parameters, context, specs.IMPORT_ISMN_SPECS))
        cf = CoreFeedback(feedback, 0, 90)
        with core_errors():
            result = read_ismn(source, options, cf.progress, cf.is_canceled)
        for line in ismn_log_lines(result):
            feedback.pushInfo(self.tr(line))
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

