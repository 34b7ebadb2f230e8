"""Numba kernels behind :mod:`symnet.core.roots.dense`.

Typed arrays in, plain scalars or tuples out; no validation here (the
callers in ``dense.py`` validate). Coefficient arrays are float64 with the
lowest degree first: ``c[k]`` multiplies ``t**k``; ``n`` is the number of
leading entries of ``c`` that are in use (the trimmed length).

Real roots come from closed forms up to degree 3 and from the eigenvalues of
the companion matrix above that, computed by LAPACK's real ``dgeev`` (which
balances the matrix first). It is called directly through scipy's
``cython_lapack`` because numba's ``np.linalg.eigvals`` refuses a real matrix
with complex eigenvalues, and the complex ``zgeev`` loses what matters here:
real arithmetic returns conjugate pairs, so a cluster of an odd number of
roots (a sign change of the polynomial, e.g. the flat minimum of
``(t - 1)**8``) always yields at least one eigenvalue with imaginary part
exactly zero. The external symbol is registered by name, which keeps the
kernels cacheable. Every candidate root is then polished with Newton steps
(stopped as soon as a step does not shrink the residual) and kept only if its
residual is small in the backward sense (see :func:`is_root`).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import binding as _llvm
from numba import types as _types
from numba.extending import get_cython_function_address as _cython_address

# dgeev(jobvl, jobvr, n, a, lda, wr, wi, vl, ldvl, vr, ldvr, work, lwork, info),
# every argument a pointer (Fortran calling convention).
_llvm.add_symbol("symnet_polynomial_dgeev", _cython_address("scipy.linalg.cython_lapack", "dgeev"))
_dgeev = _types.ExternalFunction("symnet_polynomial_dgeev", _types.void(*([_types.voidptr] * 14)))

#: Veltkamp's splitting constant 2**27 + 1 for the error-free product.
_SPLITTER = 134217729.0
#: An eigenvalue z is taken as a candidate real root when
#: |Im z| <= _IMAG_RTOL * |z| + _IMAG_FLOOR * max|z|. Generous on purpose:
#: a root of even multiplicity m comes back as pairs with imaginary parts of
#: order eps**(1/m); false candidates are removed by the residual test after
#: polishing.
_IMAG_RTOL = 1e-3
_IMAG_FLOOR = 1e-7
#: A polished point x is a root when |q(x)| <= _ROOT_RTOL * sum_k |q_k| |x|^k,
#: i.e. it is an exact root of a polynomial whose coefficients differ from
#: q's by at most this relative amount.
_ROOT_RTOL = 1.5e-8
#: Newton polishing stops earlier when a step no longer shrinks |q(x)|.
_NEWTON_MAXIT = 60
#: Polished roots this close (relative) are one root.
_SAME_ROOT_RTOL = 8.0 * 2.220446049250313e-16
#: A discriminant this close to zero (relative to its terms) also yields the
#: double root it would have had without rounding; the residual test decides.
_DISC_RTOL = 64.0 * 2.220446049250313e-16


@nb.njit(cache=True)
def trimmed_length(c, rtol):
    """Number of coefficients kept after dropping negligible leading ones.

    numpy: ``n = len(c); while n > 1 and abs(c[n-1]) <= rtol * abs(c).max(): n -= 1``
    """
    cmax = 0.0
    for k in range(c.shape[0]):
        a = abs(c[k])
        if a > cmax:
            cmax = a
    threshold = rtol * cmax
    n = c.shape[0]
    while n > 1 and abs(c[n - 1]) <= threshold:
        n -= 1
    return n


@nb.njit(cache=True)
def horner(c, n, t):
    """Value of ``c[:n]`` at ``t`` by Horner's rule (float64)."""
    # numpy: np.polynomial.polynomial.polyval(t, c[:n])
    s = c[n - 1]
    for k in range(n - 2, -1, -1):
        s = s * t + c[k]
    return s


@nb.njit(cache=True)
def horner_with_derivative(c, n, t):
    """Values of ``c[:n]`` and of its derivative at ``t`` in one Horner pass."""
    s = c[n - 1]
    ds = 0.0
    for k in range(n - 2, -1, -1):
        ds = ds * t + s
        s = s * t + c[k]
    return s, ds


@nb.njit(cache=True)
def abs_horner(c, n, t):
    """``sum_k |c_k| |t|^k``: the scale of the rounding error of :func:`horner`."""
    at = abs(t)
    s = abs(c[n - 1])
    for k in range(n - 2, -1, -1):
        s = s * at + abs(c[k])
    return s


@nb.njit(cache=True)
def _two_sum(a, b):
    # Knuth's error-free sum: a + b == s + e exactly.
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@nb.njit(cache=True)
def _split(a):
    # Veltkamp split: a == hi + lo with hi, lo of 26 significant bits.
    z = _SPLITTER * a
    hi = z - (z - a)
    return hi, a - hi


@nb.njit(cache=True)
def _two_product(a, b):
    # Dekker's error-free product: a * b == p + e exactly (no overflow assumed).
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    e = al * bl - (((p - ah * bh) - al * bh) - ah * bl)
    return p, e


@nb.njit(cache=True)
def horner_compensated(c, n, t):
    """Compensated Horner (Graillat, Langlois, Louvet 2005).

    As accurate as Horner in twice the working precision: the relative error
    is about eps + cond * eps**2 instead of cond * eps.
    """
    s = c[n - 1]
    err = 0.0
    for k in range(n - 2, -1, -1):
        p, pi = _two_product(s, t)
        s, sigma = _two_sum(p, c[k])
        err = err * t + (pi + sigma)
    return s + err


@nb.njit(cache=True)
def polyval_compensated_array(c, ts):
    """Compensated Horner at every entry of the 1-D array ``ts``."""
    out = np.empty(ts.shape[0])
    n = c.shape[0]
    for i in range(ts.shape[0]):
        out[i] = horner_compensated(c, n, ts[i])
    return out


@nb.njit(cache=True)
def is_root(q, n, x):
    """True when ``x`` is a root of ``q[:n]`` up to a tiny backward error."""
    r = horner(q, n, x)
    return abs(r) <= _ROOT_RTOL * abs_horner(q, n, x)


@nb.njit(cache=True)
def newton_polish(q, n, x):
    """Newton steps on ``q[:n]`` from ``x`` while each step shrinks |q|."""
    fx, dfx = horner_with_derivative(q, n, x)
    for _ in range(_NEWTON_MAXIT):
        if fx == 0.0 or dfx == 0.0:
            break
        xn = x - fx / dfx
        if not math.isfinite(xn):
            break
        fn, dfn = horner_with_derivative(q, n, xn)
        if abs(fn) < abs(fx):
            x = xn
            fx = fn
            dfx = dfn
        else:
            break
    return x


@nb.njit(cache=True)
def linear_roots(a, out):
    out[0] = -a[0] / a[1]
    return 1


@nb.njit(cache=True)
def quadratic_roots(a, out):
    # Stable form: q = -(b + sign(b) sqrt(disc)) / 2, roots q/a2 and a0/q;
    # never subtracts nearly equal numbers.
    a0 = a[0]
    a1 = a[1]
    a2 = a[2]
    disc = a1 * a1 - 4.0 * a2 * a0
    if disc < 0.0:
        if -disc <= _DISC_RTOL * (a1 * a1 + abs(4.0 * a2 * a0)):
            out[0] = -a1 / (2.0 * a2)
            return 1
        return 0
    q = -0.5 * (a1 + math.copysign(math.sqrt(disc), a1))
    if q == 0.0:
        out[0] = 0.0
        return 1
    out[0] = q / a2
    out[1] = a0 / q
    return 2


@nb.njit(cache=True)
def cubic_roots(a, out):
    # Depressed cubic x^3 + p x + q with t = x - A/3.
    A = a[2] / a[3]
    B = a[1] / a[3]
    C = a[0] / a[3]
    shift = -A / 3.0
    p = B - A * A / 3.0
    q = (2.0 * A * A * A) / 27.0 - (A * B) / 3.0 + C
    half_q = 0.5 * q
    third_p = p / 3.0
    cube = third_p * third_p * third_p
    disc = half_q * half_q + cube
    if disc > 0.0:
        # One real root (Cardano), sign chosen so that no cancellation occurs.
        u = -math.copysign((abs(half_q) + math.sqrt(disc)) ** (1.0 / 3.0), q)
        x = u - p / (3.0 * u)
        out[0] = x + shift
        if disc <= _DISC_RTOL * (half_q * half_q + abs(cube)):
            # Nearly a double root that rounding pushed off the real line:
            # the three roots of a depressed cubic sum to zero.
            out[1] = -0.5 * x + shift
            return 2
        return 1
    if p == 0.0:
        out[0] = shift
        return 1
    # Three real roots (trigonometric method).
    m = 2.0 * math.sqrt(-third_p)
    arg = (3.0 * q / (2.0 * p)) * math.sqrt(-3.0 / p)
    if arg > 1.0:
        arg = 1.0
    elif arg < -1.0:
        arg = -1.0
    theta = math.acos(arg) / 3.0
    for k in range(3):
        out[k] = m * math.cos(theta - 2.0 * math.pi * k / 3.0) + shift
    return 3


@nb.njit(cache=True)
def companion_eigenvalues(a, n):
    """Eigenvalues ``(re, im)`` of the companion matrix of ``a[:n]`` (LAPACK dgeev).

    Eigenvalues the QR iteration failed to converge are left out.
    """
    # numpy: z = np.linalg.eigvals(companion(a[:n]))
    deg = n - 1
    # Fortran (column-major) storage: element (i, j) lives at fortran[j, i].
    fortran = np.zeros((deg, deg))
    for i in range(1, deg):
        fortran[i - 1, i] = 1.0  # subdiagonal (i, i - 1)
    for i in range(deg):
        fortran[deg - 1, i] = -a[i] / a[deg]  # last column
    jobs = np.full(1, ord("N"), dtype=np.uint8)
    ints = np.array([deg, deg, 1, 1, 8 * deg, 0], dtype=np.int32)
    wr = np.empty(deg)
    wi = np.empty(deg)
    unused = np.empty(1)
    work = np.empty(8 * deg)
    _dgeev(
        jobs.ctypes, jobs.ctypes, ints[0:1].ctypes, fortran.ctypes, ints[1:2].ctypes,
        wr.ctypes, wi.ctypes, unused.ctypes, ints[2:3].ctypes, unused.ctypes, ints[3:4].ctypes,
        work.ctypes, ints[4:5].ctypes, ints[5:6].ctypes,
    )
    info = ints[5]
    if info > 0:  # only wr[info:], wi[info:] converged
        return wr[info:].copy(), wi[info:].copy()
    if info < 0:
        return np.empty(0), np.empty(0)
    return wr, wi


@nb.njit(cache=True)
def eigen_roots(a, n, out):
    # numpy: z = np.linalg.eigvals(companion(a)); keep nearly real z, take Re z
    wr, wi = companion_eigenvalues(a, n)
    zmax = 0.0
    for i in range(wr.shape[0]):
        m = math.hypot(wr[i], wi[i])
        if m > zmax:
            zmax = m
    count = 0
    for i in range(wr.shape[0]):
        if abs(wi[i]) <= _IMAG_RTOL * math.hypot(wr[i], wi[i]) + _IMAG_FLOOR * zmax:
            out[count] = wr[i]
            count += 1
    return count


@nb.njit(cache=True)
def real_roots(q, n):
    """Distinct real roots of ``q[:n]`` (``q[n-1] != 0``), polished, verified, sorted.

    Closed forms for degree <= 3, companion eigenvalues above. Roots where
    ``q`` changes sign are always searched for; a root of even multiplicity
    (no sign change) is usually found but may be missed, or come back as two
    points a rounding-sized distance apart.
    """
    deg = n - 1
    if deg <= 0:
        return np.empty(0)
    # Scale by a power of two (exact) to max-norm in [0.5, 1) so squares and
    # cubes of the coefficients stay in range.
    qmax = 0.0
    for k in range(n):
        if abs(q[k]) > qmax:
            qmax = abs(q[k])
    exponent = math.frexp(qmax)[1]
    a = np.empty(n)
    for k in range(n):
        a[k] = math.ldexp(q[k], -exponent)
    raw = np.empty(max(deg, 2))
    if deg == 1:
        count = linear_roots(a, raw)
    elif deg == 2:
        count = quadratic_roots(a, raw)
    elif deg == 3:
        count = cubic_roots(a, raw)
    else:
        count = eigen_roots(a, n, raw)
    out = np.empty(count)
    kept = 0
    for i in range(count):
        x = raw[i]
        if not math.isfinite(x):
            continue
        x = newton_polish(a, n, x)
        if is_root(a, n, x):
            out[kept] = x
            kept += 1
    found = np.sort(out[:kept])
    # Starting points that polish onto the same root are reported once.
    distinct = 0
    for i in range(kept):
        x = found[i]
        if distinct == 0 or x - found[distinct - 1] > _SAME_ROOT_RTOL * max(abs(x), abs(found[distinct - 1])):
            found[distinct] = x
            distinct += 1
    return found[:distinct]


@nb.njit(cache=True)
def critical_points(c, n):
    """Real roots of the derivative of ``c[:n]`` (see :func:`real_roots`)."""
    if n <= 2:
        return np.empty(0)
    # numpy: d = c[1:n] * np.arange(1, n)
    d = np.empty(n - 1)
    for k in range(1, n):
        d[k - 1] = k * c[k]
    return real_roots(d, n - 1)


@nb.njit(cache=True)
def minimize_row(c, rtol, t0, compensated):
    """Lowest of ``c`` at ``t0`` and at every real critical point of the trimmed polynomial.

    Returns ``(t_star, value, value_at_t0, critical_points, trimmed_length)``.
    Values are taken on the full ``c``; ``t0`` wins ties.
    """
    full = c.shape[0]
    n = trimmed_length(c, rtol)
    roots = critical_points(c, n)
    if compensated:
        v0 = horner_compensated(c, full, t0)
    else:
        v0 = horner(c, full, t0)
    best_t = t0
    best_v = v0
    for i in range(roots.shape[0]):
        r = roots[i]
        if compensated:
            v = horner_compensated(c, full, r)
        else:
            v = horner(c, full, r)
        if v < best_v:
            best_v = v
            best_t = r
    return best_t, best_v, v0, roots, n


@nb.njit(cache=True, parallel=True)
def minimize_rows(C, rtol, t0, compensated):
    """:func:`minimize_row` for every row of the 2-D array ``C``; returns ``(t, value)``."""
    m = C.shape[0]
    t_star = np.empty(m)
    value = np.empty(m)
    for i in nb.prange(m):
        res = minimize_row(C[i], rtol, t0, compensated)
        t_star[i] = res[0]
        value[i] = res[1]
    return t_star, value
