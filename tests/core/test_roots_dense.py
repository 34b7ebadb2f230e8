"""Dense coefficient-array polynomials against independent oracles.

Arithmetic is checked against numpy.polynomial.polynomial; minimisation
against a brute-force search (a log-spaced plus a linear grid over a bracket
that holds every critical point by Cauchy's bound, each grid-local minimum
refined with scipy's bounded Brent), which never looks at a root of the
derivative; compensated evaluation against exact rational arithmetic.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.polynomial.polynomial as npp
import pytest
from scipy.optimize import minimize_scalar

from symnet.core.errors import DataError
from symnet.core.roots import dense

RNG_SEED = 20240611


# ------------------------------------------------------------------ oracles
def abs_scale(c, t):
    """sum_k |c_k| |t|^k: the size of the terms of p(t)."""
    return float(npp.polyval(abs(t), np.abs(c)))


def cauchy_bracket(c):
    """Radius holding every real critical point: Cauchy's bound of p' plus a margin."""
    c = np.trim_zeros(np.asarray(c, float), "b")
    if c.size <= 2:
        return 1.0
    d = npp.polyder(c)
    return 1.05 * (1.0 + float(np.max(np.abs(d[:-1] / d[-1])))) + 1.0


def brute_force_candidates(c, max_refine=200):
    """Sorted (value, t) of t = 0 and every grid-local minimum, refined by Brent.

    Works on the polynomial alone (numpy evaluation), never on its derivative.
    """
    c = np.asarray(c, float)
    radius = cauchy_bracket(c)
    mags = np.geomspace(radius * 1e-15, radius, 20001)
    grid = np.union1d(np.concatenate([-mags[::-1], [0.0], mags]), np.linspace(-radius, radius, 20001))
    # Drop near-duplicates where the two grids meet: equal values at two almost
    # equal points would pass for a local minimum of a concave stretch.
    gaps = np.diff(grid)
    grid = grid[np.concatenate([[True], gaps > 1e-9 * np.maximum(np.abs(grid[1:]), radius * 1e-15)])]
    vals = npp.polyval(grid, c)
    inner = np.flatnonzero((vals[1:-1] < vals[:-2]) & (vals[1:-1] <= vals[2:])) + 1
    if inner.size > max_refine:  # plateaus of rounding noise around a flat minimum
        inner = inner[np.argsort(vals[inner])[:max_refine]]
    cands = [(float(c[0]), 0.0)]
    for i in inner:
        a, b = grid[i - 1], grid[i + 1]
        res = minimize_scalar(
            lambda t: npp.polyval(t, c),
            bounds=(a, b),
            method="bounded",
            options={"xatol": 1e-13 * max(abs(a), abs(b)) + 1e-300, "maxiter": 2000},
        )
        t = float(res.x) if res.fun <= vals[i] else float(grid[i])
        cands.append((float(npp.polyval(t, c)), t))
    cands.sort()
    return cands


def check_against_oracle(c, *, check_t=True, rtol=1e-10):
    """minimize(c) agrees with the brute force; returns (t, value, info)."""
    c = np.asarray(c, float)
    t, v, info = dense.minimize(c)
    assert v <= c[0], "value above the value at t = 0"
    assert info["decrease"] >= 0.0
    assert abs(v - npp.polyval(t, c)) <= 1e-12 * abs_scale(c, t) + 1e-300
    cands = brute_force_candidates(c)
    v_o, t_o = cands[0]
    tol = rtol * max(abs_scale(c, t_o), abs_scale(c, t)) + 1e-300
    assert v <= v_o + tol, f"missed the minimum: got {v} at {t}, brute force {v_o} at {t_o}"
    assert v >= v_o - tol, f"brute force missed {v} at {t}?"
    if check_t:
        radius = cauchy_bracket(c)
        rivals = [vv for vv, tt in cands[1:] if abs(tt - t_o) > 1e-4 * radius]
        if not rivals or rivals[0] - v_o > 1e-6 * abs_scale(c, t_o):
            # Values are only known to ~eps * S, so t is only known to
            # ~sqrt(eps * S / p'') around a minimum with curvature p''.
            curvature = abs(npp.polyval(t_o, npp.polyder(c, 2)))
            blur = 10.0 * np.sqrt(np.finfo(float).eps * abs_scale(c, t_o) / curvature) if curvature else np.inf
            assert abs(t - t_o) <= 1e-6 * (abs(t_o) + 1e-3 * radius) + blur, (t, t_o)
    return t, v, info


def random_poly(rng, deg, *, lead_sign=1.0):
    c = rng.standard_normal(deg + 1)
    c[-1] = lead_sign * (abs(c[-1]) + 0.1)
    value_scale = 10.0 ** rng.uniform(-8, 8)
    t_scale = 10.0 ** rng.uniform(-1, 1)
    return value_scale * c / t_scale ** np.arange(deg + 1)


# --------------------------------------------------------------- arithmetic
@pytest.mark.parametrize("seed", range(5))
def test_arithmetic_matches_numpy_polynomial(seed):
    rng = np.random.default_rng(seed)
    for _ in range(20):
        a = rng.standard_normal(rng.integers(1, 9))
        b = rng.standard_normal(rng.integers(1, 9))
        n = max(a.size, b.size)
        np.testing.assert_allclose(dense.add(a, b), np.pad(npp.polyadd(a, b), (0, n - npp.polyadd(a, b).size)))
        np.testing.assert_allclose(dense.sub(a, b), np.pad(npp.polysub(a, b), (0, n - npp.polysub(a, b).size)))
        np.testing.assert_allclose(dense.mul(a, b), npp.polymul(a, b), rtol=1e-13, atol=1e-13)
        k = int(rng.integers(0, 5))
        np.testing.assert_allclose(dense.pow(a, k), npp.polypow(a, k), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dense.derivative(a), npp.polyder(a) if a.size > 1 else [0.0])
        np.testing.assert_allclose(
            dense.derivative(a, 2), npp.polyder(a, 2) if a.size > 2 else [0.0], rtol=1e-14
        )
        ts = rng.uniform(-3, 3, size=7)
        np.testing.assert_allclose(dense.polyval(a, ts), npp.polyval(ts, a), rtol=1e-12, atol=1e-12)
        assert isinstance(dense.polyval(a, 0.5), float)
        assert dense.polyval(a, 0.5) == pytest.approx(npp.polyval(0.5, a), rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(dense.neg(a), -a)


def test_output_lengths_are_natural_and_untrimmed():
    assert dense.add([1.0, 1.0], [0.0, -1.0]).tolist() == [1.0, 0.0]
    assert dense.mul([1.0, 0.0], [2.0, 0.0, 0.0]).tolist() == [2.0, 0.0, 0.0, 0.0]
    assert dense.pow([3.0, 1.0], 0).tolist() == [1.0]
    assert dense.derivative([7.0]).tolist() == [0.0]
    assert dense.rescale([1.0, 1.0, 1.0], -2.0).tolist() == [1.0, -2.0, 4.0]


def test_polyval_keeps_shape():
    c = [1.0, -1.0, 2.0]
    ts = np.arange(6.0).reshape(2, 3)
    assert dense.polyval(c, ts).shape == (2, 3)
    np.testing.assert_allclose(dense.polyval_compensated(c, ts), npp.polyval(ts, c))


# ------------------------------------------------------------ trim, degree
def test_trim_rule():
    eps = np.finfo(float).eps
    assert dense.trim([1.0, 2.0, 0.0, 0.0]).tolist() == [1.0, 2.0]
    assert dense.trim([0.0, 0.0, 0.0]).tolist() == [0.0]
    assert dense.trim([1.0, 3.0, 3.0 * 10 * eps]).tolist() == [1.0, 3.0]  # below 64 eps * max
    assert dense.trim([1.0, 3.0, 3.0 * 100 * eps]).size == 3  # above it
    assert dense.trim([1.0, 3.0, 1e-20], rtol=0.0).size == 3
    assert dense.trim([1e-30, 1e-30, 1e-300]).size == 2  # relative to max, not absolute
    assert dense.degree([5.0, 0.0, 0.0]) == 0
    assert dense.degree([1.0, 2.0, 3.0, 1e-17]) == 2
    assert dense.degree([1.0, 2.0, 3.0, 1e-17], rtol=0.0) == 3


# ------------------------------------------------------------- evaluation
def exact_value(c, t):
    s = Fraction(0)
    for ck in reversed(list(c)):
        s = s * Fraction(t) + Fraction(ck)
    return s


def test_compensated_horner_is_accurate_where_horner_is_not():
    c = dense.pow([-1.0, 1.0], 9)  # (t - 1)^9 expanded: cancellation near t = 1
    # |t - 1| >= 0.01 keeps cond = sum|c_k||t|^k / |p(t)| below ~1e21.
    ts = 1.0 + np.concatenate([np.linspace(-0.03, -0.01, 11), np.linspace(0.01, 0.03, 11)])
    naive_err = compensated_err = 0.0
    for t in ts:
        exact = exact_value(c, t)
        if exact == 0:
            continue
        comp = dense.polyval_compensated(c, t)
        naive = dense.polyval(c, t)
        compensated_err = max(compensated_err, abs(float((Fraction(comp) - exact) / exact)))
        naive_err = max(naive_err, abs(float((Fraction(naive) - exact) / exact)))
    assert naive_err > 1e-3  # plain Horner loses most digits here
    assert compensated_err < 1e-9  # about cond * eps**2


def test_compensated_horner_random_exactish():
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(50):
        c = rng.standard_normal(rng.integers(1, 9))
        t = float(rng.uniform(-2, 2))
        exact = exact_value(c, t)
        got = dense.polyval_compensated(c, t)
        assert abs(Fraction(got) - exact) <= 2 * np.finfo(float).eps * abs(exact) + Fraction(1, 10**300)


# -------------------------------------------------------------------- roots
def test_real_roots_match_numpy_on_separated_roots():
    rng = np.random.default_rng(1)
    for deg in range(1, 9):
        for _ in range(5):
            r = np.sort(rng.choice(np.arange(-20, 21), size=deg, replace=False) / 4.0)
            c = npp.polyfromroots(r) * 10.0 ** rng.uniform(-5, 5)
            got = dense.roots(c, real_only=True)
            np.testing.assert_allclose(got, r, rtol=1e-7, atol=1e-7)
            allr = dense.roots(c)
            np.testing.assert_allclose(np.sort(allr.real), np.sort(npp.polyroots(c).real), atol=1e-6)


def test_real_roots_skip_complex_ones():
    c = npp.polymul(npp.polyfromroots([-1.0, 2.0]), [1.0, 0.0, 1.0])  # (t+1)(t-2)(t^2+1)
    np.testing.assert_allclose(dense.roots(c, real_only=True), [-1.0, 2.0], atol=1e-12)
    assert dense.roots([5.0]).size == 0
    assert dense.roots([0.0, 0.0]).size == 0


def test_critical_points_closed_forms():
    # p' = 4t^3 - 4t: three real roots (trigonometric branch).
    np.testing.assert_allclose(dense.critical_points([0.0, 0.0, -2.0, 0.0, 1.0]), [-1.0, 0.0, 1.0], atol=1e-14)
    # p' = 4t^3 + 1: one real root (Cardano branch).
    np.testing.assert_allclose(dense.critical_points([0.0, 1.0, 0.0, 0.0, 1.0]), [-(0.25 ** (1 / 3))], rtol=1e-15)
    # p' = 3t^2 - 3: stable quadratic.
    np.testing.assert_allclose(dense.critical_points([0.0, -3.0, 0.0, 1.0]), [-1.0, 1.0], rtol=1e-15)
    # p' = 3t^2 + 1e8 t + 1: a formula without the stable form loses the small root.
    small, big = dense.critical_points([0.0, 1.0, 5e7, 1.0])
    assert small == pytest.approx(-1e8 / 3, rel=1e-12)
    assert big == pytest.approx(-1e-8, rel=1e-12)


def test_raw_closed_forms_before_polishing():
    # The closed forms on their own (Newton polishing would hide an unstable one).
    import mpmath

    import symnet.core.kernels.roots as _kernels

    out = np.empty(3)
    a = np.array([1.0, 1e8, 3.0])  # 3t^2 + 1e8 t + 1
    assert _kernels.quadratic_roots(a, out) == 2
    mpmath.mp.dps = 50
    disc = mpmath.sqrt(mpmath.mpf(10) ** 16 - 12)
    exact_small = float(2 / (-mpmath.mpf(10) ** 8 - disc))
    exact_big = float((-mpmath.mpf(10) ** 8 - disc) / 6)
    small = out[np.argmin(np.abs(out[:2]))]
    big = out[np.argmax(np.abs(out[:2]))]
    assert small == pytest.approx(exact_small, rel=4e-16)
    assert big == pytest.approx(exact_big, rel=4e-16)
    # Trigonometric branch: (t - 1)(t - 2)(t - 3).
    assert _kernels.cubic_roots(np.array([-6.0, 11.0, -6.0, 1.0]), out) == 3
    np.testing.assert_allclose(np.sort(out), [1.0, 2.0, 3.0], rtol=1e-14)
    # Cardano branch: t^3 + t + 1 has one real root.
    assert _kernels.cubic_roots(np.array([1.0, 1.0, 0.0, 1.0]), out) == 1
    exact = float(mpmath.findroot(lambda x: x**3 + x + 1, -0.68))
    assert out[0] == pytest.approx(exact, rel=1e-14)


def test_critical_points_reject_near_real_complex_pairs_and_keep_double_roots():
    # p' = ((t - 1)^2 + 2.5e-7)(t - 4)(t + 3)(t - 6): the pair 1 +- 5e-4 i passes
    # the loose imaginary-part filter, Newton cannot improve on t = 1, and the
    # residual test rejects it.
    d = npp.polymul(npp.polymul([1.0 + 2.5e-7, -2.0, 1.0], npp.polyfromroots([4.0, -3.0])), [-6.0, 1.0])
    c = npp.polyint(d)
    np.testing.assert_allclose(dense.critical_points(c), [-3.0, 4.0, 6.0], rtol=1e-12)
    # p' = (t - r)^2 (t + 2)(t - 3)(t - 4): the double root comes back from the
    # eigen solver as a pair with imaginary parts ~1e-8 (for these r), which the
    # filter lets through.
    for r in (0.7, -1.5, 0.1):
        c = npp.polyint(npp.polyfromroots([r, r, -2.0, 3.0, 4.0]))
        crit = dense.critical_points(c)
        assert np.any(np.abs(crit - r) < 1e-6), (r, crit)
        for simple in (-2.0, 3.0, 4.0):
            assert np.any(np.abs(crit - simple) < 1e-12)


# ---------------------------------------------------------------- minimize
@pytest.mark.parametrize("deg", [2, 4, 6, 8])
def test_minimize_random_bounded_vs_brute_force(deg):
    rng = np.random.default_rng(RNG_SEED + deg)
    for _ in range(12):
        c = random_poly(rng, deg)
        assert dense.degree(c) == deg
        t, v, info = check_against_oracle(c)
        assert not info["unbounded"]
        assert info["degree"] == deg
        assert info["method"] == ("closed-form" if deg <= 4 else "eigen")


@pytest.mark.parametrize("deg", [3, 5, 7, 4, 6])
def test_minimize_random_unbounded_returns_best_critical_point(deg):
    rng = np.random.default_rng(RNG_SEED + 100 + deg)
    for _ in range(8):
        c = random_poly(rng, deg, lead_sign=1.0 if deg % 2 else -1.0)
        t, v, info = check_against_oracle(c)
        assert info["unbounded"]


def test_minimize_cubic_derivative_one_and_three_real_roots():
    t, v, info = dense.minimize([0.0, 1.0, 0.0, 0.0, 1.0])  # t^4 + t
    t_exact = -(0.25 ** (1.0 / 3.0))
    assert t == pytest.approx(t_exact, rel=1e-15)
    assert v == pytest.approx(t_exact**4 + t_exact, rel=1e-15)
    assert info["roots"].size == 1
    t, v, info = dense.minimize([0.0, 0.3, -2.0, 0.0, 1.0])  # t^4 - 2t^2 + 0.3t: 3 real roots
    assert info["roots"].size == 3
    check_against_oracle([0.0, 0.3, -2.0, 0.0, 1.0])
    t, v, info = dense.minimize([0.0, 0.0, -2.0, 0.0, 1.0])  # symmetric double well
    assert abs(t) == pytest.approx(1.0, rel=1e-15) and v == -1.0


def test_minimize_tiny_leading_coefficient_is_trimmed_to_a_cubic():
    cubic = np.array([1.0, -3.0, -1.0, 1.0])  # local min at t = (1 + 2)/... of the cubic
    c = np.append(cubic, 1e-17)
    t, v, info = dense.minimize(c)
    assert info["degree"] == 3 and info["unbounded"]
    # p'(t) = 3t^2 - 2t - 3 = 0 -> t = (1 + sqrt(10)) / 3 is the local minimum.
    t_min = (1.0 + np.sqrt(10.0)) / 3.0
    assert t == pytest.approx(t_min, rel=1e-14)
    assert v == pytest.approx(npp.polyval(t_min, c), rel=1e-14)
    # With rtol=0 the quartic is kept and its far-away global minimum wins.
    t_far, v_far, info_far = dense.minimize(c, rtol=0.0)
    assert info_far["degree"] == 4 and not info_far["unbounded"]
    assert t_far < -1e16 and v_far < v


def test_minimize_small_but_real_leading_coefficient():
    rng = np.random.default_rng(7)
    for lead in (1e-9, 1e-6, 1e-3):
        c = np.append(rng.standard_normal(4), lead)
        assert dense.degree(c) == 4
        check_against_oracle(c)


def test_minimize_double_roots():
    rng = np.random.default_rng(11)
    for _ in range(10):
        a, b = np.sort(rng.uniform(-5, 5, size=2))
        k = 10.0 ** rng.uniform(-6, 6)
        c = k * npp.polyfromroots([a, a, b, b])
        t, v, info = check_against_oracle(c, check_t=False)
        assert v <= 1e-13 * abs_scale(c, t)
        assert min(abs(t - a), abs(t - b)) <= 1e-6 * (1 + abs(t))
        # a double root in a sextic: (t-a)^2 (t-b)^2 ((t-1)^2 + 1)
        c6 = npp.polymul(c, [2.0, -2.0, 1.0])
        t6, v6, _ = check_against_oracle(c6, check_t=False)
        assert v6 <= 1e-13 * abs_scale(c6, t6)


@pytest.mark.parametrize("power", [4, 6, 8])
def test_minimize_flat_minimum(power):
    c = dense.pow([-1.5, 1.0], power)  # (t - 1.5)^power
    t, v, info = check_against_oracle(c, check_t=False)
    assert v <= 1e-14 * abs_scale(c, 1.5)
    assert abs(t - 1.5) < 0.05


def test_minimize_constant_linear_and_zero():
    assert dense.minimize([4.0])[:2] == (0.0, 4.0)
    assert dense.minimize([0.0, 0.0, 0.0])[:2] == (0.0, 0.0)
    t, v, info = dense.minimize([2.0, -1.0])
    assert (t, v, info["unbounded"], info["degree"]) == (0.0, 2.0, True, 1)
    t, v, info = dense.minimize([2.0, -1.0], t0=3.0)
    assert (t, v, info["value_at_t0"]) == (3.0, -1.0, -1.0)


def test_minimize_at_zero_exactly_and_ties_go_to_zero():
    rng = np.random.default_rng(3)
    for _ in range(10):
        q = npp.polymul(rng.standard_normal(3), rng.standard_normal(3))
        q = npp.polyadd(npp.polymul(q, q), [0.5])  # q > 0 everywhere
        c = npp.polyadd([rng.standard_normal()], npp.polymul([0.0, 0.0, 1.0], q))  # c0 + t^2 q
        t, v, info = dense.minimize(c)
        assert t == 0.0 and v == c[0] and info["decrease"] == 0.0
    # p = 5 + t^2 (t - 1)^2: equal minima at 0 and 1; 0 wins the tie.
    t, v, info = dense.minimize([5.0, 0.0, 1.0, -2.0, 1.0])
    assert (t, v) == (0.0, 5.0)
    assert np.any(np.abs(info["roots"] - 1.0) < 1e-12)


@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8])
def test_minimize_is_invariant_to_value_scale(scale):
    rng = np.random.default_rng(5)
    for _ in range(5):
        c = random_poly(rng, 4)
        t1, v1, _ = dense.minimize(c)
        t2, v2, _ = dense.minimize(scale * c)
        assert t2 == pytest.approx(t1, rel=1e-12, abs=1e-300)
        assert v2 == pytest.approx(scale * v1, rel=1e-12)


def test_minimize_plain_horner_option_and_t0():
    c = [1.0, -2.0, 1.0, 0.3, 0.2]
    t_c, v_c, _ = dense.minimize(c)
    t_p, v_p, _ = dense.minimize(c, compensated=False)
    assert t_c == t_p and v_p == pytest.approx(v_c, rel=1e-14)
    # The reference point wins when nothing is strictly lower.
    t_star = t_c
    t, v, info = dense.minimize(c, t0=t_star)
    assert t == t_star and info["decrease"] == 0.0


def test_never_above_value_at_zero_on_many_random_polys():
    rng = np.random.default_rng(99)
    for _ in range(300):
        deg = int(rng.integers(0, 9))
        c = rng.standard_normal(deg + 1) * 10.0 ** rng.uniform(-8, 8, size=deg + 1)
        t, v, info = dense.minimize(c)
        assert v <= c[0]
        assert v == pytest.approx(npp.polyval(t, c), rel=1e-10, abs=1e-10 * abs_scale(c, t))


# ----------------------------------------------------------- minimize_many
def test_minimize_many_matches_minimize_row_by_row():
    rng = np.random.default_rng(17)
    rows = []
    for i in range(400):
        deg = int(rng.integers(0, 7))
        c = np.zeros(7)
        c[: deg + 1] = rng.standard_normal(deg + 1) * 10.0 ** rng.uniform(-4, 4)
        if i % 7 == 0:
            c[deg] = abs(c[deg]) * 1e-17  # negligible leading coefficient
        if i % 11 == 0:
            c[1] = 0.0  # minimum at 0 when the rest is convex enough
        rows.append(c)
    rows.append(dense.pow([-1.0, 1.0], 6))
    rows.append(npp.polyfromroots([1.0, 1.0, -2.0, -2.0]).tolist() + [0.0, 0.0])
    C = np.array(rows)
    t_many, v_many = dense.minimize_many(C)
    assert t_many.shape == v_many.shape == (C.shape[0],)
    for i, c in enumerate(C):
        t, v, _ = dense.minimize(c)
        assert t_many[i] == t and v_many[i] == v, i
        assert v <= c[0]


def test_minimize_many_against_brute_force():
    rng = np.random.default_rng(23)
    C = np.array([random_poly(rng, 6) for _ in range(6)] + [np.append(random_poly(rng, 4), [0, 0]) for _ in range(6)])
    t_many, v_many = dense.minimize_many(C)
    for i, c in enumerate(C):
        v_o, t_o = brute_force_candidates(c)[0]
        assert v_many[i] == pytest.approx(v_o, rel=1e-10, abs=1e-10 * abs_scale(c, t_o))


def test_minimize_many_shapes_and_options():
    t, v = dense.minimize_many(np.zeros((0, 5)))
    assert t.shape == (0,) and v.shape == (0,)
    t, v = dense.minimize_many([[3.0], [1.0]])
    assert t.tolist() == [0.0, 0.0] and v.tolist() == [3.0, 1.0]
    C = np.asfortranarray([[1.0, -2.0, 1.0], [0.0, 1.0, 0.0]])
    t, v = dense.minimize_many(C, t0=0.5)
    assert t.tolist() == [1.0, 0.5] and v.tolist() == [0.0, 0.5]


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "bad",
    [[], [np.nan, 1.0], [1.0, np.inf], [[1.0, 2.0]], [1 + 2j], ["a", "b"], np.zeros((2, 2))],
)
def test_bad_coefficients_raise_data_error(bad):
    with pytest.raises(DataError):
        dense.minimize(bad)
    with pytest.raises(DataError):
        dense.trim(bad)


def test_bad_arguments_raise_data_error():
    with pytest.raises(DataError):
        dense.pow([1.0, 1.0], -1)
    with pytest.raises(DataError):
        dense.pow([1.0, 1.0], 1.5)
    with pytest.raises(DataError):
        dense.derivative([1.0, 1.0], -1)
    with pytest.raises(DataError):
        dense.trim([1.0], rtol=-1.0)
    with pytest.raises(DataError):
        dense.minimize([1.0, 1.0], t0=np.nan)
    with pytest.raises(DataError, match="rows"):
        dense.minimize_many([[1.0, np.nan]])
    with pytest.raises(DataError):
        dense.minimize_many([1.0, 2.0])
    with pytest.raises(DataError):
        dense.rescale([1.0], 0.0)
