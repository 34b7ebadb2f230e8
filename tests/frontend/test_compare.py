"""symnet.compare: same start for every solver, budgets, targets, table, JSON, figures, memory, CLI."""

import json
import math
import time

import numpy as np
import pytest

import symnet.solvers as solvers
import symnet
from symnet.solvers.base import Solver
from symnet.solvers.options import Option
from symnet.core import datasets
from symnet.core.model import presets as models
from symnet.frontend.compare import Comparison, compare
from symnet.frontend.runner import parse_budget, parse_solvers
from symnet.core.errors import SolverError
from cli_run import run, one_line_error
from dummy_solvers import COMMON_OPTIONS


class GradientDummy(Solver):
    """Full-batch gradient steps; remembers the parameters it started from."""

    name = "dummy-compare"
    step_unit = "sweep"
    default_steps = 2
    OPTIONS = {**COMMON_OPTIONS, "lr": Option(0.05, "float", low=0.0), "allocate_mb": Option(0, "int", low=0),
               "sleep": Option(0.0, "float", low=0.0)}
    starts: list = []

    def _setup(self, model, data, rng):
        GradientDummy.starts.append(model.get_flat().copy())
        self.calls_ = 0

    def _step(self):
        self.calls_ += 1
        if self.opts_["sleep"]:
            time.sleep(self.opts_["sleep"])
        if self.opts_["allocate_mb"]:
            block = np.ones(int(self.opts_["allocate_mb"]) * 2**20 // 8)  # touched, so resident
            assert block.sum() > 0
            del block
        X = self.data_.x_train
        _, grad = self.model_.loss_and_grad(X, self.y_train, self.opts_["ridge"])
        self.model_.set_flat(self.model_.get_flat() - self.opts_["lr"] * grad / len(X))
        if self.calls_ == self.opts_["diverge_at"]:
            return {"loss": float("inf"), "updates": self.model_.num_params, "passes": 1.0}
        return {"loss": None, "updates": self.model_.num_params, "passes": 1.0}


class EpochDummy(GradientDummy):
    name = "dummy-compare-epoch"
    step_unit = "epoch"
    default_steps = 3


@pytest.fixture(autouse=True)
def registered(register_solver):
    register_solver("dummy-compare", f"{__name__}:GradientDummy")
    register_solver("dummy-compare-epoch", f"{__name__}:EpochDummy")
    GradientDummy.starts = []


def tiny_images(n_train=30, n_test=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return datasets.Dataset("tiny-images", rng.random((n_train, 1, 6, 6)), rng.integers(0, classes, n_train),
                            rng.random((n_test, 1, 6, 6)), rng.integers(0, classes, n_test), classes)


def tiny_poly(data, seed=3):
    return models.get("poly", input_shape=data.input_shape, num_classes=data.num_classes, channels=2, kernel=3,
                      seed=seed)


def sse_per_sample(model, data):
    return float(np.sum((model.forward(data.x_train) - data.one_hot("train")) ** 2)) / len(data.x_train)


# --------------------------------------------------------------------------- same start
def test_every_solver_starts_from_the_same_model_and_the_input_is_untouched():
    data = tiny_images()
    model = tiny_poly(data)
    theta0 = model.get_flat()
    names = ["coordinate", "dummy-compare", ("dummy-compare", {"lr": 0.02})]
    if "adam" in solvers.available():
        names.append("adam")
    c = compare(model, data, names, {"steps": 2}, quiet=True, options={"ridge": 0.0})
    np.testing.assert_array_equal(model.get_flat(), theta0)  # compare trains copies
    assert len(GradientDummy.starts) == 2
    for start in GradientDummy.starts:
        np.testing.assert_array_equal(start, theta0)
    step0 = [h[0]["loss"] for h in c.histories.values()]
    assert step0 == pytest.approx([sse_per_sample(model, data)] * len(names), rel=1e-12)
    assert list(c.histories) == ["coordinate", "dummy-compare", "dummy-compare[lr=0.02]"] + (
        ["adam"] if "adam" in solvers.available() else [])
    # every solver trained: the final losses are below the start
    assert all(h.final["loss"] < h[0]["loss"] for h in c.histories.values())
    # each solver's trained model is kept, and its SSE/N column is its data loss
    for row in c.rows:
        assert row["data_loss"] == pytest.approx(sse_per_sample(c.models[row["label"]], data), rel=1e-12)


def test_preset_name_is_built_with_the_seed():
    data = tiny_images()
    c = compare("poly", data, ["dummy-compare"], {"steps": 1}, quiet=True, seed=4)
    expected = symnet.api.build_model("poly", data, seed=4)
    np.testing.assert_array_equal(GradientDummy.starts[0], expected.get_flat())
    assert c.meta["num_params"] == expected.num_params


# --------------------------------------------------------------------------- budgets
@pytest.mark.parametrize("bad", ["300", True, -1, 0, float("nan"), float("inf"), [300], {"time": "x"},
                                 {"time": -2}, {"hours": 1}, {"steps": 1.5}, {"sweeps": -1}, {"epochs": True}])
def test_budget_that_is_not_a_number_or_budget_dict_is_refused(bad):
    with pytest.raises(SolverError, match="budget"):
        parse_budget(bad)


@pytest.mark.parametrize("empty", [None, {}])
def test_a_comparison_needs_a_budget(empty):
    assert parse_budget(empty) == {}  # the runner's "every solver's default steps", which bench uses
    with pytest.raises(SolverError, match="give a budget"):
        compare("mlp", datasets.xor(8), ["dummy-compare"], empty, quiet=True)


def test_budget_is_refused_before_any_training():
    data = tiny_images()
    with pytest.raises(SolverError, match="number of seconds"):
        compare(tiny_poly(data), data, ["dummy-compare"], "300", quiet=True)
    assert GradientDummy.starts == []


def test_budget_units_apply_to_the_matching_solvers():
    data = tiny_images()
    c = compare(tiny_poly(data), data, ["dummy-compare", "dummy-compare-epoch"], {"sweeps": 2}, quiet=True)
    rows = {r["label"]: r for r in c.rows}
    assert rows["dummy-compare"]["steps"] == 2 and rows["dummy-compare"]["budget"] == "2 sweeps"
    assert rows["dummy-compare-epoch"]["steps"] == 3  # no key applies: the solver's default
    assert "default" in rows["dummy-compare-epoch"]["budget"]
    c = compare(tiny_poly(data), data, ["dummy-compare", "dummy-compare-epoch"], {"sweeps": 2, "epochs": 1},
                quiet=True)
    assert [r["steps"] for r in c.rows] == [2, 1]


def test_time_budget_stops_each_solver():
    data = tiny_images()
    c = compare(tiny_poly(data), data, ["dummy-compare"], {"time": 0.3, "steps": 1000}, quiet=True,
                options={"dummy-compare": {"sleep": 0.05}})
    row = c.rows[0]
    assert 2 <= row["steps"] < 30  # the time limit, not the 1000 steps, ended the run
    assert 0.1 < row["time"] < 0.7  # training time only: evaluation between steps also uses the clock
    c = compare(tiny_poly(data), data, ["dummy-compare"], 0.2, quiet=True, options={"sleep": 0.05})
    assert c.meta["budget"] == {"time": 0.2} and c.rows[0]["steps"] < 30


def test_unknown_solver_and_options_name_the_fix():
    with pytest.raises(SolverError, match="unknown solver 'nope'.*coordinate"):
        parse_solvers(["coordinate", "nope"])
    with pytest.raises(SolverError, match="has no option 'zzz'"):
        parse_solvers(["coordinate"], {"coordinate": {"zzz": 1}})
    with pytest.raises(SolverError, match="no selected solver"):
        parse_solvers(["coordinate"], {"momentum_beta": 1})
    with pytest.raises(SolverError, match="not among the selected solvers"):
        parse_solvers(["coordinate"], {"dummy-compare": {"lr": 1}})
    with pytest.raises(SolverError, match="no solvers"):
        parse_solvers([])
    entries = parse_solvers("dummy-compare,coordinate", {"ridge": 0.5, "dummy-compare": {"lr": 0.1}})
    assert [(e.label, e.options) for e in entries] == [("dummy-compare", {"ridge": 0.5, "lr": 0.1}),
                                                       ("coordinate", {"ridge": 0.5})]


# --------------------------------------------------------------------------- targets and table
def first_time(history, key, target, below):
    """Brute force: the time of the first record at or past the target."""
    for rec in history:
        v = rec[key]
        if v is not None and ((v <= target) if below else (v >= target)):
            return rec["time"]
    return None


def test_default_targets_are_reached_by_every_solver():
    data = tiny_images()
    c = compare(tiny_poly(data), data, ["coordinate", "dummy-compare", ("dummy-compare", {"lr": 0.01})],
                {"steps": 3}, quiet=True, options={"ridge": 0.0})
    finals = [h.final["loss"] for h in c.histories.values()]
    accs = [h.final["test_acc"] for h in c.histories.values()]
    assert c.meta["target_loss"] == max(finals) and c.meta["target_acc"] == min(accs)
    for row in c.rows:
        h = c.histories[row["label"]]
        assert row["time_to_loss"] == first_time(h, "loss", max(finals), True) is not None
        assert row["time_to_acc"] == first_time(h, "test_acc", min(accs), False) is not None
        assert row["time_to_loss"] <= row["time"]
    assert "worst final loss among the solvers" in c.table()
    given = compare(tiny_poly(data), data, ["dummy-compare"], {"steps": 2}, quiet=True, target_loss=0.0,
                    target_acc=1.0)
    assert given.rows[0]["time_to_loss"] is None and given.meta["target_loss_rule"] == "given"
    with pytest.raises(SolverError, match="target_acc"):
        compare(tiny_poly(data), data, ["dummy-compare"], {"steps": 1}, quiet=True, target_acc=95)


def test_table_columns_markdown_and_json_round_trip(tmp_path):
    data = tiny_images()
    c = compare(tiny_poly(data), data, ["coordinate", "dummy-compare"], {"steps": 2}, quiet=True,
                options={"ridge": 0.0}, out=tmp_path)
    lines = c.table(caption=False).splitlines()
    assert lines[0].split("  ")[0] == "solver"
    headers = [h.strip() for h in lines[0].split("  ") if h.strip()]
    assert headers == ["solver", "model (params)", "steps", "loss", "SSE/N", "train acc", "test acc", "train s",
                       "wall s", "t(loss) s", "t(acc) s", "peak +MB"]
    assert [line.split()[0] for line in lines[2:]] == ["coordinate", "dummy-compare"]
    md = c.table("markdown").splitlines()
    assert md[0].startswith("| solver | model (params) |") and md[1].startswith("|---|---|---|---:")
    payload = json.loads((tmp_path / "comparison.json").read_text())
    assert set(payload) == {"meta", "rows", "histories"}
    assert [r["label"] for r in payload["rows"]] == ["coordinate", "dummy-compare"]
    assert payload["histories"]["coordinate"]["records"][-1]["loss"] == c.histories["coordinate"].final["loss"]
    again = Comparison.load(tmp_path)
    assert again.table() == c.table()
    assert json.loads(again.to_json())["rows"] == json.loads(c.to_json())["rows"]
    for name in ("table.txt", "table.md", "comparison.json", "coordinate/model.npz", "coordinate/history.json",
                 "dummy-compare/model.npz"):
        assert (tmp_path / name).exists(), name
    back = symnet.load(tmp_path / "coordinate")
    np.testing.assert_array_equal(back.get_flat(), c.models["coordinate"].get_flat())


def test_figures_are_written_and_honest(tmp_path):
    data = tiny_images()
    c = compare(tiny_poly(data), data, ["coordinate", "dummy-compare"], {"steps": 2}, quiet=True, out=tmp_path)
    for name in ("loss_vs_time", "loss_vs_passes", "test_acc_vs_time"):
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    figs = c.plot()
    # both solvers count sweeps, so the per-sweep curves come too, with the step budget as a line
    assert list(figs) == ["loss_vs_time", "loss_vs_passes", "test_acc_vs_time", "loss_vs_sweeps",
                          "test_acc_vs_sweeps"]
    for name, fig in figs.items():
        ax = fig.axes[0]
        assert "tiny-images" in ax.get_title() and "N = 30 train / 12 test" in ax.get_title()
        assert ax.get_xlabel() and ax.get_ylabel()
        assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["coordinate", "dummy-compare"]
        assert ax.get_xlim()[0] == 0
        legend = ax.get_legend()
        assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # outside the axes, to the right
    for name in ("loss_vs_sweeps", "test_acc_vs_sweeps"):
        texts = [t.get_text() for t in figs[name].axes[0].get_legend().get_texts()]
        assert "budget 2 sweeps" in texts
    assert figs["loss_vs_time"].axes[0].get_yscale() == "log"
    assert figs["loss_vs_passes"].axes[0].get_yscale() == "log"
    assert "(s" in figs["loss_vs_time"].axes[0].get_xlabel()
    assert figs["test_acc_vs_time"].axes[0].get_ylim() == (0, 100)
    assert figs._repr_html_().count("<img") == 5
    assert figs["loss_vs_time"]._repr_png_()[:4] == b"\x89PNG"


def test_a_time_budget_is_drawn_on_the_time_axes():
    data = tiny_images()
    c = compare(tiny_poly(data), data, ["coordinate"], {"time": 30, "steps": 1}, quiet=True)
    for name in ("loss_vs_time", "test_acc_vs_time"):
        ax = c.plot()[name].axes[0]
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "budget 30 s per solver" in texts
        assert ax.get_xlim()[1] >= 30  # the line is in view even when the run stopped early
    assert "budget 30 s per solver" not in [t.get_text() for t in c.plot()["loss_vs_passes"].axes[0].get_legend()
                                            .get_texts()]


def test_interim_records_show_on_the_time_axis_but_not_on_the_step_axis():
    from symnet.core.history import History
    from symnet.frontend.plots import training_figures

    h = History(step_unit="epoch")
    for step, loss, t, partial in [(0, 1.0, 0.0, None), (1, 0.8, 10.0, 1), (1, 0.6, 15.0, None)]:
        rec = h.append(step=step, loss=loss, test_acc=0.5, time=t, passes=float(step))
        if partial:
            rec["partial"] = 1
    figs = training_figures({"adam": h}, title="t")
    assert list(figs["loss_vs_time"].axes[0].lines[0].get_xdata()) == [0.0, 10.0, 15.0]
    assert list(figs["loss_vs_epochs"].axes[0].lines[0].get_xdata()) == [0.0, 1.0]
    assert list(figs["loss_vs_epochs"].axes[0].lines[0].get_ydata()) == [1.0, 0.6]


def test_divergence_is_reported_not_raised():
    data = tiny_images()
    c = compare(tiny_poly(data), data, ["coordinate", ("dummy-compare", {"diverge_at": 2})], {"steps": 3},
                quiet=True)
    rows = {r["solver"]: r for r in c.rows}
    assert rows["coordinate"]["status"] == "ok"
    assert rows["dummy-compare"]["status"] == "diverged at step 2" and rows["dummy-compare"]["steps"] == 1
    assert "status" in c.table().splitlines()[0]


# --------------------------------------------------------------------------- memory and processes
def test_peak_memory_is_per_solver():
    data = tiny_images()
    c = compare(tiny_poly(data), data, [("dummy-compare", {"allocate_mb": 300}), "dummy-compare"], {"steps": 1},
                quiet=True)
    big, small = c.rows
    if not big["peak_counter_reset"]:
        pytest.skip("this system cannot reset the peak resident-memory counter")
    assert big["peak_mb"] >= 250  # the 300 MB block
    assert small["peak_mb"] < 100  # not masked by the previous solver's peak


def test_isolated_run_matches_the_in_process_run():
    data = datasets.xor(16, noise=0.1)
    model = models.get("mlp", input_dim=2, hidden=2, seed=1)
    kwargs = dict(quiet=True, options={"ridge": 1e-3})
    here = compare(model, data, ["coordinate", "dummy-compare"], {"steps": 2}, **kwargs)
    there = compare(model, data, ["coordinate", "dummy-compare"], {"steps": 2}, isolate=True, **kwargs)
    for label in here.histories:
        assert there.histories[label].column("loss") == pytest.approx(here.histories[label].column("loss"),
                                                                       rel=1e-12)
        np.testing.assert_array_equal(there.models[label].get_flat(), here.models[label].get_flat())
    assert all(r["peak_mb"] is not None for r in there.rows)
    assert there.meta["isolate"] and "fresh process" in there.caption()
    with pytest.raises(SolverError, match="has no option"):
        compare(model, data, [("dummy-compare", {"bogus": 1})], {"steps": 1}, isolate=True, quiet=True)


def test_errors_in_a_subprocess_come_back_as_symnet_errors():
    data = datasets.xor(8)
    model = models.get("mlp", input_dim=2, hidden=2, seed=1)
    with pytest.raises(SolverError, match="option lr must be a number > 0"):
        compare(model, data, [("momentum", {"lr": float("nan")})], {"steps": 1}, isolate=True, quiet=True)


# --------------------------------------------------------------------------- command line
def test_cli_exit_codes(capsys, tmp_path):
    one_line_error(*run(capsys, "compare", "--solvers", "coordinate,nope", "--dataset", "xor", "--steps", "1")[::2],
                   "unknown solver 'nope'")
    one_line_error(*run(capsys, "compare", "--solvers", "coordinate", "--dataset", "xor", "--time-limit",
                        "abc")[::2], "--time-limit", "'abc'")
    one_line_error(*run(capsys, "compare", "--solvers", "coordinate", "--dataset", "xor")[::2], "budget")
    one_line_error(*run(capsys, "compare", "--solvers", "coordinate", "--dataset", "xor", "--steps", "1",
                        "-O", "adam.lr=1")[::2], "'adam' is not among --solvers")
    one_line_error(*run(capsys, "compare", "--solvers", "coordinate", "--dataset", "xor", "--steps", "1",
                        "-O", "coordinate.zzz=1")[::2], "no option 'zzz'")
    one_line_error(*run(capsys, "compare", "--solvers", "coordinate", "--dataset", "xor", "--steps", "1",
                        "-O", "lr")[::2], "SOLVER.KEY=VALUE")
    one_line_error(*run(capsys, "compare", "--dataset", "xor", "--steps", "1")[::2], "--solvers")


def test_cli_compare_writes_everything(capsys, tmp_path):
    code, out, err = run(capsys, "compare", "--solvers", "coordinate,dummy-compare", "--dataset", "xor",
                         "--steps", "2", "--no-isolate", "--quiet", "--ridge", "0.001",
                         "-O", "dummy-compare.lr=0.1", "--out", str(tmp_path))
    assert code == 0, err
    assert "solver" in out and "t(loss) s" in out and str(tmp_path) in out
    payload = json.loads((tmp_path / "comparison.json").read_text())
    opts = {r["label"]: r["options"] for r in payload["rows"]}
    assert opts["dummy-compare"]["lr"] == 0.1 and opts["dummy-compare"]["ridge"] == 0.001
    assert opts["coordinate"]["ridge"] == 0.001
    for name in ("loss_vs_time.png", "loss_vs_passes.png", "test_acc_vs_time.png", "table.md"):
        assert (tmp_path / name).exists()
    assert not math.isnan(payload["meta"]["target_loss"])
