"""Datasets: MNIST-style image sets from IDX files and small synthetic problems.

Example:
    >>> from symnet.core import datasets
    >>> d = datasets.load("mnist-small")      # ships with the package, no download
    >>> d.x_train.shape, d.num_classes
    ((10000, 1, 28, 28), 10)
    >>> datasets.xor(8).x_train.shape
    (8, 2)
"""

from symnet.core.datasets.dataset import Dataset
from symnet.core.datasets.distorted import DistortedImages
from symnet.core.datasets.idx import read_idx, write_idx
from symnet.core.datasets.loaders import DATA_DIRS, available, cache_dir, canonical_name, clear_cache, data_dirs, load
from symnet.core.datasets.synthetic import Regression, network_regression, teacher_outputs, teacher_student, xor

__all__ = [
    "Dataset", "DistortedImages", "load", "available", "canonical_name", "data_dirs", "cache_dir", "clear_cache",
    "DATA_DIRS", "read_idx", "write_idx", "xor", "teacher_student", "teacher_outputs",
    "network_regression", "Regression",
]
