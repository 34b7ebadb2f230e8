"""Dask clusters for ``--workers N`` and ``--scheduler ADDRESS``: where a run's sums over samples go.

``symnet train|compare|bench ... --workers N`` starts a ``distributed.LocalCluster``
of N worker processes on this machine for the command and closes it at the end;
``--scheduler ADDRESS`` connects to a cluster that is already running (started by
``dask scheduler`` / ``dask worker``, dask-jobqueue or dask-kubernetes) and leaves
it running. From Python, pass a ``distributed.Client`` to
:func:`symnet.fit` (``client=...``); symnet never closes a client it was given.

The backends whose work is a sum over the training samples (``coordinate``,
``gauss-newton``, ``lbfgs``, ``cg``, ``polyreg``) then keep the samples and their
caches in shards on the workers (:mod:`symnet.core.sharded`); the others run in
this process and say so. Without these flags nothing changes, and Dask is not
even imported: it is an optional extra (``pip install 'symnet[dask]'``).

Example:
    >>> with session() as client:   # no flags: no cluster, and no import of dask
    ...     client is None
    True
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Iterator

from symnet.core.errors import ClusterError

#: Seconds to wait for the workers of a new local cluster.
CONNECT_TIMEOUT = 30.0
#: Seconds to wait for a scheduler given by address before giving up with one line.
SCHEDULER_TIMEOUT = 20.0


def _distributed():
    """``import distributed``, or a ClusterError that says how to get it."""
    try:
        import distributed
    except ImportError:
        raise ClusterError("running on a Dask cluster needs the dask extra: pip install 'symnet[dask]' "
                           "(dask[distributed])") from None
    return distributed


def dask_config():
    """``dask.config`` (the dask extra is there once :func:`_distributed` succeeded)."""
    import dask.config

    return dask.config


def local_cluster(workers: int, *, threads: int | None = None, dashboard: str | None = ":0"):
    """A ``LocalCluster`` of ``workers`` processes sharing this machine's cores (the caller closes it).

    Each worker gets ``threads`` threads (default: the cores divided among the
    workers) and the same number of BLAS and numba threads, so that N workers do
    not oversubscribe the machine. ``dashboard`` is the dashboard's address
    (``":0"``: any free port; None: no dashboard).
    """
    distributed = _distributed()
    if workers < 1:
        raise ClusterError(f"--workers must be at least 1, got {workers}")
    cores = os.cpu_count() or 1
    threads = max(1, cores // workers) if threads is None else int(threads)
    env = {key: str(threads) for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                           "NUMBA_NUM_THREADS")}
    # set before a worker process starts (BLAS reads them when numpy loads it; Dask's default is 1 thread)
    spawn_env = {**dask_config().get("distributed.nanny.pre-spawn-environ", default={}), **env}
    # the nannies write these into this process's environment to pass them on: this process keeps its own
    kept = {key: os.environ.get(key) for key in spawn_env}
    try:
        with dask_config().set({"distributed.nanny.pre-spawn-environ": spawn_env}):
            return distributed.LocalCluster(n_workers=int(workers), threads_per_worker=threads, processes=True,
                                            dashboard_address=dashboard)
    except (OSError, RuntimeError) as exc:
        raise ClusterError(f"could not start a local Dask cluster of {workers} workers: {exc}") from None
    finally:
        for key, value in kept.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


#: What the probe of :func:`connect` runs in a child process: a client of the address, closed at once.
_PROBE = ("import sys\n"
          "from distributed import Client\n"
          "Client(sys.argv[1], timeout=float(sys.argv[2]), set_as_default=False).close()\n")


def connect(address: str, *, timeout: float | None = None):
    """A ``Client`` of the scheduler at ``address`` (``tcp://host:8786``), or a ClusterError (the caller closes it).

    The address is first probed by a client in a child process, killed after ``timeout`` seconds (default
    :data:`SCHEDULER_TIMEOUT`): a service that is not a Dask scheduler (a web server, say) can leave
    ``distributed.Client`` waiting forever for a handshake, or reading its reply as a frame length of
    exabytes, and a client stuck like that in this process would hold Dask's global state. Either way the
    user gets one line, in bounded time.
    """
    distributed = _distributed()
    timeout = SCHEDULER_TIMEOUT if timeout is None else float(timeout)
    advice = "start one with `dask scheduler` and workers with `dask worker ADDRESS`, or use --workers N"
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE, str(address), str(0.75 * timeout)],
                               capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"no Dask scheduler answered at {address!r} within {timeout:g} s: is the address a "
                           f"Dask scheduler's (port 8786 by default, not its dashboard's)? {advice}") from None
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise ClusterError(f"cannot reach the Dask scheduler at {address!r}: {last[:200]}; {advice}")
    try:
        return distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address!r} ({exc}); {advice}") from None


@contextlib.contextmanager
def session(workers: int | None = None, scheduler: str | None = None, *, say=None) -> Iterator:
    """The ``Client`` of ``--workers N`` (a new local cluster) or ``--scheduler ADDRESS``; None without either.

    What this function started is closed when the block ends; a cluster reached by
    address keeps running. ``say(text)`` reports where the dashboard is.
    """
    if workers is None and scheduler is None:
        yield None
        return
    if workers is not None and scheduler is not None:
        raise ClusterError("give --workers N (a local cluster) or --scheduler ADDRESS (a running one), not both")
    cluster = None
    if scheduler is not None:
        client = connect(scheduler)
    else:
        cluster = local_cluster(workers)
        client = _distributed().Client(cluster)
    try:
        if say is not None:
            count = len(client.scheduler_info(n_workers=-1)["workers"])
            where = f"a local Dask cluster of {count} worker processes" if cluster is not None else \
                f"the Dask cluster at {scheduler} ({count} workers)"
            link = getattr(client, "dashboard_link", None)
            say(f"running on {where}" + (f"; dashboard: {link}" if link else ""))
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def scheduler_address(client) -> str | None:
    """The address a fresh process connects to, to use the same cluster as ``client`` (None without one)."""
    return None if client is None else client.scheduler.address


__all__ = ["CONNECT_TIMEOUT", "SCHEDULER_TIMEOUT", "connect", "local_cluster", "scheduler_address", "session"]
