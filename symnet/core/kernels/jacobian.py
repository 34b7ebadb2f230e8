"""Numba kernels of the Gauss-Newton solvers: typed arrays in, plain tuples out."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, parallel=True)
def pooled_patch_sums(xpad, dz, pool, kh, kw, out):
    """Per-sample, per-channel sums of input patches weighted by dz, pooled over each cell.

    out[c, q, n, m] = sum_{(y, x) in cell q} dz[n, c, y, x] * patch(n, y, x)[m] for m < Ci*kh*kw,
    out[c, q, n, Ci*kh*kw] = sum_{(y, x) in cell q} dz[n, c, y, x] (the bias column), where
    patch(n, y, x)[ci*kh*kw + i*kw + j] = xpad[n, ci, y+i, x+j] and the cells are the pool x pool
    blocks of the (Ho, Wo) output (q = qy * (Wo // pool) + qx; trailing rows and columns dropped).

    numpy: out = einsum('ncyx,nyxm->cnyxm', dz, patches) summed over each pool cell, reordered to (c, q, n, m)
    """
    N, Ci, Hp, Wp = xpad.shape
    Co, Ho, Wo = dz.shape[1], dz.shape[2], dz.shape[3]
    Hq, Wq = Ho // pool, Wo // pool
    M = Ci * kh * kw
    for n in nb.prange(N):
        # this sample's patches, one contiguous row per output pixel, so the inner loop is a saxpy
        pat = np.empty((Ho * Wo, M + 1))
        for y in range(Ho):
            for x in range(Wo):
                p = y * Wo + x
                m = 0
                for ci in range(Ci):
                    for i in range(kh):
                        for j in range(kw):
                            pat[p, m] = xpad[n, ci, y + i, x + j]
                            m += 1
                pat[p, M] = 1.0
        acc = np.empty(M + 1)
        for c in range(Co):
            for qy in range(Hq):
                for qx in range(Wq):
                    acc[:] = 0.0
                    for dy in range(pool):
                        y = qy * pool + dy
                        for dx in range(pool):
                            x = qx * pool + dx
                            g = dz[n, c, y, x]
                            p = y * Wo + x
                            for m in range(M + 1):
                                acc[m] += g * pat[p, m]
                    q = qy * Wq + qx
                    for m in range(M + 1):
                        out[c, q, n, m] = acc[m]
    return (out,)
