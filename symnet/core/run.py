"""One run, specified once: budget, seed, folder, bookkeeping (:class:`RunSpec`), and its clock (:class:`Deadline`).

Every entry point (``symnet train``, ``compare``, ``bench``, ``bench target``,
:func:`symnet.fit`, the scikit-learn estimators and :meth:`Solver.fit
<symnet.solvers.base.Solver.fit>`) builds one :class:`RunSpec` and passes it
down; its constructor is the only place a budget is checked.

The budget. ``steps`` counts steps of any solver, ``sweeps`` only steps of
solvers whose step is a sweep, ``epochs`` only those whose step is an epoch;
``time`` is seconds of *training* (setup and steps, evaluation excluded). A
solver stops at whichever of its limits comes first. The default, when no
limit applies to a solver (:meth:`RunSpec.limits`), is the one rule of
:func:`default_budget`:

* a run started from the command line (``no_budget="time"``) that is not a
  resume, with a solver that does not end by itself (``ends_by_itself``, e.g.
  polyreg's closed forms): :data:`DEFAULT_SECONDS` of training, so a first run
  finishes quickly;
* anything else: the solver's ``default_steps`` (:data:`DEFAULT_STEPS` when it
  declares none).

Example:
    >>> spec = RunSpec(sweeps=3, time=60)
    >>> spec.budget()
    {'time': 60.0, 'sweeps': 3}
    >>> RunSpec(steps=-1)
    Traceback (most recent call last):
    ...
    symnet.core.errors.SolverError: budget 'steps' must be a whole number >= 0, got -1
    >>> clock = iter([0.0, 4.0, 11.0]).__next__
    >>> d = Deadline(10.0, clock=clock)
    >>> d.remaining(), d.passed()
    (6.0, True)
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from symnet.core.errors import SolverError

#: Training seconds of a command-line run given no budget (see :func:`default_budget`).
DEFAULT_SECONDS = 75.0
#: Steps of a solver that declares no ``default_steps`` (see :func:`default_budget`).
DEFAULT_STEPS = 10

#: Budget keys and what they count.
BUDGET_KEYS = {
    "time": "seconds of training per solver",
    "steps": "steps of any solver",
    "sweeps": "sweeps of solvers whose step is a sweep",
    "epochs": "epochs of solvers whose step is an epoch",
}

_BUDGET_HELP = ("a number of seconds (e.g. 300) or a dict like {'time': 300}, {'steps': 5}, {'sweeps': 3} "
                "or {'epochs': 2}")


def is_number(value: Any) -> bool:
    """A real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def step_unit(solver) -> str:
    """What one step of ``solver`` (a class or an instance) is: ``"sweep"``, ``"epoch"``, ``"iter"`` ..."""
    unit = getattr(solver, "step_unit", "step")
    return unit if isinstance(unit, str) else "step"  # a class whose unit depends on its options


def default_budget(solver, *, no_budget: str = "steps", resume: bool = False) -> tuple[int | None, float | None]:
    """``(steps, seconds)`` of a run of ``solver`` to which no budget applies: the one default rule.

    Example:
        >>> from symnet import solvers
        >>> default_budget(solvers.get("coordinate")), default_budget(solvers.get("coordinate"), no_budget="time")
        ((5, None), (None, 75.0))
    """
    if no_budget == "time" and not resume and not getattr(solver, "ends_by_itself", False):
        return None, DEFAULT_SECONDS
    return int(getattr(solver, "default_steps", DEFAULT_STEPS)), None


@dataclass(frozen=True)
class RunSpec:
    """Everything about a run that is not the model, the data or the solver's options.

    Attributes:
        steps, sweeps, epochs: step budgets (whole numbers >= 0; see the module docstring).
        time: seconds of training (a positive number).
        seed: seed of the solver's random choices (None: option ``seed`` or 0).
        out: folder of the run's checkpoint (None: no checkpoints).
        resume: continue the run in ``out``.
        overwrite: replace the run in ``out``.
        certificates: record exact steps (True, or ``"all"`` to keep every step's parameters).
        quiet: hide progress bars (None: hidden when ``$CI`` is set).
        eval_train: compute training accuracy after each step.
        no_budget: what no budget means: ``"steps"`` (the solver's ``default_steps``) or ``"time"``
            (:data:`DEFAULT_SECONDS`, the command line's first runs); see :func:`default_budget`.

    Raises:
        SolverError: a value out of range, with a one-line message.
    """

    steps: int | None = None
    sweeps: int | None = None
    epochs: int | None = None
    time: float | None = None
    seed: int | None = None
    out: Path | None = None
    resume: bool = False
    overwrite: bool = False
    certificates: bool | str = False
    quiet: bool | None = None
    eval_train: bool = True
    no_budget: str = "steps"

    def __post_init__(self) -> None:
        for key in ("steps", "sweeps", "epochs"):
            value = getattr(self, key)
            if value is not None:
                if not is_number(value) or not math.isfinite(float(value)) or float(value) != int(value) \
                        or int(value) < 0:
                    raise SolverError(f"budget {key!r} must be a whole number >= 0, got {value!r}")
                object.__setattr__(self, key, int(value))
        if self.time is not None:
            if not is_number(self.time) or not (math.isfinite(float(self.time)) and float(self.time) > 0):
                raise SolverError(f"budget 'time' (the time limit) must be a positive number of seconds, got "
                                  f"{self.time!r}")
            object.__setattr__(self, "time", float(self.time))
        if self.seed is not None:
            if not is_number(self.seed) or float(self.seed) != int(self.seed) or int(self.seed) < 0:
                raise SolverError(f"seed must be a whole number >= 0, got {self.seed!r}")
            object.__setattr__(self, "seed", int(self.seed))
        if self.out is not None:
            object.__setattr__(self, "out", Path(self.out))
        if self.certificates not in (False, True, "all"):
            raise SolverError(f"certificates must be True, False or 'all', got {self.certificates!r}")
        if self.no_budget not in ("steps", "time"):
            raise SolverError(f"no_budget must be 'steps' or 'time', got {self.no_budget!r}")

    @classmethod
    def parse(cls, budget: Any = None, **settings: Any) -> "RunSpec":
        """A RunSpec from a budget as users write it: seconds, or a dict of :data:`BUDGET_KEYS`.

        Example:
            >>> RunSpec.parse({"sweeps": 3, "time": 60}, seed=1).budget()
            {'time': 60.0, 'sweeps': 3}
            >>> RunSpec.parse(300).time
            300.0
        """
        if budget is None:
            return cls(**settings)
        if isinstance(budget, RunSpec):
            return budget.replace(**settings)
        if is_number(budget):
            if not (math.isfinite(float(budget)) and float(budget) > 0):
                raise SolverError(f"a budget in seconds must be a positive number, got {budget!r}")
            return cls(time=float(budget), **settings)
        if not isinstance(budget, Mapping):
            raise SolverError(f"budget must be {_BUDGET_HELP}; got {budget!r}")
        for key in budget:
            if key not in BUDGET_KEYS:
                raise SolverError(f"unknown budget key {key!r}; use {', '.join(BUDGET_KEYS)} ({_BUDGET_HELP})")
        return cls(**{k: v for k, v in budget.items() if v is not None}, **settings)

    def replace(self, **changes: Any) -> "RunSpec":
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)

    def budget(self) -> dict[str, float | int]:
        """The limits that were given, as a dict with keys from :data:`BUDGET_KEYS`."""
        return {k: getattr(self, k) for k in BUDGET_KEYS if getattr(self, k) is not None}

    def steps_for(self, solver, *, strict: bool = False) -> int | None:
        """The step limit that applies to ``solver`` (a class or an instance), or None.

        ``steps`` applies to every solver, ``sweeps`` to those whose step is a sweep, ``epochs`` to those
        whose step is an epoch. With ``strict`` (one solver, the command line) giving more than one, or one
        that does not match the solver's unit, is an error; otherwise it is ignored (a run of mixed solvers
        takes ``sweeps`` for some, ``epochs`` for others).

        Example:
            >>> from symnet import solvers
            >>> coordinate = solvers.get("coordinate")
            >>> RunSpec(sweeps=3).steps_for(coordinate), RunSpec(epochs=3).steps_for(coordinate)
            (3, None)
        """
        unit = step_unit(solver)
        given = {k: getattr(self, k) for k in ("sweeps", "epochs", "steps") if getattr(self, k) is not None}
        if strict and len(given) > 1:
            raise SolverError(f"give one of --sweeps, --epochs, --steps, not {' and '.join('--' + k for k in given)}")
        if self.steps is not None:
            return self.steps
        if self.sweeps is not None and unit == "sweep":
            return self.sweeps
        if self.epochs is not None and unit == "epoch":
            return self.epochs
        if strict and given:
            flag = next(iter(given))
            hint = {"sweep": "--sweeps N (or --steps N)", "epoch": "--epochs N (or --steps N)"}.get(unit, "--steps N")
            raise SolverError(f"solver {getattr(solver, 'name', '?')!r} counts its work in {unit}s, so --{flag} "
                              f"does not apply; use {hint}")
        return None

    def limits(self, solver, *, strict: bool = False) -> tuple[int | None, float | None]:
        """``(steps, seconds)`` for ``solver``: the limits that apply to it, else :func:`default_budget`.

        Example:
            >>> from symnet import solvers
            >>> RunSpec(epochs=2).limits(solvers.get("coordinate"))
            (5, None)
        """
        steps = self.steps_for(solver, strict=strict)
        if steps is None and self.time is None:
            return default_budget(solver, no_budget=self.no_budget, resume=self.resume)
        return steps, self.time

    def for_solver(self, solver, *, strict: bool = False) -> "RunSpec":
        """This run for one solver: ``steps`` and ``time`` resolved by :meth:`limits`, ``sweeps`` and
        ``epochs`` folded in."""
        steps, seconds = self.limits(solver, strict=strict)
        return replace(self, steps=steps, time=seconds, sweeps=None, epochs=None, no_budget="steps")


class Deadline:
    """The time limit of a run on a clock: how much is left, whether it has passed.

    ``limit`` is seconds of training (None: no limit, never passes); :meth:`start`
    sets the deadline ``limit - used`` seconds from now, so that time the caller
    does not count as training (evaluation, checkpoints) can be left out by
    starting again, or by :meth:`extend_excluded`. The clock is injectable
    (default :func:`time.perf_counter`), so tests need no wall time.

    Attributes:
        limit: seconds of training allowed, or None.
        at: the clock reading at which the limit passes (``math.inf`` without a limit).
        clock: the clock.
    """

    def __init__(self, limit: float | None = None, *, clock: Callable[[], float] = time.perf_counter,
                 used: float = 0.0) -> None:
        self.limit = None if limit is None else float(limit)
        self.clock = clock
        self.at = math.inf
        self.start(used)

    def start(self, used: float = 0.0) -> None:
        """Set the deadline from now, ``used`` seconds of the limit being spent already."""
        self.at = math.inf if self.limit is None else self.clock() + max(self.limit - used, 0.0)

    def remaining(self) -> float:
        """Seconds left (``math.inf`` without a limit; negative once passed)."""
        return self.at - self.clock()

    def passed(self, reserve: float = 0.0) -> bool:
        """Has the limit passed (or will it within ``reserve`` seconds)?"""
        return self.clock() + reserve >= self.at

    def used(self) -> float:
        """Seconds of the limit spent so far (0 without a limit)."""
        return 0.0 if self.limit is None else self.limit - (self.at - self.clock())

    def extend_excluded(self, seconds: float) -> None:
        """Move the deadline on by ``seconds`` that did not count as training."""
        self.at += seconds

    def end_now(self) -> None:
        """Let the limit pass at once (tests, and backends that must stop the run)."""
        self.at = -math.inf

    def __repr__(self) -> str:
        return f"Deadline(limit={self.limit!r}, at={self.at!r})"


__all__ = ["BUDGET_KEYS", "DEFAULT_SECONDS", "DEFAULT_STEPS", "Deadline", "RunSpec", "default_budget", "is_number",
           "step_unit"]
