"""Benchmarks: train the same model with one or more solvers and tabulate the results.

:func:`run` returns one row (a dict) per solver; :func:`format_table` and
:func:`to_json` turn rows into text. ``symnet bench`` is a thin shell over
these.

Example:
    >>> rows = run(["coordinate"], dataset="xor", steps=1, quiet=True)
    >>> rows[0]["solver"], rows[0]["steps"]
    ('coordinate', 1)
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Iterable, Sequence

from .errors import DivergenceError, SolverError

#: Pseudo-solver names that ``run`` expands.
GROUPS = ("gradient", "all")

#: Columns of the benchmark table: (row key, header, format).
BENCH_COLUMNS = (
    ("dataset", "dataset", "{}"),
    ("model", "model", "{}"),
    ("solver", "solver", "{}"),
    ("steps", "steps", "{}"),
    ("wall_time", "wall s", "{:.3g}"),
    ("time_per_step", "train s/step", "{:.3g}"),
    ("loss", "loss", "{:.6g}"),
    ("train_acc", "train acc", "{:.4f}"),
    ("test_acc", "test acc", "{:.4f}"),
    ("time_per_update_us", "us/update", "{:.3g}"),
)

#: Shown after the other columns when some row did not finish normally.
STATUS_COLUMN = ("status", "status", "{}")


def gradient_solvers() -> list[str]:
    """Registered solvers that train by gradient descent (one step = one epoch).

    A backend counts as a gradient solver when its name is one of the
    optimizers in :data:`solvers.optim.OPTIMIZERS` or its ``step_unit`` is
    ``"epoch"``.
    """
    import solvers
    from solvers.optim import OPTIMIZERS

    names = []
    for name in solvers.available():
        if name in OPTIMIZERS:
            names.append(name)
            continue
        try:
            cls = solvers.get(name)
        except ImportError:  # a backend that is registered but not installed cannot be benchmarked
            continue
        if getattr(cls, "step_unit", None) == "epoch":
            names.append(name)
    return names


def expand(names: Iterable[str]) -> list[str]:
    """Solver names with ``"gradient"`` and ``"all"`` expanded, duplicates dropped, order kept.

    Raises:
        SolverError: a name is not registered, or ``"gradient"`` matches nothing.
    """
    import solvers

    out: list[str] = []
    for name in names:
        if name == "gradient":
            group = gradient_solvers()
            if not group:
                raise SolverError(f"no gradient solvers are registered; available: {', '.join(solvers.available())}")
        elif name == "all":
            group = solvers.available()
        else:
            solvers.get(name)  # raises SolverError naming the registered solvers
            group = [name]
        out += [n for n in group if n not in out]
    return out


def resolve_steps(solver, *, sweeps: int | None = None, epochs: int | None = None,
                  steps: int | None = None, strict: bool = True) -> int | None:
    """The step budget for ``solver`` (a class or an instance) from the ``--sweeps`` / ``--epochs`` / ``--steps`` flags.

    ``sweeps`` counts for solvers whose step is a sweep, ``epochs`` for those
    whose step is an epoch, ``steps`` for any. With ``strict`` a flag that does
    not match the solver's unit is an error; otherwise it is ignored (a
    benchmark of mixed solvers takes ``--sweeps`` for some, ``--epochs`` for
    others).

    Example:
        >>> import solvers
        >>> resolve_steps(solvers.get("coordinate"), sweeps=3)
        3
    """
    unit = getattr(solver, "step_unit", "step")
    if not isinstance(unit, str):  # a class whose unit is a property of its options; pass an instance
        unit = "step"
    name = getattr(solver, "name", "?")
    given = {k: v for k, v in (("sweeps", sweeps), ("epochs", epochs), ("steps", steps)) if v is not None}
    if strict and len(given) > 1:
        raise SolverError(f"give one of --sweeps, --epochs, --steps, not {' and '.join('--' + k for k in given)}")
    if steps is not None:
        return steps
    if sweeps is not None and unit == "sweep":
        return sweeps
    if epochs is not None and unit == "epoch":
        return epochs
    if strict and given:
        flag = next(iter(given))
        hint = {"sweep": "--sweeps N (or --steps N)", "epoch": "--epochs N (or --steps N)"}.get(unit, "--steps N")
        raise SolverError(f"solver {name!r} counts its work in {unit}s, so --{flag} does not apply; use {hint}")
    return None


def options_for(solver_cls, options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` that ``solver_cls`` accepts."""
    accepted = getattr(solver_cls, "defaults", {})
    return {k: v for k, v in options.items() if k in accepted}


def run(names: Sequence[str], *, dataset="mnist-small", data_dir=None, model: str | None = None,
        model_options: dict[str, Any] | None = None, samples: int | None = None, test_samples: int | None = None,
        sweeps: int | None = None, epochs: int | None = None, steps: int | None = None,
        time_limit: float | None = None, seed: int | None = None, quiet: bool | None = None,
        options: dict[str, Any] | None = None, download: bool = True, callback=None) -> list[dict]:
    """Train a fresh copy of one model with each solver in ``names``; one row per solver.

    Every solver starts from the same initial parameters (the preset built
    with ``seed``). Options are passed to the solvers that accept them; an
    option no selected solver accepts is an error.

    Args:
        names: solver names; ``"gradient"`` means every registered gradient
            optimizer, ``"all"`` every registered solver.
        dataset: a dataset name or a :class:`~symnet.datasets.Dataset`.
        data_dir: folder with the dataset's files (``--data-dir``).
        model: preset name (default: ``poly`` for images, ``mlp`` for vectors).
        model_options: preset options (``channels``, ``kernel`` ...).
        samples, test_samples: use the first N training / test samples.
        sweeps, epochs, steps: step budgets, see :func:`resolve_steps`.
        time_limit: seconds of training per solver.
        seed: initialisation and solver seed.
        quiet: hide progress bars.
        options: solver options (``ridge``, ``lr`` ...).
        download: allow downloading a missing dataset.
        callback: called with each row as soon as it is ready.

    Returns:
        A list of dicts with keys ``dataset``, ``model``, ``solver``,
        ``steps``, ``step_unit``, ``n_train``, ``n_test``, ``num_params``,
        ``loss``, ``train_acc``, ``test_acc``, ``time`` (training seconds),
        ``wall_time`` (including evaluation), ``time_per_step`` (training
        seconds per step: per epoch, per sweep ...), ``updates``, ``passes``,
        ``time_per_update_us``, ``options`` and ``status`` (``"ok"``, or
        ``"diverged at step N"`` with the figures of the last finite step).
    """
    import solvers

    from . import api

    names = expand(names)
    options = dict(options or {})
    classes = {name: solvers.get(name) for name in names}
    unused = [k for k in options if not any(k in getattr(c, "defaults", {}) for c in classes.values())]
    if unused:
        raise SolverError(f"no selected solver ({', '.join(names)}) has option {unused[0]!r}")
    data = api.load_data(dataset, data_dir, samples=samples, test_samples=test_samples,
                          download=download, quiet=quiet)
    model_name = model or api.default_model(data)
    initial = api.build_model(model_name, data, seed=0 if seed is None else seed, **(model_options or {}))
    rows = []
    for name, cls in classes.items():
        t0 = time.perf_counter()
        fitted = cls(**options_for(cls, options))
        budget = resolve_steps(fitted, sweeps=sweeps, epochs=epochs, steps=steps, strict=False)
        start = initial.copy()
        status = "ok"
        try:
            api.train(start, data, fitted, steps=budget, time_limit=time_limit, quiet=quiet, seed=seed)
        except DivergenceError:
            # One diverging method must not sink the comparison: report its last finite state.
            status = f"diverged at step {fitted.history_.final['step'] + 1}"
        # A backend that trains a model of its own (polyreg) is reported under that model's name.
        s = api.summarize(fitted, wall_time=time.perf_counter() - t0,
                          model_name=model_name if fitted.model_ is start else None)
        per = s["time_per_update"]
        row = {k: s[k] for k in ("dataset", "model", "solver", "steps", "step_unit", "n_train", "n_test",
                                 "num_params", "loss", "train_acc", "test_acc", "time", "wall_time", "updates",
                                 "passes", "options")}
        row["time_per_update_us"] = None if per is None else per * 1e6
        # training seconds per step: per epoch for the gradient solvers, per sweep for coordinate
        row["time_per_step"] = row["time"] / row["steps"] if row["steps"] else None
        row["status"] = status
        rows.append(row)
        if callback is not None:
            callback(row)
    return rows


def format_table(rows: Sequence[dict], columns=BENCH_COLUMNS) -> str:
    """Rows as an aligned text table; missing or non-finite values show as ``-``.

    Example:
        >>> print(format_table([{"solver": "sgd", "loss": 0.5}], [("solver", "solver", "{}"), ("loss", "loss", "{:.3f}")]))
        solver   loss
        ------  -----
        sgd     0.500
    """
    if columns is BENCH_COLUMNS and any(row.get("status", "ok") != "ok" for row in rows):
        columns = BENCH_COLUMNS + (STATUS_COLUMN,)

    def cell(value, fmt):
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "-"
        return fmt.format(value)

    table = [[header for _, header, _ in columns]]
    table += [[cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    numeric = [bool(rows) and all(_is_number(row.get(key)) for row in rows) for key, _, _ in columns]
    lines = []
    for i, r in enumerate(table):
        cells = [c.rjust(w) if numeric[j] else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _is_number(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def to_json(rows: Sequence[dict]) -> str:
    """Rows as a JSON array (non-finite numbers become ``null``)."""
    from .api import _plain

    return json.dumps(_plain(list(rows)), indent=1)


__all__ = ["BENCH_COLUMNS", "expand", "format_table", "gradient_solvers", "options_for", "resolve_steps", "run",
           "to_json"]
