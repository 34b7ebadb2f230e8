"""The maintenance scripts in ``tools/`` run against the package as it is laid out now."""

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symnet.core.datasets import load
from symnet.core.datasets import loaders
from symnet.core.datasets.idx import encode_idx, read_idx, write_idx

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool(name: str):
    """Import ``tools/<name>.py`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_source(tmp_path, monkeypatch):
    """A 6-train / 4-test IDX source, with its digests standing in for the canonical MNIST ones."""
    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
              "train_labels": np.arange(6, dtype=np.uint8),
              "test_images": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
              "test_labels": np.array([9, 8, 7, 6], np.uint8)}
    source = tmp_path / "source"
    for role, stem in loaders.FILES.items():
        write_idx(source / f"{stem}.gz", arrays[role], gzip=True)
    md5 = {role: hashlib.md5(encode_idx(a)).hexdigest() for role, a in arrays.items()}
    monkeypatch.setitem(loaders.SOURCES["mnist"], "md5", md5)
    return source, arrays


def test_make_embedded_data_writes_the_head_of_the_source(tmp_path, tiny_source):
    source, arrays = tiny_source
    tool = _tool("make_embedded_data")
    out = tmp_path / "out"
    assert tool.main(["--source", str(source), "--out", str(out), "--n-train", "3", "--n-test", "2"]) == 0
    for role, stem in loaders.FILES.items():
        n = 3 if role.startswith("train") else 2
        np.testing.assert_array_equal(read_idx(out / f"{stem}.gz"), arrays[role][:n])
    readme = (out / "README.md").read_text()
    assert "first 3 training and the first 2 test images" in readme and "CC BY-SA 3.0" in readme
    digest = hashlib.md5(encode_idx(arrays["train_labels"][:3])).hexdigest()
    assert f"| train-labels-idx1-ubyte.gz | (3,) | {digest} |" in readme
    d = load("mnist", out)
    assert d.x_train.shape == (3, 1, 28, 28) and d.y_test.tolist() == [9, 8]
    # byte-for-byte reproducible: a second run writes the same files
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    tool.main(["--source", str(source), "--out", str(out), "--n-train", "3", "--n-test", "2"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_make_embedded_data_refuses_a_source_that_is_not_mnist(tmp_path, tiny_source, monkeypatch):
    source, _ = tiny_source
    monkeypatch.setitem(loaders.SOURCES["mnist"], "md5", {r: "0" * 32 for r in loaders.FILES})
    with pytest.raises(SystemExit) as info:
        _tool("make_embedded_data").main(["--source", str(source), "--out", str(tmp_path / "out")])
    assert info.value.code == 2 and not (tmp_path / "out").exists()


def test_make_embedded_data_runs_as_a_script(tmp_path):
    """The script's own imports resolve: a folder without the files is refused with exit code 2."""
    proc = subprocess.run([sys.executable, str(TOOLS / "make_embedded_data.py"), "--source", str(tmp_path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2 and "lacks train-images-idx3-ubyte" in proc.stderr


def test_make_embedded_data_rebuilds_the_shipped_subset(tmp_path, mnist_dir):
    _tool("make_embedded_data").main(["--source", str(mnist_dir), "--out", str(tmp_path)])
    for shipped in loaders.EMBEDDED_DIR.iterdir():
        assert (tmp_path / shipped.name).read_bytes() == shipped.read_bytes(), shipped.name
