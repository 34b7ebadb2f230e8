"""Derivatives of the network's outputs from the exact loss's cached activations.

The exact direction solvers need the gradient of the objective, products with
the Jacobian ``J`` of the outputs in the parameters, and per-sample Jacobians of
blocks of layers. Everything here reads the caches of an
:class:`~symnet.core.restriction.Restriction` (no extra forward pass) and walks
the layers' own rules (``input_grad``, ``param_grads``, ``per_sample_grads``
and ``jet``, see :mod:`symnet.core.layers`), in chunks of samples that bound
the memory:

* :func:`vjp` (``J^T U``) and :func:`gradient` (of SSE plus ridge): one backward pass;
* :func:`jvp` (``J v``): forward mode through the exact jet rules, cut to first order;
* :func:`block_jacobian`: per-sample Jacobian of a block of layers, one backward
  pass carrying every output; :func:`kronecker_factors`: the block's K-FAC
  factors from one backward pass; :func:`conv_chain_jacobian`: the same for a Conv2d that feeds
  [Poly] [AvgPool2d] Flatten Linear, from one fused numba pass.

The tests check each against finite differences and explicit linear algebra.

Example:
    >>> import numpy as np
    >>> from symnet.core.model import presets as models
    >>> from symnet.core.restriction import Restriction
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> X, Y = np.random.default_rng(0).random((5, 2)), np.eye(2)[[0, 1, 0, 1, 0]]
    >>> loss = Restriction(m, X, Y, ridge=0.1)
    >>> bool(np.allclose(gradient(loss), m.loss_and_grad(X, Y, 0.1)[1]))
    True
"""

from __future__ import annotations

import numpy as np

from symnet.core.errors import ModelError
from symnet.core.kernels.jacobian import pooled_patch_sums
from symnet.core.jets import Jet
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly
from symnet.core.linalg import KroneckerFactors
from symnet.core.restriction import Restriction, parse_direction

#: Floats one chunk of a backward or jet pass may hold (about 240 MB).
CHUNK_BUDGET = 3e7


# =========================================================================== derivatives
def per_sample_width(model) -> int:
    return max(int(np.prod(s)) for s in model.shapes)


def chunk_rows(model, per_row: int | None = None) -> int:
    width = per_row if per_row is not None else 4 * per_sample_width(model)
    return max(1, int(CHUNK_BUDGET // max(width, 1)))


def row_blocks(num_rows: int, rows, chunk: int):
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


def num_rows(loss: Restriction, rows) -> int:
    if rows is None:
        return loss.num_samples
    if isinstance(rows, slice):
        return len(range(*rows.indices(loss.num_samples)))
    return len(rows)



def param_layers(model) -> list[int]:
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


def vjp(loss: Restriction, U: np.ndarray, *, rows=None, layers=None) -> np.ndarray:
    """``J^T U``: sum over samples and outputs of ``U[n, k] * d f_k(x_n) / d theta`` (flat).

    One backward pass from the caches of ``loss`` (no forward pass), in chunks
    of samples. ``rows`` selects samples of the loss (``U`` then has one row per
    selected sample); ``layers`` limits the parameters computed (the others
    are zero), which also stops the pass at the lowest of them. A sharded loss
    runs the pass on every shard and adds the results.

    Example (``J^T (2 r)`` is the gradient of the SSE):
        >>> from symnet.core.model import presets as models
        >>> m, X = models.get("mlp", input_dim=2, hidden=2, seed=0), np.eye(2)
        >>> loss = Restriction(m, X, np.eye(2))
        >>> bool(np.allclose(vjp(loss, 2 * loss.residual), m.loss_and_grad(X, np.eye(2))[1]))
        True
    """
    model = loss.model
    layers = param_layers(model) if layers is None else sorted(layers)
    if not layers:
        return np.zeros(model.num_params)
    U = np.asarray(U)
    if U.shape != (num_rows(loss, rows), model.num_outputs):
        raise ModelError(f"U must have shape ({num_rows(loss, rows)}, {model.num_outputs}), got {U.shape}")
    return loss.reduce(_vjp_rows, U, layers, rows=rows, split=(0,))


def residual_vjp(loss: Restriction, *, scale: float = 1.0, layers=None) -> np.ndarray:
    """``J^T (scale r)`` over every sample, ``r`` the loss's residual: half the SSE's gradient at ``scale=1``.

    The residual stays where the caches are (on every shard of a sharded loss); only the
    flat result travels.

    Example:
        >>> from symnet.core.model import presets as models
        >>> m, X = models.get("mlp", input_dim=2, hidden=2, seed=0), np.eye(2)
        >>> loss = Restriction(m, X, np.eye(2))
        >>> bool(np.allclose(residual_vjp(loss, scale=2.0), vjp(loss, 2 * loss.residual)))
        True
    """
    model = loss.model
    layers = param_layers(model) if layers is None else sorted(layers)
    if not layers:
        return np.zeros(model.num_params)
    return loss.reduce(_residual_vjp_rows, float(scale), layers)


def _residual_vjp_rows(loss: Restriction, rows, scale: float, layers) -> np.ndarray:
    U = loss.residual if scale == 1.0 else scale * loss.residual
    return _vjp_rows(loss, rows, U, layers)


def _vjp_rows(loss: Restriction, rows, U: np.ndarray, layers) -> np.ndarray:
    """:func:`vjp` on the samples of one process (``rows`` of ``loss``, one row of ``U`` each)."""
    model = loss.model
    out = np.zeros(model.num_params)
    lowest = layers[0]
    wanted = set(layers)
    U = np.asarray(U, dtype=loss.dtype)
    sums: dict[int, dict[str, np.ndarray]] = {}
    with loss.working_params():
        for sel, part in row_blocks(len(loss.X), rows, chunk_rows(model)):
            g = U[part]
            for li in range(len(model.layers) - 1, lowest - 1, -1):
                layer = model.layers[li]
                x = loss.layer_input(li, sel)
                if li in wanted:
                    for key, v in layer.param_grads(x, g).items():
                        acc = sums.setdefault(li, {})
                        v = v.astype(np.float64, copy=False)  # chunks are summed in float64
                        acc[key] = v if key not in acc else acc[key] + v
                if li > lowest:
                    g = layer.input_grad(x, g)
    offsets = model.offsets()
    for li, parts in sums.items():
        for key, v in parts.items():
            lo, hi = offsets[f"{model.layers[li].name}.{key}"]
            out[lo:hi] = v.ravel()
    return out


def gradient(loss: Restriction) -> np.ndarray:
    """Flat gradient of ``loss.value`` (SSE plus ridge) at the current parameters, from the caches.

    Example:
        >>> import numpy as np
        >>> from symnet.core.model import presets as models
        >>> m = models.get("poly", input_shape=(1, 6, 6), channels=2, kernel=3, num_classes=2, seed=0)
        >>> X, Y = np.random.default_rng(0).random((4, 1, 6, 6)), np.eye(2)[[0, 1, 0, 1]]
        >>> loss = Restriction(m, X, Y, ridge=0.1)
        >>> bool(np.allclose(gradient(loss), m.loss_and_grad(X, Y, 0.1)[1]))
        True
    """
    g = residual_vjp(loss, scale=2.0)
    if loss.ridge:
        g += 2.0 * loss.ridge * loss.model.get_flat()
    return g


def jvp(loss: Restriction, v: np.ndarray, *, rows=None) -> np.ndarray:
    """``J v``: the first-order change of the outputs along ``v``, shape (samples, outputs).

    Forward mode through the exact jet rules: each layer's jet is cut to its
    ``t^1`` coefficient, which higher orders never feed, so the result is the
    exact directional derivative (the ``t^1`` term of ``f(theta + t v)``).

    Example:
        >>> import numpy as np
        >>> from symnet.core.model import presets as models
        >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> X, Y = np.random.default_rng(0).random((5, 2)), np.eye(2)[[0, 1, 0, 1, 0]]
        >>> loss = Restriction(m, X, Y)
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
        raise ModelError(f"v must have shape ({model.num_params},), got {v.shape}")
    if not parse_direction(loss.model, v):
        return np.zeros((num_rows(loss, rows), model.num_outputs))
    return loss.reduce(_jvp_rows, v, rows=rows, concat=True)


def _jvp_rows(loss: Restriction, rows, v: np.ndarray) -> np.ndarray:
    """:func:`jvp` on the samples of one process."""
    model = loss.model
    n = num_rows(loss, rows)
    out = np.zeros((n, model.num_outputs))
    direction = parse_direction(loss.model, v)
    if not direction:
        return out
    direction = loss.working_direction(direction)
    first = min(direction)
    with loss.working_params():
        for sel, part in row_blocks(len(loss.X), rows, chunk_rows(model)):
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


def jtj_product(loss: Restriction, v: np.ndarray, *, rows=None, layers=None) -> np.ndarray:
    """``J^T J v`` (flat) over ``rows``, the Gauss-Newton matrix's product: :func:`jvp` then :func:`vjp`.

    Only ``v`` and the flat result travel when the loss is sharded (``J v`` stays on the shards).

    Example:
        >>> from symnet.core.model import presets as models
        >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> loss = Restriction(m, np.eye(2), np.eye(2))
        >>> v = np.ones(m.num_params)
        >>> bool(np.allclose(jtj_product(loss, v), vjp(loss, jvp(loss, v))))
        True
    """
    model = loss.model
    layers = param_layers(model) if layers is None else sorted(layers)
    v = np.asarray(v, dtype=np.float64)
    if not layers or not parse_direction(model, v):
        return np.zeros(model.num_params)
    return loss.reduce(_jtj_rows, v, layers, rows=rows)


def _jtj_rows(loss: Restriction, rows, v: np.ndarray, layers) -> np.ndarray:
    return _vjp_rows(loss, rows, _jvp_rows(loss, rows, v), layers)


def block_jacobian(loss: Restriction, layers, *, rows=None) -> np.ndarray:
    """Per-sample Jacobian of the outputs in the parameters of ``layers``: (samples, outputs, block size).

    Row ``(n, k)`` is ``d f_k(x_n) / d theta_block``, from one backward pass
    that carries all ``K`` output cotangents ``e_k`` at once: the outputs fold
    into the batch axis (:meth:`~symnet.core.layers.Layer.input_grad_many`), so
    each layer's products are one large GEMM instead of ``K`` small ones, and
    the per-sample parameter gradients share the layer's im2col columns across
    the outputs (:meth:`~symnet.core.layers.Layer.per_sample_grads_many`).
    Columns follow :func:`block_index`; the values are in the loss's working
    precision. Meant for small blocks: it holds samples x outputs x block size floats.

    Example:
        >>> import numpy as np, symnet
        >>> m = symnet.models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> xor = symnet.datasets.xor()
        >>> loss = Restriction(m, xor.x_train, xor.one_hot("train"))
        >>> J = block_jacobian(loss, param_layers(m))
        >>> v = np.random.default_rng(1).normal(size=m.num_params)
        >>> bool(np.allclose(J @ v, jvp(loss, v)))
        True
    """
    model = loss.model
    layers = sorted(layers)
    lowest = layers[0]
    wanted = set(layers)
    K = model.num_outputs
    sizes = {li: sum(v.size for v in model.layers[li].params.values()) for li in layers}
    cols = np.cumsum([0] + [sizes[li] for li in layers])
    start = {li: int(cols[i]) for i, li in enumerate(layers)}
    n = num_rows(loss, rows)
    J = np.empty((n, K, int(cols[-1])), dtype=loss.dtype)
    per_row = K * (int(cols[-1]) + 4 * per_sample_width(model))
    with loss.working_params():
        for sel, part in row_blocks(len(loss.X), rows, chunk_rows(model, per_row)):
            m = part.stop - part.start
            g = np.zeros((K, m, K), dtype=loss.dtype)
            g[np.arange(K), :, np.arange(K)] = 1.0  # cotangent e_k for every sample
            for li in range(len(model.layers) - 1, lowest - 1, -1):
                layer = model.layers[li]
                x = loss.layer_input(li, sel)
                if li in wanted:
                    J[part, :, start[li]:start[li] + sizes[li]] = layer.per_sample_grads_many(x, g).transpose(1, 0, 2)
                if li > lowest:
                    g = layer.input_grad_many(x, g)
    return J


def kronecker_factors(loss: Restriction, layers, *, rows=None, rng=None) -> dict[int, KroneckerFactors]:
    """Kronecker-factored Gauss-Newton blocks (K-FAC) of the Conv2d and Linear ``layers``.

    One backward pass from the outputs with a Gaussian cotangent per sample
    (``E[v v^T] = I``, so ``E[J^T v v^T J] = J^T J``: an unbiased sketch of the
    Gauss-Newton matrix) gives each layer's output derivatives; each layer then
    forms its factors (:meth:`~symnet.core.layers.Layer.kronecker_factors`), and
    ``J_l^T J_l ~ (N P) Gamma (x) Omega`` with ``N`` the loss's samples and ``P``
    the layer's output positions: exact for a Linear layer and one sample, the
    usual spatial-independence approximation for convolutions (Grosse & Martens
    2016). ``rows`` selects the samples used; ``rng`` draws the cotangents.

    Example:
        >>> import numpy as np
        >>> from symnet.core.model import presets as models
        >>> m = models.get("mlp", input_dim=3, hidden=4, seed=0)
        >>> X, Y = np.random.default_rng(0).random((50, 3)), np.eye(2)[np.arange(50) % 2]
        >>> f = kronecker_factors(Restriction(m, X, Y), [2])[2]
        >>> (len(f.s), len(f.w), f.scale)
        (2, 5, 50.0)
    """
    model = loss.model
    layers = sorted(layers)
    rng = np.random.default_rng(0) if rng is None else rng
    n = num_rows(loss, rows)
    g = rng.standard_normal((n, model.num_outputs)).astype(loss.dtype)
    parts = loss.reduce(_kronecker_rows, g, layers, rows=rows, split=(0,), combine=_mean_factors)
    return {li: KroneckerFactors.from_factors(gamma, omega, float(loss.num_samples * positions), model.layers[li].bias)
            for li, (omega, gamma, positions, _) in parts.items()}


def _kronecker_rows(loss: Restriction, rows, g: np.ndarray, layers) -> dict:
    """``{layer: (Omega, Gamma, positions, samples)}`` on the samples of one process (means over them)."""
    if len(g) == 0:  # a shard without any of the selected rows
        return {}
    model = loss.model
    lowest = layers[0]
    sel = slice(None) if rows is None else np.asarray(rows)
    out = {}
    with loss.working_params():
        for li in range(len(model.layers) - 1, lowest - 1, -1):
            layer = model.layers[li]
            x = loss.layer_input(li, sel)
            if li in layers:
                omega, gamma, positions = layer.kronecker_factors(x, g)
                out[li] = (omega, gamma, positions, len(g))
            if li > lowest:
                g = layer.input_grad(x, g)
    return out


def _mean_factors(parts: list[dict]) -> dict:
    """The factors of every shard's samples together: means weighted by the shards' sample counts."""
    parts = [p for p in parts if p]
    if len(parts) == 1:
        return parts[0]
    total = sum(next(iter(p.values()))[3] for p in parts)
    out = {}
    for li in parts[0]:
        omega = sum(p[li][0].astype(np.float64) * p[li][3] for p in parts) / total
        gamma = sum(p[li][1].astype(np.float64) * p[li][3] for p in parts) / total
        out[li] = (omega, gamma, parts[0][li][2], total)
    return out


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


def conv_chain_jacobian(loss: Restriction, li: int, *, rows=None) -> np.ndarray:
    """Per-sample Jacobian in the parameters of Conv2d ``li`` when it feeds [Poly] [AvgPool2d] Flatten Linear.

    Same values as :func:`block_jacobian` ``(loss, [li])`` but laid out (outputs, samples, layer size)
    and computed without a backward pass per output: pooling is linear, so

        d f_k / d w_c = sum_q W[k, c, q] C_c(q),   C_c(q) = sum_{p in cell q} p'(z_c(p)) patch(p) / pool^2,

    the pooled patch sums ``C`` come from one numba pass (:func:`pooled_patch_sums`) and the
    contraction with the last layer's weights is one matmul per channel.
    """
    model = loss.model
    chain = conv_chain(model, li)
    if chain is None:
        raise ModelError(f"layer {li} does not feed [Poly] [AvgPool2d] Flatten Linear; use block_jacobian")
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
