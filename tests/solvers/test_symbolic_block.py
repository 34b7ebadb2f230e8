"""The symbolic block solver: global minima over 2-3 variables, checked by grid search; size limits."""

import numpy as np
import pytest
from scipy.optimize import minimize as scipy_minimize

import symnet.solvers as solvers
from symnet.solvers.symbolic_block import SymbolicBlockSolver, block_polynomial, solve_block
from symnet.core import datasets
from symnet.core.model import presets as models
from symnet.core.errors import SolverError

RIDGE = 1e-3


def xor_problem(seed=0, activation="square"):
    data = datasets.xor()
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, activation=activation, seed=seed)
    return model, data.x_train, data.one_hot("train"), data


def grid_objective(model, X, Y, names, grid_points):
    """Oracle: the true objective (forward passes) at each row of grid_points for the block ``names``."""
    index = {n: i for i, n in enumerate(model.param_names())}
    cols = [index[n] for n in names]
    theta = model.get_flat()
    probe = model.copy()
    out = np.empty(len(grid_points))
    for j, p in enumerate(grid_points):
        th = theta.copy()
        th[cols] = p
        probe.set_flat(th)
        out[j] = np.sum((probe.forward(X) - Y) ** 2) + RIDGE * th @ th
    return out


def brute_force_minimum(model, X, Y, names, lo=-3.0, hi=3.0, n=41):
    """Grid search over the block, then Nelder-Mead from the best grid points."""
    axes = [np.linspace(lo, hi, n)] * len(names)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(names))
    values = grid_objective(model, X, Y, names, grid)
    best = []
    for j in np.argsort(values)[:8]:
        res = scipy_minimize(lambda p: grid_objective(model, X, Y, names, p[None])[0], grid[j], method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
        best.append((res.fun, res.x))
    return min(best, key=lambda b: b[0]), values.min()


@pytest.mark.parametrize("names", [
    ["linear0.weight[0,0]", "linear0.weight[0,1]"],        # one hidden unit's input weights: degree 4
    ["linear0.bias[1]", "linear1.weight[0,1]"],            # across the layers: degree 6
])
def test_xor_two_variable_block_reaches_the_grid_global_minimum(names):
    model, X, Y, _ = xor_problem()
    sol = solve_block(model, X, Y, names, RIDGE)
    (polished, point), grid_min = brute_force_minimum(model, X, Y, names)
    assert sol.value <= grid_min + 1e-9
    assert sol.value <= polished + 1e-8 * max(1.0, abs(polished))
    assert sol.value == pytest.approx(polished, rel=1e-7, abs=1e-9)
    # the reported value is the true objective at the reported point
    assert grid_objective(model, X, Y, names, sol.point[None])[0] == pytest.approx(sol.value, rel=1e-10)
    # every candidate is a stationary point of the true objective (central differences)
    for p in sol.candidates:
        for i in range(len(names)):
            e = np.zeros(len(names))
            e[i] = 1e-6
            fd = grid_objective(model, X, Y, names, np.stack([p + e, p - e]))
            assert abs(fd[0] - fd[1]) / 2e-6 <= 1e-4 * max(1.0, sol.value)


def test_xor_three_variable_block_reaches_the_global_minimum():
    model, X, Y, _ = xor_problem()
    names = ["linear0.weight[0,0]", "linear0.weight[0,1]", "linear1.weight[0,0]"]
    sol = solve_block(model, X, Y, names, RIDGE)
    (polished, _), grid_min = brute_force_minimum(model, X, Y, names, n=21)
    assert sol.value <= grid_min + 1e-9
    assert sol.value == pytest.approx(polished, rel=1e-7, abs=1e-9)
    # several stationary points (a nonconvex block), the minimiser among them
    assert len(sol.candidates) >= 2
    assert np.any(np.all(np.isclose(sol.candidates, sol.point), axis=1))


def test_block_polynomial_matches_the_forward_pass(rng):
    model, X, Y, _ = xor_problem(activation="relu-approx-c")
    names = ["linear0.weight[1,0]", "linear1.bias[0]"]
    terms, degree = block_polynomial(model, X, Y, names, RIDGE)
    assert degree == 2 * 3  # cubic activation in a first-layer weight, squared
    points = rng.normal(size=(5, 2))
    from symnet.solvers.symbolic_block import _evaluate
    np.testing.assert_allclose(_evaluate(terms, points), grid_objective(model, X, Y, names, points), rtol=1e-10)


def test_solver_runs_blocks_and_never_ascends():
    model, _, _, data = xor_problem()
    s = SymbolicBlockSolver(ridge=RIDGE, block_size=2).fit(model, data, steps=6, quiet=True)
    losses = s.history_.column("loss")
    assert np.all(np.diff(losses) <= 1e-12 * losses[:-1])
    assert losses[-1] < losses[0]
    assert solvers.get("symbolic-block") is SymbolicBlockSolver
    # a fixed block solved twice: the second solve finds nothing lower
    fixed = ["linear1.weight[0,0]", "linear1.weight[1,1]"]
    s = SymbolicBlockSolver(ridge=RIDGE, block=fixed).fit(model, data, steps=2, quiet=True)
    assert s.history_[2]["loss"] == pytest.approx(s.history_[1]["loss"], rel=1e-12)


def test_size_limits_are_clear_errors():
    model, X, Y, data = xor_problem()
    names = model.param_names()
    with pytest.raises(SolverError, match="max_vars"):
        solve_block(model, X, Y, names[:4], RIDGE)
    with pytest.raises(SolverError, match="max_samples"):
        solve_block(model, np.zeros((300, 2)), np.zeros((300, 2)), names[:2], RIDGE)
    big = models.get("poly", input_shape=(1, 12, 12), channels=8, kernel=3, num_classes=2)
    with pytest.raises(SolverError, match="max_params"):
        solve_block(big, np.zeros((2, 1, 12, 12)), np.zeros((2, 2)), big.param_names()[:2], RIDGE)
    with pytest.raises(SolverError, match="max_degree"):
        solve_block(model, X, Y, names[:2], RIDGE, limits={"max_degree": 2})
    with pytest.raises(SolverError, match="not a parameter"):
        solve_block(model, X, Y, ["linear7.weight[0,0]"], RIDGE)
    with pytest.raises(SolverError, match="max_vars"):
        SymbolicBlockSolver(block_size=5).fit(model.copy(), data, steps=1, quiet=True)
