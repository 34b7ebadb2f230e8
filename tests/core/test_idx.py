import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from symnet.core.datasets.idx import encode_idx, maybe_gunzip, parse_idx, read_bytes, read_idx, write_idx
from symnet.core.errors import CorruptFileError, DataError

def _hand_built(code: int, dims: tuple[int, ...], body: bytes) -> bytes:
    """IDX bytes assembled with struct, independently of encode_idx."""
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body


@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                        (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)])
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_every_dtype(tmp_path, dtype, code, compress):
    rng = np.random.default_rng(code)
    array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = write_idx(tmp_path / "a-idx3", array, gzip=compress)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    body = b"".join(struct.pack(">" + np.dtype(dtype).char, v) for v in array.ravel().tolist())
    raw = path.read_bytes()
    assert (gzip.decompress(raw) if compress else raw) == _hand_built(code, (3, 4, 5), body)


def test_one_dimensional_and_many_dimensional(tmp_path):
    for shape in [(7,), (2, 1, 3, 1, 2)]:
        array = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
        np.testing.assert_array_equal(read_idx(write_idx(tmp_path / f"x{len(shape)}", array)), array)


def test_gzip_detected_by_magic_not_suffix(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    zipped_without_suffix = write_idx(tmp_path / "plain-name", array, gzip=True)
    raw_with_suffix = write_idx(tmp_path / "looks-zipped.gz", array, gzip=False)
    assert zipped_without_suffix.read_bytes()[:2] == b"\x1f\x8b"
    assert raw_with_suffix.read_bytes()[:2] == b"\x00\x00"
    np.testing.assert_array_equal(read_idx(zipped_without_suffix), array)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), array)


def test_write_is_reproducible_and_readable(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    a = write_idx(tmp_path / "a.gz", array).read_bytes()
    b = write_idx(tmp_path / "b.gz", array).read_bytes()
    assert a == b
    assert a[4:8] == b"\x00\x00\x00\x00"  # gzip mtime field is zero
    assert (tmp_path / "a.gz").stat().st_mode & 0o044  # not a private 0600 temp file


def test_uint8_read_is_a_read_only_view(tmp_path):
    path = write_idx(tmp_path / "v", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError):
        read_idx(path)[0, 0] = 1


def test_unsupported_dtype_or_shape_on_write(tmp_path):
    with pytest.raises(DataError, match="astype"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(DataError, match="astype"):
        write_idx(tmp_path / "x", np.zeros(3, bool))
    with pytest.raises(DataError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


def _corrupt_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = _hand_built(0x08, (2, 3), bytes(range(6)))
    zipped = gzip.compress(good, mtime=0)
    cases = {
        "bad magic": (b"\x01\x00" + good[2:], "magic number"),
        "bad dtype code": (good[:2] + b"\x07" + good[3:], "dtype code 0x07"),
        "zero dims": (b"\x00\x00\x08\x00", "0 dimensions"),
        "header cut": (good[:9], "inside its IDX header"),
        "truncated payload": (good[:-1], "truncated"),
        "trailing bytes": (good + b"\x00\x00", "2 unexpected trailing bytes"),
        "truncated gzip": (zipped[: len(zipped) // 2], "truncated or damaged gzip"),
        "damaged gzip": (zipped[:12] + bytes(len(zipped) - 12), "truncated or damaged gzip"),
        "empty": (b"", "too short"),
    }
    out = {}
    for i, (case, (payload, phrase)) in enumerate(cases.items()):
        path = tmp_path / f"case{i}-idx2-ubyte.gz"
        path.write_bytes(payload)
        out[case] = (path, phrase)
    return out


def test_each_corruption_names_the_file_and_the_fix(tmp_path):
    cases = _corrupt_files(tmp_path)
    for case, (path, phrase) in cases.items():
        with pytest.raises(CorruptFileError) as info:
            read_idx(path)
        message = str(info.value)
        assert str(path) in message, case
        assert phrase in message, case
        assert "re-download or re-copy" in message, case


def test_parse_and_gunzip_helpers():
    good = _hand_built(0x0C, (2,), struct.pack(">2i", -1, 70000))
    np.testing.assert_array_equal(parse_idx(good), [-1, 70000])
    assert maybe_gunzip(gzip.compress(good)) == good
    assert encode_idx(np.array([-1, 70000], np.int32)) == good


def test_real_mnist_labels_header(mnist_dir):
    folder = mnist_dir
    labels = read_idx(folder / "train-labels-idx1-ubyte.gz")
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert len(read_bytes(folder / "t10k-labels-idx1-ubyte.gz")) == 8 + 10000
