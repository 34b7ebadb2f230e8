"""The one interface every backend implements; the loop they share is :mod:`symnet.solvers.trainer`.

A backend subclasses :class:`Solver`, declares its options once in ``OPTIONS``
(a table of :class:`~symnet.solvers.options.Option`, checked by one validator
before ``_setup`` runs) and fills four hooks:

* ``_setup(model, data, rng)``: check the model against the data, build caches
  (the validated options are in ``self.opts_``);
* ``_step()``: one unit of work (a sweep, an epoch, a batch of bagging) and
  return a dict with ``loss`` (training objective, mean per sample, ridge
  included), ``updates`` (variables updated in the step), ``passes`` (passes
  over the training data in the step) and optionally ``train_scores`` (the
  model's outputs on the training set, to spare a forward pass) and
  ``eval_seconds`` (time the step spent only evaluating its record);
* ``_state()`` / ``_load_state(state)``: extra arrays and scalars a resumed
  run needs (momentum buffers, sweep counters, RNG state).

:meth:`Solver.fit` (or :meth:`Solver.run` with a :class:`~symnet.core.run.RunSpec`)
hands the backend to the loop that all backends share,
:class:`~symnet.solvers.trainer.Trainer`: history, callbacks, time limit,
progress bar, divergence guard, atomic checkpoints and resume. While it runs,
the backend finds what the loop gives it in public attributes: ``deadline``
(a :class:`~symnet.core.run.Deadline`: ``deadline.passed()``,
``deadline.remaining()``), ``y_train`` (the training targets one-hot),
``certificates_``, ``client_``, ``steps_budget_`` and ``time_limit_``; and it
writes records and notices with :meth:`Solver.record_interim` (when
:meth:`Solver.interim_due`) and :meth:`Solver.notify`.
"""

from __future__ import annotations

import abc
import warnings
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import numpy as np

import symnet.core.files as sio
from symnet.core.errors import ModelError, SymnetWarning
from symnet.core.layers import LAYER_TYPES
from symnet.core.linalg import Ridge, select_ridge_on
from symnet.core.objective import evaluate
from symnet.core.restriction import Restriction
from symnet.core.run import Deadline, RunSpec
from symnet.core.runtime import caused_by_interrupt, interrupt_of
from symnet.core.samples import Samples
from symnet.core.sharded import ShardedLoss, ShardedSamples

from symnet.solvers.options import Option, defaults, validate
from symnet.solvers.trainer import Trainer

Callback = Callable[[dict, "Solver"], Any]


class Solver(abc.ABC):
    """Base class of every backend.

    ``__init__`` only stores keyword options; :meth:`fit` validates them,
    trains ``model`` in place and returns ``self`` with ``model_`` and
    ``history_`` set.

    Example:
        >>> import symnet; from symnet import solvers
        >>> data = symnet.datasets.xor()
        >>> model = symnet.models.mlp(2, 2, 2, activation="square", seed=0)
        >>> s = solvers.get("coordinate")(ridge=1e-6).fit(model, data, steps=3, quiet=True)
        >>> s.history_.final["loss"] <= s.history_[0]["loss"]
        True
    """

    name: ClassVar[str] = "base"
    #: BLAS threads during a step: 1 for solvers whose steps alternate numba-parallel kernels with
    #: small GEMMs (see :mod:`symnet.core.runtime`), None to leave BLAS as it is (large factorisations).
    blas_threads: ClassVar[int | None] = None
    #: What one step is, for progress bars and budgets: "sweep", "epoch", "batch" ...
    step_unit: ClassVar[str] = "step"
    #: Does the backend take exact steps that it can certify (see :mod:`symnet.core.certificates`)?
    certifiable: ClassVar[bool] = False
    #: Does ``fit`` without a budget end by itself after a fixed amount of work (``default_steps`` that
    #: finish the fit, e.g. polyreg's closed forms)? The command line then sets no default time limit.
    ends_by_itself: ClassVar[bool] = False
    #: Does the backend put its sums over samples on a Dask cluster when ``fit`` gets a ``client``
    #: (through :meth:`_exact_loss` / :meth:`_samples`)? Others run in this process and say so.
    shardable: ClassVar[bool] = False
    #: The options this backend accepts: name -> :class:`~symnet.solvers.options.Option`.
    OPTIONS: ClassVar[dict[str, Option]] = {}
    #: ``{name: default}``, derived from :attr:`OPTIONS`.
    defaults: ClassVar[dict[str, Any]] = {}
    #: Seconds of training after which a long step writes an interim record (see :meth:`record_interim`).
    record_every: ClassVar[float] = 10.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = defaults(cls.OPTIONS)

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)
        self.deadline = Deadline(None)  # no limit until the training loop sets the run's

    # ---------------------------------------------------------------- hooks
    @abc.abstractmethod
    def _setup(self, model, data, rng: np.random.Generator) -> None:
        """Validate options and model against data; build caches."""

    @abc.abstractmethod
    def _step(self) -> dict:
        """One unit of work; see the module docstring for the returned keys."""

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:
        pass

    def _on_params_restored(self) -> None:
        """Called after the loop rewrote the model's parameters (resume, divergence)."""

    def _initial_loss(self) -> float | None:
        """The objective at the initial parameters, if the backend has it cheaply."""
        return None

    def _may_stop(self) -> bool:
        """May the loop stop here because the time limit has passed? A backend whose model is not usable
        until a last step (polyreg's solve, once its fit has started) answers False: the loop then runs
        that one step, which finishes with what the backend has."""
        return True

    def _on_loop_end(self, stopped_by: str | None) -> None:
        """Called once the loop has ended; ``stopped_by`` is ``"time"`` (the time limit), ``"steps"`` (the
        step budget) or None (the backend converged, or a callback stopped it). A backend whose model is
        not usable yet (polyreg before its solve) says so here."""

    # ---------------------------------------------------------------- helpers
    def check_options(self) -> dict[str, Any]:
        """The full, validated options: the defaults of :attr:`OPTIONS` overridden by the given ones.

        Raises:
            SolverError: an unknown option or a value outside its declared range.
        """
        return validate(self.name, self.OPTIONS, self.options)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scores (N, classes) of the trained model."""
        return self.model_.forward(X)

    @property
    def ridge_used(self) -> float:
        """The ridge of the objective being minimised: :attr:`ridge_` (0.0 while it is not chosen yet)."""
        return float(getattr(self, "ridge_", None) or 0.0)

    def objective(self, X: np.ndarray, Y: np.ndarray) -> float:
        """The training objective (:mod:`symnet.core.objective`) on ``(X, Y)``, divided by the number of samples."""
        return evaluate(self.model_.forward(X), Y, self.model_.get_flat(), self.ridge_used) / max(len(X), 1)

    # ---------------------------------------------------------------- the run
    def require_exact_network(self, model, data) -> list:
        """Check that an exact solver can train ``model`` on ``data``; returns its layers.

        Exact solvers need a Sequential of symnet's layers (each has an exact polynomial
        rule), built for the data's input shape and number of classes.
        """
        layers = getattr(model, "layers", None)
        if layers is None:
            raise ModelError(f"solver '{self.name}' trains Sequential networks, got {type(model).__name__}")
        for layer in layers:
            if type(layer) not in LAYER_TYPES.values():
                raise ModelError(f"solver '{self.name}' cannot handle layer {layer!r}: it has no exact polynomial "
                                 f"rule; use layers from symnet.layers ({', '.join(LAYER_TYPES)})")
        if tuple(data.input_shape) != tuple(model.input_shape):
            raise ModelError(f"model expects inputs {model.input_shape}, data has {data.input_shape}; "
                             "build the model for this dataset")
        if self.y_train.shape[1] != model.num_outputs:
            raise ModelError(f"the model has {model.num_outputs} outputs but the data has {self.y_train.shape[1]} "
                             f"classes; build the model with num_classes={self.y_train.shape[1]}")
        return layers

    _require_exact_network = require_exact_network  # the name the backends use

    def fit(
        self,
        model,
        data,
        *,
        steps: int | None = None,
        time_limit: float | None = None,
        callbacks: Iterable[Callback] = (),
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        quiet: bool | None = None,
        seed: int | None = None,
        eval_train: bool = True,
        certificates: bool | str = False,
        client=None,
    ) -> "Solver":
        """Train ``model`` on ``data`` in place: :meth:`run` with a :class:`~symnet.core.run.RunSpec` of these settings.

        Args:
            model: a :class:`symnet.Sequential` (or any model the backend accepts).
            data: a :class:`symnet.core.datasets.Dataset`.
            steps: stop after this many steps (sweeps, epochs ...). ``None`` with no
                ``time_limit`` means the backend's ``default_steps``.
            time_limit: stop when training time (evaluation excluded) passes this many seconds.
            callbacks: called as ``cb(record, solver)`` after each step; returning
                ``False`` stops training.
            checkpoint_dir: if given, an atomic checkpoint is written there after every step;
                it records every setting that defines the run (solver, options, seed, model,
                data fingerprint) and the wall time so far.
            resume: continue from the checkpoint in ``checkpoint_dir``; refused, with the
                differences listed, when any setting differs (only the budget may grow).
            overwrite: replace an existing checkpoint in ``checkpoint_dir`` (without it, and
                without ``resume``, an existing checkpoint is an error).
            quiet: hide the progress bar (default: hidden when ``$CI`` is set).
            seed: seed of the backend's random choices (default: option ``seed`` or 0).
            eval_train: compute training accuracy after each step.
            certificates: record every exact step (:mod:`symnet.core.certificates`) in
                ``certificates_`` and, with ``checkpoint_dir``, in ``certificates.npz`` there;
                ``"all"`` keeps the parameters before every step (a full re-evaluation), True
                a sample of them. Only solvers that take exact steps have certificates.
            client: a ``distributed.Client``: the backend's sums over the training samples run
                on its workers, the samples and per-sample caches in shards there
                (:mod:`symnet.core.sharded`); the steps are the same as without it. Never
                closed here. Backends that do not shard (``shardable``) run here and say so.

        Returns:
            ``self``, with ``model_``, ``history_`` and ``opts_`` set.
        """
        spec = RunSpec(steps=steps, time=time_limit, seed=seed, out=checkpoint_dir, resume=resume,
                       overwrite=overwrite, certificates=certificates, quiet=quiet, eval_train=eval_train)
        return self.run(model, data, spec, callbacks=callbacks, client=client)

    def run(self, model, data, spec: RunSpec, *, callbacks: Iterable[Callback] = (), client=None) -> "Solver":
        """Train ``model`` on ``data`` in place as ``spec`` says, in the loop all backends share
        (:class:`~symnet.solvers.trainer.Trainer`)."""
        self._shards = []  # what the run's shards hold on a cluster, released below
        try:
            return Trainer(self, spec, callbacks=callbacks, client=client).run(model, data)
        except Exception as exc:
            if caused_by_interrupt(exc):  # Ctrl-C (or SIGTERM) inside a compiled kernel: the plain interrupt
                raise type(interrupt_of(exc)) from None
            raise
        finally:
            self.release_shards()

    # ---------------------------------------------------------------- what the loop gives the backends
    def interim_due(self) -> bool:
        """Has the current step trained for :attr:`record_every` seconds since the last record?"""
        trainer = getattr(self, "trainer_", None)
        return trainer is not None and trainer.interim_due()

    def record_interim(self, *, passes: float, updates: int, loss: float | None = None, train_scores=None,
                       **extra: Any) -> None:
        """Write an interim record inside a long step (marked ``partial=1``), so curves show the work.

        A backend calls it between units of its step (mini-batches, iterations,
        layers of a sweep) when :meth:`interim_due`. ``passes`` and ``updates``
        count the step's work so far; ``loss`` (mean per sample, ridge included)
        is evaluated by a forward pass when not given. The record's evaluation
        is not training time, and the time limit is moved on by as much. The
        step's own record, at its end, follows as usual.
        """
        trainer = getattr(self, "trainer_", None)
        if trainer is not None:
            trainer.interim(passes=passes, updates=updates, loss=loss, train_scores=train_scores, **extra)

    def _exact_loss(self, model, X, Y, *, ridge: float, dtype=np.float64):
        """The exact loss of ``(X, Y)``: in this process, or in shards on the Dask cluster of ``fit(client=...)``."""
        if self.client_ is None:
            return Restriction(model, X, Y, ridge=ridge, dtype=dtype)
        loss = ShardedLoss(self.client_, model, X, Y, ridge=ridge, dtype=dtype)
        self._shards.append(loss)
        return loss

    def _samples(self, model, X, Y, *, boundaries=None):
        """The training samples for full-data passes without caches: here, or in shards on the cluster
        (``boundaries``: rows where a shard may start, see :class:`~symnet.core.sharded.ShardedSamples`)."""
        if self.client_ is None:
            return Samples(model, X, Y)
        samples = ShardedSamples(self.client_, model, X, Y, boundaries=boundaries)
        self._shards.append(samples)
        return samples

    def _held_out_ridge(self, readout, seed: int) -> tuple[float, dict] | None:
        """The ridge weight whose last-layer readout generalises best to held-out training samples.

        A random tenth of the training samples (at most 5,000; the split seeded by
        ``seed``: :class:`~symnet.core.linalg.Ridge`) is held out, the last layer is solved by ridge on the rest of
        ``readout``'s features (a :class:`~symnet.core.linalg.LocalReadout` or its
        sharded form) for each candidate and scored on the held-out samples
        (:func:`~symnet.core.linalg.select_ridge_on`). Training then uses every
        sample with the chosen weight. Returns ``(ridge, selection)``, the
        selection being what ``ridge_selection_`` reports, or None when there
        are too few samples to hold any out.
        """
        policy = Ridge(seed=int(seed))
        n = readout.num_samples
        n_val = policy.held_out_count(n)
        if n_val < 1:
            return None
        ridge, scores = select_ridge_on(readout, policy.held_out_rows(n, n_val), candidates=policy.candidates,
                                        num_total=n)
        return ridge, {"validation_samples": n_val, **scores, "chosen": ridge}

    def release_shards(self) -> None:
        """Free what the run's shards hold on the workers (the client itself stays open)."""
        for held in getattr(self, "_shards", ()):
            held.close()
        self._shards = []

    def _certify(self, loss, rows=None) -> None:
        """Let ``loss`` (an :class:`~symnet.core.restriction.Restriction`) record its steps in this run's certificates."""
        loss.certificates = self.certificates_
        loss.rows = rows

    def notify(self, message: str) -> None:
        """Tell the user something about this run they did not ask about (a budget cut short, a unit of work
        that cannot be cut): kept in ``notices_`` and the history, and issued as a :class:`SymnetWarning`."""
        self.notices_.append(message)
        if getattr(self, "history_", None) is not None:
            self.history_.meta.setdefault("notices", []).append(message)
        warnings.warn(f"solver '{self.name}': {message}", SymnetWarning, stacklevel=3)

    @property
    def wall_time_(self) -> float:
        """Wall seconds of the whole run so far (earlier sessions of a resumed run included)."""
        return self.trainer_.wall_time

    @property
    def wall_before_(self) -> float:
        """Wall seconds of the earlier sessions of a resumed run (0 for a new run)."""
        trainer = getattr(self, "trainer_", None)
        return 0.0 if trainer is None else trainer.wall_before

    def run_settings(self, model, data, seed: int) -> dict:
        """Everything that defines a run, as a checkpoint records it: solver, options, seed, model, data.

        Example:
            >>> import symnet; from symnet import solvers
            >>> data = symnet.datasets.xor(8)
            >>> s = solvers.get("coordinate")()
            >>> s.opts_ = s.check_options()
            >>> sorted(s.run_settings(symnet.models.mlp(2, 2, 2), data, 0))
            ['data', 'model', 'options', 'seed', 'solver']
        """
        return sio.to_jsonable({"solver": self.name, "options": self.opts_, "seed": int(seed),
                                "model": model.spec() if hasattr(model, "spec") else type(model).__name__,
                                "data": data.fingerprint()})
