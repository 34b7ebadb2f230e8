"""Conjugate gradients: the one CG loop of symnet (re-exported by :mod:`symnet.core.linalg`).

Every iterative solve of a symmetric positive definite system goes through
:func:`conjugate_gradient`: the Gauss-Newton directions (one right-hand side,
plain or preconditioned by Kronecker factors) and polynomial regression's
matrix-free fits (a block of right-hand sides sharing each data pass, with
scores kept up to date and a residual refinement on exact products).

Example:
    >>> import numpy as np
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]]); b = np.array([1.0, 2.0])
    >>> x, res = conjugate_gradient(lambda p: A @ p, b, tol=1e-12)
    >>> bool(np.allclose(x, np.linalg.solve(A, b))), res.converged, res.iterations
    (True, True, 2)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class CGResult:
    """What :func:`conjugate_gradient` returns besides the solution."""

    iterations: int
    residual: float  # largest relative residual ||b - A x|| / ||b|| over the watched columns
    converged: bool
    history: list = field(default_factory=list)  # that residual at the start and after each iteration
    seconds: float = 0.0
    stopped_by_deadline: bool = False
    scores: tuple = ()  # the tracked scores (``matvec`` returns their products with ``scores=True``)


def conjugate_gradient(matvec: Callable, b: np.ndarray, *, x0: np.ndarray | None = None, start: tuple | None = None,
                       precond: Callable | None = None, tol: float = 1e-6, max_iter: int = 500,
                       watch: np.ndarray | None = None, deadline: float | None = None,
                       callback: Callable | None = None, refine: Callable | None = None,
                       scores: bool = False) -> tuple[np.ndarray, CGResult]:
    """Preconditioned CG on ``A x = b`` in float64; a block ``b`` (p, k) runs one CG per column sharing each product.

    Args:
        matvec: ``matvec(P) -> A P`` (``P`` shaped as ``b``); with ``scores``, ``(A P, scores)`` where
            ``scores`` is a tuple of arrays linear in ``P`` with ``k`` columns (``X P`` over some samples,
            one data pass with the product) that CG keeps up to date for ``x`` as it does ``A x``.
        b: right-hand side (p,) or (p, k). Columns may belong to different systems: each column's CG
            uses its own column only.
        x0: a start (default zero); ``start`` its ``matvec(x0)`` if known (None: one product more).
        precond: applies ``M^-1`` (shaped as ``b``; default none).
        tol: stop when every watched column's ``||b - A x|| / ||b||`` is at most this.
        max_iter: cap on iterations (products).
        watch: boolean mask of the columns whose residual decides convergence (default: all); the
            others run along for as long as the watched ones do.
        deadline: ``time.perf_counter()`` value after which to stop early.
        callback: called as ``callback(iteration, residual)`` after each iteration.
        refine: the exact product, when ``matvec`` is a rounded one. When CG converges on ``matvec``'s
            products the residual (and scores) are recomputed with ``refine`` and, while the residual
            is above ``tol``, CG goes on with ``refine``'s products (residual replacement).

    A column whose direction has no positive curvature (``p^T A p <= 0``) stops moving; CG stops when
    every column has (or the preconditioned residual vanishes): the iterate so far is returned.

    Example:
        >>> rng = np.random.default_rng(0); F = rng.random((30, 6)); A = F.T @ F + np.eye(6); B = rng.random((6, 2))
        >>> W, res = conjugate_gradient(lambda P: (A @ P, (F @ P,)), B, tol=1e-12, scores=True)
        >>> res.converged, bool(np.allclose(W, np.linalg.solve(A, B))), bool(np.allclose(res.scores[0], F @ W))
        (True, True, True)
        >>> A32 = A.astype(np.float32).astype(np.float64)  # a rounded product, refined by the exact one
        >>> W, res = conjugate_gradient(lambda P: A32 @ P, B, tol=1e-12, refine=lambda P: A @ P)
        >>> res.converged, bool(np.allclose(W, np.linalg.solve(A, B), rtol=1e-11))
        (True, True)
    """
    t0 = time.perf_counter()
    b = np.asarray(b, dtype=np.float64)
    vector = b.ndim == 1

    def as_block(f):
        if f is None:
            return None

        def g(P):
            out = f(P[:, 0] if vector else P)
            prod, sc = out if scores else (out, ())
            prod = np.asarray(prod, dtype=np.float64)
            return (prod.reshape(-1, 1) if vector else prod), tuple(sc)
        return g

    def as_precond(f):
        if f is None:
            return lambda R: R.copy()
        return (lambda R: np.asarray(f(R[:, 0]), dtype=np.float64).reshape(-1, 1)) if vector else f

    apply, refine, precond_ = as_block(matvec), as_block(refine), as_precond(precond)
    B = b.reshape(-1, 1) if vector else b
    k = B.shape[1]
    watch = np.ones(k, dtype=bool) if watch is None else np.asarray(watch, dtype=bool)
    bnorm = np.linalg.norm(B, axis=0)
    bnorm[bnorm == 0] = 1.0
    tracked: list = []
    if x0 is not None and np.any(x0):
        W = np.array(x0, dtype=np.float64).reshape(B.shape)
        AW, sc = apply(W) if start is None else as_block(lambda _: start)(W)
        R = B - AW
        tracked = [np.array(a, dtype=np.float64) for a in sc]
    else:
        W = np.zeros_like(B)
        R = B.copy()

    def residual() -> float:
        return float(np.max(np.linalg.norm(R[:, watch], axis=0) / bnorm[watch]))

    res = residual()
    history = [res]
    it = 0
    stopped = False
    P = rz = None
    while True:
        if res <= tol:
            if refine is None or not np.any(W):
                break
            apply, refine = refine, None  # from here on, exact products (and CG restarts from W)
            P = None
            AW, sc = apply(W)
            R = B - AW
            tracked = [np.array(a, dtype=np.float64) for a in sc]
            res = residual()
            history.append(res)
            continue
        if it >= max_iter:
            break
        if deadline is not None and time.perf_counter() >= deadline:
            stopped = True
            break
        Z = precond_(R)
        rz_new = np.einsum("ij,ij->j", R, Z)
        if not np.any(rz_new > 0):  # nothing left to reduce in the preconditioner's norm
            break
        if P is None:
            P = Z.copy()
        else:
            P = Z + np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0) * P
        rz = rz_new
        Q, sc = apply(P)
        pq = np.einsum("ij,ij->j", P, Q)
        if not np.any(pq > 0):  # no positive curvature along any direction: keep the iterate
            break
        alpha = np.where(pq > 0, rz / np.where(pq > 0, pq, 1.0), 0.0)
        W += alpha * P
        R -= alpha * Q
        if not tracked:
            tracked = [np.zeros_like(a) for a in sc]
        for acc, a in zip(tracked, sc):
            acc += alpha * a
        it += 1
        res = residual()
        history.append(res)
        if callback is not None:
            callback(it, res)
    return (W[:, 0] if vector else W), CGResult(iterations=it, residual=res, converged=res <= tol, history=history,
                                                seconds=time.perf_counter() - t0, stopped_by_deadline=stopped,
                                                scores=tuple(tracked))


__all__ = ["CGResult", "conjugate_gradient"]
