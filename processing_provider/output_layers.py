"""How a dated soil-moisture raster lands in the project: styled, and known to the temporal controller.

QGIS ≥ 3.38 gives one raster layer a time range per band; on older versions (3.22 LTR) the
layer shows the first date and one layer per further date is added beside it, in a group, each
with its own fixed time range — so the temporal controller animates the series either way.
"""
from __future__ import annotations

import datetime as dt
import os
from typing import Optional, Sequence

from qgis.core import (
    Qgis,
    QgsDateTimeRange,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QTime

try:  # 3.38+: Qgis.RasterTemporalMode.FixedRangePerBand
    _PER_BAND = Qgis.RasterTemporalMode.FixedRangePerBand  # type: ignore[attr-defined]
except AttributeError:
    _PER_BAND = None


def _range(d: dt.date) -> QgsDateTimeRange:
    start = QDateTime(QDate(d.year, d.month, d.day), QTime(0, 0))
    return QgsDateTimeRange(start, start.addDays(1), True, False)


def set_fixed_range(layer: QgsRasterLayer, d: dt.date) -> None:
    props = layer.temporalProperties()
    props.setIsActive(True)
    props.setMode(props.ModeFixedTemporalRange)
    props.setFixedTemporalRange(_range(d))


def show_band(layer: QgsRasterLayer, band: int) -> None:
    renderer = layer.renderer()
    if renderer is not None and hasattr(renderer, "setBand"):
        renderer.setBand(band)
    elif renderer is not None and hasattr(renderer, "setGrayBand"):
        renderer.setGrayBand(band)


def present_time_series(layer: QgsRasterLayer, dates: Sequence[dt.date], style_path: Optional[str],
                        project: Optional[QgsProject] = None) -> list[QgsRasterLayer]:
    """Style ``layer`` and make its dated bands visible to the temporal controller.

    Returns the layers that carry the dates (``[layer]`` on QGIS ≥ 3.38).
    """
    if style_path and os.path.exists(style_path):
        layer.loadNamedStyle(style_path)
    if not dates:
        return [layer]
    if _PER_BAND is not None:
        props = layer.temporalProperties()
        props.setIsActive(True)
        props.setMode(_PER_BAND)
        props.setFixedRangePerBand({i + 1: _range(d) for i, d in enumerate(dates)})
        layer.triggerRepaint()
        return [layer]
    set_fixed_range(layer, dates[0])
    show_band(layer, 1)
    layer.setName(f"{layer.name()} {dates[0].isoformat()}")
    out = [layer]
    project = project or QgsProject.instance()
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    parent = node.parent() if node is not None else root
    group = parent.insertGroup(parent.children().index(node) if node is not None else 0,
                               f"{layer.name().rsplit(' ', 1)[0]} ({len(dates)} dates)")
    if node is not None:
        group.addChildNode(node.clone())
        parent.removeChildNode(node)
    for i, d in enumerate(dates[1:], start=2):
        lay = QgsRasterLayer(layer.source(), f"{layer.name().rsplit(' ', 1)[0]} {d.isoformat()}", "gdal")
        if style_path and os.path.exists(style_path):
            lay.loadNamedStyle(style_path)
        show_band(lay, i)
        set_fixed_range(lay, d)
        project.addMapLayer(lay, False)
        group.addLayer(lay)  # visible: the temporal controller shows only the current date's layer
        out.append(lay)
    return out


class TimeSeriesPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applied by Processing to an output raster once it is loaded into the project."""

    _alive: list["TimeSeriesPostProcessor"] = []  # Processing keeps only a C++ pointer

    def __init__(self, dates: Sequence[dt.date], style_path: Optional[str]) -> None:
        super().__init__()
        self.dates = list(dates)
        self.style_path = style_path

    @classmethod
    def create(cls, dates: Sequence[dt.date], style_path: Optional[str]) -> "TimeSeriesPostProcessor":
        inst = cls(dates, style_path)
        cls._alive.append(inst)
        return inst

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        if isinstance(layer, QgsRasterLayer):
            present_time_series(layer, self.dates, self.style_path, context.project())


def load_on_completion(context, output_path: str, dates: Sequence[dt.date], style_path: Optional[str]) -> None:
    """Attach the post-processor to an output the user asked to open."""
    if context.willLoadLayerOnCompletion(output_path):
        details = context.layerToLoadOnCompletionDetails(output_path)
        details.setPostProcessor(TimeSeriesPostProcessor.create(dates, style_path))
