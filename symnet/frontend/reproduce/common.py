"""What the experiments share: their datasets, one solver run through the runner, and the statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

import symnet.core.datasets as datasets
from symnet.core.linalg import ridge_dual, ridge_solve
from symnet.core.model.polyreg import features, monomial_table

from symnet.frontend import runner
from symnet.frontend.reproduce.framework import Context

def load_data(ctx: Context, name: str, samples: int | None = None, test_samples: int | None = None):
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


def pool_images(data, k: int):
    """Images averaged over ``k x k`` blocks (28 x 28 -> 9 x 9 for k = 3): quick mode's smaller polynomial problems."""
    def pool(x):
        n, c, h, w = x.shape
        return x[:, :, : h // k * k, : w // k * k].reshape(n, c, h // k, k, w // k, k).mean(axis=(3, 5))

    return datasets.Dataset(data.name, pool(data.x_train), data.y_train, pool(data.x_test), data.y_test,
                            data.num_classes, dict(data.meta))


def solver_entry(name: str, options: dict | None = None) -> runner.Entry:
    return runner.parse_solvers([(name, options)] if options else [name])[0]


def run_solver(ctx: Context, solver: str, options: dict | None, model, data, budget: dict) -> dict:
    """One solver through the shared runner; the row with the trained model and last record attached."""
    options = dict(options or {}, **ctx.options.get(solver, {}))
    result = runner.run_entry(solver_entry(solver, options), model, data, budget, seed=ctx.seed, quiet=ctx.quiet)
    row = dict(result["row"])
    row["model_obj"] = result["model"]
    row["last"] = result["history"]["records"][-1]
    row["history"] = result["history"]
    return row


def json_row(row: dict) -> dict:
    """A runner row without the objects that do not go into JSON."""
    return {k: v for k, v in row.items() if k not in ("model_obj", "history")}


def coefficient_spread(weight: np.ndarray) -> tuple[float, float]:
    """The source's coefficient magnitudes: L1 = ``mean |w - median(w)|`` and L2 = ``std(w)``, over every coefficient."""
    w = np.asarray(weight, dtype=np.float64).ravel()
    return float(np.mean(np.abs(w - np.median(w)))), float(np.std(w))


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Out-of-sample R^2 = 1 - SSE / sum (y - mean(y))^2 over every output."""
    y = np.asarray(y, dtype=np.float64)
    total = float(np.sum((y - y.mean(axis=0)) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / total if total > 0 else float("nan")


def least_squares_by_degree(x_train, y_train, degrees: Sequence[int], ridge: float = 0.0):
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
