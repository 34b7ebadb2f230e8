"""Coordinate directions: one parameter at a time, in cyclic order.

The exact line search along a coordinate axis is the global minimum of the
objective in that one weight (a polynomial of degree 2 for a last-layer weight,
4 for a conv weight under ``x^2``), so :class:`~symnet.solvers.exact_directions.DirectionSolver`
with :func:`cyclic_coordinates` is exact coordinate descent composed from the
two pieces every exact solver has. The ``coordinate`` solver runs the same
steps through fused kernels that update the cached activations in place, many
times faster; this composition is the reference it can be read against.

Example:
    >>> import numpy as np, symnet
    >>> from symnet.solvers.exact_directions import DirectionSolver
    >>> s = DirectionSolver(cyclic_coordinates(), ridge=1e-3)
    >>> s = s.fit(symnet.models.mlp(2, 2, 2, seed=0), symnet.datasets.xor(8), steps=6, quiet=True)
    >>> bool(np.all(np.diff(s.history_.column("loss")) <= 0))  # the loss never rises
    True
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from symnet.solvers.directions.base import Direction, Problem


class CoordinateState(NamedTuple):
    """The next coordinate to move (a flat parameter index) and how many parameters there are."""

    index: int
    size: int


def cyclic_coordinates() -> Direction:
    """The unit vector of each parameter in turn, the last layer's first (it has the cheapest, quadratic
    restrictions, and the others are judged against a fitted readout)."""

    def init(model) -> CoordinateState:
        size = int(model.num_params)
        last = sum(v.size for v in model.layers[-1].params.values())
        return CoordinateState((size - last) % max(size, 1), size)

    def update(problem: Problem, state: CoordinateState):
        d = np.zeros(state.size)
        d[state.index] = 1.0  # the exact search finds the best step of either sign
        return d, CoordinateState((state.index + 1) % state.size, state.size)

    return Direction(init=init, update=update, size=lambda model: 1)


__all__ = ["CoordinateState", "cyclic_coordinates"]
