"""Random-forest members (Abbaszadeh et al. 2019, as used by Poehls et al.).

The RF ensemble uses no sample weights: it balances the soil domain by training one
forest *per soil class* on that class's samples only, and the ensemble averages all
forests everywhere, so each class contributes equally whatever its abundance. The paper
uses soil texture classes; the training table here has no texture, so the soil class is
a quantile class (terciles over sites, by default) of the field capacity, which is
mostly a function of texture (see :func:`core.methods.insitu_ensemble.schemes.class_labels`).

Forests are kept small enough to ship (few, shallow trees with large leaves); scikit-learn
sees the raw inputs, with NaN categorical codes replaced by −1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class ForestConfig:
    """Size of each forest (the file size grows with ``n_estimators · 2^max_depth``)."""

    n_estimators: int = 30
    max_depth: int = 8
    min_samples_leaf: int = 20
    max_features: float = 0.6
    seed: int = 0


def missing_codes_to_minus_one(X: np.ndarray, categorical_columns: Sequence[int]) -> np.ndarray:
    """A float32 copy of ``X`` whose NaN class codes (in ``categorical_columns``) are −1, as the tree
    members see them in training and the ONNX prefix of :mod:`core.learn.onnx_export` at run time."""
    X = np.array(X, dtype=np.float32, copy=True)
    for c in categorical_columns:
        col = X[:, c]
        col[~np.isfinite(col)] = -1.0
    return X


class ForestMember:
    """One random forest on raw feature columns.

    Parameters
    ----------
    config : ForestConfig
    categorical_columns : sequence of int
        Columns holding class codes (NaN → −1 before fitting and predicting).
    """

    def __init__(self, config: ForestConfig, categorical_columns: Sequence[int] = ()) -> None:
        self.config = config
        self.categorical_columns = [int(c) for c in categorical_columns]
        self.model = None

    def _clean(self, X: np.ndarray) -> np.ndarray:
        return missing_codes_to_minus_one(X, self.categorical_columns)

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray] = None) -> "ForestMember":
        """Fit on raw inputs ``X`` and targets ``y`` (m³/m³)."""
        from sklearn.ensemble import RandomForestRegressor

        c = self.config
        self.model = RandomForestRegressor(
            n_estimators=c.n_estimators, max_depth=c.max_depth, min_samples_leaf=c.min_samples_leaf,
            max_features=c.max_features, random_state=c.seed, n_jobs=1)
        self.model.fit(self._clean(X), np.asarray(y, dtype=np.float64), sample_weight=sample_weight)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted soil moisture (m³/m³), float64."""
        if self.model is None:
            raise RuntimeError("ForestMember.predict before fit")
        return self.model.predict(self._clean(X))
