"""Area-to-point kriging of the residual (ATPK, the residual step of SVATARK; Kyriakidis 2004).

The coarse residuals are block data: each is the mean over its cell's fine pixels. The point-support
variogram comes from deconvolving the areal one (Goovaerts 2008,
:func:`core.learn.geostat.deconvolution.deconvolve`); block-to-block and pixel-to-block covariances
average it over the fine pixels of the cells, so the prediction is *coherent* — the fine pixels of
each data cell average back to its residual — and comes with a kriging variance.
"""
from __future__ import annotations

from typing import Any

from ...learn.geostat.deconvolution import deconvolve
from ...learn.geostat.kriging import BlockCovariance
from ...learn.geostat.variogram import VariogramModel
from .kriged import CellLattice, KrigedResidual


class AtpkResidual(KrigedResidual):
    name = "atpk"
    label = "area-to-point kriged residual"

    def point_model(self, lattice: CellLattice, areal) -> tuple[VariogramModel, dict[str, Any]]:
        point, areal_fit, info = deconvolve(areal, lattice.cell_x, lattice.cell_y, lattice.ratio_x, lattice.ratio_y,
                                            self.variogram_model)
        return point, {"_areal_fit": areal_fit, "areal_model": areal_fit.as_dict(), "deconvolution": info}

    def covariance(self, lattice: CellLattice, unit: VariogramModel, max_rows: int, max_cols: int):
        return BlockCovariance(unit, lattice.px, lattice.py, lattice.blocks, max_rows, max_cols)
