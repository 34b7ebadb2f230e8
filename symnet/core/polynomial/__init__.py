"""Univariate polynomials in three tiers.

* :mod:`symnet.core.polynomial.dense`: raw float64 coefficient arrays (lowest
  degree first) and the functions the exact solvers call in their inner loops,
  above all :func:`~symnet.core.polynomial.dense.minimize` and
  :func:`~symnet.core.polynomial.dense.minimize_many`;
* :mod:`symnet.core.polynomial.poly`: :class:`UniPoly`, an immutable object with
  operators, roots, minimisation and a readable repr;
* :mod:`symnet.core.polynomial.symbolic`: conversion to and from symengine / sympy
  expressions and LaTeX, for exactness checks and export.

Example:
    >>> from symnet.core.polynomial import UniPoly, minimize
    >>> p = UniPoly([1.0, -2.0, 1.0])
    >>> p
    UniPoly(1 - 2 t + t^2)
    >>> t, value, info = minimize(p.coeffs)
    >>> round(t, 12), round(value, 12)
    (1.0, 0.0)
"""

from symnet.core.polynomial import dense
from symnet.core.polynomial.dense import (
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
from symnet.core.polynomial.poly import UniPoly

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

        return importlib.import_module("symnet.core.polynomial.symbolic")
    raise AttributeError(f"module 'symnet.polynomial' has no attribute {name!r}")
