"""The numpy networks and forests: gradients, learning a known relationship, ONNX parity."""
import numpy as np
import onnxruntime as ort
import pytest

from core.learn.forest import ForestConfig, ForestMember
from core.learn.mlp import MLP, MLPConfig, _loss_and_grads
from core.learn.onnx_export import forest_to_onnx, mlp_to_onnx, model_sha256
from tests.unit.ensemble_synthetic import synthetic_samples, truth

FEATS = ["sm_coarse", "doy", "mtpi", "land_cover"]
TINY = dict(hidden=(8, 4), max_epochs=400, patience=20, batch_size=128)


@pytest.fixture(scope="module")
def data():
    return synthetic_samples(n_sites=16, n_dates=30, seed=1)


@pytest.mark.parametrize("arch", ["dense", "prob", "wdl"])
def test_gradients_match_finite_differences(arch, data):
    rng = np.random.default_rng(0)
    net = MLP(MLPConfig(architecture=arch, hidden=(4, 3)), FEATS)
    net.encoder.fit(data.X)
    H = net.encoder.transform(data.X[:15])
    z, w = rng.normal(size=15), rng.uniform(0.5, 2.0, 15)
    sizes = [H.shape[1], 4, 3, 2 if arch == "prob" else 1]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(size=(a, b)), rng.normal(size=b)]
    if arch == "wdl":
        params.append(rng.normal(size=H.shape[1]))
    _, grads = _loss_and_grads(params, H, z, w, arch)
    for p, g in zip(params, grads):
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(0, flat.size, max(1, flat.size // 7)):
            old = flat[i]
            flat[i] = old + 1e-6
            lp, _ = _loss_and_grads(params, H, z, w, arch, need_grads=False)
            flat[i] = old - 1e-6
            lm, _ = _loss_and_grads(params, H, z, w, arch, need_grads=False)
            flat[i] = old
            assert (lp - lm) / 2e-6 == pytest.approx(gflat[i], rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("arch", ["dense", "prob", "wdl"])
def test_network_learns_known_relationship_and_onnx_matches(arch, data):
    net = MLP(MLPConfig(architecture=arch, seed=3, **TINY), FEATS).fit(data.X, data.y, groups=data.site_id)
    pred = net.predict(data.X)
    X = data.X.astype(np.float64)
    clean = truth(X[:, 0], X[:, 1], X[:, 2], X[:, 3])
    assert np.sqrt(np.mean((pred - clean) ** 2)) < 0.02   # noise 0.005, signal sd ≈ 0.07
    sess = ort.InferenceSession(mlp_to_onnx(net).SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"X": data.X})
    np.testing.assert_allclose(outs[0][:, 0], pred, rtol=1e-5, atol=2e-6)
    if arch == "prob":
        _, sd = net.predict(data.X, return_std=True)
        np.testing.assert_allclose(outs[1][:, 0], sd, rtol=1e-4, atol=1e-6)
        assert 0.002 < np.median(sd) < 0.05


def test_training_is_deterministic_for_a_seed(data):
    cfg = MLPConfig(seed=5, **TINY)
    a = MLP(cfg, FEATS).fit(data.X, data.y, groups=data.site_id).predict(data.X[:50])
    b = MLP(cfg, FEATS).fit(data.X, data.y, groups=data.site_id).predict(data.X[:50])
    np.testing.assert_array_equal(a, b)


def test_sample_weights_pull_the_fit(data):
    # Weight one station's rows strongly and shift its target: the fit there follows.
    y = data.y.astype(np.float64).copy()
    site = data.site_id == data.sites[0]
    y[site] += 0.1
    w = np.where(site, 50.0, 1.0)
    cfg = MLPConfig(seed=2, validation_fraction=0.0, **TINY)
    plain = MLP(cfg, FEATS).fit(data.X, y).predict(data.X[site])
    weighted = MLP(cfg, FEATS).fit(data.X, y, sample_weight=w).predict(data.X[site])
    assert np.mean(np.abs(weighted - y[site])) < np.mean(np.abs(plain - y[site]))


def test_early_stopping_validation_holds_out_whole_stations():
    from core.learn.mlp import _validation_split

    groups = np.repeat(np.arange(10), 7)
    tr, va = _validation_split(groups.size, groups, 0.2, np.random.default_rng(0))
    assert set(groups[tr]).isdisjoint(groups[va]) and len(set(groups[va])) == 2


def test_unseen_land_cover_code_gives_zero_indicators_in_onnx(data):
    net = MLP(MLPConfig(architecture="wdl", seed=1, **TINY), FEATS).fit(data.X, data.y)
    X = data.X[:5].copy()
    X[:, 3] = [11.0, np.nan, 41.0, 999.0, 52.0]
    sess = ort.InferenceSession(mlp_to_onnx(net).SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"X": X})[0][:, 0], net.predict(X), rtol=1e-5, atol=2e-6)


def test_forest_onnx_matches_scikit_learn(data):
    X = data.X.copy()
    X[::7, 3] = np.nan   # unknown land cover → −1 on both sides
    fm = ForestMember(ForestConfig(n_estimators=5, max_depth=5, min_samples_leaf=5, seed=0), [3]).fit(X, data.y)
    model = forest_to_onnx(fm.model, X.shape[1], [3])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"X": X})[0][:, 0], fm.predict(X), rtol=1e-5, atol=2e-6)


def test_hash_ignores_metadata_but_not_weights(data):
    net = MLP(MLPConfig(seed=1, **TINY), FEATS).fit(data.X, data.y)
    m = mlp_to_onnx(net)
    h = model_sha256(m)
    entry = m.metadata_props.add()
    entry.key, entry.value = "note", "\"x\""
    assert model_sha256(m) == h
    m.graph.initializer[-1].raw_data = bytes(len(m.graph.initializer[-1].raw_data))
    assert model_sha256(m) != h
