"""Samples and the exact loss in shards on a 2-worker Dask LocalCluster: every sum equals the one in this process.

The oracle is the in-process :class:`Restriction` (itself checked against closed forms and brute force in
test_restriction.py and test_line_search_and_derivatives.py). A sharded sum differs from it only by the order
of floating-point additions, so agreement is asked to 1e-12 relative.
"""

import os
import signal

import numpy as np
import pytest

from symnet.core.derivatives import gradient, jtj_product, jvp, kronecker_factors, param_layers, vjp
from symnet.core.errors import ClusterError, ModelError
from symnet.core.restriction import Restriction
from symnet.core.samples import Samples, add_results
from symnet.core.sharded import ShardedLoss, ShardedSamples, shard_bounds
from tiny_models import tiny_data, tiny_models

pytest.importorskip("distributed")

RTOL = 1e-12


def close(a, b, rtol=RTOL):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-300)
    return a.shape == b.shape and float(np.max(np.abs(a - b))) <= rtol * scale if a.size else a.shape == b.shape


# --------------------------------------------------------------------------- cutting rows
@pytest.mark.parametrize("n,shards", [(1, 1), (7, 2), (10, 3), (5, 9), (20000, 2), (60000, 3)])
def test_shard_bounds_cover_every_row_once(n, shards):
    bounds = shard_bounds(n, shards)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(hi > lo for lo, hi in bounds) and len(bounds) == min(n, shards)
    sizes = [hi - lo for lo, hi in bounds]
    if n >= shards * 8192:  # aligned to the float32 Gram blocks
        assert all(lo % 8192 == 0 for lo, _ in bounds)
    else:
        assert max(sizes) - min(sizes) <= 1


def test_shard_bounds_at_chunk_boundaries():
    bounds = shard_bounds(100, 3, boundaries=[0, 30, 60, 90, 95])
    assert bounds == [(0, 30), (30, 60), (60, 100)]
    assert shard_bounds(10, 4, boundaries=[0, 5]) == [(0, 5), (5, 10)]  # fewer chunks than shards
    with pytest.raises(ModelError):
        shard_bounds(0, 2)


def test_add_results_adds_nested_results():
    a = {"x": (1.0, np.ones(2)), "y": None}
    b = {"x": (2.0, np.ones(2)), "y": np.zeros(1)}
    out = add_results(a, b)
    assert out["x"][0] == 3.0 and out["x"][1].tolist() == [2.0, 2.0] and out["y"].tolist() == [0.0]


# --------------------------------------------------------------------------- the map-reduce contract
def _rows_seen(samples, rows, scale):
    """Global row ids of the selected rows, times scale (a per-row result), and their sum (an additive one)."""
    ids = samples.offset + (np.arange(len(samples.X)) if rows is None else np.arange(len(samples.X))[rows])
    return ids * scale


def _row_sum(samples, rows, weights):
    X = samples.X if rows is None else samples.X[rows]
    return np.einsum("n,n...->...", weights, X)


def test_reduce_rows_split_and_concat(dask_client):
    m = tiny_models()["mlp"]
    X, Y = tiny_data(m, n=13)
    here, there = Samples(m, X, Y), ShardedSamples(dask_client, m, X, Y)
    try:
        assert there.shards == 2 and there.num_samples == 13
        for rows in (None, slice(2, 11), slice(0, 13, 3), np.array([0, 5, 6, 7, 12])):
            n = len(range(13)) if rows is None else len(np.arange(13)[rows])
            ids = there.reduce(_rows_seen, 2.0, rows=rows, concat=True)
            assert ids.tolist() == (2.0 * np.arange(13)[slice(None) if rows is None else rows]).tolist()
            w = np.linspace(1.0, 2.0, n)
            assert close(there.reduce(_row_sum, w, rows=rows, split=(0,)), here.reduce(_row_sum, w, rows=rows,
                                                                                      split=(0,)))
        assert close(there.scores(), here.scores())
    finally:
        there.close()


# --------------------------------------------------------------------------- the exact loss
@pytest.mark.parametrize("name", ["mlp", "poly", "poly2"])
def test_sharded_loss_equals_exact_loss(dask_client, name):
    m = tiny_models()[name]
    X, Y = tiny_data(m, n=17, seed=3)
    rng = np.random.default_rng(0)
    ref = Restriction(m.copy(), X, Y, ridge=0.3)
    sh = ShardedLoss(dask_client, m.copy(), X, Y, ridge=0.3)
    try:
        assert close(sh.value, ref.value) and close(sh.output, ref.output) and close(sh.residual, ref.residual)
        for _ in range(3):  # line searches along random directions: same polynomials, same steps
            d = rng.standard_normal(m.num_params)
            assert close(sh.restrict(d), ref.restrict(d))
            a, b = ref.line_minimize(d), sh.line_minimize(d)
            assert a.accepted == b.accepted and close(b.t, a.t) and close(b.after, a.after)
        assert close(sh.model.get_flat(), ref.model.get_flat())
        assert close(sh.value, ref.value)  # the deferred cache updates ran on the shards
        # derivatives: sums over shards, and per-sample results in row order
        assert close(gradient(sh), gradient(ref))
        v = rng.standard_normal(m.num_params)
        assert close(jvp(sh, v), jvp(ref, v))
        U = rng.standard_normal((len(X), m.num_outputs))
        assert close(vjp(sh, U), vjp(ref, U))
        rows = np.array([1, 2, 9, 15])
        assert close(vjp(sh, U[rows], rows=rows), vjp(ref, U[rows], rows=rows))
        assert close(jtj_product(sh, v, rows=rows), jtj_product(ref, v, rows=rows))
        layers = [li for li in param_layers(m) if li != len(m.layers) - 1] or param_layers(m)
        ka = kronecker_factors(ref, layers, rng=np.random.default_rng(1))
        kb = kronecker_factors(sh, layers, rng=np.random.default_rng(1))
        g = rng.standard_normal(sum(m.layers[layers[0]].params[k].size for k in m.layers[layers[0]].params))
        assert close(kb[layers[0]].solve(g, 0.1), ka[layers[0]].solve(g, 0.1), 1e-10)
        # the readout: Gram matrices summed over shards, one solve here
        assert close(sh.solve_readout(), ref.solve_readout(), 1e-10)
        assert close(sh.model.get_flat(), ref.model.get_flat(), 1e-10) and close(sh.value, ref.value, 1e-10)
        sh.refresh()
        assert close(sh.value, ref.value, 1e-10)
    finally:
        sh.close()


def test_shards_live_in_the_worker_processes(dask_client):
    m = tiny_models()["poly"]
    X, Y = tiny_data(m, n=10)
    sh = ShardedLoss(dask_client, m, X, Y)
    try:
        where = sh.where()
        assert len({w["pid"] for w in where}) == 2 and os.getpid() not in {w["pid"] for w in where}
        assert [w["rows"] for w in where] == [(0, 5), (5, 10)] and all(w["bytes"] > 0 for w in where)
    finally:
        sh.close()


# --------------------------------------------------------------------------- faults
def test_a_killed_worker_is_rebuilt_from_the_clients_parameters(fresh_cluster):
    _, client = fresh_cluster
    m = tiny_models()["poly"]
    X, Y = tiny_data(m, n=16, seed=5)
    rng = np.random.default_rng(2)
    ref = Restriction(m.copy(), X, Y, ridge=0.1)
    sh = ShardedLoss(client, m.copy(), X, Y, ridge=0.1)
    try:
        d = rng.standard_normal(m.num_params)
        ref.line_minimize(d)
        sh.line_minimize(d)  # its cache update is deferred: it dies with the worker and is not lost
        os.kill(sh.where()[0]["pid"], signal.SIGKILL)
        d = rng.standard_normal(m.num_params)
        a, b = ref.line_minimize(d), sh.line_minimize(d)
        assert sh._rebuilds == 1
        assert close(b.after, a.after) and close(sh.model.get_flat(), ref.model.get_flat())
        assert close(sh.value, ref.value) and close(sh.output, ref.output)
    finally:
        sh.close()


def test_a_killed_worker_stops_the_run_when_recovery_is_off(fresh_cluster):
    _, client = fresh_cluster
    m = tiny_models()["mlp"]
    X, Y = tiny_data(m, n=8)
    sh = ShardedLoss(client, m, X, Y, recover=False)
    try:
        os.kill(sh.where()[1]["pid"], signal.SIGKILL)
        with pytest.raises(ClusterError, match="was lost.*checkpoint is intact"):
            sh.restrict(np.ones(m.num_params))
    finally:
        sh.close()


def test_shards_made_on_the_workers_from_a_source(dask_client):
    """A source(lo, hi) makes each shard's rows on its worker; the loss is the one of the same rows here."""
    from symnet.core.datasets import DistortedImages

    m = tiny_models()["poly"]  # input (1, 6, 6)
    base = np.random.default_rng(0).random((4, 1, 6, 6))
    source = DistortedImages(base, np.array([0, 1, 0, 1]), num_classes=2, seed=3, shift=1, alpha=2.0, sigma=1.0)
    X, Y = source(0, 21)
    ref = Restriction(m.copy(), X, Y, ridge=0.2)
    sh = ShardedLoss(dask_client, m.copy(), source=source, num_samples=21, ridge=0.2)
    try:
        assert sh.X is None and close(sh.value, ref.value)
        d = np.random.default_rng(1).standard_normal(m.num_params)
        assert close(sh.restrict(d), ref.restrict(d))
    finally:
        sh.close()


class _LostOnTheWay:
    """A shard's future whose worker died while it built the shard (as Dask reports it)."""

    def result(self):
        import concurrent.futures

        raise concurrent.futures.CancelledError("symnet-shard-0 cancelled for reason: already forgotten")

    def release(self):
        pass


def test_a_worker_lost_while_it_rebuilds_a_shard_costs_one_more_rebuild(fresh_cluster, monkeypatch):
    _, client = fresh_cluster
    m = tiny_models()["mlp"]
    X, Y = tiny_data(m, n=12, seed=2)
    ref = Restriction(m.copy(), X, Y, ridge=0.1)
    sh = ShardedLoss(client, m.copy(), X, Y, ridge=0.1)
    try:
        start, calls = ShardedLoss._start, []

        def flaky_start(self, s, worker):
            calls.append(worker)
            return _LostOnTheWay() if len(calls) == 1 else start(self, s, worker)

        monkeypatch.setattr(ShardedLoss, "_start", flaky_start)
        os.kill(sh.where()[0]["pid"], signal.SIGKILL)
        d = np.ones(m.num_params)
        assert close(sh.restrict(d), ref.restrict(d))
        assert sh._rebuilds == 2 and len(calls) == 2
        monkeypatch.setattr(ShardedLoss, "max_rebuilds", 2)  # no rebuild left: the next loss stops the run
        os.kill(sh.where()[1]["pid"], signal.SIGKILL)
        with pytest.raises(ClusterError, match="stopped after 2 rebuild"):
            sh.restrict(d)
    finally:
        sh.close()
