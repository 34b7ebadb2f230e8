"""Channel blocks of the coordinate solver, each checked against an independent oracle.

Oracles: the model's own layers (numpy/BLAS forward passes), central finite differences, the
generic exact restriction ``Restriction.restrict`` (jets through every layer), brute-force grids of
forward passes along a line or over a scale, the closed-form ridge least-squares solution, and
the independent verification of certificates.
"""

import numpy as np
import pytest

import symnet.solvers as solvers
from symnet.core.model import presets as models
from symnet.core.certificates import verify_records
from symnet.core.datasets import Dataset
from symnet.core.errors import SolverError
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly, Square
from symnet.core.model import Sequential
from symnet.core.restriction import Restriction
from symnet.solvers.channel_blocks import ChannelBlocks, chain_predict, channel_chain, line_minimum
from symnet.solvers.coordinate import CoordinateSolver
from symnet.core.kernels.channel import apply_jets, channel_features, channel_grad, channel_output_jac


def chain_models():
    return {
        "poly": models.get("poly", input_shape=(1, 8, 8), channels=3, kernel=3, num_classes=3, seed=4),
        "same-relu-a": Sequential(Conv2d(2, 2, 3, padding="same"), Poly("relu-approx-a"), AvgPool2d(2), Flatten(),
                                  Linear(2 * 2 * 2, 2), input_shape=(2, 4, 4), seed=5),
        "cubic-pool3": Sequential(Conv2d(1, 2, 2), Poly("relu-approx-c"), AvgPool2d(3), Flatten(),
                                  Linear(2 * 2 * 2, 3), input_shape=(1, 7, 7), seed=6),
        "nobias-nopool": Sequential(Conv2d(1, 2, 2, bias=False), Square(), Flatten(), Linear(2 * 9, 2, bias=False),
                                    input_shape=(1, 4, 4), seed=7),
    }


MODELS = chain_models()


def data_for(model, n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n,) + model.input_shape)
    y = rng.integers(0, model.num_outputs, n)
    return X, y, np.eye(model.num_outputs)[y]


def toy_dataset(model, n=200, seed=0):
    X, y, _ = data_for(model, n=n, seed=seed)
    return Dataset("toy", X, y, X[:20], y[:20], model.num_outputs)


def layer_features(model, X):
    """Pooled activations (N, C, F) by the model's own layers."""
    h = X
    for layer in model.layers[:-2]:
        h = layer.forward(h)
    return h.reshape(len(X), model.layers[0].out_channels, -1)


def geometry(model):
    conv, act, s, lin = channel_chain(model)
    Ho, Wo = model.shapes[1][1:]
    return conv, act.coeffs, s, Ho // s, Wo // s, lin


def objective_along(model, X, Y, ridge, d):
    """t -> SSE + ridge ||theta||^2 at theta + t d, by forward passes of a copy of the model."""
    theta = model.get_flat()
    probe = model.copy()

    def f(t):
        th = theta + t * d
        probe.set_flat(th)
        return float(np.sum((probe.forward(X) - Y) ** 2) + ridge * th @ th)

    return f


# --------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("name", list(MODELS))
def test_features_and_predict_equal_the_layers(name):
    model = MODELS[name].copy()
    X, _, _ = data_for(model)
    conv, pc, s, Hq, Wq, _ = geometry(model)
    Xp = np.ascontiguousarray(conv.padded(X))
    want = layer_features(model, X)
    for c in range(conv.out_channels):
        out = np.empty((len(X), Hq * Wq))
        bias = conv.params["bias"][c] if conv.bias else 0.0
        channel_features(Xp, np.arange(len(X)), conv.params["weight"][c], bias, pc, s, Hq, Wq, out)
        np.testing.assert_allclose(out, want[:, c], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(chain_predict(model, X, chunk=7), model.forward(X), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_output_jacobian_and_gradient_against_finite_differences(name, rng):
    model = MODELS[name].copy()
    X, _, _ = data_for(model, n=12)
    conv, pc, s, Hq, Wq, lin = geometry(model)
    Xp = np.ascontiguousarray(conv.padded(X))
    idx = np.arange(len(X))[::-1].copy()  # any order of samples
    F = Hq * Wq
    c = conv.out_channels - 1
    w = conv.params["weight"][c].copy()
    b = 0.3
    Vc = rng.normal(size=(lin.out_features, F))
    K = w.size
    h = np.empty((len(idx), F))
    J = np.empty((len(idx), K + 1, lin.out_features))
    channel_output_jac(Xp, idx, w, b, pc, s, Hq, Wq, Vc, h, J)

    def feats(wv, bv):
        out = np.empty((len(idx), F))
        channel_features(Xp, idx, wv, bv, pc, s, Hq, Wq, out)
        return out

    np.testing.assert_allclose(h, feats(w, b), rtol=1e-12, atol=1e-13)
    back = rng.normal(size=(len(idx), F))
    (g,) = channel_grad(Xp, idx, w, b, pc, s, Hq, Wq, back)
    eps = 1e-6
    for k in range(K + 1):
        wp, wm, bp, bm = w.copy(), w.copy(), b, b
        if k < K:
            wp.ravel()[k] += eps
            wm.ravel()[k] -= eps
        else:
            bp, bm = b + eps, b - eps
        dh = (feats(wp, bp) - feats(wm, bm)) / (2 * eps)
        np.testing.assert_allclose(J[:, k], dh @ Vc.T, rtol=1e-6, atol=1e-7)
        assert np.isclose(g[k], np.sum(back * dh), rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- the exact line search
def block_direction(cb, c, du, dV, db):
    """The flat direction of a channel block, built from the model's own offsets (independent of cb.flat)."""
    model = cb.model
    offsets = model.offsets()
    d = np.zeros(model.num_params)
    conv, lin = cb.conv, cb.lin
    lo, _ = offsets[f"{conv.name}.weight"]
    d[lo + c * cb.K: lo + (c + 1) * cb.K] = du[:cb.K]
    if cb.has_cbias:
        d[offsets[f"{conv.name}.bias"][0] + c] = du[cb.K]
    lo, hi = offsets[f"{lin.name}.weight"]
    d[lo:hi] = dV.ravel()
    if cb.has_obias:
        lo, hi = offsets[f"{lin.name}.bias"]
        d[lo:hi] = db
    return d


@pytest.mark.parametrize("name", list(MODELS))
def test_line_polynomial_equals_exact_loss_jets_and_the_jets_move_the_caches(name, rng):
    """The fused restriction along (filter of c, the whole readout, output bias) is Restriction.restrict's."""
    model = MODELS[name].copy()
    X, _, Y = data_for(model)
    ridge = 0.2
    cb = ChannelBlocks(model, X, Y, ridge)
    cb.solve_readout()
    c = 1
    du = rng.normal(size=cb.K + 1) * 0.3
    if not cb.has_cbias:
        du[cb.K] = 0.0
    dV = rng.normal(size=cb.V.shape) * 0.2  # every readout column: the general path of line_coeffs
    db = rng.normal(size=cb.O) * 0.1 if cb.has_obias else np.zeros(cb.O)
    d = block_direction(cb, c, du, dV, db)
    np.testing.assert_array_equal(cb.flat(c, du=du, dV=dV, db=db), d)
    want = Restriction(model.copy(), X, Y, ridge=ridge).restrict(d)
    got = cb.line_coeffs(c, du, dV, db)
    scale = np.abs(want).max()
    n = min(len(got), len(want))
    np.testing.assert_allclose(got[:n], want[:n], rtol=1e-9, atol=1e-9 * scale)
    assert np.all(np.abs(got[n:]) <= 1e-9 * scale) and np.all(np.abs(want[n:]) <= 1e-9 * scale)
    # the stored jets move the features and the outputs to any step exactly
    t = 0.37
    h_new = np.empty((cb.n, cb.F))
    out = cb.out.copy()
    apply_jets(cb.hj, cb.D, t, h_new, out)
    moved = model.copy()
    moved.set_flat(model.get_flat() + t * d)
    np.testing.assert_allclose(out, moved.forward(X), rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(h_new, layer_features(moved, X)[:, c], rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("name", list(MODELS))
def test_channel_step_lands_on_the_brute_force_minimiser(name):
    model = MODELS[name].copy()
    X, _, Y = data_for(model, n=20)
    ridge = 0.05
    cb = ChannelBlocks(model, X, Y, ridge)
    cb.solve_readout()
    for c in range(cb.C):
        du, dV, db, pred = cb.direction(c)
        d = block_direction(cb, c, du, dV, db)
        f = objective_along(model, X, Y, ridge, d)
        eps = 1e-6
        # pred is half the directional derivative (the Gauss-Newton convention): a descent direction
        assert pred < 0 and np.isclose(pred, (f(eps) - f(-eps)) / (4 * eps), rtol=1e-5, atol=1e-8)
        t, before, after = cb.line_step(c, du, dV, db)
        grid = np.linspace(-abs(t) - 2, abs(t) + 2, 401)
        values = np.array([f(g) for g in grid])
        assert np.isclose(before, f(0.0), rtol=1e-11)
        assert after <= values.min() + 1e-9 * abs(values.min())  # the global minimum along the line
        assert after <= before and np.isclose(f(t), after, rtol=1e-10)
        assert np.isclose(cb.value, after, rtol=1e-10)  # the caches moved with it
        assert np.isclose(ChannelBlocks(model.copy(), X, Y, ridge).value, cb.value, rtol=1e-10)


def test_gradient_from_the_curvature_samples_is_their_scaled_gradient():
    model = MODELS["poly"].copy()
    X, _, Y = data_for(model, n=40)
    cb = ChannelBlocks(model, X, Y, 0.1)
    cb.solve_readout()
    pos = np.arange(0, 40, 2)
    c = 2
    # oracle: the filter gradient of the curvature samples alone, scaled to all 40, plus the exact ridge part
    sub = ChannelBlocks(model.copy(), X[cb.idx[pos]], Y[cb.idx[pos]], 0.1)
    F = cb.F
    (g_sub,) = channel_grad(sub.Xp, sub.idx, np.ascontiguousarray(cb.W[c]), cb.cbias(c), cb.pc, cb.s, cb.Hq, cb.Wq,
                            np.ascontiguousarray(sub.R @ cb.V[:, c * F:(c + 1) * F]))
    want = 2.0 * g_sub + cb.ridge * cb._u(c)
    du_all, _, _, _ = cb.direction(c, pos, mu=1e6)
    du_cur, _, _, pred = cb.direction(c, pos, mu=1e6, gradient="curvature")
    assert pred < 0
    # with a damping that dominates, du is minus the (readout-projected) gradient over a constant
    cos = du_cur @ -want / np.linalg.norm(du_cur) / np.linalg.norm(want)
    assert cos > 0.999
    assert not np.allclose(du_all, du_cur)
    t, before, after = cb.line_step(c, *cb.direction(c, pos, gradient="curvature")[:3])
    assert after <= before


@pytest.mark.parametrize("name", list(MODELS))
def test_whole_network_line_search_equals_generic_jets_and_brute_force(name, rng):
    model = MODELS[name].copy()
    X, _, Y = data_for(model, n=25)
    ridge = 0.1
    cb = ChannelBlocks(model, X, Y, ridge)
    cb.solve_readout()
    dW = rng.normal(size=cb.W.shape) * 0.2
    dcb = rng.normal(size=cb.C) * 0.1 if cb.has_cbias else np.zeros(cb.C)
    dV = rng.normal(size=cb.V.shape) * 0.1
    db = rng.normal(size=cb.O) * 0.1 if cb.has_obias else np.zeros(cb.O)
    d = cb.flat(None, dW=dW, dcb=dcb, dV=dV, db=db)
    want = Restriction(model.copy(), X, Y, ridge=ridge).restrict(d)
    f = objective_along(model, X, Y, ridge, d)
    t, before, after = cb.line_all(dW, dcb, dV, db)
    assert np.isclose(before, np.polynomial.polynomial.polyval(0.0, want), rtol=1e-11)
    assert np.isclose(after, np.polynomial.polynomial.polyval(t, want), rtol=1e-10)
    grid = np.linspace(-abs(t) - 2, abs(t) + 2, 401)
    assert after <= min(f(g) for g in grid) + 1e-9 * abs(before)
    assert np.isclose(cb.value, f(t), rtol=1e-10) and after <= before


def test_line_minimum_is_the_global_minimum_or_no_step():
    for coeffs in ([5.0, -1.0, 0.5, -0.2, 0.05], [1.0, 0.0, 1.0], [2.0, 3.0, -7.0, 0.0, 1.0]):
        c = np.array(coeffs)
        t, value = line_minimum(c)
        grid = np.linspace(-20, 20, 400001)
        values = np.polynomial.polynomial.polyval(grid, c)
        assert value <= values.min() + 1e-9 and np.isclose(np.polynomial.polynomial.polyval(t, c), value)
    assert line_minimum(np.array([1.0, 0.0, 1.0])) == (0.0, 1.0)  # already at the minimum: no step
    assert line_minimum(np.array([1.0, np.nan, 1.0])) == (0.0, 1.0)


# --------------------------------------------------------------------------- rescale and the readout
def test_rescale_is_the_brute_force_minimiser_of_the_ridge_term_and_keeps_the_outputs():
    model = MODELS["nobias-nopool"].copy()  # a monomial activation (x^2), no biases
    X, _, Y = data_for(model, n=30)
    ridge = 0.3
    cb = ChannelBlocks(model, X, Y, ridge)
    cb.solve_readout()
    c, p, F = 1, 2, cb.F
    u = cb.W[c].copy()
    v = cb.V[:, c * F:(c + 1) * F].copy()
    # brute force: the ridge term of the scaled block over a fine grid of scales
    scales = np.exp(np.linspace(-3, 3, 60001))
    terms = scales ** 2 * np.sum(u * u) + scales ** (-2 * p) * np.sum(v * v)
    s_best = scales[np.argmin(terms)]
    out = model.forward(X)
    before = cb.value
    assert cb.rescale(c)
    s = float(np.sqrt(np.sum(cb.W[c] ** 2) / np.sum(u * u)))
    assert abs(np.log(s / s_best)) <= 1e-4
    np.testing.assert_allclose(model.forward(X), out, rtol=1e-10, atol=1e-12)  # the same network
    assert cb.value < before
    assert np.isclose(cb.value, ChannelBlocks(model.copy(), X, Y, ridge).value, rtol=1e-10)
    assert not cb.rescale(c)  # at the optimum already


def test_readout_solve_equals_closed_form_least_squares():
    model = MODELS["poly"].copy()
    X, _, Y = data_for(model, n=40)
    cb = ChannelBlocks(model, X, Y, 0.3)
    cb.gram_rows = 16  # several row blocks of the Gram matrix
    calls = []
    cb.progress = lambda blocks: calls.append(blocks.ready)
    cb.solve_readout()
    assert calls == [True, True]
    H = layer_features(model, X).reshape(len(X), -1)
    A = np.hstack([H, np.ones((len(X), 1))])
    want = np.linalg.solve(A.T @ A + 0.3 * np.eye(A.shape[1]), A.T @ Y)
    np.testing.assert_allclose(model.layers[-1].params["weight"], want[:-1].T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.layers[-1].params["bias"], want[-1], rtol=1e-8, atol=1e-10)
    assert np.isclose(cb.value, ChannelBlocks(model.copy(), X, Y, 0.3).value, rtol=1e-10)


def test_growing_the_samples_equals_starting_there():
    model = MODELS["same-relu-a"].copy()
    X, _, Y = data_for(model, n=50)
    perm = np.random.default_rng(1).permutation(50)
    cb = ChannelBlocks(model, X, Y, 0.5, idx=perm[:12])
    assert np.isclose(cb.ridge, 0.5 * 12 / 50)
    cb.grow(perm[:31])
    fresh = ChannelBlocks(model.copy(), X, Y, 0.5, idx=perm[:31])
    np.testing.assert_allclose(cb.H, fresh.H, rtol=1e-12, atol=1e-13)
    assert np.isclose(cb.value, fresh.value, rtol=1e-12)
    with pytest.raises(SolverError, match="current samples"):
        cb.grow(perm[1:40])


# --------------------------------------------------------------------------- the solver
class TracedDriverSolver(CoordinateSolver):
    """Records the stage objective's parts (SSE, ||theta||^2, samples) before and after every block step."""

    def _setup(self, model, data, rng):
        super()._setup(model, data, rng)
        self.trace = []
        driver = self.channels_
        make = driver.make_blocks

        def traced_blocks(idx):
            cb = make(idx)
            for name in ("channel_step", "solve_readout", "line_all"):
                inner = getattr(cb, name)

                def wrapped(*a, _inner=inner, **k):
                    before = (cb.sse, cb.sqnorm, cb.n)
                    out = _inner(*a, **k)
                    self.trace.append((before, (cb.sse, cb.sqnorm, cb.n), cb.ridge))
                    return out

                setattr(cb, name, wrapped)
            return cb

        driver.make_blocks = traced_blocks


@pytest.mark.parametrize("options", [
    dict(ridge=0.5, sample_start=50, stage_sweeps=2, grow_tol=0.0),
    dict(ridge="auto", sample_start=60, ridge_grid=(0.1, 1.0, 10.0), order="random", stage_sweeps=1),
    dict(ridge=0.2, sample_start=None, extrapolate=True, curvature_samples=None),
])
def test_no_block_step_raises_its_objective(options):
    model = MODELS["poly"].copy()
    data = toy_dataset(model, n=300)
    s = TracedDriverSolver(**options).fit(model, data, steps=6, quiet=True)
    assert s.trace
    for (sse0, sq0, n0), (sse1, sq1, n1), ridge in s.trace:
        # the objective of the step's samples at the ridge after it (a readout solve may choose the ridge first)
        before, after = sse0 + ridge * sq0, sse1 + ridge * sq1
        assert n0 == n1 and after <= before * (1 + 1e-12) + 1e-12
    sizes = [r["samples"] for r in s.history_.records if "samples" in r]
    assert sizes == sorted(sizes) and sizes[-1] == 300  # grows to every sample
    # the last record's objective is the full objective, by a fresh forward pass at the ridge in use
    fresh = Restriction(model, data.x_train, data.one_hot("train"), ridge=s.ridge_).value / 300
    assert np.isclose(fresh, s.history_.final["loss"], rtol=1e-9)


def test_dispatch_picks_channel_blocks_for_poly_shaped_networks_only():
    def driver(model, **options):
        s = CoordinateSolver(**options)
        s.fit(model, toy_dataset(model, n=30), steps=0, quiet=True)
        return s.channels_

    for name, model in MODELS.items():
        assert driver(model.copy()) is not None, name
        assert driver(model.copy(), blocks="coordinate") is None
        assert driver(model.copy(), fused=False) is None
    others = {"poly2": models.get("poly2", input_shape=(1, 8, 8), channels=2, channels2=2, kernel=2, num_classes=2),
              "seed": models.get("seed", input_shape=(1, 5, 5), num_classes=2),
              "mlp": models.get("mlp", input_shape=(1, 3, 3), hidden=2, num_classes=2),
              "conv-no-poly": Sequential(Conv2d(1, 2, 2), AvgPool2d(2), Flatten(), Linear(8, 2), input_shape=(1, 5, 5)),
              "poly-not-last": Sequential(Conv2d(1, 1, 2), Square(), Flatten(), Linear(16, 3), Square(), Linear(3, 2),
                                          input_shape=(1, 5, 5))}
    for name, model in others.items():
        assert channel_chain(model) is None, name
        assert driver(model.copy()) is None, name
        with pytest.raises(SolverError, match="blocks='channel' needs"):
            driver(model.copy(), blocks="channel")


def test_interim_records_within_sweeps_and_the_floor():
    model = MODELS["poly"].copy()
    data = toy_dataset(model, n=120)
    s = CoordinateSolver(ridge=0.5, sample_start=None)
    s.record_every = 0.0  # a record after every block
    s.fit(model, data, steps=2, quiet=True)
    recs = s.history_.records
    partial = [r for r in recs if r.get("partial")]
    assert len(partial) >= 2 * model.layers[0].out_channels
    assert [r["step"] for r in recs if not r.get("partial")] == [0, 1, 2]
    times = [r["time"] for r in recs]
    assert times == sorted(times)
    losses = [r["loss"] for r in recs if r["step"] >= 1]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(losses, losses[1:]))
    # the floor: filters stay at their init, the readout is the closed-form ridge solution on every sample
    model = MODELS["poly"].copy()
    conv_before = model.layers[0].params["weight"].copy()
    s = solvers.get("coordinate")(ridge=1.0, layers="linear0", rescale=False).fit(model, data, steps=1, quiet=True)
    np.testing.assert_array_equal(model.layers[0].params["weight"], conv_before)
    assert s.history_.final["samples"] == 120
    H = layer_features(model, data.x_train).reshape(120, -1)
    A = np.hstack([H, np.ones((120, 1))])
    want = np.linalg.solve(A.T @ A + np.eye(A.shape[1]), A.T @ data.one_hot("train"))
    np.testing.assert_allclose(model.layers[-1].params["weight"], want[:-1].T, rtol=1e-8, atol=1e-10)


def test_ridge_auto_chooses_on_held_out_samples():
    model = MODELS["poly"].copy()
    data = toy_dataset(model, n=400)
    grid = (0.01, 1.0, 100.0)
    s = CoordinateSolver(ridge_grid=grid, sample_start=80, stage_sweeps=1).fit(model, data, steps=5, quiet=True)
    driver = s.channels_
    choices = driver.ridge_selection
    assert [c["samples"] for c in choices] == [80, 160, 400]  # every stage; the last adds the held-out samples
    assert s.history_.final["samples"] == 400 and s.ridge_ == choices[-1]["chosen"]
    perm = driver.perm
    val = np.sort(perm[360:])
    for choice in choices:
        assert choice["validation_samples"] == 40 and choice["ridges"] == list(grid)
        assert choice["chosen"] == grid[int(np.argmin(choice["val_sse"]))]
    # oracle for the last choice: refit the readout on the same features for each candidate by numpy least squares
    s2 = CoordinateSolver(ridge_grid=grid, sample_start=80, stage_sweeps=1)
    m2 = MODELS["poly"].copy()
    s2.fit(m2, data, steps=1, quiet=True)  # stage 1, then the move to 160 samples and its choice
    first = s2.channels_.ridge_selection[-1]
    H = layer_features(m2, data.x_train).reshape(400, -1)
    A = np.hstack([H, np.ones((400, 1))])
    fit = perm[:160]
    Y = data.one_hot("train")
    for lam, got in zip(grid, first["val_sse"]):
        Wt = np.linalg.solve(A[fit].T @ A[fit] + lam * 160 / 400 * np.eye(A.shape[1]), A[fit].T @ Y[fit])
        assert np.isclose(got, np.sum((A[val] @ Wt - Y[val]) ** 2), rtol=1e-4)
    # without filter training (the floor) the initial features choose it, then every sample is fitted
    s = CoordinateSolver(ridge_grid=grid, layers="linear0").fit(MODELS["poly"].copy(), data, steps=1, quiet=True)
    assert len(s.channels_.ridge_selection) == 1 and s.history_.final["samples"] == 400


def test_certificates_of_every_step_verify(tmp_path):
    model = MODELS["cubic-pool3"].copy()
    data = toy_dataset(model, n=90)
    s = CoordinateSolver(ridge=0.3, sample_start=30, stage_sweeps=1, extrapolate=True)
    s.fit(model, data, steps=4, quiet=True, certificates="all")
    certs = s.certificates_
    kinds = {row[1] for row in certs.rows}
    assert len(certs) > 4 * model.layers[0].out_channels and kinds == {1, 2}  # lines and blocks
    assert any(row[9] >= 0 for row in certs.rows)  # steps on a subset of the samples say which
    start = MODELS["cubic-pool3"].copy()
    report = verify_records(certs, start, data.x_train, data.one_hot("train"))
    assert report.ok, report.violations[:3]
    assert report.evaluated == len(certs)


def test_resume_continues_a_channel_run(tmp_path):
    model = MODELS["poly"].copy()
    data = toy_dataset(model, n=120)
    opts = dict(ridge=0.5, sample_start=40, stage_sweeps=1)
    a = model.copy()
    solvers.get("coordinate")(**opts).fit(a, data, steps=4, quiet=True)
    b = model.copy()
    solvers.get("coordinate")(**opts).fit(b, data, steps=2, quiet=True, checkpoint_dir=tmp_path)
    solvers.get("coordinate")(**opts).fit(b, data, steps=4, quiet=True, checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_allclose(b.get_flat(), a.get_flat(), rtol=1e-8, atol=1e-10)


def test_bad_channel_options_are_clear_errors():
    model = MODELS["poly"].copy()
    data = toy_dataset(model, n=30)
    for bad, match in ((dict(sample_growth=1.0), "sample_growth"), (dict(blocks="rows"), "blocks"),
                       (dict(ridge_grid=()), "ridge_grid"), (dict(full_by=2), "full_by")):
        with pytest.raises(SolverError, match=match):
            CoordinateSolver(**bad).fit(model.copy(), data, steps=1, quiet=True)


def test_docstring_examples_run():
    import doctest

    import symnet.solvers.channel_blocks as module

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
