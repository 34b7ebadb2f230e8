"""Backward rules and model.loss_and_grad against central finite differences and symengine derivatives."""

import numpy as np
import pytest
import symengine as se

from symnet.core.model import presets as models
from symnet.core.errors import DataError
from symnet.core.jets import Jet
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly, Square
from symnet.core.model import Sequential

from tiny_models import all_models, randomized, tiny_data, tiny_models

STEP = 1e-6


MODELS = all_models()


def central_difference(f, v, step=STEP):
    """d f / d v[idx] for every idx, perturbing the array ``v`` in place (restored afterwards)."""
    out = np.zeros(v.shape)
    for idx in np.ndindex(v.shape):
        old = v[idx]
        v[idx] = old + step
        up = f()
        v[idx] = old - step
        down = f()
        v[idx] = old
        out[idx] = (up - down) / (2 * step)
    return out


def assert_grad_close(got, want, rel=1e-6):
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=rel, atol=rel * scale)


# --------------------------------------------------------------------------- per layer
LAYERS = {
    "linear": (lambda: Linear(4, 3), (3, 4)),
    "linear-nobias": (lambda: Linear(3, 2, bias=False), (2, 3)),
    "conv-valid": (lambda: Conv2d(2, 3, 3), (2, 2, 5, 4)),
    "conv-same": (lambda: Conv2d(2, 2, 3, padding="same"), (2, 2, 4, 5)),
    "conv-same-even": (lambda: Conv2d(1, 2, 2, padding="same"), (2, 1, 4, 3)),
    "conv-rect-same-nobias": (lambda: Conv2d(2, 2, (2, 3), padding="same", bias=False), (2, 2, 3, 4)),
    "conv-rect-valid": (lambda: Conv2d(3, 1, (3, 1)), (2, 3, 4, 3)),
    "pool2-odd": (lambda: AvgPool2d(2), (2, 2, 5, 3)),
    "pool3": (lambda: AvgPool2d(3), (1, 2, 7, 6)),
    "flatten": (lambda: Flatten(), (2, 3, 2, 2)),
    "square": (lambda: Square(), (3, 2, 3)),
    "poly-quartic": (lambda: Poly([0.3, -1.2, 0.5, 0.25, -0.1]), (3, 4)),
    "relu-approx-c": (lambda: Poly("relu-approx-c"), (2, 2, 2, 2)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_backward_matches_finite_differences(name, rng):
    build, shape = LAYERS[name]
    layer = build()
    for v in layer.params.values():
        v[...] = rng.normal(size=v.shape)
    x = rng.normal(size=shape)
    G = rng.normal(size=layer.forward(x).shape)  # d(scalar)/d(output): the scalar is sum(G * forward(x))

    def scalar():
        return float(np.sum(layer.forward(x) * G))

    gx, gparams = layer.backward(x, G)
    assert set(gparams) == set(layer.params)
    assert_grad_close(gx, central_difference(scalar, x))
    for key, v in layer.params.items():
        assert_grad_close(gparams[key], central_difference(scalar, v))


def test_conv_weight_grad_in_chunks_matches_loops(rng):
    from symnet.core.conv import conv_weight_grad

    x = rng.normal(size=(7, 2, 5, 4))
    g = rng.normal(size=(7, 3, 4, 2))  # kernel 2 x 3
    want = np.zeros((3, 2, 2, 3))
    for o, c, i, j in np.ndindex(want.shape):
        want[o, c, i, j] = sum(g[n, o, y, v] * x[n, c, y + i, v + j] for n in range(7) for y in range(4)
                               for v in range(2))
    for chunk in (1, 3, 512):
        np.testing.assert_allclose(conv_weight_grad(x, g, 2, 3, chunk=chunk), want, rtol=1e-12, atol=1e-12)


def test_conv_backward_input_gradient_in_chunks_matches_loops(rng):
    from symnet.core.conv import conv_backward

    x = rng.normal(size=(7, 2, 5, 4))
    w = rng.normal(size=(3, 2, 2, 3))
    g = rng.normal(size=(7, 3, 4, 2))
    want = np.zeros_like(x)  # the adjoint written out: each output's gradient flows back to its window
    for n, o, y, v in np.ndindex(g.shape):
        want[n, :, y:y + 2, v:v + 3] += g[n, o, y, v] * w[o]
    for chunk in (1, 3, 512):
        gx, gw = conv_backward(x, g, w, chunk=chunk)
        np.testing.assert_allclose(gx, want, rtol=1e-12, atol=1e-12)
        assert gx.dtype == np.float64 and gw.dtype == np.float64
    gx32, gw32 = conv_backward(x.astype(np.float32), g.astype(np.float32), w.astype(np.float32), chunk=3)
    assert gx32.dtype == np.float32
    np.testing.assert_allclose(gx32, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw32, conv_backward(x, g, w)[1], rtol=1e-4, atol=1e-4)
    assert conv_backward(x, g, w, input_grad=False)[0] is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 2, 6, 6), (2, 1, 7, 5), (2, 3, 2, 5, 4)], ids=["even", "ragged", "jet"])
def test_avg_pool_kernels_match_numpy(rng, shape, dtype):
    pool = AvgPool2d(2)
    x = rng.normal(size=shape).astype(dtype)
    H, W = (shape[-2] // 2) * 2, (shape[-1] // 2) * 2
    want = x[..., :H, :W].reshape(shape[:-2] + (H // 2, 2, W // 2, 2)).astype(np.float64).mean(axis=(-3, -1))
    got = pool(x) if len(shape) == 4 else pool.jet(None, Jet(x), None).coeffs  # a jet: (orders, N, C, H, W)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
    if len(shape) == 4:
        g = rng.normal(size=want.shape).astype(dtype)
        back, _ = pool.backward(x, g)
        expect = np.zeros(shape)
        expect[..., :H, :W] = np.repeat(np.repeat(g.astype(np.float64), 2, axis=-2), 2, axis=-1) / 4
        assert back.dtype == dtype
        np.testing.assert_allclose(back, expect, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["poly", "poly2", "seed", "mlp"])
def test_float32_loss_and_grad_agrees_with_float64(name):
    model = randomized(MODELS[name])
    X, Y = tiny_data(model, n=5)
    loss64, g64 = model.loss_and_grad(X, Y, 0.1)
    loss32, g32 = model.loss_and_grad(X, Y, 0.1, dtype=np.float32)
    assert g32.dtype == np.float64 and model.get_flat().dtype == np.float64
    assert loss32 == pytest.approx(loss64, rel=1e-4)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-4 * np.abs(g64).max())
    with pytest.raises(Exception, match="float32 or float64"):
        model.loss_and_grad(X, Y, dtype=np.int32)


# --------------------------------------------------------------------------- whole models
@pytest.mark.parametrize("ridge", [0.0, 0.3])
@pytest.mark.parametrize("name", list(MODELS))
def test_loss_and_grad_matches_finite_differences(name, ridge):
    model = randomized(MODELS[name])
    X, Y = tiny_data(model, n=3)
    loss, grad = model.loss_and_grad(X, Y, ridge=ridge)
    theta = model.get_flat()
    assert grad.shape == (model.num_params,)
    assert np.isclose(loss, np.sum((model.forward(X) - Y) ** 2) + ridge * theta @ theta, rtol=1e-13)

    # a spread of up to 24 coordinates (symengine checks every one below)
    picks = np.unique(np.linspace(0, model.num_params - 1, min(24, model.num_params)).astype(int))
    point = theta.copy()

    def objective():
        model.set_flat(point)
        return model.loss_and_grad(X, Y, ridge=ridge)[0]

    numeric = np.array([central_difference(objective, point[i:i + 1])[0] for i in picks])
    assert_grad_close(grad[picks], numeric)


def symbolic_loss_and_grad(model, X, Y, ridge):
    """Oracle: the objective built from model.symbolic() with the data substituted, differentiated by symengine."""
    xs, _ = model.symbols()
    outputs = model.symbolic()
    params = [se.Symbol(n) for n in model.param_names()]
    objective = se.Integer(0)
    for x, y in zip(X, Y):
        data = {xs[idx]: se.Float(float(x[idx])) for idx in np.ndindex(xs.shape)}
        for out, target in zip(outputs, y):
            objective += (out.subs(data) - float(target)) ** 2
    objective += ridge * sum(p ** 2 for p in params)
    exprs = [objective] + [se.diff(objective, p) for p in params]
    at_theta = {p: se.Float(float(v)) for p, v in zip(params, model.get_flat())}
    values = np.array([float(e.subs(at_theta)) for e in exprs])
    return values[0], values[1:]


@pytest.mark.parametrize("ridge", [0.0, 0.05])
@pytest.mark.parametrize("name", list(MODELS))
def test_loss_and_grad_matches_symengine(name, ridge):
    model = randomized(MODELS[name], seed=1)
    X, Y = tiny_data(model, n=2, seed=3)
    loss, grad = model.loss_and_grad(X, Y, ridge=ridge)
    want_loss, want_grad = symbolic_loss_and_grad(model, X, Y, ridge)
    assert np.isclose(loss, want_loss, rtol=1e-10)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-9 * np.abs(want_grad).max())


def test_ridge_only_gradient_at_a_perfect_fit():
    # Targets equal to the outputs: the objective is ridge * ||theta||^2 and its gradient 2 ridge theta.
    model = randomized(MODELS["poly"])
    X, _ = tiny_data(model, n=4)
    Y = model.forward(X)
    loss, grad = model.loss_and_grad(X, Y, ridge=0.7)
    theta = model.get_flat()
    assert np.isclose(loss, 0.7 * theta @ theta, rtol=1e-12)
    np.testing.assert_allclose(grad, 1.4 * theta, rtol=1e-10, atol=1e-12)


def test_loss_and_grad_rejects_mismatched_targets():
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2)
    X = np.ones((2, 2))
    with pytest.raises(DataError, match="one-hot"):
        model.loss_and_grad(X, np.array([0, 1]))  # labels, not one-hot: would broadcast silently
    with pytest.raises(DataError, match=r"\(2, 2\)"):
        model.loss_and_grad(X, np.zeros((3, 2)))
