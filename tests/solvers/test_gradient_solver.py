"""Tests of the gradient-descent backends (solvers.gradient) on small networks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import symnet.solvers as solvers
from symnet.solvers import gradient, optim
from symnet.solvers.gradient import GradientSolver
from symnet.core import datasets
from symnet.core.model import presets as models
from symnet.core.datasets import Dataset
from symnet.core.errors import DataError, DivergenceError, SolverError
from test_optim import BASE, CUSTOM, EVAL_REFERENCES, REFERENCES, UNSCHEDULED, ref_schedulefree

NAMES = list(optim.OPTIMIZERS)


def small_problem(n=6, seed=0):
    """A 3-input, 2-hidden, 2-class polynomial MLP and random data for it."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = rng.integers(0, 2, n)
    data = Dataset("random", X, y, X[:2], y[:2], 2)
    return models.get("mlp", input_dim=3, hidden=2, num_classes=2, seed=1), data


def solver_options(name, variant="custom"):
    """The test_optim hyper-parameters under the solver's option names."""
    kw = dict(BASE[name], **(CUSTOM.get(name, {}) if variant == "custom" else {}))
    kw["lr"] = kw.pop("learning_rate")
    return kw


def record_params():
    seen = []

    def callback(record, solver):
        seen.append(solver.model_.get_flat())

    return seen, callback


def test_every_optimizer_is_registered_with_its_defaults():
    for name in NAMES:
        cls = solvers.get(name)
        assert issubclass(cls, GradientSolver) and cls.name == name and cls.step_unit == "epoch"
        table = optim.OPTIMIZERS[name].defaults
        assert cls.defaults["lr"] == table["learning_rate"]
        for key, value in table.items():
            if key != "learning_rate":
                assert cls.defaults[key] == value
        assert cls.defaults["batch_size"] == 128 and cls.defaults["ridge"] == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_reduces_the_loss(name):
    data = datasets.xor(8)
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    s = solvers.get(name)(batch_size=2, ridge=1e-4).fit(model, data, steps=10, quiet=True)
    losses = s.history_.column("loss")
    assert len(losses) == 11 and np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert np.all(np.isfinite(model.get_flat()))


def halves_problem(n):
    """A tiny conv network and images labelled by which half is brighter."""
    rng = np.random.default_rng(0)
    model = models.get("poly", input_shape=(1, 6, 6), channels=2, kernel=3, num_classes=2, seed=4)
    X = rng.random((n, 1, 6, 6))
    y = (X[:, 0, :3].mean(axis=(1, 2)) > X[:, 0, 3:].mean(axis=(1, 2))).astype(int)
    return model, Dataset("halves", X, y, X[:4], y[:4], 2)


def test_conv_network_trains():
    model, data = halves_problem(16)
    s = solvers.get("adam")(lr=0.01, batch_size=4).fit(model, data, steps=8, quiet=True)
    assert s.history_.final["loss"] < s.history_[0]["loss"]


@pytest.mark.parametrize("name", NAMES)
def test_five_full_batch_steps_match_the_published_formulas(name):
    model, data = small_problem()
    ridge = 0.05
    X, Y, N = data.x_train, data.one_hot("train"), len(data.x_train)
    probe = model.copy()

    def grad(theta):  # gradient of the mean-per-sample objective
        probe.set_flat(np.array(theta))
        return list(probe.loss_and_grad(X, Y, ridge)[1] / N)

    x0 = list(model.get_flat())
    opts = solver_options(name)
    hp = dict(optim.OPTIMIZERS[name].defaults, **{("learning_rate" if k == "lr" else k): v for k, v in opts.items()})
    # the parameters a solver reports are its model's (schedule-free AdamW's average x, not the y it trains at)
    ref = np.array(EVAL_REFERENCES.get(name, REFERENCES[name])(grad, lambda t: hp["learning_rate"], hp, x0=x0,
                                                               steps=5))
    seen, callback = record_params()
    s = solvers.get(name)(ridge=ridge, dtype="float64", **opts).fit(model, data, steps=5, quiet=True,
                                                                     callbacks=[callback])
    assert np.ptp(ref[:, 0]) > 1e-6  # the iterates move
    np.testing.assert_allclose(np.array(seen), ref[1:], rtol=1e-12, atol=1e-12)
    for k, theta in enumerate(ref):
        probe.set_flat(theta)
        expected = (float(np.sum((probe.forward(X) - Y) ** 2)) + ridge * float(theta @ theta)) / N
        assert s.history_[k]["loss"] == pytest.approx(expected, rel=1e-12)
    assert s.history_.final["passes"] == 5.0 and s.history_.final["updates"] == 5 * model.num_params


def test_minibatch_epoch_is_shuffled_sgd_with_scaled_ridge():
    model, data = small_problem(n=8)
    X, Y, N = data.x_train, data.one_hot("train"), 8
    lr, ridge, B, seed = 0.1, 0.03, 3, 7
    probe = model.copy()
    theta = model.get_flat()
    rng = np.random.default_rng(seed)
    for _ in range(2):
        order = rng.permutation(N)
        for start in range(0, N, B):
            idx = order[start:start + B]
            probe.set_flat(theta)
            _, g = probe.loss_and_grad(X[idx], Y[idx], ridge * len(idx) / N)
            theta = theta - lr * g / len(idx)
    s = solvers.get("sgd")(lr=lr, ridge=ridge, batch_size=B, seed=seed, dtype="float64").fit(model, data, steps=2,
                                                                                             quiet=True)
    np.testing.assert_allclose(model.get_flat(), theta, rtol=1e-12, atol=1e-14)
    assert s.history_.final["updates"] == 2 * 3 * model.num_params
    # batch_loss is the mean of the per-batch objectives (ridge share included) over the epoch
    assert math.isfinite(s.history_.final["batch_loss"])


def test_large_batches_are_differentiated_in_slices(monkeypatch):
    def run():
        model, data = small_problem(n=8)
        solvers.get("adam")(lr=0.05, ridge=0.1, dtype="float64").fit(model, data, steps=3, quiet=True)
        return model.get_flat()

    whole = run()
    monkeypatch.setattr(gradient, "GRAD_CHUNK", 3)  # 8 samples -> slices of 3, 3, 2
    sliced = run()
    np.testing.assert_allclose(sliced, whole, rtol=1e-12, atol=1e-14)


def test_minibatches_are_deterministic_under_the_seed():
    def run(seed):
        model, data = small_problem(n=8)
        s = solvers.get("adam")(lr=0.05, batch_size=3, seed=seed).fit(model, data, steps=4, quiet=True)
        return model.get_flat(), s.history_.column("loss")

    a, la = run(3)
    b, lb = run(3)
    c, _ = run(4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.allclose(a, c)


def test_schedule_drives_the_rate():
    model, data = small_problem()
    s = solvers.get("sgd")(lr=0.2, schedule="inverse-time", decay=0.5).fit(model, data, steps=3, quiet=True)
    assert [r["lr"] for r in s.history_.records[1:]] == pytest.approx([0.2, 0.2 / 1.5, 0.1], rel=1e-15)
    model, data = small_problem()
    s = solvers.get("momentum")(lr=0.2, schedule="cosine", final_lr=0.02).fit(model, data, steps=4, quiet=True)
    expected = [0.02 + 0.09 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    assert [r["lr"] for r in s.history_.records[1:]] == pytest.approx(expected, rel=1e-14)
    model, data = small_problem()
    s = solvers.get("sgd-hd")(lr=0.01, beta=0.01).fit(model, data, steps=3, quiet=True)
    assert s.history_.final["lr"] != 0.01


def test_divergent_rate_raises_and_keeps_finite_parameters(tmp_path):
    data = datasets.xor(8)
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    seen, callback = record_params()
    with pytest.raises(DivergenceError, match="diverged at step 3"):
        solvers.get("sgd")(lr=1.0).fit(model, data, steps=50, quiet=True, callbacks=[callback],
                                      checkpoint_dir=tmp_path)
    assert len(seen) == 2  # two epochs went through, the third exploded
    kept = model.get_flat()
    assert np.all(np.isfinite(kept))
    np.testing.assert_array_equal(kept, seen[-1])
    np.testing.assert_array_equal(np.load(tmp_path / "checkpoint.npz")["params"], seen[-1])
    # an explosion on the very first epoch keeps the initial parameters
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    start = model.get_flat()
    with pytest.raises(DivergenceError, match="step 1"):
        solvers.get("adam")(lr=1e6).fit(model, data, steps=5, quiet=True)
    np.testing.assert_array_equal(model.get_flat(), start)


@pytest.mark.parametrize("bad", ["exploded loss", "nan gradient"])
def test_a_bad_batch_stops_the_epoch(bad):
    model, data = small_problem(n=8)
    start = model.get_flat()
    real = model.loss_and_grad
    calls = []

    def flaky(X, Y, ridge, **kw):  # the second batch of the epoch goes wrong, the end-of-epoch loss would not
        loss, grad = real(X, Y, ridge, **kw)
        calls.append(len(X))
        if len(calls) == 2:
            if bad == "exploded loss":
                return 1e7 * len(X), grad
            return loss, np.full_like(grad, np.nan)
        return loss, grad

    model.loss_and_grad = flaky
    with pytest.raises(DivergenceError, match="step 1"):
        solvers.get("sgd")(lr=0.01, batch_size=3).fit(model, data, steps=2, quiet=True)
    assert len(calls) == 2  # nothing ran after the bad batch
    np.testing.assert_array_equal(model.get_flat(), start)


@pytest.mark.parametrize("name", ["namsgrad", "adam-hd", "momentum", "adamw-schedulefree"])
def test_resume_from_checkpoint_equals_an_uninterrupted_run(name, tmp_path):
    opts = dict(solver_options(name), batch_size=3, ridge=0.01)
    if name == "adamw-schedulefree":
        opts.update(warmup=0.3, weight_decay=0.01)  # the checkpoint keeps y; the warm-up's horizon is steps=6
    elif name not in UNSCHEDULED:
        opts.update(schedule="cosine", final_lr=0.001)  # its horizon comes from steps=6 in both runs
    model, data = small_problem(n=8)
    whole = solvers.get(name)(**opts).fit(model, data, steps=6, quiet=True)

    interrupted, _ = small_problem(n=8)
    solvers.get(name)(**opts).fit(interrupted, data, steps=6, quiet=True, checkpoint_dir=tmp_path,
                                  callbacks=[lambda rec, s: rec["step"] < 3])  # stop after epoch 3
    fresh = models.get("mlp", input_dim=3, hidden=2, num_classes=2, seed=99)  # weights come from the file
    resumed = solvers.get(name)(**opts).fit(fresh, data, steps=6, quiet=True, checkpoint_dir=tmp_path,
                                           resume=True)
    assert not np.array_equal(interrupted.get_flat(), model.get_flat())
    np.testing.assert_array_equal(fresh.get_flat(), model.get_flat())
    np.testing.assert_array_equal(resumed.history_.column("loss"), whole.history_.column("loss"))
    np.testing.assert_array_equal(resumed.history_.column("lr"), whole.history_.column("lr"))
    assert resumed.history_.final["step"] == 6


def test_bad_options_raise_clear_errors():
    model, data = small_problem()
    with pytest.raises(SolverError, match="batch_size"):
        solvers.get("sgd")(batch_size=0).fit(model, data, steps=1, quiet=True)
    with pytest.raises(SolverError, match="lr"):
        solvers.get("adam")(lr=-1.0).fit(model, data, steps=1, quiet=True)
    with pytest.raises(SolverError, match="option schedule must be one of 'constant'"):
        solvers.get("sgd")(schedule="linear").fit(model, data, steps=1, quiet=True)
    with pytest.raises(SolverError, match="schedule"):
        solvers.get("sgd-hd")(schedule="inverse-time").fit(model, data, steps=1, quiet=True)
    with pytest.raises(SolverError, match="no option 'momentum'"):
        solvers.get("adam")(momentum=0.9).fit(model, data, steps=1, quiet=True)
    with pytest.raises(DataError, match="shape"):
        solvers.get("sgd")().fit(models.get("mlp", input_dim=2, hidden=2, num_classes=2), data, steps=1,
                                 quiet=True)
    with pytest.raises(SolverError, match="option schedule must be one of"):
        solvers.get("sgd")(schedule=lambda t: 0.1).fit(model, data, steps=1, quiet=True)
    with pytest.raises(SolverError, match="cosine"):
        solvers.get("sgd")(schedule="cosine").fit(model, data, time_limit=1.0, quiet=True)


def test_float32_training_follows_float64_and_keeps_float64_state():
    model, data = halves_problem(24)
    runs = {}
    for dtype in ("float32", "float64"):
        m = model.copy()
        s = solvers.get("adam")(lr=0.01, batch_size=8, dtype=dtype).fit(m, data, steps=3, quiet=True)
        assert m.get_flat().dtype == np.float64
        runs[dtype] = (m.get_flat(), s.history_.column("loss"))
    np.testing.assert_allclose(runs["float32"][0], runs["float64"][0], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(runs["float32"][1], runs["float64"][1], rtol=1e-4)
    with pytest.raises(SolverError, match="dtype"):
        solvers.get("adam")(dtype="float16").fit(model.copy(), data, steps=1, quiet=True)


# --------------------------------------------------------------------------- schedules with a warm-up
def rates(solver):
    return [r["lr"] for r in solver.history_.records[1:]]


def test_warmup_cosine_and_one_cycle_drive_the_rate():
    # full batch: one update per epoch, so 10 epochs are a horizon of 10 updates
    model, data = small_problem()
    s = solvers.get("adam")(lr=0.1, batch_size=None, schedule="warmup-cosine", warmup=0.3, final_lr=0.01).fit(
        model, data, steps=10, quiet=True)
    # warmup = 0.3 of 10 updates: 0.1 (t + 1) / 3 for t < 3, then 0.01 + 0.045 (1 + cos(pi (t - 3) / 7))
    expected = [0.1 * (t + 1) / 3 for t in range(3)] + [0.01 + 0.045 * (1 + math.cos(math.pi * (t - 3) / 7))
                                                       for t in range(3, 10)]
    assert rates(s) == pytest.approx(expected, rel=1e-14)
    model, data = small_problem()
    s = solvers.get("sgd")(lr=0.5, batch_size=None, schedule="one-cycle").fit(model, data, steps=10, quiet=True)
    # PyTorch's OneCycleLR defaults: pct_start 0.3 (rise over t <= 2), div_factor 25, final_div_factor 1e4
    lo, hi, end = 0.5 / 25, 0.5, 0.5 / 25 / 1e4
    expected = [lo, (lo + hi) / 2, hi] + [end + (hi - end) * (1 + math.cos(math.pi * (t - 2) / 7)) / 2
                                          for t in range(3, 10)]
    assert rates(s) == pytest.approx(expected, rel=1e-13)
    # the horizon is epochs x batches: 8 samples in batches of 3 are 3 updates an epoch, 4 epochs 12 updates
    model, data = small_problem(n=8)
    s = solvers.get("momentum")(lr=0.1, batch_size=3, schedule="warmup-cosine", warmup=0.25).fit(
        model, data, steps=4, quiet=True)
    sched = optim.warmup_cosine_schedule(0.1, 12, warmup_steps=3)
    assert rates(s) == pytest.approx([sched(t) for t in (2, 5, 8, 11)], rel=1e-14)
    # the default warm-up is 5% (of 12 updates: round(0.6) = 1), and schedule_steps sets the horizon
    model, data = small_problem(n=8)
    s = solvers.get("nadamw")(lr=0.1, batch_size=3, schedule="warmup-cosine", schedule_steps=40).fit(
        model, data, steps=4, quiet=True)
    sched = optim.warmup_cosine_schedule(0.1, 40, warmup_steps=2)
    assert rates(s) == pytest.approx([sched(t) for t in (2, 5, 8, 11)], rel=1e-14)
    model, data = small_problem(n=8)
    s = solvers.get("adamw")(lr=0.1, batch_size=3, schedule="one-cycle", warmup=0.5, div_factor=4.0,
                             final_div_factor=10.0).fit(model, data, steps=4, quiet=True)
    sched = optim.one_cycle_schedule(0.1, 12, pct_start=0.5, div_factor=4.0, final_div_factor=10.0)
    assert rates(s) == pytest.approx([sched(t) for t in (2, 5, 8, 11)], rel=1e-14)


def test_schedules_with_a_warm_up_need_a_horizon_and_warmup_needs_such_a_schedule():
    model, data = small_problem()
    for sched in ("warmup-cosine", "one-cycle"):
        with pytest.raises(SolverError, match=f"the {sched} schedule needs a horizon: pass steps=.* schedule_steps"):
            solvers.get("adam")(schedule=sched).fit(model.copy(), data, time_limit=1.0, quiet=True)
        s = solvers.get("adam")(schedule=sched, schedule_steps=50).fit(model.copy(), data, time_limit=0.2,
                                                                      quiet=True)
        assert len(s.history_) >= 1
    for sched in (None, "cosine", "constant"):
        with pytest.raises(SolverError, match="option warmup applies to the schedules 'warmup-cosine' and "
                                              "'one-cycle'"):
            solvers.get("sgd")(schedule=sched, warmup=0.1).fit(model.copy(), data, steps=2, quiet=True)
    with pytest.raises(SolverError, match="option warmup must be a number >= 0 and < 1"):
        solvers.get("sgd")(schedule="warmup-cosine", warmup=1.0).fit(model.copy(), data, steps=2, quiet=True)
    with pytest.raises(SolverError, match="option schedule must be one of .*'warmup-cosine', 'one-cycle'"):
        solvers.get("sgd")(schedule="onecycle").fit(model.copy(), data, steps=2, quiet=True)


# --------------------------------------------------------------------------- AdamW, NAdamW, schedule-free
def test_adamw_and_nadamw_decouple_by_default_and_adam_is_unchanged():
    for name in ("adamw", "nadamw", "adamw-schedulefree"):
        assert solvers.get(name).defaults["decoupled"] is True
    assert solvers.get("adamw").defaults["weight_decay"] == solvers.get("nadamw").defaults["weight_decay"] == 1e-2
    assert solvers.get("adamw-schedulefree").defaults["weight_decay"] == 0.0
    assert solvers.get("adam").defaults["weight_decay"] == 0.0 and solvers.get("adam").defaults["decoupled"] is False
    # adamw is adam with decoupled decay, step for step
    runs = []
    for name, opts in (("adamw", {}), ("adam", dict(weight_decay=1e-2, decoupled=True))):
        model, data = small_problem(n=8)
        solvers.get(name)(lr=0.05, batch_size=3, **opts).fit(model, data, steps=3, quiet=True)
        runs.append(model.get_flat())
    np.testing.assert_array_equal(*runs)
    model, data = small_problem()
    with pytest.raises(SolverError, match="decouples its weight decay"):
        solvers.get("adamw")(decoupled=False).fit(model, data, steps=1, quiet=True)


def test_schedule_free_trains_at_y_and_reports_x_with_its_warm_up():
    model, data = small_problem()
    X, Y, N = data.x_train, data.one_hot("train"), len(data.x_train)
    ridge, steps, warmup = 0.05, 8, 0.3
    probe = model.copy()

    def grad(theta):
        probe.set_flat(np.array(theta))
        return list(probe.loss_and_grad(X, Y, ridge)[1] / N)

    opts = dict(lr=0.1, b1=0.8, r=0.5, weight_decay=0.02)
    hp = dict(optim.OPTIMIZERS["adamw-schedulefree"].defaults, learning_rate=0.1, b1=0.8, r=0.5,
              weight_decay=0.02, warmup_steps=2)  # round(0.3 x 8 full-batch updates) = 2
    ref_y, ref_x = ref_schedulefree(grad, lambda t: 0.1, hp, x0=list(model.get_flat()), steps=steps, both=True)
    seen, callback = record_params()
    s = solvers.get("adamw-schedulefree")(ridge=ridge, dtype="float64", batch_size=None, warmup=warmup, **opts).fit(
        model, data, steps=steps, quiet=True, callbacks=[callback])
    np.testing.assert_allclose(np.array(seen), np.array(ref_x)[1:], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(optim.train_params(s._opt_state), ref_y[-1], rtol=1e-12, atol=1e-12)
    assert not np.allclose(ref_x[-1], ref_y[-1], rtol=1e-6)
    np.testing.assert_array_equal(model.get_flat(), optim.eval_params(s._opt_state))
    for k, theta in enumerate(ref_x):  # the records are the objective at x
        probe.set_flat(np.array(theta))
        expected = (float(np.sum((probe.forward(X) - Y) ** 2)) + ridge * float(np.dot(theta, theta))) / N
        assert s.history_[k]["loss"] == pytest.approx(expected, rel=1e-12)
    assert rates(s) == pytest.approx([0.05, 0.1] + [0.1] * (steps - 2), rel=1e-15)


def test_schedule_free_interim_records_are_at_x_and_do_not_disturb_training():
    def fit(record_every):
        model, data = small_problem(n=8)
        s = solvers.get("adamw-schedulefree")(lr=0.05, batch_size=3, dtype="float64")
        s.record_every = record_every
        return s.fit(model, data, steps=3, quiet=True), model

    plain, m1 = fit(10.0)
    busy, m2 = fit(0.0)  # an interim record after every batch
    np.testing.assert_array_equal(m1.get_flat(), m2.get_flat())
    partial = [r for r in busy.history_.records if r.get("partial")]
    full = [r for r in busy.history_.records if not r.get("partial")]
    assert len(partial) == 9 and len(full) == 4
    # the interim record after an epoch's last batch is at the same point as the epoch's record: x
    for step in (1, 2, 3):
        last = [r for r in partial if r["step"] == step][-1]
        assert last["loss"] == pytest.approx(full[step]["loss"], rel=1e-12)


def test_schedule_free_options_and_refusals():
    model, data = small_problem()
    with pytest.raises(SolverError, match="needs no schedule"):
        solvers.get("adamw-schedulefree")(schedule="cosine").fit(model.copy(), data, steps=2, quiet=True)
    with pytest.raises(SolverError, match="adamw-schedulefree'.s warm-up .* needs a horizon: pass steps=.*"
                                          "schedule_steps"):
        solvers.get("adamw-schedulefree")(warmup=0.1).fit(model.copy(), data, time_limit=1.0, quiet=True)
    # no warm-up needs no horizon: a fit with only a time limit runs
    s = solvers.get("adamw-schedulefree")().fit(model.copy(), data, time_limit=0.2, quiet=True)
    assert len(s.history_) >= 1
    with pytest.raises(SolverError, match="decouples"):
        solvers.get("adamw-schedulefree")(decoupled=False).fit(model.copy(), data, steps=1, quiet=True)
    assert "interpolation" in solvers.get("adamw-schedulefree").OPTIONS["b1"].help
