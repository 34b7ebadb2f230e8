"""Numba kernels of the polynomial-regression backend's Gram accumulation: typed arrays in, plain tuples out.

Features arrive as a ``(p, n)`` array (the ``(n, p)`` design matrix in Fortran
order, from :func:`symnet.core.kernels.monomials.monomial_rows`); the dense head
of the Gram goes through BLAS ``dsyrk``, the sparse tail through these kernels.
"""

from __future__ import annotations

import numba as nb
import numpy as np


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
