"""Numba kernels of the coordinate solver: typed arrays in, plain tuples out.

Two fused paths cover the common graphs; everything else uses the generic
jets of :mod:`symnet.core.restriction`, which these kernels are tested against.

* ``linear_sweep``: exact Gauss-Seidel over every weight of a last Linear
  layer. The loss restricted to one such weight is a quadratic, so its
  minimiser is closed form; cost per coordinate is O(N).
* ``conv_chain_coeffs`` / ``conv_chain_update``: one weight of a Conv2d
  followed by an optional Poly, an optional AvgPool2d, Flatten and the last
  Linear. Shifting one conv weight by ``t`` shifts the pre-activation by
  ``t * dz`` on one channel, so ``p(z0 + t dz) - p(z0)`` is its Taylor series
  ``sum_m dz^m p^(m)(z0)/m! t^m``; pooling and the Linear fan-out are linear.
  Cost per coordinate: N * (H*W*deg + pooled * outputs * deg), with no
  temporaries the size of the data.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, parallel=True)
def linear_sweep(HT, hsq, W, b, rT, ridge, order, has_bias):
    """One Gauss-Seidel sweep over the last Linear layer, in place.

    HT: (F, N) layer inputs, transposed; hsq: (F,) column sums of squares;
    W: (O, F); b: (O,); rT: (O, N) residuals f(x) - y, transposed;
    order: coordinates to visit (index F means the bias).
    numpy, per coordinate: t = -(r @ h + ridge * w) / (h @ h + ridge); r += t * h; w += t
    Returns (decrease of the objective,).
    """
    O = W.shape[0]
    F, N = HT.shape
    dec = np.zeros(O)
    for o in nb.prange(O):
        for idx in order:
            if idx == F:
                if not has_bias:
                    continue
                g = 0.0
                for n in range(N):
                    g += rT[o, n]
                g += ridge * b[o]
                a = N + ridge
            else:
                g = 0.0
                for n in range(N):
                    g += rT[o, n] * HT[idx, n]
                g += ridge * W[o, idx]
                a = hsq[idx] + ridge
            if a <= 0.0 or g == 0.0:
                continue
            t = -g / a
            dec[o] += g * g / a
            if idx == F:
                b[o] += t
                for n in range(N):
                    rT[o, n] += t
            else:
                W[o, idx] += t
                for n in range(N):
                    rT[o, n] += t * HT[idx, n]
    return (dec.sum(),)


@nb.njit(cache=True)
def _taylor_factors(pc, z0, out):
    """out[m-1] = p^(m)(z0) / m! for m = 1..deg, p with coefficients pc (lowest first)."""
    deg = pc.shape[0] - 1
    for m in range(1, deg + 1):
        acc = 0.0
        binom = 1.0  # C(j, m) for j = m
        zp = 1.0
        for j in range(m, deg + 1):
            acc += pc[j] * binom * zp
            zp *= z0
            binom = binom * (j + 1) / (j + 1 - m)
        out[m - 1] = acc


@nb.njit(cache=True)
def _pooled_taylor(xpad, n, ci, di, dj, is_bias, z, c, pc, s, Hq, Wq, has_pre, q, P):
    """P[m-1, f] = pooled (dz^m p^(m)(z0) / m!) of sample n: the jet of pool(p(z0 + t dz)) - pool(p(z0))."""
    deg = pc.shape[0] - 1
    inv = 1.0 / (s * s)
    P[:, :] = 0.0
    for y in range(Hq * s):
        for x in range(Wq * s):
            dz = 1.0 if is_bias else xpad[n, ci, y + di, x + dj]
            if dz == 0.0:
                continue
            _taylor_factors(pc, z[n, c, y, x] if has_pre else 0.0, q)
            f = (y // s) * Wq + (x // s)
            dzm = inv
            for m in range(deg):
                dzm *= dz
                P[m, f] += q[m] * dzm


@nb.njit(cache=True, parallel=True)
def conv_chain_coeffs(xpad, ci, di, dj, is_bias, z, c, pc, s, Wsub, r, Ho, Wo, has_pre):
    """Loss coefficients (SSE part; the constant is left 0) of one conv coordinate.

    xpad: (N, Ci, Hp, Wp) padded layer input; (ci, di, dj): the weight's input
    channel and tap, or is_bias; z: (N, C, Ho, Wo) cached pre-activations;
    c: output channel; pc: activation coefficients (identity = [0, 1]);
    (Ho, Wo): conv output size; has_pre: z is cached (False when pc is linear and z unused);
    s: pool size (1 = none); Wsub: (O, Hq*Wq) Linear weights that read channel
    c's pooled features; r: (N, O) residuals.
    numpy: D = Wsub @ pool(taylor(z[:,c], dz)); c[m] = sum_{i+j=m} (r, D)_i . (r, D)_j
    """
    N = xpad.shape[0]
    Hq, Wq = Ho // s, Wo // s
    deg = pc.shape[0] - 1
    O = Wsub.shape[0]
    nblocks = min(N, 64)
    step = (N + nblocks - 1) // nblocks
    acc = np.zeros((nblocks, 2 * deg + 1))
    for blk in nb.prange(nblocks):
        P = np.zeros((deg, Hq * Wq))
        D = np.zeros(deg + 1)
        q = np.zeros(deg)
        for n in range(blk * step, min(N, (blk + 1) * step)):
            _pooled_taylor(xpad, n, ci, di, dj, is_bias, z, c, pc, s, Hq, Wq, has_pre, q, P)
            for o in range(O):
                D[0] = r[n, o]
                for m in range(deg):
                    acc_m = 0.0
                    for f in range(Hq * Wq):
                        acc_m += Wsub[o, f] * P[m, f]
                    D[m + 1] = acc_m
                for i in range(1, deg + 1):
                    acc[blk, 2 * i] += D[i] * D[i]
                    acc[blk, i] += 2.0 * D[0] * D[i]
                    for j in range(i + 1, deg + 1):
                        acc[blk, i + j] += 2.0 * D[i] * D[j]
    return (acc.sum(axis=0),)


@nb.njit(cache=True, parallel=True)
def conv_chain_update(xpad, ci, di, dj, is_bias, z, c, pc, s, Wsub, feat, f0, out, t, Ho, Wo, has_pre):
    """Apply the step ``t`` of one conv coordinate to the caches, in place.

    z[:, c] += t dz (if has_pre); feat[:, f0 + f] += pooled delta;
    out += Wsub @ pooled delta. Same arguments as conv_chain_coeffs.
    numpy: dp = pool(p(z + t dz) - p(z)); z[:, c] += t dz; feat[:, f0:] += dp; out += dp @ Wsub.T
    """
    # (the same prange block partition as above: each parallel kernel cuts the samples into 64 blocks)
    N = xpad.shape[0]
    Hq, Wq = Ho // s, Wo // s
    deg = pc.shape[0] - 1
    O = Wsub.shape[0]
    nblocks = min(N, 64)
    step = (N + nblocks - 1) // nblocks
    for blk in nb.prange(nblocks):
        P = np.zeros((deg, Hq * Wq))
        q = np.zeros(deg)
        dp = np.zeros(Hq * Wq)
        for n in range(blk * step, min(N, (blk + 1) * step)):
            _pooled_taylor(xpad, n, ci, di, dj, is_bias, z, c, pc, s, Hq, Wq, has_pre, q, P)
            dp[:] = 0.0
            tm = 1.0
            for m in range(deg):
                tm *= t
                for f in range(Hq * Wq):
                    dp[f] += P[m, f] * tm
            for f in range(Hq * Wq):
                feat[n, f0 + f] += dp[f]
            for o in range(O):
                acc = 0.0
                for f in range(Hq * Wq):
                    acc += Wsub[o, f] * dp[f]
                out[n, o] += acc
            if has_pre:
                for y in range(Ho):
                    for x in range(Wo):
                        z[n, c, y, x] += t * (1.0 if is_bias else xpad[n, ci, y + di, x + dj])
    return (out,)


@nb.njit(cache=True)
def fixed_direction_sweep(G, w, r, ridge, order):
    """Exact coordinate steps when coordinate k moves the outputs along a fixed G[k].

    G: (K, N, O) output direction of each coordinate; w: (K,) their current
    values (updated in place); r: (N, O) residuals (updated in place).
    numpy, per coordinate: t = -(sum(r * G[k]) + ridge * w[k]) / (sum(G[k]**2) + ridge); r += t * G[k]
    Returns (decrease of the objective,).
    """
    K, N, O = G.shape
    dec = 0.0
    for k in order:
        g = 0.0
        a = 0.0
        for n in range(N):
            for o in range(O):
                g += r[n, o] * G[k, n, o]
                a += G[k, n, o] * G[k, n, o]
        g += ridge * w[k]
        a += ridge
        if a <= 0.0 or g == 0.0:
            continue
        t = -g / a
        dec += g * g / a
        w[k] += t
        for n in range(N):
            for o in range(O):
                r[n, o] += t * G[k, n, o]
    return (dec,)


@nb.njit(cache=True, parallel=True)
def gram_sweep(G, C, V, ridge, order):
    """The exact Gauss-Seidel sweep of ``linear_sweep`` / ``fixed_direction_sweep`` from sums alone, in place.

    When every coordinate ``k`` of a row moves the residual along a fixed
    direction ``a_k`` (a last-layer weight: the feature column; a conv weight of a
    conv-linear chain: the output direction ``G[k]``), the loss of the row is a
    quadratic and one exact coordinate step needs only ``a_k . r`` and
    ``a_k . a_j``. G: (P, P) Gram matrix ``a_k . a_j`` (summed over samples and
    outputs); C: (P, R) the products ``a_k . r`` of each of R independent rows at
    the start; V: (R, P) the rows' coordinate values, updated in place; order:
    coordinates to visit (each < P). Same steps as the kernels that touch every
    sample, up to the order of floating-point additions, at O(P) per step: the
    sweep of sharded data runs here once from the shards' summed G and C.
    numpy, per row i and coordinate k: g = C[k, i] + ridge V[i, k]; a = G[k, k] + ridge;
    t = -g / a; V[i, k] += t; C[:, i] += t G[:, k]
    Returns (decrease of the objective,).
    """
    P, R = C.shape
    dec = np.zeros(R)
    for i in nb.prange(R):
        c = C[:, i].copy()
        for k in order:
            g = c[k] + ridge * V[i, k]
            a = G[k, k] + ridge
            if a <= 0.0 or g == 0.0:
                continue
            t = -g / a
            dec[i] += g * g / a
            V[i, k] += t
            for j in range(P):
                c[j] += t * G[j, k]
    return (dec.sum(),)
