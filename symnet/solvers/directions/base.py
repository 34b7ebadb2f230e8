"""A search direction as a pure ``init`` / ``update`` pair, and the exact line search every direction ends with.

An exact solver is a direction plus an exact line search, in the style of
:mod:`symnet.solvers.optim`: a :class:`Direction` is a NamedTuple of pure
functions with a NamedTuple state, and :func:`exact_line_search` moves to the
global minimiser of the exact polynomial along whatever direction it returns,
so the objective never rises whatever the direction.

* ``init(model) -> state``: the direction's state before the first iteration;
* ``update(problem, state) -> (d, state)``: the flat direction ``d`` from what
  the :class:`Problem` offers (its :class:`~symnet.core.restriction.Restriction`
  gives the gradient, Gauss-Newton products, ...; the state the previous
  steps), or ``None`` when there is no descent direction (on the full data:
  converged).

Optional fields, for directions that learn from the step they led to:
``observe(problem, d, result, state) -> (state, stop)`` after the line search
(``result`` a :class:`~symnet.core.restriction.LineResult`; ``stop`` says the
full-data run has converged), ``observes_loss`` (``observe`` reads the loss at
the new point, so a mini-batch's caches must follow the step), ``reset(state)
-> state`` (forget what the path taught when the parameters are set from
outside; default: ``init`` afresh) and ``size(model) -> int`` (the parameters a
step moves, for the records; default: all).

:class:`~symnet.solvers.exact_directions.DirectionSolver` runs any direction;
the ``cg``, ``lbfgs`` and ``gauss-newton`` solvers are such compositions.

Example:
    >>> import numpy as np
    >>> from symnet.core.derivatives import gradient
    >>> from symnet.core.model import presets as models
    >>> from symnet.core.restriction import Restriction
    >>> steepest = Direction(init=lambda model: (), update=lambda problem, state: (-gradient(problem.loss), state))
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> X, Y = np.random.default_rng(0).random((16, 2)), np.eye(2)[[0, 1] * 8]
    >>> loss = Restriction(m, X, Y, ridge=0.1)
    >>> start = loss.value
    >>> d, state = steepest.update(Problem(loss), steepest.init(m))
    >>> exact_line_search(loss, d).after < start
    True
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from symnet.core.objective import evaluate
from symnet.core.restriction import LineResult, Restriction
from symnet.core.samples import Samples


class ReadoutCache:
    """The Cholesky factor of the last Linear layer's ridge Gram matrix, shared by a solver and its directions.

    The solver sets :attr:`factor` at every variable-projection solve; a
    direction may use it (the reduced Gauss-Newton matrix), compute it when it
    is missing on the full data, and drop it when its step moves the features.
    """

    def __init__(self) -> None:
        self.factor = None


class Problem(NamedTuple):
    """What a direction sees at one iteration.

    Attributes:
        loss: the exact loss at the current parameters: of the full data or of a mini-batch.
        full: ``loss`` is the full training objective (else a mini-batch's share of it).
        rng: draws curvature subsets and random cotangents.
        num_samples: samples of the full objective (``loss.num_samples`` on the full data).
        readout: the solver's variable-projection factor (None: no variable projection).
    """

    loss: Restriction
    full: bool = True
    rng: np.random.Generator | None = None
    num_samples: int | None = None
    readout: ReadoutCache | None = None


class Direction(NamedTuple):
    """A pure search direction; see the module docstring."""

    init: Callable[[Any], Any]
    update: Callable[[Problem, Any], tuple[np.ndarray | None, Any]]
    observe: Callable[[Problem, np.ndarray, LineResult, Any], tuple[Any, bool]] | None = None
    observes_loss: bool = False
    reset: Callable[[Any], Any] | None = None
    size: Callable[[Any], int] | None = None


# --------------------------------------------------------------------------- the exact line search
class FullObjective:
    """The full-data objective by forward passes, to guard mini-batch steps.

    Args:
        model: the model being trained (read at every :meth:`evaluate`).
        X, Y: the full training set.
        ridge: the ridge weight of the full objective.
        batch_size: samples per forward chunk.
        samples: where the forward passes run (:class:`~symnet.core.samples.Samples` of ``X``
            and ``Y``, or their shards on a cluster); None: here, on ``X``.

    Example:
        >>> from symnet.core.model import presets as models
        >>> m, X = models.get("mlp", input_dim=2, hidden=2, seed=0), np.eye(2)
        >>> bool(np.isclose(FullObjective(m, X, X, ridge=0.1).value, Restriction(m, X, X, ridge=0.1).value))
        True
    """

    def __init__(self, model, X: np.ndarray, Y: np.ndarray, ridge: float, batch_size: int = 8192,
                 samples=None) -> None:
        self.model, self.X, self.Y = model, X, Y
        self.samples = Samples(model, X, Y) if samples is None else samples
        self.ridge, self.batch_size = float(ridge), int(batch_size)
        self.scores: np.ndarray | None = None
        self.value = self.evaluate()

    def evaluate(self) -> float:
        """Objective at the model's current parameters (sum over samples); keeps the scores."""
        self.scores = self.samples.scores(batch_size=self.batch_size)
        return evaluate(self.scores, self.Y, self.model.get_flat(), self.ridge)

    def accept(self, theta_before: np.ndarray) -> bool:
        """Keep the current parameters if the full objective did not rise, else restore ``theta_before``."""
        scores_before = self.scores
        value = self.evaluate()
        if np.isfinite(value) and value <= self.value:
            self.value = value
            return True
        self.model.set_flat(theta_before)
        self.scores = scores_before
        return False


def exact_line_search(loss: Restriction, direction, *, check: FullObjective | None = None,
                      update: bool = True) -> LineResult:
    """Move to the global minimiser of ``loss``'s exact polynomial along ``direction``.

    :meth:`Restriction.line_minimize <symnet.core.restriction.Restriction.line_minimize>`:
    the step is taken only if it lowers ``loss``. On a mini-batch's loss
    (:func:`~symnet.solvers.exact_directions.batch_loss`) ``check`` also keeps
    it only if the FULL objective did not rise (one forward pass over the full
    data); otherwise the parameters are restored and the result says
    ``accepted=False``. The batch caches are stale after a rejected step:
    build a fresh batch loss for the next one. ``update=False`` only moves the
    parameters, not the caches (for a loss that is dropped afterwards).

    Example:
        >>> from symnet.core.model import presets as models
        >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> X, Y = np.random.default_rng(0).random((64, 2)), np.eye(2)[[0, 1] * 32]
        >>> full = FullObjective(m, X, Y, ridge=0.1)
        >>> start = full.value
        >>> batch = Restriction(m, X[:16], Y[:16], ridge=0.1 * 16 / 64)
        >>> res = exact_line_search(batch, -np.ones(m.num_params), check=full)
        >>> res.after <= res.before and full.value <= start
        True
    """
    model = loss.model
    theta_before = model.get_flat() if check is not None else None
    res = loss.line_minimize(direction, update=update)
    if check is None or not res.accepted:
        return res
    if check.accept(theta_before):
        return res
    return LineResult(0.0, res.before, res.before, res.scale, res.degree, False)


#: The former name of :func:`exact_line_search` (mini-batch solvers).
minibatch_line_search = exact_line_search
