"""The race: an exact solver against a tuned, scheduled Adam, in wall time, from the same starts, on held-out seeds.

``symnet bench race`` and :func:`race` measure what the claim "exact solving beats
gradient descent" has to survive at an optimization venue:

1. **A strong baseline, tuned without the test set.** Adam over learning rate ×
   schedule (constant, linear warm-up + cosine decay, one-cycle, schedule-free
   AdamW) × batch size, each at a fixed budget of ``epochs`` epochs, its schedule
   run to the end. Tuning costs two stages, on seed 1 only (seed 0 is reserved for
   choosing symnet's own defaults): every configuration on the first
   ``tune_samples`` training images, then the ``finalists`` best of them on the full
   training set. The tuned baseline is the finalist with the lowest training loss at
   the end of its schedule. The same configuration is then used for seeds 2 and 3
   (the "one tuning pass reused" that makes the race affordable).
2. **Equal budgets, same starts.** For each seed the baseline and the exact solver
   start from the same initial network (the seed's) and each runs in a fresh
   process. The exact solver gets the baseline's own training seconds as its time
   limit; the order of the two alternates from seed to seed. The exact solver runs
   with its defaults, frozen before the race (``docs/defaults.md``).
3. **The user's clock.** Every record carries the wall seconds since its run began
   (``wall``, evaluation included) beside the training seconds (``time``); the race
   reports wall time with the default threads as its headline and says so
   (``clock`` in the JSON).
4. **One objective.** Runs are compared on the training data loss, the mean squared
   error per sample without any ridge term (``data_loss``), so an exact solver that
   minimises a ridge-regularised objective is judged on the same number as Adam.

Per dataset and seed the result carries ``ratio_end`` (the exact solver's wall
seconds to the baseline's end-of-schedule data loss, divided by the baseline's wall
seconds for its whole schedule; ``None``: not reached within the equal budget),
both test accuracies at the end of the equal budget, and the wall seconds of each
run's first record (does the exact solver show anything before Adam's first epoch?).
The medians and ranges over seeds are in ``summary``.

Example:
    >>> import symnet
    >>> data = symnet.datasets.load("mnist-small").subset(300, 100)
    >>> r = race("seed", data, seeds=(1,), epochs=2, lrs=(1e-3,), schedules=("constant",), batch_sizes=(128,),
    ...          tune_samples=200, finalists=1, quiet=True)
    >>> r.meta["tuned"], [row["seed"] for row in r.rows], r.summary["ratio_end"]["n"] <= 1
    ('adam constant lr=0.001 b=128', [1], True)
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import symnet.core.files as sio
import symnet.core.progress as progress
from symnet.core.errors import SolverError
from symnet.core.history import History

from symnet.frontend import api, plots, runner
from symnet.frontend.tables import render

#: Learning rates of the baseline grid (Adam's published default 1e-3 among them).
DEFAULT_LRS = (1e-3, 2.5e-3, 5e-3, 1e-2)
#: Schedules of the baseline grid; "schedule-free" is AdamW schedule-free without weight decay.
DEFAULT_SCHEDULES = ("constant", "warmup-cosine", "one-cycle", "schedule-free")
#: Batch sizes of the baseline grid.
DEFAULT_BATCH_SIZES = (128, 512)
#: Seeds of the race; seed 0 is reserved for choosing defaults.
DEFAULT_SEEDS = (1, 2, 3)
#: Training images of the first tuning stage.
TUNE_SAMPLES = 10_000
#: Configurations carried from the first tuning stage to the full training set.
FINALISTS = 3
#: The exact solver raced by default.
DEFAULT_EXACT = "gauss-newton"
#: The grid of ``--quick`` (a smoke run).
QUICK_LRS = (1e-3, 5e-3)
QUICK_SCHEDULES = ("constant", "warmup-cosine")
QUICK_BATCH_SIZES = (128,)
#: AlgoPerf's winning margin over its baseline: the exact solver must reach the baseline's end loss within
#: this share of the baseline's wall time.
TARGET_RATIO = 0.78


def baseline_grid(lrs: Sequence[float] = DEFAULT_LRS, schedules: Sequence[str] = DEFAULT_SCHEDULES,
                  batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES) -> list[tuple[str, str, dict]]:
    """``(label, solver, options)`` of every baseline configuration, no weight decay and no ridge in any.

    Example:
        >>> [label for label, _, _ in baseline_grid((1e-3,), ("constant", "schedule-free"), (128,))]
        ['adam constant lr=0.001 b=128', 'adam schedule-free lr=0.001 b=128']
    """
    known = set(DEFAULT_SCHEDULES)
    unknown = [s for s in schedules if s not in known]
    if unknown:
        raise SolverError(f"unknown baseline schedule {unknown[0]!r}; choose from {', '.join(DEFAULT_SCHEDULES)}")
    lrs = [float(v) for v in lrs]
    if not lrs or any(not (math.isfinite(v) and v > 0) for v in lrs):
        raise SolverError(f"learning rates must be positive numbers, got {lrs!r}")
    out = []
    for schedule in schedules:
        for batch in batch_sizes:
            for lr in lrs:
                label = f"adam {schedule} lr={lr:g} b={int(batch)}"
                if schedule == "schedule-free":
                    out.append((label, "adamw-schedulefree", {"lr": lr, "batch_size": int(batch),
                                                              "weight_decay": 0.0}))
                else:
                    opts = {"lr": lr, "batch_size": int(batch)}
                    if schedule != "constant":
                        opts["schedule"] = schedule
                    out.append((label, "adam", opts))
    return out


def clock_of(history: History) -> str:
    """``"wall"`` when every record carries wall seconds, else ``"training"`` (older histories)."""
    return "wall" if history.records and all("wall" in r for r in history) else "training"


def seconds(record: dict, clock: str) -> float:
    """The record's seconds on ``clock``."""
    return float(record["wall"] if clock == "wall" else record["time"])


def data_loss(record: dict) -> float | None:
    """The record's training data loss (SSE per sample, no ridge), or its objective where that is all it has."""
    value = record.get("data_loss", record.get("loss"))
    return None if value is None else float(value)


def time_to(history: History, target: float, clock: str) -> float | None:
    """Seconds on ``clock`` of the first record whose data loss, over every training sample, is at or below
    ``target`` (an interim record's loss estimated on a subsample, ``loss_estimated``, does not count)."""
    for r in history:
        if r.get("loss_estimated"):
            continue
        v = data_loss(r)
        if v is not None and v <= target:
            return seconds(r, clock)
    return None


@dataclass
class RaceResult:
    """What :func:`race` measured on one model and one dataset.

    Attributes:
        rows: one dict per seed: ``seed``, the baseline's and the exact solver's end
            ``data_loss``, ``test_acc``, ``wall`` and ``train_seconds``, their
            ``first_record`` wall seconds and the baseline's first epoch, and
            ``ratio_end``.
        tuning: one dict per tuning run (stage 1 and 2): label, stage, end data loss, seconds.
        summary: medians and ranges over seeds, and whether each criterion held.
        histories: ``"<seed>/<label>"`` -> History of every seeded run.
        clock: ``"wall"`` (wall seconds with the default threads, evaluation included) or
            ``"training"`` when the histories lack wall seconds.
        meta: model, dataset, sizes, grid, tuned configuration, threads, load average.
    """

    rows: list[dict]
    tuning: list[dict]
    summary: dict
    histories: dict[str, History]
    clock: str
    meta: dict = field(default_factory=dict)

    def table(self, fmt: str = "text") -> str:
        cols = [("seed", "seed", "{}"), ("baseline_data_loss", "Adam loss", "{:.5f}"),
                ("exact_data_loss", "exact loss", "{:.5f}"), ("ratio_end", f"ratio ({self.clock} s)", "{:.2f}"),
                ("baseline_test_acc", "Adam test", "{:.4f}"), ("exact_test_acc", "exact test", "{:.4f}"),
                ("baseline_wall", "Adam s", "{:.1f}"), ("exact_wall", "exact s", "{:.1f}"),
                ("exact_first_record", "exact first s", "{:.1f}"),
                ("baseline_first_epoch", "Adam epoch 1 s", "{:.1f}")]
        return render(self.rows, cols, fmt)

    def __str__(self) -> str:
        s = self.summary
        lines = [self.table(), "",
                 f"tuned baseline: {self.meta.get('tuned')}; exact solver: {self.meta.get('exact')}; clock: "
                 f"{self.clock} seconds, {self.meta.get('threads')} threads",
                 f"ratio_end median {fmt_or_dash(s['ratio_end']['median'], '{:.2f}')} (range "
                 f"{fmt_or_dash(s['ratio_end']['min'], '{:.2f}')}-{fmt_or_dash(s['ratio_end']['max'], '{:.2f}')}); "
                 f"target <= {TARGET_RATIO}: {'met' if s['time_criterion'] else 'not met'}",
                 f"test accuracy at the equal budget: exact median {fmt_or_dash(s['exact']['test_acc_median'], '{:.4f}')}"
                 f" against Adam's mean {fmt_or_dash(s['baseline']['test_acc_mean'], '{:.4f}')}: "
                 f"{'met' if s['accuracy_criterion'] else 'not met'}"]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"clock": self.clock, "rows": self.rows, "tuning": self.tuning, "summary": self.summary,
                "meta": self.meta, "histories": {k: h.to_dict() for k, h in self.histories.items()}}

    def to_json(self) -> str:
        return json.dumps(sio.to_jsonable(self.to_dict()), indent=1)

    def curves(self) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
        """``(who, seconds, data loss, test accuracy)`` per seeded run, ``who`` being "baseline" or "exact"."""
        out = []
        for label, h in self.histories.items():
            who = "exact" if label.split("/", 1)[1] == self.meta["exact"] else "baseline"
            x = np.array([seconds(r, self.clock) for r in h], dtype=float)
            loss = np.array([np.nan if data_loss(r) is None else data_loss(r) for r in h], dtype=float)
            out.append((who, x, loss, h.column("test_acc")))
        return out

    def plot(self):
        """Curves of training data loss and test accuracy against the race's clock, every seeded run."""
        return plots.race_figures(self)

    def save(self, out: str | os.PathLike) -> list[Path]:
        """``race.json``, ``race.txt`` and the figures into folder ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = [sio.atomic_write_bytes(out / "race.json", self.to_json().encode()),
                   sio.atomic_write_bytes(out / "race.txt", (str(self) + "\n").encode())]
        written += self.plot().save(out, prefix="race_")
        return written


def fmt_or_dash(value, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def _spread(values: Sequence[float | None]) -> dict:
    """Median, min, max and count of the values that exist (None when none does)."""
    got = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not got:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(got), "min": min(got), "max": max(got), "n": len(got)}


def _first_epoch_seconds(history: History, clock: str) -> float | None:
    """Seconds on ``clock`` of the record that closes the first epoch (interim records carry ``partial``)."""
    for r in history:
        if r["step"] >= 1 and not r.get("partial"):
            return seconds(r, clock)
    return None


def race(model: str | Any = "poly2", data: Any = "mnist", *, exact: str | tuple = DEFAULT_EXACT,
         seeds: Sequence[int] = DEFAULT_SEEDS, epochs: int = 10, lrs: Sequence[float] = DEFAULT_LRS,
         schedules: Sequence[str] = DEFAULT_SCHEDULES, batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
         tune_samples: int = TUNE_SAMPLES, finalists: int = FINALISTS, isolate: bool = True,
         quiet: bool | None = None, callback: Callable[[str], None] | None = None, client=None) -> RaceResult:
    """Tune the baseline, then race it against ``exact`` on each seed at equal budgets; see the module docstring.

    Args:
        model: a preset name, or a network (copied; its initial parameters are then the same for every seed).
        data: a :class:`~symnet.core.datasets.Dataset` or a dataset name.
        exact: the exact solver: a name (run with its defaults) or a ``(name, options)`` pair.
        seeds: the race's seeds; the first one is also the tuning seed.
        epochs: the baseline's epochs; every schedule's horizon.
        lrs, schedules, batch_sizes: the baseline grid.
        tune_samples: training images of the first tuning stage (0: skip it, every configuration on full data).
        finalists: configurations carried to the second stage.
        isolate: each run in a fresh process (fair clocks and memory; the default).
        quiet: hide the progress bars (the race's own, with its ETA, and each run's).
        callback: called with a line of text as each run finishes (the CLI's progress).
        client: a Dask ``Client`` for every run.

    Returns:
        A :class:`RaceResult`.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise SolverError(f"epochs must be a whole number >= 1, got {epochs!r}")
    seeds = [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds):
        raise SolverError(f"seeds must be non-negative whole numbers, got {seeds!r}")
    grid = baseline_grid(lrs, schedules, batch_sizes)
    exact_name, exact_opts = (exact, {}) if isinstance(exact, str) else (exact[0], dict(exact[1]))
    runner.parse_solvers([(exact_name, exact_opts)])  # a bad name or option fails before any data is loaded
    data = api.load_data(data, quiet=quiet)
    say = callback or (lambda text: None)
    tuning: list[dict] = []
    tune_seed = seeds[0]
    n_train = len(data.x_train)
    staged = bool(tune_samples and tune_samples < n_train and len(grid) > finalists)
    # the race's work in sample-epochs (an exact run costs about what its baseline does), for the bar's ETA
    full = n_train * epochs
    plan = (len(grid) * int(tune_samples) * epochs if staged else 0) + \
        (min(len(grid), int(finalists)) if staged else len(grid)) * full + (2 * len(seeds) - 1) * full
    inner = True if quiet is None and not progress.is_quiet(None) else quiet  # one bar at a time: the race's
    with progress.bar(total=plan, desc="race", unit="sample-epoch", quiet=quiet) as bar:

        def done(units: float, text: str) -> None:
            bar.update(units)
            say(text)

        result = _race(model, data, grid, staged, tune_seed, seeds, epochs, int(tune_samples), finalists,
                       exact_name, exact_opts, tuning=tuning, done=done, full=full, quiet=inner, isolate=isolate,
                       client=client)
    return result


def _race(model, data, grid, staged, tune_seed, seeds, epochs, tune_samples, finalists, exact_name, exact_opts, *,
          tuning, done, full, quiet, isolate, client) -> RaceResult:
    """The stages of :func:`race` once its arguments are checked and its progress bar is up."""
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    n_train = len(data.x_train)

    def start(seed: int):
        return api.build_model(model, data, seed=seed) if isinstance(model, str) else model.copy()

    def run_one(label: str, name: str, opts: dict, initial, on_data, budget: dict, seed: int) -> dict:
        (entry,) = runner.parse_solvers([(name, opts)])
        entry.label = label
        ((_, result),) = runner.run([entry], initial, on_data, budget, seed=seed, quiet=quiet,
                                    isolate=isolate, client=client)
        return result

    def stage(number: int, configs, on_data, units: float) -> list:
        """Run ``configs`` at the tuning seed on ``on_data``; ``(end loss or inf, label, name, opts, history)``
        each, best first (the training data loss at the end of the schedule; never the test set)."""
        initial = start(tune_seed)
        scored = []
        for label, name, opts in configs:
            result = run_one(label, name, opts, initial, on_data, {"epochs": epochs}, tune_seed)
            h = History.from_dict(result["history"])
            end = data_loss(h.final) if result["row"]["status"] == "ok" else None
            tuning.append({"stage": number, "label": label, "data_loss": end, "samples": len(on_data.x_train),
                           "train_seconds": h.final["time"]})
            scored.append((math.inf if end is None or not math.isfinite(end) else end, label, name, opts, h))
            done(units, f"tune {number}/2 {label}: loss {fmt_or_dash(end, '{:.5f}')}")
        return sorted(scored, key=lambda item: item[0])

    # stage 1: every configuration on the first tune_samples images (skipped when that is the whole set);
    # stage 2: the finalists on the full training set; the winner's run is the tuning seed's baseline
    candidates = grid
    if staged:
        small = data.subset(tune_samples, min(len(data.x_test), 1000))
        first = stage(1, grid, small, len(small.x_train) * epochs)
        candidates = [(label, name, opts) for _, label, name, opts, _ in first[:max(1, int(finalists))]]
    best = stage(2, candidates, data, full)[0]
    if not math.isfinite(best[0]):
        raise SolverError("the baseline diverged in every configuration; give smaller learning rates (--lrs)")
    _, tuned_label, tuned_name, tuned_opts, tuned_history = best

    histories: dict[str, History] = {}
    rows: list[dict] = []
    for k, seed in enumerate(seeds):
        initial = start(seed)
        runs: dict[str, History] = {}
        if seed == tune_seed:
            runs["baseline"] = tuned_history
        order = ["baseline", "exact"] if k % 2 == 0 else ["exact", "baseline"]
        for who in order:
            if who in runs:
                continue
            if who == "baseline":
                result = run_one(tuned_label, tuned_name, tuned_opts, initial, data, {"epochs": epochs}, seed)
            else:
                # equal budgets: the baseline's training seconds on this seed, or the tuning run's when the
                # exact solver goes first
                ref = runs.get("baseline", tuned_history)
                result = run_one(exact_name, exact_name, exact_opts, initial, data, {"time": float(ref.final["time"])},
                                 seed)
            runs[who] = History.from_dict(result["history"])
            done(full, f"seed {seed} {who}: loss {fmt_or_dash(data_loss(runs[who].final), '{:.5f}')}")
        histories[f"{seed}/{tuned_label}"] = runs["baseline"]
        histories[f"{seed}/{exact_name}"] = runs["exact"]
        rows.append(_seed_row(seed, runs["baseline"], runs["exact"]))

    clock = "wall" if all(clock_of(h) == "wall" for h in histories.values()) else "training"
    for row in rows:  # the figures on the clock every run has
        row.update(_seed_figures(histories[f"{row['seed']}/{tuned_label}"], histories[f"{row['seed']}/{exact_name}"],
                                 clock))
    summary = _summary(rows)
    meta = {
        "model": model if isinstance(model, str) else runner.model_name(model), "dataset": data.name,
        "n_train": n_train, "n_test": len(data.x_test), "epochs": epochs, "seeds": seeds,
        "grid": [label for label, _, _ in grid],
        "tune_samples": tune_samples if staged else 0, "finalists": finalists, "tuned": tuned_label,
        "tuned_solver": tuned_name, "tuned_options": tuned_opts, "exact": exact_name, "exact_options": exact_opts,
        "threads": os.cpu_count(), "isolate": isolate,
        "title": f"{model if isinstance(model, str) else runner.model_name(model)} on {data.name}",
    }
    if load_before is not None:
        meta["load_average"] = [load_before, os.getloadavg()[0]]
    return RaceResult(rows, tuning, summary, histories, clock, meta)


def _seed_row(seed: int, baseline: History, exact: History) -> dict:
    return {"seed": seed,
            "baseline_data_loss": data_loss(baseline.final), "exact_data_loss": data_loss(exact.final),
            "baseline_test_acc": baseline.final.get("test_acc"), "exact_test_acc": exact.final.get("test_acc"),
            "baseline_train_seconds": baseline.final["time"], "exact_train_seconds": exact.final["time"]}


def _seed_figures(baseline: History, exact: History, clock: str) -> dict:
    b_end = data_loss(baseline.final)
    b_seconds = seconds(baseline.final, clock)
    t = time_to(exact, b_end, clock) if b_end is not None else None
    firsts = [seconds(r, clock) for r in exact if r["step"] >= 1]
    return {"baseline_wall": b_seconds, "exact_wall": seconds(exact.final, clock),
            "ratio_end": t / b_seconds if t is not None and b_seconds > 0 else None,
            "exact_time_to_baseline_end": t,
            "exact_first_record": firsts[0] if firsts else None,
            "baseline_first_epoch": _first_epoch_seconds(baseline, clock)}


def _summary(rows: list[dict]) -> dict:
    ratio = _spread([r["ratio_end"] for r in rows])
    b_acc = [r["baseline_test_acc"] for r in rows if r["baseline_test_acc"] is not None]
    e_acc = _spread([r["exact_test_acc"] for r in rows])
    b_mean = float(np.mean(b_acc)) if b_acc else None
    first_ok = [r["exact_first_record"] is not None and r["baseline_first_epoch"] is not None
                and r["exact_first_record"] <= r["baseline_first_epoch"] for r in rows]
    return {
        "ratio_end": ratio,
        "time_criterion": ratio["median"] is not None and ratio["median"] <= TARGET_RATIO
        and ratio["n"] == len(rows),
        "baseline": {"test_acc_mean": b_mean, "test_acc": _spread(b_acc),
                     "data_loss": _spread([r["baseline_data_loss"] for r in rows])},
        "exact": {"test_acc_median": e_acc["median"], "test_acc": e_acc,
                  "data_loss": _spread([r["exact_data_loss"] for r in rows])},
        "accuracy_gap": None if e_acc["median"] is None or b_mean is None else e_acc["median"] - b_mean,
        "accuracy_criterion": e_acc["median"] is not None and b_mean is not None and e_acc["median"] >= b_mean,
        "start_criterion": all(first_ok) if rows else False,
    }


__all__ = ["DEFAULT_BATCH_SIZES", "DEFAULT_LRS", "DEFAULT_SCHEDULES", "DEFAULT_SEEDS", "FINALISTS", "RaceResult",
           "TARGET_RATIO", "TUNE_SAMPLES", "baseline_grid", "clock_of", "data_loss", "race", "seconds", "time_to"]
