"""The reproduction framework: rows, the report (table, notes, caption, files), parts and the registry.

An experiment module registers its function with :func:`register`; :func:`reproduce`
runs it with a :class:`Context` and gathers its rows into a :class:`Reproduction`.
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

import symnet.core.files as sio
from symnet.core.errors import DatasetNotFoundError, SolverError
from symnet.core.version import __version__

from symnet.frontend import api, plots, runner
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


class Context:
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


def register(name: str, title: str, source: str, parts: Sequence[Part]):
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
    ctx = Context(spec, quick=quick, data_dir=data_dir, parts=None if parts is None else set(parts), quiet=quiet,
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
