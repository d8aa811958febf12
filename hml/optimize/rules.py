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
    r"""Gradient descent: a step of length α ‖∇J‖ against the gradient, α = ``learning_rate``.

    Parameters
    ----------
    learning_rate : float
        The step α (the original project's ``alpha``).

    Notes
    -----
    .. math::
        :name: gradient-descent-update

        \theta_{k+1} = \theta_k - \alpha \nabla J(\theta_k)

    On all rows (:func:`hml.optimize.gradient_descent`) ∇J is the exact gradient; on
    :class:`hml.optimize.MiniBatches`, a batch's.
    """

    name = "gradient descent"

    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)

    def step(self, theta: Any, gradient: Any, state: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        return theta - self.learning_rate * gradient, state


class Momentum(StepRule):
    r"""Heavy-ball momentum (Polyak, 1964): gradient descent whose steps keep a share μ of the last one.

    Parameters
    ----------
    learning_rate : float
        The step α.
    momentum : float
        μ in [0, 1); μ = 0 is gradient descent.

    Notes
    -----
    The state is the velocity v, from v₀ = 0:

    .. math::
        :name: momentum-update

        v_{k+1} = \mu v_k - \alpha \nabla J(\theta_k), \qquad \theta_{k+1} = \theta_k + v_{k+1}
    """

    name = "gradient descent"

    def __init__(self, learning_rate: float, momentum: float):
        self.learning_rate, self.momentum = float(learning_rate), float(momentum)

    def initial_state(self, theta: Any, ctx: ComputeContext) -> tuple[Any, ...]:
        return (None,)  # v = 0, not yet made: the first step is the gradient step itself

    def step(self, theta: Any, gradient: Any, state: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        (velocity,) = state
        step = -self.learning_rate * gradient  # a new array: μv is added to it in place (one temporary less)
        if velocity is not None:
            step += self.momentum * velocity
        return theta + step, (step,)


class Adam(StepRule):
    r"""Adam (Kingma & Ba, 2015): each parameter's step scaled by the running size of its own gradient.

    Parameters
    ----------
    learning_rate : float, default=0.001
        The step α (scikit-learn's ``learning_rate_init``).
    beta_1, beta_2 : float, default=0.9, 0.999
        The decays β₁, β₂ of the running means of the gradient and of its square.
    eps : float, default=1e-8
        ε, which keeps the step finite where v is 0.

    Notes
    -----
    The state is the moments m, v (from 0) and the step count t; with g = ∇J(θ_{t−1}),
    squares and roots elementwise, in the form of the paper's Section 2 that scikit-learn's
    MLP uses too (the bias corrections folded into the step):

    .. math::
        :name: adam-update

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g^2 \\
        \theta_t &= \theta_{t-1} - \alpha \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t} \, \frac{m_t}{\sqrt{v_t} + \epsilon}
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
