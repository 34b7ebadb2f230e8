"""The training samples of a run, and the map-reduce contract that lets them live on several machines.

Everything an exact solver computes from the training data is a sum over
samples (a polynomial's coefficients, a gradient, a Gram matrix) or one row per
sample (scores). :class:`Samples` holds the samples in this process; a sharded
counterpart (:class:`symnet.core.sharded.ShardedSamples`) holds them in shards on
Dask workers. Both offer the same three calls, so that a solver written against
them runs unchanged on either:

* :meth:`Samples.reduce` ``(op, *args, rows=None, split=(), concat=False)``: run
  ``op(samples, rows, *args)`` on the samples and return its result. Sharded,
  ``op`` runs on every shard with the shard's own rows and the results are
  added (arrays, numbers, and tuples, lists or dicts of them, in shard order),
  or with ``concat=True`` stacked back into row order. ``rows`` selects samples
  (None: all; a slice; an index array); arguments whose positions are in
  ``split`` hold one row per selected sample and are cut along with ``rows``.
  An op must not change the samples' state (it may keep scratch results in
  ``samples.scratch`` that it can recompute).
* :meth:`Samples.defer` ``(op, *args)``: run an op that changes the state
  (moves caches after a parameter change). Here it runs at once; sharded, it
  travels with the next message to the shards, so that a step's update and the
  next step's sums cost one round trip. A deferred op must set parameters to
  absolute values the caller already holds (never ``+=``), so that running it
  again, or rebuilding a shard from the caller's parameters instead, gives
  the same state.
* :meth:`Samples.flush`: make sure every deferred op has run.

Ops are module-level functions (a worker imports them by name).

Example:
    >>> import numpy as np
    >>> from symnet.core.model import presets as models
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> s = Samples(m, np.ones((4, 2)), np.eye(2)[[0, 1, 0, 1]])
    >>> def count(samples, rows):
    ...     return len(samples.X) if rows is None else len(rows)
    >>> s.reduce(count), s.reduce(count, rows=np.array([0, 2]))
    (4, 2)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from symnet.core.linalg import LocalReadout

#: Rows per block of the forward pass that gives a readout's features (1024 stay in cache: 1.7x faster
#: than 8192 on poly2).
FEATURE_BLOCK = 1024


def features(model, X: np.ndarray, dtype=np.float64, rows=None) -> np.ndarray:
    """The inputs of ``model``'s last layer for ``X`` (or its ``rows``), from a forward pass in ``dtype``.

    Example:
        >>> from symnet.core.model import presets as models
        >>> m = models.get("mlp", input_dim=2, hidden=3, seed=0)
        >>> features(m, np.ones((5, 2)), np.float32).shape
        (5, 3)
    """
    li = len(model.layers) - 1
    X = X if rows is None else X[rows]
    n = len(X)
    dtype = np.dtype(dtype)
    out = np.empty((n,) + tuple(model.shapes[li]), dtype=dtype)
    with model.params_in(dtype):
        for s in range(0, n, FEATURE_BLOCK):
            h = X[s:s + FEATURE_BLOCK].astype(dtype, copy=False)
            for layer in model.layers[:li]:
                h = layer.forward(h)
            out[s:s + len(h)] = h
    return out


class Samples:
    """The training samples ``(X, Y)`` of ``model`` in this process.

    Args:
        model: the network; ops read its current parameters.
        X: inputs ``(N, *input_shape)``.
        Y: targets (N, outputs), float64.

    Attributes:
        shards: how many places hold the samples (1 here).
        local: the samples (and a loss's caches) are in this process, so fused kernels may read them
            directly; False for sharded samples, whose sums go through :meth:`reduce`.
        scratch: results an op keeps for a later op (features, padded inputs); an op must be able to
            recompute what it finds missing.
        offset: the row of the whole training set that is row 0 here (0; a shard's first row on a worker).
    """

    shards = 1
    local = True
    #: The row of the whole training set that is row 0 here (a shard's first row on a worker).
    offset = 0

    def __init__(self, model, X: np.ndarray, Y: np.ndarray) -> None:
        self.model = model
        self.X = X
        self.Y = np.asarray(Y, dtype=np.float64)
        self.scratch: dict[str, Any] = {}

    @property
    def num_samples(self) -> int:
        """Number of samples (N)."""
        return len(self.X)

    def reduce(self, op: Callable, *args, rows=None, split=(), concat: bool = False, combine=None):
        """``op(self, rows, *args)``: see the module docstring. ``combine`` (a function of the list of
        per-shard results) replaces the sum when the results are not additive (means)."""
        out = op(self, rows, *args)
        return combine([out]) if combine is not None else out

    def defer(self, op: Callable, *args) -> None:
        """Run the state-changing ``op(self, None, *args)`` (at once here; see the module docstring)."""
        op(self, None, *args)

    def flush(self) -> None:
        """Every deferred op has run (always true here)."""

    def close(self) -> None:
        """Release what the samples hold elsewhere (nothing here)."""

    # ------------------------------------------------------------------ full-data passes
    def scores(self, dtype=np.float64, batch_size: int = 256) -> np.ndarray:
        """The model's outputs on every sample (N, outputs): a forward pass."""
        return self.model.forward(self.X, dtype=dtype, batch_size=batch_size)

    def readout(self, dtype=np.float64):
        """The ridge problem of the last Linear layer on features from a forward pass in ``dtype``.

        Returns a :class:`~symnet.core.linalg.LocalReadout` (see :func:`~symnet.core.linalg.fit_readout_on`).
        """
        return LocalReadout(features(self.model, self.X, dtype), self.Y, bias=self.model.layers[-1].bias)


def add_results(a, b):
    """``a + b`` for op results: numbers, arrays, None (nothing), and tuples, lists or dicts of them.

    Example:
        >>> add_results((1.0, np.ones(2)), (2.0, np.ones(2)))[1].tolist()
        [2.0, 2.0]
    """
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict):
        return {k: add_results(a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b])}
    if isinstance(a, (tuple, list)):
        return type(a)(add_results(x, y) for x, y in zip(a, b))
    return a + b

__all__ = ["FEATURE_BLOCK", "Samples", "add_results", "features"]
