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


# --------------------------------------------------------------------------- walks of the prefix tree
# A window table is closed under prefixes: the parent of monomial (a, b, c) is (a, b), of (a,) the bias.
# :func:`symnet.core.model.polyreg.prefix_tree` stores the children of row r as
# child[child_ptr[r]:child_ptr[r + 1]], each multiplying in pixel child_pix[...]. A depth-first walk
# that enters a child only where its pixel is non-zero visits exactly the non-zero monomials of a
# sample, which on images is a small share of them (MNIST, degree 3, 3 x 3 window: 8,157 of 61,395).


@nb.njit(cache=True)
def sample_monomials(x, child_ptr, child, child_pix, root, depth, idx, val):
    """List the non-zero monomials of one sample into ``idx``/``val``; returns ``(count,)``.

    numpy: f = features(x[None], table)[0]; idx = np.nonzero(f)[0]; val = f[idx]   (in tree order)
    x: (D,) float64 inputs; child_ptr (p+1,), child, child_pix: the prefix tree; root: the bias row;
    depth: the table's degree; idx (p+1,) int64 and val (p+1,) float64: output buffers (one spare slot).

    The children of a node of degree ``depth - 1`` are leaves: they are written unconditionally and
    the count advanced by ``x != 0``, which spares the mispredicted branches of the zero test.
    """
    stack_node = np.empty(depth + 1, dtype=np.int64)
    stack_pos = np.empty(depth + 1, dtype=np.int64)
    stack_val = np.empty(depth + 1)
    idx[0] = root
    val[0] = 1.0
    n = 1
    level = 0
    stack_node[0] = root
    stack_pos[0] = child_ptr[root]
    stack_val[0] = 1.0
    while level >= 0:
        node = stack_node[level]
        if level == depth - 1:
            v0 = stack_val[level]
            for pos in range(child_ptr[node], child_ptr[node + 1]):
                xv = x[child_pix[pos]]
                idx[n] = child[pos]
                val[n] = v0 * xv
                n += xv != 0.0
            level -= 1
            continue
        pos = stack_pos[level]
        if pos >= child_ptr[node + 1]:
            level -= 1
            continue
        stack_pos[level] = pos + 1
        xv = x[child_pix[pos]]
        if xv == 0.0:
            continue
        c = child[pos]
        v = stack_val[level] * xv
        idx[n] = c
        val[n] = v
        n += 1
        level += 1
        stack_node[level] = c
        stack_pos[level] = child_ptr[c]
        stack_val[level] = v
    return (n,)


#: What :func:`block_walk` does at each monomial it visits.
WALK_FORWARD, WALK_ADJOINT, WALK_COUNT, WALK_FILL = 0, 1, 2, 3


@nb.njit(cache=True)
def block_walk(mode, xt, m, child_ptr, child, child_pix, root, depth, A, B, lidx, lval, lcnt, stack_node, stack_pos,
               node_ids, node_ptr, ent_idx, ent_val, n0, e0):
    """The one walk of the prefix tree over a block of ``m`` samples, doing ``mode`` at each monomial it visits.

    numpy: for each row j of the table with f_j = features(block)[:, j] != 0 somewhere, in depth-first order:
           WALK_FORWARD: B[:m] += outer(f_j, A[j]); WALK_ADJOINT: B[j] += f_j @ A[:m];
           WALK_COUNT / WALK_FILL: count / write the lists (node_ids, node_ptr, ent_idx, ent_val) from n0, e0
    xt: (D, width) inputs of the block, one column per sample; A, B: float64 (p, k) / (width, k) as the
    mode reads and writes them. Each level of the walk keeps the list of the block's samples in which
    the current monomial is non-zero and its values there (lidx (depth+1, width) int64, lval
    (depth+1, width) float64, lcnt (depth+1,) int64; stack_node and stack_pos (depth+1,) int64 hold
    the path), so each row of a (p, k) operand is touched once per block and the per-sample work runs
    over short lists held in L1 cache. One routine for every use, compiled per mode (a walk step called
    per monomial, a function returning the next one, measured 1.7x slower).
    Returns ``(nodes, entries)`` after the block (the list modes; else ``(0, 0)``).
    """
    nb.literally(mode)  # compiled once per mode, its branches folded away: as fast as a walk written per use
    k = A.shape[1]
    acc = np.empty(k)
    r = n0
    e = e0
    for t in range(m):
        lidx[0, t] = t
        lval[0, t] = 1.0
    if mode == WALK_FORWARD:
        for t in range(m):
            for c in range(k):
                B[t, c] += A[root, c]
    elif mode == WALK_ADJOINT:
        for c in range(k):
            a = 0.0
            for t in range(m):
                a += A[t, c]
            B[root, c] += a
    else:
        if mode == WALK_FILL:
            node_ids[r] = root
            node_ptr[r] = e
            for t in range(m):
                ent_idx[e + t] = t
                ent_val[e + t] = 1.0
        e += m
        r += 1
    lcnt[0] = m
    level = 0
    stack_node[0] = root
    stack_pos[0] = child_ptr[root]
    while level >= 0:
        node = stack_node[level]
        pos = stack_pos[level]
        if pos >= child_ptr[node + 1]:
            level -= 1
            continue
        stack_pos[level] = pos + 1
        q = child_pix[pos]
        j = child[pos]
        cnt = 0
        for t in range(lcnt[level]):
            i = lidx[level, t]
            v = lval[level, t] * xt[q, i]
            lidx[level + 1, cnt] = i
            lval[level + 1, cnt] = v
            cnt += v != 0.0
        if cnt == 0:
            continue
        if mode == WALK_FORWARD:
            for t in range(cnt):
                i = lidx[level + 1, t]
                v = lval[level + 1, t]
                for c in range(k):
                    B[i, c] += v * A[j, c]
        elif mode == WALK_ADJOINT:
            for c in range(k):
                acc[c] = 0.0
            for t in range(cnt):
                i = lidx[level + 1, t]
                v = lval[level + 1, t]
                for c in range(k):
                    acc[c] += v * A[i, c]
            for c in range(k):
                B[j, c] += acc[c]
        else:
            if mode == WALK_FILL:
                node_ids[r] = j
                node_ptr[r] = e
                for t in range(cnt):
                    ent_idx[e + t] = lidx[level + 1, t]
                    ent_val[e + t] = lval[level + 1, t]
            r += 1
            e += cnt
        if level + 1 < depth and child_ptr[j + 1] > child_ptr[j]:
            level += 1
            lcnt[level] = cnt
            stack_node[level] = j
            stack_pos[level] = child_ptr[j]
    return (r, e)


@nb.njit(cache=True)
def block_forward(xt, m, child_ptr, child, child_pix, root, depth, V, s, lidx, lval, lcnt, stack_node, stack_pos):
    """``s[:m] += features(block) @ V`` for a block of ``m`` samples: one walk of the prefix tree (:func:`block_walk`).

    numpy: s[:m] += features(xt[:, :m].T, table) @ V
    xt: (D, width) inputs of the block, one column per sample; V: (p, k) float64; s: (width, k) float64;
    the scratch as in :func:`block_walk`.
    """
    block_walk(WALK_FORWARD, xt, m, child_ptr, child, child_pix, root, depth, V, s, lidx, lval, lcnt, stack_node,
               stack_pos, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint8),
               np.empty(0), 0, 0)
    return (s,)


@nb.njit(cache=True, parallel=True)
def tree_scores(X2, child_ptr, child, child_pix, root, depth, W, width):
    """``features(X2) @ W`` (n, k) by walks of the prefix tree over blocks of ``width`` samples.

    numpy: return (features(X2, table) @ W,)
    X2: (n, D) float64 inputs, one sample per row; W: (p, k) float64. Blocks run in parallel, each
    writing its own rows of the result.
    """
    n, D = X2.shape
    k = W.shape[1]
    out = np.zeros((n, k))
    nblocks = (n + width - 1) // width
    for b in nb.prange(nblocks):
        j0 = b * width
        m = min(n, j0 + width) - j0
        xt = np.empty((D, m))
        for i in range(m):
            for q in range(D):
                xt[q, i] = X2[j0 + i, q]
        s = np.zeros((m, k))
        lidx = np.empty((depth + 1, m), dtype=np.int64)
        lval = np.empty((depth + 1, m))
        lcnt = np.empty(depth + 1, dtype=np.int64)
        stack_node = np.empty(depth + 1, dtype=np.int64)
        stack_pos = np.empty(depth + 1, dtype=np.int64)
        block_forward(xt, m, child_ptr, child, child_pix, root, depth, W, s, lidx, lval, lcnt, stack_node, stack_pos)
        for i in range(m):
            for c in range(k):
                out[j0 + i, c] = s[i, c]
    return (out,)


@nb.njit(cache=True, parallel=True)
def tree_nonzero_counts(X2, child_ptr, child, child_pix, root, depth, p, threads):
    """The number of non-zero monomials of each sample and of each monomial over the samples.

    numpy: F = features(X2, table); return ((F != 0).sum(1), (F != 0).sum(0))
    X2: (n, D) float64; p: rows of the table; threads: parallel ranges of samples (one counter each).
    Returns ``(per_sample (n,), per_monomial (p,))`` int64.
    """
    n = X2.shape[0]
    per_sample = np.zeros(n, dtype=np.int64)
    threads = max(1, threads)
    acc = np.zeros((threads, p), dtype=np.int64)
    for b in nb.prange(threads):
        idx = np.empty(p + 1, dtype=np.int64)
        val = np.empty(p + 1)
        for i in range(b * n // threads, (b + 1) * n // threads):
            cnt = sample_monomials(X2[i], child_ptr, child, child_pix, root, depth, idx, val)[0]
            per_sample[i] = cnt
            for t in range(cnt):
                acc[b, idx[t]] += 1
    total = np.zeros(p, dtype=np.int64)
    for b in range(threads):
        total += acc[b]
    return (per_sample, total)
