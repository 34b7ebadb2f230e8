"""What a user installing symnet relies on: one version, the README's set-up commands, the metadata."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import symnet
from symnet.core.version import __version__
from symnet.frontend import cli

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_has_one_home():
    assert CONFIG["project"]["dynamic"] == ["version"] and "version" not in CONFIG["project"]
    assert CONFIG["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "symnet.core.version.__version__"}
    assert symnet.__version__ == __version__ and re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", __version__)


def test_symnet_version_prints_it(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"symnet {__version__}"
    run = subprocess.run([sys.executable, "-m", "symnet", "--version"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == f"symnet {__version__}"


def test_readme_opens_with_the_two_setup_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1:]
    assert block[0].startswith("pip install . && symnet train ")
    assert block[1].startswith("pip install '.[test]' && python -m pytest -q ")
    assert lines.index("```bash") < 15  # on the first screen


def test_metadata_a_user_can_trust():
    project = CONFIG["project"]
    assert any(c.startswith("Programming Language :: Python :: 3") for c in project["classifiers"])
    assert {"sklearn", "test", "docs", "notebook"} <= set(project["optional-dependencies"])
    assert any(dep.startswith("scikit-learn") for dep in project["optional-dependencies"]["test"])
    assert any(dep.startswith("sphinx") for dep in project["optional-dependencies"]["docs"])
    for name, target in project["urls"].items():  # relative names of files in this tree, no invented addresses
        assert "://" not in target and (ROOT / target).exists(), (name, target)
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")


def test_readme_links_point_at_files_that_exist():
    for doc in (ROOT / "README.md", ROOT / "docs" / "index.md", ROOT / "docs" / "benchmarks.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target:
                continue
            assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def test_readme_anchors_into_benchmarks_exist():
    headings = [line.lstrip("#").strip() for line in (ROOT / "docs" / "benchmarks.md").read_text().splitlines()
                if line.startswith("#")]

    def slug(text: str) -> str:  # GitHub's rule: lower case, drop punctuation, spaces to hyphens
        return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")

    anchors = {slug(h) for h in headings}
    for anchor in re.findall(r"docs/benchmarks\.md#([\w-]+)", (ROOT / "README.md").read_text()):
        assert anchor in anchors, anchor


def test_the_api_reference_documents_every_module():
    documented = set()
    for page in (ROOT / "docs" / "api").glob("*.rst"):
        documented |= set(re.findall(r"^\.\. automodule:: ([\w.]+)", page.read_text(), flags=re.M))
    modules = {".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for path in (ROOT / "symnet").rglob("*.py") if "kernels" not in path.with_suffix("").parts}
    modules -= {"symnet.__main__"}  # the numba kernels (kernels/, kernels.py) are documented by their callers
    assert sorted(modules - documented) == [], "add these to docs/api/*.rst"
    assert sorted(documented - modules) == [], "no such modules"
