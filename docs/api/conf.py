"""Sphinx configuration of symnet's API reference, built from the docstrings (autodoc + napoleon).

Build it from the project root (``.ci/run`` does, with warnings as errors)::

    pip install '.[docs,sklearn]'
    python -m sphinx -W --keep-going -b html docs/api build/docs/api
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # document this source tree, whether or not it is installed

from symnet.core.version import __version__  # noqa: E402

project = "symnet"
author = "the symnet developers"
release = version = __version__
copyright = "the symnet developers"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields: NamedTuple fields are documented once, by autodoc
# The solvers document their options in an "Options:" section, read like "Args:".
napoleon_custom_sections = [("Options", "params_style")]
autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
# Type hints name third-party types (numpy arrays, scikit-learn bases) that this reference does not document.
nitpicky = False

html_theme = "alabaster"
html_title = f"symnet {release} API reference"
exclude_patterns = ["_build"]
