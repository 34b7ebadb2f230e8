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


def _local_cluster():
    distributed = pytest.importorskip("distributed")
    # two worker processes, one thread each, the dashboard on any free port: the smallest real cluster
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    return cluster, distributed.Client(cluster)


@pytest.fixture(scope="session")
def dask_client():
    """A Client of a 2-worker LocalCluster shared by the tests that only read from it."""
    cluster, client = _local_cluster()
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def fresh_cluster():
    """A 2-worker LocalCluster of the test's own (for tests that kill a worker): ``(cluster, client)``."""
    cluster, client = _local_cluster()
    yield cluster, client
    client.close()
    cluster.close()
