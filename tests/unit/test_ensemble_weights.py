"""Balanced sample weights and quantile classes, against hand-computed values."""
import numpy as np
import pytest

from core.methods.insitu_ensemble.schemes import SCHEMES
from core.learn.weights import MISSING_CLASS, balanced_weights, quantile_classes, quantile_edges


def test_balanced_weights_by_hand():
    # n = 6, classes a×3, b×2, c×1 → w = 6/(3·3)=2/3, 6/(3·2)=1, 6/(3·1)=2
    w = balanced_weights(["a", "a", "a", "b", "b", "c"])
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3, 1.0, 1.0, 2.0])
    assert w.sum() == pytest.approx(6.0)
    # each class carries n / n_classes = 2
    assert w[:3].sum() == pytest.approx(2.0) and w[3:5].sum() == pytest.approx(2.0)


def test_balanced_weights_single_class_is_all_ones():
    np.testing.assert_allclose(balanced_weights([7, 7, 7, 7]), 1.0)


def test_missing_values_form_their_own_class():
    # 52, 52, NaN, None → classes {52: 2, missing: 2}: all weights 4 / (2·2) = 1
    np.testing.assert_allclose(balanced_weights([52.0, 52, np.nan, None]), 1.0)
    # 52.0 and 52 are the same class; NaN alone: n=3, {52: 2, missing: 1}
    np.testing.assert_allclose(balanced_weights([52.0, 52, np.nan]), [0.75, 0.75, 1.5])
    assert MISSING_CLASS == "missing"


def test_quantile_edges_and_classes_by_hand():
    np.testing.assert_allclose(quantile_edges([1, 2, 3, 4, 5, 6], 3), [8 / 3, 13 / 3])
    assert quantile_classes([1, 2, 3, 4, 5, 6, np.nan], 3).tolist() == [0, 0, 1, 1, 2, 2, -1]
    # an edge value goes to the upper bin
    assert quantile_classes([1.0, 2.0, 3.0], 2).tolist() == [0, 1, 1]


def test_quantile_edges_count_each_site_once():
    # site A has 8 rows at 10, sites B, C one row each at 20, 30 → per-site median is 20
    values = [10.0] * 8 + [20.0, 30.0]
    groups = ["A"] * 8 + ["B", "C"]
    assert quantile_edges(values, 2, groups).tolist() == [20.0]
    assert quantile_edges(values, 2).tolist() == [10.0]  # per-row median would be dominated by A


def test_scheme_weights_balance_field_capacity_terciles():
    fc = np.array([10.0] * 6 + [20.0] * 2 + [30.0] * 1)   # three sites, one value each
    site = np.array(["a"] * 6 + ["b"] * 2 + ["c"])
    w = SCHEMES["field_capacity"].weights({"field_capacity": fc}, site)
    np.testing.assert_allclose(w, [0.5] * 6 + [1.5] * 2 + [3.0])
    np.testing.assert_allclose(SCHEMES["free"].weights({}, site), 1.0)
    with pytest.raises(ValueError, match="class attribute 'wetness'"):
        SCHEMES["climate_wetness"].weights({}, site)
