"""Benchmarks: train the same model with one or more solvers and tabulate the results.

:func:`run` returns one row (a dict) per solver, from the runner that
``symnet compare`` uses too (:mod:`symnet.frontend.runner`: same start, same
budget model), in a :class:`Benchmark`: a list of rows that also keeps each
solver's history and draws the training curves (:meth:`Benchmark.plot`, the
figures of :func:`symnet.frontend.plots.training_figures`). :func:`format_table`
and :func:`to_json` turn rows into text. ``symnet bench`` is a thin shell over
these; ``--plot DIR`` writes the figures.

Example:
    >>> rows = run(["coordinate"], dataset="xor", steps=1, quiet=True)
    >>> rows[0]["solver"], rows[0]["steps"]
    ('coordinate', 1)
    >>> list(rows.plot())[:3]
    ['loss_vs_time', 'loss_vs_passes', 'test_acc_vs_time']
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from symnet.core.history import History
from symnet.core.files import to_jsonable
from symnet.core.run import RunSpec

from symnet.frontend import api, plots, runner
from symnet.frontend.tables import columns, render

#: Columns of the benchmark table: (row key, header, format).
BENCH_COLUMNS = columns("dataset", "model", "label", "steps", "wall_time", "time_per_step", "loss", "train_acc",
                        "test_acc", "time_per_update_us", wall_time="{:.3g}")

#: Shown after the other columns when some row did not finish normally.
STATUS_COLUMN = columns("status")[0]


class Benchmark(list):
    """The rows of :func:`run` (a list of dicts), with each solver's history and the figures.

    Attributes:
        histories: ``label -> History`` in the order the solvers ran.
        budget: the parsed budget (see :func:`symnet.frontend.runner.parse_budget`).
        title: model, dataset and sample counts, for the figures.
    """

    def __init__(self, rows: Sequence[dict] = (), histories: Mapping[str, History] | None = None,
                 budget: Mapping[str, Any] | None = None, title: str = "") -> None:
        super().__init__(rows)
        self.histories = dict(histories or {})
        self.budget = dict(budget or {})
        self.title = title

    def plot(self) -> plots.Figures:
        """Training loss and test accuracy against training time, passes and (for one shared unit) steps.

        A time budget is drawn as a vertical line on the time axes, a step
        budget on the step axes (see :func:`symnet.frontend.plots.training_figures`).
        """
        legend = {}
        for row in self:
            if row.get("status", "ok") != "ok":
                legend[row["label"]] = f"{row['label']} ({row['status']})"
        return plots.training_figures(self.histories, title=self.title, legend=legend, budget=self.budget)

    def save_figures(self, out: str | os.PathLike) -> list[Path]:
        """Write the PNGs of :meth:`plot` into ``out``; return their paths."""
        return self.plot().save(out)


def title(model, data) -> str:
    """``model poly (23,466 params) on mnist-small (N = 10,000 train / 2,000 test)``."""
    params = getattr(model, "num_params", None)
    params = f" ({params:,} params)" if params is not None else ""
    return (f"model {runner.model_name(model)}{params} on {data.name} "
            f"(N = {len(data.x_train):,} train / {len(data.x_test):,} test)")


def run(names: Sequence[str], *, dataset="mnist-small", data_dir=None, model: str | None = None,
        model_options: dict[str, Any] | None = None, samples: int | None = None, test_samples: int | None = None,
        sweeps: int | None = None, epochs: int | None = None, steps: int | None = None,
        time_limit: float | None = None, seed: int | None = None, quiet: bool | None = None,
        options: dict[str, Any] | None = None, download: bool = True, callback=None, client=None) -> Benchmark:
    """Train a fresh copy of one model with each solver in ``names``; one row per solver.

    Every solver starts from the same initial parameters (the preset built
    with ``seed``). Options are passed to the solvers that accept them; an
    option no selected solver accepts is an error.

    Args:
        names: solver names; ``"gradient"`` means every registered gradient
            optimizer, ``"all"`` every registered solver.
        dataset: a dataset name or a :class:`~symnet.core.datasets.Dataset`.
        data_dir: folder with the dataset's files (``--data-dir``).
        model: preset name (default: ``poly`` for images, ``mlp`` for vectors).
        model_options: preset options (``channels``, ``kernel`` ...).
        samples, test_samples: use the first N training / test samples.
        sweeps, epochs, steps: step budgets (see :func:`symnet.frontend.runner.resolve_steps`);
            a solver none of them applies to runs its default number of steps
            (:func:`symnet.core.run.default_budget`).
        time_limit: seconds of training per solver.
        seed: initialisation and solver seed.
        quiet: hide progress bars.
        options: solver options (``ridge``, ``lr`` ...).
        download: allow downloading a missing dataset.
        callback: called with each row as soon as it is ready.
        client: a Dask ``Client`` whose workers hold the samples' shards (never closed here).

    Returns:
        A :class:`Benchmark`: the rows of :func:`symnet.frontend.runner.run_entry`
        (``solver``, ``steps``, ``loss``, ``train_acc``, ``test_acc``,
        ``time``, ``wall_time``, ``time_per_step``, ``time_per_update_us``,
        ``status`` ...), with the histories and :meth:`Benchmark.plot`.
    """
    entries = runner.parse_solvers(list(names), options)
    run = RunSpec(steps=steps, sweeps=sweeps, epochs=epochs, time=time_limit, seed=seed, quiet=quiet)
    budget = run.budget()
    data = api.load_data(dataset, data_dir, samples=samples, test_samples=test_samples,
                         download=download, quiet=quiet)
    model_name = model or api.default_model(data)
    initial = api.build_model(model_name, data, seed=0 if seed is None else seed, **(model_options or {}))
    rows, histories = [], {}
    for entry, result in runner.run(entries, initial, data, budget, seed=run.seed, quiet=quiet, callback=callback,
                                    client=client):
        rows.append(result["row"])
        histories[entry.label] = History.from_dict(result["history"])
    return Benchmark(rows, histories, budget, title(initial, data))


def format_table(rows: Sequence[dict], columns=BENCH_COLUMNS, fmt: str = "text") -> str:
    """Rows as an aligned text (or Markdown) table; missing or non-finite values show as ``-``.

    Example:
        >>> print(format_table([{"solver": "sgd", "loss": 0.5}], [("solver", "solver", "{}"), ("loss", "loss", "{:.3f}")]))
        solver   loss
        ------  -----
        sgd     0.500
    """
    if columns is BENCH_COLUMNS and any(row.get("status", "ok") != "ok" for row in rows):
        columns = BENCH_COLUMNS + (STATUS_COLUMN,)
    return render(rows, columns, fmt)


def to_json(rows: Sequence[dict]) -> str:
    """Rows as a JSON array (non-finite numbers become ``null``)."""
    return json.dumps(to_jsonable(list(rows)), indent=1)


__all__ = ["BENCH_COLUMNS", "Benchmark", "format_table", "run", "title", "to_json"]
