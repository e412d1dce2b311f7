"""Conservation and heterogeneity diagnostics on a synthetic 2 × 2 coarse grid.

Fine grid 4 rows × 5 columns: each coarse cell holds 2 × 2 fine pixels; the fifth column
lies outside the coarse grid (cell −1, value 9 that must be ignored).

    fine values                 coarse cell of each pixel     coarse values
    0.2 0.4 | 0.1 0.1 | 9       0 0 1 1 -1                    0.25  0.10
    0.2 0.4 | 0.1 0.1 | 9       0 0 1 1 -1                    0.40  NaN
    0.3 NaN | 0.5 0.5 | 9       2 2 3 3 -1
    0.3 0.3 | 0.5 0.5 | 9       2 2 3 3 -1

By hand:
    cell 0: mean 0.3, std 0.1 -> conservation (0.3 − 0.25)/0.25·100 = +20 %, CV 1/3
    cell 1: mean 0.1, std 0   -> 0 %, CV 0
    cell 2: 3 valid of 4 (coverage 0.75), mean 0.3, std 0 -> (0.3 − 0.4)/0.4·100 = −25 %, CV 0
    cell 3: mean 0.5, std 0, coarse NaN -> conservation NaN, CV 0
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.evaluation.diagnostics import (
    DiagnosticsAccumulator,
    cell_diagnostics,
    conservation_percent,
    heterogeneity_cv,
    summary,
)

FINE = np.array([[0.2, 0.4, 0.1, 0.1, 9.0],
                 [0.2, 0.4, 0.1, 0.1, 9.0],
                 [0.3, np.nan, 0.5, 0.5, 9.0],
                 [0.3, 0.3, 0.5, 0.5, 9.0]])
CELL = np.array([[0, 0, 1, 1, -1],
                 [0, 0, 1, 1, -1],
                 [2, 2, 3, 3, -1],
                 [2, 2, 3, 3, -1]])
COARSE = np.array([0.25, 0.10, 0.40, np.nan])


def _check(d):
    np.testing.assert_allclose(d.fine_mean, [0.3, 0.1, 0.3, 0.5])
    # CellAccumulator's std is sqrt(E[x²] − E[x]²): a constant cell comes out ~1e-9, not 0.
    np.testing.assert_allclose(d.fine_std, [0.1, 0.0, 0.0, 0.0], atol=1e-7)
    assert d.count.tolist() == [4, 4, 3, 4]
    np.testing.assert_allclose(d.coverage, [1.0, 1.0, 0.75, 1.0])
    np.testing.assert_allclose(d.conservation_percent, [20.0, 0.0, -25.0, np.nan], atol=1e-9)
    np.testing.assert_allclose(d.heterogeneity_cv, [1 / 3, 0.0, 0.0, 0.0], atol=1e-7)


def test_one_shot():
    _check(cell_diagnostics(FINE, CELL, COARSE))


def test_streaming_row_blocks_equal_one_shot():
    acc = DiagnosticsAccumulator(4)
    for r in range(FINE.shape[0]):
        acc.add(FINE[r:r + 1], CELL[r:r + 1])
    _check(acc.result(COARSE))


def test_min_count_and_min_coverage_blank_thin_cells():
    d = cell_diagnostics(FINE, CELL, COARSE, min_coverage=0.8)
    assert math.isnan(d.conservation_percent[2]) and math.isnan(d.heterogeneity_cv[2])
    assert d.conservation_percent[0] == pytest.approx(20.0)
    d = cell_diagnostics(FINE, CELL, COARSE, min_count=4)
    assert math.isnan(d.conservation_percent[2]) and d.heterogeneity_cv[1] == pytest.approx(0.0, abs=1e-7)


def test_cell_without_fine_pixels_is_nan():
    d = cell_diagnostics(FINE, CELL, np.array([0.25, 0.1, 0.4, 0.5, 0.3]))  # a fifth, empty cell
    assert d.count[4] == 0 and math.isnan(d.coverage[4])
    assert math.isnan(d.conservation_percent[4]) and math.isnan(d.heterogeneity_cv[4])


def test_summary_by_hand():
    d = cell_diagnostics(FINE, CELL, COARSE)
    s = summary(d.conservation_percent, d.heterogeneity_cv)
    # |conservation| = 20, 0, 25 (NaN ignored): mean 15, median 20, max 25
    assert s["conservation_percent"] == {"mean_abs": pytest.approx(15.0), "median_abs": pytest.approx(20.0),
                                         "max_abs": pytest.approx(25.0), "n_cells": 3.0}
    # CV = 1/3, 0, 0, 0: mean 1/12 = 0.083333, median 0, max 1/3
    cv = s["heterogeneity_cv"]
    assert cv["mean_abs"] == pytest.approx(1 / 12, abs=1e-7) and cv["median_abs"] == pytest.approx(0.0, abs=1e-7)
    assert cv["max_abs"] == pytest.approx(1 / 3, abs=1e-7) and cv["n_cells"] == 4.0


def test_summary_over_dates_and_empty():
    s = summary(np.array([[10.0, -30.0], [np.nan, 5.0]]), np.array([0.1, 0.2]))
    assert s["conservation_percent"]["max_abs"] == 30.0 and s["conservation_percent"]["median_abs"] == 10.0
    e = summary(np.array([np.nan]), np.array([]))
    assert e["heterogeneity_cv"]["n_cells"] == 0 and math.isnan(e["conservation_percent"]["mean_abs"])


def test_elementwise_formulas():
    np.testing.assert_allclose(conservation_percent(np.array([0.3, 0.2, 0.1]), np.array([0.2, 0.0, -0.1])),
                               [50.0, np.nan, np.nan])
    np.testing.assert_allclose(heterogeneity_cv(np.array([0.2, 0.0, np.nan]), np.array([0.05, 0.0, 0.1])),
                               [0.25, np.nan, np.nan])


def test_input_checks():
    acc = DiagnosticsAccumulator(4)
    with pytest.raises(ValueError, match="shape"):
        acc.add(FINE, CELL[:, :4])
    with pytest.raises(ValueError, match="beyond"):
        acc.add(np.array([0.1]), np.array([4]))
    with pytest.raises(ValueError, match="coarse values"):
        acc.result(np.array([0.1, 0.2]))
