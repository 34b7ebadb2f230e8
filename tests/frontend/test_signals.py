"""Ctrl-C for real: SIGINT to a real `symnet train` process of each solver family, wherever it lands.

The signal often arrives while a compiled (numba) kernel runs, where Python turns it into a SystemError;
the run must still end with exit code 130, one line on stderr, and its last checkpoint intact.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import symnet

REPO = Path(__file__).resolve().parents[2]

# (solver, budget flags, seconds to wait after the first checkpoint before the signal)
FAMILIES = [
    ("coordinate", ["--sweeps", "50"], 0.4),
    ("adam", ["--epochs", "200"], 0.3),
    ("gauss-newton", ["--steps", "500"], 0.2),
    ("polyreg", ["--method", "bagging", "-O", "batches=500", "-O", "batch_size=300"], 0.2),
]


def start(out: Path, solver: str, budget: list[str]) -> subprocess.Popen:
    env = dict(os.environ, CI="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "symnet", "train", "--solver", solver, "--samples", "1500", "--test-samples",
           "200", "--channels", "4", *budget, "--out", str(out)]
    # Ctrl-C in a terminal: SIGINT at its default disposition in the child, even when this test runs in a
    # background job (nohup ... &), whose children inherit SIGINT ignored and would never see the signal
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 180.0) -> None:
    end = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before its first checkpoint: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("no checkpoint within the time allowed")
        time.sleep(0.05)


@pytest.mark.parametrize("solver,budget,delay", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_sigint_exits_130_and_keeps_the_last_checkpoint(tmp_path, solver, budget, delay):
    out = tmp_path / "run"
    proc = start(out, solver, budget)
    wait_for(out / "checkpoint.npz", proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "SystemError" not in stderr
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert last.startswith("symnet: interrupted; the last checkpoint is kept in"), stderr
    model = symnet.load(out)  # the run's folder without model.npz: the model of its last checkpoint
    assert np.all(np.isfinite(model.get_flat()))


def test_an_interrupted_run_resumes(tmp_path):
    out = tmp_path / "run"
    proc = start(out, "coordinate", ["--sweeps", "50"])
    wait_for(out / "checkpoint.npz", proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    done = len(symnet.core.files.read_json(out / "history.json")["records"]) if (out / "history.json").exists() else 0
    assert done == 0  # an interrupted run writes no final files, only its checkpoints
    again = start(out, "coordinate", ["--sweeps", "2", "--resume"])
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    records = symnet.core.files.read_json(out / "history.json")["records"]
    assert records[-1]["step"] >= 2


def test_sigterm_exits_143_keeps_the_last_checkpoint_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    proc = start(out, "coordinate", ["--sweeps", "50"])
    wait_for(out / "checkpoint.npz", proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert last.startswith("symnet: terminated (SIGTERM); the last checkpoint is kept in"), stderr
    assert "--resume" in last
    assert np.all(np.isfinite(symnet.load(out).get_flat()))
