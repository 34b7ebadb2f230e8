"""The package's import graph: three layers that import one way, no circles, no private names across modules.

The layers are ``symnet.core`` (rank 0), ``symnet.solvers`` (1) and ``symnet.frontend`` (2); the package's
own ``__init__`` and ``__main__`` sit on top (3). A module may import from its own layer and the layers below
it, never from above. Imports of the project's own modules inside functions are allowed only to defer a heavy
optional dependency, with a comment that says so (``# deferred: ...``). The checker reads the sources as text
(nothing is imported), and the last tests plant bad imports in a copy of the package to show that it catches
each kind.

Private attributes: a module reads (or writes) no other object's private attribute ``x._name`` that another
module of the package defines, ``x`` being anything but ``self`` or ``cls`` (dunders are not private). Only
names the package defines count (``def _name``, ``class _name``, ``self._name = ...``, ``_name = ...``), so
numpy's or the standard library's ``_`` names are not symnet's business; and a name the module defines itself
may be read on its own objects (a class and its helpers in one file). :data:`PRIVATE_ALLOWED` lists the
exceptions, each with its reason.
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

_HOOKS = ("_setup", "_step", "_state", "_load_state", "_on_params_restored", "_initial_loss", "_may_stop",
          "_on_loop_end")
#: (module, private attribute) -> why it may be read across modules there.
PRIVATE_ALLOWED = {
    **{("symnet.solvers.trainer", hook): "the hooks Solver declares for its backends to fill and the shared loop "
                                         "to call: the base class's own loop, moved to its own module"
       for hook in _HOOKS},
}


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


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_private(tree: ast.AST) -> set[str]:
    """The private names a module defines: functions, classes, ``self._x`` / ``cls._x`` and plain ``_x`` targets."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            out.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
    return {name for name in out if _private(name)}


def private_reads(package: Path = PACKAGE) -> list[str]:
    """Every read or write of another module's private attribute under ``package``, as readable lines."""
    files = module_names(package)
    trees = {m: ast.parse(path.read_text()) for m, path in files.items()}
    defined = {m: _defined_private(tree) for m, tree in trees.items()}
    everywhere = set().union(*defined.values())
    out = []
    for module, tree in sorted(trees.items()):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _private(node.attr) or node.attr not in everywhere \
                    or node.attr in defined[module] or (module, node.attr) in PRIVATE_ALLOWED:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            out.append(f"{files[module].relative_to(package.parent)}:{node.lineno}: reads the private attribute "
                       f"{node.attr} of {ast.unparse(node.value)}, which another module defines")
    return out


def problems(package: Path = PACKAGE) -> list[str]:
    """Every violation of the layering rules under ``package``, as readable lines."""
    files = module_names(package)
    names = set(files)
    graph: dict[str, set[str]] = {m: set() for m in files}
    out = private_reads(package)
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
    ("def f(solver):\n    return solver._certify\n", "reads the private attribute _certify of solver"),
    ("def f(loss):\n    loss._shards = []\n", "private attribute _shards of loss"),
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


def test_private_names_the_package_does_not_define_are_not_its_business(tmp_path):
    copy = tmp_path / "symnet"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "core" / "errors.py"
    before = private_reads(copy)
    # numpy's private names, an object's own attributes, a dunder and a name this module defines
    target.write_text(target.read_text() + "\n_mine = 1\n\n\nclass _Own:\n    def f(self, other):\n"
                      "        return np._NoValue, self._x, other.__dict__, other._mine\n")
    assert private_reads(copy) == before


def test_every_allowed_private_read_is_still_needed():
    # an allow-list entry whose read has gone should go too
    found = set()
    for module, path in module_names(PACKAGE).items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (module, node.attr) in PRIVATE_ALLOWED:
                found.add((module, node.attr))
    assert found == set(PRIVATE_ALLOWED)
