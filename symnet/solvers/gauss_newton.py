"""Gauss-Newton / Levenberg-Marquardt directions with exact polynomial line search (``gauss-newton``).

Directions ``(J^T J + (ridge + mu) I) d = -(J^T r + ridge theta)`` per block of
layers (:func:`gauss_newton_direction`): explicit (the block's ``J^T J``
accumulated with BLAS from per-sample Jacobians, Cholesky) when the block has
at most ``max_explicit`` parameters, matrix-free conjugate gradients otherwise
(``J v`` is the first jet coefficient of the outputs, ``J^T u`` one backward
pass; see :mod:`symnet.core.derivatives`); the last Linear layer is separable
over the outputs (one shared Gram matrix). With ``varpro`` the last Linear
layer is eliminated: it is solved exactly by ridge
(:meth:`~symnet.core.restriction.Restriction.solve_readout`) and left out of the
blocks. A Conv2d block that feeds [Poly] [AvgPool2d] Flatten Linear(last) gets
its per-sample Jacobian from one fused pass
(:func:`~symnet.core.derivatives.conv_chain_jacobian`) instead of a backward
pass per output. Large blocks can instead use their Kronecker factors (K-FAC,
:func:`kfac_direction`): a closed-form solve, or the preconditioner of a few CG
iterations on the exact Gauss-Newton matrix. With ``search="joint"`` every
block's direction is computed at the same point from one backward pass and a
single exact line search moves along their sum. Iterations, mini-batches and
checks are shared with the other exact direction solvers
(:mod:`symnet.solvers.exact_directions`); the solver runs the
:class:`~symnet.solvers.directions.base.Direction` of :func:`gauss_newton`
(one per block, or one joint).

Most options default to ``"auto"``, resolved from the model and the data size
by :meth:`GaussNewtonSolver.auto_options`: the configuration measured fastest
to a target loss (docs/benchmarks.md, "How the Gauss-Newton defaults were chosen").

"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from symnet.core.derivatives import (block_index, block_jacobian, chunk_rows, conv_chain, conv_chain_jacobian,
                                     jtj_product, kronecker_factors, param_layers, per_sample_width, residual_vjp,
                                     row_blocks)
from symnet.core.errors import SolverError
from symnet.core.layers import Linear
from symnet.core.linalg import conjugate_gradient, cross, gram
from symnet.core.restriction import Restriction, LineResult

from symnet.solvers.directions.base import Direction, Problem
from symnet.solvers.exact_directions import ExactDirectionSolver
from symnet.solvers.options import Option


def _half_gradient(loss: Restriction, idx: np.ndarray, layers) -> np.ndarray:
    """``J_B^T r + ridge theta_B`` (half the block gradient) on all samples."""
    g = residual_vjp(loss, layers=layers)[idx]
    if loss.ridge:
        g += loss.ridge * loss.model.get_flat()[idx]
    return g


def _is_last_linear(model, layers) -> bool:
    last = len(model.layers) - 1
    return list(layers) == [last] and isinstance(model.layers[last], Linear)


def gauss_newton_direction(loss: Restriction, layers=None, *, mu: float = 0.0, damping: float | None = None,
                           method: str = "auto", max_explicit: int = 2000, cg_iters: int = 50,
                           cg_tol: float = 1e-8, curvature_rows=None, readout=None,
                           half_gradient=None) -> tuple[np.ndarray, dict]:
    """The damped Gauss-Newton direction of a block of layers.

    Solves ``(J^T J + (ridge + mu) I) d = -(J^T r + ridge theta)`` in the
    parameters of ``layers`` (all parameterised layers by default); ``d`` is
    zero elsewhere. ``J^T r`` always uses every sample of ``loss``;
    ``J^T J`` may use a subset (``curvature_rows``, scaled by N / subset size).

    Args:
        loss: the exact loss (full data or a mini-batch).
        layers: layer indices of the block.
        mu: absolute Levenberg damping, used when ``damping`` is None.
        damping: relative damping: ``mu = damping * c``, ``c`` the mean diagonal
            of ``J^T J`` (explicit and separable) or its Rayleigh quotient along
            the gradient (matrix-free).
        method: ``"explicit"``, ``"cg"`` (matrix-free), ``"separable"`` (the last
            Linear layer alone) or ``"auto"`` (separable if it applies, explicit
            up to ``max_explicit`` parameters, else cg).
        cg_iters, cg_tol: iterations and relative residual of the matrix-free solve.
        curvature_rows: sample indices for ``J^T J`` (None: all).
        readout: ``(factor, c)`` for variable projection (explicit blocks that
            exclude the last Linear layer): ``factor`` is the Cholesky factor of
            the last layer's ridge Gram matrix ``G`` (:meth:`Restriction.readout_factor`,
            possibly of more data than ``loss`` holds) and ``c`` scales it to this
            loss's samples (``n / N``). Kaufman's reduced Gauss-Newton matrix is
            used, ``sum_k J_k^T J_k - (A^T J_k)^T (c G)^-1 (A^T J_k)`` (``A`` the
            features with a bias column, ``J_k`` the Jacobian rows of output k),
            and the direction also moves the last layer by the first-order
            change of its ridge solution, ``dW_k = -(c G)^-1 A^T J_k d``.
        half_gradient: ``J^T r + ridge theta`` on the block (in block order) when
            the caller already has it (one backward pass serves several blocks).

    Returns:
        ``(d, info)``: the flat direction and a dict with ``mu`` (absolute),
        ``method``, ``size`` and, for cg, ``cg_iters`` and ``cg_residual``.
    """
    model = loss.model
    layers = param_layers(model) if layers is None else sorted(layers)
    idx = block_index(model, layers)
    P = len(idx)
    N = loss.num_samples
    scale = 1.0 if curvature_rows is None else N / max(len(curvature_rows), 1)
    ridge = loss.ridge
    if method == "auto":
        method = "separable" if _is_last_linear(model, layers) else ("explicit" if P <= max_explicit else "cg")
    if method not in ("explicit", "cg", "separable"):
        raise SolverError(f"method must be 'auto', 'explicit', 'cg' or 'separable', got {method!r}")
    info: dict[str, Any] = {"method": method, "size": P}
    d = np.zeros(model.num_params)
    if method == "separable":
        if not _is_last_linear(model, layers):
            raise SolverError("the separable Gauss-Newton solve applies to the last Linear layer alone")
        li = layers[0]
        layer = model.layers[li]
        F = layer.params["weight"].shape[1]
        G, rhs = loss.reduce(separable_system, li, layer.bias, rows=curvature_rows)
        size = len(G)
        G *= scale
        # half-gradient per output: A^T r_k + ridge [w_k; b_k]
        rhs[:F] += ridge * layer.params["weight"].T
        if layer.bias:
            rhs[F] += ridge * layer.params["bias"]
        if damping is not None:
            mu = float(damping) * float(np.trace(G)) / size
        G[np.diag_indices_from(G)] += ridge + mu
        try:
            sol = -cho_solve(cho_factor(G, lower=True, check_finite=False), rhs, check_finite=False)
        except (LinAlgError, ValueError):
            sol = -np.linalg.lstsq(G, rhs, rcond=None)[0]
        parts = {"weight": sol[:F].T}
        if layer.bias:
            parts["bias"] = sol[F]
        offsets = model.offsets()
        for key, v in parts.items():
            lo, hi = offsets[f"{layer.name}.{key}"]
            d[lo:hi] = v.ravel()
        info["mu"] = mu
        return d, info
    if method == "explicit":
        chain = conv_chain(model, layers[0]) if len(layers) == 1 else None
        info["fused"] = chain is not None
        last = len(model.layers) - 1
        if readout is not None:
            if curvature_rows is not None or last in layers or not isinstance(model.layers[last], Linear):
                raise SolverError("the reduced (variable projection) direction needs all rows, a block without the "
                                  "last layer, and a model ending with a Linear layer")
            K = model.num_outputs
            with_bias = model.layers[last].bias
            F_last = model.layers[last].params["weight"].shape[1]
        # without a curvature subset, J^T r comes from the same Jacobian rows (no backward pass)
        own_b = half_gradient is None and curvature_rows is None
        if half_gradient is not None:
            b = np.array(half_gradient, dtype=np.float64)
        elif not own_b:
            b = _half_gradient(loss, idx, layers)
        A, b_rows, AJ = loss.reduce(explicit_system, tuple(layers), own_b, readout is not None, rows=curvature_rows)
        if own_b:
            b = b_rows
        if own_b and ridge:
            b += ridge * model.get_flat()[idx]
        A *= scale
        if readout is not None:
            factor, c = readout
            F1 = AJ.shape[1]
            # Z_k = (c G)^-1 A^T J_k for every output at once
            Z = cho_solve(factor, AJ.transpose(1, 0, 2).reshape(F1, -1), check_finite=False).reshape(F1, K, P)
            Z /= float(c)
            A -= np.einsum("fkp,fkq->pq", AJ.transpose(1, 0, 2), Z, optimize=True)
            A = 0.5 * (A + A.T)
            info["reduced"] = True
        if damping is not None:
            mu = float(damping) * float(np.trace(A)) / max(P, 1)
        A[np.diag_indices_from(A)] += ridge + mu
        try:
            sol = -cho_solve(cho_factor(A, lower=True, check_finite=False), b, check_finite=False)
        except (LinAlgError, ValueError):
            sol = -np.linalg.lstsq(A, b, rcond=None)[0]
        d[idx] = sol
        if readout is not None:
            dW = -np.einsum("fkp,p->kf", Z, sol)  # (K, F + 1): the readout follows its ridge solution
            offsets = model.offsets()
            name = model.layers[last].name
            lo, hi = offsets[f"{name}.weight"]
            d[lo:hi] = dW[:, :F_last].ravel()
            if with_bias:
                lo, hi = offsets[f"{name}.bias"]
                d[lo:hi] = dW[:, -1]
        info["mu"] = mu
        return d, info
    # matrix-free: conjugate gradients on (J^T J + (ridge + mu) I) x = -b within the block
    b = _half_gradient(loss, idx, layers) if half_gradient is None else np.array(half_gradient, dtype=np.float64)
    block_layers = layers

    def curvature(x_block: np.ndarray) -> np.ndarray:
        v = np.zeros(model.num_params)
        v[idx] = x_block
        return scale * jtj_product(loss, v, rows=curvature_rows, layers=block_layers)[idx]

    Ab = None
    if damping is not None:
        Ab = curvature(b)
        bb = float(b @ b)
        mu = float(damping) * (float(b @ Ab) / bb if bb > 0 else 0.0)
    shift = ridge + mu
    paid = [Ab]

    def damped(p: np.ndarray) -> np.ndarray:
        # the first search direction is -b, whose product the damping estimate already paid for
        Ap = -paid.pop() if paid and paid[0] is not None else curvature(p)
        paid.clear()
        return Ap + shift * p

    x, res = conjugate_gradient(damped, -b, tol=cg_tol, max_iter=cg_iters)
    d[idx] = x if res.iterations else -b
    info.update(mu=mu, cg_iters=res.iterations, cg_residual=res.residual)
    return d, info


def kfac_direction(loss: Restriction, layers, *, damping: float = 1e-3, rows=None, rng=None, half_gradient=None,
                   cg_iters: int = 0, cg_tol: float = 1e-4) -> tuple[np.ndarray, dict]:
    """The Gauss-Newton direction of a block from its Kronecker factors, optionally refined by preconditioned CG.

    Per layer of the block, ``(scale Gamma (x) Omega + (ridge + mu) I) d = -(J^T r + ridge theta)``
    in closed form (:class:`~symnet.core.linalg.KroneckerFactors` from
    :func:`~symnet.core.derivatives.kronecker_factors`; ``mu`` is ``damping``
    times the factors' mean diagonal), the layers treated as independent. With
    ``cg_iters > 0`` that solve preconditions conjugate gradients on the EXACT
    damped Gauss-Newton system of the block instead (``J^T J`` products from
    ``jvp``/``vjp`` on ``rows``, scaled to all samples), which needs far fewer
    iterations than plain CG. Alone, the factors underestimate the curvature of
    a pooled convolution (they drop the correlation of neighbouring positions),
    so the closed-form direction can come out much too long; one exact CG
    iteration rescales it.

    Args:
        loss: the exact loss (full data or a mini-batch).
        layers: the block's Conv2d and Linear layer indices.
        damping: relative Levenberg damping.
        rows: samples for the factors and the curvature products (None: all).
        rng: draws the Gaussian cotangents of the factors.
        half_gradient: ``J^T r + ridge theta`` on the block, if the caller has it.
        cg_iters, cg_tol: preconditioned CG iterations (0: the closed form) and relative residual.

    Returns:
        ``(d, info)`` as :func:`gauss_newton_direction`.

    Example:
        >>> import numpy as np
        >>> from symnet.core.model import presets as models
        >>> from symnet.core.derivatives import gradient
        >>> m = models.get("mlp", input_dim=3, hidden=4, seed=0)
        >>> X, Y = np.random.default_rng(0).random((30, 3)), np.eye(2)[np.arange(30) % 2]
        >>> loss = Restriction(m, X, Y, ridge=0.1)
        >>> d, info = kfac_direction(loss, [0, 2], cg_iters=2)
        >>> bool(gradient(loss) @ d < 0), info["method"]
        (True, 'kfac-cg')
    """
    model = loss.model
    layers = sorted(layers)
    idx = block_index(model, layers)
    P = len(idx)
    N = loss.num_samples
    ridge = loss.ridge
    b = _half_gradient(loss, idx, layers) if half_gradient is None else np.asarray(half_gradient, dtype=np.float64)
    factors = kronecker_factors(loss, layers, rows=rows, rng=rng)
    offsets = model.offsets()
    spans = []
    for li in layers:
        layer = model.layers[li]
        lo = offsets[f"{layer.name}.{next(iter(layer.params))}"][0]
        spans.append((li, int(np.searchsorted(idx, lo)), sum(v.size for v in layer.params.values())))
    mus = {li: float(damping) * factors[li].mean_diagonal() for li in layers}

    def precond(r: np.ndarray) -> np.ndarray:
        z = np.empty_like(r)
        for li, a, size in spans:
            z[a:a + size] = factors[li].solve(r[a:a + size], ridge + mus[li])
        return z

    info: dict[str, Any] = {"method": "kfac-cg" if cg_iters else "kfac", "size": P,
                            "mu": max(mus.values()) if mus else 0.0}
    d = np.zeros(model.num_params)
    if not cg_iters:
        d[idx] = -precond(b)
        return d, info
    scale = 1.0 if rows is None else N / max(len(rows), 1)
    mu = float(np.mean(list(mus.values())))

    def curvature(x_block: np.ndarray) -> np.ndarray:
        v = np.zeros(model.num_params)
        v[idx] = x_block
        return scale * jtj_product(loss, v, rows=rows, layers=layers)[idx] + (ridge + mu) * x_block

    # preconditioned CG on (J^T J + (ridge + mu) I) x = -b
    x, res = conjugate_gradient(curvature, -b, precond=precond, tol=cg_tol, max_iter=cg_iters)
    d[idx] = x if res.iterations else -precond(b)
    info.update(mu=mu, cg_iters=res.iterations, cg_residual=res.residual)
    return d, info


# --------------------------------------------------------------------------- the direction
class GaussNewtonState(NamedTuple):
    """State of :func:`gauss_newton`: the relative damping of each block, and the last step (momentum)."""

    damping: np.ndarray
    prev_step: np.ndarray | None = None


def gauss_newton(blocks, *, joint: bool = False, damping: float = 1e-3, adapt_damping: bool = True,
                 curvature: str = "gn", max_explicit: int = 2000, cg_iters: int = 30, cg_tol: float = 1e-4,
                 curvature_samples: int | None = None, reduced: bool = False, momentum: float = 0.0) -> Direction:
    """The damped Gauss-Newton direction of ``blocks`` (lists of layer indices), as a :class:`Direction`.

    One block alone: :func:`gauss_newton_direction` or :func:`kfac_direction`
    of it. ``joint``: every block's direction at the same point, their
    gradients from one backward pass, summed (plus ``momentum`` times the
    previous accepted step). ``curvature``, ``max_explicit``, ``cg_iters``,
    ``cg_tol``, ``curvature_samples`` and ``reduced`` (Kaufman's reduced matrix
    with the solver's variable-projection factor) are the options of
    :class:`GaussNewtonSolver`; with ``adapt_damping`` each block's relative
    damping follows the step the line search took (``t > 2`` divides it by 3,
    ``t < 0.5`` or a rejected step multiplies it by 3, otherwise it shrinks by 1.5).

    Example:
        >>> from symnet.core.model import presets as models
        >>> from symnet.core.derivatives import gradient
        >>> from symnet.solvers.directions import Problem, exact_line_search
        >>> m = models.get("mlp", input_dim=3, hidden=4, seed=0)
        >>> X, Y = np.random.default_rng(0).random((30, 3)), np.eye(2)[np.arange(30) % 2]
        >>> loss = Restriction(m, X, Y, ridge=0.1)
        >>> gn = gauss_newton([[0, 2]], joint=True)
        >>> d, state = gn.update(Problem(loss), gn.init(m))
        >>> bool(gradient(loss) @ d < 0)
        True
        >>> state, stop = gn.observe(Problem(loss), d, exact_line_search(loss, d), state)
        >>> state.damping.shape, stop
        ((1,), False)
    """
    blocks = [sorted(block) for block in blocks]

    def init(model) -> GaussNewtonState:
        return GaussNewtonState(np.full(len(blocks), float(damping)))

    def block_direction(problem: Problem, block, mu: float, half_gradient=None):
        loss, model = problem.loss, problem.loss.model
        n = loss.num_samples
        rows = None
        readout = None
        cache = problem.readout
        size = len(block_index(model, block))
        if reduced and cache is not None and size <= max_explicit:
            if problem.full and cache.factor is None:
                cache.factor = loss.readout_factor()
            if cache.factor is not None:
                readout = (cache.factor, n / problem.num_samples)
        if readout is None and curvature_samples is not None and curvature_samples < n:
            rows = np.sort(problem.rng.choice(n, curvature_samples, replace=False))
        kind = curvature
        if kind == "mixed":  # explicit where it is small enough, preconditioned CG elsewhere
            kind = "gn" if size <= max_explicit else "kfac-cg"
        if kind != "gn" and readout is None and not _is_last_linear(model, block):
            d, _ = kfac_direction(loss, block, damping=mu, rows=rows, rng=problem.rng, half_gradient=half_gradient,
                                  cg_iters=cg_iters if kind == "kfac-cg" else 0, cg_tol=cg_tol)
        else:
            d, _ = gauss_newton_direction(loss, block, damping=mu, max_explicit=max_explicit, cg_iters=cg_iters,
                                          cg_tol=cg_tol, curvature_rows=rows, readout=readout,
                                          half_gradient=half_gradient)
        if problem.full and readout is not None:
            cache.factor = None  # the features move with this block: the factor is stale
        return d

    def update(problem: Problem, state: GaussNewtonState):
        if not joint:
            return block_direction(problem, blocks[0], state.damping[0]), state
        loss, model = problem.loss, problem.loss.model
        every = sorted({li for block in blocks for li in block})
        g = residual_vjp(loss, layers=every)  # one backward pass for every block's gradient
        if loss.ridge:
            g += loss.ridge * model.get_flat()
        d = np.zeros(model.num_params)
        for b, block in enumerate(blocks):
            d += block_direction(problem, block, state.damping[b], half_gradient=g[block_index(model, block)])
        if momentum and state.prev_step is not None:
            d += momentum * state.prev_step
        return d, state

    def observe(problem: Problem, d: np.ndarray, res: LineResult, state: GaussNewtonState):
        mu = state.damping.copy()
        if adapt_damping:
            if not res.accepted or res.t < 0.5:
                mu = np.minimum(mu * 3.0, 1e8)
            elif res.t > 2.0:
                mu = np.maximum(mu / 3.0, 1e-12)
            else:
                mu = np.maximum(mu / 1.5, 1e-12)
        prev = (res.t * d if res.accepted else None) if momentum else state.prev_step
        return GaussNewtonState(mu, prev), False

    def size(model) -> int:
        return sum(len(block_index(model, block)) for block in blocks)

    return Direction(init=init, update=update, observe=observe, reset=lambda state: state._replace(prev_step=None),
                     size=size)


class GaussNewtonSolver(ExactDirectionSolver):
    """Levenberg-Marquardt / Gauss-Newton directions with exact polynomial line search.

    The options are declared in :attr:`OPTIONS`; those left at ``"auto"`` are
    resolved by :meth:`auto_options`.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (``"auto"``:
            chosen on held-out training samples, see :mod:`~symnet.solvers.exact_directions`).
        damping: initial relative Levenberg damping (``mu`` = damping times the
            mean diagonal of ``J^T J``); adapted after every line search when
            ``adapt_damping``: a step ``t > 2`` along the direction divides it by 3,
            ``t < 0.5`` (or a rejected step) multiplies it by 3, otherwise it
            shrinks by 1.5 (the exact line search replaces the trust-region test).
        blocks: ``"layers"`` (one direction per parameterised layer) or ``"all"``
            (one joint direction).
        search: ``"blocks"`` (one exact line search per block, in order, each
            block's direction computed after the previous block's step) or
            ``"joint"`` (every block's direction at the same point from one
            backward pass for the gradient, then one exact line search along
            their sum: a polynomial of higher degree, but one jet pass instead
            of one per block).
        curvature: ``"gn"`` (the block's exact Gauss-Newton matrix: explicit up to
            ``max_explicit`` parameters, matrix-free CG above), ``"kfac"`` (its
            Kronecker factors, closed form), ``"kfac-cg"`` (``cg_iters`` iterations of
            CG on the exact matrix preconditioned by the factors) or ``"mixed"``
            (explicit up to ``max_explicit`` parameters, ``"kfac-cg"`` above).
        momentum: ``beta`` >= 0 adds ``beta`` times the previous accepted step to
            the joint direction before the exact line search, which then scales
            the sum (heavy-ball averaging of mini-batch directions; 0: off).
        max_explicit: largest block solved with an explicit ``J^T J``.
        cg_iters, cg_tol: iterations and relative residual of the CG solves.
        curvature_samples: ``J^T J`` from this many random samples of the
            (batch) data, scaled up (None: all); the gradient uses all.
        varpro: eliminate the last Linear layer (exact ridge solve after every
            iteration; it is left out of the blocks).
        reduced: with varpro, use Kaufman's reduced Gauss-Newton matrix for
            the explicit blocks: the curvature left after the last layer has
            re-fitted itself, ``J^T (I - A G^-1 A^T) J``, and a direction that
            moves the last layer along with the block (see
            :func:`gauss_newton_direction`, argument ``readout``). Off by default:
            on mini-batches the subtracted term is estimated from the batch and
            biased upward (the square of a noisy estimate), which made the full
            objective rise in a trial on 20,000 MNIST samples (batches of 1,000);
            it is meant for full-data runs.
        batch_size, batch_growth, max_batch, check, iters_per_step, refresh_every, jet_dtype, readout_dtype, seed:
            see :mod:`~symnet.solvers.exact_directions`.

    Example:
        >>> import symnet; from symnet import solvers
        >>> data = symnet.datasets.xor(8)
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = solvers.get("gauss-newton")(ridge=1e-3, varpro=True).fit(model, data, steps=3, quiet=True)
        >>> s.history_.final["loss"] < s.history_[0]["loss"]
        True
    """

    name = "gauss-newton"
    OPTIONS = {
        **ExactDirectionSolver.COMMON_OPTIONS,
        "varpro": Option("auto", "bool", auto=True,
                         help="eliminate the last Linear layer by an exact ridge solve (auto: when there are "
                              "other parameters)"),
        "batch_size": Option("auto", "int", low=1, none=True, auto=True,
                             help="samples per iteration (None: all; auto above 5000 samples: 500, or 1000 "
                                  "when the layers before the readout hold under 100 parameters; else all)"),
        "batch_growth": Option("auto", "float", low=1.0, auto=True,
                               help="multiply the batch size by this after every step (auto: 1.4 when "
                                    "batch_size is auto and 500, else 1)"),
        "max_batch": Option("auto", "int", low=1, none=True, auto=True,
                            help="largest batch batch_growth reaches (None: all; auto: 20000 when the batch "
                                 "grows, which bounds its caches at about 4 GB on poly2)"),
        "iters_per_step": Option("auto", "int", low=1, none=True, auto=True,
                                 help="iterations per step (auto: 20 with mini-batches, else 1)"),
        "jet_dtype": Option("auto", "choice", choices=("float32", "float64"), auto=True,
                            help="precision of the mini-batch caches and jets (auto: float32 with mini-batches)"),
        "readout_window": Option("auto", "int", low=1, none=True, auto=True,
                                 help="track the readout between full solves on about this many recent batch "
                                      "samples (auto: 10000 with mini-batch varpro and at most 512 readout "
                                      "inputs, else None)"),
        "damping": Option(1e-3, "float", low=0.0, help="initial relative Levenberg damping"),
        "adapt_damping": Option(True, "bool", help="adapt the damping to the step the line search took"),
        "blocks": Option("layers", "choice", choices=("layers", "all"),
                         help="one direction per parameterised layer, or one joint direction"),
        "search": Option("auto", "choice", choices=("blocks", "joint"), auto=True,
                         help="a line search per block, or one along the sum of the blocks' directions "
                              "(auto: joint with mini-batches)"),
        "curvature": Option("auto", "choice", choices=("gn", "kfac", "kfac-cg", "mixed"), auto=True,
                            help="exact Gauss-Newton blocks, Kronecker factors, or both (auto: mixed with "
                                 "mini-batches, else gn)"),
        "momentum": Option(0.0, "float", low=0.0, help="weight of the previous step added to the joint direction"),
        "max_explicit": Option(2000, "int", low=0, help="largest block solved with an explicit J^T J"),
        "cg_iters": Option("auto", "int", low=1, auto=True,
                           help="CG iterations per direction (auto: 3 with mini-batches, else 30)"),
        "cg_tol": Option(1e-4, "float", low=0.0, help="relative residual that stops CG"),
        "curvature_samples": Option("auto", "int", low=1, none=True, auto=True,
                                    help="samples of each batch for J^T J (None: all; auto: 250 with mini-batches)"),
        "reduced": Option(False, "bool", help="Kaufman's reduced Gauss-Newton matrix with varpro (full data)"),
    }

    #: Above this many training samples the "auto" options pick the mini-batch configuration.
    AUTO_MINIBATCH_ABOVE: ClassVar[int] = 5000
    #: The first mini-batch of the "auto" configuration, and the factor it grows by after every step
    #: (dynamic sample size: cheap early steps on few samples, less gradient noise later). On full MNIST
    #: 500 x 1.4 beat a fixed 1,000 on poly2 and poly; on seed, whose direction moves one 3x3 filter,
    #: a batch of 1,000 already gives a precise direction and the fixed batch did better, so growth is
    #: for networks with at least GROWTH_MIN_PARAMS parameters before the readout.
    AUTO_BATCH: ClassVar[int] = 500
    AUTO_BATCH_GROWTH: ClassVar[float] = 1.4
    GROWTH_MIN_PARAMS: ClassVar[int] = 100
    #: The "auto" mini-batch of networks that do not grow theirs.
    AUTO_FIXED_BATCH: ClassVar[int] = 1000
    #: Where "auto" growth stops: a memory bound, not a tuned setting (a poly2 iteration on a float32
    #: batch of 20,000 peaked at 3.7 GB RSS, of 8,000 at 1.8 GB; 600 s runs end below it).
    AUTO_MAX_BATCH: ClassVar[int] = 20000
    #: ``readout_window="auto"`` tracks the readout only when it has at most this many inputs.
    WINDOW_MAX_FEATURES: ClassVar[int] = 512

    def auto_options(self, model, num_samples: int) -> dict[str, Any]:
        """What every option left at ``"auto"`` becomes for ``model`` on ``num_samples`` training samples.

        The configuration measured fastest to a target loss on full MNIST
        (docs/benchmarks.md, "How the Gauss-Newton defaults were chosen"): on
        more than :attr:`AUTO_MINIBATCH_ABOVE` samples,
        variable projection (the last Linear layer solved exactly on the full
        data, its first solve recorded as step 1), directions from mini-batches of
        500 that grow 1.4-fold after every step up to :attr:`AUTO_MAX_BATCH`
        (dynamic sample size; a fixed 1,000 when the layers before the readout
        hold fewer than :attr:`GROWTH_MIN_PARAMS` parameters; a ``batch_size`` the
        user gives stays fixed unless ``batch_growth`` is given too) with
        curvature from 250 of their samples (explicit Gauss-Newton for blocks up
        to ``max_explicit`` parameters, 3 iterations of K-FAC-preconditioned CG
        above), every block's direction at one point and
        one exact line search along their sum, batch caches and jets in float32,
        the readout tracked between full solves on a window of 10,000 recent batch
        samples (``readout_window``, when the readout has at most
        :attr:`WINDOW_MAX_FEATURES` inputs), a full solve and a record every 20
        iterations; on small data the full-data method in float64.

        Example:
            >>> from symnet.core.model import presets as models
            >>> m = models.get("poly", input_shape=(1, 28, 28), num_classes=10, seed=0)
            >>> gn = GaussNewtonSolver()
            >>> gn.auto_options(m, 60000)["batch_size"], gn.auto_options(m, 500)["batch_size"]
            (500, None)
        """
        last = len(model.layers) - 1
        others = [li for li in param_layers(model) if li != last]
        big = num_samples > self.AUTO_MINIBATCH_ABOVE
        given = getattr(self, "opts_", None) or {}

        def chosen(key, auto_value):  # what an option will be: the user's value, or its auto value
            value = given.get(key, "auto")
            return auto_value if value == "auto" else value

        varpro = chosen("varpro", isinstance(model.layers[last], Linear) and bool(others))
        inner = sum(v.size for li in others for v in model.layers[li].params.values())
        many = big and inner >= self.GROWTH_MIN_PARAMS
        auto_batch = (self.AUTO_BATCH if many else self.AUTO_FIXED_BATCH) if big else None
        batch = chosen("batch_size", auto_batch)
        # the measured schedule is 500 x 1.4: a batch the user chose stays the size they chose
        grows = many and given.get("batch_size", "auto") == "auto"
        growth = chosen("batch_growth", self.AUTO_BATCH_GROWTH if grows else 1.0)
        # measured on full MNIST: a gain on poly2 (F = 512 readout inputs), a small loss on seed (F = 676,
        # cheap iterations on a flat loss); off above 512, which includes poly (2,304, not measured, where
        # the O(F^3) solve per iteration would cost as much as the rest of the iteration)
        readout = model.layers[last]
        narrow = isinstance(readout, Linear) and readout.in_features <= self.WINDOW_MAX_FEATURES
        tracked = big and bool(varpro) and batch is not None and batch < num_samples and narrow
        return {
            "varpro": varpro,
            "batch_size": auto_batch,
            "batch_growth": self.AUTO_BATCH_GROWTH if grows else 1.0,
            "max_batch": self.AUTO_MAX_BATCH if growth > 1.0 else None,
            "iters_per_step": 20 if big else None,
            "curvature_samples": 250 if big else None,
            "curvature": "mixed" if big else "gn",
            "search": "joint" if big else "blocks",
            "cg_iters": 3 if big else 30,
            "jet_dtype": "float32" if big else "float64",
            "readout_window": 10000 if tracked else None,
        }

    def _setup(self, model, data, rng):
        self.resolved_ = {}
        for key, value in self.auto_options(model, len(data.x_train)).items():
            if self.opts_.get(key) == "auto":
                self.opts_[key] = self.resolved_[key] = value
        super()._setup(model, data, rng)

    def _setup_method(self, model):
        opts = self.opts_
        self.max_explicit_ = opts["max_explicit"]
        layers = param_layers(model)
        if opts["varpro"]:
            layers = [li for li in layers if li != len(model.layers) - 1]
        if not layers:
            raise SolverError("no parameters left to optimise: with varpro the last layer is solved in closed "
                              "form and the model has no other parameters; use varpro=False")
        if opts["blocks"] == "layers":
            self.blocks_ = [[li] for li in layers]
        else:
            self.blocks_ = [layers]
        momentum = opts["momentum"]
        if momentum and not (opts["search"] == "joint" or len(self.blocks_) == 1):
            raise SolverError("momentum adds the previous step to the joint direction: use search='joint' "
                              "(or blocks='all')")

    def _directions(self, model):
        opts = self.opts_
        settings = dict(damping=opts["damping"], adapt_damping=opts["adapt_damping"], curvature=opts["curvature"],
                        max_explicit=opts["max_explicit"], cg_iters=opts["cg_iters"], cg_tol=opts["cg_tol"],
                        curvature_samples=opts["curvature_samples"], reduced=opts["varpro"] and opts["reduced"])
        if (opts["search"] == "joint" and len(self.blocks_) > 1) or opts["momentum"]:
            return [gauss_newton(self.blocks_, joint=True, momentum=opts["momentum"], **settings)]
        return [gauss_newton([block], **settings) for block in self.blocks_]

    @property
    def damping_(self) -> np.ndarray:
        """The relative damping of every block, in block order."""
        return np.concatenate([state.damping for state in self.states_])

    def _memory_state(self):
        out = {"damping": self.damping_}
        prev = self.states_[0].prev_step
        if prev is not None:
            out["prev_step"] = prev
        return out

    def _load_memory(self, state):
        damping = self.damping_
        if "damping" in state and len(state["damping"]) == len(damping):
            damping = np.asarray(state["damping"], dtype=np.float64)
        parts = np.split(damping.copy(), np.cumsum([len(st.damping) for st in self.states_])[:-1])
        self.states_ = [st._replace(damping=part, prev_step=None) for st, part in zip(self.states_, parts)]
        if "prev_step" in state:
            self.states_[0] = self.states_[0]._replace(prev_step=np.asarray(state["prev_step"]).copy())

    def _extra_record(self):
        return {"damping": float(np.max(self.damping_))}


# --------------------------------------------------------------------------- ops on the samples (see symnet.core.samples)
# The sums over samples of the explicit directions, as functions of one process's Restriction: called directly on a
# loss in this process, on every shard of a sharded one (only the small sums travel).
def separable_system(loss: Restriction, rows, li: int, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """``([H, 1]^T [H, 1]`` of ``rows`` (the curvature's), ``[H, 1]^T r`` of every row) for the last layer."""
    H = loss.acts[li]
    return gram(H if rows is None else H[rows], bias=bias), cross(H, loss.residual, bias=bias)


def explicit_system(loss: Restriction, rows, layers: tuple, own_b: bool, reduced: bool):
    """``(J^T J, J^T r or None, A^T J_k per output or None)`` of the block ``layers`` on ``rows``.

    ``J`` is the per-sample Jacobian of the outputs in the block's parameters (rows of
    :func:`~symnet.core.derivatives.conv_chain_jacobian` for a Conv2d that feeds the
    output through [Poly] [AvgPool2d] Flatten Linear, else
    :func:`~symnet.core.derivatives.block_jacobian`), in chunks of rows; ``A`` the
    last layer's features with a bias column (for the reduced matrix).
    """
    model = loss.model
    layers = list(layers)
    P = len(block_index(model, layers))
    chain = conv_chain(model, layers[0]) if len(layers) == 1 else None
    if chain is not None:
        conv = model.layers[layers[0]]
        Co, Ho, Wo = model.shapes[layers[0] + 1]
        per_row = Co * ((Ho // chain[1]) * (Wo // chain[1]) + model.num_outputs) * \
            (conv.in_channels * conv.kh * conv.kw + 1) + 2 * per_sample_width(model)
    else:
        per_row = model.num_outputs * P + 4 * per_sample_width(model)
    A = np.zeros((P, P))
    b = np.zeros(P) if own_b else None
    AJ = None
    if reduced:
        last = len(model.layers) - 1
        K = model.num_outputs
        with_bias = model.layers[last].bias
        feats = loss.acts[last]
        AJ = np.zeros((K, feats.shape[1] + int(with_bias), P))
    if rows is not None and not isinstance(rows, slice) and len(rows) == 0:
        return A, b, AJ
    for sel, _ in row_blocks(len(loss.X), rows, chunk_rows(model, per_row)):
        if chain is not None:  # rows ordered (output, sample)
            J3 = conv_chain_jacobian(loss, layers[0], rows=sel)
            Jc = J3.reshape(-1, P)
            r = loss.residual[sel].T.ravel()
        else:  # rows ordered (sample, output)
            J3 = block_jacobian(loss, layers, rows=sel)
            Jc = J3.reshape(-1, P)
            r = loss.residual[sel].ravel()
        A += Jc.T @ Jc
        if own_b:
            b += Jc.T @ r
        if reduced:
            Ac = feats[sel]
            for k in range(K):  # over the outputs: (F, n) @ (n, P)
                Jk = J3[k] if chain is not None else J3[:, k, :]
                AJ[k, :Ac.shape[1]] += Ac.T @ Jk
                if with_bias:
                    AJ[k, -1] += Jk.sum(axis=0)
    return A, b, AJ
