"""Measure the coordinate solver in one process and on a local Dask cluster: memory, time per phase, round trips.

One configuration per run (a fresh process, so that its peak memory is its own)::

    python tools/cluster_bench.py --workers 0 --json runs/cluster/w0.json   # in this process
    python tools/cluster_bench.py --workers 2 --json runs/cluster/w2.json   # 2 worker processes

It trains ``poly`` (16 filters 5x5, 23,466 parameters) on full MNIST for one
sweep of the coordinate solver, cut to ``--conv`` conv coordinates so that every
configuration does the same work: the last layer's Gauss-Seidel run (23,050
coordinates: one Gram matrix per shard on a cluster), ``--conv`` conv
coordinates (one round trip each on a cluster), the per-channel rescale and
refresh, the last layer's block solve and the extrapolation. It reports the
seconds of each phase, the round trip of an empty message to every shard, the
peak resident memory of this process and of every worker, and the load
average. ``--source distorted`` makes the training images on the workers from
MNIST by random shifts and elastic distortions (:class:`DistortedImages`), so
that ``--samples`` may exceed 60,000. ``python tools/cluster_bench.py predict RUN.json --machines 10
--samples 1000000`` applies the cost model (:func:`predict`) to a measured cluster run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symnet.core import datasets
from symnet.core.model import presets as models  # noqa: E402
from symnet.core.datasets import Dataset, DistortedImages  # noqa: E402
from symnet.solvers.coordinate import CoordinateSolver  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _noop(samples, rows):
    return None


class TimedCoordinate(CoordinateSolver):
    """The coordinate solver with a clock on each phase and the conv runs cut to their first ``conv`` coordinates."""

    conv = 64

    def _setup(self, model, data, rng):
        t0 = time.perf_counter()
        super()._setup(model, data, rng)
        self.phases_ = {"setup": time.perf_counter() - t0}
        self.counts_ = {}

    def _sweep_run(self, li, kind, coords):
        if kind != "linear-last":
            coords = coords[:self.conv]
        t0 = time.perf_counter()
        out = super()._sweep_run(li, kind, coords)
        self.phases_[kind] = self.phases_.get(kind, 0.0) + time.perf_counter() - t0
        self.counts_[kind] = self.counts_.get(kind, 0) + len(coords)
        return out

    def _step(self):
        t0 = time.perf_counter()
        out = super()._step()
        runs = sum(v for k, v in self.phases_.items() if k != "setup")
        self.phases_["rescale, refresh, block solve, extrapolation"] = time.perf_counter() - t0 - runs
        loss = self.loss_
        if not loss.local:  # the round trip of an empty message to every shard
            loss.flush()
            times = []
            for _ in range(30):
                t1 = time.perf_counter()
                loss.reduce(_noop)
                times.append(time.perf_counter() - t1)
            self.round_trip_ = float(np.median(times))
            self.shards_ = loss.where()
        return out


def predict(measured: dict, *, machines: int, workers_per_machine: int, samples: int, bandwidth: float,
            round_trip: float, conv_coordinates: int, features: int) -> dict:
    """The cost model: what one sweep of ``poly`` costs on ``machines`` machines like the measuring one.

    Per worker, every phase's compute is proportional to its shard's rows ``n``: the
    seconds per row of each phase (``measured``: a run of this tool on a cluster, its
    largest shard) times ``n``. Communication: one round trip ``round_trip`` per conv
    coordinate, and every Gram matrix of the last layer ((F + 1)^2 float64 per worker,
    twice per sweep: the Gauss-Seidel run and the block solve) through the client's
    link at ``bandwidth`` bytes per second. Memory per worker: the measured peak bytes
    per row times ``n``, plus the measured base of a worker.
    """
    W = machines * workers_per_machine
    n = -(-samples // W)
    rows = max(hi - lo for lo, hi in (s["rows"] for s in measured["shards"]))
    phases = measured["phases_s"]
    per_row = {k: v / rows for k, v in phases.items()}
    conv_per_row = per_row["conv-chain"] / measured["counts"]["conv-chain"]
    gram_bytes = 8.0 * (features + 1) ** 2
    compute = {
        "setup": per_row["setup"] * n,
        "last layer run": per_row["linear-last"] * n,
        "conv coordinates": conv_per_row * n * conv_coordinates,
        "rescale, refresh, block solve, extrapolation": per_row["rescale, refresh, block solve, extrapolation"] * n,
    }
    communication = {
        "conv round trips": conv_coordinates * round_trip,
        "Gram matrices to the client": 2 * W * gram_bytes / bandwidth,
    }
    peak = max(measured["worker_peak_mb"])
    base_mb = 150.0  # a worker with symnet imported and nothing held (measured: 140-160 MB)
    per_row_mb = (peak - base_mb) / rows
    sweep = sum(compute.values()) - compute["setup"] + sum(communication.values())
    return {"machines": machines, "workers": W, "samples": samples, "rows_per_worker": n,
            "compute_s": compute, "communication_s": communication, "sweep_s": sweep,
            "setup_s": compute["setup"], "worker_peak_gb": (base_mb + per_row_mb * n) / 1024.0,
            "client_inputs_gb": samples * 784 * 8 / 2**30}


def main(argv=None) -> int:
    if argv is None and sys.argv[1:2] == ["predict"]:
        q = argparse.ArgumentParser(description="the cost model's prediction from a measured cluster run")
        q.add_argument("measured", help="the --json of a run with --workers >= 1")
        q.add_argument("--machines", type=int, default=10)
        q.add_argument("--workers-per-machine", type=int, default=2)
        q.add_argument("--samples", type=int, default=1_000_000)
        q.add_argument("--bandwidth", type=float, default=1.25e9, help="bytes per second into the client (10 GbE)")
        q.add_argument("--round-trip", type=float, default=None, help="seconds (default: the measured one)")
        a = q.parse_args(sys.argv[2:])
        measured = json.loads(Path(a.measured).read_text())
        out = predict(measured, machines=a.machines, workers_per_machine=a.workers_per_machine, samples=a.samples,
                      bandwidth=a.bandwidth, round_trip=a.round_trip or measured["round_trip_s"],
                      conv_coordinates=416, features=2304)
        print(json.dumps(out, indent=1))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=0, help="0: in this process; N: a LocalCluster of N processes")
    p.add_argument("--samples", type=int, default=60000)
    p.add_argument("--conv", type=int, default=64, help="conv coordinates in the sweep")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--data-dir", default=str(ROOT.parent.parent / "shared" / "data" / "mnist"))
    p.add_argument("--source", choices=("mnist", "distorted"), default="mnist")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    load0 = os.getloadavg()[0]
    t_start = time.perf_counter()
    mnist = datasets.load("mnist", args.data_dir)
    n = args.samples
    if args.source == "distorted":
        base = (mnist.x_train * 255).round().astype(np.uint8)
        source = DistortedImages(base, mnist.y_train, num_classes=10, seed=0)
        X, Y = source(0, n)
        data = Dataset("mnist-distorted", X, Y.argmax(1), mnist.x_test[:1000], mnist.y_test[:1000], 10)
    else:
        data = Dataset("mnist", mnist.x_train[:n], mnist.y_train[:n], mnist.x_test[:1000], mnist.y_test[:1000], 10)
    del mnist
    model = models.get("poly", input_shape=(1, 28, 28), num_classes=10, channels=args.channels, seed=0)
    client = cluster = None
    if args.workers:
        from symnet.frontend.cluster import local_cluster
        from distributed import Client

        cluster = local_cluster(args.workers, dashboard=None)
        client = Client(cluster)
    TimedCoordinate.conv = args.conv
    t0 = time.perf_counter()
    solver = TimedCoordinate(ridge=1.0).fit(model, data, steps=1, quiet=True, client=client, eval_train=False)
    fit_wall = time.perf_counter() - t0
    out = {
        "workers": args.workers, "samples": n, "source": args.source, "channels": args.channels,
        "num_params": model.num_params, "conv_coordinates": args.conv,
        "phases_s": solver.phases_, "counts": solver.counts_,
        "fit_wall_s": fit_wall, "loss": solver.history_.final["loss"], "theta_norm": float(np.linalg.norm(model.get_flat())),
        "theta_head": model.get_flat()[:5].tolist(),
        "client_peak_mb": peak_mb(), "load_before": load0, "load_after": os.getloadavg()[0],
        "cpu_count": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if client is not None:
        out["round_trip_s"] = solver.round_trip_
        out["worker_peak_mb"] = sorted(client.run(peak_mb).values())
        out["shards"] = [{k: v for k, v in s.items() if k != "worker"} for s in solver.shards_]
        client.close()
        cluster.close()
    out["total_wall_s"] = time.perf_counter() - t_start
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
