"""The shared training loop's clock: setup counts as training, evaluation does not; interim records."""

import time

import numpy as np

import symnet.solvers as solvers
from symnet.core.model import presets as models
from symnet.solvers.base import Solver
from symnet.solvers.options import Option

from tiny_models import toy_data


class Sleepy(Solver):
    """Each phase sleeps a known time: setup 0.3 s, each unit of a step 0.05 s, each evaluation 0.2 s."""

    name = "sleepy"
    step_unit = "sweep"
    record_every = 0.12
    OPTIONS = {"units": Option(6, "int", low=1), "ridge": Option(0.0, "float", low=0.0)}

    def _setup(self, model, data, rng):
        time.sleep(0.3)

    def _step(self):
        done = 0
        for _ in range(self.opts_["units"]):
            time.sleep(0.05)
            done += 1
            if self._interim_due():
                self._interim(passes=done / self.opts_["units"], updates=done)
        t_eval = time.perf_counter()
        time.sleep(0.2)  # the step's own evaluation, declared as such
        return {"loss": None, "updates": done, "passes": 1.0, "eval_seconds": time.perf_counter() - t_eval}

    def predict(self, X):
        time.sleep(0.2)  # evaluating a record
        return super().predict(X)


def test_setup_counts_as_training_and_evaluation_does_not():
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    data = toy_data(model, n=20)
    t0 = time.perf_counter()
    s = Sleepy().fit(model, data, steps=2, quiet=True)
    wall = time.perf_counter() - t0
    full = [r for r in s.history_ if not r.get("partial")]
    assert [r["step"] for r in full] == [0, 1, 2]
    # training: 0.3 s of setup + 2 x 6 x 0.05 s of units; everything else (>= 2 s of sleeps) is evaluation
    assert 0.3 + 0.6 <= full[-1]["time"] < 0.3 + 0.6 + 0.25
    assert wall > full[-1]["time"] + 2.0
    assert s.history_.meta["setup_seconds"] >= 0.3


def test_interim_records_inside_a_step_carry_the_work_so_far():
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    data = toy_data(model, n=20)
    s = Sleepy().fit(model, data, steps=2, quiet=True)
    partial = [r for r in s.history_ if r.get("partial")]
    assert partial and all(r["step"] in (1, 2) for r in partial)
    times = s.history_.column("time")
    assert np.all(np.diff(times) > 0)  # interim records interleave in training time
    for r in partial:  # the step's work so far, on top of the previous complete record
        assert 0 < r["passes"] - (r["step"] - 1) <= 1
    # each interim record's loss is the objective at the parameters it was taken at (a forward pass)
    assert all(np.isfinite(r["loss"]) for r in partial)


def test_a_time_limit_counts_training_seconds_only():
    model = models.get("mlp", input_dim=2, hidden=2, num_classes=2, seed=0)
    data = toy_data(model, n=20)
    s = Sleepy(units=2).fit(model, data, time_limit=1.0, quiet=True)
    final = s.history_.final
    # 0.3 s of setup, then steps of 0.1 s of training each until the limit: about 7 steps although every
    # step also spends 0.4 s or more evaluating
    assert 6 <= final["step"] <= 8
    assert 1.0 <= final["time"] < 1.2


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
