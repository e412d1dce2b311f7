"""The members of a verified ensemble fused in memory into one ONNX graph give each member's own
session output (to float32 rounding), for Dense, random-forest and boosted members and for the
bundled models on real station rows; the files and their hashes are untouched."""
import glob
import hashlib
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
import onnxruntime as ort
import pytest

from core.learn.boosting import BoostingConfig
from core.learn.forest import ForestConfig
from core.learn.mlp import MLPConfig
from core.learn.onnx_export import MEMBERS_NAME, fuse_members
from core.methods.insitu_ensemble import Ensemble, samples_from_station_table, train_ensemble
from tests.unit.ensemble_synthetic import synthetic_samples

FEATS = ["sm_coarse", "doy", "mtpi", "land_cover"]
MODELS = Path(__file__).resolve().parents[2] / "models"
BUNDLED = sorted(p for p in MODELS.iterdir() if p.is_dir() and any(p.glob("*.onnx")))


def _own_sessions(folder) -> np.ndarray:
    """Each member file in its own onnxruntime session, as the ensemble ran before fusing."""
    return [ort.InferenceSession(p, providers=["CPUExecutionProvider"])
            for p in sorted(glob.glob(os.path.join(folder, "*.onnx")))]


def _one_by_one(folder, X) -> np.ndarray:
    return np.stack([s.run(["sm"], {"X": X})[0].ravel() for s in _own_sessions(folder)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny Dense (one a 'prob' network with a sigma output), RF and HGB members on synthetic stations."""
    data = synthetic_samples(n_sites=12, n_dates=20, seed=5)
    folder = str(tmp_path_factory.mktemp("fused") / "syn")
    train_ensemble(data, FEATS, ["dense", "prob", "rf", "hgb"], ["free"], cv_folds=0, seed=3, out_folder=folder,
                   mlp_config=MLPConfig(hidden=(8, 4), max_epochs=30, batch_size=64),
                   forest_config=ForestConfig(n_estimators=3, max_depth=4, min_samples_leaf=5),
                   boosting_config=BoostingConfig(max_iter=10))
    return data, folder


def test_fused_graph_equals_each_members_own_session(trained):
    data, folder = trained
    X = np.vstack([data.X, data.X[:5] * np.float32(1.3)]).astype(np.float32)   # a few rows off the domain too
    X[3, 2] = np.nan                                                           # and a missing mTPI
    hashes = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in glob.glob(os.path.join(folder, "*"))}
    ens = Ensemble.load(folder, chunk_rows=50)                                  # several runs of the one session
    archs = sorted(os.path.basename(p).split("_")[0] for p in glob.glob(os.path.join(folder, "*.onnx")))
    assert ens.fused and len(ens._sessions) == 1 and set(archs) == {"dense", "prob", "rf", "hgb"}
    got = ens.members(X)
    ref = _one_by_one(folder, X)
    assert got.shape == (len(archs), len(X)) and ens.n_members == len(archs)
    finite = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got), finite)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=2e-7, atol=1e-7)
    mean, sd, ood = ens.predict(X)
    old_mean, old_sd, old_ood = Ensemble.load(folder, fused=False).predict(X)   # the per-member path
    np.testing.assert_allclose(mean, old_mean, rtol=1e-6, atol=1e-7, equal_nan=True)
    np.testing.assert_allclose(sd, old_sd, rtol=1e-5, atol=1e-7, equal_nan=True)
    assert np.array_equal(ood, old_ood) and np.isnan(mean[3]) and ood[-5:].any()
    assert hashes == {p: hashlib.sha256(open(p, "rb").read()).hexdigest()
                      for p in glob.glob(os.path.join(folder, "*"))}   # fusing happened in memory only


def test_fused_graph_keeps_only_what_leads_to_each_members_sm(trained):
    _, folder = trained
    members = [onnx.load(p) for p in sorted(glob.glob(os.path.join(folder, "*.onnx")))]
    fused = fuse_members(members)
    assert [o.name for o in fused.graph.output] == [MEMBERS_NAME]
    assert [i.name for i in fused.graph.input] == ["X"]
    assert not [n for n in fused.graph.node if n.op_type == "Softplus"]      # the prob member's sigma is left out
    trees = sum(n.op_type == "TreeEnsembleRegressor" for m in members for n in m.graph.node)
    assert trees >= 2 and sum(n.op_type == "TreeEnsembleRegressor" for n in fused.graph.node) == trees
    with pytest.raises(ValueError, match="does not map X to sm"):
        bad = onnx.ModelProto()
        bad.CopyFrom(members[0])
        bad.graph.output[0].name = "other"
        fuse_members([bad])
    conv = helper.make_model(helper.make_graph(   # a fully convolutional member: [1, C, H, W] → [1, 1, H, W]
        [helper.make_node("ReduceMean", ["X"], ["sm"], axes=[1])], "conv",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("sm", TensorProto.FLOAT, [1, 1, "H", "W"])]),
        opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ValueError, match="not a row model"):
        fuse_members([members[0], conv])


@pytest.mark.parametrize("folder", BUNDLED, ids=lambda p: p.name)
def test_bundled_fused_equals_members_on_real_rows(folder, shared_data):
    ens = Ensemble.load(str(folder))
    table = shared_data / "conus_stations" / "station_10day_table.csv"
    X = samples_from_station_table(str(table), ens.input_features).X.astype(np.float32)
    assert ens.fused and len(X) > 1000
    got = ens.members(X)
    ref = _one_by_one(str(folder), X)
    np.testing.assert_allclose(got, ref, rtol=2e-7, atol=1e-7)
    assert np.abs(got - ref).max() <= 1e-6 and got.std(axis=0).mean() > 1e-3   # the members do differ
