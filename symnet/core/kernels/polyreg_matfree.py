"""Numba kernels of the matrix-free polynomial-regression solves: typed arrays in, plain tuples out.

The design matrix ``X`` (N x p, one column per monomial of a
:func:`symnet.core.model.polyreg.monomial_table`) is never held. The kernels walk
the table's prefix tree (:func:`symnet.core.model.polyreg.prefix_tree`) once per
block of samples and visit only the monomials that are non-zero in some sample
of the block (:func:`symnet.core.kernels.monomials.block_forward` for ``X V``;
:func:`block_adjoint` here for ``X^T S``). On MNIST a sample has 8,157 non-zero
monomials of degree <= 3 in a 3 x 3 window, out of 61,395.

:func:`build_walk_lists` keeps each block's walk as compressed lists (the
visited monomials, then per monomial its non-zero samples and values), which
:func:`listed_normal_products` and :func:`listed_scores` read at every later
product instead of walking again.

Samples are split into ``blocks`` contiguous ranges run in parallel (prange),
each with its own ``(p, k)`` accumulator summed at the end: no two threads write
the same memory and the result does not depend on the scheduling. All sums are
float64.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from symnet.core.kernels.monomials import (WALK_ADJOINT, WALK_COUNT, WALK_FILL, block_forward, block_walk,
                                           sample_monomials)


@nb.njit(cache=True)
def block_adjoint(xt, m, child_ptr, child, child_pix, root, depth, s, out, lidx, lval, lcnt, stack_node, stack_pos):
    """``out += features(block)^T @ s[:m]`` for a block of ``m`` samples, in one walk of the prefix tree.

    numpy: out += features(xt[:, :m].T, table).T @ s[:m]
    Arguments as in :func:`symnet.core.kernels.monomials.block_forward`; s: (width, k) float64;
    out: (p, k) float64, updated in place (each row once per block).
    """
    block_walk(WALK_ADJOINT, xt, m, child_ptr, child, child_pix, root, depth, s, out, lidx, lval, lcnt, stack_node,
               stack_pos, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint8),
               np.empty(0), 0, 0)
    return (out,)


@nb.njit(cache=True, parallel=True)
def normal_products(X2, child_ptr, child, child_pix, root, depth, V, XV, blocks, width):
    """``XV = X @ V`` and ``X^T X V`` in one pass over the samples.

    numpy: F = features(X2, table); XV[:] = F @ V; return (F.T @ (F @ V),)
    X2: (n, D) float64 inputs, one sample per row; the tree as in
    :func:`symnet.core.model.polyreg.prefix_tree`; V: (p, k) float64; XV: (n, k) float64, written;
    blocks: number of sample ranges (parallel tasks, one accumulator each); width: samples per walk.

    Each block of ``width`` samples is walked twice: ``s = X_b V`` first, then ``X_b^T s``. Measured on
    MNIST, degree 3, 3 x 3 window, one thread: 5.4 CPU-seconds per pass over 60,000 samples with
    blocks of 128 samples against 7.0 s walking each sample alone; 64 or 256 samples are no better.
    """
    n, D = X2.shape
    p, k = V.shape
    blocks = max(1, min(blocks, n))
    acc = np.zeros((blocks, p, k))
    for b in nb.prange(blocks):
        i0 = b * n // blocks
        i1 = (b + 1) * n // blocks
        xt = np.empty((D, width))
        # the walk's scratch, per prange block (numba cannot share one across the blocks; block_walk reads it)
        s = np.empty((width, k))
        lidx = np.empty((depth + 1, width), dtype=np.int64)
        lval = np.empty((depth + 1, width))
        lcnt = np.empty(depth + 1, dtype=np.int64)
        stack_node = np.empty(depth + 1, dtype=np.int64)
        stack_pos = np.empty(depth + 1, dtype=np.int64)
        out = acc[b]
        for j0 in range(i0, i1, width):
            m = min(i1, j0 + width) - j0
            for i in range(m):
                for q in range(D):
                    xt[q, i] = X2[j0 + i, q]
            for i in range(m):
                for c in range(k):
                    s[i, c] = 0.0
            block_forward(xt, m, child_ptr, child, child_pix, root, depth, V, s, lidx, lval, lcnt,
                          stack_node, stack_pos)
            block_adjoint(xt, m, child_ptr, child, child_pix, root, depth, s, out, lidx, lval, lcnt,
                          stack_node, stack_pos)
            for i in range(m):
                for c in range(k):
                    XV[j0 + i, c] = s[i, c]
    total = acc[0]
    for b in range(1, blocks):
        total += acc[b]
    return (total,)


@nb.njit(cache=True, parallel=True)
def transpose_products(X2, child_ptr, child, child_pix, root, depth, U, p, blocks):
    """``X^T U`` together with the diagonal of ``X^T X`` and the non-zero count of each column.

    numpy: F = features(X2, table); return (F.T @ U, (F * F).sum(0), np.count_nonzero(F, axis=0))
    X2: (n, D) float64; the tree as in :func:`normal_products`; U: (n, k) float64; p: rows of the
    table; blocks as in :func:`normal_products`. Returns ``(XtU (p, k), diag (p,), counts (p,) int64)``.
    """
    n = X2.shape[0]
    k = U.shape[1]
    blocks = max(1, min(blocks, n))
    acc = np.zeros((blocks, p, k))
    dacc = np.zeros((blocks, p))
    cacc = np.zeros((blocks, p), dtype=np.int64)
    for b in nb.prange(blocks):
        i0 = b * n // blocks
        i1 = (b + 1) * n // blocks
        idx = np.empty(p + 1, dtype=np.int64)
        val = np.empty(p + 1)
        out = acc[b]
        dout = dacc[b]
        cout = cacc[b]
        for i in range(i0, i1):
            m = sample_monomials(X2[i], child_ptr, child, child_pix, root, depth, idx, val)[0]
            for t in range(m):
                f = idx[t]
                v = val[t]
                dout[f] += v * v
                cout[f] += 1
                for c in range(k):
                    out[f, c] += v * U[i, c]
    total = acc[0]
    diag = dacc[0]
    counts = cacc[0]
    for b in range(1, blocks):
        total += acc[b]
        diag += dacc[b]
        counts += cacc[b]
    return (total, diag, counts)


# --------------------------------------------------------------------------- the walks' lists, kept
# A CG run multiplies by the same X a few hundred times. The walk (which monomials are non-zero in
# which samples of a block, and their values) is the same every time and costs more than the
# multiply-adds: kept in memory as compressed lists it is walked once. Per block of samples, the
# visited monomials in walk order (``node_ids``, their entries from ``node_ptr``), and per entry the
# sample's position in the block (uint8: blocks of at most 256 samples) and the monomial's value.


@nb.njit(cache=True)
def walk_lists(xt, m, child_ptr, child, child_pix, root, depth, lidx, lval, lcnt, stack_node, stack_pos,
               node_ids, node_ptr, ent_idx, ent_val, n0, e0, fill):
    """Walk one block and count (``fill`` False) or write (True) its lists from node ``n0``, entry ``e0``.

    numpy: for each monomial j non-zero in some sample of the block (walk order): node_ids += [j];
           entries += [(i, f_j(x_i)) for the samples i of the block where f_j(x_i) != 0]
    Arguments as in :func:`symnet.core.kernels.monomials.block_forward`; returns ``(nodes, entries)``
    after the block (the counts when ``fill`` is False).
    """
    none = np.empty((0, 1))
    if fill:  # the mode a constant at each call: block_walk is compiled for it
        return block_walk(WALK_FILL, xt, m, child_ptr, child, child_pix, root, depth, none, none, lidx, lval, lcnt,
                          stack_node, stack_pos, node_ids, node_ptr, ent_idx, ent_val, n0, e0)
    return block_walk(WALK_COUNT, xt, m, child_ptr, child, child_pix, root, depth, none, none, lidx, lval, lcnt,
                      stack_node, stack_pos, node_ids, node_ptr, ent_idx, ent_val, n0, e0)


@nb.njit(cache=True, parallel=True)
def _walk_all(X2, child_ptr, child, child_pix, root, depth, width, block_nodes, block_entries,
              node_ids, node_ptr, ent_idx, ent_val, fill, tasks):
    n, D = X2.shape
    nblocks = (n + width - 1) // width
    for task in nb.prange(tasks):
        xt = np.empty((D, width))
        lidx = np.empty((depth + 1, width), dtype=np.int64)
        lval = np.empty((depth + 1, width))
        lcnt = np.empty(depth + 1, dtype=np.int64)
        stack_node = np.empty(depth + 1, dtype=np.int64)
        stack_pos = np.empty(depth + 1, dtype=np.int64)
        for b in range(task * nblocks // tasks, (task + 1) * nblocks // tasks):
            j0 = b * width
            m = min(n, j0 + width) - j0
            for i in range(m):
                for q in range(D):
                    xt[q, i] = X2[j0 + i, q]
            if fill:
                walk_lists(xt, m, child_ptr, child, child_pix, root, depth, lidx, lval, lcnt, stack_node, stack_pos,
                           node_ids, node_ptr, ent_idx, ent_val, block_nodes[b], block_entries[b], True)
            else:  # counts: block b's go to slot b + 1 (the offsets are their running sums)
                r, e = walk_lists(xt, m, child_ptr, child, child_pix, root, depth, lidx, lval, lcnt, stack_node,
                                  stack_pos, node_ids, node_ptr, ent_idx, ent_val, 0, 0, False)
                block_nodes[b + 1] = r
                block_entries[b + 1] = e
    return 0


def count_walk_lists(X2, child_ptr, child, child_pix, root, depth, width, tasks):
    """The nodes and entries of each block's lists (:func:`walk_lists`): ``(nodes (nblocks,), entries (nblocks,))``.

    numpy: per block of ``width`` samples: (monomials non-zero in some sample, non-zero (sample, monomial) pairs)
    """
    n = X2.shape[0]
    nblocks = (n + width - 1) // width
    counts_n = np.zeros(nblocks + 1, dtype=np.int64)
    counts_e = np.zeros(nblocks + 1, dtype=np.int64)
    _walk_all(X2, child_ptr, child, child_pix, root, depth, width, counts_n, counts_e, np.zeros(1, dtype=np.int32),
              np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.uint8), np.zeros(1), False, tasks)
    return counts_n[1:], counts_e[1:]


def build_walk_lists(X2, child_ptr, child, child_pix, root, depth, width, dtype, tasks, counts=None):
    """The lists of every block of ``width`` (<= 256) samples of ``X2``, values stored in ``dtype``.

    numpy: the concatenation over blocks of :func:`walk_lists`
    Returns ``(block_nodes (nblocks+1,), node_ids (nodes,) int32, node_ptr (nodes+1,) int64,
    ent_idx (entries,) uint8, ent_val (entries,) dtype)``; block ``b``'s nodes are
    ``block_nodes[b]:block_nodes[b+1]``. ``counts`` from :func:`count_walk_lists` (else counted here).
    """
    if counts is None:
        counts = count_walk_lists(X2, child_ptr, child, child_pix, root, depth, width, tasks)
    block_nodes = np.concatenate([[0], np.cumsum(counts[0])]).astype(np.int64)
    block_entries = np.concatenate([[0], np.cumsum(counts[1])]).astype(np.int64)
    node_ids = np.empty(block_nodes[-1], dtype=np.int32)
    node_ptr = np.empty(block_nodes[-1] + 1, dtype=np.int64)
    ent_idx = np.empty(block_entries[-1], dtype=np.uint8)
    ent_val = np.empty(block_entries[-1], dtype=dtype)
    _walk_all(X2, child_ptr, child, child_pix, root, depth, width, block_nodes, block_entries,
              node_ids, node_ptr, ent_idx, ent_val, True, tasks)
    node_ptr[-1] = block_entries[-1]
    return block_nodes, node_ids, node_ptr, ent_idx, ent_val


@nb.njit(cache=True, parallel=True)
def listed_normal_products(block_nodes, node_ids, node_ptr, ent_idx, ent_val, n, width, V, XV, tasks):
    """``XV = X @ V`` and ``X^T X V`` from the kept lists (:func:`build_walk_lists`) of ``n`` samples.

    numpy: F = features(X2, table); XV[:] = F @ V; return (F.T @ (F @ V),)
    V: (p, k) float64; XV: (n, k) float64, written; tasks: parallel ranges of blocks (one
    accumulator each). Values are read in their stored type and multiplied in float64.
    """
    p, k = V.shape
    nblocks = len(block_nodes) - 1
    tasks = max(1, min(tasks, nblocks))
    acc = np.zeros((tasks, p, k))
    for task in nb.prange(tasks):
        s = np.empty((width, k))
        a = np.empty(k)
        out = acc[task]
        for b in range(task * nblocks // tasks, (task + 1) * nblocks // tasks):
            j0 = b * width
            m = min(n, j0 + width) - j0
            for i in range(m):
                for c in range(k):
                    s[i, c] = 0.0
            for r in range(block_nodes[b], block_nodes[b + 1]):
                vj = V[node_ids[r]]
                for e in range(node_ptr[r], node_ptr[r + 1]):
                    si = s[ent_idx[e]]
                    v = np.float64(ent_val[e])
                    for c in range(k):
                        si[c] += v * vj[c]
            for r in range(block_nodes[b], block_nodes[b + 1]):
                for c in range(k):
                    a[c] = 0.0
                for e in range(node_ptr[r], node_ptr[r + 1]):
                    si = s[ent_idx[e]]
                    v = np.float64(ent_val[e])
                    for c in range(k):
                        a[c] += v * si[c]
                oj = out[node_ids[r]]
                for c in range(k):
                    oj[c] += a[c]
            # (the same scratch set as the other walks of this module: each prange block needs its own, sized to it)
            for i in range(m):
                for c in range(k):
                    XV[j0 + i, c] = s[i, c]
    total = acc[0]
    for t in range(1, tasks):
        total += acc[t]
    return (total,)


@nb.njit(cache=True, parallel=True)
def listed_scores(block_nodes, node_ids, node_ptr, ent_idx, ent_val, n, width, V, tasks):
    """``X @ V`` (n, k) from the kept lists (:func:`build_walk_lists`)."""
    k = V.shape[1]
    nblocks = len(block_nodes) - 1
    tasks = max(1, min(tasks, nblocks))
    XV = np.zeros((n, k))
    for task in nb.prange(tasks):
        for b in range(task * nblocks // tasks, (task + 1) * nblocks // tasks):
            j0 = b * width
            for r in range(block_nodes[b], block_nodes[b + 1]):
                vj = V[node_ids[r]]
                for e in range(node_ptr[r], node_ptr[r + 1]):
                    si = XV[j0 + np.int64(ent_idx[e])]
                    v = np.float64(ent_val[e])
                    for c in range(k):
                        si[c] += v * vj[c]
    return (XV,)
