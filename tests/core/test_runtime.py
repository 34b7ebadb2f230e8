"""symnet._threads: the BLAS limit holds inside the block and is undone after it."""

import numpy as np
from threadpoolctl import threadpool_info

from symnet.core.runtime import blas_threads


def blas_counts():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_limit_applies_inside_and_is_restored():
    before = blas_counts()
    with blas_threads(1):
        assert blas_counts() and all(n == 1 for n in blas_counts())
        a = np.ones((50, 50))
        np.testing.assert_allclose(a @ a, 50.0)
    assert blas_counts() == before


def test_none_leaves_blas_alone():
    before = blas_counts()
    with blas_threads(None):
        assert blas_counts() == before
