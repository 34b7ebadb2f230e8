"""One call to train: ``symnet.fit(model, data, solver, ...)``.

:func:`fit` takes a model (or a preset name), a dataset (or its name) and a
solver name with its options, trains the model in place and returns the
:class:`~symnet.core.history.History`. With ``out=DIR`` it also writes, each file
atomically::

    DIR/model.npz, DIR/model.json   the trained model (symnet.load(DIR) reads it)
    DIR/history.json                one record per step
    DIR/summary.json                final figures of the run
    DIR/checkpoint.npz              written after every step; resume=True continues from it

Example:
    >>> import symnet; from symnet import solvers
    >>> data = symnet.datasets.xor()
    >>> model = symnet.models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> history = symnet.fit(model, data, "coordinate", steps=2, quiet=True)
    >>> [r["step"] for r in history]
    [0, 1, 2]
"""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path
from typing import Any, Iterable

import symnet.core.datasets as _datasets
import symnet.core.files as sio
from symnet.core.model.saving import save_model
import symnet.core.model.presets as _models
import symnet.solvers as _solvers
from symnet.core.errors import DataError, DivergenceError, ModelError, RunExistsError, SolverError
from symnet.core.history import History
from symnet.core.run import RunSpec
from symnet.core.runtime import peak_rss_mb
from symnet.solvers import options as options_
from symnet.solvers.base import Solver

#: Presets that need image inputs ``(C, H, W)``.
IMAGE_PRESETS = ("seed", "poly", "poly2")


def default_model(data) -> str:
    """The preset that fits ``data``: ``"poly"`` for images, ``"mlp"`` for vectors.

    Example:
        >>> from symnet.core import datasets
        >>> default_model(datasets.xor())
        'mlp'
    """
    return "poly" if len(data.input_shape) == 3 else "mlp"


def build_model(name: str, data, **kwargs: Any):
    """Build preset ``name`` for ``data``'s input shape and number of classes.

    Args:
        name: ``"seed"``, ``"poly"``, ``"poly2"`` or ``"mlp"``.
        data: a :class:`~symnet.core.datasets.Dataset`.
        **kwargs: preset options (``channels``, ``kernel``, ``activation``,
            ``hidden``, ``seed`` ...); ``None`` values are dropped so that the
            preset's own defaults apply.

    Raises:
        ModelError: unknown preset, an option the preset lacks, or a preset
            that does not fit the data's input shape.

    Example:
        >>> from symnet.core import datasets
        >>> m = build_model("mlp", datasets.xor(), hidden=3)
        >>> m.input_shape, m.num_outputs
        ((2,), 2)
    """
    if name not in _models.PRESETS:
        raise ModelError(f"unknown model {name!r}; presets: {', '.join(_models.available())}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    accepted = set(inspect.signature(_models.PRESETS[name]).parameters) - {"input_shape", "num_classes", "input_dim"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ModelError(f"model {name!r} has no option {unknown[0]!r}; its options are: {', '.join(sorted(accepted))}")
    shape = tuple(data.input_shape)
    if name in IMAGE_PRESETS and len(shape) != 3:
        raise ModelError(f"model {name!r} needs image inputs (channels, height, width) but dataset {data.name!r} "
                         f"has vector inputs of shape {shape}; use model 'mlp'")
    return _models.get(name, input_shape=shape, num_classes=int(data.num_classes), **kwargs)


def load_data(data, root=None, *, samples: int | None = None, test_samples: int | None = None,
              download: bool = True, quiet: bool | None = None):
    """A :class:`~symnet.core.datasets.Dataset` from a dataset or a name, cut to the first samples.

    Example:
        >>> load_data("xor", samples=4).x_train.shape
        (4, 2)
    """
    if isinstance(data, (str, os.PathLike)):
        data = _datasets.load(str(data), root, download=download, quiet=quiet)
    elif not isinstance(data, _datasets.Dataset):
        raise DataError(f"data must be a Dataset or a dataset name ({', '.join(_datasets.available())}), "
                        f"got {type(data).__name__}")
    if samples is not None or test_samples is not None:
        data = data.subset(samples, test_samples)
    return data


def solver_instance(solver, options: dict) -> Solver:
    """A solver instance from a registered name, a Solver class or an instance (then ``options`` must be empty)."""
    if isinstance(solver, Solver):
        if options:
            raise SolverError(f"pass options to the solver's constructor or by keyword, not both "
                              f"(got a {type(solver).__name__} and {sorted(options)})")
        return solver
    cls = solver if isinstance(solver, type) and issubclass(solver, Solver) else _solvers.get(solver)
    return cls(**options_.parse(cls.name, cls.OPTIONS, given=options))  # a bad option fails before any work


def summarize(solver, *, wall_time: float | None = None, model_name: str | None = None) -> dict:
    """The final figures of a fitted solver, as written to ``summary.json``.

    Example:
        >>> import symnet; from symnet import solvers
        >>> data = symnet.datasets.xor()
        >>> s = train("mlp", data, "coordinate", steps=1, quiet=True)
        >>> sorted(summarize(s))[:4]
        ['dataset', 'loss', 'model', 'n_test']
    """
    final = solver.history_.final
    data = solver.data_
    model = solver.model_
    updates = final.get("updates") or 0
    return sio.to_jsonable({
        "solver": solver.name,
        "options": solver.opts_,
        "model": model_name or getattr(model, "name", None) or type(model).__name__,
        "dataset": data.name,
        "n_train": len(data.x_train),
        "n_test": len(data.x_test),
        "num_params": getattr(model, "num_params", None),
        "steps": final["step"],
        "step_unit": solver.step_unit,
        "loss": final["loss"],
        "train_acc": final.get("train_acc"),
        "test_acc": final.get("test_acc"),
        "time": final["time"],
        "wall_time": wall_time,
        "updates": updates,
        "passes": final.get("passes"),
        "time_per_update": final["time"] / updates if updates else None,
        "peak_rss_mb": peak_rss_mb(),
    })


def prepare_out(out: Path) -> None:
    """Create ``out`` now, so a bad path fails before training rather than after it."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output folder {out} exists as a file; pick another --out")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write into output folder {out}; pick another --out")


#: The files a run writes into its folder.
RUN_FILES = ("model.npz", "model.json", "history.json", "summary.json", "checkpoint.npz", "certificates.npz")


def claim_out(out: Path, *, resume: bool = False, overwrite: bool = False, create: bool = True) -> None:
    """Make ``out`` ready for a run: created if needed, and never an earlier run replaced unasked.

    A folder that is not empty is refused unless the run resumes from it or
    ``overwrite`` is set; ``overwrite`` removes the files of the earlier run
    (:data:`RUN_FILES`) and leaves any others alone. ``create=False`` only
    checks (the CLI checks before it loads the data, and creates no folder
    for a run that fails before it starts).

    Raises:
        RunExistsError: ``out`` is not empty and neither ``resume`` nor ``overwrite`` is set.
        FileExistsError, PermissionError: ``out`` is a file, or not writable.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output folder {out} exists as a file; pick another --out")
    if create:
        prepare_out(out)
    if resume or not out.exists():
        return
    present = sorted(p.name for p in out.iterdir() if p.name != sio.WRITER_NAME)
    if not present:
        return
    if not overwrite:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise RunExistsError(f"{out} is not empty ({shown}); continue the run there with --resume, replace it "
                             "with --overwrite, or pick another --out")
    if create:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)


def write_outputs(solver, out: str | os.PathLike, *, wall_time: float | None = None,
                  model_name: str | None = None) -> dict:
    """Write model, history and summary of a fitted solver into ``out``; return the summary."""
    out = Path(out)
    save_model(solver.model_, out / "model.npz")
    sio.atomic_write_bytes(out / "history.json", (solver.history_.to_json() + "\n").encode())
    summary = summarize(solver, wall_time=wall_time, model_name=model_name)
    sio.atomic_write_json(out / "summary.json", summary)
    return summary


def train(model, data, solver="coordinate", *, steps: int | None = None, time_limit: float | None = None,
          callbacks: Iterable = (), out: str | os.PathLike | None = None, resume: bool = False,
          overwrite: bool = False, quiet: bool | None = None, seed: int | None = None,
          certificates: bool | str = False, client=None, run: RunSpec | None = None, **options: Any):
    """Like :func:`fit`, but return the fitted solver (``.model_``, ``.history_``, ``.opts_``).

    ``run``: the whole run as one :class:`~symnet.core.run.RunSpec`, instead of ``steps``, ``time_limit``,
    ``out``, ``resume``, ``overwrite``, ``quiet``, ``seed`` and ``certificates`` (giving both is an error).

    The solver's ``model_`` is the trained model: the one passed in, trained
    in place, or for backends that build their own (``polyreg``) that model.
    If training diverges, the last finite model and the history up to it are
    written to ``out`` before the :class:`~symnet.core.errors.DivergenceError` is
    raised again.

    Example:
        >>> import symnet
        >>> s = train("mlp", symnet.datasets.xor(), "coordinate", steps=1, quiet=True)
        >>> s.history_.final["step"], s.model_.name
        (1, 'mlp')
    """
    t0 = time.perf_counter()
    given = dict(steps=steps, time=time_limit, out=out, resume=resume, overwrite=overwrite, quiet=quiet, seed=seed,
                 certificates=certificates)
    if run is None:
        run = RunSpec(**given)
    elif given != dict(steps=None, time=None, out=None, resume=False, overwrite=False, quiet=None, seed=None,
                       certificates=False):
        raise SolverError("give the run's settings as run=RunSpec(...) or by keyword, not both")
    data = load_data(data, quiet=run.quiet)
    instance = solver_instance(solver, options)
    model_name = model if isinstance(model, str) else None
    if isinstance(model, str):
        model = build_model(model, data, seed=0 if run.seed is None else run.seed)
    out = run.out
    if out is None:
        if run.resume:
            raise SolverError("resume needs the folder of the run to continue; pass out=DIR (--out DIR)")
        return _train(instance, model, data, run, model_name, t0, callbacks, client)
    claim_out(out, resume=run.resume, overwrite=run.overwrite, create=False)  # said before the folder is made
    prepare_out(out)
    with sio.writer_lock(out):  # one writer per run folder, from its first check to its last file
        claim_out(out, resume=run.resume, overwrite=run.overwrite)
        return _train(instance, model, data, run, model_name, t0, callbacks, client)


def _train(instance, model, data, run: RunSpec, model_name, t0: float, callbacks, client):
    """The run of :func:`train` once its folder (if any) is held."""
    out = run.out

    def wall() -> float:  # the whole run's wall time: earlier sessions of a resumed run, and loading the data
        return instance.wall_before_ + time.perf_counter() - t0

    try:
        instance.run(model, data, run, callbacks=callbacks, client=client)
    except DivergenceError:
        # The loop restored the last finite parameters; save them with the history up to there.
        if out is not None:
            write_outputs(instance, out, wall_time=wall(),
                          model_name=model_name if instance.model_ is model else None)
        raise
    if instance.model_ is not model:  # the backend trained a model of its own; report that one
        model_name = None
    if out is not None:
        instance.summary_ = write_outputs(instance, out, wall_time=wall(), model_name=model_name)
    else:
        instance.summary_ = summarize(instance, wall_time=wall(), model_name=model_name)
    return instance


def fit(model, data, solver="coordinate", *, steps: int | None = None, time_limit: float | None = None,
        callbacks: Iterable = (), out: str | os.PathLike | None = None, resume: bool = False,
        overwrite: bool = False, quiet: bool | None = None, seed: int | None = None,
        certificates: bool | str = False, client=None, **options: Any) -> History:
    """Train ``model`` on ``data`` with ``solver`` and return the history.

    Args:
        model: a :class:`~symnet.Sequential` (trained in place) or a preset
            name (``"poly"`` ...), built for the data's input shape and classes
            and seeded with ``seed``.
        data: a :class:`~symnet.core.datasets.Dataset` or a dataset name
            (``"mnist-small"``, ``"mnist"``, ``"xor"`` ...).
        solver: a registered solver name (``"coordinate"``, ``"adam"``,
            ``"polyreg"`` ...), a Solver class, or a Solver instance.
        steps: number of steps (sweeps, epochs ...); ``None`` with no
            ``time_limit`` means the solver's default.
        time_limit: stop after this many seconds of training.
        callbacks: called as ``cb(record, solver)`` after each step; returning
            ``False`` stops training.
        out: folder for model, history, summary and per-step checkpoints; a
            folder that is not empty is refused unless ``resume`` or ``overwrite``.
        resume: continue the run whose checkpoint is in ``out``; ``steps``
            counts the total, so a run resumed to ``steps=n`` ends where an
            uninterrupted one would. Any other setting that differs from the
            checkpoint's (data, options, seed, model) is refused.
        overwrite: replace the run in ``out``.
        quiet: hide the progress bar (default: hidden when ``$CI`` is set).
        seed: seed of the solver's random choices and of a preset's
            initialisation.
        certificates: record every exact step for ``symnet verify`` (True: with a sample
            of re-evaluable records; ``"all"``: every record re-evaluable); written to
            ``out/certificates.npz``.
        client: a ``distributed.Client``: the training samples and their caches live in
            shards on its workers and only small sums travel (``coordinate``,
            ``gauss-newton``, ``lbfgs``, ``cg``, ``polyreg``; the steps are those of the run
            without it, see :mod:`symnet.core.sharded`). symnet never closes it. Without
            it nothing is sent anywhere and Dask is not imported.
        **options: solver options (``ridge``, ``lr``, ``batch_size`` ...); an
            option the solver does not have raises its ``SolverError``.

    Returns:
        The :class:`~symnet.core.history.History`, one record per step (step 0 is
        the initial model).

    Example:
        >>> import symnet
        >>> h = symnet.fit("mlp", "xor", "coordinate", steps=3, quiet=True, ridge=1e-6)
        >>> h.final["loss"] <= h[0]["loss"]
        True
    """
    return train(model, data, solver, steps=steps, time_limit=time_limit, callbacks=callbacks, out=out,
                 resume=resume, overwrite=overwrite, quiet=quiet, seed=seed, certificates=certificates,
                 client=client, **options).history_


__all__ = ["RUN_FILES", "build_model", "claim_out", "default_model", "fit", "load_data", "prepare_out",
           "solver_instance", "summarize", "train",
           "write_outputs"]
