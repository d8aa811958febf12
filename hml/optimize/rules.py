"""Step rules: θ ← step(θ, ∇J, state), the state a few arrays shaped like θ.

Each is a rule and nothing else (the loop in :mod:`hml.optimize.loop` reads, stops and records);
the same rule runs on all rows (one step per iteration) or on mini-batches (one step per batch,
:class:`~hml.optimize.batches.MiniBatches`), as the rules of JAX's ``example_libraries.optimizers``
and Optax run in whatever loop their caller writes.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from hml.backends import ComputeContext
from hml.optimize.loop import StepRule

__all__ = ["Adam", "GradientDescent", "Momentum"]


class GradientDescent(StepRule):
    """θ ← θ − α ∇J(θ), α = ``learning_rate``."""

    name = "gradient descent"

    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)

    def step(self, theta: Any, gradient: Any, state: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        return theta - self.learning_rate * gradient, state


class Momentum(StepRule):
    """Heavy-ball momentum (Polyak): v ← μ v − α ∇J(θ), θ ← θ + v, from v = 0.

    μ = ``momentum`` in [0, 1); μ = 0 is gradient descent. The state is the velocity v.
    """

    name = "gradient descent"

    def __init__(self, learning_rate: float, momentum: float):
        self.learning_rate, self.momentum = float(learning_rate), float(momentum)

    def initial_state(self, theta: Any, ctx: ComputeContext) -> tuple[Any, ...]:
        return (None,)  # v = 0, not yet made: the first step is the gradient step itself

    def step(self, theta: Any, gradient: Any, state: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        (velocity,) = state
        step = -self.learning_rate * gradient
        velocity = step if velocity is None else self.momentum * velocity + step
        return theta + velocity, (velocity,)


class Adam(StepRule):
    """Adam (Kingma & Ba, 2015), in the form scikit-learn's MLP uses:

        m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²,   t ← t + 1
        θ ← θ − α √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + ε)

    with g = ∇J(θ), from m = v = 0: each parameter's step is scaled by the running size of its
    own gradient. Defaults are scikit-learn's (β₁ = 0.9, β₂ = 0.999, ε = 1e-8); its
    ``learning_rate_init`` is 0.001.
    """

    name = "adam"

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, eps: float = 1e-8):
        self.learning_rate, self.beta_1, self.beta_2, self.eps = (
            float(learning_rate),
            float(beta_1),
            float(beta_2),
            float(eps),
        )

    def initial_state(self, theta: Any, ctx: ComputeContext) -> tuple[Any, ...]:
        return (ctx.xp.zeros_like(theta), ctx.xp.zeros_like(theta), 0)

    def step(self, theta: Any, gradient: Any, state: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        first, second, t = state
        t += 1
        first = self.beta_1 * first + (1.0 - self.beta_1) * gradient
        second = self.beta_2 * second + (1.0 - self.beta_2) * (gradient * gradient)
        rate = self.learning_rate * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        xp = array_api_compat.array_namespace(theta)
        return theta - rate * first / (xp.sqrt(second) + self.eps), (first, second, t)
