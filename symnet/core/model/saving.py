"""Model save/load: weights in ``.npz`` and the architecture in ``.json``, written atomically.

A saved model is a pair of files: ``model.npz`` (one array per parameter) and
``model.json`` (the spec that :func:`~symnet.core.model.sequential.model_from_spec`
rebuilds). A run's ``checkpoint.npz`` holds both in one archive.

The weights archive carries its format version (``symnet_format``, :data:`FORMAT_VERSION`);
files written before versions existed load as version 0. Loading refuses what it could
only guess at: a newer format, arrays the spec does not name, missing arrays, and
non-finite weights (a diverged run's model is never saved either).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from symnet.core.errors import CorruptFileError, ModelError
from symnet.core.files import atomic_save_npz, atomic_write_json, read_json, read_npz
from symnet.core.layers import LAYER_TYPES
from symnet.core.model.sequential import model_from_spec

#: The version of the weights archive this symnet writes (the ``symnet_format`` array of ``model.npz``).
FORMAT_VERSION = 1
#: The name of the version array inside ``model.npz``.
FORMAT_KEY = "symnet_format"


def _non_finite(arrays: dict) -> list[str]:
    """Names of the arrays holding NaN or infinity."""
    return [name for name, value in arrays.items()
            if np.issubdtype(np.asarray(value).dtype, np.number) and not np.all(np.isfinite(value))]


def save_model(model, path: str | os.PathLike) -> Path:
    """Save weights to ``<path>`` (``.npz``) and the spec beside it (``.json``).

    ``path`` may be a directory (files ``model.npz`` and ``model.json`` inside)
    or a file name ending in ``.npz``.

    Raises:
        ModelError: the model has a layer that :func:`load_model` could not rebuild (a layer class of
            one's own that is not registered with :func:`symnet.core.layers.register_layer`), or
            weights that are not finite (nothing is written then).

    Example:
        >>> import tempfile, numpy as np
        >>> from symnet.core.model import presets
        >>> m = presets.get("mlp", input_dim=2, hidden=2)
        >>> folder = tempfile.mkdtemp()
        >>> path = save_model(m, folder)
        >>> np.array_equal(load_model(path).get_flat(), m.get_flat())
        True
        >>> m.layers[0].params["weight"][0, 0] = np.nan
        >>> save_model(m, folder)
        Traceback (most recent call last):
        ...
        symnet.core.errors.ModelError: the model's weights are not finite (NaN or infinity in linear0.weight): the run diverged, so the model was not saved; retrain (a lower learning rate for gradient solvers) or load an earlier checkpoint
    """
    check_loadable(model)
    path = Path(path)
    if path.suffix != ".npz":
        path = path / "model.npz"
    arrays = {name: np.asarray(value) for name, value in model.parameters()}
    bad = _non_finite(arrays)
    if bad:
        raise ModelError(f"the model's weights are not finite (NaN or infinity in {', '.join(bad[:3])}): the run "
                         "diverged, so the model was not saved; retrain (a lower learning rate for gradient "
                         "solvers) or load an earlier checkpoint")
    if FORMAT_KEY in arrays:
        raise ModelError(f"a parameter may not be named {FORMAT_KEY!r}: symnet keeps the file format's version there")
    arrays[FORMAT_KEY] = np.array(FORMAT_VERSION)
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
    if not np.all(np.isfinite(params)):
        raise CorruptFileError(f"checkpoint {path} holds non-finite parameters (NaN or infinity): the run had "
                               "diverged when it was written; start again, or from an earlier saved model")
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
    arrays = dict(arrays)
    version = int(arrays.pop(FORMAT_KEY, 0))
    if version > FORMAT_VERSION:
        raise CorruptFileError(f"model weights {path} are in format {version}, newer than this symnet reads "
                               f"({FORMAT_VERSION}); upgrade symnet to load them")
    expected = dict(model.parameters())
    missing = sorted(set(expected) - set(arrays))
    if missing:
        raise CorruptFileError(f"model weights {path} lack {missing[:3]}; the .npz and .json do not belong together")
    unknown = sorted(set(arrays) - set(expected))
    if unknown:
        raise CorruptFileError(f"model weights {path} hold arrays the spec does not name ({', '.join(unknown[:3])}); "
                               "the .npz and .json do not belong together, or the file was edited")
    bad = _non_finite({name: arrays[name] for name in expected})
    if bad:
        raise CorruptFileError(f"model weights {path} are not finite (NaN or infinity in {', '.join(bad[:3])}): "
                               "the model diverged before it was saved; retrain it")
    for name, value in expected.items():
        if arrays[name].shape != value.shape:
            raise CorruptFileError(
                f"parameter {name} in {path} has shape {arrays[name].shape}, the spec says {value.shape}")
        value[...] = arrays[name]
    return model
