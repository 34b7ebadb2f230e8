"""The coordinate solver: no ascent anywhere, exact minimisers, fused kernels equal generic jets.

Tests of the one-weight-at-a-time sweep on poly-shaped networks pass ``blocks="coordinate"`` (those
networks default to channel blocks, tested in test_channel_blocks.py).
"""

import numpy as np
import pytest

import symnet.solvers as solvers
from symnet.solvers.coordinate import CoordinateSolver
from symnet.core.errors import ModelError, SolverError, SymnetWarning
from symnet.core.layers import Layer, Linear
from symnet.core.model import Sequential
from symnet.core.restriction import Restriction

from tiny_models import tiny_models, toy_data

MODELS = tiny_models()




class TracingSolver(CoordinateSolver):
    """Records the objective before and after every single coordinate step (the one-weight-at-a-time sweep)."""

    def __init__(self, **options):
        super().__init__(**{"blocks": "coordinate", **options})  # poly-shaped nets default to channel blocks

    def _setup(self, model, data, rng):
        super()._setup(model, data, rng)
        self.trace = []
        inner = self.loss_.line_minimize

        def traced(direction, **kw):
            before = self.loss_.value
            out = inner(direction, **kw)
            self.trace.append((before, self.loss_.value, out))
            return out

        self.loss_.line_minimize = traced

    def _conv_coordinate(self, li, key, idx):
        before = self.loss_.value
        accepted = super()._conv_coordinate(li, key, idx)
        self.trace.append((before, self.loss_.value, None))
        return accepted

    def _linear_run(self, layer, coords):
        before = self.loss_.value
        out = super()._linear_run(layer, coords)
        self.trace.append((before, self.loss_.value, None))
        return out


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("order", ["cyclic", "random"])
def test_loss_never_rises_at_any_step(name, order):
    model = MODELS[name].copy()
    s = TracingSolver(ridge=0.05, order=order).fit(model, toy_data(model), steps=3, quiet=True)
    assert s.trace
    for before, after, _ in s.trace:
        assert after <= before * (1 + 1e-12) + 1e-12
    losses = s.history_.column("loss")
    assert np.all(np.diff(losses) <= 1e-12 * losses[:-1])
    # the cached objective equals a fresh forward pass
    fresh = Restriction(model, s.data_.x_train, s.data_.one_hot("train"), ridge=0.05).value / 40
    assert np.isclose(fresh, losses[-1], rtol=1e-10)


@pytest.mark.parametrize("name", list(MODELS))
def test_fused_kernels_equal_generic_jets(name):
    data = toy_data(MODELS[name])
    flats = []
    for fused in (True, False):
        model = MODELS[name].copy()
        CoordinateSolver(ridge=0.1, fused=fused, blocks="coordinate").fit(model, data, steps=2, quiet=True)
        flats.append(model.get_flat())
    np.testing.assert_allclose(flats[0], flats[1], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", ["poly", "poly2", "mlp-cubic", "seed"])
def test_each_coordinate_step_lands_on_the_brute_force_minimiser(name, rng):
    model = MODELS[name].copy()
    data = toy_data(model, n=12)
    Y = data.one_hot("train")
    loss = Restriction(model, data.x_train, Y, ridge=0.05)
    for i in rng.choice(model.num_params, size=12, replace=False):
        theta = model.get_flat()
        name_i = model.param_names()[i]
        res = loss.line_minimize(name_i)
        t, before, after = res.t, res.before, res.after
        # brute force: the true loss by forward passes on a grid around the step, then a finer grid
        # around the grid's best point
        probe = model.copy()

        def true_loss(grid):
            values = []
            for g in grid:
                th = theta.copy()
                th[i] += g
                probe.set_flat(th)
                values.append(np.sum((probe.forward(data.x_train) - Y) ** 2) + 0.05 * th @ th)
            return np.array(values)

        coarse = np.linspace(-abs(t) - 3, abs(t) + 3, 601)
        h = coarse[1] - coarse[0]
        best = coarse[int(np.argmin(true_loss(coarse)))]
        fine = np.linspace(best - h, best + h, 201)
        values = true_loss(fine)
        best = fine[int(np.argmin(values))]
        assert after <= values.min() + 1e-9 * abs(values.min())
        assert abs(t - best) <= (fine[1] - fine[0]) * 1.01 or np.isclose(after, values.min(), rtol=1e-9)
        assert np.isclose(loss.value, after, rtol=1e-10)


def test_rescale_keeps_predictions_and_lowers_ridge():
    model = MODELS["poly"].copy()
    data = toy_data(model)
    s = CoordinateSolver(ridge=0.5, linear_block=False, extrapolate=False, blocks="coordinate")
    s.fit(model, data, steps=0, quiet=True)
    out_before = model.forward(data.x_train)
    norm_before = float(model.get_flat() @ model.get_flat())
    assert s._rescale() > 0
    np.testing.assert_allclose(model.forward(data.x_train), out_before, rtol=1e-10, atol=1e-12)
    assert model.get_flat() @ model.get_flat() < norm_before
    # at the optimum, a second rescale changes nothing
    s._rescale()
    assert s._rescale() == 0


def test_last_linear_block_equals_closed_form_ridge():
    model = MODELS["poly"].copy()
    data = toy_data(model, n=30)
    s = CoordinateSolver(ridge=0.3, blocks="coordinate")
    s.fit(model, data, steps=0, quiet=True)
    s.loss_.solve_readout()
    H = s.loss_.acts[len(model.layers) - 1]
    A = np.hstack([H, np.ones((len(H), 1))])
    Y = data.one_hot("train")
    want = np.linalg.solve(A.T @ A + 0.3 * np.eye(A.shape[1]), A.T @ Y)
    lin = model.layers[-1]
    np.testing.assert_allclose(lin.params["weight"], want[:-1].T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(lin.params["bias"], want[-1], rtol=1e-8, atol=1e-10)


def test_fit_returns_history_with_required_columns():
    model = MODELS["mlp"].copy()
    s = solvers.get("coordinate")(ridge=0.01).fit(model, toy_data(model), steps=2, quiet=True)
    assert [r["step"] for r in s.history_] == [0, 1, 2]
    for col in ("loss", "train_acc", "test_acc", "time", "updates", "passes"):
        assert col in s.history_.final
    assert s.history_.final["updates"] == 2 * model.num_params


def test_time_limit_stops_within_a_sweep():
    model = MODELS["poly2"].copy()
    s = CoordinateSolver(ridge=0.1).fit(model, toy_data(model, n=200), time_limit=0.5, quiet=True)
    assert len(s.history_) >= 2 and s.history_.final["time"] < 30


def test_a_limit_spent_on_setup_says_so():
    model = MODELS["poly2"].copy()
    with pytest.warns(SymnetWarning, match="spent before the first step"):
        s = CoordinateSolver(ridge=0.1).fit(model, toy_data(model, n=200), time_limit=1e-9, quiet=True)
    assert len(s.history_) == 1


def test_records_within_a_sweep_and_a_cut_sweep_skips_its_closing_solves():
    """Interim records carry the caches' objective; past the limit, rescale and readout solve are skipped."""
    model = MODELS["poly2"].copy()
    data = toy_data(model, n=200)
    s = CoordinateSolver(ridge=0.1)
    s.record_every = 0.0  # a record at every chance
    s.fit(model.copy(), data, steps=1, quiet=True)
    partial = [r for r in s.history_ if r.get("partial")]
    assert partial, "no record inside the sweep"
    for r in partial:  # the caches' objective (mean per sample, ridge included) never above the start
        assert 0 < r["loss"] <= s.history_.records[0]["loss"] * (1 + 1e-12)
    assert "cut" not in s.history_.final and "block_decrease" in s.history_.final

    class OutOfTimeAfterOneRun(CoordinateSolver):
        def _sweep_run(self, li, kind, coords):
            out = super()._sweep_run(li, kind, coords)
            self.deadline.end_now()  # the clock has run out: the sweep must end now, with a consistent record
            return out

    cut = OutOfTimeAfterOneRun(ridge=0.1).fit(model.copy(), data, steps=1, quiet=True)
    final = cut.history_.final
    assert final.get("cut") == 1 and "block_decrease" not in final and "rescaled" not in final
    assert final["loss"] <= cut.history_.records[0]["loss"] * (1 + 1e-12)
    # the record's objective is the cut model's true one (a plain forward pass)
    m = cut.model_
    value = np.sum((m.forward(data.x_train) - data.one_hot()) ** 2) + 0.1 * m.get_flat() @ m.get_flat()
    assert np.isclose(final["loss"], value / len(data.x_train), rtol=1e-10)


class Relu(Layer):
    kind = "relu"

    def forward(self, x):
        return np.maximum(x, 0)


def test_unsupported_layer_and_bad_options_are_clear_errors():
    model = Sequential(Linear(2, 2), Relu(), Linear(2, 2), input_shape=(2,), seed=0)
    with pytest.raises(ModelError, match="cannot handle layer"):
        CoordinateSolver().fit(model, toy_data(model), steps=1, quiet=True)
    good = MODELS["mlp"].copy()
    with pytest.raises(SolverError, match="order"):
        CoordinateSolver(order="sideways").fit(good, toy_data(good), steps=1, quiet=True)
    with pytest.raises(SolverError, match="no option"):
        CoordinateSolver(learning_rate=1).fit(good, toy_data(good), steps=1, quiet=True)
    with pytest.raises(SolverError, match="unknown solver"):
        solvers.get("newton-raphson-magic")


def test_auto_ridge_of_the_sweep_is_chosen_on_held_out_samples_and_kept_on_resume(tmp_path):
    """ridge='auto' without channel blocks: select_ridge on the initial model's last-layer features is the oracle."""
    from symnet.core.linalg import select_ridge

    model = MODELS["mlp"].copy()
    data = toy_data(model, n=200, seed=4)
    H = data.x_train  # the input of the last layer, by running the layers before it
    for layer in model.layers[:-1]:
        H = layer.forward(H)
    val = np.sort(np.random.default_rng([0, 1]).choice(200, 20, replace=False))
    expected, _ = select_ridge(np.asarray(H, dtype=np.float32), data.one_hot(), val, bias=model.layers[-1].bias)
    s = CoordinateSolver().fit(model.copy(), data, steps=1, quiet=True, checkpoint_dir=tmp_path / "run")
    sel = s.ridge_selection_
    assert sel["validation_samples"] == 20 and sel["chosen"] == expected == s.ridge_ == s.loss_.ridge
    # a resumed run keeps the weight its start chose, whatever the parameters it resumes from
    elsewhere = model.copy()
    elsewhere.set_flat(np.random.default_rng(1).standard_normal(model.num_params) - model.get_flat())
    assert CoordinateSolver().fit(elsewhere.copy(), data, steps=1, quiet=True).loss_.ridge != expected  # its own
    r = CoordinateSolver().fit(elsewhere, data, steps=2, quiet=True, checkpoint_dir=tmp_path / "run",
                                    resume=True)
    assert r.loss_.ridge == expected
    whole = CoordinateSolver().fit(model.copy(), data, steps=2, quiet=True)
    np.testing.assert_allclose(r.model_.get_flat(), whole.model_.get_flat(), rtol=1e-10, atol=1e-12)
    # a fixed ridge is used as given
    assert CoordinateSolver(ridge=0.25).fit(model.copy(), data, steps=1, quiet=True).loss_.ridge == 0.25
