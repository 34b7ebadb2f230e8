"""UniPoly against numpy.polynomial.Polynomial and sympy."""

from __future__ import annotations

import numpy as np
import numpy.polynomial.polynomial as npp
import pytest
import sympy
from numpy.polynomial import Polynomial

from symnet.core.errors import DataError
from symnet.core.roots import UniPoly


def npoly(p: UniPoly) -> Polynomial:
    return Polynomial(np.array(p.coeffs))


def test_operators_match_numpy_polynomial():
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = rng.standard_normal(rng.integers(1, 7))
        b = rng.standard_normal(rng.integers(1, 7))
        pa, pb = UniPoly(a), UniPoly(b)
        na, nb = Polynomial(a), Polynomial(b)
        for ours, theirs in [
            (pa + pb, na + nb),
            (pa - pb, na - nb),
            (pa * pb, na * nb),
            (pa**3, na**3),
            (-pa, -na),
            (2.5 * pa - 1.0, 2.5 * na - 1.0),
            (1.0 - pa, 1.0 - na),
            (pa * np.float64(3.0), na * 3.0),
            (np.float64(3.0) * pa, na * 3.0),
            (pa.derivative(), na.deriv()),
        ]:
            assert isinstance(ours, UniPoly)
            theirs = theirs.trim()
            assert ours.isclose(UniPoly(theirs.coef), rtol=1e-13)
        ts = rng.uniform(-2, 2, 5)
        np.testing.assert_allclose(pa(ts), na(ts), rtol=1e-12, atol=1e-12)
        assert isinstance(pa(0.3), float)
        assert pa(0.3) == pytest.approx(na(0.3), rel=1e-12, abs=1e-12)


def test_degree_trims_exact_zeros_only():
    assert UniPoly([1.0, 2.0, 0.0, 0.0]).degree == 1
    assert UniPoly([0.0]).degree == 0
    assert UniPoly([1.0, 1e-300]).degree == 1
    assert (UniPoly([0.0, 1.0]) - UniPoly([0.0, 1.0])).degree == 0


def test_repr_is_readable():
    assert repr(UniPoly([1.0, 2.0, 3.0])) == "UniPoly(1 + 2 t + 3 t^2)"
    assert repr(UniPoly([0.0, -1.0, 0.0, 1.0])) == "UniPoly(-t + t^3)"
    assert repr(UniPoly([-0.5, 0.0, -1.0])) == "UniPoly(-0.5 - t^2)"
    assert repr(UniPoly([0.0, 0.0])) == "UniPoly(0)"
    assert repr(UniPoly([1.0, 1e-08], var="x")) == "UniPoly(1 + 1e-08 x, var='x')"


def test_immutable_and_hashable():
    p = UniPoly([1.0, 2.0])
    with pytest.raises(AttributeError):
        p.foo = 1
    with pytest.raises(ValueError):
        p.coeffs[0] = 5.0
    source = np.array([1.0, 2.0])
    q = UniPoly(source)
    source[0] = 9.0
    assert q == p  # the constructor copied
    assert hash(q) == hash(UniPoly([1.0, 2.0, 0.0]))
    assert len({p, q, UniPoly([1.0, 2.0, 0.0])}) == 1


def test_equality_and_isclose():
    p = UniPoly([1.0, 2.0, 3.0])
    assert p == UniPoly([1.0, 2.0, 3.0])
    assert p != UniPoly([1.0, 2.0, 3.0 + 1e-12])
    assert p.isclose(UniPoly([1.0, 2.0, 3.0 + 1e-12]))
    assert not p.isclose(UniPoly([1.0, 2.0, 3.0 + 1e-6]))
    assert p.isclose(UniPoly([1.0, 2.0, 3.0, 1e-14]))  # negligible extra term
    assert not p.isclose(UniPoly([1.0, 2.0, 3.0, 1e-3]))
    assert UniPoly([4.0]) == 4.0
    assert p != UniPoly([1.0, 2.0, 3.0], var="x")
    assert p.isclose(UniPoly([1.0, 2.0, 3.0 + 0.5]), atol=0.6)
    # The tolerance scales with the largest coefficient.
    assert UniPoly([1e6, 2e6]).isclose(UniPoly([1e6, 2e6 + 1e-4]))
    assert not UniPoly([1e-6, 1e-6]).isclose(UniPoly([1e-6, 1e-6 + 1e-12]))


def test_roots_match_numpy():
    rng = np.random.default_rng(1)
    for deg in range(1, 7):
        c = rng.standard_normal(deg + 1)
        ours = UniPoly(c).roots()
        theirs = npp.polyroots(c)
        np.testing.assert_allclose(np.sort_complex(ours), np.sort_complex(theirs), rtol=1e-7, atol=1e-7)
        real = UniPoly(c).roots(real_only=True)
        expected = np.sort(theirs[np.abs(theirs.imag) < 1e-9].real)
        np.testing.assert_allclose(real, expected, rtol=1e-9, atol=1e-9)


def test_minimize_matches_dense_and_hand_worked_values():
    p = UniPoly([5.0, -4.0, 1.0])  # (t - 2)^2 + 1
    assert p.minimize() == (2.0, 1.0)
    t, v, info = UniPoly([0.0, 0.0, -2.0, 0.0, 1.0]).minimize(info=True)
    assert abs(t) == pytest.approx(1.0) and v == pytest.approx(-1.0) and not info["unbounded"]
    t, v, info = UniPoly([1.0, -1.0, 0.0, 1.0]).minimize(info=True)  # cubic: local min 1/sqrt(3)
    assert info["unbounded"]
    assert t == pytest.approx(1.0 / np.sqrt(3.0), rel=1e-14)
    assert UniPoly([1.0, 1.0]).minimize(t0=2.0) == (2.0, 3.0)


def test_sympy_round_trip():
    x = sympy.Symbol("x")
    p = UniPoly.from_sympy(sympy.expand((x - 1) ** 3 * (2 * x + 3)))
    assert p.var == "x"
    expected = Polynomial([-1.0, 1.0]) ** 3 * Polynomial([3.0, 2.0])
    assert p == UniPoly(expected.coef, var="x")
    assert sympy.expand(p.to_sympy(exact=True) - (x - 1) ** 3 * (2 * x + 3)) == 0
    q = UniPoly([0.1, -2.0, 0.0, 7.25])
    assert UniPoly.from_sympy(q.to_sympy()) == q  # floats survive exactly
    assert UniPoly.from_sympy(q.to_sympy(exact=True)) == q
    assert UniPoly.from_sympy(q.to_symengine()) == q
    assert UniPoly.from_sympy("3") == UniPoly([3.0])
    assert UniPoly.from_sympy(sympy.Poly(x**2 + 1, x)) == UniPoly([1.0, 0.0, 1.0], var="x")
    assert q.to_latex() == "0.1 - 2 t + 7.25 t^{3}"


def test_errors():
    with pytest.raises(DataError):
        UniPoly([])
    with pytest.raises(DataError):
        UniPoly([1.0, np.nan])
    with pytest.raises(DataError):
        UniPoly([1.0], var="not a name")
    with pytest.raises(DataError):
        UniPoly([1.0, 1.0]) ** -1
    with pytest.raises(DataError):
        UniPoly([1.0, 1.0]) + UniPoly([1.0, 1.0], var="x")
    with pytest.raises(TypeError):
        UniPoly([1.0]) + "a"
    with pytest.raises(DataError):
        UniPoly.from_sympy("x*y")
    with pytest.raises(DataError):
        UniPoly([1.0]).isclose("a")
