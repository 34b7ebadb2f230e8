"""Nonlinear conjugate gradient, Polak-Ribiere+: ``d = -g + beta d_prev``, ``beta = max(0, g.(g - g_prev) / g_prev.g_prev)``.

Restarted with ``-g`` every ``restart_every`` iterations (None: the number of
parameters), whenever ``d`` is not a descent direction and whenever the
Polak-Ribiere ``beta`` is negative.

Example:
    >>> import numpy as np
    >>> cg = cg_memory()
    >>> d, mem = cg.direct(np.array([1.0, 1.0]), cg.init())      # the first: steepest descent
    >>> g_old, g_new = np.array([1.0, 1.0]), np.array([2.0, 1.0])
    >>> mem = cg.remember(mem, None, g_new - g_old, g_old, g_new)  # beta = 2 / 2
    >>> mem.beta, cg.direct(g_new, mem)[0].tolist()
    (1.0, [-3.0, -2.0])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from symnet.solvers.directions.base import Direction
from symnet.solvers.directions.gradient import Memory, gradient_direction


class CGMemory(NamedTuple):
    """The previous direction, the Polak-Ribiere+ weight for the next one, and iterations since the last restart."""

    d_prev: np.ndarray | None = None
    beta: float = 0.0
    since_restart: int = 0


def cg_memory(restart_every: int | None = None) -> Memory:
    """The Polak-Ribiere+ :class:`~symnet.solvers.directions.gradient.Memory`."""

    def direct(g: np.ndarray, mem: CGMemory):
        limit = len(g) if restart_every is None else restart_every
        if mem.d_prev is None or mem.since_restart >= limit:
            d, since = -g, 0
        else:
            d, since = -g + mem.beta * mem.d_prev, mem.since_restart
        return d, CGMemory(d, mem.beta, since + 1)

    def remember(mem: CGMemory, s, y, g_old, g_new) -> CGMemory:
        denom = float(g_old @ g_old)
        beta = float(g_new @ y) / denom if denom > 0 else 0.0
        return mem._replace(beta=max(0.0, beta))  # PR+: a negative beta restarts

    return Memory(init=CGMemory, direct=direct, remember=remember, reset=lambda mem: CGMemory())


def nonlinear_cg(restart_every: int | None = None) -> Direction:
    """Nonlinear conjugate gradient (Polak-Ribiere+) as a :class:`~symnet.solvers.directions.base.Direction`."""
    return gradient_direction(cg_memory(restart_every))
