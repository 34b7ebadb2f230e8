"""Compare solvers on MNIST: the same network, the same start, the same time budget.

Every solver trains a copy of one initial ``poly`` network (conv 16 filters
of 5x5, x^2, 2x2 average pool, linear) for the same wall-time budget, each in
a fresh process so that the memory column is fair. The script writes the
table, the JSON, the figures and each solver's model into ``--out``; the
models can then go through ``symnet robustness`` and ``symnet inspect``.

Usage (from the project root)::

    python examples/compare_mnist.py                                  # mnist-small, 60 s per solver
    python examples/compare_mnist.py --solvers coordinate,adam,polyreg \\
        --dataset mnist --data-dir ../shared/data/mnist --time-limit 300 --out runs/compare-mnist
    python examples/compare_mnist.py --option adam.batch_size=128 --option adam.lr=0.003

The same from the command line: ``symnet compare --solvers coordinate,adam,polyreg --dataset mnist
--time-limit 300``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import symnet  # noqa: E402
from symnet import api  # noqa: E402
from symnet.frontend.cli import parse_value  # noqa: E402
from symnet.core.errors import SymnetError  # noqa: E402


def scoped_options(items: list[str]) -> dict:
    """``["adam.lr=0.003", "ridge=1"]`` -> ``{"adam": {"lr": 0.003}, "ridge": 1}``."""
    options: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        scope, _, name = key.rpartition(".")
        if scope:
            options.setdefault(scope, {})[name] = parse_value(value)
        else:
            options[name] = parse_value(value)
    return options


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--solvers", default="coordinate,adam,polyreg", help="solver names separated by commas")
    p.add_argument("--dataset", default="mnist-small")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (full MNIST)")
    p.add_argument("--samples", type=int, default=None, help="use the first N training images")
    p.add_argument("--model", default="poly", help="preset: seed, poly, poly2")
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds of training per solver")
    p.add_argument("--option", action="append", default=[], metavar="SOLVER.KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/compare-example")
    p.add_argument("--in-process", action="store_true", help="run every solver in this process")
    args = p.parse_args(argv)
    try:
        data = api.load_data(args.dataset, args.data_dir, samples=args.samples)
        model = api.build_model(args.model, data, seed=args.seed)
        print(f"{args.model} ({model.num_params:,} parameters) on {data.name}: {len(data.x_train):,} train / "
              f"{len(data.x_test):,} test images, {args.time_limit:g} s per solver")
        result = symnet.compare(model, data, args.solvers.split(","), args.time_limit, out=args.out, seed=args.seed,
                                options=scoped_options(args.option), isolate=not args.in_process,
                                callback=lambda row: print(f"  {row['label']} done: test acc {row['test_acc']:.4f}"))
    except SymnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(result.table())
    print(f"\nwritten to {args.out}/; next: symnet robustness {args.out}/*/model.npz --dataset {args.dataset}")
    return 0


if __name__ == "__main__":  # required: each solver runs in a spawned process that re-imports this file
    sys.exit(main())
