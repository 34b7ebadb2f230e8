"""Univariate polynomials in three tiers.

* :mod:`symnet.core.roots.dense`: raw float64 coefficient arrays (lowest
  degree first) and the functions the exact solvers call in their inner loops,
  above all :func:`~symnet.core.roots.dense.minimize` and
  :func:`~symnet.core.roots.dense.minimize_many`;
* :mod:`symnet.core.roots.poly`: :class:`UniPoly`, an immutable object with
  operators, roots, minimisation and a readable repr;
* :mod:`symnet.core.roots.symbolic`: conversion to and from symengine / sympy
  expressions and LaTeX, for exactness checks and export.

Example:
    >>> from symnet.core.roots import UniPoly, minimize
    >>> p = UniPoly([1.0, -2.0, 1.0])
    >>> p
    UniPoly(1 - 2 t + t^2)
    >>> t, value, info = minimize(p.coeffs)
    >>> round(t, 12), round(value, 12)
    (1.0, 0.0)
"""

from symnet.core.roots import dense
from symnet.core.roots.dense import (
    TRIM_RTOL,
    critical_points,
    degree,
    is_unbounded_below,
    minimize,
    minimize_many,
    polyval,
    polyval_compensated,
    trim,
)
from symnet.core.roots.poly import UniPoly

__all__ = [
    "dense",
    "symbolic",
    "UniPoly",
    "TRIM_RTOL",
    "critical_points",
    "degree",
    "is_unbounded_below",
    "minimize",
    "minimize_many",
    "polyval",
    "polyval_compensated",
    "trim",
]


def __getattr__(name: str):
    # sympy and symengine load only when the symbolic view is first used.
    if name == "symbolic":
        import importlib

        return importlib.import_module("symnet.core.roots.symbolic")
    raise AttributeError(f"module 'symnet.roots' has no attribute {name!r}")
