"""symnet.robustness: the noise definitions checked against brute force, evaluation, files and the CLI."""

import json
import math

import numpy as np
import pytest
from scipy import stats

import symnet
from symnet.frontend import cli, robustness as R
from symnet.core import datasets
from symnet.core.model import presets as models
from symnet.core.errors import DataError
from cli_run import fails as one_line_error


def brute_force_mask(centre_row, centre_col, width, height, H=28, W=28):
    """Pixel (i, j) is black when its centre (i + 0.5, j + 0.5) lies in the rectangle, which is clipped."""
    mask = np.zeros((H, W), dtype=bool)
    for i in range(H):
        for j in range(W):
            in_rows = centre_row - height / 2 <= i + 0.5 < centre_row + height / 2
            in_cols = centre_col - width / 2 <= j + 0.5 < centre_col + width / 2
            mask[i, j] = in_rows and in_cols
    return mask


# --------------------------------------------------------------------------- global noise
def test_gaussian_noise_is_clipped_sum_with_the_drawn_field():
    rng = np.random.default_rng(3)
    X = rng.random((50, 1, 28, 28))
    out = R.gaussian_noise(X, 0.3, np.random.default_rng(7))
    Z = np.random.default_rng(7).standard_normal(X.shape)  # the same draws, by hand
    np.testing.assert_array_equal(out, np.minimum(np.maximum(X + 0.3 * Z, 0.0), 1.0))
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(R.gaussian_noise(X, 0.0, np.random.default_rng(1)), X)


def test_gaussian_noise_statistics_and_clipping():
    X = np.full((200, 1, 28, 28), 0.5)
    small = R.gaussian_noise(X, 0.05, np.random.default_rng(0)) - 0.5  # 10 sigma from the bounds: no clipping
    assert small.std() == pytest.approx(0.05, rel=0.01) and abs(small.mean()) < 1e-3
    big = R.gaussian_noise(X, 10.0, np.random.default_rng(0))
    assert set(np.unique(big[(big > 0) & (big < 1)].round(12))) != set()  # some stay inside
    # P(0.5 + 10 Z <= 0) = Phi(-0.05): the clipped share at each bound
    assert np.mean(big == 0.0) == pytest.approx(stats.norm.cdf(-0.05), abs=0.01)
    assert np.mean(big == 1.0) == pytest.approx(stats.norm.cdf(-0.05), abs=0.01)
    with pytest.raises(DataError, match="sigma"):
        R.gaussian_noise(X, -1.0, np.random.default_rng(0))


# --------------------------------------------------------------------------- local noise
def test_patch_geometry_follows_the_definition():
    n, area = 20000, 120.0
    g = R.patch_geometry(n, area, np.random.default_rng(0))
    for key in ("centre_row", "centre_col"):
        c = g[key]
        assert c.min() >= 6.0 and c.max() <= 22.0
        assert stats.kstest((c - 6.0) / 16.0, "uniform").pvalue > 1e-3
    D = g["aspect"]
    assert D.min() > 0.5 and D.max() < 2.0
    assert stats.kstest((D - 0.5) / 1.5, "uniform").pvalue > 1e-3
    root = math.sqrt(area)
    np.testing.assert_array_equal(g["width"], [math.floor(d * root) for d in D])
    np.testing.assert_array_equal(g["height"], [math.floor(root / d) for d in D])
    # floor(D r) floor(r / D) <= r^2 = A, and close to it
    assert np.all(g["width"] * g["height"] <= area)
    assert np.mean(g["width"] * g["height"]) > 0.8 * area


def test_patch_masks_match_brute_force_and_are_clipped():
    rng = np.random.default_rng(1)
    X = np.ones((60, 1, 28, 28))
    uniforms = rng.random((60, 3))
    uniforms[:3, :2] = [[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]  # centres at the corners of the range: clipped
    for area in (0.0, 9.0, 50.0, 300.0, 700.0):
        g = R.patch_geometry(60, area, uniforms=uniforms)
        out = R.black_patches(X, area, uniforms=uniforms)
        for k in range(60):
            expected = brute_force_mask(g["centre_row"][k], g["centre_col"][k], g["width"][k], g["height"][k])
            np.testing.assert_array_equal(out[k, 0] == 0.0, expected)
        inside = (g["centre_row"] - g["height"] / 2 >= 0) & (g["centre_row"] + g["height"] / 2 <= 28) & \
                 (g["centre_col"] - g["width"] / 2 >= 0) & (g["centre_col"] + g["width"] / 2 <= 28)
        blacked = (out == 0).sum(axis=(1, 2, 3))
        np.testing.assert_array_equal(blacked[inside], (g["width"] * g["height"])[inside])  # whole patch
        assert np.all(blacked <= g["width"] * g["height"])
    assert (R.black_patches(X, 700.0, uniforms=uniforms)[:3] == 0).sum() < 3 * 700  # the corner ones are cut


def test_patches_black_out_every_channel_and_grow_nested():
    rng = np.random.default_rng(2)
    X = rng.random((40, 2, 28, 28)) + 0.01
    uniforms = rng.random((40, 3))
    previous = np.zeros((40, 28, 28), dtype=bool)
    for area in (0, 10, 40, 90, 200, 400):
        out = R.black_patches(X, area, uniforms=uniforms)
        black = out == 0
        np.testing.assert_array_equal(black[:, 0], black[:, 1])
        np.testing.assert_array_equal(out[~black], X[~black])
        assert np.all(black[:, 0] >= previous)  # a larger area contains the smaller patch
        previous = black[:, 0]
    np.testing.assert_array_equal(R.black_patches(X, 0.0, np.random.default_rng(0)), X)


def test_patch_box_convention():
    # Centre 14, width 4: pixels whose centres lie in [12, 16) -> 12..15.
    g = {"centre_row": np.array([14.0]), "centre_col": np.array([14.3]), "height": np.array([4]),
         "width": np.array([3])}
    top, bottom, left, right = R.patch_boxes(g, 28, 28)
    assert (top[0], bottom[0]) == (12, 16)
    assert (left[0], right[0]) == (13, 16)  # [12.8, 15.8): centres 13.5, 14.5, 15.5
    np.testing.assert_array_equal(R.patch_masks((top, bottom, left, right), 28, 28)[0],
                                  brute_force_mask(14.0, 14.3, 3, 4))


# --------------------------------------------------------------------------- evaluation
@pytest.fixture(scope="module")
def small_data():
    return datasets.load("mnist-small").subset(10, 300)


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):
    """Two small models saved to disk: a fitted linear map on pixels and a random conv model."""
    folder = tmp_path_factory.mktemp("models")
    data = datasets.load("mnist-small").subset(2000, 10)
    linear = symnet.Sequential(symnet.Flatten(), symnet.Linear(784, 10), input_shape=(1, 28, 28), seed=0,
                               name="linear")
    A = np.c_[data.x_train.reshape(2000, -1), np.ones(2000)]
    W = np.linalg.lstsq(A, data.one_hot("train"), rcond=None)[0]
    linear.layers[1].params["weight"][...] = W[:-1].T
    linear.layers[1].params["bias"][...] = W[-1]
    conv = models.get("poly", channels=2, kernel=5, seed=1)
    symnet.save(linear, folder / "linear" / "model.npz")
    symnet.save(conv, folder / "conv.npz")
    return folder, linear, conv


def test_zero_noise_gives_the_clean_accuracy(small_data, trained):
    _, linear, conv = trained
    r = R.evaluate([linear, conv], small_data, sigmas=[0.0, 0.4], areas=[0.0, 150.0], seed=0, quiet=True)
    for i, m in enumerate((linear, conv)):
        clean = np.mean(np.argmax(m.forward(small_data.x_test), axis=1) == small_data.y_test)
        assert r.clean[i] == clean == r.acc_sigma[i, 0] == r.acc_area[i, 0]
    assert r.clean[0] > 0.6  # the fitted linear map is a real classifier
    assert r.acc_sigma[0, 1] < r.clean[0] and r.acc_area[0, 1] < r.clean[0]
    np.testing.assert_allclose(r.drop("sigma"), (r.clean[:, None] - r.acc_sigma) / r.clean[:, None])
    assert r.drop("area")[0, 0] == 0.0


def test_evaluation_is_deterministic_under_the_seed(small_data, trained):
    _, linear, _ = trained
    kwargs = dict(sigmas=[0.3, 0.6], areas=[100.0, 200.0], quiet=True)
    a = R.evaluate([linear], small_data, seed=5, **kwargs)
    b = R.evaluate([linear], small_data, seed=5, **kwargs)
    c = R.evaluate([linear], small_data, seed=6, **kwargs)
    np.testing.assert_array_equal(a.acc_sigma, b.acc_sigma)
    np.testing.assert_array_equal(a.acc_area, b.acc_area)
    assert not (np.array_equal(a.acc_sigma, c.acc_sigma) and np.array_equal(a.acc_area, c.acc_area))
    # a level's images do not depend on which other levels are asked for
    d = R.evaluate([linear], small_data, seed=5, sigmas=[0.6], areas=[200.0], quiet=True)
    assert d.acc_sigma[0, 0] == a.acc_sigma[0, 1] and d.acc_area[0, 0] == a.acc_area[0, 1]


def test_result_table_json_and_figures(small_data, trained, tmp_path):
    folder, _, _ = trained
    r = R.evaluate([folder / "linear" / "model.npz", folder / "conv.npz"], small_data, sigmas=[0, 0.5],
                   areas=[0, 100], seed=0, quiet=True)
    assert r.names == ["linear", "conv"]
    text = r.table()
    assert "sigma=0.5" in text and "A=100" in text and "linear" in text and "relative accuracy drop" in text
    written = {p.name for p in r.save(tmp_path)}
    assert written == {"robustness.json", "table.txt", "table.md", "robustness_accuracy.png", "robustness_drop.png",
                       "noise_examples.png"}
    payload = json.loads((tmp_path / "robustness.json").read_text())
    assert payload["accuracy_sigma"] == r.acc_sigma.tolist() and payload["models"] == ["linear", "conv"]
    figs = r.plot()
    acc = figs["robustness_accuracy"]
    assert len(acc.axes) == 2 and acc.axes[0].get_ylim() == (0, 100)
    assert [t.get_text() for t in acc.axes[1].get_legend().get_texts()] == ["linear", "conv"]
    assert "sigma" in acc.axes[0].get_xlabel() and "area" in acc.axes[1].get_xlabel()


def test_mismatched_and_bad_models(small_data, trained, tmp_path):
    folder, _, _ = trained
    vector = models.get("mlp", input_dim=2, hidden=2, seed=0)
    symnet.save(vector, tmp_path / "vec.npz")
    with pytest.raises(DataError, match="different input shapes"):
        R.load_models([folder / "conv.npz", tmp_path / "vec.npz"])
    with pytest.raises(DataError, match="different input shapes"):
        R.evaluate([trained[1], vector], small_data, quiet=True)
    with pytest.raises(DataError, match="evaluate them on the dataset"):
        R.evaluate([vector], small_data, quiet=True)
    with pytest.raises(FileNotFoundError, match="model not found"):
        R.load_models([tmp_path / "nothing.npz"])


# --------------------------------------------------------------------------- command line


def test_cli_exit_codes(capsys, trained, tmp_path):
    folder, _, _ = trained
    symnet.save(models.get("mlp", input_dim=2, hidden=2, seed=0), tmp_path / "vec.npz")
    one_line_error(capsys, "robustness", str(folder / "conv.npz"), str(tmp_path / "missing.npz"),
                   needles=("model not found", "missing.npz"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.npz").write_bytes(b"not a zip archive")
    (bad / "model.json").write_text(json.dumps(models.get("poly", channels=2).spec()))
    one_line_error(capsys, "robustness", str(bad / "model.npz"), needles=("model.npz", "not an .npz archive"))
    (bad / "model.json").write_text("{not json")
    one_line_error(capsys, "robustness", str(bad / "model.npz"), needles=("not valid JSON",))
    one_line_error(capsys, "robustness", str(folder / "conv.npz"), str(tmp_path / "vec.npz"),
                   needles=("different input shapes",))
    one_line_error(capsys, "robustness", str(folder / "conv.npz"), "--sigmas", "0,abc", needles=("--sigmas",))


def test_cli_writes_table_and_figures(capsys, trained, tmp_path):
    folder, _, _ = trained
    code = cli.main(["robustness", str(folder / "linear"), str(folder / "conv.npz"), "--test-samples", "100",
                     "--sigmas", "0,0.5", "--areas", "0,80", "--quiet", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "sigma=0.5" in out and "A=80" in out and str(tmp_path) in out
    assert (tmp_path / "robustness_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "robustness.json").read_text())["n_test"] == 100
