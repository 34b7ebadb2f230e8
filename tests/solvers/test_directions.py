"""CG, L-BFGS and Gauss-Newton: no ascent anywhere, exact directions, stochastic variants, options."""

from typing import NamedTuple

import numpy as np
import pytest

import symnet.solvers as solvers
from symnet.core.derivatives import block_index
from symnet.core.derivatives import gradient
from symnet.solvers.gauss_newton import GaussNewtonSolver, gauss_newton_direction, kfac_direction
from symnet.solvers.quasi_newton import CGSolver, LBFGSSolver, two_loop
from symnet.solvers.directions import Direction, cg_memory, gradient_direction, steepest_descent
from symnet.solvers.exact_directions import DirectionSolver
from symnet.core.datasets import Dataset
from symnet.core.errors import ModelError, SolverError
from symnet.core.layers import Linear, Poly
from symnet.core.model import Sequential
from symnet.core.restriction import Restriction
from symnet.core.run import Deadline

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
    (GaussNewtonSolver, {"search": "joint", "varpro": True}),
    (GaussNewtonSolver, {"search": "joint", "max_explicit": 0, "cg_iters": 3, "batch_size": 16, "check": True}),
    (GaussNewtonSolver, {"curvature": "kfac", "varpro": True, "search": "joint"}),
    (GaussNewtonSolver, {"curvature": "kfac-cg", "cg_iters": 3}),
    (GaussNewtonSolver, {"curvature": "mixed", "cg_iters": 2, "search": "joint"}),
    (GaussNewtonSolver, {"curvature": "kfac", "search": "joint", "momentum": 0.5, "varpro": True}),
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
    fresh = Restriction(model, data.x_train, data.one_hot("train"), ridge=RIDGE).value / len(data.x_train)
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
    fresh = Restriction(model, data.x_train, data.one_hot("train"), ridge=RIDGE).value / 30
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
    loss = Restriction(model, X, Y, ridge=RIDGE)
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
    loss = Restriction(model, X, Y, ridge=RIDGE)
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
    memory = cg_memory(restart_every=3)

    def direct(g, mem):
        d_prev, beta = mem.d_prev, mem.beta
        d, mem = memory.direct(g, mem)
        seen.append((g.copy(), None if d_prev is None else d_prev.copy(), beta, d.copy()))
        return d, mem

    class Spy(CGSolver):
        def _directions(self, model):
            return [gradient_direction(memory._replace(direct=direct))]

    Spy(ridge=RIDGE, restart_every=3).fit(model, data, steps=5, quiet=True)
    assert len(seen) == 5
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
    mem = memory.remember(memory.init(), None, g_new - g_old, g_old, g_new)
    assert g_new @ (g_new - g_old) < 0 and mem.beta == 0.0
    g_new = np.array([2.0, 0.0])
    mem = memory.remember(mem, None, g_new - g_old, g_old, g_new)
    assert mem.beta == pytest.approx(2.0)


def test_varpro_keeps_the_last_layer_at_its_ridge_solution():
    model = MODELS["poly"].copy()
    data = toy_data(model)
    GaussNewtonSolver(ridge=RIDGE, varpro=True).fit(model, data, steps=3, quiet=True)
    loss = Restriction(model, data.x_train, data.one_hot("train"), ridge=RIDGE)
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
                                      (GaussNewtonSolver, {"batch_size": 8, "iters_per_step": 2}),
                                      (GaussNewtonSolver, {"batch_size": 8, "iters_per_step": 2, "varpro": True,
                                                           "search": "joint"}),
                                      (GaussNewtonSolver, {"batch_size": 8, "iters_per_step": 2, "varpro": True,
                                                           "search": "joint", "curvature": "kfac"}),
                                      (GaussNewtonSolver, {"batch_size": 8, "iters_per_step": 3, "varpro": True,
                                                           "search": "joint", "curvature": "kfac",
                                                           "momentum": 0.7}),
                                      (GaussNewtonSolver, {"batch_size": 8, "iters_per_step": 2, "varpro": True,
                                                           "search": "joint", "jet_dtype": "float32"})],
                         ids=["cg", "lbfgs", "gn-varpro", "gn-batch", "gn-joint", "gn-kfac", "gn-momentum",
                              "gn-float32"])
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


def test_joint_search_is_the_sum_of_block_directions_at_one_point():
    """search='joint': the direction is the sum of each block's gauss_newton_direction at the same point."""
    model = MODELS["poly2"].copy()
    data = toy_data(model, n=30)
    seen = []

    class Spy(GaussNewtonSolver):
        def _search(self, loss, d, reuse=True):
            theta = loss.model.get_flat().copy()
            want = np.zeros_like(d)
            for b, block in enumerate(self.blocks_):
                want += gauss_newton_direction(loss, block, damping=self.damping_[b],
                                               max_explicit=self.max_explicit_)[0]
            np.testing.assert_allclose(d, want, rtol=1e-9, atol=1e-12)
            assert np.array_equal(loss.model.get_flat(), theta)
            seen.append(1)
            return super()._search(loss, d, reuse)

    Spy(ridge=RIDGE, varpro=True, search="joint").fit(model, data, steps=2, quiet=True)
    assert len(seen) == 2
    with pytest.raises(SolverError, match="search"):
        GaussNewtonSolver(search="both").fit(model, data, steps=1, quiet=True)


@pytest.mark.parametrize("name,block", [("poly2", [0]), ("poly2", [3]), ("poly2", [0, 3]), ("poly", [0]),
                                        ("mlp", [0])])
def test_kfac_preconditioned_cg_converges_to_the_exact_gauss_newton_direction(name, block):
    model = MODELS[name].copy()
    X, Y = tiny_data(model, n=12)
    loss = Restriction(model, X, Y, ridge=RIDGE)
    want, _ = gauss_newton_direction(loss, block, mu=0.0, method="explicit", max_explicit=10 ** 6)
    P = len(block_index(model, block))
    got, info = kfac_direction(loss, block, damping=0.0, cg_iters=3 * P, cg_tol=1e-13, rng=np.random.default_rng(1))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * np.abs(want).max())
    # the closed-form Kronecker direction alone is a descent direction of the block
    d, info = kfac_direction(loss, block, damping=1e-3, rng=np.random.default_rng(1))
    assert float(gradient(loss) @ d) < 0
    assert info["method"] == "kfac"


def test_batch_growth_enlarges_the_batches_geometrically_up_to_the_cap():
    model = MODELS["poly"].copy()
    data = toy_data(model, n=60)
    sizes = []

    class Spy(GaussNewtonSolver):
        def _next_batch(self):
            idx = super()._next_batch()
            sizes.append(len(idx))
            return idx

    Spy(ridge=RIDGE, varpro=True, batch_size=8, iters_per_step=2, batch_growth=2.0, max_batch=20).fit(
        model, data, steps=4, quiet=True)
    # step 1 is the first readout solve; then 2 iterations per step at 8, 16, 20 (the epoch's last batch
    # takes the 12 samples left of 60)
    assert sizes == [8, 8, 16, 16, 12, 20]


def test_a_time_limited_minibatch_run_ends_on_its_best_recorded_objective():
    model = MODELS["poly"].copy()
    data = toy_data(model, n=60)
    s = GaussNewtonSolver(ridge=RIDGE, varpro=True, batch_size=10, iters_per_step=2)
    s.fit(model, data, steps=3, quiet=True)
    best_loss, best_theta, _ = s.best_
    assert best_loss == min(s.history_.column("loss")[1:])
    model.set_flat(best_theta + 0.1)  # a worse point, as a noisy last step could leave
    out = {"loss": best_loss + 1.0, "train_scores": None}
    s.deadline = Deadline(None)
    s._keep_best(dict(out))  # before the deadline: kept as it is
    assert not np.array_equal(model.get_flat(), best_theta)
    s.deadline.end_now()  # the time limit has passed
    s._keep_best(out)
    np.testing.assert_array_equal(model.get_flat(), best_theta)
    assert out["loss"] == best_loss and out["restored_best"] == 1


def test_the_first_minibatch_varpro_step_is_the_readout_solve_alone():
    model = MODELS["poly"].copy()
    data = toy_data(model, n=60)
    theta = model.get_flat()
    s = GaussNewtonSolver(ridge=RIDGE, varpro=True, batch_size=10, iters_per_step=2).fit(model, data, steps=2,
                                                                                        quiet=True)
    first = s.history_[1]
    assert first["searches"] == 0 and first["block_decrease"] > 0
    # oracle: the readout's ridge fit by lstsq on the initial features
    probe = MODELS["poly"].copy()
    probe.set_flat(theta)
    H = data.x_train
    for layer in probe.layers[:-1]:
        H = layer.forward(H)
    A = np.hstack([H, np.ones((len(H), 1))])
    Y = data.one_hot("train")
    lam = RIDGE
    S = np.linalg.lstsq(np.vstack([A, np.sqrt(lam) * np.eye(A.shape[1])]),
                        np.vstack([Y, np.zeros((A.shape[1], Y.shape[1]))]), rcond=None)[0]
    others = theta[:-probe.layers[-1].params["weight"].size - Y.shape[1]]
    value = np.sum((A @ S - Y) ** 2) + lam * (others @ others + np.sum(S * S))
    assert np.isclose(first["loss"], value / len(Y), rtol=1e-6)


def test_auto_options_follow_the_data_size_and_explicit_options_win():
    model = MODELS["poly"].copy()
    small = toy_data(model, n=40)
    s = GaussNewtonSolver().fit(model.copy(), small, steps=1, quiet=True)
    assert s.opts_["batch_size"] is None and s.opts_["search"] == "blocks" and s.opts_["varpro"] is True
    assert s.opts_["jet_dtype"] == "float64" and s.resolved_["curvature"] == "gn"
    big = GaussNewtonSolver(search="blocks").auto_options(model, 60000)
    # the tiny test net moves under 100 parameters before its readout: a fixed batch of 1,000
    assert big["batch_size"] == 1000 and big["jet_dtype"] == "float32" and big["search"] == "joint"
    assert big["batch_growth"] == 1.0 and GaussNewtonSolver().auto_options(model, 4000)["batch_size"] is None
    s = GaussNewtonSolver(search="blocks", batch_size=8, curvature="kfac").fit(model.copy(), small, steps=1,
                                                                               quiet=True)
    assert s.opts_["search"] == "blocks" and s.opts_["curvature"] == "kfac" and "search" not in s.resolved_
    with pytest.raises(SolverError, match="curvature must be one of"):
        GaussNewtonSolver(curvature="exact").fit(model.copy(), small, steps=1, quiet=True)


def test_auto_batch_grows_only_when_the_direction_moves_many_parameters():
    from symnet.core.model import presets as models

    expected = (("poly", 500, 1.4, 20000), ("poly2", 500, 1.4, 20000), ("seed", 1000, 1.0, None))
    for name, batch, growth, cap in expected:
        got = GaussNewtonSolver().auto_options(models.get(name, seed=0), 60000)
        assert (got["batch_size"], got["batch_growth"], got["max_batch"]) == (batch, growth, cap), name
    s = GaussNewtonSolver(batch_size=1000)  # a batch the user chose stays fixed
    s.opts_ = s.check_options()
    got = s.auto_options(models.get("poly2", seed=0), 60000)
    assert (got["batch_growth"], got["max_batch"]) == (1.0, None)
    s = GaussNewtonSolver(batch_size=1000, batch_growth=1.2)  # growth they ask for keeps the memory bound
    s.opts_ = s.check_options()
    assert s.auto_options(models.get("poly2", seed=0), 60000)["max_batch"] == 20000


def test_auto_readout_window_only_for_minibatch_varpro_on_narrow_readouts():
    from symnet.core.model import presets as models

    poly2 = models.get("poly2", seed=0)  # 512 readout inputs
    assert GaussNewtonSolver().auto_options(poly2, 60000)["readout_window"] == 10000
    for wide in ("seed", "poly"):  # 676 and 2,304
        assert GaussNewtonSolver().auto_options(models.get(wide, seed=0), 60000)["readout_window"] is None
    assert GaussNewtonSolver().auto_options(poly2, 4000)["readout_window"] is None  # full-data steps
    for given in ({"batch_size": None}, {"varpro": False}, {"batch_size": 60000}):
        s = GaussNewtonSolver(**given)
        s.opts_ = s.check_options()
        assert s.auto_options(poly2, 60000)["readout_window"] is None, given


@pytest.mark.parametrize("opts", [{"varpro": True, "batch_size": 50}, {"varpro": True}, {}],
                         ids=["minibatch", "full", "no-varpro"])
def test_auto_ridge_is_chosen_on_held_out_samples_and_recorded(opts):
    model = MODELS["poly"].copy()
    data = toy_data(model, n=200, seed=4)
    s = GaussNewtonSolver(**opts).fit(model, data, steps=2, quiet=True)
    sel = s.ridge_selection_
    assert sel["validation_samples"] == 20 and sel["chosen"] in sel["ridges"]
    assert s.history_.final["ridge"] == sel["chosen"] == s.ridge_ == s.ridge_used
    # the reported objective uses the chosen ridge
    theta = model.get_flat()
    value = (np.sum((model.forward(data.x_train) - data.one_hot()) ** 2) + sel["chosen"] * theta @ theta) / 200
    assert np.isclose(s.history_.final["loss"], value, rtol=1e-5)


def test_float32_minibatches_and_readout_match_float64():
    """jet_dtype and readout_dtype float32: the same run as float64 to float32 precision."""
    rng = np.random.default_rng(5)
    X = rng.random((160, 1, 8, 8))
    y = rng.integers(0, 3, 160)
    data = Dataset("toy", X, y, X[:10], y[:10], 3)
    from symnet.core.model import presets as models

    runs = {}
    for dtype in ("float64", "float32"):
        model = models.get("poly2", input_shape=(1, 8, 8), channels=2, channels2=2, kernel=2, num_classes=3, seed=6)
        s = GaussNewtonSolver(varpro=True, batch_size=40, ridge=0.1, jet_dtype=dtype, readout_dtype=dtype,
                              search="joint")
        s.fit(model, data, steps=3, quiet=True)
        runs[dtype] = (model.get_flat(), s.history_.column("loss"))
        assert {"readout", "search", "direction"} <= set(s.profile_)
        last = s.history_.final
        assert last["seconds_search"] == round(s.profile_["search"], 4)
        # the phases are parts of the training time
        assert sum(v for k, v in last.items() if k.startswith("seconds_")) <= last["time"] + 1e-3
    np.testing.assert_allclose(runs["float32"][1], runs["float64"][1], rtol=1e-3)


def test_windowed_readout_is_the_decayed_weighted_ridge_fit():
    """Oracle: weighted least squares by lstsq on the stacked batches, each row scaled by sqrt(its weight)."""
    from symnet.solvers.exact_directions import WindowedReadout

    rng = np.random.default_rng(3)
    batches = [(rng.random((20, 4)), rng.random((20, 3))) for _ in range(3)]
    w = WindowedReadout(50, bias=True)
    for H, Y in batches:
        w.add(H, Y)
    decay = 1.0 - 20 / 50
    weights = [decay ** 2, decay, 1.0]
    assert np.isclose(w.n, 20 * sum(weights))
    A = np.vstack([np.sqrt(c) * np.c_[H, np.ones(len(H))] for c, (H, _) in zip(weights, batches)])
    B = np.vstack([np.sqrt(c) * Y for c, (_, Y) in zip(weights, batches)])
    ridge, N = 2.0, 400
    lam = ridge * w.n / N
    expect = np.linalg.lstsq(np.vstack([A, np.sqrt(lam) * np.eye(5)]), np.vstack([B, np.zeros((5, 3))]),
                             rcond=None)[0]
    np.testing.assert_allclose(w.solution(ridge, N), expect, rtol=1e-10, atol=1e-12)
    # a full-data restart scales the full sums to the window's weight
    G, C = A.T @ A, A.T @ B
    w.reset(G, C, 200)
    np.testing.assert_allclose(w.G, G / 4) and np.testing.assert_allclose(w.C, C / 4)
    assert w.n == 50.0
    fresh = WindowedReadout(50, bias=True)
    fresh.load(w.state())
    np.testing.assert_array_equal(fresh.solution(ridge, N), w.solution(ridge, N))


def test_readout_window_steps_are_exact_line_searches_on_a_batch_the_window_has_not_seen():
    model = MODELS["poly"].copy()
    data = toy_data(model, n=80, seed=2)
    seen = []

    class Spy(GaussNewtonSolver):
        def _track_readout(self, loss):
            li = len(self.model_.layers) - 1
            target = self.window_.solution(self.ridge_, self.N_)
            before_n = self.window_.n
            theta = self.model_.get_flat()
            before = loss.value
            super()._track_readout(loss)
            after = loss.value
            # the batch joined after the search
            assert np.isclose(self.window_.n, (1 - len(loss.X) / 30) * before_n + len(loss.X))
            if target is None:
                return
            # along the line theta + t (target - readout) the batch objective is a quadratic in t: its minimum
            # from three forward passes, independently of the solver's polynomial
            d = np.zeros_like(theta)
            idx = block_index(self.model_, [li])
            d[idx] = np.concatenate([target[:-1].T.ravel(), target[-1]]) - theta[idx]  # (weight, bias) order
            probe = self.model_.copy()

            def batch_objective(t):
                probe.set_flat(theta + t * d)
                r = probe.forward(loss.X) - loss.Y
                return float(np.sum(r * r) + loss.ridge * np.sum((theta + t * d) ** 2))

            q0, q1, q2 = batch_objective(0.0), batch_objective(1.0), batch_objective(2.0)
            a, b = (q2 - 2 * q1 + q0) / 2, (4 * q1 - 3 * q0 - q2) / 2
            assert np.isclose(before, q0, rtol=1e-9) and after <= before * (1 + 1e-12)
            if a > 1e-6 * q0:  # (right after a full solve the target is the readout itself: nothing to fit)
                assert np.isclose(after, q0 - b * b / (4 * a), rtol=1e-9)
                seen.append(before - after)

    s = Spy(ridge=RIDGE, varpro=True, batch_size=10, iters_per_step=4, readout_window=30)
    s.fit(model, data, steps=4, quiet=True)
    assert len(seen) >= 6 and min(seen) > 0  # of 3 steps of 4 batches after the first readout solve
    assert s.history_.final["seconds_track"] > 0


def test_readout_window_resumes_the_same_run_and_needs_minibatch_varpro(tmp_path):
    model = MODELS["poly"].copy()
    data = toy_data(model, n=80, seed=2)
    opts = dict(ridge=RIDGE, varpro=True, batch_size=10, iters_per_step=3, readout_window=25)
    whole = GaussNewtonSolver(**opts).fit(model.copy(), data, steps=4, quiet=True)
    GaussNewtonSolver(**opts).fit(model.copy(), data, steps=2, quiet=True, checkpoint_dir=tmp_path)
    resumed = GaussNewtonSolver(**opts).fit(model.copy(), data, steps=4, quiet=True, checkpoint_dir=tmp_path,
                                            resume=True)
    assert resumed.window_.G is not None
    np.testing.assert_allclose(resumed.model_.get_flat(), whole.model_.get_flat(), rtol=1e-9, atol=1e-12)
    with pytest.raises(SolverError, match="readout_window tracks the readout"):
        GaussNewtonSolver(ridge=RIDGE, varpro=True, readout_window=25).fit(model.copy(), data, steps=1, quiet=True)


# ------------------------------------------------------------------ the direction interface
class SignState(NamedTuple):
    iterations: int


def sign_direction() -> Direction:
    """A new direction is a pure init/update pair: here the sign of the gradient, counted."""

    def update(problem, state):
        g = gradient(problem.loss)
        return (-np.sign(g) if np.any(g) else None), SignState(state.iterations + 1)

    return Direction(init=lambda model: SignState(0), update=update)


@pytest.mark.parametrize("opts", [{}, {"batch_size": 8, "check": True}], ids=["full", "checked-batches"])
def test_a_new_direction_plugs_into_the_generic_solver_and_never_raises_the_loss(opts):
    model = MODELS["poly"].copy()
    data = toy_data(model, n=30)
    s = traced(DirectionSolver)(sign_direction(), ridge=RIDGE, **opts).fit(model, data, steps=4, quiet=True)
    assert s.trace and s.states_[0].iterations == s.history_.final["iterations"]
    for before, after, accepted, full_before, full_after in s.trace:
        assert after <= before * (1 + 1e-12) + 1e-12
        if full_before is not None:
            assert full_after <= full_before
    losses = s.history_.column("loss")
    assert np.all(np.diff(losses) <= 1e-12 * losses[:-1]) and losses[-1] < losses[0]
    # every accepted step moves every parameter (the default size of a direction)
    assert s.history_.final["updates"] == model.num_params * sum(accepted for _, _, accepted, _, _ in s.trace)


def test_steepest_descent_stops_where_its_line_search_finds_no_decrease():
    model, data, want = quadratic_problem()
    s = DirectionSolver(steepest_descent(), ridge=RIDGE).fit(model, data, steps=400, quiet=True)
    assert len(s.history_) < 401  # a rejected steepest descent step on the full data: converged, the run ends
    np.testing.assert_allclose(model.get_flat(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,opts", [(CGSolver, {"restart_every": 5}),
                                      (GaussNewtonSolver, {"batch_size": 8, "iters_per_step": 2, "varpro": True,
                                                           "search": "joint", "curvature": "kfac",
                                                           "momentum": 0.5})],
                         ids=["cg", "gn-momentum"])
def test_resume_restores_the_direction_state(tmp_path, cls, opts):
    data = toy_data(MODELS["poly2"], n=24)
    straight = MODELS["poly2"].copy()
    cls(ridge=RIDGE, **opts).fit(straight, data, steps=4, quiet=True)
    half = cls(ridge=RIDGE, **opts)
    half.fit(MODELS["poly2"].copy(), data, steps=2, quiet=True, checkpoint_dir=tmp_path)
    again = MODELS["poly2"].copy()
    s = cls(ridge=RIDGE, **opts).fit(again, data, steps=4, quiet=True, checkpoint_dir=tmp_path, resume=True)
    assert s.states_[0]._fields == half.states_[0]._fields
    np.testing.assert_allclose(again.get_flat(), straight.get_flat(), rtol=1e-6, atol=1e-8)


def test_a_coordinate_direction_lands_on_the_brute_force_minimum_of_its_weight():
    # the first step of cyclic_coordinates + the exact line search is the global minimum of the objective in
    # that one weight: checked against a fine grid of the true objective (plain forward passes)
    import symnet
    from symnet.core.objective import evaluate
    from symnet.solvers.directions import cyclic_coordinates
    from symnet.solvers.exact_directions import DirectionSolver

    model = symnet.models.mlp(2, 3, 2, seed=1)
    data = symnet.datasets.xor(16)
    X, Y = data.x_train, data.one_hot("train")
    ridge = 1e-2
    theta0 = model.get_flat().copy()
    i = cyclic_coordinates().init(model).index
    grid = np.linspace(-6.0, 6.0, 24001)

    def true(t):
        th = theta0.copy()
        th[i] += t
        model.set_flat(th)
        return evaluate(model.forward(X), Y, th, ridge)

    best = min(true(t) for t in grid)
    model.set_flat(theta0)
    s = DirectionSolver(cyclic_coordinates(), ridge=ridge).fit(model, data, steps=1, quiet=True)
    moved = np.flatnonzero(s.model_.get_flat() != theta0)
    assert list(moved) == [i]
    assert s.history_.final["loss"] * len(X) <= best + 1e-9 * max(1.0, best)


def test_a_channel_block_direction_searched_exactly_matches_the_fused_block_step():
    # the generic exact line search (jets through the layers) along a channel block's direction reaches the
    # minimum the channel kernels compute for the same direction (ChannelBlocks.line_step): two
    # implementations of the same polynomial
    import symnet
    from symnet.core.restriction import Restriction
    from symnet.solvers.channel_blocks import ChannelBlocks
    from symnet.solvers.directions import Problem, channel_blocks, exact_line_search

    model = symnet.models.get("poly", input_shape=(1, 8, 8), channels=2, kernel=3, num_classes=3, seed=0)
    X = np.random.default_rng(0).random((40, 1, 8, 8))
    Y = np.eye(3)[np.arange(40) % 3]
    theta0 = model.get_flat().copy()
    direction = channel_blocks()
    loss = Restriction(model, X, Y, ridge=0.1)
    d, state = direction.update(Problem(loss), direction.init(model))
    assert d is not None and state.channel == 1
    generic = exact_line_search(loss, d)
    model.set_flat(theta0)
    blocks = ChannelBlocks(model, X, Y, ridge=0.1)
    du, dV, db, _ = blocks.direction(0)
    np.testing.assert_allclose(blocks.flat(0, du=du, dV=dV, db=db), d, rtol=1e-12, atol=1e-14)
    t, _, after = blocks.line_step(0, du, dV, db)
    assert np.isclose(generic.after, after, rtol=1e-9)
    assert np.isclose(generic.t, t, rtol=1e-6)
