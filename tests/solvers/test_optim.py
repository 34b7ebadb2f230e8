"""Tests of solvers.optim against hand-written references of the published update rules.

The references below are plain scalar loops over the coordinates of a 2-D
problem, written from the papers' equations; they never call solvers.optim.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from symnet.solvers import optim
from symnet.core.errors import SolverError

# --------------------------------------------------------------------------- the problem
# f(x) = 0.5 x^T A x - b^T x with A = R diag(25, 0.25) R^T: SPD, condition number 100.
_ANGLE = 0.5
_C, _S = math.cos(_ANGLE), math.sin(_ANGLE)
_EIG = (25.0, 0.25)
A = [[_EIG[0] * _C * _C + _EIG[1] * _S * _S, (_EIG[0] - _EIG[1]) * _C * _S],
     [(_EIG[0] - _EIG[1]) * _C * _S, _EIG[0] * _S * _S + _EIG[1] * _C * _C]]
B = [1.0, -1.0]
X0 = [1.0, 1.0]
STEPS = 5


def quad_grad(x):
    return [sum(A[i][j] * x[j] for j in range(2)) - B[i] for i in range(2)]


def make_grad(clip_norm=None, weight_decay=0.0):
    """The gradient each method sees: the raw gradient, norm-clipped, plus coupled L2 decay."""

    def grad(x):
        g = quad_grad(x)
        if clip_norm is not None:
            norm = math.sqrt(sum(gi * gi for gi in g))
            if norm > clip_norm:
                g = [gi * clip_norm / norm for gi in g]
        return [g[i] + weight_decay * x[i] for i in range(2)]

    return grad


# --------------------------------------------------------------------------- references
def ref_sgd(grad, lr, hp, x0=X0, steps=STEPS):
    x, out = list(x0), [list(x0)]
    for t in range(steps):
        g = grad(x)
        x = [x[i] - lr(t) * g[i] for i in range(len(x0))]
        out.append(x)
    return out


def ref_polyak(grad, lr, hp, x0=X0, steps=STEPS):
    """Polyak (1964): x_{k+1} = x_k - a g(x_k) + mu (x_k - x_{k-1}), x_{-1} = x_0 (constant rate)."""
    mu = hp["momentum"]
    prev, x, out = list(x0), list(x0), [list(x0)]
    for t in range(steps):
        g = grad(x)
        new = [x[i] - lr(t) * g[i] + mu * (x[i] - prev[i]) for i in range(len(x0))]
        prev, x = x, new
        out.append(x)
    return out


def ref_sutskever(grad, lr, hp, x0=X0, steps=STEPS):
    """Sutskever et al. (2013): v <- mu v - a g(theta + mu v); theta <- theta + v.

    Returns the look-ahead points theta + mu v, which are what the optimizer stores.
    """
    mu = hp["momentum"]
    theta, v, out = list(x0), [0.0] * len(x0), [list(x0)]
    for t in range(steps):
        look = [theta[i] + mu * v[i] for i in range(len(x0))]
        g = grad(look)
        v = [mu * v[i] - lr(t) * g[i] for i in range(len(x0))]
        theta = [theta[i] + v[i] for i in range(len(x0))]
        out.append([theta[i] + mu * v[i] for i in range(len(x0))])
    return out


def ref_momentum_buffer(grad, lr, hp, nesterov=False, x0=X0, steps=STEPS):
    """b_t = mu b_{t-1} + g_t; x -= lr_t * (b_t or g_t + mu b_t): the form under a varying rate."""
    mu = hp["momentum"]
    x, b, out = list(x0), [0.0] * len(x0), [list(x0)]
    for t in range(steps):
        g = grad(x)
        b = [mu * b[i] + g[i] for i in range(len(x0))]
        d = [g[i] + mu * b[i] for i in range(len(x0))] if nesterov else b
        x = [x[i] - lr(t) * d[i] for i in range(len(x0))]
        out.append(x)
    return out


def ref_adam(grad, lr, hp, x0=X0, steps=STEPS, amsgrad=False):
    """Kingma & Ba (2015), Algorithm 1; with ``amsgrad``, Reddi et al. (2018), Algorithm 2, with m and max(v)
    bias-corrected (see optim.scale_by_amsgrad), or neither when ``hp["bias_correction"]`` is False."""
    b1, b2, eps = hp["b1"], hp["b2"], hp["eps"]
    corrected = hp.get("bias_correction", True)
    x, m, v, w, out = list(x0), [0.0] * len(x0), [0.0] * len(x0), [0.0] * len(x0), [list(x0)]
    for t in range(1, steps + 1):
        g = grad(x)
        new = []
        for i in range(len(x0)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            w[i] = max(w[i], v[i])
            second = w[i] if amsgrad else v[i]
            if corrected:
                step = (m[i] / (1 - b1 ** t)) / (math.sqrt(second / (1 - b2 ** t)) + eps)
            else:
                step = m[i] / (math.sqrt(second) + eps)
            new.append(x[i] - lr(t - 1) * step)
        x = new
        out.append(x)
    return out


def dozat_mu(hp, t):
    if not hp.get("momentum_warmup", True):
        return hp["b1"]
    return hp["b1"] * (1 - 0.5 * 0.96 ** (t * hp["momentum_decay"]))


def ref_nadam(grad, lr, hp, amsgrad=False, x0=X0, steps=STEPS):
    """torch.optim.NAdam as its documentation writes the update (constant b1 in the moving average).

    with amsgrad=True v^ is replaced by max(v)/(1 - b2^t); with hp["scheduled_average"] the moving average
    uses mu_t instead of b1 (Dozat 2016, Algorithm 2).
    """
    b1, b2, eps = hp["b1"], hp["b2"], hp["eps"]
    x, m, n, w, out = list(x0), [0.0] * len(x0), [0.0] * len(x0), [0.0] * len(x0), [list(x0)]
    for t in range(1, steps + 1):
        g = grad(x)
        mu_t, mu_next = dozat_mu(hp, t), dozat_mu(hp, t + 1)
        prod_t = 1.0
        for i in range(1, t + 1):
            prod_t *= dozat_mu(hp, i)
        prod_next = prod_t * mu_next
        decay = mu_t if hp.get("scheduled_average") else b1
        new = []
        for i in range(len(x0)):
            m[i] = decay * m[i] + (1 - decay) * g[i]
            n[i] = b2 * n[i] + (1 - b2) * g[i] ** 2
            w[i] = max(w[i], n[i])
            n_hat = (w[i] if amsgrad else n[i]) / (1 - b2 ** t)
            m_hat = mu_next * m[i] / (1 - prod_next) + (1 - mu_t) * g[i] / (1 - prod_t)
            new.append(x[i] - lr(t - 1) * m_hat / (math.sqrt(n_hat) + eps))
        x = new
        out.append(x)
    return out


def ref_amsgrad(grad, lr, hp, x0=X0, steps=STEPS):
    """Reddi et al. (2018), Algorithm 2: :func:`ref_adam` over the running maximum of v."""
    return ref_adam(grad, lr, hp, x0=x0, steps=steps, amsgrad=True)


def ref_rmsprop(grad, lr, hp, x0=X0, steps=STEPS):
    """Tieleman & Hinton (2012): MeanSquare = rho MeanSquare + (1 - rho) g^2; step g / sqrt(MeanSquare)."""
    rho, eps = hp["rho"], hp["eps"]
    x, v, out = list(x0), [0.0] * len(x0), [list(x0)]
    for t in range(steps):
        g = grad(x)
        new = []
        for i in range(len(x0)):
            v[i] = rho * v[i] + (1 - rho) * g[i] ** 2
            new.append(x[i] - lr(t) * g[i] / (math.sqrt(v[i]) + eps))
        x = new
        out.append(x)
    return out


def ref_sgd_hd(grad, lr, hp, return_alpha=False, x0=X0, steps=STEPS):
    """Baydin et al. (2018), Algorithm 4 (SGD-HD)."""
    alpha, beta = hp["learning_rate"], hp["beta"]
    x, du_dalpha, out = list(x0), [0.0] * len(x0), [list(x0)]
    for t in range(steps):
        g = grad(x)
        h = sum(g[i] * du_dalpha[i] for i in range(len(x0)))
        alpha = alpha - beta * h
        u = [-alpha * g[i] for i in range(len(x0))]
        du_dalpha = [-g[i] for i in range(len(x0))]
        x = [x[i] + u[i] for i in range(len(x0))]
        out.append(x)
    return (out, alpha) if return_alpha else out


def ref_adam_hd(grad, lr, hp, return_alpha=False, x0=X0, steps=STEPS):
    """Baydin et al. (2018), Algorithm 6 (Adam-HD)."""
    alpha, beta, b1, b2, eps = hp["learning_rate"], hp["beta"], hp["b1"], hp["b2"], hp["eps"]
    x, m, v, du_dalpha, out = list(x0), [0.0] * len(x0), [0.0] * len(x0), [0.0] * len(x0), [list(x0)]
    for t in range(1, steps + 1):
        g = grad(x)
        h = sum(g[i] * du_dalpha[i] for i in range(len(x0)))
        alpha = alpha - beta * h
        new = []
        for i in range(len(x0)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = v[i] / (1 - b2 ** t)
            direction = m_hat / (math.sqrt(v_hat) + eps)
            du_dalpha[i] = -direction
            new.append(x[i] - alpha * direction)
        x = new
        out.append(x)
    return (out, alpha) if return_alpha else out


def ref_torch_adamw(grad, lr, hp, x0=X0, steps=STEPS):
    """torch.optim.AdamW as its documentation writes the algorithm (weight decay first, then Adam's step).

    theta_t = theta_{t-1} - gamma lambda theta_{t-1}; m, v as Adam; theta_t = theta_t - gamma m^/(sqrt(v^) + eps).
    """
    b1, b2, eps, wd = hp["b1"], hp["b2"], hp["eps"], hp.get("weight_decay", ADAMW_WEIGHT_DECAY)
    x, m, v, out = list(x0), [0.0] * len(x0), [0.0] * len(x0), [list(x0)]
    for t in range(1, steps + 1):
        g = grad(x)
        gamma = lr(t - 1)
        x = [x[i] - gamma * wd * x[i] for i in range(len(x0))]
        for i in range(len(x0)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            x[i] = x[i] - gamma * (m[i] / (1 - b1 ** t)) / (math.sqrt(v[i] / (1 - b2 ** t)) + eps)
        out.append(list(x))
    return out


def ref_torch_nadamw(grad, lr, hp, x0=X0, steps=STEPS):
    """torch.optim.NAdam(decoupled_weight_decay=True) as its documentation writes the algorithm.

    theta_t = theta_{t-1} - gamma lambda theta_{t-1}, then the NAdam step of ref_nadam with the raw gradient.
    """
    b1, b2, eps, wd = hp["b1"], hp["b2"], hp["eps"], hp.get("weight_decay", ADAMW_WEIGHT_DECAY)
    x, m, v, out = list(x0), [0.0] * len(x0), [0.0] * len(x0), [list(x0)]
    mu_product = 1.0
    for t in range(1, steps + 1):
        g = grad(x)
        gamma = lr(t - 1)
        x = [x[i] - gamma * wd * x[i] for i in range(len(x0))]
        mu_t, mu_next = dozat_mu(hp, t), dozat_mu(hp, t + 1)
        mu_product *= mu_t
        decay = mu_t if hp.get("scheduled_average") else b1
        for i in range(len(x0)):
            m[i] = decay * m[i] + (1 - decay) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            m_hat = mu_next * m[i] / (1 - mu_product * mu_next) + (1 - mu_t) * g[i] / (1 - mu_product)
            x[i] = x[i] - gamma * m_hat / (math.sqrt(v[i] / (1 - b2 ** t)) + eps)
        out.append(list(x))
    return out


def ref_schedulefree(grad, lr, hp, x0=X0, steps=STEPS, point="y", both=False):
    """Schedule-free AdamW (Defazio et al. 2024) as the schedulefree package's AdamWScheduleFree computes it.

    Written from the paper's three sequences (y where gradients are taken, z the base steps, x their
    weighted average) with the package's warm-up lr_k = lr min(1, (k+1)/W), weights
    c_k = w_k / sum w with w_k = (k+1)^r lr_max^weight_lr_power, bias-corrected second moment and
    weight decay taken at y. Returns the y iterates (what the optimizer's parameters are), the x iterates
    (point="x": the model to evaluate), or both as (ys, xs).
    """
    b1, b2, eps = hp["b1"], hp["b2"], hp["eps"]
    wd, W = hp.get("weight_decay", 0.0), hp.get("warmup_steps", 0)
    r, power = hp["r"], hp["weight_lr_power"]
    n = len(x0)
    y, z, x, v = list(x0), list(x0), list(x0), [0.0] * n
    lr_max, weight_sum = 0.0, 0.0
    ys, xs = [list(y)], [list(x)]
    for k in range(steps):
        g = grad(y)
        rate = lr(k) * ((k + 1) / W if k < W else 1.0)
        lr_max = max(lr_max, rate)
        weight = (k + 1) ** r * lr_max ** power
        weight_sum += weight
        c = weight / weight_sum if weight_sum > 0 else 0.0
        for i in range(n):
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            step = g[i] / (math.sqrt(v[i] / (1 - b2 ** (k + 1))) + eps) + wd * y[i]
            z[i] = z[i] - rate * step
            x[i] = (1 - c) * x[i] + c * z[i]
        y = [(1 - b1) * z[i] + b1 * x[i] for i in range(n)]
        ys.append(list(y))
        xs.append(list(x))
    if both:
        return ys, xs
    return xs if point == "x" else ys


#: torch.optim.AdamW's default weight decay, which the adamw and nadamw aliases take.
ADAMW_WEIGHT_DECAY = 1e-2

REFERENCES = {
    "sgd": ref_sgd,
    "momentum": ref_polyak,
    "nesterov": ref_sutskever,
    "adam": ref_adam,
    "nadam": ref_nadam,
    "amsgrad": ref_amsgrad,
    "namsgrad": lambda grad, lr, hp, **kw: ref_nadam(grad, lr, hp, amsgrad=True, **kw),
    "rmsprop": ref_rmsprop,
    "sgd-hd": ref_sgd_hd,
    "adam-hd": ref_adam_hd,
    "adamw": ref_torch_adamw,
    "nadamw": ref_torch_nadamw,
    "adamw-schedulefree": ref_schedulefree,
}
#: The point a solver evaluates and reports, where it is not the optimizer's parameters (schedule-free: x).
EVAL_REFERENCES = {"adamw-schedulefree": lambda grad, lr, hp, **kw: ref_schedulefree(grad, lr, hp, point="x", **kw)}
#: Methods whose weight decay is decoupled by definition (the reference takes it from hp, not from the gradient).
DECOUPLED = ("adamw", "nadamw", "adamw-schedulefree")
#: Methods that refuse a schedule.
UNSCHEDULED = ("sgd-hd", "adam-hd", "adamw-schedulefree")
# Under a varying rate the momentum methods follow the buffer form (see optim.trace).
SCHEDULED_REFERENCES = dict(REFERENCES, momentum=ref_momentum_buffer,
                            nesterov=lambda grad, lr, hp, **kw: ref_momentum_buffer(grad, lr, hp, nesterov=True, **kw))

# Learning rates (and hypergradient rates) large enough that every term moves the iterates.
BASE = {
    "sgd": dict(learning_rate=0.02),
    "momentum": dict(learning_rate=0.02),
    "nesterov": dict(learning_rate=0.02),
    "adam": dict(learning_rate=0.1),
    "nadam": dict(learning_rate=0.1),
    "amsgrad": dict(learning_rate=0.1),
    "namsgrad": dict(learning_rate=0.1),
    "rmsprop": dict(learning_rate=0.05),
    "sgd-hd": dict(learning_rate=0.02, beta=1e-5),
    "adam-hd": dict(learning_rate=0.1, beta=1e-4),
    "adamw": dict(learning_rate=0.1),
    "nadamw": dict(learning_rate=0.1),
    "adamw-schedulefree": dict(learning_rate=0.1),
}
# Non-default hyper-parameters, so a hard-coded default cannot pass.
CUSTOM = {
    "momentum": dict(momentum=0.7),
    "nesterov": dict(momentum=0.7),
    "adam": dict(b1=0.8, b2=0.95, eps=1e-3),
    "nadam": dict(b1=0.95, b2=0.9, eps=1e-3, momentum_decay=0.5),
    "amsgrad": dict(b1=0.7, b2=0.6, eps=1e-3),
    "namsgrad": dict(b1=0.95, b2=0.6, eps=1e-3, momentum_decay=0.5),
    "rmsprop": dict(rho=0.7, eps=1e-3),
    "adam-hd": dict(b1=0.8, b2=0.95, eps=1e-3),
    "adamw": dict(b1=0.8, b2=0.95, eps=1e-3),
    "nadamw": dict(b1=0.95, b2=0.9, eps=1e-3, momentum_decay=0.5),
    "adamw-schedulefree": dict(b1=0.7, b2=0.95, eps=1e-3, r=1.5, weight_lr_power=1.0),
}


def run(tx, steps=STEPS, x0=X0, grad=None):
    grad = grad or (lambda x: np.array(quad_grad(list(x))))
    x = np.array(x0, dtype=np.float64)
    state = tx.init(x)
    out = [x]
    for _ in range(steps):
        updates, state = tx.update(grad(x), state, x)
        x = optim.apply_updates(x, updates)
        out.append(x)
    return np.array(out), state


def test_table_lists_every_method_with_paper_defaults():
    assert list(optim.OPTIMIZERS) == ["sgd", "momentum", "nesterov", "adam", "nadam", "amsgrad", "namsgrad",
                                      "rmsprop", "sgd-hd", "adam-hd", "adamw", "nadamw", "adamw-schedulefree"]
    d = {k: v.defaults for k, v in optim.OPTIMIZERS.items()}
    assert d["adam"] == dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8)
    assert d["rmsprop"] == dict(learning_rate=1e-3, rho=0.9, eps=1e-8)
    assert d["momentum"]["momentum"] == 0.9 and d["nesterov"]["momentum"] == 0.9
    assert d["sgd-hd"] == dict(learning_rate=1e-3, beta=1e-3)
    assert d["adam-hd"]["beta"] == 1e-7 and d["adam-hd"]["learning_rate"] == 1e-3
    assert d["nadam"]["momentum_decay"] == 0.004
    assert d["adamw"] == d["adam"] and d["nadamw"] == d["nadam"]
    assert d["adamw-schedulefree"] == dict(learning_rate=2.5e-3, b1=0.9, b2=0.999, eps=1e-8, r=0.0,
                                           weight_lr_power=2.0)  # schedulefree.AdamWScheduleFree's
    for name, wd, warmup in (("adamw", ADAMW_WEIGHT_DECAY, None), ("nadamw", ADAMW_WEIGHT_DECAY, None),
                             ("adamw-schedulefree", 0.0, 0)):
        params = inspect.signature(optim.OPTIMIZERS[name].factory).parameters
        assert params["weight_decay"].default == wd and params["decoupled"].default is True
        assert warmup is None or params["warmup_steps"].default == warmup
    assert set(REFERENCES) == set(optim.OPTIMIZERS)


@pytest.mark.parametrize("variant", ["defaults", "custom"])
@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_five_steps_match_published_formulas(name, variant):
    spec = optim.OPTIMIZERS[name]
    kwargs = dict(BASE[name], **(CUSTOM.get(name, {}) if variant == "custom" else {}))
    hp = dict(spec.defaults, **kwargs)
    ours, _ = run(optim.get_optimizer(name, **kwargs))
    ref = np.array(REFERENCES[name](quad_grad, lambda t: hp["learning_rate"], hp))
    assert np.all(np.isfinite(ref)) and not np.allclose(ref[-1], ref[0])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_five_steps_with_clipping_weight_decay_and_schedule(name):
    spec = optim.OPTIMIZERS[name]
    kwargs = dict(BASE[name], **CUSTOM.get(name, {}), weight_decay=0.3, clip_norm=4.0)
    hp = dict(spec.defaults, **kwargs)
    lr0 = hp["learning_rate"]
    if name in UNSCHEDULED:
        lr = lambda t: lr0  # noqa: E731 - the rate is adapted (or averaged over), not scheduled
    else:
        lr = lambda t: lr0 / (1 + 0.7 * t)  # noqa: E731 - Robbins-Monro annealing written out
        kwargs["schedule"] = optim.inverse_time_schedule(lr0, 0.7)
    # a decoupled method's reference applies hp["weight_decay"] itself; the others see it in the gradient
    grad = make_grad(clip_norm=4.0, weight_decay=0.0 if name in DECOUPLED else 0.3)
    assert math.sqrt(sum(g * g for g in quad_grad(X0))) > 4.0  # the clip is active
    ours, _ = run(optim.get_optimizer(name, **kwargs))
    ref = np.array(SCHEDULED_REFERENCES[name](grad, lr, hp))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sgd-hd", "adam-hd"])
def test_hypergradient_rate_matches_reference_and_moves(name):
    hp = dict(optim.OPTIMIZERS[name].defaults, **BASE[name])
    _, state = run(optim.get_optimizer(name, **BASE[name]))
    ref = {"sgd-hd": ref_sgd_hd, "adam-hd": ref_adam_hd}[name]
    _, alpha = ref(quad_grad, None, hp, return_alpha=True)
    assert optim.current_learning_rate(state) == pytest.approx(alpha, rel=1e-12)
    assert abs(alpha - hp["learning_rate"]) > 1e-4


def test_amsgrad_without_bias_correction_is_the_papers_algorithm():
    hp = dict(optim.OPTIMIZERS["amsgrad"].defaults, learning_rate=0.1, b1=0.7, b2=0.6, bias_correction=False)
    ours, _ = run(optim.amsgrad(0.1, b1=0.7, b2=0.6, bias_correction=False))
    np.testing.assert_allclose(ours, ref_amsgrad(quad_grad, lambda t: 0.1, hp), rtol=1e-12, atol=1e-12)


def test_nadam_paper_form_is_an_option_and_differs_during_the_warm_up():
    # Dozat's Algorithm 2 moves the average with mu_t; driven by the same gradients it is not PyTorch's NAdam.
    lr = 0.1
    hp = dict(optim.OPTIMIZERS["nadam"].defaults, scheduled_average=True)
    paper, _ = run(optim.nadam(lr, scheduled_average=True))
    np.testing.assert_allclose(paper, ref_nadam(quad_grad, lambda t: lr, hp), rtol=1e-12, atol=1e-12)
    default, _ = run(optim.nadam(lr))
    first = [np.asarray(a[1]) - X0 for a in (paper, default)]
    assert not np.allclose(first[0], first[1], rtol=0.1)   # the very first update differs by far more than 10%


def test_nadam_without_warmup_is_the_constant_momentum_form():
    # With mu_t = b1 Dozat's formula is (1 - b1) g/(1 - b1^t) + b1 m_t/(1 - b1^(t+1)).
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.1
    ours, _ = run(optim.nadam(lr, momentum_warmup=False))
    x, m, v = list(X0), [0.0, 0.0], [0.0, 0.0]
    for t in range(1, STEPS + 1):
        g = quad_grad(x)
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            num = (1 - b1) * g[i] / (1 - b1 ** t) + b1 * m[i] / (1 - b1 ** (t + 1))
            x[i] -= lr * num / (math.sqrt(v[i] / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(ours[-1], x, rtol=1e-12, atol=1e-12)
    warm, _ = run(optim.nadam(lr))
    assert not np.allclose(warm[-1], x, rtol=1e-6)


# --------------------------------------------------------------------------- purity
def _freeze(tree):
    if isinstance(tree, np.ndarray):
        tree.flags.writeable = False
    elif isinstance(tree, tuple):
        for child in tree:
            _freeze(child)


def _assert_namedtuples(state):
    assert isinstance(state, tuple) and hasattr(state, "_fields"), type(state)
    for child in state:
        if isinstance(child, tuple) and not hasattr(child, "_fields"):
            for c in child:
                _assert_namedtuples(c)
        elif isinstance(child, tuple):
            _assert_namedtuples(child)


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_update_is_pure(name):
    tx = optim.get_optimizer(name, **BASE[name], weight_decay=0.1, clip_norm=3.0)
    params = np.array([0.3, -1.2, 2.0])
    grads = np.array([4.0, -0.5, 1.5])
    p0, g0 = params.copy(), grads.copy()
    state = tx.init(params)
    _, state = tx.update(grads, state, params)  # a non-trivial state
    _assert_namedtuples(state)
    snapshot = optim.state_to_arrays(state)
    for arr in (params, grads):
        arr.flags.writeable = False
    _freeze(state)  # any in-place write into inputs or the old state raises
    u1, s1 = tx.update(grads, state, params)
    u2, s2 = tx.update(grads, state, params)
    np.testing.assert_array_equal(u1, u2)
    np.testing.assert_array_equal(params, p0)
    np.testing.assert_array_equal(grads, g0)
    after = optim.state_to_arrays(state)
    assert snapshot.keys() == after.keys()
    for k in snapshot:
        np.testing.assert_array_equal(snapshot[k], after[k])
    for k, v in optim.state_to_arrays(s1).items():
        np.testing.assert_array_equal(v, optim.state_to_arrays(s2)[k])
    _assert_namedtuples(s1)
    assert isinstance(optim.apply_updates(params, u1), np.ndarray)


# --------------------------------------------------------------------------- building blocks
def test_chain_order_matters():
    g = np.array([3.0, 4.0])
    clip_then_scale = optim.chain(optim.clip_by_global_norm(1.0), optim.scale(10.0))
    scale_then_clip = optim.chain(optim.scale(10.0), optim.clip_by_global_norm(1.0))
    u1, _ = clip_then_scale.update(g, clip_then_scale.init(g))
    u2, _ = scale_then_clip.update(g, scale_then_clip.init(g))
    np.testing.assert_allclose(u1, [6.0, 8.0], rtol=1e-15)
    np.testing.assert_allclose(u2, [0.6, 0.8], rtol=1e-15)
    p = np.array([1.0, -1.0])
    decay_then_scale = optim.chain(optim.add_decayed_weights(0.5), optim.scale(2.0))
    scale_then_decay = optim.chain(optim.scale(2.0), optim.add_decayed_weights(0.5))
    np.testing.assert_allclose(decay_then_scale.update(g, decay_then_scale.init(p), p)[0], [7.0, 7.0])
    np.testing.assert_allclose(scale_then_decay.update(g, scale_then_decay.init(p), p)[0], [6.5, 7.5])


def test_clipping():
    g = np.array([-3.0, 0.25, 2.0])
    tx = optim.clip(1.0)
    np.testing.assert_array_equal(tx.update(g, tx.init(g))[0], [-1.0, 0.25, 1.0])
    tx = optim.clip_by_global_norm(5.0)
    small = np.array([3.0, 4.0])  # norm exactly 5: untouched
    np.testing.assert_array_equal(tx.update(small, tx.init(small))[0], small)
    big = np.array([6.0, 8.0, 0.0])
    out = tx.update(big, tx.init(big))[0]
    np.testing.assert_allclose(out, [3.0, 4.0, 0.0], rtol=1e-15)
    assert np.linalg.norm(out) == pytest.approx(5.0, rel=1e-15)
    with pytest.raises(SolverError, match="clip norm"):
        optim.clip_by_global_norm(0.0)


def test_weight_decay_coupled_and_decoupled():
    p = np.array([2.0, -4.0])
    g = np.array([1.0, 1.0])
    tx = optim.add_decayed_weights(0.25)
    np.testing.assert_array_equal(tx.update(g, tx.init(p), p)[0], [1.5, 0.0])
    with pytest.raises(SolverError, match="parameters"):
        tx.update(g, tx.init(p))
    # SGD with coupled decay: u = -lr (g + wd p).
    tx = optim.sgd(0.1, weight_decay=0.25)
    u, _ = tx.update(g, tx.init(p), p)
    np.testing.assert_allclose(u, [-0.15, 0.0], rtol=1e-15)
    # AdamW (Loshchilov & Hutter): x_t = x_{t-1} - lr (m^/(sqrt(v^)+eps) + wd x_{t-1}).
    lr, wd, b1, b2, eps = 0.1, 0.2, 0.9, 0.999, 1e-8
    ours, _ = run(optim.adam(lr, weight_decay=wd, decoupled=True), steps=3)
    x, m, v = list(X0), [0.0, 0.0], [0.0, 0.0]
    for t in range(1, 4):
        gq = quad_grad(x)
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * gq[i]
            v[i] = b2 * v[i] + (1 - b2) * gq[i] ** 2
            x[i] -= lr * ((m[i] / (1 - b1 ** t)) / (math.sqrt(v[i] / (1 - b2 ** t)) + eps) + wd * x[i])
    np.testing.assert_allclose(ours[-1], x, rtol=1e-12)
    coupled, _ = run(optim.adam(lr, weight_decay=wd), steps=3)
    assert not np.allclose(coupled[-1], ours[-1], rtol=1e-6)


def test_schedule_values():
    inv = optim.inverse_time_schedule(0.5, 0.25)
    assert [inv(t) for t in range(5)] == pytest.approx([0.5, 0.4, 1 / 3, 0.5 / 1.75, 0.25], rel=1e-15)
    assert optim.constant_schedule(0.3)(1000) == 0.3
    exp = optim.exponential_decay_schedule(2.0, 0.5, transition_steps=2)
    assert [exp(t) for t in (0, 1, 2, 4)] == pytest.approx([2.0, 2.0 / math.sqrt(2), 1.0, 0.5], rel=1e-15)
    cos = optim.cosine_decay_schedule(1.0, 8, final_value=0.2)
    expected = [1.0, 0.2 + 0.4 * (1 + math.sqrt(0.5)), 0.6, 0.2, 0.2]
    assert [cos(t) for t in (0, 2, 4, 8, 20)] == pytest.approx(expected, rel=1e-14)
    assert optim.make_schedule("inverse-time", 0.5, decay=0.25)(3) == inv(3)
    with pytest.raises(SolverError, match="unknown schedule"):
        optim.make_schedule("linear", 0.1)
    with pytest.raises(SolverError, match="decay"):
        optim.make_schedule("inverse-time", 0.1, rate=2)


def test_inverse_time_annealing_drives_sgd():
    # lr_t = 0.2 / (1 + t): updates -lr_t g for a constant gradient g.
    tx = optim.sgd(schedule=optim.inverse_time_schedule(0.2, 1.0))
    g = np.array([1.0, -3.0])
    state = tx.init(g)
    for t, lr in enumerate([0.2, 0.1, 0.2 / 3, 0.05, 0.04]):
        u, state = tx.update(g, state, g)
        np.testing.assert_allclose(u, [-lr, 3 * lr], rtol=1e-15)
    assert state.states[-1].count == 5


def test_state_roundtrip_resumes_exactly():
    for name in optim.OPTIMIZERS:
        tx = optim.get_optimizer(name, **BASE[name])
        full, _ = run(tx, steps=5)
        part, state = run(tx, steps=3)
        stored = {k: np.array(v) for k, v in optim.state_to_arrays(state).items()}
        restored = optim.state_from_arrays(tx.init(part[-1]), stored)
        x = part[-1]
        for _ in range(2):
            u, restored = tx.update(np.array(quad_grad(list(x))), restored, x)
            x = optim.apply_updates(x, u)
        np.testing.assert_array_equal(x, full[-1], err_msg=name)
    template = optim.adam().init(np.zeros(3))
    with pytest.raises(SolverError, match="shape"):
        optim.state_from_arrays(template, optim.state_to_arrays(optim.adam().init(np.zeros(2))))
    with pytest.raises(SolverError, match="another optimizer"):
        optim.state_from_arrays(template, optim.state_to_arrays(optim.rmsprop().init(np.zeros(3))))


def test_bad_input_raises_clear_errors():
    with pytest.raises(SolverError, match="b1"):
        optim.adam(b1=1.0)
    with pytest.raises(SolverError, match="learning rate"):
        optim.sgd(-0.1)
    with pytest.raises(SolverError, match="eps"):
        optim.rmsprop(eps=float("nan"))
    with pytest.raises(SolverError, match="schedule"):
        optim.sgd_hd(schedule=optim.constant_schedule(0.1))
    with pytest.raises(SolverError, match="unknown optimizer"):
        optim.get_optimizer("adagrad")
    with pytest.raises(SolverError, match="no option 'momentum'"):
        optim.get_optimizer("adam", momentum=0.9)
    with pytest.raises(SolverError, match="1-D"):
        tx = optim.sgd()
        tx.update(np.ones((2, 2)), tx.init(np.ones(4)))
    with pytest.raises(SolverError, match="shape"):
        optim.apply_updates(np.ones(3), np.ones(2))
    with pytest.raises(SolverError, match="GradientTransformation"):
        optim.chain(optim.scale(1.0), lambda g: g)
    with pytest.raises(SolverError, match="init"):
        optim.sgd(0.1, weight_decay=0.1).update(np.ones(2), optim.sgd(0.1).init(np.ones(2)), np.ones(2))


# --------------------------------------------------------------------------- schedules with a warm-up
def test_warmup_cosine_closed_form():
    # peak 2, horizon T = 12, warm-up W = 4, final 0.2:
    # lr_t = 2 (t + 1) / 4 for t < 4, then 0.2 + 0.9 (1 + cos(pi (t - 4) / 8)), and 0.2 from t = 12 on.
    s = optim.warmup_cosine_schedule(2.0, 12, warmup_steps=4, final_value=0.2)
    expected = {0: 0.5, 1: 1.0, 2: 1.5, 3: 2.0, 4: 2.0, 6: 0.2 + 0.9 * (1 + math.sqrt(0.5)), 8: 1.1,
                10: 0.2 + 0.9 * (1 - math.sqrt(0.5)), 11: 0.2 + 0.9 * (1 - math.cos(math.pi / 8)), 12: 0.2,
                40: 0.2}
    assert [s(t) for t in expected] == pytest.approx(list(expected.values()), rel=1e-14)
    # no warm-up is the cosine schedule; a warm-up as long as the horizon never decays
    plain, cos = optim.warmup_cosine_schedule(1.0, 8, 0, 0.1), optim.cosine_decay_schedule(1.0, 8, 0.1)
    assert [plain(t) for t in range(10)] == [cos(t) for t in range(10)]
    whole = optim.warmup_cosine_schedule(1.0, 4, 4)
    assert [whole(t) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 0.0, 0.0]
    assert optim.make_schedule("warmup-cosine", 2.0, decay_steps=12, warmup_steps=4)(0) == 0.5
    with pytest.raises(SolverError, match="longer than the horizon"):
        optim.warmup_cosine_schedule(1.0, 4, 5)
    with pytest.raises(SolverError, match="whole number"):
        optim.warmup_cosine_schedule(1.0, 4, 1.5)
    with pytest.raises(SolverError, match="decay steps"):
        optim.warmup_cosine_schedule(1.0, 0)


def _anneal(start, end, pct):
    """PyTorch OneCycleLR's cosine annealing, written out: end + (start - end) (1 + cos(pi pct)) / 2."""
    return end + (start - end) * (1 + math.cos(math.pi * pct)) / 2


def test_one_cycle_closed_form():
    # PyTorch's defaults: pct_start 0.3, div_factor 25, final_div_factor 1e4. With T = 10 the rise ends at
    # E1 = 0.3 * 10 - 1 = 2 and the fall at E2 = 9: 0.04 -> 1 over t = 0..2, 1 -> 4e-6 over t = 2..9.
    s = optim.one_cycle_schedule(1.0, 10)
    expected = {0: 0.04, 1: 0.52, 2: 1.0, 4: 4e-6 + (1 - 4e-6) * (1 + math.cos(2 * math.pi / 7)) / 2,
                9: 4e-6, 25: 4e-6}
    assert [s(t) for t in expected] == pytest.approx(list(expected.values()), rel=1e-13)
    # T = 9, pct_start 1/3: E1 = 2, E2 = 8, so t = 5 is half way down: lowest + (peak - lowest) / 2
    s = optim.one_cycle_schedule(3.0, 9, pct_start=1 / 3, div_factor=4.0, final_div_factor=100.0)
    assert [s(t) for t in (0, 1, 2, 5, 8)] == pytest.approx([0.75, 1.875, 3.0, 0.0075 + 2.9925 / 2, 0.0075],
                                                            rel=1e-13)
    # no rise (pct_start 0: E1 = -1) falls from the first update; a one-update rise (E1 = 0) starts at the peak
    s = optim.one_cycle_schedule(1.0, 10, pct_start=0.0)
    assert s(0) == pytest.approx(_anneal(1.0, 4e-6, 1 / 10), rel=1e-14)
    assert optim.one_cycle_schedule(1.0, 10, pct_start=0.1)(0) == 1.0
    assert optim.make_schedule("one-cycle", 1.0, total_steps=10)(1) == pytest.approx(0.52, rel=1e-14)
    with pytest.raises(SolverError, match="pct_start"):
        optim.one_cycle_schedule(1.0, 10, pct_start=1.5)
    with pytest.raises(SolverError, match="div_factor"):
        optim.one_cycle_schedule(1.0, 10, div_factor=0.0)


def _torch_rates(torch, make_scheduler, lr, steps):
    """The learning rate PyTorch uses for each of ``steps`` updates under ``make_scheduler(optimizer)``."""
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_scheduler(opt)
    rates = []
    for _ in range(steps):
        rates.append(float(opt.param_groups[0]["lr"]))
        p.grad = torch.zeros_like(p)
        opt.step()
        sched.step()
    return rates


@pytest.mark.parametrize("T, W, final", [(25, 5, 0.005), (40, 1, 0.0), (12, 11, 0.01), (7, 2, 0.3)])
def test_warmup_cosine_matches_torch(T, W, final):
    torch = pytest.importorskip("torch")
    sch = torch.optim.lr_scheduler

    def make(opt):
        parts = [sch.LinearLR(opt, start_factor=1 / W, end_factor=1.0, total_iters=max(W - 1, 1)),
                 sch.CosineAnnealingLR(opt, T_max=T - W, eta_min=final)]
        return sch.SequentialLR(opt, parts, milestones=[W])

    ours = optim.warmup_cosine_schedule(0.05, T, W, final)
    np.testing.assert_allclose([ours(t) for t in range(T)], _torch_rates(torch, make, 0.05, T), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("T, pct, div, final_div", [(10, 0.3, 25.0, 1e4), (37, 0.25, 10.0, 100.0),
                                                    (7, 0.0, 25.0, 1e4), (50, 0.45, 3.0, 7.0), (3, 0.3, 25.0, 1e4)])
def test_one_cycle_matches_torch(T, pct, div, final_div):
    torch = pytest.importorskip("torch")

    def make(opt):
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=T, pct_start=pct,
                                                   anneal_strategy="cos", cycle_momentum=False, div_factor=div,
                                                   final_div_factor=final_div, three_phase=False)

    ours = optim.one_cycle_schedule(0.2, T, pct_start=pct, div_factor=div, final_div_factor=final_div)
    np.testing.assert_allclose([ours(t) for t in range(T)], _torch_rates(torch, make, 0.2, T), rtol=1e-13,
                               atol=1e-16)


# --------------------------------------------------------------------------- AdamW and NAdamW
LONG = 25


@pytest.mark.parametrize("name", ["adamw", "nadamw"])
def test_decoupled_decay_is_torchs_documented_algorithm_over_a_warmup_cosine_run(name):
    lr, wd = 0.05, 0.1
    sched = optim.warmup_cosine_schedule(lr, LONG, warmup_steps=5, final_value=0.005)
    hp = dict(optim.OPTIMIZERS[name].defaults, learning_rate=lr, weight_decay=wd)
    ours, _ = run(optim.get_optimizer(name, weight_decay=wd, schedule=sched), steps=LONG)
    ref = np.array(REFERENCES[name](quad_grad, sched, hp, steps=LONG))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    base = {"adamw": "adam", "nadamw": "nadam"}[name]
    # the alias is its base method with decoupled=True, bit for bit ...
    same, _ = run(optim.get_optimizer(base, weight_decay=wd, decoupled=True, schedule=sched), steps=LONG)
    np.testing.assert_array_equal(same, ours)
    # ... and the decay matters, and is not the L2-coupled one
    for other in (optim.get_optimizer(name, weight_decay=0.0, schedule=sched),
                  optim.get_optimizer(base, weight_decay=wd, schedule=sched)):
        assert not np.allclose(run(other, steps=LONG)[0][-1], ours[-1], rtol=1e-6)
    with pytest.raises(SolverError, match="decouples its weight decay"):
        optim.get_optimizer(name, decoupled=False)


def _torch_iterates(torch, opt_cls, steps, scheduler=None, **kwargs):
    # PyTorch keeps an optimizer's scalar state (NAdam's mu_product) in the default dtype: float64 here, so
    # that the comparison is of the algorithms and not of a float32 product
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        p = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
        opt = opt_cls([p], **kwargs)
        sched = scheduler(opt) if scheduler is not None else None
        out = [p.detach().numpy().copy()]
        for _ in range(steps):
            p.grad = torch.tensor(quad_grad(p.detach().tolist()), dtype=torch.float64)
            opt.step()
            if sched is not None:
                sched.step()
            out.append(p.detach().numpy().copy())
    finally:
        torch.set_default_dtype(previous)
    return np.array(out)


@pytest.mark.parametrize("name", ["adamw", "nadamw"])
def test_decoupled_decay_matches_torch(name):
    torch = pytest.importorskip("torch")
    sch = torch.optim.lr_scheduler
    lr, wd, W, final = 0.05, 0.1, 5, 0.005
    if name == "adamw":
        cls, kw = torch.optim.AdamW, dict(betas=(0.8, 0.95), eps=1e-3)
    else:
        cls, kw = torch.optim.NAdam, dict(betas=(0.95, 0.9), eps=1e-3, momentum_decay=0.5,
                                          decoupled_weight_decay=True)

    def scheduler(opt):
        return sch.SequentialLR(opt, [sch.LinearLR(opt, start_factor=1 / W, total_iters=W - 1),
                                      sch.CosineAnnealingLR(opt, T_max=LONG - W, eta_min=final)], milestones=[W])

    theirs = _torch_iterates(torch, cls, LONG, scheduler, lr=lr, weight_decay=wd, **kw)
    ours, _ = run(optim.get_optimizer(name, weight_decay=wd, **CUSTOM[name],
                                      schedule=optim.warmup_cosine_schedule(lr, LONG, W, final)), steps=LONG)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    # without a schedule too, at torch's defaults but for the decay
    theirs = _torch_iterates(torch, cls, LONG, lr=lr, weight_decay=wd,
                             **({} if name == "adamw" else dict(decoupled_weight_decay=True)))
    ours, _ = run(optim.get_optimizer(name, learning_rate=lr, weight_decay=wd), steps=LONG)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- schedule-free AdamW
SF_KWARGS = dict(learning_rate=0.2, b1=0.8, b2=0.95, eps=1e-6, r=0.5, weight_lr_power=2.0, warmup_steps=6,
                 weight_decay=0.05)
SF_STEPS = 30


def run_schedule_free(tx, steps=SF_STEPS):
    """The y iterates (the optimizer's parameters) and the x iterates (eval_params) of ``tx``."""
    y = np.array(X0, dtype=np.float64)
    state = tx.init(y)
    ys, xs = [y], [optim.eval_params(state)]
    for _ in range(steps):
        u, state = tx.update(np.array(quad_grad(list(y))), state, y)
        y = optim.apply_updates(y, u)
        assert np.array_equal(optim.train_params(state), y)  # the state's y is the parameters, bit for bit
        ys.append(y)
        xs.append(optim.eval_params(state))
    return np.array(ys), np.array(xs), state


def test_schedule_free_matches_the_transcription_with_warmup_and_decay():
    ys, xs, state = run_schedule_free(optim.adamw_schedulefree(**SF_KWARGS))
    ref_y, ref_x = ref_schedulefree(quad_grad, lambda t: SF_KWARGS["learning_rate"], SF_KWARGS, steps=SF_STEPS,
                                    both=True)
    np.testing.assert_allclose(ys, ref_y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xs, ref_x, rtol=1e-12, atol=1e-12)
    assert not np.allclose(ys[-1], xs[-1], rtol=1e-3)  # y and x are different points
    assert optim.current_learning_rate(state) == SF_KWARGS["learning_rate"]  # the warm-up is over
    # the warm-up, the weighting and the decay each change the iterates
    for change in (dict(warmup_steps=0), dict(weight_decay=0.0), dict(r=0.0), dict(weight_lr_power=0.0)):
        _, other, _ = run_schedule_free(optim.adamw_schedulefree(**dict(SF_KWARGS, **change)))
        assert not np.allclose(other[-1], xs[-1], rtol=1e-8), change
    # without decay x approaches the minimiser of the quadratic (the average of all z: at a rate ~ 1/k)
    _, xs, _ = run_schedule_free(optim.adamw_schedulefree(0.1, warmup_steps=20), steps=3000)
    np.testing.assert_allclose(xs[-1], np.linalg.solve(np.array(A), np.array(B)), rtol=5e-3)


def test_schedule_free_rates_and_refusals():
    tx = optim.adamw_schedulefree(0.3, warmup_steps=3)
    state, y = tx.init(np.zeros(2)), np.zeros(2)
    rates = []
    for _ in range(5):
        u, state = tx.update(np.ones(2), state, y)
        y = optim.apply_updates(y, u)
        rates.append(optim.current_learning_rate(state))
    assert rates == pytest.approx([0.1, 0.2, 0.3, 0.3, 0.3], rel=1e-15)
    assert optim.eval_params(optim.adam().init(np.zeros(2))) is None
    assert optim.train_params(optim.sgd_hd().init(np.zeros(2))) is None
    with pytest.raises(SolverError, match="needs no schedule"):
        optim.adamw_schedulefree(schedule=optim.constant_schedule(0.1))
    with pytest.raises(SolverError, match="decouples"):
        optim.adamw_schedulefree(decoupled=False)
    with pytest.raises(SolverError, match="parameters"):
        tx.update(np.ones(2), tx.init(np.zeros(2)))
    with pytest.raises(SolverError, match="warm-up steps"):
        optim.adamw_schedulefree(warmup_steps=-1)


def test_schedule_free_matches_the_schedulefree_package():
    torch = pytest.importorskip("torch")
    schedulefree = pytest.importorskip("schedulefree")
    kw = SF_KWARGS
    ys, xs, _ = run_schedule_free(optim.adamw_schedulefree(**kw))
    ref_y, ref_x = ref_schedulefree(quad_grad, lambda t: kw["learning_rate"], kw, steps=SF_STEPS, both=True)
    for cls in (schedulefree.AdamWScheduleFree, schedulefree.AdamWScheduleFreeReference):
        p = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
        opt = cls([p], lr=kw["learning_rate"], betas=(kw["b1"], kw["b2"]), eps=kw["eps"],
                  weight_decay=kw["weight_decay"], warmup_steps=kw["warmup_steps"], r=kw["r"],
                  weight_lr_power=kw["weight_lr_power"])
        opt.train()
        their_y, their_x = [p.detach().numpy().copy()], [p.detach().numpy().copy()]
        for _ in range(SF_STEPS):
            p.grad = torch.tensor(quad_grad(p.detach().tolist()), dtype=torch.float64)
            opt.step()
            their_y.append(p.detach().numpy().copy())
            opt.eval()  # the parameters become x, as for evaluation
            their_x.append(p.detach().numpy().copy())
            opt.train()
        for mine, theirs in ((ys, their_y), (xs, their_x), (ref_y, their_y), (ref_x, their_x)):
            np.testing.assert_allclose(mine, np.array(theirs), rtol=1e-12, atol=1e-12, err_msg=cls.__name__)
