"""One comparison for every backend: ``symnet.compare(model, data, solvers, budget)``.

Every solver starts from a copy of the same initial model, on the same data,
with the same seed, under the same budget; the result is a
:class:`Comparison` holding each solver's :class:`~symnet.history.History`,
a table, JSON and figures. Nothing here knows any backend by name: a solver
registered with :func:`solvers.register` takes part like the built-in ones.

Budget. A number is a wall-time limit in seconds of training per solver. A
dict may hold ``"time"`` (seconds), ``"steps"`` (steps of any solver),
``"sweeps"`` (for solvers whose step is a sweep) and ``"epochs"`` (for solvers
whose step is an epoch); a solver stops at whichever of its limits comes
first. A solver that none of the keys applies to (``{"sweeps": 3}`` for a
gradient solver) runs its own default number of steps, and the table says so.

Targets. "Time to target" is the training time at which a solver's curve
first reaches the target. By default the target loss is the worst (largest)
final training loss among the solvers and the target accuracy the lowest
final test accuracy, so that every solver reaches both and the times say
who got there first. Pass ``target_loss`` / ``target_acc`` to fix them.

Memory. The ``peak +MB`` column is how much the resident memory of the
process grew while the solver ran (peak minus the size just before it). On
Linux the kernel's peak counter is reset before each solver
(``/proc/self/clear_refs``), so in-process figures are per solver. With
``isolate=True`` each solver also runs in a fresh process (``multiprocessing``
with ``spawn``): allocator caches, compiled kernels and memory the previous
solver left behind cannot flatter or penalise the next one. The command line
isolates by default; the Python API does not (a spawned process re-imports the
calling script, which must then guard its entry point with
``if __name__ == "__main__":``, and it can only use solvers it can import: a
solver class defined in a notebook or in the main script runs in-process only).

``symnet.compare`` is the function; the classes are imported from this module:
``from symnet.compare import Comparison``.

Example:
    >>> import symnet
    >>> data = symnet.datasets.xor(16, noise=0.1)
    >>> model = symnet.models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> c = symnet.compare(model, data, ["coordinate", ("coordinate", {"ridge": 0.1})], {"steps": 2}, quiet=True)
    >>> list(c.histories)
    ['coordinate', 'coordinate[ridge=0.1]']
    >>> c.histories["coordinate"][0]["loss"] == c.histories["coordinate[ridge=0.1]"][0]["loss"]
    False
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import DataError, DivergenceError, ModelError, SolverError, SymnetError
from .history import History

#: Budget keys and what they count.
BUDGET_KEYS = {
    "time": "seconds of training per solver",
    "steps": "steps of any solver",
    "sweeps": "sweeps of solvers whose step is a sweep",
    "epochs": "epochs of solvers whose step is an epoch",
}

_BUDGET_HELP = ("a number of seconds (e.g. 300) or a dict like {'time': 300}, {'steps': 5}, {'sweeps': 3} "
                "or {'epochs': 2}")

#: Columns of the comparison table: (row key, header, format).
TABLE_COLUMNS = (
    ("label", "solver", "{}"),
    ("model_desc", "model (params)", "{}"),
    ("steps_desc", "steps", "{}"),
    ("loss", "loss", "{:.6g}"),
    ("data_loss", "SSE/N", "{:.6g}"),
    ("train_acc", "train acc", "{:.4f}"),
    ("test_acc", "test acc", "{:.4f}"),
    ("time", "train s", "{:.1f}"),
    ("wall_time", "wall s", "{:.1f}"),
    ("time_to_loss", "t(loss) s", "{:.1f}"),
    ("time_to_acc", "t(acc) s", "{:.1f}"),
    ("peak_mb", "peak +MB", "{:.0f}"),
)
_TEXT_COLUMNS = ("label", "model_desc", "steps_desc", "status")
STATUS_COLUMN = ("status", "status", "{}")


# --------------------------------------------------------------------------- budget
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def parse_budget(budget: Any) -> dict[str, float | int]:
    """The budget as a dict with keys from :data:`BUDGET_KEYS`.

    Raises:
        SolverError: the budget is not a positive number of seconds or such a dict.

    Example:
        >>> parse_budget(300)
        {'time': 300.0}
        >>> parse_budget({"sweeps": 3, "time": 60})
        {'sweeps': 3, 'time': 60.0}
    """
    if _is_number(budget):
        seconds = float(budget)
        if not (math.isfinite(seconds) and seconds > 0):
            raise SolverError(f"a budget in seconds must be a positive number, got {budget!r}")
        return {"time": seconds}
    if not isinstance(budget, Mapping):
        raise SolverError(f"budget must be {_BUDGET_HELP}; got {budget!r}")
    if not budget:
        raise SolverError(f"the budget dict is empty; give {_BUDGET_HELP}")
    out: dict[str, float | int] = {}
    for key, value in budget.items():
        if key not in BUDGET_KEYS:
            raise SolverError(f"unknown budget key {key!r}; use {', '.join(BUDGET_KEYS)} ({_BUDGET_HELP})")
        if key == "time":
            if not _is_number(value) or not (math.isfinite(float(value)) and float(value) > 0):
                raise SolverError(f"budget 'time' must be a positive number of seconds, got {value!r}")
            out[key] = float(value)
        else:
            if not _is_number(value) or float(value) != int(value) or int(value) < 1:
                raise SolverError(f"budget {key!r} must be a whole number >= 1, got {value!r}")
            out[key] = int(value)
    return out


def _plural(n: int | float, unit: str) -> str:
    return f"{n:g} {unit}" if n == 1 else f"{n:g} {unit}s"


def describe_budget(budget: Mapping[str, float | int]) -> str:
    """A parsed budget in words.

    Example:
        >>> describe_budget({"time": 300.0, "sweeps": 2})
        '300 s of training or 2 sweeps (whichever comes first)'
    """
    text = " or ".join(f"{v:g} s of training" if k == "time" else _plural(v, k[:-1]) for k, v in budget.items())
    return text + (" (whichever comes first)" if len(budget) > 1 else "")


def budget_for(solver, budget: Mapping[str, float | int]) -> tuple[int | None, float | None, str]:
    """``(steps, time_limit, description)`` of a parsed budget for one solver instance.

    Example:
        >>> import solvers
        >>> budget_for(solvers.get("coordinate")(), {"sweeps": 3, "epochs": 9})
        (3, None, '3 sweeps')
    """
    from .bench import resolve_steps

    steps = resolve_steps(solver, sweeps=budget.get("sweeps"), epochs=budget.get("epochs"),
                          steps=budget.get("steps"), strict=False)
    time_limit = budget.get("time")
    unit = getattr(solver, "step_unit", "step")
    unit = unit if isinstance(unit, str) else "step"
    parts = []
    if steps is not None:
        parts.append(_plural(steps, unit))
    if time_limit is not None:
        parts.append(f"{time_limit:g} s")
    if steps is None and time_limit is None:
        steps = int(getattr(solver, "default_steps", 10))
        parts.append(f"{_plural(steps, unit)} (the solver's default: no budget key applies)")
    return steps, time_limit, " or ".join(parts)


# --------------------------------------------------------------------------- solvers
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
        items: solver names or ``(name, options)`` pairs; a single string may
            list names separated by commas.
        options: per-solver options ``{"adam": {"lr": 1e-3}}`` and/or shared
            options ``{"ridge": 1.0}`` (given to every selected solver that has
            the option; an option none has is an error).

    Raises:
        SolverError: unknown solver, unknown option, or no solvers.

    Example:
        >>> [e.label for e in parse_solvers("coordinate, coordinate", {"ridge": 2.0})]
        ['coordinate', 'coordinate#2']
    """
    import solvers as registry

    if isinstance(items, str):
        items = [s.strip() for s in items.split(",") if s.strip()]
    items = list(items or [])
    if not items:
        raise SolverError(f"no solvers to compare; pick some of: {', '.join(registry.available())}")
    pairs: list[tuple[str, dict]] = []
    for item in items:
        if isinstance(item, str):
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
            raise SolverError(f"options given for solver {key!r}, which is not among the compared solvers "
                              f"({', '.join(classes)}); add it to the solvers or drop its options")
        else:
            shared[key] = value
    for key in shared:
        if not any(key in getattr(cls, "defaults", {}) for cls in classes.values()):
            raise SolverError(f"no compared solver ({', '.join(classes)}) has option {key!r}; "
                              "give per-solver options as {'solver': {'key': value}} (--option solver.key=value)")
    entries: list[Entry] = []
    for name, own in pairs:
        cls = classes[name]
        opts = {k: v for k, v in shared.items() if k in getattr(cls, "defaults", {})}
        opts.update(per_solver.get(name, {}))
        opts.update(own)
        cls(**opts)._resolve_options()  # an unknown option fails now, naming the solver's options
        label = name if not own else f"{name}[{_options_text(own)}]"
        taken = [e.label for e in entries]
        if label in taken:
            k = 2
            while f"{label}#{k}" in taken:
                k += 1
            label = f"{label}#{k}"
        entries.append(Entry(label, name, opts, registry._REGISTRY.get(name)))
    return entries


# --------------------------------------------------------------------------- memory
def _proc_status_mb() -> dict[str, float]:
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) / 1024.0
    except OSError:
        pass
    return out


def _reset_peak() -> bool:
    """Reset the kernel's peak-resident counter of this process (Linux); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return "VmHWM" in _proc_status_mb()
    except OSError:
        return False


class _MemoryProbe:
    """Resident-memory growth of this process over a block of code, in MiB."""

    def __enter__(self) -> "_MemoryProbe":
        self.resettable = _reset_peak()
        status = _proc_status_mb()
        self.before = status.get("VmRSS")
        if not self.resettable:
            from .api import peak_rss_mb

            self.before = peak_rss_mb()
        return self

    def __exit__(self, *exc) -> None:
        if self.resettable:
            self.peak = _proc_status_mb().get("VmHWM")
        else:
            from .api import peak_rss_mb

            self.peak = peak_rss_mb()
        if self.peak is None or self.before is None:
            self.growth = None
        else:
            self.growth = max(0.0, self.peak - self.before)


# --------------------------------------------------------------------------- running one solver
def _data_loss(model, data) -> float:
    """Sum of squared errors over the training set divided by N (no ridge term)."""
    Y = data.one_hot("train")
    scores = model.forward(data.x_train)
    return float(np.sum((scores - Y) ** 2)) / max(len(Y), 1)


def _model_name(model) -> str:
    return getattr(model, "name", None) or type(model).__name__


def _run_entry(task: dict) -> dict:
    """Train one contestant; runs in this process or in a spawned one."""
    import solvers as registry

    from . import api

    entry: Entry = task["entry"]
    if task["in_child"] and entry.target is not None and registry._REGISTRY.get(entry.name) != entry.target:
        registry.register(entry.name, entry.target)  # a solver registered at run time in the parent
    instance = registry.get(entry.name)(**entry.options)
    steps, time_limit, budget_desc = budget_for(instance, task["budget"])
    model = task["model"] if task["in_child"] else task["model"].copy()
    data = task["data"]
    status = "ok"
    with _MemoryProbe() as memory:
        t0 = time.perf_counter()
        try:
            api.train(model, data, instance, steps=steps, time_limit=time_limit, quiet=task["quiet"],
                      seed=task["seed"])
        except DivergenceError:
            # One diverging method must not sink the comparison: keep its last finite state.
            status = f"diverged at step {instance.history_.final['step'] + 1}"
        wall = time.perf_counter() - t0
    trained = instance.model_
    final = instance.history_.final
    unit = instance.step_unit if isinstance(instance.step_unit, str) else "step"
    row = {
        "label": entry.label,
        "solver": entry.name,
        "options": getattr(instance, "opts_", entry.options),
        "model": _model_name(trained),
        "num_params": getattr(trained, "num_params", None),
        "own_model": trained is not model,
        "budget": budget_desc,
        "steps": final["step"],
        "step_unit": unit,
        "loss": final["loss"],
        "data_loss": _data_loss(trained, data),
        "train_acc": final.get("train_acc"),
        "test_acc": final.get("test_acc"),
        "time": final["time"],
        "wall_time": wall,
        "passes": final.get("passes"),
        "updates": final.get("updates"),
        "peak_mb": memory.growth,
        "peak_rss_mb": memory.peak,
        "peak_counter_reset": memory.resettable,
        "status": status,
    }
    return {"row": row, "history": instance.history_.to_dict(), "model": trained}


def _child_main(conn, task: dict) -> None:  # pragma: no cover - runs in the spawned process
    try:
        conn.send(("ok", _run_entry(task)))
    except KeyboardInterrupt:
        conn.send(("interrupted", None))
    except BaseException as exc:  # report every failure to the parent rather than dying silently
        conn.send(("error", (type(exc).__module__, type(exc).__name__, str(exc))))
    finally:
        conn.close()


def _run_isolated(task: dict) -> dict:
    """:func:`_run_entry` in a fresh ``spawn``-ed process; its errors are raised here."""
    import multiprocessing as mp

    from . import errors

    entry: Entry = task["entry"]
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(sender, dict(task, in_child=True)), daemon=True,
                       name=f"symnet-compare-{entry.label}")
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
    import builtins

    builtin = getattr(builtins, name, None) if module == "builtins" else None
    if isinstance(builtin, type) and issubclass(builtin, OSError):  # missing or unwritable paths, a full disk
        raise builtin(message)
    raise SolverError(f"solver {entry.label!r} failed in its process: {name}: {message}")


# --------------------------------------------------------------------------- the comparison
def _safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label).strip("_") or "solver"


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return fmt.format(value)


class Comparison:
    """Histories and final figures of several solvers trained from the same start.

    Attributes:
        histories: ``label -> History`` in the order the solvers ran.
        rows: one dict per solver (``label``, ``solver``, ``loss``,
            ``data_loss``, ``train_acc``, ``test_acc``, ``time``, ``wall_time``,
            ``time_to_loss``, ``time_to_acc``, ``peak_mb`` ...).
        models: ``label -> trained model`` (empty for a comparison read back
            with :meth:`load`).
        meta: model, dataset, sample counts, budget, seed, targets and how
            memory was measured.

    Example:
        >>> import symnet
        >>> c = symnet.compare("mlp", symnet.datasets.xor(8), ["coordinate"], {"steps": 1}, quiet=True)
        >>> c.rows[0]["time_to_loss"] == c.rows[0]["time"]  # the only solver sets the default target
        True
    """

    def __init__(self, histories: Mapping[str, History], rows: Sequence[dict], meta: Mapping[str, Any],
                 models: Mapping[str, Any] | None = None, *, target_loss: float | None = None,
                 target_acc: float | None = None) -> None:
        self.histories = dict(histories)
        self.rows = [dict(r) for r in rows]
        self.models = dict(models or {})
        self.meta = dict(meta)
        self._set_targets(target_loss, target_acc)

    # ---------------------------------------------------------------- targets
    def _set_targets(self, target_loss: float | None, target_acc: float | None) -> None:
        finals = [r["loss"] for r in self.rows if r.get("loss") is not None and math.isfinite(r["loss"])]
        accs = [r["test_acc"] for r in self.rows if r.get("test_acc") is not None]
        if target_loss is None:
            target_loss = max(finals) if finals else None
            self.meta["target_loss_rule"] = "worst final loss among the solvers"
        else:
            self.meta["target_loss_rule"] = "given"
        if target_acc is None:
            target_acc = min(accs) if accs else None
            self.meta["target_acc_rule"] = "lowest final test accuracy among the solvers"
        else:
            self.meta["target_acc_rule"] = "given"
        self.meta["target_loss"] = target_loss
        self.meta["target_acc"] = target_acc
        for row in self.rows:
            h = self.histories[row["label"]]
            row["time_to_loss"] = None if target_loss is None else h.first_reaching("loss", target_loss, below=True)
            row["time_to_acc"] = None if target_acc is None else h.first_reaching("test_acc", target_acc,
                                                                                  below=False)
            row["model_desc"] = f"{row['model']} ({row['num_params']:,})" if row.get("num_params") is not None \
                else row["model"]
            row["steps_desc"] = _plural(row["steps"], row.get("step_unit") or "step")

    # ---------------------------------------------------------------- text
    def title(self) -> str:
        """``model poly (23,466 params) on mnist (N = 60,000 train / 10,000 test)``."""
        m = self.meta
        params = f" ({m['num_params']:,} params)" if m.get("num_params") is not None else ""
        return (f"model {m.get('model')}{params} on {m.get('dataset')} "
                f"(N = {m.get('n_train', 0):,} train / {m.get('n_test', 0):,} test)")

    def caption(self) -> str:
        """What every column means, the targets and how they were chosen, and the machine's load."""
        m = self.meta
        tl, ta = m.get("target_loss"), m.get("target_acc")
        tl_text = "-" if tl is None else f"{tl:.6g}"
        ta_text = "-" if ta is None else f"{ta:.4f}"
        how = m.get("memory_method", "")
        load = m.get("load_average")
        lines = [
            f"{self.title()}; budget per solver: {m.get('budget_desc', m.get('budget'))}; seed {m.get('seed')}; "
            "every solver starts from the same initial model (a solver marked 'own model' builds and trains "
            "a model of its own).",
            "loss: training objective per sample (squared error over one-hot targets plus the solver's "
            "ridge * ||theta||^2, divided by N); SSE/N: the same without the ridge term.",
            "train s: training time (wall clock inside the solver's steps, evaluation excluded); wall s: the "
            "whole run including evaluation after every step.",
            f"t(loss): training seconds until the loss first reached {tl_text} ({m.get('target_loss_rule')}); "
            f"t(acc): until the test accuracy first reached {ta_text} ({m.get('target_acc_rule')}); "
            "'-': not reached.",
            f"peak +MB: growth of resident memory while the solver ran (peak minus the size before it), {how}.",
        ]
        if load:
            lines.append(f"load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f} on "
                         f"{m.get('cpu_count')} cores.")
        return "\n".join(lines)

    def _columns(self):
        columns = TABLE_COLUMNS
        if any(r.get("status", "ok") != "ok" for r in self.rows):
            columns = columns + (STATUS_COLUMN,)
        return columns

    def _display_rows(self) -> list[dict]:
        rows = []
        for r in self.rows:
            d = dict(r)
            if r.get("own_model"):
                d["model_desc"] = f"{r['model_desc']}, own model"
            rows.append(d)
        return rows

    def table(self, fmt: str = "text", caption: bool = True) -> str:
        """The table as aligned text (``fmt="text"``) or Markdown (``fmt="markdown"``), with its caption.

        Columns: solver, model (params), steps, final loss, SSE/N, train and
        test accuracy, training and wall time, time to the target loss and to
        the target accuracy, peak memory growth (see :meth:`caption`).
        """
        columns = self._columns()
        rows = self._display_rows()
        cells = [[_cell(r.get(k), f) for k, _, f in columns] for r in rows]
        headers = [h for _, h, _ in columns]
        if fmt == "markdown":
            align = ["---" if k in _TEXT_COLUMNS else "---:" for k, _, _ in columns]
            lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
            lines += ["| " + " | ".join(c) + " |" for c in cells]
            text = "\n".join(lines)
            return text + ("\n\n" + "  \n".join(self.caption().splitlines()) if caption else "")
        if fmt != "text":
            raise DataError(f"table format must be 'text' or 'markdown', got {fmt!r}")
        widths = [max(len(x) for x in col) for col in zip(headers, *cells)]
        lines = []
        for i, line in enumerate([headers] + cells):
            parts = [c.ljust(w) if k in _TEXT_COLUMNS else c.rjust(w)
                     for c, w, (k, _, _) in zip(line, widths, columns)]
            lines.append("  ".join(parts).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines) + ("\n\n" + self.caption() if caption else "")

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"Comparison({', '.join(self.histories)}; {self.title()})"

    def _repr_markdown_(self) -> str:
        return self.table("markdown")

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        from .api import _plain

        return _plain({"meta": self.meta, "rows": self.rows,
                       "histories": {k: h.to_dict() for k, h in self.histories.items()}})

    def to_json(self) -> str:
        """Meta, rows and every history as JSON (non-finite numbers become ``null``)."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> "Comparison":
        meta = dict(payload.get("meta", {}))
        histories = {k: History.from_dict(v) for k, v in payload.get("histories", {}).items()}
        given_loss = meta.get("target_loss") if meta.get("target_loss_rule") == "given" else None
        given_acc = meta.get("target_acc") if meta.get("target_acc_rule") == "given" else None
        return cls(histories, payload.get("rows", []), meta, target_loss=given_loss, target_acc=given_acc)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Comparison":
        """Read back a saved comparison (``comparison.json`` or the folder holding it); no models."""
        from .io import read_json

        path = Path(path)
        if path.is_dir():
            path = path / "comparison.json"
        payload = read_json(path, "comparison")
        if not isinstance(payload, dict) or "rows" not in payload or "histories" not in payload:
            from .errors import CorruptFileError

            raise CorruptFileError(f"{path} is not a comparison written by symnet.compare; "
                                   "point to its comparison.json")
        return cls.from_dict(payload)

    # ---------------------------------------------------------------- figures and files
    def legend_label(self, label: str) -> str:
        row = next((r for r in self.rows if r["label"] == label), {})
        if row.get("own_model"):
            return f"{label} (own model, {row.get('num_params') or 0:,} params)"
        return label

    def plot(self):
        """The figures as a :class:`symnet.plots.Figures` (``name -> Figure``); a notebook shows them inline.

        ``loss_vs_time`` and ``loss_vs_passes``: training loss (log scale)
        against training time and against passes over the data;
        ``test_acc_vs_time``: test accuracy against training time.
        """
        from . import plots

        return plots.comparison_figures(self)

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write ``table.txt``, ``table.md``, ``comparison.json`` and the PNGs into ``out``; per solver its
        ``<label>/model.npz`` (when the models are at hand) and ``<label>/history.json``."""
        from . import io as sio

        out = Path(out)
        written = [sio.atomic_write_bytes(out / "table.txt", (self.table("text") + "\n").encode()),
                   sio.atomic_write_bytes(out / "table.md", (self.table("markdown") + "\n").encode()),
                   sio.atomic_write_bytes(out / "comparison.json", (self.to_json() + "\n").encode())]
        for label, history in self.histories.items():
            folder = out / _safe_name(label)
            written.append(sio.atomic_write_bytes(folder / "history.json", (history.to_json() + "\n").encode()))
            if label in self.models:
                written.append(sio.save_model(self.models[label], folder / "model.npz"))
        written += self.plot().save(out)
        return written


# --------------------------------------------------------------------------- entry point
def _check_target(value: Any, what: str, upper: float | None = None) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) < 0 or \
            (upper is not None and float(value) > upper):
        extra = f" (a fraction between 0 and {upper:g}, e.g. 0.95)" if upper is not None else " (>= 0)"
        raise SolverError(f"{what} must be a number{extra}, got {value!r}")
    return float(value)


def compare(model, data, solvers: Sequence, budget: Any, *, target_loss: float | None = None,
            target_acc: float | None = None, out: str | os.PathLike | None = None, quiet: bool | None = None,
            seed: int = 0, options: Mapping[str, Any] | None = None, isolate: bool = False,
            callback=None) -> Comparison:
    """Train a copy of ``model`` with each solver under the same budget and compare them.

    Args:
        model: a network (copied; never changed) or a preset name built for
            the data with ``seed``.
        data: a :class:`~symnet.datasets.Dataset` or a dataset name.
        solvers: solver names or ``(name, options)`` pairs; the same name may
            appear twice with different options.
        budget: seconds of training per solver, or a dict with ``time``,
            ``steps``, ``sweeps`` and/or ``epochs`` (see the module docstring).
        target_loss: loss for the time-to-target column (default: the worst
            final loss among the solvers).
        target_acc: test accuracy (fraction) for the time-to-target column
            (default: the lowest final test accuracy among the solvers).
        out: folder for table, JSON, figures, models and histories (written
            as each solver finishes, then complete at the end).
        quiet: hide progress bars.
        seed: seed of the preset's initialisation and of every solver.
        options: per-solver options ``{"adam": {"lr": 1e-3}}`` and/or shared
            ones ``{"ridge": 1.0}`` (given to the solvers that have them).
        isolate: run each solver in a fresh process (fair memory figures;
            see the module docstring).
        callback: called with each row as soon as its solver finishes.

    Returns:
        A :class:`Comparison`.

    Raises:
        SolverError: unknown solver or option, or a budget that is not a
            number of seconds or a budget dict.

    Example:
        >>> import symnet
        >>> c = symnet.compare("mlp", symnet.datasets.xor(8), ["coordinate"], 5.0, quiet=True)
        >>> c.rows[0]["solver"], "loss" in c.table()
        ('coordinate', True)
    """
    from . import api

    budget = parse_budget(budget)
    entries = parse_solvers(solvers, options)
    target_loss = _check_target(target_loss, "target_loss")
    target_acc = _check_target(target_acc, "target_acc", 1.0)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise SolverError(f"seed must be a whole number >= 0, got {seed!r}")
    data = api.load_data(data, quiet=quiet)
    if isinstance(model, str):
        model_name = model
        initial = api.build_model(model, data, seed=int(seed))
    else:
        if not hasattr(model, "copy") or not hasattr(model, "forward"):
            raise ModelError(f"model must be a network (symnet.Sequential) or a preset name, "
                             f"got {type(model).__name__}")
        model_name = _model_name(model)
        initial = model.copy()
    if tuple(initial.input_shape) != tuple(data.input_shape):
        raise DataError(f"the model expects samples of shape {tuple(initial.input_shape)} but {data.name} has "
                        f"{tuple(data.input_shape)}; build the model for this dataset")
    out = Path(out) if out is not None else None
    if out is not None:
        api._prepare_out(out)
    memory_method = ("measured in a fresh process per solver" if isolate else "measured in this process")
    resettable = _reset_peak()
    memory_method += (" with the kernel's peak counter reset before each solver" if resettable else
                      " from the process's peak resident size (a solver that peaks below an earlier one shows 0)")
    meta = {
        "model": model_name, "num_params": getattr(initial, "num_params", None),
        "dataset": data.name, "n_train": len(data.x_train), "n_test": len(data.x_test),
        "input_shape": list(data.input_shape), "budget": budget,
        "budget_desc": describe_budget(budget),
        "seed": int(seed), "isolate": bool(isolate), "memory_method": memory_method,
        "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
    }
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    histories: dict[str, History] = {}
    rows: list[dict] = []
    models: dict[str, Any] = {}
    for entry in entries:
        task = {"entry": entry, "model": initial, "data": data, "budget": budget, "seed": int(seed),
                "quiet": quiet, "in_child": False}
        result = _run_isolated(task) if isolate else _run_entry(task)
        histories[entry.label] = History.from_dict(result["history"])
        rows.append(result["row"])
        models[entry.label] = result["model"]
        if out is not None:  # keep what is finished, should a later solver fail or be interrupted
            from . import io as sio

            folder = out / _safe_name(entry.label)
            sio.atomic_write_bytes(folder / "history.json", (histories[entry.label].to_json() + "\n").encode())
            sio.save_model(result["model"], folder / "model.npz")
        if callback is not None:
            callback(result["row"])
    if load_before is not None:
        meta["load_average"] = [load_before, os.getloadavg()[0]]
    comparison = Comparison(histories, rows, meta, models, target_loss=target_loss, target_acc=target_acc)
    if out is not None:
        comparison.save(out)
    return comparison


__all__ = ["BUDGET_KEYS", "Comparison", "Entry", "budget_for", "compare", "describe_budget", "parse_budget",
           "parse_solvers"]
