"""Solver backends behind one interface, looked up by name.

Every backend is a :class:`~symnet.solvers.base.Solver`; this module keeps the
registry of names. Backend modules are imported on first use, so that
``import symnet.solvers`` stays fast and one broken backend cannot hide the
others.

Example:
    >>> from symnet import solvers
    >>> "coordinate" in solvers.available()
    True
    >>> solvers.get("coordinate").name
    'coordinate'
"""

from __future__ import annotations

import importlib

from symnet.core.errors import SolverError
from symnet.solvers.base import Solver

# name -> "module:Class"
_REGISTRY: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Register ``target`` (``"package.module:Class"``) under ``name`` (replacing an earlier one)."""
    if not isinstance(target, str) or target.count(":") != 1:
        raise SolverError(f"a solver target is 'package.module:Class', got {target!r}")
    _REGISTRY[name] = target


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (no error if it is not there)."""
    _REGISTRY.pop(name, None)


def target(name: str) -> str | None:
    """The ``"module:Class"`` registered as ``name`` (None if none is)."""
    return _REGISTRY.get(name)


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


register("coordinate", "symnet.solvers.coordinate:CoordinateSolver")
# Gradient descent, one solver per optimizer of symnet.solvers.optim.OPTIMIZERS.
for _name, _cls in (("sgd", "SGDSolver"), ("momentum", "MomentumSolver"), ("nesterov", "NesterovSolver"),
                    ("adam", "AdamSolver"), ("nadam", "NadamSolver"), ("amsgrad", "AMSGradSolver"),
                    ("namsgrad", "NAMSGradSolver"), ("rmsprop", "RMSpropSolver"), ("sgd-hd", "SGDHDSolver"),
                    ("adam-hd", "AdamHDSolver"), ("adamw", "AdamWSolver"), ("nadamw", "NAdamWSolver"),
                    ("adamw-schedulefree", "ScheduleFreeAdamWSolver")):
    register(_name, f"symnet.solvers.gradient:{_cls}")
register("polyreg", "symnet.solvers.polyreg:PolyRegSolver")
# Exact line search along whole-space directions, and the symbolic block solve.
register("cg", "symnet.solvers.quasi_newton:CGSolver")
register("lbfgs", "symnet.solvers.quasi_newton:LBFGSSolver")
register("gauss-newton", "symnet.solvers.gauss_newton:GaussNewtonSolver")
register("symbolic-block", "symnet.solvers.symbolic_block:SymbolicBlockSolver")

__all__ = ["Solver", "available", "get", "register", "target", "unregister"]
