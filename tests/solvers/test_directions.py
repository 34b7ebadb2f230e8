"""CG, L-BFGS and Gauss-Newton: no ascent anywhere, exact directions, stochastic variants, options."""

import numpy as np
import pytest

import symnet.solvers as solvers
from symnet.core.derivatives import block_index
from symnet.solvers.gauss_newton import GaussNewtonSolver, gauss_newton_direction
from symnet.solvers.quasi_newton import CGSolver, LBFGSSolver, two_loop
from symnet.core.datasets import Dataset
from symnet.core.errors import ModelError, SolverError
from symnet.core.layers import Linear, Poly
from symnet.core.model import Sequential
from symnet.core.restriction import ExactLoss

from tiny_models import tiny_data, tiny_models, toy_data

MODELS = tiny_models()
RIDGE = 0.05




def traced(cls):
    """A subclass that records (before, after, accepted) of every line search."""

    class Traced(cls):
        def _setup(self, model, data, rng):
            self.trace = []
            super()._setup(model, data, rng)

        def _search(self, loss, d, reuse=True):
            full_before = self.full_.value if self.full_ is not None else None
            res = super()._search(loss, d, reuse)
            full_after = self.full_.value if self.full_ is not None else None
            self.trace.append((res.before, res.after, res.accepted, full_before, full_after))
            return res

    return Traced


CONFIGS = [
    (CGSolver, {}),
    (LBFGSSolver, {}),
    (GaussNewtonSolver, {}),
    (GaussNewtonSolver, {"varpro": True}),
    (GaussNewtonSolver, {"blocks": "all", "damping": 1e-6}),
    (GaussNewtonSolver, {"max_explicit": 0, "cg_iters": 5}),
    (GaussNewtonSolver, {"curvature_samples": 10}),
]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("cls,opts", CONFIGS, ids=lambda c: c.name if isinstance(c, type) else str(c))
def test_no_ascent_at_any_step(name, cls, opts):
    model = MODELS[name].copy()
    data = toy_data(model)
    s = traced(cls)(ridge=RIDGE, **opts).fit(model, data, steps=6, quiet=True)
    assert s.trace
    for before, after, accepted, _, _ in s.trace:
        assert after <= before * (1 + 1e-12) + 1e-12
        assert accepted == (after < before)
    losses = s.history_.column("loss")
    assert np.all(np.diff(losses) <= 1e-12 * losses[:-1])
    assert losses[-1] < losses[0]
    # the cached objective equals a fresh forward pass
    fresh = ExactLoss(model, data.x_train, data.one_hot("train"), ridge=RIDGE).value / len(data.x_train)
    assert np.isclose(fresh, losses[-1], rtol=1e-9)


@pytest.mark.parametrize("name", ["mlp", "poly", "poly2"])
@pytest.mark.parametrize("cls,opts", [(CGSolver, {}), (LBFGSSolver, {}), (GaussNewtonSolver, {"varpro": True})],
                         ids=["cg", "lbfgs", "gn-varpro"])
def test_checked_minibatches_never_raise_the_full_objective(name, cls, opts):
    model = MODELS[name].copy()
    data = toy_data(model, n=30)
    s = traced(cls)(ridge=RIDGE, batch_size=4, check=True, **opts).fit(model, data, steps=2, quiet=True)
    for before, after, accepted, full_before, full_after in s.trace:
        assert after <= before * (1 + 1e-12) + 1e-12        # the batch objective
        assert full_after <= full_before                      # the full objective
    losses = s.history_.column("loss")
    assert np.all(np.diff(losses) <= 1e-12 * losses[:-1])
    assert s.history_.final["passes"] == pytest.approx(2.0, abs=0.2)  # one epoch per step


def test_unchecked_minibatches_run_and_report_the_full_objective():
    model = MODELS["poly"].copy()
    data = toy_data(model, n=30)
    s = LBFGSSolver(ridge=RIDGE, batch_size=8, iters_per_step=3).fit(model, data, steps=2, quiet=True)
    fresh = ExactLoss(model, data.x_train, data.one_hot("train"), ridge=RIDGE).value / 30
    assert np.isclose(s.history_.final["loss"], fresh, rtol=1e-10)
    assert s.history_.final["iterations"] == 6


# ------------------------------------------------------------------ exact directions
def quadratic_problem(seed=0):
    """A model linear in its parameters: the objective is a convex quadratic."""
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(4, 3), input_shape=(4,), seed=seed)
    X = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, 30)
    data = Dataset("lin", X, y, X[:5], y[:5], 3)
    A = np.hstack([X, np.ones((30, 1))])
    W = np.linalg.solve(A.T @ A + RIDGE * np.eye(5), A.T @ data.one_hot("train"))
    return model, data, np.concatenate([W[:4].T.ravel(), W[4]])


@pytest.mark.parametrize("cls,opts,iters", [(CGSolver, {}, 15), (LBFGSSolver, {"memory": 20}, 15),
                                            (GaussNewtonSolver, {"damping": 0.0, "adapt_damping": False}, 1)],
                         ids=["cg", "lbfgs", "gauss-newton"])
def test_finite_termination_on_a_quadratic(cls, opts, iters):
    # 15 parameters: CG and L-BFGS with exact line searches terminate in at most n steps, Gauss-Newton in one
    model, data, want = quadratic_problem()
    cls(ridge=RIDGE, **opts).fit(model, data, steps=iters, quiet=True)
    np.testing.assert_allclose(model.get_flat(), want, rtol=1e-7, atol=1e-9)


def fd_jacobian(model, X, h=1e-6):
    theta = model.get_flat()
    cols = []
    for e in np.eye(model.num_params):
        model.set_flat(theta + h * e)
        up = model.forward(X)
        model.set_flat(theta - h * e)
        down = model.forward(X)
        cols.append(((up - down) / (2 * h)).ravel())
    model.set_flat(theta)
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("name", ["poly", "poly2", "mlp-cubic", "seed"])
@pytest.mark.parametrize("method", ["explicit", "cg"])
def test_gauss_newton_direction_solves_the_explicit_system(name, method):
    model = MODELS[name].copy()
    X, Y = tiny_data(model, n=5)
    loss = ExactLoss(model, X, Y, ridge=RIDGE)
    J = fd_jacobian(model, X)                                  # oracle Jacobian, (samples * outputs, params)
    r = (model.forward(X) - Y).ravel()
    theta = model.get_flat()
    layers_all = [li for li, layer in enumerate(model.layers) if layer.params]
    mu = 0.3
    for layers in [layers_all, [layers_all[0]]]:
        idx = block_index(model, layers)
        JB = J[:, idx]
        want = np.linalg.solve(JB.T @ JB + (RIDGE + mu) * np.eye(len(idx)), -(JB.T @ r + RIDGE * theta[idx]))
        d, info = gauss_newton_direction(loss, layers, mu=mu, method=method, cg_iters=500, cg_tol=1e-13)
        assert info["method"] == method
        np.testing.assert_allclose(d[idx], want, rtol=1e-5, atol=1e-7 * np.abs(want).max())
        assert np.count_nonzero(np.delete(d, idx)) == 0


def test_separable_last_layer_and_curvature_subset(rng):
    model = MODELS["poly"].copy()
    X, Y = tiny_data(model, n=8)
    loss = ExactLoss(model, X, Y, ridge=RIDGE)
    J = fd_jacobian(model, X)
    r = (model.forward(X) - Y).ravel()
    last = len(model.layers) - 1
    idx = block_index(model, [last])
    want = np.linalg.solve(J[:, idx].T @ J[:, idx] + (RIDGE + 0.1) * np.eye(len(idx)),
                           -(J[:, idx].T @ r + RIDGE * model.get_flat()[idx]))
    d, info = gauss_newton_direction(loss, [last], mu=0.1)
    assert info["method"] == "separable"
    np.testing.assert_allclose(d[idx], want, rtol=1e-6, atol=1e-9)
    # J^T J from a subset of the samples, scaled by N / subset size; J^T r from all of them
    rows = np.array([1, 4, 6])
    conv = block_index(model, [0])
    rows_flat = (rows[:, None] * model.num_outputs + np.arange(model.num_outputs)).ravel()
    Jc = J[rows_flat][:, conv]
    A = Jc.T @ Jc * (8 / 3) + (RIDGE + 0.1) * np.eye(len(conv))
    want = np.linalg.solve(A, -(J[:, conv].T @ r + RIDGE * model.get_flat()[conv]))
    for method in ("explicit", "cg"):
        d, _ = gauss_newton_direction(loss, [0], mu=0.1, method=method, curvature_rows=rows, cg_iters=400,
                                      cg_tol=1e-13)
        np.testing.assert_allclose(d[conv], want, rtol=1e-5, atol=1e-8)


def test_two_loop_equals_the_dense_bfgs_inverse_update(rng):
    n, m = 6, 4
    S = [rng.normal(size=n) for _ in range(m)]
    B = rng.normal(size=(n, n))
    B = B @ B.T + n * np.eye(n)
    Y = [B @ s + 0.1 * rng.normal(size=n) for s in S]
    g = rng.normal(size=n)
    gamma = S[-1] @ Y[-1] / (Y[-1] @ Y[-1])
    H = gamma * np.eye(n)
    for s, y in zip(S, Y):  # oldest first
        rho = 1.0 / (y @ s)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    np.testing.assert_allclose(two_loop(g, S, Y), H @ g, rtol=1e-10)
    np.testing.assert_allclose(two_loop(g, [], []), g)


def test_cg_direction_is_polak_ribiere_plus():
    model = MODELS["mlp-cubic"].copy()
    data = toy_data(model)
    seen = []

    class Spy(CGSolver):
        def _direction(self, g):
            d_prev, beta = self.d_prev_, self.beta_
            d = super()._direction(g)
            seen.append((g.copy(), None if d_prev is None else d_prev.copy(), beta, d.copy()))
            return d

    spy = Spy(ridge=RIDGE, restart_every=3).fit(model, data, steps=5, quiet=True)
    grads = [g for g, _, _, _ in seen]
    for k, (g, d_prev, beta, d) in enumerate(seen):
        if k % 3 == 0:                       # restart: steepest descent
            np.testing.assert_allclose(d, -g)
            continue
        g_old = grads[k - 1]
        want_beta = max(0.0, g @ (g - g_old) / (g_old @ g_old))
        assert beta == pytest.approx(want_beta, rel=1e-12, abs=1e-300)
        np.testing.assert_allclose(d, -g + want_beta * d_prev, rtol=1e-12)
    # a negative Polak-Ribiere beta restarts: g_new . (g_new - g_old) < 0
    g_old, g_new = np.array([1.0, 0.0]), np.array([0.5, 0.1])
    spy._remember(None, g_new - g_old, g_old, g_new)
    assert g_new @ (g_new - g_old) < 0 and spy.beta_ == 0.0
    g_new = np.array([2.0, 0.0])
    spy._remember(None, g_new - g_old, g_old, g_new)
    assert spy.beta_ == pytest.approx(2.0)


def test_varpro_keeps_the_last_layer_at_its_ridge_solution():
    model = MODELS["poly"].copy()
    data = toy_data(model)
    GaussNewtonSolver(ridge=RIDGE, varpro=True).fit(model, data, steps=3, quiet=True)
    loss = ExactLoss(model, data.x_train, data.one_hot("train"), ridge=RIDGE)
    theta = model.get_flat()
    assert loss.solve_readout() <= 1e-10 * loss.value
    np.testing.assert_allclose(model.get_flat(), theta, rtol=1e-7, atol=1e-9)


def test_lbfgs_resume_continues_the_same_run(tmp_path):
    data = toy_data(MODELS["poly"])
    straight = MODELS["poly"].copy()
    LBFGSSolver(ridge=RIDGE).fit(straight, data, steps=4, quiet=True)
    resumed = MODELS["poly"].copy()
    LBFGSSolver(ridge=RIDGE).fit(resumed, data, steps=2, quiet=True, checkpoint_dir=tmp_path)
    again = MODELS["poly"].copy()
    s = LBFGSSolver(ridge=RIDGE).fit(again, data, steps=4, quiet=True, checkpoint_dir=tmp_path, resume=True)
    assert s.history_.final["pairs"] >= 2
    np.testing.assert_allclose(again.get_flat(), straight.get_flat(), rtol=1e-6, atol=1e-8)


def test_registry_and_clear_errors():
    for name in ("cg", "lbfgs", "gauss-newton"):
        assert solvers.get(name).name == name
    good = MODELS["mlp"].copy()
    data = toy_data(good)
    bad = [({"batch_size": 0}, "batch_size"), ({"blocks": "rows"}, "blocks"), ({"damping": -1}, "damping"),
           ({"iters_per_step": 1.5}, "iters_per_step"), ({"ridge": "x"}, "ridge"), ({"lr": 1}, "no option"),
           ({"check": "yes"}, "check")]
    for opts, match in bad:
        with pytest.raises(SolverError, match=match):
            GaussNewtonSolver(**opts).fit(good.copy(), data, steps=1, quiet=True)
    no_linear = Sequential(Linear(2, 2), Poly("square"), input_shape=(2,), seed=0)
    with pytest.raises(SolverError, match="varpro"):
        LBFGSSolver(varpro=True).fit(no_linear, toy_data(no_linear), steps=1, quiet=True)
    other = MODELS["seed"].copy()
    with pytest.raises(ModelError, match="inputs"):
        CGSolver().fit(other, data, steps=1, quiet=True)


@pytest.mark.parametrize("cls,opts", [(CGSolver, {}), (LBFGSSolver, {}), (GaussNewtonSolver, {"varpro": True}),
                                      (GaussNewtonSolver, {"batch_size": 8, "iters_per_step": 2})],
                         ids=["cg", "lbfgs", "gn-varpro", "gn-batch"])
def test_every_solver_line_search_against_brute_force(cls, opts):
    model = MODELS["poly2"].copy()
    data = toy_data(model, n=24)
    checked = []

    class Checked(cls):
        def _search(self, loss, d, reuse=True):
            theta = loss.model.get_flat()
            res = super()._search(loss, d, reuse)
            # brute force on the loss being searched (the batch in mini-batch mode): true objectives on a grid
            u = d / np.linalg.norm(d)
            tau = res.t * np.linalg.norm(d)
            probe = loss.model.copy()
            grid = np.linspace(-abs(tau) - 1.0, abs(tau) + 1.0, 401)
            values = []
            for g in grid:
                probe.set_flat(theta + g * u)
                th = theta + g * u
                values.append(np.sum((probe.forward(loss.X) - loss.Y) ** 2) + loss.ridge * th @ th)
            assert res.after <= min(values) + 1e-9 * abs(min(values))
            checked.append(res.accepted)
            return res

    Checked(ridge=RIDGE, **opts).fit(model, data, steps=2, quiet=True)
    assert len(checked) >= 2 and any(checked)
