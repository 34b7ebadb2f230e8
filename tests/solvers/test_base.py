"""The shared training loop's clock: setup counts as training, evaluation does not; interim records."""

import numpy as np
import pytest

import symnet.solvers as solvers
from symnet.core.model import presets as models
from symnet.solvers.base import Solver
from symnet.core.run import RunSpec
from symnet.solvers.options import Option
from symnet.solvers.trainer import Trainer

from tiny_models import Clock, toy_data



class Sleepy(Solver):
    """Each phase takes a known time on the injected clock: setup 0.3 s, each unit of a step 0.05 s, each
    evaluation 0.2 s (the step's own, declared as such, and every record's)."""

    name = "sleepy"
    step_unit = "sweep"
    record_every = 0.12
    OPTIONS = {"units": Option(6, "int", low=1), "ridge": Option(0.0, "float", low=0.0),
               "cheap": Option(False, "bool")}

    def _setup(self, model, data, rng):
        self.clock.t += 0.3

    def _step(self):
        done = 0
        for _ in range(self.opts_["units"]):
            self.clock.t += 0.05
            done += 1
            if self.interim_due():
                self.record_interim(passes=done / self.opts_["units"], updates=done)
        cost = 0.001 if self.opts_["cheap"] else 0.2
        self.clock.t += cost  # the step's own evaluation, declared as such
        return {"loss": None, "updates": done, "passes": 1.0, "eval_seconds": cost}

    def predict(self, X):
        self.clock.t += 0.001 if self.opts_["cheap"] else 0.2  # evaluating a record
        return super().predict(X)


def sleepy_run(spec, **options):
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    s = Sleepy(**options)
    s.clock = Clock()
    Trainer(s, spec, clock=s.clock).run(model, toy_data(model, n=20))
    return s


def test_setup_counts_as_training_and_evaluation_does_not():
    s = sleepy_run(RunSpec(steps=2, quiet=True))
    full = [r for r in s.history_ if not r.get("partial")]
    assert [r["step"] for r in full] == [0, 1, 2]
    # training: 0.3 s of setup + 2 x 6 x 0.05 s of units; everything else is evaluation
    assert full[-1]["time"] == pytest.approx(0.3 + 0.6)
    assert full[-1]["wall"] > full[-1]["time"] + 2.0
    assert s.history_.meta["setup_seconds"] == pytest.approx(0.3)


def test_interim_records_inside_a_step_carry_the_work_so_far():
    s = sleepy_run(RunSpec(steps=2, quiet=True))
    partial = [r for r in s.history_ if r.get("partial")]
    assert partial and all(r["step"] in (1, 2) for r in partial)
    times = s.history_.column("time")
    assert np.all(np.diff(times) >= -1e-12)  # interim records interleave in training time (never back)
    for r in partial:  # the step's work so far, on top of the previous complete record
        assert 0 < r["passes"] - (r["step"] - 1) <= 1
    # each interim record's loss is the objective at the parameters it was taken at (a forward pass)
    assert all(np.isfinite(r["loss"]) for r in partial)


def test_a_time_limit_counts_training_seconds_only():
    s = sleepy_run(RunSpec(time=1.0, quiet=True), units=2)
    final = s.history_.final
    # 0.3 s of setup, then steps of 0.1 s of training each: the limit of 1 s of training would allow 7 steps,
    # but every step also spends 0.6 s evaluating, so the wall bound (the loop began at 0.7 s, after the first
    # record; 1.1 x 1 s + 2 s later is 3.8 s) ends the run first, after the step that began at 3.5 s
    assert (final["step"], final["time"], final["wall"]) == (5, pytest.approx(0.8), pytest.approx(4.2))
    # with cheap records the training clock decides: 7 steps of 0.1 s after 0.3 s of setup
    s = sleepy_run(RunSpec(time=1.0, quiet=True), units=2, cheap=True)
    assert (s.history_.final["step"], s.history_.final["time"]) == (7, pytest.approx(1.0))


def test_adam_writes_interim_records_within_an_epoch(monkeypatch):
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    data = toy_data(model, n=400)
    Adam = solvers.get("adam")
    monkeypatch.setattr(Adam, "record_every", 0.0)  # a record after every mini-batch
    s = Adam(batch_size=100, lr=1e-2).fit(model, data, steps=2, quiet=True)
    steps = [(r["step"], r.get("partial", 0), round(r["passes"], 6)) for r in s.history_]
    assert steps == [(0, 0, 0.0), (1, 1, 0.25), (1, 1, 0.5), (1, 1, 0.75), (1, 1, 1.0), (1, 0, 1.0),
                     (2, 1, 1.25), (2, 1, 1.5), (2, 1, 1.75), (2, 1, 2.0), (2, 0, 2.0)]
    # the epoch's record and the interim record after its last batch are the same parameters
    assert np.isclose(s.history_[4]["loss"], s.history_[5]["loss"], rtol=1e-12)
