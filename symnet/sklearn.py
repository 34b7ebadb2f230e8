"""``symnet.sklearn``: the scikit-learn estimators, where users look for them.

The estimators live in :mod:`symnet.frontend.sklearn`; this module only gives
them their short import path. scikit-learn is an optional dependency
(``pip install 'symnet[sklearn]'``), imported only when this module is.

Example:
    >>> from symnet.sklearn import PolyNetClassifier, PolyRegClassifier
    >>> PolyRegClassifier(degree=2).get_params()["degree"]
    2
"""

from symnet.frontend.sklearn import PolyNetClassifier, PolyRegClassifier

__all__ = ["PolyNetClassifier", "PolyRegClassifier"]
