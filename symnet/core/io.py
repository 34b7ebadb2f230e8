"""Atomic file writes, JSON-able values, and model save/load.

Every file symnet writes goes to a temporary name in the same folder, is
flushed and fsynced, then renamed over the target, so an interrupted run never
leaves a half-written model, history or checkpoint behind.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from symnet.core.errors import CorruptFileError, ModelError
from symnet.core.layers import LAYER_TYPES
from symnet.core.model import model_from_spec


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


def save_model(model, path: str | os.PathLike) -> Path:
    """Save weights to ``<path>`` (``.npz``) and the spec beside it (``.json``).

    ``path`` may be a directory (files ``model.npz`` and ``model.json`` inside)
    or a file name ending in ``.npz``.

    Raises:
        ModelError: the model has a layer that :func:`load_model` could not rebuild (a layer class of
            one's own that is not registered with :func:`symnet.core.layers.register_layer`).
    """
    check_loadable(model)
    path = Path(path)
    if path.suffix != ".npz":
        path = path / "model.npz"
    arrays = {name: np.asarray(value) for name, value in model.parameters()}
    atomic_save_npz(path, **arrays)
    atomic_write_json(path.with_suffix(".json"), model.spec())
    return path


def check_loadable(model) -> None:
    """Raise :class:`ModelError` unless :func:`load_model` can rebuild ``model`` from its spec."""
    for layer in getattr(model, "layers", ()):
        name = type(layer).__name__
        if LAYER_TYPES.get(name) is not type(layer):
            raise ModelError(f"layer {name} is not a registered layer type, so a saved model could not be loaded "
                             f"again; call symnet.layers.register_layer({name}) before saving (and before loading, "
                             "in the process that loads it)")


def load_model(path: str | os.PathLike):
    """Load a model saved by :func:`save_model`: a ``.npz`` file, its folder, or a run's ``checkpoint.npz``.

    A run folder without ``model.npz`` (a run interrupted before its end) gives
    the model of its last checkpoint.

    Raises:
        FileNotFoundError: no such file or folder.
        CorruptFileError: the files are not a readable symnet model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}; pass a model.npz written by symnet train or compare "
                                "(or the run's folder)")
    if path.is_dir():
        if not (path / "model.npz").exists() and (path / "checkpoint.npz").exists():
            path = path / "checkpoint.npz"
        else:
            path = path / "model.npz"
    if path.suffix != ".npz":
        raise ModelError(f"model file must end in .npz, got {path}; pass the model.npz written by `symnet train`")
    spec_path = path.with_suffix(".json")
    if spec_path.exists():
        spec = read_json(spec_path, "model spec")
        return _rebuild(spec, read_npz(path, "model weights"), path)
    arrays = read_npz(path, "model weights")
    if "spec" in arrays and "params" in arrays:  # a checkpoint: the spec and the flat parameters inside
        return _model_from_checkpoint(arrays, path)
    raise FileNotFoundError(f"model spec {spec_path.name} is missing beside {path}: a saved model is the pair "
                            f"{path.stem}.npz (weights) and {path.stem}.json (architecture); copy both, or "
                            "pass the run's folder")


def _model_from_checkpoint(arrays: dict, path: Path):
    try:
        spec = json.loads(bytes(arrays["spec"]).decode())
    except (ValueError, UnicodeDecodeError):
        raise CorruptFileError(f"checkpoint {path} has an unreadable model spec; it is damaged") from None
    model = _rebuild(spec, {}, path)
    params = arrays["params"]
    if params.shape != (model.num_params,):
        raise CorruptFileError(f"checkpoint {path} holds {params.size} parameters, its spec says "
                               f"{model.num_params}; the file is damaged")
    model.set_flat(params)
    return model


def _rebuild(spec, arrays: dict, path: Path):
    """The model of ``spec`` with its parameters from ``arrays`` (name -> array; empty: leave them at zero)."""
    try:
        model = model_from_spec(spec)
    except ModelError:  # it names what is wrong (an unregistered layer type ...) and the fix
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptFileError(f"{path} is not a readable symnet model ({type(exc).__name__}: {exc}); "
                               "re-save it with symnet") from None
    if not arrays:
        return model
    expected = dict(model.parameters())
    missing = sorted(set(expected) - set(arrays))
    if missing:
        raise CorruptFileError(f"model weights {path} lack {missing[:3]}; the .npz and .json do not belong together")
    for name, value in expected.items():
        if arrays[name].shape != value.shape:
            raise CorruptFileError(
                f"parameter {name} in {path} has shape {arrays[name].shape}, the spec says {value.shape}")
        value[...] = arrays[name]
    return model
