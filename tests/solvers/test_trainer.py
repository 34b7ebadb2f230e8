"""The shared loop apart from the method: a Trainer on an injected clock (no wall time bounds)."""

import numpy as np
import pytest

from symnet.core.errors import DivergenceError, SolverError
from symnet.core.model import presets as models
from symnet.core.run import RunSpec
from symnet.solvers.base import Solver
from symnet.solvers.options import Option
from symnet.solvers.trainer import Trainer, differences

from tiny_models import Clock, toy_data



class Ticking(Solver):
    """Setup takes 0.5 s, a step 1 s (half of it in two units with an interim record), a record's evaluation 5 s."""

    name = "ticking"
    step_unit = "sweep"
    default_steps = 2
    record_every = 0.4
    OPTIONS = {"diverge_at": Option(None, "int", none=True), "ridge": Option(0.0, "float", low=0.0)}

    def _setup(self, model, data, rng):
        self.clock.t += 0.5
        self.steps_seen = 0

    def _step(self):
        self.steps_seen += 1
        for unit in (1, 2):
            self.clock.t += 0.5
            if self.interim_due():
                self.record_interim(passes=unit / 2, updates=unit)
        loss = np.inf if self.steps_seen == self.opts_["diverge_at"] else 1.0 / self.steps_seen
        return {"loss": loss, "updates": 2, "passes": 1.0}

    eval_seconds = 5.0

    def predict(self, X):
        self.clock.t += self.eval_seconds  # evaluation: never training time
        return super().predict(X)


def make(eval_seconds=5.0, **options):
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    solver = Ticking(**options)
    solver.clock = Clock()
    solver.eval_seconds = eval_seconds
    return solver, model, toy_data(model, n=20)


def test_records_count_training_seconds_only():
    solver, model, data = make()
    Trainer(solver, RunSpec(steps=2, quiet=True), clock=solver.clock).run(model, data)
    full = [r for r in solver.history_ if not r.get("partial")]
    assert [(r["step"], r["time"]) for r in full] == [(0, 0.0), (1, 1.5), (2, 2.5)]
    partial = [r for r in solver.history_ if r.get("partial")]
    assert [(r["step"], r["time"], r["passes"]) for r in partial] == [(1, 1.0, 0.5), (1, 1.5, 1.0),
                                                                      (2, 2.0, 1.5), (2, 2.5, 2.0)]
    assert solver.history_.meta["setup_seconds"] == 0.5


def test_the_time_limit_passes_on_the_training_clock():
    solver, model, data = make(eval_seconds=0.01)
    Trainer(solver, RunSpec(time=3.0, quiet=True), clock=solver.clock).run(model, data)
    # 0.5 s of setup and 1 s per step: the limit of 3 s passes after the third step; the evaluation of the
    # records is not counted
    assert solver.history_.final["step"] == 3 and solver.history_.final["time"] == 3.5
    assert solver.deadline.limit == 3.0 and solver.deadline.passed()
    assert solver.history_.final["wall"] > solver.history_.final["time"]  # both clocks in every record


def test_the_time_limit_also_bounds_the_wall_time():
    # records that cost 5 s each against steps of 1 s: the training clock alone would let the session run
    # for minutes of wall time; it ends once WALL_SLACK * T + WALL_OVERHEAD wall seconds have passed
    from symnet.solvers.trainer import WALL_OVERHEAD, WALL_SLACK

    solver, model, data = make(eval_seconds=5.0)
    Trainer(solver, RunSpec(time=3.0, quiet=True), clock=solver.clock).run(model, data)
    final = solver.history_.final
    # the loop began at 10.5 s (setup, then the initial record's two evaluations); its wall bound is
    # WALL_SLACK * 3 + WALL_OVERHEAD = 5.3 s later; step 1 (1 s of training, three records of 10 s) ends at
    # 41.5 s, past it, so the run ends there on 1.5 s of training
    assert WALL_SLACK * 3.0 + WALL_OVERHEAD == pytest.approx(5.3)
    assert (final["step"], final["time"], final["wall"]) == (1, 1.5, 41.5)


def test_no_budget_means_the_solver_default_steps():
    solver, model, data = make()
    Trainer(solver, RunSpec(quiet=True), clock=solver.clock).run(model, data)
    assert solver.history_.final["step"] == Ticking.default_steps


def test_a_callback_stops_the_loop():
    solver, model, data = make()
    seen = []
    Trainer(solver, RunSpec(steps=5, quiet=True), clock=solver.clock,
            callbacks=[lambda rec, s: seen.append(rec["step"]) or rec["step"] < 2]).run(model, data)
    assert seen == [1, 2] and solver.history_.final["step"] == 2


def test_divergence_keeps_the_last_finite_parameters():
    solver, model, data = make(diverge_at=2)
    before = model.get_flat().copy()
    with pytest.raises(DivergenceError, match="diverged at step 2"):
        Trainer(solver, RunSpec(steps=3, quiet=True), clock=solver.clock).run(model, data)
    np.testing.assert_array_equal(model.get_flat(), before)


def test_checkpoint_and_resume(tmp_path):
    solver, model, data = make()
    Trainer(solver, RunSpec(steps=1, out=tmp_path, quiet=True), clock=solver.clock).run(model, data)
    with pytest.raises(Exception, match="already holds a run"):
        Trainer(Ticking(), RunSpec(steps=1, out=tmp_path, quiet=True)).run(model, data)
    again, _, _ = make()
    Trainer(again, RunSpec(steps=3, out=tmp_path, resume=True, quiet=True), clock=again.clock).run(model, data)
    assert [r["step"] for r in again.history_ if not r.get("partial")] == [0, 1, 2, 3]
    other, _, _ = make(ridge=1.0)
    with pytest.raises(SolverError, match=r"options.ridge: 0.0 -> 1.0"):
        Trainer(other, RunSpec(steps=4, out=tmp_path, resume=True, quiet=True)).run(model, data)


def test_fit_is_a_thin_wrapper_over_the_trainer():
    solver, model, data = make()
    solver.fit(model, data, steps=1, quiet=True)
    assert solver.trainer_.spec == RunSpec(steps=1, quiet=True)
    with pytest.raises(SolverError, match="budget 'steps'"):
        solver.fit(model, data, steps=-1)


def test_differences_name_every_changed_leaf():
    assert differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": 4}) == [("a.c", 2, 3), ("d", None, 4)]
