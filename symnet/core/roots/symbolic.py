"""Symbolic views of coefficient arrays: symengine, sympy and LaTeX.

For exactness checks and export, not for hot paths. Coefficient arrays follow
the package convention (float64, lowest degree first). With ``exact=True``
every float is turned into the rational number it represents exactly, so an
expansion done by symengine or sympy is free of rounding.

Example:
    >>> from symnet.core.roots import symbolic
    >>> symbolic.to_symengine([1.0, 0.0, 3.0], "t")
    1.0 + 3.0*t**2
    >>> symbolic.from_symengine("(1 + 2*t)**2", "t").tolist()
    [1.0, 4.0, 4.0]
    >>> symbolic.to_latex([1.0, -2.0, 1.0])
    '1 - 2 t + t^{2}'
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import symengine as se
import sympy

from symnet.core.errors import DataError
from symnet.core.roots.dense import as_coeffs

__all__ = ["to_symengine", "from_symengine", "to_sympy", "from_sympy", "to_latex"]


def symbol_name(t: Any) -> str:
    if isinstance(t, str):
        if not t.isidentifier():
            raise DataError(f"variable name must be an identifier like 't', got {t!r}.")
        return t
    if isinstance(t, (se.Symbol, sympy.Symbol)):
        return str(t)
    raise DataError(f"variable must be a name or a Symbol, got {type(t).__name__}; pass e.g. t='t'.")


def _se_number(x: float, exact: bool) -> se.Basic:
    if exact:
        num, den = Fraction(x).as_integer_ratio()
        return se.Integer(num) / se.Integer(den)
    return se.RealDouble(x)


def _sp_number(x: float, exact: bool) -> sympy.Expr:
    return sympy.Rational(Fraction(x).numerator, Fraction(x).denominator) if exact else sympy.Float(x)


def to_symengine(c: Any, t: Any = "t", *, exact: bool = False) -> se.Basic:
    """The polynomial ``sum_k c[k] t**k`` as a symengine expression.

    Args:
        c: coefficients, lowest degree first.
        t: variable name or Symbol.
        exact: convert every float to the rational it represents exactly
            (integers stay integers), instead of a symengine ``RealDouble``.

    Zero coefficients are left out; the zero polynomial is ``0``.

    Example:
        >>> to_symengine([0.5, 0.0, 2.0], "x", exact=True)
        1/2 + 2*x**2
    """
    c = as_coeffs(c)
    sym = se.Symbol(symbol_name(t))
    expr = se.Integer(0)
    for k, ck in enumerate(c.tolist()):
        if ck == 0.0:
            continue
        expr = expr + _se_number(ck, exact) * sym**k
    return expr


def to_sympy(c: Any, t: Any = "t", *, exact: bool = False) -> sympy.Expr:
    """The polynomial as a sympy expression (see :func:`to_symengine`).

    Example:
        >>> to_sympy([1.0, 2.0], exact=True)
        2*t + 1
    """
    c = as_coeffs(c)
    sym = sympy.Symbol(symbol_name(t))
    return sympy.Add(*[_sp_number(ck, exact) * sym**k for k, ck in enumerate(c.tolist()) if ck != 0.0])


def _infer_symbol(free: set, t: Any) -> str | None:
    if t is not None:
        return symbol_name(t)
    names = sorted(str(s) for s in free)
    if len(names) > 1:
        raise DataError(
            f"expression has several symbols {names}; pass t= to name the polynomial variable."
        )
    return names[0] if names else None


def _to_float(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise DataError(
            f"coefficient {value} of {what} is not a real number; only real polynomials are supported."
        ) from None
    if not math.isfinite(out):
        raise DataError(f"coefficient {value} of {what} is not finite.")
    return out


def _from_sympy_poly(expr: Any, name: str | None) -> np.ndarray:
    try:
        if isinstance(expr, sympy.Poly):
            if name is not None and expr.gens != (sympy.Symbol(name),):
                raise sympy.PolynomialError(f"generators {expr.gens} are not ({name},)")
            poly = expr
        else:
            gens = [sympy.Symbol(name)] if name is not None else []
            poly = sympy.Poly(sympy.expand(expr), *gens) if gens else None
            if poly is None:
                return np.array([_to_float(sympy.sympify(expr), "the constant")])
        if poly.is_zero:
            return np.zeros(1)
        return np.array([_to_float(a, "the polynomial") for a in reversed(poly.all_coeffs())])
    except (sympy.PolynomialError, sympy.SympifyError, sympy.GeneratorsNeeded) as exc:
        raise DataError(
            f"cannot read {expr} as a polynomial in {name}: {exc}. Pass a polynomial with numeric "
            "coefficients and nonnegative integer powers."
        ) from None


def from_symengine(expr: Any, t: Any = None) -> np.ndarray:
    """Coefficient array (float64, lowest degree first) of a polynomial expression.

    The expression is expanded with symengine and every term split into a
    numeric coefficient and a power of ``t``. Objects symengine cannot take
    (a ``sympy.Poly`` and the like) go through ``sympy.Poly`` instead.

    Args:
        expr: symengine or sympy expression, number, or string such as
            ``"(1 + t)**3"``.
        t: the variable (name or Symbol); inferred when the expression has
            exactly one symbol.

    Raises:
        DataError: another symbol remains, a power of ``t`` is negative or
            fractional, ``t`` sits inside a function, or a coefficient is not
            a real number.

    Example:
        >>> from_symengine("t*(t - 1) + 0.5").tolist()
        [0.5, -1.0, 1.0]
    """
    if isinstance(expr, sympy.Poly):
        return _from_sympy_poly(expr, None if t is None else symbol_name(t))
    try:
        e = se.expand(se.sympify(expr))
    except (se.SympifyError, TypeError, ValueError, RuntimeError):
        e = None
    if e is None:
        try:
            sp_expr = sympy.sympify(expr)
        except (sympy.SympifyError, TypeError) as exc:
            raise DataError(f"cannot read {expr!r} as an expression ({exc}).") from None
        return _from_sympy_poly(sp_expr, _infer_symbol(sp_expr.free_symbols, t))
    name = _infer_symbol(e.free_symbols, t)
    if name is None:
        return np.array([_to_float(e, "the constant")])
    sym = se.Symbol(name)
    others = sorted(str(s) for s in e.free_symbols if s != sym)
    if others:
        raise DataError(
            f"expression {e} depends on {others} besides {name}; substitute numbers for them "
            "first (expr.subs({...})) or pick the right variable with t=."
        )
    coeffs: dict[int, float] = {}
    terms = e.args if e.is_Add else (e,)
    for term in terms:
        factors = term.args if term.is_Mul else (term,)
        power = 0
        numeric = se.Integer(1)
        for f in factors:
            if f == sym:
                power += 1
            elif f.is_Pow and f.args[0] == sym and f.args[1].is_Integer and int(f.args[1]) >= 0:
                power += int(f.args[1])
            elif sym in f.free_symbols:
                raise DataError(
                    f"term {term} of {e} is not a polynomial in {name} (factor {f}); only "
                    "nonnegative integer powers of the variable are allowed."
                )
            else:
                numeric = numeric * f
        coeffs[power] = coeffs.get(power, 0.0) + _to_float(numeric, e)
    out = np.zeros(max(coeffs) + 1 if coeffs else 1)
    for k, v in coeffs.items():
        out[k] += v
    return out


def from_sympy(expr: Any, t: Any = None) -> np.ndarray:
    """Coefficient array of a sympy expression or ``sympy.Poly`` (see :func:`from_symengine`).

    Example:
        >>> import sympy
        >>> x = sympy.Symbol("x")
        >>> from_sympy(sympy.Poly(x**2 - 1, x)).tolist()
        [-1.0, 0.0, 1.0]
    """
    return from_symengine(expr, t)


def _latex_number(x: float, digits: int | None) -> str:
    if x == int(x) and abs(x) < 1e16:
        return str(int(x))
    text = format(x, f".{digits}g") if digits else repr(x)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa} \\cdot 10^{{{int(exponent)}}}"


def to_latex(c: Any, t: Any = "t", *, exact: bool = False, digits: int | None = None) -> str:
    r"""LaTeX of the polynomial, lowest degree first.

    Args:
        c: coefficients.
        t: variable name.
        exact: print exact rationals (through sympy) instead of decimals.
        digits: significant digits for the decimals (default: the shortest
            that round-trips; integral values print as integers).

    Example:
        >>> to_latex([0.5, 0.0, -3.0, 2e-9])
        '0.5 - 3 t^{2} + 2 \\cdot 10^{-9} t^{3}'
        >>> to_latex([0.5, 1.0], "x", exact=True)
        '\\frac{1}{2} + x'
    """
    c = as_coeffs(c)
    name = symbol_name(t)
    if exact:
        return sympy.latex(to_sympy(c, name, exact=True), order="rev-lex")
    terms = []
    for k, ck in enumerate(c.tolist()):
        if ck == 0.0:
            continue
        mono = "" if k == 0 else (name if k == 1 else f"{name}^{{{k}}}")
        number = _latex_number(abs(ck), digits)
        if k == 0:
            body = number
        elif abs(ck) == 1.0:
            body = mono
        else:
            body = f"{number} {mono}"
        sign = "-" if ck < 0 else "+"
        terms.append((f"-{body}" if ck < 0 else body) if not terms else f"{sign} {body}")
    return " ".join(terms) if terms else "0"
