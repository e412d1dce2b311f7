"""Check soil-moisture inputs: what each raster is (CRS, grid, dates, value ranges) before a run.

The checks and the report are :mod:`core.inputs.check` (``smds check`` runs the same); this algorithm
turns layers into file paths and roles, and pushes the report's lines to the log.
"""
from __future__ import annotations

from typing import Optional

from qgis.core import QgsProcessingException, QgsProcessingOutputNumber

from ..core.inputs.check import INFO, check_layers
from ..core.inputs.roles import Role
from . import spec_params as ps
from . import specs
from .base import CoreFeedback, SmAlgorithm, core_errors, raster_source


class CheckInputs(SmAlgorithm):
    NAME = "check_inputs"
    DISPLAY_NAME = "Check soil-moisture inputs"
    GROUP_ID = "inputs"
    GROUP = "Inputs"
    HELP = specs.CHECK_INPUTS_HELP

    INPUTS = "INPUTS"
    APPROXIMATE = "APPROXIMATE"
    OUTPUT_HTML = "OUTPUT_HTML"
    LAYER_COUNT = "LAYER_COUNT"
    CRS_COUNT = "CRS_COUNT"
    DATE_COUNT = "DATE_COUNT"
    WARNING_COUNT = "WARNING_COUNT"
    BLOCKING_COUNT = "BLOCKING_COUNT"

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        ps.add_specs(self, *specs.CHECK_INPUTS_SPECS, specs.CHECK_INPUTS_OUTPUT_SPEC)
        for key, label in (
            (self.LAYER_COUNT, "Number of layers"),
            (self.CRS_COUNT, "Number of distinct CRSs"),
            (self.DATE_COUNT, "Number of distinct dates"),
            (self.WARNING_COUNT, "Number of warnings (blocking problems included)"),
            (self.BLOCKING_COUNT, "Number of blocking problems"),
        ):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def _layers_with_roles(self, parameters, context) -> list[tuple[object, Optional[Role], str]]:
        """(layer, role or ``None`` to guess it, how the role is known) for every layer given, role ones first."""
        return [(lay, role, how) for key, role, how in specs.CHECK_INPUTS_ROLES
                for lay in self.parameterAsLayerList(parameters, key, context)]

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if ok:
            layers = self._layers_with_roles(parameters, context)
            if not layers:
                return False, self.tr("Give at least one raster layer (under 'Raster layers' or a role).")
            try:
                for layer, _, _ in layers:
                    raster_source(layer)
            except QgsProcessingException as exc:
                return False, str(exc)
        return ok, message

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layers = [(raster_source(lay)[0], lay.name(), role, how)
                  for lay, role, how in self._layers_with_roles(parameters, context)]
        approximate = self.parameterAsBoolean(parameters, self.APPROXIMATE, context)
        out_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        progress = CoreFeedback(feedback)
        with core_errors():
            report = check_layers(layers, approximate, progress.progress, progress.is_canceled)
        for level, line in report.lines():
            (feedback.pushInfo if level == INFO else feedback.pushWarning)(line)
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(report.html(self.displayName()))
        return {
            self.OUTPUT_HTML: out_path,
            self.LAYER_COUNT: len(report.layers),
            self.CRS_COUNT: len({info.crs for info in report.layers}),
            self.DATE_COUNT: len(report.dates()),
            self.WARNING_COUNT: report.warning_count,
            self.BLOCKING_COUNT: report.blocking_count,
        }
