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

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas

from symnet.core.krylov import CGResult, conjugate_gradient
from symnet.core.objective import sse as _sse
from symnet.core.runtime import available_blas_threads, blas_threads


#: Rows of features per block of a Gram matrix or matrix product (bounds the temporaries).
BLOCK_ROWS = 8192


def gram(A: np.ndarray, *, bias: bool, dtype=np.float64, block: int = BLOCK_ROWS) -> np.ndarray:
    """``[A, 1]^T [A, 1]`` for features ``A`` (n, F); the last row and column belong to the bias.

    Each block of ``block`` rows is multiplied in ``dtype`` and the blocks are
    added in float64. ``dtype=np.float32`` (one single-precision GEMM per block:
    twice the throughput, half the memory traffic) gives the Gram matrix to about
    1e-6 relative, meant as a preconditioner (:func:`ridge_readout` then refines
    the solution against exact float64 products). The block products run on
    every core the environment allows (they are large GEMMs).

    Example:
        >>> gram(np.arange(6.0).reshape(3, 2), bias=True).tolist()
        [[20.0, 26.0, 6.0], [26.0, 35.0, 9.0], [6.0, 9.0, 3.0]]
    """
    n, F = A.shape
    size = F + 1 if bias else F
    G = np.zeros((size, size))
    colsum = np.zeros(F)
    with blas_threads(available_blas_threads()):
        for a in range(0, n, block):
            Ab = np.asarray(A[a:a + block], dtype=dtype)
            G[:F, :F] += Ab.T @ Ab
            if bias:
                colsum += Ab.sum(axis=0, dtype=np.float64)
    G[:F, :F] = 0.5 * (G[:F, :F] + G[:F, :F].T)
    if bias:
        G[F, :F] = colsum
        G[:F, F] = colsum
        G[F, F] = n
    return G


def cross(A: np.ndarray, B: np.ndarray, *, bias: bool, block: int = BLOCK_ROWS) -> np.ndarray:
    """``[A, 1]^T B`` in float64 for features ``A`` (n, F) and right-hand sides ``B`` (n, K), by row blocks."""
    F = A.shape[1]
    out = np.zeros((F + 1 if bias else F, B.shape[1]))
    for a in range(0, len(A), block):
        out[:F] += np.asarray(A[a:a + block], dtype=np.float64).T @ B[a:a + block]
    if bias:
        out[F] = B.sum(axis=0)
    return out


def normal_products(A: np.ndarray, S: np.ndarray, ridge: float, *, bias: bool, block: int = BLOCK_ROWS) -> np.ndarray:
    """``([A, 1]^T [A, 1] + ridge I) S`` in float64 arithmetic, by row blocks (two thin GEMMs per block)."""
    F = A.shape[1]
    out = np.zeros_like(S)
    for a in range(0, len(A), block):
        Ab = np.asarray(A[a:a + block], dtype=np.float64)
        u = Ab @ S[:F]
        if bias:
            u += S[F]
            out[F] += u.sum(axis=0)
        out[:F] += Ab.T @ u
    out += ridge * S
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



def ridge_readout(H: np.ndarray, Y: np.ndarray, ridge: float, *, bias: bool, factor=None, gram_dtype=np.float64,
                  block: int = BLOCK_ROWS, max_iter: int = 30, rtol: float = 1e-13):
    """The ridge least-squares fit ``S = argmin ||[H, 1] S - Y||^2 + ridge ||S||^2`` in float64 arithmetic.

    ``S`` (features (+1) x outputs) solves the normal equations: the Cholesky
    factor of a Gram matrix computed in ``gram_dtype`` (:func:`gram`; or
    ``factor``, from :func:`ridge_factor`, if given) preconditions conjugate
    gradients whose products with the Gram matrix are float64
    (:func:`normal_products`, all outputs at once). CG stops when what the next
    iterations could still gain, ``r^T M^-1 r`` summed over the outputs, falls
    below ``rtol`` times the solved objective's size ``S . [H, 1]^T Y``. With a
    float64 Gram the first iterate is converged; with a float32 one a few
    iterations reach it. The algorithm is :func:`ridge_readout_on`, here on features in memory.

    Returns:
        ``(S, factor, info)``: ``S`` is None when the matrix is not positive definite (no
        ridge and rank-deficient features); ``info`` has ``cg_iters``.

    Example:
        >>> H = np.array([[1.0], [2.0], [3.0]]); Y = np.array([[2.0], [4.0], [6.0]])
        >>> S, _, _ = ridge_readout(H, Y, 0.0, bias=True, gram_dtype=np.float32)
        >>> S.ravel().round(9) + 0.0
        array([2., 0.])
    """
    return ridge_readout_on(LocalReadout(H, Y, bias=bias, block=block), ridge, factor=factor, gram_dtype=gram_dtype,
                            max_iter=max_iter, rtol=rtol)


def ridge_readout_on(readout, ridge: float, *, factor=None, gram_dtype=np.float64, max_iter: int = 30,
                     rtol: float = 1e-13):
    """:func:`ridge_readout` on any readout problem (:class:`LocalReadout` or a sharded one).

    The readout supplies the sums over samples (its Gram matrix, ``[H, 1]^T Y`` and
    products with the Gram matrix); everything else happens here, once.
    """
    info = {"cg_iters": 0}
    if factor is None:
        factor = ridge_factor(readout.gram(gram_dtype), ridge)
        if factor is None:
            return None, None, info
    rhs = readout.cross()
    S = sla.cho_solve(factor, rhs, check_finite=False)
    if not np.all(np.isfinite(S)):
        return None, factor, info
    R = rhs - readout.products(S, ridge)
    Z = sla.cho_solve(factor, R, check_finite=False)
    rz = np.einsum("ij,ij->j", R, Z)
    scale = max(float(np.sum(S * rhs)), 1e-300)
    P = Z.copy()
    it = 0
    while it < max_iter and float(np.sum(rz)) > rtol * scale:
        Q = readout.products(P, ridge)
        pq = np.einsum("ij,ij->j", P, Q)
        alpha = np.where(pq > 0, rz / np.where(pq > 0, pq, 1.0), 0.0)
        S += alpha * P
        R -= alpha * Q
        Z = sla.cho_solve(factor, R, check_finite=False)
        rz_new = np.einsum("ij,ij->j", R, Z)
        P = Z + np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0) * P
        rz = rz_new
        it += 1
    info["cg_iters"] = it
    return S, factor, info


# --------------------------------------------------------------------------- the ridge policy
#: Ridge weights an automatic choice tries by default (half decades from 0.1 to 100).
RIDGE_CANDIDATES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
#: The most samples held out to choose a ridge when the size is not given.
VAL_MAX = 5000
#: The weight of an automatic ridge before it is chosen (the step-0 record) or when it cannot be (too few
#: samples to hold out, no last Linear layer to score).
PROVISIONAL_RIDGE = 1.0


@dataclass(frozen=True)
class Ridge:
    """The ridge weight of an objective: a fixed number, or chosen on held-out samples (``value`` None).

    An automatic choice tries ``candidates`` on ``val_size`` held-out training
    samples (None: :meth:`held_out_count`'s rule, a tenth, at most
    :data:`VAL_MAX`), drawn by ``seed`` (None: the last samples), and keeps the
    best by ``by`` (:func:`best_candidate`). :func:`parse_ridge` reads the
    user's spellings, :func:`resolve_ridge` chooses.

    Example:
        >>> Ridge().auto, Ridge(2.0).auto, Ridge().held_out_count(200), Ridge(val_size=7).held_out_count(200)
        (True, False, 20, 7)
    """

    value: float | None = None
    candidates: tuple = RIDGE_CANDIDATES
    val_size: int | None = None
    seed: int | None = None
    by: str = "mse"  # "mse": lowest held-out squared error; "accuracy": lowest error rate

    @property
    def auto(self) -> bool:
        return self.value is None

    def held_out_count(self, n: int) -> int:
        """Samples held out of ``n``: ``val_size``, or a tenth of them (at most :data:`VAL_MAX`)."""
        return min(VAL_MAX, n // 10) if self.val_size is None else int(self.val_size)

    def held_out_rows(self, n: int, count: int | None = None) -> np.ndarray:
        """The sorted held-out rows of ``n`` samples: drawn by ``seed``, or the last ``count`` without one."""
        count = self.held_out_count(n) if count is None else int(count)
        if self.seed is None:
            return np.arange(n - count, n)
        return np.sort(np.random.default_rng([int(self.seed), 1]).choice(n, count, replace=False))


def parse_ridge(spec, **auto) -> Ridge:
    """The :class:`Ridge` of an option value: a number fixes it; ``"auto"`` or None choose it (``auto``: how).

    None means "auto" wherever a solver's ``ridge`` option allows it (polyreg's default).

    Example:
        >>> parse_ridge("auto", seed=3).seed, parse_ridge(None).auto, parse_ridge(0.5).value
        (3, True, 0.5)
    """
    if spec is None or (isinstance(spec, str) and spec == "auto"):
        return Ridge(None, **auto)
    return Ridge(float(spec))


def best_candidate(ridges, losses, errors, by: str = "mse") -> int:
    """Index of the best candidate: the lowest held-out loss, then error rate (``by="accuracy"``: the other way
    round); remaining ties go to the larger weight.

    Squared error is the objective being minimised and moves smoothly with the
    ridge; accuracy on a few thousand samples moves in steps of one sample.

    Example:
        >>> best_candidate([1.0, 10.0, 3.0], [2.0, 2.0, 1.0], [0.1, 0.2, 0.3])
        2
        >>> best_candidate([1.0, 10.0], [2.0, 2.0], [0.1, 0.1])  # a tie: the larger weight
        1
        >>> best_candidate([1.0, 10.0, 3.0], [2.0, 2.0, 1.0], [0.1, 0.2, 0.3], by="accuracy")
        0
    """
    if by == "accuracy":
        return min(range(len(ridges)), key=lambda i: (errors[i], losses[i], -ridges[i]))
    return min(range(len(ridges)), key=lambda i: (losses[i], errors[i], -ridges[i]))


def resolve_ridge(ridge: Ridge, score: Callable, *, search: str = "grid", refine: bool = False,
                  stop: Callable | None = None) -> tuple[float, dict | None]:
    """The ridge weight of ``ridge``: its value, or the candidate whose fit scores best on held-out samples.

    ``score(lams)`` fits each weight of the list and returns one ``(loss,
    error rate)`` per weight on the held-out samples (``inf`` and 1.0 for a
    failed fit); the caller owns the fit and the split
    (:meth:`Ridge.held_out_rows`), this the search and the choice
    (:func:`best_candidate`). ``search="grid"`` scores every candidate (in one
    call unless ``stop`` is given); ``"walk"`` starts mid-grid and steps towards
    the better neighbour while the score improves (the held-out error is
    unimodal in the ridge in practice; it saves fits). ``refine`` then also
    tries the geometric midpoints next to the best. ``stop()``, asked before
    every fit after the first, ends the search early (a time limit).

    Returns:
        ``(value, report)``: report None for a fixed value, else ``{"ridges", "val_sse", "val_err",
        "chosen"}`` (the weights tried, in order), with ``"cut": True`` when ``stop`` ended it.

    Example:
        >>> sse_of = {0.1: 5.0, 1.0: 2.0, 10.0: 3.0, 100.0: 4.0}
        >>> ridge = Ridge(candidates=(0.1, 1.0, 10.0, 100.0))
        >>> value, report = resolve_ridge(ridge, lambda lams: [(sse_of[lam], 0.0) for lam in lams])
        >>> value, report["ridges"], report["val_sse"]
        (1.0, [0.1, 1.0, 10.0, 100.0], [5.0, 2.0, 3.0, 4.0])
        >>> resolve_ridge(ridge, lambda lams: [(sse_of[lam], 0.0) for lam in lams], search="walk")[1]["ridges"]
        [10.0, 1.0, 0.1]
        >>> resolve_ridge(Ridge(3.0), None)
        (3.0, None)
    """
    if not ridge.auto:
        return float(ridge.value), None
    grid = sorted(float(v) for v in ridge.candidates)
    tried: list[float] = []
    figures: list[tuple[float, float]] = []
    cut: list[bool] = []

    def best() -> float:
        return tried[best_candidate(tried, [f[0] for f in figures], [f[1] for f in figures], ridge.by)]

    def consider(lams: list[float]) -> None:
        if tried and stop is not None and stop():
            cut.append(True)
            return
        tried.extend(lams)
        figures.extend((float(a), float(b)) for a, b in score(lams))

    if search == "grid" and stop is None:
        consider(grid)
    elif search == "grid":
        for lam in grid:
            if not cut:
                consider([lam])
    else:
        i = len(grid) // 2
        consider([grid[i]])
        for step in (-1, 1):
            j = i + step
            while 0 <= j < len(grid) and not cut:
                before = best()
                consider([grid[j]])
                if best() == before:
                    break
                j += step
            if best() != grid[i]:  # improved going down: one optimum means up is worse
                break
    if refine and not cut:
        i = grid.index(best())
        for j in (i - 1, i + 1):
            if 0 <= j < len(grid) and grid[i] > 0 and grid[j] > 0 and not cut:
                consider([math.sqrt(grid[i] * grid[j])])
    chosen = best()
    report = {"ridges": tried, "val_sse": [f[0] for f in figures], "val_err": [f[1] for f in figures],
              "chosen": chosen}
    if cut:
        report["cut"] = True
    return chosen, report


def readout_scorer(G: np.ndarray, rhs: np.ndarray, held_out: Callable, num_val: int, *,
                   share: float = 1.0) -> Callable:
    """The ``score`` of :func:`resolve_ridge` for a readout: solve from one Gram matrix, score held out.

    ``G`` and ``rhs`` are :func:`gram` and :func:`cross` of the fitting rows,
    ``share`` their fraction of the samples the weight's objective sums over;
    ``held_out(solutions) -> (sse, wrong)`` scores the solutions
    (:func:`held_out_scores`) on the ``num_val`` held-out rows.
    """
    def score(lams):
        solutions = ridge_solutions(G, rhs, candidates=lams, share=share)
        sse_, wrong = held_out(solutions)
        return [(float(s), 1.0 if sol is None else (float(w) / num_val if num_val else 0.0))
                for s, w, sol in zip(sse_, wrong, solutions)]
    return score


def _scores_dict(report: dict) -> dict:
    return {"ridges": report["ridges"], "val_sse": report["val_sse"], "val_err": report["val_err"]}


def select_ridge(H: np.ndarray, Y: np.ndarray, validation: np.ndarray, *, bias: bool,
                 candidates=RIDGE_CANDIDATES, num_total: int | None = None,
                 gram_dtype=np.float32) -> tuple[float, dict]:
    """The ridge whose readout generalises best to held-out rows of the features.

    The readout (a Linear layer on features ``H``) is fitted by ridge on the rows
    NOT in ``validation`` for each candidate weight and scored by its sum of
    squared errors on the ``validation`` rows. The weight regularises
    ``||theta||^2`` in an objective summed over ``num_total`` samples (default
    ``len(H)``); fitted on fewer rows it is scaled by ``n_fit / num_total``. One
    Gram matrix of every row minus the validation rows' serves every candidate
    (one Cholesky each, :func:`ridge_solutions`). The algorithm is :func:`select_ridge_on`, here on features in memory.

    Returns:
        ``(best weight, {"ridges", "val_sse", "val_err"})``; the best by :func:`best_candidate`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> H = rng.normal(size=(200, 5)); Y = np.eye(2)[(H[:, 0] > 0).astype(int)]
        >>> best, scores = select_ridge(H, Y, np.arange(150, 200), bias=True)
        >>> best in scores["ridges"]
        True
    """
    return select_ridge_on(LocalReadout(H, Y, bias=bias), validation, candidates=candidates, num_total=num_total,
                           gram_dtype=gram_dtype)


def select_ridge_on(readout, validation: np.ndarray, *, candidates=RIDGE_CANDIDATES, num_total: int | None = None,
                    gram_dtype=np.float32) -> tuple[float, dict]:
    """:func:`select_ridge` on any readout problem (:class:`LocalReadout` or a sharded one)."""
    n = readout.num_samples
    num_total = n if num_total is None else int(num_total)
    validation = np.asarray(validation, dtype=np.int64)
    G = readout.gram(gram_dtype) - readout.gram(np.float64, rows=validation)
    rhs = readout.cross() - readout.cross(rows=validation)

    share = (n - len(np.unique(validation))) / float(num_total)
    scorer = readout_scorer(G, rhs, lambda solutions: readout.held_out(solutions, validation), len(validation),
                            share=share)
    best, report = resolve_ridge(Ridge(candidates=tuple(candidates)), scorer)
    return best, _scores_dict(report)


def ridge_solutions(G: np.ndarray, rhs: np.ndarray, *, candidates=RIDGE_CANDIDATES, share: float = 1.0) -> list:
    """The ridge solutions ``(G + lam * share I)^-1 rhs`` of one Gram matrix, one per candidate ``lam``.

    ``lam`` weighs ``||theta||^2`` in an objective over ``num_total`` samples and
    ``share`` is the fitting rows' fraction of them; one Cholesky each, None where
    the matrix is not positive definite.

    Example:
        >>> [s.round(12).tolist() for s in ridge_solutions(np.array([[2.0]]), np.array([[4.0]]), candidates=(0.0, 2.0))]
        [[[2.0]], [[1.0]]]
    """
    solutions = []
    for lam in candidates:
        factor = ridge_factor(G, float(lam) * share)
        solutions.append(None if factor is None else sla.cho_solve(factor, rhs, check_finite=False))
    return solutions


def score_ridges(G: np.ndarray, rhs: np.ndarray, Hv: np.ndarray, Yv: np.ndarray, *, bias: bool,
                 candidates=RIDGE_CANDIDATES, share: float = 1.0) -> dict:
    """Held-out scores of the ridge readouts of one Gram matrix, one per candidate weight.

    ``G`` and ``rhs`` are :func:`gram` and :func:`cross` of the fitting rows; each
    candidate is solved by :func:`ridge_solutions` and scored on the held-out
    features ``Hv`` and targets ``Yv`` (:func:`held_out_scores`): sum of squared
    errors and error rate.

    Returns:
        ``{"ridges", "val_sse", "val_err"}`` (an infinite SSE where the matrix is not positive definite).

    Example:
        >>> H = np.array([[0.0], [1.0], [2.0]]); Y = 2 * H
        >>> s = score_ridges(gram(H, bias=False), cross(H, Y, bias=False), np.array([[3.0]]), np.array([[6.0]]),
        ...                  bias=False, candidates=(0.0, 5.0))
        >>> [round(v, 9) for v in s["val_sse"]]
        [0.0, 9.0]
    """
    _, report = choose_readout_ridge(G, rhs, Hv, Yv, bias=bias, candidates=candidates, share=share)
    return _scores_dict(report)


def choose_readout_ridge(G: np.ndarray, rhs: np.ndarray, Hv: np.ndarray, Yv: np.ndarray, *, bias: bool,
                         candidates=RIDGE_CANDIDATES, share: float = 1.0) -> tuple[float, dict]:
    """:func:`resolve_ridge` of :func:`score_ridges`' problem: ``(best weight, report)``."""
    scorer = readout_scorer(G, rhs, lambda solutions: held_out_scores(Hv, Yv, solutions, bias=bias), len(Yv),
                            share=share)
    return resolve_ridge(Ridge(candidates=tuple(candidates)), scorer)


def best_ridge(scores: dict) -> float:
    """The candidate of :func:`score_ridges` that :func:`best_candidate` picks (the lowest held-out SSE; ties go
    to the larger weight).

    Example:
        >>> best_ridge({"ridges": [1.0, 10.0], "val_sse": [2.0, 2.0]})
        10.0
    """
    ridges = scores["ridges"]
    errors = scores.get("val_err", [0.0] * len(ridges))
    return float(ridges[best_candidate(ridges, scores["val_sse"], errors)])


def held_out_scores(A: np.ndarray, Y: np.ndarray, solutions, *, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sum of squared errors and count of wrong argmax classes of each readout solution on features ``A``.

    ``solutions`` holds one ``(F (+1), outputs)`` array per candidate, or None (scored ``inf``
    and 0 here). Sums over rows, so that shards add up.

    Example:
        >>> A = np.array([[1.0], [2.0]]); Y = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> exact, off = np.array([[-1.0, 1.0], [2.0, -1.0]]), np.array([[0.0, 1.0], [1.0, -1.0]])
        >>> sse_, wrong = held_out_scores(A, Y, [exact, off, None], bias=True)
        >>> sse_.tolist(), wrong.tolist()
        ([0.0, 1.0, inf], [0, 1, 0])
    """
    Av = np.asarray(A, dtype=np.float64)
    if bias:
        Av = np.hstack([Av, np.ones((len(Av), 1))])
    sse_ = np.zeros(len(solutions))
    wrong = np.zeros(len(solutions), dtype=np.int64)
    for i, sol in enumerate(solutions):
        if sol is None:
            sse_[i] = np.inf
            continue
        P = Av @ sol
        sse_[i] = _sse(P, Y)
        wrong[i] = int(np.count_nonzero(np.argmax(P, axis=1) != np.argmax(Y, axis=1)))
    return sse_, wrong


def fit_readout(layer, H: np.ndarray, Y: np.ndarray, ridge: float, *, factor=None,
                gram_dtype=np.float64) -> tuple[float, np.ndarray]:
    """Set a Linear ``layer`` to the exact ridge fit of targets ``Y`` from its input features ``H``.

    With every other parameter fixed the objective is a convex quadratic in
    the layer's weights and bias, separable over the outputs:
    ``(A^T A + ridge I) [W^T; b] = A^T Y`` with ``A = [H, 1]``, one Cholesky
    factorisation for all outputs, refined in float64 (:func:`ridge_readout`;
    pass ``factor``, from :func:`ridge_factor` of :func:`gram`, when it is
    already computed for these features, exact or from ``gram_dtype=float32``). The new
    weights are kept only if the layer's part of the objective,
    ``SSE + ridge (||W||^2 + ||b||^2)`` (the rest of ``||theta||^2`` does not
    change), does not rise; an ill-conditioned Gram matrix without ridge can
    make it numerically worse. The algorithm is :func:`fit_readout_on`.

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
    readout = LocalReadout(H, Y, bias=layer.bias)
    decrease = fit_readout_on(layer, readout, ridge, factor=factor, gram_dtype=gram_dtype)
    return decrease, readout.outputs()


def fit_readout_on(layer, readout, ridge: float, *, factor=None, gram_dtype=np.float64) -> float:
    """:func:`fit_readout` on any readout problem; returns the decrease (the outputs stay with ``readout``).

    The readout problem (:class:`LocalReadout`, or one whose features live in
    shards on other machines) answers for the sums over samples; the decision
    (solve, keep only if the layer's part of the objective does not rise) is
    taken here, once.
    """
    params = [layer.params["weight"]] + ([layer.params["bias"]] if layer.bias else [])
    old = [p.copy() for p in params]

    def penalty() -> float:
        return ridge * sum(float(np.sum(p * p)) for p in params)

    before = readout.sse(layer) + penalty()
    sol, _, _ = ridge_readout_on(readout, ridge, factor=factor, gram_dtype=gram_dtype)
    if sol is None or not np.all(np.isfinite(sol)):  # singular without ridge: keep the current weights
        return 0.0
    F = sol.shape[0] - int(layer.bias)
    layer.params["weight"][...] = sol[:F].T
    if layer.bias:
        layer.params["bias"][...] = sol[F]
    after = readout.sse(layer) + penalty()
    if not after <= before:
        for p, o in zip(params, old):
            p[...] = o
        readout.sse(layer)  # the outputs of the weights kept
        return 0.0
    return before - after


class LocalReadout:
    """The ridge problem of a Linear readout on features ``H`` (n, F) held in this process.

    The protocol every readout problem follows (a sharded one answers the same
    calls with sums over its shards), read by :func:`ridge_readout_on`,
    :func:`fit_readout_on` and :func:`select_ridge_on`:

    * ``bias``, ``num_samples``;
    * ``gram(dtype, rows=None)``: ``[H, 1]^T [H, 1]`` (:func:`gram`) of the rows;
    * ``cross(rows=None)``: ``[H, 1]^T Y`` (:func:`cross`);
    * ``products(S, ridge)``: ``([H, 1]^T [H, 1] + ridge I) S`` in float64 (:func:`normal_products`);
    * ``sse(layer)``: the sum of squared errors of the layer's outputs at its current weights, which
      become the current outputs (``outputs()``);
    * ``held_out(solutions, rows)``: :func:`held_out_scores` of the rows.

    Example:
        >>> r = LocalReadout(np.array([[1.0], [2.0]]), np.array([[1.0], [2.0]]), bias=False)
        >>> r.gram(np.float64).tolist(), r.cross().tolist()
        ([[5.0]], [[5.0]])
    """

    def __init__(self, H: np.ndarray, Y: np.ndarray, *, bias: bool, block: int = BLOCK_ROWS) -> None:
        self.H, self.Y, self.bias, self.block = H, Y, bool(bias), int(block)
        self._outputs: np.ndarray | None = None

    @property
    def num_samples(self) -> int:
        return len(self.H)

    def _rows(self, rows):
        if rows is None:
            return self.H, self.Y
        return np.asarray(self.H[rows], dtype=np.float64), self.Y[rows]

    def gram(self, dtype=np.float64, rows=None) -> np.ndarray:
        return gram(self._rows(rows)[0], bias=self.bias, dtype=dtype, block=self.block)

    def cross(self, rows=None) -> np.ndarray:
        H, Y = self._rows(rows)
        return cross(H, Y, bias=self.bias, block=self.block)

    def products(self, S: np.ndarray, ridge: float) -> np.ndarray:
        return normal_products(self.H, S, ridge, bias=self.bias, block=self.block)

    def sse(self, layer) -> float:
        self._outputs = layer.forward(self.H)
        return _sse(self._outputs, self.Y)

    def outputs(self) -> np.ndarray:
        return self._outputs

    def held_out(self, solutions, rows) -> tuple[np.ndarray, np.ndarray]:
        H, Y = self._rows(rows)
        return held_out_scores(H, Y, solutions, bias=self.bias)


__all__ = ["BLOCK_ROWS", "PROVISIONAL_RIDGE", "RIDGE_CANDIDATES", "VAL_MAX", "CGResult", "LocalReadout", "Ridge", "best_candidate",
           "choose_readout_ridge", "conjugate_gradient", "parse_ridge", "readout_scorer", "resolve_ridge", "cross",
           "fit_readout", "fit_readout_on", "gram",
           "held_out_scores", "normal_products", "ridge_dual", "ridge_factor", "ridge_path", "ridge_readout",
           "ridge_readout_on", "ridge_solutions", "ridge_solve", "score_ridges", "select_ridge",
           "select_ridge_on", "best_ridge"]


# --------------------------------------------------------------------------- Kronecker factors
class KroneckerFactors(NamedTuple):
    """One layer's Gauss-Newton block as a Kronecker product, ``G ~ scale * Gamma (x) Omega``, eigen-decomposed.

    For a Conv2d or Linear layer with weights arranged as the matrix ``[W | b]``
    (outputs x (inputs * kernel [+ 1])), ``Omega`` is the mean outer product of
    the layer's input patches and ``Gamma`` that of its output derivatives
    (:func:`symnet.core.derivatives.kronecker_factors` forms them). Decomposed
    once, ``(scale Gamma (x) Omega + shift I)^-1 b`` is four small matrix
    products for any shift.

    Example (the solve agrees with the dense Kronecker product):
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(2, 2)), rng.normal(size=(3, 3))
        >>> gamma, omega = a @ a.T, b @ b.T
        >>> f = KroneckerFactors.from_factors(gamma, omega, 4.0, bias=False)
        >>> x = rng.normal(size=6)
        >>> dense = 4.0 * np.kron(gamma, omega) + 0.5 * np.eye(6)
        >>> bool(np.allclose(f.solve(x, 0.5), np.linalg.solve(dense, x)))
        True
    """

    U: np.ndarray       # eigenvectors of Gamma (Co x Co)
    s: np.ndarray       # its eigenvalues, clipped at 0
    V: np.ndarray       # eigenvectors of Omega (M x M)
    w: np.ndarray       # its eigenvalues, clipped at 0
    scale: float
    bias: bool

    @classmethod
    def from_factors(cls, gamma: np.ndarray, omega: np.ndarray, scale: float, bias: bool) -> "KroneckerFactors":
        s, U = np.linalg.eigh(np.asarray(gamma, dtype=np.float64))
        w, V = np.linalg.eigh(np.asarray(omega, dtype=np.float64))
        return cls(U, np.maximum(s, 0.0), V, np.maximum(w, 0.0), float(scale), bool(bias))

    def solve(self, b: np.ndarray, shift: float) -> np.ndarray:
        """``(scale Gamma (x) Omega + shift I)^-1 b`` for a flat vector in the layer's order ([weight, bias])."""
        B = self._as_matrix(np.asarray(b, dtype=np.float64))
        T = self.U.T @ B @ self.V
        T /= self.scale * np.outer(self.s, self.w) + shift
        return self._from_matrix(self.U @ T @ self.V.T)

    def mean_diagonal(self) -> float:
        """The mean diagonal entry of ``scale Gamma (x) Omega`` (sets the damping's scale)."""
        return self.scale * float(np.sum(self.s)) * float(np.sum(self.w)) / (len(self.s) * len(self.w))

    def _as_matrix(self, flat: np.ndarray) -> np.ndarray:
        """Flat [weight, bias] -> the (Co, M) matrix [W | b] (M counts the bias column)."""
        Co, M = len(self.s), len(self.w)
        if not self.bias:
            return flat.reshape(Co, M).copy()
        out = np.empty((Co, M))
        out[:, :M - 1] = flat[:Co * (M - 1)].reshape(Co, M - 1)
        out[:, M - 1] = flat[Co * (M - 1):]
        return out

    def _from_matrix(self, mat: np.ndarray) -> np.ndarray:
        if not self.bias:
            return mat.ravel()
        return np.concatenate([mat[:, :-1].ravel(), mat[:, -1]])
