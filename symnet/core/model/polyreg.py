"""Windowed monomial features and the linear model over them (:class:`PolyRegModel`).

A one-hidden-layer network with a polynomial activation is a linear model over
products of its inputs. The features here are all monomials of the input pixels
up to ``degree`` whose factors fit in an ``s x s`` spatial window (factors may
come from any channel): every unordered product is counted once (a multiset of
pixel positions, squares included), plus the constant 1 (the bias). For a
28 x 28 image, a 3 x 3 window and degree 2 that is 1 + 784 + 9,370 = 10,155
features. :func:`monomial_table` builds the index table once (vectorised); the
feature values are generated on the fly in chunks of samples by the numba
kernels of :mod:`symnet.core.kernels.monomials`, so the ``N x p`` design matrix
is never held in memory. The ``polyreg`` solver fits the weights in closed form.

Example:
    >>> m = PolyRegModel((1, 28, 28), 10)
    >>> m.num_features
    10155
"""

from __future__ import annotations

import math
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from symnet.core.errors import DataError, ModelError
from symnet.core.kernels import monomials as K

#: Largest number of monomials a table may have (the table alone is then ~1 GB).
MAX_FEATURES = 20_000_000
#: Feature values held at once while predicting (float64 elements, ~128 MB).
BLOCK_ELEMENTS = 1 << 24


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
        so_far = total + sum(len(b) for b in blocks)
        if so_far > MAX_FEATURES:
            raise ModelError(f"degree {degree} over a {sh}x{sw} window gives more than {MAX_FEATURES:,} monomials "
                             f"({so_far:,} counting the degrees up to {d}); lower the degree or the window")
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


def flat_inputs(X: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    X = np.asarray(X)
    if tuple(X.shape) == tuple(input_shape):
        X = X[None]
    if X.ndim < 2 or tuple(X.shape[1:]) != tuple(input_shape):
        raise DataError(f"polynomial-regression model expects samples of shape {tuple(input_shape)}, got "
                        f"{tuple(X.shape[1:])}; build the model for this data's input shape")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"inputs must be numeric, got dtype {X.dtype}")
    return X.reshape(len(X), int(np.prod(input_shape)))


def transposed_chunk(X2: np.ndarray, start: int, stop: int) -> np.ndarray:
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
    K.monomial_rows(transposed_chunk(X2, 0, len(X2)), table, out_t)
    return out_t.T


class PrefixTree(NamedTuple):
    """The children of every row of a monomial table (:func:`prefix_tree`), as the tree kernels take them.

    The children of row ``r`` are rows ``child[child_ptr[r]:child_ptr[r + 1]]``, each the monomial of
    ``r`` times input ``child_pix[...]``; ``root`` is the bias row, ``depth`` the table's degree. The
    fields are in the order of the kernels' arguments (``kernel(x, *tree, ...)``).
    """

    child_ptr: np.ndarray
    child: np.ndarray
    child_pix: np.ndarray
    root: int
    depth: int


def prefix_tree(table: np.ndarray) -> PrefixTree:
    """The prefix tree of a monomial table, for walks that visit only a sample's non-zero monomials.

    Every prefix of a monomial that fits a window fits it too, so every prefix of a row of a window
    table is a row of the table: the parent of ``(a, b, c)`` is ``(a, b)``, of ``(a,)`` the bias. A
    depth-first walk from the bias that enters a child only where its input is non-zero visits exactly
    the non-zero monomials of a sample (:mod:`symnet.core.kernels.monomials`).

    Args:
        table: int64 ``(p, degree)`` from :func:`monomial_table` (sorted factors, ``-1`` padding, one
            all ``-1`` bias row).

    Raises:
        ModelError: the table has no bias row, or a monomial whose prefix is not in the table.

    Example:
        >>> ptr, child, pix, root, depth = prefix_tree(monomial_table((2,), 2, None))
        >>> root, child[ptr[root]:ptr[root + 1]].tolist(), child[ptr[1]:ptr[2]].tolist(), pix[ptr[1]:ptr[2]].tolist()
        (0, [1, 2], [3, 4], [0, 1])
    """
    table = np.asarray(table, dtype=np.int64)
    p, depth = table.shape
    deg = np.count_nonzero(table >= 0, axis=1)
    roots = np.nonzero(deg == 0)[0]
    if len(roots) != 1:
        raise ModelError("a monomial table has exactly one bias row (all -1); build it with monomial_table")
    root = int(roots[0])
    parent = np.full(p, -1, dtype=np.int64)
    parent[deg == 1] = root
    for d in range(2, depth + 1):
        rows = np.nonzero(deg == d)[0]
        prev = np.nonzero(deg == d - 1)[0]
        if len(rows) == 0:
            continue
        keys = np.concatenate([table[prev, : d - 1], table[rows, : d - 1]])
        _, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel()
        where = np.full(inv.max() + 1, -1, dtype=np.int64)
        where[inv[: len(prev)]] = prev
        parent[rows] = where[inv[len(prev):]]
    if np.any(parent[deg > 0] < 0):
        raise ModelError("a tree walk needs every prefix of a monomial in the table (true of every window table "
                         "from monomial_table)")
    kids = np.nonzero(deg > 0)[0]
    child = kids[np.argsort(parent[kids], kind="stable")]
    child_ptr = np.concatenate([[0], np.cumsum(np.bincount(parent[kids], minlength=p))]).astype(np.int64)
    child_pix = np.ascontiguousarray(table[child, deg[child] - 1])
    return PrefixTree(child_ptr, child, child_pix, root, int(depth))


def row_blocks(n: int, p: int, rows: int | None = None) -> Iterator[tuple[int, int]]:
    step = rows or max(1, min(n, BLOCK_ELEMENTS // max(p, 1)))
    for s in range(0, n, step):
        yield s, min(n, s + step)


def scores(X2: np.ndarray, table: np.ndarray, W: np.ndarray, rows: int = 8192,
           tree: PrefixTree | None = None) -> np.ndarray:
    """``features(X2, table) @ W`` without holding the features, float64 ``(N, K)``.

    With the table's ``tree`` (:func:`prefix_tree`) and inputs with many zeros, the products run over
    each sample's non-zero monomials only (:func:`sparse_scores`); otherwise over every monomial with
    a fused dense kernel. :func:`prefer_tree` decides.

    Example:
        >>> t = monomial_table((1, 4, 4), 3, 2); X = np.random.default_rng(0).random((30, 16)); X[X < 0.6] = 0
        >>> W = np.ones((len(t), 2)); a = scores(X, t, W); b = scores(X, t, W, tree=prefix_tree(t))
        >>> bool(np.allclose(a, features(X, t) @ W)), bool(np.allclose(a, b))
        (True, True)
    """
    if tree is not None and prefer_tree(X2, tree, len(table)):
        return sparse_scores(X2, tree, W)
    W = np.ascontiguousarray(W, dtype=np.float64)
    out_t = np.zeros((W.shape[1], len(X2)))
    for s, e in row_blocks(len(X2), 1, rows):
        K.monomial_scores(transposed_chunk(X2, s, e), table, W, out_t[:, s:e])
    return np.ascontiguousarray(out_t.T)


#: Samples per walk of the prefix tree in :func:`sparse_scores`.
WALK_SAMPLES = 128
#: Cost of one visited monomial in a tree walk relative to one monomial of the dense kernel (measured
#: on MNIST: degree 2 and 3, 3 x 3 window, one thread; see :func:`prefer_tree`).
TREE_COST = 3.0
#: Samples :func:`prefer_tree` walks to count the non-zero monomials.
PROBE_SAMPLES = 64


def sparse_scores(X2: np.ndarray, tree: PrefixTree, W: np.ndarray) -> np.ndarray:
    """``features(X2) @ W`` (N, K) over each sample's non-zero monomials (walks of the prefix ``tree``).

    Example:
        >>> t = monomial_table((1, 3, 3), 3, 2); X = np.random.default_rng(1).random((40, 9)); X[:, 4] = 0
        >>> bool(np.allclose(sparse_scores(X, prefix_tree(t), np.ones((len(t), 2))), features(X, t).sum(1)[:, None]))
        True
    """
    X2 = np.ascontiguousarray(X2, dtype=np.float64)
    W = np.ascontiguousarray(W, dtype=np.float64)
    return K.tree_scores(X2, *tree, W, WALK_SAMPLES)[0]


def prefer_tree(X2: np.ndarray, tree: PrefixTree, p: int) -> bool:
    """Is :func:`sparse_scores` cheaper than the dense kernel on inputs like ``X2``?

    Counts the non-zero monomials of up to :data:`PROBE_SAMPLES` samples spread over ``X2`` and
    compares ``TREE_COST`` times their mean with the ``p`` monomials the dense kernel forms per sample.
    """
    if len(X2) == 0:
        return False
    rows = np.unique(np.linspace(0, len(X2) - 1, min(len(X2), PROBE_SAMPLES)).astype(np.int64))
    probe = np.ascontiguousarray(np.asarray(X2)[rows], dtype=np.float64)
    per_sample = K.tree_nonzero_counts(probe, *tree, p, 1)[0]
    return TREE_COST * float(np.mean(per_sample)) < p


def scores_transposed(xt: np.ndarray, table: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Like :func:`scores` for inputs already transposed to ``(D, N)`` (C order), in one kernel call."""
    W = np.ascontiguousarray(W, dtype=np.float64)
    out_t = np.zeros((W.shape[1], xt.shape[1]))
    K.monomial_scores(np.ascontiguousarray(xt, dtype=np.float64), table, W, out_t)
    return np.ascontiguousarray(out_t.T)



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
        self._tree: PrefixTree | None = None

    # ------------------------------------------------------------ protocol
    @property
    def num_features(self) -> int:
        return len(self.table)

    @property
    def num_params(self) -> int:
        return int(self.weight.size)

    @property
    def tree(self) -> PrefixTree:
        """The prefix tree of the table (:func:`prefix_tree`), built on first use."""
        if getattr(self, "_tree", None) is None:
            self._tree = prefix_tree(self.table)
        return self._tree

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
        always computed in float64, over each sample's non-zero monomials when the inputs have
        enough zeros to make that cheaper (:func:`scores`).
        """
        X2 = flat_inputs(X, self.input_shape)
        if not self.weight.any():
            return np.zeros((len(X2), self.num_outputs))
        return scores(X2, self.table, self.weight, tree=self.tree)

    __call__ = forward

    def features(self, X: np.ndarray) -> np.ndarray:
        """The dense feature matrix ``(N, p)`` of ``X`` (materialised: small inputs only)."""
        return features(flat_inputs(X, self.input_shape), self.table)

    def loss_and_grad(self, X: np.ndarray, Y: np.ndarray, ridge: float = 0.0, *,
                      dtype=np.float64) -> tuple[float, np.ndarray]:
        """``SSE + ridge * ||W||^2`` and its gradient (flat), accumulated in blocks of samples.

        Always float64 (``dtype`` is accepted for the network protocol): the features
        are products of inputs, whose sums lose too much in single precision.
        """
        X2 = flat_inputs(X, self.input_shape)
        Y = np.asarray(Y, dtype=np.float64)
        if Y.shape != (len(X2), self.num_outputs):
            raise DataError(f"targets must have shape ({len(X2)}, {self.num_outputs}), got {Y.shape}")
        p = self.num_features
        grad = 2.0 * ridge * self.weight
        sse = 0.0
        for s, e in row_blocks(len(X2), p):
            ft = np.empty((p, e - s))
            K.monomial_rows(transposed_chunk(X2, s, e), self.table, ft)
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
