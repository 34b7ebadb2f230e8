"""Solver backends behind one interface, looked up by name.

Example:
    >>> import solvers
    >>> "coordinate" in solvers.available()
    True
    >>> solvers.get("coordinate").name
    'coordinate'
"""

from __future__ import annotations

import importlib

from symnet.errors import SolverError

from .base import Solver, accuracy

# name -> "module:Class"; modules are imported on first use so that
# `import solvers` stays fast and one broken backend cannot hide the others.
_REGISTRY: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Register ``target`` ("module:Class") under ``name``."""
    _REGISTRY[name] = target


def available() -> list[str]:
    """Names of every registered backend, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> type[Solver]:
    """The solver class registered as ``name``.

    Raises:
        SolverError: ``name`` is not registered; the message lists the names that are.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise SolverError(f"unknown solver {name!r}; available: {', '.join(available())}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


register("coordinate", "solvers.coordinate:CoordinateSolver")
# Gradient descent, one solver per optimizer of solvers.optim.OPTIMIZERS.
for _name, _cls in (("sgd", "SGDSolver"), ("momentum", "MomentumSolver"), ("nesterov", "NesterovSolver"),
                    ("adam", "AdamSolver"), ("nadam", "NadamSolver"), ("amsgrad", "AMSGradSolver"),
                    ("namsgrad", "NAMSGradSolver"), ("rmsprop", "RMSpropSolver"), ("sgd-hd", "SGDHDSolver"),
                    ("adam-hd", "AdamHDSolver")):
    register(_name, f"solvers.gradient:{_cls}")
register("polyreg", "solvers.polyreg:PolyRegSolver")
# Exact line search along whole-space directions, and the symbolic block solve.
register("cg", "solvers.directions:CGSolver")
register("lbfgs", "solvers.directions:LBFGSSolver")
register("gauss-newton", "solvers.directions:GaussNewtonSolver")
register("symbolic-block", "solvers.symbolic_block:SymbolicBlockSolver")

__all__ = ["Solver", "accuracy", "available", "get", "register"]
