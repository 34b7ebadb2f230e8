"""Nonlinear conjugate gradient and L-BFGS, each step an exact polynomial line search.

* ``cg``: nonlinear conjugate gradient, Polak-Ribiere+ (``beta = max(0,
  g.(g - g_prev) / g_prev.g_prev)``), restarted every ``restart_every``
  iterations and whenever ``d`` is not a descent direction
  (:func:`~symnet.solvers.directions.cg.nonlinear_cg`).
* ``lbfgs``: L-BFGS two-loop recursion (:func:`~symnet.solvers.directions.lbfgs.two_loop`)
  with ``memory`` pairs; a pair with ``s.y <= curvature_eps * ||s|| ||y||`` is
  skipped (the exact line search does not enforce the Wolfe curvature
  condition) (:func:`~symnet.solvers.directions.lbfgs.lbfgs`).

On mini-batches both form their ``(s, y)`` pairs from two gradients of the SAME
batch (one extra backward pass). The iterations, mini-batches, checks and
variable projection are shared with Gauss-Newton
(:mod:`symnet.solvers.exact_directions`); the directions are in
:mod:`symnet.solvers.directions`.

"""

from __future__ import annotations

import numpy as np

from symnet.solvers.directions.cg import CGMemory, nonlinear_cg
from symnet.solvers.directions.gradient import GradientState
from symnet.solvers.directions.lbfgs import LBFGSMemory, lbfgs, two_loop
from symnet.solvers.exact_directions import ExactDirectionSolver
from symnet.solvers.options import Option

__all__ = ["CGSolver", "LBFGSSolver", "two_loop"]


def _secant_state(state: GradientState) -> dict:
    """The start of the next full-data secant pair, for checkpoints."""
    return {} if state.g_prev is None else {"theta_prev": state.theta_prev, "g_prev": state.g_prev}


def _load_secant(state: dict) -> dict:
    if "g_prev" not in state:
        return {}
    return {"theta_prev": np.asarray(state["theta_prev"]), "g_prev": np.asarray(state["g_prev"])}


class CGSolver(ExactDirectionSolver):
    """Nonlinear conjugate gradient (Polak-Ribiere+) with exact polynomial line search.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (default ``"auto"``: chosen on held-out samples).
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

    def _directions(self, model):
        return [nonlinear_cg(self.opts_["restart_every"])]

    def _memory_state(self):
        state = self.states_[0]
        mem = state.memory
        out = {"beta": mem.beta, "since_restart": mem.since_restart}
        if mem.d_prev is not None:
            out["d_prev"] = mem.d_prev
        return {**out, **_secant_state(state)}

    def _load_memory(self, state):
        mem = CGMemory(np.asarray(state["d_prev"]) if "d_prev" in state else None, float(state.get("beta", 0.0)),
                       int(state.get("since_restart", 0)))
        self.states_[0] = GradientState(mem, **_load_secant(state))

    def _extra_record(self):
        return {"beta": self.states_[0].memory.beta}


class LBFGSSolver(ExactDirectionSolver):
    """L-BFGS (two-loop recursion) with exact polynomial line search.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (default ``"auto"``: chosen on held-out samples).
        memory: number of ``(s, y)`` pairs kept (default 10).
        curvature_eps: skip a pair with ``s.y <= curvature_eps * ||s|| ||y||``.
        batch_size, check, iters_per_step, varpro, refresh_every, seed: see the
            module docstring.

    Example:
        >>> import symnet
        >>> s = symnet.solvers.get("lbfgs")(ridge=1e-3, memory=5)
        >>> s = s.fit(symnet.models.mlp(2, 2, 2, seed=0), symnet.datasets.xor(8), steps=5, quiet=True)
        >>> [r["loss"] for r in s.history_] == sorted(r["loss"] for r in s.history_)[::-1]  # never rises
        True
    """

    name = "lbfgs"
    OPTIONS = {**ExactDirectionSolver.COMMON_OPTIONS,
               "memory": Option(10, "int", low=1, help="(s, y) pairs kept"),
               "curvature_eps": Option(1e-10, "float", low=0.0,
                                       help="skip a pair with s.y <= curvature_eps ||s|| ||y||")}

    def _directions(self, model):
        return [lbfgs(self.opts_["memory"], self.opts_["curvature_eps"])]

    def _memory_state(self):
        state = self.states_[0]
        mem = state.memory
        out = {"skipped": mem.skipped}
        if mem.S:
            out["S"], out["Y"] = np.stack(mem.S), np.stack(mem.Y)
        return {**out, **_secant_state(state)}

    def _load_memory(self, state):
        mem = LBFGSMemory(tuple(np.asarray(state["S"])) if "S" in state else (),
                          tuple(np.asarray(state["Y"])) if "Y" in state else (), int(state.get("skipped", 0)))
        self.states_[0] = GradientState(mem, **_load_secant(state))

    def _extra_record(self):
        mem = self.states_[0].memory
        return {"pairs": len(mem.S), "skipped_pairs": mem.skipped}
