"""Layer forwards against naive loop references, shape errors, float32 and batched model forwards."""

import numpy as np
import pytest

from symnet.core.model import presets as models
from symnet.core.errors import DataError, ModelError
from symnet.core.layers import ACTIVATIONS, AvgPool2d, Conv2d, Flatten, Layer, Linear, Poly, Square
from symnet.core.model import Sequential

from tiny_models import tiny_models


# --------------------------------------------------------------------------- naive references
def naive_conv(x, w, b, padding):
    """Cross-correlation by explicit loops; 'same' puts the extra pad of an even kernel after (bottom/right)."""
    N, Ci, H, W = x.shape
    Co, _, kh, kw = w.shape
    if padding == "valid":
        top, left, Ho, Wo = 0, 0, H - kh + 1, W - kw + 1
    else:
        top, left, Ho, Wo = (kh - 1) // 2, (kw - 1) // 2, H, W
    out = np.zeros((N, Co, Ho, Wo))
    for n in range(N):
        for o in range(Co):
            for h in range(Ho):
                for v in range(Wo):
                    acc = 0.0 if b is None else b[o]
                    for c in range(Ci):
                        for i in range(kh):
                            for j in range(kw):
                                r, q = h + i - top, v + j - left
                                if 0 <= r < H and 0 <= q < W:
                                    acc += w[o, c, i, j] * x[n, c, r, q]
                    out[n, o, h, v] = acc
    return out


def naive_pool(x, s):
    N, C, H, W = x.shape
    out = np.zeros((N, C, H // s, W // s))
    for n in range(N):
        for c in range(C):
            for h in range(H // s):
                for v in range(W // s):
                    total = 0.0
                    for i in range(s):
                        for j in range(s):
                            total += x[n, c, h * s + i, v * s + j]
                    out[n, c, h, v] = total / (s * s)
    return out


def naive_linear(x, w, b):
    N, I = x.shape
    O = w.shape[0]
    out = np.zeros((N, O))
    for n in range(N):
        for o in range(O):
            out[n, o] = (0.0 if b is None else b[o]) + sum(w[o, i] * x[n, i] for i in range(I))
    return out


def randomize(layer, rng):
    for v in layer.params.values():
        v[...] = rng.normal(size=v.shape)


# --------------------------------------------------------------------------- Conv2d
CONV_CASES = [
    # (in, out, kernel, padding, bias, H, W)
    (1, 1, 3, "valid", True, 5, 5),
    (2, 3, 3, "valid", True, 6, 5),
    (3, 2, (2, 3), "valid", False, 5, 6),
    (1, 2, (3, 1), "valid", True, 4, 4),
    (2, 2, 3, "same", True, 4, 5),
    (1, 3, 2, "same", True, 5, 4),
    (2, 1, (2, 3), "same", False, 4, 4),
    (3, 2, (4, 1), "same", True, 5, 3),
    (1, 1, 1, "valid", True, 3, 3),
]


@pytest.mark.parametrize("ci,co,k,padding,bias,H,W", CONV_CASES)
def test_conv2d_matches_loops(ci, co, k, padding, bias, H, W, rng):
    conv = Conv2d(ci, co, k, padding=padding, bias=bias)
    randomize(conv, rng)
    x = rng.normal(size=(3, ci, H, W))
    got = conv(x)
    want = naive_conv(x, conv.params["weight"], conv.params.get("bias"), padding)
    assert got.shape == want.shape == (3, co) + conv.output_shape((ci, H, W))[1:]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert ("bias" in conv.params) == bias


def test_conv2d_chunked_im2col_matches_loops(rng):
    # more samples than one im2col chunk
    from symnet.core.conv import conv2d_valid

    x = rng.normal(size=(7, 2, 4, 4))
    w = rng.normal(size=(2, 2, 2, 3))
    np.testing.assert_allclose(conv2d_valid(x, w, chunk=3), naive_conv(x, w, None, "valid"), rtol=1e-12, atol=1e-12)


def test_conv_default_blocks_follow_block_bytes(rng, monkeypatch):
    # a block budget of about two samples' columns: the default blocking splits 7 samples into 4 blocks,
    # and the forward, the weight gradient and the input gradient still match the loops
    from symnet.core import conv
    from symnet.core.conv import conv2d_valid, conv_backward

    x = rng.normal(size=(7, 2, 4, 4))
    w = rng.normal(size=(3, 2, 2, 3))
    row_bytes = 2 * 2 * 3 * 3 * 2 * 8  # K * Ho * Wo float64 values per sample
    monkeypatch.setattr(conv, "CONV_BLOCK_BYTES", 2 * row_bytes + 1)
    assert conv.block_rows(7, row_bytes) == 2
    np.testing.assert_allclose(conv2d_valid(x, w), naive_conv(x, w, None, "valid"), rtol=1e-12, atol=1e-12)
    g = rng.normal(size=(7, 3, 3, 2))
    gx, gw = conv_backward(x, g, w)
    want_gw = np.einsum("nohw,nchwij->ocij", g, np.lib.stride_tricks.sliding_window_view(x, (2, 3), axis=(2, 3)))
    np.testing.assert_allclose(gw, want_gw, rtol=1e-12, atol=1e-12)
    conv = Conv2d(2, 3, (2, 3), bias=False)
    conv.params["weight"][...] = w
    np.testing.assert_allclose(conv.input_grad(x, g), gx, rtol=1e-12, atol=1e-12)
    # the input gradient is the adjoint of the forward: <conv(x), g> = <x, dL/dx>
    np.testing.assert_allclose(np.vdot(conv2d_valid(x, w), g), np.vdot(x, gx), rtol=1e-12)


def test_conv2d_same_keeps_size_and_valid_shrinks():
    assert Conv2d(1, 4, 5, padding="same").output_shape((1, 9, 7)) == (4, 9, 7)
    assert Conv2d(1, 4, (5, 2)).output_shape((1, 9, 7)) == (4, 5, 6)


# --------------------------------------------------------------------------- Linear
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_loops(bias, rng):
    lin = Linear(4, 3, bias=bias)
    randomize(lin, rng)
    x = rng.normal(size=(5, 4))
    np.testing.assert_allclose(lin(x), naive_linear(x, lin.params["weight"], lin.params.get("bias")), rtol=1e-12,
                               atol=1e-12)


# --------------------------------------------------------------------------- AvgPool2d / Flatten
@pytest.mark.parametrize("size,H,W", [(2, 4, 4), (2, 5, 7), (3, 7, 6), (3, 3, 5), (1, 3, 2)])
def test_avgpool_matches_loops_and_drops_trailing_rows(size, H, W, rng):
    x = rng.normal(size=(2, 3, H, W))
    pool = AvgPool2d(size)
    got = pool(x)
    np.testing.assert_allclose(got, naive_pool(x, size), rtol=1e-12, atol=1e-14)
    assert got.shape == (2, 3) + pool.output_shape((3, H, W))[1:] == (2, 3, H // size, W // size)
    # the dropped trailing rows and columns do not influence the output
    x2 = x.copy()
    x2[..., (H // size) * size:, :] = 1e6
    x2[..., :, (W // size) * size:] = -1e6
    np.testing.assert_array_equal(pool(x2), got)


def test_avgpool_hand_worked():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    # windows {0,1,5,6}, {2,3,7,8}, {10,11,15,16}, {12,13,17,18}; row 4 and column 4 dropped
    np.testing.assert_array_equal(AvgPool2d(2)(x)[0, 0], [[3.0, 5.0], [13.0, 15.0]])


def test_flatten_is_c_order(rng):
    x = rng.normal(size=(2, 3, 4, 5))
    y = Flatten()(x)
    assert y.shape == (2, 60)
    for n in range(2):
        for c in range(3):
            for h in range(4):
                for w in range(5):
                    assert y[n, c * 20 + h * 5 + w] == x[n, c, h, w]
    assert Flatten().output_shape((3, 4, 5)) == (60,)


# --------------------------------------------------------------------------- Poly / Square
@pytest.mark.parametrize("coeffs", [[2.0], [0.0], [1.0, 0.0, 0.0]])
def test_constant_activation_is_refused(coeffs):
    with pytest.raises(ModelError, match="constant activation"):
        Poly(coeffs)


@pytest.mark.parametrize("coeffs", [[0.3, -1.2, 0.5, 0.25, -0.1], [0.0, 0.0, 0.0, 1.5], [-1.0, 3.0]])
def test_poly_arbitrary_coefficients(coeffs, rng):
    x = rng.normal(size=(4, 2, 3))
    want = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        want[idx] = sum(a * x[idx] ** j for j, a in enumerate(coeffs))
    np.testing.assert_allclose(Poly(coeffs)(x), want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name,formula", [
    ("square", lambda z: z * z),
    ("identity", lambda z: z),
    ("relu-approx-a", lambda z: 0.188 + 0.5 * z + 0.21 * z * z),
    ("relu-approx-b", lambda z: 0.096 + 0.5 * z + 0.3 * z * z),
    ("relu-approx-c", lambda z: 0.114 + 0.498 * z + 0.352 * z * z - 0.0011 * z ** 3),
])
def test_poly_presets(name, formula, rng):
    x = rng.normal(size=(6, 5)) * 3
    np.testing.assert_allclose(Poly(name)(x), formula(x), rtol=1e-13, atol=1e-13)
    assert Poly(name).order == len(ACTIVATIONS[name]) - 1


def test_relu_approximations_are_close_to_relu_on_small_inputs():
    z = np.linspace(-1.0, 1.0, 41)[None]
    for name in ("relu-approx-a", "relu-approx-b", "relu-approx-c"):
        assert np.max(np.abs(Poly(name)(z) - np.maximum(z, 0))) < 0.25, name


def test_square_and_trailing_zero_trim(rng):
    x = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(Square()(x), x * x)
    p = Poly([1.0, 2.0, 0.0, 0.0])
    assert p.order == 1
    np.testing.assert_allclose(p(x), 1.0 + 2.0 * x)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("build,needle", [
    (lambda: Conv2d(1, 2, 3, padding="full"), "padding"),
    (lambda: Conv2d(0, 2, 3), "positive"),
    (lambda: Linear(0, 2), "positive"),
    (lambda: AvgPool2d(0), "positive"),
    (lambda: Poly("relu"), "relu-approx-a"),
    (lambda: Poly([]), "non-empty"),
    (lambda: Poly([1.0, np.nan]), "finite"),
    (lambda: Poly([[1.0, 2.0]]), "list"),
])
def test_bad_layer_arguments(build, needle):
    with pytest.raises(ModelError, match=needle):
        build()


@pytest.mark.parametrize("layers,input_shape,needles", [
    # Linear straight after a conv: say to flatten and the right in_features
    (lambda: (Conv2d(1, 2, 3), Linear(18, 2)), (1, 5, 5), ["Flatten()", "in_features=18"]),
    (lambda: (Conv2d(1, 2, 3), Flatten(), Linear(10, 2)), (1, 5, 5), ["(18,)", "in_features=18"]),
    (lambda: (Conv2d(3, 2, 3), Flatten(), Linear(18, 2)), (1, 5, 5), ["C=3", "(1, 5, 5)"]),
    (lambda: (Conv2d(1, 2, 7), Flatten(), Linear(2, 2)), (1, 5, 5), ["7x7", "padding='same'"]),
    (lambda: (AvgPool2d(6), Flatten(), Linear(1, 2)), (1, 5, 5), ["AvgPool2d(6)", "5x5"]),
    (lambda: (Flatten(), AvgPool2d(2)), (1, 4, 4), ["(C, H, W)", "(16,)"]),
    (lambda: (Conv2d(1, 2, 3),), (1, 5, 5), ["vector", "Flatten()"]),
])
def test_shape_errors_name_problem_and_fix(layers, input_shape, needles):
    with pytest.raises(ModelError) as info:
        Sequential(*layers(), input_shape=input_shape)
    for needle in needles:
        assert needle in str(info.value)


def test_direct_layer_calls_check_shapes():
    with pytest.raises(ModelError, match="in_features=5"):
        Linear(3, 2)(np.ones((4, 5)))
    with pytest.raises(ModelError, match="C=2"):
        Conv2d(2, 1, 3)(np.ones((1, 1, 5, 5)))
    with pytest.raises(ModelError, match="batch"):
        Linear(3, 2)(np.ones(3))


def test_model_input_shape_error_is_data_error():
    m = models.get("mlp", input_dim=3, hidden=2)
    with pytest.raises(DataError, match=r"\(3,\)"):
        m.forward(np.ones((4, 2)))
    # a single sample without batch axis is accepted
    assert m.forward(np.ones(3)).shape == (1, 2)
    with pytest.raises(ModelError, match="float32 or float64"):
        m.forward(np.ones((2, 3)), dtype=np.int64)
    with pytest.raises(ModelError, match="batch_size"):
        m.forward(np.ones((2, 3)), batch_size=0)


# --------------------------------------------------------------------------- model forward: float32, batches, chain
MODELS = tiny_models()


def _randomized(model, seed=0):
    model = model.copy()
    model.set_flat(np.random.default_rng(seed).normal(size=model.num_params))
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_model_forward_is_the_layer_chain(name, rng):
    model = _randomized(MODELS[name])
    X = rng.random((4,) + model.input_shape)
    h = X
    for layer in model.layers:
        if isinstance(layer, Conv2d):
            h = naive_conv(h, layer.params["weight"], layer.params.get("bias"), layer.padding)
        elif isinstance(layer, Linear):
            h = naive_linear(h, layer.params["weight"], layer.params.get("bias"))
        elif isinstance(layer, AvgPool2d):
            h = naive_pool(h, layer.size)
        elif isinstance(layer, Flatten):
            h = h.reshape(len(h), -1)
        else:
            h = sum(a * h ** j for j, a in enumerate(layer.coeffs))
    out = model.forward(X)
    assert out.dtype == np.float64 and out.shape == (4, model.num_outputs)
    np.testing.assert_allclose(out, h, rtol=1e-11, atol=1e-11 * np.abs(h).max())


@pytest.mark.parametrize("name", list(MODELS))
def test_float32_forward_agrees_with_float64(name, rng):
    model = _randomized(MODELS[name])
    theta = model.get_flat()
    X = rng.random((6,) + model.input_shape)
    f64 = model.forward(X)
    f32 = model.forward(X, dtype=np.float32)
    assert f32.dtype == np.float32 and f32.shape == f64.shape
    np.testing.assert_allclose(f32, f64, rtol=0, atol=1e-5 * np.abs(f64).max())
    # the float64 parameters are untouched and float32 inputs work in both modes
    for _, v in model.parameters():
        assert v.dtype == np.float64
    np.testing.assert_array_equal(model.get_flat(), theta)
    assert model.forward(X.astype(np.float32)).dtype == np.float64


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batched_forward_equals_unbatched(name, dtype, rng):
    model = _randomized(MODELS[name])
    X = rng.random((7,) + model.input_shape)
    whole = model.forward(X, dtype=dtype)
    # float32 sums in a different order per batch size, so only agree to float32 precision
    scale = np.abs(whole).max()
    tol = dict(rtol=0, atol=1e-5 * scale) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12 * scale)
    for bs in (1, 3, 7, 100):
        got = model.forward(X, dtype=dtype, batch_size=bs)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, whole, **tol)
    # and each row is the forward of that sample alone
    np.testing.assert_allclose(model.forward(X[4], dtype=dtype)[0], whole[4], **tol)


def test_a_layer_of_ones_own_without_a_rule_says_which():
    class Double(Layer):
        def forward(self, x):
            return 2.0 * x

    layer = Double()
    np.testing.assert_allclose(layer(np.ones((2, 3))), 2.0)
    for call, rule in [(lambda: layer.backward(np.ones((2, 3)), np.ones((2, 3))), "backward"),
                       (lambda: layer.jet(None, None, None), "jet"),
                       (lambda: layer.symbolic(np.ones(3), {}), "symbolic")]:
        with pytest.raises(ModelError, match=f"Double has no {rule}"):
            call()
