"""Run symnet the way a hostile user would and write what it answers to docs/trials.md.

Every trial is a command line (run as a real process) or a few lines of Python; the table records the exit
code and the first line of stderr (or of the exception). Run from the repository's root:

    python tools/trials.py                # prints the table
    python tools/trials.py --write        # and writes docs/trials.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
SMALL = ["--samples", "300", "--test-samples", "50", "--quiet"]

# (area, what the user tries, argv or python source); {tmp} is a fresh folder, {run} a finished xor run.
TRIALS = [
    ("flags", "unknown solver", ["train", "--solver", "nope"]),
    ("flags", "time limit that is not a number", ["train", "--time-limit", "abc"]),
    ("flags", "negative sample count", ["train", "--samples", "-5"]),
    ("flags", "two budgets at once", ["train", "--sweeps", "1", "--steps", "2"]),
    ("flags", "an epoch budget for a sweep solver", ["train", "--epochs", "2"]),
    ("flags", "option the solver lacks", ["train", "--solver", "adam", "-O", "momentum=0.9"]),
    ("flags", "learning rate 0 by -O", ["train", "--solver", "adam", "-O", "lr=0", *SMALL]),
    ("flags", "learning rate 0 by --lr", ["train", "--solver", "adam", "--lr", "0"]),
    ("flags", "infinite ridge", ["train", "--ridge", "inf", *SMALL]),
    ("flags", "polyreg window 'abc'", ["train", "--solver", "polyreg", "--window", "abc", *SMALL]),
    ("flags", "polyreg window 'true'", ["train", "--solver", "polyreg", "--window", "true", *SMALL]),
    ("flags", "polyreg degree 9", ["train", "--solver", "polyreg", "--degree", "9", *SMALL]),
    ("flags", "kernel larger than the image allows", ["train", "--kernel", "28", *SMALL]),
    ("flags", "unknown model preset", ["train", "--model", "huge"]),
    ("flags", "certificates for a gradient solver", ["train", "--solver", "adam", "--certificates", *SMALL]),
    ("data", "--data-dir that does not exist", ["train", "--data-dir", "{tmp}/nowhere", "--sweeps", "1"]),
    ("data", "--data-dir with full MNIST, no --dataset", ["train", "--data-dir", str(MNIST), "--model", "seed",
                                                          "--sweeps", "1", *SMALL, "--out", "{tmp}/mnist"]),
    ("data", "--data-dir with the bundled subset", ["train", "--dataset", "mnist-small", "--data-dir", str(MNIST)]),
    ("data", "MNIST files asked for as Fashion-MNIST", ["train", "--dataset", "fashion-mnist", "--data-dir",
                                                         str(MNIST), "--sweeps", "1"]),
    ("data", "unknown dataset", ["train", "--dataset", "cifar"]),
    ("data", "NaN written into a dataset (Python)", "import numpy as np, symnet\n"
                                                    "d = symnet.datasets.xor()\n"
                                                    "x = np.array(d.x_train); x[1, 0] = np.nan\n"
                                                    "d = symnet.datasets.Dataset('xor', x, d.y_train, d.x_test, "
                                                    "d.y_test, 2)\nsymnet.fit('mlp', d, 'adam', steps=1, "
                                                    "quiet=True)"),
    ("run folders", "run again into a finished run's folder", ["train", "--dataset", "xor", "--sweeps", "1",
                                                                "--quiet", "--out", "{run}"]),
    ("run folders", "the same with --overwrite", ["train", "--dataset", "xor", "--sweeps", "1", "--quiet",
                                                  "--out", "{run}", "--overwrite"]),
    ("run folders", "--resume and --overwrite together", ["train", "--dataset", "xor", "--resume", "--overwrite",
                                                          "--out", "{run}"]),
    ("run folders", "--out is a file", ["train", "--dataset", "xor", "--out", "{tmp}/file.txt"]),
    ("resume", "--resume without --out", ["train", "--resume"]),
    ("resume", "--resume with nothing to resume", ["train", "--dataset", "xor", "--resume", "--out", "{tmp}/new"]),
    ("resume", "--resume with another ridge and sample count", ["train", "--dataset", "xor", "--sweeps", "2",
                                                                 "--ridge", "50", "--samples", "3", "--quiet",
                                                                 "--resume", "--out", "{run}"]),
    ("resume", "--resume with another seed", ["train", "--dataset", "xor", "--sweeps", "2", "--seed", "3",
                                              "--quiet", "--resume", "--out", "{run}"]),
    ("resume", "--resume with the same settings", ["train", "--dataset", "xor", "--sweeps", "2", "--quiet",
                                                   "--resume", "--out", "{run}"]),
    ("--init", "--init of a .npz without its .json", ["train", "--dataset", "xor", "--init", "{tmp}/lonely.npz",
                                                      "--sweeps", "1"]),
    ("--init", "--init of a garbage .npz", ["train", "--dataset", "xor", "--init", "{tmp}/bad/model.npz",
                                            "--sweeps", "1"]),
    ("--init", "--init with --model", ["train", "--init", "{run}", "--model", "poly"]),
    ("--init", "inspect a checkpoint", ["inspect", "{run}/checkpoint.npz"]),
    ("signals", "Ctrl-C inside a coordinate sweep", "SIGINT:coordinate"),
    ("signals", "Ctrl-C during Adam", "SIGINT:adam"),
    ("signals", "Ctrl-C during Gauss-Newton", "SIGINT:gauss-newton"),
    ("budgets", "polyreg with one step on 300 images", ["train", "--solver", "polyreg", "--steps", "1", "--window",
                                                        "2", *SMALL, "--out", "{tmp}/p1"]),
    ("budgets", "polyreg with a time limit", ["train", "--solver", "polyreg", "--time-limit", "5", "--window", "2",
                                              *SMALL, "--out", "{tmp}/p2"]),
    ("budgets", "polyreg on 500 images in 20 s (fewer images than features: the dual form)",
     ["train", "--solver", "polyreg", "--samples", "500", "--test-samples", "50", "--time-limit", "20", "--quiet",
      "--out", "{tmp}/p3"]),
    ("budgets", "polyreg with a time limit of a microsecond", ["train", "--solver", "polyreg", "--time-limit",
                                                             "0.000001", *SMALL, "--out", "{tmp}/p4"]),
    ("budgets", "zero sweeps", ["train", "--dataset", "xor", "--sweeps", "0", "--quiet", "--out", "{tmp}/z"]),
    ("verify", "verify a run without certificates", ["verify", "{run}"]),
    ("Python API", "an option the solver lacks", "import symnet\nsymnet.fit('mlp', 'xor', 'coordinate', lr=1)"),
    ("Python API", "resume without a folder", "import symnet\nsymnet.fit('mlp', 'xor', 'coordinate', resume=True)"),
    ("Python API", "save a model with an unregistered layer",
     "import symnet\nclass Half(symnet.layers.Layer):\n    def forward(self, x):\n        return 0.5 * x\n"
     "m = symnet.Sequential(Half(), symnet.Linear(2, 2), input_shape=(2,))\nsymnet.save(m, '{tmp}/m')"),
]


def prepare(tmp: Path, env: dict) -> Path:
    run = tmp / "run"
    subprocess.run([sys.executable, "-m", "symnet", "train", "--dataset", "xor", "--sweeps", "1", "--quiet",
                    "--out", str(run)], env=env, check=True, capture_output=True)
    (tmp / "file.txt").write_text("not a folder")
    shutil.copy(run / "model.npz", tmp / "lonely.npz")
    (tmp / "bad").mkdir()
    (tmp / "bad" / "model.npz").write_bytes(b"garbage")
    shutil.copy(run / "model.json", tmp / "bad" / "model.json")
    return run


def interrupt(solver: str, tmp: Path, env: dict) -> tuple[int, str]:
    out = tmp / f"sig-{solver}"
    budget = ["--sweeps", "50"] if solver == "coordinate" else ["--steps", "500"]
    proc = subprocess.Popen([sys.executable, "-m", "symnet", "train", "--solver", solver, "--samples", "1500",
                             *budget, "--quiet", "--out", str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    while not (out / "checkpoint.npz").exists() and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write docs/trials.md")
    args = parser.parse_args()
    env = dict(os.environ, CI="1", PYTHONPATH=str(ROOT))
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        run = prepare(tmp, env)
        for area, what, trial in TRIALS:
            if isinstance(trial, str) and trial.startswith("SIGINT:"):
                code, err = interrupt(trial.split(":")[1], tmp, env)
                shown = "kill -INT after the first checkpoint"
                message = first_line(err)
            elif isinstance(trial, str):
                source = trial.replace("{tmp}", str(tmp))
                proc = subprocess.run([sys.executable, "-c", source], env=env, capture_output=True, text=True)
                code, message = proc.returncode, first_line(proc.stderr)
                shown = "; ".join(line for line in trial.splitlines()[1:] if "import" not in line)
            else:
                argv = [a.replace("{tmp}", str(tmp)).replace("{run}", str(run)) for a in trial]
                proc = subprocess.run([sys.executable, "-m", "symnet", *argv], env=env, capture_output=True,
                                      text=True)
                code = proc.returncode
                message = first_line(proc.stderr) or first_line(proc.stdout)
                shown = "symnet " + " ".join(trial)
            message = message.replace(str(tmp), "TMP").replace(str(ROOT.parent), "..")
            shown = shown.replace(str(ROOT.parent), "..")  # the docs name no machine's folders
            rows.append((area, what, shown, code, message))
            print(f"{code:>4}  {what}: {message[:150]}", flush=True)
    if args.write:
        lines = ["# Trials: what symnet answers to bad input and interruptions", "",
                 f"Written by `python tools/trials.py --write` on {time.strftime('%Y-%m-%d')}; every row ran as a "
                 "real process. Exit codes: 0 success, 1 `verify` found a violation or a Python exception, 2 bad "
                 "input (one line `symnet: error: ...`), 130 interrupted. TMP is a scratch folder, `{run}` a "
                 "finished one-sweep xor run.", "",
                 "| area | trial | input | exit | what it says |", "|---|---|---|---:|---|"]
        for area, what, shown, code, message in rows:
            cell = message.replace("|", "\\|")
            lines.append(f"| {area} | {what} | `{shown.replace('|', '/')}` | {code} | {cell} |")
        (ROOT / "docs" / "trials.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
