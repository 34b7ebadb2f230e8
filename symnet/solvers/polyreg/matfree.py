"""Matrix-free ridge solves for the polynomial-regression backend (``method="cg"``).

Solves the same problem as the exact method,
``min_W ||X W - Y||^2 + lam ||W||^2`` over all classes at once (bias
penalised like the rest), without forming ``G = X^T X``: preconditioned
conjugate gradients on ``(G + lam I) W = X^T Y`` with one CG per class
column, all sharing each pass over the data. One pass computes ``X P`` and
``X^T (X P)`` for the ``p x k`` search directions ``P`` with the features
generated on the fly (:mod:`symnet.core.kernels.polyreg_matfree`), float64
throughout; nothing of size ``p x p`` or ``N x N`` is ever held.

Kept walks. The walk of the tree (which monomials are non-zero in which
samples of a block, and their values) is the same at every pass and costs
more than the multiply-adds. :meth:`Operator.keep_walks` walks once and keeps
each block's lists (float32 values and uint8 sample positions: 5 bytes per
non-zero feature of each sample, 2.4 GB on MNIST at degree 3); every later
product reads them. Measured on 20,000 MNIST samples, degree 3, 3 x 3 window,
10 classes, load 10-14 on 2 cores: 0.66 against 0.99 CPU-seconds per product
of 10,000 samples (1.5x), 2.32 against 2.85 CPU-seconds per CG iteration with
the subsample preconditioner at m = 2,000 (1.23x), building them 0.6 of a
pass. Products read from float32 values are accurate to ~1e-8 relative, so
the final solve is confirmed on walked float64 products (and CG goes on with
them while the residual is above the tolerance, ``conjugate_gradient(refine=...)``);
tolerances below :data:`LIST_FLOAT32_TOL` keep float64 values.

Preconditioner. ``"subsample"`` (default): ``G`` is approximated by the Gram
of ``m`` random training samples scaled by ``N / m`` plus a diagonal that
restores the exact diagonal of ``G`` (``M = Z^T Z + D``, ``Z = sqrt(N/m) X_m``,
``D = max(diag G - diag Z^T Z, 0) + lam``) and applied through the Woodbury
identity with one ``m x m`` Cholesky per ridge value:
``M^-1 R = D^-1 R - D^-1 Z^T (I + Z D^-1 Z^T)^-1 Z D^-1 R``. The large
eigenvalues of ``G`` (the mean image, the strokes shared by many samples) are
what slows CG down; a few thousand samples capture them. ``"jacobi"``:
``M = diag(G) + lam``. ``"none"``. On MNIST, 3 x 3 window, degree 2, ridge
31.6, 55,000 samples, to a relative residual of 1e-6: none (not measured to
the end), jacobi 1,022 iterations, subsample m = 1,000: 222, 2,000: 103,
4,000: 56 (iterations fall as ``1/m``).

Ridge choice (on the validation split, then a refit on all samples with the
winner scaled by ``N / N_train``, as in the exact method): a short ridge path.
One CG run on the training split at the middle of the grid keeps every
direction it explores (:class:`KrylovBasis`, ``p x 10`` per iteration); every
candidate (the grid and its geometric midpoints) is then solved by Galerkin
projection onto their span, a ``10 it x 10 it`` eigenproblem, and scored on
the validation split (``X_val P`` comes free with each pass). Projections are
exact at the ridges CG ran at, but elsewhere only approximate: the span of a
preconditioned CG run is not the same for every shift of ``G`` (unpreconditioned
Krylov spaces are), and on a toy problem with more features than samples (6 x 6
images, degree 3, subsample preconditioner) projected validation errors were
off by 2-14%, enough to pick the wrong grid value. So CG runs again, warm-
started from its projection, at the best candidate when it has not been solved
and at a neighbour of the best whose projected error is within ``verify`` (5%)
of the best's, re-scoring the path after each run, until neither is left (or
``max_solves``). Walking the grid with one warm-started CG per candidate
instead (as the exact method does with Cholesky) took five solves on MNIST.

Example:
    >>> import numpy as np
    >>> from symnet.core.model.polyreg import monomial_table, features
    >>> t = monomial_table((1, 4, 4), 2, 2); X = np.random.default_rng(0).random((300, 16))
    >>> op = Operator(X, t); Y = np.eye(3)[np.arange(300) % 3]
    >>> W = cg_solve(op, op.rhs(Y)[0], 0.5, tol=1e-10, precond="jacobi")[0]
    >>> F = features(X, t); bool(np.allclose(W, np.linalg.solve(F.T @ F + 0.5 * np.eye(len(t)), F.T @ Y)))
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numba as nb
import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas

from symnet.core.errors import SolverError
from symnet.core.kernels import monomials as MK
from symnet.core.kernels import polyreg_matfree as K
from symnet.core.linalg import CGResult as _CGResult, conjugate_gradient
from symnet.core.model.polyreg import PrefixTree, prefix_tree


#: Preconditioners of :func:`cg_solve`.
PRECONDITIONERS = ("subsample", "jacobi", "none")
#: Samples per walk of the prefix tree in :func:`symnet.core.kernels.polyreg_matfree.normal_products`.
WALK_SAMPLES = 128
#: Samples per block of the kept walks (:meth:`Operator.keep_walks`; at most 256: positions are uint8).
LIST_WIDTH = 256
#: Type of the kept walks' values (4 bytes: the lists of MNIST at degree 3 take 2.4 GB; products read
#: from them are accurate to ~1e-8 relative, and final solves are confirmed on walked float64 products)
#: unless a tolerance below :data:`LIST_FLOAT32_TOL` asks for float64 values.
LIST_DTYPE = np.float32
LIST_FLOAT32_TOL = 1e-6


def list_dtype(tol: float):
    """The kept walks' value type for CG tolerances down to ``tol``: float32 (rounded products, the final
    solve confirmed on walked ones) unless ``tol`` is below :data:`LIST_FLOAT32_TOL`, float64 then."""
    return np.dtype(LIST_DTYPE) if tol >= LIST_FLOAT32_TOL else np.dtype(np.float64)
#: Features per block when the subsample's ``m x m`` Gram is accumulated (bounds the scaled copy).
GRAM_ROWS = 2048


# --------------------------------------------------------------------------- the operator
class Operator:
    """Products with the design matrix ``X`` of samples ``X2`` (N, D) over a monomial table, matrix-free.

    Every product takes a sample range ``[start, stop)`` (default: all), so
    one operator serves the training split, the validation split and both.

    Args:
        X2: flat inputs (N, D); copied to C-ordered float64 if needed.
        table: monomial table (p, degree).
        blocks: parallel sample ranges per kernel call (None: 4 per numba
            thread, so a thread slowed by other work delays less).

    Example:
        >>> from symnet.core.model.polyreg import monomial_table, features
        >>> t = monomial_table((1, 3, 3), 3, 2); X = np.random.default_rng(1).random((40, 9))
        >>> op = Operator(X, t); V = np.ones((len(t), 2))
        >>> bool(np.allclose(op.matvec(V), features(X, t) @ V))
        True
    """

    def __init__(self, X2: np.ndarray, table: np.ndarray, blocks: int | None = None,
                 tree: PrefixTree | None = None) -> None:
        self.X2 = np.ascontiguousarray(X2, dtype=np.float64)
        self.table = table
        self.p = len(table)
        self.tree = prefix_tree(table) if tree is None else tree
        self.blocks = int(blocks) if blocks else 4 * nb.get_num_threads()
        self.passes = 0.0  # samples visited, in units of N
        self.lists: dict[tuple[int, int], tuple] = {}  # kept walks (:meth:`keep_walks`) by sample range
        self.walk = False  # True: walk the tree even where lists are kept (exact float64 products)

    def keep_walks(self, ranges, dtype=LIST_DTYPE) -> int:
        """Walk each sample range ``(start, stop)`` once and keep its lists, values in ``dtype``
        (:func:`symnet.core.kernels.polyreg_matfree.build_walk_lists`): later products over these
        ranges (or unions of them) read the lists instead of walking the tree. Returns the bytes kept."""
        for s, e in ranges:
            self.lists[(s, e)] = K.build_walk_lists(self.X2[s:e], *self.tree, LIST_WIDTH, dtype, self.blocks)
        return self.lists_bytes

    @property
    def inexact(self) -> bool:
        """Do products read kept walks whose values are rounded (float32)?"""
        return not self.walk and any(lists[-1].dtype != np.float64 for lists in self.lists.values())

    @property
    def lists_bytes(self) -> int:
        return sum(a.nbytes for lists in self.lists.values() for a in lists)

    def _segments(self, start: int, stop: int) -> list[tuple[int, int]] | None:
        """Kept ranges that tile ``[start, stop)`` in order, or None."""
        if self.walk or not self.lists:
            return None
        out, at = [], start
        while at < stop:
            nxt = next(((s, e) for s, e in self.lists if s == at and e <= stop), None)
            if nxt is None:
                return None
            out.append(nxt)
            at = nxt[1]
        return out

    @property
    def n(self) -> int:
        return len(self.X2)

    def _range(self, start: int, stop: int | None) -> np.ndarray:
        stop = self.n if stop is None else stop
        self.passes += (stop - start) / max(self.n, 1)
        return self.X2[start:stop]

    def normal(self, V: np.ndarray, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(X V, X^T X V)`` of the samples in ``[start, stop)``; V is (p, k)."""
        X = self._range(start, stop)
        V = np.ascontiguousarray(V, dtype=np.float64)
        XV = np.empty((len(X), V.shape[1]))
        segs = self._segments(start, len(X) + start)
        if segs is None:
            GV = K.normal_products(X, *self.tree, V, XV, self.blocks, WALK_SAMPLES)[0]
            return XV, GV
        GV = None
        for s, e in segs:
            g = K.listed_normal_products(*self.lists[(s, e)], e - s, LIST_WIDTH, V, XV[s - start:e - start],
                                         self.blocks)[0]
            GV = g if GV is None else GV + g
        return XV, GV

    def matvec(self, V: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``X V`` (n, k) of the samples in ``[start, stop)``."""
        X = self._range(start, stop)
        V = np.ascontiguousarray(V, dtype=np.float64)
        segs = self._segments(start, len(X) + start)
        if segs is None:
            return MK.tree_scores(X, *self.tree, V, WALK_SAMPLES)[0]
        return np.concatenate([K.listed_scores(*self.lists[(s, e)], e - s, LIST_WIDTH, V, self.blocks)[0]
                               for s, e in segs], axis=0)

    def rhs(self, U: np.ndarray, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X^T U, diag(X^T X), non-zeros per column)`` of the samples in ``[start, stop)``."""
        X = self._range(start, stop)
        return K.transpose_products(X, *self.tree, np.ascontiguousarray(U, dtype=np.float64), self.p,
                                    self.blocks)

    def subsample_features(self, rows: np.ndarray) -> np.ndarray:
        """Dense features of the samples ``rows`` as a (p, len(rows)) C-ordered array (feature-major)."""
        out = np.empty((self.p, len(rows)))
        MK.monomial_rows(np.ascontiguousarray(self.X2[rows].T), self.table, out)
        return out


# --------------------------------------------------------------------------- preconditioners
class SubsamplePreconditioner:
    """``M = Z^T Z + D`` applied through Woodbury; ``Z = sqrt(N/m) X_m``, ``D`` restores diag(G) (module docstring).

    Args:
        Zt: (p, m) features of ``m`` samples, feature-major (:meth:`Operator.subsample_features`).
        scale: ``N / m``, the samples the solve covers over the samples in ``Zt``.
        diag: exact ``diag(X^T X)`` over the ``N`` samples (p,).

    Only the features non-zero in some sample of the subsample are kept in
    memory (``(p_used, m)`` float64). :meth:`set_ridge` factors the ``m x m``
    matrix for one ridge value; :meth:`__call__` applies ``M^-1``.

    Example:
        >>> rng = np.random.default_rng(0); X = rng.random((50, 6)); G = X.T @ X
        >>> pre = SubsamplePreconditioner(X[:50].T.copy(), 1.0, np.diag(G)); pre.set_ridge(0.1)
        >>> R = rng.random((6, 2)); bool(np.allclose(pre(R), np.linalg.solve(G + 0.1 * np.eye(6), R)))
        True
    """

    def __init__(self, Zt: np.ndarray, scale: float, diag: np.ndarray) -> None:
        used = np.nonzero(np.any(Zt != 0.0, axis=1))[0]
        self.cols = used
        self.Zt = Zt[used]  # a copy, C-ordered
        self.Zt *= math.sqrt(scale)
        self.rest = np.maximum(np.asarray(diag, dtype=np.float64) - _row_sq(self.Zt, used, len(diag)), 0.0)
        self.m = self.Zt.shape[1]
        self.ridge: float | None = None

    @property
    def nbytes(self) -> int:
        return self.Zt.nbytes + 2 * self.m * self.m * 8

    def retarget(self, scale: float, diag: np.ndarray) -> None:
        """Re-use the subsample for another set of ``N'`` samples: scale ``N'/N`` and their exact diagonal."""
        self.Zt *= math.sqrt(scale)
        self.rest = np.maximum(np.asarray(diag, dtype=np.float64) - _row_sq(self.Zt, self.cols, len(diag)), 0.0)
        self.ridge = None

    def set_ridge(self, ridge: float) -> None:
        """Factor ``I + Z D^-1 Z^T`` for ``D = rest + ridge``."""
        if ridge == self.ridge:
            return
        self.D = self.rest + ridge
        if np.any(self.D <= 0):  # ridge 0 and a column whose whole diagonal the subsample holds
            self.D = np.where(self.D > 0, self.D, np.max(self.D) * 1e-12 + 1e-300)
        w = 1.0 / np.sqrt(self.D[self.cols])
        gram = np.zeros((self.m, self.m), order="F")
        for s in range(0, len(self.cols), GRAM_ROWS):
            A = self.Zt[s:s + GRAM_ROWS] * w[s:s + GRAM_ROWS, None]  # (rows, m) C order = (m, rows) Fortran
            gram = blas.dsyrk(1.0, A.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
        gram.flat[:: self.m + 1] += 1.0
        self.chol = sla.cho_factor(gram, lower=False, overwrite_a=True, check_finite=False)
        self.ridge = ridge

    def __call__(self, R: np.ndarray) -> np.ndarray:
        out = R / self.D[:, None]
        T = self.Zt.T @ out[self.cols]  # (m, k)
        T = sla.cho_solve(self.chol, T, check_finite=False)
        out[self.cols] -= (self.Zt @ T) / self.D[self.cols, None]
        return out


def _row_sq(Zt: np.ndarray, used: np.ndarray, p: int) -> np.ndarray:
    out = np.zeros(p)
    out[used] = np.einsum("ij,ij->i", Zt, Zt)
    return out


class JacobiPreconditioner:
    """``M = diag(X^T X) + ridge I``."""

    def __init__(self, diag: np.ndarray) -> None:
        self.diag = np.asarray(diag, dtype=np.float64)
        self.nbytes = self.diag.nbytes

    def set_ridge(self, ridge: float) -> None:
        d = self.diag + ridge
        self.inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)

    def __call__(self, R: np.ndarray) -> np.ndarray:
        return R * self.inv[:, None]


class IdentityPreconditioner:
    nbytes = 0

    def set_ridge(self, ridge: float) -> None:
        pass

    def __call__(self, R: np.ndarray) -> np.ndarray:
        return R.copy()


# --------------------------------------------------------------------------- conjugate gradients
@dataclass
class CGResult(_CGResult):
    """What :func:`cg_solve` returns besides the coefficients: :class:`~symnet.core.krylov.CGResult` and the scores."""

    XW: np.ndarray | None = None  # X W over the fitted samples
    XW_extra: np.ndarray | None = None  # X W over the extra (scored-only) samples


def make_preconditioner(precond, op: "Operator", fit: tuple[int, int], diag: np.ndarray | None = None):
    """The preconditioner object for ``precond``: the object itself, or one built for "jacobi" / "none"."""
    if not isinstance(precond, str):
        return precond
    if precond == "none":
        return IdentityPreconditioner()
    if precond == "jacobi":
        if diag is None:
            diag = op.rhs(np.zeros((op.n, 1)), *fit)[1]
        return JacobiPreconditioner(diag)
    raise SolverError(f"cg_solve builds 'jacobi' or 'none' itself; pass a SubsamplePreconditioner object "
                      f"for 'subsample', got {precond!r}")


def cg_solve(op: Operator, B: np.ndarray, ridge: float, *, tol: float = 1e-6, max_iter: int = 500,
             precond="subsample", W0: np.ndarray | None = None, fit: tuple[int, int] | None = None,
             extra: tuple[int, int] | None = None, deadline: float | None = None,
             diag: np.ndarray | None = None, callback: Callable | None = None,
             basis: "KrylovBasis | None" = None) -> tuple[np.ndarray, CGResult]:
    """Solve ``(X^T X + ridge I) W = B`` by preconditioned CG, one CG per column, one data pass per iteration.

    Args:
        op: the :class:`Operator` of the samples.
        B: right-hand sides (p, k), ``X^T Y`` over the fitted samples.
        ridge: ``lam >= 0``.
        tol: stop when every column's ``||B - A W|| / ||B||`` is at most this.
        max_iter: cap on iterations (passes).
        precond: a preconditioner object (with ``set_ridge`` and ``__call__``),
            or "jacobi" / "none" (built here from ``diag``, computed if not given).
        W0: starting coefficients (warm start; costs one extra pass).
        fit: sample range ``(start, stop)`` of ``X`` (default: all samples).
        extra: a sample range whose scores ``X W`` are kept up to date too
            (the validation split), at the cost of forward products only.
        deadline: ``time.perf_counter()`` value after which to stop early.
        callback: called as ``callback(iteration, residual)`` after each iteration.
        basis: a :class:`KrylovBasis` that collects the start and every search
            direction with its products, for solves at other ridges by projection.

    Returns:
        ``(W, CGResult)`` with ``XW`` (and ``XW_extra``) the scores of ``W``.

    Example:
        >>> from symnet.core.model.polyreg import monomial_table, features
        >>> t = monomial_table((1, 3, 3), 2, 2); X = np.random.default_rng(2).random((60, 9))
        >>> op = Operator(X, t); B = op.rhs(np.ones((60, 1)))[0]
        >>> W, res = cg_solve(op, B, 1.0, tol=1e-8, precond="none")
        >>> res.converged, bool(np.allclose(res.XW, features(X, t) @ W))
        (True, True)
    """
    start, stop = fit if fit is not None else (0, op.n)
    precond = make_preconditioner(precond, op, (start, stop), diag)
    precond.set_ridge(ridge)
    B = np.asarray(B, dtype=np.float64)
    k = B.shape[1]

    def apply(V):
        XV, GV = op.normal(V, start, stop)
        XVe = op.matvec(V, *extra) if extra is not None else np.zeros((0, V.shape[1]))
        if basis is not None:
            basis.add(V, GV, XVe if extra is not None else None)
        return GV + ridge * V, (XV, XVe)

    def walked(V):  # the exact products, when the operator reads rounded kept walks
        op.walk = True
        try:
            return apply(V)
        finally:
            op.walk = False

    W, res = conjugate_gradient(apply, B, precond=precond, tol=tol, max_iter=max_iter, x0=W0, deadline=deadline,
                                callback=callback, refine=walked if op.inexact else None, scores=True)
    res = CGResult(**vars(res))
    if res.scores:
        res.XW, XWe = res.scores
    else:  # converged at the start: W is zero
        res.XW, XWe = np.zeros((stop - start, k)), np.zeros((0, k))
    res.XW_extra = (XWe if len(XWe) else np.zeros((extra[1] - extra[0], k))) if extra is not None else None
    return W, res


# --------------------------------------------------------------------------- other ridges by projection
class KrylovBasis:
    """The directions a CG run explored, to solve at other ridges cheaply.

    :func:`cg_solve` (or a search, :meth:`CGFit.choose_ridge`) adds each block of
    directions ``P`` (p, k) with ``G P = X^T X P`` and the scores ``X_val P`` of
    the extra samples. For any ridge ``lam``, :meth:`solve` returns the Galerkin
    solution in their span ``S`` (all classes' directions pooled): ``W = S y``
    with ``(S^T G S + lam S^T S) y = S^T B``, the best approximation in ``S`` in
    the energy norm of ``G + lam I``, and its validation scores, without
    touching the data. The span of a CG run at ``lam0`` holds the
    large-eigenvalue directions first; with a preconditioner the span depends
    on the shift, so projections at other ridges are approximate (the search
    runs CG again where it matters and adds its directions).

    Only the directions are kept (``p x k`` float64 per block): ``S^T G S`` and
    ``S^T S`` are accumulated as blocks arrive, so ``G P`` is dropped at once.

    Example:
        >>> rng = np.random.default_rng(0); A = rng.random((40, 8)); G = A.T @ A; B = rng.random((8, 1))
        >>> basis = KrylovBasis(); basis.add(np.eye(8)[:, :5], G[:, :5], None); basis.add(np.eye(8)[:, 5:], G[:, 5:], None)
        >>> W = basis.solve(B, [2.0])[0][0]
        >>> bool(np.allclose(W, np.linalg.solve(G + 2.0 * np.eye(8), B)))
        True
    """

    def __init__(self) -> None:
        self.P: list[np.ndarray] = []
        self.XPe: list[np.ndarray] = []
        self.H = np.zeros((0, 0))  # S^T G S
        self.S = np.zeros((0, 0))  # S^T S

    def add(self, P: np.ndarray, GP: np.ndarray, XPe: np.ndarray | None) -> None:
        P = np.array(P, dtype=np.float64)
        GP = np.asarray(GP, dtype=np.float64)
        h = [old.T @ GP for old in self.P] + [P.T @ GP]
        s = [old.T @ P for old in self.P] + [P.T @ P]
        self.H = _grow(self.H, np.concatenate(h, axis=0))
        self.S = _grow(self.S, np.concatenate(s, axis=0))
        self.P.append(P)
        if XPe is not None:
            self.XPe.append(np.array(XPe))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.P + self.XPe) + self.H.nbytes + self.S.nbytes

    def _reduce(self, B: np.ndarray):
        c = np.concatenate([P.T @ B for P in self.P], axis=0)
        H = (self.H + self.H.T) / 2.0
        # orthonormalise the span through S's eigenvectors, dropping directions it repeats
        s, V = np.linalg.eigh(self.S)
        keep = s > s.max() * 1e-12
        T = V[:, keep] / np.sqrt(s[keep])
        h, U = np.linalg.eigh(T.T @ H @ T)
        return T @ U, h, (T @ U).T @ c

    def solve(self, B: np.ndarray, ridges, want_weights: bool = True):
        """``([W(lam) ...], [X_extra W(lam) ...])`` for every ridge (weights only if ``want_weights``)."""
        TU, h, c = self._reduce(B)
        XPe = np.concatenate(self.XPe, axis=1) if self.XPe else None
        Ws, scores = [], []
        for lam in ridges:
            y = TU @ (c / np.maximum(h + lam, 1e-300)[:, None])
            if want_weights:
                W = np.zeros((self.P[0].shape[0], B.shape[1]))
                start = 0
                for P in self.P:
                    W += P @ y[start:start + P.shape[1]]
                    start += P.shape[1]
                Ws.append(W)
            else:
                Ws.append(None)
            scores.append(XPe @ y if XPe is not None else None)
        return Ws, scores


def _grow(M: np.ndarray, col: np.ndarray) -> np.ndarray:
    """``[[M, col_top], [col_top^T, col_bottom]]``: a symmetric block matrix with one more block column."""
    n, k = len(M), col.shape[1]
    out = np.empty((n + k, n + k))
    out[:n, :n] = M
    out[:, n:] = col
    out[n:, :n] = col[:n].T
    return out


# --------------------------------------------------------------------------- memory estimates
def exact_memory_bytes(p_used: int, n_val: int, samples: int | None = None) -> int:
    """Peak bytes of the exact method's Gram and Cholesky: the training Gram, a copy to factor, and
    (with a validation split) the validation Gram: ``(2 + [n_val > 0]) p^2`` float64. With fewer
    ``samples`` than ``p_used`` (the dual form, :func:`symnet.solvers.polyreg.exact_form`): the
    ``n x n`` kernel and a copy to factor, with room for a third, ``3 n^2`` float64."""
    if samples is not None and samples < p_used:
        return 3 * samples * samples * 8
    return (3 if n_val else 2) * p_used * p_used * 8


#: Iterations of the ridge search assumed by :func:`cg_memory_bytes` (MNIST, degree 3: 121 to 1e-4).
SEARCH_ITERATIONS = 150


def lists_memory_bytes(entries: float, dtype=LIST_DTYPE) -> int:
    """Bytes of kept walks (:meth:`Operator.keep_walks`) with ``entries`` non-zero (sample, feature) pairs."""
    return int(entries * (1 + np.dtype(dtype).itemsize) * 1.05)  # + the per-block node lists


def cg_memory_bytes(p: int, p_used: int, n: int, width: int, classes: int, precond: str, m: int,
                    search: bool, threads: int = 2, lists: int = 0) -> int:
    """Estimated peak bytes of ``method="cg"`` (``lists``: the bytes of its kept walks, if kept).

    Inputs (float64), targets and scores; the per-block accumulators of the products (4 per thread,
    twice the classes during the search, which runs the refit's CG alongside); the CG vectors; the
    subsample preconditioner's ``m`` samples' features (``p x m`` while they are formed, then
    ``p_used x m``) and two ``m x m`` matrices; during the search, the directions of both CGs
    (:class:`KrylovBasis`, ``p x classes`` float64 per iteration each, :data:`SEARCH_ITERATIONS`).
    """
    k = 2 * classes if search else classes
    data = n * width * 8 + 4 * n * k * 8
    vectors = 10 * p * k * 8 + 4 * threads * p * k * 8
    pre = {"subsample": (p + p_used) * m * 8 + 2 * m * m * 8, "jacobi": p * 8, "none": 0}[precond]
    bases = 2 * SEARCH_ITERATIONS * p * classes * 8 if search else 0
    return int(data + vectors + pre + bases + lists)
