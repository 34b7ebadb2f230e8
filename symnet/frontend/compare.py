"""One comparison for every backend: ``symnet.compare(model, data, solvers, budget)``.

Every solver starts from a copy of the same initial model, on the same data,
with the same seed, under the same budget; the result is a
:class:`Comparison` holding each solver's :class:`~symnet.core.history.History`,
a table, JSON and figures. Nothing here knows any backend by name: a solver
registered with :func:`symnet.solvers.register` takes part like the built-in ones.

Budget. The runner's budget model (:mod:`symnet.frontend.runner`, shared with
``symnet bench``): a number is a limit in seconds of training per solver; a
dict may hold ``"time"``, ``"steps"``, ``"sweeps"`` and ``"epochs"``, and a
solver stops at whichever of its limits comes first. The figures draw the
time budget as a vertical line.

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
with ``spawn``, :func:`symnet.frontend.runner.run_isolated`): allocator
caches, compiled kernels and memory the previous solver left behind cannot
flatter or penalise the next one. The command line isolates by default; the
Python API does not.

``symnet.compare`` is the function; the classes are imported from this module:
``from symnet.frontend.compare import Comparison`` (``symnet.compare`` names the function, not a module).

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
from pathlib import Path
from typing import Any, Mapping, Sequence

import symnet.core.files as sio
from symnet.core.model.saving import save_model
from symnet.core.errors import CorruptFileError, DataError, ModelError, RunExistsError, SolverError
from symnet.core.history import History
from symnet.core.run import RunSpec
from symnet.core.runtime import reset_peak

from symnet.frontend import api, plots, runner
from symnet.frontend.runner import BUDGET_KEYS, Entry, budget_for, describe_budget, parse_budget, parse_solvers
from symnet.frontend.tables import columns, render

#: Columns of the comparison table: (row key, header, format).
TABLE_COLUMNS = columns("label", "model_desc", "steps_desc", "loss", "data_loss", "train_acc", "test_acc", "time",
                        "wall_time", "time_to_loss", "time_to_acc", "peak_mb", time="{:.1f}", wall_time="{:.1f}")
_TEXT_COLUMNS = ("label", "model_desc", "steps_desc", "status")
STATUS_COLUMN = columns("status")[0]


# --------------------------------------------------------------------------- the comparison
def _safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label).strip("_") or "solver"


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
            row["steps_desc"] = runner.plural(row["steps"], row.get("step_unit") or "step")

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
        align = ["l" if k in _TEXT_COLUMNS else "r" for k, _, _ in columns]
        text = render(self._display_rows(), columns, fmt, align=align)
        if not caption:
            return text
        return text + "\n\n" + ("  \n".join(self.caption().splitlines()) if fmt == "markdown" else self.caption())

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"Comparison({', '.join(self.histories)}; {self.title()})"

    def _repr_markdown_(self) -> str:
        return self.table("markdown")

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        return sio.to_jsonable({"meta": self.meta, "rows": self.rows,
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
        path = Path(path)
        if path.is_dir():
            path = path / "comparison.json"
        payload = sio.read_json(path, "comparison")
        if not isinstance(payload, dict) or "rows" not in payload or "histories" not in payload:
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
        """The figures as a :class:`symnet.frontend.plots.Figures` (``name -> Figure``); a notebook shows them inline.

        ``loss_vs_time`` and ``loss_vs_passes``: training loss (log scale)
        against training time and against passes over the data;
        ``test_acc_vs_time``: test accuracy against training time.
        """
        return plots.comparison_figures(self)

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write ``table.txt``, ``table.md``, ``comparison.json`` and the PNGs into ``out``; per solver its
        ``<label>/model.npz`` (when the models are at hand) and ``<label>/history.json``."""
        out = Path(out)
        written = [sio.atomic_write_bytes(out / "table.txt", (self.table("text") + "\n").encode()),
                   sio.atomic_write_bytes(out / "table.md", (self.table("markdown") + "\n").encode()),
                   sio.atomic_write_bytes(out / "comparison.json", (self.to_json() + "\n").encode())]
        for label, history in self.histories.items():
            folder = out / _safe_name(label)
            written.append(sio.atomic_write_bytes(folder / "history.json", (history.to_json() + "\n").encode()))
            if label in self.models:
                written.append(save_model(self.models[label], folder / "model.npz"))
        written += self.plot().save(out)
        return written


# --------------------------------------------------------------------------- entry point
def _check_target(value: Any, what: str, upper: float | None = None) -> float | None:
    if value is None:
        return None
    if not runner.is_number(value) or not math.isfinite(float(value)) or float(value) < 0 or \
            (upper is not None and float(value) > upper):
        extra = f" (a fraction between 0 and {upper:g}, e.g. 0.95)" if upper is not None else " (>= 0)"
        raise SolverError(f"{what} must be a number{extra}, got {value!r}")
    return float(value)


def compare(model, data, solvers: Sequence, budget: Any, *, target_loss: float | None = None,
            target_acc: float | None = None, out: str | os.PathLike | None = None, quiet: bool | None = None,
            seed: int = 0, options: Mapping[str, Any] | None = None, isolate: bool = False,
            overwrite: bool = False, callback=None, client=None) -> Comparison:
    """Train a copy of ``model`` with each solver under the same budget and compare them.

    Args:
        model: a network (copied; never changed) or a preset name built for
            the data with ``seed``.
        data: a :class:`~symnet.core.datasets.Dataset` or a dataset name.
        solvers: solver names or ``(name, options)`` pairs; the same name may
            appear twice with different options.
        budget: seconds of training per solver, or a dict with ``time``,
            ``steps``, ``sweeps`` and/or ``epochs`` (see the module docstring).
        target_loss: loss for the time-to-target column (default: the worst
            final loss among the solvers).
        target_acc: test accuracy (fraction) for the time-to-target column
            (default: the lowest final test accuracy among the solvers).
        out: folder for table, JSON, figures, models and histories (written
            as each solver finishes, then complete at the end); a folder that
            is not empty is refused unless ``overwrite``.
        quiet: hide progress bars.
        seed: seed of the preset's initialisation and of every solver.
        options: per-solver options ``{"adam": {"lr": 1e-3}}`` and/or shared
            ones ``{"ridge": 1.0}`` (given to the solvers that have them).
        isolate: run each solver in a fresh process (fair memory figures;
            see the module docstring).
        overwrite: write into a folder that is not empty (replacing an earlier comparison's files).
        callback: called with each row as soon as its solver finishes.
        client: a Dask ``Client`` whose workers hold the samples' shards for the solvers that
            shard them (isolated solvers connect to its scheduler); never closed here.

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
    run = RunSpec.parse(budget, seed=seed, quiet=quiet)  # the one check of the budget and the seed
    budget = run.budget()
    if not budget:
        raise SolverError("give a budget: seconds of training per solver, or a dict like {'time': 300}, "
                          "{'steps': 5}, {'sweeps': 3} or {'epochs': 2}")
    entries = parse_solvers(solvers, options)
    target_loss = _check_target(target_loss, "target_loss")
    target_acc = _check_target(target_acc, "target_acc", 1.0)
    data = api.load_data(data, quiet=quiet)
    if isinstance(model, str):
        model_name = model
        initial = api.build_model(model, data, seed=int(seed))
    else:
        if not hasattr(model, "copy") or not hasattr(model, "forward"):
            raise ModelError(f"model must be a network (symnet.Sequential) or a preset name, "
                             f"got {type(model).__name__}")
        model_name = runner.model_name(model)
        initial = model.copy()
    if tuple(initial.input_shape) != tuple(data.input_shape):
        raise DataError(f"the model expects samples of shape {tuple(initial.input_shape)} but {data.name} has "
                        f"{tuple(data.input_shape)}; build the model for this dataset")
    out = Path(out) if out is not None else None
    if out is not None:
        api.prepare_out(out)
        if any(out.iterdir()) and not overwrite:
            raise RunExistsError(f"{out} is not empty; pass overwrite=True (--overwrite) to replace what is there, "
                                 "or pick another folder")
    memory_method = ("measured in a fresh process per solver" if isolate else "measured in this process")
    resettable = reset_peak()
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
    for entry, result in runner.run(entries, initial, data, budget, seed=int(seed), quiet=quiet, isolate=isolate,
                                    callback=callback, client=client):
        histories[entry.label] = History.from_dict(result["history"])
        rows.append(result["row"])
        models[entry.label] = result["model"]
        if out is not None:  # keep what is finished, should a later solver fail or be interrupted
            folder = out / _safe_name(entry.label)
            sio.atomic_write_bytes(folder / "history.json", (histories[entry.label].to_json() + "\n").encode())
            save_model(result["model"], folder / "model.npz")
    if load_before is not None:
        meta["load_average"] = [load_before, os.getloadavg()[0]]
    comparison = Comparison(histories, rows, meta, models, target_loss=target_loss, target_acc=target_acc)
    if out is not None:
        comparison.save(out)
    return comparison


__all__ = ["BUDGET_KEYS", "Comparison", "Entry", "budget_for", "compare", "describe_budget", "parse_budget",
           "parse_solvers"]
