"""--workers N and --scheduler ADDRESS: one-line errors, the same results as without a cluster, no Dask without them."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symnet.core.errors import ClusterError
from symnet.core.model.saving import load_model
from symnet.frontend import cluster

from cli_run import one_line_error, run

pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--dataset", "mnist-small", "--samples", "120", "--test-samples", "50", "--model", "poly", "--channels", "2",
         "--kernel", "3", "--quiet"]


def test_without_flags_dask_is_never_imported(tmp_path):
    script = f"""
import sys
import symnet
from symnet.frontend import cli
symnet.fit("mlp", "xor", "coordinate", steps=1, quiet=True)
symnet.fit("mlp", "xor", "gauss-newton", steps=1, quiet=True)
symnet.train(None, "xor", "polyreg", quiet=True, degree=2, window=None, ridge=1.0)
assert cli.main(["train", "--dataset", "xor", "--sweeps", "1", "--quiet", "--out", {str(tmp_path / 'run')!r}]) == 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
print("LOADED", loaded)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO), "CI": "true"}, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout


def test_session_without_flags_is_none_and_refuses_both():
    with cluster.session() as client:
        assert client is None
    with pytest.raises(ClusterError, match="not both"):
        with cluster.session(2, "tcp://somewhere:8786"):
            pass


def test_cluster_flags_errors_are_one_line(capsys, monkeypatch):
    code, _, err = run(capsys, "train", "--workers", "0", *SMALL)
    one_line_error(code, err, "--workers", "positive whole number")
    code, _, err = run(capsys, "train", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9", "--sweeps", "1",
                       *SMALL)
    one_line_error(code, err, "not both")
    monkeypatch.setattr(cluster, "SCHEDULER_TIMEOUT", 2.0)
    code, _, err = run(capsys, "bench", "coordinate", "--scheduler", "tcp://127.0.0.1:9", "--sweeps", "1", *SMALL)
    one_line_error(code, err, "cannot reach the Dask scheduler", "tcp://127.0.0.1:9")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the dask extra were not installed
    code, _, err = run(capsys, "compare", "--solvers", "coordinate", "--workers", "2", "--sweeps", "1", *SMALL)
    one_line_error(code, err, "pip install 'symnet[dask]'")


def test_a_service_that_is_not_dask_fails_with_one_line(monkeypatch):
    # a web server at the scheduler's address: distributed.Client would wait for a handshake forever (or read
    # the reply as a frame length of exabytes); connect gives up after its timeout with one line instead
    import http.server
    import threading

    pytest.importorskip("distributed")
    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # the refused handshake is expected; keep the test's output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ClusterError, match="Dask scheduler") as info:
            cluster.connect(f"tcp://127.0.0.1:{server.server_address[1]}", timeout=2.0)
        assert "\n" not in str(info.value)
    finally:
        server.shutdown()


def test_train_on_a_local_cluster_equals_the_run_without(capsys, tmp_path):
    # channel blocks run in one process; the per-coordinate sweep is the coordinate solver's sharded form
    code, _, _ = run(capsys, "train", "--sweeps", "2", *SMALL, "-O", "blocks=coordinate", "--out", tmp_path / "here")
    assert code == 0
    code, out, _ = run(capsys, "train", "--sweeps", "2", *SMALL, "-O", "blocks=coordinate", "--out", tmp_path / "there",
                       "--workers", "2")
    assert code == 0 and "local Dask cluster of 2 worker processes" in out and "dashboard" in out
    a = load_model(tmp_path / "here" / "model.npz").get_flat()
    b = load_model(tmp_path / "there" / "model.npz").get_flat()
    assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(a))


def test_resume_moves_between_no_cluster_and_a_cluster(capsys, tmp_path, dask_client):
    address = dask_client.scheduler.address
    code, _, _ = run(capsys, "train", "--solver", "gauss-newton", "--steps", "3", *SMALL, "--out", tmp_path / "whole")
    assert code == 0
    code, _, _ = run(capsys, "train", "--solver", "gauss-newton", "--steps", "1", *SMALL, "--out", tmp_path / "cut")
    assert code == 0
    code, out, _ = run(capsys, "train", "--solver", "gauss-newton", "--steps", "3", *SMALL, "--out", tmp_path / "cut",
                       "--resume", "--scheduler", address)
    assert code == 0 and f"the Dask cluster at {address}" in out
    a = load_model(tmp_path / "whole" / "model.npz").get_flat()
    b = load_model(tmp_path / "cut" / "model.npz").get_flat()
    assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(a))
    assert dask_client.status == "running"  # a cluster reached by address keeps running


def test_bench_and_compare_on_a_running_cluster(capsys, tmp_path, dask_client):
    address = dask_client.scheduler.address
    code, out, _ = run(capsys, "bench", "coordinate", "lbfgs", "--sweeps", "1", "--steps", "2", *SMALL, "--json",
                         "-O", "blocks=coordinate")
    assert code == 0
    here = {r["solver"]: r["loss"] for r in json.loads(out)}
    steps = {r["solver"]: r["steps"] for r in json.loads(out)}
    code, out, _ = run(capsys, "bench", "coordinate", "lbfgs", "--sweeps", "1", "--steps", "2", *SMALL, "--json",
                       "-O", "blocks=coordinate", "--scheduler", address)
    assert code == 0
    there = {r["solver"]: r["loss"] for r in json.loads(out)}
    assert here.keys() == there.keys() and all(abs(here[k] - there[k]) <= 1e-10 * here[k] for k in here)
    # compare runs each solver in a fresh process, which connects to the same scheduler
    code, out, _ = run(capsys, "compare", "--solvers", "coordinate", "--sweeps", "1", "--steps", "2", *SMALL,
                       "-O", "coordinate.blocks=coordinate", "--scheduler", address, "--out", tmp_path / "cmp")
    assert code == 0, out
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]
    assert rows[0]["steps"] == steps["coordinate"]
    assert abs(rows[0]["loss"] - here["coordinate"]) <= 1e-10 * here["coordinate"]
