"""BLAS thread control around numba-parallel work.

The convolution, pooling and restriction kernels are numba-parallel over all
cores. A multi-threaded BLAS between them oversubscribes the cores: OpenBLAS
threads spin for a while after each call and steal the cores the next numba
region needs. On 2 cores, batches of 128 through ``poly2`` measured 1.5-3x
slower with BLAS on 2 threads than on 1 (the GEMMs of a batch are small enough
that one thread runs them near peak). Large GEMMs (polyreg's Gram matrices)
keep the default.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator


@functools.lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # inspects the loaded libraries once (milliseconds)


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the block with BLAS limited to ``n`` threads (``None``: leave it as it is).

    Example:
        >>> import numpy as np
        >>> with blas_threads(1):
        ...     _ = np.ones((64, 64)) @ np.ones((64, 64))
    """
    if n is None:
        yield
        return
    with _controller().limit(limits=int(n), user_api="blas"):
        yield
