"""Method: in-situ-trained ensembles of simple models (Poehls et al.).

It learns what a station measures, so its fit takes station samples rather than a scene::

    samples = samples_from_station_table(csv_path, feature_names)     # or raster_samples.samples_from_scene
    report = fit(samples, EnsembleOptions(...), out_folder)            # ONNX members + cards, CV scores
    ensemble = Ensemble.load(out_folder)                               # verified: cards and hashes
    result = predict(ensemble, scene, EnsembleOutputs(mean, spread, mask), progress, is_canceled)

``train_ensemble`` is ``fit`` with the options spelled out as arguments (recipes use it).
Model building blocks (networks, forests, ONNX export, cards, model folders) live in
:mod:`core.learn`; this package holds what is specific to the method (weighting schemes, station
samples, training plan checks, the training report).
"""
from ...learn.card import CardError, read_card, validate_card, write_card
from ...learn.features import FEATURES
from ...learn.model_folder import Ensemble, EnsembleError, EnsembleInfo, list_ensembles, load_training_state
from ...learn.validation import group_kfold, stratified_site_split
from ...learn.weights import balanced_weights, quantile_classes, quantile_edges
from .apply import EnsembleOutputs, predict
from .samples import Samples, samples_from_station_table
from .schemes import SCHEMES, WeightingScheme
from .training import EnsembleOptions, TrainingReport, fit, train_ensemble

__all__ = [
    "CardError", "Ensemble", "EnsembleError", "EnsembleInfo", "EnsembleOptions", "EnsembleOutputs", "FEATURES",
    "SCHEMES", "Samples", "TrainingReport", "WeightingScheme", "balanced_weights", "fit", "group_kfold",
    "list_ensembles", "load_training_state", "predict", "quantile_classes", "quantile_edges", "read_card",
    "samples_from_station_table", "stratified_site_split", "train_ensemble", "validate_card", "write_card",
]
