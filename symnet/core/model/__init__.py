"""Networks: :class:`Sequential` (:mod:`.sequential`), the preset networks by name (:mod:`.presets`), the
polynomial-regression model over windowed monomials (:mod:`.polyreg`) and save/load (:mod:`.saving`).

Example:
    >>> from symnet.core.model import Sequential, presets
    >>> isinstance(presets.get("seed"), Sequential)
    True
"""

from symnet.core.model.sequential import Sequential, model_from_spec

__all__ = ["Sequential", "model_from_spec"]
