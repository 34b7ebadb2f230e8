"""What every exact direction solver shares: full-data or mini-batch iterations, checks, variable projection.

An exact direction solver (``cg`` and ``lbfgs`` in :mod:`~symnet.solvers.quasi_newton`,
``gauss-newton`` in :mod:`~symnet.solvers.gauss_newton`) picks a search
direction ``d`` in the whole parameter space (or a block of it) and moves to
the exact global minimiser of the objective along it with
:meth:`Restriction.line_minimize <symnet.core.restriction.Restriction.line_minimize>`;
the objective therefore never rises, whatever the direction. The directions
are pure :class:`~symnet.solvers.directions.base.Direction` pairs
(:mod:`symnet.solvers.directions`) and the line search is
:func:`~symnet.solvers.directions.base.exact_line_search`; the solvers here add
the batching, checks, variable projection and ridge around them, and
:class:`DirectionSolver` runs any direction.

What one step is: ``iters_per_step`` iterations (default one iteration on the
full data, one epoch of mini-batches with ``batch_size``). An iteration is one
direction and one exact line search (Gauss-Newton: one per block).

Mini-batches (``batch_size``): each iteration draws the next batch of a
per-epoch permutation, builds an :class:`~symnet.core.restriction.Restriction` of the
batch (:func:`batch_loss`: it carries its share ``ridge * n_b / N`` of the
ridge), and computes the direction and the exact line search on it. With
``check=True`` a step is kept only if the full objective did not rise
(:class:`FullObjective`: one forward pass over the full data per line search).
With ``varpro`` the last layer is solved on the full data before the first
iteration and at the end of every step (its features give the step's exact
objective for free); otherwise each step ends with one forward pass over the
full data to report the exact objective. On the full data, ``varpro`` solves
after every iteration.

With mini-batches and ``varpro`` the first step is that first solve alone, so
the history records the random-feature floor as soon as it is known.

Between two full solves the readout goes stale as the other layers move.
``readout_window`` tracks it (:class:`WindowedReadout`): before each batch's
direction, the last layer takes the exact line search on that batch towards
the ridge solution over the features of about ``readout_window`` recent batch
samples (older batches decay; a full solve restarts the window from the full
data's sums), and the batch then joins the window. Its cost is one Gram matrix
of the batch's features and one solve of the readout's size per iteration.

Precision: ``jet_dtype="float32"`` builds each batch's Restriction in single
precision (activations, jets, Jacobians; the polynomial's coefficients and the
residuals are still summed in float64, and a line step is trusted only when it
lowers the objective by more than float32 rounding). ``readout_dtype="float32"``
(the default) runs the full-data forward pass of the closed-form solve and its
Gram matrix in single precision, and refines the solution against float64
products (:func:`~symnet.core.linalg.ridge_readout`).

Ridge: ``ridge="auto"`` (the default) holds out a random tenth of the training
samples (at most 5,000), solves the last layer on the rest of the initial
features for each weight of :data:`~symnet.core.linalg.RIDGE_CANDIDATES` and
trains with the weight whose readout scores best on the held-out samples
(:func:`~symnet.core.linalg.select_ridge`); the choice is in every record's
``ridge`` and in ``ridge_selection_``. Without a last Linear layer to score,
``auto`` means 1.0.

The time limit of :meth:`Solver.fit <symnet.solvers.base.Solver.fit>` is checked
between iterations; the closing solve of the last layer still runs, so a run
can pass the limit by one such solve. A time-limited mini-batch run ends on the
parameters of its best recorded full objective (mini-batch steps need not lower
it; that record says ``restored_best=1``).

Example:
    >>> import numpy as np
    >>> from symnet.core.model import presets as models
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> X, Y = np.random.default_rng(0).random((64, 2)), np.eye(2)[[0, 1] * 32]
    >>> full = FullObjective(m, X, Y, ridge=0.1)
    >>> start = full.value
    >>> b = batch_loss(m, X[:16], Y[:16], 0.1, 64)
    >>> res = minibatch_line_search(b, -np.ones(m.num_params), check=full)
    >>> full.value <= start
    True
"""

from __future__ import annotations

import abc
import contextlib
import time
from typing import Any, ClassVar

import numpy as np

from symnet.core.certificates import BLOCK, FLOAT32_RTOL
from symnet.core.derivatives import block_index
from symnet.core.errors import SolverError
from symnet.core.layers import Linear
from symnet.core.linalg import PROVISIONAL_RIDGE, cross, fit_readout_on, gram, ridge_factor, ridge_solve
from symnet.core.objective import evaluate
from symnet.core.restriction import Restriction, LineResult
from symnet.core.samples import Samples

from symnet.solvers.base import Solver
from symnet.solvers.directions.base import (Direction, FullObjective, Problem, ReadoutCache, exact_line_search,
                                            minibatch_line_search)
from symnet.solvers.options import Option

__all__ = ["DirectionSolver", "ExactDirectionSolver", "FullObjective", "WindowedReadout", "batch_loss",
           "exact_line_search", "minibatch_line_search"]


# --------------------------------------------------------------------------- mini-batches
def batch_loss(model, X: np.ndarray, Y: np.ndarray, ridge: float, num_samples: int, *,
               dtype=np.float64) -> Restriction:
    """An :class:`Restriction` of one mini-batch carrying its share of the ridge.

    The full objective is ``SSE + ridge ||theta||^2`` over ``num_samples``
    samples; a batch of ``n_b`` of them gets ``ridge * n_b / num_samples`` so
    that the batch objectives of a partition add up to the full one (the
    convention of :mod:`symnet.solvers.gradient`). ``dtype`` is the loss's
    working precision.
    """
    if num_samples < 1:
        raise SolverError(f"num_samples must be positive, got {num_samples}")
    return Restriction(model, X, Y, ridge=float(ridge) * len(X) / float(num_samples), dtype=dtype)


class WindowedReadout:
    """The last Linear layer's ridge problem over a decaying window of recent mini-batches' features.

    With mini-batch variable projection the readout is solved on the full data
    only at the end of a step; in between, the other layers move and the readout
    goes stale. This keeps ``G = sum_b w_b [H_b, 1]^T [H_b, 1]``,
    ``C = sum_b w_b [H_b, 1]^T Y_b`` and ``n = sum_b w_b n_b`` over the batches
    seen, every older batch's weight multiplied by ``1 - n_b / window`` when a
    batch of ``n_b`` samples joins, so that about ``window`` recent samples
    count. :meth:`solution` is the ridge fit on them (the full objective's ridge
    scaled to ``n`` of its ``N`` samples): a target the solver moves the readout
    towards by an exact line search on a batch that is not in the window yet.
    A full-data solve restarts the window from the full data's sums (:meth:`reset`).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> H, S = rng.random((300, 3)), rng.random((4, 2))
        >>> w = WindowedReadout(1000, bias=True)
        >>> w.add(H, np.c_[H, np.ones(300)] @ S)
        >>> bool(np.allclose(w.solution(0.0, 300), S))
        True
    """

    def __init__(self, window: int, *, bias: bool) -> None:
        self.window, self.bias = int(window), bool(bias)
        self.G = self.C = None
        self.n = 0.0

    def reset(self, G: np.ndarray, C: np.ndarray, n: int) -> None:
        """Start from the sums ``G``, ``C`` over ``n`` samples, scaled to the window's weight."""
        scale = min(1.0, self.window / float(n))
        self.G, self.C, self.n = G * scale, C * scale, n * scale

    def add(self, H: np.ndarray, Y: np.ndarray) -> None:
        """Let a batch (features ``H``, targets ``Y``) join; the older ones decay."""
        # one-line equivalent: G = decay * G + [H, 1]^T [H, 1] (BLAS, by row blocks in linalg.gram)
        decay = max(0.0, 1.0 - len(H) / float(self.window))
        G, C = gram(H, bias=self.bias), cross(H, Y, bias=self.bias)
        if self.G is None:
            self.G, self.C, self.n = G, C, float(len(H))
        else:
            self.G = decay * self.G + G
            self.C = decay * self.C + C
            self.n = decay * self.n + len(H)

    def solution(self, ridge: float, num_samples: int) -> np.ndarray | None:
        """``argmin_S ||[H, 1] S - Y||^2 + ridge (n / N) ||S||^2`` over the window, ``(F [+1], K)``; None when empty."""
        if self.G is None:
            return None
        return ridge_solve(self.G, self.C, ridge * self.n / float(num_samples))

    def state(self) -> dict:
        return {} if self.G is None else {"G": self.G, "C": self.C, "n": self.n}

    def load(self, state: dict) -> None:
        if "G" in state:
            self.G = np.asarray(state["G"], dtype=np.float64).copy()
            self.C = np.asarray(state["C"], dtype=np.float64).copy()
            self.n = float(state["n"])


# --------------------------------------------------------------------------- the shared solver
class ExactDirectionSolver(Solver):
    """Shared machinery: options, full-data or mini-batch iterations, checks, variable projection.

    An iteration runs the directions of :meth:`_directions` in order, each
    :class:`~symnet.solvers.directions.base.Direction`'s ``update`` followed by
    the exact line search (:meth:`_search`, :func:`exact_line_search`) and its
    ``observe``. Subclasses name the directions and, for their own options,
    records and checkpointed state, fill :meth:`_setup_method`,
    :meth:`_extra_record`, :meth:`_memory_state` and :meth:`_load_memory`
    (the directions' states are in :attr:`states_`).
    """

    step_unit: ClassVar[str] = "iter"
    default_steps: ClassVar[int] = 10
    certifiable: ClassVar[bool] = True
    shardable: ClassVar[bool] = True
    blas_threads: ClassVar[int | None] = 1  # numba-parallel jets and kernels between small GEMMs
    #: The options every exact direction solver has.
    COMMON_OPTIONS: ClassVar[dict[str, Option]] = {
        "ridge": Option("auto", "float", low=0.0, auto=True,
                        help="weight of ridge * ||theta||^2 in the objective (auto: the candidate whose readout "
                             "scores best on held-out training samples)"),
        "batch_size": Option(None, "int", low=1, none=True,
                             help="samples per iteration (None: the full training set)"),
        "batch_growth": Option(1.0, "float", low=1.0,
                               help="multiply the batch size by this after every step (dynamic sample size)"),
        "max_batch": Option(None, "int", low=1, none=True, help="largest batch batch_growth reaches (None: all)"),
        "check": Option(False, "bool", help="keep a mini-batch step only if the full objective did not rise"),
        "iters_per_step": Option(None, "int", low=1, none=True,
                                 help="iterations per step (None: 1 on full data, one epoch of mini-batches)"),
        "varpro": Option(False, "bool", help="eliminate the last Linear layer by an exact ridge solve"),
        "readout_window": Option(None, "int", low=1, none=True,
                                 help="mini-batch varpro: between full solves, move the last layer towards the "
                                      "ridge solution on the features of about this many recent batch samples, "
                                      "by an exact line search on each new batch (None: off)"),
        "refresh_every": Option(50, "int", low=1, help="recompute the caches exactly every this many iterations"),
        "jet_dtype": Option("float64", "choice", choices=("float32", "float64"),
                            help="precision of the mini-batch caches, jets and Jacobians"),
        "readout_dtype": Option("float32", "choice", choices=("float32", "float64"),
                                help="precision of the closed-form readout's features and Gram matrix "
                                     "(refined to float64)"),
        "seed": Option(0, "int", low=0, help="seed of the mini-batch order, curvature samples and ridge split"),
    }
    #: The ridge of the step-0 record when ``ridge="auto"`` (before the validated choice), and of
    #: models without a last Linear layer to score the choice on.
    PROVISIONAL_RIDGE: ClassVar[float] = PROVISIONAL_RIDGE

    # ------------------------------------------------------------------ setup
    def _setup(self, model, data, rng):
        opts = self.opts_
        layers = self._require_exact_network(model, data)
        N = len(data.x_train)
        self.auto_ridge_ = opts["ridge"] == "auto"
        self.ridge_selection_: dict | None = None
        if self.auto_ridge_:
            # provisional (the step-0 record's objective) until the validated choice, which needs a last
            # Linear layer to score; without one the provisional weight stays
            self.ridge_ = self.PROVISIONAL_RIDGE
            self.auto_ridge_ = isinstance(layers[-1], Linear)
        batch = opts["batch_size"]
        self.batch_ = None if batch is None or batch >= N else batch
        self.batch_growth_ = opts["batch_growth"]
        self.max_batch_ = N if opts["max_batch"] is None else min(N, opts["max_batch"])
        ips = opts["iters_per_step"]
        self.iters_per_step_ = (1 if self.batch_ is None else -(-N // self.batch_)) if ips is None else ips
        self.refresh_every_ = opts["refresh_every"]
        if opts["varpro"] and not isinstance(layers[-1], Linear):
            raise SolverError(f"varpro solves the last layer in closed form, which must be Linear; this model ends "
                              f"with {layers[-1]!r} - turn varpro off")
        window = opts["readout_window"]
        if window is not None and not (opts["varpro"] and self.batch_ is not None):
            raise SolverError("readout_window tracks the readout between the full solves of mini-batch variable "
                              "projection: use it with varpro=True and a batch_size below the training set's size, "
                              "or leave it at None")
        self.window_ = None if window is None else WindowedReadout(window, bias=layers[-1].bias)
        self.jet_dtype_ = np.dtype(opts["jet_dtype"])
        self.readout_dtype_ = np.dtype(opts["readout_dtype"])
        #: seconds per phase of the work (direction, search, readout, ridge, batch), for profiling
        self.profile_: dict[str, float] = {}
        self.rng_ = rng
        self.X_ = data.x_train
        self.N_ = N
        self.iteration_ = 0
        self.rejected_ = 0
        self.readout_ = ReadoutCache()  # Cholesky factor of the readout's Gram matrix at the last varpro solve
        self.first_readout_ = False
        self.best_ = None  # (full objective per sample, parameters, training scores) of the best record
        self.order_ = None
        self.pos_ = 0
        self.loss_ = None
        self.full_ = None
        # the full training data: the full-data loss, or (mini-batches) the samples of the full-data passes;
        # in this process, or in shards on the Dask cluster of fit(client=...)
        if self.batch_ is None:
            self.loss_ = self._exact_loss(model, data.x_train, self.y_train, ridge=self.ridge_,
                                          dtype=self.jet_dtype_)
            self.samples_ = Samples(model, data.x_train, self.y_train) if self.loss_.local else self.loss_
        else:
            self.samples_ = self._samples(model, data.x_train, self.y_train)
        if self.auto_ridge_ and not (opts["varpro"] and self.batch_ is not None):
            # mini-batch varpro chooses in its first step, from the features it solves the readout on
            self._choose_ridge(self.samples_.readout(self.readout_dtype_))
        if self.batch_ is None:
            self._certify(self.loss_)
        elif opts["check"]:
            self.full_ = FullObjective(model, data.x_train, self.y_train, self.ridge_, samples=self.samples_)
        self._setup_method(model)
        self.directions_: list[Direction] = list(self._directions(model))
        self.states_: list = [direction.init(model) for direction in self.directions_]

    def _setup_method(self, model) -> None:
        pass

    @abc.abstractmethod
    def _directions(self, model) -> list[Direction]:
        """The directions of one iteration, each followed by an exact line search."""

    @property
    def factor_(self):
        """The Cholesky factor of the readout's Gram matrix at the last varpro solve (None: stale or none)."""
        return self.readout_.factor

    @factor_.setter
    def factor_(self, factor) -> None:
        self.readout_.factor = factor

    def _initial_loss(self):
        if self.loss_ is not None:
            return self.loss_.value / self.N_
        if self.full_ is not None:
            return self.full_.value / self.N_
        return None

    def _on_params_restored(self):
        self.factor_ = None
        if self.loss_ is not None:
            self.loss_.refresh()
        if self.full_ is not None:
            self.full_.value = self.full_.evaluate()
        self._reset_memory()

    # ------------------------------------------------------------------ state
    def _state(self):
        out = {"iteration": self.iteration_, "pos": self.pos_, "ridge": self.ridge_,
               "first_readout": self.first_readout_}
        if self.batch_ is not None:
            out["batch"] = self.batch_
        if self.order_ is not None:
            out["order"] = self.order_
        out.update({f"mem.{k}": v for k, v in self._memory_state().items()})
        if self.window_ is not None:
            out.update({f"window.{k}": v for k, v in self.window_.state().items()})
        return out

    def _load_state(self, state):
        self.iteration_ = int(state.get("iteration", 0))
        self.pos_ = int(state.get("pos", 0))
        if "batch" in state and self.batch_ is not None:
            self.batch_ = int(state["batch"])
        self.first_readout_ = bool(state.get("first_readout", self.first_readout_))
        if "ridge" in state and float(state["ridge"]) != self.ridge_:
            self._set_ridge(float(state["ridge"]))  # the weight a resumed run chose when it started
        self.auto_ridge_ = False
        self.order_ = np.asarray(state["order"]) if "order" in state else None
        self._load_memory({k[4:]: v for k, v in state.items() if k.startswith("mem.")})
        if self.window_ is not None:
            self.window_.load({k[7:]: v for k, v in state.items() if k.startswith("window.")})

    def _memory_state(self) -> dict:
        return {}

    def _load_memory(self, state: dict) -> None:
        pass

    def _reset_memory(self) -> None:
        """Forget what the directions learnt along the path (the parameters were set from outside)."""
        self.states_ = [direction.init(self.model_) if direction.reset is None else direction.reset(state)
                        for direction, state in zip(self.directions_, self.states_)]

    # ------------------------------------------------------------------ iterations
    def _next_batch(self) -> np.ndarray:
        if self.order_ is None or self.pos_ >= self.N_:
            self.order_ = self.rng_.permutation(self.N_)
            self.pos_ = 0
        idx = np.sort(self.order_[self.pos_:self.pos_ + self.batch_])
        self.pos_ += self.batch_
        return idx

    def _search(self, loss: Restriction, d: np.ndarray, reuse: bool = True) -> LineResult:
        """The exact line search; ``reuse=False`` says a mini-batch loss is dropped after it."""
        with self._timed("search"):
            res = exact_line_search(loss, d, check=self.full_, update=reuse or self.batch_ is None)
        if not res.accepted:
            self.rejected_ += 1
        return res

    def _step(self) -> dict:
        model = self.model_
        updates = accepted = searches = 0
        passes = 0.0
        converged = False
        start = self.loss_.value if self.loss_ is not None else None
        if self.opts_["varpro"] and self.iteration_ == 0:
            # the first direction should already see the best readout of the initial features
            if self.batch_ is None:
                self._varpro(self.loss_)
            elif not self.first_readout_:
                # mini-batches: the first step is that solve alone, so the history records the random-feature
                # floor as soon as it is known; with ridge="auto" the same features first choose the ridge
                value, scores, decrease = self._varpro_full(choose_ridge=self.auto_ridge_)
                self.first_readout_ = True
                last = model.layers[-1]
                out = {"updates": sum(v.size for v in last.params.values()), "passes": 1.0, "accepted": 0,
                       "searches": 0, "iterations": 0, "rejected": 0, "loss": value / self.N_,
                       "train_scores": scores, "block_decrease": decrease, "converged": False,
                       "ridge": self.ridge_, **self._extra_record()}
                self._keep_best(out)
                return out
        for i in range(self.iters_per_step_):
            if i and self.deadline.passed():
                break
            if self.batch_ is None:
                loss = self.loss_
                stats = self._iterate(loss, full=True)
                if self.opts_["varpro"]:
                    self._varpro(loss)
                self.iteration_ += 1
                if self.iteration_ % self.refresh_every_ == 0:
                    loss.refresh()
                passes += 1.0
            else:
                idx = self._next_batch()
                with self._timed("batch"):
                    loss = batch_loss(model, self.X_[idx], self.y_train[idx], self.ridge_, self.N_,
                                      dtype=self.jet_dtype_)
                self._certify(loss, rows=idx)
                if self.window_ is not None:
                    self._track_readout(loss)
                stats = self._iterate(loss, full=False)
                self.iteration_ += 1
                passes += len(idx) / self.N_
            updates += stats["updates"]
            accepted += stats["accepted"]
            searches += stats["searches"]
            if stats.get("converged"):
                converged = True
                break
            if self.interim_due():
                if self.batch_ is None:  # the caches hold the objective and the scores
                    self.record_interim(passes=passes, updates=updates, loss=self.loss_.value / self.N_,
                                        train_scores=self.loss_.output, ridge=self.ridge_)
                else:
                    self.record_interim(passes=passes, updates=updates, ridge=self.ridge_)
        if self.batch_ is not None and self.batch_growth_ > 1.0:
            # dynamic sample size: a geometrically growing batch (the gradient's noise shrinks as the steps do)
            self.batch_ = min(self.max_batch_, int(round(self.batch_ * self.batch_growth_)))
        out: dict[str, Any] = {"updates": updates, "passes": passes, "accepted": accepted, "searches": searches,
                               "iterations": self.iteration_, "rejected": self.rejected_}
        if self.batch_ is None:
            loss = self.loss_
            if loss.value > start * (1 + 1e-12) + 1e-12:
                raise RuntimeError(f"internal error: step raised the objective from {start} to {loss.value}")
            out.update(loss=loss.value / self.N_, train_scores=loss.output)
        else:
            if self.opts_["varpro"]:
                # the features of the closed-form solve give the record's objective and scores for free
                value, scores, out["block_decrease"] = self._varpro_full()
                out.update(loss=value / self.N_, train_scores=scores)
            elif self.full_ is not None:
                out.update(loss=self.full_.value / self.N_, train_scores=self.full_.scores)
            else:
                t_eval = time.perf_counter()  # the record's full-data objective: evaluation, not training
                scores = self.samples_.scores()
                value = evaluate(scores, self.y_train, model.get_flat(), self.ridge_)
                out.update(loss=value / self.N_, train_scores=scores, eval_seconds=time.perf_counter() - t_eval)
            self._keep_best(out)
        out["converged"] = converged
        out["ridge"] = self.ridge_
        # where the training time went so far, per phase (direction, search, batch, readout, ridge)
        out.update({f"seconds_{k}": round(v, 4) for k, v in self.profile_.items()})
        out.update(self._extra_record())
        return out

    def _extra_record(self) -> dict:
        return {}

    def _keep_best(self, out: dict) -> None:
        """End a time-limited mini-batch run on the parameters of its lowest recorded full objective.

        Mini-batch steps need not lower the full objective. Every record's
        objective is exact (a full-data pass), so the best-so-far iterate by the
        training objective is known; when the time limit ends the run on a worse
        one, the parameters of the best are restored and the record says so
        (``restored_best=1``). Nothing held out is looked at.
        """
        theta = self.model_.get_flat()
        if self.best_ is None or out["loss"] <= self.best_[0]:
            self.best_ = (out["loss"], theta.copy(), out.get("train_scores"))
            return
        if self.deadline.passed():
            loss, best_theta, scores = self.best_
            self.model_.set_flat(best_theta)
            self._on_params_restored()
            out.update(loss=loss, restored_best=1)
            if scores is not None:
                out["train_scores"] = scores
            else:
                out.pop("train_scores", None)

    def _varpro(self, loss: Restriction) -> float:
        """Solve the last Linear layer of the full-data loss; keep the Gram factor of the features."""
        with self._timed("readout"):
            self.factor_ = loss.readout_factor(gram_dtype=self.readout_dtype_)
            return loss.solve_readout(factor=self.factor_)

    def _track_readout(self, loss: Restriction) -> None:
        """``readout_window``: the exact line search on this batch along the window's readout, then the batch
        joins the window (after the search, so the step size is chosen on samples the target did not see)."""
        model = self.model_
        li = len(model.layers) - 1
        layer = model.layers[li]
        with self._timed("track"):
            target = self.window_.solution(self.ridge_, self.N_)
            if target is not None and np.all(np.isfinite(target)):
                F = target.shape[0] - int(layer.bias)
                d = np.zeros(model.num_params)
                parts = [target[:F].T - layer.params["weight"]]
                if layer.bias:
                    parts.append(target[F] - layer.params["bias"])
                d[block_index(model, [li])] = np.concatenate([p.ravel() for p in parts])
                exact_line_search(loss, d, check=self.full_)
            self.window_.add(loss.acts[li], loss.Y)

    def _set_ridge(self, ridge: float) -> None:
        self.ridge_ = ridge  # a result: the option stays as given
        if self.loss_ is not None:
            self.loss_.ridge = ridge
        if self.full_ is not None:
            self.full_.ridge = ridge
            self.full_.value = self.full_.evaluate()

    def _choose_ridge(self, readout) -> None:
        """``ridge="auto"``: the weight chosen on held-out training samples
        (:meth:`~symnet.solvers.base.Solver._held_out_ridge` of ``readout``, the
        readout problem of the current features; the split seeded by ``seed``)."""
        self.auto_ridge_ = False
        with self._timed("ridge"):
            chosen = self._held_out_ridge(readout, int(self.opts_["seed"]))
        if chosen is None:
            return
        self._set_ridge(chosen[0])
        self.ridge_selection_ = chosen[1]

    def _varpro_full(self, choose_ridge: bool = False) -> tuple[float, np.ndarray, float]:
        """Solve the last Linear layer on the full data (mini-batch mode), its features from a forward pass.

        With ``readout_dtype="float32"`` the forward pass and the Gram matrix run
        in single precision and the solution is refined against float64 products
        with those features (:func:`~symnet.core.linalg.ridge_readout`); the
        objective reported is the exact one of the float32 features (about 1e-6
        relative from a float64 forward pass, the precision the gradient solvers
        report in). ``choose_ridge`` first picks the ridge on these features.

        Returns the objective after the solve (sum over samples), the training
        scores and the decrease.
        """
        model = self.model_
        layer = model.layers[-1]
        with self._timed("readout"):
            readout = self.samples_.readout(self.readout_dtype_)  # features from a forward pass where the samples are
            if choose_ridge:
                self._choose_ridge(readout)
            theta = model.get_flat() if self.certificates_ is not None else None
            G = readout.gram(self.readout_dtype_)
            self.factor_ = ridge_factor(G, self.ridge_)
            if self.window_ is not None:  # the window restarts from the full data's sums at these features
                self.window_.reset(G, readout.cross(), readout.num_samples)
            decrease = fit_readout_on(layer, readout, self.ridge_, factor=self.factor_)
            scores = readout.outputs()
            value = evaluate(scores, self.y_train, model.get_flat(), self.ridge_)
        if theta is not None:
            self.certificates_.record(BLOCK, theta=theta, t=1.0, before=value + decrease, after=value,
                                      ridge=self.ridge_, direction=lambda: model.get_flat() - theta,
                                      precision=FLOAT32_RTOL if self.readout_dtype_ == np.float32 else 0.0)
        if self.full_ is not None:
            self.full_.value, self.full_.scores = value, scores
        return value, scores, decrease

    @contextlib.contextmanager
    def _timed(self, key: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.profile_[key] = self.profile_.get(key, 0.0) + time.perf_counter() - t0

    def _iterate(self, loss: Restriction, full: bool) -> dict:
        """Each direction's ``update``, exact line search and ``observe`` on ``loss``; counts for the record."""
        problem = Problem(loss, full, self.rng_, self.N_, self.readout_)
        updates = accepted = searches = 0
        last = len(self.directions_) - 1
        for i, direction in enumerate(self.directions_):
            with self._timed("direction"):
                d, self.states_[i] = direction.update(problem, self.states_[i])
            if d is None:  # no descent direction: on the full data, a stationary point
                if full:
                    return {"updates": updates, "accepted": accepted, "searches": searches, "converged": True}
                continue
            # the loss's caches follow the step unless nothing reads them before the next batch
            res = self._search(loss, d, reuse=i < last or direction.observes_loss)
            searches += 1
            stop = False
            if direction.observe is not None:
                with self._timed("direction"):
                    self.states_[i], stop = direction.observe(problem, d, res, self.states_[i])
            if res.accepted:
                accepted += 1
                updates += self.model_.num_params if direction.size is None else direction.size(self.model_)
            if stop:
                return {"updates": updates, "accepted": accepted, "searches": searches, "converged": True}
        return {"updates": updates, "accepted": accepted, "searches": searches}


class DirectionSolver(ExactDirectionSolver):
    """Any :class:`~symnet.solvers.directions.base.Direction` with the exact line search and the shared machinery.

    Args:
        direction: the direction of every iteration.
        **options: :attr:`ExactDirectionSolver.COMMON_OPTIONS`.

    The direction's state is not in checkpoints (a resumed run starts it afresh).

    Example:
        >>> import symnet
        >>> from symnet.solvers.directions import steepest_descent
        >>> data = symnet.datasets.xor(8)
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = DirectionSolver(steepest_descent(), ridge=1e-3).fit(model, data, steps=5, quiet=True)
        >>> s.history_.final["loss"] < s.history_[0]["loss"]
        True
    """

    name = "direction"
    OPTIONS = ExactDirectionSolver.COMMON_OPTIONS

    def __init__(self, direction: Direction, **options: Any) -> None:
        super().__init__(**options)
        self.direction = direction

    def _directions(self, model) -> list[Direction]:
        return [self.direction]
