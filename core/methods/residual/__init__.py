"""Residual models: how a trend's coarse residual is spread onto the fine grid.

Every model keeps one interface (:class:`.base.ResidualModel`): ``fit(residuals, geometry,
canceled)`` on the coarse residual of every date, then ``predict(t, window)`` → fine residual (and
kriging variance where the model has one), block by block. The trend → residual pipeline
(:mod:`core.methods.pipeline`) composes any trend with any of them:

* ``uniform`` (:mod:`.uniform`) — the cell's residual at each of its pixels;
* ``bilinear`` (:mod:`.bilinear`) — between cell centres, plus refinement passes (SVRB);
* ``point_kriging`` (:mod:`.point_kriging`) — ordinary kriging from cell centres (SVRK);
* ``atpk`` (:mod:`.atpk`) — area-to-point kriging with a deconvolved variogram (SVATARK): coherent,
  with a kriging variance;
* ``auto`` (:mod:`.auto`) — one of uniform, bilinear and ATPK, chosen one scale up (2×2 blocks of
  coarse cells spread back onto the cells) by the cells' own series.

With ``shrink`` (:func:`make_residual`, the methods' default) a bilinear or kriged residual's
departure from the uniform one is weighted by its skill one scale up (:mod:`.shrunk`).
"""
from __future__ import annotations

from .atpk import AtpkResidual
from .auto import AutoResidual
from .base import FittedResidual, ResidualGeometry, ResidualModel, coarse_residual
from .bilinear import BilinearResidual, bilinear_residual, refine_residual
from .point_kriging import PointKrigingResidual
from .shrunk import ShrunkResidual
from .uniform import UniformResidual

RESIDUALS = ("auto", "uniform", "bilinear", "point_kriging", "atpk")
RESIDUAL_LABELS = {"auto": "Chosen one scale up (uniform, bilinear or area-to-point kriging)",
                   "uniform": "Uniform per coarse cell",
                   "bilinear": "Bilinear interpolation (+ refinement passes)",
                   "point_kriging": "Point kriging from cell centres",
                   "atpk": "Area-to-point kriging (coherent, with kriging variance)"}

__all__ = ["RESIDUALS", "RESIDUAL_LABELS", "AtpkResidual", "AutoResidual", "BilinearResidual", "UniformResidual", "FittedResidual",
           "PointKrigingResidual", "ResidualGeometry", "ResidualModel", "ShrunkResidual", "bilinear_residual", "coarse_residual",
           "make_residual", "refine_residual"]


def make_residual(name: str, refinement_passes: int = 3, neighbours: int = 25,
                  variogram_model: str = "exponential", shrink: bool = False) -> ResidualModel:
    """The residual model called ``name`` (one of :data:`RESIDUALS`); with ``shrink`` its departure from
    the uniform residual is weighted by its skill one scale up (:class:`.shrunk.ShrunkResidual`)."""
    if name == "auto":
        return AutoResidual([UniformResidual(), BilinearResidual(refinement_passes),
                             AtpkResidual(neighbours, variogram_model)], shrink=shrink)
    if name == "uniform":
        return UniformResidual()
    models = {"bilinear": lambda: BilinearResidual(refinement_passes),
              "point_kriging": lambda: PointKrigingResidual(neighbours, variogram_model),
              "atpk": lambda: AtpkResidual(neighbours, variogram_model)}
    if name in models:
        return ShrunkResidual(models[name]()) if shrink else models[name]()
    raise ValueError(f"unknown residual model '{name}' (choose one of {', '.join(RESIDUALS)})")
