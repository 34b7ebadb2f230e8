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
  twice as fast as dsyrk over all of them). ``ridge='auto'`` holds out the last
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
  ``ridge='auto'`` the subsets are drawn outside the validation split and one
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


from symnet.core.linalg import ridge_solve
from symnet.core.model.polyreg import PolyRegModel
from symnet.solvers.polyreg.bagging import VAL_FEATURES_MAX, fit_subset
from symnet.solvers.polyreg.explicit import (CHOLESKY_PROBE, KERNEL_ROWS, MAX_EXACT_FEATURES, GramAccumulator,
                                             cholesky_seconds, dense_split, dual_weights, exact_form, kernel_matrix)
from symnet.solvers.polyreg.solver import CG_STEPS, PROBE_SAMPLES, PolyRegSolver

__all__ = ["CG_STEPS", "CHOLESKY_PROBE", "KERNEL_ROWS", "MAX_EXACT_FEATURES", "PROBE_SAMPLES", "VAL_FEATURES_MAX",
           "GramAccumulator", "PolyRegModel", "PolyRegSolver", "cholesky_seconds", "dense_split", "dual_weights",
           "exact_form", "fit_subset", "kernel_matrix", "ridge_solve"]
