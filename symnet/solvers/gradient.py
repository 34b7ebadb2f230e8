"""Gradient-descent backends: one solver per optimizer of :data:`symnet.solvers.optim.OPTIMIZERS`.

Each step is one epoch: the training set is cut into batches (shuffled with
the run's seeded generator), and for each batch the model's exact gradient
``model.loss_and_grad`` drives one optimizer update. The objective being
minimised is the one every backend reports, the mean per sample of

    sum of squared errors + ridge * ||theta||^2,

so a batch of ``n_b`` of the ``N`` samples contributes
``(SSE_b + ridge (n_b / N) ||theta||^2) / n_b``, whose gradient is an unbiased
estimate of the full objective's (and equals it for a full batch). The record of
an epoch carries the full objective from one forward pass at its end (in the
working precision, ``dtype``; float32 scores agree with float64 ones to about
1e-6 relative), the mean of the batch losses (``batch_loss``) and the learning rate of the last
update (``lr``).

Divergence: a batch whose loss or gradient is not finite, or whose loss per
sample exceeds ``1e6 * max(initial loss, 1)`` (1 is the loss of the zero
predictor on one-hot targets), or an epoch ending with such a full objective,
makes the step report an infinite loss; the shared loop then restores the
parameters of the epoch's start and raises
:class:`~symnet.core.errors.DivergenceError`.

Example:
    >>> import symnet; from symnet import solvers
    >>> data = symnet.datasets.xor(8)
    >>> model = symnet.models.mlp(2, 2, 2, seed=0)
    >>> s = solvers.get("adam")(lr=0.05).fit(model, data, steps=30, quiet=True)
    >>> s.history_.final["loss"] < s.history_[0]["loss"]
    True
"""

from __future__ import annotations

import inspect
import math
import time
from typing import Any, ClassVar

import numpy as np

from symnet.core.errors import DataError, ModelError, SolverError
from symnet.core.objective import evaluate

from symnet.solvers import optim
from symnet.solvers.base import Solver
from symnet.solvers.options import Option

#: A batch loss per sample above this many times max(initial loss, 1) counts as divergence.
EXPLOSION_FACTOR = 1e6
#: Batches larger than this are differentiated in slices of this many samples, summed, to bound the
#: memory of the cached activations (a full batch of MNIST through a conv layer would need gigabytes).
GRAD_CHUNK = 4096

#: The options of every gradient solver (the method's own hyper-parameters are added per method).
COMMON_OPTIONS: dict[str, Option] = {
    "lr": Option(None, "float", low=0.0, low_open=True,
                 help="learning rate (the initial one for schedules and hypergradient methods, the peak of "
                      "warmup-cosine and one-cycle)"),
    "batch_size": Option(128, "int", low=1, none=True, help="samples per update; None: full batch"),
    "shuffle": Option(True, "bool", help="reshuffle the samples before every epoch (mini-batches only)"),
    "seed": Option(0, "int", low=0, help="seed of the shuffling"),
    "dtype": Option("float32", "choice", choices=("float32", "float64"),
                    help="working precision of forward and backward passes"),
    "ridge": Option(0.0, "float", low=0.0, help="part of the objective: + ridge * ||theta||^2"),
    "weight_decay": Option(0.0, "float", low=0.0, help="extra decay in the update, not in the reported objective"),
    "decoupled": Option(False, "bool", help="decoupled (AdamW-style) instead of L2-coupled weight decay"),
    "clip_norm": Option(None, "float", low=0.0, low_open=True, none=True,
                        help="clip each batch gradient's global norm"),
    "schedule": Option(None, "choice", choices=("constant", "inverse-time", "exponential", "cosine", "warmup-cosine",
                                                "one-cycle"), none=True,
                       help="learning-rate schedule"),
    "decay": Option(0.01, "float", low=0.0,
                    help="inverse-time: lr/(1 + decay t); exponential: lr exp(-decay t); t counts updates"),
    "final_lr": Option(0.0, "float", low=0.0,
                       help="cosine, warmup-cosine: the rate reached after schedule_steps updates"),
    "schedule_steps": Option(None, "int", low=1, none=True,
                             help="horizon in updates of cosine, warmup-cosine, one-cycle and the schedule-free "
                                  "warm-up; None: the fit's epochs x batches per epoch"),
    "warmup": Option(None, "float", low=0.0, high=1.0, high_open=True, none=True,
                     help="fraction of the horizon spent warming up: warmup-cosine (None: 0.05), one-cycle "
                          "(PyTorch's pct_start; None: 0.3), adamw-schedulefree (None: 0)"),
    "div_factor": Option(25.0, "float", low=0.0, low_open=True, help="one-cycle: the first rate is lr / div_factor"),
    "final_div_factor": Option(1e4, "float", low=0.0, low_open=True,
                               help="one-cycle: the last rate is lr / (div_factor * final_div_factor)"),
}

#: The default ``warmup`` of each schedule that has one (the option's ``None``).
WARMUP_DEFAULTS = {"warmup-cosine": 0.05, "one-cycle": 0.3}

#: The methods' own hyper-parameters, by the names of their aliases in :mod:`symnet.solvers.optim`.
METHOD_OPTIONS: dict[str, Option] = {
    "momentum": Option(0.9, "float", low=0.0, high=1.0, high_open=True, help="momentum coefficient"),
    "b1": Option(0.9, "float", low=0.0, high=1.0, high_open=True, help="decay of the first moment"),
    "b2": Option(0.999, "float", low=0.0, high=1.0, high_open=True, help="decay of the second moment"),
    "eps": Option(1e-8, "float", low=0.0, help="added to the denominator"),
    "rho": Option(0.9, "float", low=0.0, high=1.0, high_open=True, help="decay of the squared gradients"),
    "momentum_decay": Option(0.004, "float", low=0.0, help="Nadam's momentum schedule decay"),
    "momentum_warmup": Option(True, "bool", help="Nadam's momentum schedule mu_t (warm-up)"),
    "scheduled_average": Option(False, "bool", help="Nadam: the paper's moving average with mu_t (PyTorch: b1)"),
    "bias_correction": Option(True, "bool", help="AMSGrad's bias correction of the first moment"),
    "beta": Option(1e-3, "float", low=0.0, help="hypergradient learning rate of the learning rate"),
    "r": Option(0.0, "float", low=0.0, help="schedule-free: the averaging weights grow as (k+1)^r"),
    "weight_lr_power": Option(2.0, "float", low=0.0,
                              help="schedule-free: the averaging weights grow as lr_max^weight_lr_power"),
}


def _method_options(name: str) -> dict[str, Option]:
    """The common options plus the method's own hyper-parameters with its published defaults.

    A common option whose default the method's factory sets otherwise (AdamW's ``weight_decay`` 1e-2 and
    ``decoupled`` True) takes the factory's default.
    """
    out = dict(COMMON_OPTIONS)
    factory = inspect.signature(optim.OPTIMIZERS[name].factory).parameters
    for key, option in COMMON_OPTIONS.items():
        if key in factory and factory[key].default is not inspect.Parameter.empty \
                and factory[key].default != option.default:
            out[key] = option._replace(default=factory[key].default)
    method = dict(optim.OPTIMIZERS[name].defaults)
    out["lr"] = out["lr"]._replace(default=method.pop("learning_rate"))
    for key, default in method.items():
        out[key] = METHOD_OPTIONS[key]._replace(default=default)
    return out


class GradientSolver(Solver):
    """Mini-batch gradient descent with one of the optimizers of :mod:`symnet.solvers.optim`.

    Subclasses set ``optimizer`` (a key of :data:`symnet.solvers.optim.OPTIMIZERS`);
    their ``defaults`` are the common options below plus the method's own
    hyper-parameters under the names of its alias (``momentum``, ``b1``,
    ``b2``, ``eps``, ``rho``, ``beta`` ...).

    Options:
        lr: learning rate (the initial one for schedules and hypergradient
            methods, the peak of ``"warmup-cosine"`` and ``"one-cycle"``); default the
            method's published value.
        batch_size: samples per update; default 128; ``None`` (or more than the training set)
            is full batch, ``1`` one sample. The last batch of an epoch may be smaller.
        shuffle: reshuffle the samples before each epoch (seeded by ``seed``).
        seed: seed of the shuffling.
        dtype: working precision of the forward and backward passes, ``"float32"``
            (default: half the memory traffic and twice the BLAS throughput of
            double precision, as mainstream frameworks train) or ``"float64"``
            (bit-for-bit the published formulas on the float64 gradient). The
            parameters, the optimizer state, the reported objective and the
            update arithmetic stay float64 either way.
        ridge: the objective's ``ridge * ||theta||^2`` term.
        weight_decay, decoupled: extra weight decay in the update (L2-coupled or decoupled;
            ``adamw``, ``nadamw`` and ``adamw-schedulefree`` are decoupled by definition,
            and ``adamw`` and ``nadamw`` decay by 1e-2 unless told otherwise).
        clip_norm: clip each batch gradient to this global norm.
        schedule: ``"constant"``, ``"inverse-time"`` (Robbins-Monro
            ``lr / (1 + decay t)``), ``"exponential"`` (``lr exp(-decay t)``),
            ``"cosine"`` (to ``final_lr`` over ``schedule_steps`` updates, by
            default the whole run), ``"warmup-cosine"`` (a linear warm-up to
            ``lr`` over the first ``warmup`` of the horizon, then cosine to ``final_lr``;
            :func:`~symnet.solvers.optim.warmup_cosine_schedule`) or ``"one-cycle"``
            (PyTorch's ``OneCycleLR`` with cosine annealing and two phases: from
            ``lr / div_factor`` up to ``lr`` over the first ``warmup`` of the horizon,
            then down to ``lr / (div_factor * final_div_factor)``; the learning rate
            only, momentum does not cycle;
            :func:`~symnet.solvers.optim.one_cycle_schedule`); ``t`` counts updates
            from 0. The horizon of cosine, warmup-cosine and one-cycle is
            ``schedule_steps``, by default the fit's epochs x batches per epoch, so a
            fit with only a time limit needs ``schedule_steps``. (For a schedule of
            your own, use :mod:`symnet.solvers.optim` directly: a function cannot be
            stored in a checkpoint or a history.) ``adamw-schedulefree`` and the
            hypergradient methods take no schedule.
        warmup: the fraction of the horizon, in [0, 1), spent warming up: the linear
            warm-up of ``"warmup-cosine"`` (``round(warmup x horizon)`` updates; default
            0.05), the rise of ``"one-cycle"`` (its ``pct_start``; default 0.3) and the
            warm-up of ``adamw-schedulefree`` (default 0: none, and no horizon needed).
            Refused with any other schedule.
        div_factor, final_div_factor: ``"one-cycle"``'s first rate ``lr / div_factor``
            and last rate ``lr / (div_factor * final_div_factor)``; PyTorch's defaults
            25 and 1e4.

    Example:
        >>> import symnet; from symnet import solvers
        >>> data = symnet.datasets.xor(8)
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = solvers.get("sgd")(lr=0.05, batch_size=4).fit(model, data, steps=5, quiet=True)
        >>> len(s.history_), s.step_unit
        (6, 'epoch')

        Five epochs of two batches are a horizon of 10 updates: ``warmup=0.2`` warms
        up linearly over the first 2 (0.025, then 0.05), and the cosine decays from
        0.05 towards ``final_lr`` (0) over the other 8:

        >>> s = solvers.get("adamw")(lr=0.05, batch_size=4, schedule="warmup-cosine", warmup=0.2)
        >>> s = s.fit(model, data, steps=5, quiet=True)
        >>> [round(r["lr"], 4) for r in s.history_.records[1:]]   # the rate of each epoch's last update
        [0.05, 0.0481, 0.0346, 0.0154, 0.0019]
    """

    name: ClassVar[str] = "gradient"
    step_unit: ClassVar[str] = "epoch"
    blas_threads: ClassVar[int | None] = 1  # numba-parallel batch kernels between small GEMMs
    default_steps: ClassVar[int] = 10
    #: Key of :data:`symnet.solvers.optim.OPTIMIZERS`.
    optimizer: ClassVar[str] = "sgd"
    OPTIONS: ClassVar[dict[str, Option]] = _method_options("sgd")

    # ---------------------------------------------------------------- hooks
    def _setup(self, model, data, rng: np.random.Generator) -> None:
        opts = self.opts_
        if not hasattr(model, "loss_and_grad") or not hasattr(model, "get_flat"):
            raise ModelError(f"solver '{self.name}' needs a network with loss_and_grad(), such as "
                             f"symnet.Sequential; got {type(model).__name__}")
        X = data.x_train
        if tuple(X.shape[1:]) != tuple(model.input_shape):
            raise DataError(f"the model expects samples of shape {tuple(model.input_shape)} but the data has "
                            f"{tuple(X.shape[1:])}; build the model for this dataset's input shape")
        if self.y_train.shape[1] != model.num_outputs:
            raise ModelError(f"the model has {model.num_outputs} outputs but the data has "
                             f"{self.y_train.shape[1]} classes; build the model with num_classes="
                             f"{self.y_train.shape[1]}")
        N = len(X)
        batch = opts["batch_size"]
        self._batch = N if batch is None else min(batch, N)
        self._ridge = opts["ridge"]
        lr = opts["lr"]
        if lr is None:
            raise SolverError(f"solver '{self.name}' needs a learning rate: pass lr=...")
        self._schedule = self._build_schedule(lr, N)
        method = {k: opts[k] for k in optim.OPTIMIZERS[self.optimizer].defaults if k != "learning_rate"}
        method.update(self._factory_extras(N))
        self._tx = optim.OPTIMIZERS[self.optimizer].factory(
            learning_rate=lr, weight_decay=opts["weight_decay"], decoupled=bool(opts["decoupled"]),
            clip_norm=opts["clip_norm"], schedule=self._schedule, **method)
        self._lr0 = lr
        self._dtype = np.dtype(opts["dtype"])
        # one cast up front rather than one per batch
        self._X = X.astype(self._dtype, copy=False)
        self._rng = rng
        self._opt_state = self._tx.init(model.get_flat())
        self._num_updates = 0

    def _factory_extras(self, N: int) -> dict[str, Any]:
        """Arguments of the optimizer's factory that the solver derives from its options (none here)."""
        return {}

    def _horizon(self, N: int, what: str) -> int:
        """The schedule's horizon in updates: ``schedule_steps``, else the fit's epochs x batches per epoch."""
        horizon = self.opts_["schedule_steps"]
        if horizon is None:
            epochs = getattr(self, "step_target_", None)  # the run's epochs (the trainer's step budget)
            if not epochs:
                raise SolverError(f"{what} needs a horizon: pass steps=... to fit "
                                  "or the option schedule_steps (in updates)")
            horizon = epochs * -(-N // self._batch)
        return horizon

    def _build_schedule(self, lr: float, N: int):
        sched = self.opts_["schedule"]
        if self.opts_["warmup"] is not None and sched not in WARMUP_DEFAULTS:
            raise SolverError(f"solver '{self.name}': option warmup applies to the schedules "
                              f"{' and '.join(repr(k) for k in WARMUP_DEFAULTS)} (and to the solver "
                              f"adamw-schedulefree), not to schedule={sched!r}; pick one of those or drop warmup")
        if sched is None:
            return None
        decay = self.opts_["decay"]
        if sched == "inverse-time":
            return optim.inverse_time_schedule(lr, decay)
        if sched == "exponential":
            return optim.exponential_decay_schedule(lr, math.exp(-decay)) if decay > 0 else \
                optim.constant_schedule(lr)
        if sched == "constant":
            return optim.constant_schedule(lr)
        horizon = self._horizon(N, f"the {sched} schedule")
        warmup = self.opts_["warmup"]
        if warmup is None:
            warmup = WARMUP_DEFAULTS.get(sched, 0.0)
        if sched == "warmup-cosine":
            return optim.warmup_cosine_schedule(lr, horizon, warmup_steps=int(warmup * horizon + 0.5),
                                                final_value=self.opts_["final_lr"])
        if sched == "one-cycle":
            return optim.one_cycle_schedule(lr, horizon, pct_start=warmup, div_factor=self.opts_["div_factor"],
                                            final_div_factor=self.opts_["final_div_factor"])
        # "cosine"
        return optim.cosine_decay_schedule(lr, horizon, final_value=self.opts_["final_lr"])

    def _step(self) -> dict:
        model = self.model_
        X, Y, N, B = self._X, self.y_train, len(self._X), self._batch
        if B < N and self.opts_["shuffle"]:
            order = self._rng.permutation(N)
        else:
            order = None
        limit = EXPLOSION_FACTOR * max(float(self.history_[0]["loss"]), 1.0)
        state = self._opt_state
        # Schedule-free AdamW trains at its y and keeps its x in the model between steps (what records,
        # checkpoints and predictions see): y goes back into the model for the batches.
        theta = optim.train_params(state)
        swap = theta is not None
        if swap:
            model.set_flat(theta)
        else:
            theta = model.get_flat()
        batch_losses, seen, updates = 0.0, 0, 0
        for start in range(0, N, B):
            if B == N:
                Xb, Yb = X, Y
            else:
                idx = order[start:start + B] if order is not None else slice(start, start + B)
                Xb, Yb = X[idx], Y[idx]
            nb = len(Xb)
            loss_b, grad = self._loss_and_grad(Xb, Yb, self._ridge * nb / N)
            per_sample = loss_b / nb
            if not math.isfinite(per_sample) or per_sample > limit or not np.all(np.isfinite(grad)):
                return {"loss": math.inf, "updates": 0, "passes": 0.0}
            step, state = self._tx.update(grad / nb, state, theta)
            theta = optim.apply_updates(theta, step)
            if not np.all(np.isfinite(theta)):
                return {"loss": math.inf, "updates": 0, "passes": 0.0}
            model.set_flat(theta)
            self._opt_state = state
            self._num_updates += 1
            batch_losses += loss_b
            seen += nb
            updates += theta.size
            if self.deadline.passed():
                break  # a partial epoch; its record says how much data it saw in `passes`
            if self.interim_due():
                if swap:
                    model.set_flat(optim.eval_params(state))
                self.record_interim(passes=seen / N, updates=updates, batch_loss=batch_losses / seen)
                if swap:
                    model.set_flat(theta)
        if swap:
            theta = optim.eval_params(state)
            model.set_flat(theta)
        t_eval = time.perf_counter()  # the record's full-data objective: evaluation, not training
        scores = model.forward(X, dtype=self._dtype).astype(np.float64, copy=False)
        loss = evaluate(scores, Y, theta, self._ridge) / N
        if not math.isfinite(loss) or loss > limit:
            return {"loss": math.inf, "updates": 0, "passes": 0.0}
        return {"loss": loss, "updates": updates, "passes": seen / N, "train_scores": scores,
                "batch_loss": batch_losses / max(seen, 1), "lr": self._current_lr(),
                "eval_seconds": time.perf_counter() - t_eval}

    def _loss_and_grad(self, Xb: np.ndarray, Yb: np.ndarray, ridge: float) -> tuple[float, np.ndarray]:
        """``model.loss_and_grad`` of a batch, in slices of :data:`GRAD_CHUNK` samples when it is large."""
        n = len(Xb)
        if n <= GRAD_CHUNK:
            return self.model_.loss_and_grad(Xb, Yb, ridge, dtype=self._dtype)
        total, grad = 0.0, None
        for s in range(0, n, GRAD_CHUNK):
            Xc, Yc = Xb[s:s + GRAD_CHUNK], Yb[s:s + GRAD_CHUNK]
            # each slice carries its share of the ridge so the shares add up to the batch's
            loss_c, grad_c = self.model_.loss_and_grad(Xc, Yc, ridge * len(Xc) / n, dtype=self._dtype)
            total += loss_c
            grad = np.array(grad_c, dtype=np.float64) if grad is None else np.add(grad, grad_c, out=grad)
        return total, grad

    def _current_lr(self) -> float:
        """The learning rate of the last update (the adapted one for hypergradient methods)."""
        adapted = optim.current_learning_rate(self._opt_state)
        if adapted is not None:
            return float(adapted)
        if self._schedule is not None:
            return float(self._schedule(max(self._num_updates - 1, 0)))
        return self._lr0

    def _state(self) -> dict[str, Any]:
        out = {f"opt.{k}": v for k, v in optim.state_to_arrays(self._opt_state).items()}
        out["num_updates"] = np.asarray(self._num_updates)
        return out

    def _load_state(self, state: dict[str, Any]) -> None:
        if "num_updates" not in state:
            raise SolverError(f"the checkpoint holds no '{self.name}' optimizer state; resume with the "
                              "solver that wrote it, or drop --resume")
        stored = {k[len("opt."):]: v for k, v in state.items() if k.startswith("opt.")}
        template = self._tx.init(self.model_.get_flat())
        self._opt_state = optim.state_from_arrays(template, stored)
        self._num_updates = int(state["num_updates"])


def _solver_class(class_name: str, optimizer: str) -> type[GradientSolver]:
    """The solver of one row of :data:`symnet.solvers.optim.OPTIMIZERS` (its summary is the docstring)."""
    return type(class_name, (GradientSolver,), {
        "__doc__": optim.OPTIMIZERS[optimizer].summary[0].upper() + optim.OPTIMIZERS[optimizer].summary[1:] + ".",
        "__module__": __name__, "name": optimizer, "optimizer": optimizer, "OPTIONS": _method_options(optimizer)})


(SGDSolver, MomentumSolver, NesterovSolver, AdamSolver, NadamSolver, AMSGradSolver, NAMSGradSolver, RMSpropSolver,
 SGDHDSolver, AdamHDSolver, AdamWSolver, NAdamWSolver) = (
    _solver_class(class_name, optimizer) for class_name, optimizer in (
        ("SGDSolver", "sgd"), ("MomentumSolver", "momentum"), ("NesterovSolver", "nesterov"), ("AdamSolver", "adam"),
        ("NadamSolver", "nadam"), ("AMSGradSolver", "amsgrad"), ("NAMSGradSolver", "namsgrad"),
        ("RMSpropSolver", "rmsprop"), ("SGDHDSolver", "sgd-hd"), ("AdamHDSolver", "adam-hd"), ("AdamWSolver", "adamw"),
        ("NAdamWSolver", "nadamw")))


def _schedule_free_options() -> dict[str, Option]:
    out = _method_options("adamw-schedulefree")
    out["b1"] = out["b1"]._replace(help="interpolation: gradients at y = (1 - b1) z + b1 x")
    return out


class ScheduleFreeAdamWSolver(GradientSolver):
    """Schedule-free AdamW (Defazio et al. 2024), as ``schedulefree.AdamWScheduleFree``.

    The update is :func:`symnet.solvers.optim.adamw_schedulefree`: the gradients
    are taken at ``y = (1 - b1) z + b1 x`` while the model is the average ``x``.
    The batches of an epoch train at ``y``; at the end of the epoch (and for an
    interim record) the model holds ``x``, so the records, the checkpoints, the
    callbacks and the trained model are ``x``, as after the package's
    ``optimizer.eval()``. ``y`` is kept in the optimizer state (and in a
    checkpoint), so a resumed run goes on exactly.

    Options are those of every gradient solver (see :class:`GradientSolver`)
    with the package's defaults: lr 2.5e-3, b1 0.9 (the interpolation weight,
    there is no first moment), b2 0.999, eps 1e-8, r 0 and weight_lr_power 2
    (the averaging weights ``(k+1)^r lr_max^weight_lr_power``), weight_decay 0
    (taken at ``y``, decoupled). No schedule: its warm-up is ``warmup``, a
    fraction of the horizon (``round(warmup x horizon)`` updates of the package's
    ``warmup_steps``; default 0, and then no horizon is needed, so a fit with
    only a time limit works).

    Example:
        >>> import symnet; from symnet import solvers
        >>> data = symnet.datasets.xor(8)
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = solvers.get("adamw-schedulefree")(lr=0.05, warmup=0.1).fit(model, data, steps=20, quiet=True)
        >>> s.history_.final["loss"] < s.history_[0]["loss"]
        True
        >>> from symnet.solvers import optim   # the model holds x, the average
        >>> bool(np.array_equal(model.get_flat(), optim.eval_params(s._opt_state)))
        True
    """

    name: ClassVar[str] = "adamw-schedulefree"
    optimizer: ClassVar[str] = "adamw-schedulefree"
    OPTIONS: ClassVar[dict[str, Option]] = _schedule_free_options()

    def _build_schedule(self, lr: float, N: int):
        if self.opts_["schedule"] is not None:
            raise SolverError(f"solver '{self.name}' needs no schedule (its averaging replaces it); drop "
                              f"schedule={self.opts_['schedule']!r} and use warmup for a warm-up")
        return None

    def _factory_extras(self, N: int) -> dict[str, Any]:
        warmup = self.opts_["warmup"] or 0.0
        if not warmup:
            return {"warmup_steps": 0}
        horizon = self._horizon(N, f"solver '{self.name}''s warm-up (warmup={warmup:g}, a fraction of the "
                                   "horizon)")
        return {"warmup_steps": int(warmup * horizon + 0.5)}


#: optimizer name -> solver class; symnet/solvers/__init__.py registers each under its name.
SOLVERS: dict[str, type[GradientSolver]] = {cls.name: cls for cls in (
    SGDSolver, MomentumSolver, NesterovSolver, AdamSolver, NadamSolver, AMSGradSolver, NAMSGradSolver,
    RMSpropSolver, SGDHDSolver, AdamHDSolver, AdamWSolver, NAdamWSolver, ScheduleFreeAdamWSolver)}
