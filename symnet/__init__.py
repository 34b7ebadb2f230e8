"""symnet: train polynomial networks with exact polynomial solvers.

The package has three layers, and imports run one way (core <- solvers <- front end):

* :mod:`symnet.core`: layers, networks, their exact loss polynomials and derivatives,
  polynomial roots, datasets and files;
* :mod:`symnet.solvers`: the training backends behind one interface;
* :mod:`symnet.frontend`: ``fit``, comparisons, benchmarks, analysis, figures and the CLI.

This module re-exports what a user types most. :mod:`symnet.sklearn` (the
scikit-learn estimators) is loaded on first use, since scikit-learn is an
optional dependency.

Example:
    >>> import symnet
    >>> model = symnet.models.get("mlp", input_dim=2, hidden=2)
    >>> model.num_outputs
    2
"""

from symnet.core import datasets, errors, layers, restriction, roots
from symnet.core.model import presets as models
from symnet.core.errors import SymnetError
from symnet.core.history import History
from symnet.core.model.saving import load_model as load
from symnet.core.model.saving import save_model as save
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly, Square
from symnet.core.model import Sequential
from symnet import solvers
from symnet.frontend import api, bench, bridge, inspection, plots, polyreg_maps, robustness
from symnet.frontend.api import fit, train
from symnet.frontend.compare import compare

from symnet.core.version import __version__

__all__ = ["AvgPool2d", "Conv2d", "Flatten", "History", "Linear", "Poly", "Sequential", "Square", "SymnetError",
           "api", "bench", "bridge", "compare", "datasets", "errors", "fit", "inspection", "layers", "load", "models",
           "plots", "polyreg_maps", "restriction", "robustness", "roots", "save", "solvers", "train"]


def __getattr__(name: str):
    """``symnet.sklearn`` on first use, so that ``import symnet`` never needs scikit-learn."""
    if name == "sklearn":
        # deferred: scikit-learn is an optional, heavy dependency (the 'sklearn' extra)
        import symnet.sklearn

        return symnet.sklearn
    raise AttributeError(f"module 'symnet' has no attribute {name!r}")
