"""Tanh hidden layers of the numpy MLP: exact gradients, learns a known function, ONNX graph equals numpy."""
import numpy as np
import pytest

from core.learn.mlp import MLP, MLPConfig, _loss_and_grads


def test_tanh_gradients_equal_finite_differences():
    rng = np.random.default_rng(0)
    H, z, w = rng.normal(size=(20, 3)), rng.normal(size=20), np.ones(20)
    params = [rng.normal(size=(3, 5)), rng.normal(size=5), rng.normal(size=(5, 1)), rng.normal(size=1)]
    _, grads = _loss_and_grads(params, H, z, w, "dense", activation="tanh")
    eps = 1e-6
    for k, p in enumerate(params):
        for idx in np.ndindex(p.shape):
            p[idx] += eps
            up, _ = _loss_and_grads(params, H, z, w, "dense", need_grads=False, activation="tanh")
            p[idx] -= 2 * eps
            down, _ = _loss_and_grads(params, H, z, w, "dense", need_grads=False, activation="tanh")
            p[idx] += eps
            assert grads[k][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-7)


def test_a_five_unit_tanh_network_learns_a_smooth_function_and_exports_to_the_same_onnx_values():
    onnxruntime = pytest.importorskip("onnxruntime")
    from core.learn.onnx_export import mlp_to_onnx

    rng = np.random.default_rng(1)
    X = rng.uniform(0.05, 0.45, size=(3000, 2))
    y = 0.8 * X[:, 0] + 0.1 * np.tanh(8 * (X[:, 1] - 0.25))
    net = MLP(MLPConfig(hidden=(5,), activation="tanh", max_epochs=300, learning_rate=5e-3, seed=2),
              ["sm_coarse", "ndvi"]).fit(X, y)
    pred = net.predict(X)
    assert np.sqrt(np.mean((pred - y) ** 2)) < 0.1 * y.std()
    model = mlp_to_onnx(net)
    assert [n.op_type for n in model.graph.node].count("Tanh") == 1
    sess = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(["sm"], {"X": X.astype(np.float32)})[0].ravel()
    np.testing.assert_allclose(out, pred, atol=1e-5)
