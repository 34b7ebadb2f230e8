"""Search directions for the exact solvers: pure ``init`` / ``update`` pairs, one small module each.

* :mod:`~symnet.solvers.directions.base`: :class:`Direction`, :class:`Problem`
  and :func:`exact_line_search` (the step every direction ends with);
* :mod:`~symnet.solvers.directions.gradient`: steepest descent, and the frame
  (restarts, secant pairs) of the methods that remember past gradients;
* :mod:`~symnet.solvers.directions.cg`: nonlinear conjugate gradient (Polak-Ribiere+);
* :mod:`~symnet.solvers.directions.lbfgs`: L-BFGS (two-loop recursion);
* :mod:`~symnet.solvers.directions.coordinate`: one parameter at a time (exact coordinate descent);
* :mod:`~symnet.solvers.directions.channel`: a conv channel's block (filter, readout slice, bias) at a time.

The Gauss-Newton direction (full, per block, K-FAC) is
:func:`symnet.solvers.gauss_newton.gauss_newton`, next to the linear algebra it
wraps. Any of them runs in
:class:`~symnet.solvers.exact_directions.DirectionSolver`.
"""

from symnet.solvers.directions.base import Direction, FullObjective, Problem, ReadoutCache, exact_line_search
from symnet.solvers.directions.cg import CGMemory, cg_memory, nonlinear_cg
from symnet.solvers.directions.channel import ChannelState, channel_blocks
from symnet.solvers.directions.coordinate import CoordinateState, cyclic_coordinates
from symnet.solvers.directions.gradient import GradientState, Memory, gradient_direction, steepest_descent
from symnet.solvers.directions.lbfgs import LBFGSMemory, lbfgs, lbfgs_memory, two_loop

__all__ = ["CGMemory", "ChannelState", "CoordinateState", "Direction", "FullObjective", "GradientState", "LBFGSMemory", "Memory", "Problem",
           "ReadoutCache", "cg_memory", "channel_blocks", "cyclic_coordinates", "exact_line_search", "gradient_direction", "lbfgs", "lbfgs_memory",
           "nonlinear_cg", "steepest_descent", "two_loop"]
