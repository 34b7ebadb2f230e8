"""The exact restriction against a symengine expansion of the loss with the data substituted."""

import numpy as np
import pytest
import symengine as se

from tiny_models import tiny_loss, tiny_models

RIDGE = 0.05


def symbolic_restriction(model, X, Y, direction_flat, ridge):
    """Oracle: expand sum_n ||f(x_n; theta + t d) - y_n||^2 + ridge ||theta + t d||^2 in t with symengine."""
    t = se.Symbol("t")
    theta = model.get_flat()
    names = model.param_names()
    outs = model.symbolic()
    subs = {se.Symbol(n): float(th) + float(d) * t for n, th, d in zip(names, theta, direction_flat)}
    outs_t = [o.subs(subs) for o in outs]
    xs, _ = model.symbols()
    total = se.Integer(0)
    for x, y in zip(X, Y):
        data = {xs[idx]: float(x[idx]) for idx in np.ndindex(xs.shape)}
        for o, yk in zip(outs_t, y):
            total += (o.subs(data) - float(yk)) ** 2
    total += ridge * sum((float(th) + float(d) * t) ** 2 for th, d in zip(theta, direction_flat))
    poly = se.expand(total)
    # Collect by evaluating derivatives at 0: c_k = p^(k)(0) / k!
    out = []
    p = poly
    k = 0
    fact = 1.0
    while True:
        c = float(p.subs({t: 0}))
        out.append(c / fact)
        p = se.diff(p, t)
        k += 1
        fact *= k
        if p == 0:
            break
    return np.array(out)


MODELS = tiny_models()


def _check(got, want):
    scale = np.max(np.abs(want))
    n = max(len(got), len(want))
    got = np.pad(got, (0, n - len(got)))
    want = np.pad(want, (0, n - len(want)))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * scale)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_single_parameter_matches_symengine(name):
    model, X, Y, loss = tiny_loss(MODELS[name], n=3, ridge=RIDGE)
    names = model.param_names()
    # every parameter of small models; a spread sample of larger ones
    picks = range(len(names)) if len(names) <= 60 else np.linspace(0, len(names) - 1, 60).astype(int)
    for i in picks:
        d = np.zeros(model.num_params)
        d[i] = 1.0
        got = loss.restrict(names[i])
        want = symbolic_restriction(model, X, Y, d, RIDGE)
        _check(got, want)
        assert len(got) - 1 == 2 * model.degree(names[i]) or model.degree(names[i]) == 0


@pytest.mark.parametrize("name", list(MODELS))
def test_random_dense_direction_matches_symengine(name, rng):
    model, X, Y, loss = tiny_loss(MODELS[name], n=2, ridge=RIDGE)
    d = rng.normal(size=model.num_params)
    got = loss.restrict(d)
    want = symbolic_restriction(model, X, Y, d, RIDGE)
    _check(got, want)
    assert len(got) - 1 == 2 * model.direction_degree(set(range(len(model.layers))))


@pytest.mark.parametrize("name", list(MODELS))
def test_incremental_step_matches_refresh(name, rng):
    model, X, Y, loss = tiny_loss(MODELS[name], n=5, ridge=RIDGE)
    names = model.param_names()
    for i in rng.choice(len(names), size=min(10, len(names)), replace=False):
        c = loss.restrict(names[i])
        t = float(rng.normal())
        loss.step(t)
        predicted = np.polynomial.polynomial.polyval(t, c)
        assert np.isclose(loss.value, predicted, rtol=1e-10)
    d = rng.normal(size=model.num_params) * 0.1
    c = loss.restrict(d)
    loss.step(0.7)
    acts = {k: v.copy() for k, v in loss.acts.items()}
    out = loss.output.copy()
    loss.refresh()
    np.testing.assert_allclose(loss.output, out, rtol=1e-10, atol=1e-12)
    for k in acts:
        np.testing.assert_allclose(loss.acts[k], acts[k], rtol=1e-10, atol=1e-12)
    assert np.isclose(loss.value, np.polynomial.polynomial.polyval(0.7, c), rtol=1e-10)
    np.testing.assert_allclose(model.forward(X), out, rtol=1e-10, atol=1e-12)
