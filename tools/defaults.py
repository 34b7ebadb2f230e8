"""The exact solvers' resolved defaults per preset on full MNIST, as docs/defaults.md records them.

What ``symnet train --solver NAME --model PRESET`` runs with no other flags on 60,000 MNIST-shaped
samples: each solver's declared defaults, with the options it leaves at ``"auto"`` resolved the way
the solver resolves them for that model and that many samples (``auto_options``, where it has one;
the ridge stays ``"auto"``: it is chosen from the data at run time). ``tests/test_defaults.py`` fails
when these change and docs/defaults.md does not.

    python tools/defaults.py            # prints the JSON block
    python tools/defaults.py --write    # and rewrites the block in docs/defaults.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "defaults.md"
PRESETS = ("seed", "poly", "poly2")
SOLVERS = ("gauss-newton", "coordinate", "lbfgs", "cg")
NUM_SAMPLES = 60_000
BLOCK = re.compile(r"(<!-- resolved defaults: tools/defaults.py -->\n```json\n)(.*?)(\n```)", re.S)


def resolved() -> dict:
    """``{solver: {preset: {option: value}}}`` for :data:`SOLVERS` x :data:`PRESETS` on full MNIST."""
    sys.path.insert(0, str(ROOT))
    from symnet import solvers
    from symnet.core.model import presets

    out: dict = {}
    for name in SOLVERS:
        cls = solvers.get(name)
        out[name] = {}
        for preset in PRESETS:
            model = presets.get(preset, input_shape=(1, 28, 28), num_classes=10, seed=0)
            options = dict(cls.defaults)
            solver = cls()
            if hasattr(solver, "auto_options"):
                auto = solver.auto_options(model, NUM_SAMPLES)
                options.update({k: v for k, v in auto.items() if options.get(k) == "auto"})
            # as JSON holds them (tuples are lists there)
            out[name][preset] = json.loads(json.dumps({k: options[k] for k in sorted(options)}))
    return out


def block_text() -> str:
    return json.dumps(resolved(), indent=1, sort_keys=True)


def documented(text: str | None = None) -> dict | None:
    """The JSON block of docs/defaults.md (None when the file has none)."""
    match = BLOCK.search(DOC.read_text() if text is None else text)
    return None if match is None else json.loads(match.group(2))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="rewrite the block in docs/defaults.md")
    args = p.parse_args(argv)
    text = block_text()
    print(text)
    if args.write:
        doc = DOC.read_text()
        if not BLOCK.search(doc):
            print(f"{DOC} has no block to rewrite", file=sys.stderr)
            return 2
        DOC.write_text(BLOCK.sub(lambda m: m.group(1) + text + m.group(3), doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
