"""Align covariates to a target grid (the fine view), and optionally aggregate them to the coarse grid."""
from __future__ import annotations

import os

from qgis.core import QgsProcessingParameterMultipleLayers, QgsProcessingParameterRasterDestination

from ..core.inputs.scene import Scene
from ..core.io.stack import write_coarse_stack, write_fine_stack
from . import layer_params as lp
from .base import TYPE_RASTER, CoreFeedback, SmAlgorithm, core_errors, steps


class AlignCovariates(SmAlgorithm):
    NAME = "align_covariates"
    DISPLAY_NAME = "Align covariates to a target grid"
    GROUP_ID = "inputs"
    GROUP = "Inputs"
    HELP = (
        "Brings covariate layers of any CRS, resolution and extent onto one grid, as a band stack "
        "(band description = covariate, and date for dated layers). The grid: the target CRS and resolution "
        "(default: the finest covariate's), over the extent where all inputs overlap. Continuous covariates are "
        "averaged when coarsened and interpolated bilinearly when refined; land cover takes the majority class "
        "or the nearest pixel. Slope and the multi-scale TPI are derived from a DEM.<br>"
        "With a coarse soil-moisture layer, the covariates are also aggregated to its grid (the training view "
        "the regression is fitted on): mean per coarse cell, majority for land cover."
    )

    OUTPUT = "OUTPUT"
    COARSE_OUTPUT = "COARSE_OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: N802
        lp.add_covariate_params(self)
        lp.add_grid_params(self)
        self.add_param(QgsProcessingParameterMultipleLayers(lp.SOIL_MOISTURE, self.tr("Coarse soil moisture (reference grid)"),
                                                            TYPE_RASTER, optional=True),
                       "Optional: the coarse soil-moisture product. Its grid is the coarse grid of the training view, "
                       "and the fine grid is aligned to its cell corners.")
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Aligned covariates")),
                       "GeoTIFF band stack on the target grid.")
        self.add_param(QgsProcessingParameterRasterDestination(self.COARSE_OUTPUT, self.tr("Covariates on the coarse grid"),
                                                               optional=True, createByDefault=False),
                       "GeoTIFF band stack on the coarse soil-moisture grid (needs the soil-moisture layer).")

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        coarse_out = self.parameterAsOutputLayer(parameters, self.COARSE_OUTPUT, context) \
            if parameters.get(self.COARSE_OUTPUT) else None
        has_sm = bool(self.parameterAsLayerList(parameters, lp.SOIL_MOISTURE, context))
        results = {}
        labels = [self.tr("Checking inputs"), self.tr("Aligning")] + ([self.tr("Aggregating to the coarse grid")] if coarse_out else [])
        with core_errors():
            for i, fb in steps(feedback, labels):
                if i == 0:
                    spec = lp.scene_spec(self, parameters, context, with_soil_moisture=has_sm)
                    spec.check_units = True
                    scene = Scene(spec)
                    lp.check_room(out, scene.fine.width, scene.fine.height, len(scene.covariate_names),
                               what=self.tr("Aligned covariates"))
                    fb.pushInfo(self.tr(f"Target grid {scene.fine.width}×{scene.fine.height} px of {scene.fine.dx:g}"))
                elif i == 1:
                    cf = CoreFeedback(fb)
                    names = write_fine_stack(scene, out, progress=cf.progress, is_canceled=cf.is_canceled)
                    fb.pushInfo(self.tr("Bands: " + ", ".join(names)))
                    results[self.OUTPUT] = out
                else:
                    cf = CoreFeedback(fb)
                    write_coarse_stack(scene, coarse_out, progress=cf.progress, is_canceled=cf.is_canceled)
                    results[self.COARSE_OUTPUT] = coarse_out
        return results
