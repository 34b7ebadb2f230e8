"""Small deterministic solvers for the front-end tests (registered under test names by the tests)."""

from symnet.core.model import presets as models
from symnet.solvers.base import Solver
from symnet.solvers.options import Option


#: The options every test solver has: a rate, the ridge, the seed, and a step at which to diverge.
COMMON_OPTIONS = {"lr": Option(0.5, "float", low=0.0), "ridge": Option(0.0, "float", low=0.0),
                  "seed": Option(0, "int", low=0), "diverge_at": Option(0, "int", low=0)}


class DummySolver(Solver):
    """Masked gradient steps with a decaying rate: uses the rng and a counter, so resume must restore both."""

    name = "dummy"
    step_unit = "sweep"
    default_steps = 3
    OPTIONS = {**COMMON_OPTIONS, "interrupt_at": Option(0, "int", low=0), "flag": Option(False, "bool"),
               "label": Option("a", "str")}

    def _setup(self, model, data, rng):
        self.rng_ = rng
        self.calls_ = 0

    def _step(self):
        self.calls_ += 1
        if self.calls_ == self.opts_["interrupt_at"]:
            raise KeyboardInterrupt
        X = self.data_.x_train
        theta = self.model_.get_flat()
        _, grad = self.model_.loss_and_grad(X, self.y_train, self.opts_["ridge"])
        mask = self.rng_.random(theta.size) < 0.7
        self.model_.set_flat(theta - self.opts_["lr"] / self.calls_ * mask * grad / len(X))
        if self.calls_ == self.opts_["diverge_at"]:
            return {"loss": float("nan"), "updates": int(mask.sum()), "passes": 1.0}
        return {"loss": None, "updates": int(mask.sum()), "passes": 1.0}

    def _state(self):
        return {"calls": self.calls_}

    def _load_state(self, state):
        self.calls_ = int(state["calls"])


class EpochDummy(DummySolver):
    name = "dummy-epoch"
    step_unit = "epoch"


class ReplacingSolver(DummySolver):
    """Trains a model of its own (like polyreg) and exposes it as ``model_``."""

    name = "replacing"

    def _setup(self, model, data, rng):
        super()._setup(model, data, rng)
        self.model_ = models.get("mlp", input_shape=data.input_shape, num_classes=data.num_classes, hidden=3,
                                 seed=7)
        self.model_.name = "own"
