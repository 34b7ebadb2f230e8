"""Numba kernels of the exact restriction: typed arrays in, plain tuples out."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, parallel=True)
def sse_coeffs(r, D):
    """Coefficients of sum_{n,u} (r[n,u] + sum_k D[k-1,n,u] t^k)^2, lowest first, float64.

    numpy: P = concat([r[None], D]); c[m] = sum_{i+j=m} sum(P[i] * P[j])
    r: (N, U) residual slice; D: (K, N, U) jet coefficients of t^1..t^K.
    """
    K = D.shape[0]
    N, U = r.shape
    nblocks = min(N, 64)
    acc = np.zeros((nblocks, 2 * K + 1))
    step = (N + nblocks - 1) // nblocks
    for b in nb.prange(nblocks):
        p = np.empty(K + 1)
        lo = b * step
        hi = min(N, lo + step)
        for n in range(lo, hi):
            for u in range(U):
                p[0] = r[n, u]
                for k in range(K):
                    p[k + 1] = D[k, n, u]
                for i in range(K + 1):
                    pi = p[i]
                    acc[b, 2 * i] += pi * pi
                    for j in range(i + 1, K + 1):
                        acc[b, i + j] += 2.0 * pi * p[j]
    return (acc.sum(axis=0),)


@nb.njit(cache=True, parallel=True)
def add_polynomial_step(x, channels, D, t):
    """x[:, channels] += sum_k D[k-1] t^k in place; x (N, C, M), D (K, N, len(channels), M).

    numpy: x[:, channels] += np.tensordot(t ** np.arange(1, K + 1), D, 1)
    """
    K, N, S, M = D.shape
    for n in nb.prange(N):
        for s in range(S):
            c = channels[s]
            for m in range(M):
                acc = 0.0
                tp = 1.0
                for k in range(K):
                    tp *= t
                    acc += D[k, n, s, m] * tp
                x[n, c, m] += acc
    return (x,)
