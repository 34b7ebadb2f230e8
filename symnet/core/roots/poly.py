"""An immutable univariate polynomial object over float64 coefficients.

:class:`UniPoly` wraps a coefficient array (lowest degree first) and gives it
operators, evaluation, roots, global minimisation and a readable repr. It is a
thin layer over :mod:`symnet.core.roots.dense`; hot loops should call the
dense functions on raw arrays instead.

Example:
    >>> from symnet.core.roots import UniPoly
    >>> p = UniPoly([1.0, 2.0, 3.0])
    >>> p
    UniPoly(1 + 2 t + 3 t^2)
    >>> (p * p - 1).degree, p(2.0), p.derivative()
    (4, 17.0, UniPoly(2 + 6 t))
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from symnet.core.errors import DataError
import symnet.core.roots.dense as dense

__all__ = ["UniPoly"]


def _format_coefficient(x: float) -> str:
    if x == int(x) and abs(x) < 1e16:
        return str(int(x))
    return repr(x)


class UniPoly:
    """Immutable polynomial ``sum_k coeffs[k] * var**k`` with float64 coefficients.

    Exact-zero leading coefficients are dropped on construction (so
    :attr:`degree` is the true degree and ``==`` compares canonical forms);
    tiny nonzero ones are kept. Arithmetic accepts another ``UniPoly`` in the
    same variable or a real scalar and returns a new ``UniPoly``.

    Args:
        coeffs: real coefficients, lowest degree first (1-D, non-empty, finite).
        var: variable name used by ``repr`` and the symbolic conversions.

    Raises:
        DataError: bad coefficients or variable name.

    Example:
        >>> p = UniPoly([0.0, -1.0, 0.0, 1.0])          # t^3 - t
        >>> p.roots(real_only=True).round(12).tolist()
        [-1.0, 0.0, 1.0]
        >>> (p + 1) ** 2 == UniPoly([1, -2, 1, 2, -2, 0, 1])
        True
    """

    __slots__ = ("_c", "_var")
    # numpy scalars on the left defer to the reflected operators below.
    __array_ufunc__ = None

    def __init__(self, coeffs: Any, var: str = "t") -> None:
        c = dense.trim(coeffs, rtol=0.0)
        c.setflags(write=False)
        if not isinstance(var, str) or not var.isidentifier():
            raise DataError(f"var must be an identifier such as 't', got {var!r}.")
        object.__setattr__(self, "_c", c)
        object.__setattr__(self, "_var", var)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("UniPoly is immutable; build a new one, e.g. UniPoly(new_coeffs).")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("UniPoly is immutable.")

    # -------------------------------------------------------------- views
    @property
    def coeffs(self) -> np.ndarray:
        """Read-only float64 coefficient array, lowest degree first."""
        return self._c

    @property
    def var(self) -> str:
        """Name of the variable."""
        return self._var

    @property
    def degree(self) -> int:
        """Degree (0 for constants, including the zero polynomial)."""
        return self._c.shape[0] - 1

    def __call__(self, t: Any) -> Any:
        """Value at a scalar (a float) or an array of points (an array)."""
        return dense.polyval(self._c, t)

    def __repr__(self) -> str:
        terms = []
        for k, ck in enumerate(self._c.tolist()):
            if ck == 0.0:
                continue
            mag = abs(ck)
            if k == 0:
                body = _format_coefficient(mag)
            else:
                mono = self._var if k == 1 else f"{self._var}^{k}"
                body = mono if mag == 1.0 else f"{_format_coefficient(mag)} {mono}"
            if not terms:
                terms.append(f"-{body}" if ck < 0 else body)
            else:
                terms.append(f"{'-' if ck < 0 else '+'} {body}")
        text = " ".join(terms) if terms else "0"
        suffix = "" if self._var == "t" else f", var={self._var!r}"
        return f"UniPoly({text}{suffix})"

    # --------------------------------------------------------- arithmetic
    def _other(self, other: Any) -> np.ndarray | None:
        if isinstance(other, UniPoly):
            if other._var != self._var and other.degree > 0 and self.degree > 0:
                raise DataError(
                    f"cannot combine polynomials in {self._var!r} and {other._var!r}; "
                    "rename one with UniPoly(p.coeffs, var=...)."
                )
            return other._c
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return dense.as_coeffs([float(other)], "scalar operand")
        return None

    def _new(self, c: np.ndarray) -> "UniPoly":
        return UniPoly(c, self._var)

    def __add__(self, other: Any) -> "UniPoly":
        o = self._other(other)
        return NotImplemented if o is None else self._new(dense.add(self._c, o))

    __radd__ = __add__

    def __sub__(self, other: Any) -> "UniPoly":
        o = self._other(other)
        return NotImplemented if o is None else self._new(dense.sub(self._c, o))

    def __rsub__(self, other: Any) -> "UniPoly":
        o = self._other(other)
        return NotImplemented if o is None else self._new(dense.sub(o, self._c))

    def __neg__(self) -> "UniPoly":
        return self._new(dense.neg(self._c))

    def __pos__(self) -> "UniPoly":
        return self

    def __mul__(self, other: Any) -> "UniPoly":
        o = self._other(other)
        return NotImplemented if o is None else self._new(dense.mul(self._c, o))

    __rmul__ = __mul__

    def __pow__(self, n: Any) -> "UniPoly":
        return self._new(dense.pow(self._c, n))

    # ------------------------------------------------------------ calculus
    def derivative(self, m: int = 1) -> "UniPoly":
        """The ``m``-th derivative.

        Example:
            >>> UniPoly([1, 1, 1, 1]).derivative(2)
            UniPoly(2 + 6 t)
        """
        return self._new(dense.derivative(self._c, m))

    def roots(self, real_only: bool = False) -> np.ndarray:
        """Roots: all complex ones sorted by real part, or only the real ones.

        See :func:`symnet.core.roots.dense.roots` for how real roots are found.

        Example:
            >>> UniPoly([2.0, -3.0, 1.0]).roots(real_only=True).tolist()
            [1.0, 2.0]
        """
        return dense.roots(self._c, real_only=real_only)

    def minimize(self, t0: float = 0.0, *, rtol: float = dense.TRIM_RTOL, info: bool = False):
        """Global minimiser on the real line: ``(t, value)``, or ``(t, value, info)``.

        Follows :func:`symnet.core.roots.dense.minimize`: never worse than
        ``t0``; for an unbounded polynomial the best finite critical point
        (``info["unbounded"]`` tells).

        Example:
            >>> UniPoly([5.0, -4.0, 1.0]).minimize()
            (2.0, 1.0)
        """
        t, value, details = dense.minimize(self._c, t0=t0, rtol=rtol)
        return (t, value, details) if info else (t, value)

    # ----------------------------------------------------------- equality
    def __eq__(self, other: object) -> bool:
        if isinstance(other, UniPoly):
            return self._var == other._var and np.array_equal(self._c, other._c)
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return self.degree == 0 and float(self._c[0]) == float(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._var, self._c.tobytes()))

    def isclose(self, other: Any, rtol: float = 1e-9, atol: float = 0.0) -> bool:
        """Coefficient-wise closeness relative to the larger coefficient norm.

        True when ``|a_k - b_k| <= atol + rtol * max(max|a|, max|b|)`` for
        every ``k`` (the shorter array padded with zeros), so negligible
        leading coefficients on either side do not break equality.

        Example:
            >>> UniPoly([1.0, 2.0]).isclose(UniPoly([1.0, 2.0, 1e-15]))
            True
        """
        o = self._other(other)
        if o is None:
            raise DataError(f"isclose needs a UniPoly or a real number, got {type(other).__name__}.")
        diff = dense.sub(self._c, o)
        scale = max(float(np.max(np.abs(self._c))), float(np.max(np.abs(o))))
        return bool(np.all(np.abs(diff) <= atol + rtol * scale))

    # ---------------------------------------------------------- symbolic
    @classmethod
    def from_sympy(cls, expr: Any, t: Any = None) -> "UniPoly":
        """Build from a sympy/symengine expression, ``sympy.Poly`` or string.

        Example:
            >>> UniPoly.from_sympy("(x - 1)**2")
            UniPoly(1 - 2 x + x^2, var='x')
        """
        import symnet.core.roots.symbolic as symbolic  # deferred: sympy and symengine load on first use

        c = symbolic.from_symengine(expr, t)
        if t is None:
            free = _free_symbol_names(expr)
            name = free[0] if free else "t"
        else:
            name = symbolic.symbol_name(t)
        return cls(c, name)

    def to_sympy(self, exact: bool = False):
        """sympy expression (floats, or exact rationals with ``exact=True``).

        Example:
            >>> UniPoly([1.0, 2.0]).to_sympy(exact=True)
            2*t + 1
        """
        import symnet.core.roots.symbolic as symbolic  # deferred: sympy and symengine load on first use

        return symbolic.to_sympy(self._c, self._var, exact=exact)

    def to_symengine(self, exact: bool = False):
        """symengine expression (see :func:`symnet.core.roots.symbolic.to_symengine`)."""
        import symnet.core.roots.symbolic as symbolic  # deferred: sympy and symengine load on first use

        return symbolic.to_symengine(self._c, self._var, exact=exact)

    def to_latex(self, exact: bool = False) -> str:
        """LaTeX, lowest degree first.

        Example:
            >>> UniPoly([1.0, -2.0, 1.0]).to_latex()
            '1 - 2 t + t^{2}'
        """
        import symnet.core.roots.symbolic as symbolic  # deferred: sympy and symengine load on first use

        return symbolic.to_latex(self._c, self._var, exact=exact)


def _free_symbol_names(expr: Any) -> list[str]:
    import symengine as se
    import sympy

    if isinstance(expr, sympy.Poly):
        return [str(g) for g in expr.gens]
    try:
        return sorted(str(s) for s in se.sympify(expr).free_symbols)
    except Exception:
        return sorted(str(s) for s in sympy.sympify(expr).free_symbols)
