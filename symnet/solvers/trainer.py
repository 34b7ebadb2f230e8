"""The training loop every backend shares, apart from the backends' methods.

A :class:`Trainer` takes a :class:`~symnet.solvers.base.Solver` (what one step
does) and a :class:`~symnet.core.run.RunSpec` (budget, seed, folder, resume,
certificates, progress) and runs the loop: history, clock, time limit, progress
bar, divergence guard, callbacks, atomic checkpoints and resume, certificates
and notices. :meth:`Solver.fit <symnet.solvers.base.Solver.fit>` is a thin
wrapper around it.

Time: a record's ``time`` is seconds of training: the backend's setup (caches,
factorisations) and its steps, without the evaluation of records (test
accuracy, a step's ``eval_seconds``), checkpoints or callbacks. The time limit
(the solver's :class:`~symnet.core.run.Deadline`, ``solver.deadline``) counts
the same seconds.

The loop calls the backend's hooks (``_setup``, ``_step``, ``_state``,
``_load_state``, ``_on_params_restored``, ``_initial_loss``, ``_may_stop``,
``_on_loop_end``): the protected interface that :class:`Solver` declares for its
subclasses and this loop, which is the base class's own loop moved apart.

Example:
    >>> import symnet; from symnet import solvers
    >>> from symnet.core.run import RunSpec
    >>> s = solvers.get("coordinate")(ridge=1e-6)
    >>> t = Trainer(s, RunSpec(steps=2, quiet=True)).run(symnet.models.mlp(2, 2, 2, seed=0), symnet.datasets.xor())
    >>> [r["step"] for r in s.history_]
    [0, 1, 2]
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

import symnet.core.files as sio
import symnet.core.progress as progress
from symnet.core.certificates import Certificates, Chain
from symnet.core.errors import CorruptFileError, DivergenceError, RunExistsError, SolverError
from symnet.core.history import History
from symnet.core.linalg import parse_ridge
from symnet.core.objective import accuracy, evaluate
from symnet.core.run import Deadline, RunSpec
from symnet.core.runtime import blas_threads

#: Keys of a step's info dict that are not copied into its record.
_NOT_RECORDED = ("loss", "updates", "passes", "train_scores", "converged", "eval_seconds")
#: Training and test samples an interim record evaluates when the backend gives it no loss: a fixed,
#: seeded subsample, so that records every few seconds cost little (a full pass over 60,000 MNIST images
#: through poly2 takes seconds); the records at step ends and at the end use every sample.
INTERIM_SAMPLES = 5000
#: Seed of that subsample.
EVAL_SEED = 20261208
#: A checkpoint is written after the first step, then once this many wall seconds have passed since the last
#: one (or 20 times the last one's cost, when that is longer), at the end, and when the run is interrupted or
#: diverges (from the state kept at the last step's end). Writing it after every step rewrote the whole
#: history each time: wall time grew with the square of the steps.
CHECKPOINT_SECONDS = 10.0
#: A time limit T also bounds the wall time of the session: it ends once WALL_SLACK * T + WALL_OVERHEAD wall
#: seconds have passed since the loop began, even when records and checkpoints, which the limit does not
#: count, outweigh the training (tiny problems).
WALL_SLACK = 1.1
WALL_OVERHEAD = 2.0


class Trainer:
    """One run of ``solver`` under ``spec``; :meth:`run` trains a model in place.

    Args:
        solver: the backend (its options in ``solver.options``).
        spec: the run; its budget is resolved for the solver by :meth:`RunSpec.limits
            <symnet.core.run.RunSpec.limits>`.
        callbacks: called as ``cb(record, solver)`` after each step; returning ``False`` stops.
        client: a ``distributed.Client`` for backends that shard their sums (never closed here).
        clock: the clock of the loop and the deadline (tests inject one).
    """

    def __init__(self, solver, spec: RunSpec, *, callbacks: Iterable[Callable] = (), client=None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.solver = solver
        self.spec = spec.for_solver(solver)
        self.callbacks = list(callbacks)
        self.client = client
        self.clock = clock
        self.wall_before = 0.0  # wall seconds of the earlier sessions of a resumed run
        self.t_enter = clock()
        self.in_step: dict | None = None
        self.cache: dict = {}

    # ---------------------------------------------------------------- the loop
    def run(self, model, data):
        """Train ``model`` on ``data``; returns the solver, with ``model_``, ``history_`` and ``opts_`` set."""
        solver, spec, clock = self.solver, self.spec, self.clock
        solver.opts_ = solver.check_options()
        #: the ridge weight in use: the option's number, or (auto) None until the backend chooses it
        solver.ridge_ = parse_ridge(solver.opts_.get("ridge", 0.0)).value
        steps, time_limit = spec.steps, spec.time
        seed = int(solver.opts_.get("seed", 0) if spec.seed is None else spec.seed)
        rng = np.random.default_rng(seed)
        self.t_enter = clock()
        data = data.validate()  # the arrays are writable: a NaN may have been written since construction
        ckpt = spec.out / "checkpoint.npz" if spec.out is not None else None
        solver.settings_ = solver.run_settings(model, data, seed)
        stored = None
        if spec.resume:
            if ckpt is None or not ckpt.exists():
                raise SolverError(f"nothing to resume: no checkpoint at {ckpt}; run once without --resume")
            stored = sio.read_npz(ckpt, "checkpoint")
            check_settings(stored, ckpt, solver.settings_)  # before any setup work: a mismatch fails at once
        elif ckpt is not None and ckpt.exists() and not spec.overwrite:
            raise RunExistsError(f"{ckpt.parent} already holds a run (checkpoint.npz); continue it with resume "
                                 "(--resume), replace it with overwrite (--overwrite), or pick another folder")
        solver.model_ = model
        solver.data_ = data
        solver.trainer_ = self
        solver.deadline = Deadline(None, clock=clock)
        solver.notices_ = []
        solver.history_ = None
        solver.client_ = self.client
        if self.client is not None and not solver.shardable:
            solver.notify("runs in this process: its work is not a sum over samples that shards split, so the "
                          "Dask cluster is not used (it is used by coordinate, gauss-newton, lbfgs, cg and polyreg)")
        solver.certificates_ = None
        if spec.certificates:
            if not solver.certifiable:
                raise SolverError(f"solver '{solver.name}' takes no exact steps, so it has no certificates; they "
                                  "apply to coordinate, cg, lbfgs, gauss-newton and symbolic-block")
            solver.certificates_ = Certificates(getattr(model, "num_params", 0),
                                                sample="all" if spec.certificates == "all" else "some", seed=seed)
            if stored is not None and (ckpt.parent / "certificates.npz").exists():
                solver.certificates_ = Certificates.load(ckpt.parent / "certificates.npz")  # a resumed run goes on
        # what the backends may plan their work around (polyreg groups its Gram chunks into the steps it has)
        solver.steps_budget_ = steps if not spec.resume else None
        solver.step_target_ = steps  # the run's whole budget in steps (a schedule's horizon), resumed or not
        solver.time_limit_ = time_limit
        solver.y_train = data.one_hot("train")
        t_setup = clock()
        solver._setup(model, data, rng)
        model = solver.model_  # a backend may train a model of its own (polyreg builds one)
        # setup builds caches and factorisations the steps rely on: it is training work, and counts as such
        setup_seconds = clock() - t_setup

        history = History(solver=solver.name, options=solver.opts_, model=getattr(model, "name", None),
                          dataset=getattr(data, "name", None), seed=seed, step_unit=solver.step_unit)
        if solver.notices_:
            history.meta["notices"] = list(solver.notices_)
        solver.history_ = history
        certs = solver.certificates_
        if stored is not None:
            self.restore(stored, rng)
            if certs is not None:
                chain = certs.chain
                if chain is None or chain.start + len(chain.links) != len(history):
                    # the certificates did not follow the run this far (a session without them): a new chain
                    # from here, so verify reports which steps are covered
                    certs.chain = Chain(model.get_flat(), start=len(history) - 1)
                    certs.chain.link(history.final, model.get_flat(), certs)
        else:
            if certs is not None:
                certs.chain = Chain(model.get_flat(), start=0)
            self.record(0, solver._initial_loss(), 0.0, 0, 0.0, None)
        history.meta["setup_seconds"] = history.meta.get("setup_seconds", 0.0) + setup_seconds
        done = history.final["step"]
        elapsed0 = history.final["time"]
        solver.deadline = deadline = Deadline(time_limit, clock=clock, used=elapsed0 + setup_seconds)
        target = None if steps is None else done + 0 if spec.resume and steps <= done else steps
        total = None if target is None else max(target, done)
        wall_end = math.inf if time_limit is None else \
            clock() + WALL_SLACK * max(time_limit - elapsed0, 0.0) + WALL_OVERHEAD
        self.snapshot = self.written = None
        self.write_cost = 0.0
        try:
            stopped_by = self.loop(model, data, rng, ckpt, deadline, target, total, done, elapsed0, setup_seconds,
                                   wall_end)
        except BaseException:
            # Ctrl-C, SIGTERM, divergence, a failing step: keep what the last finished step reached
            if ckpt is not None and self.snapshot is not None and self.snapshot is not self.written:
                self.write_checkpoint(ckpt)
            raise
        if ckpt is not None and self.snapshot is not None and self.snapshot is not self.written:
            self.write_checkpoint(ckpt)
        if time_limit is not None and history.final["step"] == done and (target is None or done < target):
            solver.notify(f"the time limit ({time_limit:g} s) was spent before the first step (setup took "
                          f"{setup_seconds:.1f} s), so the model was not trained: raise --time-limit")
        solver._on_loop_end(stopped_by)
        return solver

    def loop(self, model, data, rng, ckpt, deadline, target, total, done, elapsed0, setup_seconds, wall_end):
        """The steps of :meth:`run`; returns what stopped them (``"steps"``, ``"time"`` or None)."""
        solver, spec, clock, history = self.solver, self.spec, self.clock, self.solver.history_
        time_limit = spec.time
        with progress.bar(total=total, desc=solver.name, unit=solver.step_unit, quiet=spec.quiet) as pbar:
            pbar.update(done)
            train_clock = setup_seconds
            stopped_by = None
            while True:
                if target is not None and history.final["step"] >= target:
                    stopped_by = "steps"
                    break
                if time_limit is not None and (deadline.passed() or clock() >= wall_end) and solver._may_stop():
                    stopped_by = "time"
                    break
                last_good = model.get_flat().copy()
                prev = history.final
                if solver.certificates_ is not None:
                    solver.certificates_.begin_step(prev["step"] + 1)
                t0 = clock()
                self.in_step = {"prev": prev, "t0": t0, "clock": elapsed0 + train_clock, "excluded": 0.0,
                                "last": t0}
                with blas_threads(solver.blas_threads):
                    info = solver._step()
                # a step's own evaluation for its records (forward passes that train nothing) is not training
                train_clock += clock() - t0 - float(info.get("eval_seconds", 0.0)) - self.in_step["excluded"]
                self.in_step = None
                loss = info.get("loss")
                if loss is not None and not np.isfinite(loss):
                    model.set_flat(last_good)
                    solver._on_params_restored()
                    raise DivergenceError(
                        f"solver '{solver.name}' diverged at step {prev['step'] + 1} (loss {loss}); "
                        "the last finite parameters were kept - lower the learning rate or raise the ridge")
                rec = self.record(prev["step"] + 1, loss, elapsed0 + train_clock,
                                  prev["updates"] + int(info.get("updates", 0)),
                                  prev["passes"] + float(info.get("passes", 0.0)), info)
                pbar.update(1)
                postfix = {"loss": f"{rec['loss']:.4g}"}
                if rec.get("test_acc") is not None:  # a dataset without a test split has no test accuracy
                    postfix["test"] = f"{rec['test_acc']:.4f}"
                pbar.set_postfix(**postfix)
                if ckpt is not None:
                    self.snapshot = self.capture(rng)
                    since = math.inf if self.written is None else clock() - self.written["at"]
                    if since >= max(CHECKPOINT_SECONDS, 20.0 * self.write_cost):
                        self.write_checkpoint(ckpt)
                stop = False
                at = deadline.at  # a callback may move it; then its word stands
                for cb in self.callbacks:
                    if cb(rec, solver) is False:
                        stop = True
                if stop or info.get("converged"):
                    break
                if time_limit is not None and deadline.at == at:
                    # the limit counts training seconds: records, checkpoints and callbacks are free
                    deadline.start(elapsed0 + train_clock)
        return stopped_by

    # ---------------------------------------------------------------- records
    def interim_due(self) -> bool:
        """Has the current step trained for the solver's ``record_every`` seconds since the last record?"""
        return self.in_step is not None and self.clock() - self.in_step["last"] >= self.solver.record_every

    def interim(self, *, passes: float, updates: int, loss: float | None = None, train_scores=None,
                **extra: Any) -> None:
        """An interim record inside a long step (see :meth:`Solver.record_interim
        <symnet.solvers.base.Solver.record_interim>`); its evaluation moves the time limit on."""
        state = self.in_step
        if state is None:
            return
        now = self.clock()
        clock = state["clock"] + (now - state["t0"]) - state["excluded"]
        prev = state["prev"]
        rec = self.record(prev["step"] + 1, loss, clock, prev["updates"] + int(updates),
                          prev["passes"] + float(passes), {"train_scores": train_scores, **extra}, interim=True)
        rec["partial"] = 1
        spent = self.clock() - now
        state["excluded"] += spent
        state["last"] = self.clock()
        self.solver.deadline.extend_excluded(spent)

    def record(self, step, loss, elapsed, updates, passes, info, *, interim: bool = False) -> dict:
        """Append a record to the solver's history: the loss (evaluated when not given), accuracies, both clocks.

        Every record carries ``time`` (training seconds) and ``wall`` (wall seconds since the run began,
        evaluation and checkpoints included, earlier sessions of a resumed run too), and ``data_loss``, the
        squared error per sample without the ridge term, the one number every backend can be compared on.
        An interim record (inside a long step) evaluates what the backend did not give it on a fixed,
        seeded subsample of :data:`INTERIM_SAMPLES` training and test samples, and names it
        (``eval_samples``; ``loss_estimated`` when the loss too is the subsample's, the backend having
        given none), so that curves stay cheap; records at step ends use every sample.
        """
        solver, data, eval_train = self.solver, self.solver.data_, self.spec.eval_train
        x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
        Y = solver.y_train
        train_scores = None if info is None else info.get("train_scores")
        sampled = interim and train_scores is None and (loss is None or eval_train) and \
            len(x_train) > INTERIM_SAMPLES
        if sampled:
            rows, test_rows = self.eval_rows(len(x_train)), self.eval_rows(len(x_test))
            x_train, y_train, Y = x_train[rows], y_train[rows], Y[rows]
            x_test, y_test = x_test[test_rows], y_test[test_rows]
        if loss is None or (eval_train and train_scores is None):
            train_scores = solver.predict(x_train)
        theta = solver.model_.get_flat()
        ridge = float(solver.ridge_used or 0.0)
        penalty = ridge * float(theta @ theta) / max(len(data.x_train), 1) if ridge else 0.0
        estimated = loss is None and sampled
        if loss is None:
            # the sampled estimate keeps the objective's units: squared error per sample plus the full ridge term
            loss = evaluate(train_scores, Y, theta, 0.0) / max(len(x_train), 1) + penalty
        train_acc = accuracy(train_scores, y_train) if eval_train else None
        test_acc = accuracy(solver.predict(x_test), y_test) if len(x_test) else None
        extra = {k: v for k, v in (info or {}).items() if k not in _NOT_RECORDED and np.isscalar(v)}
        if sampled:  # the accuracies, and the loss when it is marked estimated, are the subsample's
            extra["eval_samples"] = INTERIM_SAMPLES
            if estimated:
                extra["loss_estimated"] = 1
        rec = solver.history_.append(step=int(step), loss=float(loss), train_acc=train_acc, test_acc=test_acc,
                                     time=float(elapsed), updates=int(updates), passes=float(passes),
                                     wall=float(self.wall_time), data_loss=float(loss) - penalty, **extra)
        certs = solver.certificates_
        if certs is not None and certs.chain is not None:
            certs.chain.link(rec, theta, certs)
        return rec

    def eval_rows(self, n: int) -> np.ndarray:
        """The fixed, seeded subsample of ``n`` rows that interim records evaluate (sorted, for locality)."""
        key = ("eval_rows", n)
        if key not in self.cache:
            pick = np.random.default_rng([EVAL_SEED, n]).choice(n, min(n, INTERIM_SAMPLES), replace=False)
            self.cache[key] = np.sort(pick)
        return self.cache[key]

    @property
    def wall_time(self) -> float:
        """Wall seconds of the whole run so far (earlier sessions of a resumed run included)."""
        return self.wall_before + self.clock() - self.t_enter

    # ---------------------------------------------------------------- checkpoints
    def capture(self, rng: np.random.Generator) -> dict:
        """What a checkpoint of this moment holds, kept in memory (copies; the history by its length), so that
        writing it can wait: see :data:`CHECKPOINT_SECONDS`."""
        solver = self.solver
        return {"state": {k: np.array(v, copy=True) for k, v in solver._state().items()},
                "params": solver.model_.get_flat().copy(), "records": len(solver.history_),
                "rng": json.dumps(rng.bit_generator.state), "wall": self.wall_time,
                "certificates": None if solver.certificates_ is None else len(solver.certificates_), "at": 0.0}

    def checkpoint(self, path: Path, rng: np.random.Generator) -> None:
        """Write the run's atomic checkpoint of this moment."""
        self.snapshot = self.capture(rng)
        self.write_checkpoint(path)

    def write_checkpoint(self, path: Path) -> None:
        """Write the kept snapshot as the run's atomic checkpoint (certificates first, so that it never
        refers to records that are not on disk)."""
        solver, snap = self.solver, self.snapshot
        t0 = self.clock()
        history = History(solver.history_.records[:snap["records"]], **solver.history_.meta)
        arrays = {f"state.{k}": v for k, v in snap["state"].items()}
        arrays["params"] = snap["params"]
        arrays["history"] = _json_bytes(history.to_json())
        arrays["rng"] = _json_bytes(snap["rng"])
        arrays["spec"] = _json_bytes(json.dumps(solver.model_.spec()))
        arrays["run"] = _json_bytes(json.dumps(solver.settings_))
        arrays["wall"] = np.asarray(snap["wall"])
        if solver.certificates_ is not None:
            solver.certificates_.save(path.parent / "certificates.npz", upto=snap["certificates"],
                                      records=snap["records"])
        sio.atomic_save_npz(path, **arrays)
        snap["at"] = self.clock()
        self.write_cost = snap["at"] - t0
        self.written = snap

    def restore(self, z: dict, rng: np.random.Generator) -> None:
        """Continue from a checkpoint's parameters, history, RNG, wall time and backend state."""
        solver = self.solver
        solver.model_.set_flat(z["params"])
        payload = json.loads(bytes(z["history"]).decode())
        solver.history_.records = History.from_dict(payload).records
        rng.bit_generator.state = json.loads(bytes(z["rng"]).decode())
        self.wall_before = float(z["wall"]) if "wall" in z else 0.0
        solver._on_params_restored()
        solver._load_state({k[len("state."):]: v for k, v in z.items() if k.startswith("state.")})


def _json_bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


def check_settings(stored: dict, path: Path, settings: dict) -> None:
    """Refuse to resume a checkpoint whose run was defined by other settings; list every difference."""
    if "run" not in stored:
        raise CorruptFileError(f"checkpoint {path} does not record the settings of its run (written by an "
                               "older symnet?); start a new run instead of resuming")
    before = json.loads(bytes(stored["run"]).decode())
    changes = [f"{key}: {a!r} -> {b!r}" for key, a, b in differences(before, settings)]
    if changes:
        raise SolverError(f"cannot resume the run in {path.parent}: its settings differ from the checkpoint's "
                          f"({'; '.join(changes[:8])}{'; ...' if len(changes) > 8 else ''}); resume with the "
                          "same settings (only the budget may grow), or start a new run with another --out "
                          "(or --overwrite)")


def differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old, new)`` for every leaf where two JSON-like values differ.

    Example:
        >>> differences({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}})
        [('b.c', 2, 3)]
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=lambda k: (k == "digest", k)):  # the digest last: least readable
            out += differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [(prefix[:-1], a, b)]


__all__ = ["Trainer", "check_settings", "differences"]
