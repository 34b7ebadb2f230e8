"""Atomic file writes, JSON-able values and archive reads: how every file symnet writes reaches the disk.

Every file symnet writes goes to a temporary name in the same folder, is
flushed and fsynced, then renamed over the target, so an interrupted run never
leaves a half-written model, history or checkpoint behind.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from symnet.core.errors import CorruptFileError, RunExistsError

#: The file that names the process writing a run folder, while it does (hidden, and left out when symnet
#: asks whether a folder is empty).
WRITER_NAME = ".symnet.writer"


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays made JSON-able (non-finite floats become None).

    Example:
        >>> to_jsonable({"a": np.float64(1.5), "b": [np.inf, np.int64(2)], 3: np.array([True])})
        {'a': 1.5, 'b': [None, 2], '3': [True]}
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return repr(value)


@functools.lru_cache(maxsize=1)
def _file_mode() -> int:
    """The mode a new file gets under the process's umask (``mkstemp`` would give 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, fsynced, then renamed.

    The file gets the permissions the umask gives any new file (readable by
    other users on a shared machine with the usual umask 022).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{what} {path} is not valid JSON ({exc}); re-create it or point to another file") from exc


def read_npz(path: str | os.PathLike, what: str = "file") -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # zipfile.BadZipFile, ValueError, EOFError, OSError ...
        with open(path, "rb") as fh:
            is_zip = fh.read(4) == b"PK\x03\x04"
        if is_zip:  # a whole archive that numpy refused: object arrays (pickled Python objects) or damage
            raise CorruptFileError(f"{what} {path} is an .npz archive symnet cannot read: damaged, or holding "
                                   "Python objects, which symnet never writes; re-create it") from None
        raise CorruptFileError(f"{what} {path} is truncated or not an .npz archive; re-create it") from None


@contextlib.contextmanager
def writer_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold ``folder`` as its only writer for the block: a second process that asks is refused at once.

    The lock is an ``flock`` on the folder itself, so the kernel releases it when its holder dies, ``kill -9``
    included (a stale lock is simply free again), and it leaves no file behind. While it is held,
    :data:`WRITER_NAME` names the holder's PID, for the message the next writer gets. Where ``flock`` does
    not exist (Windows) the folder is not locked.

    Raises:
        RunExistsError: another process holds the folder; the message names its PID.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with writer_lock(folder):
        ...     (Path(folder) / WRITER_NAME).read_text().strip() == str(os.getpid())
        True
    """
    folder = Path(folder)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks on folders
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = (folder / WRITER_NAME).read_text().strip() or "unknown"
            except OSError:
                pid = "unknown"
            raise RunExistsError(f"{folder} is being written by another symnet process (PID {pid}); wait for it "
                                 "to finish, stop it, or pick another --out") from None
        try:
            (folder / WRITER_NAME).write_text(f"{os.getpid()}\n")
            yield
        finally:
            with contextlib.suppress(OSError):
                (folder / WRITER_NAME).unlink()
    finally:
        os.close(fd)  # closing the descriptor releases the lock
