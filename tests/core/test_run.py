"""RunSpec (one check of a run's budget and settings, one default rule) and Deadline (on an injected clock)."""

import dataclasses
import math

import pytest

from symnet.core.errors import SolverError
from symnet.core.run import DEFAULT_SECONDS, Deadline, RunSpec, default_budget


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


class Sweeper:
    name, step_unit, default_steps = "sweeper", "sweep", 4


class Closed(Sweeper):
    ends_by_itself = True


class Plain:
    name, step_unit = "plain", "epoch"  # no default_steps: the package's DEFAULT_STEPS


# --------------------------------------------------------------------------- RunSpec
@pytest.mark.parametrize("settings, needle", [
    ({"steps": -1}, "budget 'steps' must be a whole number >= 0"),
    ({"sweeps": 1.5}, "budget 'sweeps'"),
    ({"epochs": True}, "budget 'epochs'"),
    ({"time": 0}, "budget 'time'"),
    ({"time": float("nan")}, "positive number of seconds"),
    ({"time": "60"}, "positive number of seconds"),
    ({"seed": -2}, "seed must be a whole number >= 0"),
    ({"certificates": "some"}, "certificates must be"),
    ({"no_budget": "forever"}, "no_budget"),
])
def test_one_validator_with_one_line_messages(settings, needle):
    with pytest.raises(SolverError, match=needle) as info:
        RunSpec(**settings)
    assert "\n" not in str(info.value)


def test_a_run_spec_is_immutable_and_normalised():
    spec = RunSpec(steps=3.0, time=2, out="runs/x")
    assert (spec.steps, spec.time, str(spec.out)) == (3, 2.0, "runs/x")
    assert isinstance(spec.steps, int) and isinstance(spec.time, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.steps = 4
    assert spec.replace(steps=5).steps == 5 and spec.steps == 3
    with pytest.raises(SolverError):
        spec.replace(steps=-5)  # a copy is checked again


def test_parse_reads_seconds_and_budget_dicts():
    assert RunSpec.parse(300).time == 300.0
    assert RunSpec.parse({"sweeps": 2, "time": None}, seed=3) == RunSpec(sweeps=2, seed=3)
    assert RunSpec.parse(None).budget() == {}
    assert RunSpec.parse(RunSpec(steps=2), quiet=True) == RunSpec(steps=2, quiet=True)
    for bad in ("300", [300], {"hours": 1}, -1):
        with pytest.raises(SolverError, match="budget"):
            RunSpec.parse(bad)


def test_step_budgets_apply_to_the_matching_unit():
    assert RunSpec(sweeps=3).steps_for(Sweeper) == 3
    assert RunSpec(epochs=3).steps_for(Sweeper) is None
    assert RunSpec(epochs=3, steps=2).steps_for(Sweeper) == 2
    with pytest.raises(SolverError, match="counts its work in sweeps"):
        RunSpec(epochs=3).steps_for(Sweeper, strict=True)
    with pytest.raises(SolverError, match="give one of"):
        RunSpec(sweeps=3, steps=2).steps_for(Sweeper, strict=True)


def test_the_one_default_rule():
    # a first command-line run: DEFAULT_SECONDS (75 s); anything else: the solver's default steps
    assert DEFAULT_SECONDS == 75.0
    assert RunSpec(no_budget="time").limits(Sweeper) == (None, DEFAULT_SECONDS)
    assert RunSpec(no_budget="time", resume=True).limits(Sweeper) == (4, None)
    assert RunSpec(no_budget="time").limits(Closed) == (4, None)
    assert RunSpec().limits(Sweeper) == (4, None)
    assert RunSpec().limits(Plain) == (10, None)
    assert RunSpec(epochs=2).limits(Sweeper) == (4, None)  # no key applies to a sweeper
    assert RunSpec(time=5).limits(Sweeper) == (None, 5.0)
    assert default_budget(Sweeper, no_budget="time") == (None, DEFAULT_SECONDS)
    solo = RunSpec(sweeps=2, epochs=7, no_budget="time").for_solver(Sweeper)
    assert (solo.steps, solo.sweeps, solo.epochs, solo.time) == (2, None, None, None)


# --------------------------------------------------------------------------- Deadline
def test_deadline_on_an_injected_clock():
    clock = Clock()
    d = Deadline(10.0, clock=clock)
    assert d.remaining() == 10.0 and not d.passed() and d.used() == 0.0
    clock.t += 4.0
    assert d.remaining() == 6.0 and d.used() == 4.0
    assert d.passed(reserve=6.0) and not d.passed(reserve=5.0)
    d.extend_excluded(2.0)  # two seconds that were not training
    assert d.remaining() == 8.0 and d.used() == 2.0
    clock.t += 8.0
    assert d.passed() and d.remaining() == 0.0
    d.start(used=7.0)  # three seconds of the limit left, from now
    assert d.remaining() == 3.0 and not d.passed()
    d.start(used=12.0)  # more used than the limit: passed at once
    assert d.passed()


def test_a_deadline_without_a_limit_never_passes():
    clock = Clock()
    d = Deadline(None, clock=clock)
    clock.t += 1e9
    assert not d.passed() and d.remaining() == math.inf and d.used() == 0.0
    d.end_now()
    assert d.passed()
