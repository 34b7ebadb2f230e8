"""Reproductions of the published tables this project answers: the source's figure beside ours.

Each reproduction is one plain function call (and one command,
``symnet reproduce NAME``) that runs symnet on the setting of a published
table and returns a :class:`Reproduction`: one row per published figure,
with the source's figure, ours, and numbered notes on every setting that
differs from the source's. :meth:`Reproduction.save` writes ``table.md``,
``results.json`` and the figures.

========================  ==================================================================
name                      what
========================  ==================================================================
``polyreg-tables``        thesis Tables 3.5-3.7: polynomial regression over windowed
                          products of neighbouring pixels on MNIST and Fashion-MNIST (exact
                          and bagged least squares, with and without ridge), coefficient
                          magnitudes, and the CNN rows (``poly2`` with Gauss-Newton and Adam)
``recovery``              thesis Table 3.1: how much of a random ReLU or sigmoid network
                          polynomial regression of degree 2, 3 and 4 recovers (median R^2)
``bridge-tables``         thesis Tables 3.8 and 3.9: R^2 between a network's equivalent
                          monomial weights and polynomial regression's, per degree, for
                          three polynomial stand-ins of ReLU
``symbolic-seed``         the original symbolic experiment: the ``seed`` network trained one
                          variable at a time on 100 MNIST images, then on all 60,000
``mlp-optimizers``        an MLP on MNIST for 10 epochs with gradient descent, momentum,
                          Nesterov and Adam, and the exact solvers on the same network
========================  ==================================================================

Parts. Every reproduction is split into parts (a run or a group of runs,
e.g. ``mnist-exact-ls``); ``parts=`` (``--parts``) selects some of them, and
the rows of the others still show the source's figure, with ours marked
``not run``. A part whose data is missing (Fashion-MNIST when Debian's
``dataset-fashion-mnist`` is not installed) is ``skipped`` with the reason.
:data:`REPRODUCTIONS` lists the parts; parts marked heavy take many minutes
on a 2-core machine.

Quick mode. ``quick=True`` (``--quick``) runs every part on a small subset
(MNIST from the images that ship with symnet) in well under a minute; its
figures check that everything runs, not the published numbers.

Example:
    >>> r = reproduce("recovery", quick=True, parts=["relu"], quiet=True)
    >>> [row.metric for row in r.rows][:2]
    ['median test R^2', 'median test R^2']
    >>> r.parts["relu"], r.parts["sigmoid"]
    ('ok', 'not run')
    >>> 0.0 <= r.rows[1].ours <= 1.0
    True
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import symnet.core.datasets as datasets
import symnet.core.files as sio
import symnet.core.model.presets as models
from symnet.core.errors import DatasetNotFoundError, SolverError
from symnet.core.layers import ACTIVATIONS
from symnet.core.linalg import ridge_dual, ridge_solve
from symnet.core.model.polyreg import PolyRegModel, features, monomial_table
from symnet.core.version import __version__

from symnet.frontend import api, bridge, plots, runner
from symnet.frontend.compare import compare
from symnet.frontend.tables import render

# --------------------------------------------------------------------------- rows and results
#: How each kind of figure is printed.
KINDS = ("percent", "r2", "magnitude", "coefficient", "seconds", "megabytes", "text")


def format_value(value: Any, kind: str) -> str:
    """One figure as printed in a reproduction table.

    Example:
        >>> [format_value(v, k) for v, k in ((0.9651, "percent"), (1.9e9, "magnitude"), (5.7e-3, "magnitude"),
        ...                                  (-0.0011, "coefficient"), (0.0123, "seconds"), (None, "r2"))]
        ['96.51%', '1.9e9', '5.7e-3', '-0.0011', '12.3 ms', '-']
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind in ("percent", "r2"):
        return f"{100.0 * value:.2f}%"
    if kind == "magnitude":
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if kind == "coefficient":
        return f"{value:.4f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2g}"
    if kind == "seconds":
        for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
            if abs(value) >= scale or unit == "us":
                return f"{value / scale:.3g} {unit}"
    if kind == "megabytes":
        return f"{value:,.0f} MB"
    return str(value)


@dataclass
class Row:
    """One published figure and ours.

    Attributes:
        table: where the source prints it (``"3.6"``), or a short name.
        setting: what was run (dataset, method, options).
        metric: what the figure measures (``"test acc"``, ``"median test R^2"`` ...).
        source: the source's figure (a number), or None when it has none.
        ours: our figure, or None when the part did not run.
        kind: how both are printed (one of :data:`KINDS`).
        notes: the settings in which ours differs from the source's, one sentence each.
        part: the part that computes ``ours``.
        status: ``"ok"``, ``"not run"`` or ``"skipped: <why>"`` (the part's status).
        source_text: printed instead of ``source`` when the source gives words ("about 44%").
    """

    table: str
    setting: str
    metric: str
    source: float | None
    ours: float | None
    kind: str
    notes: tuple = ()
    part: str = ""
    status: str = "ok"
    source_text: str | None = None


@dataclass
class Reproduction:
    """The rows of one reproduction, with what was run, where and how long it took.

    Attributes:
        name, title, source: which reproduction, and what the source is.
        rows: one :class:`Row` per published figure.
        parts: ``part -> status`` (``"ok"``, ``"not run"``, ``"skipped: ..."``).
        meta: date, machine, load average before and after, command, wall time, quick or not.
        details: everything else worth keeping (per-teacher R^2, chosen ridges, histories ...).
        figures: :class:`symnet.frontend.plots.Figures`, written by :meth:`save`.
    """

    name: str
    title: str
    source: str
    rows: list
    parts: dict
    meta: dict
    details: dict = field(default_factory=dict)
    figures: Any = None

    COLUMNS = (("table", "table", "{}"), ("setting", "setting", "{}"), ("metric", "metric", "{}"),
               ("source_cell", "source", "{}"), ("ours_cell", "ours", "{}"), ("note_refs", "notes", "{}"))

    def notes(self) -> list[str]:
        """The distinct notes of the rows, numbered in order of first appearance (1, 2, ...)."""
        seen: list[str] = []
        for row in self.rows:
            for note in row.notes:
                if note not in seen:
                    seen.append(note)
        return seen

    def _display(self) -> list[dict]:
        numbers = {note: i + 1 for i, note in enumerate(self.notes())}
        out = []
        for row in self.rows:
            ours = format_value(row.ours, row.kind) if row.status == "ok" else row.status.split(":")[0]
            out.append({"table": row.table, "setting": row.setting, "metric": row.metric,
                        "source_cell": row.source_text or format_value(row.source, row.kind),
                        "ours_cell": ours,
                        "note_refs": " ".join(f"[{numbers[n]}]" for n in row.notes)})
        return out

    def caption(self) -> str:
        """Notes, part statuses, and where, when and how the figures were measured."""
        m = self.meta
        lines = [f"[{i + 1}] {note}" for i, note in enumerate(self.notes())]
        lines.append("parts: " + "; ".join(f"{k}: {v}" for k, v in self.parts.items()))
        load = m.get("load_average") or [None, None]
        load_text = " / ".join("-" if v is None else f"{v:.2f}" for v in load)
        if all(v == "not run" for v in self.parts.values()):
            lines.append(f"dry run ({m.get('date')}): nothing was run; the commands for the parts are "
                         f"'symnet reproduce {self.name} --parts PART' (symnet reproduce --list)")
            lines.append(f"command: {m.get('command')}")
            return "\n".join(lines)
        lines.append(f"measured {m.get('date')} on {m.get('machine')}; load average (1 min) before / after: "
                     f"{load_text}; {m.get('wall_time', 0.0):.0f} s wall; symnet {m.get('version')}"
                     + ("; QUICK mode (small subsets: checks that it runs, not the published figures)"
                        if m.get("quick") else ""))
        if m.get("options"):
            lines.append("solver options given on the command line, laid over those in the notes: "
                         + "; ".join(f"{solver}: " + ", ".join(f"{k}={v}" for k, v in opts.items())
                                     for solver, opts in m["options"].items()))
        lines.append(f"command: {m.get('command')}")
        return "\n".join(lines)

    def table(self, fmt: str = "text", caption: bool = True) -> str:
        """The table (``fmt="text"`` or ``"markdown"``) with its notes and caption.

        Columns: table, setting, metric, the source's figure, ours, and the
        numbers of the notes on settings that differ from the source's.
        """
        align = ["l", "l", "l", "r", "r", "l"]
        text = render(self._display(), self.COLUMNS, fmt, align=align)
        head = f"{self.title}\nsource: {self.source}"
        if fmt == "markdown":
            head = f"**{self.title}** (source: {self.source})"
        if not caption:
            return text
        tail = self.caption()
        if fmt == "markdown":
            tail = "  \n".join(tail.splitlines())
        return f"{head}\n\n{text}\n\n{tail}"

    def __str__(self) -> str:
        return self.table()

    def _repr_markdown_(self) -> str:
        return self.table("markdown")

    def to_dict(self) -> dict:
        """Everything but the figures, JSON-ready (non-finite numbers become null)."""
        return sio.to_jsonable({"name": self.name, "title": self.title, "source": self.source,
                                "meta": self.meta, "parts": self.parts, "notes": self.notes(),
                                "rows": [asdict(r) for r in self.rows], "details": self.details})

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write ``table.md``, ``table.txt``, ``results.json`` and the figures (PNG) into ``out``."""
        out = Path(out)
        written = [sio.atomic_write_bytes(out / "table.md", (self.table("markdown") + "\n").encode()),
                   sio.atomic_write_bytes(out / "table.txt", (self.table("text") + "\n").encode()),
                   sio.atomic_write_bytes(out / "results.json", (json.dumps(self.to_dict(), indent=1) + "\n")
                                          .encode())]
        if self.figures:
            written += self.figures.save(out)
        return written


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Part:
    """A selectable piece of a reproduction: one run or a group of runs.

    Attributes:
        key: its name on the command line (``--parts``).
        what: one line on what it runs.
        minutes: estimated minutes of the full run on a 2-core machine.
        heavy: True when it takes long enough to be left to a dedicated machine.
    """

    key: str
    what: str
    minutes: float = 1.0
    heavy: bool = False


@dataclass(frozen=True)
class Spec:
    """A reproduction: its name, what it reproduces, its parts and the function that runs it."""

    name: str
    title: str
    source: str
    parts: tuple
    run: Callable


class _Context:
    """What a reproduction's function needs: options, the selected parts, logging, details, figures."""

    def __init__(self, spec: Spec, *, quick: bool, data_dir, parts, quiet, seed: int, out, log) -> None:
        self.spec = spec
        self.options: dict[str, dict] = {}
        self.quick = quick
        self.data_dir = data_dir
        self.selected = parts
        self.quiet = quiet
        self.seed = seed
        self.out = out
        self.log = log
        self.status: dict[str, str] = {p.key: "not run" for p in spec.parts}
        self.details: dict[str, Any] = {}
        self.figures = plots.Figures()

    def run(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` if part ``key`` is selected, else None; its status is recorded either way."""
        if self.selected is not None and key not in self.selected:
            return None
        self.log(f"{self.spec.name}: {key} ...")
        t0 = time.perf_counter()
        try:
            result = fn()
        except DatasetNotFoundError as exc:
            self.status[key] = f"skipped: {str(exc).split(';')[0]}"
            self.log(f"{self.spec.name}: {key} skipped: {exc}")
            return None
        self.status[key] = "ok"
        self.details.setdefault("part_seconds", {})[key] = time.perf_counter() - t0
        self.log(f"{self.spec.name}: {key} done in {time.perf_counter() - t0:.1f} s")
        return result

    def row(self, table, setting, metric, source, result, value, kind, notes=(), part="", source_text=None) -> Row:
        """A row whose figure is ``value(result)`` when the part ran, else None with the part's status."""
        ours = None if result is None else value(result)
        if ours is not None:
            ours = float(ours)
        return Row(table, setting, metric, source, ours, kind, tuple(notes), part, self.status.get(part, "ok"),
                   source_text)


REPRODUCTIONS: dict[str, Spec] = {}


def _register(name: str, title: str, source: str, parts: Sequence[Part]):
    def wrap(fn):
        REPRODUCTIONS[name] = Spec(name, title, source, tuple(parts), fn)
        return fn

    return wrap


def available() -> list[str]:
    """The names of every reproduction.

    Example:
        >>> available()
        ['polyreg-tables', 'recovery', 'bridge-tables', 'symbolic-seed', 'mlp-optimizers']
    """
    return list(REPRODUCTIONS)


def describe() -> str:
    """Every reproduction with its title, source and parts (heavy ones marked), as printed by ``--list``."""
    lines = []
    for spec in REPRODUCTIONS.values():
        total = sum(p.minutes for p in spec.parts)
        lines.append(f"{spec.name}: {spec.title} (full run about {total:.0f} min on 2 cores)")
        lines.append(f"    source: {spec.source}")
        for p in spec.parts:
            lines.append(f"    {p.key:<24} {p.what} (about {p.minutes:g} min{', heavy' if p.heavy else ''})")
    return "\n".join(lines)


def _machine() -> str:
    memory = ""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    memory = f", {int(line.split()[1]) / 2**20:.0f} GiB"
                    break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores{memory}, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}")


def _load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _command(name: str, quick: bool, data_dir, parts, seed: int, out, options=None) -> str:
    words = ["symnet", "reproduce", name]
    if parts == []:
        words.append("--dry-run")
    if quick:
        words.append("--quick")
    if data_dir is not None:
        words += ["--data-dir", str(data_dir)]
    if parts:
        words += ["--parts", ",".join(parts)]
    if seed:
        words += ["--seed", str(seed)]
    for solver, opts in (options or {}).items():
        for key, value in opts.items():
            words += ["-O", f"{solver}.{key}={value}"]
    if out is not None:
        words += ["--out", str(out)]
    return shlex.join(words)


def reproduce(name: str, *, quick: bool = False, data_dir: str | os.PathLike | None = None,
              out: str | os.PathLike | None = None, parts: Sequence[str] | str | None = None,
              quiet: bool | None = None, seed: int = 0, log: Callable[[str], None] | None = None,
              dry_run: bool = False, options: dict[str, dict] | None = None) -> Reproduction:
    """Run reproduction ``name`` and return its :class:`Reproduction` (saved into ``out`` when given).

    Args:
        name: one of :func:`available`.
        quick: run every part on a small subset (under a minute; for tests).
        data_dir: folder holding ``mnist/`` and ``fashion-mnist/`` with their
            IDX files, or MNIST's files themselves. Fashion-MNIST is also found
            where Debian's ``dataset-fashion-mnist`` installs it. Nothing is downloaded.
        out: folder for ``table.md``, ``table.txt``, ``results.json`` and the figures.
        parts: the parts to run (names or one comma-separated string); default all.
        quiet: hide progress bars.
        seed: seed of initialisations, subsets and teachers.
        log: called with one line per part started and finished (default: silent).
        dry_run: run nothing; every row shows the source's figure and ours as ``not run``
            (the table to fill, with the notes).
        options: ``{solver: {option: value}}`` laid over the options a reproduction
            gives that solver (e.g. ``{"gauss-newton": {"batch_size": 1000}}``); the
            table's caption lists them, since the rows then differ from their notes.

    Raises:
        SolverError: unknown reproduction or part.
    """
    if name not in REPRODUCTIONS:
        raise SolverError(f"unknown reproduction {name!r}; choose one of {', '.join(available())} "
                          "(symnet reproduce --list)")
    spec = REPRODUCTIONS[name]
    if isinstance(parts, str):
        parts = [p.strip() for p in parts.split(",") if p.strip()]
    if parts is not None:
        keys = [p.key for p in spec.parts]
        unknown = [p for p in parts if p not in keys]
        if unknown or not parts:
            raise SolverError(f"reproduction {name!r} has no part {unknown[0] if unknown else '(none given)'!r}; "
                              f"its parts are: {', '.join(keys)}")
        parts = [k for k in keys if k in parts]
    if dry_run:
        parts = []
    options = {str(k): dict(v) for k, v in (options or {}).items()}
    for solver, opts in options.items():
        runner.parse_solvers([(solver, opts)])  # unknown solvers and options fail before anything runs
    if out is not None:
        api.prepare_out(Path(out))
    ctx = _Context(spec, quick=quick, data_dir=data_dir, parts=None if parts is None else set(parts), quiet=quiet,
                   seed=int(seed), out=None if out is None else Path(out), log=log or (lambda text: None))
    ctx.options = options
    load_before = _load_average()
    date = time.strftime("%Y-%m-%d %H:%M")
    t0 = time.perf_counter()
    rows = spec.run(ctx)
    meta = {"date": date, "machine": _machine(), "load_average": [load_before, _load_average()],
            "wall_time": time.perf_counter() - t0, "quick": bool(quick), "seed": int(seed),
            "command": _command(name, quick, data_dir, parts, seed, out, options), "options": options,
            "version": __version__,
            "python": sys.version.split()[0]}
    result = Reproduction(spec.name, spec.title, spec.source, rows, dict(ctx.status), meta, ctx.details, ctx.figures)
    figure = plots.source_vs_ours([{"label": f"{r.setting}: {r.metric}", "kind": r.kind, "source": r.source,
                                    "ours": r.ours} for r in rows], f"{spec.title}: the source's figures and ours")
    if figure is not None:
        result.figures["source_vs_ours"] = figure
    if out is not None:
        result.save(out)
    return result


# --------------------------------------------------------------------------- shared helpers
def _load(ctx: _Context, name: str, samples: int | None = None, test_samples: int | None = None):
    """A dataset for a part: full files from ``data_dir`` (or the standard folders); quick MNIST: the bundled subset."""
    if ctx.quick and name == "mnist":
        data = datasets.load("mnist-small")
    else:
        root = ctx.data_dir
        if root is not None and name != "mnist":
            # data_dir may hold MNIST's own files; look for this dataset only in its subfolder
            root = Path(root) / name if (Path(root) / name).is_dir() else None
        data = datasets.load(name, root, download=False, quiet=ctx.quiet)
    if samples is not None or test_samples is not None:
        data = data.subset(min(samples or len(data.x_train), len(data.x_train)),
                           min(test_samples or len(data.x_test), len(data.x_test)))
    return data


def _pool(data, k: int):
    """Images averaged over ``k x k`` blocks (28 x 28 -> 9 x 9 for k = 3): quick mode's smaller polynomial problems."""
    def pool(x):
        n, c, h, w = x.shape
        return x[:, :, : h // k * k, : w // k * k].reshape(n, c, h // k, k, w // k, k).mean(axis=(3, 5))

    return datasets.Dataset(data.name, pool(data.x_train), data.y_train, pool(data.x_test), data.y_test,
                            data.num_classes, dict(data.meta))


def _entry(name: str, options: dict | None = None) -> runner.Entry:
    return runner.parse_solvers([(name, options)] if options else [name])[0]


def _run(ctx: _Context, solver: str, options: dict | None, model, data, budget: dict) -> dict:
    """One solver through the shared runner; the row with the trained model and last record attached."""
    options = dict(options or {}, **ctx.options.get(solver, {}))
    result = runner.run_entry(_entry(solver, options), model, data, budget, seed=ctx.seed, quiet=ctx.quiet)
    row = dict(result["row"])
    row["model_obj"] = result["model"]
    row["last"] = result["history"]["records"][-1]
    row["history"] = result["history"]
    return row


def _public(row: dict) -> dict:
    """A runner row without the objects that do not go into JSON."""
    return {k: v for k, v in row.items() if k not in ("model_obj", "history")}


def _spread(weight: np.ndarray) -> tuple[float, float]:
    """The source's coefficient magnitudes: L1 = mean |w - median(w)| and L2 = std(w), over every coefficient."""
    w = np.asarray(weight, dtype=np.float64).ravel()
    return float(np.mean(np.abs(w - np.median(w)))), float(np.std(w))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Out-of-sample R^2 = 1 - SSE / sum (y - mean(y))^2 over every output."""
    y = np.asarray(y, dtype=np.float64)
    total = float(np.sum((y - y.mean(axis=0)) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / total if total > 0 else float("nan")


def _least_squares_by_degree(x_train, y_train, degrees: Sequence[int], ridge: float = 0.0):
    """Polynomial regression of every degree in ``degrees`` over all products of the inputs (window None).

    The table of the highest degree lists the lower degrees' monomials first,
    so one Gram serves every degree. Plain least squares at ``ridge = 0``
    (minimum norm when singular; the dual system when features outnumber samples).

    Returns:
        ``(table, {degree: weight})``: the highest degree's table and each
        degree's coefficients on the first rows of it.
    """
    d = x_train.shape[1]
    table = monomial_table((d,), max(degrees), None)
    deg = np.count_nonzero(table >= 0, axis=1)
    F = features(x_train, table)
    weights = {}
    G = F.T @ F if len(table) <= len(F) else None
    for D in degrees:
        k = int(np.count_nonzero(deg <= D))
        if G is not None or k <= len(F):
            Gk = G[:k, :k] if G is not None else F[:, :k].T @ F[:, :k]
            weights[D] = ridge_solve(Gk, F[:, :k].T @ y_train, ridge)
        else:
            weights[D] = ridge_dual(np.ascontiguousarray(F[:, :k]), y_train, ridge)
    return table, weights


# --------------------------------------------------------------------------- 1. polyreg-tables
THESIS_POLYREG = {
    "mnist": {"bagged": 0.9651, "cnn": 0.9903, "exact_train": 0.9866, "exact_test": 0.9581,
              "exact_l1": 1.9e9, "exact_l2": 1.6e10, "bagged_l1": 5.7e-3, "bagged_l2": 9.6e-3},
    "fashion-mnist": {"bagged": 0.8732, "cnn": 0.9080, "exact_train": 0.9439, "exact_test": 0.8788,
                      "exact_l1": 1.4e7, "exact_l2": 6.9e7, "bagged_l1": 8.4e-3, "bagged_l2": 1.3e-2},
}
_DATASET_TITLE = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
_SHORT = {"mnist": "mnist", "fashion-mnist": "fashion"}
#: Training seconds of Gauss-Newton (defaults) on poly2 in the CNN rows.
CNN_GN_SECONDS = 600.0
CNN_ADAM_EPOCHS = 10
#: Quick mode of polyreg-tables.
QUICK_POLYREG = {"samples": 1000, "test_samples": 300, "pool": 3, "batches": 4, "batch_size": 300,
                 "cnn_samples": 500, "cnn_test_samples": 200}


def _polyreg_parts() -> list[Part]:
    parts = []
    for ds in ("mnist", "fashion-mnist"):
        s, t = _SHORT[ds], _DATASET_TITLE[ds]
        parts += [Part(f"{s}-exact-ls", f"{t}: exact least squares (ridge 0), all training images", 4, True),
                  Part(f"{s}-exact-ridge", f"{t}: exact ridge, penalty chosen on a validation split", 3, True),
                  Part(f"{s}-bagged-ls", f"{t}: bagged least squares, 60 subsets of 2,000 (ridge 0)", 6, True),
                  Part(f"{s}-bagged-ridge", f"{t}: bagged ridge, penalty chosen on a validation split", 6, True),
                  Part(f"{s}-cnn-adam", f"{t}: poly2 with Adam (lr 1e-3, batches of 128), "
                                        f"{CNN_ADAM_EPOCHS} epochs", 3, True),
                  Part(f"{s}-cnn-gauss-newton", f"{t}: poly2 with gauss-newton (its defaults), "
                                                f"{CNN_GN_SECONDS:.0f} s of training (one step past the limit "
                                                "finishes)", 15, True)]
    return parts


@_register("polyreg-tables",
           "Polynomial regression over windowed pixel products vs a CNN (thesis Tables 3.5, 3.6, 3.7)",
           "the polynomial-regression thesis: Table 3.5 (bagged least squares and its CNN, out-of-sample "
           "accuracy), Table 3.6 (exact least squares, in- and out-of-sample), Table 3.7 (coefficient "
           "magnitudes)", _polyreg_parts())
def _polyreg_tables(ctx: _Context) -> list[Row]:
    q = ctx.quick
    n_q, nt_q = QUICK_POLYREG["samples"], QUICK_POLYREG["test_samples"]
    bag = {"batches": QUICK_POLYREG["batches"], "batch_size": QUICK_POLYREG["batch_size"]} if q else \
        {"batches": 60, "batch_size": 2000}
    rows: list[Row] = []
    notes_features = ("features: the 10,155 distinct monomials of degree <= 2 whose pixels fit a 3x3 window "
                      "(bias included; a product counted once); the source used 18,740 ordered products, "
                      "duplicates included")
    note_ls = ("ridge 0: Cholesky of the Gram when it is numerically positive definite, else the minimum-norm "
               "solution; the source's solver is not stated")
    note_ridge = ("penalty chosen on the last 5,000 training images (least validation squared error over "
                  "0.1 ... 1000 and midpoints), then refitted on all; the source used no penalty")
    note_bag = ("bagging: the average of the subsets' coefficients; a subset smaller than the number of features "
                "is solved through its 2,000 x 2,000 dual system (ridge 0: the minimum-norm interpolant)")
    note_spread = ("L1 = mean |w - median(w)|, L2 = standard deviation, over all 10 x 10,155 coefficients "
                   "(features never non-zero in training keep coefficient 0)")
    note_cnn = ("CNN: symnet's poly2 (conv 16 5x5 -> x^2 -> avgpool 2 -> conv 32 5x5 -> x^2 -> avgpool 2 -> "
                "linear; squared loss on one-hot targets); the source's CNN is its own (architecture and loss not "
                "restated here)")
    note_adam = (f"Adam: lr 1e-3, batches of 128, {CNN_ADAM_EPOCHS} epochs, float32, no ridge, seed 0")
    note_gn = (f"gauss-newton with its default options at the time of the run (in results.json), "
               f"{CNN_GN_SECONDS:.0f} s of training; the source has no exact-solver CNN")
    qp = QUICK_POLYREG
    note_quick = (f"QUICK: polyreg on {qp['samples']:,} training / {qp['test_samples']} test images averaged over "
                  f"{qp['pool']}x{qp['pool']} blocks (9x9), bagging {qp['batches']} x {qp['batch_size']}; poly2 "
                  f"with 4 and 8 filters on {qp['cnn_samples']} / {qp['cnn_test_samples']} images, Adam 4 epochs "
                  "of batches of 16, gauss-newton 1 iteration")
    for ds in ("mnist", "fashion-mnist"):
        src = THESIS_POLYREG[ds]
        s, title = _SHORT[ds], _DATASET_TITLE[ds]
        cache: dict[str, Any] = {}

        def data(ds=ds, cache=cache, pooled=True):
            key = "pooled" if pooled else "raw"
            if key not in cache:
                d = _load(ctx, ds, n_q if q else None, nt_q if q else None)
                cache["raw"] = d
                cache["pooled"] = _pool(d, QUICK_POLYREG["pool"]) if q else d
            return cache[key]

        def polyreg(options, data=data):
            d = data()
            model = PolyRegModel(d.input_shape, d.num_classes, 2, 3)
            row = _run(ctx, "polyreg", dict(options, degree=2, window=3), model, d, {})
            row["l1"], row["l2"] = _spread(row["model_obj"].weight)
            row["ridge_used"] = row["last"].get("ridge_used")
            return row

        def cnn(solver, options, budget, data=data):
            d = data(pooled=False)
            if q:
                d = d.subset(QUICK_POLYREG["cnn_samples"], QUICK_POLYREG["cnn_test_samples"])
            kw = {"channels": 4, "channels2": 8} if q else {}
            model = api.build_model("poly2", d, seed=ctx.seed, **kw)
            return _run(ctx, solver, options, model, d, budget)

        ex_ls = ctx.run(f"{s}-exact-ls", lambda: polyreg({"method": "exact", "ridge": 0.0}))
        ex_rg = ctx.run(f"{s}-exact-ridge", lambda: polyreg({"method": "exact", "ridge": None}))
        bg_ls = ctx.run(f"{s}-bagged-ls", lambda: polyreg(dict(bag, method="bagging", ridge=0.0)))
        bg_rg = ctx.run(f"{s}-bagged-ridge", lambda: polyreg(dict(bag, method="bagging", ridge=None)))
        adam = ctx.run(f"{s}-cnn-adam", lambda: cnn("adam", {"lr": 1e-3, "batch_size": 16 if q else 128},
                                                    {"epochs": 4 if q else CNN_ADAM_EPOCHS}))
        gn = ctx.run(f"{s}-cnn-gauss-newton",
                     lambda: cnn("gauss-newton", None, {"steps": 1} if q else {"time": CNN_GN_SECONDS}))
        for key, res in (("exact_ls", ex_ls), ("exact_ridge", ex_rg), ("bagged_ls", bg_ls),
                         ("bagged_ridge", bg_rg), ("cnn_adam", adam), ("cnn_gauss_newton", gn)):
            if res is not None:
                ctx.details.setdefault(ds, {})[key] = _public(res)
        if adam is not None:
            ctx.details.setdefault("histories", {})[f"{s}-cnn-adam"] = adam["history"]
        if gn is not None:
            ctx.details.setdefault("histories", {})[f"{s}-cnn-gauss-newton"] = gn["history"]
        quick = (note_quick,) if q else ()
        test, train = (lambda r: r["test_acc"]), (lambda r: r["train_acc"])

        def chosen(r):
            """The validation note with the penalty this run chose (the source used none)."""
            if r is None or r.get("ridge_used") is None:
                return (note_ridge,)
            return (note_ridge.replace("then refitted", f"here {r['ridge_used']:.3g}, then refitted"),)

        rows += [
            ctx.row("3.5", f"{title}, bagged least squares", "test acc", src["bagged"], bg_ls, test, "percent",
                    (notes_features, note_bag) + quick, f"{s}-bagged-ls"),
            ctx.row("3.5", f"{title}, bagged ridge", "test acc", src["bagged"], bg_rg, test, "percent",
                    (notes_features, note_bag) + chosen(bg_rg) + quick, f"{s}-bagged-ridge"),
            ctx.row("3.5", f"{title}, CNN: poly2 + Adam", "test acc", src["cnn"], adam, test, "percent",
                    (note_cnn, note_adam) + quick, f"{s}-cnn-adam"),
            ctx.row("3.5", f"{title}, CNN: poly2 + gauss-newton", "test acc", src["cnn"], gn, test, "percent",
                    (note_cnn, note_gn) + quick, f"{s}-cnn-gauss-newton"),
            ctx.row("3.6", f"{title}, exact least squares", "train acc", src["exact_train"], ex_ls, train,
                    "percent", (notes_features, note_ls) + quick, f"{s}-exact-ls"),
            ctx.row("3.6", f"{title}, exact least squares", "test acc", src["exact_test"], ex_ls, test,
                    "percent", (notes_features, note_ls) + quick, f"{s}-exact-ls"),
            ctx.row("3.6", f"{title}, exact ridge", "train acc", src["exact_train"], ex_rg, train, "percent",
                    (notes_features,) + chosen(ex_rg) + quick, f"{s}-exact-ridge"),
            ctx.row("3.6", f"{title}, exact ridge", "test acc", src["exact_test"], ex_rg, test, "percent",
                    (notes_features,) + chosen(ex_rg) + quick, f"{s}-exact-ridge"),
        ]
        for label, res, part, key in ((f"{title}, exact least squares", ex_ls, f"{s}-exact-ls", "exact"),
                                      (f"{title}, exact ridge", ex_rg, f"{s}-exact-ridge", "exact"),
                                      (f"{title}, bagged least squares", bg_ls, f"{s}-bagged-ls", "bagged"),
                                      (f"{title}, bagged ridge", bg_rg, f"{s}-bagged-ridge", "bagged")):
            extra = chosen(res) if "ridge" in part else ((note_ls,) if key == "exact" else ())
            for metric, which in (("L1", "l1"), ("L2", "l2")):
                rows.append(ctx.row("3.7", label, f"coefficient {metric}", src[f"{key}_{which}"], res,
                                    lambda r, which=which: r[which], "magnitude",
                                    (note_spread,) + extra + quick, part))
    return rows


# --------------------------------------------------------------------------- 2. recovery
THESIS_RECOVERY = {"relu": {2: 0.7201, 3: 0.721, 4: 0.8795}, "sigmoid": {2: 0.3525, 3: 0.784, 4: 0.8035}}
#: Full and quick settings of the recovery experiment.
RECOVERY = {
    False: {"d": 10, "m": 10, "n": 10_000, "n_test": 5_000, "teachers": 25,
            "widths": (1, 2, 5, 10, 20, 50, 100), "width_teachers": 11},
    True: {"d": 4, "m": 4, "n": 600, "n_test": 300, "teachers": 5, "widths": (1, 4), "width_teachers": 3},
}


def recovery_r2(activation: str, *, input_dim: int, hidden: int, n_train: int, n_test: int, teachers: int,
                degrees: Sequence[int] = (1, 2, 3, 4), seed: int = 0) -> dict[int, list[float]]:
    """Out-of-sample R^2 of polynomial regression on random teacher networks, per degree.

    Each teacher (:func:`symnet.core.datasets.network_regression`: N(0, 1)
    weights, no biases, Gaussian inputs, one real-valued output) labels
    ``n_train + n_test`` inputs; least squares over every monomial of degree
    <= D (window None) is fitted on the first ``n_train`` and scored on the rest.

    Returns:
        ``{degree: [R^2 of each teacher]}``.

    Example:
        >>> r2 = recovery_r2("relu", input_dim=3, hidden=2, n_train=200, n_test=100, teachers=2, degrees=(1, 2))
        >>> sorted(r2), len(r2[2]), all(b >= a - 0.05 for a, b in zip(r2[1], r2[2]))
        ([1, 2], 2, True)
    """
    out: dict[int, list[float]] = {D: [] for D in degrees}
    for t in range(teachers):
        r = datasets.network_regression(n_train, n_test, input_dim, hidden, activation, seed=seed * 1000 + t)
        table, weights = _least_squares_by_degree(r.x_train, r.y_train, degrees)
        F_test = features(r.x_test, table)
        for D, W in weights.items():
            out[D].append(_r2(r.y_test, F_test[:, :len(W)] @ W))
    return out


@_register("recovery",
           "How much of a random one-hidden-layer network polynomial regression recovers (thesis Table 3.1)",
           "the polynomial-regression thesis, Table 3.1: median out-of-sample R^2 of polynomial regression of "
           "degree 2, 3 and 4 fitted to random ReLU and sigmoid teachers",
           [Part("relu", "ReLU teachers: median R^2 of degree 1-4 fits", 1),
            Part("sigmoid", "sigmoid teachers: median R^2 of degree 1-4 fits", 1),
            Part("width", "R^2 against the teacher's width (figure recovery_vs_width.png)", 4)])
def _recovery(ctx: _Context) -> list[Row]:
    cfg = RECOVERY[ctx.quick]
    d, m, n, nt, T = cfg["d"], cfg["m"], cfg["n"], cfg["n_test"], cfg["teachers"]
    counts = {D: len(monomial_table((d,), D, None)) for D in (1, 2, 3, 4)}
    setting = (f"teachers: d = {d} Gaussian inputs N(0, I), m = {m} hidden units, one output, weights N(0, 1), no "
               f"biases; n = {n:,} training / {nt:,} test samples; median over {T} teachers; the source's d, m "
               f"and n for this table are not stated (its R^2-vs-width figure used d up to 25, n = 2,000)")
    fit = (f"plain least squares (ridge 0) over every monomial of degree <= D of the inputs (window None): "
           f"{counts[1]}, {counts[2]}, {counts[3]} and {counts[4]:,} features (bias included) for D = 1 ... 4")
    r2_note = "R^2 = 1 - SSE / sum (y - mean y)^2 on the test samples"
    rows = []
    for act in ("relu", "sigmoid"):
        res = ctx.run(act, lambda act=act: recovery_r2(act, input_dim=d, hidden=m, n_train=n, n_test=nt,
                                                       teachers=T, seed=ctx.seed))
        if res is not None:
            ctx.details[act] = {str(D): v for D, v in res.items()}
        name = "ReLU" if act == "relu" else "sigmoid"
        for D in (1, 2, 3, 4):
            rows.append(ctx.row("3.1", f"{name} teacher, polyreg degree {D}", "median test R^2",
                                THESIS_RECOVERY[act].get(D), res, lambda r, D=D: np.median(r[D]), "r2",
                                (setting, fit, r2_note) if D > 1 else (setting, fit, r2_note,
                                                                       "degree 1: a baseline; not in the source"),
                                act))
    widths = cfg["widths"]
    figure_note = (f"width sweep (figure recovery_vs_width.png): teachers as above with m = "
                   f"{', '.join(str(w) for w in widths)} hidden units, {cfg['width_teachers']} teachers per width; "
                   "the source's figure is not given as numbers here")

    def sweep():
        curves = {}
        for act in ("relu", "sigmoid"):
            lines = {}
            per = [recovery_r2(act, input_dim=d, hidden=w, n_train=n, n_test=nt, teachers=cfg["width_teachers"],
                               degrees=(2, 3, 4), seed=ctx.seed) for w in widths]
            for D in (2, 3, 4):
                v = [np.asarray(p[D]) for p in per]
                lines[f"degree {D}"] = ([float(np.median(x)) for x in v], [float(np.percentile(x, 25)) for x in v],
                                        [float(np.percentile(x, 75)) for x in v])
            curves["ReLU" if act == "relu" else "sigmoid"] = lines
        return curves

    curves = ctx.run("width", sweep)
    if curves is not None:
        ctx.details["width"] = {"widths": list(widths), "teachers": cfg["width_teachers"], "curves": curves}
        ctx.figures["recovery_vs_width"] = plots.recovery_curves(
            list(widths), curves, f"Polynomial regression on random one-hidden-layer teachers: d = {d}, n = {n:,} "
                                  f"train / {nt:,} test, {cfg['width_teachers']} teachers per width")
        for act, name in (("relu", "ReLU"), ("sigmoid", "sigmoid")):
            for D in (2, 4):
                med = curves[name][f"degree {D}"][0]
                rows.append(ctx.row("3.1 (fig.)", f"{name}, degree {D}, widest teacher (m = {widths[-1]})",
                                    "median test R^2", None, med, lambda r: r[-1], "r2",
                                    (fit, r2_note, figure_note), "width"))
    return rows


# --------------------------------------------------------------------------- 3. bridge-tables
THESIS_BRIDGE = {"l2": (0.9983, 0.815, 0.0026), "linf": (0.9984, 0.965, 0.0026), "posterior": (0.9984, 0.9853, 0.0031)}
#: The source's posterior fit (symnet's preset relu-approx-c), lowest degree first.
POSTERIOR_COEFFICIENTS = ACTIVATIONS["relu-approx-c"]
#: The pre-activation scale at which the source's posterior a0 and a2 are ReLU's Gaussian L2 projection
#: (0.1995 s and 0.1995 / s): s = sqrt(a0 / a2).
SOURCE_SCALE = math.sqrt(POSTERIOR_COEFFICIENTS[0] / POSTERIOR_COEFFICIENTS[2])
#: Interval of the L2 and L-infinity approximations of ReLU.
APPROX_INTERVAL = 3.0
BRIDGE = {False: {"d": 10, "m": 10, "n": 10_000, "teachers": 11}, True: {"d": 4, "m": 4, "n": 500, "teachers": 3}}


def relu_approximation(norm: str, degree: int = 3, half_width: float = APPROX_INTERVAL, points: int = 2001):
    """Coefficients (lowest degree first) of the best polynomial approximation of ReLU on ``[-h, h]``.

    ``norm="l2"``: least squares over the interval (uniform weight);
    ``norm="linf"``: minimax (the largest error least), a linear program.
    Both on a grid of ``points`` points. ReLU's odd part is ``x/2``, so the
    odd coefficients above 1 vanish.

    Example:
        >>> np.round(relu_approximation("linf", 2, 1.0), 3).tolist()   # 1/16 + x/2 + x^2/2
        [0.063, 0.5, 0.5]
        >>> np.round(relu_approximation("l2", 3, 1.0), 3).tolist()     # 3/32 + x/2 + 15/32 x^2
        [0.094, 0.5, 0.469, 0.0]
    """
    x = np.linspace(-half_width, half_width, points)
    y = np.maximum(x, 0.0)
    V = np.vander(x, degree + 1, increasing=True)
    if norm == "l2":
        coef = np.linalg.lstsq(V, y, rcond=None)[0]
    elif norm == "linf":
        from scipy.optimize import linprog  # scipy.optimize costs half a second at import; only this needs it

        k = degree + 1
        cost = np.zeros(k + 1)
        cost[-1] = 1.0
        ones = np.ones((points, 1))
        A = np.vstack([np.hstack([V, -ones]), np.hstack([-V, -ones])])
        b = np.concatenate([y, -y])
        res = linprog(cost, A_ub=A, b_ub=b, bounds=[(None, None)] * k + [(0, None)], method="highs")
        if not res.success:
            raise SolverError(f"the minimax fit of ReLU failed: {res.message}")
        coef = res.x[:k]
    else:
        raise SolverError(f"norm must be 'l2' or 'linf', got {norm!r}")
    coef = np.where(np.abs(coef) < 1e-9, 0.0, coef)
    return coef


def _relu_network(W1: np.ndarray, W2: np.ndarray, activation, scale: float = 1.0):
    """``W2 relu(W1 x)`` as a symnet mlp with a polynomial activation, first-layer rows of norm ``scale``.

    ``relu(c z) = c relu(z)`` for ``c > 0``, so moving each row's norm into
    the read-out gives the same ReLU network with pre-activations of scale
    ``scale`` (N(0, scale^2) for Gaussian inputs); at 1 the approximations on
    [-3, 3] apply.
    """
    norms = np.linalg.norm(W1, axis=1) / scale
    net = models.get("mlp", input_dim=W1.shape[1], hidden=W1.shape[0], num_classes=W2.shape[0],
                     activation=[float(a) for a in activation], seed=None)
    layers = [layer for layer in net.layers if getattr(layer, "params", None)]
    layers[0].params["weight"][...] = W1 / norms[:, None]
    layers[0].params["bias"][...] = 0.0
    layers[-1].params["weight"][...] = W2 * norms[None, :]
    layers[-1].params["bias"][...] = 0.0
    return net


@_register("bridge-tables",
           "A ReLU network's equivalent monomial weights against polynomial regression's (thesis Tables 3.8, 3.9)",
           "the polynomial-regression thesis, Tables 3.8 and 3.9: R^2 between a trained one-hidden-layer "
           "network's equivalent tensor weights and polynomial regression's, per degree, with ReLU replaced by "
           "its L2 and L-infinity polynomial approximations and by a posterior fit of the activation "
           "(0.114 + 0.498x + 0.352x^2 - 0.0011x^3)",
           [Part("teachers", "ReLU networks vs degree-3 polynomial regression fitted to their outputs", 1)])
def _bridge_tables(ctx: _Context) -> list[Row]:
    cfg = BRIDGE[ctx.quick]
    d, m, n, T = cfg["d"], cfg["m"], cfg["n"], cfg["teachers"]
    presets = {key: np.array(ACTIVATIONS[f"relu-approx-{key[-1]}"]) for key in ("preset-a", "preset-b", "preset-c")}
    # The two ways of writing the same ReLU network: pre-activations of scale 1 and of the source's scale.
    approx = {"unit": {"l2": relu_approximation("l2"), "linf": relu_approximation("linf"),
                       "preset-c": presets["preset-c"]},
              "source": presets}
    scales = {"unit": 1.0, "source": SOURCE_SCALE}

    def run():
        r2: dict = {sc: {k: [] for k in list(approx[sc]) + ["posterior"]} for sc in scales}
        fitted: dict = {sc: [] for sc in scales}
        for t in range(T):
            r = datasets.network_regression(n, 1, d, m, "relu", seed=ctx.seed * 1000 + t)
            table, weights = _least_squares_by_degree(r.x_train, r.y_train, (3,))
            W_poly = weights[3]
            for sc, scale in scales.items():
                for key, coeffs in approx[sc].items():
                    net = _relu_network(r.teacher["W1"], r.teacher["W2"], coeffs, scale)
                    eq = bridge.equivalent_weights(net, table, allow_dropped=True)
                    r2[sc][key].append({row.degree: row.r2 for row in bridge.r2_by_degree(eq.weight, W_poly, table)})
                start = _relu_network(r.teacher["W1"], r.teacher["W2"], POSTERIOR_COEFFICIENTS, scale)
                fit = bridge.fit_activation_coefficients(start, W_poly, table)
                fitted[sc].append(fit.coefficients.tolist())
                r2[sc]["posterior"].append({row.degree: row.r2 for row in fit.after})
        return {"r2": r2, "coefficients": fitted}

    res = ctx.run("teachers", run)
    if res is not None:
        ctx.details.update(res)
        ctx.details["approximations"] = {sc: {k: v.tolist() for k, v in a.items()} for sc, a in approx.items()}
        ctx.details["scales"] = scales

    def coeffs_text(c):
        return " + ".join(f"{v:.4g}x^{j}" if j > 1 else (f"{v:.4g}x" if j == 1 else f"{v:.4g}")
                          for j, v in enumerate(c)).replace("+ -", "- ")

    setting = (f"network: a random ReLU teacher (d = {d} Gaussian inputs, m = {m} hidden units, N(0, 1) weights, "
               f"no biases), one output, written with first-layer rows of unit norm (pre-activations N(0, 1)); "
               f"polyreg: least squares (ridge 0) of degree 3, window None, on n = {n:,} of its outputs; median "
               f"over {T} teachers")
    trained = ("the source compared a network trained by gradient descent on its data; symnet trains polynomial "
               "networks only, so the ReLU network here is the teacher itself, the network a perfect fit would "
               "reach")
    note_scale = (f"the same ReLU network written with first-layer rows of norm s = {SOURCE_SCALE:.3f} (the read-out "
                  "scaled back), so its pre-activations are N(0, s^2). For Gaussian pre-activations of scale s the "
                  "L2 projection of ReLU onto degree <= 3 is 0.1995 s + x/2 + 0.1995 x^2 / s; s = sqrt(0.114 / "
                  "0.352) is the scale at which the source's posterior a0 and a2 are that projection: a "
                  "calibration from the source's figures, not a prediction")
    note_pairing = ("relu-approx-a (0.188 + 0.5x + 0.21x^2) and relu-approx-b (0.096 + 0.5x + 0.3x^2) are the "
                    "project's stored ReLU approximations; pairing a with the source's L2 row and b with its "
                    "L-infinity row is inferred from the source's figures (their a2 against the posterior 0.352), "
                    "the source does not print its coefficients here")
    note_approx = {
        "l2": f"L2 approximation computed here: least squares on [-3, 3]: {coeffs_text(approx['unit']['l2'])}",
        "linf": f"L-infinity approximation computed here: minimax on [-3, 3]: {coeffs_text(approx['unit']['linf'])}",
        "preset-a": note_pairing, "preset-b": note_pairing,
        "preset-c": "the source's posterior activation applied as it is (relu-approx-c)",
        "posterior": ("posterior fit: the activation's coefficients fitted to polyreg's weights, degree by degree "
                      "from the highest (fit_activation_coefficients), first and last layers held"),
    }
    r2_note = ("R^2 per degree: 1 - |T_poly - T_net|^2 / |T_poly - mean T_poly|^2 over the monomials of that "
               "degree (bridge.r2_by_degree); it can fall below 0")
    labels = {"l2": ("3.8", "L2 approximation of ReLU", "l2"),
              "linf": ("3.8", "L-infinity approximation of ReLU", "linf"),
              "preset-a": ("3.8", "relu-approx-a (as L2)", "l2"),
              "preset-b": ("3.8", "relu-approx-b (as L-infinity)", "linf"),
              "posterior": ("3.9", "posterior fit of the activation", "posterior"),
              "preset-c": ("3.9", "relu-approx-c (the source's posterior) as is", None)}
    rows = []
    for sc, keys in (("unit", ("l2", "linf", "posterior", "preset-c")),
                     ("source", ("preset-a", "preset-b", "posterior", "preset-c"))):
        where = "" if sc == "unit" else f", scale {SOURCE_SCALE:.2f}"
        extra = () if sc == "unit" else (note_scale,)
        for key in keys:
            table, what, src_key = labels[key]
            src = THESIS_BRIDGE.get(src_key)
            for D in (1, 2, 3):
                rows.append(ctx.row(table, f"{what}{where}, degree {D}", "median R^2",
                                    None if src is None else src[D - 1], res,
                                    lambda r, sc=sc, key=key, D=D: np.median([x[D] for x in r["r2"][sc][key]]),
                                    "r2", (setting, trained) + extra + (note_approx[key], r2_note)
                                    + (("no source figure: an extra row",) if src is None else ()), "teachers"))
        for j, value in enumerate(POSTERIOR_COEFFICIENTS):
            rows.append(ctx.row("3.9", f"posterior fit{where}, a{j} (of x^{j})", "median", value, res,
                                lambda r, sc=sc, j=j: np.median([c[j] for c in r["coefficients"][sc]]),
                                "coefficient", (setting, trained) + extra + (note_approx["posterior"],), "teachers"))
    return rows


# --------------------------------------------------------------------------- 4. symbolic-seed
#: The original procedure: each variable in turn set to the global minimum of the loss in it, nothing else.
PLAIN_COORDINATE = {"ridge": 0.0, "linear_block": False, "rescale": False, "extrapolate": False}


@_register("symbolic-seed",
           "The original symbolic experiment: a one-filter conv -> linear network trained one variable at a time",
           "the project's first experiment: the seed network (conv, one 3x3 filter -> linear, no activation) "
           "trained variable by variable by symbolic solving on the first 100 MNIST training images: about 44% "
           "test accuracy after about an hour on a CPU, short of one pass over its ~6,800 variables; expanding "
           "its loss on more images ran out of memory",
           [Part("100", "the first 100 training images, one sweep: the original procedure and symnet's defaults", 0.2),
            Part("60000", "all 60,000 training images, one sweep each", 1)])
def _symbolic_seed(ctx: _Context) -> list[Row]:
    q = ctx.quick
    big = 2000 if q else None
    test_n = 500 if q else None

    def run(samples):
        data = _load(ctx, "mnist", samples, test_n)
        model = api.build_model("seed", data, seed=ctx.seed)
        warm = data.subset(10, 10)  # compile the numba kernels outside the timed sweeps
        for options in (PLAIN_COORDINATE, None):
            runner.run_entry(_entry("coordinate", options), api.build_model("seed", warm, seed=ctx.seed), warm,
                             {"sweeps": 1}, quiet=True)
        out = {}
        for key, options in (("plain", PLAIN_COORDINATE), ("defaults", None)):
            row = _run(ctx, "coordinate", options, model, data, {"sweeps": 1})
            row["s_per_variable"] = row["time"] / row["updates"] if row["updates"] else None
            out[key] = row
        return out

    small = ctx.run("100", lambda: run(100))
    large = ctx.run("60000", lambda: run(big))
    for key, res in (("100", small), ("60000", large)):
        if res is not None:
            ctx.details[key] = {k: _public(v) for k, v in res.items()}
    n_big = f"{big:,}" if q else "60,000"
    test = f"{test_n:,}" if q else "10,000"
    note_plain = ("the original procedure: each variable set in turn to the global minimum of the squared loss "
                  "in it (no ridge, no other step); here the minimum comes from the exact univariate polynomial, "
                  "not a symbolic expansion")
    note_def = ("symnet's coordinate defaults: ridge 1, and after each sweep an exact solve of the last layer, a "
                "per-channel rescale and a line search along the sweep's displacement")
    note_test = f"test accuracy on the first {test} MNIST test images" + ("" if q else " (all of them)") + \
        "; the source's test set is not stated"
    note_time = ("seconds of training per variable update, numba compilation excluded (a warm-up sweep on 10 "
                 "images runs first); the source: about an hour for fewer than ~6,800 variables, so more than "
                 "0.5 s each")
    note_mem = "growth of resident memory during the sweep; the source ran out of memory expanding the loss"
    note_quick = (f"QUICK: the bundled MNIST subset, {big:,} training images instead of 60,000 and {test_n} test "
                  "images") if q else None
    quick = (note_quick,) if q else ()
    rows = []
    for label, res, part, src_acc in (("100 images", small, "100", 0.44), (f"{n_big} images", large, "60000", None)):
        for key, note in (("plain", note_plain), ("defaults", note_def)):
            setting = f"seed, {label}, coordinate ({'original procedure' if key == 'plain' else 'defaults'}), 1 sweep"
            src_text = "about 44%" if src_acc is not None and key == "plain" else None
            rows.append(ctx.row("seed", setting, "test acc", src_acc if key == "plain" else None, res,
                                lambda r, key=key: r[key]["test_acc"], "percent", (note, note_test) + quick, part,
                                src_text))
            rows.append(ctx.row("seed", setting, "s / variable", 0.53 if part == "100" and key == "plain" else None,
                                res, lambda r, key=key: r[key]["s_per_variable"], "seconds", (note, note_time) + quick,
                                part, "> 0.5 s" if part == "100" and key == "plain" else None))
        rows.append(ctx.row("seed", f"seed, {label}, coordinate (defaults), 1 sweep", "peak memory", None, res,
                            lambda r: max(r["defaults"]["peak_mb"] or 0.0, 0.0), "megabytes", (note_mem,) + quick,
                            part, "out of memory" if part == "60000" else None))
    return rows


# --------------------------------------------------------------------------- 5. mlp-optimizers
THESIS_MLP = {"sgd": (0.9805, 0.9720), "momentum": (0.9996, 0.9812), "nesterov": (0.9997, 0.9826),
              "adam": (0.98, None)}
MLP_RATES = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adam": 0.001}
MLP_HIDDEN = 128
MLP_EPOCHS = 10
#: Training seconds of each exact solver on the MLP.
MLP_EXACT_SECONDS = 120.0
MLP_EXACT = ("gauss-newton", "lbfgs", "coordinate")


@_register("mlp-optimizers",
           "An MLP on MNIST, 10 epochs of gradient descent, momentum, Nesterov and Adam; exact solvers beside",
           "an MLP trained on MNIST for 10 epochs: gradient descent (lr 0.01) train 98.05% / test 97.20%, "
           "momentum (0.01) 99.96% / 98.12%, Nesterov (0.01) 99.97% / 98.26%, Adam (0.001) about 98% train; "
           "cross-entropy loss, ReLU",
           [Part("gradient", f"sgd, momentum, nesterov, adam at the source's rates, {MLP_EPOCHS} epochs", 1.5),
            Part("exact", f"gauss-newton, lbfgs and coordinate, {MLP_EXACT_SECONDS:.0f} s of training each", 7)])
def _mlp_optimizers(ctx: _Context) -> list[Row]:
    q = ctx.quick
    epochs = 1 if q else MLP_EPOCHS
    seconds = 5.0 if q else MLP_EXACT_SECONDS
    cache: dict[str, Any] = {}

    def data():
        if "data" not in cache:
            cache["data"] = _load(ctx, "mnist", 2000 if q else None, 500 if q else None)
        return cache["data"]

    def run(names):
        d = data()
        model = api.build_model("mlp", d, hidden=MLP_HIDDEN, seed=ctx.seed)
        solvers = [(nm, dict({"lr": MLP_RATES[nm]} if nm in MLP_RATES else {}, **ctx.options.get(nm, {})))
                   for nm in names]
        budget = {"epochs": epochs} if "adam" in names else {"time": seconds}
        c = compare(model, d, solvers, budget, seed=ctx.seed, quiet=ctx.quiet,
                    out=None if ctx.out is None else ctx.out / f"runs-{'gradient' if 'adam' in names else 'exact'}")
        for name, fig in c.plot().items():
            ctx.figures[f"{'gradient' if 'adam' in names else 'exact'}_{name}"] = fig
        return {row["solver"]: row for row in c.rows}

    grad = ctx.run("gradient", lambda: run(list(MLP_RATES)))
    exact = ctx.run("exact", lambda: run(list(MLP_EXACT)))
    for key, res in (("gradient", grad), ("exact", exact)):
        if res is not None:
            ctx.details[key] = res
    n_params = 784 * MLP_HIDDEN + MLP_HIDDEN + MLP_HIDDEN * 10 + 10
    note_net = (f"network: symnet's mlp preset, 784 -> {MLP_HIDDEN} -> x^2 -> 10 ({n_params:,} parameters; the hidden "
                f"width is chosen here, the source's is not stated), images flattened")
    note_loss = ("squared loss on one-hot targets with an x^2 activation; the source used cross-entropy and ReLU")
    note_grad = (f"batches of 128 (the source's batch size is not stated), float32, {epochs} epoch(s), seed 0; "
                 "momentum and Nesterov with momentum 0.9")
    note_exact = (f"exact solvers with their default options (in results.json), {seconds:.0f} s of training each "
                  "(a step that starts before the limit finishes); no source figure")
    note_quick = "QUICK: the bundled MNIST subset, 2,000 training / 500 test images, 1 epoch, 5 s per exact solver"
    quick = (note_quick,) if q else ()
    names = {"sgd": "gradient descent (sgd)", "momentum": "momentum", "nesterov": "Nesterov", "adam": "Adam"}
    rows = []
    for solver, (src_train, src_test) in THESIS_MLP.items():
        setting = f"mlp, {names[solver]}, lr {MLP_RATES[solver]:g}"
        for metric, src, key in (("train acc", src_train, "train_acc"), ("test acc", src_test, "test_acc")):
            rows.append(ctx.row("mlp", setting, metric, src, grad, lambda r, s=solver, k=key: r[s][k], "percent",
                                (note_net, note_loss, note_grad) + quick, "gradient",
                                "about 98%" if solver == "adam" and key == "train_acc" else None))
    for solver in MLP_EXACT:
        for metric, key in (("train acc", "train_acc"), ("test acc", "test_acc")):
            rows.append(ctx.row("mlp", f"mlp, {solver}", metric, None, exact, lambda r, s=solver, k=key: r[s][k],
                                "percent", (note_net, note_loss, note_exact) + quick, "exact"))
    return rows


__all__ = ["APPROX_INTERVAL", "KINDS", "POSTERIOR_COEFFICIENTS", "Part", "REPRODUCTIONS", "Reproduction", "Row",
           "Spec", "available", "describe", "format_value", "recovery_r2", "relu_approximation", "reproduce"]
