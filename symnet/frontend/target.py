"""Time to a target loss: exact solvers against a tuned Adam, side by side from one start.

``symnet bench target`` and :func:`time_to_target` answer the question symnet
exists for: does exact solving reach a given training loss sooner than
gradient descent? The baseline is Adam at its tuned learning rate:

1. Adam (batches of 128) runs ``epochs`` epochs at each rate of ``lrs``
   (default 5e-4, 1e-3, 2.5e-3, 5e-3); the tuned rate is the one with the
   lowest training loss at the end (never the test set).
2. The targets are the tuned run's training loss after 1, 3 and ``epochs``
   epochs (the records that close those epochs).
3. Each exact solver runs from the same initial model, with its defaults and
   the same ridge in every objective, for ``time_limit`` seconds of training
   (default: twice the tuned Adam's time for all its epochs); its time to a
   target is the training time of its first history record at or below it
   (every solver records at least every 10 s of training, interim records
   inside long steps included, so that is an upper bound). Adam's own times to
   the targets are measured the same way.

Every run uses the runner of ``bench`` and ``compare``
(:mod:`symnet.frontend.runner`): the same initial parameters, the same data,
training seconds with evaluation excluded. Ratios are exact/Adam: below 1,
the exact solver got there first.

Example:
    >>> import symnet
    >>> data = symnet.datasets.load("mnist-small").subset(300, 100)
    >>> r = time_to_target("seed", data, ["coordinate"], lrs=[1e-3], epochs=2, time_limit=5, quiet=True)
    >>> [row["label"] for row in r.rows][:2], len(r.targets)
    (['adam[lr=0.001]', 'coordinate'], 2)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import symnet.core.files as sio
from symnet.core.errors import SolverError
from symnet.core.history import History
from symnet.core.run import RunSpec

from symnet.frontend import api, plots, runner
from symnet.frontend.tables import render

#: Adam's learning rates tried by default; the tuned one has the lowest training loss after the last epoch.
DEFAULT_LRS = (5e-4, 1e-3, 2.5e-3, 5e-3)
#: The exact solvers run by default.
DEFAULT_EXACT = ("gauss-newton", "coordinate", "lbfgs")
#: The reference rate reported beside the tuned one (Adam's published default).
REFERENCE_LR = 1e-3


@dataclass
class TargetResult:
    """What :func:`time_to_target` measured.

    Attributes:
        rows: one dict per run (Adam at each rate, then each exact solver): ``label``,
            ``solver``, ``kind`` (``"adam"``, ``"adam-tuned"`` or ``"exact"``), final
            ``loss``, ``test_acc``, training ``time``, ``t_<k>`` the training seconds
            to target ``k`` (None: not reached) and ``ratio_<k>`` (time / tuned
            Adam's time to the same target).
        targets: ``[(name, loss)]``, e.g. ``[("1 epoch", 0.21), ("3 epochs", 0.16), ...]``.
        histories: ``label -> History`` of every run.
        meta: model, data, ridge, the tuned rate, budgets, load average.
    """

    rows: list[dict]
    targets: list[tuple[str, float]]
    histories: dict[str, History]
    meta: dict = field(default_factory=dict)

    def columns(self):
        cols = [("label", "run", "{}"), ("loss", "final loss", "{:.5f}"), ("test_acc", "test acc", "{:.4f}"),
                ("time", "train s", "{:.1f}")]
        for k, (name, value) in enumerate(self.targets):
            cols += [(f"t_{k}", f"s to {name} ({value:.4g})", "{:.1f}"), (f"ratio_{k}", "ratio", "{:.2f}")]
        return cols

    def table(self, fmt: str = "text") -> str:
        """The rows as a table, with a caption that says how every figure was measured."""
        align = ["l"] + ["r"] * (len(self.columns()) - 1)
        text = render(self.rows, self.columns(), fmt, align=align)
        m = self.meta
        lines = [
            f"model {m['model']} ({m['num_params']:,} params) on {m['dataset']} (N = {m['n_train']:,} train / "
            f"{m['n_test']:,} test); ridge {m['ridge']:g} in every objective; every run from the same initial "
            f"model (seed {m['seed']}).",
            f"Adam: batches of {m['batch_size']}, {m['epochs']} epochs at each rate of {m['lrs']}; tuned rate "
            f"{m['tuned_lr']:g} (lowest training loss after epoch {m['epochs']}). Targets: its training loss after "
            f"{', '.join(name for name, _ in self.targets)}.",
            f"Exact solvers: their defaults (ridge excepted), {m['time_limit']:g} s of training each. 's to': "
            "training seconds (evaluation excluded) to the first record at or below the target ('-': not "
            "reached); ratio: that time over tuned Adam's (below 1: sooner than Adam).",
        ]
        if m.get("load_average"):
            lines.append(f"load average (1 min) before / after: {m['load_average'][0]:.2f} / "
                         f"{m['load_average'][1]:.2f} on {m['cpu_count']} cores.")
        sep = "  \n" if fmt == "markdown" else "\n"
        return text + "\n\n" + sep.join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict:
        return sio.to_jsonable({"meta": self.meta, "targets": self.targets, "rows": self.rows,
                                "histories": {k: h.to_dict() for k, h in self.histories.items()}})

    def to_json(self) -> str:
        """Meta, targets, rows and every history as JSON."""
        return json.dumps(self.to_dict(), indent=1)

    def plot(self):
        """:class:`symnet.frontend.plots.Figures` with ``loss_vs_time``: every curve, the targets, the budget."""
        return plots.target_figures(self)

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write ``table.txt``, ``table.md``, ``target.json`` and the figure into ``out``."""
        out = Path(out)
        written = [sio.atomic_write_bytes(out / "table.txt", (self.table() + "\n").encode()),
                   sio.atomic_write_bytes(out / "table.md", (self.table("markdown") + "\n").encode()),
                   sio.atomic_write_bytes(out / "target.json", (self.to_json() + "\n").encode())]
        return written + self.plot().save(out)


def _first_time(history: History, target: float) -> float | None:
    return history.first_reaching("loss", target, below=True, by="time")


def time_to_target(model, data, exact: Sequence = DEFAULT_EXACT, *, lrs: Sequence[float] = DEFAULT_LRS,
                   epochs: int = 10, batch_size: int = 128, ridge: float = 1.0, time_limit: float | None = None,
                   seed: int = 0, options: dict | None = None, quiet: bool | None = None,
                   isolate: bool = False, callback=None, client=None) -> TargetResult:
    """Run tuned Adam and each exact solver from one start and time them to Adam's 1-, 3- and N-epoch losses.

    Args:
        model: a preset name or a network (copied; never changed).
        data: a :class:`~symnet.core.datasets.Dataset` or a dataset name.
        exact: exact solvers (names, or ``(name, options)`` pairs) run with their defaults.
        lrs: Adam's learning rates to tune over.
        epochs: Adam's epochs; the targets are its losses after 1, 3 and this many epochs
            (those that exist).
        batch_size: Adam's batch size.
        ridge: the ridge of every objective, Adam's included.
        time_limit: seconds of training per exact solver (default: twice the tuned
            Adam's training time for all its epochs).
        seed: seed of the initial model and of every solver.
        options: further per-solver options ``{"gauss-newton": {...}}``.
        quiet: hide progress bars.
        isolate: run each solver in a fresh process.
        callback: called with each row as its run finishes.
        client: a Dask ``Client`` for every run (the exact solvers shard their samples on it).

    Returns:
        A :class:`TargetResult`.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise SolverError(f"epochs must be a whole number >= 1, got {epochs!r}")
    spec = RunSpec(epochs=epochs, time=time_limit, seed=seed, quiet=quiet)  # the one check of a budget
    lrs = [float(v) for v in lrs]
    if not lrs or any(not (math.isfinite(v) and v > 0) for v in lrs):
        raise SolverError(f"learning rates must be positive numbers, got {lrs!r}")
    adam_items = [("adam", {"lr": lr, "batch_size": batch_size, "ridge": ridge}) for lr in lrs]
    exact_items = [item if isinstance(item, (tuple, list)) else (item, {}) for item in exact]
    exact_items = [(name, {**dict(opts), "ridge": ridge}) for name, opts in exact_items]
    entries = runner.parse_solvers(adam_items + exact_items, options)  # bad names and options fail here
    lr_of = {}
    for entry, (name, opts) in zip(entries, adam_items + exact_items):
        entry.label = name if name != "adam" else f"adam[lr={opts['lr']:g}]"
        if name == "adam":
            lr_of[entry.label] = opts["lr"]
    data = api.load_data(data, quiet=quiet)
    model_name = model if isinstance(model, str) else runner.model_name(model)
    initial = api.build_model(model, data, seed=seed) if isinstance(model, str) else model.copy()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    histories: dict[str, History] = {}
    rows: list[dict] = []

    def keep(entry, result):
        histories[entry.label] = History.from_dict(result["history"])
        row = {k: result["row"][k] for k in ("label", "solver", "loss", "train_acc", "test_acc", "time", "steps",
                                              "step_unit", "status")}
        rows.append(row)
        if callback is not None:
            callback(row)

    adam_entries, exact_entries = entries[:len(adam_items)], entries[len(adam_items):]
    for entry, result in runner.run(adam_entries, initial, data, {"epochs": spec.epochs}, seed=seed, quiet=quiet,
                                    isolate=isolate, client=client):
        keep(entry, result)
    finite = [r for r in rows if r["loss"] is not None and math.isfinite(r["loss"]) and r["status"] == "ok"]
    if not finite:
        raise SolverError("Adam diverged at every learning rate; give smaller rates (--lrs)")
    tuned = min(finite, key=lambda r: r["loss"])
    tuned_history = histories[tuned["label"]]
    # the epochs' own records (interim records inside an epoch carry partial=1)
    losses = [r["loss"] for r in tuned_history if not r.get("partial")]
    marks = [e for e in (1, 3, epochs) if e <= epochs and e < len(losses)]
    targets = [(f"{e} epoch{'s' if e > 1 else ''}", float(losses[e])) for e in dict.fromkeys(marks)]
    adam_time = float(tuned_history.column("time")[-1])
    # this benchmark's default: the exact solvers get twice the time tuned Adam trained for
    budget = spec.time if spec.time is not None else 2.0 * adam_time
    for entry, result in runner.run(exact_entries, initial, data, {"time": budget}, seed=seed, quiet=quiet,
                                    isolate=isolate, client=client):
        keep(entry, result)
    for row in rows:
        if row["label"] == tuned["label"]:
            row["kind"] = "adam-tuned"
        else:
            row["kind"] = "adam" if row["solver"] == "adam" else "exact"
    reference = {k: _first_time(tuned_history, value) for k, (_, value) in enumerate(targets)}
    for row in rows:
        h = histories[row["label"]]
        for k, (_, value) in enumerate(targets):
            t = _first_time(h, value)
            row[f"t_{k}"] = t
            ref = reference[k]
            row[f"ratio_{k}"] = t / ref if t is not None and ref else None
    rows.sort(key=lambda r: {"adam-tuned": 0, "adam": 1, "exact": 2}[r["kind"]])
    meta = {
        "model": model_name, "num_params": getattr(initial, "num_params", None), "dataset": data.name,
        "n_train": len(data.x_train), "n_test": len(data.x_test), "ridge": float(ridge), "seed": int(seed),
        "batch_size": int(batch_size), "epochs": int(epochs), "lrs": lrs, "tuned_lr": lr_of[tuned["label"]],
        "reference_lr": REFERENCE_LR, "time_limit": budget, "adam_time": adam_time,
        "cpu_count": os.cpu_count(),
    }
    if load_before is not None:
        meta["load_average"] = [load_before, os.getloadavg()[0]]
    return TargetResult(rows, targets, histories, meta)


__all__ = ["DEFAULT_EXACT", "DEFAULT_LRS", "TargetResult", "time_to_target"]
