"""QGIS parameters from the declarative specs of :mod:`.specs`, and their values in a run.

>>> add_specs(self, *specs.REGRESSION_SPECS)                              # doctest: +SKIP
>>> values = spec_values(self, parameters, context, specs.REGRESSION_SPECS)  # {name: value}
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from . import specs
from .base import TYPE_RASTER

try:  # 3.36+
    from qgis.core import Qgis
    TYPE_FILE = Qgis.ProcessingSourceType.File
except AttributeError:  # QGIS < 3.36
    from qgis.core import QgsProcessing
    TYPE_FILE = QgsProcessing.TypeFile


def qgis_parameter(spec: specs.ParamSpec, label: str) -> QgsProcessingParameterDefinition:
    """The QGIS parameter of a spec (``label`` already translated)."""
    kw = {"optional": spec.optional}
    if spec.kind in (specs.LAYERS, specs.FILES):
        return QgsProcessingParameterMultipleLayers(spec.name, label, TYPE_RASTER if spec.kind == specs.LAYERS
                                                    else TYPE_FILE, **kw)
    if spec.kind in (specs.NUMBER, specs.INTEGER):
        kind = QgsProcessingParameterNumber.Double if spec.kind == specs.NUMBER else QgsProcessingParameterNumber.Integer
        bounds = {k: v for k, v in (("minValue", spec.minimum), ("maxValue", spec.maximum)) if v is not None}
        return QgsProcessingParameterNumber(spec.name, label, kind, spec.default, **kw, **bounds)
    if spec.kind == specs.BOOL:
        return QgsProcessingParameterBoolean(spec.name, label, spec.default, **kw)
    if spec.kind == specs.ENUM:
        return QgsProcessingParameterEnum(spec.name, label, list(spec.choices), defaultValue=spec.default, **kw)
    if spec.kind == specs.ENUMS:
        return QgsProcessingParameterEnum(spec.name, label, list(spec.choices), allowMultiple=True,
                                          defaultValue=list(spec.default), **kw)
    if spec.kind == specs.RASTER:
        return QgsProcessingParameterRasterLayer(spec.name, label, **kw)
    if spec.kind == specs.FOLDER_OUT:
        return QgsProcessingParameterFolderDestination(spec.name, label, createByDefault=spec.create_by_default, **kw)
    if spec.kind == specs.STRING:
        return QgsProcessingParameterString(spec.name, label, spec.default, **kw)
    if spec.kind == specs.CRS:
        return QgsProcessingParameterCrs(spec.name, label, spec.default, **kw)
    if spec.kind == specs.AREA:
        return QgsProcessingParameterExtent(spec.name, label, spec.default, **kw)
    if spec.kind == specs.FOLDER:
        return QgsProcessingParameterFile(spec.name, label, QgsProcessingParameterFile.Folder, **kw)
    if spec.kind == specs.FILE:
        if spec.file_filter:
            return QgsProcessingParameterFile(spec.name, label, fileFilter=spec.file_filter, **kw)
        return QgsProcessingParameterFile(spec.name, label, extension=spec.extension, **kw)
    if spec.kind == specs.FILE_OUT:
        return QgsProcessingParameterFileDestination(spec.name, label, spec.file_filter or (
                                                     f"{spec.extension.upper()} files (*.{spec.extension})"
                                                     if spec.extension else ""),
                                                     createByDefault=spec.create_by_default, **kw)
    if spec.kind == specs.DATE:
        return QgsProcessingParameterDateTime(spec.name, label, QgsProcessingParameterDateTime.Date, **kw)
    if spec.kind == specs.RASTER_OUT:
        return QgsProcessingParameterRasterDestination(spec.name, label, spec.default,
                                                       createByDefault=spec.create_by_default, **kw)
    raise ValueError(f"unknown parameter kind {spec.kind!r} of {spec.name}")


def add_specs(alg, *spec_list: specs.ParamSpec) -> None:
    """Add the QGIS parameters of these specs to ``alg`` (an ``SmAlgorithm``), with their help."""
    for spec in spec_list:
        alg.add_param(qgis_parameter(spec, alg.tr(spec.label)), spec.help, spec.advanced)


def spec_values(alg, parameters, context, spec_list: Sequence[specs.ParamSpec]) -> dict:
    """``{name: value}`` of the scalar specs (numbers, booleans, enum indices, strings, dates or ``None``) of this run."""
    read = {specs.NUMBER: alg.parameterAsDouble, specs.INTEGER: alg.parameterAsInt,
            specs.BOOL: alg.parameterAsBoolean, specs.ENUM: alg.parameterAsEnum, specs.STRING: alg.parameterAsString,
            specs.ENUMS: alg.parameterAsEnums,
            specs.DATE: lambda p, name, c: _date(alg.parameterAsDateTime(p, name, c)) if p.get(name) else None}
    return {s.name: read[s.kind](parameters, s.name, context) for s in spec_list if s.kind in read}


def _date(qdt) -> dt.date:
    d = qdt.date()
    return dt.date(d.year(), d.month(), d.day())
