"""symnet: train polynomial networks with exact polynomial solvers.

Example:
    >>> import symnet
    >>> model = symnet.models.get("mlp", input_dim=2, hidden=2)
    >>> model.num_outputs
    2
"""

from . import datasets, layers, models, restriction
from .api import fit
from .compare import compare
from .errors import SymnetError
from .history import History
from .io import load_model as load, save_model as save
from .layers import AvgPool2d, Conv2d, Flatten, Linear, Poly, Square
from .model import Sequential

__version__ = "0.1.0"

__all__ = ["AvgPool2d", "Conv2d", "Flatten", "History", "Linear", "Poly", "Sequential", "Square", "SymnetError",
           "compare", "datasets", "fit", "layers", "load", "models", "restriction", "save"]
