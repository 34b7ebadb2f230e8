"""L-BFGS: ``d = -H g`` by the two-loop recursion over the last ``memory`` secant pairs.

A pair with ``s.y <= curvature_eps * ||s|| ||y||`` is skipped (the exact line
search does not enforce the Wolfe curvature condition) and counted.

Example:
    >>> import numpy as np
    >>> mem = lbfgs_memory(memory=1).init()
    >>> for s in ([1.0, 0.0], [0.0, 1.0], [0.0, 0.0]):
    ...     mem = lbfgs_memory(memory=1).remember(mem, np.array(s), 2 * np.array(s), None, None)
    >>> len(mem.S), mem.skipped
    (1, 1)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from symnet.solvers.directions.base import Direction
from symnet.solvers.directions.gradient import Memory, gradient_direction


def two_loop(g: np.ndarray, S, Y) -> np.ndarray:
    """L-BFGS two-loop recursion: ``H g`` for the inverse-Hessian approximation of the pairs.

    ``H_0 = gamma I`` with ``gamma = s.y / y.y`` of the newest pair (1 without
    pairs); the pairs are oldest first.

    Example:
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


class LBFGSMemory(NamedTuple):
    """The kept pairs (oldest first) and the number of pairs skipped so far."""

    S: tuple = ()
    Y: tuple = ()
    skipped: int = 0


def lbfgs_memory(memory: int = 10, curvature_eps: float = 1e-10) -> Memory:
    """The L-BFGS :class:`~symnet.solvers.directions.gradient.Memory` of ``memory`` pairs."""

    def remember(mem: LBFGSMemory, s, y, g_old, g_new) -> LBFGSMemory:
        sy = float(s @ y)
        if not (np.isfinite(sy) and sy > curvature_eps * float(np.linalg.norm(s) * np.linalg.norm(y))):
            return mem._replace(skipped=mem.skipped + 1)
        return LBFGSMemory((mem.S + (s,))[-memory:], (mem.Y + (y,))[-memory:], mem.skipped)

    return Memory(init=LBFGSMemory, direct=lambda g, mem: (-two_loop(g, mem.S, mem.Y), mem),
                  remember=remember, reset=lambda mem: LBFGSMemory(skipped=mem.skipped))


def lbfgs(memory: int = 10, curvature_eps: float = 1e-10) -> Direction:
    """L-BFGS as a :class:`~symnet.solvers.directions.base.Direction`."""
    return gradient_direction(lbfgs_memory(memory, curvature_eps))
