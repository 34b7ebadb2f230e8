"""The ``symnet`` command line.

Subcommands::

    symnet train        train one model with one solver, save model, history and summary
    symnet bench        train the same model with several solvers and print a table (--plot DIR: figures);
                        'symnet bench race': an exact solver against a tuned, scheduled Adam
                        'symnet bench target': exact solvers timed to a tuned Adam's training losses
    symnet compare      several solvers under one budget: table, JSON, figures, models
    symnet robustness   accuracy of saved models under Gaussian noise and black patches
    symnet verify       re-check the certificates of a run's exact steps
    symnet inspect      a saved model's layers, parameters, degrees and pictures
    symnet reproduce    one published table: the source's figures beside ours

Each subcommand is added by one small function that registers its arguments
and its handler (see :data:`COMMANDS`); adding a command is adding a function.

Every error a user can cause ends the command with one line
``symnet: error: <what went wrong and what to do>`` on stderr and exit code 2;
Ctrl-C exits with 130 and keeps the last checkpoint.

Example:
    >>> main(["train", "--dataset", "xor", "--sweeps", "1", "--quiet", "--out", "/tmp/symnet-doctest-xor"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import symnet.solvers as solvers
from symnet.solvers import options as options_
from symnet.core.errors import ModelError, SolverError, SymnetError, SymnetWarning
from symnet.core.model.saving import load_model
from symnet.core.run import DEFAULT_SECONDS
from symnet.core.runtime import Terminated, caused_by_interrupt, interrupt_of, terminate_as_interrupt
from symnet.core.version import __version__

from symnet.frontend import api, bench, cluster, race, reproduce, robustness, runner, target, verify
from symnet.frontend.arguments import (COUNT, NONNEGATIVE, POSITIVE, POSITIVE_INT, SOLVER_FLAGS, Parser, UsageError,
                                       add_budget_flags, add_cluster_flags, add_data_flags, add_model_flags,
                                       add_solver_flags, dataset_name, int_list, metavar, model_options,
                                       number_list, number_type, run_spec, scoped_option,
                                       solver_flags, solver_list, solver_options)
from symnet.frontend.compare import compare
from symnet.frontend.tables import columns
from symnet.frontend.inspection import inspect_path
from symnet.frontend.robustness import DEFAULT_AREAS, DEFAULT_SIGMAS

PROG = "symnet"


# --------------------------------------------------------------------------- output
TRAIN_COLUMNS = columns("solver", "model", "dataset", "steps", "loss", "train_acc", "test_acc", "time", "wall_time")


def _say(text: str = "") -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- commands
# Each subcommand's parser builder below has the same shape (add_parser, the shared flag groups, its own
# flags, the handler): argparse's declarative style, one builder per command, read top to bottom.
#: name -> function that adds the subcommand to the subparsers; see :func:`build_parser`.
COMMANDS: dict[str, Callable] = {}


def command(name: str):
    """Register ``fn(subparsers)`` as the builder of subcommand ``name``."""

    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


@command("train")
def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train one model with one solver",
                       description="Train a model and save model.npz, model.json, history.json, summary.json "
                                   "and a per-step checkpoint.npz into --out.")
    p.add_argument("--solver", default="coordinate", help="solver backend (default: coordinate)")
    add_data_flags(p)
    add_model_flags(p)
    p.add_argument("--init", metavar="PATH", help="start from a saved model (model.npz or its folder) "
                                                  "instead of a fresh preset")
    add_budget_flags(p)
    add_solver_flags(p)
    add_cluster_flags(p)
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="output folder (default: runs/<solver>-<model>-<time>)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    g.add_argument("--overwrite", action="store_true", help="replace the run in --out (refused otherwise)")
    g.add_argument("--certificates", nargs="?", const=True, choices=[True, "all"], metavar="all",
                   help="record every exact step in certificates.npz for `symnet verify` ('all': keep the "
                        "parameters before every step, so every one can be re-evaluated)")
    g.add_argument("--quiet", "-q", action="store_true", default=None, help="no progress bar")
    p.set_defaults(handler=cmd_train)
    return p


def cmd_train(args: argparse.Namespace, state: dict) -> int:
    solver_cls = solvers.get(args.solver)
    # a bad option fails now, not after loading the data
    instance = solver_cls(**options_.parse(solver_cls.name, solver_cls.OPTIONS, flags=solver_flags(args),
                                           pairs=args.option))
    # a first run with no budget should finish quickly (DEFAULT_SECONDS); see symnet.core.run.default_budget
    spec = run_spec(args, resume=args.resume, overwrite=args.overwrite, certificates=args.certificates or False,
                    no_budget="time")
    _, seconds = spec.limits(instance, strict=True)  # a flag that does not fit the solver fails now too
    if args.resume and not args.out:
        raise SolverError("--resume needs --out DIR, the folder of the run to continue")
    if args.init and (args.model or model_options(args)):
        raise ModelError("--init loads a saved model; drop --model and the model flags, or drop --init")
    if args.resume and args.overwrite:
        raise SolverError("--resume continues the run in --out and --overwrite replaces it; give one of them")
    if args.out:  # an earlier run in the folder is refused before any data is loaded
        api.claim_out(Path(args.out), resume=args.resume, overwrite=args.overwrite, create=False)

    data = api.load_data(dataset_name(args), args.data_dir, samples=args.samples, test_samples=args.test_samples,
                         download=args.download, quiet=args.quiet)
    if args.init:
        model = load_model(args.init)
        model_name = getattr(model, "name", None) or "model"
    else:
        model_name = args.model or api.default_model(data)
        model = api.build_model(model_name, data, seed=0 if args.seed is None else args.seed, **model_options(args))
    out = Path(args.out) if args.out else Path("runs") / f"{args.solver}-{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    state["out"] = out
    what = f"{model_name} ({model.num_params:,} parameters)"
    if getattr(solver_cls, "builds_model", False):  # e.g. polyreg: the preset is not what gets trained
        what = "its own model"
    _say(f"{'resuming' if args.resume else 'training'} {what} on {data.name} ({len(data.x_train):,} train / "
         f"{len(data.x_test):,} test) with {args.solver}")
    if spec.time is None and seconds == DEFAULT_SECONDS:
        _say(f"no budget given: training for {DEFAULT_SECONDS:.0f} s (set --sweeps, --epochs, --steps or "
             "--time-limit to change it)")
    with cluster.session(args.workers, args.scheduler, say=_say) as client:
        fitted = api.train(model, data, instance, run=spec.replace(out=out), client=client)
    _say(bench.format_table([fitted.summary_], TRAIN_COLUMNS))
    written = [name for name in api.RUN_FILES if (out / name).exists()]
    _say(f"saved to {out}/ ({', '.join(written)})")
    return 0


@command("bench")
def _bench_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="train one model with several solvers and print a table",
                       description="Train the same model from the same start with each solver and print dataset, "
                                   "model, solver, steps, wall time, loss, accuracies and time per variable update. "
                                   "'gradient' stands for every gradient optimizer, 'all' for every solver.")
    p.add_argument("solvers", nargs="*", default=["coordinate"], metavar="SOLVER",
                   help="solver names, 'gradient' or 'all' (default: coordinate); or 'race': an exact solver "
                        "against a tuned, scheduled Adam in wall time on held-out seeds; or 'target': the older "
                        "time-to-target benchmark")
    add_data_flags(p)
    add_model_flags(p)
    add_budget_flags(p)
    add_solver_flags(p)
    add_cluster_flags(p)
    g = p.add_argument_group("bench target (time to tuned Adam's training loss)")
    g.add_argument("--exact", type=solver_list, default=list(target.DEFAULT_EXACT), metavar="A,B,...",
                   help=f"exact solvers to time (default: {','.join(target.DEFAULT_EXACT)}); -O options go to them")
    g.add_argument("--lrs", type=number_list, default=list(target.DEFAULT_LRS), metavar="LR,LR,...",
                   help="Adam's learning rates to tune over (default: "
                        f"{','.join(f'{v:g}' for v in target.DEFAULT_LRS)}); --epochs sets its epochs (default 10) "
                        "and --time-limit each exact solver's training seconds (default: twice tuned Adam's)")
    g.add_argument("--out", metavar="DIR", help="write table.txt, table.md, target.json and the figure into DIR")
    g = p.add_argument_group("bench race (an exact solver against a tuned, scheduled Adam; --exact takes one "
                             "solver, --lrs the grid's rates, --epochs the schedules' length, default 10)")
    g.add_argument("--schedules", type=solver_list, default=None, metavar="S,S,...",
                   help=f"baseline schedules (default: {','.join(race.DEFAULT_SCHEDULES)})")
    g.add_argument("--batch-sizes", type=int_list, default=None, metavar="B,B,...",
                   help=f"baseline batch sizes (default: {','.join(map(str, race.DEFAULT_BATCH_SIZES))})")
    g.add_argument("--seeds", type=int_list, default=None, metavar="S,S,...",
                   help=f"seeds of the race; the first also tunes (default: "
                        f"{','.join(map(str, race.DEFAULT_SEEDS))}; seed 0 is kept for choosing defaults)")
    g.add_argument("--tune-samples", type=COUNT, default=race.TUNE_SAMPLES, metavar="N",
                   help=f"training images of the first tuning stage (default {race.TUNE_SAMPLES:,}; 0: none)")
    g.add_argument("--finalists", type=POSITIVE_INT, default=race.FINALISTS, metavar="K",
                   help=f"configurations tuned again on the full data (default {race.FINALISTS})")
    g.add_argument("--quick", action="store_true",
                   help="a smoke run: 2,000 training and 500 test images, 2 epochs, a 2 x 2 grid, one seed")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--plot", metavar="DIR", help="also write the training curves as PNGs into DIR (loss and test "
                                                  "accuracy against training time, passes and steps)")
    p.add_argument("--quiet", "-q", action="store_true", default=None, help="no progress bars")
    p.set_defaults(handler=cmd_bench)
    return p


def cmd_bench_target(args: argparse.Namespace) -> int:
    if len(args.solvers) > 1:
        raise SolverError("'symnet bench target' takes no solver names; choose the exact solvers with --exact A,B")
    if args.sweeps is not None or args.steps is not None:
        raise SolverError("'symnet bench target' counts Adam's --epochs and the exact solvers' --time-limit; "
                          "drop --sweeps and --steps")
    spec = run_spec(args)  # the budget flags are checked as everywhere: Adam's --epochs, the exact --time-limit
    if args.out:
        api.claim_out(Path(args.out), create=False)
    given = solver_options(args)
    ridge = given.pop("ridge", 1.0)
    if ridge == "auto":
        raise SolverError("'symnet bench target' times every solver on one objective, Adam's included: give --ridge "
                          "a number (default 1.0), not auto")
    # the exact solvers' options, checked by the runner's parser like every comparison's
    options = {e.name: e.options for e in runner.parse_solvers(args.exact, given)}
    data = api.load_data(dataset_name(args), args.data_dir, samples=args.samples, test_samples=args.test_samples,
                         download=args.download, quiet=args.quiet)
    model = api.build_model(args.model or api.default_model(data), data, seed=args.seed or 0,
                            **model_options(args))
    model.name = args.model or api.default_model(data)

    def report(row: dict) -> None:
        if not args.json:
            _say(f"  {row['label']}: loss {row['loss']:.6g}, test acc {row['test_acc']:.4f}, {row['time']:.1f} s "
                 "of training" + ("" if row["status"] == "ok" else f", {row['status']}"))

    with cluster.session(args.workers, args.scheduler, say=None if args.json else _say) as client:
        result = target.time_to_target(model, data, args.exact, lrs=args.lrs, epochs=spec.epochs or 10,
                                       ridge=ridge, time_limit=spec.time, seed=spec.seed or 0, options=options,
                                       quiet=spec.quiet, callback=report, client=client)
    if args.out:
        api.prepare_out(Path(args.out))
        result.save(Path(args.out))
    _say(json.dumps(result.to_dict()["rows"], indent=1) if args.json else "\n" + result.table())
    if args.plot:
        _say_figures(result.plot().save(args.plot), args.plot, args.json)
    return 0


def cmd_bench_race(args: argparse.Namespace) -> int:
    if len(args.solvers) > 1:
        raise SolverError("'symnet bench race' takes no solver names; choose the exact solver with --exact NAME")
    if args.sweeps is not None or args.steps is not None or args.time_limit is not None:
        raise SolverError("'symnet bench race' gives the exact solver the baseline's own training time and counts "
                          "the baseline in --epochs; drop --sweeps, --steps and --time-limit")
    exact = args.exact if args.exact != list(target.DEFAULT_EXACT) else [race.DEFAULT_EXACT]
    if len(exact) != 1:
        raise SolverError(f"'symnet bench race' races one exact solver, got {','.join(exact)}; give --exact NAME")
    given = solver_options(args)
    if args.out:
        api.claim_out(Path(args.out), create=False)
    quick = args.quick
    epochs = args.epochs or (2 if quick else 10)
    lrs = args.lrs if args.lrs != list(target.DEFAULT_LRS) else list(race.QUICK_LRS if quick else race.DEFAULT_LRS)
    schedules = args.schedules or list(race.QUICK_SCHEDULES if quick else race.DEFAULT_SCHEDULES)
    batch_sizes = args.batch_sizes or list(race.QUICK_BATCH_SIZES if quick else race.DEFAULT_BATCH_SIZES)
    seeds = args.seeds or list(race.DEFAULT_SEEDS[:1] if quick else race.DEFAULT_SEEDS)
    race.baseline_grid(lrs, schedules, batch_sizes)  # a bad grid fails before the data are loaded
    samples = args.samples or (2000 if quick else None)
    test_samples = args.test_samples or (500 if quick else None)
    data = api.load_data(dataset_name(args), args.data_dir, samples=samples, test_samples=test_samples,
                         download=args.download, quiet=args.quiet)
    model = args.model or api.default_model(data)
    if model_options(args):
        built = api.build_model(model, data, seed=seeds[0], **model_options(args))
        built.name = model
        model = built
    tune = min(args.tune_samples, 1000) if quick else args.tune_samples
    finalists = 1 if quick else args.finalists
    with cluster.session(args.workers, args.scheduler, say=None if args.json else _say) as client:
        result = race.race(model, data, exact=(exact[0], given), seeds=seeds, epochs=epochs, lrs=lrs,
                           schedules=schedules, batch_sizes=batch_sizes, tune_samples=tune, finalists=finalists,
                           quiet=args.quiet, callback=None if args.json else (lambda line: _say(f"  {line}")),
                           client=client)
    if args.out:
        api.prepare_out(Path(args.out))
        result.save(Path(args.out))
    _say(result.to_json() if args.json else "\n" + str(result))
    if args.plot:
        _say_figures(result.plot().save(args.plot, prefix="race_"), args.plot, args.json)
    return 0


def cmd_bench(args: argparse.Namespace, state: dict) -> int:
    if args.plot:
        api.prepare_out(Path(args.plot))  # a bad folder fails before training, not after it
    if args.solvers[:1] == ["race"]:
        return cmd_bench_race(args)
    if args.solvers[:1] == ["target"]:
        return cmd_bench_target(args)
    with cluster.session(args.workers, args.scheduler, say=None if args.json else _say) as client:
        rows = bench.run(args.solvers, dataset=dataset_name(args), data_dir=args.data_dir, model=args.model,
                         model_options=model_options(args), samples=args.samples, test_samples=args.test_samples,
                         sweeps=args.sweeps, epochs=args.epochs, steps=args.steps, time_limit=args.time_limit,
                         seed=args.seed, quiet=args.quiet, options=solver_options(args), download=args.download,
                         client=client)
    _say(bench.to_json(rows) if args.json else bench.format_table(rows))
    if args.plot:
        _say_figures(rows.save_figures(args.plot), args.plot, args.json)
    return 0


def _say_figures(written: list[Path], folder: str, json_output: bool) -> None:
    message = f"figures saved to {folder}/ ({', '.join(p.name for p in written)})"
    print(message, file=sys.stderr if json_output else sys.stdout, flush=True)  # keep --json output parseable


@command("compare")
def _compare_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("compare", help="train the same model with several solvers; table, JSON and figures",
                       description="Train a copy of the same initial model with each solver under the same budget "
                                   "and write table.txt, table.md, comparison.json, loss and accuracy figures and "
                                   "each solver's model and history into --out.")
    p.add_argument("--solvers", type=solver_list, required=True, metavar="A,B,...",
                   help="solver names separated by commas, e.g. coordinate,adam,polyreg")
    add_data_flags(p)
    add_model_flags(p)
    add_budget_flags(p)
    g = p.add_argument_group("solver options (passed only when given, so each solver's defaults apply)")
    for flag, _, kind, text in SOLVER_FLAGS:
        g.add_argument(flag, type=kind, help=text + " (every solver that has it)", metavar=metavar(kind))
    g.add_argument("--option", "-O", type=scoped_option, action="append", default=[], metavar="SOLVER.KEY=VALUE",
                   help="an option of one solver (adam.lr=1e-3), or KEY=VALUE for every solver that has it")
    add_cluster_flags(p)
    g = p.add_argument_group("comparison")
    g.add_argument("--target-loss", type=NONNEGATIVE, metavar="X",
                   help="loss for the time-to-target column (default: the worst final loss among the solvers)")
    g.add_argument("--target-acc", type=number_type(float, "a fraction between 0 and 1"), metavar="X",
                   help="test accuracy for the time-to-target column (default: the lowest final one)")
    g.add_argument("--no-isolate", dest="isolate", action="store_false",
                   help="run every solver in this process (default: each in a fresh process, for fair "
                        "memory figures)")
    g.add_argument("--out", metavar="DIR", help="output folder (default: runs/compare-<model>-<dataset>-<time>)")
    g.add_argument("--overwrite", action="store_true", help="replace the comparison in --out (refused otherwise)")
    g.add_argument("--quiet", "-q", action="store_true", default=None, help="no progress bars")
    p.set_defaults(handler=cmd_compare)
    return p


def cmd_compare(args: argparse.Namespace, state: dict) -> int:
    spec = run_spec(args)
    budget = spec.budget()
    if not budget:
        raise SolverError("give a budget: --time-limit SECONDS (per solver) and/or --steps, --sweeps or --epochs N")
    options = options_.merge(solver_flags(args), [(key, value) for scope, key, value in args.option if scope is None])
    for scope, key, value in args.option:
        if scope is not None:
            if scope not in args.solvers:
                raise SolverError(f"--option {scope}.{key}: solver {scope!r} is not among --solvers "
                                  f"({', '.join(args.solvers)})")
            options.setdefault(scope, {})[key] = value
    runner.parse_solvers(args.solvers, options)  # unknown solvers and options fail before the data is loaded
    data = api.load_data(dataset_name(args), args.data_dir, samples=args.samples, test_samples=args.test_samples,
                         download=args.download, quiet=args.quiet)
    seed = 0 if spec.seed is None else spec.seed
    model_name = args.model or api.default_model(data)
    model = api.build_model(model_name, data, seed=seed, **model_options(args))
    out = Path(args.out) if args.out else \
        Path("runs") / f"compare-{model_name}-{data.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    _say(f"comparing {', '.join(args.solvers)} on {model_name} ({model.num_params:,} parameters), {data.name} "
         f"({len(data.x_train):,} train / {len(data.x_test):,} test), budget per solver: {runner.describe_budget(budget)}"
         + (", each in its own process" if args.isolate else ""))

    def report(row: dict) -> None:
        _say(f"  {row['label']}: {row['steps']} {row['step_unit']}(s), loss {row['loss']:.6g}, test acc "
             f"{'-' if row['test_acc'] is None else format(row['test_acc'], '.4f')}, {row['wall_time']:.1f} s"
             + ("" if row["status"] == "ok" else f", {row['status']}"))

    with cluster.session(args.workers, args.scheduler, say=_say) as client:
        result = compare(model, data, args.solvers, spec, target_loss=args.target_loss,
                         target_acc=args.target_acc, out=out, quiet=args.quiet, seed=seed, options=options,
                         isolate=args.isolate, overwrite=args.overwrite, callback=report, client=client)
    _say("")
    _say(result.table())
    _say(f"saved to {out}/ (table.txt, table.md, comparison.json, loss_vs_time.png, loss_vs_passes.png, "
         "test_acc_vs_time.png, loss and accuracy per step when the solvers share a step unit, "
         "<solver>/model.npz and history.json)")
    return 0


@command("robustness")
def _robustness_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("robustness", help="test accuracy of saved models under Gaussian noise and black patches",
                       description="Evaluate saved models on the test set with iid Gaussian noise of each --sigmas "
                                   "value (clipped to [0, 1]) and with one black rectangle of each --areas value per "
                                   "image; print and save accuracy and relative accuracy drop.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="model.npz files (or run folders) to evaluate")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=None, help="dataset the models were trained on (default: mnist-small, or "
                                                    "mnist with --data-dir)")
    g.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset's IDX files")
    g.add_argument("--test-samples", type=POSITIVE_INT, metavar="N", help="use the first N test images")
    g.add_argument("--no-download", dest="download", action="store_false", help="never download")
    g = p.add_argument_group("noise")
    g.add_argument("--sigmas", type=number_list, default=list(DEFAULT_SIGMAS), metavar="S,S,...",
                   help=f"Gaussian noise std values (default: {','.join(f'{v:g}' for v in DEFAULT_SIGMAS)})")
    g.add_argument("--areas", type=number_list, default=list(DEFAULT_AREAS), metavar="A,A,...",
                   help=f"black patch areas in pixels (default: {','.join(f'{v:g}' for v in DEFAULT_AREAS)})")
    g.add_argument("--seed", type=COUNT, default=0, metavar="N", help="seed of the noise and patches (default 0)")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="output folder (default: runs/robustness-<time>)")
    g.add_argument("--quiet", "-q", action="store_true", default=None, help="no progress bar")
    p.set_defaults(handler=cmd_robustness)
    return p


def cmd_robustness(args: argparse.Namespace, state: dict) -> int:
    models, labels = robustness.load_models(args.models)  # missing, corrupt or mismatched files fail first
    data = api.load_data(dataset_name(args), args.data_dir, test_samples=args.test_samples, download=args.download,
                         quiet=args.quiet)
    result = robustness.evaluate(models, data, args.sigmas, args.areas, args.seed, names=labels, quiet=args.quiet)
    out = Path(args.out) if args.out else Path("runs") / f"robustness-{time.strftime('%Y%m%d-%H%M%S')}"
    result.save(out)
    _say(result.table())
    _say(f"saved to {out}/ (table.txt, table.md, robustness.json, robustness_accuracy.png, robustness_drop.png, "
         "noise_examples.png)")
    return 0


@command("verify")
def _verify_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("verify", help="re-check the certificates of a run's exact steps",
                       description="Check every certified exact step of a run (written by `symnet train "
                                   "--certificates`): the step is the global minimum of its recorded polynomial "
                                   "among the real critical points and the objective did not rise; the sampled "
                                   "steps are re-evaluated by plain forward passes on the run's data; and the "
                                   "records chain from the initial model through every record of history.json to "
                                   "the saved model. Exit code 1 when any check fails, or when the certificates "
                                   "cover only part of the run (unless --partial).")
    p.add_argument("run", metavar="RUN", help="the run's folder")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset's files (as for the run)")
    p.add_argument("--limit", type=POSITIVE_INT, metavar="N", help="re-evaluate at most N sampled steps")
    p.add_argument("--rtol", type=POSITIVE, default=1e-8, metavar="X", help="relative tolerance (default 1e-8)")
    p.add_argument("--partial", action="store_true",
                   help="accept certificates that cover only some of the run's steps (a session resumed without "
                        "--certificates); the coverage is printed either way")
    p.add_argument("--quiet", "-q", action="store_true", default=None, help="no progress bar")
    p.set_defaults(handler=cmd_verify)
    return p


def cmd_verify(args: argparse.Namespace, state: dict) -> int:
    result = verify.verify(args.run, data_dir=args.data_dir, rtol=args.rtol, limit=args.limit, quiet=args.quiet,
                           partial=args.partial)
    problems = result.report.violations + (result.chain.violations if result.chain is not None else [])
    for line in problems[:20]:
        _say(f"violation: {line}")
    if len(problems) > 20:
        _say(f"... and {len(problems) - 20} more")
    _say(result.summary())
    return 0 if result.ok else 1


@command("inspect")
def _inspect_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("inspect", help="describe a saved model: layers, parameters, degrees, filters, weight maps",
                       description="Print a saved model's layers, parameter counts, the degree of its outputs in "
                                   "each layer's parameters and in the inputs, and (for small models) its symbolic "
                                   "form; with --out, also write inspect.txt and images of its filters and weights.")
    p.add_argument("model", metavar="MODEL", help="a model.npz file (or a run folder)")
    p.add_argument("--out", metavar="DIR", help="folder for inspect.txt and the PNGs")
    p.set_defaults(handler=cmd_inspect)
    return p


def cmd_inspect(args: argparse.Namespace, state: dict) -> int:
    text, written = inspect_path(args.model, args.out)
    _say(text)
    if written:
        _say(f"\nsaved to {args.out}/ ({', '.join(p.name for p in written)})")
    return 0


@command("reproduce")
def _reproduce_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("reproduce", help="reproduce a published table: the source's figures beside ours",
                       description="Run one reproduction and print a table with the source's figure, ours and "
                                   "notes on every setting that differs; write table.md, table.txt, results.json "
                                   "and figures into --out. 'symnet reproduce --list' names them all with their "
                                   "parts.")
    p.add_argument("name", nargs="?", metavar="NAME", help=f"one of: {', '.join(reproduce.available())}")
    p.add_argument("--list", action="store_true", help="list the reproductions and their parts, then exit")
    p.add_argument("--quick", action="store_true", help="small subsets, under a minute (checks that it runs)")
    p.add_argument("--dry-run", action="store_true", help="run nothing: print the table with the source's figures "
                                                          "and notes, ours marked 'not run'")
    p.add_argument("--parts", metavar="A,B,...", help="run only these parts (see --list); the other rows show "
                                                       "'not run'")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding mnist/ and fashion-mnist/ (or MNIST's IDX "
                                                     "files); nothing is downloaded")
    p.add_argument("--seed", type=COUNT, default=0, metavar="N", help="seed (default 0)")
    p.add_argument("--option", "-O", type=scoped_option, action="append", default=[], metavar="SOLVER.KEY=VALUE",
                   help="an option for one solver wherever the reproduction runs it (repeatable), e.g. "
                        "gauss-newton.batch_size=1000; the caption lists them")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/reproduce-<name>-<time>)")
    p.add_argument("--quiet", "-q", action="store_true", default=None, help="no progress bars")
    p.set_defaults(handler=cmd_reproduce)
    return p


def cmd_reproduce(args: argparse.Namespace, state: dict) -> int:
    if args.list:
        _say(reproduce.describe())
        return 0
    if not args.name:
        raise UsageError(f"name a reproduction ({', '.join(reproduce.available())}) or pass --list "
                         f"(see '{PROG} reproduce --help')")
    if args.name not in reproduce.available():
        raise SolverError(f"unknown reproduction {args.name!r}; choose one of {', '.join(reproduce.available())} "
                          f"({PROG} reproduce --list)")
    options: dict[str, dict] = {}
    for scope, key, value in args.option:
        if scope is None:
            raise UsageError(f"--option {key}=...: name the solver, as SOLVER.{key}=VALUE (e.g. "
                             f"gauss-newton.{key}=...)")
        options.setdefault(scope, {})[key] = value
    out = Path(args.out) if args.out else Path("runs") / f"reproduce-{args.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = reproduce.reproduce(args.name, quick=args.quick, data_dir=args.data_dir, out=out, parts=args.parts,
                                 quiet=args.quiet, seed=args.seed, log=_say, dry_run=args.dry_run, options=options)
    _say("")
    _say(result.table())
    _say(f"\nsaved to {out}/ (table.md, table.txt, results.json, "
         f"{', '.join(f'{k}.png' for k in result.figures) or 'no figures'})")
    return 0


# --------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand in :data:`COMMANDS`."""

    parser = Parser(prog=PROG, description="Train polynomial networks with exact polynomial solvers.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for build in COMMANDS.values():
        build(sub)
    return parser


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def _os_message(exc: OSError) -> str:
    # OSError's own str() is "[Errno 13] Permission denied: 'x'"; keep it short and name the path.
    if exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 success, 2 error, 130 interrupted).

    Example:
        >>> main(["train", "--time-limit", "abc"])  # doctest: +SKIP
        2
    """
    state: dict[str, Any] = {}
    with warnings.catch_warnings(), terminate_as_interrupt():
        warnings.simplefilter("always", SymnetWarning)
        shown = warnings.showwarning

        def note(message, category, *args, **kwargs):
            if issubclass(category, SymnetWarning):  # a run's notes are for the user: one plain line each
                print(f"{PROG}: note: {message}", file=sys.stderr, flush=True)
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = note
        return _main(argv, state)


def _main(argv: list[str] | None, state: dict) -> int:
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        return int(args.handler(args, state) or 0)
    except UsageError as exc:
        _error(str(exc))
        return 2
    except SymnetError as exc:
        _error(str(exc))
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # missing, unreadable or unwritable paths, a full disk
        _error(_os_message(exc))
        return 2
    except (KeyboardInterrupt, Exception) as exc:
        if not caused_by_interrupt(exc):  # a bug, not the user: let its traceback show
            raise
        terminated = isinstance(interrupt_of(exc), Terminated)
        out = state.get("out")
        if out is not None and (Path(out) / "checkpoint.npz").exists():
            where = f"; the last checkpoint is kept in {out}/checkpoint.npz (continue with --resume --out {out})"
        elif out is not None:
            where = "; no step had finished, so there is no checkpoint to resume from"
        else:
            where = ""  # a command without a run folder (compare, robustness, inspect ...) keeps nothing
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"\n{PROG}: {what}{where}", file=sys.stderr, flush=True)
        return 143 if terminated else 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
