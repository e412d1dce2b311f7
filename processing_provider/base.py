"""The thin base every algorithm of this provider derives from, and the helpers they share.

A child declares ``NAME``/``DISPLAY_NAME``/``GROUP_ID``/``GROUP``/``HELP`` (and
``REQUIRED_PACKAGES`` if it needs more than QGIS ships), adds parameters with :meth:`add_param`,
turns layers into paths with :func:`raster_source`, calls ``core`` inside
``with core_errors():`` and reports through :class:`CoreFeedback`. This module never imports
its children.
"""
from __future__ import annotations

import contextlib
import html
import os
from typing import Callable, Iterator, Optional, Sequence

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterDefinition,
    QgsProperty,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..core.deps import install_hint, missing_packages
from ..core.errors import Canceled, InputError
from ..core.io.destination import check_destination

# 3.22 has only the unscoped forms; 3.36+ adds Qgis.* scoped enums and deprecates the old ones.
if hasattr(Qgis, "ProcessingParameterFlag"):
    FLAG_ADVANCED = Qgis.ProcessingParameterFlag.Advanced
    TYPE_RASTER = Qgis.ProcessingSourceType.Raster
else:  # QGIS < 3.36
    FLAG_ADVANCED = QgsProcessingParameterDefinition.FlagAdvanced
    TYPE_RASTER = QgsProcessing.TypeRaster


def tr(text: str, context: str = "SoilMoistureDownscaling") -> str:
    return QCoreApplication.translate(context, text)


class SmAlgorithm(QgsProcessingAlgorithm):
    """Base of the soil-moisture algorithms; holds no per-run state."""

    #: Fixed lowercase id inside the provider (``soil_moisture_downscaling:<NAME>``).
    NAME: str = ""
    #: Untranslated display name; :meth:`displayName` translates it.
    DISPLAY_NAME: str = ""
    GROUP_ID: str = ""
    GROUP: str = ""
    #: What the algorithm does, for a hydrologist; plain text or simple HTML. Parameter help is appended.
    HELP: str = ""
    HELP_URL: str = ""
    #: Import names needed beyond QGIS, e.g. ``("sklearn", "onnxruntime")``; checked before running.
    REQUIRED_PACKAGES: tuple[str, ...] = ()

    # -- identity --------------------------------------------------------------------------
    def createInstance(self):  # noqa: N802 (QGIS API)
        return type(self)()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802
        return self.tr(self.DISPLAY_NAME)

    def group(self) -> str:
        return self.tr(self.GROUP) if self.GROUP else ""

    def groupId(self) -> str:  # noqa: N802
        return self.GROUP_ID

    def tr(self, text: str) -> str:
        return tr(text, type(self).__name__)

    # -- help ------------------------------------------------------------------------------
    def shortHelpString(self) -> str:  # noqa: N802
        parts = [self.tr(self.HELP)] if self.HELP else []
        documented = [p for p in self.parameterDefinitions() if p.help()]
        if documented:
            items = "".join(
                f"<dt><b>{html.escape(p.description())}</b></dt><dd>{p.help()}</dd>" for p in documented
            )
            parts.append(f"<h3>{self.tr('Parameters')}</h3><dl>{items}</dl>")
        return "\n".join(parts)

    def helpUrl(self) -> str:  # noqa: N802
        return self.HELP_URL

    # -- parameters ------------------------------------------------------------------------
    def add_param(
        self, param: QgsProcessingParameterDefinition, help: str, advanced: bool = False  # noqa: A002
    ) -> QgsProcessingParameterDefinition:
        """Add ``param`` with its help text (shown in the dialog and :meth:`shortHelpString`).

        ``advanced=True`` puts it under "Advanced parameters" (expert knobs).
        """
        param.setHelp(self.tr(help))
        if advanced:
            param.setFlags(param.flags() | FLAG_ADVANCED)
        self.addParameter(param)
        return param

    # -- validation ------------------------------------------------------------------------
    def require_packages(self, names: Sequence[str]) -> tuple[bool, str]:
        """``(True, "")`` if every import name in ``names`` imports, else ``(False, install hint)``."""
        missing = missing_packages(names)
        return (not missing, install_hint(missing) if missing else "")

    def checkParameterValues(self, parameters, context):  # noqa: N802
        # A missing package first: no parameter value can fix it, and the user needs the command.
        if self.REQUIRED_PACKAGES:
            ok, message = self.require_packages(self.REQUIRED_PACKAGES)
            if not ok:
                return ok, message
        ok, message = super().checkParameterValues(parameters, context)
        if ok:
            problem = destination_problem(self, parameters)
            if problem:
                return False, problem
        return ok, message


# -- shared helpers -----------------------------------------------------------------------------
#: Destination values that are not files in a folder (QGIS makes temporary outputs itself).
_NOT_FILES = ("TEMPORARY_OUTPUT", "memory:", "ogr:", "postgres:", "postgis:", "spatialite:")


def destination_problem(alg: QgsProcessingAlgorithm, parameters: dict) -> Optional[str]:
    """The first destination parameter whose folder cannot be written, as a message (``None``: all fine).

    Checked before any work, so a run never fails on its first write after the model is fitted.
    """
    for definition in alg.destinationParameterDefinitions():
        value = parameters.get(definition.name())
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value = value.sink
        if isinstance(value, QgsProperty):
            value = value.staticValue()
        if not isinstance(value, str) or not value.strip() or value.strip().startswith(_NOT_FILES):
            continue
        path = value.strip()
        if definition.type() == "folderDestination":
            path = os.path.join(path, "probe")
        try:
            check_destination(path, what=f"{definition.description()} ({path})")
        except InputError as exc:
            return str(exc)
    return None


@contextlib.contextmanager
def core_errors() -> Iterator[None]:
    """Turn the engine's errors into ``QgsProcessingException`` (message shown as is, no traceback).

    >>> with core_errors():                               # doctest: +SKIP
    ...     fit_model(arrays, is_canceled=fb.is_canceled)
    """
    try:
        yield
    except InputError as exc:
        raise QgsProcessingException(str(exc)) from exc
    except Canceled as exc:
        raise QgsProcessingException(tr("Canceled.")) from exc


def raster_source(layer: Optional[QgsRasterLayer], what: str = "") -> tuple[str, int]:
    """``(GDAL source string, band count)`` of a raster layer the engine can open with GDAL.

    Raises ``QgsProcessingException`` naming the layer when it is not a GDAL (file) raster,
    e.g. a WMS/XYZ/WCS service or a virtual raster-calculator layer.
    """
    if layer is None or not layer.isValid():
        raise QgsProcessingException(
            tr("The {what} layer is missing or cannot be read.").format(what=what or tr("raster"))
        )
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            tr(
                "Layer '{name}' comes from a '{provider}' source, not a file. "
                "Fix: save it as a GeoTIFF (right-click the layer → Export → Save As…) and use that layer."
            ).format(name=layer.name(), provider=layer.providerType())
        )
    return layer.source(), layer.bandCount()


class CoreFeedback:
    """What ``core`` functions get instead of a QGIS feedback: ``progress`` and ``is_canceled``.

    ``progress(fraction, message="")`` maps 0…1 onto ``start``…``end`` percent of ``feedback``;
    :attr:`gdal_callback` does the same for GDAL functions taking a ``callback``.
    """

    def __init__(self, feedback: Optional[QgsProcessingFeedback], start: float = 0.0, end: float = 100.0):
        self._feedback = feedback
        self._start, self._span = float(start), float(end) - float(start)
        self._last_message = ""

    def progress(self, fraction: float, message: str = "") -> None:
        if self._feedback is None:
            return
        if message and message != self._last_message:
            self._feedback.pushInfo(message)
            self._last_message = message
        fraction = min(max(float(fraction), 0.0), 1.0)
        self._feedback.setProgress(self._start + self._span * fraction)

    def sub(self, lo: float, hi: float) -> "CoreFeedback":
        """An adapter for the part ``lo``…``hi`` (fractions) of this one's range, e.g. one layer of n."""
        return CoreFeedback(self._feedback, self._start + self._span * lo, self._start + self._span * hi)

    def is_canceled(self) -> bool:
        return self._feedback is not None and self._feedback.isCanceled()

    @property
    def gdal_callback(self) -> Callable[[float, str, object], int]:
        def callback(complete: float, message: str, _data: object = None) -> int:
            self.progress(complete)
            return 0 if self.is_canceled() else 1

        return callback


def steps(
    feedback: Optional[QgsProcessingFeedback], labels: Sequence[str]
) -> Iterator[tuple[int, QgsProcessingMultiStepFeedback]]:
    """Run phases under one ``QgsProcessingMultiStepFeedback``; yields ``(index, step_feedback)``.

    Each step's label is pushed as info; a cancel between steps raises ``QgsProcessingException``::

        for i, fb in steps(feedback, [self.tr("Reading"), self.tr("Training")]):
            ...  # report through fb (0–100 within the step), e.g. CoreFeedback(fb)
    """
    multi = QgsProcessingMultiStepFeedback(len(labels), feedback)
    for i, label in enumerate(labels):
        if multi.isCanceled() or (feedback is not None and feedback.isCanceled()):  # canceled before we started
            raise QgsProcessingException(tr("Canceled."))
        multi.setCurrentStep(i)
        multi.pushInfo(label)
        yield i, multi
    multi.setCurrentStep(len(labels))
