"""Sequential: parameter names and flat order, init, locate, spec/save/load round trips, copy, summary, degree."""

import json
import re

import numpy as np
import pytest
import symengine as se
import sympy

import symnet
from symnet.core.model import presets as models
from symnet.core.errors import CorruptFileError, ModelError
from symnet.core.layers import Conv2d, Flatten, Linear, Square
from symnet.core.model import Sequential, model_from_spec

from tiny_models import all_models, randomized, tiny_data

MODELS = all_models()
NAME = re.compile(r"^[a-z]+\d+\.(weight|bias)\[\d+(,\d+)*\]$")


# --------------------------------------------------------------------------- names and the flat vector
@pytest.mark.parametrize("name", list(MODELS))
def test_param_names_are_readable_unique_and_in_flat_order(name):
    model = MODELS[name].copy()
    names = model.param_names()
    assert len(names) == len(set(names)) == model.num_params == sum(v.size for _, v in model.parameters())
    assert all(NAME.match(n) for n in names), [n for n in names if not NAME.match(n)][:3]
    # stable: another build (other seed) names the same parameters the same way
    assert model_from_spec(model.spec()).param_names() == names
    # order = flat order: element i of the flat vector is the parameter named names[i]
    model.set_flat(np.arange(model.num_params, dtype=np.float64))
    for i, n in enumerate(names):
        li, key, idx = model.locate(n)
        assert model.layers[li].params[key][idx] == i
    for n, (start, stop) in model.offsets().items():
        li, key, idx = model.locate(n)
        assert idx is None
        np.testing.assert_array_equal(model.layers[li].params[key].ravel(), np.arange(start, stop))


def test_param_names_hand_checked():
    model = Sequential(Conv2d(1, 2, 3), Square(), Flatten(), Linear(2 * 2 * 2, 3), input_shape=(1, 4, 4))
    names = model.param_names()
    assert names[:2] == ["conv0.weight[0,0,0,0]", "conv0.weight[0,0,0,1]"]
    assert names[9] == "conv0.weight[1,0,0,0]"
    assert names[17:20] == ["conv0.weight[1,0,2,2]", "conv0.bias[0]", "conv0.bias[1]"]
    assert names[20] == "linear0.weight[0,0]" and names[27] == "linear0.weight[0,7]"
    assert names[-3:] == ["linear0.bias[0]", "linear0.bias[1]", "linear0.bias[2]"]
    assert [layer.name for layer in model.layers] == ["conv0", "act0", "flatten0", "linear0"]
    assert model.num_params == 2 * 9 + 2 + 8 * 3 + 3


@pytest.mark.parametrize("preset,kwargs,count", [
    ("poly", dict(channels=4, kernel=3), 4 * 9 + 4 + 4 * 13 * 13 * 10 + 10),
    ("poly", dict(channels=16, kernel=5), 16 * 25 + 16 + 16 * 12 * 12 * 10 + 10),
    ("seed", {}, 9 + 1 + 26 * 26 * 10 + 10),
    ("poly2", {}, 16 * 25 + 16 + 32 * 16 * 25 + 32 + 32 * 4 * 4 * 10 + 10),
    ("mlp", dict(input_dim=2, hidden=3), 2 * 3 + 3 + 3 * 2 + 2),
])
def test_preset_parameter_counts(preset, kwargs, count):
    assert models.get(preset, seed=None, **kwargs).num_params == count


def test_get_flat_set_flat_round_trip_and_errors(rng):
    model = MODELS["poly"].copy()
    arrays = [v for _, v in model.parameters()]
    theta = rng.normal(size=model.num_params)
    model.set_flat(theta)
    np.testing.assert_array_equal(model.get_flat(), theta)
    # set_flat writes into the live arrays; get_flat returns a copy
    assert all(a is b for a, (_, b) in zip(arrays, model.parameters()))
    flat = model.get_flat()
    flat[:] = 0.0
    np.testing.assert_array_equal(model.get_flat(), theta)
    for bad in (theta[:-1], np.append(theta, 1.0), theta[:, None], theta.reshape(1, -1)):
        with pytest.raises(ModelError, match=rf"\({model.num_params},\)"):
            model.set_flat(bad)
    np.testing.assert_array_equal(model.get_flat(), theta)


def test_seeded_init_is_deterministic_and_differs_across_seeds():
    a = models.get("poly", input_shape=(1, 6, 6), channels=2, kernel=3, seed=1)
    b = models.get("poly", input_shape=(1, 6, 6), channels=2, kernel=3, seed=1)
    c = models.get("poly", input_shape=(1, 6, 6), channels=2, kernel=3, seed=2)
    np.testing.assert_array_equal(a.get_flat(), b.get_flat())
    assert not np.array_equal(a.get_flat(), c.get_flat())
    assert np.any(a.get_flat() != 0)
    c.init(1)
    np.testing.assert_array_equal(c.get_flat(), a.get_flat())
    zero = models.get("poly", input_shape=(1, 6, 6), channels=2, kernel=3, seed=None)
    assert not np.any(zero.get_flat())


# --------------------------------------------------------------------------- locate
def test_locate_parses_names():
    model = MODELS["poly2"]
    assert model.locate("conv0.weight[1,0,1,0]") == (0, "weight", (1, 0, 1, 0))
    assert model.locate("conv1.weight[1, 0, 1, 1]") == (3, "weight", (1, 0, 1, 1))
    assert model.locate("conv1.bias[1]") == (3, "bias", (1,))
    assert model.locate("linear0.weight") == (7, "weight", None)


@pytest.mark.parametrize("bad,needle", [
    ("conv0.weight[2,0,0,0]", "out of range"),
    ("conv0.weight[0,0,0]", "out of range"),
    ("conv0.weight[]", "cannot parse"),
    ("conv0.weight[1,,0,0]", "cannot parse"),
    ("conv0.weight[1,0,0,0,]", "cannot parse"),
    ("conv0.weight[0,0,0,0,0]", "out of range"),
    ("conv7.weight[0,0,0,0]", "it has: conv0.weight"),
    ("conv0.kernel[0]", "no parameter"),
    ("act0.weight", "no parameter"),
    ("conv0", "no parameter"),
    ("conv0.weight[-1,0,0,0]", "cannot parse"),
    ("conv0.weight[a]", "cannot parse"),
    ("conv0.weight[0,0,0,0", "cannot parse"),
    ("", "cannot parse"),
])
def test_locate_rejects_bad_names(bad, needle):
    with pytest.raises(ModelError, match=re.escape(needle)):
        MODELS["poly2"].locate(bad)


# --------------------------------------------------------------------------- spec, save, load, copy
@pytest.mark.parametrize("name", list(MODELS))
def test_spec_round_trip_gives_identical_forward(name, rng):
    model = randomized(MODELS[name])
    spec = json.loads(json.dumps(model.spec()))  # must survive JSON
    rebuilt = model_from_spec(spec)
    assert rebuilt.spec() == model.spec()
    assert not np.any(rebuilt.get_flat())
    rebuilt.set_flat(model.get_flat())
    X = rng.random((3,) + model.input_shape)
    np.testing.assert_array_equal(rebuilt.forward(X), model.forward(X))
    assert rebuilt.param_names() == model.param_names()


@pytest.mark.parametrize("spec,needle", [
    ([], "dict"),
    ({"layers": []}, "'type'"),
    ({"type": "resnet"}, "unknown model type"),
    ({"type": "sequential", "input_shape": [2], "layers": [{"type": "Dense"}]}, "unknown layer type"),
])
def test_bad_specs(spec, needle):
    with pytest.raises(ModelError, match=needle):
        model_from_spec(spec)


def test_save_load_round_trip(tmp_path, rng):
    model = randomized(MODELS["poly-same"])
    X = rng.random((4,) + model.input_shape)
    path = symnet.save(model, tmp_path / "m.npz")
    assert path.exists() and path.with_suffix(".json").exists()
    loaded = symnet.load(path)
    np.testing.assert_array_equal(loaded.get_flat(), model.get_flat())
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))
    assert loaded.spec() == model.spec()
    # a folder holds model.npz and model.json
    symnet.save(model, tmp_path / "run")
    np.testing.assert_array_equal(symnet.load(tmp_path / "run").forward(X), model.forward(X))


def test_load_truncated_or_garbage_npz_is_corrupt(tmp_path):
    model = randomized(MODELS["poly2"])
    path = symnet.save(model, tmp_path / "m.npz")
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(CorruptFileError, match="re-create"):
        symnet.load(path)
    path.write_bytes(b"not a zip archive at all")
    with pytest.raises(CorruptFileError):
        symnet.load(path)


def test_load_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        symnet.load(tmp_path / "nothing.npz")
    model = MODELS["mlp"]
    path = symnet.save(model, tmp_path / "m.npz")
    path.unlink()  # spec present, weights gone
    with pytest.raises(FileNotFoundError):
        symnet.load(path)
    with pytest.raises(ModelError, match=".npz"):
        symnet.load(tmp_path / "m.json")


def test_load_weights_of_another_model_is_corrupt(tmp_path):
    a = symnet.save(MODELS["poly"], tmp_path / "a.npz")
    b = symnet.save(MODELS["poly-same"], tmp_path / "b.npz")
    a.with_suffix(".json").write_bytes(b.with_suffix(".json").read_bytes())
    with pytest.raises(CorruptFileError):
        symnet.load(a)


def test_copy_is_deep(rng):
    model = randomized(MODELS["poly"])
    X = rng.random((2,) + model.input_shape)
    before = model.forward(X)
    clone = model.copy()
    np.testing.assert_array_equal(clone.forward(X), before)
    clone.set_flat(clone.get_flat() + 1.0)
    clone.layers[0].params["weight"][0, 0, 0, 0] = 99.0
    np.testing.assert_array_equal(model.forward(X), before)
    assert all(a is not b for a, b in zip(clone.layers, model.layers))
    assert all(a is not b for (_, a), (_, b) in zip(clone.parameters(), model.parameters()))


@pytest.mark.parametrize("name", list(MODELS))
def test_summary_mentions_every_layer(name):
    model = MODELS[name]
    text = model.summary()
    for layer in model.layers:
        assert layer.name in text
        assert type(layer).__name__ in text
    assert f"total parameters: {model.num_params}" in text


# --------------------------------------------------------------------------- degree
def expanded_degree(expr, symbol):
    """Degree in ``symbol`` of a univariate symengine expression, by sympy's Poly."""
    return sympy.Poly(sympy.sympify(se.expand(expr)), sympy.sympify(symbol)).degree()


@pytest.mark.parametrize("name", list(MODELS))
def test_degree_matches_symbolic_expansion(name):
    model = randomized(MODELS[name], seed=5)
    X, _ = tiny_data(model, n=1, seed=2)
    outputs = model.symbolic(inputs=X[0])
    names = model.param_names()
    values = dict(zip(names, model.get_flat()))
    for array, (start, stop) in model.offsets().items():
        found = []
        for i in sorted({start, (start + stop) // 2, stop - 1}):
            symbol = se.Symbol(names[i])
            others = {se.Symbol(n): se.Float(float(v)) for n, v in values.items() if n != names[i]}
            degree = max(expanded_degree(out.subs(others), symbol) for out in outputs)
            assert model.degree(names[i]) == degree, names[i]
            found.append(degree)
        assert model.degree(array) == max(found), array


def test_degree_hand_checked():
    # conv -> x^2 -> pool -> conv -> x^2 -> pool -> linear: 4, 2, 1
    model = MODELS["poly2"]
    assert [model.degree(n) for n in ("conv0.weight", "conv0.bias", "conv1.weight", "linear0.bias")] == [4, 4, 2, 1]
    cubic = MODELS["poly2-same"]  # relu-approx-c is cubic
    assert cubic.degree("conv0.weight[0,0,1,1]") == 9 and cubic.degree("conv1.bias[0]") == 3
    with pytest.raises(ModelError):
        model.degree("conv0.weight[5,0,0,0]")


@pytest.mark.parametrize("module", ["symnet.core.layers", "symnet.core.model", "symnet.core.model.presets"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_saved_models_carry_a_format_version_and_refuse_what_they_cannot_vouch_for(tmp_path):
    # the file format is versioned; unknown, missing and non-finite arrays are refused at load, and a
    # non-finite model is refused at save (nothing is written then)
    from symnet.core.errors import CorruptFileError, ModelError
    from symnet.core.model.saving import FORMAT_KEY, FORMAT_VERSION, load_model, save_model

    m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    path = save_model(m, tmp_path / "a")
    arrays = dict(np.load(path))
    assert int(arrays[FORMAT_KEY]) == FORMAT_VERSION
    np.testing.assert_array_equal(load_model(path).get_flat(), m.get_flat())

    def rewrite(**changes):
        new = {**arrays, **changes}
        np.savez(path, **{k: v for k, v in new.items() if v is not None})

    rewrite(extra=np.zeros(3))
    with pytest.raises(CorruptFileError, match="does not name \\(extra\\)"):
        load_model(path)
    rewrite(**{FORMAT_KEY: np.array(FORMAT_VERSION + 1)})
    with pytest.raises(CorruptFileError, match="upgrade symnet"):
        load_model(path)
    name = next(k for k in arrays if k != FORMAT_KEY)
    rewrite(**{name: np.full_like(arrays[name], np.nan)})
    with pytest.raises(CorruptFileError, match="not finite"):
        load_model(path)
    rewrite(**{name: None})
    with pytest.raises(CorruptFileError, match="lack"):
        load_model(path)
    # a file written before versions existed (no version array) still loads
    np.savez(path, **{k: v for k, v in arrays.items() if k != FORMAT_KEY})
    np.testing.assert_array_equal(load_model(path).get_flat(), m.get_flat())
    # a diverged model is never saved, and the file already there is kept
    m.layers[0].params["weight"][...] = np.inf
    with pytest.raises(ModelError, match="not finite"):
        save_model(m, path)
    assert np.all(np.isfinite(load_model(path).get_flat()))
