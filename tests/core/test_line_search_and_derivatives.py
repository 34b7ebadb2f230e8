"""The one exact line search, the derivatives from the caches, and the readout solve, against brute force."""

import numpy as np
import pytest

from symnet.core.roots.dense import minimize as dense_minimize
from symnet.core.derivatives import (block_jacobian, conv_chain, conv_chain_jacobian, gradient, jvp,
                                     kronecker_factors, param_layers, vjp)
from symnet.core.errors import ModelError
from symnet.core.layers import Linear, Poly
from symnet.core.model import Sequential
from symnet.core.restriction import Restriction, flat_direction, step_scale, unit_direction
from symnet.solvers.exact_directions import FullObjective, batch_loss, minibatch_line_search

from tiny_models import tiny_data, tiny_loss, tiny_models

MODELS = tiny_models()
RIDGE = 0.05


def true_objective(model, theta, X, Y, ridge=RIDGE):
    """Oracle: one forward pass at theta (the model's parameters are put back)."""
    keep = model.get_flat()
    model.set_flat(theta)
    value = float(np.sum((model.forward(X) - Y) ** 2) + ridge * theta @ theta)
    model.set_flat(keep)
    return value


def fd_outputs(model, X, v, h=1e-6):
    """Central finite difference of the outputs along v."""
    theta = model.get_flat()
    model.set_flat(theta + h * v)
    up = model.forward(X)
    model.set_flat(theta - h * v)
    down = model.forward(X)
    model.set_flat(theta)
    return (up - down) / (2 * h)


# ------------------------------------------------------------------ the line search
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("norm", [1e-7, 1.0, 1e5])
def test_line_search_lands_on_the_brute_force_minimum(name, norm, rng):
    model, X, Y, loss = tiny_loss(MODELS[name], n=6, ridge=RIDGE)
    theta = model.get_flat()
    d = rng.normal(size=model.num_params)
    d *= norm / np.linalg.norm(d)
    res = loss.line_minimize(d)
    assert res.accepted and res.after < res.before
    # brute force along the same line: a grid of true objectives, in steps of the unit direction ...
    u = d / np.linalg.norm(d)
    tau = res.t * norm
    grid = np.linspace(-abs(tau) - 3.0, abs(tau) + 3.0, 1201)
    values = np.array([true_objective(model, theta + g * u, X, Y) for g in grid])
    best = int(np.argmin(values))
    assert res.after <= values[best] + 1e-9 * abs(values[best])
    # ... and a fine one around the step taken: nothing lower next to it either
    spacing = grid[1] - grid[0]
    fine = tau + np.linspace(-2 * spacing, 2 * spacing, 201)
    fine_values = np.array([true_objective(model, theta + g * u, X, Y) for g in fine])
    assert res.after <= fine_values.min() + 1e-9 * abs(res.after)
    # the reported value is the true objective at the new point, and the caches agree
    assert np.isclose(true_objective(model, model.get_flat(), X, Y), res.after, rtol=1e-9)
    assert np.isclose(loss.value, res.after, rtol=1e-9)
    np.testing.assert_allclose(model.get_flat(), theta + res.t * d, rtol=1e-12, atol=1e-12)
    # the grid minimiser is next to the step taken (or ties it in value)
    assert abs(grid[best] - tau) <= 1.01 * spacing or np.isclose(values[best], res.after, rtol=1e-7)


@pytest.mark.parametrize("name", ["poly", "poly2", "mlp-cubic"])
def test_scale_of_the_direction_does_not_matter(name, rng):
    base = MODELS[name]
    X, Y = tiny_data(base, n=5)
    d = rng.normal(size=base.num_params)
    ends = []
    for scale in (1e-9, 1.0, 1e9):
        model = base.copy()
        res = Restriction(model, X, Y, ridge=RIDGE).line_minimize(d * scale)
        ends.append((model.get_flat(), res.after))
    for theta, after in ends[1:]:
        np.testing.assert_allclose(theta, ends[0][0], rtol=1e-7, atol=1e-9)
        assert np.isclose(after, ends[0][1], rtol=1e-10)


def test_without_normalisation_it_is_the_minimiser_of_the_raw_polynomial(rng):
    model = MODELS["poly"].copy()
    X, Y = tiny_data(model, n=5)
    d = rng.normal(size=model.num_params)
    loss = Restriction(model, X, Y, ridge=RIDGE)
    theta = model.get_flat()
    t, value, _ = dense_minimize(Restriction(model.copy(), X, Y, ridge=RIDGE).restrict(d))
    res = loss.line_minimize(d, normalize=False)
    assert res.scale == 1.0 and (res.t, res.after) == (t, value)
    np.testing.assert_allclose(model.get_flat(), theta + t * d, rtol=1e-14, atol=1e-14)


def test_no_ascent_at_a_line_minimum_and_zero_direction(rng):
    model = MODELS["mlp"].copy()
    X, Y = tiny_data(model, n=8)
    loss = Restriction(model, X, Y, ridge=RIDGE)
    d = rng.normal(size=model.num_params)
    loss.line_minimize(d)
    theta = model.get_flat()
    again = loss.line_minimize(d)   # already at the minimum along d
    assert again.after <= again.before
    assert np.linalg.norm(model.get_flat() - theta) <= 1e-6 * np.linalg.norm(theta)
    zero = loss.line_minimize(np.zeros(model.num_params))
    assert not zero.accepted and zero.t == 0.0 and zero.after == zero.before


def test_update_false_moves_the_parameters_the_same_way(rng):
    model = MODELS["poly2"].copy()
    twin = model.copy()
    X, Y = tiny_data(model, n=4)
    d = rng.normal(size=model.num_params)
    a = Restriction(model, X, Y, ridge=RIDGE).line_minimize(d)
    b = Restriction(twin, X, Y, ridge=RIDGE).line_minimize(d, update=False)
    assert a.t == b.t
    np.testing.assert_allclose(model.get_flat(), twin.get_flat(), rtol=1e-14, atol=0)


def test_step_scale_and_unit_direction():
    assert step_scale(np.array([5.0, -4.0, 1.0])) == 2.0          # (t - 2)^2 + 1
    # no quadratic term: the critical points of t^4 - 16 t (t = 16^(1/3)/... ) lie within the bound
    c = np.array([0.0, -16.0, 0.0, 0.0, 1.0])
    s = step_scale(c)
    crit = np.roots([4.0, 0.0, 0.0, -16.0])
    assert s >= np.max(np.abs(crit))
    assert step_scale(np.array([1.0])) == 1.0
    u, n = unit_direction(np.array([1e300, 1e300]))                 # no overflow
    assert np.isclose(n, np.sqrt(2) * 1e300) and np.allclose(u, [2 ** -0.5] * 2)


def test_flat_direction_accepts_named_arrays_and_refuses_bad_ones():
    model = MODELS["mlp"].copy()
    d = flat_direction(model, {"linear1.bias": np.ones(2)})
    lo, hi = model.offsets()["linear1.bias"]
    assert np.all(d[lo:hi] == 1.0) and np.count_nonzero(d) == 2
    with pytest.raises(ModelError, match="no parameter 'linear9.weight'"):
        flat_direction(model, {"linear9.weight": np.ones(2)})
    with pytest.raises(ModelError, match="shape"):
        flat_direction(model, np.ones(3))
    with pytest.raises(ModelError, match="NaN"):
        flat_direction(model, np.full(model.num_params, np.nan))


# ------------------------------------------------------------------ mini-batches
def test_batch_objectives_add_up_to_the_full_one():
    model = MODELS["poly"].copy()
    X, Y = tiny_data(model, n=12)
    full = Restriction(model, X, Y, ridge=0.3).value
    parts = sum(batch_loss(model, X[i:i + 4], Y[i:i + 4], 0.3, 12).value for i in range(0, 12, 4))
    assert np.isclose(parts, full, rtol=1e-12)


def test_checked_minibatch_steps_never_raise_the_full_objective(rng):
    model = MODELS["mlp"].copy()
    X, Y = tiny_data(model, n=40, seed=3)
    full = FullObjective(model, X, Y, ridge=RIDGE)
    rejected = 0
    for i in range(30):
        idx = rng.choice(40, size=2, replace=False)   # tiny batches: many steps hurt the full data
        before = full.value
        theta = model.get_flat()
        loss = batch_loss(model, X[idx], Y[idx], RIDGE, 40)
        res = minibatch_line_search(loss, -gradient(loss), check=full)
        fresh = true_objective(model, model.get_flat(), X, Y)
        assert np.isclose(fresh, full.value, rtol=1e-12)
        assert full.value <= before
        if not res.accepted:
            rejected += 1
            np.testing.assert_array_equal(model.get_flat(), theta)
    assert rejected > 0  # the check did something


# ------------------------------------------------------------------ derivatives
@pytest.mark.parametrize("name", list(MODELS))
def test_gradient_from_the_caches_matches_finite_differences(name, rng):
    model, X, Y, loss = tiny_loss(MODELS[name], n=4, ridge=RIDGE)
    g = gradient(loss)
    theta = model.get_flat()
    h = 1e-6
    for i in rng.choice(model.num_params, size=min(12, model.num_params), replace=False):
        e = np.zeros_like(theta)
        e[i] = h
        fd = (true_objective(model, theta + e, X, Y) - true_objective(model, theta - e, X, Y)) / (2 * h)
        assert np.isclose(g[i], fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, model.loss_and_grad(X, Y, RIDGE)[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_jvp_and_vjp_match_finite_differences(name, rng):
    model, X, Y, loss = tiny_loss(MODELS[name], n=4, ridge=RIDGE)
    v = rng.normal(size=model.num_params)
    np.testing.assert_allclose(jvp(loss, v), fd_outputs(model, X, v), rtol=1e-6, atol=1e-7)
    # J^T u column by column: (J^T u)_i = u . (d f / d theta_i), each by finite differences
    U = rng.normal(size=(len(X), model.num_outputs))
    JtU = vjp(loss, U)
    for i in range(model.num_params):
        e = np.zeros(model.num_params)
        e[i] = 1.0
        assert np.isclose(JtU[i], np.sum(U * fd_outputs(model, X, e)), rtol=1e-5, atol=1e-6)
    # rows: a subset of the samples, and a block of layers (the others stay zero)
    rows = np.array([2, 0])
    sub = vjp(loss, U[rows], rows=rows, layers=[len(model.layers) - 1])
    lo = model.num_params - sum(p.size for p in model.layers[-1].params.values())
    e_sub = np.zeros_like(sub)
    for i in range(lo, model.num_params):
        e = np.zeros(model.num_params)
        e[i] = 1.0
        e_sub[i] = np.sum(U[rows] * fd_outputs(model, X[rows], e))
    np.testing.assert_allclose(sub, e_sub, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jvp(loss, v, rows=rows), jvp(loss, v)[rows], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(MODELS))
def test_block_jacobians_match_finite_differences(name):
    model, X, Y, loss = tiny_loss(MODELS[name], n=3, ridge=RIDGE)
    layers = [li for li, layer in enumerate(model.layers) if layer.params]
    J = block_jacobian(loss, layers)
    fd = np.stack([fd_outputs(model, X, e) for e in np.eye(model.num_params)], axis=2)
    np.testing.assert_allclose(J, fd, rtol=1e-5, atol=1e-6)
    for li in layers:
        if conv_chain(model, li) is not None:
            np.testing.assert_allclose(conv_chain_jacobian(loss, li).transpose(1, 0, 2), block_jacobian(loss, [li]),
                                       rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", list(MODELS))
def test_block_jacobian_of_a_sub_block_is_the_slice_of_the_full_one(name):
    """The one-pass, all-outputs Jacobian of each layer alone equals its columns in the whole network's."""
    model, X, Y, loss = tiny_loss(MODELS[name], n=4, ridge=RIDGE)
    layers = param_layers(model)
    J = block_jacobian(loss, layers)
    start = 0
    for li in layers:
        size = sum(v.size for v in model.layers[li].params.values())
        np.testing.assert_allclose(block_jacobian(loss, [li]), J[:, :, start:start + size], rtol=1e-12, atol=1e-14)
        start += size


def test_kronecker_factors_of_a_linear_readout():
    """For the last Linear layer J^T J = I (x) A^T A exactly; the Gaussian sketch of Gamma averages to I."""
    model = MODELS["mlp"].copy()
    X, Y = tiny_data(model, n=400, seed=2)
    loss = Restriction(model, X, Y, ridge=RIDGE)
    li = len(model.layers) - 1
    f = kronecker_factors(loss, [li], rng=np.random.default_rng(0))[li]
    gamma = f.U @ np.diag(f.s) @ f.U.T
    omega = f.V @ np.diag(f.w) @ f.V.T
    np.testing.assert_allclose(gamma, np.eye(len(gamma)), atol=0.15)
    H = loss.acts[li]
    A = np.hstack([H, np.ones((len(H), 1))])
    np.testing.assert_allclose(f.scale * omega, A.T @ A, rtol=1e-10)


@pytest.mark.parametrize("name", ["poly", "poly2", "mlp"])
def test_kronecker_factors_of_a_convolution_from_their_definition(name):
    """Omega = mean patch outer product (im2col by hand), Gamma = mean outer product of the output cotangents."""
    model, X, Y, loss = tiny_loss(MODELS[name], n=5)
    li = 0
    layer = model.layers[li]
    f = kronecker_factors(loss, [li], rng=np.random.default_rng(3))[li]
    g = np.random.default_rng(3).standard_normal((5, model.num_outputs))
    for lj in range(len(model.layers) - 1, li, -1):  # the same cotangents, backward by the layers' own rules
        g = model.layers[lj].backward(loss.layer_input(lj), g)[0]
    if g.ndim == 2:  # Linear: rows are samples
        A = np.hstack([X.reshape(5, -1), np.ones((5, 1))])
        D = g
    else:
        kh, kw = layer.kh, layer.kw
        xp = layer.padded(X)
        Co, Ho, Wo = g.shape[1:]
        A = np.array([np.append(xp[n, :, i:i + kh, j:j + kw].ravel(), 1.0)
                      for n in range(5) for i in range(Ho) for j in range(Wo)])
        D = g.transpose(0, 2, 3, 1).reshape(-1, Co)
    np.testing.assert_allclose(f.V @ np.diag(f.w) @ f.V.T, A.T @ A / len(A), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(f.U @ np.diag(f.s) @ f.U.T, D.T @ D / len(D), rtol=1e-9, atol=1e-12)
    assert f.scale == 5 * (len(A) // 5)


# ------------------------------------------------------------------ float32 working precision
@pytest.mark.parametrize("name", list(MODELS))
def test_float32_jets_give_the_float64_step(name, rng):
    """float32 caches and jets, float64 sums: the same polynomial to float32 precision and the same step;
    the float64 objective at that step is the brute-force minimum along the line."""
    model = MODELS[name].copy()
    X, Y = tiny_data(model, n=40)
    theta = model.get_flat()
    d = rng.normal(size=model.num_params)
    l64 = Restriction(model, X, Y, ridge=RIDGE)
    c64 = l64.restrict(d)
    l32 = Restriction(model, X, Y, ridge=RIDGE, dtype=np.float32)
    assert l32.acts[max(l32.acts)].dtype == np.float32 and l32.residual.dtype == np.float64
    c32 = l32.restrict(d)
    np.testing.assert_allclose(c32, c64, rtol=0, atol=1e-5 * np.abs(c64).max())
    r64 = l64.line_minimize(d)
    model.set_flat(theta)
    r32 = l32.line_minimize(d)
    assert r32.accepted == r64.accepted
    assert abs(r32.t - r64.t) <= 1e-3 * abs(r64.t) + 1e-9
    # the float32 caches after the step equal a fresh float32 forward pass
    assert np.isclose(l32.value, Restriction(model, X, Y, ridge=RIDGE, dtype=np.float32).value, rtol=1e-5)
    u = d / np.linalg.norm(d)
    tau = r32.t * np.linalg.norm(d)
    grid = np.linspace(-abs(tau) - 1.0, abs(tau) + 1.0, 801)
    best = min(true_objective(model, theta + g * u, X, Y) for g in grid)
    assert true_objective(model, theta + r32.t * d, X, Y) <= best + 1e-5 * abs(best)
    assert model.layers[0].params[next(iter(model.layers[0].params))].dtype == np.float64


@pytest.mark.parametrize("name", ["poly", "poly2", "mlp", "seed"])
def test_derivatives_of_a_float32_loss_are_the_float64_ones_to_float32_precision(name, rng):
    model = MODELS[name].copy()
    X, Y = tiny_data(model, n=20)
    l64 = Restriction(model, X, Y, ridge=RIDGE)
    l32 = Restriction(model, X, Y, ridge=RIDGE, dtype=np.float32)
    g64, g32 = gradient(l64), gradient(l32)
    np.testing.assert_allclose(g32, g64, rtol=0, atol=1e-5 * np.abs(g64).max())
    v = rng.normal(size=model.num_params)
    np.testing.assert_allclose(jvp(l32, v), jvp(l64, v), rtol=0, atol=1e-5 * np.abs(jvp(l64, v)).max())
    layers = param_layers(model)
    J64, J32 = block_jacobian(l64, layers), block_jacobian(l32, layers)
    assert J32.dtype == np.float32
    np.testing.assert_allclose(J32, J64, rtol=0, atol=1e-5 * np.abs(J64).max())
    for li in layers:
        k32, k64 = kronecker_factors(l32, [li])[li], kronecker_factors(l64, [li])[li]
        np.testing.assert_allclose(k32.w, k64.w, rtol=1e-4, atol=1e-5 * k64.w.max())


# ------------------------------------------------------------------ variable projection
@pytest.mark.parametrize("name", ["poly", "mlp", "nobias"])
def test_solve_last_linear_is_the_ridge_least_squares_solution(name):
    model, X, Y, loss = tiny_loss(MODELS[name], n=30, ridge=0.2)
    before = loss.value
    assert loss.solve_readout() >= 0.0
    layer = model.layers[-1]
    H = model.forward_cache(X)[-2]
    A = np.hstack([H, np.ones((len(H), 1))]) if layer.bias else H
    # oracle: ridge as extra rows sqrt(ridge) I with zero targets, solved by lstsq
    big = np.vstack([A, np.sqrt(0.2) * np.eye(A.shape[1])])
    rhs = np.vstack([Y, np.zeros((A.shape[1], Y.shape[1]))])
    want = np.linalg.lstsq(big, rhs, rcond=None)[0]
    np.testing.assert_allclose(layer.params["weight"], want[:H.shape[1]].T, rtol=1e-8, atol=1e-10)
    if layer.bias:
        np.testing.assert_allclose(layer.params["bias"], want[-1], rtol=1e-8, atol=1e-10)
    assert loss.value <= before
    assert np.isclose(loss.value, true_objective(model, model.get_flat(), X, Y, 0.2), rtol=1e-10)


def test_solve_last_linear_refuses_a_model_without_a_last_linear_layer():
    model = Sequential(Linear(2, 2), Poly("square"), input_shape=(2,), seed=0)
    loss = Restriction(model, np.ones((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ModelError, match="Linear"):
        loss.solve_readout()
