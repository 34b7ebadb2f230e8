"""Solver options, declared once per solver and checked by one validator.

Every backend lists its options in a class attribute ``options``: a dict of
:class:`Option` (type, range, default, one line of help), in the spirit of
scikit-learn's ``_parameter_constraints``. :func:`validate` checks a user's
options against that table with the same wording for every solver, whether
they come from Python (``symnet.fit(..., lr=0)``), ``--lr 0`` or ``-O lr=0``:

    solver 'adam': option lr must be a number > 0, got 0

Example:
    >>> table = {"lr": Option(1e-3, "float", low=0.0, low_open=True), "order": Option("cyclic", "choice",
    ...          choices=("cyclic", "random"))}
    >>> validate("demo", table, {"lr": 0.5})
    {'lr': 0.5, 'order': 'cyclic'}
    >>> validate("demo", table, {"lr": 0})
    Traceback (most recent call last):
    ...
    symnet.core.errors.SolverError: solver 'demo': option lr must be a number > 0, got 0
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Mapping, NamedTuple

import numpy as np

from symnet.core.errors import SolverError

#: The kinds of value an option can take, and how they read in an error message.
KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "choice": "one of",
    "str": "a string",
    "names": "a list of names (or one string of names separated by commas)",
    "floats": "a non-empty list of numbers",
    "window": "a whole number, a pair (height, width)",
}


class Option(NamedTuple):
    """One option of a solver.

    Attributes:
        default: the value when the user gives none.
        kind: a key of :data:`KINDS`.
        low, high: bounds of a number (inclusive unless ``low_open`` / ``high_open``).
        low_open, high_open: exclude the bound itself.
        choices: allowed values of a ``"choice"``.
        none: ``None`` is allowed (and what it means goes in ``help``).
        help: one line for ``--help`` listings and documentation.
        auto: the string ``"auto"`` is allowed: the solver resolves it from the
            model and the data when training starts (``help`` says to what).
    """

    default: Any
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    none: bool = False
    help: str = ""
    auto: bool = False


def describe(option: Option) -> str:
    """The allowed values of ``option`` in words: ``"a number > 0"``, ``"one of 'a', 'b' or None"``."""
    if option.kind == "choice":
        text = "one of " + ", ".join(repr(c) for c in option.choices)
    else:
        text = KINDS[option.kind]
        if option.kind in ("int", "float", "floats"):
            bounds = []
            if option.low is not None:
                bounds.append(f"{'>' if option.low_open else '>='} {option.low:g}")
            if option.high is not None:
                bounds.append(f"{'<' if option.high_open else '<='} {option.high:g}")
            if bounds:
                text += (" " if option.kind != "floats" else ", each ") + " and ".join(bounds)
    extras = (["None"] if option.none else []) + (["'auto'"] if option.auto else [])
    return text + "".join(f" or {e}" for e in extras)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _in_range(option: Option, v: float) -> bool:
    if not math.isfinite(v):
        return False
    if option.low is not None and (v <= option.low if option.low_open else v < option.low):
        return False
    if option.high is not None and (v >= option.high if option.high_open else v > option.high):
        return False
    return True


def check(solver: str, key: str, option: Option, value: Any) -> Any:
    """``value`` checked (and normalised: numpy scalars to Python ones) against ``option``.

    Raises:
        SolverError: ``solver 'NAME': option KEY must be <describe(option)>, got VALUE``.
    """
    def bad() -> SolverError:
        return SolverError(f"solver '{solver}': option {key} must be {describe(option)}, got {value!r}")

    if option.auto and isinstance(value, str) and value == "auto":
        return "auto"
    if value is None:
        if option.none:
            return None
        raise bad()
    kind = option.kind
    if kind == "int":
        if not _is_number(value) or float(value) != int(value) or not _in_range(option, float(value)):
            raise bad()
        return int(value)
    if kind == "float":
        if not _is_number(value) or not _in_range(option, float(value)):
            raise bad()
        return float(value)
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise bad()
        return bool(value)
    if kind == "choice":
        if not isinstance(value, (str, bool, numbers.Number)) or value not in option.choices:
            raise bad()
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise bad()
        return value
    if kind == "names":
        if isinstance(value, str):  # commas inside brackets belong to an element's index
            value = [v.strip() for v in re.split(r",(?![^\[]*\])", value) if v.strip()]
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
            raise bad()
        return list(value)
    if kind == "floats":
        try:
            arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise bad() from None
        if arr.ndim != 1 or arr.size == 0 or isinstance(value, (str, bool)) or \
                not all(_in_range(option, float(v)) for v in arr):
            raise bad()
        return tuple(float(v) for v in arr)
    if kind == "window":
        if _is_number(value) and float(value) == int(value) and int(value) >= 1:
            return int(value)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(
                _is_number(v) and float(v) == int(v) and int(v) >= 1 for v in value):
            return [int(v) for v in value]
        raise bad()
    raise ValueError(f"unknown option kind {kind!r}")  # a mistake in a solver's table, not the user's


def validate(solver: str, table: Mapping[str, Option], given: Mapping[str, Any]) -> dict[str, Any]:
    """The full option dict of ``solver``: defaults overridden by ``given``, every value checked.

    Raises:
        SolverError: an option the solver does not have (the message lists those it has), or a
            value outside its declared range.
    """
    unknown = sorted(set(given) - set(table))
    if unknown:
        known = ", ".join(sorted(table)) or "none"
        raise SolverError(f"solver '{solver}' has no option {unknown[0]!r}; its options are: {known}")
    out = {}
    for key, option in table.items():
        out[key] = check(solver, key, option, given[key]) if key in given else option.default
    return out


def defaults(table: Mapping[str, Option]) -> dict[str, Any]:
    """``{name: default}`` of an option table."""
    return {key: option.default for key, option in table.items()}


__all__ = ["KINDS", "Option", "check", "defaults", "describe", "validate"]
