"""Any number of training images from a small set: random shifts and elastic distortions (Simard et al., 2003).

:class:`DistortedImages` is a deterministic, picklable ``source(lo, hi) -> (X, Y)``:
row ``i`` is base image ``i mod n`` shifted by up to ``shift`` pixels and
warped by a smooth random displacement field (uniform noise in [-1, 1]
smoothed by a Gaussian of width ``sigma``, scaled by ``alpha``, bilinear
interpolation), seeded by the row's block of :attr:`BLOCK` rows. Any range of
rows is therefore the same whoever makes it, so a Dask worker can make its own
shard of a million images from MNIST's 60,000 (``source=`` of
:class:`~symnet.core.sharded.ShardedSamples`), and a shard rebuilt after a
worker died holds the same images.

Example:
    >>> import numpy as np
    >>> base = np.zeros((2, 1, 8, 8)); base[:, 0, 2:6, 3:5] = 1.0
    >>> src = DistortedImages(base, np.array([0, 1]), num_classes=2, seed=0)
    >>> X, Y = src(5, 9)
    >>> X.shape, Y.argmax(1).tolist(), bool(np.allclose(src(6, 7)[0], X[1:2]))
    ((4, 1, 8, 8), [1, 0, 1, 0], True)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


class DistortedImages:
    """Rows ``lo..hi-1`` of an endless set of distorted copies of ``images`` (see the module docstring).

    Args:
        images: base images (n, C, H, W), values in [0, 1] (uint8 0..255 is scaled).
        labels: their classes (n,).
        num_classes: number of classes (the targets are one-hot rows).
        seed: seed of every distortion.
        shift: largest shift in pixels (uniform integer, each axis).
        alpha, sigma: strength and smoothness of the elastic field (pixels).
        originals: the first ``n`` rows are the base images themselves.
    """

    #: Rows that share one random generator (any row range is cut from whole blocks).
    BLOCK = 1024

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, num_classes: int, seed: int = 0,
                 shift: int = 2, alpha: float = 8.0, sigma: float = 3.0, originals: bool = True) -> None:
        images = np.asarray(images)
        self.scale = 1.0 / 255.0 if images.dtype == np.uint8 else 1.0
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.num_classes = int(num_classes)
        self.seed, self.shift, self.alpha, self.sigma = int(seed), int(shift), float(alpha), float(sigma)
        self.originals = bool(originals)

    def __call__(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.images)
        X = np.empty((hi - lo,) + self.images.shape[1:])
        for b in range(lo // self.BLOCK, -(-hi // self.BLOCK)):
            a, e = max(lo, b * self.BLOCK), min(hi, (b + 1) * self.BLOCK)
            X[a - lo:e - lo] = self._block(b)[a - b * self.BLOCK:e - b * self.BLOCK]
        rows = np.arange(lo, hi) % n
        return X, np.eye(self.num_classes)[self.labels[rows]]

    def _block(self, b: int) -> np.ndarray:
        """The distorted images of rows ``b * BLOCK .. (b + 1) * BLOCK - 1``."""
        n = len(self.images)
        rows = np.arange(b * self.BLOCK, (b + 1) * self.BLOCK)
        base = self.images[rows % n].astype(np.float64) * self.scale
        m, C, H, W = base.shape
        rng = np.random.default_rng([self.seed, b])
        # one displacement field per image, shared by its channels: smooth noise plus a whole-pixel shift
        field = rng.uniform(-1.0, 1.0, size=(2, m, H, W))
        field = ndimage.gaussian_filter(field, sigma=(0, 0, self.sigma, self.sigma), mode="constant")
        field *= self.alpha
        field += rng.integers(-self.shift, self.shift + 1, size=(2, m, 1, 1))
        keep = rows < n if self.originals else np.zeros(m, dtype=bool)
        field[:, keep] = 0.0
        k, i, j = np.meshgrid(np.arange(m), np.arange(H), np.arange(W), indexing="ij")
        out = np.empty_like(base)
        for c in range(C):  # bilinear warp of every image at once (the batch axis is sampled at whole indices)
            coords = np.stack([k, i + field[0], j + field[1]])
            out[:, c] = ndimage.map_coordinates(base[:, c], coords, order=1, mode="constant", cval=0.0)
        return np.clip(out, 0.0, 1.0)


__all__ = ["DistortedImages"]
