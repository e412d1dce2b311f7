"""Boosted-tree members: a straight line on the coarse product plus histogram gradient boosting.

Each member first fits the straight line ``a + b · sm_coarse`` to the in-situ values of its
training stations (weighted least squares with the member's sample weights) — the "coarse
product linearly rescaled" baseline every ensemble must beat — and then fits scikit-learn's
``HistGradientBoostingRegressor`` to what the line leaves (in-situ − line), with the same sample
weights. The prediction is line + trees: the line keeps the coarse product's timing (a straight
line with b > 0 leaves its per-station R unchanged), the trees add what the covariates explain
about level, amplitude and season. Without an ``sm_coarse`` input the line is the weighted mean.

Categorical codes (NLCD class) go to the trees as numbers, NaN → −1 as for the forests; the
boosting itself sees NaN in continuous columns as "missing" (it learns a side for it).
Training is deterministic: no early stopping, no subsampling, a fixed ``random_state``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .fit_threads import fit_threads
from .forest import missing_codes_to_minus_one


@dataclass(frozen=True)
class BoostingConfig:
    """Hyper-parameters of one boosted member (file size grows with ``max_iter · max_leaf_nodes``)."""

    max_iter: int = 300
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    linear_base: bool = True
    seed: int = 0


class BoostingMember:
    """Line on the coarse product + gradient-boosted residual, on raw feature columns.

    Parameters
    ----------
    config : BoostingConfig
    categorical_columns : sequence of int
        Columns holding class codes (NaN → −1 before fitting and predicting).
    coarse_column : int or None
        Column of ``sm_coarse`` (the line's input); None fits a constant.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0.05, 0.4, (400, 1)); y = 0.8 * X[:, 0] + 0.02
    >>> m = BoostingMember(BoostingConfig(max_iter=20), coarse_column=0).fit(X, y)
    >>> round(m.slope, 3), round(m.intercept, 3)
    (0.8, 0.02)
    """

    def __init__(self, config: BoostingConfig, categorical_columns: Sequence[int] = (),
                 coarse_column: Optional[int] = None) -> None:
        self.config = config
        self.categorical_columns = [int(c) for c in categorical_columns]
        self.coarse_column = None if coarse_column is None else int(coarse_column)
        self.slope = 0.0
        self.intercept = 0.0
        self.model = None

    def _clean(self, X: np.ndarray) -> np.ndarray:
        return missing_codes_to_minus_one(X, self.categorical_columns)

    def line(self, X: np.ndarray) -> np.ndarray:
        """The straight-line part ``intercept + slope · sm_coarse`` (float64)."""
        X = np.asarray(X)
        base = np.full(X.shape[0], self.intercept, dtype=np.float64)
        if self.coarse_column is not None:
            base += self.slope * X[:, self.coarse_column].astype(np.float32).astype(np.float64)
        return base

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray] = None) -> "BoostingMember":
        """Fit the line, then the boosted residual, on raw inputs ``X`` and targets ``y`` (m³/m³)."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        c = self.config
        y = np.asarray(y, dtype=np.float64)
        w = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.slope, self.intercept = 0.0, float(np.average(y, weights=w))
        if self.coarse_column is not None and c.linear_base:
            x = np.asarray(X)[:, self.coarse_column].astype(np.float32).astype(np.float64)
            ok = np.isfinite(x)
            xm = np.average(x[ok], weights=w[ok])
            ym = np.average(y[ok], weights=w[ok])
            var = np.average((x[ok] - xm) ** 2, weights=w[ok])
            self.slope = float(np.average((x[ok] - xm) * (y[ok] - ym), weights=w[ok]) / var) if var > 0 else 0.0
            self.intercept = float(ym - self.slope * xm)
        self.model = HistGradientBoostingRegressor(
            max_iter=c.max_iter, learning_rate=c.learning_rate, max_leaf_nodes=c.max_leaf_nodes,
            min_samples_leaf=c.min_samples_leaf, l2_regularization=c.l2_regularization,
            early_stopping=False, random_state=c.seed)
        with fit_threads(len(y)):
            self.model.fit(self._clean(X), y - self.line(X), sample_weight=w)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted soil moisture (m³/m³), float64."""
        if self.model is None:
            raise RuntimeError("BoostingMember.predict before fit")
        return self.line(X) + self.model.predict(self._clean(X))
