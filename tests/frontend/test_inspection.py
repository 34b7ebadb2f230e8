"""symnet.inspection: degrees checked against sympy, symbolic form, figures, files and the CLI."""

import json

import numpy as np
import pytest
import sympy

import symnet
from symnet.core.model.polyreg import PolyRegModel
from symnet.frontend import cli, inspection as I
from cli_run import fails
from symnet.core.model import presets as models
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly
from symnet.core.model import Sequential


def tiny_conv(channels=2):
    return Sequential(Conv2d(1, channels, 2), Poly("relu-approx-c"), AvgPool2d(2), Flatten(), Linear(channels, 2),
                      input_shape=(1, 3, 3), seed=0, name="tiny")


def sympy_degrees(model):
    """Oracle: expand the outputs with every parameter symbolic and read the degrees off with sympy."""
    outs = [sympy.expand(sympy.sympify(e)) for e in model.symbolic()]
    xs, ps = model.symbols()
    per_array = {}
    for name, arr in ps.items():
        syms = [sympy.Symbol(str(s)) for s in arr.ravel()]
        per_array[name] = max(sympy.Poly(o, *syms).total_degree() for o in outs)
    x_syms = [sympy.Symbol(str(s)) for s in xs.ravel()]
    return per_array, max(sympy.Poly(o, *x_syms).total_degree() for o in outs)


@pytest.mark.parametrize("build", [lambda: tiny_conv(1), lambda: models.get("mlp", input_dim=2, hidden=2, seed=1)])
def test_degrees_and_counts_match_sympy(build):
    model = build()
    per_array, in_inputs = sympy_degrees(model)
    rows = I.parameter_rows(model)
    assert [r["name"] for r in rows] == [n for n, _ in model.parameters()]
    assert {r["name"]: r["degree"] for r in rows} == per_array
    assert {r["name"]: r["count"] for r in rows} == {n: v.size for n, v in model.parameters()}
    assert I.input_degree(model) == in_inputs
    text = I.report(model)
    assert model.summary() in text
    assert f"degree of the outputs in the inputs: {in_inputs}" in text
    assert f"{model.num_params:>10,}" in text


def test_small_model_prints_its_polynomials():
    model = tiny_conv()
    text = I.report(model)
    exprs = model.to_sympy()
    for k, e in enumerate(exprs):
        assert f"y_{k} = {e}" in text
    # the printed polynomial is the model: evaluate it on an input and compare with forward
    x = np.random.default_rng(0).random((1, 1, 3, 3))
    subs = {sympy.Symbol(f"x[0,{i},{j}]"): x[0, 0, i, j] for i in range(3) for j in range(3)}
    np.testing.assert_allclose([float(e.subs(subs)) for e in exprs], model.forward(x)[0], rtol=1e-9)


def test_large_model_says_how_to_get_the_symbolic_form():
    model = models.get("poly", channels=2, kernel=5, seed=0)
    text = I.report(model, "runs/a/model.npz")
    assert "not printed" in text and "symnet.load('runs/a/model.npz').to_sympy()" in text
    assert "y_0 =" not in text


def test_figures_of_a_conv_model():
    model = models.get("poly", channels=3, kernel=5, seed=0)
    figs = I.figures(model)
    assert list(figs) == ["conv0_filters", "linear0_weights"]
    filters = figs["conv0_filters"]
    panels = [ax for ax in filters.axes if ax.get_images()]
    assert len(panels) == 3
    np.testing.assert_array_equal(panels[1].get_images()[0].get_array(), model.layers[0].params["weight"][1, 0])
    weights = figs["linear0_weights"]
    maps = [ax for ax in weights.axes if ax.get_images()]
    assert len(maps) == 10 * 3  # a panel per class and channel
    w = model.layers[-1].params["weight"].reshape(10, 3, 12, 12)
    np.testing.assert_array_equal(maps[3 * 4 + 2].get_images()[0].get_array(), w[4, 2])
    assert "not input pixels" in weights._suptitle.get_text()


def test_linear_maps_on_the_input_image():
    model = Sequential(Flatten(), Linear(784, 10), input_shape=(1, 28, 28), seed=0, name="linear")
    fig = I.figures(model)["linear0_weights"]
    maps = [ax for ax in fig.axes if ax.get_images()]
    assert len(maps) == 10 and maps[0].get_title() == "class 0"
    np.testing.assert_array_equal(maps[7].get_images()[0].get_array(),
                                  model.layers[1].params["weight"][7].reshape(28, 28))
    assert "on the input image (28x28)" in fig._suptitle.get_text()
    assert I.figures(models.get("mlp", input_dim=2, hidden=2)) == {}


def test_polyreg_model():
    model = PolyRegModel((1, 4, 4), 2, degree=2, window=2)
    model.weight[model.feature_names().index("x[0,1,1]*x[0,1,2]"), 1] = 3.0
    model.weight[0, 0] = -1.0
    text = I.report(model)
    assert "degree 0: 1, degree 1: 16, degree 2: " in text
    assert "non-zero coefficients: 2 of" in text
    assert f"{model.num_params:>10,}" in text
    assert "degree of the outputs in the inputs: 2" in text
    assert "y_0 = -1\n" in text + "\n" and "y_1 = 3*x[0,1,1]*x[0,1,2]" in text
    figs = I.figures(model)
    assert list(figs) == ["polyreg_degree1", "polyreg_degree2"]
    panels = [ax for ax in figs["polyreg_degree2"].axes if ax.get_images()]
    image = panels[1].get_images()[0].get_array()
    assert image[1, 1] == pytest.approx(1.5) and image[1, 2] == pytest.approx(1.5)  # split between the two pixels


# --------------------------------------------------------------------------- files and the command line
def test_cli_inspect_prints_and_writes(capsys, tmp_path):
    model = models.get("poly", channels=2, kernel=5, seed=0)
    symnet.save(model, tmp_path / "run" / "model.npz")
    code = cli.main(["inspect", str(tmp_path / "run" / "model.npz"), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert model.summary() in out and "degree of the outputs in the inputs: 2" in out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"inspect.txt", "conv0_filters.png",
                                                             "linear0_weights.png"}
    assert (tmp_path / "out" / "conv0_filters.png").read_bytes()[:4] == b"\x89PNG"
    code = cli.main(["inspect", str(tmp_path / "run")])  # a run folder works too; no --out, no files
    out, _ = capsys.readouterr()
    assert code == 0 and "saved to" not in out


def test_cli_inspect_errors(capsys, tmp_path):
    def one_line_error(*argv, needles=()):
        fails(capsys, *argv, needles=needles)

    one_line_error("inspect", str(tmp_path / "none.npz"), needles=("model not found",))
    (tmp_path / "model.npz").write_bytes(b"\x00" * 64)
    (tmp_path / "model.json").write_text(json.dumps(models.get("mlp", input_dim=2).spec()))
    one_line_error("inspect", str(tmp_path / "model.npz"), needles=("not an .npz archive",))
    np.savez(tmp_path / "model.npz", w=np.zeros(2))  # readable weights, so the broken spec is what fails
    (tmp_path / "model.json").write_text(json.dumps({"type": "sequential"}))
    one_line_error("inspect", str(tmp_path / "model.npz"), needles=("not a readable symnet model",))
