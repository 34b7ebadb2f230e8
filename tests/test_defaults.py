"""docs/defaults.md records every preset's resolved defaults: a default cannot change without that file."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_tool():
    spec = importlib.util.spec_from_file_location("defaults_tool", ROOT / "tools" / "defaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_resolved_defaults_are_the_documented_ones():
    tool = load_tool()
    documented = tool.documented()
    assert documented is not None, "docs/defaults.md lost its JSON block"
    assert tool.resolved() == documented, ("a preset's resolved defaults changed: record the runs that chose the "
                                           "change in docs/defaults.md and run `python tools/defaults.py --write`")


def test_the_check_catches_a_changed_default(monkeypatch):
    tool = load_tool()
    from symnet.solvers.gauss_newton import GaussNewtonSolver

    monkeypatch.setattr(GaussNewtonSolver, "AUTO_BATCH", 250)
    assert tool.resolved() != tool.documented()
