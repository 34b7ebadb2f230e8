"""Several solvers from one start under one budget: the runner that ``bench`` and ``compare`` share.

:func:`parse_solvers` turns names (``"gradient"`` and ``"all"`` expand to
groups) and options into :class:`Entry` objects, checked before any data is
loaded; :func:`parse_budget` reads the one budget model (a
:class:`~symnet.core.run.RunSpec`, which checks it and holds the default rule); :func:`run_entry`
trains one entry on a copy of the initial model and returns its row, history
and trained model, in this process or, with :func:`run_isolated`, in a fresh
one (fair memory figures).

Budget. A number is a limit in seconds of training per solver. A dict may hold
``"time"`` (seconds), ``"steps"`` (steps of any solver), ``"sweeps"`` (for
solvers whose step is a sweep) and ``"epochs"`` (for solvers whose step is an
epoch); a solver stops at whichever of its limits comes first. A solver that
none of the keys applies to (``{"sweeps": 3}`` for a gradient solver) runs
its own default number of steps, and its row says so.

Example:
    >>> parse_budget({"sweeps": 3, "time": 60})
    {'time': 60.0, 'sweeps': 3}
    >>> [e.label for e in parse_solvers("coordinate, coordinate", {"ridge": 2.0})]
    ['coordinate', 'coordinate#2']
"""

from __future__ import annotations

import builtins
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence


import symnet.solvers as registry
from symnet.core import errors
from symnet.core.errors import DivergenceError, SolverError, SymnetError
from symnet.core.objective import sse
from symnet.core.run import BUDGET_KEYS, RunSpec, is_number, step_unit
from symnet.core.runtime import MemoryProbe
from symnet.solvers import options as options_
from symnet.solvers.optim import OPTIMIZERS

from symnet.frontend import api, cluster

#: Pseudo-solver names that :func:`parse_solvers` expands.
GROUPS = ("gradient", "all")

# --------------------------------------------------------------------------- solvers
def gradient_solvers() -> list[str]:
    """Registered solvers that train by gradient descent (one step = one epoch).

    A backend counts as a gradient solver when its name is one of the
    optimizers in :data:`symnet.solvers.optim.OPTIMIZERS` or its ``step_unit``
    is ``"epoch"``.
    """
    names = []
    for name in registry.available():
        if name in OPTIMIZERS:
            names.append(name)
            continue
        try:
            cls = registry.get(name)
        except ImportError:  # a backend that is registered but not installed cannot be run
            continue
        if getattr(cls, "step_unit", None) == "epoch":
            names.append(name)
    return names


def expand(names: Iterable[str]) -> list[str]:
    """Solver names with ``"gradient"`` and ``"all"`` expanded, duplicates dropped, order kept.

    Raises:
        SolverError: a name is not registered, or ``"gradient"`` matches nothing.
    """
    out: list[str] = []
    for name in names:
        if name == "gradient":
            group = gradient_solvers()
            if not group:
                raise SolverError(f"no gradient solvers are registered; available: "
                                  f"{', '.join(registry.available())}")
        elif name == "all":
            group = registry.available()
        else:
            registry.get(name)  # raises SolverError naming the registered solvers
            group = [name]
        out += [n for n in group if n not in out]
    return out


@dataclass
class Entry:
    """One contestant: a label, a registered solver name, its options and its registry target."""

    label: str
    name: str
    options: dict = field(default_factory=dict)
    target: str | None = None


def _options_text(options: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in options.items())


def parse_solvers(items: str | Sequence, options: Mapping[str, Any] | None = None) -> list[Entry]:
    """Check solver names and options; one :class:`Entry` per contestant, before any data is loaded.

    Args:
        items: solver names (``"gradient"``: every gradient optimizer; ``"all"``:
            every solver) or ``(name, options)`` pairs; a single string may list
            names separated by commas. A name given twice runs twice (the second
            labelled ``name#2``).
        options: per-solver options ``{"adam": {"lr": 1e-3}}`` and/or shared
            options ``{"ridge": 1.0}`` (given to every selected solver that has
            the option; an option none has is an error).

    Raises:
        SolverError: unknown solver, unknown option, or no solvers.
    """
    if isinstance(items, str):
        items = [s.strip() for s in items.split(",") if s.strip()]
    items = list(items or [])
    if not items:
        raise SolverError(f"no solvers given; pick some of: {', '.join(registry.available())}")
    pairs: list[tuple[str, dict]] = []
    for item in items:
        if isinstance(item, str) and item in GROUPS:
            pairs += [(name, {}) for name in expand([item]) if (name, {}) not in pairs]
        elif isinstance(item, str):
            pairs.append((item, {}))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str) \
                and isinstance(item[1], Mapping):
            pairs.append((item[0], dict(item[1])))
        else:
            raise SolverError(f"each solver must be a name or a (name, options) pair, got {item!r}")
    classes = {name: registry.get(name) for name, _ in pairs}  # unknown names fail here, listing the known ones
    per_solver: dict[str, dict] = {}
    shared: dict[str, Any] = {}
    for key, value in dict(options or {}).items():
        if key in classes and isinstance(value, Mapping):
            per_solver[key] = dict(value)
        elif key in registry.available() and isinstance(value, Mapping):
            raise SolverError(f"options given for solver {key!r}, which is not among the selected solvers "
                              f"({', '.join(classes)}); add it to the solvers or drop its options")
        else:
            shared[key] = value
    for key in shared:
        if not any(key in cls.defaults for cls in classes.values()):
            raise SolverError(f"no selected solver ({', '.join(classes)}) has option {key!r}; "
                              "give per-solver options as {'solver': {'key': value}} (--option solver.key=value)")
    entries: list[Entry] = []
    for name, own in pairs:
        cls = classes[name]
        opts = {k: v for k, v in shared.items() if k in cls.defaults}
        opts.update(per_solver.get(name, {}))
        opts.update(own)
        options_.parse(cls.name, cls.OPTIONS, given=opts)  # a bad option fails now, naming the solver's options
        label = name if not own else f"{name}[{_options_text(own)}]"
        taken = [e.label for e in entries]
        if label in taken:
            k = 2
            while f"{label}#{k}" in taken:
                k += 1
            label = f"{label}#{k}"
        entries.append(Entry(label, name, opts, registry.target(name)))
    return entries


# --------------------------------------------------------------------------- budget
def parse_budget(budget: Any) -> dict[str, float | int]:
    """The budget as a dict with keys from :data:`BUDGET_KEYS` (``None``: every solver's default steps),
    checked by :class:`~symnet.core.run.RunSpec`.

    Raises:
        SolverError: the budget is not a positive number of seconds or such a dict.

    Example:
        >>> parse_budget(300)
        {'time': 300.0}
    """
    return RunSpec.parse(budget).budget()


def plural(n: int | float, unit: str) -> str:
    """``'1 sweep'``, ``'3 sweeps'``."""
    return f"{n:g} {unit}" if n == 1 else f"{n:g} {unit}s"


def describe_budget(budget: Mapping[str, float | int]) -> str:
    """A parsed budget in words.

    Example:
        >>> describe_budget({"time": 300.0, "sweeps": 2})
        '300 s of training or 2 sweeps (whichever comes first)'
    """
    if not budget:
        return "each solver's default number of steps"
    text = " or ".join(f"{v:g} s of training" if k == "time" else plural(v, k[:-1]) for k, v in budget.items())
    return text + (" (whichever comes first)" if len(budget) > 1 else "")


def resolve_steps(solver, *, sweeps: int | None = None, epochs: int | None = None,
                  steps: int | None = None, strict: bool = True) -> int | None:
    """The step budget for ``solver`` (a class or an instance) from ``--sweeps`` / ``--epochs`` / ``--steps``
    (:meth:`RunSpec.steps_for <symnet.core.run.RunSpec.steps_for>`).

    Example:
        >>> from symnet import solvers
        >>> resolve_steps(solvers.get("coordinate"), sweeps=3)
        3
    """
    return RunSpec(sweeps=sweeps, epochs=epochs, steps=steps).steps_for(solver, strict=strict)


def describe_limits(solver, spec: RunSpec) -> str:
    """The budget of one solver in a table row: ``'3 sweeps'``, ``'60 s'``, or its default steps."""
    unit = step_unit(solver)
    steps = spec.steps_for(solver)
    parts = ([plural(steps, unit)] if steps is not None else []) + ([f"{spec.time:g} s"] if spec.time else [])
    if not parts:
        parts.append(f"{plural(spec.limits(solver)[0], unit)} (the solver's default: no budget key applies)")
    return " or ".join(parts)


def budget_for(solver, budget: Mapping[str, float | int]) -> tuple[int | None, float | None, str]:
    """``(steps, time_limit, description)`` of a parsed budget for one solver instance.

    Example:
        >>> from symnet import solvers
        >>> budget_for(solvers.get("coordinate")(), {"sweeps": 3, "epochs": 9})
        (3, None, '3 sweeps')
    """
    spec = RunSpec.parse(budget)
    return (*spec.limits(solver), describe_limits(solver, spec))


# --------------------------------------------------------------------------- running one entry
def model_name(model) -> str:
    """The label a model goes by in tables: its preset name, else its class name."""
    return getattr(model, "name", None) or type(model).__name__


def run_entry(entry: Entry, model, data, budget: Mapping[str, float | int], *, seed: int = 0,
              quiet: bool | None = None, copy: bool = True, client=None) -> dict:
    """Train one contestant on a copy of ``model``; return ``{"row", "history", "model"}``.

    ``client``: a Dask ``Client`` whose workers hold the samples' shards
    (:func:`symnet.fit`'s ``client``); never closed here.

    The row holds what ``bench`` and ``compare`` print: ``label``, ``solver``,
    ``options``, ``dataset``, ``n_train``, ``n_test``, ``model``,
    ``num_params``, ``own_model`` (the backend trained a model of its own),
    ``budget``, ``steps``, ``step_unit``, ``loss``, ``data_loss`` (SSE/N),
    ``train_acc``, ``test_acc``, ``time`` (training seconds), ``wall_time``,
    ``time_per_step``, ``passes``, ``updates``, ``time_per_update_us``,
    ``peak_mb`` (resident-memory growth), ``peak_rss_mb`` and ``status``
    (``"ok"``, or ``"diverged at step N"`` with the figures of the last finite
    step: one diverging method must not sink the comparison).
    """
    instance = registry.get(entry.name)(**entry.options)
    spec = RunSpec.parse(budget, seed=seed, quiet=quiet)
    budget_desc = describe_limits(instance, spec)
    spec = spec.for_solver(instance)
    start = model.copy() if copy else model
    status = "ok"
    with MemoryProbe() as memory:
        t0 = time.perf_counter()
        try:
            api.train(start, data, instance, run=spec, client=client)
        except DivergenceError:
            status = f"diverged at step {instance.history_.final['step'] + 1}"
        wall = time.perf_counter() - t0
    trained = instance.model_
    final = instance.history_.final
    updates = final.get("updates") or 0
    row = {
        "label": entry.label,
        "solver": entry.name,
        "options": getattr(instance, "opts_", entry.options),
        "dataset": data.name,
        "n_train": len(data.x_train),
        "n_test": len(data.x_test),
        "model": model_name(trained),
        "num_params": getattr(trained, "num_params", None),
        "own_model": trained is not start,
        "budget": budget_desc,
        "steps": final["step"],
        "step_unit": step_unit(instance),
        "loss": final["loss"],
        "data_loss": sse(trained.forward(data.x_train), data.one_hot("train")) / max(len(data.x_train), 1),
        "train_acc": final.get("train_acc"),
        "test_acc": final.get("test_acc"),
        "time": final["time"],
        "wall_time": wall,
        "time_per_step": final["time"] / final["step"] if final["step"] else None,
        "passes": final.get("passes"),
        "updates": updates,
        "time_per_update_us": final["time"] / updates * 1e6 if updates else None,
        "peak_mb": memory.growth,
        "peak_rss_mb": memory.peak,
        "peak_counter_reset": memory.resettable,
        "status": status,
    }
    return {"row": row, "history": instance.history_.to_dict(), "model": trained}


def _child_main(conn, entry: Entry, model, data, budget, seed, quiet, scheduler=None) -> None:  # pragma: no cover
    try:
        if entry.target is not None and registry.target(entry.name) != entry.target:
            registry.register(entry.name, entry.target)  # a solver registered at run time in the parent
        with cluster.session(scheduler=scheduler) as client:  # the parent's cluster, if it has one
            result = run_entry(entry, model, data, budget, seed=seed, quiet=quiet, copy=False, client=client)
        conn.send(("ok", result))
    except KeyboardInterrupt:
        conn.send(("interrupted", None))
    except BaseException as exc:  # report every failure to the parent rather than dying silently
        conn.send(("error", (type(exc).__module__, type(exc).__name__, str(exc))))
    finally:
        conn.close()


def run_isolated(entry: Entry, model, data, budget: Mapping[str, float | int], *, seed: int = 0,
                 quiet: bool | None = None, scheduler: str | None = None) -> dict:
    """:func:`run_entry` in a fresh ``spawn``-ed process; its errors are raised here.

    ``scheduler``: the address of a Dask scheduler the child connects to (the
    cluster of ``--workers`` / ``--scheduler``), for its client.

    A spawned process re-imports the calling script, which must then guard its
    entry point with ``if __name__ == "__main__":``, and it can only use
    solvers it can import (not a class defined in a notebook).
    """
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(sender, entry, model, data, budget, seed, quiet, scheduler),
                       daemon=True,
                       name=f"symnet-run-{entry.label}")
    proc.start()
    sender.close()
    try:
        while True:
            if receiver.poll(0.2):
                try:
                    kind, payload = receiver.recv()
                except EOFError:
                    kind, payload = "died", None
                break
            if not proc.is_alive() and not receiver.poll(0):
                kind, payload = "died", None
                break
    except KeyboardInterrupt:
        proc.terminate()
        proc.join(5)
        raise
    finally:
        receiver.close()
    proc.join(30)
    if kind == "ok":
        return payload
    if kind == "interrupted":
        raise KeyboardInterrupt
    if kind == "died":
        code = proc.exitcode
        why = " (killed by the system; out of memory?)" if code is not None and code < 0 else ""
        raise SolverError(f"solver {entry.label!r} stopped without a result: its process exited with code "
                          f"{code}{why}; run it alone with `symnet train --solver {entry.name}` to see why")
    module, name, message = payload
    cls = getattr(errors, name, None) if module == errors.__name__ else None
    if isinstance(cls, type) and issubclass(cls, SymnetError):
        raise cls(message)
    builtin = getattr(builtins, name, None) if module == "builtins" else None
    if isinstance(builtin, type) and issubclass(builtin, OSError):  # missing or unwritable paths, a full disk
        raise builtin(message)
    raise SolverError(f"solver {entry.label!r} failed in its process: {name}: {message}")


def run(entries: Sequence[Entry], model, data, budget: Mapping[str, float | int], *, seed: int = 0,
        quiet: bool | None = None, isolate: bool = False, callback=None, client=None) -> Iterable[tuple[Entry, dict]]:
    """Run each entry from a copy of ``model``; yield ``(entry, result)`` as each one finishes.

    ``result`` is :func:`run_entry`'s dict. With ``isolate`` each entry runs in
    a fresh process (:func:`run_isolated`). ``callback(row)`` is called with
    each row as soon as it is ready. ``client``: a Dask ``Client`` for the
    entries (an isolated entry connects to its scheduler).
    """
    for entry in entries:
        if isolate:
            result = run_isolated(entry, model, data, budget, seed=seed, quiet=quiet,
                                  scheduler=cluster.scheduler_address(client))
        else:
            result = run_entry(entry, model, data, budget, seed=seed, quiet=quiet, client=client)
        if callback is not None:
            callback(result["row"])
        yield entry, result


__all__ = ["BUDGET_KEYS", "Entry", "GROUPS", "budget_for", "describe_budget", "describe_limits", "expand",
           "gradient_solvers", "is_number", "model_name", "plural", "parse_budget", "parse_solvers", "resolve_steps",
           "run", "run_entry", "run_isolated", "step_unit"]
