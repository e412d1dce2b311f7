"""In-situ-trained ensembles of simple models for soil-moisture downscaling (Poehls et al.).

Public API::

    samples_from_station_table(csv_path, feature_names) -> Samples
    train_ensemble(samples, feature_names, architectures, schemes, cv_folds, seed, out_folder,
                   progress=None, is_canceled=None, ...) -> TrainingReport
    Ensemble.load(folder) -> Ensemble;  .card, .input_features, .predict(X) -> (mean, std, ood)
    list_ensembles(folders) -> list[EnsembleInfo]
    balanced_weights(classes), quantile_classes(values, n_bins, groups=None)

Nothing here imports QGIS.
"""
from .card import CardError, read_card, validate_card, write_card
from .evaluation import group_kfold, stratified_site_split
from .features import FEATURES
from .runtime import Ensemble, EnsembleError, EnsembleInfo, list_ensembles, load_training_state
from .samples import Samples, samples_from_station_table
from .schemes import SCHEMES, WeightingScheme
from .training import TrainingReport, train_ensemble
from .weights import balanced_weights, quantile_classes, quantile_edges

__all__ = [
    "CardError", "Ensemble", "EnsembleError", "EnsembleInfo", "FEATURES", "SCHEMES", "Samples",
    "TrainingReport", "WeightingScheme", "balanced_weights", "group_kfold", "list_ensembles",
    "load_training_state", "quantile_classes", "quantile_edges", "read_card", "samples_from_station_table",
    "stratified_site_split", "train_ensemble", "validate_card", "write_card",
]
