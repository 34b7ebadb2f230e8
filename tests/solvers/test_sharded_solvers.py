"""coordinate, gauss-newton, lbfgs, cg and polyreg on a 2-worker Dask LocalCluster: the run without a cluster is the oracle.

Same steps, same order, same acceptance: the trained parameters and every record's loss agree to 1e-10
relative (a sharded sum differs from the in-process one only by the order of its additions).
"""

import os
import signal

import numpy as np
import pytest

from symnet import solvers
from symnet.core.datasets import Dataset
from symnet.core.errors import ClusterError, SolverError
from symnet.core.sharded import ShardedSamples
from tiny_models import tiny_models, toy_data

pytest.importorskip("distributed")

RTOL = 1e-10


def assert_same_run(a, b, rtol=RTOL):
    """Two fitted solvers took the same steps: parameters and every record's loss within rtol."""
    x, y = a.model_.get_flat(), b.model_.get_flat()
    assert np.max(np.abs(x - y)) <= rtol * max(np.max(np.abs(x)), 1e-300)
    la, lb = a.history_.column("loss"), b.history_.column("loss")
    assert len(la) == len(lb)
    for p, q in zip(la, lb):
        assert abs(p - q) <= rtol * abs(p)
    for key in ("accepted", "ridge", "ridge_used"):
        if key in a.history_.final:
            assert np.array_equal(a.history_.column(key), b.history_.column(key), equal_nan=True)


def both(solver, model, data, client, steps=2, **options):
    here = solvers.get(solver)(**options).fit(model.copy(), data, steps=steps, quiet=True)
    there = solvers.get(solver)(**options).fit(model.copy(), data, steps=steps, quiet=True, client=client)
    return here, there


@pytest.mark.parametrize("name", ["mlp", "seed", "poly", "poly2", "nobias"])
def test_coordinate_on_shards(dask_client, name):
    m = tiny_models()[name]
    here, there = both("coordinate", m, toy_data(m, n=30), dask_client, ridge=0.5, blocks="coordinate")
    assert_same_run(here, there)
    assert there.client_ is dask_client and dask_client.status == "running"  # never closed by symnet


def test_channel_blocks_on_a_cluster_turn_to_sharded_coordinates(dask_client):
    """Channel blocks keep their caches in one process: on a cluster blocks='auto' sweeps per coordinate
    on the shards (and says so); blocks='channel' is refused with the way out."""
    m = tiny_models()["poly"]
    data = toy_data(m, n=30)
    with pytest.warns(Warning, match="per coordinate"):
        there = solvers.get("coordinate")(ridge=0.5).fit(m.copy(), data, steps=1, quiet=True, client=dask_client)
    assert there.channels_ is None and any("per coordinate" in n for n in there.notices_)
    with pytest.raises(SolverError, match="one process"):
        solvers.get("coordinate")(ridge=0.5, blocks="channel").fit(m.copy(), data, steps=1, quiet=True,
                                                                   client=dask_client)


def test_coordinate_random_order_and_extrapolation_on_shards(dask_client):
    m = tiny_models()["poly"]
    here, there = both("coordinate", m, toy_data(m, n=30), dask_client, ridge=0.5, order="random",
                       extrapolate=True, blocks="coordinate")
    assert_same_run(here, there)


@pytest.mark.parametrize("solver,options", [
    ("gauss-newton", {"readout_dtype": "float64"}),                               # explicit blocks, varpro
    ("gauss-newton", {"readout_dtype": "float64", "varpro": False, "max_explicit": 0}),  # matrix-free CG
    ("gauss-newton", {"readout_dtype": "float64", "varpro": True, "reduced": True}),     # Kaufman's reduced matrix
    # K-FAC-preconditioned CG; past ~10 iterations on this 20-parameter block CG itself turns 1e-16 changes of
    # its products into 1e-6 (as in one process), so the sharded run is compared at the default 3 iterations
    ("gauss-newton", {"readout_dtype": "float64", "blocks": "all", "curvature": "kfac-cg", "cg_iters": 3,
                      "ridge": 0.2}),
    ("lbfgs", {"ridge": 0.2}),
    ("cg", {"ridge": 0.2, "varpro": True, "readout_dtype": "float64"}),
])
def test_exact_direction_solvers_on_shards(dask_client, solver, options):
    m = tiny_models()["poly"]
    here, there = both(solver, m, toy_data(m, n=30), dask_client, steps=3, **options)
    assert_same_run(here, there)


def test_minibatch_gauss_newton_on_shards_with_float32_readout(dask_client):
    """Mini-batches stay here; the full-data passes (ridge choice, readout, records) run on the shards.

    Above 2 x 8192 samples the shards start on multiples of the float32 Gram's row blocks, so even the
    single-precision Gram matrix is the in-process one.
    """
    m = tiny_models()["mlp"]
    data = toy_data(m, n=2 * 8192 + 40)
    here, there = both("gauss-newton", m, data, dask_client, steps=2, iters_per_step=3, check=True)
    assert here.opts_["batch_size"] == 1000 and here.opts_["readout_dtype"] == "float32"
    assert_same_run(here, there)


def _poly_data():
    rng = np.random.default_rng(0)
    x = rng.random((1300, 1, 5, 5))
    y = (x[:, 0, 2, 2] * x[:, 0, 2, 3] > 0.25).astype(int)
    return Dataset("toy", x[:1100], y[:1100], x[1100:], y[1100:], 2)


@pytest.mark.parametrize("options", [
    {"chunk_size": 128},                                   # ridge chosen on the validation split
    {"chunk_size": 100, "ridge": 1.0, "dense_columns": 10, "gram_steps": 3},  # sparse Gram columns too
    {"method": "bagging", "batches": 5, "batch_size": 150},
    {"method": "bagging", "batches": 5, "batch_size": 150, "ridge": 2.0},
])
def test_polyreg_on_shards(dask_client, options):
    data = _poly_data()
    here = solvers.get("polyreg")(degree=2, window=2, **options).fit(None, data, quiet=True)
    there = solvers.get("polyreg")(degree=2, window=2, **options).fit(None, data, quiet=True, client=dask_client)
    W, V = here.model_.weight, there.model_.weight
    assert np.max(np.abs(W - V)) <= RTOL * np.max(np.abs(W))
    assert here.ridge_used == there.ridge_used
    assert np.allclose(here.history_.column("test_acc"), there.history_.column("test_acc"))


def test_a_solver_that_does_not_shard_says_so(dask_client):
    m = tiny_models()["mlp"]
    s = solvers.get("adam")().fit(m, toy_data(m, n=20), steps=1, quiet=True, client=dask_client)
    assert any("runs in this process" in note for note in s.notices_)


class _KillOnce:
    """A callback that kills the worker holding shard 0 after the first step."""

    def __init__(self):
        self.done = False

    def __call__(self, record, solver):
        if not self.done:
            shards = [s for s in solver._shards if isinstance(s, ShardedSamples)]
            os.kill(shards[0].where()[0]["pid"], signal.SIGKILL)
            self.done = True


def test_a_run_recovers_from_a_killed_worker(fresh_cluster):
    _, client = fresh_cluster
    m = tiny_models()["poly"]
    data = toy_data(m, n=24)
    here = solvers.get("coordinate")(ridge=0.5, blocks="coordinate").fit(m.copy(), data, steps=3, quiet=True)
    there = solvers.get("coordinate")(ridge=0.5, blocks="coordinate").fit(m.copy(), data, steps=3, quiet=True, client=client,
                                                     callbacks=[_KillOnce()])
    assert_same_run(here, there)


def test_a_stopped_run_resumes_without_a_cluster(fresh_cluster, tmp_path, monkeypatch):
    """Recovery off: the lost worker stops the run with a ClusterError, the checkpoint of the last finished
    step is intact, and --resume continues it in this process to the uninterrupted run's result."""
    _, client = fresh_cluster
    monkeypatch.setattr(ShardedSamples, "max_rebuilds", 0)
    m = tiny_models()["poly"]
    data = toy_data(m, n=24)
    here = solvers.get("lbfgs")(ridge=0.5).fit(m.copy(), data, steps=3, quiet=True)
    with pytest.raises(ClusterError, match="checkpoint is intact"):
        solvers.get("lbfgs")(ridge=0.5).fit(m.copy(), data, steps=3, quiet=True, client=client,
                                            checkpoint_dir=tmp_path, callbacks=[_KillOnce()])
    resumed = solvers.get("lbfgs")(ridge=0.5).fit(m.copy(), data, steps=3, quiet=True, checkpoint_dir=tmp_path,
                                                  resume=True)
    assert resumed.history_.final["step"] == 3
    assert_same_run(here, resumed)
