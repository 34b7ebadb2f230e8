"""Nonlinear conjugate gradient and L-BFGS, each step an exact polynomial line search.

* ``cg``: nonlinear conjugate gradient, Polak-Ribiere+ (``beta = max(0,
  g.(g - g_prev) / g_prev.g_prev)``), restarted every ``restart_every``
  iterations and whenever ``d`` is not a descent direction.
* ``lbfgs``: L-BFGS two-loop recursion (:func:`two_loop`) with ``memory`` pairs;
  a pair with ``s.y <= curvature_eps * ||s|| ||y||`` is skipped (the exact line
  search does not enforce the Wolfe curvature condition).

On mini-batches both form their ``(s, y)`` pairs from two gradients of the SAME
batch (one extra backward pass). The iterations, mini-batches, checks and
variable projection are shared with Gauss-Newton
(:mod:`symnet.solvers.exact_directions`).

"""

from __future__ import annotations

import abc

import numpy as np

from symnet.core.derivatives import gradient
from symnet.core.restriction import Restriction

from symnet.solvers.exact_directions import ExactDirectionSolver
from symnet.solvers.options import Option


class GradientDirectionSolver(ExactDirectionSolver):
    """CG and L-BFGS: a direction from the gradient and a memory of past steps."""

    def _iterate(self, loss: Restriction, full: bool) -> dict:
        model = self.model_
        with self._timed("direction"):
            g = gradient(loss)
        theta = model.get_flat()
        if full and self._prev is not None:
            theta_prev, g_prev = self._prev
            self._remember(theta - theta_prev, g - g_prev, g_prev, g)
        d = self._direction(g)
        slope = float(g @ d)
        restarted = False
        if not (np.isfinite(slope) and slope < 0.0):
            self._reset_memory()
            d, slope, restarted = -g, -float(g @ g), True
        if slope == 0.0:
            return {"updates": 0, "accepted": 0, "searches": 0, "converged": full}
        res = self._search(loss, d)
        if full:
            self._prev = (theta, g) if res.accepted else None
            if not res.accepted:
                if restarted or self._is_gradient(d, g):
                    return {"updates": 0, "accepted": 0, "searches": 1, "converged": True}
                self._reset_memory()
        elif res.accepted:
            with self._timed("direction"):
                g_new = gradient(loss)  # the same batch at the new point: a consistent secant pair
            self._remember(model.get_flat() - theta, g_new - g, g, g_new)
        return {"updates": model.num_params if res.accepted else 0, "accepted": int(res.accepted), "searches": 1}

    @staticmethod
    def _is_gradient(d, g) -> bool:
        return bool(np.allclose(d, -g, rtol=1e-14, atol=0.0))

    @abc.abstractmethod
    def _direction(self, g: np.ndarray) -> np.ndarray:
        """The search direction from the current gradient and the method's memory."""

    @abc.abstractmethod
    def _remember(self, s, y, g_old, g_new) -> None:
        """Update the method's memory with the step ``s`` and gradient change ``y``."""


class CGSolver(GradientDirectionSolver):
    """Nonlinear conjugate gradient (Polak-Ribiere+) with exact polynomial line search.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (default 1.0).
        restart_every: restart with the steepest descent direction after this
            many iterations (default: the number of parameters).
        batch_size, check, iters_per_step, varpro, refresh_every, seed: see the
            module docstring.

    Example:
        >>> import symnet; from symnet import solvers
        >>> data = symnet.datasets.xor(8)
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = solvers.get("cg")(ridge=1e-3).fit(model, data, steps=5, quiet=True)
        >>> s.history_.final["loss"] < s.history_[0]["loss"]
        True
    """

    name = "cg"
    OPTIONS = {**ExactDirectionSolver.COMMON_OPTIONS,
               "restart_every": Option(None, "int", low=1, none=True,
                                       help="restart with steepest descent after this many iterations "
                                            "(None: the number of parameters)")}

    def _setup_method(self, model):
        r = self.opts_["restart_every"]
        self.restart_every_ = model.num_params if r is None else r

    def _reset_memory(self):
        self._prev = None
        self.d_prev_ = None
        self.beta_ = 0.0
        self.since_restart_ = 0

    def _direction(self, g):
        if self.d_prev_ is None or self.since_restart_ >= self.restart_every_:
            self.since_restart_ = 0
            d = -g
        else:
            d = -g + self.beta_ * self.d_prev_
        self.since_restart_ += 1
        self.d_prev_ = d
        return d

    def _remember(self, s, y, g_old, g_new):
        denom = float(g_old @ g_old)
        beta = float(g_new @ y) / denom if denom > 0 else 0.0
        self.beta_ = max(0.0, beta)  # PR+: a negative beta restarts

    def _memory_state(self):
        out = {"beta": self.beta_, "since_restart": self.since_restart_}
        if self.d_prev_ is not None:
            out["d_prev"] = self.d_prev_
        if self._prev is not None:
            out["theta_prev"], out["g_prev"] = self._prev
        return out

    def _load_memory(self, state):
        self.beta_ = float(state.get("beta", 0.0))
        self.since_restart_ = int(state.get("since_restart", 0))
        self.d_prev_ = np.asarray(state["d_prev"]) if "d_prev" in state else None
        self._prev = (np.asarray(state["theta_prev"]), np.asarray(state["g_prev"])) if "g_prev" in state else None

    def _extra_record(self):
        return {"beta": self.beta_}


def two_loop(g: np.ndarray, S: list[np.ndarray], Y: list[np.ndarray]) -> np.ndarray:
    """L-BFGS two-loop recursion: ``H g`` for the inverse-Hessian approximation of the pairs.

    ``H_0 = gamma I`` with ``gamma = s.y / y.y`` of the newest pair (1 without
    pairs); the pairs are oldest first.

    Example:
        >>> import numpy as np
        >>> A = np.array([[2.0, 0.0], [0.0, 5.0]])
        >>> S = [np.array([1.0, 0.0]), np.array([0.0, 1.0])]
        >>> Y = [A @ s for s in S]
        >>> two_loop(np.array([2.0, 5.0]), S, Y).round(12).tolist()   # exact inverse on the span
        [1.0, 1.0]
    """
    q = np.array(g, dtype=np.float64)
    m = len(S)
    alphas = np.empty(m)
    rhos = np.array([1.0 / float(y @ s) for s, y in zip(S, Y)])
    for i in range(m - 1, -1, -1):
        alphas[i] = rhos[i] * float(S[i] @ q)
        q -= alphas[i] * Y[i]
    gamma = float(S[-1] @ Y[-1]) / float(Y[-1] @ Y[-1]) if m else 1.0
    r = gamma * q
    for i in range(m):
        beta = rhos[i] * float(Y[i] @ r)
        r += (alphas[i] - beta) * S[i]
    return r


class LBFGSSolver(GradientDirectionSolver):
    """L-BFGS (two-loop recursion) with exact polynomial line search.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (default 1.0).
        memory: number of ``(s, y)`` pairs kept (default 10).
        curvature_eps: skip a pair with ``s.y <= curvature_eps * ||s|| ||y||``.
        batch_size, check, iters_per_step, varpro, refresh_every, seed: see the
            module docstring.

    Example:
        >>> import symnet; from symnet import solvers
        >>> data = symnet.datasets.xor(8)
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = solvers.get("lbfgs")(ridge=1e-3, memory=5).fit(model, data, steps=5, quiet=True)
        >>> s.history_.final["loss"] < s.history_[0]["loss"]
        True
    """

    name = "lbfgs"
    OPTIONS = {**ExactDirectionSolver.COMMON_OPTIONS,
               "memory": Option(10, "int", low=1, help="(s, y) pairs kept"),
               "curvature_eps": Option(1e-10, "float", low=0.0,
                                       help="skip a pair with s.y <= curvature_eps ||s|| ||y||")}

    def _setup_method(self, model):
        self.memory_ = self.opts_["memory"]
        self.curvature_eps_ = self.opts_["curvature_eps"]
        self.skipped_ = 0

    def _reset_memory(self):
        self._prev = None
        self.S_: list[np.ndarray] = []
        self.Y_: list[np.ndarray] = []

    def _direction(self, g):
        return -two_loop(g, self.S_, self.Y_)

    def _remember(self, s, y, g_old, g_new):
        sy = float(s @ y)
        if not (np.isfinite(sy) and sy > self.curvature_eps_ * float(np.linalg.norm(s) * np.linalg.norm(y))):
            self.skipped_ += 1
            return
        self.S_.append(s)
        self.Y_.append(y)
        if len(self.S_) > self.memory_:
            self.S_.pop(0)
            self.Y_.pop(0)

    def _memory_state(self):
        out = {"skipped": self.skipped_}
        if self.S_:
            out["S"], out["Y"] = np.stack(self.S_), np.stack(self.Y_)
        if self._prev is not None:
            out["theta_prev"], out["g_prev"] = self._prev
        return out

    def _load_memory(self, state):
        self.skipped_ = int(state.get("skipped", 0))
        self.S_ = list(np.asarray(state["S"])) if "S" in state else []
        self.Y_ = list(np.asarray(state["Y"])) if "Y" in state else []
        self._prev = (np.asarray(state["theta_prev"]), np.asarray(state["g_prev"])) if "g_prev" in state else None

    def _extra_record(self):
        return {"pairs": len(self.S_), "skipped_pairs": self.skipped_}
