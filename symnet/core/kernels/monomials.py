"""Numba kernels of windowed monomial features: typed arrays in, plain tuples out.

A monomial table is an int64 array ``(p, k)``: row ``j`` lists the flat input
indices whose product is feature ``j``, padded with ``-1`` (the bias row is all
``-1``). Inputs arrive transposed, ``xt`` of shape ``(D, n)``, so that every
feature is a product of contiguous rows and the features come out as rows of a
``(p, n)`` array, i.e. the ``(n, p)`` design matrix in Fortran order, which is
the layout BLAS ``syrk``/``gemm`` read without a copy.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, parallel=True)
def monomial_rows(xt, table, out_t):
    """Write the features of ``n`` samples into ``out_t`` (p, n) in place.

    numpy: out_t[j] = np.prod(xt[table[j][table[j] >= 0]], axis=0)   (1 for the bias row)
    xt: (D, n) inputs, one row per input position; table: (p, k) int64; out_t: (p, n) float64.
    """
    p, k = table.shape
    n = xt.shape[1]
    for j in nb.prange(p):
        row = out_t[j]
        first = table[j, 0]
        if first < 0:
            for i in range(n):
                row[i] = 1.0
            continue
        src = xt[first]
        for i in range(n):
            row[i] = src[i]
        for t in range(1, k):
            a = table[j, t]
            if a < 0:
                break
            src = xt[a]
            for i in range(n):
                row[i] *= src[i]
    return (out_t,)


@nb.njit(cache=True, parallel=True)
def monomial_nonzero_counts(xt, table):
    """Number of samples in which each monomial is non-zero.

    numpy: counts[j] = np.count_nonzero(np.prod(xt[table[j][table[j] >= 0]], axis=0))
    xt: (D, n) inputs; table: (p, k) int64. Returns ``(counts,)`` with counts (p,) int64.
    """
    p, k = table.shape
    n = xt.shape[1]
    counts = np.zeros(p, dtype=np.int64)
    for j in nb.prange(p):
        if table[j, 0] < 0:
            counts[j] = n
            continue
        c = 0
        for i in range(n):
            v = 1.0
            for t in range(k):
                a = table[j, t]
                if a < 0:
                    break
                v *= xt[a, i]
            if v != 0.0:
                c += 1
        counts[j] = c
    return (counts,)


@nb.njit(cache=True, parallel=True)
def monomial_scores(xt, table, W, out_t):
    """out_t += (features @ W).T without holding the features: (K, n) scores of n samples.

    numpy: out_t += (np.prod(xt[table], axis=1) @ W).T   (bias and -1 padding as in monomial_rows)
    xt: (D, n) inputs; table: (p, k) int64; W: (p, K) float64; out_t: (K, n) float64, updated in place.
    Samples go in blocks of 64 so that the products and the updates run along
    contiguous memory (SIMD over samples) while W streams once per block.
    """
    p, k = table.shape
    n = xt.shape[1]
    classes = W.shape[1]
    block = 64
    nblocks = (n + block - 1) // block
    for b in nb.prange(nblocks):
        i0 = b * block
        i1 = min(n, i0 + block)
        m = i1 - i0
        v = np.empty(m)
        acc = np.zeros((classes, m))
        for j in range(p):
            for i in range(m):
                v[i] = 1.0
            for t in range(k):
                a = table[j, t]
                if a < 0:
                    break
                for i in range(m):
                    v[i] *= xt[a, i0 + i]
            for c in range(classes):
                w = W[j, c]
                if w != 0.0:
                    for i in range(m):
                        acc[c, i] += v[i] * w
        for c in range(classes):
            for i in range(m):
                out_t[c, i0 + i] += acc[c, i]
    return (out_t,)
