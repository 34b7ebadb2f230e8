"""The ``symnet`` command line: exit codes, one-line errors, outputs, resume, bench."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symnet.solvers as solvers
import symnet
from symnet.frontend import arguments, cli

from dummy_solvers import DummySolver

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def dummy_solvers(register_solver):
    register_solver("dummy", "dummy_solvers:DummySolver")
    register_solver("dummy-epoch", "dummy_solvers:EpochDummy")


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symnet: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


# --------------------------------------------------------------------------- errors
def test_usage_errors_are_one_line(capsys):
    code, _, err = run(capsys, "train", "--solver", "nope", "--dataset", "xor")
    assert_one_line_error(code, err, "unknown solver 'nope'", "coordinate")
    code, _, err = run(capsys, "train", "--time-limit", "abc")
    assert_one_line_error(code, err, "--time-limit", "'abc'", "number of seconds")
    code, _, err = run(capsys, "train", "--samples", "-5")
    assert_one_line_error(code, err, "--samples", "positive whole number", "'-5'")
    code, _, err = run(capsys, "train", "--sweeps", "1.5")
    assert_one_line_error(code, err, "--sweeps", "whole number")
    code, _, err = run(capsys, "train", "--seed", "-1")
    assert_one_line_error(code, err, "--seed", "whole number >= 0")
    code, _, err = run(capsys, "train", "--option", "ridge")
    assert_one_line_error(code, err, "KEY=VALUE")
    code, _, err = run(capsys, "train", "--model", "huge")
    assert_one_line_error(code, err, "--model", "poly2")
    code, _, err = run(capsys, "frobnicate")
    assert_one_line_error(code, err, "frobnicate")
    code, _, err = run(capsys)
    assert_one_line_error(code, err, "COMMAND")


def test_a_flag_and_an_option_that_disagree_are_refused(capsys):
    # -O used to win silently over --lr, in either order; now the two settings are named and refused
    for argv in (("-O", "lr=1e-3", "--lr", "0.1"), ("--lr", "0.1", "-O", "lr=1e-3")):
        code, _, err = run(capsys, "train", "--solver", "adam", "--dataset", "xor", *argv)
        assert_one_line_error(code, err, "--lr 0.1", "-O lr=0.001", "different values")
    code, _, err = run(capsys, "compare", "--solvers", "adam,sgd", "--dataset", "xor", "--steps", "1",
                       "--lr", "0.1", "-O", "lr=0.2")
    assert_one_line_error(code, err, "--lr 0.1", "-O lr=0.2")
    code, _, err = run(capsys, "bench", "target", "--dataset", "xor", "--ridge", "1", "-O", "ridge=2")
    assert_one_line_error(code, err, "--ridge 1", "-O ridge=2")


def test_help_and_version_exit_zero(capsys):
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--sweeps" in out and "--option" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and symnet.__version__ in out


def test_missing_data_dir_names_the_folders(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    code, _, err = run(capsys, "train", "--dataset", "mnist", "--data-dir", str(missing), "--no-download",
                       "--solver", "dummy", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, f"{missing} (no such folder)", f"{missing / 'mnist'}", "--data-dir")
    assert not (tmp_path / "o").exists()


def test_solver_option_errors_come_from_the_solver(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--batch-size", "4",
                       "--out", str(tmp_path))
    assert_one_line_error(code, err, "solver 'dummy' has no option 'batch_size'", "lr")
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy-epoch", "--sweeps", "2",
                       "--out", str(tmp_path))
    assert_one_line_error(code, err, "--epochs N")
    code, _, err = run(capsys, "train", "--dataset", "xor", "--model", "poly", "--solver", "dummy",
                       "--out", str(tmp_path))
    assert_one_line_error(code, err, "use model 'mlp'")


def test_unwritable_out_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--quiet", "--out",
                       str(blocker / "sub"))
    assert_one_line_error(code, err, str(blocker))


# --------------------------------------------------------------------------- train
def test_train_writes_outputs_and_prints_table(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "train", "--dataset", "mnist-small", "--samples", "200", "--test-samples", "50",
                          "--model", "poly", "--channels", "2", "--kernel", "5", "--solver", "dummy",
                          "--sweeps", "2", "--lr", "0.05", "-O", "flag=true", "--option", "label=xyz",
                          "--quiet", "--out", str(out))
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.npz", "history.json", "model.json", "model.npz", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n_train"], summary["n_test"], summary["steps"]) == (200, 50, 2)
    # Only the options given were passed; the parsed types are bool, str, float.
    assert summary["options"] == {**DummySolver.defaults, "lr": 0.05, "flag": True, "label": "xyz"}
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("solver"))
    assert lines[header].split()[:4] == ["solver", "model", "dataset", "steps"]
    row = lines[header + 2].split()
    assert row[:4] == ["dummy", "poly", "mnist-small", "2"]
    assert float(row[4]) == pytest.approx(summary["loss"], rel=1e-5)
    assert float(row[6]) == pytest.approx(summary["test_acc"], abs=1e-4)
    assert str(out) in lines[-1]
    # The saved model reproduces the trained model's predictions (oracle: forward of the checkpoint params).
    data = symnet.datasets.load("mnist-small").subset(200, 50)
    loaded = symnet.load(out)
    ckpt = np.load(out / "checkpoint.npz")
    twin = symnet.models.get("poly", channels=2, kernel=5)
    twin.set_flat(ckpt["params"])
    np.testing.assert_array_equal(loaded.forward(data.x_test), twin.forward(data.x_test))
    assert np.mean(np.argmax(loaded.forward(data.x_test), 1) == data.y_test) == summary["test_acc"]


def test_resume_continues_the_step_count(capsys, tmp_path):
    common = ["train", "--dataset", "teacher-student", "--solver", "dummy", "--lr", "0.02", "--quiet"]
    assert run(capsys, *common, "--sweeps", "5", "--out", str(tmp_path / "whole"))[0] == 0
    assert run(capsys, *common, "--sweeps", "2", "--out", str(tmp_path / "split"))[0] == 0
    code, stdout, _ = run(capsys, *common, "--sweeps", "5", "--out", str(tmp_path / "split"), "--resume")
    assert code == 0 and stdout.startswith("resuming")
    whole = json.loads((tmp_path / "whole" / "history.json").read_text())["records"]
    split = json.loads((tmp_path / "split" / "history.json").read_text())["records"]
    assert [r["step"] for r in split] == [0, 1, 2, 3, 4, 5]
    assert [r["loss"] for r in split] == [r["loss"] for r in whole]
    assert split[-1]["updates"] == whole[-1]["updates"]
    np.testing.assert_array_equal(symnet.load(tmp_path / "split").get_flat(),
                                  symnet.load(tmp_path / "whole").get_flat())


def test_resume_errors(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--resume")
    assert_one_line_error(code, err, "--resume needs --out")
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--resume", "--out", str(tmp_path))
    assert_one_line_error(code, err, "nothing to resume")
    (tmp_path / "checkpoint.npz").write_bytes(b"\x00" * 100)
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--resume", "--out", str(tmp_path))
    assert_one_line_error(code, err, "checkpoint", "not an .npz archive")


def test_init_from_saved_model_and_corrupt_model_file(capsys, tmp_path):
    assert run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--sweeps", "1", "--quiet",
               "--out", str(tmp_path / "a"))[0] == 0
    start = symnet.load(tmp_path / "a")
    assert run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--sweeps", "1", "--quiet",
               "--init", str(tmp_path / "a"), "--out", str(tmp_path / "b"))[0] == 0
    history = json.loads((tmp_path / "b" / "history.json").read_text())["records"]
    data = symnet.datasets.xor()
    sse = np.sum((start.forward(data.x_train) - data.one_hot("train")) ** 2)
    assert history[0]["loss"] == pytest.approx(sse / 4)  # step 0 is the loaded model
    (tmp_path / "a" / "model.npz").write_bytes(b"garbage")
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--init", str(tmp_path / "a"),
                       "--out", str(tmp_path / "c"))
    assert_one_line_error(code, err, "model weights", "model.npz")
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--init", str(tmp_path / "zzz"),
                       "--out", str(tmp_path / "c"))
    assert_one_line_error(code, err, "not found", "zzz")


def test_interrupt_exits_130_and_keeps_the_checkpoint(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--sweeps", "5", "--quiet",
                       "-O", "interrupt_at=3", "--out", str(tmp_path))
    assert code == 130
    assert "interrupted" in err and f"{tmp_path}/checkpoint.npz" in err and "Traceback" not in err
    assert json.loads(bytes(np.load(tmp_path / "checkpoint.npz")["history"]).decode())["records"][-1]["step"] == 2
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--sweeps", "5", "--quiet",
                       "-O", "interrupt_at=1", "--out", str(tmp_path / "early"))
    assert code == 130 and "no checkpoint" in err


def test_divergence_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--dataset", "xor", "--solver", "dummy", "--sweeps", "4", "--quiet",
                       "-O", "diverge_at=2", "--out", str(tmp_path))
    assert_one_line_error(code, err, "diverged at step 2", "lower the learning rate")
    assert (tmp_path / "model.npz").exists()


def test_parse_value():
    assert [arguments.parse_value(s) for s in ("7", "-2", "2.5", "1e-4", "True", "off", "None", "cyclic", "1,2")] == [
        7, -2, 2.5, 1e-4, True, False, None, "cyclic", "1,2"]
    assert isinstance(arguments.parse_value("7"), int) and isinstance(arguments.parse_value("7.0"), float)


# --------------------------------------------------------------------------- bench
def test_bench_table_and_json(capsys):
    code, stdout, _ = run(capsys, "bench", "dummy", "dummy-epoch", "--dataset", "xor", "--sweeps", "2",
                          "--epochs", "1", "--quiet")
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].split() == ["dataset", "model", "solver", "steps", "wall", "s", "train", "s/step", "loss", "train",
                                "acc", "test", "acc", "us/update"]
    assert [line.split()[2:4] for line in lines[2:]] == [["dummy", "2"], ["dummy-epoch", "1"]]
    code, stdout, _ = run(capsys, "bench", "dummy", "--dataset", "xor", "--steps", "3", "--json", "--quiet")
    rows = json.loads(stdout)
    assert code == 0 and len(rows) == 1 and rows[0]["steps"] == 3 and rows[0]["solver"] == "dummy"
    assert rows[0]["time_per_update_us"] == pytest.approx(rows[0]["time"] / rows[0]["updates"] * 1e6)
    assert rows[0]["time_per_step"] == pytest.approx(rows[0]["time"] / 3)
    code, _, err = run(capsys, "bench", "nope", "--dataset", "xor")
    assert_one_line_error(code, err, "unknown solver 'nope'")


def test_bench_writes_its_figures(capsys, tmp_path):
    out = tmp_path / "figs"
    code, stdout, _ = run(capsys, "bench", "dummy-epoch", "dummy-epoch", "--dataset", "xor", "--epochs", "3",
                          "--quiet", "--plot", str(out))
    assert code == 0 and f"figures saved to {out}/" in stdout
    for name in ("loss_vs_time", "loss_vs_passes", "test_acc_vs_time", "loss_vs_epochs", "test_acc_vs_epochs"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    code, stdout, err = run(capsys, "bench", "dummy", "--dataset", "xor", "--steps", "2", "--json", "--quiet",
                            "--plot", str(tmp_path / "j"))
    assert code == 0 and json.loads(stdout)[0]["steps"] == 2 and "figures saved" in err
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "bench", "dummy", "--dataset", "xor", "--steps", "1", "--plot", str(tmp_path / "file"))
    assert_one_line_error(code, err, "exists as a file")


def test_bench_target_writes_its_figure_with_plot(capsys, tmp_path):
    out = tmp_path / "figs"
    code, stdout, _ = run(capsys, "bench", "target", "--model", "seed", "--samples", "100", "--test-samples", "20",
                          "--epochs", "1", "--lrs", "1e-3", "--exact", "coordinate", "--time-limit", "1", "--quiet",
                          "--plot", str(out))
    assert code == 0 and f"figures saved to {out}/ (loss_vs_time.png)" in stdout
    assert (out / "loss_vs_time.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_rows_keep_histories_and_draw_the_budget():
    from symnet.frontend import bench

    rows = bench.run(["dummy-epoch", "dummy"], dataset="xor", epochs=2, sweeps=3, quiet=True)
    assert [len(h) for h in rows.histories.values()] == [3, 4]
    figs = rows.plot()
    assert "loss_vs_epochs" not in figs   # epochs and sweeps do not share an axis
    assert "xor" in figs["loss_vs_time"].axes[0].get_title()


# --------------------------------------------------------------------------- a real process
def test_subprocess_train_and_error(tmp_path):
    env = dict(os.environ, CI="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "run"
    ok = subprocess.run([sys.executable, "-m", "symnet", "train", "--dataset", "xor", "--sweeps", "1",
                         "--ridge", "1e-6", "--out", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path,
                        timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "coordinate" in ok.stdout and str(out) in ok.stdout
    assert (out / "model.npz").exists() and (out / "checkpoint.npz").exists()
    bad = subprocess.run([sys.executable, "-m", "symnet", "train", "--time-limit", "abc"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "symnet: error: argument --time-limit: expected a positive number of seconds, got 'abc' "
        "(see 'symnet train --help')"]
