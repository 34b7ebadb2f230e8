"""Runs are never lost, mislabelled or unverifiable: folders, resume, data folders, budgets, messages, files.

Each test drives the command line (or the Python API) the way a hostile user would and checks the exit code,
the one-line message and what is left on disk.
"""

import json
import os
import stat

import numpy as np
import pytest

import symnet
from symnet.core import datasets
from symnet.core.model import presets as models
from symnet.core.datasets import write_idx
from symnet.core.errors import DataError, ModelError
from symnet.core.layers import LAYER_TYPES, Layer, register_layer
from cli_run import run, one_line_error as one_line

XOR = ["--dataset", "xor", "--quiet"]


def summary(out):
    return json.loads((out / "summary.json").read_text())


# --------------------------------------------------------------------------- run folders
def test_an_earlier_run_is_never_replaced_unasked(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", *XOR, "--sweeps", "1", "--out", out)[0] == 0
    before = (out / "summary.json").read_bytes()
    code, _, err = run(capsys, "train", "--dataset", "teacher-student", "--quiet", "--sweeps", "1", "--out", out)
    one_line(code, err, str(out), "--resume", "--overwrite")
    assert (out / "summary.json").read_bytes() == before       # nothing touched
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    code, _, err = run(capsys, "train", *XOR, "--sweeps", "1", "--out", tmp_path / "notes")
    one_line(code, err, "not empty", "mine.txt")
    assert run(capsys, "train", "--dataset", "teacher-student", "--quiet", "--sweeps", "1", "--out", out,
               "--overwrite")[0] == 0
    assert summary(out)["dataset"] == "teacher-student"
    code, _, err = run(capsys, "train", *XOR, "--sweeps", "1", "--out", out, "--overwrite", "--resume")
    one_line(code, err, "--resume", "--overwrite")


def test_resume_with_other_settings_is_refused_and_lists_the_differences(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", *XOR, "--sweeps", "1", "--out", out)[0] == 0
    before = (out / "summary.json").read_bytes()
    code, _, err = run(capsys, "train", *XOR, "--sweeps", "2", "--ridge", "50", "--samples", "3", "--out", out,
                       "--resume")
    one_line(code, err, "options.ridge: 'auto' -> 50.0", "data.n_train: 4 -> 3", "only the budget may grow")
    assert (out / "summary.json").read_bytes() == before
    code, _, err = run(capsys, "train", *XOR, "--sweeps", "2", "--seed", "3", "--out", out, "--resume")
    one_line(code, err, "seed: 0 -> 3")
    assert run(capsys, "train", *XOR, "--sweeps", "2", "--out", out, "--resume")[0] == 0
    s = summary(out)
    assert s["steps"] == 2 and s["wall_time"] >= s["time"]    # wall time counts both sessions


def test_resume_with_other_data_is_refused(tmp_path):
    data = datasets.xor(noise=0.1)
    out = tmp_path / "run"
    symnet.fit("mlp", data, "coordinate", steps=1, quiet=True, out=out)
    changed = datasets.Dataset("xor", data.x_train + 1e-9, data.y_train, data.x_test, data.y_test, 2)
    with pytest.raises(symnet.errors.SolverError, match="data.digest"):
        symnet.fit("mlp", changed, "coordinate", steps=2, quiet=True, out=out, resume=True)


# --------------------------------------------------------------------------- data folders
def fake_mnist(folder, n_train=40, n_test=10):
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n_train, dtype=np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, n_test, dtype=np.uint8))
    return folder


def test_data_dir_is_never_ignored(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--data-dir", tmp_path / "nonexistent", "--sweeps", "1", "--quiet",
                       "--out", tmp_path / "a")
    one_line(code, err, str(tmp_path / "nonexistent"), "--data-dir")
    assert not (tmp_path / "a").exists()
    folder = fake_mnist(tmp_path / "mnist-files")
    out = tmp_path / "b"
    assert run(capsys, "train", "--data-dir", folder, "--model", "seed", "--sweeps", "1", "--quiet",
               "--out", out)[0] == 0
    assert summary(out)["dataset"] == "mnist" and summary(out)["n_train"] == 40
    code, _, err = run(capsys, "train", "--dataset", "mnist-small", "--data-dir", folder, "--sweeps", "1",
                       "--quiet", "--out", tmp_path / "c")
    one_line(code, err, "ships with symnet", "--dataset mnist")


# --------------------------------------------------------------------------- budgets
def test_polyreg_never_returns_an_unsolved_model(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--solver", "polyreg", "--steps", "1", "--samples", "300",
                       "--test-samples", "100", "--window", "2", "--quiet", "--out", out)
    assert code == 0, err
    s = summary(out)
    assert s["steps"] == 1 and s["loss"] < 0.5 and s["test_acc"] > 0.5   # solved on every sample in one step
    code, _, err = run(capsys, "train", "--solver", "polyreg", "--time-limit", "30", "--samples", "300",
                       "--test-samples", "100", "--window", "2", "--quiet", "--out", tmp_path / "t")
    # few samples: the dual (kernel) form, announced before the fit, and solved within the limit
    assert code == 0 and "symnet: note: solver 'polyreg'" in err and "dual form" in err
    s = summary(tmp_path / "t")
    assert s["loss"] < 0.5 and s["test_acc"] > 0.5


# --------------------------------------------------------------------------- messages
@pytest.mark.parametrize("argv, needles", [
    (["--solver", "polyreg", "--window", "abc"], ["option window must be"]),
    (["--solver", "polyreg", "--window", "1.5"], ["option window must be"]),
    (["--solver", "polyreg", "--window", "true"], ["option window must be", "True"]),
    (["--ridge", "inf"], ["option ridge must be a number >= 0", "got inf"]),
    (["-O", "ridge=inf"], ["option ridge must be a number >= 0", "inf"]),
    (["--solver", "polyreg", "-O", "ridge=inf"], ["option ridge must be a number >= 0"]),
    (["--solver", "adam", "-O", "lr=0"], ["option lr must be a number > 0, got 0"]),
    (["--kernel", "28"], ["kernel 28", "leaves no pixels", "smaller kernel"]),
    (["--solver", "polyreg", "--degree", "9"], ["more than 20,000,000 monomials", "lower the degree"]),
])
def test_bad_input_gets_one_clear_line(capsys, tmp_path, argv, needles):
    code, _, err = run(capsys, "train", "--samples", "50", "--test-samples", "10", "--steps", "1", "--quiet",
                       *argv, "--out", tmp_path / "run")
    one_line(code, err, *needles)


def test_model_files_errors_name_the_problem(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", *XOR, "--sweeps", "1", "--out", out)[0] == 0
    lonely = tmp_path / "lonely.npz"
    lonely.write_bytes((out / "model.npz").read_bytes())
    code, _, err = run(capsys, "train", *XOR, "--init", lonely, "--sweeps", "1", "--out", tmp_path / "x")
    one_line(code, err, "lonely.json is missing", "lonely.npz (weights)", "copy both")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.npz").write_bytes(b"\x80\x04garbage, not an archive")
    (broken / "model.json").write_text((out / "model.json").read_text())
    code, _, err = run(capsys, "inspect", broken / "model.npz")
    one_line(code, err, "not an .npz archive")
    assert "allow_pickle" not in err
    code, text, err = run(capsys, "inspect", out / "checkpoint.npz")   # a checkpoint is a model too
    assert code == 0 and "linear0" in text, err


def test_sweeps_zero_claims_no_checkpoint(capsys, tmp_path):
    code, text, _ = run(capsys, "train", *XOR, "--sweeps", "0", "--out", tmp_path / "run")
    assert code == 0 and "checkpoint" not in text.splitlines()[-1]


@pytest.mark.parametrize("solver", ["coordinate", "adam", "gauss-newton", "polyreg"])
def test_nan_written_after_construction_is_caught_first(solver):
    data = datasets.xor(noise=0.1)
    x = np.array(data.x_train)
    data = datasets.Dataset("xor", x, data.y_train, data.x_test, data.y_test, 2)
    data.x_train[1, 0] = np.nan
    with pytest.raises(DataError, match="NaN or infinite values in 1 sample.*the first: 1"):
        symnet.fit("mlp", data, solver, steps=1, quiet=True)


# --------------------------------------------------------------------------- files
def test_written_files_follow_the_umask(capsys, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert run(capsys, "train", *XOR, "--sweeps", "1", "--out", out)[0] == 0
    finally:
        os.umask(old)
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


class Halver(Layer):
    """A layer of one's own: x / 2."""

    kind = "halve"

    def forward(self, x):
        return 0.5 * x


def test_custom_layers_save_only_when_they_can_load_again(tmp_path):
    model = symnet.Sequential(Halver(), symnet.Linear(2, 2), input_shape=(2,), seed=0)
    with pytest.raises(ModelError, match=r"register_layer\(Halver\)"):
        symnet.save(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    register_layer(Halver)
    try:
        symnet.save(model, tmp_path / "m")
        back = symnet.load(tmp_path / "m")
        np.testing.assert_array_equal(back.forward(np.ones((3, 2))), model.forward(np.ones((3, 2))))
    finally:
        del LAYER_TYPES["Halver"]
    with pytest.raises(ModelError, match="register_layer"):
        symnet.load(tmp_path / "m")
    assert models.get("mlp", input_dim=2).spec()["layers"][0]["type"] == "Linear"


# --------------------------------------------------------------------------- certificates
def test_verify_checks_a_run_and_catches_a_planted_wrong_step(capsys, tmp_path):
    from symnet.core.certificates import Certificates

    out = tmp_path / "run"
    assert run(capsys, "train", "--model", "seed", "--samples", "300", "--test-samples", "50", "--sweeps", "1",
               "--certificates", "--quiet", "--out", out)[0] == 0
    assert run(capsys, "train", "--model", "seed", "--samples", "300", "--test-samples", "50", "--sweeps", "2",
               "--certificates", "--quiet", "--out", out, "--resume")[0] == 0
    code, text, _ = run(capsys, "verify", out)
    assert code == 0 and "every step holds" in text
    certs = Certificates.load(out / "certificates.npz")
    assert {r[0] for r in certs.rows} == {1, 2}          # the resumed session appended to the first one's
    line = next(i for i, r in enumerate(certs.rows) if r[1] == 1 and i in certs.snapshots)
    certs.rows[line][7] -= 0.25 * abs(certs.rows[line][6])  # claims a lower objective than the step reached
    certs.save(out / "certificates.npz")
    code, text, _ = run(capsys, "verify", out)
    assert code == 1 and "violation: record" in text
    code, _, err = run(capsys, "verify", out, "--data-dir", tmp_path)
    one_line(code, err, "does not apply")
    code, _, err = run(capsys, "train", *XOR, "--solver", "adam", "--certificates", "--out", tmp_path / "a")
    one_line(code, err, "takes no exact steps")


def test_verify_checks_that_the_certificates_cover_the_whole_run_and_chain_to_its_files(capsys, tmp_path):
    # the reproductions of the issue: a resume without --certificates, edited records, an edited history,
    # a replaced model; each fails, and a partly certified run passes only with --partial
    import shutil

    from symnet.core.certificates import Certificates

    small = ["--model", "seed", "--samples", "300", "--test-samples", "50", "--quiet", "--solver", "gauss-newton"]
    out = tmp_path / "run"
    assert run(capsys, "train", *small, "--steps", "3", "--certificates", "--out", out)[0] == 0
    whole = tmp_path / "whole"
    shutil.copytree(out, whole)
    code, text, _ = run(capsys, "verify", whole)
    assert code == 0 and "covers the whole run (steps 0-3 of 3)" in text, text
    assert run(capsys, "train", *small, "--steps", "6", "--out", out, "--resume")[0] == 0
    code, text, _ = run(capsys, "verify", out)
    assert code == 1 and "cover steps 0-3 of 6 only" in text and "--partial" in text, text
    code, text, _ = run(capsys, "verify", out, "--partial")
    assert code == 0 and "steps 0-3 of 6" in text, text

    def tampered(edit):
        folder = tmp_path / f"t{len(list(tmp_path.iterdir()))}"
        shutil.copytree(whole, folder)
        edit(folder)
        return run(capsys, "verify", folder)

    def edit_history(folder, change):
        payload = json.loads((folder / "history.json").read_text())
        change(payload["records"])
        (folder / "history.json").write_text(json.dumps(payload))

    for change in (lambda r: r[-1].update(loss=r[-1]["loss"] * 1.5), lambda r: r[-1].update(test_acc=0.99),
                   lambda r: r.pop(1), lambda r: r.insert(1, r.pop(2))):
        code, text, _ = tampered(lambda f: edit_history(f, change))
        assert code == 1 and "chain" in text, text

    def swap_records(folder):
        certs = Certificates.load(folder / "certificates.npz")
        certs.rows[0], certs.rows[1] = certs.rows[1], certs.rows[0]
        certs.save(folder / "certificates.npz")

    def drop_record(folder):
        certs = Certificates.load(folder / "certificates.npz")
        certs.rows.pop()
        certs.save(folder / "certificates.npz")

    def replace_model(folder):
        model = symnet.load(folder)
        model.set_flat(model.get_flat() * 1.001)
        symnet.save(model, folder / "model.npz")

    for edit in (swap_records, drop_record, replace_model):
        code, text, _ = tampered(edit)
        assert code == 1 and "violation" in text, (edit.__name__, text)


def test_one_writer_per_run_folder(capsys, tmp_path):
    # a second process asking for a folder that another one is writing is refused at once, naming its PID;
    # the lock dies with its holder (kill -9 included), so a stale one is simply free again
    import subprocess
    import sys

    from symnet.core.files import WRITER_NAME

    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from symnet.core.files import writer_lock\n"
        f"with writer_lock({str(out)!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for extra in ((), ("--overwrite",)):
            code, _, err = run(capsys, "train", *XOR, "--sweeps", "1", "--out", out, *extra)
            one_line(code, err, f"PID {holder.pid}", "another symnet process")
        assert [p.name for p in out.iterdir()] == [WRITER_NAME]  # nothing written
    finally:
        holder.kill()  # kill -9: no clean-up of its own
        holder.wait()
    code, _, _ = run(capsys, "train", *XOR, "--sweeps", "1", "--out", out)
    assert code == 0 and (out / "model.npz").exists() and not (out / WRITER_NAME).exists()
