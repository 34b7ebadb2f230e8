"""The package's import graph: three layers that import one way, no circles, no private names across modules.

The layers are ``symnet.core`` (rank 0), ``symnet.solvers`` (1) and ``symnet.frontend`` (2); the package's
own ``__init__`` and ``__main__`` sit on top (3). A module may import from its own layer and the layers below
it, never from above. Imports of the project's own modules inside functions are allowed only to defer a heavy
optional dependency, with a comment that says so (``# deferred: ...``). The checker reads the sources as text
(nothing is imported), and the last tests plant bad imports in a copy of the package to show that it catches
each kind.
"""

from __future__ import annotations

import ast
import shutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "symnet"
LAYERS = {"symnet.core": 0, "symnet.solvers": 1, "symnet.frontend": 2}


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``package`` (packages by their ``__init__``)."""
    out = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def rank(module: str) -> int:
    for prefix, r in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return r
    return 3


def _resolve(module: str, is_package: bool, node: ast.AST, names: set[str]) -> list[tuple[str, str | None]]:
    """(imported project module, imported attribute or None) pairs of one import statement."""
    found = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "symnet":
                target = alias.name
                while target not in names and "." in target:
                    target = target.rpartition(".")[0]
                found.append((target, None))
        return found
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[:len(parts) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
    if base.split(".")[0] != "symnet":
        return found
    for alias in node.names:
        child = f"{base}.{alias.name}"
        found.append((child, None) if child in names else (base, alias.name))
    return found


def problems(package: Path = PACKAGE) -> list[str]:
    """Every violation of the layering rules under ``package``, as readable lines."""
    files = module_names(package)
    names = set(files)
    graph: dict[str, set[str]] = {m: set() for m in files}
    out = []
    for module, path in sorted(files.items()):
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        inside = {id(n) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(fn)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            where = f"{path.relative_to(package.parent)}:{node.lineno}"
            for target, attr in _resolve(module, path.name == "__init__.py", node, names):
                if target not in names:
                    out.append(f"{where}: imports {target}, which is not a module of the package")
                    continue
                if target != module:
                    graph[module].add(target)
                if rank(target) > rank(module):
                    out.append(f"{where}: upward import: {module} (layer {rank(module)}) imports {target} "
                               f"(layer {rank(target)})")
                leaf = target.rpartition(".")[2]
                if target != module and leaf.startswith("_") and not leaf.startswith("__"):
                    out.append(f"{where}: imports the private module {target}")
                if attr is not None and attr.startswith("_") and not attr.startswith("__") and target != module:
                    out.append(f"{where}: imports the private name {attr} from {target}")
                if id(node) in inside:
                    comment = " ".join(lines[max(node.lineno - 2, 0):node.lineno])
                    if "deferred" not in comment:
                        out.append(f"{where}: imports {target} inside a function without a '# deferred: <why>' "
                                   "comment (only a heavy optional dependency justifies it)")
    # circles: edges from a package's __init__ to its own children are re-exports, not circles
    edges = {m: {t for t in ts if not (files[m].name == "__init__.py" and t.startswith(m + "."))}
             for m, ts in graph.items()}
    for cycle in _cycles(edges):
        out.append("circle: " + " -> ".join(cycle + [cycle[0]]))
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One representative cycle of every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def test_imports_run_one_way_without_circles_or_private_names():
    assert problems() == []


def test_every_module_belongs_to_a_layer():
    # on top: the package, `python -m symnet`, and the short path of the scikit-learn estimators
    # (a re-export of symnet.frontend.sklearn that only `import symnet.sklearn` loads)
    top = {m for m in module_names(PACKAGE) if rank(m) == 3}
    assert top == {"symnet", "symnet.__main__", "symnet.sklearn"}


def test_only_symnet_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["packages"]["find"]["include"] == ["symnet", "symnet.*"]
    assert not (ROOT / "solvers").exists()


@pytest.mark.parametrize("plant, expected", [
    ("from symnet.frontend.api import fit\n", "upward import: symnet.core.errors"),
    ("from symnet.solvers.base import Solver\n", "upward import: symnet.core.errors"),
    ("from symnet.core.model.sequential import Sequential\n", "circle: "),
    ("from symnet.core.restriction import _add_jet\n", "private name _add_jet"),
    ("def f():\n    from symnet.core import files\n", "inside a function without"),
])
def test_the_checker_catches_a_planted_import(tmp_path, plant, expected):
    copy = tmp_path / "symnet"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "core" / "errors.py"
    if "Sequential" in plant:  # sequential.py imports errors.py, so errors.py importing the model closes a circle
        assert "symnet.core.errors" in (copy / "core" / "model" / "sequential.py").read_text()
    target.write_text(target.read_text() + "\n" + plant)
    found = problems(copy)
    assert any(expected in line for line in found), found
