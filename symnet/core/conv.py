"""Convolution on arrays: valid cross-correlation and its gradients, in cache-sized blocks of im2col columns.

The numba kernels (:mod:`symnet.core.kernels.conv`) lay each block of samples
out as columns, so a block's convolution is one large GEMM. The layers
(:class:`~symnet.core.layers.Conv2d`) and the derivatives
(:mod:`symnet.core.derivatives`) call these functions.
"""

from __future__ import annotations

import numpy as np

from symnet.core.kernels.conv import col2im, conv_direct, im2col, im2col_serial


#: Bytes of im2col columns per block of samples. Blocks that stay in cache beat large ones: on
#: poly2's second conv (1 thread, float32) blocks of 32-64 samples (3-7 MB) measured 3.2 s per
#: 60,000 images against 4.1 s for blocks of 512 samples (52 MB); float64 3.9 s against 5.1 s.
CONV_BLOCK_BYTES = 4 << 20


def block_rows(n: int, row_bytes: int, chunk: int | None = None) -> int:
    """Samples per block of ``n``: ``chunk`` if given, else as many as :data:`CONV_BLOCK_BYTES` of
    im2col columns hold (``row_bytes`` per sample); at least 1, at most ``n``."""
    rows = CONV_BLOCK_BYTES // max(1, row_bytes) if chunk is None else chunk
    return max(1, min(n, rows))


def windows(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Sliding windows over the last two axes: (..., Ho, Wo, kh, kw) view."""
    return np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(-2, -1))


def conv2d_valid(x: np.ndarray, w: np.ndarray, chunk: int | None = None) -> np.ndarray:
    """Cross-correlation of x (N, Ci, H, W) with w (Co, Ci, kh, kw), no padding.

    numpy equivalent: ``einsum('nchwij,ocij->nohw', windows(x), w)``; done as a
    numba im2col plus a BLAS matmul per chunk of samples (by default as many as
    :data:`CONV_BLOCK_BYTES` of columns hold), which bounds memory and stays in cache.
    """
    N, Ci, H, Wd = x.shape
    Co, _, kh, kw = w.shape
    Ho, Wo = H - kh + 1, Wd - kw + 1
    dtype = np.result_type(x.dtype, w.dtype)
    if Co <= 4 or Ci * kh * kw <= 32:
        # Few output channels, or a window so small (one input channel of 5x5) that im2col
        # would copy the input kh*kw times for a skinny GEMM: direct loops measured 3x faster.
        out4 = np.empty((N, Co, Ho, Wo), dtype=dtype)
        conv_direct(np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(w, dtype=dtype), out4)
        return out4
    out = np.empty((N, Co, Ho * Wo), dtype=dtype)
    wmat = np.ascontiguousarray(w.reshape(Co, -1), dtype=dtype)  # (Co, Ci*kh*kw)
    K = Ci * kh * kw
    chunk = block_rows(N, K * Ho * Wo * dtype.itemsize, chunk)
    buf = np.empty(K * chunk * Ho * Wo, dtype=dtype)
    for s in range(0, N, chunk):
        xs = np.ascontiguousarray(x[s:s + chunk], dtype=dtype)
        n = len(xs)
        cols = buf[: K * n * Ho * Wo].reshape(K, n, Ho * Wo)
        (im2col if cols.size > 200_000 else im2col_serial)(xs, kh, kw, cols)
        out[s:s + n] = (wmat @ cols.reshape(K, -1)).reshape(Co, n, Ho * Wo).transpose(1, 0, 2)
    return out.reshape(N, Co, Ho, Wo)


def conv_backward(x: np.ndarray, grad_out: np.ndarray, w: np.ndarray, input_grad: bool = True,
                  chunk: int | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """Both gradients of a valid cross-correlation from one im2col per chunk of samples.

    ``dL/dW[o,c,i,j] = sum_{n,y,x} g[n,o,y,x] x[n,c,y+i,x+j]`` is one GEMM of the
    gradient with the columns; ``dL/dx`` is its adjoint: the GEMM ``W^T g`` gives the
    gradient of every window (K x N*Ho*Wo), which :func:`col2im` adds back onto
    the input. That costs as much as the forward GEMM, where the textbook "full
    correlation with the flipped kernel" would first pad the gradient to
    (Ho+kh-1) x (Wo+kw-1) and copy kh*kw times that.

    numpy equivalent: ``einsum('nohw,nchwij->ocij', g, windows(x))`` and
    ``einsum('nohw,ocij->nchwij', g, w)`` summed back over overlapping windows.

    Args:
        x: input (N, Ci, H, W), already padded.
        grad_out: gradient of the output (N, Co, Ho, Wo).
        w: weight (Co, Ci, kh, kw).
        input_grad: also return the input gradient (skipped for a first layer).
        chunk: samples per im2col block (None: :data:`CONV_BLOCK_BYTES` of columns).

    Returns:
        ``(grad_x or None, grad_w)``: the input gradient in the working precision
        (float32 when x, grad_out and w all are, else float64), the weight gradient
        summed over chunks in float64.
    """
    N, Ci, H, Wd = x.shape
    Co, _, kh, kw = w.shape
    Ho, Wo = H - kh + 1, Wd - kw + 1
    K = Ci * kh * kw
    dtype = np.result_type(x.dtype, grad_out.dtype, w.dtype)
    gW = np.zeros((Co, K))
    wmat = np.ascontiguousarray(w.reshape(Co, K), dtype=dtype)
    gx = np.empty((N, Ci, H, Wd), dtype=dtype) if input_grad else None
    chunk = block_rows(N, K * Ho * Wo * dtype.itemsize, chunk)
    buf = np.empty(K * chunk * Ho * Wo, dtype=dtype)
    g = grad_out.reshape(N, Co, Ho * Wo)
    for s in range(0, N, chunk):
        xs = np.ascontiguousarray(x[s:s + chunk], dtype=dtype)
        n = len(xs)
        cols = buf[: K * n * Ho * Wo].reshape(K, n, Ho * Wo)
        (im2col if cols.size > 200_000 else im2col_serial)(xs, kh, kw, cols)
        gs = np.ascontiguousarray(g[s:s + n].transpose(1, 0, 2), dtype=dtype).reshape(Co, -1)
        gW += gs @ cols.reshape(K, -1).T
        if gx is not None:
            gcols = (wmat.T @ gs).reshape(K, n, Ho * Wo)
            col2im(gcols, kh, kw, gx[s:s + n])
    return gx, gW.reshape(Co, Ci, kh, kw)


def conv_weight_grad(x: np.ndarray, grad_out: np.ndarray, kh: int, kw: int,
                     chunk: int | None = None) -> np.ndarray:
    """dL/dW[o,c,i,j] = sum_{n,y,x} g[n,o,y,x] x[n,c,y+i,x+j] for valid cross-correlation.

    numpy equivalent: ``einsum('nohw,nchwij->ocij', g, windows(x))``; see :func:`conv_backward`.
    """
    w = np.zeros((grad_out.shape[1], x.shape[1], kh, kw), dtype=np.result_type(x.dtype, grad_out.dtype))
    return conv_backward(x, grad_out, w, input_grad=False, chunk=chunk)[1]

