"""Closed-form polynomial regression over windowed monomials of the inputs.

A one-hidden-layer network with a polynomial activation is a linear model over
products of its inputs. This backend fits that linear model directly: the
features are all monomials of the input pixels up to ``degree`` whose factors
fit in an ``s x s`` spatial window (factors may come from any channel), and a
one-vs-rest ridge regression onto one-hot targets is solved in closed form;
the class is the argmax of the scores.

Features. Every unordered product is counted once (a multiset of pixel
positions, squares included), plus the constant 1 (the bias). For a 28 x 28
image, a 3 x 3 window and degree 2 that is 1 + 784 + 9,370 = 10,155 features.
:func:`monomial_table` builds the index table once (vectorised); the feature
values are generated on the fly in chunks of samples by a numba kernel, so the
``N x p`` design matrix is never held in memory.

Methods.

* ``method="exact"``: accumulate the Gram ``G = X^T X`` (float64) and ``X^T Y``
  over chunks of samples, then solve ``(G + ridge I) W = X^T Y`` by Cholesky.
  Columns that are zero on every training sample are dropped (their ridge
  coefficient is exactly zero). The remaining columns are ordered by how many
  samples they are non-zero in; the dense head goes through BLAS ``dsyrk`` and
  the sparse tail (on MNIST, monomials near the border, non-zero in under a
  few percent of samples) through a sparse kernel, split where a cost model
  says the sum of both is least (on MNIST: 8,978 columns used, 5,143 dense;
  twice as fast as dsyrk over all of them). ``ridge=None`` holds out the last
  ``val_size`` training samples and factors ``G_train + lam I`` once per
  candidate value, walking the grid from its middle: one Cholesky takes 2-4 s
  at p = 8,978 where one symmetric eigendecomposition (which would serve all
  values at once) takes over a minute, so re-factoring wins for any search
  of fewer than about 20 values. It keeps the value with the least
  validation squared error (or the best accuracy, ``select_by="accuracy"``),
  tries the geometric midpoints next to it, and refits on all samples with
  the winner scaled by ``N / N_train`` (the same penalty per sample).
* ``method="bagging"``: ``batches`` random subsets of ``batch_size`` samples,
  each fitted by ridge regression (through the ``B x B`` dual system
  ``alpha = (X_b X_b^T + lam I)^{-1} Y_b``, ``w = X_b^T alpha`` when the subset
  is smaller than the number of features); the model is the average of the
  coefficients fitted so far. One solver step is one subset. With
  ``ridge=None`` the subsets are drawn outside the validation split and one
  running average is kept per candidate penalty (every grid value and, with
  ``refine_ridge``, every midpoint; one ``B x B`` Gram, one Cholesky per
  candidate); the model is the average that scores best on the validation
  split so far (whose features are kept in memory, ``val_size x p`` floats). The best penalty for the average is
  smaller than the best for a single subset, because averaging already
  removes much of the variance the penalty would.

Conditioning. Features are products of inputs in [0, 1], so every entry of
``G`` lies in ``[0, N]`` and no centring or scaling is applied (scaling would
change which solution the ridge prefers and break the equality with the plain
least-squares solution). ``G`` is rank-deficient in practice (``x^2`` and ``x``
nearly coincide for near-binary pixels), which a small ridge, e.g. ``1e-3``
on a Gram whose diagonal reaches ``N``, repairs; with ``ridge=0`` a singular
``G`` falls back to the minimum-norm solution from a symmetric
eigendecomposition. The bias is penalised like every other coefficient, as in
the project-wide objective ``SSE + ridge * ||theta||^2``.

Example:
    >>> import numpy as np
    >>> from symnet.core.datasets import Dataset
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1000, 1, 6, 6)); y = (x[:, 0, 2, 2] * x[:, 0, 2, 3] > 0.25).astype(int)
    >>> data = Dataset("toy", x[:800], y[:800], x[800:], y[800:], 2)
    >>> model = PolyRegModel((1, 6, 6), 2, degree=2, window=2)
    >>> s = PolyRegSolver().fit(model, data, quiet=True)  # ridge chosen on the last 80 samples
    >>> model.num_features, s.history_.final["test_acc"] > 0.9
    (183, True)
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from typing import Any, ClassVar

import numba as nb
import numpy as np
from scipy.linalg import blas

from symnet.core.errors import SolverError
from symnet.core.kernels import monomials as MK
from symnet.core.linalg import ridge_path, ridge_solve
from symnet.core.objective import accuracy, sse, value
from symnet.core.model.polyreg import PolyRegModel, row_blocks, scores, scores_transposed, transposed_chunk
from symnet.core.runtime import peak_rss_mb

from symnet.solvers import polyreg_matfree as MF
from symnet.solvers.base import Solver
from symnet.core.kernels import polyreg as K
from symnet.solvers.options import Option

#: Largest number of features the exact method accepts: its Gram is p x p float64
#: and a solve holds about three of them (p = 25,000 -> 15 GB).
MAX_EXACT_FEATURES = 25_000
#: Cost of one sparse multiply-add relative to one dense multiply-add inside
#: dsyrk, measured on the development machine (dsyrk and the gather kernel
#: timed side by side on the same chunks): used to split the Gram columns.
SPARSE_COST = 16.0
#: Bagging with ridge=None keeps the validation features in memory up to this many float64 values (~1 GB).
VAL_FEATURES_MAX = 1 << 27
#: Samples whose non-zero monomials method="auto" counts to estimate the columns in use.
PROBE_SAMPLES = 5000
#: Steps of method="cg": prepare (right-hand sides, preconditioner), choose the ridge, refit.
CG_STEPS = 3
#: Feature rows generated at a time when the dual form accumulates its n x n kernel (a rows x n block).
KERNEL_ROWS = 1024
#: Side of the Cholesky timed to estimate the closing solve of the exact method under a time limit.
CHOLESKY_PROBE = 800


def kernel_matrix(X2: np.ndarray, table: np.ndarray, deadline_check=None) -> tuple[np.ndarray, int]:
    """``K = X X^T`` (n, n) of the samples ``X2`` over the monomials of ``table``, and the columns in use.

    numpy: F = features(X2, table); return np.triu(F @ F.T), np.count_nonzero(F.any(axis=0))
    Accumulated by ``dsyrk`` over blocks of :data:`KERNEL_ROWS` features, so the ``n x p``
    design matrix is never held; only the upper triangle is filled (Fortran order).
    ``deadline_check(done, total, seconds)`` is called after each block (to estimate the cost).

    Example:
        >>> from symnet.core.model.polyreg import features, monomial_table
        >>> t = monomial_table((1, 4, 4), 3, 2); X = np.random.default_rng(0).random((30, 16))
        >>> Km, used = kernel_matrix(X, t); F = features(X, t)
        >>> bool(np.allclose(np.triu(Km), np.triu(F @ F.T))), used == len(t)
        (True, True)
    """
    n = len(X2)
    p = len(table)
    xt = np.ascontiguousarray(X2.T, dtype=np.float64)
    Kmat = np.zeros((n, n), order="F")
    buffer = None
    used = 0
    t0 = time.perf_counter()
    for s in range(0, p, KERNEL_ROWS):
        e = min(p, s + KERNEL_ROWS)
        buffer, ft = _scratch(buffer, e - s, n)
        MK.monomial_rows(xt, np.ascontiguousarray(table[s:e]), ft)
        used += int(np.count_nonzero(np.any(ft != 0.0, axis=1)))
        Kmat = blas.dsyrk(1.0, ft.T, trans=0, beta=1.0, c=Kmat, lower=0, overwrite_c=1)  # += ft^T ft
        if deadline_check is not None:
            deadline_check(e, p, time.perf_counter() - t0)
    return Kmat, used


def _fill_lower(A: np.ndarray) -> None:
    """Copy the upper triangle of the square ``A`` into its lower one, in place, by blocks of columns."""
    n = len(A)
    for j0 in range(0, n, KERNEL_ROWS):
        j1 = min(n, j0 + KERNEL_ROWS)
        D = A[j0:j1, j0:j1]
        D[...] = np.triu(D) + np.triu(D, 1).T
        A[j1:, j0:j1] = A[j0:j1, j1:].T


def dual_weights(X2: np.ndarray, table: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``X^T alpha`` (p, k): the primal coefficients of dual ones, over blocks of features.

    numpy: return features(X2, table).T @ alpha
    """
    n, p = len(X2), len(table)
    xt = np.ascontiguousarray(X2.T, dtype=np.float64)
    W = np.empty((p, alpha.shape[1]))
    buffer = None
    for s in range(0, p, KERNEL_ROWS):
        e = min(p, s + KERNEL_ROWS)
        buffer, ft = _scratch(buffer, e - s, n)
        MK.monomial_rows(xt, np.ascontiguousarray(table[s:e]), ft)
        W[s:e] = ft @ alpha
    return W


def exact_form(samples: int, p_used: int) -> str:
    """The exact method's form: ``"dual"`` (``n x n`` kernel) with fewer samples than features in use, else
    ``"primal"`` (``p x p`` Gram): the cheaper of ``n p^2 + p^3 / 3`` and ``n^2 p + n^3 / 3`` operations.

    Example:
        >>> exact_form(500, 7_000), exact_form(60_000, 9_000)
        ('dual', 'primal')
    """
    return "dual" if samples < p_used else "primal"


def cholesky_seconds(p: int) -> float:
    """Seconds one Cholesky of a ``p x p`` matrix takes here and now, scaled from timed small ones.

    The fastest of three timings: the first call in a fresh process also pays for loading LAPACK and
    touching new pages, and the cube of ``p / m`` turned such a hiccup into minutes (a 9,000-feature
    fit was once told its solve needed 334 s, and stopped its Gram accumulation early to keep them).
    """
    m = max(1, min(p, CHOLESKY_PROBE))
    A = np.random.default_rng(0).random((m, m))
    A = A @ A.T + m * np.eye(m)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        ridge_solve(A, np.ones((m, 1)), 0.0)
        best = min(best, time.perf_counter() - t0)
    return best * (p / m) ** 3


def _scratch(buffer: np.ndarray | None, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """A C-ordered (rows, cols) view of a reusable flat buffer (fresh pages cost more than the kernels)."""
    if buffer is None or buffer.size < rows * cols:
        buffer = np.empty(rows * cols)
    return buffer, buffer[: rows * cols].reshape(rows, cols)


class GramAccumulator:
    """``G = X^T X``, ``X^T Y`` and ``sum(Y^2)`` over chunks of samples, float64.

    Only the ``columns`` (indices into ``table``) are accumulated, in that
    order. The first ``dense`` of them go through BLAS ``dsyrk``; the rest
    are taken as sparse: their products with every column come from
    :func:`symnet.core.kernels.polyreg.add_sparse_cross`. Put the densest columns first.

    Example:
        >>> from symnet.core.model.polyreg import features, monomial_table
        >>> t = monomial_table((1, 3, 3), 2, 2); X = np.random.default_rng(0).random((50, 9))
        >>> acc = GramAccumulator(t, np.arange(len(t)), dense=10, classes=1)
        >>> acc.add(X[:20], np.ones((20, 1))); acc.add(X[20:], np.ones((30, 1)))
        >>> F = features(X, t); bool(np.allclose(np.triu(acc.gram()), np.triu(F.T @ F)))
        True
    """

    def __init__(self, table: np.ndarray, columns: np.ndarray, dense: int, classes: int) -> None:
        self.columns = np.asarray(columns, dtype=np.int64)
        self.table = np.ascontiguousarray(table[self.columns])
        p = len(self.columns)
        self.dense = int(min(max(dense, 0), p))
        self.G_dense = np.zeros((self.dense, self.dense), order="F")
        self.cross = np.zeros((p, p - self.dense))
        self.XtY = np.zeros((p, classes))
        self.yy = 0.0
        self.count = 0

    @property
    def p(self) -> int:
        return len(self.columns)

    def add(self, X2: np.ndarray, Y: np.ndarray) -> None:
        """Add samples ``X2`` (n, D) with targets ``Y`` (n, classes)."""
        if len(X2) == 0:
            return
        self._buffer, ft = _scratch(getattr(self, "_buffer", None), self.p, len(X2))
        MK.monomial_rows(transposed_chunk(X2, 0, len(X2)), self.table, ft)
        if self.dense:
            # ft[:dense].T is the (n, dense) design block in Fortran order: no copy into BLAS.
            out = blas.dsyrk(1.0, ft[: self.dense].T, beta=1.0, c=self.G_dense, trans=1, lower=0, overwrite_c=1)
            if out is not self.G_dense:  # BLAS wrote a copy (not expected for a Fortran-ordered c)
                self.G_dense = out
        if self.dense < self.p:
            ptr, idx, vals = K.sparse_columns(ft, self.dense)
            K.add_sparse_cross(ft, self.dense, ptr, idx, vals, self.cross)
        self.XtY += ft @ Y
        self.yy += float(np.sum(Y * Y))
        self.count += len(X2)

    def gram(self) -> np.ndarray:
        """The accumulated Gram ``(p, p)``, Fortran order; read its upper triangle only.

        Below the diagonal it is zero except for a few correct symmetric
        entries next to the diagonal of the sparse block (see the kernel).
        """
        out = np.zeros((self.p, self.p), order="F")
        out[: self.dense, : self.dense] = self.G_dense  # dsyrk never writes its lower triangle
        out[:, self.dense:] = self.cross
        return out

    def add_to(self, out: np.ndarray) -> np.ndarray:
        """Add the accumulated upper triangle into ``out`` (p, p) in place and return it."""
        out[: self.dense, : self.dense] += self.G_dense
        out[:, self.dense:] += self.cross
        return out

    def release(self) -> None:
        """Drop the Gram blocks (after :meth:`gram`), keeping ``XtY``, ``yy`` and ``count``."""
        self.G_dense = self.cross = self._buffer = None

    def sums(self) -> tuple:
        """``(G_dense, cross, XtY, yy, count)``: what accumulators of disjoint samples add up (:meth:`from_sums`)."""
        return self.G_dense, self.cross, self.XtY, self.yy, self.count

    @classmethod
    def from_sums(cls, table: np.ndarray, columns: np.ndarray, dense: int, sums: tuple) -> "GramAccumulator":
        """The accumulator of the samples whose :meth:`sums` were added (shards on a cluster).

        Example:
            >>> from symnet.core.model.polyreg import monomial_table
            >>> t = monomial_table((1, 2, 2), 2, 2); X = np.random.default_rng(0).random((9, 4))
            >>> a, b, c = (GramAccumulator(t, np.arange(len(t)), 3, 1) for _ in range(3))
            >>> a.add(X[:4], np.ones((4, 1))); b.add(X[4:], np.ones((5, 1))); c.add(X, np.ones((9, 1)))
            >>> both = GramAccumulator.from_sums(t, np.arange(len(t)), 3, [x + y for x, y in zip(a.sums(), b.sums())])
            >>> bool(np.allclose(both.gram(), c.gram())), both.count
            (True, 9)
        """
        out = cls.__new__(cls)
        out.columns = np.asarray(columns, dtype=np.int64)
        out.table = np.ascontiguousarray(table[out.columns])
        out.dense = int(dense)
        out.G_dense, out.cross, out.XtY, out.yy, out.count = sums
        out.G_dense = np.asfortranarray(out.G_dense)
        out.yy, out.count = float(out.yy), int(out.count)
        return out


def dense_split(counts: np.ndarray, n: int) -> int:
    """How many of the columns (sorted by non-zero count, descending) should go to dsyrk.

    Cost in dense multiply-adds: n d^2 / 2 for dsyrk over the first d columns,
    plus SPARSE_COST * p * (non-zeros of the others) for the sparse kernel.
    """
    p = len(counts)
    if p == 0:
        return 0
    d = np.arange(p + 1, dtype=np.float64)
    tail = np.concatenate([np.cumsum(counts[::-1])[::-1], [0]]).astype(np.float64)
    cost = n * d * d / 2.0 + SPARSE_COST * p * tail
    return int(np.argmin(cost))


# --------------------------------------------------------------------------- solver
class PolyRegSolver(Solver):
    """Closed-form ridge regression over windowed monomials (see the module docstring).

    Options:
        degree (2), window (3): the features (ignored when ``fit`` gets a
            :class:`PolyRegModel`, whose own degree and window are used).
        method ("auto"): ``"exact"`` (Gram + Cholesky), ``"cg"`` (matrix-free
            preconditioned conjugate gradients, :mod:`symnet.solvers.polyreg_matfree`),
            ``"bagging"``, or ``"auto"``: exact when its Gram and Cholesky fit in
            ``memory_gb``, else cg; the choice and both memory estimates are
            announced before the fit (one notice, ``symnet: note:`` on the
            command line).
        cg_tol (1e-5): cg: stop the final solve when every class's relative
            residual ``||X^T Y - (G + lam I) W|| / ||X^T Y||`` is at most this.
        cg_search_tol (1e-3): cg: the same for the solves that choose the ridge
            (the validation error needs far less accuracy than the model: on
            MNIST at degree 3, 1e-3 chose the same ridge as 1e-4, with the same
            test accuracy, in 84 search iterations instead of 172).
        cg_iters (400): cg: at most this many iterations (data passes) per solve.
        precond ("subsample"): cg: "subsample" (Gram of ``precond_samples``
            random samples plus the exact diagonal, through Woodbury),
            "jacobi" or "none".
        precond_samples (4000): cg: samples of the subsample preconditioner
            (iterations fall as 1/m; memory ``m x p_used`` float64).
        memory_gb (8.0): memory the fit may use: ``auto`` picks exact when its
            Gram (or dual kernel) fits, and cg keeps its walks when they fit too.
        cg_lists (None): cg: keep each block of samples' walk of the monomial
            tree (which monomials are non-zero, their float32 values: about 5
            bytes per non-zero feature of each sample, 2.4 GB on MNIST at degree
            3) so that every CG pass reads them instead of walking the tree
            again (products 1.5x, CG iterations 1.2x faster on MNIST); the final
            solve is confirmed on walked float64 products. Tolerances below 1e-6
            keep float64 values (9 bytes). None: keep them when cg's memory
            estimate with them fits ``memory_gb``.
        ridge (None): the penalty ``lam`` of ``SSE + lam ||W||^2``; ``None``
            chooses it from ``ridge_grid`` on a validation split.
        ridge_grid: candidate penalties when ``ridge`` is None (default: the
            decades from 0.1 to 1000; on MNIST the best lies near 30).
        ridge_search ("walk"): exact (cg scores every candidate by projection,
            :meth:`symnet.solvers.polyreg_matfree.CGFit.choose_ridge`): "grid" solves for every grid value;
            "walk" starts in the middle of the grid and walks towards the
            better neighbour while the validation score improves (3 to 4
            solves on MNIST instead of 5), assuming a single optimum.
        refine_ridge (True): exact: after the grid, also try the geometric
            midpoints between the best value and its two neighbours (two more
            solves); bagging: add every midpoint of the grid to the candidates.
        select_by ("mse"): choose the ridge by validation squared error
            ("mse") or validation accuracy ("accuracy").
        val_size (None): samples held out to choose the ridge (the last ones
            of the training set); None means ``min(5000, N // 10)``.
        batches (60), batch_size (2000): bagging subsets.
        chunk_size (4096): samples per Gram chunk (bigger chunks run dsyrk
            faster and need ``chunk_size * p * 8`` bytes).
        gram_steps (4): exact method only: the Gram accumulation is split over
            this many steps (so the progress bar moves and a time limit is
            checked); the last of them also chooses the ridge and solves. A
            time limit that expires during accumulation triggers the solve at
            once, on the samples accumulated so far (``samples`` in the
            history); the solve itself is not interrupted.
        dense_columns (None): force the number of Gram columns handled by
            dsyrk (None: the cost model decides); for tests and profiling.
        seed (0): bagging subsets.

    Steps: exact: ``gram_steps`` steps, each accumulating a share of the
    chunks, the last one solving (the model is zero until then); a ``steps``
    budget below ``gram_steps`` puts the chunks into that many steps, so the
    model is always solved on every sample; cg: three steps (right-hand sides
    and preconditioner; the ridge search, which also runs the refit's CG in the
    same passes; the refit on all samples), fewer when the budget grants fewer
    (they are then done together); bagging: one subset per step. ``fit`` with
    neither ``steps`` nor a time limit runs exactly these.
    Resuming an exact fit re-accumulates the chunks of the finished steps
    (checkpoints hold no Gram). Bagging reports no loss of its own: the
    training loop scores the whole training set after each subset for it,
    which costs more wall time than the fit (not counted in ``time``).

    History extras: ``ridge_used``, ``val_acc`` and ``val_mse`` (ridge chosen),
    ``samples``, ``features``, ``features_used``, ``dense_columns``,
    ``gram_time``, ``solve_time``, ``peak_rss_mb``; cg: ``passes``,
    ``cg_path`` (each CG run's ridge, iterations and validation error, then each
    candidate's projected validation error), ``cg_iterations``,
    ``cg_residual``, ``cg_converged``, ``prepare_time``, ``precond_time``,
    ``search_time``, ``mem_exact_gb`` and ``mem_cg_gb``; bagging: ``batch_test_acc``
    (the subset's own model on the test set; the ``test_acc`` column is the
    averaged model's).
    """

    name: ClassVar[str] = "polyreg"
    #: ``fit`` trains a PolyRegModel of its own unless it is given one (see ``model_``).
    builds_model: ClassVar[bool] = True
    shardable: ClassVar[bool] = True
    OPTIONS: ClassVar[dict[str, Option]] = {
        "degree": Option(2, "int", low=1, help="highest monomial degree"),
        "window": Option(3, "window", none=True, help="window side, (height, width), or None (every product)"),
        "method": Option("auto", "choice", choices=("auto", "exact", "cg", "bagging"),
                         help="Gram + Cholesky, matrix-free CG, bagging, or auto (exact if its Gram fits memory_gb)"),
        "ridge": Option(None, "float", low=0.0, none=True, help="the penalty; None: chosen on a validation split"),
        "ridge_grid": Option((0.1, 1.0, 10.0, 100.0, 1000.0), "floats", low=0.0,
                             help="candidate penalties when ridge is None"),
        "ridge_search": Option("walk", "choice", choices=("walk", "grid"),
                               help="exact: walk from the grid's middle, or solve for every value"),
        "refine_ridge": Option(True, "bool", help="also try the geometric midpoints next to the best value"),
        "select_by": Option("mse", "choice", choices=("mse", "accuracy"),
                            help="choose the ridge by validation squared error or accuracy"),
        "val_size": Option(None, "int", low=1, none=True,
                           help="samples held out to choose the ridge (None: min(5000, N // 10))"),
        "batches": Option(60, "int", low=1, help="bagging: subsets"),
        "batch_size": Option(2000, "int", low=1, help="bagging: samples per subset"),
        "chunk_size": Option(4096, "int", low=1, help="samples per Gram chunk"),
        "gram_steps": Option(4, "int", low=1, help="exact: steps the Gram accumulation is split over"),
        "dense_columns": Option(None, "int", low=0, none=True,
                                help="force the number of Gram columns handled by dsyrk (None: cost model)"),
        "seed": Option(0, "int", low=0, help="seed of the bagging subsets and of the cg preconditioner's subsample"),
        # matrix-free solves (symnet/solvers/polyreg_matfree.py)
        "cg_tol": Option(1e-5, "float", low=0.0, low_open=True,
                         help="cg: relative residual of the final solve"),
        "cg_search_tol": Option(1e-3, "float", low=0.0, low_open=True,
                                help="cg: relative residual of the solves that choose the ridge"),
        "cg_iters": Option(400, "int", low=1, help="cg: iterations (data passes) per solve at most"),
        "precond": Option("subsample", "choice", choices=MF.PRECONDITIONERS, help="cg: preconditioner"),
        "precond_samples": Option(4000, "int", low=1, help="cg: samples of the subsample preconditioner"),
        "memory_gb": Option(8.0, "float", low=0.0, low_open=True,
                            help="memory the fit may use: auto picks exact if it fits, cg keeps its walks if they fit"),
        "cg_lists": Option(None, "bool", none=True,
                           help="cg: keep the tree walks in memory (float32, 5 bytes per non-zero feature and sample) "
                                "so passes read them (None: if they fit memory_gb)"),
    }
    #: ``fit`` with no budget runs to its end by itself (the command line sets no default time limit).
    ends_by_itself: ClassVar[bool] = True

    @property
    def step_unit(self) -> str:  # type: ignore[override]
        return "batch" if self.options.get("method", self.defaults["method"]) == "bagging" else "step"

    @property
    def default_steps(self) -> int:
        method = self.options.get("method", self.defaults["method"])
        if method == "bagging":
            return int(self.options.get("batches", self.defaults["batches"]))
        gram_steps = int(self.options.get("gram_steps", self.defaults["gram_steps"]))
        # auto: the larger, so that either method finishes (cg stops by itself after its steps)
        return CG_STEPS if method == "cg" else max(gram_steps, CG_STEPS) if method == "auto" else gram_steps

    # ------------------------------------------------------------ setup
    def _setup(self, model, data, rng: np.random.Generator) -> None:
        o = self.opts_
        self._grid = np.unique(np.asarray(o["ridge_grid"]))
        if isinstance(model, PolyRegModel):
            for key in ("degree", "window"):
                if key in self.options and self.options[key] != getattr(model, key):
                    raise SolverError(f"option {key}={self.options[key]!r} contradicts the model's "
                                      f"{key}={getattr(model, key)!r}; drop the option or build the model with it")
            if model.input_shape != tuple(data.input_shape) or model.num_outputs != data.num_classes:
                raise SolverError(f"the model is built for inputs {model.input_shape} and {model.num_outputs} "
                                  f"classes but the data has {tuple(data.input_shape)} and {data.num_classes}; "
                                  "build the model from this dataset")
        else:
            model = PolyRegModel(data.input_shape, data.num_classes, o["degree"], o["window"])
        self.model_ = model
        self._rng = rng
        width = int(np.prod(data.input_shape))
        self._X2 = data.x_train.reshape(len(data.x_train), width)
        self._X2_test = data.x_test.reshape(len(data.x_test), width)
        n = len(self._X2)
        p = model.num_features
        self._choose_method()
        if o["method"] == "exact" and self._form == "primal" and p > MAX_EXACT_FEATURES:
            raise SolverError(f"{p:,} features are too many for method='exact' (its Gram needs "
                              f"{3 * p * p * 8 / 2**30:.0f} GB); use method='cg' (or 'auto'), 'bagging', or a smaller degree/window")
        if o["ridge"] is None:
            n_val = min(5000, n // 10) if o["val_size"] is None else int(o["val_size"])
            if n_val < 1 or n_val >= n:
                raise SolverError(f"cannot hold out {n_val} of {n} training samples to choose the ridge; "
                                  "pass ridge=<value> or a val_size between 1 and N-1")
        else:
            n_val = 0
        self._n_val = n_val
        self._ridge_used = None if o["ridge"] is None else float(o["ridge"])
        self._solved = False
        self._shards_ = None
        self._queue: list = []
        if self.client_ is not None and o["method"] == "exact" and self._form == "primal":
            # the rows in shards on the workers, cut where the Gram chunks start (each chunk on one worker)
            self._shards_ = self._samples(model, self._X2, self._Y_train,
                                          boundaries=[s for s, _, _ in self._chunk_bounds()])
        elif self.client_ is not None and o["method"] != "bagging":
            what = "the dual form (an n x n kernel)" if o["method"] == "exact" else "method cg"
            self._notify(f"{what} runs in this process: the Dask cluster takes the exact method's primal Gram "
                         "accumulation and bagging's subsets")
        if o["method"] == "exact":
            self._planned = False
            self._groups = self._groups_done = 0
            self._reserve = 0.0  # seconds kept back from a time limit for the Cholesky solves still to come
        elif o["method"] == "cg":
            self._cg = None
            self._cg_stage = 0
            self._cg_W = None
            self._cg_best = math.nan
            self._cg_reported = 0.0
            self._loss = math.nan
            # the stages (prepare, search, refit; no search with a given ridge) go into the steps granted
            stages = ["prepare", "search", "refit"] if o["ridge"] is None else ["prepare", "refit"]
            steps = min(len(stages), int(self.steps_budget_)) if self.steps_budget_ else len(stages)
            self._cg_groups = [stages[i * len(stages) // steps:(i + 1) * len(stages) // steps] for i in range(steps)]
            self._cg_groups_done = 0
            self._cg_stages_done = 0
        else:
            self._batches_done = 0
            self._bag_sums = self._bag_val = self._val_features = self._test_t = None
            self._pool = np.arange(n - n_val)
            if o["batch_size"] > len(self._pool):
                raise SolverError(f"batch_size {o['batch_size']} exceeds the {len(self._pool)} training samples "
                                  "available for bagging; lower batch_size")

    # ------------------------------------------------------------ exact
    def _plan_exact(self) -> None:
        """Count each monomial's non-zeros (one pass), order and split the columns, cut the chunks."""
        o = self.opts_
        model = self.model_
        n = len(self._X2)
        chunk = int(o["chunk_size"])
        t0 = time.perf_counter()
        if self._shards_ is not None:  # integer counts: every shard counts its own rows, exactly
            counts = self._shards_.reduce(shard_nonzero_counts, model.table, chunk)
        else:
            counts = np.zeros(model.num_features, dtype=np.int64)
            for s, e in row_blocks(n, model.num_features, chunk):
                counts += MK.monomial_nonzero_counts(transposed_chunk(self._X2, s, e), model.table)[0]
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] > 0]
        dense = dense_split(counts[order], n) if o["dense_columns"] is None else int(o["dense_columns"])
        self._columns = order
        self._dense = dense
        k = model.num_outputs
        if self._shards_ is not None:  # the Gram blocks live on the shards until the solve: only counts here
            self._gram_key = uuid.uuid4().hex
            self._sent_chunks = []
            self._acc_train = _Count()
            self._acc_val = _Count() if self._n_val else None
        else:
            self._acc_train = GramAccumulator(model.table, order, dense, k)
            self._acc_val = GramAccumulator(model.table, order, dense, k) if self._n_val else None
        bounds = self._chunk_bounds()
        self._chunks = bounds
        # The Gram chunks go into as many steps as the budget allows (at most gram_steps), so that the last
        # step the budget grants solves on every sample: a budget of fewer steps never leaves a zero model.
        steps = self._groups if self._groups else int(o["gram_steps"])
        if not self._groups and self.steps_budget_:
            steps = min(steps, int(self.steps_budget_))
        self._groups = steps
        self._chunk_groups = [bounds[i * len(bounds) // steps:(i + 1) * len(bounds) // steps] for i in range(steps)]
        self._groups_done = 0
        self._samples_reported = -n  # the counting pass is one pass over the data
        self._gram_time = time.perf_counter() - t0
        self._planned = True
        if self.time_limit_ is not None:
            self._plan_budget(len(order))

    def _plan_budget(self, p_used: int) -> None:
        """Under a time limit: estimate the Cholesky solves still to come (one per ridge tried, one for the
        refit), keep their time back from the Gram accumulation and the search, and say so when even the
        fewest of them (one candidate and the refit) do not fit in what is left."""
        one = cholesky_seconds(p_used)
        solves = 2 if self._ridge_used is None else 1
        self._reserve = solves * one
        left = self._deadline - time.perf_counter() if self._deadline is not None else math.inf
        if self._reserve > left:
            self._notify(f"the time limit leaves {max(left, 0.0):.0f} s, but the closing Cholesky solve"
                         f"{'s' if solves > 1 else ''} of the {p_used:,}-feature Gram need about "
                         f"{self._reserve:.0f} s here (estimated); a solve cannot be cut, so the fit will end past "
                         f"the limit (fewer features, e.g. a lower degree or window, or a larger limit fit it)")
        else:
            self._notify(f"a time limit stops the Gram accumulation (the fit then uses the samples accumulated so "
                         f"far) and the search for the ridge, keeping back ~{self._reserve:.0f} s (estimated) for "
                         f"the closing Cholesky solve of the {p_used:,}-feature Gram, which cannot be cut")

    def _out_of_time(self, reserve: float = 0.0) -> bool:
        """Is the deadline (less ``reserve`` seconds) past?"""
        return self._deadline is not None and time.perf_counter() + reserve >= self._deadline

    def _chunk_bounds(self) -> list[tuple[int, int, bool]]:
        """``(start, stop, is_validation)`` of the Gram chunks, validation chunks first (so that a fit cut
        short by a time limit can still choose its ridge)."""
        n, chunk = len(self._X2), int(self.opts_["chunk_size"])
        n_train = n - self._n_val
        bounds = [(s + n_train, e + n_train, True) for s, e in row_blocks(self._n_val, 1, chunk)]
        return bounds + [(s, e, False) for s, e in row_blocks(n_train, 1, chunk)]

    def _accumulate(self, group: list) -> bool:
        """Add a group of chunks; False when the deadline stopped it early.

        On a cluster every shard adds the chunks of its own rows, one round trip per group: the
        deadline is checked before it.
        """
        if self._shards_ is not None:
            if self._out_of_time(self._reserve) and self._acc_train.count:  # a model needs training samples
                return False
            self._sent_chunks += list(group)
            self._shard_counts = self._shards_.reduce(
                shard_accumulate, self._gram_key, self.model_.table, self._columns, self._dense,
                self.model_.num_outputs, bool(self._n_val), self._sent_chunks)
            self._acc_train.count, val_count = self._shard_counts
            if self._acc_val is not None:
                self._acc_val.count = val_count
            return True
        Y = self._Y_train
        for s, e, is_val in group:
            if self._out_of_time(self._reserve) and self._acc_train.count:  # a model needs training samples
                return False
            acc = self._acc_val if is_val else self._acc_train
            acc.add(self._X2[s:e], Y[s:e])
        return True

    def _samples_seen(self) -> int:
        return self._acc_train.count + (self._acc_val.count if self._acc_val else 0)

    def _zero_model_info(self) -> dict:
        n = len(self._X2)
        passes = (self._samples_seen() - self._samples_reported) / n
        self._samples_reported = self._samples_seen()
        return {"loss": float(np.sum(self._Y_train ** 2)) / n, "updates": 0, "passes": passes,
                "gram_time": self._gram_time,
                "train_scores": np.zeros((n, self.model_.num_outputs)),
                "samples": self._samples_seen(), "features": self.model_.num_features,
                "features_used": len(self._columns), "dense_columns": self._dense, "peak_rss_mb": peak_rss_mb()}

    def _step_exact(self) -> dict:
        if self._solved:
            return {"loss": self._loss, "updates": 0, "converged": True, "ridge_used": self._ridge_used}
        if self._form == "dual":
            return self._solve_dual()
        if not self._planned:
            self._plan_exact()
        if self._groups_done < len(self._chunk_groups):
            t0 = time.perf_counter()
            complete = self._accumulate(self._chunk_groups[self._groups_done])
            self._gram_time += time.perf_counter() - t0
            if complete:
                self._groups_done += 1
            while self._acc_train.count == 0 and self._out_of_time(self._reserve) and complete \
                    and self._groups_done < len(self._chunk_groups):  # a model needs a training chunk at least
                complete = self._accumulate(self._chunk_groups[self._groups_done])
                self._groups_done += complete
            out_of_time = self._out_of_time(self._reserve)
            if complete and not out_of_time and self._groups_done < len(self._chunk_groups):
                return self._zero_model_info()
        # The last group, or a time limit reached: the loop would stop before another step, so solve now.
        return self._solve_exact()

    def _solve_exact(self) -> dict:
        t0 = time.perf_counter()
        if self._shards_ is not None and self._sent_chunks:  # the shards' Gram blocks, added here in shard order
            train, val_sums = self._shards_.reduce(
                shard_gram_sums, self._gram_key, self.model_.table, self._columns, self._dense,
                self.model_.num_outputs, bool(self._n_val), self._sent_chunks)
            table = self.model_.table
            self._acc_train = GramAccumulator.from_sums(table, self._columns, self._dense, train)
            if self._acc_val is not None:
                self._acc_val = GramAccumulator.from_sums(table, self._columns, self._dense, val_sums)
            self._shards_.reduce(shard_release, self._gram_key)
        acc, val = self._acc_train, self._acc_val
        passes = (self._samples_seen() - self._samples_reported) / len(self._X2)
        G = acc.gram()
        acc.release()
        info: dict[str, Any] = {}
        ridge = self._ridge_used
        if ridge is None:
            if val is None or val.count == 0 or acc.count == 0:
                ridge = float(np.median(self._grid))
            else:
                table = np.ascontiguousarray(self.model_.table[self._columns])
                Xv = self._X2[len(self._X2) - self._n_val:]
                ridge, figures, _ = self._select_ridge(lambda lam: ridge_solve(G, acc.XtY, lam),
                                                       lambda W: scores(Xv, table, W), self._reserve / 2)
                info.update(figures)
                ridge *= (acc.count + val.count) / acc.count
        if val is not None and val.count:
            val.add_to(G)
            val.release()
            XtY, yy, count = acc.XtY + val.XtY, acc.yy + val.yy, acc.count + val.count
        else:
            XtY, yy, count = acc.XtY, acc.yy, acc.count
        W = ridge_solve(G, XtY, ridge)
        weight = np.zeros_like(self.model_.weight)
        weight[self._columns] = W
        self.model_.weight[...] = weight
        # SSE from the accumulated moments: |Y|^2 - 2 <W, X^T Y> + <W, G W>.
        n = len(self._X2)
        if count == n:
            GW = blas.dsymm(1.0, G, W, side=0, lower=0) if len(W) else W
            sse_ = yy - 2.0 * float(np.sum(W * XtY)) + float(np.sum(W * GW))
        else:  # a time limit left samples out of the Gram: score them all
            self._notify(f"the time limit ended the Gram accumulation after {count:,} of {n:,} samples: the "
                         "model is fitted on those")
            sse_ = sse(scores(self._X2, self.model_.table, self.model_.weight), self._Y_train)
        self._ridge_used = float(ridge)
        self._loss = value(sse_, float(np.sum(W * W)), ridge) / n
        self._solved = True
        self._solve_time = time.perf_counter() - t0
        self._acc_train = self._acc_val = None  # free the Gram blocks
        info.update({"loss": self._loss, "updates": self.model_.num_params, "passes": passes, "converged": True,
                     "ridge_used": self._ridge_used, "samples": count, "features": self.model_.num_features,
                     "features_used": len(self._columns), "dense_columns": self._dense,
                     "gram_time": self._gram_time, "solve_time": self._solve_time, "peak_rss_mb": peak_rss_mb()})
        return info

    def _solve_dual(self) -> dict:
        """The exact fit in one step through the ``n x n`` kernel ``X X^T`` (fewer samples than features).

        ``alpha = (K + lam I)^-1 Y`` and ``W = X^T alpha``: the same coefficients as the primal
        ``(X^T X + lam I)^-1 X^T Y`` (the minimum-norm ones at ``lam = 0``). The ridge is chosen on the
        validation split from the training block of ``K`` (validation scores ``K_vt alpha``), then
        scaled by ``N / N_train`` for the refit on all samples, as in the primal form.
        """
        t0 = time.perf_counter()
        model = self.model_
        n = len(self._X2)
        nt = n - self._n_val
        warned: list[bool] = []

        def check(done: int, total: int, seconds: float) -> None:  # the kernel cannot be cut: say so early
            if self._deadline is None or warned or done == total:
                return
            left = self._deadline - time.perf_counter()
            if seconds * (total - done) / done > left:
                warned.append(True)
                self._notify(f"the time limit leaves {max(left, 0.0):.0f} s, but the {n:,} x {n:,} kernel over "
                             f"{total:,} features needs about {seconds * total / done:.0f} s (estimated from its "
                             f"first {done:,} features); it cannot be cut, so the fit will end past the limit")

        Kmat, used = kernel_matrix(self._X2, model.table, check)
        _fill_lower(Kmat)
        gram_time = time.perf_counter() - t0
        info: dict[str, Any] = {}
        ridge = self._ridge_used
        if ridge is None:
            Ktt, Kvt, Yt = Kmat[:nt, :nt], Kmat[nt:, :nt], self._Y_train[:nt]
            ridge, figures, _ = self._select_ridge(lambda lam: ridge_solve(Ktt, Yt, lam), lambda a: Kvt @ a)
            info.update(figures)
            ridge *= n / nt
        alpha = ridge_solve(Kmat, self._Y_train, ridge)
        W = dual_weights(self._X2, model.table, alpha)
        model.weight[...] = W
        train_scores = Kmat @ alpha
        self._ridge_used = float(ridge)
        self._loss = value(sse(train_scores, self._Y_train), float(np.sum(W * W)), ridge) / n
        self._solved = True
        info.update({"loss": self._loss, "updates": model.num_params, "passes": 2.0, "converged": True,
                     "ridge_used": self._ridge_used, "samples": n, "features": model.num_features,
                     "features_used": used, "gram_time": gram_time, "solve_time": time.perf_counter() - t0 - gram_time,
                     "train_scores": train_scores, "peak_rss_mb": peak_rss_mb()})
        return info

    def _select_ridge(self, fit, score, reserve: float = 0.0) -> tuple[float, dict, np.ndarray]:
        """Fit ``fit(lam)`` for every grid value and keep the best on the validation split.

        ``score(coefficients)`` gives the validation scores of a fit; a candidate is not started
        (after the first) once the deadline less ``reserve`` seconds is past.

        "Best" is the lowest validation squared error (``select_by="mse"``,
        ties: higher accuracy) or the highest validation accuracy (ties: lower
        squared error). The squared error is the objective being minimised and
        varies smoothly with the ridge; accuracy on a few thousand samples
        moves in steps of one sample, so it picks among near-ties at random.
        Returns the value, the validation figures and the fitted coefficients.
        """
        n = len(self._X2)
        yv = self.data_.y_train[n - self._n_val:]
        Yv = self._Y_train[n - self._n_val:]
        by_mse = self.opts_["select_by"] == "mse"
        best = None
        tried: list[float] = []
        cut: list[float] = []

        def consider(lam: float) -> None:
            nonlocal best
            if best is not None and self._out_of_time(reserve):
                if not cut:
                    cut.append(lam)
                    self._notify(f"the time limit ended the search for the ridge after {len(tried)} value(s); "
                                 f"using the best of them, {best[1]:g}")
                return
            tried.append(lam)
            W = fit(lam)
            sv = score(W)
            acc, mse = accuracy(sv, yv), sse(sv, Yv) / len(yv)
            key = (-mse, acc) if by_mse else (acc, -mse)
            if best is None or key > best[0]:
                best = (key, lam, {"val_acc": acc, "val_mse": mse}, W)

        grid = [float(v) for v in self._grid]
        if self.opts_["ridge_search"] == "grid":
            for lam in grid:
                consider(lam)
        else:
            # Walk: start mid-grid, step towards the better neighbour while the score improves
            # (the validation error is unimodal in the ridge in practice); saves solves.
            i = len(grid) // 2
            consider(grid[i])
            for step in (-1, 1):
                j = i + step
                while 0 <= j < len(grid):
                    before = best[1]
                    consider(grid[j])
                    if best[1] == before:
                        break
                    j += step
                if best[1] != grid[i]:  # improved going down: one optimum means up is worse
                    break
        if self.opts_["refine_ridge"]:
            # geometric midpoints between the best value and its neighbours on the grid
            i = grid.index(best[1])
            for j in (i - 1, i + 1):
                if 0 <= j < len(grid) and grid[i] > 0 and grid[j] > 0:
                    consider(math.sqrt(grid[i] * grid[j]))
        return best[1], best[2], best[3]

    # ------------------------------------------------------------ bagging
    def _draw_subset(self, rng: np.random.Generator) -> np.ndarray:
        return np.sort(rng.choice(self._pool, size=int(self.opts_["batch_size"]), replace=False))

    def _subset_fit(self, idx: np.ndarray, ridge) -> np.ndarray:
        """:func:`fit_subset` of the subset ``idx``: here, or (on a cluster) by a task that the previous
        steps started, so that the workers fit the next subsets while this one is averaged."""
        if self.client_ is None:
            self._buffer, ft = _scratch(getattr(self, "_buffer", None), len(self.model_.table), len(idx))
            return fit_subset(self._X2[idx], self._Y_train[idx], self.model_.table, ridge, out=ft)
        if self._queue and not (np.array_equal(self._queue[0][0], idx) and self._queue[0][1] == ridge):
            self._cancel_queue()  # not the subset the queue drew (a resumed or changed run): start again
        if not self._queue:
            self._queue.append((idx, ridge, self._submit_subset(idx, ridge)))
        # top up: the subsets of the next steps, drawn by a copy of the generator (its own state moves by
        # exactly one draw per step, as without a cluster)
        ahead = copy.deepcopy(self._rng)
        for _ in range(len(self._queue) - 1):
            self._draw_subset(ahead)
        left = int(self.opts_["batches"]) - self._batches_done - len(self._queue)
        workers = max(1, len(self.client_.scheduler_info(n_workers=-1)["workers"]))
        while left > 0 and len(self._queue) < workers + 1:
            nxt = self._draw_subset(ahead)
            self._queue.append((nxt, ridge, self._submit_subset(nxt, ridge)))
            left -= 1
        _, _, future = self._queue.pop(0)
        return future.result()  # a task whose worker died is run again by the scheduler

    def _submit_subset(self, idx: np.ndarray, ridge):
        return self.client_.submit(fit_subset, self._X2[idx], self._Y_train[idx], self.model_.table, ridge,
                                   pure=False, key=f"symnet-bag-{self._batches_done}-{uuid.uuid4().hex[:8]}")

    def _cancel_queue(self) -> None:
        for _, _, future in self._queue:
            future.cancel()
        self._queue = []

    def _bagging_candidates(self) -> list[float]:
        grid = sorted(float(v) for v in self._grid)
        if self.opts_["refine_ridge"]:
            grid += [math.sqrt(x * y) for x, y in zip(grid, grid[1:]) if x > 0]
        return sorted(grid)

    def _step_bagging(self) -> dict:
        o = self.opts_
        t0 = time.perf_counter()
        idx = self._draw_subset(self._rng)
        info: dict[str, Any] = {}
        k = self._batches_done
        if o["ridge"] is None:
            # One running average per candidate ridge; the model is the one whose average
            # scores best on the validation split so far (averaging cuts the variance of the
            # single fits, so the best penalty for the average is below the best for one fit).
            lams = self._bagging_candidates()
            fits = self._subset_fit(idx, tuple(lams))
            if self._bag_sums is None:
                self._bag_sums = np.zeros((len(lams),) + self.model_.weight.shape)
                self._bag_val = np.zeros((len(lams), self._n_val, self.model_.num_outputs))
            self._bag_sums += fits
            n = len(self._X2)
            Wcat = np.concatenate(list(fits), axis=1)
            if self._val_features is None and self._n_val * self.model_.num_features <= VAL_FEATURES_MAX:
                # The validation features are scored against every candidate at every step: keep them.
                self._val_features = np.empty((self.model_.num_features, self._n_val))
                MK.monomial_rows(transposed_chunk(self._X2, n - self._n_val, n), self.model_.table,
                                self._val_features)
            if self._val_features is not None:
                sv = self._val_features.T @ Wcat
            else:  # too many to keep (degree 3): over each sample's non-zero monomials when that is cheaper
                sv = scores(self._X2[n - self._n_val:], self.model_.table, Wcat, tree=self.model_.tree)
            self._bag_val += sv.reshape(self._n_val, len(lams), -1).transpose(1, 0, 2)
            yv, Yv = self.data_.y_train[n - self._n_val:], self._Y_train[n - self._n_val:]
            keys = []
            for i in range(len(lams)):
                avg = self._bag_val[i] / (k + 1)
                acc, mse = accuracy(avg, yv), sse(avg, Yv) / self._n_val
                keys.append(((-mse, acc) if o["select_by"] == "mse" else (acc, -mse), acc, mse))
            best = max(range(len(lams)), key=lambda i: keys[i][0])
            self._ridge_used = lams[best]
            self.model_.weight[...] = self._bag_sums[best] / (k + 1)
            W = fits[best]
            info.update({"val_acc": keys[best][1], "val_mse": keys[best][2]})
        else:
            W = self._subset_fit(idx, self._ridge_used)
            self.model_.weight *= k / (k + 1)
            self.model_.weight += W / (k + 1)
        self._batches_done = k + 1
        if len(self._X2_test):
            if self._test_t is None:  # transposed once: the copy costs as much as the scoring
                self._test_t = np.ascontiguousarray(self._X2_test.T)
            info["batch_test_acc"] = accuracy(scores_transposed(self._test_t, self.model_.table, W),
                                              self.data_.y_test)
        info.update({"loss": None, "updates": self.model_.num_params, "passes": len(idx) / len(self._X2),
                     "ridge_used": self._ridge_used, "batch_time": time.perf_counter() - t0,
                     "features": self.model_.num_features, "peak_rss_mb": peak_rss_mb()})
        return info

    # ------------------------------------------------------------ matrix-free (cg); see polyreg_matfree
    def _choose_method(self) -> None:
        """Resolve method="auto" (exact if its Gram fits ``memory_gb``, else cg) and announce the choice;
        choose the exact method's form (dual when there are fewer samples than features in use)."""
        o = self.opts_
        model = self.model_
        n, p = len(self._X2), model.num_features
        self._form = "primal"
        self._keep_walks = False
        if o["method"] == "bagging" or (o["method"] == "exact" and n >= p):
            return
        probe = min(n, PROBE_SAMPLES)
        rows = np.ascontiguousarray(self._X2[:probe], dtype=np.float64)
        counts = MK.tree_nonzero_counts(rows, *model.tree, p, 1)[1]
        used = int(np.count_nonzero(counts))
        self._form = exact_form(n, used)
        n_val = 1 if o["ridge"] is None else 0
        exact_gb = MF.exact_memory_bytes(used, n_val, n) / 2**30
        if o["method"] == "exact":
            return
        self._walks_dtype = MF.list_dtype(min(float(o["cg_tol"]), float(o["cg_search_tol"])))
        lists = MF.lists_memory_bytes(float(np.sum(counts)) * n / probe, self._walks_dtype)
        args = (p, used, n, self._X2.shape[1], model.num_outputs, o["precond"], min(int(o["precond_samples"]), n),
                o["ridge"] is None, nb.get_num_threads())
        cg_gb = MF.cg_memory_bytes(*args) / 2**30
        with_lists_gb = MF.cg_memory_bytes(*args, lists=lists) / 2**30
        self._keep_walks = bool(o["cg_lists"]) if o["cg_lists"] is not None else with_lists_gb <= float(o["memory_gb"])
        if self._keep_walks:
            cg_gb = with_lists_gb
        self._plan_figures = {"mem_exact_gb": exact_gb, "mem_cg_gb": cg_gb}
        if o["method"] == "auto":
            fits = exact_gb <= float(o["memory_gb"]) and (self._form == "dual" or p <= MAX_EXACT_FEATURES)
            o["method"] = "exact" if fits else "cg"
            form = f" (dual form: {n:,} x {n:,} kernel)" if self._form == "dual" else ""
            self._notify(f"method {o['method']}{form if fits else ''} (auto, budget {float(o['memory_gb']):g} "
                         f"GB): {p:,} features, ~{used:,} non-zero in {probe:,} samples; estimated memory: exact "
                         f"{exact_gb:.2f} GB{' (dual)' if form else ''}, cg {cg_gb:.2f} GB"
                         f"{' (walks kept)' if self._keep_walks else ''}")

    def _cg_passes(self) -> float:
        fit = self._cg
        passes = fit.op.passes - self._cg_reported
        self._cg_reported = fit.op.passes
        return passes

    def _step_cg(self) -> dict:
        if self._solved:
            return {"loss": self._loss, "updates": 0, "converged": True, "ridge_used": self._ridge_used}
        info: dict[str, Any] = {"features": self.model_.num_features}
        info.update(getattr(self, "_plan_figures", {}))
        stages = list(self._cg_groups[self._cg_groups_done])
        later = [stage for group in self._cg_groups[self._cg_groups_done + 1:] for stage in group]
        i = 0
        while i < len(stages):
            stage = stages[i]
            if stage == "prepare" and self._cg is None:
                self._cg_prepare()
            elif stage == "search" and self._cg_stage == 0:
                info.update(self._cg_search())
            elif stage == "refit":
                info.update(self._cg_refit())
            self._cg_stages_done += 1
            i += 1
            if i == len(stages) and later and self._out_of_time():
                # the loop stops at the deadline before another step: the stages left run now, cut short
                # by the deadline, so that the fit ends with a model (and says how far it got)
                stages += later
                later = []
                self._cg_groups_done = len(self._cg_groups) - 1
        self._cg_groups_done += 1
        fit = self._cg
        info.update({"passes": self._cg_passes(), "features_used": fit.features_used,
                     "prepare_time": fit.prepare_time, "precond_time": fit.precond_time,
                     "lists_time": fit.lists_time, "lists_gb": fit.op.lists_bytes / 2**30,
                     "peak_rss_mb": peak_rss_mb()})
        if not self._solved:  # the model is zero until the refit
            n = len(self._X2)
            info.update({"loss": float(np.sum(self._Y_train ** 2)) / n, "updates": 0,
                         "train_scores": np.zeros((n, self.model_.num_outputs))})
        else:
            self._cg = None  # the fit's vectors and preconditioner are no longer needed
        return info

    def _cg_prepare(self) -> None:
        o = self.opts_
        op = MF.Operator(self._X2, self.model_.table, tree=self.model_.tree)
        self._cg = MF.CGFit(op, self._Y_train, self._n_val, o["precond"], int(o["precond_samples"]), self._rng,
                            keep_walks=self._keep_walks, walks_dtype=self._walks_dtype)
        self._cg.prepare()
        self._cg_reported = 0.0

    def _cg_search(self) -> dict:
        o = self.opts_
        fit = self._cg
        t0 = time.perf_counter()
        grid = [float(v) for v in self._grid]
        if self._out_of_time():
            self._cg_best, self._cg_W, self._cg_stage = grid[len(grid) // 2], None, 1
            self._notify(f"the time limit ran out before the search for the ridge; using the middle of the "
                         f"grid, {self._cg_best:g}")
            return {"search_time": 0.0}
        candidates = sorted(set(grid + ([math.sqrt(a * b) for a, b in zip(grid, grid[1:]) if a > 0]
                                        if o["refine_ridge"] else [])))
        ridge, figures, self._cg_W = fit.choose_ridge(
            candidates, grid[len(grid) // 2], o["select_by"], tol=float(o["cg_search_tol"]),
            max_iter=int(o["cg_iters"]), deadline=self._deadline)
        self._cg_best = ridge
        self._cg_stage = 1
        if self._deadline is not None and time.perf_counter() >= self._deadline:
            self._notify(f"the time limit ended the search for the ridge early; using the best candidate so far, "
                         f"{ridge:g}, and the refit's CG still runs to its tolerance")
        return dict(figures, search_time=time.perf_counter() - t0, cg_path=fit.path(),
                    cg_search_iterations=sum(fit.iterations.values()))

    def _cg_refit(self) -> dict:
        o = self.opts_
        fit = self._cg
        n = len(self._X2)
        t0 = time.perf_counter()
        if self._ridge_used is None:  # all samples, the ridge scaled to the same penalty per sample
            ridge, W0 = self._cg_best * n / fit.n_train, self._cg_W
        else:
            ridge, W0 = self._ridge_used, None
        self._cg_W = None
        # A time limit stops the refit's CG too: the model is then its last iterate (a partial solve,
        # or the start the search projected), and the notice says how far it got.
        W, res = fit.solve_all(ridge, W0, tol=float(o["cg_tol"]), max_iter=int(o["cg_iters"]),
                               deadline=self._deadline)
        if res.stopped_by_deadline and res.iterations == 0 and W0 is None:
            self._notify(f"the time limit ran out before the refit's first CG iteration: the model is zero "
                         f"(unsolved); preparing took {fit.prepare_time:.0f} s and each iteration is one more "
                         f"pass over the {n:,} samples, so allow a larger limit")
        elif res.stopped_by_deadline:
            start = "from the search's projection, " if W0 is not None else ""
            self._notify(f"the time limit stopped the refit's CG {start}after {res.iterations} iteration(s) at "
                         f"relative residual {res.residual:.2g}, above cg_tol {float(o['cg_tol']):g}: the model "
                         f"is a partial solve")
        elif not res.converged:
            self._notify(f"cg stopped after {res.iterations} iterations (cg_iters) at relative residual "
                         f"{res.residual:.2g}, above cg_tol {float(o['cg_tol']):g}")
        self.model_.weight[...] = W
        self._ridge_used = float(ridge)
        self._loss = value(sse(res.XW, self._Y_train), float(np.sum(W * W)), ridge) / n
        self._solved = True
        return {"loss": self._loss, "updates": self.model_.num_params, "converged": True,
                "ridge_used": self._ridge_used, "samples": n, "cg_iterations": res.iterations,
                "cg_residual": res.residual, "cg_converged": res.converged,
                "solve_time": time.perf_counter() - t0, "train_scores": res.XW}

    # ------------------------------------------------------------ hooks
    def _step(self) -> dict:
        if self.opts_["method"] == "bagging":
            return self._step_bagging()
        if self.opts_["method"] == "cg":
            return self._step_cg()
        return self._step_exact()

    @property
    def ridge_used(self) -> float:
        return float(self._ridge_used or 0.0)

    def _may_stop(self) -> bool:
        """Past the time limit, a fit that has started takes one more step: it solves with what it has."""
        return self.opts_["method"] == "bagging" or self._solved or self.history_.final["step"] == 0

    def _on_loop_end(self, stopped_by: str | None) -> None:
        """A fit that ends before its solve leaves a zero model: never silently."""
        if self.opts_["method"] == "bagging" or self._solved or stopped_by == "time":
            return  # past the limit an unsolved fit takes one more step (_may_stop): unless none ran, which
            # the training loop itself reports ("the time limit was spent before the first step")
        if stopped_by == "steps":
            why = f"the step budget ({self.steps_budget_}) ended the fit before its solve"
        else:
            why = "the fit was stopped before its solve"
        self._notify(f"{why}: the model is unsolved (all coefficients zero); allow more time or steps")

    def _state(self) -> dict[str, Any]:
        if self.opts_["method"] == "cg":
            return {"solved": int(self._solved), "ridge_used": np.nan if self._ridge_used is None else self._ridge_used,
                    "loss": self._loss, "cg_groups_done": self._cg_groups_done,
                    "cg_stages_done": self._cg_stages_done, "cg_stage": self._cg_stage, "cg_best": self._cg_best}
        if self.opts_["method"] == "bagging":
            state = {"batches_done": self._batches_done,
                     "ridge_used": np.nan if self._ridge_used is None else self._ridge_used}
            if self._bag_sums is not None:
                state.update(bag_sums=self._bag_sums, bag_val=self._bag_val)
            return state
        return {"groups_done": self._groups_done, "groups": self._groups, "solved": int(self._solved),
                "ridge_used": np.nan if self._ridge_used is None else self._ridge_used,
                "loss": getattr(self, "_loss", np.nan)}

    def _load_state(self, state: dict[str, Any]) -> None:
        ridge = float(state.get("ridge_used", np.nan))
        self._ridge_used = None if math.isnan(ridge) else ridge
        if self.opts_["method"] == "cg":
            # Checkpoints hold the stage and the chosen ridge, not the vectors: an unfinished fit
            # prepares again (one pass and the preconditioner) and goes on from its stage; a search
            # already done is not repeated (the refit then starts from zero).
            self._solved = bool(int(state.get("solved", 0)))
            self._loss = float(state.get("loss", np.nan))
            self._cg_stage = int(state.get("cg_stage", 0))
            self._cg_best = float(state.get("cg_best", np.nan))
            if not self._solved and self.opts_["ridge"] is None:
                self._ridge_used = None
            # the stages left all go into the next step (the budget of the first session is not known)
            done = int(state.get("cg_groups_done", 0))
            stages = ["prepare", "search", "refit"] if self.opts_["ridge"] is None else ["prepare", "refit"]
            self._cg_stages_done = int(state.get("cg_stages_done", 0))
            self._cg_groups = [[] for _ in range(done)] + [stages[self._cg_stages_done:]]
            self._cg_groups_done = done
            if not self._solved and self._cg_stages_done:
                self._cg_prepare()
            return
        if self.opts_["method"] == "bagging":
            self._batches_done = int(state["batches_done"])
            if "bag_sums" in state:
                self._bag_sums = np.array(state["bag_sums"], dtype=np.float64)
                self._bag_val = np.array(state["bag_val"], dtype=np.float64)
            return
        self._solved = bool(int(state.get("solved", 0)))
        self._loss = float(state.get("loss", np.nan))
        done = int(state.get("groups_done", 0))
        self._groups = int(state.get("groups", 0))
        if not self._solved and self._form == "primal":
            self._plan_exact()
            for group in self._chunk_groups[:done]:
                self._accumulate(group)
            self._samples_reported = self._samples_seen()
        self._groups_done = done


class _Count:
    """Where the Gram blocks live on a cluster's shards, the client keeps only their sample count."""

    count = 0


# --------------------------------------------------------------------------- work on the samples' shards
def fit_subset(X2: np.ndarray, Y: np.ndarray, table: np.ndarray, ridge, out: np.ndarray | None = None) -> np.ndarray:
    """Ridge coefficients of one bagging subset (rows ``X2``, targets ``Y``) over the monomials of ``table``.

    ``ridge`` a number: ``(p, K)`` coefficients, through the ``b x b`` dual system when the
    subset has fewer rows than features; a tuple of candidates: ``(len, p, K)`` coefficients
    from one Gram (:func:`~symnet.core.linalg.ridge_path`). ``out`` is a ``(p, b)`` buffer for
    the transposed features. A module function, so that a Dask worker runs the same code.

    Example:
        >>> from symnet.core.model.polyreg import monomial_table
        >>> t = monomial_table((1, 2, 2), 2, 2); X = np.random.default_rng(0).random((5, 4))
        >>> fit_subset(X, np.ones((5, 1)), t, 1.0).shape, fit_subset(X, np.ones((5, 1)), t, (1.0, 2.0)).shape
        ((15, 1), (2, 15, 1))
    """
    p, b = len(table), len(X2)
    ft = np.empty((p, b)) if out is None else out
    MK.monomial_rows(np.ascontiguousarray(X2.T, dtype=np.float64), table, ft)
    if isinstance(ridge, tuple):
        return ridge_path(ft.T, Y, ridge)
    if b < p:
        Kmat = blas.dsyrk(1.0, ft.T, trans=0, lower=0)  # X_b X_b^T, (b, b)
        return ft @ ridge_solve(Kmat, Y, ridge)
    G = blas.dsyrk(1.0, ft.T, trans=1, lower=0)  # X_b^T X_b, (p, p)
    return ridge_solve(G, ft @ Y, ridge)


def shard_nonzero_counts(samples, rows, table: np.ndarray, chunk: int) -> np.ndarray:
    """How many of the shard's samples each monomial of ``table`` is non-zero on."""
    counts = np.zeros(len(table), dtype=np.int64)
    for s, e in row_blocks(len(samples.X), len(table), chunk):
        counts += MK.monomial_nonzero_counts(transposed_chunk(samples.X, s, e), table)[0]
    return counts


def shard_accumulate(samples, rows, key: str, table: np.ndarray, columns: np.ndarray, dense: int, classes: int,
                     validation: bool, chunks: list) -> tuple[int, int]:
    """Add the shard's rows of every chunk in ``chunks`` (``(start, stop, is_validation)`` rows of the whole
    training set) that it has not added yet to its Gram accumulators; returns the samples added so far
    (training, validation).

    The accumulators stay in the shard's scratch under ``key``. The list is every chunk sent so
    far, so a shard rebuilt after its worker died adds them all again (nothing is lost).
    """
    held = samples.scratch.get(("polyreg", key))
    if held is None:
        held = {"train": GramAccumulator(table, columns, dense, classes),
                "val": GramAccumulator(table, columns, dense, classes) if validation else None, "done": set()}
        samples.scratch[("polyreg", key)] = held
    lo, hi = samples.offset, samples.offset + len(samples.X)
    for s, e, is_val in chunks:
        a, b = max(s, lo), min(e, hi)
        if a >= b or (s, e) in held["done"]:
            continue
        held["val" if is_val else "train"].add(samples.X[a - lo:b - lo], samples.Y[a - lo:b - lo])
        held["done"].add((s, e))
    return held["train"].count, (held["val"].count if held["val"] is not None else 0)


def shard_gram_sums(samples, rows, key: str, *accumulate_args) -> tuple:
    """The shard's accumulated sums (:meth:`GramAccumulator.sums`), training and validation, after
    :func:`shard_accumulate` with ``accumulate_args`` (nothing left to add, unless the shard was rebuilt)."""
    shard_accumulate(samples, rows, key, *accumulate_args)
    held = samples.scratch[("polyreg", key)]
    return held["train"].sums(), (held["val"].sums() if held["val"] is not None else None)


def shard_release(samples, rows, key: str) -> None:
    """Drop the shard's Gram accumulators."""
    samples.scratch.pop(("polyreg", key), None)
