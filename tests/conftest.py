import os
from pathlib import Path

import numpy as np
import pytest

MNIST_DIR = Path(os.environ.get("SYMNET_TEST_MNIST", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def mnist_dir():
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {MNIST_DIR} (set SYMNET_TEST_MNIST)")
    return MNIST_DIR


@pytest.fixture
def register_solver():
    """``register_solver(name, "module:Class")`` for the test's duration (removed afterwards)."""
    from symnet import solvers

    added = []

    def register(name, target):
        solvers.register(name, target)
        added.append(name)

    yield register
    for name in added:
        solvers.unregister(name)
