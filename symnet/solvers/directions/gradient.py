"""Directions from the gradient and a memory of past steps: steepest descent and the frame CG and L-BFGS share.

:func:`gradient_direction` turns a :class:`Memory` (how a method maps the
gradient to a direction, and what it learns from a step) into a
:class:`~symnet.solvers.directions.base.Direction`:

* a direction that is not a descent direction (``g.d >= 0``, or not finite) is
  replaced by ``-g`` and the memory forgets its pairs (a restart);
* on the full data the secant pair ``(s, y)`` of an accepted step is formed at
  the next iteration, from its gradient; on a mini-batch, from a second
  gradient of the SAME batch at the new point (one extra backward pass, a
  consistent pair);
* on the full data a rejected steepest descent step, or a zero gradient, means
  converged; a rejected step along another direction restarts the memory.

Example:
    >>> import numpy as np
    >>> from symnet.core.model import presets as models
    >>> from symnet.core.restriction import Restriction
    >>> from symnet.solvers.directions.base import Problem, exact_line_search
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> X, Y = np.random.default_rng(0).random((16, 2)), np.eye(2)[[0, 1] * 8]
    >>> loss = Restriction(m, X, Y, ridge=0.1)
    >>> sd = steepest_descent()
    >>> d, state = sd.update(Problem(loss), sd.init(m))
    >>> bool(np.allclose(d, -state.g))
    True
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from symnet.core.derivatives import gradient
from symnet.core.restriction import LineResult

from symnet.solvers.directions.base import Direction, Problem


class Memory(NamedTuple):
    """What a gradient method adds to the gradient: pure functions of its memory (a NamedTuple).

    Attributes:
        init: ``() -> memory``, before the first step.
        direct: ``(g, memory) -> (d, memory)``: the direction at gradient ``g``.
        remember: ``(memory, s, y, g_old, g_new) -> memory``: learn from the step ``s``
            and the gradient change ``y = g_new - g_old``.
        reset: ``memory -> memory``: forget the pairs at a restart (counters may stay).
    """

    init: Callable[[], Any]
    direct: Callable[[np.ndarray, Any], tuple[np.ndarray, Any]]
    remember: Callable[[Any, Any, np.ndarray, np.ndarray, np.ndarray], Any]
    reset: Callable[[Any], Any]


class GradientState(NamedTuple):
    """State of a :func:`gradient_direction`.

    Attributes:
        memory: the method's memory.
        theta_prev, g_prev: parameters and gradient at the last accepted full-data step
            (where the next secant pair starts), or None.
        theta, g, restarted: this iteration's point, gradient and restart, from ``update``
            to ``observe`` (None between iterations).
    """

    memory: Any
    theta_prev: np.ndarray | None = None
    g_prev: np.ndarray | None = None
    theta: np.ndarray | None = None
    g: np.ndarray | None = None
    restarted: bool = False


def _is_gradient(d: np.ndarray, g: np.ndarray) -> bool:
    return bool(np.allclose(d, -g, rtol=1e-14, atol=0.0))


def gradient_direction(memory: Memory) -> Direction:
    """The :class:`~symnet.solvers.directions.base.Direction` of a gradient method (see the module docstring)."""

    def init(model) -> GradientState:
        return GradientState(memory.init())

    def reset(state: GradientState) -> GradientState:
        return GradientState(memory.reset(state.memory))

    def update(problem: Problem, state: GradientState):
        loss = problem.loss
        g = gradient(loss)
        theta = loss.model.get_flat()
        mem = state.memory
        if problem.full and state.g_prev is not None:
            mem = memory.remember(mem, theta - state.theta_prev, g - state.g_prev, state.g_prev, g)
        d, mem = memory.direct(g, mem)
        slope = float(g @ d)
        state = GradientState(mem, state.theta_prev, state.g_prev, theta, g, False)
        if not (np.isfinite(slope) and slope < 0.0):  # not a descent direction: restart from -g
            state = GradientState(memory.reset(mem), None, None, theta, g, True)
            d, slope = -g, -float(g @ g)
        return (None if slope == 0.0 else d), state

    def observe(problem: Problem, d: np.ndarray, res: LineResult, state: GradientState):
        theta, g, mem = state.theta, state.g, state.memory
        if problem.full:
            if res.accepted:
                return GradientState(mem, theta, g), False
            if state.restarted or _is_gradient(d, g):
                return GradientState(mem), True  # steepest descent found no decrease: stationary
            return GradientState(memory.reset(mem)), False
        if res.accepted:
            g_new = gradient(problem.loss)  # the same batch at the new point: a consistent secant pair
            mem = memory.remember(mem, problem.loss.model.get_flat() - theta, g_new - g, g, g_new)
        return GradientState(mem, state.theta_prev, state.g_prev), False

    return Direction(init=init, update=update, observe=observe, observes_loss=True, reset=reset)


def steepest_descent() -> Direction:
    """``d = -g``: the gradient direction with an empty memory."""
    return gradient_direction(Memory(init=tuple, direct=lambda g, mem: (-g, mem),
                                     remember=lambda mem, s, y, g_old, g_new: mem, reset=lambda mem: mem))
