"""The HTML training report: every member, the ensemble and the coarse product, per station and summarised."""
import re

import pytest

from core.methods.insitu_ensemble import train_ensemble
from core.learn.mlp import MLPConfig
from core.methods.insitu_ensemble.report import summary_lines, training_report_html
from tests.unit.ensemble_synthetic import synthetic_samples


@pytest.fixture(scope="module")
def run():
    data = synthetic_samples(n_sites=9, n_dates=12, seed=4, features=("sm_coarse", "doy", "mtpi"))
    report = train_ensemble(data, ["sm_coarse", "mtpi"], ["dense", "wdl"], ["free", "land_cover"], cv_folds=3,
                            seed=1, out_folder=None, name="tiny <test>", holdout_fraction=0.3,
                            mlp_config=MLPConfig(hidden=(4,), max_epochs=8, patience=3))
    return data, report


def test_report_lists_every_model_per_station_and_summary(run):
    data, report = run
    page = training_report_html(report, data)
    assert page.startswith("<!DOCTYPE html>") and "tiny &lt;test&gt;" in page   # escaped
    assert "Station-grouped 3-fold cross-validation" in page and "Station holdout" in page
    cv = report.evaluations["cv_3fold"]
    for key in ["coarse", "coarse_rescaled", "ensemble", "ensemble_dense", "ensemble_wdl", "dense_free",
                "wdl_land_cover"]:
        assert f"<td class='txt'>{key}</td>" in page
    # summary cells carry the numbers of the report
    assert f"{cv.summary['ensemble']['mean']['ubrmse']:.4f}" in page
    assert f"{cv.summary['coarse']['median']['r']:.3f}" in page
    # per-station tables: one row per test station, twice (ubRMSE, R) per protocol
    for site in data.sites:
        assert len(re.findall(f"<td class='txt'>{site}</td>", page)) >= 2
    beats = cv.beats_ensemble["ubrmse"]
    assert f"mean station ubRMSE: <b>{', '.join(beats) if beats else 'none'}</b>" in page
    assert "synthetic stations" in page                     # provenance from samples.source
    # the honest baseline, the amplitude and the interval coverage are stated
    resc = cv.summary["coarse_rescaled"]["mean"]
    verdict = "beats" if cv.beats_rescaled() else "does <b>not</b> beat"
    assert f"the ensemble {verdict} it on both mean station R" in page and f"{resc['ubrmse']:.4f}" in page
    assert "Amplitude (σ est / σ in-situ)" in page and f"{cv.summary['ensemble']['mean']['amplitude']:.3f}" in page
    assert f"held <b>{cv.interval['coverage']:.1%}</b>" in page


def test_summary_lines_name_both_products(run):
    _, report = run
    lines = summary_lines(report, "SMAP")
    assert len(lines) == 2 and all("ensemble ubRMSE" in s and "SMAP ubRMSE" in s for s in lines)
