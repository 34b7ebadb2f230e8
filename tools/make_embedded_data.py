#!/usr/bin/env python
"""Build the MNIST subset that ships inside symnet (``load("mnist-small")``).

Takes the first ``--n-train`` training and ``--n-test`` test images and labels
of the full MNIST files, checks the sources against the canonical md5 of their
uncompressed bytes, and writes gzipped IDX files (level 9, zero timestamp, so
the output is byte-for-byte reproducible) plus a README with attribution into
``symnet/core/datasets/data``.

Usage (from the repository root):
    python tools/make_embedded_data.py --source ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from symnet.core.datasets.idx import encode_idx, parse_idx, read_bytes, write_idx  # noqa: E402
from symnet.core.datasets.loaders import EMBEDDED_DIR, FILES, SOURCES, find_files  # noqa: E402

README = """\
# Embedded MNIST subset

The first {n_train:,} training and the first {n_test:,} test images (28x28, uint8) and
labels of the MNIST database of handwritten digits, in the original IDX format,
gzip-compressed. `symnet.datasets.load("mnist-small")` reads them, so examples and
tests run without downloading anything.

MNIST is by Yann LeCun and Corinna Cortes (with Christopher J. C. Burges), and is
made available under the terms of the Creative Commons Attribution-Share Alike 3.0
license (CC BY-SA 3.0). These files are an unmodified excerpt (the leading rows) and
are distributed under the same license.

Made by `tools/make_embedded_data.py` from the full MNIST files, whose uncompressed
bytes matched the canonical md5 checksums. Written with gzip level 9 and a zero
timestamp, so rerunning the tool reproduces these files byte for byte.

| file | shape | md5 of the uncompressed bytes |
| --- | --- | --- |
{rows}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "mnist",
                        help="folder with the full MNIST IDX files (default: ../shared/data/mnist)")
    parser.add_argument("--out", type=Path, default=EMBEDDED_DIR,
                        help="output folder (default: symnet/core/datasets/data, where load('mnist-small') reads)")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    args = parser.parse_args(argv)

    found = find_files(args.source)
    missing = [FILES[r] for r in FILES if r not in found]
    if missing:
        parser.error(f"{args.source} lacks {', '.join(missing)}; point --source at the full MNIST files")
    rows = []
    for role, stem in FILES.items():
        raw = read_bytes(found[role])
        digest = hashlib.md5(raw).hexdigest()
        if digest != SOURCES["mnist"]["md5"][role]:
            parser.error(f"{found[role]} is not the canonical MNIST file (md5 {digest}); fix the source")
        n = args.n_train if role.startswith("train") else args.n_test
        subset = parse_idx(raw, str(found[role]))[:n]
        target = write_idx(args.out / f"{stem}.gz", subset, gzip=True)
        rows.append(f"| {target.name} | {subset.shape} | {hashlib.md5(encode_idx(subset)).hexdigest()} |")
        print(f"wrote {target} ({target.stat().st_size:,} bytes, shape {subset.shape})")
    readme = args.out / "README.md"
    readme.write_text(README.format(n_train=args.n_train, n_test=args.n_test, rows="\n".join(rows)))
    print(f"wrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
