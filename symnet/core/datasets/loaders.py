"""Find, download and load MNIST-style image datasets.

:func:`load` looks for the four IDX files of a dataset, raw or gzipped::

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

in these folders, first match wins (see :func:`data_dirs`):

1. ``root`` itself, then ``root/<name>`` (the CLI's ``--data-dir``);
2. ``$SYMNET_DATA``, then ``$SYMNET_DATA/<name>``;
3. ``~/.cache/symnet/<name>`` (``$XDG_CACHE_HOME/symnet/<name>`` when set),
   where downloads go;
4. ``/usr/share/datasets/<name>``, where Debian's ``dataset-*`` packages
   install (``apt-get install dataset-fashion-mnist``).

When none has them and downloading is allowed, the files are fetched from
the canonical mirrors, checked against the known md5 of their uncompressed
bytes, and written atomically into the cache folder. Without network the
error lists every folder searched and what to put where.

``"mnist-small"`` is a 10,000 + 2,000 image subset of MNIST that ships with
the package, so examples and tests run without any download.

Example:
    >>> d = load("mnist-small")
    >>> d.x_train.shape, d.x_test.shape, int(d.y_train[0])
    ((10000, 1, 28, 28), (2000, 1, 28, 28), 5)
"""

from __future__ import annotations

import functools
import hashlib
import os
from http.client import HTTPException
from pathlib import Path
from urllib import request as _request

import numpy as np

from symnet.core import progress
from symnet.core.errors import CorruptFileError, DataError, DatasetNotFoundError

from symnet.core.datasets.dataset import Dataset
from symnet.core.datasets.idx import GZIP_MAGIC, maybe_gunzip, parse_idx, read_idx, write_shared_bytes
from symnet.core.datasets import synthetic

#: Role of each file -> its canonical name without ``.gz``.
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: The folders :func:`load` searches, in order, as templates.
DATA_DIRS = (
    "<root>", "<root>/<name>",
    "$SYMNET_DATA", "$SYMNET_DATA/<name>",
    "~/.cache/symnet/<name>  ($XDG_CACHE_HOME/symnet/<name> when set)",
    "/usr/share/datasets/<name>",
)

EMBEDDED_DIR = Path(__file__).resolve().parent / "data"
SYSTEM_DIR = Path("/usr/share/datasets")
DOWNLOAD_TIMEOUT = 15.0  # seconds per socket operation; offline machines fail fast

_DIGITS = tuple(str(i) for i in range(10))
_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# "md5" is of the UNCOMPRESSED bytes, so it holds however a mirror gzips the files.
# MNIST: the canonical digests. Fashion-MNIST: Zalando publishes digests of its
# .gz files only ("gz_md5", accepted for a download of those very files); its
# uncompressed digests were computed from Debian's dataset-fashion-mnist package.
SOURCES = {
    "mnist": {
        "title": "MNIST",
        "classes": _DIGITS,
        "mirrors": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"),
        "md5": {
            "train_images": "6bbc9ace898e44ae57da46a324031adb",
            "train_labels": "a25bea736e30d166cdddb491f175f624",
            "test_images": "2646ac647ad5339dbf082846283269ea",
            "test_labels": "27ae3e4e09519cfbb04c329615203637",
        },
        "gz_md5": {},
    },
    "fashion-mnist": {
        "title": "Fashion-MNIST",
        "debian": "dataset-fashion-mnist",
        "classes": _FASHION,
        "mirrors": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        "md5": {
            "train_images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train_labels": "9018921c3c673c538a1fc5bad174d6f9",
            "test_images": "8181f5470baa50b63fa0f6fddb340f0a",
            "test_labels": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        "gz_md5": {
            "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test_images": "bef4ecab320f06d8554ea6380940ec79",
            "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}

_ALIASES = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
    "mnist-small": "mnist-small", "mnist_small": "mnist-small", "embedded": "mnist-small",
    "default": "mnist-small",
    "xor": "xor",
    "teacher-student": "teacher-student", "teacher_student": "teacher-student",
}


def available() -> list[str]:
    """Canonical names :func:`load` accepts (aliases such as ``"fashion_mnist"`` work too).

    Example:
        >>> available()
        ['mnist-small', 'mnist', 'fashion-mnist', 'xor', 'teacher-student']
    """
    return ["mnist-small", "mnist", "fashion-mnist", "xor", "teacher-student"]


def canonical_name(name: str) -> str:
    """The canonical spelling of a dataset name.

    Raises:
        DataError: unknown name.

    Example:
        >>> canonical_name("Fashion_MNIST")
        'fashion-mnist'
    """
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(available())}")
    return _ALIASES[key]


def cache_dir(name: str) -> Path:
    """Where downloads of ``name`` go: ``~/.cache/symnet/<name>`` or ``$XDG_CACHE_HOME/symnet/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "symnet" / name


def data_dirs(name: str = "mnist", root: str | os.PathLike | None = None) -> list[Path]:
    """The folders :func:`load` searches for ``name``, in order.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"`` (aliases accepted).
        root: The folder given by the caller (``--data-dir``), if any: then it
            (and its ``<name>`` subfolder) is the only place searched.

    Example:
        >>> [str(p) for p in data_dirs("mnist", "/data")]
        ['/data', '/data/mnist']
    """
    name = canonical_name(name)
    if root is not None:  # a folder the caller names is the only place to look: never another copy silently
        base = Path(root).expanduser()
        return [base, base / name]
    dirs: list[Path] = []
    base = os.environ.get("SYMNET_DATA") or None
    if base is not None:
        base = Path(base).expanduser()
        dirs += [base, base / name]
    dirs += [cache_dir(name), SYSTEM_DIR / name]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def find_files(folder: Path) -> dict[str, Path]:
    """Role -> existing file in ``folder`` (raw name preferred over ``.gz``)."""
    found = {}
    for role, stem in FILES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
    return found


def _describe(folder: Path, found: dict[str, Path]) -> str:
    if not folder.is_dir():
        return f"{folder} (no such folder)"
    if not found:
        return f"{folder} (none of the files)"
    missing = [FILES[r] for r in FILES if r not in found]
    return f"{folder} (lacks {', '.join(missing)})"


@functools.lru_cache(maxsize=8)
def _read_arrays(key: tuple[tuple[str, int, int], ...], num_classes: int) -> tuple[np.ndarray, ...]:
    """Decode the four files named in ``key`` (path, size, mtime) into read-only arrays.

    Keyed on size and mtime as well as the resolved path, so a replaced file
    is read again while repeated loads of an unchanged one cost nothing.
    """
    paths = dict(zip(FILES, (Path(p) for p, _, _ in key)))
    out = {}
    for split in ("train", "test"):
        img_path, lab_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise CorruptFileError(
                f"{img_path} should hold uint8 images of shape (N, H, W) but holds {images.dtype} "
                f"data of shape {images.shape}; re-download or re-copy it (are two files swapped?)")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise CorruptFileError(
                f"{lab_path} should hold uint8 labels of shape (N,) but holds {labels.dtype} "
                f"data of shape {labels.shape}; re-download or re-copy it (are two files swapped?)")
        if len(images) != len(labels):
            raise CorruptFileError(
                f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels; "
                f"the two files do not belong together: re-download or re-copy them")
        if len(labels) and int(labels.max()) >= num_classes:
            raise CorruptFileError(
                f"{lab_path} contains label {int(labels.max())} but the dataset has {num_classes} "
                f"classes (0..{num_classes - 1}); re-download or re-copy it")
        x = images.astype(np.float64)[:, None, :, :]
        x /= 255.0
        y = labels.astype(np.int64)
        for a in (x, y):
            a.flags.writeable = False  # shared by every caller through the cache
        out[split] = (x, y)
    return out["train"] + out["test"]


def _load_folder(name: str, folder: Path, files: dict[str, Path], origin: str) -> Dataset:
    key = tuple((str(files[r].resolve()), files[r].stat().st_size, files[r].stat().st_mtime_ns) for r in FILES)
    info = SOURCES["mnist" if name == "mnist-small" else name]
    x_train, y_train, x_test, y_test = _read_arrays(key, len(info["classes"]))
    if name in SOURCES:
        _check_identity(name, folder, y_train)
    meta = {"folder": str(folder), "files": {r: str(p) for r, p in files.items()},
            "origin": origin, "classes": list(info["classes"])}
    return Dataset(name, x_train, y_train, x_test, y_test, len(info["classes"]), meta)


def _check_identity(name: str, folder: Path, y_train: np.ndarray) -> None:
    """Refuse the files of another dataset of the same names (MNIST and Fashion-MNIST share their file names).

    The training labels are compared, as their uncompressed IDX file, with the
    known digest of every other dataset; a match means the folder holds that one.
    """
    labels = np.asarray(y_train, dtype=np.uint8)
    idx = b"\x00\x00\x08\x01" + len(labels).to_bytes(4, "big") + labels.tobytes()
    digest = _md5(idx)
    for other, info in SOURCES.items():
        if other != name and digest == info["md5"]["train_labels"]:
            raise DataError(f"the files in {folder} are {info['title']}, not {SOURCES[name]['title']} (the two share "
                            f"file names); point --data-dir at the {SOURCES[name]['title']} files, or use "
                            f"--dataset {other}")


def _md5(payload: bytes) -> str:
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def _fetch(url: str, quiet: bool | None) -> bytes:
    with _request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        chunks = []
        with progress.bar(total=total, desc=url.rsplit("/", 1)[-1], unit="B", quiet=quiet) as pbar:
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                pbar.update(len(chunk))
    return b"".join(chunks)


def _download(name: str, target: Path, quiet: bool | None) -> str | None:
    """Fill ``target`` with the files of ``name``; None on success, else why it failed.

    Files already in ``target`` are kept. Each mirror is tried in turn; a
    mirror that cannot be reached is abandoned at its first failure so an
    offline machine waits for one timeout per mirror at most.
    """
    info = SOURCES[name]
    failures = []
    for mirror in info["mirrors"]:
        try:
            for role, stem in FILES.items():
                if role in find_files(target):
                    continue
                url = mirror + stem + ".gz"
                payload = _fetch(url, quiet)
                gzipped = payload[:2] == GZIP_MAGIC
                raw = maybe_gunzip(payload, url)
                if _md5(raw) != info["md5"][role] and _md5(payload) != info["gz_md5"].get(role):
                    raise CorruptFileError(
                        f"{url} does not have the published md5 (got {_md5(raw)} uncompressed, "
                        f"expected {info['md5'][role]})")
                parse_idx(raw, url)  # header and size check
                write_shared_bytes(target / (stem + (".gz" if gzipped else "")), payload)
            return None
        except (OSError, HTTPException, CorruptFileError, ValueError) as exc:
            # OSError covers URLError, timeouts, refused connections and a full disk.
            failures.append(f"{mirror}: {exc}")
    return "; ".join(failures)


def load(name: str = "mnist-small", root: str | os.PathLike | None = None, *,
         download: bool = True, quiet: bool | None = None) -> Dataset:
    """Load a dataset by name.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` (also ``"fashion_mnist"``,
            ``"fashionmnist"``), ``"mnist-small"`` (also ``"embedded"``,
            ``"default"``: the subset shipped with the package), or the
            synthetic ``"xor"`` and ``"teacher-student"`` with their defaults.
        root: A folder holding the four IDX files, or holding a ``<name>``
            folder with them (the CLI's ``--data-dir``).
        download: Fetch missing files into ``~/.cache/symnet/<name>``.
        quiet: Hide the download progress bar (default: hidden under ``$CI``).

    Returns:
        A :class:`Dataset`. Images are float64 in [0, 1] of shape
        ``(N, 1, 28, 28)``, labels int64. The arrays are read-only and shared
        between loads of the same files in one process; copy them to modify.

    Raises:
        DatasetNotFoundError: no folder has the files and they cannot be
            downloaded; the message lists every folder searched.
        CorruptFileError: a file is truncated, damaged or of the wrong kind.
        DataError: unknown name.

    Example:
        >>> d = load("embedded")
        >>> d.name, d.num_classes, float(d.x_train.max())
        ('mnist-small', 10, 1.0)
    """
    name = canonical_name(name)
    if root is not None and name in ("mnist-small", "xor", "teacher-student"):
        what = "ships with symnet" if name == "mnist-small" else "is generated"
        raise DataError(f"dataset {name!r} {what}, so a data folder does not apply to it; drop --data-dir, or "
                        "name the dataset in that folder (e.g. --dataset mnist)")
    if name == "xor":
        return synthetic.xor()
    if name == "teacher-student":
        return synthetic.teacher_student()
    if name == "mnist-small":
        files = find_files(EMBEDDED_DIR)
        if len(files) < len(FILES):
            raise DatasetNotFoundError(
                f"the embedded MNIST subset is missing from {_describe(EMBEDDED_DIR, files)}; "
                f"reinstall symnet, or run tools/make_embedded_data.py in a source checkout")
        return _load_folder(name, EMBEDDED_DIR, files, "embedded")

    searched = []
    for folder in data_dirs(name, root):
        files = find_files(folder)
        if len(files) == len(FILES):
            return _load_folder(name, folder, files, "local")
        searched.append(_describe(folder, files))

    target = cache_dir(name)
    info = SOURCES[name]
    if root is not None:
        raise DatasetNotFoundError(
            f"{info['title']} files not found in the data folder {root}: searched {'; '.join(searched)}. Put the "
            f"four files {', '.join(FILES.values())} (each may be gzipped) there or in {name}/ inside it, or "
            "point --data-dir (root= in Python) at the folder that has them")
    if download:
        why = _download(name, target, quiet)
        files = find_files(target)
        if why is None and len(files) == len(FILES):
            return _load_folder(name, target, files, "download")
        reason = f"The download failed: {why}."
    else:
        reason = "Downloading was turned off."
    wanted = ", ".join(FILES.values())
    package = f" or run `apt-get install {info['debian']}`," if info.get("debian") else ""
    raise DatasetNotFoundError(
        f"{info['title']} files not found; searched, in order: {'; '.join(searched)}. "
        f"Put the four files {wanted} (each may be gzipped, named with .gz) into one of these "
        f"folders, e.g. {target},{package} or pass --data-dir DIR (root=DIR in Python) or set "
        f"SYMNET_DATA=DIR, where DIR holds the files or a folder {name}/ with them. {reason} "
        f"To run without them, use the dataset 'mnist-small' that ships with symnet.")


def clear_cache() -> None:
    """Forget the arrays kept in memory by earlier loads."""
    _read_arrays.cache_clear()


__all__ = ["load", "available", "canonical_name", "data_dirs", "cache_dir", "clear_cache",
           "DATA_DIRS", "FILES"]
