"""Gradient-descent optimizers as small pure transformations, composable by chaining.

An optimizer is a :class:`GradientTransformation`: a pair of pure functions

* ``init(params) -> state``: the optimizer's state (a ``NamedTuple``) for the
  flat float64 parameter vector ``params``;
* ``update(grads, state, params) -> (updates, new_state)``: turn the gradient
  into the vector to ADD to the parameters, and the next state.

Neither function mutates its inputs: every array in a new state is a new
array, so an old state can be reused (to retry a step, or to compare runs).
Building blocks (:func:`scale`, :func:`clip_by_global_norm`,
:func:`scale_by_adam` ...) each do one thing; :func:`chain` runs several in
order; the aliases (:func:`sgd`, :func:`adam`, :func:`sgd_hd` ...) assemble the
published methods, and :data:`OPTIMIZERS` lists them by name with their
defaults.

Every alias assembles, in this order::

    clip_by_global_norm(clip_norm)      if clip_norm is given
    add_decayed_weights(weight_decay)   if weight_decay and not decoupled (L2)
    <the method's preconditioner>       momentum buffer, Adam moments ...
    add_decayed_weights(weight_decay)   if weight_decay and decoupled (AdamW style)
    scale(-learning_rate)               or scale_by_schedule(-schedule(t))

so the returned updates are already negated. The hypergradient aliases
(:func:`sgd_hd`, :func:`adam_hd`) end instead with :func:`hypergradient`, which
scales the direction by its own adapted rate (decoupled decay, if asked for,
joins that direction) and refuse a schedule. :func:`adamw_schedulefree` keeps
two sequences of its own (it needs no schedule, and refuses one): the
parameters it updates are the point ``y`` where gradients are taken, while the
model to evaluate is the average ``x`` (:func:`eval_params`). Step counters
start at 0 for the first update (``schedule(0)`` is the first learning rate)
while the papers' bias corrections count from ``t = 1``.

Example:
    >>> import numpy as np
    >>> from symnet.solvers import optim
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0]]); b = np.array([1.0, -1.0])
    >>> opt = optim.adam(learning_rate=0.1)
    >>> x = np.zeros(2); state = opt.init(x)
    >>> for _ in range(500):
    ...     updates, state = opt.update(A @ x - b, state, x)
    ...     x = optim.apply_updates(x, updates)
    >>> bool(np.allclose(x, np.linalg.solve(A, b), atol=1e-3))
    True
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, NamedTuple

import numpy as np

from symnet.core.errors import SolverError

#: A learning-rate schedule: step (0 for the first update) -> learning rate.
Schedule = Callable[[int], float]


class GradientTransformation(NamedTuple):
    """A pure ``init`` / ``update`` pair; see the module docstring."""

    init: Callable[[np.ndarray], Any]
    update: Callable[..., tuple[np.ndarray, Any]]


# --------------------------------------------------------------------------- states
class EmptyState(NamedTuple):
    """State of a stateless transformation."""


class ScaleByScheduleState(NamedTuple):
    count: int


class TraceState(NamedTuple):
    trace: np.ndarray


class ScaleByAdamState(NamedTuple):
    count: int
    mu: np.ndarray
    nu: np.ndarray


class ScaleByNadamState(NamedTuple):
    count: int
    mu_product: float
    mu: np.ndarray
    nu: np.ndarray


class ScaleByAmsgradState(NamedTuple):
    count: int
    mu_product: float
    mu: np.ndarray
    nu: np.ndarray
    nu_max: np.ndarray


class ScaleByRmsState(NamedTuple):
    nu: np.ndarray


class HypergradientState(NamedTuple):
    learning_rate: float
    prev_direction: np.ndarray
    inner: Any


class ScheduleFreeState(NamedTuple):
    """State of :func:`adamw_schedulefree` (Defazio et al. 2024).

    Attributes:
        count: updates done so far (``k``).
        learning_rate: the rate of the last update, warm-up included (0 before the first).
        lr_max: the largest rate so far; the averaging weights are ``(k+1)^r lr_max^weight_lr_power``.
        weight_sum: the sum of the averaging weights so far.
        z: the base sequence, moved by the normalised gradient steps.
        x: the weighted average of the ``z`` iterates: the point to evaluate (and to keep).
        y: ``(1 - b1) z + b1 x``, where the gradients are taken: the parameters while training.
        nu: the second moment of the gradients.
    """

    count: int
    learning_rate: float
    lr_max: float
    weight_sum: float
    z: np.ndarray
    x: np.ndarray
    y: np.ndarray
    nu: np.ndarray


class ChainState(NamedTuple):
    states: tuple


# --------------------------------------------------------------------------- checks
def _vector(x: Any, name: str) -> np.ndarray:
    """``x`` as a 1-D float64 array (no copy when it already is one)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise SolverError(f"{name} must be a flat 1-D vector, got shape {arr.shape}; "
                          "pass model.get_flat() and the flat gradient")
    return arr


def _number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SolverError(f"{name} must be a number, got {value!r}") from None
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        rng = f"{lo or '(-inf'}, {hi or 'inf)'}"
        raise SolverError(f"{name} must be a finite number in {rng}, got {value!r}; pick a value in that range")
    return v


def _beta(value: Any, name: str) -> float:
    return _number(value, name, low=0.0, high=1.0, high_open=True)


def _need_params(params: Any, who: str) -> np.ndarray:
    if params is None:
        raise SolverError(f"{who} needs the current parameters: call update(grads, state, params)")
    return _vector(params, "params")


# --------------------------------------------------------------------------- basics
def apply_updates(params: np.ndarray, updates: np.ndarray) -> np.ndarray:
    """``params + updates`` as a new array (the updates are already negated).

    Example:
        >>> apply_updates(np.array([1.0, 2.0]), np.array([0.5, -1.0]))
        array([1.5, 1. ])
    """
    p = _vector(params, "params")
    u = _vector(updates, "updates")
    if p.shape != u.shape:
        raise SolverError(f"updates have shape {u.shape} but params have {p.shape}; "
                          "initialise the optimizer with the same parameter vector")
    return p + u


def identity() -> GradientTransformation:
    """Pass the gradient through unchanged.

    Example:
        >>> identity().update(np.array([1.0]), EmptyState())[0]
        array([1.])
    """

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        return _vector(grads, "grads"), state

    return GradientTransformation(init, update)


def scale(step_size: float) -> GradientTransformation:
    """``u = step_size * g``.

    Example:
        >>> scale(-0.5).update(np.array([2.0, 4.0]), EmptyState())[0]
        array([-1., -2.])
    """
    step_size = _number(step_size, "step size")

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        return step_size * _vector(grads, "grads"), state

    return GradientTransformation(init, update)


def scale_by_schedule(schedule: Schedule) -> GradientTransformation:
    """``u_t = schedule(t) * g_t`` with ``t = 0, 1, 2, ...`` counting updates.

    Example:
        >>> tx = scale_by_schedule(lambda t: 1.0 / (t + 1))
        >>> s = tx.init(np.zeros(1))
        >>> u, s = tx.update(np.array([6.0]), s); u2, s = tx.update(np.array([6.0]), s)
        >>> float(u[0]), float(u2[0])
        (6.0, 3.0)
    """
    if not callable(schedule):
        raise SolverError(f"schedule must be a function step -> learning rate, got {schedule!r}; "
                          "build one with constant_schedule(), inverse_time_schedule() ...")

    def init(params):
        return ScaleByScheduleState(count=0)

    def update(grads, state, params=None):
        factor = float(schedule(state.count))
        return factor * _vector(grads, "grads"), ScaleByScheduleState(count=state.count + 1)

    return GradientTransformation(init, update)


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    """``u = g + weight_decay * params``.

    Placed before a preconditioner it is an L2 penalty ``weight_decay/2 ||params||^2``
    (coupled weight decay); placed after it, just before the learning rate, it is
    the decoupled weight decay of Loshchilov & Hutter (2019, "AdamW"), where the
    decay is not rescaled by the adaptive denominators.

    Example:
        >>> tx = add_decayed_weights(0.1)
        >>> tx.update(np.array([1.0, 1.0]), EmptyState(), np.array([10.0, -10.0]))[0]
        array([2., 0.])
    """
    weight_decay = _number(weight_decay, "weight decay", low=0.0)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        p = _need_params(params, "add_decayed_weights")
        return _vector(grads, "grads") + weight_decay * p, state

    return GradientTransformation(init, update)


def clip(max_delta: float) -> GradientTransformation:
    """Clip every coordinate to ``[-max_delta, max_delta]``.

    Example:
        >>> clip(1.0).update(np.array([-3.0, 0.5, 2.0]), EmptyState())[0]
        array([-1. ,  0.5,  1. ])
    """
    max_delta = _number(max_delta, "clip value", low=0.0, low_open=True)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        return np.clip(_vector(grads, "grads"), -max_delta, max_delta), state

    return GradientTransformation(init, update)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """``u = g * min(1, max_norm / ||g||_2)``: rescale the whole vector when its norm is too large.

    Example:
        >>> clip_by_global_norm(1.0).update(np.array([3.0, 4.0]), EmptyState())[0]
        array([0.6, 0.8])
    """
    max_norm = _number(max_norm, "clip norm", low=0.0, low_open=True)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        g = _vector(grads, "grads")
        norm = float(np.linalg.norm(g))
        if norm > max_norm:  # a NaN norm falls through; the training loop reports divergence
            return g * (max_norm / norm), state
        return g.copy(), state

    return GradientTransformation(init, update)


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum buffer ``b_t = decay * b_{t-1} + g_t`` (``b_0 = 0``).

    Output ``b_t`` (heavy ball, Polyak 1964) or ``g_t + decay * b_t`` (Nesterov's
    accelerated gradient in the form of Sutskever et al. 2013 / Bengio et al. 2013,
    where the stored parameters are the look-ahead point). Followed by
    ``scale(-lr)`` this is ``theta_{t+1} = theta_t - lr * b_t``, which equals
    Polyak's ``theta_{t+1} = theta_t - lr g_t + decay (theta_t - theta_{t-1})`` at a
    constant learning rate; under a schedule the learning rate multiplies the
    whole buffer (the PyTorch convention).

    Example:
        >>> tx = trace(0.5); s = tx.init(np.zeros(1))
        >>> u, s = tx.update(np.array([1.0]), s); u, s = tx.update(np.array([1.0]), s)
        >>> float(u[0])
        1.5
    """
    decay = _beta(decay, "momentum")
    nesterov = bool(nesterov)

    def init(params):
        return TraceState(trace=np.zeros_like(_vector(params, "params")))

    def update(grads, state, params=None):
        g = _vector(grads, "grads")
        buf = decay * state.trace + g
        out = g + decay * buf if nesterov else buf
        return out, TraceState(trace=buf)

    return GradientTransformation(init, update)


def scale_by_rms(rho: float = 0.9, eps: float = 1e-8) -> GradientTransformation:
    """RMSprop (Tieleman & Hinton 2012, Coursera lecture 6.5).

    ``v_t = rho v_{t-1} + (1 - rho) g_t^2``, ``u_t = g_t / (sqrt(v_t) + eps)``, ``v_0 = 0``.

    Example:
        >>> tx = scale_by_rms(0.75, 0.0)
        >>> tx.update(np.array([2.0]), tx.init(np.zeros(1)))[0]   # 2 / sqrt(0.25 * 4)
        array([2.])
    """
    rho = _beta(rho, "rho")
    eps = _number(eps, "eps", low=0.0)

    def init(params):
        return ScaleByRmsState(nu=np.zeros_like(_vector(params, "params")))

    def update(grads, state, params=None):
        g = _vector(grads, "grads")
        nu = rho * state.nu + (1.0 - rho) * (g * g)
        return g / (np.sqrt(nu) + eps), ScaleByRmsState(nu=nu)

    return GradientTransformation(init, update)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
                  nesterov: bool = False, momentum_decay: float = 0.004,
                  momentum_warmup: bool = True, scheduled_average: bool = False) -> GradientTransformation:
    """Adam's direction (Kingma & Ba 2015, Algorithm 1), or Nadam's with ``nesterov=True``.

    Adam, with ``t = 1, 2, ...`` and ``m_0 = v_0 = 0``::

        m_t = b1 m_{t-1} + (1 - b1) g_t          m^_t = m_t / (1 - b1^t)
        v_t = b2 v_{t-1} + (1 - b2) g_t^2        v^_t = v_t / (1 - b2^t)
        u_t = m^_t / (sqrt(v^_t) + eps)          (eps outside the root, as in the paper)

    Nadam (``nesterov=True``) is the update PyTorch documents for ``torch.optim.NAdam``
    (and Keras implements), with Dozat's momentum schedule
    ``mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))`` (``momentum_decay = 0.004 = 1/250``)::

        m_t   = b1 m_{t-1} + (1 - b1) g_t         (a constant b1 in the moving average)
        v_t   = b2 v_{t-1} + (1 - b2) g_t^2       v^_t = v_t / (1 - b2^t)
        m-_t  = mu_{t+1} m_t / (1 - prod_{i<=t+1} mu_i) + (1 - mu_t) g_t / (1 - prod_{i<=t} mu_i)
        u_t   = m-_t / (sqrt(v^_t) + eps)

    ``scheduled_average=True`` gives instead the paper's form (Dozat 2016,
    "Incorporating Nesterov Momentum into Adam", Algorithm 2), whose moving
    average itself uses the schedule, ``m_t = mu_t m_{t-1} + (1 - mu_t) g_t``:
    then ``1 - prod mu_i`` is its exact bias correction. The two differ by a lot
    during the warm-up, where ``mu_t`` stays near 0.45-0.52 for the first thousand
    steps (the first update already differs by about a quarter). With
    ``momentum_warmup=False`` every ``mu_t = b1``, both forms coincide and reduce to
    the simplified constant-momentum Nadam (as in optax's ``nesterov=True``).

    Example:
        >>> tx = scale_by_adam(eps=0.0)
        >>> tx.update(np.array([-3.0, 2.0]), tx.init(np.zeros(2)))[0]   # first step: sign(g)
        array([-1.,  1.])
    """
    b1 = _beta(b1, "b1")
    b2 = _beta(b2, "b2")
    eps = _number(eps, "eps", low=0.0)
    if not nesterov:
        def init(params):
            z = np.zeros_like(_vector(params, "params"))
            return ScaleByAdamState(count=0, mu=z, nu=z.copy())

        def update(grads, state, params=None):
            g = _vector(grads, "grads")
            t = state.count + 1
            mu = b1 * state.mu + (1.0 - b1) * g
            nu = b2 * state.nu + (1.0 - b2) * (g * g)
            m_hat = mu / (1.0 - b1 ** t)
            v_hat = nu / (1.0 - b2 ** t)
            return m_hat / (np.sqrt(v_hat) + eps), ScaleByAdamState(count=t, mu=mu, nu=nu)

        return GradientTransformation(init, update)

    mu_schedule = _momentum_schedule(b1, momentum_decay, momentum_warmup)

    def init(params):
        z = np.zeros_like(_vector(params, "params"))
        return ScaleByNadamState(count=0, mu_product=1.0, mu=z, nu=z.copy())

    def update(grads, state, params=None):
        g = _vector(grads, "grads")
        t = state.count + 1
        mu_t, mu_next = mu_schedule(t), mu_schedule(t + 1)
        prod_t = state.mu_product * mu_t
        decay = mu_t if scheduled_average else b1
        mu = decay * state.mu + (1.0 - decay) * g
        nu = b2 * state.nu + (1.0 - b2) * (g * g)
        m_bar = _nesterov_mix(g, mu, mu_t, mu_next, prod_t)
        v_hat = nu / (1.0 - b2 ** t)
        return m_bar / (np.sqrt(v_hat) + eps), ScaleByNadamState(count=t, mu_product=prod_t, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def _momentum_schedule(b1: float, momentum_decay: float, warmup: bool) -> Callable[[int], float]:
    """Dozat's ``mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))``, or constant ``b1``."""
    momentum_decay = _number(momentum_decay, "momentum decay", low=0.0)
    if not warmup:
        return lambda t: b1
    return lambda t: b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


def _nesterov_mix(g, mu, mu_t, mu_next, prod_t):
    """Dozat's ``(1 - mu_t) g / (1 - prod_{<=t}) + mu_{t+1} m_t / (1 - prod_{<=t+1})``."""
    return (1.0 - mu_t) / (1.0 - prod_t) * g + mu_next / (1.0 - prod_t * mu_next) * mu


def scale_by_amsgrad(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
                     bias_correction: bool = True, nesterov: bool = False, momentum_decay: float = 0.004,
                     momentum_warmup: bool = True, scheduled_average: bool = False) -> GradientTransformation:
    """AMSGrad's direction (Reddi, Kale & Kumar 2018, Algorithm 2), or NAMSGrad's with ``nesterov=True``.

    AMSGrad keeps the running maximum of Adam's second moment so the effective
    step never grows::

        m_t = b1 m_{t-1} + (1 - b1) g_t
        v_t = b2 v_{t-1} + (1 - b2) g_t^2
        w_t = max(w_{t-1}, v_t)                   (w_0 = 0; the max is of the raw v_t)
        u_t = (m_t / (1 - b1^t)) / (sqrt(w_t / (1 - b2^t)) + eps)

    Bias correction: the paper's algorithm has none (and no eps); here, by default,
    ``m_t`` and the maximum ``w_t`` are divided by ``1 - b1^t`` and ``1 - b2^t`` (the
    PyTorch convention, so the first step matches Adam's). ``bias_correction=False``
    gives the paper's ``u_t = m_t / (sqrt(w_t) + eps)``.

    NAMSGrad (``nesterov=True``) replaces the numerator by Nadam's look-ahead
    momentum exactly as in :func:`scale_by_adam` (PyTorch's form, or Dozat's paper
    form with ``scheduled_average=True``) and keeps AMSGrad's denominator
    ``sqrt(w_t / (1 - b2^t)) + eps``.

    Example:
        >>> tx = scale_by_amsgrad(b2=0.5, eps=0.0); s = tx.init(np.zeros(1))
        >>> u, s = tx.update(np.array([4.0]), s); u, s = tx.update(np.array([1.0]), s)
        >>> bool(s.nu_max[0] > s.nu[0])     # the larger past second moment is kept
        True
    """
    b1 = _beta(b1, "b1")
    b2 = _beta(b2, "b2")
    eps = _number(eps, "eps", low=0.0)
    if nesterov and not bias_correction:
        raise SolverError("NAMSGrad needs bias_correction=True: Nadam's look-ahead momentum is defined "
                          "with its own corrections")
    mu_schedule = _momentum_schedule(b1, momentum_decay, momentum_warmup) if nesterov else None

    def init(params):
        z = np.zeros_like(_vector(params, "params"))
        return ScaleByAmsgradState(count=0, mu_product=1.0, mu=z, nu=z.copy(), nu_max=z.copy())

    def update(grads, state, params=None):
        g = _vector(grads, "grads")
        t = state.count + 1
        nu = b2 * state.nu + (1.0 - b2) * (g * g)
        nu_max = np.maximum(state.nu_max, nu)
        if nesterov:
            mu_t, mu_next = mu_schedule(t), mu_schedule(t + 1)
            prod_t = state.mu_product * mu_t
            decay = mu_t if scheduled_average else b1
            mu = decay * state.mu + (1.0 - decay) * g
            num = _nesterov_mix(g, mu, mu_t, mu_next, prod_t)
        else:
            prod_t = state.mu_product
            mu = b1 * state.mu + (1.0 - b1) * g
            num = mu / (1.0 - b1 ** t) if bias_correction else mu
        w = nu_max / (1.0 - b2 ** t) if bias_correction else nu_max
        new = ScaleByAmsgradState(count=t, mu_product=prod_t, mu=mu, nu=nu, nu_max=nu_max)
        return num / (np.sqrt(w) + eps), new

    return GradientTransformation(init, update)


def hypergradient(inner: GradientTransformation, learning_rate: float, beta: float) -> GradientTransformation:
    """Hypergradient descent on a global learning rate (Baydin et al. 2018, Algorithms 4-6).

    With ``d_t`` the direction produced by ``inner`` from ``g_t`` (``g_t`` itself for
    SGD-HD, Adam's ``m^_t / (sqrt(v^_t) + eps)`` for Adam-HD) the update is
    ``u_t = -alpha_t d_t``, so ``d u_t / d alpha_t = -d_t``, and the learning rate
    descends its own hypergradient ``h_t = g_t . (-d_{t-1})`` before each step::

        alpha_t = alpha_{t-1} - beta h_t = alpha_{t-1} + beta g_t . d_{t-1}    (d_0 = 0)
        u_t     = -alpha_t d_t

    The returned updates are already negated. ``alpha_0 = learning_rate``; the
    current ``alpha_t`` is ``state.learning_rate``.

    Example:
        >>> tx = hypergradient(identity(), learning_rate=0.1, beta=0.01); s = tx.init(np.zeros(1))
        >>> u, s = tx.update(np.array([2.0]), s); u, s = tx.update(np.array([2.0]), s)
        >>> round(s.learning_rate, 12)       # 0.1 + 0.01 * (2 * 2)
        0.14
    """
    alpha0 = _number(learning_rate, "learning rate", low=0.0)
    beta = _number(beta, "hypergradient learning rate beta", low=0.0)

    def init(params):
        p = _vector(params, "params")
        return HypergradientState(learning_rate=alpha0, prev_direction=np.zeros_like(p), inner=inner.init(p))

    def update(grads, state, params=None):
        g = _vector(grads, "grads")
        alpha = state.learning_rate + beta * float(np.dot(g, state.prev_direction))
        direction, inner_state = inner.update(g, state.inner, params)
        direction = np.array(direction, dtype=np.float64)  # own copy: it is kept in the state
        return -alpha * direction, HypergradientState(learning_rate=alpha, prev_direction=direction,
                                                      inner=inner_state)

    return GradientTransformation(init, update)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` in order, each to the previous one's output.

    Example:
        >>> tx = chain(clip_by_global_norm(1.0), scale(-2.0))
        >>> tx.update(np.array([3.0, 4.0]), tx.init(np.zeros(2)))[0]
        array([-1.2, -1.6])
    """
    for i, tx in enumerate(transforms):
        if not isinstance(tx, GradientTransformation):
            raise SolverError(f"chain() argument {i} is {type(tx).__name__}, not a GradientTransformation")

    def init(params):
        return ChainState(states=tuple(tx.init(params) for tx in transforms))

    def update(grads, state, params=None):
        out = _vector(grads, "grads")
        if not isinstance(state, ChainState) or len(state.states) != len(transforms):
            raise SolverError("this state was not made by this chain's init(); call init(params) of the same "
                              "optimizer")
        new_states = []
        for tx, s in zip(transforms, state.states):
            out, s = tx.update(out, s, params)
            new_states.append(s)
        return out, ChainState(states=tuple(new_states))

    return GradientTransformation(init, update)


# --------------------------------------------------------------------------- schedules
def constant_schedule(value: float) -> Schedule:
    """``lr_t = value``.

    Example:
        >>> constant_schedule(0.1)(7)
        0.1
    """
    value = _number(value, "learning rate", low=0.0)
    return lambda step: value


def inverse_time_schedule(init_value: float, decay: float) -> Schedule:
    """Robbins-Monro annealing ``lr_t = init_value / (1 + decay * t)``.

    For ``decay > 0`` the steps satisfy Robbins & Monro's (1951) conditions
    ``sum lr_t = inf`` and ``sum lr_t^2 < inf``.

    Example:
        >>> s = inverse_time_schedule(1.0, 0.5)
        >>> [s(t) for t in range(3)]
        [1.0, 0.6666666666666666, 0.5]
    """
    init_value = _number(init_value, "learning rate", low=0.0)
    decay = _number(decay, "decay", low=0.0)
    return lambda step: init_value / (1.0 + decay * step)


def exponential_decay_schedule(init_value: float, decay_rate: float, transition_steps: float = 1.0) -> Schedule:
    """``lr_t = init_value * decay_rate^(t / transition_steps)``.

    Example:
        >>> exponential_decay_schedule(1.0, 0.5, transition_steps=2)(4)
        0.25
    """
    init_value = _number(init_value, "learning rate", low=0.0)
    decay_rate = _number(decay_rate, "decay rate", low=0.0, low_open=True)
    transition_steps = _number(transition_steps, "transition steps", low=0.0, low_open=True)
    return lambda step: init_value * decay_rate ** (step / transition_steps)


def cosine_decay_schedule(init_value: float, decay_steps: int, final_value: float = 0.0) -> Schedule:
    """Cosine annealing (Loshchilov & Hutter 2017, one cycle, no restart).

    ``lr_t = final + 0.5 (init - final) (1 + cos(pi min(t, T) / T))`` with ``T = decay_steps``;
    it stays at ``final_value`` after ``T`` steps.

    Example:
        >>> s = cosine_decay_schedule(1.0, 4)
        >>> [round(s(t), 12) for t in (0, 2, 4, 9)]
        [1.0, 0.5, 0.0, 0.0]
    """
    init_value = _number(init_value, "learning rate", low=0.0)
    final_value = _number(final_value, "final learning rate", low=0.0)
    T = _number(decay_steps, "decay steps", low=0.0, low_open=True)
    return lambda step: final_value + 0.5 * (init_value - final_value) * (1.0 + math.cos(math.pi * min(step, T) / T))


def _count(value: Any, name: str, *, low: int = 0) -> int:
    v = _number(value, name, low=low)
    if v != int(v):
        raise SolverError(f"{name} must be a whole number, got {value!r}")
    return int(v)


def warmup_cosine_schedule(peak_value: float, decay_steps: int, warmup_steps: int = 0,
                           final_value: float = 0.0) -> Schedule:
    """Linear warm-up to ``peak_value`` over ``warmup_steps`` updates, then cosine decay to ``final_value``.

    With ``T = decay_steps`` (the whole horizon, warm-up included) and ``W = warmup_steps``::

        lr_t = peak (t + 1) / W                                              for t < W
        lr_t = final + 0.5 (peak - final) (1 + cos(pi (t - W) / (T - W)))    for W <= t <= T
        lr_t = final                                                         for t >= T

    The first update already moves (``peak / W``, not 0), the rate reaches the
    peak at ``t = W - 1`` and starts its decay from there at ``t = W``. This is
    PyTorch's ``SequentialLR([LinearLR(start_factor=1/W, total_iters=W-1),
    CosineAnnealingLR(T_max=T-W, eta_min=final)], milestones=[W])``; ``W = 0``
    is :func:`cosine_decay_schedule`. ``W = T`` is a warm-up only: the rate
    then drops to ``final_value`` once the horizon is passed.

    Args:
        peak_value: the rate at the end of the warm-up (the solver's ``lr``).
        decay_steps: the horizon ``T`` in updates, warm-up included.
        warmup_steps: ``W``, between 0 and ``T``.
        final_value: the rate at ``T`` and after.

    Example:
        >>> s = warmup_cosine_schedule(1.0, 10, warmup_steps=2, final_value=0.1)
        >>> [round(s(t), 12) for t in (0, 1, 2, 6, 10, 99)]
        [0.5, 1.0, 1.0, 0.55, 0.1, 0.1]
    """
    peak = _number(peak_value, "learning rate", low=0.0)
    final = _number(final_value, "final learning rate", low=0.0)
    T = _count(decay_steps, "decay steps", low=1)
    W = _count(warmup_steps, "warm-up steps")
    if W > T:
        raise SolverError(f"the warm-up ({W} updates) is longer than the horizon ({T} updates); "
                          "shorten the warm-up or lengthen the horizon")

    def schedule(step: int) -> float:
        if step < W:
            return peak * (step + 1) / W
        if step >= T:
            return final
        return final + 0.5 * (peak - final) * (1.0 + math.cos(math.pi * (step - W) / (T - W)))

    return schedule


def one_cycle_schedule(max_value: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
                       final_div_factor: float = 1e4) -> Schedule:
    """The 1cycle policy (Smith & Topin 2019) as PyTorch's ``OneCycleLR`` (cosine annealing, two phases).

    The rate rises from ``max / div_factor`` to ``max`` and falls to
    ``max / (div_factor * final_div_factor)``, both halves by cosine annealing
    ``anneal(a, b, p) = b + (a - b) (1 + cos(pi p)) / 2``. With ``T = total_steps``
    and the phase boundaries ``E1 = pct_start T - 1`` and ``E2 = T - 1``::

        lr_t = anneal(max / div_factor, max, t / E1)               for t <= E1
        lr_t = anneal(max, min, (t - E1) / (E2 - E1))              for E1 < t <= E2
        lr_t = min                                                 for t > E2

    which is ``OneCycleLR(max_lr, total_steps=T, pct_start, anneal_strategy="cos",
    div_factor, final_div_factor, three_phase=False)`` step for step (PyTorch refuses
    to go past ``T`` updates; here the rate stays at ``min``). ``E1 = 0`` (a one-update
    rise) gives ``max`` at ``t = 0``, where PyTorch divides by zero. Only the learning
    rate cycles: ``OneCycleLR``'s momentum cycling (``cycle_momentum``) is left out,
    so the optimizer's momentum (``b1``, ``momentum``) stays fixed.

    Args:
        max_value: the peak rate (the solver's ``lr``).
        total_steps: the horizon ``T`` in updates.
        pct_start: the fraction of the horizon spent rising, in [0, 1].
        div_factor: the first rate is ``max_value / div_factor``.
        final_div_factor: the last rate is ``max_value / (div_factor * final_div_factor)``.

    Example:
        >>> s = one_cycle_schedule(1.0, 9, pct_start=1 / 3, div_factor=4.0, final_div_factor=100.0)
        >>> [round(s(t), 12) for t in (0, 1, 2, 5, 8, 20)]
        [0.25, 0.625, 1.0, 0.50125, 0.0025, 0.0025]
    """
    peak = _number(max_value, "learning rate", low=0.0)
    T = _count(total_steps, "total steps", low=1)
    pct_start = _number(pct_start, "pct_start (the fraction of the cycle spent rising)", low=0.0, high=1.0)
    div_factor = _number(div_factor, "div_factor", low=0.0, low_open=True)
    final_div_factor = _number(final_div_factor, "final_div_factor", low=0.0, low_open=True)
    initial = peak / div_factor
    lowest = initial / final_div_factor
    e1 = float(pct_start * T) - 1.0
    e2 = float(T - 1)

    def anneal(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)

    def schedule(step: int) -> float:
        if step > e2:
            return lowest
        if step <= e1:  # the rise (the whole cycle when pct_start = 1)
            return anneal(initial, peak, step / e1) if e1 > 0 else peak
        return anneal(peak, lowest, (step - e1) / (e2 - e1))

    return schedule


#: Schedule names for option strings -> factory of ``(learning_rate, **kw)``.
SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": constant_schedule,
    "inverse-time": inverse_time_schedule,
    "exponential": exponential_decay_schedule,
    "cosine": cosine_decay_schedule,
    "warmup-cosine": warmup_cosine_schedule,
    "one-cycle": one_cycle_schedule,
}


def make_schedule(name: str, learning_rate: float, **kwargs: Any) -> Schedule:
    """The schedule ``name`` starting at ``learning_rate``; ``kwargs`` go to its factory.

    Example:
        >>> make_schedule("inverse-time", 0.1, decay=1.0)(1)
        0.05
    """
    if name not in SCHEDULES:
        raise SolverError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    try:
        return SCHEDULES[name](learning_rate, **kwargs)
    except TypeError as exc:
        params = list(inspect.signature(SCHEDULES[name]).parameters)[1:]
        raise SolverError(f"schedule {name!r} takes {', '.join(params) or 'no options'}: {exc}") from None


# --------------------------------------------------------------------------- aliases
def _assemble(core: list[GradientTransformation], learning_rate: float, weight_decay: float,
              decoupled: bool, clip_norm: float | None, schedule: Schedule | None) -> GradientTransformation:
    learning_rate = _number(learning_rate, "learning rate", low=0.0)
    weight_decay = _number(weight_decay, "weight decay", low=0.0)
    parts: list[GradientTransformation] = []
    if clip_norm is not None:
        parts.append(clip_by_global_norm(clip_norm))
    if weight_decay and not decoupled:
        parts.append(add_decayed_weights(weight_decay))
    parts.extend(core)
    if weight_decay and decoupled:
        parts.append(add_decayed_weights(weight_decay))
    if schedule is None:
        parts.append(scale(-learning_rate))
    else:
        if not callable(schedule):
            raise SolverError(f"schedule must be a function step -> learning rate, got {schedule!r}")
        parts.append(scale_by_schedule(lambda t: -schedule(t)))
    return chain(*parts)


def sgd(learning_rate: float = 0.01, *, weight_decay: float = 0.0, decoupled: bool = False,
        clip_norm: float | None = None, schedule: Schedule | None = None) -> GradientTransformation:
    """Plain gradient descent ``theta_{t+1} = theta_t - lr_t g_t``.

    Default ``learning_rate`` 0.01 (the Keras default; the method has none).
    Every alias takes ``weight_decay`` (coupled L2 ``g + wd theta`` unless
    ``decoupled``), ``clip_norm`` (clip the raw gradient's global norm) and
    ``schedule`` (a function step -> learning rate that supersedes
    ``learning_rate``); see the module docstring for the order.

    Example:
        >>> tx = sgd(0.1); s = tx.init(np.zeros(1))
        >>> tx.update(np.array([2.0]), s)[0]
        array([-0.2])
    """
    return _assemble([], learning_rate, weight_decay, decoupled, clip_norm, schedule)


def momentum(learning_rate: float = 0.01, momentum: float = 0.9, *, weight_decay: float = 0.0,
             decoupled: bool = False, clip_norm: float | None = None,
             schedule: Schedule | None = None) -> GradientTransformation:
    """Heavy-ball momentum (Polyak 1964): ``b_t = mu b_{t-1} + g_t``, ``theta_{t+1} = theta_t - lr_t b_t``.

    At a constant rate this is ``theta_{t+1} = theta_t - lr g_t + mu (theta_t - theta_{t-1})``.
    Defaults: lr 0.01, momentum 0.9 (the customary value, Sutskever et al. 2013).

    Example:
        >>> tx = momentum(1.0, 0.5); s = tx.init(np.zeros(1))
        >>> u, s = tx.update(np.array([1.0]), s); tx.update(np.array([1.0]), s)[0]
        array([-1.5])
    """
    return _assemble([trace(momentum)], learning_rate, weight_decay, decoupled, clip_norm, schedule)


def nesterov(learning_rate: float = 0.01, momentum: float = 0.9, *, weight_decay: float = 0.0,
             decoupled: bool = False, clip_norm: float | None = None,
             schedule: Schedule | None = None) -> GradientTransformation:
    """Nesterov's accelerated gradient, Sutskever et al. (2013) momentum form.

    ``v_{t+1} = mu v_t - lr grad f(theta_t + mu v_t)``, ``theta_{t+1} = theta_t + v_{t+1}``,
    computed on the look-ahead point ``Theta_t = theta_t + mu v_t`` (which is what the
    parameters hold) as ``b_t = mu b_{t-1} + g_t``, ``Theta_{t+1} = Theta_t - lr (g_t + mu b_t)``.
    Defaults: lr 0.01, momentum 0.9.

    Example:
        >>> tx = nesterov(1.0, 0.5); s = tx.init(np.zeros(1))
        >>> tx.update(np.array([1.0]), s)[0]       # -(1 + 0.5 * 1)
        array([-1.5])
    """
    return _assemble([trace(momentum, nesterov=True)], learning_rate, weight_decay, decoupled, clip_norm,
                     schedule)


def adam(learning_rate: float = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
         weight_decay: float = 0.0, decoupled: bool = False, clip_norm: float | None = None,
         schedule: Schedule | None = None) -> GradientTransformation:
    """Adam (Kingma & Ba 2015): ``theta_t = theta_{t-1} - lr m^_t / (sqrt(v^_t) + eps)``.

    Formula in :func:`scale_by_adam`. Defaults are the paper's: lr 1e-3, b1 0.9,
    b2 0.999, eps 1e-8. ``decoupled=True`` with ``weight_decay`` gives AdamW.

    Example:
        >>> tx = adam(0.1); s = tx.init(np.zeros(2))
        >>> np.round(tx.update(np.array([5.0, -0.1]), s)[0], 6)
        array([-0.1,  0.1])
    """
    return _assemble([scale_by_adam(b1, b2, eps)], learning_rate, weight_decay, decoupled, clip_norm, schedule)


def nadam(learning_rate: float = 2e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          momentum_decay: float = 0.004, *, momentum_warmup: bool = True, scheduled_average: bool = False,
          weight_decay: float = 0.0, decoupled: bool = False, clip_norm: float | None = None,
          schedule: Schedule | None = None) -> GradientTransformation:
    """Nadam as PyTorch documents it, with Dozat's ``mu_t`` momentum schedule in the look-ahead.

    Formula in :func:`scale_by_adam` (``nesterov=True``); ``scheduled_average=True``
    is the paper's form (Dozat 2016, Algorithm 2). Defaults lr 2e-3, b1 0.9,
    b2 0.999, eps 1e-8, momentum_decay 0.004 (= 1/250 in ``0.96^(t/250)``) are
    those of the Keras and PyTorch implementations.

    Example:
        >>> tx = nadam(); s = tx.init(np.zeros(1))
        >>> bool(tx.update(np.array([1.0]), s)[0][0] < 0)
        True
    """
    core = scale_by_adam(b1, b2, eps, nesterov=True, momentum_decay=momentum_decay,
                         momentum_warmup=momentum_warmup, scheduled_average=scheduled_average)
    return _assemble([core], learning_rate, weight_decay, decoupled, clip_norm, schedule)


def _require_decoupled(name: str, decoupled: bool, instead: str) -> None:
    if not decoupled:
        raise SolverError(f"{name} decouples its weight decay by definition; for L2-coupled decay use "
                          f"{instead} with weight_decay (and decoupled=False)")


def adamw(learning_rate: float = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
          weight_decay: float = 1e-2, decoupled: bool = True, clip_norm: float | None = None,
          schedule: Schedule | None = None) -> GradientTransformation:
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    PyTorch documents the step as ``theta <- theta - lr wd theta`` followed by
    Adam's ``theta <- theta - lr m^_t / (sqrt(v^_t) + eps)`` (formula in
    :func:`scale_by_adam`); here it is the single update
    ``u_t = -lr_t (m^_t / (sqrt(v^_t) + eps) + wd theta_{t-1})``, the same
    iterates (the decay is not divided by the adaptive denominator, and a
    schedule scales it with the rate, as PyTorch's schedulers do). It is
    :func:`adam` with ``decoupled=True``; the defaults are PyTorch's: lr 1e-3,
    b1 0.9, b2 0.999, eps 1e-8, weight_decay 1e-2. ``decoupled=False`` is refused
    (that is :func:`adam` with L2 weight decay).

    Example:
        >>> tx = adamw(0.1, weight_decay=0.5); p = np.array([2.0])
        >>> np.round(tx.update(np.array([3.0]), tx.init(p), p)[0], 6)   # -0.1 * (1 + 0.5 * 2)
        array([-0.2])
    """
    _require_decoupled("AdamW", decoupled, "adam")
    return adam(learning_rate, b1, b2, eps, weight_decay=weight_decay, decoupled=True, clip_norm=clip_norm,
                schedule=schedule)


def nadamw(learning_rate: float = 2e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
           momentum_decay: float = 0.004, *, momentum_warmup: bool = True, scheduled_average: bool = False,
           weight_decay: float = 1e-2, decoupled: bool = True, clip_norm: float | None = None,
           schedule: Schedule | None = None) -> GradientTransformation:
    """NAdamW: Nadam with decoupled weight decay, as ``torch.optim.NAdam(decoupled_weight_decay=True)``.

    PyTorch's step is ``theta <- theta - lr wd theta`` followed by Nadam's
    ``theta <- theta - lr m-_t / (sqrt(v^_t) + eps)`` (formula in
    :func:`scale_by_adam`, ``nesterov=True``); here it is the single update
    ``u_t = -lr_t (m-_t / (sqrt(v^_t) + eps) + wd theta_{t-1})``, the same iterates.
    It is :func:`nadam` with ``decoupled=True``; the defaults are Nadam's (lr 2e-3,
    b1 0.9, b2 0.999, eps 1e-8, momentum_decay 0.004) with AdamW's weight_decay
    1e-2 (PyTorch's NAdam defaults to no decay). ``decoupled=False`` is refused.

    Example:
        >>> tx = nadamw(weight_decay=0.0); s = tx.init(np.zeros(1))
        >>> bool(np.array_equal(tx.update(np.array([1.0]), s)[0], nadam().update(np.array([1.0]), s)[0]))
        True
    """
    _require_decoupled("NAdamW", decoupled, "nadam")
    return nadam(learning_rate, b1, b2, eps, momentum_decay, momentum_warmup=momentum_warmup,
                 scheduled_average=scheduled_average, weight_decay=weight_decay, decoupled=True,
                 clip_norm=clip_norm, schedule=schedule)


def amsgrad(learning_rate: float = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
            bias_correction: bool = True, weight_decay: float = 0.0, decoupled: bool = False,
            clip_norm: float | None = None, schedule: Schedule | None = None) -> GradientTransformation:
    """AMSGrad (Reddi, Kale & Kumar 2018): Adam with the running maximum of the second moment.

    Formula and bias-correction convention in :func:`scale_by_amsgrad`. Defaults
    are Adam's: lr 1e-3, b1 0.9, b2 0.999, eps 1e-8.

    Example:
        >>> tx = amsgrad(0.1); s = tx.init(np.zeros(1))
        >>> np.round(tx.update(np.array([3.0]), s)[0], 6)
        array([-0.1])
    """
    core = scale_by_amsgrad(b1, b2, eps, bias_correction=bias_correction)
    return _assemble([core], learning_rate, weight_decay, decoupled, clip_norm, schedule)


# namsgrad repeats nadam's signature and docstring shape on purpose: each alias is a complete, documented
# factory of its own (optax's alias.py style), and the issue that asked for the redesign let optim.py keep them.
def namsgrad(learning_rate: float = 2e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
             momentum_decay: float = 0.004, *, momentum_warmup: bool = True, scheduled_average: bool = False,
             weight_decay: float = 0.0, decoupled: bool = False, clip_norm: float | None = None,
             schedule: Schedule | None = None) -> GradientTransformation:
    """NAMSGrad: Nadam's look-ahead numerator over AMSGrad's max-second-moment denominator.

    Formula in :func:`scale_by_amsgrad` (``nesterov=True``). Defaults are Nadam's.

    Example:
        >>> tx = namsgrad(); s = tx.init(np.zeros(1))
        >>> bool(tx.update(np.array([1.0]), s)[0][0] < 0)
        True
    """
    core = scale_by_amsgrad(b1, b2, eps, nesterov=True, momentum_decay=momentum_decay,
                            momentum_warmup=momentum_warmup, scheduled_average=scheduled_average)
    return _assemble([core], learning_rate, weight_decay, decoupled, clip_norm, schedule)


def rmsprop(learning_rate: float = 1e-3, rho: float = 0.9, eps: float = 1e-8, *, weight_decay: float = 0.0,
            decoupled: bool = False, clip_norm: float | None = None,
            schedule: Schedule | None = None) -> GradientTransformation:
    """RMSprop: ``v_t = rho v_{t-1} + (1-rho) g_t^2``, ``theta_{t+1} = theta_t - lr g_t / (sqrt(v_t) + eps)``.

    ``rho`` 0.9 is the value in Tieleman & Hinton's lecture (6.5, "MeanSquare =
    0.9 MeanSquare + 0.1 grad^2"); the lecture gives no learning rate, so lr 1e-3 is
    the Keras default.

    Example:
        >>> tx = rmsprop(0.01, eps=0.0); s = tx.init(np.zeros(1))
        >>> np.round(tx.update(np.array([4.0]), s)[0], 6)   # -0.01 * 4 / sqrt(0.1 * 16)
        array([-0.031623])
    """
    return _assemble([scale_by_rms(rho, eps)], learning_rate, weight_decay, decoupled, clip_norm, schedule)


def _assemble_hd(inner: GradientTransformation, learning_rate: float, beta: float, weight_decay: float,
                 decoupled: bool, clip_norm: float | None, schedule: Schedule | None) -> GradientTransformation:
    if schedule is not None:
        raise SolverError("hypergradient descent adapts its own learning rate; drop the schedule "
                          "(or use the method without -hd)")
    weight_decay = _number(weight_decay, "weight decay", low=0.0)
    parts: list[GradientTransformation] = []
    if clip_norm is not None:
        parts.append(clip_by_global_norm(clip_norm))
    if weight_decay and not decoupled:
        parts.append(add_decayed_weights(weight_decay))
    if weight_decay and decoupled:
        # the decay is part of the direction that alpha scales, so the hypergradient stays exact
        inner = chain(inner, add_decayed_weights(weight_decay))
    parts.append(hypergradient(inner, learning_rate, beta))
    return chain(*parts)


def sgd_hd(learning_rate: float = 1e-3, beta: float = 1e-3, *, weight_decay: float = 0.0,
           decoupled: bool = False, clip_norm: float | None = None,
           schedule: Schedule | None = None) -> GradientTransformation:
    """SGD-HD (Baydin et al. 2018, Algorithm 4): ``alpha_t = alpha_{t-1} + beta g_t . g_{t-1}``, ``u_t = -alpha_t g_t``.

    Defaults alpha_0 = 1e-3 and beta = 1e-3 are the values of the paper's
    logistic-regression, MLP and VGG experiments (the authors' ``run.sh`` passes
    ``--beta 0.001`` for every SGD-HD run). The current rate is the last
    :class:`HypergradientState` in the chain (see :func:`current_learning_rate`).
    A schedule is refused: the method adapts the rate itself.

    Example:
        >>> tx = sgd_hd(0.1, beta=0.01); s = tx.init(np.zeros(1))
        >>> u, s = tx.update(np.array([2.0]), s); u, s = tx.update(np.array([2.0]), s)
        >>> np.round(u, 12)      # alpha = 0.1 + 0.01 * 4 = 0.14
        array([-0.28])
    """
    return _assemble_hd(identity(), learning_rate, beta, weight_decay, decoupled, clip_norm, schedule)


def adam_hd(learning_rate: float = 1e-3, beta: float = 1e-7, b1: float = 0.9, b2: float = 0.999,
            eps: float = 1e-8, *, weight_decay: float = 0.0, decoupled: bool = False,
            clip_norm: float | None = None, schedule: Schedule | None = None) -> GradientTransformation:
    """Adam-HD (Baydin et al. 2018, Algorithm 6).

    ``alpha_t = alpha_{t-1} + beta g_t . d_{t-1}``, ``u_t = -alpha_t d_t`` with Adam's
    direction ``d_t = m^_t / (sqrt(v^_t) + eps)`` (formula in :func:`scale_by_adam`).
    Defaults alpha_0 = 1e-3 and beta = 1e-7 are the paper's for its logistic
    regression and MLP experiments (it used 1e-8 for VGG on CIFAR-10); Adam's b1,
    b2, eps are Kingma & Ba's.

    Example:
        >>> tx = adam_hd(0.1, beta=0.0); s = tx.init(np.zeros(1))
        >>> np.round(tx.update(np.array([7.0]), s)[0], 6)     # beta = 0 is Adam
        array([-0.1])
    """
    return _assemble_hd(scale_by_adam(b1, b2, eps), learning_rate, beta, weight_decay, decoupled, clip_norm,
                        schedule)


def _schedule_free_adamw(learning_rate: float, b1: float, b2: float, eps: float, weight_decay: float,
                         warmup_steps: int, r: float, weight_lr_power: float) -> GradientTransformation:
    """The update of :func:`adamw_schedulefree` (its docstring has the formulas)."""
    lr0 = _number(learning_rate, "learning rate", low=0.0)
    b1 = _beta(b1, "b1")
    b2 = _beta(b2, "b2")
    eps = _number(eps, "eps", low=0.0)
    weight_decay = _number(weight_decay, "weight decay", low=0.0)
    warmup = _count(warmup_steps, "warm-up steps")
    r = _number(r, "r (the power of the averaging weights' step count)", low=0.0)
    power = _number(weight_lr_power, "weight_lr_power", low=0.0)

    def init(params):
        p = np.array(_vector(params, "params"), dtype=np.float64)
        return ScheduleFreeState(count=0, learning_rate=0.0, lr_max=0.0, weight_sum=0.0, z=p, x=p.copy(),
                                 y=p.copy(), nu=np.zeros_like(p))

    def update(grads, state, params=None):
        g = _vector(grads, "grads")
        y = _need_params(params, "adamw_schedulefree")
        k = state.count
        lr = lr0 * ((k + 1) / warmup if k < warmup else 1.0)
        lr_max = max(state.lr_max, lr)
        weight = float(k + 1) ** r * lr_max ** power
        weight_sum = state.weight_sum + weight
        c = weight / weight_sum if weight_sum > 0 else 0.0
        nu = b2 * state.nu + (1.0 - b2) * (g * g)
        direction = g / (np.sqrt(nu / (1.0 - b2 ** (k + 1))) + eps)
        if weight_decay:
            direction = direction + weight_decay * y  # decay at y, not divided by the denominator
        z = state.z - lr * direction
        x = (1.0 - c) * state.x + c * z
        u = ((1.0 - b1) * z + b1 * x) - y
        # the stored y is exactly what apply_updates(params, u) gives, so a run may resume from it
        return u, ScheduleFreeState(count=k + 1, learning_rate=lr, lr_max=lr_max, weight_sum=weight_sum, z=z,
                                    x=x, y=y + u, nu=nu)

    return GradientTransformation(init, update)


def adamw_schedulefree(learning_rate: float = 2.5e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                       r: float = 0.0, weight_lr_power: float = 2.0, *, warmup_steps: int = 0,
                       weight_decay: float = 0.0, decoupled: bool = True, clip_norm: float | None = None,
                       schedule: Schedule | None = None) -> GradientTransformation:
    """Schedule-free AdamW (Defazio et al. 2024, "The Road Less Scheduled").

    Three sequences start at the initial parameters, ``z_0 = x_0 = y_0``: ``z``
    takes AdamW-like steps, ``x`` is a weighted average of the ``z`` iterates (the
    model to evaluate), and gradients are taken at their interpolation ``y``.
    With ``k = 0, 1, ...`` counting updates, ``W = warmup_steps`` and ``g_k`` the
    gradient at ``y_k``::

        lr_k     = lr min(1, (k + 1) / W)                    (linear warm-up; lr_k = lr when W = 0)
        lr_max   = max(lr_0, ..., lr_k)
        w_k      = (k + 1)^r lr_max^weight_lr_power          c_k = w_k / (w_0 + ... + w_k)
        v_k      = b2 v_{k-1} + (1 - b2) g_k^2               (v_{-1} = 0)
        d_k      = g_k / (sqrt(v_k / (1 - b2^(k+1))) + eps) + weight_decay y_k
        z_{k+1}  = z_k - lr_k d_k
        x_{k+1}  = (1 - c_k) x_k + c_k z_{k+1}
        y_{k+1}  = (1 - b1) z_{k+1} + b1 x_{k+1}

    This is the update of ``AdamWScheduleFree`` in the authors' ``schedulefree``
    package (version 1.4), defaults included: lr 2.5e-3, b1 0.9, b2 0.999, eps 1e-8,
    r 0, weight_lr_power 2, no warm-up and no weight decay. The weight decay is
    taken at ``y`` and is not divided by the adaptive denominator (decoupled, so
    ``decoupled=False`` is refused). There is no first moment: ``b1`` is the
    interpolation weight, and the averaging replaces both momentum and the
    schedule, so ``schedule`` is refused (the warm-up is ``warmup_steps``).

    The parameters this optimizer updates (``params`` in ``update``) are ``y``;
    evaluate, report and save ``x``: :func:`eval_params` gives it from the state
    (``state.y`` is the training point, so a training loop can put ``x`` in the
    model between epochs and take ``y`` back, as the package's
    ``optimizer.eval()`` / ``optimizer.train()`` do). The solver ``adamw-schedulefree``
    (:mod:`symnet.solvers.gradient`) does that.

    Example:
        >>> A = np.diag([3.0, 1.0]); b = np.array([1.0, -1.0])
        >>> tx = adamw_schedulefree(0.1, warmup_steps=10); y = np.zeros(2); s = tx.init(y)
        >>> for _ in range(300):
        ...     u, s = tx.update(A @ y - b, s, y)
        ...     y = apply_updates(y, u)
        >>> np.round(eval_params(s), 2)          # x, near the minimiser (1/3, -1)
        array([ 0.33, -1.  ])
    """
    if schedule is not None:
        raise SolverError("schedule-free AdamW needs no schedule (its averaging replaces it); drop the schedule "
                          "and use its warm-up (warmup_steps; the solver's option warmup) instead")
    _require_decoupled("schedule-free AdamW", decoupled, "adam")
    core = _schedule_free_adamw(learning_rate, b1, b2, eps, weight_decay, warmup_steps, r, weight_lr_power)
    return core if clip_norm is None else chain(clip_by_global_norm(clip_norm), core)


class OptimizerSpec(NamedTuple):
    """One row of :data:`OPTIMIZERS`."""

    factory: Callable[..., GradientTransformation]
    #: The method's own hyper-parameters (learning_rate first) with their defaults.
    defaults: dict[str, Any]
    #: One-line description with the reference.
    summary: str


#: Arguments every alias takes that are not a method's own hyper-parameters (the warm-up of
#: adamw_schedulefree is set by the solver from its option ``warmup``, a fraction of the horizon).
_COMMON = ("weight_decay", "decoupled", "clip_norm", "schedule", "warmup_steps")


def _spec(factory: Callable[..., GradientTransformation], summary: str) -> OptimizerSpec:
    sig = inspect.signature(factory)
    defaults = {k: p.default for k, p in sig.parameters.items() if k not in _COMMON}
    return OptimizerSpec(factory=factory, defaults=defaults, summary=summary)


#: name -> alias factory and its defaults; the single table that drives the solvers and tests.
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": _spec(sgd, "gradient descent"),
    "momentum": _spec(momentum, "heavy-ball momentum (Polyak 1964)"),
    "nesterov": _spec(nesterov, "Nesterov momentum (Sutskever et al. 2013)"),
    "adam": _spec(adam, "Adam (Kingma & Ba 2015)"),
    "nadam": _spec(nadam, "Nadam as in PyTorch (Dozat 2016; scheduled_average=True: the paper's form)"),
    "amsgrad": _spec(amsgrad, "AMSGrad (Reddi et al. 2018)"),
    "namsgrad": _spec(namsgrad, "AMSGrad with Nadam's Nesterov momentum"),
    "rmsprop": _spec(rmsprop, "RMSprop (Tieleman & Hinton 2012)"),
    "sgd-hd": _spec(sgd_hd, "SGD with hypergradient descent on the rate (Baydin et al. 2018)"),
    "adam-hd": _spec(adam_hd, "Adam with hypergradient descent on the rate (Baydin et al. 2018)"),
    "adamw": _spec(adamw, "AdamW: Adam with decoupled weight decay, as torch.optim.AdamW (Loshchilov & Hutter "
                          "2019)"),
    "nadamw": _spec(nadamw, "NAdamW: Nadam with decoupled weight decay, as torch.optim.NAdam("
                            "decoupled_weight_decay=True)"),
    "adamw-schedulefree": _spec(adamw_schedulefree, "schedule-free AdamW (Defazio et al. 2024), as "
                                                    "schedulefree.AdamWScheduleFree; the model is the average x"),
}


def get_optimizer(name: str, **kwargs: Any) -> GradientTransformation:
    """Build the optimizer ``name`` of :data:`OPTIMIZERS` with ``kwargs`` over its defaults.

    Example:
        >>> isinstance(get_optimizer("adam", learning_rate=0.01), GradientTransformation)
        True
    """
    if name not in OPTIMIZERS:
        raise SolverError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    factory = OPTIMIZERS[name].factory
    accepted = set(inspect.signature(factory).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise SolverError(f"optimizer {name!r} has no option {unknown[0]!r}; its options are: "
                          f"{', '.join(sorted(accepted))}")
    return factory(**kwargs)


def current_learning_rate(state: Any) -> float | None:
    """The rate the optimizer set itself: the adapted ``alpha_t`` of the last hypergradient stage in ``state``,
    or the (warmed-up) rate of schedule-free AdamW's last update; ``None`` if there is no such stage.

    Example:
        >>> tx = sgd_hd(0.5); current_learning_rate(tx.init(np.zeros(2)))
        0.5
    """
    found = None
    if isinstance(state, (HypergradientState, ScheduleFreeState)):
        found = state.learning_rate
    if isinstance(state, tuple):
        for child in state:
            inner = current_learning_rate(child)
            if inner is not None:
                found = inner
    return found


def _find_schedule_free(state: Any) -> ScheduleFreeState | None:
    if isinstance(state, ScheduleFreeState):
        return state
    if isinstance(state, tuple):
        for child in state:
            found = _find_schedule_free(child)
            if found is not None:
                return found
    return None


def eval_params(state: Any) -> np.ndarray | None:
    """The point to evaluate when it is not the parameters being updated: schedule-free AdamW's average ``x``.

    ``None`` for every other optimizer, whose parameters are the model.

    Example:
        >>> tx = adamw_schedulefree(0.1); s = tx.init(np.zeros(1))
        >>> u, s = tx.update(np.array([1.0]), s, np.zeros(1))
        >>> eval_params(s), eval_params(adam().init(np.zeros(1))) is None     # x_1 = z_1 = -0.1
        (array([-0.1]), True)
    """
    found = _find_schedule_free(state)
    return None if found is None else found.x


def train_params(state: Any) -> np.ndarray | None:
    """The point where gradients are taken, when the state keeps it: schedule-free AdamW's ``y``.

    ``None`` for every other optimizer. After :func:`eval_params` has been put in a model,
    this is what to put back before the next update.

    Example:
        >>> tx = adamw_schedulefree(0.1, b1=0.5); s = tx.init(np.zeros(1))
        >>> u, s = tx.update(np.array([1.0]), s, np.zeros(1))
        >>> train_params(s)                   # y = (1 - b1) z + b1 x
        array([-0.1])
    """
    found = _find_schedule_free(state)
    return None if found is None else found.y


# --------------------------------------------------------------------------- (de)serialisation
def state_to_arrays(state: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Flatten a (nested) optimizer state into ``{dotted path: array}`` for a checkpoint.

    Example:
        >>> sorted(state_to_arrays(adam().init(np.zeros(2))))
        ['states.0.count', 'states.0.mu', 'states.0.nu']
    """
    out: dict[str, np.ndarray] = {}
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        for field, value in zip(state._fields, state):
            out.update(state_to_arrays(value, f"{prefix}{field}."))
    elif isinstance(state, tuple):
        for i, value in enumerate(state):
            out.update(state_to_arrays(value, f"{prefix}{i}."))
    elif isinstance(state, np.ndarray):
        out[prefix[:-1]] = state.copy()
    elif isinstance(state, (bool, int, float, np.integer, np.floating)):
        out[prefix[:-1]] = np.asarray(state)
    else:
        raise SolverError(f"cannot store optimizer state leaf {prefix[:-1]!r} of type {type(state).__name__}")
    return out


def state_from_arrays(template: Any, arrays: dict[str, np.ndarray], prefix: str = "") -> Any:
    """Rebuild a state shaped like ``template`` (e.g. ``opt.init(params)``) from :func:`state_to_arrays` output.

    Example:
        >>> opt = adam(); s = opt.init(np.zeros(2))
        >>> u, s1 = opt.update(np.ones(2), s)
        >>> s2 = state_from_arrays(s, state_to_arrays(s1))
        >>> bool(np.array_equal(s2.states[0].mu, s1.states[0].mu)), s2.states[0].count
        (True, 1)
    """
    if isinstance(template, tuple) and hasattr(template, "_fields"):
        return type(template)(*[state_from_arrays(v, arrays, f"{prefix}{f}.")
                                for f, v in zip(template._fields, template)])
    if isinstance(template, tuple):
        return tuple(state_from_arrays(v, arrays, f"{prefix}{i}.") for i, v in enumerate(template))
    key = prefix[:-1]
    if key not in arrays:
        raise SolverError(f"the stored optimizer state lacks {key!r}: it was written by another optimizer "
                          "or other options; resume with the same ones, or start afresh")
    value = np.asarray(arrays[key])
    if isinstance(template, np.ndarray):
        if value.shape != template.shape:
            raise SolverError(f"stored optimizer state {key!r} has shape {value.shape}, expected "
                              f"{template.shape}; resume with the same model, or start afresh")
        return np.array(value, dtype=np.float64)
    if isinstance(template, (bool, np.bool_)):
        return bool(value)
    if isinstance(template, (int, np.integer)):
        return int(value)
    return float(value)


__all__ = [
    "GradientTransformation", "OPTIMIZERS", "OptimizerSpec", "SCHEDULES", "Schedule", "ScheduleFreeState",
    "add_decayed_weights", "adam", "adam_hd", "adamw", "adamw_schedulefree", "amsgrad", "apply_updates", "chain",
    "clip", "clip_by_global_norm", "constant_schedule", "cosine_decay_schedule", "current_learning_rate",
    "eval_params", "exponential_decay_schedule", "get_optimizer", "hypergradient", "identity",
    "inverse_time_schedule", "make_schedule", "momentum", "nadam", "nadamw", "namsgrad", "nesterov",
    "one_cycle_schedule", "rmsprop", "scale", "scale_by_adam", "scale_by_amsgrad", "scale_by_rms",
    "scale_by_schedule", "sgd", "sgd_hd", "state_from_arrays", "state_to_arrays", "trace", "train_params",
    "warmup_cosine_schedule",
]
