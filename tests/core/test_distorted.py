"""DistortedImages: any row range is the same whoever makes it, and a distortion keeps the image recognisable."""

import numpy as np

from symnet.core.datasets import DistortedImages


def base_images():
    rng = np.random.default_rng(0)
    X = np.zeros((5, 1, 12, 12))
    for k in range(5):
        X[k, 0, 3:9, 2 + k:4 + k] = rng.random()
    return X, np.arange(5) % 3


def test_rows_do_not_depend_on_how_they_are_cut():
    X, y = base_images()
    src = DistortedImages(X, y, num_classes=3, seed=4)
    whole, Y = src(0, 3000)
    parts = [src(a, b) for a, b in [(0, 7), (7, 1500), (1500, 2049), (2049, 3000)]]
    assert np.array_equal(whole, np.concatenate([p[0] for p in parts]))
    assert np.array_equal(Y, np.concatenate([p[1] for p in parts]))
    assert Y.argmax(1).tolist() == (np.arange(3000) % 5 % 3).tolist()


def test_originals_first_then_distorted_copies():
    X, y = base_images()
    src = DistortedImages(X, y, num_classes=3, seed=1)
    out, _ = src(0, 40)
    assert np.array_equal(out[:5], X)
    assert out.min() >= 0.0 and out.max() <= 1.0
    copies = out[5:].reshape(7, 5, 1, 12, 12)
    assert not np.array_equal(copies[0], X)                      # distorted
    assert not np.array_equal(copies[0], copies[1])              # each copy differently
    mass = copies.sum(axis=(2, 3, 4)) / X.sum(axis=(1, 2, 3))    # a warp moves ink, it keeps most of it
    assert np.all((mass > 0.5) & (mass < 1.5))
    other = DistortedImages(X, y, num_classes=3, seed=2)(5, 10)[0]
    assert not np.array_equal(other, out[5:10])                  # the seed matters


def test_uint8_images_are_scaled():
    X, y = base_images()
    src = DistortedImages((X * 255).round().astype(np.uint8), y, num_classes=3, originals=True)
    assert np.allclose(src(0, 5)[0], (X * 255).round() / 255)
