"""The command line's argument types and shared flags: one parser of each value, one set of each flag group.

:mod:`symnet.frontend.cli` builds its subcommands from these; a value that does not
parse is one line naming the flag and what it expects (:class:`UsageError`, exit 2).

Example:
    >>> [parse_value(s) for s in ("3", "0.5", "none", "cyclic")]
    [3, 0.5, None, 'cyclic']
    >>> int_list("1,2,3")
    [1, 2, 3]
"""

from __future__ import annotations

import argparse
from typing import Any

import symnet.solvers.options as options_
from symnet.core.run import RunSpec

#: The preset networks the command line offers.
MODEL_PRESETS = ("seed", "poly", "poly2", "mlp")


class UsageError(Exception):
    """A command-line argument that cannot be parsed (exit code 2)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other symnet error."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        raise UsageError(f"{message} (see '{self.prog} --help')")


def number_type(kind: type, what: str, minimum: float | None = None, strict: bool = False):
    """An argparse ``type=`` that accepts a number of ``kind`` above ``minimum`` with a clear message."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if kind is float and value != value:  # NaN
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


POSITIVE_INT = number_type(int, "a positive whole number", 0, strict=True)
COUNT = number_type(int, "a whole number >= 0", 0)
SECONDS = number_type(float, "a positive number of seconds", 0.0, strict=True)
NONNEGATIVE = number_type(float, "a number >= 0", 0.0)
POSITIVE = number_type(float, "a positive number", 0.0, strict=True)


def RIDGE(text: str):
    """``--ridge``: a number >= 0, or ``auto`` (chosen on held-out training samples where the solver can)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return NONNEGATIVE(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or auto, got {text!r}") from None


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"1e-3"`` -> 0.001, ``"true"`` -> True, ``"none"`` -> None, else the string.

    Example:
        >>> [parse_value(s) for s in ("3", "0.5", "1e-3", "yes", "False", "none", "cyclic")]
        [3, 0.5, 0.001, True, False, None, 'cyclic']
    """
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. ridge=1e-4), got {text!r}")
    return key, parse_value(value)


# --------------------------------------------------------------------------- shared flags
#: Flags that become options: (flag, option key, type, "solver" or "model" option, help). (Its rows are alike by
#: design: one declarative table, which a duplicate finder reads as repeated lines.)
FLAGS = (
    ("--ridge", "ridge", RIDGE, "solver", "ridge penalty on ||theta||^2 (auto: chosen on held-out training samples)"),
    ("--lr", "lr", POSITIVE, "solver", "learning rate (gradient solvers)"),
    ("--batch-size", "batch_size", POSITIVE_INT, "solver", "minibatch size (gradient solvers)"),
    ("--order", "order", parse_value, "solver", "order in which the coordinate solver visits variables"),
    ("--degree", "degree", POSITIVE_INT, "solver", "polynomial degree (polyreg)"),
    ("--window", "window", parse_value, "solver", "the solver's 'window' option"),
    ("--method", "method", parse_value, "solver", "the solver's 'method' option"),
    ("--channels", "channels", POSITIVE_INT, "model", "filters of the first conv layer (seed, poly, poly2)"),
    ("--channels2", "channels2", POSITIVE_INT, "model", "filters of the second conv layer (poly2)"),
    ("--kernel", "kernel", POSITIVE_INT, "model", "conv kernel size"),
    ("--activation", "activation", str, "model", "activation polynomial: square, relu-approx-a, relu-approx-b, ..."),
    ("--hidden", "hidden", POSITIVE_INT, "model", "hidden units (mlp)"),
)
#: The solver flags and the preset flags: (flag, option key, type, help).
SOLVER_FLAGS = tuple((flag, key, kind, text) for flag, key, kind, of, text in FLAGS if of == "solver")
MODEL_FLAGS = tuple((flag, key, kind, text) for flag, key, kind, of, text in FLAGS if of == "model")


def metavar(kind) -> str:
    return {POSITIVE_INT: "N", COUNT: "N", NONNEGATIVE: "X", POSITIVE: "X", RIDGE: "X|auto", str: "NAME"}.get(kind, "VALUE")


def add_data_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=None,
                   help="mnist-small (ships with symnet; the default), mnist (the default with --data-dir), "
                        "fashion-mnist, xor, teacher-student")
    g.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset's IDX files (or a <dataset>/ folder); "
                                                     "the only place they are looked for")
    g.add_argument("--samples", type=POSITIVE_INT, metavar="N", help="use the first N training samples")
    g.add_argument("--test-samples", type=POSITIVE_INT, metavar="N", help="use the first N test samples")
    g.add_argument("--no-download", dest="download", action="store_false",
                   help="never download; fail when the files are not found locally")


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=MODEL_PRESETS,
                   help="preset network (default: poly for images, mlp for vector data)")
    for flag, _, kind, text in MODEL_FLAGS:
        g.add_argument(flag, type=kind, help=text, metavar=metavar(kind))


def add_cluster_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster (Dask; needs pip install 'symnet[dask]')")
    g.add_argument("--workers", type=POSITIVE_INT, metavar="N",
                   help="start a local Dask cluster of N worker processes; the exact solvers and polyreg keep the "
                        "training samples and their caches in shards on it")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="use the running Dask cluster whose scheduler is at ADDRESS (tcp://host:8786)")


def add_budget_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("budget")
    g.add_argument("--sweeps", type=COUNT, metavar="N", help="sweeps of the coordinate solver")
    g.add_argument("--epochs", type=COUNT, metavar="N", help="epochs of a gradient solver")
    g.add_argument("--steps", type=COUNT, metavar="N", help="steps of any solver")
    g.add_argument("--time-limit", type=SECONDS, metavar="SECONDS", help="stop after this much training time")
    g.add_argument("--seed", type=COUNT, metavar="N", help="seed of the initialisation and the solver (default 0)")


def add_solver_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("solver options (passed only when given, so each solver's defaults apply)")
    for flag, _, kind, text in SOLVER_FLAGS:
        g.add_argument(flag, type=kind, help=text, metavar=metavar(kind))
    g.add_argument("--option", "-O", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="any other solver option (repeatable); numbers and true/false are converted")


def dataset_name(args: argparse.Namespace) -> str:
    """``--dataset``, or by default full MNIST when ``--data-dir`` is given and the bundled subset otherwise."""
    if args.dataset is not None:
        return args.dataset
    return "mnist" if args.data_dir else "mnist-small"


def solver_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The named solver flags (``--lr`` ...) the user gave, as ``{option: value}``."""
    return {key: getattr(args, key) for _, key, _, _ in SOLVER_FLAGS if getattr(args, key) is not None}


def solver_options(args: argparse.Namespace) -> dict[str, Any]:
    """The solver options the user set on the command line (and no others): named flags and ``-O`` pairs,
    one option set to two values refused (:func:`symnet.solvers.options.merge`)."""
    return options_.merge(solver_flags(args), args.option)


def run_spec(args: argparse.Namespace, **settings: Any) -> RunSpec:
    """The run the budget flags ask for (checked once, by :class:`~symnet.core.run.RunSpec`)."""
    return RunSpec(steps=args.steps, sweeps=args.sweeps, epochs=args.epochs, time=args.time_limit, seed=args.seed,
                   quiet=args.quiet, **settings)


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The preset options the user set on the command line (and no others)."""
    return {key: getattr(args, key) for _, key, _, _ in MODEL_FLAGS if getattr(args, key) is not None}


def solver_list(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected solver names separated by commas, got {text!r}")
    return names


def scoped_option(text: str) -> tuple[str | None, str, Any]:
    """``adam.lr=1e-3`` -> ("adam", "lr", 0.001); ``ridge=1`` -> (None, "ridge", 1)."""
    key, sep, value = text.partition("=")
    scope, dot, name = key.strip().rpartition(".")
    name = name.strip().replace("-", "_")
    if not sep or not name.isidentifier() or (dot and not scope.strip()):
        raise argparse.ArgumentTypeError(f"expected SOLVER.KEY=VALUE or KEY=VALUE (e.g. adam.lr=1e-3), got {text!r}")
    return (scope.strip() or None), name, parse_value(value)


def int_list(text: str) -> list[int]:
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas (e.g. 1,2,3), got {text!r}") \
            from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 0 separated by commas, got {text!r}")
    return values


def number_list(text: str) -> list[float]:
    try:
        values = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas (e.g. 0,0.1,0.2), got {text!r}") \
            from None
    if not values or any(not (v >= 0 and v != float("inf")) for v in values):
        raise argparse.ArgumentTypeError(f"expected numbers >= 0 separated by commas, got {text!r}")
    return values
