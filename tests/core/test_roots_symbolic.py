"""Symbolic conversions against sympy's own expansion and coefficient extraction."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import symengine as se
import sympy

from symnet.core.errors import DataError
from symnet.core.roots import dense, symbolic

T = sympy.Symbol("t")


def sympy_coeffs(expr) -> list:
    """Oracle: sympy's expand + Poly, lowest degree first."""
    return list(reversed(sympy.Poly(sympy.expand(expr), T).all_coeffs()))


def random_product(rng):
    """A random product of small integer-coefficient factors, unexpanded."""
    expr = sympy.Integer(int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(1, 4))):
        factor = sum(int(rng.integers(-3, 4)) * T**k for k in range(int(rng.integers(1, 4))))
        expr = expr * (factor + 1) ** int(rng.integers(1, 3))
    return expr


def test_from_symengine_matches_sympy_expand():
    rng = np.random.default_rng(0)
    for _ in range(25):
        expr = random_product(rng)
        expected = [float(a) for a in sympy_coeffs(expr)]
        got = symbolic.from_symengine(se.sympify(expr), "t")
        np.testing.assert_array_equal(np.trim_zeros(got, "b"), np.trim_zeros(np.array(expected), "b"))
        # The string and sympy inputs take the same path.
        np.testing.assert_array_equal(symbolic.from_symengine(str(expr)), got)
        np.testing.assert_array_equal(symbolic.from_sympy(expr), got)


def test_exact_round_trip_of_float_coefficients():
    rng = np.random.default_rng(1)
    for _ in range(25):
        c = rng.standard_normal(int(rng.integers(1, 8))) * 10.0 ** rng.uniform(-5, 5)
        expr = symbolic.to_sympy(c, exact=True)
        # sympy reads back the exact rationals of the floats.
        coeffs = sympy_coeffs(expr) if expr != 0 else [0]
        assert [Fraction(int(sympy.fraction(a)[0]), int(sympy.fraction(a)[1])) for a in coeffs] == [
            Fraction(x) for x in np.trim_zeros(c, "b")
        ]
        np.testing.assert_array_equal(symbolic.from_symengine(symbolic.to_symengine(c, exact=True)), np.trim_zeros(c, "b"))
        np.testing.assert_array_equal(symbolic.from_symengine(symbolic.to_symengine(c)), np.trim_zeros(c, "b"))


def test_products_agree_with_dense_arithmetic_exactly():
    # Small integers: float arithmetic is exact, so dense.mul/pow must equal sympy.
    rng = np.random.default_rng(2)
    for _ in range(20):
        a = rng.integers(-5, 6, size=int(rng.integers(1, 5))).astype(float)
        b = rng.integers(-5, 6, size=int(rng.integers(1, 5))).astype(float)
        k = int(rng.integers(0, 4))
        sa, sb = symbolic.to_sympy(a, exact=True), symbolic.to_sympy(b, exact=True)
        for ours, expr in [(dense.mul(a, b), sa * sb), (dense.pow(a, k), sa**k), (dense.add(a, b), sa + sb)]:
            expected = [float(x) for x in sympy_coeffs(expr)] if sympy.expand(expr) != 0 else [0.0]
            np.testing.assert_array_equal(dense.trim(ours, rtol=0.0), np.array(expected))


def test_from_symengine_handles_irrational_and_rational_coefficients():
    got = symbolic.from_symengine("sqrt(2)*(t + 1)**2 + t/3")
    np.testing.assert_allclose(got, [np.sqrt(2), 2 * np.sqrt(2) + 1 / 3, np.sqrt(2)], rtol=1e-15)
    assert symbolic.from_symengine("0").tolist() == [0.0]
    assert symbolic.from_symengine(2.5).tolist() == [2.5]
    x = sympy.Symbol("x")
    assert symbolic.from_sympy(sympy.Poly(3 * x**2 - 1, x)).tolist() == [-1.0, 0.0, 3.0]
    assert symbolic.from_symengine("y**2 + y", t="y").tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "expr",
    ["1/t", "sin(t) + t", "t**0.5", "(1 + t)**(-1)", "t*x", "I*t", "exp(t)"],
)
def test_non_polynomials_raise(expr):
    with pytest.raises(DataError):
        symbolic.from_symengine(expr, "t")


def test_ambiguous_variable_raises():
    with pytest.raises(DataError, match="several symbols"):
        symbolic.from_symengine("x + y")


def test_to_symengine_and_latex_text():
    assert str(symbolic.to_symengine([0.5, 0.0, 2.0], "x", exact=True)) == "1/2 + 2*x**2"
    assert str(symbolic.to_symengine([0.0])) == "0"
    assert symbolic.to_latex([1.0, -2.0, 1.0]) == "1 - 2 t + t^{2}"
    assert symbolic.to_latex([0.0, -1.0, 0.0, 1e-9]) == r"-t + 1 \cdot 10^{-9} t^{3}"
    assert symbolic.to_latex([1.0 / 3.0], digits=3) == "0.333"
    assert symbolic.to_latex([0.5, 1.0], "x", exact=True) == r"\frac{1}{2} + x"
    assert symbolic.to_latex([0.0, 0.0]) == "0"
    with pytest.raises(DataError):
        symbolic.to_latex([1.0], t="1x")
