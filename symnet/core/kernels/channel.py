"""Numba kernels of the channel blocks of the coordinate solver: typed arrays in, plain tuples out.

They serve the chain ``Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear``
(the ``poly`` preset) one output channel ``c`` at a time, reading only the
network's (padded) input: nothing the size of the conv output is cached. With
``u = [w_c.ravel(), b_c]`` (``K + 1`` numbers, ``K = C_in kh kw``) and
``a = [patch, 1]`` the pre-activation of a pixel is ``z = a . u`` and the
pooled feature of cell ``f`` is ``h_f = s^-2 sum_{pix in f} p(z_pix)``.

* :func:`channel_features`: ``h`` (N, F) of one channel.
* :func:`channel_output_jac`: ``h`` and the Jacobian of the channel's share of
  the outputs, ``V_c h``, with respect to ``u``.
* :func:`channel_grad`: the gradient of ``sum back * h`` with respect to ``u``.
* :func:`channel_line_coeffs`: the exact restriction of the SSE along a
  direction that moves the filter (``du``), the readout slice (``dV``) and
  anything linear in the features (``lin``) together: a polynomial of degree
  ``2 (P + 1)`` for an activation of degree ``P``. It also stores the feature
  and output jets, so :func:`apply_jets` moves the caches to the step exactly.
* :func:`channel_add_jets`: one channel's share of the output jets along a
  direction that moves every channel (the whole-network line search).

Samples are addressed through an index array ``idx`` into the input, so a
growing subset needs no copy of the data. Everything summed over samples is
accumulated in float64. The kernels are parallel over blocks of samples (each
block writes its own rows or its own accumulator); the inner loops are
compiled with the reassociation flags of :data:`FAST` so that they vectorise.
"""

from __future__ import annotations

import numba as nb
import numpy as np


#: LLVM flags that let the inner loops vectorise (sums may be reassociated); NaN and
#: infinity keep their IEEE semantics.
FAST = {"contract", "reassoc", "nsz", "arcp"}


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _conv_plane(img, w, bias, zb):
    """zb[y, x] = bias + sum_{c,i,j} w[c, i, j] img[c, y + i, x + j] (valid cross-correlation)."""
    Ci, kh, kw = w.shape
    Ho, Wo = zb.shape
    zb[:, :] = bias
    for c in range(Ci):
        plane = img[c]
        wc = w[c]
        for i in range(kh):
            for j in range(kw):
                wv = wc[i, j]
                for y in range(Ho):
                    for x in range(Wo):
                        zb[y, x] += wv * plane[y + i, x + j]


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _pool_into(tmp, s, Hq, Wq, out):
    """out[f] = sum over cell f = (fy, fx) of tmp[fy*s + dy, fx*s + dx] (a sum, not a mean)."""
    for fy in range(Hq):
        for fx in range(Wq):
            acc = 0.0
            for dy in range(s):
                for dx in range(s):
                    acc += tmp[fy * s + dy, fx * s + dx]
            out[fy * Wq + fx] = acc


@nb.njit(cache=True, inline="always")
def _poly(pc, z):
    acc = pc[pc.shape[0] - 1]
    for j in range(pc.shape[0] - 2, -1, -1):
        acc = acc * z + pc[j]
    return acc


@nb.njit(cache=True, inline="always")
def _dpoly(pc, z):
    P = pc.shape[0] - 1
    if P < 1:
        return 0.0
    acc = P * pc[P]
    for j in range(P - 1, 0, -1):
        acc = acc * z + j * pc[j]
    return acc


@nb.njit(cache=True, parallel=True, fastmath=FAST)
def channel_features(X, idx, w, bias, pc, s, Hq, Wq, out):
    """Pooled features of one channel: out[n, f] = pool(p(conv(X[idx[n]], w) + bias))[f].

    X: (M, C_in, H, W) padded input; idx: (N,) samples; w: (C_in, kh, kw);
    pc: activation coefficients (lowest first); s: pool size; out: (N, Hq * Wq).
    numpy: avgpool(np.polyval(pc[::-1], einsum('nchwij,cij->nhw', windows(X[idx]), w) + bias), s)
    """
    N = idx.shape[0]
    Ho, Wo = Hq * s, Wq * s
    inv = 1.0 / (s * s)
    nblocks = min(N, 64) if N > 0 else 1
    step = (N + nblocks - 1) // nblocks
    for blk in nb.prange(nblocks):
        zb = np.empty((Ho, Wo))
        for n in range(blk * step, min(N, (blk + 1) * step)):
            _conv_plane(X[idx[n]], w, bias, zb)
            for y in range(Ho):
                for x in range(Wo):
                    zb[y, x] = _poly(pc, zb[y, x]) * inv
            _pool_into(zb, s, Hq, Wq, out[n])
    return (out,)


@nb.njit(cache=True, parallel=True, fastmath=FAST)
def channel_output_jac(X, idx, w, bias, pc, s, Hq, Wq, Vc, h, J):
    """Features and the Jacobian of the outputs V_c h with respect to u = [w.ravel(), bias].

    J[n, k, o] = sum_f Vc[o, f] E[n, k, f] with the feature Jacobian
    E[n, k, f] = dh[n, f] / du_k = s^-2 sum_{pix in f} p'(z_pix) a_pix[k]; the
    per-sample E (K + 1 by F) stays in a thread-local buffer.
    numpy: J = einsum('nkf,of->nko', sumpool(p'(z)[:, None] * [patches(X[idx]), 1]) / s^2, Vc)
    h: (N, F) out, as in :func:`channel_features`; J: (N, K + 1, O) out.
    """
    N = idx.shape[0]
    Ci, kh, kw = w.shape
    K = Ci * kh * kw
    O = Vc.shape[0]
    F = Hq * Wq
    # (the same prange block partition as the kernel above: every parallel kernel here cuts samples alike)
    Ho, Wo = Hq * s, Wq * s
    inv = 1.0 / (s * s)
    nblocks = min(N, 64) if N > 0 else 1
    step = (N + nblocks - 1) // nblocks
    for blk in nb.prange(nblocks):
        zb = np.empty((Ho, Wo))
        g = np.empty((Ho, Wo))
        tmp = np.empty((Ho, Wo))
        E = np.empty((K + 1, F))
        for n in range(blk * step, min(N, (blk + 1) * step)):
            img = X[idx[n]]
            _conv_plane(img, w, bias, zb)
            for y in range(Ho):
                for x in range(Wo):
                    z = zb[y, x]
                    g[y, x] = _dpoly(pc, z) * inv
                    zb[y, x] = _poly(pc, z) * inv
            _pool_into(zb, s, Hq, Wq, h[n])
            _pool_into(g, s, Hq, Wq, E[K])
            for c in range(Ci):
                plane = img[c]
                for i in range(kh):
                    for j in range(kw):
                        for y in range(Ho):
                            for x in range(Wo):
                                tmp[y, x] = g[y, x] * plane[y + i, x + j]
                        _pool_into(tmp, s, Hq, Wq, E[(c * kh + i) * kw + j])
            for k in range(K + 1):
                for o in range(O):
                    a = 0.0
                    for f in range(F):
                        a += E[k, f] * Vc[o, f]
                    J[n, k, o] = a
    return (h, J)


@nb.njit(cache=True, parallel=True, fastmath=FAST)
def channel_grad(X, idx, w, bias, pc, s, Hq, Wq, back):
    """Gradient of sum_{n,f} back[n, f] h[n, f] with respect to u = [w.ravel(), bias].

    back: (N, F) the derivative of the objective's half with respect to the
    features (for the SSE: residual @ readout slice). Per sample one
    convolution for z and one correlation of the input with
    beta = p'(z) back[f(pix)] / s^2 (a conv weight gradient).
    numpy: g[k] = sum_n sum_pix p'(z) / s^2 * back[n, f(pix)] * patches(X[idx])[n, pix, k], g[K] likewise with 1
    Returns (g,) of length K + 1.
    """
    N = idx.shape[0]
    Ci, kh, kw = w.shape
    K = Ci * kh * kw
    Ho, Wo = Hq * s, Wq * s
    inv = 1.0 / (s * s)
    nblocks = min(N, 64) if N > 0 else 1
    step = (N + nblocks - 1) // nblocks
    acc = np.zeros((nblocks, K + 1))
    for blk in nb.prange(nblocks):
        zb = np.empty((Ho, Wo))
        rows = np.zeros((K + 1, Wo))  # per-tap partial sums over rows and samples, reduced once at the end
        for n in range(blk * step, min(N, (blk + 1) * step)):
            img = X[idx[n]]
            _conv_plane(img, w, bias, zb)
            for y in range(Ho):
                by = back[n, (y // s) * Wq:(y // s + 1) * Wq]
                for x in range(Wo):
                    zb[y, x] = _dpoly(pc, zb[y, x]) * inv * by[x // s]
            for y in range(Ho):
                gy = zb[y]
                rb = rows[K]
                for x in range(Wo):
                    rb[x] += gy[x]
                for c in range(Ci):
                    plane = img[c]
                    for i in range(kh):
                        pr = plane[y + i]
                        for j in range(kw):
                            r = rows[(c * kh + i) * kw + j]
                            for x in range(Wo):
                                r[x] += gy[x] * pr[x + j]
        for k in range(K + 1):
            a = 0.0
            for x in range(Wo):
                a += rows[k, x]
            acc[blk, k] = a
    return (acc.sum(axis=0),)


@nb.njit(cache=True, inline="always")
def _binomials(P):
    """C(j, m) for 0 <= m <= j <= P (zero above the diagonal).

    numpy: np.array([[math.comb(j, m) for m in range(P + 1)] for j in range(P + 1)], float)
    """
    binom = np.zeros((P + 1, P + 1))
    for j in range(P + 1):
        binom[j, 0] = 1.0
        for m in range(1, j + 1):
            binom[j, m] = binom[j, m - 1] * (j - m + 1) / m
    return binom


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _activation_jets(zb, dzb, pc, binom, inv, qm):
    """The Taylor coefficients in t of ``inv * p(z + t dz)`` at every position, into qm (P + 1, Ho, Wo).

    numpy: qm[m] = inv * dz**m * sum_j pc[j] * C(j, m) * z**(j - m)
    """
    P = pc.shape[0] - 1
    Ho, Wo = zb.shape
    if P == 2:  # the common quadratic activation, vectorised: a0 + a1 z + a2 z^2
        a1 = pc[1]
        a2 = pc[2]
        for y in range(Ho):
            for x in range(Wo):
                z = zb[y, x]
                dz = dzb[y, x]
                qm[0, y, x] = (pc[0] + (a1 + a2 * z) * z) * inv
                qm[1, y, x] = (a1 + 2.0 * a2 * z) * dz * inv
                qm[2, y, x] = a2 * dz * dz * inv
        return
    for y in range(Ho):
        for x in range(Wo):
            z = zb[y, x]
            dz = dzb[y, x]
            dzm = inv
            for m in range(P + 1):
                v = 0.0
                for j in range(P, m - 1, -1):
                    v = v * z + pc[j] * binom[j, m]
                qm[m, y, x] = v * dzm
                dzm *= dz


@nb.njit(cache=True, parallel=True, fastmath=FAST)
def channel_line_coeffs(X, idx, w, bias, dw, dbias, pc, s, Hq, Wq, V, dV, lin, R, hj, D):
    """SSE coefficients along a direction that moves one channel's filter; stores the jets for :func:`apply_jets`.

    Moving u -> u + t du (filter dw, bias dbias), the channel's readout slice
    V (O, F) -> V + t dV, and anything else linearly with the features held
    (other readout slices, the output bias), changes the outputs by
    t lin + V (h(t) - h(0)) + t dV (h(t) - h(0)), h(t) = sum_m hj[n, m] t^m
    (m = 0..P); lin[n] = (the whole readout direction) @ (features at t = 0) + db.
    Returns the coefficients (lowest first, length 2 (P + 1) + 1) of
    sum_{n,o} (R[n, o] + sum_{m=1}^{P+1} D[n, m-1, o] t^m)^2, R = outputs - targets.
    With hj[:, m] = avgpool(taylor_m(p, z, dz)) and D[:, m-1] = hj[:, m] @ V.T +
    hj[:, m-1] @ dV.T (+ lin for m = 1; hj[:, P+1] = 0):
    numpy: c[q] = sum_{i+j=q} sum(concat([R[:, None], D], 1)[:, i] * concat([R[:, None], D], 1)[:, j])
    hj: (N, P + 1, F) out; D: (N, P + 1, O) out.
    """
    N = idx.shape[0]
    Ho, Wo = Hq * s, Wq * s
    F = Hq * Wq
    P = pc.shape[0] - 1
    O = V.shape[0]
    inv = 1.0 / (s * s)
    L = P + 2  # coefficients of the output polynomial, t^0 .. t^(P+1)
    nblocks = min(N, 64) if N > 0 else 1
    step = (N + nblocks - 1) // nblocks
    acc = np.zeros((nblocks, 2 * L - 1))
    binom = _binomials(P)
    for blk in nb.prange(nblocks):
        zb = np.empty((Ho, Wo))
        dzb = np.empty((Ho, Wo))
        qm = np.empty((P + 1, Ho, Wo))
        poly = np.empty(L)
        for n in range(blk * step, min(N, (blk + 1) * step)):
            img = X[idx[n]]
            _conv_plane(img, w, bias, zb)
            _conv_plane(img, dw, dbias, dzb)
            _activation_jets(zb, dzb, pc, binom, inv, qm)
            for m in range(P + 1):
                _pool_into(qm[m], s, Hq, Wq, hj[n, m])
            for o in range(O):
                poly[0] = R[n, o]
                for mm in range(1, L):
                    v = 0.0
                    if mm <= P:
                        for f in range(F):
                            v += V[o, f] * hj[n, mm, f]
                    if mm == 1:
                        v += lin[n, o]
                    else:
                        for f in range(F):
                            v += dV[o, f] * hj[n, mm - 1, f]
                    D[n, mm - 1, o] = v
                    poly[mm] = v
                for i in range(L):
                    pi = poly[i]
                    acc[blk, 2 * i] += pi * pi
                    for j in range(i + 1, L):
                        acc[blk, i + j] += 2.0 * pi * poly[j]
    return (acc.sum(axis=0),)


@nb.njit(cache=True, parallel=True, fastmath=FAST)
def channel_add_jets(X, idx, w, bias, dw, dbias, pc, s, Hq, Wq, V, dV, D):
    """Add one channel's share of the output jets along a direction that moves every channel.

    With the filter u -> u + t du and the readout slice V -> V + t dV, the
    channel adds (V + t dV) h(t) - V h(0) = sum_{m=1}^{P+1} t^m (V h_m + dV h_{m-1})
    to the outputs (h_{P+1} = 0): D[n, m-1, o] += that coefficient. Summing
    every channel (and the output bias step at m = 1) gives the output jets of
    the whole network along the direction.
    numpy: D[:, m-1] += hj[:, m] @ V.T + hj[:, m-1] @ dV.T, hj as in channel_line_coeffs
    D: (N, P + 1, O), updated in place.
    """
    N = idx.shape[0]
    Ho, Wo = Hq * s, Wq * s
    F = Hq * Wq
    P = pc.shape[0] - 1
    O = V.shape[0]
    inv = 1.0 / (s * s)
    binom = _binomials(P)
    nblocks = min(N, 64) if N > 0 else 1
    step = (N + nblocks - 1) // nblocks
    for blk in nb.prange(nblocks):
        zb = np.empty((Ho, Wo))
        dzb = np.empty((Ho, Wo))
        qm = np.empty((P + 1, Ho, Wo))
        hj = np.empty((P + 1, F))
        for n in range(blk * step, min(N, (blk + 1) * step)):
            img = X[idx[n]]
            _conv_plane(img, w, bias, zb)
            _conv_plane(img, dw, dbias, dzb)
            _activation_jets(zb, dzb, pc, binom, inv, qm)
            for m in range(P + 1):
                _pool_into(qm[m], s, Hq, Wq, hj[m])
            for o in range(O):
                for mm in range(1, P + 2):
                    v = 0.0
                    if mm <= P:
                        for f in range(F):
                            v += V[o, f] * hj[mm, f]
                    for f in range(F):
                        v += dV[o, f] * hj[mm - 1, f]
                    D[n, mm - 1, o] += v
    return (D,)


@nb.njit(cache=True, parallel=True)
def apply_jets(hj, D, t, h, out):
    """Move the caches to the step t: h[n, f] = sum_m hj[n, m, f] t^m; out[n, o] += sum_m D[n, m, o] t^(m+1).

    numpy: h[:] = tensordot(t ** arange(P + 1), hj, (0, 1)); out += tensordot(t ** arange(1, P + 2), D, (0, 1))
    """
    N = hj.shape[0]
    K = hj.shape[1]
    F = hj.shape[2]
    O = D.shape[2]
    for n in nb.prange(N):
        for f in range(F):
            acc = 0.0
            tp = 1.0
            for k in range(K):
                acc += hj[n, k, f] * tp
                tp *= t
            h[n, f] = acc
        for o in range(O):
            acc = 0.0
            tp = t
            for k in range(D.shape[1]):
                acc += D[n, k, o] * tp
                tp *= t
            out[n, o] += acc
    return (h, out)
