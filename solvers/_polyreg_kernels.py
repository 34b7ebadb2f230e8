"""Numba kernels of the polynomial-regression backend: typed arrays in, plain tuples out.

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


@nb.njit(cache=True)
def sparse_columns(ft, first):
    """The non-zeros of rows ``first..p-1`` of ``ft`` (p, n) as compressed rows.

    numpy: for r in range(first, p): idx = np.nonzero(ft[r])[0]; vals = ft[r, idx]
    Returns ``(ptr, idx, vals)``: the non-zeros of row ``first + q`` are
    ``idx[ptr[q]:ptr[q+1]]`` (sample positions) and ``vals[...]``.
    """
    p, n = ft.shape
    m = p - first
    ptr = np.zeros(m + 1, dtype=np.int64)
    for q in range(m):
        row = ft[first + q]
        c = 0
        for i in range(n):
            if row[i] != 0.0:
                c += 1
        ptr[q + 1] = ptr[q] + c
    idx = np.empty(ptr[m], dtype=np.int64)
    vals = np.empty(ptr[m], dtype=np.float64)
    for q in range(m):
        row = ft[first + q]
        pos = ptr[q]
        for i in range(n):
            if row[i] != 0.0:
                idx[pos] = i
                vals[pos] = row[i]
                pos += 1
    return (ptr, idx, vals)


@nb.njit(cache=True, parallel=True)
def add_sparse_cross(ft, first, ptr, idx, vals, acc):
    """acc[c, q] += <ft[c], ft[first + q]> for the upper triangle (c <= first + q), from sparse rows.

    numpy: acc += np.triu(ft @ ft[first:].T, first)   (entries with c > first + q may be added too)
    ft: (p, n) features of one chunk (row r = feature r); rows ``first..p-1``
    are given sparsely by ``(ptr, idx, vals)`` from :func:`sparse_columns`;
    acc: (p, p - first) float64, updated in place.

    Eight rows of ``ft`` share each load of a sparse entry (eight independent
    sums per gathered index): twice the throughput of one row at a time. Rows
    of one block start at the block's first row, so up to seven entries per
    row below the diagonal get their (correct, symmetric) values too.
    """
    p, n = ft.shape
    m = p - first
    nblk = (p + 7) // 8
    for b in nb.prange(nblk):
        c0 = 8 * b
        q0 = c0 - first if c0 > first else 0
        if c0 + 8 <= p:
            r0 = ft[c0]
            r1 = ft[c0 + 1]
            r2 = ft[c0 + 2]
            r3 = ft[c0 + 3]
            r4 = ft[c0 + 4]
            r5 = ft[c0 + 5]
            r6 = ft[c0 + 6]
            r7 = ft[c0 + 7]
            for q in range(q0, m):
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
                for t in range(ptr[q], ptr[q + 1]):
                    i = idx[t]
                    v = vals[t]
                    s0 += v * r0[i]
                    s1 += v * r1[i]
                    s2 += v * r2[i]
                    s3 += v * r3[i]
                    s4 += v * r4[i]
                    s5 += v * r5[i]
                    s6 += v * r6[i]
                    s7 += v * r7[i]
                acc[c0, q] += s0
                acc[c0 + 1, q] += s1
                acc[c0 + 2, q] += s2
                acc[c0 + 3, q] += s3
                acc[c0 + 4, q] += s4
                acc[c0 + 5, q] += s5
                acc[c0 + 6, q] += s6
                acc[c0 + 7, q] += s7
        else:
            for c in range(c0, p):
                row = ft[c]
                for q in range(q0, m):
                    s = 0.0
                    for t in range(ptr[q], ptr[q + 1]):
                        s += vals[t] * row[idx[t]]
                    acc[c, q] += s
    return (acc,)


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
