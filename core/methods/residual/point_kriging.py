"""Point kriging of the residual (SVRK): the coarse residuals taken as point data at the cell
centres, their variogram fitted directly (no change of support), ordinary kriging to every fine
pixel centre. Smooth, but not coherent: the fine pixels of a cell need not average to its value."""
from __future__ import annotations

from typing import Any

from ...learn.geostat.kriging import PointCovariance
from ...learn.geostat.variogram import VariogramModel, fit_variogram
from .kriged import CellLattice, KrigedResidual


class PointKrigingResidual(KrigedResidual):
    name = "point_kriging"
    label = "point-kriged residual"

    def point_model(self, lattice: CellLattice, areal) -> tuple[VariogramModel, dict[str, Any]]:
        m = fit_variogram(areal.lags, areal.gamma, areal.counts, self.variogram_model)
        return m, {"_areal_fit": m, "deconvolution": None}

    def covariance(self, lattice: CellLattice, unit: VariogramModel, max_rows: int, max_cols: int):
        return PointCovariance(unit, lattice.px, lattice.py, lattice.centres)
