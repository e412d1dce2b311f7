"""The one interface every residual model keeps, and the geometry it is fitted on."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...raster.grid import Grid, Window

#: ``support(t, window)`` → bool array (``window.nrows × fine.width``): the fine pixels of date
#: ``t`` that take part (those with a trend), over which a cell's fine values must average back.
Support = Callable[[int, Window], np.ndarray]


@dataclass
class ResidualGeometry:
    """Where a residual is spread: the two grids, the row blocks of the fine grid, and the
    pixels that count on each date."""
    fine: Grid
    coarse: Grid
    windows: list[Window]
    support: Optional[Support] = None
    cell_index: Callable[[Window], np.ndarray] = field(default=None)  # type: ignore[assignment]


def coarse_residual(coarse_sm: np.ndarray, trend_cell_mean: np.ndarray) -> np.ndarray:
    """Residual per coarse cell: observed coarse soil moisture minus the mean fine trend in it."""
    return (np.asarray(coarse_sm, dtype=np.float64) - trend_cell_mean).astype(np.float32)


class FittedResidual(ABC):
    """A residual model fitted to the coarse residuals of every date."""

    #: Whether :meth:`predict` returns a kriging variance.
    has_variance: bool = False

    @abstractmethod
    def predict(self, t: int, window: Window) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """The residual of date ``t`` at the fine pixels of ``window`` (float32, NaN = none) and
        its variance (or ``None``)."""

    @abstractmethod
    def log(self) -> dict[str, Any]:
        """What was fitted, for the run log (JSON-able)."""


class ResidualModel(ABC):
    """Spreads coarse residuals (one flat coarse array per date) onto the fine grid."""

    #: Short name (``bilinear``, ``point_kriging``, ``atpk``) and a label for logs and metadata.
    name: str = ""
    label: str = ""

    @abstractmethod
    def fit(self, residuals: Sequence[np.ndarray], geometry: ResidualGeometry,
            canceled: Callable[[], bool]) -> FittedResidual:
        """Fit to the residuals of every date (NaN = cell without a residual)."""
