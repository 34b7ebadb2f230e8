import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from symnet.core import datasets
from symnet.core.datasets import Dataset, load, teacher_student, write_idx, xor
from symnet.core.datasets import loaders
from symnet.core.datasets.idx import encode_idx
from symnet.core.errors import CorruptFileError, DataError, DatasetNotFoundError

NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No network, no real cache, no machine-wide dataset folder, fresh in-memory cache."""
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("SYMNET_DATA", raising=False)
    monkeypatch.setattr(loaders, "SYSTEM_DIR", tmp_path / "system")
    datasets.clear_cache()
    yield calls
    datasets.clear_cache()


def _fake_arrays(n_train=30, n_test=12, hw=(28, 28), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (n_train, *hw), dtype=np.uint8),
            rng.integers(0, 10, n_train, dtype=np.uint8),
            rng.integers(0, 256, (n_test, *hw), dtype=np.uint8),
            rng.integers(0, 10, n_test, dtype=np.uint8)]


def _write_set(folder: Path, arrays, gzip=True) -> Path:
    for stem, array in zip(NAMES, arrays):
        write_idx(folder / (stem + (".gz" if gzip else "")), array, gzip=gzip)
    return folder


# --- loading from folders -------------------------------------------------------------------

@pytest.mark.parametrize("gzip", [True, False])
def test_load_from_root_folder(tmp_path, gzip):
    arrays = _fake_arrays()
    _write_set(tmp_path / "d", arrays, gzip=gzip)
    d = load("mnist", tmp_path / "d")
    assert d.name == "mnist" and d.num_classes == 10
    assert d.x_train.shape == (30, 1, 28, 28) and d.x_test.shape == (12, 1, 28, 28)
    assert d.x_train.dtype == np.float64 and d.y_train.dtype == np.int64
    np.testing.assert_array_equal(d.x_train[:, 0] * 255.0, arrays[0])
    np.testing.assert_array_equal(d.y_test, arrays[3])
    assert d.meta["origin"] == "local" and d.meta["folder"] == str(tmp_path / "d")


def test_root_name_subfolder_and_alias(tmp_path):
    _write_set(tmp_path / "fashion-mnist", _fake_arrays(seed=3))
    d = load("Fashion_MNIST", tmp_path)
    assert d.name == "fashion-mnist" and d.meta["classes"][0] == "T-shirt/top"


def test_symnet_data_env_both_forms(tmp_path, monkeypatch):
    _write_set(tmp_path / "env" / "mnist", _fake_arrays(n_train=5))
    monkeypatch.setenv("SYMNET_DATA", str(tmp_path / "env"))
    assert len(load("mnist").x_train) == 5
    _write_set(tmp_path / "flat", _fake_arrays(n_train=6))
    monkeypatch.setenv("SYMNET_DATA", str(tmp_path / "flat"))
    assert len(load("mnist").x_train) == 6
    _write_set(tmp_path / "root", _fake_arrays(n_train=7))
    assert len(load("mnist", tmp_path / "root").x_train) == 7  # root wins over $SYMNET_DATA


def test_user_cache_and_system_folders(tmp_path, monkeypatch):
    _write_set(tmp_path / "system" / "mnist", _fake_arrays(n_train=8))
    assert load("mnist").meta["folder"] == str(tmp_path / "system" / "mnist")
    _write_set(tmp_path / "home" / ".cache" / "symnet" / "mnist", _fake_arrays(n_train=9))
    assert len(load("mnist").x_train) == 9  # the user cache comes before the system folder
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert loaders.cache_dir("mnist") == tmp_path / "xdg" / "symnet" / "mnist"


def test_data_dirs_order(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMNET_DATA", "/env")
    assert datasets.data_dirs("fashionmnist") == [
        Path("/env"), Path("/env/fashion-mnist"),
        tmp_path / "home" / ".cache" / "symnet" / "fashion-mnist", tmp_path / "system" / "fashion-mnist"]
    # a folder the caller names is the only place searched: never another copy in silence
    assert datasets.data_dirs("fashionmnist", "/r") == [Path("/r"), Path("/r/fashion-mnist")]


def test_other_image_sizes_are_accepted(tmp_path):
    _write_set(tmp_path, _fake_arrays(hw=(5, 7)))
    assert load("mnist", tmp_path).input_shape == (1, 5, 7)


# --- errors ------------------------------------------------------------------------------

def test_offline_message_lists_every_folder(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("SYMNET_DATA", str(tmp_path / "env"))
    (tmp_path / "env").mkdir()
    write_idx(tmp_path / "env" / "train-images-idx3-ubyte.gz", _fake_arrays()[0])
    with pytest.raises(DatasetNotFoundError) as info:
        load("mnist", quiet=True)
    message = str(info.value)
    for folder in [tmp_path / "env", tmp_path / "env" / "mnist",
                   tmp_path / "home" / ".cache" / "symnet" / "mnist", tmp_path / "system" / "mnist"]:
        assert str(folder) + " (" in message
    assert "lacks train-labels-idx1-ubyte" in message  # the partly filled folder says what is missing
    for stem in NAMES:
        assert stem in message
    assert "--data-dir" in message and "SYMNET_DATA" in message and "mnist-small" in message
    assert "network is unreachable" in message and "\n" not in message
    assert any("ossci-datasets" in url for url in isolated) and any("lecun" in url for url in isolated)
    assert not (tmp_path / "home" / ".cache" / "symnet" / "mnist").exists() or not any(
        (tmp_path / "home" / ".cache" / "symnet" / "mnist").iterdir())


def test_a_named_data_folder_is_the_only_place_searched(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("SYMNET_DATA", str(tmp_path / "env"))
    _write_set(tmp_path / "env", _fake_arrays())           # a copy elsewhere is not picked up instead
    (tmp_path / "root").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load("mnist", tmp_path / "root", quiet=True)
    message = str(info.value)
    assert f"{tmp_path / 'root'} (none of the files)" in message and str(tmp_path / "env") not in message
    assert "--data-dir" in message and not isolated   # and nothing was downloaded
    for name in ("mnist-small", "xor", "teacher-student"):
        with pytest.raises(DataError, match="does not apply"):
            load(name, tmp_path / "root")


def test_no_download_means_no_network(isolated):
    with pytest.raises(DatasetNotFoundError, match="turned off") as info:
        load("fashion-mnist", download=False)
    assert isolated == []
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


class _FakeResponse(io.BytesIO):
    def __init__(self, payload):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_download_verifies_md5_and_writes_to_cache(tmp_path, monkeypatch):
    arrays = _fake_arrays(n_train=4, n_test=3)
    served = {stem: encode_idx(a) for stem, a in zip(NAMES, arrays)}
    roles = list(loaders.FILES)
    md5 = {role: hashlib.md5(served[stem]).hexdigest() for role, stem in zip(roles, NAMES)}
    monkeypatch.setitem(loaders.SOURCES["mnist"], "md5", md5)
    import gzip
    fetched = []

    def serve(url, timeout=None):
        fetched.append(url)
        stem = url.rsplit("/", 1)[-1].removesuffix(".gz")
        return _FakeResponse(gzip.compress(served[stem]))

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    d = load("mnist", quiet=True)
    cache = tmp_path / "home" / ".cache" / "symnet" / "mnist"
    assert d.meta["origin"] == "download" and d.meta["folder"] == str(cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{s}.gz" for s in NAMES)
    np.testing.assert_array_equal(d.y_train, arrays[1])
    assert len(fetched) == 4
    datasets.clear_cache()
    assert load("mnist").meta["origin"] == "local" and len(fetched) == 4  # served from the cache now

    # A mirror serving other bytes is rejected and nothing is stored.
    monkeypatch.setitem(loaders.SOURCES["fashion-mnist"], "md5", md5)
    monkeypatch.setitem(loaders.SOURCES["fashion-mnist"], "gz_md5", {})
    served[NAMES[1]] = encode_idx(arrays[1][::-1].copy())
    with pytest.raises(DatasetNotFoundError, match="md5"):
        load("fashion-mnist", quiet=True)
    assert sorted(p.name for p in loaders.cache_dir("fashion-mnist").iterdir()) == [f"{NAMES[0]}.gz"]


def test_corrupt_local_file_is_named(tmp_path):
    _write_set(tmp_path, _fake_arrays())
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(CorruptFileError, match="re-download or re-copy") as info:
        load("mnist", tmp_path)
    assert str(path) in str(info.value)


def test_label_out_of_range_and_count_mismatch(tmp_path):
    arrays = _fake_arrays()
    arrays[1][3] = 10
    _write_set(tmp_path / "a", arrays)
    with pytest.raises(CorruptFileError, match="label 10"):
        load("mnist", tmp_path / "a")
    arrays = _fake_arrays()
    arrays[3] = arrays[3][:-1]
    _write_set(tmp_path / "b", arrays)
    with pytest.raises(CorruptFileError, match="12 images but .* 11 labels"):
        load("mnist", tmp_path / "b")
    arrays = _fake_arrays()
    arrays[0], arrays[1] = arrays[1], arrays[0]
    _write_set(tmp_path / "c", arrays)
    with pytest.raises(CorruptFileError, match="swapped"):
        load("mnist", tmp_path / "c")


def test_unknown_name():
    with pytest.raises(DataError, match="mnist-small"):
        load("cifar10")
    assert datasets.available() == ["mnist-small", "mnist", "fashion-mnist", "xor", "teacher-student"]


# --- caching ------------------------------------------------------------------------------

def test_repeated_loads_share_read_only_arrays(tmp_path):
    arrays = _fake_arrays()
    _write_set(tmp_path, arrays)
    a, b = load("mnist", tmp_path), load("mnist", str(tmp_path))
    assert a.x_train is b.x_train and a.y_test is b.y_test
    for array in (a.x_train, a.y_train, a.x_test, a.y_test, a.subset(5).x_train):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0] = 0
    # Replacing a file on disk is noticed (size or mtime changes the cache key).
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(30, np.uint8))
    import os
    os.utime(tmp_path / "train-labels-idx1-ubyte.gz", ns=(1, 1))
    assert load("mnist", tmp_path).y_train.sum() == 0


# --- real data ----------------------------------------------------------------------------

def test_full_mnist_from_shared_folder(mnist_dir):
    d = load("mnist", mnist_dir)
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert int(d.y_train[0]) == 5 and int(d.y_test[0]) == 7
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    # Published per-class counts of MNIST.
    assert np.bincount(d.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(d.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # Pixel values are exactly k/255.
    k = d.x_test[:100] * 255.0
    np.testing.assert_array_equal(k, np.round(k))


def test_embedded_subset_is_the_head_of_mnist(mnist_dir):
    small = load("mnist-small")
    assert small.name == "mnist-small" and small.meta["origin"] == "embedded"
    assert small.x_train.shape == (10000, 1, 28, 28) and small.x_test.shape == (2000, 1, 28, 28)
    assert load("embedded").x_train is small.x_train and load("default").y_test is small.y_test
    full = load("mnist", mnist_dir)
    np.testing.assert_array_equal(small.x_train, full.x_train[:10000])
    np.testing.assert_array_equal(small.y_train, full.y_train[:10000])
    np.testing.assert_array_equal(small.x_test, full.x_test[:2000])
    np.testing.assert_array_equal(small.y_test, full.y_test[:2000])


def test_embedded_readme_gives_attribution():
    text = (loaders.EMBEDDED_DIR / "README.md").read_text()
    assert "Yann LeCun" in text and "Corinna Cortes" in text and "CC BY-SA 3.0" in text
    assert "tools/make_embedded_data.py" in text


# --- Dataset validation -------------------------------------------------------------------

def test_dataset_rejects_bad_input():
    x, y = np.zeros((4, 1, 2, 2)), np.array([0, 1, 1, 0])
    bad = x.copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        Dataset("t", bad, y, x, y, 2)
    with pytest.raises(DataError, match="0..1"):
        Dataset("t", x, np.array([0, 1, 2, 0]), x, y, 2)
    with pytest.raises(DataError, match="labels must have shape"):
        Dataset("t", x, y[:3], x, y, 2)
    with pytest.raises(DataError, match="share one input shape"):
        Dataset("t", x, y, np.zeros((4, 1, 3, 3)), y, 2)


# --- synthetic ----------------------------------------------------------------------------

def test_xor():
    d = load("xor")
    assert d.x_train.shape == (4, 2) and d.num_classes == 2
    np.testing.assert_array_equal(d.y_train, np.logical_xor(d.x_train[:, 0], d.x_train[:, 1]))
    np.testing.assert_array_equal(d.x_test, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(d.y_test, [0, 1, 1, 0])
    big = xor(10)
    np.testing.assert_array_equal(big.x_train[4:8], d.x_test)
    assert big.y_train.tolist() == [0, 1, 1, 0] * 2 + [0, 1]
    noisy_a, noisy_b, noisy_c = xor(400, 0.1, seed=1), xor(400, 0.1, seed=1), xor(400, 0.1, seed=2)
    np.testing.assert_array_equal(noisy_a.x_train, noisy_b.x_train)
    assert not np.array_equal(noisy_a.x_train, noisy_c.x_train)
    jitter = noisy_a.x_train - xor(400).x_train
    assert 0.08 < jitter.std() < 0.12
    with pytest.raises(DataError):
        xor(3)
    with pytest.raises(DataError):
        xor(8, noise=-1)


def test_teacher_student_shapes_and_determinism():
    d = teacher_student(n_train=200, n_test=50, input_dim=5, hidden=3, degree=3, num_classes=4, seed=7)
    assert d.x_train.shape == (200, 5) and d.x_test.shape == (50, 5) and d.num_classes == 4
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    t = d.meta["teacher"]
    assert t["W1"].shape == (3, 5) and t["b1"].shape == (3,) and t["a"].shape == (4,)
    assert t["W2"].shape == (4, 3) and t["b2"].shape == (4,)
    again = teacher_student(n_train=200, n_test=50, input_dim=5, hidden=3, degree=3, num_classes=4, seed=7)
    np.testing.assert_array_equal(d.x_train, again.x_train)
    np.testing.assert_array_equal(d.y_test, again.y_test)
    other = teacher_student(n_train=200, n_test=50, input_dim=5, hidden=3, degree=3, num_classes=4, seed=8)
    assert not np.array_equal(d.x_train, other.x_train)


def test_teacher_outputs_match_a_per_sample_oracle():
    d = teacher_student(n_train=40, n_test=10, seed=3)
    t = d.meta["teacher"]
    poly = np.polynomial.Polynomial(t["a"])
    for i in range(0, 40, 7):  # independent per-sample evaluation
        h = poly(t["W1"] @ d.x_train[i] + t["b1"])
        np.testing.assert_allclose(d.meta["teacher_outputs_train"][i], t["W2"] @ h + t["b2"], rtol=1e-12)
    np.testing.assert_array_equal(d.y_train, d.meta["teacher_outputs_train"].argmax(axis=1))
    np.testing.assert_array_equal(d.y_test, d.meta["teacher_outputs_test"].argmax(axis=1))
    np.testing.assert_allclose(d.meta["teacher_outputs_train"].mean(axis=0), 0.0, atol=1e-12)
    assert len(np.unique(teacher_student().y_train)) == 3


def test_teacher_can_be_reused():
    d = teacher_student(n_train=30, n_test=5, seed=1)
    same = teacher_student(n_train=30, n_test=5, seed=1, teacher=d.meta["teacher"])
    np.testing.assert_array_equal(same.meta["teacher_outputs_train"], d.meta["teacher_outputs_train"])
    fresh = teacher_student(n_train=30, n_test=5, seed=2, teacher=d.meta["teacher"])
    for key in ("W1", "a", "b2"):
        np.testing.assert_array_equal(fresh.meta["teacher"][key], d.meta["teacher"][key])
    with pytest.raises(DataError, match="lacks"):
        teacher_student(teacher={"W1": np.eye(2)})


def test_mnist_files_are_not_taken_for_fashion_mnist(mnist_dir):
    with pytest.raises(DataError, match="are MNIST, not Fashion-MNIST"):
        load("fashion-mnist", mnist_dir)
