"""Solver options, declared once per solver and checked by one validator.

Every backend lists its options in a class attribute ``options``: a dict of
:class:`Option` (type, range, default, one line of help), in the spirit of
scikit-learn's ``_parameter_constraints``. :func:`validate` checks a user's
options against that table with the same wording for every solver, whether
they come from Python (``symnet.fit(..., lr=0)``), ``--lr 0`` or ``-O lr=0``:

    solver 'adam': option lr must be a number > 0, got 0

:func:`parse` is the one way in for options a user sets: it merges named flags,
``-O key=value`` pairs and Python keywords (:func:`merge`, which refuses one
option set to two values) and checks them with :func:`validate`.

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
from typing import Any, Iterable, Mapping, NamedTuple

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


def merge(flags: Mapping[str, Any] | None = None, pairs: Iterable[tuple[str, Any]] = (),
          given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The options a user set, from every way of setting one: ``given`` (Python keywords), named
    flags (``flags``: ``{"lr": 0.1}`` from ``--lr 0.1``; None means not given) and ``-O`` pairs.

    An option set twice to different values is refused, naming both settings (a later ``-O`` of the
    same key wins over an earlier one, as on any command line).

    Raises:
        SolverError: one line naming both settings.

    Example:
        >>> merge({"lr": 0.1, "ridge": None}, [("order", "random")])
        {'lr': 0.1, 'order': 'random'}
        >>> merge({"lr": 0.1}, [("lr", 1e-3)])
        Traceback (most recent call last):
        ...
        symnet.core.errors.SolverError: --lr 0.1 and -O lr=0.001 set option lr to different values; give it once
    """
    out = dict(given or {})
    source = {key: f"{key}={value!r}" for key, value in out.items()}
    for key, value in (flags or {}).items():
        if value is None:
            continue
        _set(out, source, key, value, f"--{key.replace('_', '-')} {value}")
    pairs_seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in pairs_seen:  # -O k=a -O k=b: the later one, as before
            out[key] = value
        else:
            _set(out, source, key, value, f"-O {key}={value}")
        pairs_seen[key] = value
    return out


def _set(out: dict, source: dict, key: str, value: Any, text: str) -> None:
    if key in out and not _same(out[key], value):
        raise SolverError(f"{source[key]} and {text} set option {key} to different values; give it once")
    out[key] = value
    source[key] = text


def _same(a: Any, b: Any) -> bool:
    try:
        return isinstance(a, bool) == isinstance(b, bool) and bool(a == b)  # True is not the number 1
    except (TypeError, ValueError):  # arrays and other values without a plain truth value
        return False


def parse(solver: str, table: Mapping[str, Option], *, flags: Mapping[str, Any] | None = None,
          pairs: Iterable[tuple[str, Any]] = (), given: Mapping[str, Any] | None = None,
          only_known: bool = False) -> dict[str, Any]:
    """The options a user set for ``solver``, from all their sources (:func:`merge`), each checked
    against ``table``: the one parser of the command line, ``bench target``, the runner, the
    scikit-learn estimators and :func:`symnet.fit`.

    Only the options that were set are returned (normalised), so the solver's own defaults apply to the
    rest; ``only_known`` drops those the solver does not have (options shared by several solvers) instead
    of refusing them.

    Raises:
        SolverError: a conflict (:func:`merge`), an option the solver does not have, or a bad value.

    Example:
        >>> table = {"lr": Option(1e-3, "float", low=0.0, low_open=True)}
        >>> parse("demo", table, flags={"lr": 1}, pairs=[("lr", 1)])
        {'lr': 1.0}
    """
    given = merge(flags, pairs, given)
    if only_known:
        given = {k: v for k, v in given.items() if k in table}
    full = validate(solver, table, given)
    return {key: full[key] for key in given}


def defaults(table: Mapping[str, Option]) -> dict[str, Any]:
    """``{name: default}`` of an option table."""
    return {key: option.default for key, option in table.items()}


__all__ = ["KINDS", "Option", "check", "defaults", "describe", "merge", "parse", "validate"]
