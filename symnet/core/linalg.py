"""Ridge linear algebra: Gram matrices with a bias column, ridge solves, and the exact readout fit.

Two solvers need the same closed form: the last Linear layer of a network
(the "readout") fitted exactly to its input features by ridge regression, and
polynomial regression over monomial features. Both solve

    (A^T A + ridge I) W = A^T Y

for features ``A`` (with a column of ones when there is a bias). This module
is where that is written: :func:`gram` and :func:`cross` form the two sides,
:func:`ridge_solve` solves them (Cholesky, or the minimum-norm solution when
the matrix is singular without ridge), :func:`ridge_dual` and
:func:`ridge_path` serve wide and many-penalty problems, and
:func:`fit_readout` sets a Linear layer to its exact ridge solution when that
does not raise the objective.

Example:
    >>> import numpy as np
    >>> A = np.array([[1.0], [2.0], [3.0]]); Y = np.array([[2.0], [4.0], [6.0]])
    >>> ridge_solve(gram(A, bias=True), cross(A, Y, bias=True), 0.0).ravel().round(12) + 0.0
    array([2., 0.])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas

from symnet.core.objective import sse as _sse


def gram(A: np.ndarray, *, bias: bool) -> np.ndarray:
    """``[A, 1]^T [A, 1]`` for features ``A`` (n, F); the last row and column belong to the bias."""
    n, F = A.shape
    size = F + 1 if bias else F
    G = np.empty((size, size))
    G[:F, :F] = A.T @ A
    if bias:
        colsum = A.sum(axis=0)
        G[F, :F] = colsum
        G[:F, F] = colsum
        G[F, F] = n
    return G


def cross(A: np.ndarray, B: np.ndarray, *, bias: bool) -> np.ndarray:
    """``[A, 1]^T B`` for features ``A`` (n, F) and right-hand sides ``B`` (n, K)."""
    F = A.shape[1]
    out = np.empty((F + 1 if bias else F, B.shape[1]))
    out[:F] = A.T @ B
    if bias:
        out[F] = B.sum(axis=0)
    return out


def ridge_factor(G: np.ndarray, ridge: float):
    """Cholesky factor of ``G + ridge I`` (scipy's ``cho_factor`` form), or None when not positive definite."""
    A = np.array(G, dtype=np.float64, copy=True)
    A[np.diag_indices_from(A)] += ridge
    try:
        return sla.cho_factor(A, lower=True, overwrite_a=True, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None


def ridge_solve(G: np.ndarray, B: np.ndarray, ridge: float) -> np.ndarray:
    """Solve ``(G + ridge I) W = B`` reading only the upper triangle of ``G``.

    Cholesky when ``G + ridge I`` is positive definite; otherwise (``ridge = 0``
    with a singular ``G``) the minimum-norm solution through a symmetric
    eigendecomposition, discarding eigenvalues below ``p * eps * max``.

    Example:
        >>> G = np.array([[2.0, 1.0], [0.0, 2.0]]); B = np.array([[1.0], [0.0]])
        >>> ridge_solve(G, B, 1.0).ravel().round(4).tolist()
        [0.375, -0.125]
    """
    p = len(G)
    A = np.array(G, dtype=np.float64, order="F", copy=True)
    A.flat[:: p + 1] += ridge
    try:
        c = sla.cho_factor(A, lower=False, overwrite_a=True, check_finite=False)
        if np.all(np.diag(c[0]) > 0):
            return sla.cho_solve(c, B, check_finite=False)
    except np.linalg.LinAlgError:
        pass
    S = np.triu(G) + np.triu(G, 1).T
    S.flat[:: p + 1] += ridge
    vals, vecs = np.linalg.eigh(S)
    keep = vals > p * np.finfo(float).eps * max(float(vals.max()), 0.0)
    return (vecs[:, keep] / vals[keep]) @ (vecs[:, keep].T @ B)


def ridge_dual(F: np.ndarray, Y: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge coefficients of the rows of ``F`` through the ``n x n`` dual system.

    ``W = F^T (F F^T + ridge I)^{-1} Y``, equal to ``(F^T F + ridge I)^{-1} F^T Y``
    for ``ridge > 0``, and the minimum-norm least-squares solution at
    ``ridge = 0`` when ``F`` has full row rank.

    Example:
        >>> F = np.array([[1.0, 2.0, 0.0]]); ridge_dual(F, np.array([[5.0]]), 0.0).ravel().tolist()
        [1.0, 2.0, 0.0]
    """
    Kmat = blas.dsyrk(1.0, np.asfortranarray(F), trans=0, lower=0)
    return F.T @ ridge_solve(Kmat, Y, ridge)


def ridge_path(F: np.ndarray, Y: np.ndarray, ridges: Sequence[float]) -> np.ndarray:
    """Ridge coefficients of ``F`` (n, p) for several penalties from one Gram.

    Forms the smaller of ``F F^T`` (dual, when n < p) and ``F^T F`` once and
    factors it once per penalty (:func:`ridge_solve`: Cholesky, or the
    minimum-norm solution when singular at penalty 0). A symmetric
    eigendecomposition would serve every penalty at once, but on a shared
    2-core machine LAPACK's tridiagonal reduction slows down ten-fold when the
    other core is busy, while a Cholesky (BLAS-3 throughout) barely does:
    nine Cholesky factorisations of 2,000 x 2,000 take about 0.5 s.

    Returns:
        ``(len(ridges), p, K)`` coefficients.

    Example:
        >>> F = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]); Y = np.eye(3)[:, :2]
        >>> W = ridge_path(F, Y, [0.5])[0]
        >>> bool(np.allclose(W, np.linalg.solve(F.T @ F + 0.5 * np.eye(2), F.T @ Y)))
        True
    """
    F = np.asarray(F, dtype=np.float64)
    n, p = F.shape
    dual = n < p
    A = blas.dsyrk(1.0, F, trans=0 if dual else 1, lower=0)  # F F^T or F^T F, upper triangle
    rhs = Y if dual else F.T @ Y
    out = np.empty((len(ridges), p, Y.shape[1]))
    for i, lam in enumerate(ridges):
        coef = ridge_solve(A, rhs, float(lam))
        out[i] = F.T @ coef if dual else coef
    return out



def fit_readout(layer, H: np.ndarray, Y: np.ndarray, ridge: float, *, factor=None) -> tuple[float, np.ndarray]:
    """Set a Linear ``layer`` to the exact ridge fit of targets ``Y`` from its input features ``H``.

    With every other parameter fixed the objective is a convex quadratic in
    the layer's weights and bias, separable over the outputs:
    ``(A^T A + ridge I) [W^T; b] = A^T Y`` with ``A = [H, 1]``, one Cholesky
    factorisation for all outputs (pass ``factor``, from :func:`ridge_factor`
    of :func:`gram`, when it is already computed for these features). The new
    weights are kept only if the layer's part of the objective,
    ``SSE + ridge (||W||^2 + ||b||^2)`` (the rest of ``||theta||^2`` does not
    change), does not rise; an ill-conditioned Gram matrix without ridge can
    make it numerically worse.

    Returns:
        ``(decrease, outputs)``: the decrease of the objective (never negative)
        and the layer's outputs ``H W^T + b`` at the parameters it kept.

    Example:
        >>> from symnet.core.layers import Linear
        >>> layer = Linear(1, 1)
        >>> H = np.array([[1.0], [2.0]]); Y = np.array([[3.0], [5.0]])
        >>> decrease, out = fit_readout(layer, H, Y, ridge=0.0)
        >>> layer.params["weight"].round(12).tolist(), out.round(12).ravel().tolist()
        ([[2.0]], [3.0, 5.0])
    """
    bias = layer.bias
    params = [layer.params["weight"]] + ([layer.params["bias"]] if bias else [])
    old = [p.copy() for p in params]

    def own_objective(out):
        return _sse(out, Y) + ridge * sum(float(np.sum(p * p)) for p in params)

    before_out = layer.forward(H)
    before = own_objective(before_out)
    if factor is None:
        factor = ridge_factor(gram(H, bias=bias), ridge)
    if factor is None:  # singular without ridge: keep the current weights
        return 0.0, before_out
    sol = sla.cho_solve(factor, cross(H, Y, bias=bias), check_finite=False)
    if not np.all(np.isfinite(sol)):
        return 0.0, before_out
    F = H.shape[1]
    layer.params["weight"][...] = sol[:F].T
    if bias:
        layer.params["bias"][...] = sol[F]
    out = layer.forward(H)
    after = own_objective(out)
    if not after <= before:
        for p, o in zip(params, old):
            p[...] = o
        return 0.0, before_out
    return before - after, out


__all__ = ["cross", "fit_readout", "gram", "ridge_dual", "ridge_factor", "ridge_path", "ridge_solve"]
