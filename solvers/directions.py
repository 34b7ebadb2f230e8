"""Exact solvers beyond one coordinate: CG, L-BFGS and Gauss-Newton with exact line search.

Each solver picks a search direction ``d`` in the whole parameter space (or a
block of it) and moves to the exact global minimiser of the objective along
it with :func:`solvers.linesearch.line_search`; the objective therefore never
rises, whatever the direction.

* ``cg``: nonlinear conjugate gradient, Polak-Ribiere+ (``beta = max(0,
  g.(g - g_prev) / g_prev.g_prev)``), restarted every ``restart_every``
  iterations and whenever ``d`` is not a descent direction.
* ``lbfgs``: L-BFGS two-loop recursion with ``memory`` pairs; a pair with
  ``s.y <= curvature_eps * ||s|| ||y||`` is skipped (the exact line search
  does not enforce the Wolfe curvature condition).
* ``gauss-newton``: Levenberg-Marquardt directions
  ``(J^T J + (ridge + mu) I) d = -(J^T r + ridge theta)`` per block of layers:
  explicit (the block's ``J^T J`` accumulated with BLAS from per-sample
  Jacobians, Cholesky) when the block has at most ``max_explicit``
  parameters, matrix-free conjugate gradients otherwise (``J v`` is the first
  jet coefficient of the outputs, ``J^T u`` one backward pass); the last
  Linear layer is separable over the outputs (one shared Gram matrix). With
  ``varpro`` the last Linear layer is eliminated: it is solved exactly by
  ridge (:func:`solvers.linesearch.solve_last_linear`) and left out of the
  blocks. A Conv2d block that feeds [Poly] [AvgPool2d] Flatten Linear(last)
  gets its per-sample Jacobian from one fused pass
  (:func:`conv_chain_jacobian`) instead of a backward pass per output.

What one step is: ``iters_per_step`` iterations (default one iteration on the
full data, one epoch of mini-batches with ``batch_size``). An iteration is one
direction and one exact line search (Gauss-Newton: one per block).

Mini-batches (``batch_size``): each iteration draws the next batch of a
per-epoch permutation, builds an :class:`~symnet.restriction.ExactLoss` of the
batch (carrying its share ``ridge * n_b / N`` of the ridge), and computes the
direction and the exact line search on it. CG and L-BFGS form their
``(s, y)`` pairs from two gradients of the SAME batch (one extra backward
pass). With ``check=True`` a step is kept only if the full objective did not
rise (one forward pass over the full data per line search). With ``varpro``
the last layer is solved on the full data before the first iteration and at
the end of every step (its features give the step's exact objective for
free); otherwise each step ends with one forward pass over the full data to
report the exact objective. On the full data, ``varpro`` solves after every
iteration.

The time limit of :meth:`Solver.fit` is checked between iterations; the
closing solve of the last layer still runs, so a run can pass the limit by
one such solve.

Derivatives all come from the exact-loss caches (no extra forward pass):
:func:`gradient`, :func:`vjp` (``J^T U``), :func:`jvp` (``J v``),
:func:`block_jacobian` and :func:`gauss_newton_direction` are public so the
tests can check them against finite differences and explicit linear algebra.

Example:
    >>> import symnet, solvers
    >>> data = symnet.datasets.xor(8)
    >>> model = symnet.models.mlp(2, 2, 2, seed=0)
    >>> s = solvers.get("lbfgs")(ridge=1e-3).fit(model, data, steps=5, quiet=True)
    >>> losses = s.history_.column("loss")
    >>> bool(all(b <= a for a, b in zip(losses, losses[1:])))
    True
"""

from __future__ import annotations

import abc
import time
from typing import Any, ClassVar

import numpy as np

from symnet.errors import SolverError
from symnet.layers import AvgPool2d, Conv2d, Flatten, Jet, Linear, Poly, conv_weight_grad
from symnet.restriction import ExactLoss

from .base import Solver
from .linesearch import (FullObjective, LineResult, batch_loss, line_search, minibatch_line_search,
                         readout_factor, solve_last_linear)

#: Floats one chunk of a backward or jet pass may hold (about 240 MB).
CHUNK_BUDGET = 3e7


# =========================================================================== derivatives
def _per_sample_width(model) -> int:
    return max(int(np.prod(s)) for s in model.shapes)


def _chunk(model, per_row: int | None = None) -> int:
    width = per_row if per_row is not None else 4 * _per_sample_width(model)
    return max(1, int(CHUNK_BUDGET // max(width, 1)))


def _row_blocks(num_rows: int, rows, chunk: int):
    """(selector into the loss's rows, slice into the caller's row array) per chunk.

    ``rows`` is None (every row), a slice of consecutive rows, or an index array.
    """
    if rows is None or isinstance(rows, slice):
        lo, hi, _ = (0, num_rows, 1) if rows is None else rows.indices(num_rows)
        for a in range(lo, hi, chunk):
            b = min(hi, a + chunk)
            yield slice(a, b), slice(a - lo, b - lo)
    else:
        rows = np.asarray(rows, dtype=np.int64)
        for a in range(0, len(rows), chunk):
            b = min(len(rows), a + chunk)
            yield rows[a:b], slice(a, b)


def _num_rows(loss: ExactLoss, rows) -> int:
    if rows is None:
        return len(loss.X)
    if isinstance(rows, slice):
        return len(range(*rows.indices(len(loss.X))))
    return len(rows)


def _layer_input(loss: ExactLoss, li: int, sel) -> np.ndarray:
    """The input of layer ``li`` on the selected rows, from the caches.

    The jet rules need the inputs of Linear, Conv2d and Poly layers, which the
    loss caches; the backward rules of AvgPool2d and Flatten read only the
    input's shape, so a broadcast stand-in of that shape serves. Any other
    layer's input is recomputed from the nearest cached activation below it.
    """
    if li in loss.acts:
        return loss.acts[li][sel]
    model = loss.model
    n = len(range(*sel.indices(len(loss.X)))) if isinstance(sel, slice) else len(sel)
    layer = model.layers[li]
    if isinstance(layer, (AvgPool2d, Flatten)):
        return np.broadcast_to(np.zeros(1), (n,) + tuple(model.shapes[li]))
    j = max([k for k in loss.acts if k < li], default=None)
    h = loss.X[sel] if j is None else loss.acts[j][sel]
    for k in range(0 if j is None else j, li):
        h = model.layers[k].forward(h)
    return h


def _input_grad(layer, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient with respect to the layer's input only (no parameter gradients)."""
    if isinstance(layer, Linear):
        return g @ layer.params["weight"]
    if isinstance(layer, Conv2d):
        from symnet._conv_kernels import col2im

        # the transposed convolution: one matmul W^T g over all samples, then the windows are scattered
        # back (col2im), which moves a quarter of the data a full correlation with the flipped kernel would
        n, Co, Ho, Wo = g.shape
        Ci, kh, kw = layer.in_channels, layer.kh, layer.kw
        wmat = layer.params["weight"].reshape(Co, Ci * kh * kw)
        out = []
        step = max(1, int(CHUNK_BUDGET // (2 * Ci * kh * kw * Ho * Wo)))
        for a in range(0, n, step):
            gs = g[a:a + step]
            m = len(gs)
            cols = wmat.T @ np.ascontiguousarray(gs.transpose(1, 0, 2, 3)).reshape(Co, m * Ho * Wo)
            gxp = np.empty((m, Ci, Ho + kh - 1, Wo + kw - 1))
            col2im(cols.reshape(-1, m, Ho * Wo), kh, kw, gxp)
            out.append(gxp)
        gxp = out[0] if len(out) == 1 else np.concatenate(out)
        (a, b), (c, d) = layer.pads
        return gxp[:, :, a:gxp.shape[2] - b, c:gxp.shape[3] - d]
    if isinstance(layer, Poly):
        return g * layer.derivative(x)
    return layer.backward(x, g)[0]


def _param_grads(layer, x: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
    """Parameter gradients summed over the samples (no input gradient)."""
    if isinstance(layer, Linear):
        out = {"weight": g.T @ x}
        if layer.bias:
            out["bias"] = g.sum(axis=0)
        return out
    if isinstance(layer, Conv2d):
        out = {"weight": conv_weight_grad(layer.padded(x), g, layer.kh, layer.kw)}
        if layer.bias:
            out["bias"] = g.sum(axis=(0, 2, 3))
        return out
    return layer.backward(x, g)[1]


def _per_sample_grads(layer, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per-sample parameter gradients (n, layer size), in the layer's flat order."""
    n = len(g)
    if isinstance(layer, Linear):
        parts = {"weight": (g[:, :, None] * x[:, None, :]).reshape(n, -1)}
        if layer.bias:
            parts["bias"] = g
    elif isinstance(layer, Conv2d):
        from symnet._conv_kernels import im2col

        xp = np.ascontiguousarray(layer.padded(x), dtype=np.float64)
        Ci = xp.shape[1]
        Co, Ho, Wo = g.shape[1:]
        K, P = Ci * layer.kh * layer.kw, Ho * Wo
        cols = np.empty((K, n * P))
        im2col(xp, layer.kh, layer.kw, cols.reshape(K, n, P))
        per_sample = np.ascontiguousarray(cols.reshape(K, n, P).transpose(1, 0, 2))  # (n, K, P)
        # per sample: (Co, Ho*Wo) @ (Ho*Wo, Ci*kh*kw), one batched BLAS call
        gw = np.matmul(g.reshape(n, Co, P), per_sample.transpose(0, 2, 1))
        parts = {"weight": gw.reshape(n, -1)}
        if layer.bias:
            parts["bias"] = g.sum(axis=(2, 3))
    else:
        raise SolverError(f"per-sample Jacobians are implemented for Linear and Conv2d layers, not {layer!r}; "
                          "use the matrix-free Gauss-Newton (max_explicit=0)")
    return np.concatenate([parts[k] for k in layer.params], axis=1)


def _param_layers(model) -> list[int]:
    return [li for li, layer in enumerate(model.layers) if layer.params]


def block_index(model, layers) -> np.ndarray:
    """Flat indices of every parameter of ``layers`` (layer indices), in flat order."""
    offsets = model.offsets()
    idx = []
    for li in sorted(layers):
        layer = model.layers[li]
        for key in layer.params:
            lo, hi = offsets[f"{layer.name}.{key}"]
            idx.append(np.arange(lo, hi))
    return np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)


def vjp(loss: ExactLoss, U: np.ndarray, *, rows=None, layers=None) -> np.ndarray:
    """``J^T U``: sum over samples and outputs of ``U[n, k] * d f_k(x_n) / d theta`` (flat).

    One backward pass from the caches of ``loss`` (no forward pass), in chunks
    of samples. ``rows`` selects samples of the loss (``U`` then has one row per
    selected sample); ``layers`` limits the parameters computed (the others
    are zero), which also stops the pass at the lowest of them.

    Example:
        >>> import numpy as np
        >>> from symnet import models
        >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> X, Y = np.random.default_rng(0).random((5, 2)), np.eye(2)[[0, 1, 0, 1, 0]]
        >>> loss = ExactLoss(m, X, Y)
        >>> value, grad = m.loss_and_grad(X, Y)
        >>> bool(np.allclose(vjp(loss, 2 * loss.residual), grad))
        True
    """
    model = loss.model
    layers = _param_layers(model) if layers is None else sorted(layers)
    out = np.zeros(model.num_params)
    if not layers:
        return out
    lowest = layers[0]
    wanted = set(layers)
    U = np.asarray(U, dtype=np.float64)
    if U.shape != (_num_rows(loss, rows), model.num_outputs):
        raise SolverError(f"U must have shape ({_num_rows(loss, rows)}, {model.num_outputs}), got {U.shape}")
    sums: dict[int, dict[str, np.ndarray]] = {}
    for sel, part in _row_blocks(len(loss.X), rows, _chunk(model)):
        g = U[part]
        for li in range(len(model.layers) - 1, lowest - 1, -1):
            layer = model.layers[li]
            x = _layer_input(loss, li, sel)
            if li in wanted:
                for key, v in _param_grads(layer, x, g).items():
                    acc = sums.setdefault(li, {})
                    acc[key] = v if key not in acc else acc[key] + v
            if li > lowest:
                g = _input_grad(layer, x, g)
    offsets = model.offsets()
    for li, parts in sums.items():
        for key, v in parts.items():
            lo, hi = offsets[f"{model.layers[li].name}.{key}"]
            out[lo:hi] = v.ravel()
    return out


def gradient(loss: ExactLoss) -> np.ndarray:
    """Flat gradient of ``loss.value`` (SSE plus ridge) at the current parameters, from the caches.

    Example:
        >>> import numpy as np
        >>> from symnet import models
        >>> m = models.get("poly", input_shape=(1, 6, 6), channels=2, kernel=3, num_classes=2, seed=0)
        >>> X, Y = np.random.default_rng(0).random((4, 1, 6, 6)), np.eye(2)[[0, 1, 0, 1]]
        >>> loss = ExactLoss(m, X, Y, ridge=0.1)
        >>> bool(np.allclose(gradient(loss), m.loss_and_grad(X, Y, 0.1)[1]))
        True
    """
    g = vjp(loss, 2.0 * loss.residual)
    if loss.ridge:
        g += 2.0 * loss.ridge * loss.model.get_flat()
    return g


def jvp(loss: ExactLoss, v: np.ndarray, *, rows=None) -> np.ndarray:
    """``J v``: the first-order change of the outputs along ``v``, shape (samples, outputs).

    Forward mode through the exact jet rules: each layer's jet is cut to its
    ``t^1`` coefficient, which higher orders never feed, so the result is the
    exact directional derivative (the ``t^1`` term of ``f(theta + t v)``).

    Example:
        >>> import numpy as np
        >>> from symnet import models
        >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> X, Y = np.random.default_rng(0).random((5, 2)), np.eye(2)[[0, 1, 0, 1, 0]]
        >>> loss = ExactLoss(m, X, Y)
        >>> v = np.random.default_rng(1).normal(size=m.num_params)
        >>> h = 1e-6
        >>> m.set_flat(m.get_flat() + h * v); up = m.forward(X)
        >>> m.set_flat(m.get_flat() - 2 * h * v); down = m.forward(X)
        >>> bool(np.allclose(jvp(loss, v), (up - down) / (2 * h), atol=1e-7))
        True
    """
    model = loss.model
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (model.num_params,):
        raise SolverError(f"v must have shape ({model.num_params},), got {v.shape}")
    n = _num_rows(loss, rows)
    out = np.zeros((n, model.num_outputs))
    direction = loss.normalize(v)
    if not direction:
        return out
    first = min(direction)
    for sel, part in _row_blocks(len(loss.X), rows, _chunk(model)):
        jet = None
        for li in range(first, len(model.layers)):
            x = loss.acts.get(li)
            jet = model.layers[li].jet(None if x is None else x[sel], jet, direction.get(li))
            if jet is not None and jet.order > 1:
                jet = Jet(np.ascontiguousarray(jet.coeffs[:1]), jet.channels)
        if jet is None:
            continue
        if jet.channels is None:
            out[part] = jet.coeffs[0]
        else:
            out[part, jet.channels] = jet.coeffs[0]
    return out


def block_jacobian(loss: ExactLoss, layers, *, rows=None) -> np.ndarray:
    """Per-sample Jacobian of the outputs in the parameters of ``layers``: (samples, outputs, block size).

    Row ``(n, k)`` is ``d f_k(x_n) / d theta_block``, from one backward pass per
    output (cotangent ``e_k`` for every sample) and per-sample parameter
    gradients at the block's layers (a batched matmul for Conv2d, an outer
    product for Linear). Columns follow :func:`block_index`. Meant for small
    blocks: it holds samples x outputs x block size floats.
    """
    model = loss.model
    layers = sorted(layers)
    lowest = layers[0]
    wanted = set(layers)
    K = model.num_outputs
    sizes = {li: sum(v.size for v in model.layers[li].params.values()) for li in layers}
    cols = np.cumsum([0] + [sizes[li] for li in layers])
    start = {li: int(cols[i]) for i, li in enumerate(layers)}
    n = _num_rows(loss, rows)
    J = np.empty((n, K, int(cols[-1])))
    per_row = K * int(cols[-1]) + 4 * _per_sample_width(model)
    for sel, part in _row_blocks(len(loss.X), rows, _chunk(model, per_row)):
        m = part.stop - part.start
        inputs = {li: _layer_input(loss, li, sel) for li in range(lowest, len(model.layers))}
        for k in range(K):  # one backward pass per output, over all samples of the chunk at once
            g = np.zeros((m, K))
            g[:, k] = 1.0
            for li in range(len(model.layers) - 1, lowest - 1, -1):
                layer = model.layers[li]
                if li in wanted:
                    J[part, k, start[li]:start[li] + sizes[li]] = _per_sample_grads(layer, inputs[li], g)
                if li > lowest:
                    g = _input_grad(layer, inputs[li], g)
    return J


def conv_chain(model, li: int) -> tuple[int | None, int, int] | None:
    """(Poly index or None, pool size, Linear index) if Conv2d ``li`` feeds [Poly] [AvgPool2d] Flatten Linear(last)."""
    layers = model.layers
    if not isinstance(layers[li], Conv2d):
        return None
    j = li + 1
    poly = None
    if j < len(layers) and isinstance(layers[j], Poly):
        poly, j = j, j + 1
    pool = 1
    if j < len(layers) and isinstance(layers[j], AvgPool2d):
        pool, j = layers[j].size, j + 1
    if j < len(layers) and isinstance(layers[j], Flatten) and j + 1 == len(layers) - 1 \
            and isinstance(layers[j + 1], Linear):
        return poly, pool, j + 1
    return None


def conv_chain_jacobian(loss: ExactLoss, li: int, *, rows=None) -> np.ndarray:
    """Per-sample Jacobian in the parameters of Conv2d ``li`` when it feeds [Poly] [AvgPool2d] Flatten Linear.

    Same values as :func:`block_jacobian` ``(loss, [li])`` but laid out (outputs, samples, layer size)
    and computed without a backward pass per output: pooling is linear, so

        d f_k / d w_c = sum_q W[k, c, q] C_c(q),   C_c(q) = sum_{p in cell q} p'(z_c(p)) patch(p) / pool^2,

    the pooled patch sums ``C`` come from one numba pass (:func:`pooled_patch_sums`) and the
    contraction with the last layer's weights is one matmul per channel.
    """
    from ._gn_kernels import pooled_patch_sums

    model = loss.model
    chain = conv_chain(model, li)
    if chain is None:
        raise SolverError(f"layer {li} does not feed [Poly] [AvgPool2d] Flatten Linear; use block_jacobian")
    poly_li, pool, lin_li = chain
    conv = model.layers[li]
    x = loss.acts[li][rows if rows is not None else slice(None)]
    n = len(x)
    xpad = np.ascontiguousarray(conv.padded(x), dtype=np.float64)
    Co, Ho, Wo = model.shapes[li + 1]
    if poly_li is not None:
        z = loss.acts[poly_li][rows if rows is not None else slice(None)]
        dz = model.layers[poly_li].derivative(z)
    else:
        dz = np.ones((n, Co, Ho, Wo))
    dz = np.ascontiguousarray(dz / float(pool * pool))
    Q = (Ho // pool) * (Wo // pool)
    M = conv.in_channels * conv.kh * conv.kw
    C = np.empty((Co, Q, n, M + 1))
    pooled_patch_sums(xpad, dz, pool, conv.kh, conv.kw, C)
    W = model.layers[lin_li].params["weight"]
    K = W.shape[0]
    J = np.empty((K, n, Co, M + 1))
    for c in range(Co):  # one matmul per channel: (K, Q) @ (Q, n (M + 1))
        J[:, :, c, :] = (W[:, c * Q:(c + 1) * Q] @ C[c].reshape(Q, n * (M + 1))).reshape(K, n, M + 1)
    parts = [J[:, :, :, :M].reshape(K, n, Co * M)]
    if conv.bias:
        parts.append(J[:, :, :, M])
    return np.concatenate(parts, axis=2)


def _half_gradient(loss: ExactLoss, idx: np.ndarray, layers) -> np.ndarray:
    """``J_B^T r + ridge theta_B`` (half the block gradient) on all samples."""
    g = vjp(loss, loss.residual, layers=layers)[idx]
    if loss.ridge:
        g += loss.ridge * loss.model.get_flat()[idx]
    return g


def _is_last_linear(model, layers) -> bool:
    last = len(model.layers) - 1
    return list(layers) == [last] and isinstance(model.layers[last], Linear)


def gauss_newton_direction(loss: ExactLoss, layers=None, *, mu: float = 0.0, damping: float | None = None,
                           method: str = "auto", max_explicit: int = 2000, cg_iters: int = 50,
                           cg_tol: float = 1e-8, curvature_rows=None, readout=None) -> tuple[np.ndarray, dict]:
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
            the last layer's ridge Gram matrix ``G`` (:func:`readout_factor`,
            possibly of more data than ``loss`` holds) and ``c`` scales it to this
            loss's samples (``n / N``). Kaufman's reduced Gauss-Newton matrix is
            used, ``sum_k J_k^T J_k - (A^T J_k)^T (c G)^-1 (A^T J_k)`` (``A`` the
            features with a bias column, ``J_k`` the Jacobian rows of output k),
            and the direction also moves the last layer by the first-order
            change of its ridge solution, ``dW_k = -(c G)^-1 A^T J_k d``.

    Returns:
        ``(d, info)``: the flat direction and a dict with ``mu`` (absolute),
        ``method``, ``size`` and, for cg, ``cg_iters`` and ``cg_residual``.
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    model = loss.model
    layers = _param_layers(model) if layers is None else sorted(layers)
    idx = block_index(model, layers)
    P = len(idx)
    N = len(loss.X)
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
        H = loss.acts[li]
        Hc = H if curvature_rows is None else H[curvature_rows]
        F = H.shape[1]
        size = F + 1 if layer.bias else F
        G = np.empty((size, size))
        G[:F, :F] = Hc.T @ Hc
        if layer.bias:
            colsum = Hc.sum(axis=0)
            G[F, :F] = G[:F, F] = colsum
            G[F, F] = len(Hc)
        G *= scale
        # half-gradient per output: A^T r_k + ridge [w_k; b_k]
        rhs = np.empty((size, model.num_outputs))
        rhs[:F] = H.T @ loss.residual + ridge * layer.params["weight"].T
        if layer.bias:
            rhs[F] = loss.residual.sum(axis=0) + ridge * layer.params["bias"]
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
        A = np.zeros((P, P))
        chain = conv_chain(model, layers[0]) if len(layers) == 1 else None
        if chain is not None:
            conv = model.layers[layers[0]]
            Co, Ho, Wo = model.shapes[layers[0] + 1]
            per_row = Co * ((Ho // chain[1]) * (Wo // chain[1]) + model.num_outputs) * \
                (conv.in_channels * conv.kh * conv.kw + 1) + 2 * _per_sample_width(model)
        else:
            per_row = model.num_outputs * P + 4 * _per_sample_width(model)
        info["fused"] = chain is not None
        last = len(model.layers) - 1
        if readout is not None:
            if curvature_rows is not None or last in layers or not isinstance(model.layers[last], Linear):
                raise SolverError("the reduced (variable projection) direction needs all rows, a block without the "
                                  "last layer, and a model ending with a Linear layer")
            K = model.num_outputs
            with_bias = model.layers[last].bias
            feats = loss.acts[last]
            AJ = np.zeros((K, feats.shape[1] + int(with_bias), P))
        # without a curvature subset, J^T r comes from the same Jacobian rows (no backward pass)
        b = np.zeros(P) if curvature_rows is None else _half_gradient(loss, idx, layers)
        for sel, _ in _row_blocks(N, curvature_rows, _chunk(model, per_row)):
            if chain is not None:  # rows ordered (output, sample)
                J3 = conv_chain_jacobian(loss, layers[0], rows=sel)
                Jc = J3.reshape(-1, P)
                r = loss.residual[sel].T.ravel()
            else:  # rows ordered (sample, output)
                J3 = block_jacobian(loss, layers, rows=sel)
                Jc = J3.reshape(-1, P)
                r = loss.residual[sel].ravel()
            A += Jc.T @ Jc
            if curvature_rows is None:
                b += Jc.T @ r
            if readout is not None:
                Ac = feats[sel]
                for k in range(K):  # over the outputs: (F, n) @ (n, P)
                    Jk = J3[k] if chain is not None else J3[:, k, :]
                    AJ[k, :Ac.shape[1]] += Ac.T @ Jk
                    if with_bias:
                        AJ[k, -1] += Jk.sum(axis=0)
        if curvature_rows is None and ridge:
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
            d[lo:hi] = dW[:, :feats.shape[1]].ravel()
            if with_bias:
                lo, hi = offsets[f"{name}.bias"]
                d[lo:hi] = dW[:, -1]
        info["mu"] = mu
        return d, info
    # matrix-free: conjugate gradients on (J^T J + (ridge + mu) I) x = -b within the block
    b = _half_gradient(loss, idx, layers)
    block_layers = layers

    def curvature(x_block: np.ndarray) -> np.ndarray:
        v = np.zeros(model.num_params)
        v[idx] = x_block
        Jv = jvp(loss, v, rows=curvature_rows)
        return scale * vjp(loss, Jv, rows=curvature_rows, layers=block_layers)[idx]

    Ab = None
    if damping is not None:
        Ab = curvature(b)
        bb = float(b @ b)
        mu = float(damping) * (float(b @ Ab) / bb if bb > 0 else 0.0)
    shift = ridge + mu
    x = np.zeros(P)
    r = -b.copy()
    p = r.copy()
    rr = float(r @ r)
    target = (cg_tol ** 2) * rr
    it = 0
    while it < cg_iters and rr > target and rr > 0:
        # the first search direction is -b, whose product the damping estimate already paid for
        Ap = (-Ab if it == 0 and Ab is not None else curvature(p)) + shift * p
        pAp = float(p @ Ap)
        if pAp <= 0:
            break
        alpha = rr / pAp
        x += alpha * p
        r -= alpha * Ap
        rr_new = float(r @ r)
        p = r + (rr_new / rr) * p
        rr = rr_new
        it += 1
    d[idx] = x if it else -b
    info.update(mu=mu, cg_iters=it, cg_residual=float(np.sqrt(rr / max(float(b @ b), 1e-300))))
    return d, info


# =========================================================================== the solvers
class _ExactDirectionSolver(Solver):
    """Shared machinery: options, full-data or mini-batch iterations, checks, variable projection."""

    step_unit: ClassVar[str] = "iter"
    default_steps: ClassVar[int] = 10
    blas_threads: ClassVar[int | None] = 1  # numba-parallel jets and kernels between small GEMMs
    common_defaults: ClassVar[dict[str, Any]] = {
        "ridge": 1.0, "batch_size": None, "check": False, "iters_per_step": None, "varpro": False,
        "refresh_every": 50, "seed": 0,
    }

    # ------------------------------------------------------------------ setup
    def _setup(self, model, data, rng):
        opts = self.opts_
        layers = self._require_exact_network(model, data)
        self.ridge_ = self._number("ridge", minimum=0.0)
        N = len(data.x_train)
        batch = opts["batch_size"]
        if batch is not None:
            batch = self._whole("batch_size", 1)
            batch = None if batch >= N else batch
        self.batch_ = batch
        ips = opts["iters_per_step"]
        if ips is None:
            ips = 1 if batch is None else -(-N // batch)
        else:
            ips = self._whole("iters_per_step", 1)
        self.iters_per_step_ = ips
        self.refresh_every_ = self._whole("refresh_every", 1)
        if opts["varpro"] and not isinstance(layers[-1], Linear):
            raise SolverError(f"varpro solves the last layer in closed form, which must be Linear; this model ends "
                              f"with {layers[-1]!r} - turn varpro off")
        if not isinstance(opts["check"], (bool, np.bool_)):
            raise SolverError(f"check must be True or False, got {opts['check']!r}")
        self.rng_ = rng
        self.X_ = data.x_train
        self.N_ = N
        self.iteration_ = 0
        self.rejected_ = 0
        self.factor_ = None  # Cholesky factor of the readout's Gram matrix at the last varpro solve
        self.order_ = None
        self.pos_ = 0
        if batch is None:
            self.loss_ = ExactLoss(model, data.x_train, self._Y_train, ridge=self.ridge_)
            self.full_ = None
        else:
            self.loss_ = None
            self.full_ = FullObjective(model, data.x_train, self._Y_train, self.ridge_) if opts["check"] else None
        self._reset_memory()
        self._setup_method(model)

    def _setup_method(self, model) -> None:
        pass

    def _number(self, key: str, minimum: float | None = None) -> float:
        value = self.opts_[key]
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise SolverError(f"option {key} must be a number, got {value!r}") from None
        if not np.isfinite(v) or (minimum is not None and v < minimum):
            raise SolverError(f"option {key} must be a finite number >= {minimum}, got {value!r}")
        return v

    def _whole(self, key: str, minimum: int) -> int:
        value = self.opts_[key]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise SolverError(f"option {key} must be a whole number >= {minimum}, got {value!r}")
        return int(value)

    def _initial_loss(self):
        if self.loss_ is not None:
            return self.loss_.value / self.N_
        if self.full_ is not None:
            return self.full_.value / self.N_
        return None

    def _on_params_restored(self):
        self.factor_ = None
        if self.loss_ is not None:
            self.loss_.refresh()
        if self.full_ is not None:
            self.full_.value = self.full_.evaluate()
        self._reset_memory()

    # ------------------------------------------------------------------ state
    def _state(self):
        out = {"iteration": self.iteration_, "pos": self.pos_}
        if self.order_ is not None:
            out["order"] = self.order_
        out.update({f"mem.{k}": v for k, v in self._memory_state().items()})
        return out

    def _load_state(self, state):
        self.iteration_ = int(state.get("iteration", 0))
        self.pos_ = int(state.get("pos", 0))
        self.order_ = np.asarray(state["order"]) if "order" in state else None
        self._load_memory({k[4:]: v for k, v in state.items() if k.startswith("mem.")})

    def _memory_state(self) -> dict:
        return {}

    def _load_memory(self, state: dict) -> None:
        pass

    def _reset_memory(self) -> None:
        pass

    # ------------------------------------------------------------------ iterations
    def _next_batch(self) -> np.ndarray:
        if self.order_ is None or self.pos_ >= self.N_:
            self.order_ = self.rng_.permutation(self.N_)
            self.pos_ = 0
        idx = np.sort(self.order_[self.pos_:self.pos_ + self.batch_])
        self.pos_ += self.batch_
        return idx

    def _search(self, loss: ExactLoss, d: np.ndarray, reuse: bool = True) -> LineResult:
        """The exact line search; ``reuse=False`` says a mini-batch loss is dropped after it."""
        if self.batch_ is None:
            res = line_search(loss, d)
        else:
            res = minibatch_line_search(loss, d, check=self.full_, update=reuse)
        if not res.accepted:
            self.rejected_ += 1
        return res

    def _step(self) -> dict:
        model = self.model_
        updates = accepted = searches = 0
        passes = 0.0
        converged = False
        start = self.loss_.value if self.loss_ is not None else None
        if self.opts_["varpro"] and self.iteration_ == 0:
            # the first direction should already see the best readout of the initial features
            if self.batch_ is None:
                self._varpro(self.loss_)
            else:
                self._varpro_full()
        for i in range(self.iters_per_step_):
            if i and self._deadline is not None and time.perf_counter() >= self._deadline:
                break
            if self.batch_ is None:
                loss = self.loss_
                stats = self._iterate(loss, full=True)
                if self.opts_["varpro"]:
                    self._varpro(loss)
                self.iteration_ += 1
                if self.iteration_ % self.refresh_every_ == 0:
                    loss.refresh()
                passes += 1.0
            else:
                idx = self._next_batch()
                loss = batch_loss(model, self.X_[idx], self._Y_train[idx], self.ridge_, self.N_)
                stats = self._iterate(loss, full=False)
                self.iteration_ += 1
                passes += len(idx) / self.N_
            updates += stats["updates"]
            accepted += stats["accepted"]
            searches += stats["searches"]
            if stats.get("converged"):
                converged = True
                break
        out: dict[str, Any] = {"updates": updates, "passes": passes, "accepted": accepted, "searches": searches,
                               "iterations": self.iteration_, "rejected": self.rejected_}
        if self.batch_ is None:
            loss = self.loss_
            if loss.value > start * (1 + 1e-12) + 1e-12:
                raise RuntimeError(f"internal error: step raised the objective from {start} to {loss.value}")
            out.update(loss=loss.value / self.N_, train_scores=loss.output)
        else:
            if self.opts_["varpro"]:
                # the features of the closed-form solve give the record's objective and scores for free
                holder, out["block_decrease"] = self._varpro_full()
                out.update(loss=holder.value / self.N_, train_scores=holder.output)
            elif self.full_ is not None:
                out.update(loss=self.full_.value / self.N_, train_scores=self.full_.scores)
            else:
                scores = model.forward(self.X_)
                theta = model.get_flat()
                value = float(np.sum((scores - self._Y_train) ** 2)) + self.ridge_ * float(theta @ theta)
                out.update(loss=value / self.N_, train_scores=scores)
        out["converged"] = converged
        out.update(self._extra_record())
        return out

    def _extra_record(self) -> dict:
        return {}

    def _varpro(self, loss: ExactLoss) -> float:
        """Solve the last Linear layer of the full-data loss; keep the Gram factor of the features."""
        self.factor_ = readout_factor(loss)
        return solve_last_linear(loss, factor=self.factor_)

    def _varpro_full(self) -> tuple["_FeatureLoss", float]:
        """Solve the last Linear layer on the full data (mini-batch mode): features by a forward pass."""
        model = self.model_
        li = len(model.layers) - 1
        feats = []
        for s in range(0, self.N_, 1024):  # blocks of 1024 stay in cache: 1.7x faster than 8192 on poly2
            h = self.X_[s:s + 1024]
            for layer in model.layers[:li]:
                h = layer.forward(h)
            feats.append(h)
        holder = _FeatureLoss(model, np.concatenate(feats), self._Y_train, self.ridge_)
        self.factor_ = readout_factor(holder)
        decrease = solve_last_linear(holder, factor=self.factor_)
        if self.full_ is not None:
            self.full_.value, self.full_.scores = holder.value, holder.output
        return holder, decrease

    @abc.abstractmethod
    def _iterate(self, loss: ExactLoss, full: bool) -> dict:
        """One direction and exact line search (per block) on ``loss``; returns counts for the record."""


class _FeatureLoss:
    """The slice of :class:`ExactLoss` that :func:`solve_last_linear` reads, from features alone."""

    def __init__(self, model, H, Y, ridge):
        self.model, self.Y, self.ridge = model, Y, float(ridge)
        li = len(model.layers) - 1
        self.acts = {li: H}
        self.refresh_output_from(li)

    def refresh_output_from(self, li):
        out = self.model.layers[li].forward(self.acts[li])
        self.output = out
        r = out - self.Y
        theta = self.model.get_flat()
        self.value = float(np.sum(r * r)) + self.ridge * float(theta @ theta)


class _GradientDirectionSolver(_ExactDirectionSolver):
    """CG and L-BFGS: a direction from the gradient and a memory of past steps."""

    def _iterate(self, loss: ExactLoss, full: bool) -> dict:
        model = self.model_
        g = gradient(loss)
        theta = model.get_flat()
        if full and self._prev is not None:
            theta_prev, g_prev = self._prev
            self._remember(theta - theta_prev, g - g_prev, g_prev, g)
        d = self._direction(g)
        slope = float(g @ d)
        restarted = False
        if not (np.isfinite(slope) and slope < 0.0):
            self._reset_memory()
            d, slope, restarted = -g, -float(g @ g), True
        if slope == 0.0:
            return {"updates": 0, "accepted": 0, "searches": 0, "converged": full}
        res = self._search(loss, d)
        if full:
            self._prev = (theta, g) if res.accepted else None
            if not res.accepted:
                if restarted or self._is_gradient(d, g):
                    return {"updates": 0, "accepted": 0, "searches": 1, "converged": True}
                self._reset_memory()
        elif res.accepted:
            g_new = gradient(loss)  # the same batch at the new point: a consistent secant pair
            self._remember(model.get_flat() - theta, g_new - g, g, g_new)
        return {"updates": model.num_params if res.accepted else 0, "accepted": int(res.accepted), "searches": 1}

    @staticmethod
    def _is_gradient(d, g) -> bool:
        return bool(np.allclose(d, -g, rtol=1e-14, atol=0.0))

    @abc.abstractmethod
    def _direction(self, g: np.ndarray) -> np.ndarray:
        """The search direction from the current gradient and the method's memory."""

    @abc.abstractmethod
    def _remember(self, s, y, g_old, g_new) -> None:
        """Update the method's memory with the step ``s`` and gradient change ``y``."""


class CGSolver(_GradientDirectionSolver):
    """Nonlinear conjugate gradient (Polak-Ribiere+) with exact polynomial line search.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (default 1.0).
        restart_every: restart with the steepest descent direction after this
            many iterations (default: the number of parameters).
        batch_size, check, iters_per_step, varpro, refresh_every, seed: see the
            module docstring.

    Example:
        >>> import symnet, solvers
        >>> data = symnet.datasets.xor(8)
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = solvers.get("cg")(ridge=1e-3).fit(model, data, steps=5, quiet=True)
        >>> s.history_.final["loss"] < s.history_[0]["loss"]
        True
    """

    name = "cg"
    defaults = {**_ExactDirectionSolver.common_defaults, "restart_every": None}

    def _setup_method(self, model):
        r = self.opts_["restart_every"]
        self.restart_every_ = model.num_params if r is None else self._whole("restart_every", 1)

    def _reset_memory(self):
        self._prev = None
        self.d_prev_ = None
        self.beta_ = 0.0
        self.since_restart_ = 0

    def _direction(self, g):
        if self.d_prev_ is None or self.since_restart_ >= self.restart_every_:
            self.since_restart_ = 0
            d = -g
        else:
            d = -g + self.beta_ * self.d_prev_
        self.since_restart_ += 1
        self.d_prev_ = d
        return d

    def _remember(self, s, y, g_old, g_new):
        denom = float(g_old @ g_old)
        beta = float(g_new @ y) / denom if denom > 0 else 0.0
        self.beta_ = max(0.0, beta)  # PR+: a negative beta restarts

    def _memory_state(self):
        out = {"beta": self.beta_, "since_restart": self.since_restart_}
        if self.d_prev_ is not None:
            out["d_prev"] = self.d_prev_
        if self._prev is not None:
            out["theta_prev"], out["g_prev"] = self._prev
        return out

    def _load_memory(self, state):
        self.beta_ = float(state.get("beta", 0.0))
        self.since_restart_ = int(state.get("since_restart", 0))
        self.d_prev_ = np.asarray(state["d_prev"]) if "d_prev" in state else None
        self._prev = (np.asarray(state["theta_prev"]), np.asarray(state["g_prev"])) if "g_prev" in state else None

    def _extra_record(self):
        return {"beta": self.beta_}


def two_loop(g: np.ndarray, S: list[np.ndarray], Y: list[np.ndarray]) -> np.ndarray:
    """L-BFGS two-loop recursion: ``H g`` for the inverse-Hessian approximation of the pairs.

    ``H_0 = gamma I`` with ``gamma = s.y / y.y`` of the newest pair (1 without
    pairs); the pairs are oldest first.

    Example:
        >>> import numpy as np
        >>> A = np.array([[2.0, 0.0], [0.0, 5.0]])
        >>> S = [np.array([1.0, 0.0]), np.array([0.0, 1.0])]
        >>> Y = [A @ s for s in S]
        >>> two_loop(np.array([2.0, 5.0]), S, Y).round(12).tolist()   # exact inverse on the span
        [1.0, 1.0]
    """
    q = np.array(g, dtype=np.float64)
    m = len(S)
    alphas = np.empty(m)
    rhos = np.array([1.0 / float(y @ s) for s, y in zip(S, Y)])
    for i in range(m - 1, -1, -1):
        alphas[i] = rhos[i] * float(S[i] @ q)
        q -= alphas[i] * Y[i]
    gamma = float(S[-1] @ Y[-1]) / float(Y[-1] @ Y[-1]) if m else 1.0
    r = gamma * q
    for i in range(m):
        beta = rhos[i] * float(Y[i] @ r)
        r += (alphas[i] - beta) * S[i]
    return r


class LBFGSSolver(_GradientDirectionSolver):
    """L-BFGS (two-loop recursion) with exact polynomial line search.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (default 1.0).
        memory: number of ``(s, y)`` pairs kept (default 10).
        curvature_eps: skip a pair with ``s.y <= curvature_eps * ||s|| ||y||``.
        batch_size, check, iters_per_step, varpro, refresh_every, seed: see the
            module docstring.

    Example:
        >>> import symnet, solvers
        >>> data = symnet.datasets.xor(8)
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = solvers.get("lbfgs")(ridge=1e-3, memory=5).fit(model, data, steps=5, quiet=True)
        >>> s.history_.final["loss"] < s.history_[0]["loss"]
        True
    """

    name = "lbfgs"
    defaults = {**_ExactDirectionSolver.common_defaults, "memory": 10, "curvature_eps": 1e-10}

    def _setup_method(self, model):
        self.memory_ = self._whole("memory", 1)
        self.curvature_eps_ = self._number("curvature_eps", minimum=0.0)
        self.skipped_ = 0

    def _reset_memory(self):
        self._prev = None
        self.S_: list[np.ndarray] = []
        self.Y_: list[np.ndarray] = []

    def _direction(self, g):
        return -two_loop(g, self.S_, self.Y_)

    def _remember(self, s, y, g_old, g_new):
        sy = float(s @ y)
        if not (np.isfinite(sy) and sy > self.curvature_eps_ * float(np.linalg.norm(s) * np.linalg.norm(y))):
            self.skipped_ += 1
            return
        self.S_.append(s)
        self.Y_.append(y)
        if len(self.S_) > self.memory_:
            self.S_.pop(0)
            self.Y_.pop(0)

    def _memory_state(self):
        out = {"skipped": self.skipped_}
        if self.S_:
            out["S"], out["Y"] = np.stack(self.S_), np.stack(self.Y_)
        if self._prev is not None:
            out["theta_prev"], out["g_prev"] = self._prev
        return out

    def _load_memory(self, state):
        self.skipped_ = int(state.get("skipped", 0))
        self.S_ = list(np.asarray(state["S"])) if "S" in state else []
        self.Y_ = list(np.asarray(state["Y"])) if "Y" in state else []
        self._prev = (np.asarray(state["theta_prev"]), np.asarray(state["g_prev"])) if "g_prev" in state else None

    def _extra_record(self):
        return {"pairs": len(self.S_), "skipped_pairs": self.skipped_}


class GaussNewtonSolver(_ExactDirectionSolver):
    """Levenberg-Marquardt / Gauss-Newton directions with exact polynomial line search.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (default 1.0).
        damping: initial relative Levenberg damping (``mu`` = damping times the
            mean diagonal of ``J^T J``); adapted after every line search when
            ``adapt_damping``: a step ``t > 2`` along the direction divides it by 3,
            ``t < 0.5`` (or a rejected step) multiplies it by 3, otherwise it
            shrinks by 1.5 (the exact line search replaces the trust-region test).
        blocks: ``"layers"`` (one direction and line search per parameterised
            layer, in order) or ``"all"`` (one joint direction).
        max_explicit: largest block solved with an explicit ``J^T J``; larger
            blocks use matrix-free CG (``cg_iters``, ``cg_tol``).
        curvature_samples: ``J^T J`` from this many random samples of the
            (batch) data, scaled up (None: all); the gradient uses all.
        varpro: eliminate the last Linear layer (exact ridge solve after every
            iteration; it is left out of the blocks).
        reduced: with varpro, use Kaufman's reduced Gauss-Newton matrix for
            the explicit blocks: the curvature left after the last layer has
            re-fitted itself, ``J^T (I - A G^-1 A^T) J``, and a direction that
            moves the last layer along with the block (see
            :func:`gauss_newton_direction`, argument ``readout``). ``G`` is the
            ridge Gram matrix of the full-data features at the last solve.
            Off by default: on mini-batches the subtracted term is estimated
            from the batch and biased upward (the square of a noisy estimate),
            which made the full objective RISE in a trial on 20,000 MNIST
            samples (batches of 1,000); it is meant for full-data runs.
        batch_size, check, iters_per_step, refresh_every, seed: see the module docstring.

    Example:
        >>> import symnet, solvers
        >>> data = symnet.datasets.xor(8)
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = solvers.get("gauss-newton")(ridge=1e-3, varpro=True).fit(model, data, steps=3, quiet=True)
        >>> s.history_.final["loss"] < s.history_[0]["loss"]
        True
    """

    name = "gauss-newton"
    defaults = {**_ExactDirectionSolver.common_defaults, "damping": 1e-3, "adapt_damping": True,
                "blocks": "layers", "max_explicit": 2000, "cg_iters": 30, "cg_tol": 1e-4,
                "curvature_samples": None, "reduced": False}

    def _setup_method(self, model):
        opts = self.opts_
        self.damping0_ = self._number("damping", minimum=0.0)
        self.max_explicit_ = self._whole("max_explicit", 0)
        self.cg_iters_ = self._whole("cg_iters", 1)
        self.cg_tol_ = self._number("cg_tol", minimum=0.0)
        cs = opts["curvature_samples"]
        self.curvature_samples_ = None if cs is None else self._whole("curvature_samples", 1)
        layers = _param_layers(model)
        if opts["varpro"]:
            layers = [li for li in layers if li != len(model.layers) - 1]
        if not layers:
            raise SolverError("no parameters left to optimise: with varpro the last layer is solved in closed "
                              "form and the model has no other parameters; use varpro=False")
        if opts["blocks"] == "layers":
            self.blocks_ = [[li] for li in layers]
        elif opts["blocks"] == "all":
            self.blocks_ = [layers]
        else:
            raise SolverError(f"blocks must be 'layers' or 'all', got {opts['blocks']!r}")
        self.damping_ = np.full(len(self.blocks_), self.damping0_)

    def _memory_state(self):
        return {"damping": self.damping_}

    def _load_memory(self, state):
        if "damping" in state and len(state["damping"]) == len(self.damping_):
            self.damping_ = np.asarray(state["damping"], dtype=np.float64).copy()

    def _iterate(self, loss: ExactLoss, full: bool) -> dict:
        updates = accepted = 0
        n = len(loss.X)
        for b, block in enumerate(self.blocks_):
            rows = None
            readout = None
            size = len(block_index(self.model_, block))
            if self.opts_["varpro"] and self.opts_["reduced"] and size <= self.max_explicit_:
                if full and self.factor_ is None:
                    self.factor_ = readout_factor(loss)
                if self.factor_ is not None:
                    readout = (self.factor_, n / self.N_)
            if readout is None and self.curvature_samples_ is not None and self.curvature_samples_ < n:
                rows = np.sort(self.rng_.choice(n, self.curvature_samples_, replace=False))
            d, info = gauss_newton_direction(loss, block, damping=self.damping_[b], max_explicit=self.max_explicit_,
                                             cg_iters=self.cg_iters_, cg_tol=self.cg_tol_, curvature_rows=rows,
                                             readout=readout)
            if full and readout is not None:
                self.factor_ = None  # the features move with this block: the factor is stale
            res = self._search(loss, d, reuse=b + 1 < len(self.blocks_))
            if self.opts_["adapt_damping"]:
                if not res.accepted or res.t < 0.5:
                    self.damping_[b] = min(self.damping_[b] * 3.0, 1e8)
                elif res.t > 2.0:
                    self.damping_[b] = max(self.damping_[b] / 3.0, 1e-12)
                else:
                    self.damping_[b] = max(self.damping_[b] / 1.5, 1e-12)
            if res.accepted:
                accepted += 1
                updates += info["size"]
        return {"updates": updates, "accepted": accepted, "searches": len(self.blocks_)}

    def _extra_record(self):
        return {"damping": float(np.max(self.damping_))}
