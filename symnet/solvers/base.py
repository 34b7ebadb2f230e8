"""The one interface every backend implements, and the shared training loop.

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

:meth:`Solver.fit` runs the loop that all backends share: history, callbacks,
time limit, progress bar, divergence guard, atomic checkpoints and resume.

Time: a record's ``time`` is seconds of training: the backend's setup (caches,
factorisations) and its steps, without the evaluation of records (test
accuracy, a step's ``eval_seconds``), checkpoints or callbacks. The time limit
counts the same seconds.
"""

from __future__ import annotations

import abc
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import numpy as np

import symnet.core.files as sio
import symnet.core.progress as progress
from symnet.core.certificates import Certificates
from symnet.core.errors import (CorruptFileError, DivergenceError, ModelError, RunExistsError, SolverError,
                                SymnetWarning)
from symnet.core.history import History
from symnet.core.layers import LAYER_TYPES
from symnet.core.linalg import Ridge, parse_ridge, select_ridge_on
from symnet.core.objective import accuracy, evaluate
from symnet.core.restriction import Restriction
from symnet.core.runtime import blas_threads, caused_by_interrupt
from symnet.core.samples import Samples
from symnet.core.sharded import ShardedLoss, ShardedSamples

from symnet.solvers.options import Option, defaults, validate

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
    #: Seconds of training after which a long step writes an interim record (see :meth:`_interim`).
    record_every: ClassVar[float] = 10.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = defaults(cls.OPTIONS)

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)

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

    # ---------------------------------------------------------------- the loop
    def _require_exact_network(self, model, data) -> list:
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
        if self._Y_train.shape[1] != model.num_outputs:
            raise ModelError(f"the model has {model.num_outputs} outputs but the data has {self._Y_train.shape[1]} "
                             f"classes; build the model with num_classes={self._Y_train.shape[1]}")
        return layers

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
        """Train ``model`` on ``data`` in place.

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
        try:
            return self._fit(model, data, steps=steps, time_limit=time_limit, callbacks=callbacks,
                             checkpoint_dir=checkpoint_dir, resume=resume, overwrite=overwrite, quiet=quiet,
                             seed=seed, eval_train=eval_train, certificates=certificates, client=client)
        except Exception as exc:
            if caused_by_interrupt(exc):  # Ctrl-C inside a compiled kernel: a plain KeyboardInterrupt
                raise KeyboardInterrupt from None
            raise
        finally:
            self._release_shards()

    def _fit(
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
        self.opts_ = self.check_options()
        #: the ridge weight in use: the option's number, or (auto) None until the backend chooses it
        self.ridge_ = parse_ridge(self.opts_.get("ridge", 0.0)).value
        if steps is not None and (not isinstance(steps, (int, np.integer)) or steps < 0):
            raise SolverError(f"steps must be a non-negative whole number, got {steps!r}")
        if time_limit is not None:
            try:
                time_limit = float(time_limit)
            except (TypeError, ValueError):
                raise SolverError(f"time limit must be a number of seconds, got {time_limit!r}") from None
            if not time_limit > 0:
                raise SolverError(f"time limit must be positive, got {time_limit}")
        if steps is None and time_limit is None:
            steps = int(getattr(self, "default_steps", 10))
        seed = int(self.opts_.get("seed", 0) if seed is None else seed)
        rng = np.random.default_rng(seed)
        t_enter = time.perf_counter()
        data = data.validate()  # the arrays are writable: a NaN may have been written since construction
        ckpt = Path(checkpoint_dir) / "checkpoint.npz" if checkpoint_dir is not None else None
        self.settings_ = self.run_settings(model, data, seed)
        stored = None
        if resume:
            if ckpt is None or not ckpt.exists():
                raise SolverError(f"nothing to resume: no checkpoint at {ckpt}; run once without --resume")
            stored = sio.read_npz(ckpt, "checkpoint")
            self._check_settings(stored, ckpt)  # before any setup work: a mismatch fails at once
        elif ckpt is not None and ckpt.exists() and not overwrite:
            raise RunExistsError(f"{ckpt.parent} already holds a run (checkpoint.npz); continue it with resume "
                                 "(--resume), replace it with overwrite (--overwrite), or pick another folder")
        self.model_ = model
        self.data_ = data
        self._deadline: float | None = None
        self._in_step: dict | None = None
        self._wall0 = 0.0
        self.notices_: list[str] = []
        self.client_ = client
        self._shards: list = []
        if client is not None and not self.shardable:
            self._notify("runs in this process: its work is not a sum over samples that shards split, so the Dask "
                         "cluster is not used (it is used by coordinate, gauss-newton, lbfgs, cg and polyreg)")
        self.certificates_ = None
        if certificates:
            if not self.certifiable:
                raise SolverError(f"solver '{self.name}' takes no exact steps, so it has no certificates; they "
                                  "apply to coordinate, cg, lbfgs, gauss-newton and symbolic-block")
            self.certificates_ = Certificates(getattr(model, "num_params", 0),
                                              sample="all" if certificates == "all" else "some", seed=seed)
            if stored is not None and ckpt is not None and (ckpt.parent / "certificates.npz").exists():
                self.certificates_ = Certificates.load(ckpt.parent / "certificates.npz")  # a resumed run goes on
        # what the backends may plan their work around (polyreg groups its Gram chunks into the steps it has)
        self.steps_budget_ = steps if not resume else None
        self.time_limit_ = time_limit
        Y_train = data.one_hot("train")
        self._Y_train = Y_train
        t_setup = time.perf_counter()
        self._setup(model, data, rng)
        # setup builds caches and factorisations the steps rely on: it is training work, and counts as such
        setup_seconds = time.perf_counter() - t_setup

        history = History(solver=self.name, options=self.opts_, model=getattr(model, "name", None),
                          dataset=getattr(data, "name", None), seed=seed, step_unit=self.step_unit)
        if self.notices_:
            history.meta["notices"] = list(self.notices_)
        self.history_ = history
        if stored is not None:
            self._restore(stored, rng)
        else:
            self._record(0, self._initial_loss(), 0.0, 0, 0.0, None, eval_train)
        history.meta["setup_seconds"] = history.meta.get("setup_seconds", 0.0) + setup_seconds
        self._t_enter = t_enter
        done = history.final["step"]
        elapsed0 = history.final["time"]
        if time_limit is not None:
            self._deadline = time.perf_counter() + max(time_limit - elapsed0 - setup_seconds, 0.0)
        target = None if steps is None else done + 0 if resume and steps <= done else steps
        total = None if target is None else max(target, done)
        with progress.bar(total=total, desc=self.name, unit=self.step_unit, quiet=quiet) as pbar:
            pbar.update(done)
            train_clock = setup_seconds
            stopped_by = None
            while True:
                if target is not None and history.final["step"] >= target:
                    stopped_by = "steps"
                    break
                if self._deadline is not None and time.perf_counter() >= self._deadline and self._may_stop():
                    stopped_by = "time"
                    break
                last_good = self.model_.get_flat().copy()
                prev = history.final
                if self.certificates_ is not None:
                    self.certificates_.begin_step(prev["step"] + 1)
                t0 = time.perf_counter()
                self._in_step = {"prev": prev, "t0": t0, "clock": elapsed0 + train_clock, "excluded": 0.0,
                                 "last": t0, "eval_train": eval_train}
                with blas_threads(self.blas_threads):
                    info = self._step()
                # a step's own evaluation for its records (forward passes that train nothing) is not training
                train_clock += time.perf_counter() - t0 - float(info.get("eval_seconds", 0.0)) - \
                    self._in_step["excluded"]
                self._in_step = None
                loss = info.get("loss")
                if loss is not None and not np.isfinite(loss):
                    self.model_.set_flat(last_good)
                    self._on_params_restored()
                    raise DivergenceError(
                        f"solver '{self.name}' diverged at step {history.final['step'] + 1} (loss {loss}); "
                        "the last finite parameters were kept - lower the learning rate or raise the ridge")
                rec = self._record(prev["step"] + 1, loss, elapsed0 + train_clock,
                                   prev["updates"] + int(info.get("updates", 0)),
                                   prev["passes"] + float(info.get("passes", 0.0)),
                                   info, eval_train)
                pbar.update(1)
                postfix = {"loss": f"{rec['loss']:.4g}"}
                if rec.get("test_acc") is not None:  # a dataset without a test split has no test accuracy
                    postfix["test"] = f"{rec['test_acc']:.4f}"
                pbar.set_postfix(**postfix)
                if ckpt is not None:
                    self._checkpoint(ckpt, rng)
                stop = False
                deadline = self._deadline  # a callback may move it; then its word stands
                for cb in callbacks:
                    if cb(rec, self) is False:
                        stop = True
                if stop or info.get("converged"):
                    break
                if time_limit is not None and self._deadline == deadline:
                    # the limit counts training seconds: records, checkpoints and callbacks are free
                    self._deadline = time.perf_counter() + max(time_limit - elapsed0 - train_clock, 0.0)
        if time_limit is not None and history.final["step"] == done and (target is None or done < target):
            self._notify(f"the time limit ({time_limit:g} s) was spent before the first step (setup took "
                         f"{setup_seconds:.1f} s), so the model was not trained: raise --time-limit")
        self._on_loop_end(stopped_by)
        return self

    def _interim_due(self) -> bool:
        """Has the current step trained for :attr:`record_every` seconds since the last record?"""
        state = getattr(self, "_in_step", None)
        return state is not None and time.perf_counter() - state["last"] >= self.record_every

    def _interim(self, *, passes: float, updates: int, loss: float | None = None, train_scores=None,
                 **extra: Any) -> None:
        """Write an interim record inside a long step (marked ``partial=1``), so curves show the work.

        A backend calls it between units of its step (mini-batches, iterations,
        layers of a sweep) when :meth:`_interim_due`. ``passes`` and ``updates``
        count the step's work so far; ``loss`` (mean per sample, ridge included)
        is evaluated by a forward pass when not given. The record's evaluation
        is not training time, and the time limit is moved on by as much. The
        step's own record, at its end, follows as usual.
        """
        state = getattr(self, "_in_step", None)
        if state is None:
            return
        now = time.perf_counter()
        clock = state["clock"] + (now - state["t0"]) - state["excluded"]
        prev = state["prev"]
        rec = self._record(prev["step"] + 1, loss, clock, prev["updates"] + int(updates),
                           prev["passes"] + float(passes), {"train_scores": train_scores, **extra}, state["eval_train"])
        rec["partial"] = 1
        spent = time.perf_counter() - now
        state["excluded"] += spent
        state["last"] = time.perf_counter()
        if self._deadline is not None:
            self._deadline += spent

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

    def _release_shards(self) -> None:
        """Free what the run's shards hold on the workers (the client itself stays open)."""
        for held in getattr(self, "_shards", ()):
            held.close()
        self._shards = []

    def _certify(self, loss, rows=None) -> None:
        """Let ``loss`` (an :class:`~symnet.core.restriction.Restriction`) record its steps in this run's certificates."""
        loss.certificates = self.certificates_
        loss.rows = rows

    def _notify(self, message: str) -> None:
        """Tell the user something about this run they did not ask about (a budget cut short, a unit of work
        that cannot be cut): kept in ``notices_`` and the history, and issued as a :class:`SymnetWarning`."""
        self.notices_.append(message)
        if getattr(self, "history_", None) is not None:
            self.history_.meta.setdefault("notices", []).append(message)
        warnings.warn(f"solver '{self.name}': {message}", SymnetWarning, stacklevel=3)

    @property
    def wall_time_(self) -> float:
        """Wall seconds of the whole run so far (earlier sessions of a resumed run included)."""
        return self._wall0 + time.perf_counter() - self._t_enter

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

    def _check_settings(self, stored: dict, path: Path) -> None:
        """Refuse to resume a checkpoint whose run was defined by other settings; list every difference."""
        if "run" not in stored:
            raise CorruptFileError(f"checkpoint {path} does not record the settings of its run (written by an "
                                   "older symnet?); start a new run instead of resuming")
        before = json.loads(bytes(stored["run"]).decode())
        changes = [f"{key}: {a!r} -> {b!r}" for key, a, b in _differences(before, self.settings_)]
        if changes:
            raise SolverError(f"cannot resume the run in {path.parent}: its settings differ from the checkpoint's "
                              f"({'; '.join(changes[:8])}{'; ...' if len(changes) > 8 else ''}); resume with the "
                              "same settings (only the budget may grow), or start a new run with another --out "
                              "(or --overwrite)")

    def _record(self, step, loss, elapsed, updates, passes, info, eval_train) -> dict:
        data = self.data_
        train_scores = None if info is None else info.get("train_scores")
        if loss is None or (eval_train and train_scores is None):
            train_scores = self.predict(data.x_train)
        if loss is None:
            loss = evaluate(train_scores, self._Y_train, self.model_.get_flat(), self.ridge_used) / \
                max(len(data.x_train), 1)
        train_acc = accuracy(train_scores, data.y_train) if eval_train else None
        test_acc = accuracy(self.predict(data.x_test), data.y_test) if len(data.x_test) else None
        extra = {k: v for k, v in (info or {}).items()
                 if k not in ("loss", "updates", "passes", "train_scores", "converged", "eval_seconds")
                 and np.isscalar(v)}
        return self.history_.append(step=int(step), loss=float(loss), train_acc=train_acc, test_acc=test_acc,
                                    time=float(elapsed), updates=int(updates), passes=float(passes), **extra)

    # ---------------------------------------------------------------- checkpoints
    def _checkpoint(self, path: Path, rng: np.random.Generator) -> None:
        state = self._state()
        arrays = {f"state.{k}": np.asarray(v) for k, v in state.items()}
        arrays["params"] = self.model_.get_flat()
        arrays["history"] = np.frombuffer(self.history_.to_json().encode(), dtype=np.uint8)
        arrays["rng"] = np.frombuffer(json.dumps(rng.bit_generator.state).encode(), dtype=np.uint8)
        arrays["spec"] = np.frombuffer(json.dumps(self.model_.spec()).encode(), dtype=np.uint8)
        arrays["run"] = np.frombuffer(json.dumps(self.settings_).encode(), dtype=np.uint8)
        arrays["wall"] = np.asarray(self.wall_time_)
        if self.certificates_ is not None:  # first: a checkpoint never refers to records that are not on disk
            self.certificates_.save(path.parent / "certificates.npz")
        sio.atomic_save_npz(path, **arrays)

    def _restore(self, z: dict, rng: np.random.Generator) -> None:
        self.model_.set_flat(z["params"])
        payload = json.loads(bytes(z["history"]).decode())
        self.history_.records = History.from_dict(payload).records
        rng.bit_generator.state = json.loads(bytes(z["rng"]).decode())
        self._wall0 = float(z["wall"]) if "wall" in z else 0.0
        self._on_params_restored()
        self._load_state({k[len("state."):]: v for k, v in z.items() if k.startswith("state.")})


def _differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old, new)`` for every leaf where two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=lambda k: (k == "digest", k)):  # the digest last: least readable
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [(prefix[:-1], a, b)]
