"""symnet.core.runtime: the BLAS limit holds inside the block and is undone after it; work that cannot fit is refused."""

import numpy as np
import pytest
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


def test_work_that_cannot_fit_is_refused_before_it_is_allocated(monkeypatch):
    # a layer, a network and an exact solver's activation cache: each estimate is checked against the memory
    # available, and refused with one line that names both figures (nothing is allocated first)
    import numpy as np

    from symnet.core import runtime
    from symnet.core.errors import ResourceError
    from symnet.core.layers import Linear
    from symnet.core.model import presets
    from symnet.core.restriction import Restriction

    with pytest.raises(ResourceError, match=r"shape \(100000000, 784\) would need about 627 GB"):
        Linear(784, 100_000_000)
    model = presets.get("mlp", input_dim=4, hidden=8, seed=0)
    X, Y = np.ones((1000, 4)), np.zeros((1000, 2))
    monkeypatch.setattr(runtime, "available_memory_bytes", lambda: 10_000)
    with pytest.raises(ResourceError, match="cached activations of 1,000 samples.*--samples"):
        Restriction(model, X, Y)
    monkeypatch.setattr(runtime, "available_memory_bytes", lambda: 1000)  # each layer fits, the whole does not
    with pytest.raises(ResourceError, match="a network of 58 parameters would need about 0.0 GB"):
        presets.get("mlp", input_dim=4, hidden=8, seed=0)
    monkeypatch.setattr(runtime, "available_memory_bytes", lambda: None)  # unknown: no check
    Restriction(model, X, Y)
