"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then
``ndim`` big-endian uint32 dimension sizes, then the row-major payload in
big-endian order. Files may be gzip-compressed; compression is detected from
the gzip magic bytes ``1f 8b``, never from the file name, so a gzipped file
without ``.gz`` (or a plain one with it) still reads correctly.

Every structural problem -- a wrong magic number, an unknown dtype code, a
payload shorter or longer than the header promises, a truncated gzip stream --
raises :class:`~symnet.core.errors.CorruptFileError` naming the file and the fix.

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> _ = write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
    >>> read_idx(path)
    array([5, 0, 4], dtype=uint8)
"""

from __future__ import annotations

import gzip as _gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from symnet.core.errors import CorruptFileError, DataError
from symnet.core.files import atomic_write_bytes

GZIP_MAGIC = b"\x1f\x8b"

#: IDX dtype code -> big-endian numpy dtype of the payload.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}

_FIX = "re-download or re-copy it"


def read_bytes(path: str | os.PathLike) -> bytes:
    """The content of ``path``, decompressed when it starts with the gzip magic.

    Args:
        path: A raw or gzip-compressed file.

    Returns:
        The (uncompressed) bytes.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptFileError: the gzip stream is truncated or damaged.

    Example:
        >>> import tempfile, os, gzip
        >>> p = os.path.join(tempfile.mkdtemp(), "x")  # no .gz suffix on purpose
        >>> _ = open(p, "wb").write(gzip.compress(b"abc"))
        >>> read_bytes(p)
        b'abc'
    """
    path = Path(path)
    return maybe_gunzip(path.read_bytes(), str(path))


def maybe_gunzip(payload: bytes, source: str = "<bytes>") -> bytes:
    """Decompress ``payload`` if it starts with the gzip magic, else return it unchanged.

    Args:
        payload: Raw or gzip-compressed bytes.
        source: What to call the data in error messages (a path or URL).

    Raises:
        CorruptFileError: the gzip stream is truncated or damaged.

    Example:
        >>> import gzip
        >>> maybe_gunzip(gzip.compress(b"abc")), maybe_gunzip(b"abc")
        (b'abc', b'abc')
    """
    if payload[:2] != GZIP_MAGIC:
        return payload
    try:
        return _gzip.decompress(payload)
    except (EOFError, zlib.error, OSError) as exc:  # OSError covers gzip.BadGzipFile
        raise CorruptFileError(
            f"{source} is a truncated or damaged gzip file ({exc}); {_FIX}") from exc


def parse_idx(payload: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX bytes into an array in native byte order.

    Args:
        payload: The whole file content, uncompressed.
        source: What to call the data in error messages (usually the path).

    Returns:
        An array of shape given by the header. For uint8 data it is a
        read-only view of ``payload`` (no copy).

    Raises:
        CorruptFileError: bad magic number, unknown dtype code, or a payload
            whose length differs from the product of the dimensions.

    Example:
        >>> parse_idx(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
        array([[1, 2, 3],
               [4, 5, 6]], dtype=uint8)
    """
    if len(payload) < 4:
        raise CorruptFileError(
            f"{source} is only {len(payload)} bytes long, too short for an IDX header; {_FIX}")
    zero0, zero1, code, ndim = payload[0], payload[1], payload[2], payload[3]
    if zero0 != 0 or zero1 != 0:
        raise CorruptFileError(
            f"{source} is not an IDX file: its magic number starts with bytes "
            f"{zero0:#04x} {zero1:#04x} instead of 0x00 0x00; {_FIX}")
    if code not in IDX_DTYPES:
        known = ", ".join(f"{c:#04x} ({IDX_DTYPES[c].name})" for c in IDX_DTYPES)
        raise CorruptFileError(
            f"{source} has unknown IDX dtype code {code:#04x} (known: {known}); {_FIX}")
    if ndim == 0:
        raise CorruptFileError(f"{source} declares 0 dimensions in its IDX header; {_FIX}")
    header_len = 4 + 4 * ndim
    if len(payload) < header_len:
        raise CorruptFileError(
            f"{source} ends inside its IDX header ({len(payload)} bytes, the header needs "
            f"{header_len}); {_FIX}")
    dims = tuple(int(d) for d in np.frombuffer(payload, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    actual = len(payload) - header_len
    if actual < expected:
        raise CorruptFileError(
            f"{source} is truncated: its header promises shape {dims} of {dtype.name} "
            f"({expected} bytes) but only {actual} bytes follow; {_FIX}")
    if actual > expected:
        raise CorruptFileError(
            f"{source} has {actual - expected} unexpected trailing bytes after the "
            f"{expected} bytes its header promises for shape {dims}; {_FIX}")
    array = np.frombuffer(payload, dtype=dtype, offset=header_len).reshape(dims)
    if dtype.byteorder == ">":  # only multi-byte types; convert once to native order
        array = array.astype(dtype.newbyteorder("="))
    return array


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into an array.

    Args:
        path: The file. Compression is detected from its first bytes.

    Returns:
        The array with the shape and dtype from the header, in native byte
        order. uint8 arrays are read-only views of the file content.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptFileError: the file is truncated, has trailing bytes, or is not IDX.

    Example:
        >>> import numpy as np, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "images-idx3-ubyte")
        >>> _ = write_idx(p, np.arange(8, dtype=np.uint8).reshape(2, 2, 2), gzip=False)
        >>> read_idx(p).shape
        (2, 2, 2)
    """
    return parse_idx(read_bytes(path), str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """The uncompressed IDX bytes of ``array``.

    Args:
        array: uint8, int8, int16, int32, float32 or float64 data with 1 to 255
            dimensions, each below 2**32.

    Returns:
        Header and big-endian payload.

    Raises:
        DataError: unsupported dtype or shape.

    Example:
        >>> encode_idx(np.array([7], dtype=np.uint8))
        b'\\x00\\x00\\x08\\x01\\x00\\x00\\x00\\x01\\x07'
    """
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise DataError(
            f"IDX cannot store dtype {array.dtype}; cast to one of "
            f"{', '.join(dt.name for dt in IDX_DTYPES.values())} first (e.g. array.astype(np.uint8))")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"IDX stores 1 to 255 dimensions; got an array of shape {array.shape}")
    if any(d >= 2**32 for d in array.shape):
        raise DataError(f"IDX dimensions must be below 2**32; got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    return header + body


def write_idx(path: str | os.PathLike, array: np.ndarray, gzip: bool = True) -> Path:
    """Write ``array`` as an IDX file, atomically.

    Compressed output uses gzip level 9 with a zero timestamp and no stored
    file name, so the same array always gives the same bytes.

    Args:
        path: Target file; its folder is created if needed. The name is used
            as given (no ``.gz`` is appended).
        array: See :func:`encode_idx` for the supported dtypes.
        gzip: Compress the file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile, os
        >>> p = write_idx(os.path.join(tempfile.mkdtemp(), "a.gz"), np.zeros((2, 3), np.float32))
        >>> read_idx(p).dtype
        dtype('float32')
    """
    payload = encode_idx(array)
    if gzip:
        payload = _gzip.compress(payload, compresslevel=9, mtime=0)
    return write_shared_bytes(path, payload)


def write_shared_bytes(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` atomically with the permissions of an ordinary new file.

    The atomic writer's temporary file is private (mode 0600); data files are
    meant to be read by others too, so the umask-derived mode is restored.

    Example:
        >>> import tempfile, os
        >>> p = write_shared_bytes(os.path.join(tempfile.mkdtemp(), "f"), b"x")
        >>> p.read_bytes()
        b'x'
    """
    path = atomic_write_bytes(path, payload)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path
