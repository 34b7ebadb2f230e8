"""The exact line search shared by every direction solver, and its helpers.

Along any direction ``d`` the training objective

    L(theta + t d) = sum_n ||f(x_n; theta + t d) - y_n||^2 + ridge ||theta + t d||^2

is a univariate polynomial in ``t`` (:class:`symnet.restriction.ExactLoss`
computes its coefficients exactly). :func:`line_search` is the one line search
of :mod:`solvers.directions` (``cg``, ``lbfgs``, ``gauss-newton``): it is
:meth:`ExactLoss.line_minimize <symnet.restriction.ExactLoss.line_minimize>`
with the direction normalised first, so that the polynomial handed to the
global minimiser is well scaled whatever the length of ``d``:

1. ``d`` is divided by its Euclidean norm;
2. the coefficients ``c_k`` of ``t -> L(theta + t d)`` are rescaled to
   ``c_k s^k``, the polynomial of ``t = s u``, where ``s`` is the step the
   quadratic model predicts (``|c_1| / (2 c_2)``), so the minimiser sits near
   ``|u| = 1``; this is exactly the restriction along ``s d`` and costs no
   second pass over the data;
3. the global minimiser among the real critical points is taken only if it
   lowers the objective (never an ascent, never a step of zero length that
   reports a decrease).

Other helpers here: :func:`batch_loss` and :func:`minibatch_line_search` (the
same search on a mini-batch, with an optional exact check on the full data
through :class:`FullObjective`), and :func:`solve_last_linear`, the closed-form
ridge solve of the last Linear layer that variable projection uses.

Example:
    >>> import numpy as np
    >>> from symnet import models
    >>> from symnet.restriction import ExactLoss
    >>> from solvers.linesearch import line_search
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> X, Y = np.random.default_rng(0).random((8, 2)), np.eye(2)[[0, 1] * 4]
    >>> loss = ExactLoss(m, X, Y, ridge=1e-3)
    >>> res = line_search(loss, -np.ones(m.num_params) * 1e-6)   # a tiny direction is fine
    >>> res.after <= res.before
    True
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from symnet.errors import SolverError
from symnet.polynomial import dense
from symnet.restriction import ExactLoss


class LineResult(NamedTuple):
    """Outcome of one exact line search.

    Attributes:
        t: step taken along the direction as given (``theta += t * d``); 0 if rejected.
        before: objective before the step (sum over the samples, ridge included).
        after: objective after the step (equals ``before`` when rejected).
        scale: the step scale ``s`` used to normalise the polynomial (per unit-norm direction).
        degree: degree of the restricted polynomial after trimming (-1 without
            normalisation, where ``line_minimize`` does not report it).
        accepted: whether the step was taken.
    """

    t: float
    before: float
    after: float
    scale: float
    degree: int
    accepted: bool


# ------------------------------------------------------------------ directions
def flat_direction(model, direction) -> np.ndarray:
    """A flat float64 direction of length ``model.num_params``.

    Accepts a flat vector or a dict ``{"conv0.weight": array, ...}`` (missing
    arrays are zero).

    Raises:
        SolverError: wrong length, unknown name, wrong shape, or a NaN / infinite entry.
    """
    n = model.num_params
    if isinstance(direction, dict):
        offsets = model.offsets()
        out = np.zeros(n)
        for name, arr in direction.items():
            if name not in offsets:
                raise SolverError(f"direction names {name!r}, which is not a parameter array of the model; "
                                  f"use one of {', '.join(offsets)}")
            lo, hi = offsets[name]
            arr = np.asarray(arr, dtype=np.float64)
            if arr.size != hi - lo:
                raise SolverError(f"direction for {name} has {arr.size} entries, the parameter has {hi - lo}")
            out[lo:hi] = arr.ravel()
    else:
        out = np.asarray(direction, dtype=np.float64)
        if out.shape != (n,):
            raise SolverError(f"a flat direction must have shape ({n},), got {out.shape}; "
                              "pass model.get_flat()-shaped vectors")
    if not np.all(np.isfinite(out)):
        raise SolverError("the search direction has NaN or infinite entries; check the gradient "
                          "(lower the initial scale of the weights or raise the ridge)")
    return out


def unit_direction(d: np.ndarray) -> tuple[np.ndarray, float]:
    """``(d / ||d||, ||d||)``; a zero direction gives ``(d, 0.0)``.

    Example:
        >>> u, n = unit_direction(np.array([3.0, 4.0]))
        >>> u.tolist(), n
        ([0.6, 0.8], 5.0)
    """
    big = float(np.max(np.abs(d))) if d.size else 0.0
    if big == 0.0:
        return d, 0.0
    u = d / big  # scale first so that huge but finite entries do not overflow the squares
    norm_u = float(np.linalg.norm(u))
    return u / norm_u, big * norm_u


def step_scale(coeffs: np.ndarray) -> float:
    """A natural step length of the polynomial ``sum_k c_k t^k`` (lowest first).

    The minimiser of the quadratic model, ``|c_1| / (2 c_2)``, when ``c_2 > 0``
    and ``c_1 != 0``; otherwise the Fujiwara bound on the magnitude of the
    critical points; 1 if neither is defined.

    Example:
        >>> step_scale(np.array([1.0, -4.0, 1.0]))   # (t - 2)^2 - 3
        2.0
    """
    c = np.asarray(coeffs, dtype=np.float64)
    if len(c) >= 3 and c[2] > 0.0 and c[1] != 0.0:
        s = abs(c[1]) / (2.0 * c[2])
        if np.isfinite(s) and s > 0.0:
            return float(s)
    q = dense.trim(dense.derivative(c))
    n = len(q) - 1
    if n >= 1 and q[-1] != 0.0:
        ratios = np.abs(q[:-1] / q[-1])
        powers = 1.0 / np.arange(n, 0, -1)  # |q_k / q_n|^(1/(n-k))
        with np.errstate(over="ignore", divide="ignore"):
            s = 2.0 * float(np.max(ratios ** powers))
        if np.isfinite(s) and s > 0.0:
            return s
    return 1.0


# ------------------------------------------------------------------ the line search
def line_search(loss: ExactLoss, direction, *, normalize: bool = True, accept_equal: bool = False,
                update: bool = True) -> LineResult:
    """Move to the exact global minimiser of the objective along ``direction``.

    Args:
        loss: the :class:`~symnet.restriction.ExactLoss` to minimise; its model
            and caches are updated in place when the step is taken.
        direction: flat vector of length ``num_params`` or a dict of arrays.
        normalize: divide the direction by its norm and rescale the polynomial
            to its natural step (see the module docstring). Without it this is
            exactly ``loss.line_minimize(direction)``.
        accept_equal: take a step whose value equals the current one.
        update: update the caches of ``loss`` along the step (as
            :meth:`ExactLoss.step` does). ``False`` only moves the model's
            parameters, which saves the jet pass of the update when ``loss``
            is thrown away afterwards (a mini-batch); ``loss`` is then stale.

    Returns:
        A :class:`LineResult`; ``t`` is in units of ``direction``.

    Example:
        >>> import numpy as np
        >>> from symnet.model import Sequential
        >>> from symnet.layers import Linear
        >>> from symnet.restriction import ExactLoss
        >>> m = Sequential(Linear(1, 1, bias=False), input_shape=(1,), seed=None)
        >>> loss = ExactLoss(m, np.array([[1.0], [2.0]]), np.array([[2.0], [4.0]]))
        >>> res = line_search(loss, np.array([1e-9]))      # minimiser w = 2, t = 2e9
        >>> round(res.t * 1e-9, 9), round(res.after, 12)
        (2.0, 0.0)
    """
    d = flat_direction(loss.model, direction)
    if not normalize:
        t, before, after = loss.line_minimize(d, accept_equal=accept_equal)
        return LineResult(t, before, after, 1.0, -1, t != 0.0)
    u, norm = unit_direction(d)
    if norm == 0.0:
        v = loss.value
        return LineResult(0.0, v, v, 0.0, 0, False)
    coeffs = loss.restrict(u)
    before = float(coeffs[0])
    s = step_scale(coeffs)
    u_star, after, info = dense.minimize(dense.rescale(coeffs, s))
    t_unit = s * u_star
    ok = np.isfinite(t_unit) and t_unit != 0.0 and (after < before or (accept_equal and after == before))
    if not ok:
        return LineResult(0.0, before, before, s, int(info["degree"]), False)
    if update:
        loss.step(float(t_unit))
    else:
        model = loss.model
        model.set_flat(model.get_flat() + t_unit * u)
    return LineResult(float(t_unit) / norm, before, float(after), s, int(info["degree"]), True)


# ------------------------------------------------------------------ mini-batches
def batch_loss(model, X: np.ndarray, Y: np.ndarray, ridge: float, num_samples: int) -> ExactLoss:
    """An :class:`ExactLoss` of one mini-batch carrying its share of the ridge.

    The full objective is ``SSE + ridge ||theta||^2`` over ``num_samples``
    samples; a batch of ``n_b`` of them gets ``ridge * n_b / num_samples`` so
    that the batch objectives of a partition add up to the full one (the
    convention of :mod:`solvers.gradient`).
    """
    if num_samples < 1:
        raise SolverError(f"num_samples must be positive, got {num_samples}")
    return ExactLoss(model, X, Y, ridge=float(ridge) * len(X) / float(num_samples))


class FullObjective:
    """The full-data objective by forward passes, to guard mini-batch steps.

    Args:
        model: the model being trained (read at every :meth:`evaluate`).
        X, Y: the full training set.
        ridge: the ridge weight of the full objective.
        batch_size: samples per forward chunk.

    Example:
        >>> import numpy as np
        >>> from symnet import models
        >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> X, Y = np.random.default_rng(0).random((8, 2)), np.eye(2)[[0, 1] * 4]
        >>> full = FullObjective(m, X, Y, ridge=0.1)
        >>> bool(np.isclose(full.value, ExactLoss(m, X, Y, ridge=0.1).value))
        True
    """

    def __init__(self, model, X: np.ndarray, Y: np.ndarray, ridge: float, batch_size: int = 8192) -> None:
        self.model, self.X, self.Y = model, X, Y
        self.ridge, self.batch_size = float(ridge), int(batch_size)
        self.scores: np.ndarray | None = None
        self.value = self.evaluate()

    def evaluate(self) -> float:
        """Objective at the model's current parameters (sum over samples); keeps the scores."""
        self.scores = self.model.forward(self.X, batch_size=self.batch_size)
        r = self.scores - self.Y
        theta = self.model.get_flat()
        return float(np.sum(r * r)) + self.ridge * float(theta @ theta)

    def accept(self, theta_before: np.ndarray) -> bool:
        """Keep the current parameters if the full objective did not rise, else restore ``theta_before``."""
        scores_before = self.scores
        value = self.evaluate()
        if np.isfinite(value) and value <= self.value:
            self.value = value
            return True
        self.model.set_flat(theta_before)
        self.scores = scores_before
        return False


def minibatch_line_search(loss: ExactLoss, direction, *, check: FullObjective | None = None,
                          update: bool = True) -> LineResult:
    """:func:`line_search` on a mini-batch's :class:`ExactLoss` (see :func:`batch_loss`).

    The batch objective never rises. With ``check``, the step is kept only if
    the FULL objective did not rise either (one forward pass over the full
    data); otherwise the parameters are restored and the result says
    ``accepted=False``. The batch caches are stale after a rejected step:
    build a fresh batch loss for the next one. ``update`` is passed to
    :func:`line_search`.

    Example:
        >>> import numpy as np
        >>> from symnet import models
        >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> X, Y = np.random.default_rng(0).random((64, 2)), np.eye(2)[[0, 1] * 32]
        >>> full = FullObjective(m, X, Y, ridge=0.1)
        >>> start = full.value
        >>> b = batch_loss(m, X[:16], Y[:16], 0.1, 64)
        >>> res = minibatch_line_search(b, -np.ones(m.num_params), check=full)
        >>> full.value <= start
        True
    """
    model = loss.model
    theta_before = model.get_flat() if check is not None else None
    res = line_search(loss, direction, update=update)
    if check is None or not res.accepted:
        return res
    if check.accept(theta_before):
        return res
    return LineResult(0.0, res.before, res.before, res.scale, res.degree, False)


# ------------------------------------------------------------------ variable projection
def readout_factor(loss: ExactLoss):
    """Cholesky factor of the last Linear layer's ridge Gram matrix ``A^T A + ridge I``, ``A = [H, 1]``.

    ``H`` is the cached input of the last layer (the features); the bias column
    is present when the layer has a bias. Returns ``None`` when the matrix is
    not positive definite (no ridge and rank-deficient features).

    Raises:
        SolverError: the model does not end with a Linear layer.
    """
    from scipy.linalg import LinAlgError, cho_factor

    from symnet.layers import Linear

    model = loss.model
    li = len(model.layers) - 1
    layer = model.layers[li]
    if not isinstance(layer, Linear):
        raise SolverError(f"variable projection solves the last layer in closed form, which must be Linear; "
                          f"this model ends with {layer!r} - turn varpro off")
    H = loss.acts[li]
    N, F = H.shape
    size = F + 1 if layer.bias else F
    G = np.empty((size, size))
    G[:F, :F] = H.T @ H
    if layer.bias:
        colsum = H.sum(axis=0)
        G[F, :F] = colsum
        G[:F, F] = colsum
        G[F, F] = N
    G[np.diag_indices_from(G)] += loss.ridge
    try:
        return cho_factor(G, lower=True, check_finite=False)
    except (LinAlgError, ValueError):
        return None


def solve_last_linear(loss: ExactLoss, *, factor=None) -> float:
    """Solve the last Linear layer exactly (ridge normal equations); returns the decrease.

    With every other parameter fixed the objective is a convex quadratic in
    the last layer's weights and bias, separable over the outputs: with
    features ``A = [H, 1]`` (``H`` the cached input of the layer),
    ``(A^T A + ridge I) [W^T; b] = A^T Y``, one Cholesky factorisation for all
    outputs (:func:`readout_factor`; pass ``factor`` if it is already computed
    for the current features). The solution is kept only if the objective
    does not rise (an ill-conditioned Gram matrix without ridge can make it
    numerically worse).

    Raises:
        SolverError: the model does not end with a Linear layer.

    Example:
        >>> import numpy as np
        >>> from symnet import models
        >>> m = models.get("mlp", input_dim=2, hidden=3, seed=0)
        >>> X, Y = np.random.default_rng(0).random((20, 2)), np.eye(2)[[0, 1] * 10]
        >>> loss = ExactLoss(m, X, Y, ridge=1e-2)
        >>> solve_last_linear(loss) >= 0.0
        True
    """
    from scipy.linalg import cho_solve

    if factor is None:
        factor = readout_factor(loss)
    if factor is None:
        return 0.0  # singular without ridge: keep the current weights
    model = loss.model
    li = len(model.layers) - 1
    layer = model.layers[li]
    H = loss.acts[li]
    F = H.shape[1]
    before = loss.value
    rhs = np.empty((F + 1 if layer.bias else F, loss.Y.shape[1]))
    rhs[:F] = H.T @ loss.Y
    if layer.bias:
        rhs[F] = loss.Y.sum(axis=0)
    sol = cho_solve(factor, rhs, check_finite=False)
    if not np.all(np.isfinite(sol)):
        return 0.0
    old_w = layer.params["weight"].copy()
    old_b = layer.params["bias"].copy() if layer.bias else None
    layer.params["weight"][...] = sol[:F].T
    if layer.bias:
        layer.params["bias"][...] = sol[F]
    loss.refresh_output_from(li)
    if not loss.value <= before:
        layer.params["weight"][...] = old_w
        if layer.bias:
            layer.params["bias"][...] = old_b
        loss.refresh_output_from(li)
        return 0.0
    return before - loss.value
