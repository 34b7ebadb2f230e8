"""symnet.fit / symnet.api.train and symnet.bench, driven by small deterministic solvers."""

import json

import numpy as np
import pytest

import symnet.solvers as solvers
import symnet
from symnet.solvers.base import Solver
from symnet.frontend import api, bench, runner
from symnet.core import datasets
from symnet.core.model import presets as models
from symnet.core.errors import CorruptFileError, ModelError, SolverError

from dummy_solvers import DummySolver, EpochDummy


@pytest.fixture(autouse=True)
def dummy_solvers(register_solver):
    register_solver("dummy", "dummy_solvers:DummySolver")
    register_solver("dummy-epoch", "dummy_solvers:EpochDummy")
    register_solver("replacing", "dummy_solvers:ReplacingSolver")


def image_data(n_train=24, n_test=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return datasets.Dataset("tiny-images", rng.random((n_train, 1, 6, 6)), rng.integers(0, classes, n_train),
                            rng.random((n_test, 1, 6, 6)), rng.integers(0, classes, n_test), classes)


def mlp_for(data, seed=0):
    return models.get("mlp", input_shape=data.input_shape, num_classes=data.num_classes, hidden=2, seed=seed)


# --------------------------------------------------------------------------- fit
def test_fit_trains_in_place_and_returns_history():
    data = datasets.xor(8)
    model = mlp_for(data)
    before = model.get_flat()
    history = symnet.fit(model, data, "dummy", steps=4, quiet=True)
    assert isinstance(history, symnet.History)
    assert [r["step"] for r in history] == [0, 1, 2, 3, 4]
    assert not np.array_equal(model.get_flat(), before)
    # The history's loss is the objective of the model as it is now (oracle: numpy forward).
    sse = np.sum((model.forward(data.x_train) - data.one_hot("train")) ** 2)
    assert history.final["loss"] == pytest.approx(sse / len(data.x_train), rel=1e-12)


def test_fit_builds_preset_and_loads_dataset_by_name():
    s = api.train("mlp", "xor", "dummy", steps=1, quiet=True, seed=3)
    assert s.model_.name == "mlp" and s.model_.input_shape == (2,) and s.model_.num_outputs == 2
    # The preset was seeded with `seed`: same start as building it by hand.
    fresh = models.get("mlp", input_shape=(2,), num_classes=2, seed=3)
    assert s.history_[0]["loss"] == pytest.approx(
        np.mean(np.sum((fresh.forward(s.data_.x_train) - s.data_.one_hot("train")) ** 2, axis=1)))
    assert s.summary_["dataset"] == "xor" and s.summary_["model"] == "mlp"


def test_fit_passes_options_and_rejects_unknown_ones():
    s = api.train(mlp_for(datasets.xor()), datasets.xor(), "dummy", steps=1, quiet=True, lr=0.1, label="b")
    assert s.opts_["lr"] == 0.1 and s.opts_["label"] == "b" and s.opts_["ridge"] == 0.0
    with pytest.raises(SolverError, match="no option 'bogus'"):
        symnet.fit(mlp_for(datasets.xor()), datasets.xor(), "dummy", steps=1, quiet=True, bogus=1)
    with pytest.raises(SolverError, match="unknown solver 'nope'"):
        symnet.fit(mlp_for(datasets.xor()), datasets.xor(), "nope", steps=1)


def test_fit_accepts_solver_class_and_instance():
    data = datasets.xor()
    h1 = symnet.fit(mlp_for(data), data, DummySolver, steps=2, quiet=True, lr=0.2)
    h2 = symnet.fit(mlp_for(data), data, DummySolver(lr=0.2), steps=2, quiet=True)
    assert h1.column("loss").tolist() == h2.column("loss").tolist()
    with pytest.raises(SolverError, match="not both"):
        symnet.fit(mlp_for(data), data, DummySolver(lr=0.2), lr=0.3)


def test_out_dir_contents_and_round_trip(tmp_path):
    data = image_data()
    model = models.get("poly", input_shape=data.input_shape, num_classes=3, channels=2, kernel=3, seed=1)
    out = tmp_path / "run"
    s = api.train(model, data, "dummy", steps=3, quiet=True, out=out)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.npz", "history.json", "model.json", "model.npz", "summary.json"]
    loaded = symnet.load(out)
    np.testing.assert_array_equal(loaded.forward(data.x_test), model.forward(data.x_test))
    history = json.loads((out / "history.json").read_text())
    assert [r["step"] for r in history["records"]] == [0, 1, 2, 3]
    assert history["records"][-1]["loss"] == s.history_.final["loss"]
    summary = json.loads((out / "summary.json").read_text())
    final = s.history_.final
    assert summary["solver"] == "dummy" and summary["model"] == "poly" and summary["dataset"] == "tiny-images"
    assert (summary["n_train"], summary["n_test"], summary["steps"]) == (24, 8, 3)
    assert summary["num_params"] == model.num_params
    assert summary["loss"] == final["loss"] and summary["test_acc"] == final["test_acc"]
    assert summary["options"] == {**DummySolver.defaults}
    assert summary["time_per_update"] == pytest.approx(final["time"] / final["updates"])
    assert summary["peak_rss_mb"] > 10 and summary["wall_time"] >= summary["time"]


def test_replacing_solver_saves_its_own_model(tmp_path):
    data = datasets.xor(8)
    given = mlp_for(data)
    s = api.train(given, data, "replacing", steps=2, quiet=True, out=tmp_path)
    assert s.model_ is not given and s.model_.spec()["layers"][0]["out_features"] == 3
    loaded = symnet.load(tmp_path)
    np.testing.assert_array_equal(loaded.get_flat(), s.model_.get_flat())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["num_params"] == s.model_.num_params and summary["model"] == "own"
    s = api.train("mlp", data, "replacing", steps=1, quiet=True)  # the preset name is not reported either
    assert s.summary_["model"] == "own"
    rows = bench.run(["replacing", "dummy"], dataset="xor", steps=1, quiet=True)
    assert [r["model"] for r in rows] == ["own", "mlp"]


def test_resume_continues_to_the_same_end_as_an_uninterrupted_run(tmp_path):
    data = image_data(seed=2)

    def fresh():
        return models.get("poly", input_shape=data.input_shape, num_classes=3, channels=2, kernel=3, seed=5)

    whole = api.train(fresh(), data, "dummy", steps=5, quiet=True, out=tmp_path / "whole", lr=0.01)
    api.train(fresh(), data, "dummy", steps=2, quiet=True, out=tmp_path / "split", lr=0.01)
    part = api.train(fresh(), data, "dummy", steps=5, quiet=True, out=tmp_path / "split", resume=True, lr=0.01)
    assert np.all(np.isfinite(whole.history_.column("loss")))
    assert whole.history_.final["loss"] < whole.history_[0]["loss"]
    assert [r["step"] for r in part.history_] == [0, 1, 2, 3, 4, 5]
    # rng and step counter were restored, so the parameters match bit for bit.
    np.testing.assert_array_equal(part.model_.get_flat(), whole.model_.get_flat())
    assert part.history_.column("loss").tolist() == whole.history_.column("loss").tolist()
    assert part.history_.final["updates"] == whole.history_.final["updates"]
    # Resuming a finished run does nothing more.
    again = api.train(fresh(), data, "dummy", steps=5, quiet=True, out=tmp_path / "split", resume=True, lr=0.01)
    assert again.history_.final["step"] == 5


def test_resume_errors(tmp_path):
    data = datasets.xor()
    run = tmp_path / "run"
    with pytest.raises(SolverError, match="out=DIR"):
        symnet.fit(mlp_for(data), data, "dummy", resume=True)
    with pytest.raises(SolverError, match="nothing to resume"):
        symnet.fit(mlp_for(data), data, "dummy", resume=True, out=tmp_path / "empty")
    symnet.fit(mlp_for(data), data, "dummy", steps=1, quiet=True, out=run)
    with pytest.raises(SolverError, match="solver: 'dummy' -> 'replacing'"):
        symnet.fit(mlp_for(data), data, "replacing", steps=2, resume=True, out=run)
    with pytest.raises(SolverError, match="data.name: 'xor' -> 'other'"):
        other = datasets.Dataset("other", data.x_train, data.y_train, data.x_test, data.y_test, 2)
        symnet.fit(mlp_for(data), other, "dummy", steps=2, resume=True, out=run)
    (run / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CorruptFileError, match="checkpoint"):
        symnet.fit(mlp_for(data), data, "dummy", steps=2, resume=True, out=run)


def test_divergence_saves_the_last_finite_model(tmp_path):
    data = datasets.xor(8)
    reference = api.train(mlp_for(data), data, "dummy", steps=2, quiet=True)
    with pytest.raises(symnet.errors.DivergenceError, match="diverged at step 3"):
        symnet.fit(mlp_for(data), data, "dummy", steps=5, quiet=True, out=tmp_path, diverge_at=3)
    history = json.loads((tmp_path / "history.json").read_text())["records"]
    assert [r["step"] for r in history] == [0, 1, 2]
    np.testing.assert_array_equal(symnet.load(tmp_path).get_flat(), reference.model_.get_flat())


def test_out_that_is_a_file_fails_before_training(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(FileExistsError, match="exists as a file"):
        symnet.fit("mlp", "xor", "dummy", steps=1, out=target)


# --------------------------------------------------------------------------- build_model
def test_build_model_uses_data_shape_and_classes():
    data = image_data(classes=4)
    m = api.build_model("poly", data, channels=2, kernel=3, activation=None)
    assert m.input_shape == (1, 6, 6) and m.num_outputs == 4
    # conv 2x(1x3x3)+2, pool 2 on 4x4 -> 2x2x2 = 8 features -> linear 8x4+4
    assert m.num_params == 2 * 9 + 2 + 8 * 4 + 4
    assert api.default_model(data) == "poly" and api.default_model(datasets.xor()) == "mlp"


def test_build_model_errors_name_the_fix():
    with pytest.raises(ModelError, match="use model 'mlp'"):
        api.build_model("poly", datasets.xor())
    with pytest.raises(ModelError, match="no option 'channels'.*hidden"):
        api.build_model("mlp", datasets.xor(), channels=3)
    with pytest.raises(ModelError, match="unknown model 'big'"):
        api.build_model("big", datasets.xor())


def test_load_data_subsets_and_rejects_bad_sizes():
    d = api.load_data("mnist-small", samples=50, test_samples=10)
    assert d.x_train.shape == (50, 1, 28, 28) and d.x_test.shape == (10, 1, 28, 28)
    full = datasets.load("mnist-small")
    np.testing.assert_array_equal(d.y_train, full.y_train[:50])
    with pytest.raises(symnet.errors.DataError, match="asked for 20000"):
        api.load_data("mnist-small", samples=20000)
    with pytest.raises(symnet.errors.DataError, match="Dataset or a dataset name"):
        api.load_data(np.zeros(3))


# --------------------------------------------------------------------------- bench
def test_bench_rows_share_the_start_and_report_time_per_update():
    rows = bench.run(["dummy", "dummy-epoch"], dataset="xor", sweeps=2, epochs=3, quiet=True, options={"lr": 0.3})
    assert [(r["solver"], r["steps"]) for r in rows] == [("dummy", 2), ("dummy-epoch", 3)]
    for r in rows:
        assert r["model"] == "mlp" and r["dataset"] == "xor" and r["options"]["lr"] == 0.3
        assert r["time_per_update_us"] == pytest.approx(r["time"] / r["updates"] * 1e6)
    assert rows[1]["loss"] != rows[0]["loss"]
    # Every solver starts from the same model and seed: two epochs of the epoch twin end where two sweeps did.
    again = bench.run(["dummy-epoch"], dataset="xor", steps=2, quiet=True, options={"lr": 0.3})
    assert again[0]["loss"] == rows[0]["loss"]


def test_bench_options_and_names():
    with pytest.raises(SolverError, match="no selected solver .* has option 'momentum'"):
        bench.run(["dummy"], dataset="xor", options={"momentum": 0.9})
    with pytest.raises(SolverError, match="unknown solver"):
        runner.expand(["dummy", "nope"])
    assert runner.expand(["dummy", "dummy", "dummy-epoch"]) == ["dummy", "dummy-epoch"]
    grad = runner.gradient_solvers()
    assert "dummy-epoch" in grad and "sgd" in grad and "adam" in grad
    assert "coordinate" not in grad and "dummy" not in grad
    entries = runner.parse_solvers(["dummy", "dummy-epoch"], {"lr": 1.0, "dummy-epoch": {"flag": True}})
    assert [(e.label, e.options) for e in entries] == [("dummy", {"lr": 1.0}), ("dummy-epoch", {"lr": 1.0, "flag": True})]


def test_resolve_steps():
    assert runner.resolve_steps(DummySolver, sweeps=3) == 3
    assert runner.resolve_steps(EpochDummy, epochs=4) == 4
    assert runner.resolve_steps(EpochDummy, steps=5) == 5
    assert runner.resolve_steps(EpochDummy) is None
    assert runner.resolve_steps(EpochDummy, sweeps=3, strict=False) is None
    with pytest.raises(SolverError, match="counts its work in epochs.*--epochs N"):
        runner.resolve_steps(EpochDummy, sweeps=3)
    with pytest.raises(SolverError, match="one of --sweeps, --epochs, --steps"):
        runner.resolve_steps(DummySolver, sweeps=3, steps=2)


def test_format_table_and_json():
    rows = [{"solver": "sgd", "steps": 10, "loss": 0.5, "test_acc": None},
            {"solver": "coordinate", "steps": 2, "loss": float("nan"), "test_acc": 0.91234}]
    cols = [("solver", "solver", "{}"), ("steps", "steps", "{}"), ("loss", "loss", "{:.3f}"),
            ("test_acc", "test", "{:.2f}")]
    assert bench.format_table(rows, cols).splitlines() == [
        "solver      steps   loss  test",
        "----------  -----  -----  ----",
        "sgd            10  0.500     -",
        "coordinate      2      -  0.91",
    ]
    parsed = json.loads(bench.to_json(rows + [{"x": np.float64(2.5), "n": np.int64(3)}]))
    assert parsed[1]["loss"] is None and parsed[2] == {"x": 2.5, "n": 3}
