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
    >>> from symnet.datasets import Dataset
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1000, 1, 6, 6)); y = (x[:, 0, 2, 2] * x[:, 0, 2, 3] > 0.25).astype(int)
    >>> data = Dataset("toy", x[:800], y[:800], x[800:], y[800:], 2)
    >>> model = PolyRegModel((1, 6, 6), 2, degree=2, window=2)
    >>> s = PolyRegSolver().fit(model, data, quiet=True)  # ridge chosen on the last 80 samples
    >>> model.num_features, s.history_.final["test_acc"] > 0.9
    (183, True)
"""

from __future__ import annotations

import math
import resource
import time
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas

from symnet.errors import DataError, ModelError, SolverError

from . import _polyreg_kernels as K
from .base import Solver, accuracy

#: Largest number of monomials a table may have (the table alone is then ~1 GB).
MAX_FEATURES = 20_000_000
#: Largest number of features the exact method accepts: its Gram is p x p float64
#: and a solve holds about three of them (p = 25,000 -> 15 GB).
MAX_EXACT_FEATURES = 25_000
#: Feature values held at once while predicting (float64 elements, ~128 MB).
_BLOCK_ELEMENTS = 1 << 24
#: Cost of one sparse multiply-add relative to one dense multiply-add inside
#: dsyrk, measured on the development machine (dsyrk and the gather kernel
#: timed side by side on the same chunks): used to split the Gram columns.
_SPARSE_COST = 16.0
#: Bagging with ridge=None keeps the validation features in memory up to this many float64 values (~1 GB).
_VAL_FEATURES_MAX = 1 << 27


# --------------------------------------------------------------------------- monomials
def _chw(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if any(s < 1 for s in shape) or not 1 <= len(shape) <= 3:
        raise ModelError(f"input shape must be (C, H, W), (H, W) or (F,) with positive sizes, got {shape}")
    return ((1, 1) + shape)[-3:] if len(shape) < 3 else shape  # type: ignore[return-value]


def _window_hw(window: Any, height: int, width: int) -> tuple[int, int]:
    if window is None:
        return height, width
    if isinstance(window, (int, np.integer)):
        sh = sw = int(window)
    else:
        try:
            sh, sw = (int(v) for v in window)
        except (TypeError, ValueError):
            raise ModelError(f"window must be a positive int, a pair (height, width) or None, got {window!r}") from None
    if sh < 1 or sw < 1:
        raise ModelError(f"window must be at least 1 x 1, got {window!r}")
    return min(sh, height), min(sw, width)


def _nondecreasing_tuples(m: int, d: int) -> np.ndarray:
    """All sorted d-tuples over range(m), shape (count, d), lexicographic."""
    tuples = np.arange(m, dtype=np.int64)[:, None]
    cells = np.arange(m, dtype=np.int64)
    for _ in range(d - 1):
        rows, nxt = np.nonzero(cells[None, :] >= tuples[:, -1:])
        tuples = np.column_stack([tuples[rows], nxt])
    return tuples


def monomial_table(input_shape: Sequence[int], degree: int = 2, window: Any = 3) -> np.ndarray:
    """Index table of every monomial of degree 0..``degree`` whose factors fit in a window.

    Inputs are flattened in (channel, row, column) order. A monomial is a
    multiset of flat positions (repeats allowed, so ``x_i^2`` is one); it is
    kept when the rows of its factors span fewer than ``window_h`` rows and
    their columns fewer than ``window_w`` columns; channels are unrestricted.
    A ``(F,)`` input is treated as one row of ``F`` columns.

    Args:
        input_shape: shape of one sample: ``(C, H, W)``, ``(H, W)`` or ``(F,)``.
        degree: highest degree, at least 1.
        window: side of the square window, a pair ``(height, width)``, or
            ``None`` for no restriction (every product of the inputs).

    Returns:
        int64 array ``(p, degree)``: row ``j`` holds the sorted flat indices of
        monomial ``j`` followed by ``-1`` padding. Rows are ordered by degree,
        then lexicographically; row 0 is the bias (all ``-1``).

    Raises:
        ModelError: bad shape, degree or window, or more than
            :data:`MAX_FEATURES` monomials.

    Example:
        >>> monomial_table((1, 28, 28), 2, 3).shape
        (10155, 2)
        >>> monomial_table((1, 2, 2), 2, 2)[:6].tolist()
        [[-1, -1], [0, -1], [1, -1], [2, -1], [3, -1], [0, 0]]
    """
    if not isinstance(degree, (int, np.integer)) or isinstance(degree, bool) or degree < 1:
        raise ModelError(f"degree must be a whole number >= 1, got {degree!r}")
    degree = int(degree)
    channels, height, width = _chw(input_shape)
    sh, sw = _window_hw(window, height, width)
    cells = channels * sh * sw
    cell_c, cell_r, cell_w = np.unravel_index(np.arange(cells), (channels, sh, sw))
    if math.comb(cells + degree - 1, degree) > MAX_FEATURES:
        raise ModelError(f"degree {degree} over a {sh}x{sw} window of {channels} channel(s) has more than "
                         f"{MAX_FEATURES:,} monomial shapes; lower the degree or the window")
    blocks = [np.full((1, degree), -1, dtype=np.int64)]
    for d in range(1, degree + 1):
        # A shape is a multiset of window cells touching the window's top and left edges,
        # so that each monomial has exactly one shape and one anchor (its top-left corner).
        shapes = _nondecreasing_tuples(cells, d)
        rows, cols = cell_r[shapes], cell_w[shapes]
        shapes = shapes[(rows.min(1) == 0) & (cols.min(1) == 0)]
        span_r, span_w = cell_r[shapes].max(1), cell_w[shapes].max(1)
        fits_w = width - span_w
        counts = (height - span_r) * fits_w
        total = int(counts.sum())
        if total + sum(len(b) for b in blocks) > MAX_FEATURES:
            raise ModelError(f"{total:,} monomials of degree {d} exceed the limit of {MAX_FEATURES:,}; "
                             "lower the degree or the window")
        which = np.repeat(np.arange(len(shapes)), counts)
        pos = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        r0, c0 = pos // fits_w[which], pos % fits_w[which]
        sel = shapes[which]
        flat = (cell_c[sel] * height + r0[:, None] + cell_r[sel]) * width + c0[:, None] + cell_w[sel]
        flat.sort(axis=1)
        flat = flat[np.lexsort(flat.T[::-1])]
        block = np.full((total, degree), -1, dtype=np.int64)
        block[:, :d] = flat
        blocks.append(block)
    return np.ascontiguousarray(np.concatenate(blocks))


def monomial_count(input_shape: Sequence[int], degree: int = 2, window: Any = 3) -> int:
    """Number of features (bias included) of :func:`monomial_table`."""
    return int(len(monomial_table(input_shape, degree, window)))


def _flat_inputs(X: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    X = np.asarray(X)
    if tuple(X.shape) == tuple(input_shape):
        X = X[None]
    if X.ndim < 2 or tuple(X.shape[1:]) != tuple(input_shape):
        raise DataError(f"polynomial-regression model expects samples of shape {tuple(input_shape)}, got "
                        f"{tuple(X.shape[1:])}; build the model for this data's input shape")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"inputs must be numeric, got dtype {X.dtype}")
    return X.reshape(len(X), int(np.prod(input_shape)))


def _transposed_chunk(X2: np.ndarray, start: int, stop: int) -> np.ndarray:
    return np.ascontiguousarray(X2[start:stop].T, dtype=np.float64)


def features(X: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The dense design matrix ``(N, p)`` of flat inputs ``X`` (N, D); for small problems.

    Example:
        >>> t = monomial_table((3,), 2, None)
        >>> features(np.array([[1.0, 2.0, 3.0]]), t).tolist()
        [[1.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 6.0, 9.0]]
    """
    X2 = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    out_t = np.empty((len(table), len(X2)))
    K.monomial_rows(_transposed_chunk(X2, 0, len(X2)), table, out_t)
    return out_t.T


def _row_blocks(n: int, p: int, rows: int | None = None) -> Iterator[tuple[int, int]]:
    step = rows or max(1, min(n, _BLOCK_ELEMENTS // max(p, 1)))
    for s in range(0, n, step):
        yield s, min(n, s + step)


def scores(X2: np.ndarray, table: np.ndarray, W: np.ndarray, rows: int = 8192) -> np.ndarray:
    """``features(X2, table) @ W`` without holding the features (fused numba kernel), float64 ``(N, K)``."""
    W = np.ascontiguousarray(W, dtype=np.float64)
    out_t = np.zeros((W.shape[1], len(X2)))
    for s, e in _row_blocks(len(X2), 1, rows):
        K.monomial_scores(_transposed_chunk(X2, s, e), table, W, out_t[:, s:e])
    return np.ascontiguousarray(out_t.T)


def scores_transposed(xt: np.ndarray, table: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Like :func:`scores` for inputs already transposed to ``(D, N)`` (C order), in one kernel call."""
    W = np.ascontiguousarray(W, dtype=np.float64)
    out_t = np.zeros((W.shape[1], xt.shape[1]))
    K.monomial_scores(np.ascontiguousarray(xt, dtype=np.float64), table, W, out_t)
    return np.ascontiguousarray(out_t.T)


def _scratch(buffer: np.ndarray | None, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """A C-ordered (rows, cols) view of a reusable flat buffer (fresh pages cost more than the kernels)."""
    if buffer is None or buffer.size < rows * cols:
        buffer = np.empty(rows * cols)
    return buffer, buffer[: rows * cols].reshape(rows, cols)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------- model
class PolyRegModel:
    """A linear model over windowed monomials: ``scores = features(X) @ weight``.

    Args:
        input_shape: shape of one sample, ``(C, H, W)``, ``(H, W)`` or ``(F,)``.
        num_classes: number of outputs (classes).
        degree: highest monomial degree (1, 2, 3 ...).
        window: window side (int), pair ``(h, w)``, or ``None`` (no restriction).

    Example:
        >>> m = PolyRegModel((1, 28, 28), 10)
        >>> m.num_params, m.feature_names()[785], m.spec()["type"]
        (101550, 'x[0,0,0]^2', 'polyreg')
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, degree: int = 2, window: Any = 3,
                 name: str = "polyreg") -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ModelError(f"num_classes must be a positive whole number, got {num_classes!r}")
        self.num_outputs = int(num_classes)
        self.degree = int(degree) if isinstance(degree, (int, np.integer)) else degree
        self.window = window if window is None or isinstance(window, (int, np.integer)) else \
            [int(v) for v in window]
        self.name = name
        self.table = monomial_table(self.input_shape, degree, window)
        self.weight = np.zeros((len(self.table), self.num_outputs))

    # ------------------------------------------------------------ protocol
    @property
    def num_features(self) -> int:
        return len(self.table)

    @property
    def num_params(self) -> int:
        return int(self.weight.size)

    def parameters(self) -> list[tuple[str, np.ndarray]]:
        return [("polyreg.weight", self.weight)]

    def get_flat(self) -> np.ndarray:
        return self.weight.ravel().copy()

    def set_flat(self, theta: np.ndarray) -> None:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (self.num_params,):
            raise ModelError(f"flat parameter vector must have shape ({self.num_params},), got {theta.shape}")
        self.weight[...] = theta.reshape(self.weight.shape)

    def forward(self, X: np.ndarray, *, dtype=np.float64, batch_size: int | None = None) -> np.ndarray:
        """Scores ``(N, num_classes)`` for inputs ``(N, *input_shape)``.

        ``dtype`` and ``batch_size`` are accepted for the network protocol; the scores are
        always computed in float64, in blocks sized by the number of features.
        """
        X2 = _flat_inputs(X, self.input_shape)
        if not self.weight.any():
            return np.zeros((len(X2), self.num_outputs))
        return scores(X2, self.table, self.weight)

    __call__ = forward

    def features(self, X: np.ndarray) -> np.ndarray:
        """The dense feature matrix ``(N, p)`` of ``X`` (materialised: small inputs only)."""
        return features(_flat_inputs(X, self.input_shape), self.table)

    def loss_and_grad(self, X: np.ndarray, Y: np.ndarray, ridge: float = 0.0, *,
                      dtype=np.float64) -> tuple[float, np.ndarray]:
        """``SSE + ridge * ||W||^2`` and its gradient (flat), accumulated in blocks of samples.

        Always float64 (``dtype`` is accepted for the network protocol): the features
        are products of inputs, whose sums lose too much in single precision.
        """
        X2 = _flat_inputs(X, self.input_shape)
        Y = np.asarray(Y, dtype=np.float64)
        if Y.shape != (len(X2), self.num_outputs):
            raise DataError(f"targets must have shape ({len(X2)}, {self.num_outputs}), got {Y.shape}")
        p = self.num_features
        grad = 2.0 * ridge * self.weight
        sse = 0.0
        for s, e in _row_blocks(len(X2), p):
            ft = np.empty((p, e - s))
            K.monomial_rows(_transposed_chunk(X2, s, e), self.table, ft)
            resid = ft.T @ self.weight - Y[s:e]
            sse += float(np.sum(resid * resid))
            grad += 2.0 * (ft @ resid)
        return sse + ridge * float(np.sum(self.weight ** 2)), grad.ravel()

    def spec(self) -> dict:
        return {"type": "polyreg", "name": self.name, "degree": self.degree, "window": self.window,
                "input_shape": list(self.input_shape), "num_classes": self.num_outputs}

    @classmethod
    def from_spec(cls, spec: dict) -> "PolyRegModel":
        """Rebuild a model (weights zero) from :meth:`spec`."""
        if not isinstance(spec, dict) or spec.get("type") != "polyreg":
            raise ModelError("a polyreg spec is a dict with type 'polyreg'; was the file written by symnet?")
        missing = [k for k in ("degree", "window", "input_shape", "num_classes") if k not in spec]
        if missing:
            raise ModelError(f"polyreg spec lacks {missing}; re-save the model with this version of symnet")
        return cls(spec["input_shape"], spec["num_classes"], spec["degree"], spec["window"],
                   name=spec.get("name") or "polyreg")

    def copy(self) -> "PolyRegModel":
        other = object.__new__(PolyRegModel)
        other.__dict__.update(self.__dict__)
        other.weight = self.weight.copy()
        return other  # the table is read-only in use and shared

    # ------------------------------------------------------------ reading the model
    def feature_names(self) -> list[str]:
        """Readable name of each feature: ``"1"``, ``"x[0,3,4]"``, ``"x[0,3,4]*x[0,3,5]"``, ``"x[0,3,4]^2"``."""
        coords = np.unravel_index(np.arange(int(np.prod(self.input_shape))), self.input_shape)
        pix = ["x[" + ",".join(str(int(c[i])) for c in coords) + "]" for i in range(len(coords[0]))]
        names = []
        for row in self.table.tolist():
            idx = [i for i in row if i >= 0]
            if not idx:
                names.append("1")
                continue
            parts = []
            for i in sorted(set(idx)):
                e = idx.count(i)
                parts.append(pix[i] if e == 1 else f"{pix[i]}^{e}")
            names.append("*".join(parts))
        return names

    def feature_degrees(self) -> np.ndarray:
        """Degree of each feature, shape (p,)."""
        return np.count_nonzero(self.table >= 0, axis=1)

    def __repr__(self) -> str:
        return (f"PolyRegModel(input_shape={self.input_shape}, classes={self.num_outputs}, degree={self.degree}, "
                f"window={self.window}, features={self.num_features})")


# --------------------------------------------------------------------------- linear algebra
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


class GramAccumulator:
    """``G = X^T X``, ``X^T Y`` and ``sum(Y^2)`` over chunks of samples, float64.

    Only the ``columns`` (indices into ``table``) are accumulated, in that
    order. The first ``dense`` of them go through BLAS ``dsyrk``; the rest
    are taken as sparse: their products with every column come from
    :func:`_polyreg_kernels.add_sparse_cross`. Put the densest columns first.

    Example:
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
        K.monomial_rows(_transposed_chunk(X2, 0, len(X2)), self.table, ft)
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


def _dense_split(counts: np.ndarray, n: int) -> int:
    """How many of the columns (sorted by non-zero count, descending) should go to dsyrk.

    Cost in dense multiply-adds: n d^2 / 2 for dsyrk over the first d columns,
    plus _SPARSE_COST * p * (non-zeros of the others) for the sparse kernel.
    """
    p = len(counts)
    if p == 0:
        return 0
    d = np.arange(p + 1, dtype=np.float64)
    tail = np.concatenate([np.cumsum(counts[::-1])[::-1], [0]]).astype(np.float64)
    cost = n * d * d / 2.0 + _SPARSE_COST * p * tail
    return int(np.argmin(cost))


# --------------------------------------------------------------------------- solver
class PolyRegSolver(Solver):
    """Closed-form ridge regression over windowed monomials (see the module docstring).

    Options:
        degree (2), window (3): the features (ignored when ``fit`` gets a
            :class:`PolyRegModel`, whose own degree and window are used).
        method ("exact"): ``"exact"`` (Gram + Cholesky) or ``"bagging"``.
        ridge (None): the penalty ``lam`` of ``SSE + lam ||W||^2``; ``None``
            chooses it from ``ridge_grid`` on a validation split.
        ridge_grid: candidate penalties when ``ridge`` is None (default: the
            decades from 0.1 to 1000; on MNIST the best lies near 30).
        ridge_search ("walk"): exact: "grid" solves for every grid value;
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
    chunks, the last one solving (the model is zero until then; a ``steps``
    budget below ``gram_steps`` leaves it unsolved); bagging: one subset per
    step. ``fit`` with neither ``steps`` nor a time limit runs exactly these.
    Resuming an exact fit re-accumulates the chunks of the finished steps
    (checkpoints hold no Gram). Bagging reports no loss of its own: the
    training loop scores the whole training set after each subset for it,
    which costs more wall time than the fit (not counted in ``time``).

    History extras: ``ridge_used``, ``val_acc`` and ``val_mse`` (ridge chosen),
    ``samples``, ``features``, ``features_used``, ``dense_columns``,
    ``gram_time``, ``solve_time``, ``peak_rss_mb``; bagging: ``batch_test_acc``
    (the subset's own model on the test set; the ``test_acc`` column is the
    averaged model's).
    """

    name: ClassVar[str] = "polyreg"
    #: ``fit`` trains a PolyRegModel of its own unless it is given one (see ``model_``).
    builds_model: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "degree": 2, "window": 3, "method": "exact", "ridge": None,
        "ridge_grid": (0.1, 1.0, 10.0, 100.0, 1000.0), "ridge_search": "walk",
        "refine_ridge": True, "select_by": "mse",
        "val_size": None, "batches": 60, "batch_size": 2000, "chunk_size": 4096, "gram_steps": 4,
        "dense_columns": None, "seed": 0,
    }

    @property
    def step_unit(self) -> str:  # type: ignore[override]
        return "batch" if self.options.get("method", "exact") == "bagging" else "step"

    @property
    def default_steps(self) -> int:
        if self.options.get("method", "exact") == "bagging":
            return int(self.options.get("batches", self.defaults["batches"]))
        return int(self.options.get("gram_steps", self.defaults["gram_steps"]))

    # ------------------------------------------------------------ setup
    def _check_options(self) -> dict:
        o = self.opts_
        if o["method"] not in ("exact", "bagging"):
            raise SolverError(f"polyreg method must be 'exact' or 'bagging', got {o['method']!r}")
        if o["ridge"] is not None:
            if not isinstance(o["ridge"], (int, float, np.integer, np.floating)) or not o["ridge"] >= 0:
                raise SolverError(f"ridge must be a number >= 0 or None (choose on validation), got {o['ridge']!r}")
        try:
            grid = None if o["ridge_grid"] is None else np.atleast_1d(np.asarray(o["ridge_grid"], dtype=np.float64))
        except (TypeError, ValueError):
            grid = None
        if grid is None or grid.size == 0 or grid.ndim != 1 or not np.all(grid >= 0) or not np.all(np.isfinite(grid)):
            raise SolverError(f"ridge_grid must be a non-empty list of numbers >= 0, got {o['ridge_grid']!r}")
        for key in ("batches", "batch_size", "chunk_size", "gram_steps"):
            v = o[key]
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise SolverError(f"option {key} must be a whole number >= 1, got {v!r}")
        if o["ridge_search"] not in ("walk", "grid"):
            raise SolverError(f"ridge_search must be 'walk' or 'grid', got {o['ridge_search']!r}")
        if o["select_by"] not in ("mse", "accuracy"):
            raise SolverError(f"select_by must be 'mse' or 'accuracy', got {o['select_by']!r}")
        if o["val_size"] is not None and (not isinstance(o["val_size"], (int, np.integer)) or o["val_size"] < 1):
            raise SolverError(f"val_size must be a whole number >= 1 or None, got {o['val_size']!r}")
        return {"grid": np.unique(grid)}

    def _setup(self, model, data, rng: np.random.Generator) -> None:
        checked = self._check_options()
        self._grid = checked["grid"]
        o = self.opts_
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
        if o["method"] == "exact" and p > MAX_EXACT_FEATURES:
            raise SolverError(f"{p:,} features are too many for method='exact' (its Gram needs "
                              f"{3 * p * p * 8 / 2**30:.0f} GB); use method='bagging' or a smaller degree/window")
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
        if o["method"] == "exact":
            self._planned = False
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
        counts = np.zeros(model.num_features, dtype=np.int64)
        for s, e in _row_blocks(n, model.num_features, chunk):
            counts += K.monomial_nonzero_counts(_transposed_chunk(self._X2, s, e), model.table)[0]
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] > 0]
        dense = _dense_split(counts[order], n) if o["dense_columns"] is None else int(o["dense_columns"])
        self._columns = order
        self._dense = dense
        k = model.num_outputs
        self._acc_train = GramAccumulator(model.table, order, dense, k)
        self._acc_val = GramAccumulator(model.table, order, dense, k) if self._n_val else None
        # Validation chunks first, so that a fit cut short by a time limit can still choose its ridge.
        n_train = n - self._n_val
        bounds = [(s, e, True) for s, e in _row_blocks(self._n_val, 1, chunk)]
        bounds = [(s + n_train, e + n_train, v) for s, e, v in bounds]
        bounds += [(s, e, False) for s, e in _row_blocks(n_train, 1, chunk)]
        self._chunks = bounds
        steps = int(o["gram_steps"])
        self._chunk_groups = [bounds[i * len(bounds) // steps:(i + 1) * len(bounds) // steps] for i in range(steps)]
        self._groups_done = 0
        self._samples_reported = -n  # the counting pass is one pass over the data
        self._gram_time = time.perf_counter() - t0
        self._planned = True

    def _accumulate(self, group: list) -> bool:
        """Add a group of chunks; False when the deadline stopped it early."""
        Y = self._Y_train
        for s, e, is_val in group:
            if self._deadline is not None and time.perf_counter() >= self._deadline:
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
                "features_used": len(self._columns), "dense_columns": self._dense, "peak_rss_mb": _peak_rss_mb()}

    def _step_exact(self) -> dict:
        if self._solved:
            return {"loss": self._loss, "updates": 0, "converged": True, "ridge_used": self._ridge_used}
        if not self._planned:
            self._plan_exact()
        if self._groups_done < len(self._chunk_groups):
            t0 = time.perf_counter()
            complete = self._accumulate(self._chunk_groups[self._groups_done])
            self._gram_time += time.perf_counter() - t0
            if complete:
                self._groups_done += 1
            out_of_time = self._deadline is not None and time.perf_counter() >= self._deadline
            if complete and not out_of_time and self._groups_done < len(self._chunk_groups):
                return self._zero_model_info()
        # The last group, or a time limit reached: the loop would stop before another step, so solve now.
        return self._solve_exact()

    def _solve_exact(self) -> dict:
        t0 = time.perf_counter()
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
                ridge, figures, _ = self._select_ridge(lambda lam: ridge_solve(G, acc.XtY, lam), table)
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
            sse = yy - 2.0 * float(np.sum(W * XtY)) + float(np.sum(W * GW))
        else:  # a time limit left samples out of the Gram: score them all
            sse = float(np.sum((scores(self._X2, self.model_.table, self.model_.weight) - self._Y_train) ** 2))
        self._ridge_used = float(ridge)
        self._loss = (sse + ridge * float(np.sum(W * W))) / n
        self._solved = True
        self._solve_time = time.perf_counter() - t0
        self._acc_train = self._acc_val = None  # free the Gram blocks
        info.update({"loss": self._loss, "updates": self.model_.num_params, "passes": passes, "converged": True,
                     "ridge_used": self._ridge_used, "samples": count, "features": self.model_.num_features,
                     "features_used": len(self._columns), "dense_columns": self._dense,
                     "gram_time": self._gram_time, "solve_time": self._solve_time, "peak_rss_mb": _peak_rss_mb()})
        return info

    def _select_ridge(self, fit, table: np.ndarray) -> tuple[float, dict, np.ndarray]:
        """Fit ``fit(lam)`` for every grid value and keep the best on the validation split.

        "Best" is the lowest validation squared error (``select_by="mse"``,
        ties: higher accuracy) or the highest validation accuracy (ties: lower
        squared error). The squared error is the objective being minimised and
        varies smoothly with the ridge; accuracy on a few thousand samples
        moves in steps of one sample, so it picks among near-ties at random.
        Returns the value, the validation figures and the fitted coefficients.
        """
        n = len(self._X2)
        Xv = self._X2[n - self._n_val:]
        yv = self.data_.y_train[n - self._n_val:]
        Yv = self._Y_train[n - self._n_val:]
        by_mse = self.opts_["select_by"] == "mse"
        best = None

        def consider(lam: float) -> None:
            nonlocal best
            W = fit(lam)
            sv = scores(Xv, table, W)
            acc, mse = accuracy(sv, yv), float(np.sum((sv - Yv) ** 2)) / len(Xv)
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
    def _batch_features(self, idx: np.ndarray) -> np.ndarray:
        table = self.model_.table
        self._buffer, ft = _scratch(getattr(self, "_buffer", None), len(table), len(idx))
        K.monomial_rows(np.ascontiguousarray(self._X2[idx].T, dtype=np.float64), table, ft)
        return ft

    def _fit_batch(self, ft: np.ndarray, Y: np.ndarray, ridge: float) -> np.ndarray:
        p, b = ft.shape
        if b < p:
            Kmat = blas.dsyrk(1.0, ft.T, trans=0, lower=0)  # X_b X_b^T, (b, b)
            return ft @ ridge_solve(Kmat, Y, ridge)
        G = blas.dsyrk(1.0, ft.T, trans=1, lower=0)  # X_b^T X_b, (p, p)
        return ridge_solve(G, ft @ Y, ridge)

    def _bagging_candidates(self) -> list[float]:
        grid = sorted(float(v) for v in self._grid)
        if self.opts_["refine_ridge"]:
            grid += [math.sqrt(x * y) for x, y in zip(grid, grid[1:]) if x > 0]
        return sorted(grid)

    def _step_bagging(self) -> dict:
        o = self.opts_
        t0 = time.perf_counter()
        idx = np.sort(self._rng.choice(self._pool, size=int(o["batch_size"]), replace=False))
        ft = self._batch_features(idx)
        Yb = self._Y_train[idx]
        info: dict[str, Any] = {}
        k = self._batches_done
        if o["ridge"] is None:
            # One running average per candidate ridge; the model is the one whose average
            # scores best on the validation split so far (averaging cuts the variance of the
            # single fits, so the best penalty for the average is below the best for one fit).
            lams = self._bagging_candidates()
            fits = ridge_path(ft.T, Yb, lams)
            if self._bag_sums is None:
                self._bag_sums = np.zeros((len(lams),) + self.model_.weight.shape)
                self._bag_val = np.zeros((len(lams), self._n_val, self.model_.num_outputs))
            self._bag_sums += fits
            n = len(self._X2)
            Wcat = np.concatenate(list(fits), axis=1)
            if self._val_features is None and self._n_val * self.model_.num_features <= _VAL_FEATURES_MAX:
                # The validation features are scored against every candidate at every step: keep them.
                self._val_features = np.empty((self.model_.num_features, self._n_val))
                K.monomial_rows(_transposed_chunk(self._X2, n - self._n_val, n), self.model_.table,
                                self._val_features)
            if self._val_features is not None:
                sv = self._val_features.T @ Wcat
            else:
                sv = scores(self._X2[n - self._n_val:], self.model_.table, Wcat)
            self._bag_val += sv.reshape(self._n_val, len(lams), -1).transpose(1, 0, 2)
            yv, Yv = self.data_.y_train[n - self._n_val:], self._Y_train[n - self._n_val:]
            keys = []
            for i in range(len(lams)):
                avg = self._bag_val[i] / (k + 1)
                acc, mse = accuracy(avg, yv), float(np.sum((avg - Yv) ** 2)) / self._n_val
                keys.append(((-mse, acc) if o["select_by"] == "mse" else (acc, -mse), acc, mse))
            best = max(range(len(lams)), key=lambda i: keys[i][0])
            self._ridge_used = lams[best]
            self.model_.weight[...] = self._bag_sums[best] / (k + 1)
            W = fits[best]
            info.update({"val_acc": keys[best][1], "val_mse": keys[best][2]})
        else:
            W = self._fit_batch(ft, Yb, self._ridge_used)
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
                     "features": self.model_.num_features, "peak_rss_mb": _peak_rss_mb()})
        return info

    # ------------------------------------------------------------ hooks
    def _step(self) -> dict:
        if self.opts_["method"] == "bagging":
            return self._step_bagging()
        return self._step_exact()

    def objective(self, X: np.ndarray, Y: np.ndarray) -> float:
        out = self.model_.forward(X)
        ridge = self._ridge_used or 0.0
        return (float(np.sum((out - Y) ** 2)) + ridge * float(np.sum(self.model_.weight ** 2))) / max(len(X), 1)

    def _state(self) -> dict[str, Any]:
        if self.opts_["method"] == "bagging":
            state = {"batches_done": self._batches_done,
                     "ridge_used": np.nan if self._ridge_used is None else self._ridge_used}
            if self._bag_sums is not None:
                state.update(bag_sums=self._bag_sums, bag_val=self._bag_val)
            return state
        return {"groups_done": self._groups_done, "solved": int(self._solved),
                "ridge_used": np.nan if self._ridge_used is None else self._ridge_used,
                "loss": getattr(self, "_loss", np.nan)}

    def _load_state(self, state: dict[str, Any]) -> None:
        ridge = float(state.get("ridge_used", np.nan))
        self._ridge_used = None if math.isnan(ridge) else ridge
        if self.opts_["method"] == "bagging":
            self._batches_done = int(state["batches_done"])
            if "bag_sums" in state:
                self._bag_sums = np.array(state["bag_sums"], dtype=np.float64)
                self._bag_val = np.array(state["bag_val"], dtype=np.float64)
            return
        self._solved = bool(int(state.get("solved", 0)))
        self._loss = float(state.get("loss", np.nan))
        done = int(state.get("groups_done", 0))
        if not self._solved:
            self._plan_exact()
            for group in self._chunk_groups[:done]:
                self._accumulate(group)
            self._samples_reported = self._samples_seen()
        self._groups_done = done
