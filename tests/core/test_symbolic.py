"""The symbolic view: symengine outputs evaluated at numbers equal forward; sympy and LaTeX export."""

import numpy as np
import pytest
import symengine as se
import sympy

from symnet.core.model import presets as models
from symnet.core.layers import Poly

from tiny_models import all_models, randomized, tiny_data

MODELS = all_models()


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("name", list(MODELS))
def test_symbolic_at_numbers_equals_forward(name, rng):
    model = randomized(MODELS[name], seed=7)
    X = rng.normal(size=(3,) + model.input_shape)
    want = model.forward(X)
    xs, _ = model.symbols()
    outputs = model.symbolic()
    assert len(outputs) == model.num_outputs
    params = {se.Symbol(n): se.Float(float(v)) for n, v in zip(model.param_names(), model.get_flat())}
    for x, row in zip(X, want):
        data = {xs[idx]: se.Float(float(x[idx])) for idx in np.ndindex(xs.shape)}
        got = [float(out.subs(data).subs(params)) for out in outputs]
        _close(np.array(got), row)
        # the same through the shortcuts: numbers as inputs, current parameters substituted
        got = [float(out) for out in model.symbolic(numeric_params=True, inputs=x)]
        _close(np.array(got), row)


@pytest.mark.parametrize("name", list(MODELS))
def test_data_symbols_remain_unless_inputs_are_given(name):
    model = MODELS[name]
    xs, ps = model.symbols()
    data_symbols = set(xs.ravel())
    param_symbols = {s for arr in ps.values() for s in arr.ravel()}
    assert len(data_symbols) == int(np.prod(model.input_shape)) and len(param_symbols) == model.num_params

    def free(exprs):
        return set().union(*(e.free_symbols for e in exprs))

    generic = free(model.symbolic())
    assert generic & data_symbols and generic <= data_symbols | param_symbols
    assert generic >= param_symbols  # every parameter reaches some output

    X, _ = tiny_data(model, n=1)
    with_inputs = free(model.symbolic(inputs=X[0]))
    assert not with_inputs & data_symbols and with_inputs == param_symbols

    assert not free(model.symbolic(numeric_params=True, inputs=X[0]))
    degree_in_inputs = int(np.prod([layer.order for layer in model.layers if isinstance(layer, Poly)]))
    if degree_in_inputs <= 3:
        # numeric_params expands in the inputs: affordable for one activation, not for poly2's nested ones
        exported = free(model.symbolic(numeric_params=True))
        assert exported <= data_symbols and exported


@pytest.fixture(scope="module")
def trained_xor():
    """An mlp with x^2 trained by gradient descent on XOR-like data (the label is sign(x0 * x1))."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(64, 2))
    Y = np.eye(2)[(X[:, 0] * X[:, 1] > 0).astype(int)]
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    first, _ = model.loss_and_grad(X, Y)
    for _ in range(300):
        loss, grad = model.loss_and_grad(X, Y, ridge=1e-3)
        model.set_flat(model.get_flat() - 0.002 * grad)
    last, _ = model.loss_and_grad(X, Y)
    assert last < 0.7 * first  # it did train
    return model, X


def test_to_sympy_matches_forward(trained_xor):
    model, X = trained_xor
    matrix = model.to_sympy()
    assert isinstance(matrix, sympy.Matrix) and matrix.shape == (2, 1)
    inputs = sympy.symbols("x[0] x[1]")
    assert matrix.free_symbols <= set(inputs)
    for expr in matrix:
        assert sympy.Poly(expr, *inputs).total_degree() == 2  # linear -> x^2 -> linear
    evaluate = sympy.lambdify(inputs, matrix, "numpy")
    got = np.array([np.asarray(evaluate(*x), dtype=np.float64).ravel() for x in X[:10]])
    _close(got, model.forward(X[:10]))


def test_to_latex_has_one_line_per_output(trained_xor):
    model, _ = trained_xor
    latex = model.to_latex()
    assert "y_{0} =" in latex and "y_{1} =" in latex
    assert latex.count("y_{") == model.num_outputs
    assert "x" in latex
