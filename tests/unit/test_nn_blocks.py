"""Convolution and LSTM building blocks (core.learn.nn): exact gradients against central differences,
training on a known relation, and onnxruntime against the numpy forward pass."""
import numpy as np
import onnxruntime as ort
import pytest

from core.learn.mlp import MLPConfig
from core.learn.nn import (ChannelEncoder, ConvNet, DenseNet, LSTMNet, conv2d_backward, conv2d_forward, im2col,
                           lstm_loss_and_grads, patches_at)
from core.learn.onnx_export import conv_net_to_onnx, dense_net_to_onnx, lstm_net_to_onnx


def _numeric(f, x, eps=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def test_conv2d_matches_a_direct_loop_with_edge_padding_and_its_gradients_are_exact():
    rng = np.random.default_rng(1)
    x, W, b = rng.normal(size=(2, 3, 5, 6)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    out = conv2d_forward(x, W, b)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    direct = np.zeros_like(out)
    for r in range(5):
        for c in range(6):
            direct[:, :, r, c] = np.einsum("nckl,fckl->nf", xp[:, :, r:r + 3, c:c + 3], W) + b
    np.testing.assert_allclose(out, direct, atol=1e-12)
    G = rng.normal(size=out.shape)  # loss = Σ G·out
    dx, dW, db = conv2d_backward(x, W, G)
    loss = lambda: float(np.sum(G * conv2d_forward(x, W, b)))  # noqa: E731
    np.testing.assert_allclose(dx, _numeric(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dW, _numeric(loss, W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, _numeric(loss, b), rtol=1e-6, atol=1e-8)


def test_patch_rows_are_the_im2col_rows_at_their_centres():
    img = np.random.default_rng(2).normal(size=(2, 7, 8))
    cols = im2col(img[None], 5).reshape(7, 8, -1)
    rows, cs = np.array([0, 3, 6]), np.array([7, 4, 0])
    np.testing.assert_array_equal(patches_at(img, rows, cs, 5), cols[rows, cs])


def test_lstm_gradients_are_exact():
    rng = np.random.default_rng(3)
    T, n, D, H = 4, 5, 3, 2
    S, z = rng.normal(size=(T, n, D)), rng.normal(size=n)
    params = [rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H),
              rng.normal(size=(H, 1)), rng.normal(size=1)]
    _, grads = lstm_loss_and_grads(params, S, z)
    for p, g in zip(params, grads):
        num = _numeric(lambda: lstm_loss_and_grads(params, S, z, need_grads=False)[0], p)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


def _encoder(names, kinds, X):
    return ChannelEncoder(list(names), list(kinds)).fit(X)


def test_lstm_learns_a_lagged_relation_and_onnx_agrees():
    rng = np.random.default_rng(4)
    T, n = 5, 1500
    raw = np.stack([rng.uniform(0, 10, size=(T, n)), np.full((T, n), 120.0)], axis=2)  # rain, doy
    y = 0.1 + 0.02 * raw[1, :, 0] + 0.01 * raw[3, :, 0]  # two dates back and the date before
    enc = _encoder(["rain", "doy"], ["standardize", "cyclic"], raw.reshape(-1, 2))
    S = enc.transform(raw)
    cfg = MLPConfig(hidden=(8,), max_epochs=120, patience=15, learning_rate=1e-2, batch_size=128, seed=0)
    net = LSTMNet(cfg, hidden=8).fit(S[:, :1200], y[:1200], S[:, 1200:], y[1200:])
    pred = net.predict(S[:, 1200:])
    assert np.sqrt(np.mean((pred - y[1200:]) ** 2)) < 0.1 * np.std(y)
    sess = ort.InferenceSession(lstm_net_to_onnx(net, enc).SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"X": raw[:, 1200:].astype(np.float32)})[0][:, 0]
    np.testing.assert_allclose(got, pred, atol=2e-5)


def test_dense_and_conv_members_export_to_onnx_and_the_conv_runs_fully_convolutional():
    rng = np.random.default_rng(5)
    C, Hh, Ww = 3, 12, 14
    raw = np.stack([rng.normal(5, 2, size=(Hh, Ww)), rng.integers(1, 4, size=(Hh, Ww)).astype(float),
                    np.full((Hh, Ww), 200.0)])
    raw[0, 2, 3] = np.nan
    enc = _encoder(["ndvi", "land_cover", "doy"], ["standardize", "one_hot", "cyclic"], raw.reshape(C, -1).T)
    img = enc.transform(raw, axis=0)
    assert img.shape[0] == enc.n_encoded == 1 + 3 + 2 and img[0, 2, 3] == 0.0
    cfg = MLPConfig(hidden=(6, 4), max_epochs=3, seed=1)
    conv = ConvNet(cfg, kernel=5, channels=img.shape[0])
    rr, cc = np.divmod(np.arange(Hh * Ww), Ww)
    P = patches_at(img, rr, cc, 5)
    target = 0.2 + 0.01 * img[0].ravel()
    conv.fit(P, target, P[:20], target[:20])
    full = conv.predict_image(img)
    np.testing.assert_allclose(full.ravel(), conv.predict(P), atol=1e-6)  # image pass = patch rows
    sess = ort.InferenceSession(conv_net_to_onnx(conv, enc).SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"X": raw[None].astype(np.float32)})[0][0, 0], full, atol=2e-5)
    dense = DenseNet(cfg).fit(enc.transform(raw.reshape(C, -1).T), target, img.reshape(6, -1).T[:20], target[:20])
    sess = ort.InferenceSession(dense_net_to_onnx(dense, enc).SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"X": raw.reshape(C, -1).T.astype(np.float32)})[0][:, 0]
    np.testing.assert_allclose(got, dense.predict(enc.transform(raw.reshape(C, -1).T)), atol=2e-5)


def test_even_kernels_are_refused():
    with pytest.raises(ValueError, match="odd"):
        ConvNet(MLPConfig(), kernel=4, channels=2)
