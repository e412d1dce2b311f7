"""Residual models: how a trend's coarse residual is spread onto the fine grid.

Every model keeps one interface (:class:`.base.ResidualModel`): ``fit(residuals, geometry,
canceled)`` on the coarse residual of every date, then ``predict(t, window)`` → fine residual (and
kriging variance where the model has one), block by block. The trend → residual pipeline
(:mod:`core.methods.pipeline`) composes any trend with any of them:

* ``bilinear`` (:mod:`.bilinear`) — between cell centres, plus refinement passes (SVRB);
* ``point_kriging`` (:mod:`.point_kriging`) — ordinary kriging from cell centres (SVRK);
* ``atpk`` (:mod:`.atpk`) — area-to-point kriging with a deconvolved variogram (SVATARK): coherent,
  with a kriging variance.
"""
from __future__ import annotations

from .atpk import AtpkResidual
from .base import FittedResidual, ResidualGeometry, ResidualModel, coarse_residual
from .bilinear import BilinearResidual, bilinear_residual, refine_residual
from .point_kriging import PointKrigingResidual

RESIDUALS = ("bilinear", "point_kriging", "atpk")
RESIDUAL_LABELS = {"bilinear": "Bilinear interpolation (+ refinement passes)",
                   "point_kriging": "Point kriging from cell centres",
                   "atpk": "Area-to-point kriging (coherent, with kriging variance)"}

__all__ = ["RESIDUALS", "RESIDUAL_LABELS", "AtpkResidual", "BilinearResidual", "FittedResidual",
           "PointKrigingResidual", "ResidualGeometry", "ResidualModel", "bilinear_residual", "coarse_residual",
           "make_residual", "refine_residual"]


def make_residual(name: str, refinement_passes: int = 3, neighbours: int = 25,
                  variogram_model: str = "exponential") -> ResidualModel:
    """The residual model called ``name`` (one of :data:`RESIDUALS`)."""
    if name == "bilinear":
        return BilinearResidual(refinement_passes)
    if name == "point_kriging":
        return PointKrigingResidual(neighbours, variogram_model)
    if name == "atpk":
        return AtpkResidual(neighbours, variogram_model)
    raise ValueError(f"unknown residual model '{name}' (choose one of {', '.join(RESIDUALS)})")
