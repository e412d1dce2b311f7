"""The Processing provider: the toolbox group "Soil Moisture Downscaling" and its algorithms."""
from __future__ import annotations

from qgis.core import QgsProcessingProvider

from . import (
    align_covariates,
    check_inputs,
    downscale_cross_scale,
    downscale_deep_ensemble,
    downscale_ensemble,
    downscale_regression,
    downscale_stacking,
    downscale_svatark,
    drought_anomaly,
    import_ismn,
    import_product,
    prepare_covariates,
    score_stations,
    site_report,
    train_cross_scale,
    train_ensemble,
)

#: Every algorithm the provider offers; add a new module's class here (explicit import above).
ALGORITHMS = (
    check_inputs.CheckInputs,
    align_covariates.AlignCovariates,
    import_ismn.ImportIsmn,
    import_product.ImportProduct,
    prepare_covariates.PrepareCovariates,
    downscale_regression.DownscaleRegression,
    downscale_svatark.DownscaleSvatark,
    downscale_deep_ensemble.DownscaleDeepEnsemble,
    downscale_ensemble.DownscaleEnsemble,
    downscale_stacking.DownscaleStacking,
    score_stations.ScoreStations,
    drought_anomaly.DroughtAnomaly,
    site_report.SiteReport,
    train_ensemble.TrainEnsemble,
    downscale_cross_scale.DownscaleCrossScale,
    train_cross_scale.TrainCrossScale,
)


class SoilMoistureProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "soil_moisture_downscaling"

    def name(self) -> str:
        return self.tr("Soil Moisture Downscaling")

    def longName(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Soil Moisture Downscaling (coarse satellite soil moisture → fine grids)")

    def loadAlgorithms(self) -> None:  # noqa: N802
        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
