"""Training → writing → verified loading → prediction; tampering and schema violations are refused."""
import copy
import json
import os
import shutil

import numpy as np
import onnx
import pytest

from core.methods.insitu_ensemble import (CardError, Ensemble, EnsembleError, list_ensembles, load_training_state,
                           read_card, train_ensemble, validate_card, write_card)
from core.learn.forest import ForestConfig
from core.learn.mlp import MLPConfig
from core.errors import Canceled
from tests.unit.ensemble_synthetic import synthetic_samples, truth

FEATS = ["sm_coarse", "doy", "mtpi", "land_cover"]
TINY = MLPConfig(hidden=(8, 4), max_epochs=200, patience=15, batch_size=128, learning_rate=5e-3)
SMALL_RF = ForestConfig(n_estimators=4, max_depth=4, min_samples_leaf=5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = synthetic_samples(n_sites=15, n_dates=25, seed=2)
    folder = str(tmp_path_factory.mktemp("ens") / "syn")
    report = train_ensemble(data, FEATS, ["dense", "rf"], ["free", "field_capacity"], cv_folds=3, seed=7,
                            out_folder=folder, name="synthetic", description="test ensemble",
                            mlp_config=TINY, forest_config=SMALL_RF, save_training_state=True)
    return data, folder, report


@pytest.fixture
def copy_of(trained, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(trained[1], dst)
    return str(dst)


def test_ensemble_learns_synthetic_relationship_and_beats_coarse(trained):
    data, folder, report = trained
    cv = report.evaluations["cv_3fold"].summary
    assert cv["ensemble"]["mean"]["ubrmse"] < 0.6 * cv["coarse"]["mean"]["ubrmse"]
    assert cv["ensemble_dense"]["mean"]["ubrmse"] < 0.4 * cv["coarse"]["mean"]["ubrmse"]  # forests are tiny here
    assert abs(cv["ensemble"]["mean"]["bias"]) < abs(cv["coarse"]["mean"]["bias"])
    assert cv["ensemble"]["mean"]["r"] > 0.8
    ens = Ensemble.load(folder, intra_op_threads=1, chunk_rows=100)   # several chunks
    assert ens.input_features == FEATS and ens.n_members == 2 + 3    # 2 dense + 3 soil-class forests
    mean, std, ood = ens.predict(data.X)
    assert mean.dtype == np.float32 and std.dtype == np.float32
    X = data.X.astype(np.float64)
    clean = truth(X[:, 0], X[:, 1], X[:, 2], X[:, 3])
    assert np.sqrt(np.mean((mean - clean) ** 2)) < 0.02
    assert not ood.any() and np.all(std >= 0)


def test_predict_masks_out_of_domain_and_nan(trained):
    data, folder, _ = trained
    ens = Ensemble.load(folder, intra_op_threads=1)
    X = np.repeat(data.X[:1], 4, axis=0)
    X[1, 2] = 1e4          # mtpi far outside training range
    X[2, 3] = 11.0         # land cover code never seen
    X[3, 0] = np.nan       # no coarse soil moisture
    mean, std, ood = ens.predict(X)
    assert ood.tolist() == [False, True, True, True]
    assert np.isfinite(mean[:3]).all() and np.isnan(mean[3]) and np.isnan(std[3])


def test_card_records_inputs_scores_and_member_hashes(trained):
    data, folder, _ = trained
    card = Ensemble.load(folder).card
    assert [i["name"] for i in card["inputs"]] == FEATS
    assert card["inputs"][0]["units"] == "m3/m3" and card["inputs"][1]["encoding"]["encoding"] == "cyclic"
    assert card["inputs"][3]["domain"] == {"codes": [41, 52, 81]}
    assert card["inputs"][2]["domain"]["min"] == pytest.approx(float(data.X[:, 2].min()))
    cv = card["scores"]["cv_3fold"]
    assert set(cv) == {"protocol", "n_sites", "ensemble", "coarse", "coarse_rescaled", "interval", "members"}
    assert 0.0 <= cv["interval"]["coverage"] <= 1.0 and card["uncertainty"]["level"] == 0.9
    assert cv["coarse"]["mean"]["ubrmse"] > cv["ensemble"]["mean"]["ubrmse"]
    assert len(card["members"]) == 5 and all(len(m["sha256"]) == 64 for m in card["members"])
    assert card["artifacts"][0]["file"] == "training_state.joblib"


def _rewrite(path, mutate):
    m = onnx.load(path)
    mutate(m)
    onnx.save(m, path)


def test_modified_weights_are_refused(copy_of):
    path = os.path.join(copy_of, "dense_free.onnx")

    def bump(m):
        init = m.graph.initializer[-1]
        arr = onnx.numpy_helper.to_array(init) + 0.01
        init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    _rewrite(path, bump)
    with pytest.raises(EnsembleError, match="modified after it was written"):
        Ensemble.load(copy_of)
    assert "modified" in list_ensembles([os.path.dirname(copy_of)])[0].error


def test_card_edited_off_schema_is_refused(copy_of):
    path = os.path.join(copy_of, "dense_free.onnx")

    def edit(m):
        for e in m.metadata_props:
            if e.key == "schema_version":
                e.value = "2"
    _rewrite(path, edit)
    with pytest.raises(EnsembleError, match="schema_version"):
        Ensemble.load(copy_of)


def test_card_hash_swapped_to_match_a_foreign_member_is_refused(copy_of):
    # Copy one member over another: its card says it is the other file.
    shutil.copy(os.path.join(copy_of, "dense_free.onnx"), os.path.join(copy_of, "dense_field_capacity.onnx"))
    with pytest.raises(EnsembleError, match="renamed"):
        Ensemble.load(copy_of)


def test_missing_or_extra_member_is_refused(copy_of):
    os.remove(os.path.join(copy_of, "dense_free.onnx"))
    with pytest.raises(EnsembleError, match="missing"):
        Ensemble.load(copy_of)


def test_training_state_loads_only_with_recorded_hash(copy_of):
    state = load_training_state(copy_of)
    assert set(state["models"]) == {"dense_free", "dense_field_capacity", "rf_field_capacity0",
                                    "rf_field_capacity1", "rf_field_capacity2"}
    path = os.path.join(copy_of, "training_state.joblib")
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(EnsembleError, match="modified after it was written"):
        load_training_state(copy_of)


def test_unrecorded_joblib_is_never_unpickled(tmp_path, trained):
    data = synthetic_samples(n_sites=6, n_dates=10, seed=3)
    folder = str(tmp_path / "nostate")
    train_ensemble(data, FEATS, ["dense"], ["free"], 0, 1, folder, mlp_config=MLPConfig(hidden=(4,), max_epochs=5))
    shutil.copy(os.path.join(trained[1], "training_state.joblib"), folder)
    with pytest.raises(EnsembleError, match="no joblib training state is recorded"):
        load_training_state(folder)


def test_list_ensembles(trained):
    infos = list_ensembles([os.path.dirname(trained[1]), "/nonexistent"])
    assert len(infos) == 1 and infos[0].valid
    assert infos[0].name == "synthetic" and infos[0].inputs == FEATS and infos[0].n_members == 5
    assert "cv_3fold" in infos[0].scores and infos[0].training_data["n_sites"] == 15


def test_progress_and_cancel(tmp_path):
    data = synthetic_samples(n_sites=6, n_dates=10, seed=4)
    seen = []
    calls = {"n": 0}

    def cancel_after_a_while():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Canceled):
        train_ensemble(data, FEATS, ["dense"], ["free", "land_cover"], 2, 1, str(tmp_path / "x"),
                       progress=lambda f, m: seen.append((f, m)), is_canceled=cancel_after_a_while,
                       mlp_config=MLPConfig(hidden=(4,), max_epochs=50))
    assert not (tmp_path / "x").exists()
    assert seen and all(0.0 <= f <= 1.0 for f, _ in seen)


# ------------------------------------------------------------------------------ schema
@pytest.fixture
def good_card(trained):
    m = onnx.load(os.path.join(trained[1], "dense_free.onnx"))
    return read_card(m)


@pytest.mark.parametrize("breaks, match", [
    (lambda c: c.pop("citations"), "lacks"),
    (lambda c: c.__setitem__("colour", "red"), "unknown keys"),
    (lambda c: c.__setitem__("schema_version", 99), "schema_version"),
    (lambda c: c["members"][0].__setitem__("sha256", "abc"), "sha256"),
    (lambda c: c["inputs"][0].__setitem__("name", "soil_moisture"), "not a feature"),
    (lambda c: c["inputs"][2]["domain"].update(min=5.0, max=1.0), "min <= max"),
    (lambda c: c["outputs"][0].__setitem__("units", "%"), "m3/m3"),
    (lambda c: c["member"].__setitem__("architecture", "xgboost"), "architecture"),
    (lambda c: c["training_data"].__setitem__("n_sites", "18"), "integer"),
    (lambda c: c["artifacts"].append({"file": "../evil.joblib", "kind": "x", "sha256": "0" * 64}), "plain file"),
    (lambda c: c["scores"]["cv_3fold"]["ensemble"]["mean"].__setitem__("r", "high"), "number or null"),
])
def test_schema_violations_are_refused_on_write_and_read(good_card, breaks, match):
    bad = copy.deepcopy(good_card)
    breaks(bad)
    with pytest.raises(CardError, match=match):
        validate_card(bad)
    model = onnx.ModelProto()
    with pytest.raises(CardError, match=match):
        write_card(model, bad)
    # written behind the validator's back, it is refused on read
    for k, v in bad.items():
        e = model.metadata_props.add()
        e.key, e.value = k, json.dumps(v)
    with pytest.raises(CardError, match=match):
        read_card(model)


def test_card_round_trip(good_card):
    model = onnx.ModelProto()
    write_card(model, good_card)
    assert read_card(model) == good_card
    with pytest.raises(CardError, match="no model card"):
        read_card(onnx.ModelProto())
