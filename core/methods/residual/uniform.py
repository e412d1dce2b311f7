"""Uniform residual: every fine pixel takes its cell's residual. Coherent by construction and
adds no detail of its own (the map is the coarse value per cell plus the trend's departures)."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...raster.grid import Window
from .base import FittedResidual, ResidualGeometry, ResidualModel


class UniformResidual(ResidualModel):
    name = "uniform"
    label = "uniform residual per cell"

    def fit(self, residuals: Sequence[np.ndarray], geometry: ResidualGeometry,
            canceled: Callable[[], bool]) -> "_FittedUniform":
        return _FittedUniform([np.asarray(r, dtype=np.float32) for r in residuals], geometry)


class _FittedUniform(FittedResidual):
    def __init__(self, fields: list[np.ndarray], geometry: ResidualGeometry) -> None:
        self.fields, self.g = fields, geometry

    def predict(self, t: int, window: Window) -> tuple[np.ndarray, Optional[np.ndarray]]:
        idx = self.g.cell_index(window)
        return np.where(idx >= 0, self.fields[t][np.maximum(idx, 0)], np.nan).astype(np.float32), None

    def log(self) -> dict[str, Any]:
        return {"residual": "uniform"}
