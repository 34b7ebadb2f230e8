"""Dense univariate polynomials as raw coefficient arrays.

The lowest tier of :mod:`symnet.core.roots`: plain functions on 1-D float64
arrays with the LOWEST degree first, ``c[k]`` multiplies ``t**k`` (the
convention of :mod:`numpy.polynomial.polynomial`). The arithmetic keeps the
natural output length (``add`` -> the longer length, ``mul`` -> ``len(a) +
len(b) - 1``) and never trims; call :func:`trim` for that.

The routine the exact solvers live on is :func:`minimize`: the global minimum
of a polynomial on the real line, found among the real roots of its
derivative, and :func:`minimize_many`, the same for many rows at once.

Trimming rule:
    A leading coefficient is negligible when ``|c_k| <= rtol * max_j |c_j|``;
    :func:`trim` drops such coefficients from the top until one is not
    negligible (always keeping ``c[0]``). The default ``rtol`` is
    :data:`TRIM_RTOL` = ``64 * eps`` (about 1.4e-14): coefficients accumulated
    as sums over a dataset carry rounding errors of a few hundred ulps of the
    largest term, so a leading coefficient below that level is noise, and
    keeping it would put a spurious far-away minimum (or a spurious bounded
    shape) on the polynomial. Pass ``rtol=0.0`` to drop exact zeros only.
    The rule compares coefficients at ``|t| = 1``; a caller working at a very
    different step scale ``s`` should minimise the polynomial of ``t / s``
    (see :func:`rescale`).

Example:
    >>> import numpy as np
    >>> from symnet.core.roots import dense
    >>> c = dense.mul([-1.0, 1.0], [-1.0, 1.0])     # (t - 1)^2
    >>> c.tolist()
    [1.0, -2.0, 1.0]
    >>> t, value, info = dense.minimize(dense.add(c, [0.0, 0.0, 0.0, 0.0, 1e-30]))
    >>> round(t, 12), round(value, 12), info["degree"], info["unbounded"]
    (1.0, 0.0, 2, False)
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from symnet.core.errors import DataError
import symnet.core.kernels.roots as _k

#: Default relative threshold of :func:`trim` (see the module docstring).
TRIM_RTOL = 64.0 * np.finfo(np.float64).eps

__all__ = [
    "TRIM_RTOL",
    "as_coeffs",
    "trim",
    "degree",
    "add",
    "sub",
    "neg",
    "mul",
    "pow",
    "derivative",
    "rescale",
    "polyval",
    "polyval_compensated",
    "roots",
    "critical_points",
    "is_unbounded_below",
    "minimize",
    "minimize_many",
]


# --------------------------------------------------------------- validation
def as_coeffs(c: Any, name: str = "c") -> np.ndarray:
    """Validate ``c`` and return it as a 1-D float64 array (a copy only if needed).

    Raises:
        DataError: ``c`` is not a non-empty 1-D sequence of finite real numbers.

    Example:
        >>> as_coeffs([1, 2]).dtype
        dtype('float64')
    """
    if isinstance(c, np.ndarray) and c.dtype == np.float64 and c.ndim == 1:
        arr = c
    else:
        try:
            arr = np.asarray(c)
        except Exception as exc:  # ragged lists and the like
            raise DataError(
                f"{name} must be a 1-D sequence of real coefficients (lowest degree first); "
                f"could not convert it to an array ({exc}). Pass a list or 1-D numpy array of floats."
            ) from None
        if arr.dtype.kind == "c":
            raise DataError(
                f"{name} has complex coefficients; only real polynomials are supported. "
                "Pass the real part (np.real(c)) if the imaginary part is zero."
            )
        if arr.dtype.kind not in "biuf":
            raise DataError(
                f"{name} must hold real numbers, got dtype {arr.dtype}. Pass a float array, "
                "e.g. np.asarray(c, dtype=float)."
            )
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim != 1:
        raise DataError(
            f"{name} must be 1-D (coefficients lowest degree first), got shape {arr.shape}. "
            "Pass one polynomial at a time, or use minimize_many for a 2-D batch."
        )
    if arr.shape[0] == 0:
        raise DataError(f"{name} is empty; pass at least one coefficient ([0.0] is the zero polynomial).")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or infinity; pass finite coefficients.")
    return arr


def _check_rtol(rtol: float) -> float:
    rtol = float(rtol)
    if not (rtol >= 0.0 and np.isfinite(rtol)):
        raise DataError(f"rtol must be a finite number >= 0, got {rtol}; use e.g. rtol=dense.TRIM_RTOL.")
    return rtol


# ----------------------------------------------------------------- structure
def trim(c: Any, rtol: float = TRIM_RTOL) -> np.ndarray:
    """Drop negligible leading coefficients (see the module docstring for the rule).

    Args:
        c: coefficients, lowest degree first.
        rtol: a leading ``c_k`` with ``|c_k| <= rtol * max|c|`` is dropped;
            ``0.0`` drops exact zeros only.

    Returns:
        A new array of length >= 1.

    Example:
        >>> trim([1.0, 2.0, 1e-20]).tolist()
        [1.0, 2.0]
        >>> trim([0.0, 0.0]).tolist()
        [0.0]
    """
    arr = as_coeffs(c)
    n = _k.trimmed_length(arr, _check_rtol(rtol))
    return arr[:n].copy()


def degree(c: Any, rtol: float = TRIM_RTOL) -> int:
    """Degree after :func:`trim` (the zero polynomial has degree 0).

    Example:
        >>> degree([1.0, 0.0, 3.0, 0.0])
        2
    """
    arr = as_coeffs(c)
    return int(_k.trimmed_length(arr, _check_rtol(rtol))) - 1


# ---------------------------------------------------------------- arithmetic
def add(a: Any, b: Any) -> np.ndarray:
    """Sum of two polynomials; length ``max(len(a), len(b))``.

    Example:
        >>> add([1.0, 2.0], [0.0, 0.0, 3.0]).tolist()
        [1.0, 2.0, 3.0]
    """
    a = as_coeffs(a, "a")
    b = as_coeffs(b, "b")
    out = np.zeros(max(a.shape[0], b.shape[0]))
    out[: a.shape[0]] += a
    out[: b.shape[0]] += b
    return out


def neg(c: Any) -> np.ndarray:
    """``-c`` as a new array.

    Example:
        >>> neg([1.0, -2.0]).tolist()
        [-1.0, 2.0]
    """
    return -as_coeffs(c)


def sub(a: Any, b: Any) -> np.ndarray:
    """Difference ``a - b``; length ``max(len(a), len(b))``.

    Example:
        >>> sub([1.0, 2.0], [1.0]).tolist()
        [0.0, 2.0]
    """
    return add(a, neg(as_coeffs(b, "b")))


def mul(a: Any, b: Any) -> np.ndarray:
    """Product; length ``len(a) + len(b) - 1``.

    Example:
        >>> mul([1.0, 1.0], [1.0, 1.0]).tolist()
        [1.0, 2.0, 1.0]
    """
    return np.convolve(as_coeffs(a, "a"), as_coeffs(b, "b"))


def pow(c: Any, n: int) -> np.ndarray:  # noqa: A001 - mirrors the arithmetic name
    """``c ** n`` for an integer ``n >= 0`` by repeated squaring.

    Raises:
        DataError: ``n`` is negative or not an integer.

    Example:
        >>> pow([1.0, 1.0], 3).tolist()
        [1.0, 3.0, 3.0, 1.0]
    """
    c = as_coeffs(c)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise DataError(
            f"polynomial power needs an integer exponent >= 0, got {n!r}; "
            "negative or fractional powers are not polynomials."
        )
    n = int(n)
    result = np.ones(1)
    base = c
    while n:
        if n & 1:
            result = np.convolve(result, base)
        n >>= 1
        if n:
            base = np.convolve(base, base)
    return result


def derivative(c: Any, m: int = 1) -> np.ndarray:
    """``m``-th derivative; length ``max(len(c) - m, 1)``.

    Example:
        >>> derivative([5.0, 1.0, 1.0, 1.0]).tolist()
        [1.0, 2.0, 3.0]
        >>> derivative([5.0]).tolist()
        [0.0]
    """
    c = as_coeffs(c)
    if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 0:
        raise DataError(f"derivative order must be an integer >= 0, got {m!r}.")
    out = c.copy()
    for _ in range(int(m)):
        if out.shape[0] == 1:
            return np.zeros(1)
        out = out[1:] * np.arange(1, out.shape[0])
    return out


def rescale(c: Any, s: float) -> np.ndarray:
    """Coefficients of ``u -> p(s * u)``: ``c[k] * s**k``.

    Useful before :func:`trim` or :func:`minimize` when the natural step scale
    is far from 1 (the minimiser of the result is ``t_star / s``).

    Example:
        >>> rescale([1.0, 1.0, 1.0], 2.0).tolist()
        [1.0, 2.0, 4.0]
    """
    c = as_coeffs(c)
    s = float(s)
    if not np.isfinite(s) or s == 0.0:
        raise DataError(f"rescale factor must be finite and nonzero, got {s}.")
    return c * s ** np.arange(c.shape[0])


# ---------------------------------------------------------------- evaluation
def polyval(c: Any, t: Any) -> Any:
    """Horner evaluation at a scalar or an array of ``t`` (float64).

    Returns a Python float for a scalar ``t``, else an array of ``t``'s shape.

    Example:
        >>> polyval([1.0, 2.0, 3.0], 2.0)
        17.0
        >>> polyval([1.0, 2.0, 3.0], [0.0, 1.0]).tolist()
        [1.0, 6.0]
    """
    c = as_coeffs(c)
    t_arr = np.asarray(t, dtype=np.float64)
    # The loop runs over coefficients (degree + 1 steps), vectorised over t.
    s = np.full(t_arr.shape, c[-1])
    for k in range(c.shape[0] - 2, -1, -1):
        s = s * t_arr + c[k]
    return float(s) if t_arr.ndim == 0 else s


def polyval_compensated(c: Any, t: Any) -> Any:
    """Compensated Horner evaluation: as if computed in twice the precision.

    Error-free transformations (Knuth's TwoSum, Dekker's TwoProduct) carry the
    rounding error of every Horner step into a correction term, so the result
    is accurate to about ``eps + cond * eps**2`` relative, where Horner gives
    ``cond * eps``. Intermediate products must not overflow (``|value| < 1e300``).

    Example:
        >>> c = pow([-1.0, 1.0], 7)           # (t - 1)^7, badly conditioned near 1
        >>> abs(polyval_compensated(c, 1.001) - 1e-21) < 1e-27
        True
    """
    c = as_coeffs(c)
    t_arr = np.asarray(t, dtype=np.float64)
    flat = np.ascontiguousarray(t_arr.reshape(-1))
    out = _k.polyval_compensated_array(np.ascontiguousarray(c), flat)
    return float(out[0]) if t_arr.ndim == 0 else out.reshape(t_arr.shape)


# --------------------------------------------------------------------- roots
def roots(c: Any, *, real_only: bool = False, rtol: float = 0.0) -> np.ndarray:
    """Roots of the polynomial after :func:`trim` with ``rtol``.

    Args:
        c: coefficients, lowest degree first.
        real_only: return only the distinct real roots (closed forms up to
            degree 3, companion eigenvalues above, all Newton-polished and
            verified), sorted ascending, as float64. Roots where the sign
            changes are always searched for; a root of even multiplicity is
            usually found but may be missed (rounding can move it off the
            real line) or come back as two points a rounding-size apart.
        rtol: trimming threshold; the default drops exact zeros only, like
            :func:`numpy.roots`.

    Returns:
        Complex roots sorted by real then imaginary part (``real_only=False``),
        or the real roots. A constant has no roots.

    Example:
        >>> roots([-2.0, 0.0, 1.0], real_only=True).round(12).tolist()
        [-1.414213562373, 1.414213562373]
        >>> roots([1.0, 0.0, 1.0]).imag.tolist()
        [-1.0, 1.0]
    """
    c = as_coeffs(c)
    n = int(_k.trimmed_length(c, _check_rtol(rtol)))
    if n <= 1:
        return np.empty(0) if real_only else np.empty(0, dtype=np.complex128)
    if real_only:
        return _k.real_roots(np.ascontiguousarray(c[:n]), n)
    deg = n - 1
    companion = np.zeros((deg, deg))
    companion[np.arange(1, deg), np.arange(0, deg - 1)] = 1.0
    companion[:, -1] = -c[:deg] / c[deg]
    z = np.linalg.eigvals(companion).astype(np.complex128)
    return z[np.lexsort((z.imag, z.real))]


def critical_points(c: Any, *, rtol: float = TRIM_RTOL) -> np.ndarray:
    """Real roots of the derivative of :func:`trim` ``(c, rtol)``, sorted.

    Example:
        >>> critical_points([0.0, 0.0, -2.0, 0.0, 1.0]).round(12).tolist()
        [-1.0, 0.0, 1.0]
    """
    c = as_coeffs(c)
    n = int(_k.trimmed_length(c, _check_rtol(rtol)))
    return _k.critical_points(np.ascontiguousarray(c), n)


def is_unbounded_below(c: Any, *, rtol: float = TRIM_RTOL) -> bool:
    """True when the trimmed polynomial tends to -inf on one side.

    That is: odd degree, or even degree >= 2 with a negative leading
    coefficient.

    Example:
        >>> is_unbounded_below([0.0, 1.0]), is_unbounded_below([0.0, 0.0, 1.0])
        (True, False)
    """
    c = as_coeffs(c)
    n = int(_k.trimmed_length(c, _check_rtol(rtol)))
    return _unbounded(n - 1, c[n - 1])


def _unbounded(deg: int, lead: float) -> bool:
    return bool(deg % 2 == 1 or (deg >= 2 and lead < 0.0))


def _method(deg: int) -> str:
    if deg <= 1:
        return "none"
    return "closed-form" if deg <= 4 else "eigen"


# ------------------------------------------------------------------ minimise
def minimize(
    c: Any,
    *,
    t0: float = 0.0,
    rtol: float = TRIM_RTOL,
    compensated: bool = True,
) -> tuple[float, float, dict]:
    """Global minimiser of a polynomial on the real line.

    The polynomial is first trimmed (:func:`trim` with ``rtol``), so a quartic
    whose ``t**4`` coefficient is negligible is treated as the cubic it really
    is. Candidates are ``t0`` and every real root of the derivative: closed
    forms when the derivative has degree <= 3 (linear; the stable quadratic
    formula; trigonometric / Cardano cubic), companion-matrix eigenvalues
    above; each root is polished with Newton steps and verified. The FULL
    (untrimmed) polynomial is evaluated at every candidate (compensated Horner
    by default) and the lowest value wins, with ``t0`` winning ties, so the
    returned value never exceeds ``p(t0)``.

    Unbounded polynomials (odd degree, or even degree with a negative leading
    coefficient after trimming) have no global minimum; the result is then the
    best of ``t0`` and the finite critical points, and ``info["unbounded"]``
    is True so the caller can decide (for instance cap the step).

    Args:
        c: coefficients, lowest degree first.
        t0: reference point (the current position); returned when nothing is
            strictly lower, and for constant or linear polynomials.
        rtol: trimming threshold (see :data:`TRIM_RTOL`).
        compensated: evaluate with compensated Horner (else plain Horner).

    Returns:
        ``(t_star, value, info)`` where ``info`` holds ``roots`` (real critical
        points found, sorted), ``value_at_t0``, ``decrease`` (``value_at_t0 -
        value >= 0``), ``degree`` (after trimming), ``unbounded`` and
        ``method`` (``"none"``, ``"closed-form"`` or ``"eigen"``).

    Raises:
        DataError: ``c`` is empty, not 1-D, or not finite.

    Example:
        >>> t, v, info = minimize([0.0, 0.0, -2.0, 0.0, 1.0])   # t^4 - 2 t^2
        >>> abs(abs(t) - 1.0) < 1e-12, round(v, 12), info["roots"].round(9).tolist()
        (True, -1.0, [-1.0, 0.0, 1.0])
        >>> minimize([3.0, 1.0])[2]["unbounded"]                  # 3 + t
        True
    """
    c = np.ascontiguousarray(as_coeffs(c))
    t0 = float(t0)
    if not np.isfinite(t0):
        raise DataError(f"t0 must be finite, got {t0}.")
    t_star, value, v0, crit, n = _k.minimize_row(c, _check_rtol(rtol), t0, bool(compensated))
    deg = int(n) - 1
    info = {
        "roots": crit,
        "value_at_t0": float(v0),
        "decrease": float(v0 - value),
        "degree": deg,
        "unbounded": _unbounded(deg, float(c[n - 1])),
        "method": _method(deg),
    }
    return float(t_star), float(value), info


def minimize_many(
    C: Any,
    *,
    t0: float = 0.0,
    rtol: float = TRIM_RTOL,
    compensated: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`minimize` for every row of a 2-D coefficient array, in parallel.

    One row per independent coordinate (lowest degree first; pad shorter
    polynomials with zeros). Rows follow exactly the rules of
    :func:`minimize`: the same numba kernel runs per row (closed forms up to a
    cubic derivative, companion eigenvalues via LAPACK above), so the results
    agree bit for bit. Built for degree <= 6 rows, where it costs a few
    microseconds per row; any width works.

    Args:
        C: array of shape ``(m, k)`` with ``k >= 1``.
        t0, rtol, compensated: as in :func:`minimize`, shared by all rows.

    Returns:
        ``(t_star, value)``, two float64 arrays of length ``m``. Use
        ``is_unbounded_below`` per row if the flag matters.

    Example:
        >>> t, v = minimize_many([[1.0, -2.0, 1.0], [0.0, 0.0, 1.0]])
        >>> t.round(12).tolist(), v.round(12).tolist()
        ([1.0, 0.0], [0.0, 0.0])
    """
    try:
        arr = np.asarray(C, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"C must be a 2-D array of real coefficients (one polynomial per row); {exc}."
        ) from None
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise DataError(
            f"C must have shape (rows, degree + 1) with at least one column, got {arr.shape}; "
            "for one polynomial call minimize(c)."
        )
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
        raise DataError(f"C has NaN or infinity in rows {bad[:5].tolist()}...; pass finite coefficients.")
    t0 = float(t0)
    if not np.isfinite(t0):
        raise DataError(f"t0 must be finite, got {t0}.")
    if arr.shape[0] == 0:
        return np.empty(0), np.empty(0)
    return _k.minimize_rows(np.ascontiguousarray(arr), _check_rtol(rtol), t0, bool(compensated))
