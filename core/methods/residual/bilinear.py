"""Bilinear residual (SVRB): the coarse residual interpolated between cell centres, with optional
refinement passes that make the fine pixels of each cell average back to its residual."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...errors import Canceled
from ...raster.aggregate import CellAccumulator
from ...raster.grid import Grid, Window, bilinear_from_cells
from .base import FittedResidual, ResidualGeometry, ResidualModel


def bilinear_residual(residual: np.ndarray, fine: Grid, coarse: Grid, window: Window) -> np.ndarray:
    """Residual at fine pixels by bilinear interpolation between coarse cell centres (NaN cells skipped)."""
    return bilinear_from_cells(residual, fine, coarse, window)


def refine_residual(residual: np.ndarray, target: np.ndarray, interpolated_cell_mean: np.ndarray) -> np.ndarray:
    """One fixed-point step towards a residual field whose bilinear interpolation averages, in each
    coarse cell, to ``target`` (the coarse value minus the mean fine trend).

    ``interpolated_cell_mean`` is the cell mean of the interpolation of ``residual``. Cells where
    either is undefined keep their residual. Repeating the step removes most of the leakage of a
    cell's residual into its neighbours that plain bilinear interpolation causes.
    """
    step = np.asarray(target, dtype=np.float64) - interpolated_cell_mean
    ok = np.isfinite(step) & np.isfinite(residual)
    out = np.array(residual, dtype=np.float32, copy=True)
    out[ok] = (residual[ok] + step[ok]).astype(np.float32)
    return out


class BilinearResidual(ResidualModel):
    """Bilinear interpolation of the coarse residual, refined ``passes`` times (0 = plain)."""
    name = "bilinear"
    label = "bilinear residual"

    def __init__(self, passes: int = 3) -> None:
        self.passes = int(passes)

    def fit(self, residuals: Sequence[np.ndarray], geometry: ResidualGeometry,
            canceled: Callable[[], bool]) -> "_FittedBilinear":
        g = geometry
        fields = [np.asarray(r, dtype=np.float32) for r in residuals]
        for _ in range(self.passes):
            spread = [CellAccumulator(g.coarse.size) for _ in fields]
            for w in g.windows:
                idx = g.cell_index(w)
                for t, r in enumerate(fields):
                    if canceled():
                        raise Canceled()
                    interp = bilinear_residual(r, g.fine, g.coarse, w)
                    if g.support is not None:
                        interp = np.where(g.support(t, w), interp, np.nan)
                    spread[t].add(interp, idx)
            fields = [refine_residual(fields[t], residuals[t], spread[t].mean()) for t in range(len(fields))]
        return _FittedBilinear(fields, g, self.passes)


class _FittedBilinear(FittedResidual):
    def __init__(self, fields: list[np.ndarray], geometry: ResidualGeometry, passes: int) -> None:
        self.fields, self.g, self.passes = fields, geometry, passes

    def predict(self, t: int, window: Window) -> tuple[np.ndarray, Optional[np.ndarray]]:
        return bilinear_residual(self.fields[t], self.g.fine, self.g.coarse, window), None

    def log(self) -> dict[str, Any]:
        return {"residual": "bilinear", "refinement_passes": self.passes}
