"""Channel-block directions: a channel's filter, its readout slice and the output bias, moved together.

On a ``Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear`` network one
output channel ``c`` of the convolution reaches the outputs only through its
pooled features, which only its slice of the readout reads. The direction of
block ``c`` is the damped variable-projection Gauss-Newton step of
:meth:`ChannelBlocks.direction <symnet.solvers.channel_blocks.ChannelBlocks.direction>`:
the filter's step from a Schur complement, the readout slice and the bias along
their implicit response to it. :func:`channel_blocks` cycles over the channels;
:class:`~symnet.solvers.exact_directions.DirectionSolver` then takes the exact
line search along each (a polynomial of degree ``2P + 2``, 6 under ``x^2``).
The ``coordinate`` solver's default on ``poly`` runs these blocks through fused
kernels, with rescaling, a readout solve per sweep and growing samples; this
composition is the plain direction plus the plain exact search.

Example:
    >>> import numpy as np, symnet
    >>> from symnet.solvers.exact_directions import DirectionSolver
    >>> m = symnet.models.get("poly", input_shape=(1, 8, 8), channels=2, kernel=3, num_classes=3, seed=0)
    >>> X = np.random.default_rng(0).random((40, 1, 8, 8)); y = np.arange(40) % 3
    >>> data = symnet.datasets.Dataset("tiny", X, y, X[:6], y[:6], 3)
    >>> s = DirectionSolver(channel_blocks(), ridge=0.1).fit(m, data, steps=4, quiet=True)
    >>> losses = [r["loss"] for r in s.history_]
    >>> all(b <= a for a, b in zip(losses, losses[1:]))
    True
"""

from __future__ import annotations

from typing import Any, NamedTuple

from symnet.core.errors import ModelError

from symnet.solvers.channel_blocks import ChannelBlocks, channel_chain
from symnet.solvers.directions.base import Direction, Problem


class ChannelState(NamedTuple):
    """The next channel, the number of channels, and the block machinery of the samples it was built on."""

    channel: int
    channels: int
    blocks: Any = None
    samples: Any = None


def channel_blocks(mu: float | None = None) -> Direction:
    """The variable-projection direction of each conv channel's block in turn (``mu``: the relative
    Levenberg-Marquardt damping; default the block's own, adapted as :class:`ChannelBlocks` does)."""

    def init(model) -> ChannelState:
        chain = channel_chain(model)
        if chain is None:
            raise ModelError("channel-block directions need a Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear "
                             "network (the poly preset); use cyclic_coordinates or a gradient direction")
        return ChannelState(0, int(chain[0].out_channels))

    def update(problem: Problem, state: ChannelState):
        loss = problem.loss
        blocks = state.blocks
        if blocks is None or state.samples is not loss:  # new samples (a batch), or the first iteration
            blocks = ChannelBlocks(loss.model, loss.X, loss.Y, ridge=loss.ridge)
        else:
            blocks.refresh()  # the line search moved the parameters since the last direction
        C = state.channels
        for k in range(C):  # the next channel whose block can still descend; None when none can (stationary)
            c = (state.channel + k) % C
            du, dV, db, pred = blocks.direction(c, mu=mu)
            if pred < 0.0:
                return blocks.flat(c, du=du, dV=dV, db=db), ChannelState((c + 1) % C, C, blocks, loss)
        return None, ChannelState(state.channel, C, blocks, loss)

    return Direction(init=init, update=update, reset=lambda state: ChannelState(state.channel, state.channels))


__all__ = ["ChannelState", "channel_blocks"]
