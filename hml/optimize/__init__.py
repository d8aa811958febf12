"""Optimisers shared by every gradient-based model: one loop, small rules, written once against the array API.

An objective is a function ``theta -> (cost, gradient)`` returning a 0-d array and an array
shaped like ``theta``, both on the device (for mini-batches, ``(theta, rows) -> ...``). Computing
both together lets a model reuse its residual for the cost, so recording the cost history costs
no extra pass over the data. An objective of a *separable* problem (one-vs-all logistic
regression: K independent classifiers trained as one matrix problem) may return its cost as a
1-D array of the parts, J = Σₖ Jₖ; the loop then minimises the sum and also keeps the history
of the parts (``OptimizeResult.cost_parts``) -- from the same pass.

**One loop** (:func:`minimize`, in :mod:`hml.optimize.loop`) runs every method. It owns the host
reads, the stopping test, divergence detection, :func:`progress` and the cost history; a method
is a *rule* -- ``init`` from the evaluation at θ₀, ``update`` once per iteration:

========================  ==============================================  =================
rule                      update                                          module
========================  ==============================================  =================
:class:`GradientDescent`  θ ← θ − α ∇J                                    ``rules``
:class:`Momentum`         v ← μ v − α ∇J, θ ← θ + v                       ``rules``
:class:`Adam`             θ ← θ − α_t m / (√v + ε), m, v running moments  ``rules``
:class:`LBFGS`            θ ← θ − α H∇J, α from a strong-Wolfe search      ``quasi_newton``
:class:`ConjugateGradient` θ ← θ + α d, d Polak–Ribière+ conjugate         ``quasi_newton``
========================  ==============================================  =================

and the rows an iteration sees a *data source*: all of them, or :class:`MiniBatches` (an
iteration is then an epoch of shuffled batches, one step of a step rule per batch).

**The stopping rule**, the same for every method: stop once the largest gradient component has
fallen to ``tol`` times its size at the start,

    ‖∇J(θ_k)‖∞ ≤ tol · ‖∇J(θ₀)‖∞,

a first-order optimality test that, being relative, does not change when J is rescaled (and far
from the minimum where J is ill-conditioned: unstandardised features, which the linear models warn
of); mini-batches test the mean of an epoch's batch gradients against the exact
∇J(θ₀). The line-search methods add one explicit criterion, also only when ``tol`` is set: an
iteration that changes J by at most 64 ε relative (rounding noise) ends the fit, as does a
line search that can lower J by no more than that (``stop="cost floor"``). ``tol=None`` runs
exactly ``max_iter`` iterations (a line-search method that can no longer lower J keeps θ for
the rest). A ``tol`` that ``max_iter`` does not reach ends the fit with a
:class:`hml.ConvergenceWarning`.

**The result** (:class:`OptimizeResult`): ``cost_history`` holds J(θ₀), J(θ₁), …, J(θ_n) --
``n_iter + 1`` entries whatever the method -- and ``stop`` says why the loop ended.

**Host reads**: a step rule's costs stay on the device and are read every ``check_every``
iterations (10 on all rows, 1 epoch for mini-batches), in one transfer with ‖∇J‖∞ (``float(x)``
on a GPU array waits for the GPU, and on a Dask array computes the graph); a line search reads
J, ∇J·d and ‖∇J‖∞ once per evaluation, and the loop tests those same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hml.backends import ComputeContext
from hml.optimize.batches import MiniBatches
from hml.optimize.checks import check_gradient, largest_curvature
from hml.optimize.loop import Evaluation, Objective, OptimizeResult, Rule, StepRule, minimize, reached
from hml.optimize.progress import cost_callback, progress, progress_callback
from hml.optimize.quasi_newton import LBFGS, ConjugateGradient
from hml.optimize.rules import Adam, GradientDescent, Momentum

__all__ = [
    "LBFGS",
    "Adam",
    "ConjugateGradient",
    "Evaluation",
    "GradientDescent",
    "MiniBatches",
    "Momentum",
    "Objective",
    "OptimizeResult",
    "Rule",
    "StepRule",
    "check_gradient",
    "conjugate_gradient",
    "cost_callback",
    "gradient_descent",
    "largest_curvature",
    "lbfgs",
    "make_rule",
    "minibatch_gradient_descent",
    "minimize",
    "progress",
    "progress_callback",
    "reached",
]

#: The methods estimators name in their ``solver`` parameter.
METHODS = ("gd", "adam", "lbfgs", "cg")


def make_rule(
    method: str,
    *,
    learning_rate: float = 1.0,
    momentum: float = 0.0,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    eps: float = 1e-8,
) -> Rule:
    """The rule of an estimator's ``solver``: ``"gd"`` (:class:`GradientDescent`, or :class:`Momentum`
    for ``momentum`` > 0), ``"adam"`` (:class:`Adam` with ``beta_1``, ``beta_2``, ``eps``), ``"lbfgs"``
    or ``"cg"``."""
    if method == "gd":
        return Momentum(learning_rate, momentum) if momentum else GradientDescent(learning_rate)
    if method == "adam":
        return Adam(learning_rate, beta_1, beta_2, eps)
    if method == "lbfgs":
        return LBFGS()
    if method == "cg":
        return ConjugateGradient()
    raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")


# -- the classic methods by name: each one call of the loop ------------------------------------
def gradient_descent(
    objective: Objective,
    theta: Any,
    *,
    ctx: ComputeContext,
    learning_rate: float,
    max_iter: int,
    tol: float | None = None,
    check_every: int = 10,
    divergence_factor: float = 10.0,
    hint: str = "",
) -> OptimizeResult:
    """Batch gradient descent for at most ``max_iter`` iterations: :func:`minimize` with :class:`GradientDescent`
    (its update, on all rows). Raises :class:`hml.DivergenceError` when the cost becomes
    non-finite or grows past ``divergence_factor`` times J(θ₀) -- a learning rate too large for
    the curvature of J; ``hint`` is appended to its advice."""
    return minimize(
        objective,
        theta,
        ctx=ctx,
        rule=GradientDescent(learning_rate),
        max_iter=max_iter,
        tol=tol,
        check_every=check_every,
        divergence_factor=divergence_factor,
        hint=hint,
    )


def minibatch_gradient_descent(
    objective: Objective,
    theta: Any,
    *,
    ctx: ComputeContext,
    n_samples: int,
    batch_size: int,
    learning_rate: float,
    max_iter: int,
    rng: np.random.Generator,
    momentum: float = 0.0,
    tol: float | None = None,
    check_every: int = 1,
    divergence_factor: float = 10.0,
    hint: str = "",
) -> OptimizeResult:
    """Mini-batch gradient descent with heavy-ball momentum μ (μ = 0: plain stochastic gradient
    descent), ``max_iter`` epochs: :func:`minimize` with :class:`Momentum` on :class:`MiniBatches`."""
    return minimize(
        objective,
        theta,
        ctx=ctx,
        rule=make_rule("gd", learning_rate=learning_rate, momentum=momentum),
        max_iter=max_iter,
        tol=tol,
        batches=MiniBatches(n_samples, batch_size, rng),
        check_every=check_every,
        divergence_factor=divergence_factor,
        hint=hint,
    )


def lbfgs(
    objective: Objective,
    theta: Any,
    *,
    ctx: ComputeContext,
    max_iter: int = 100,
    tol: float | None = 1e-4,
    memory: int = 10,
) -> OptimizeResult:
    """Limited-memory BFGS with a strong-Wolfe line search: :func:`minimize` with :class:`LBFGS`."""
    return minimize(objective, theta, ctx=ctx, rule=LBFGS(memory), max_iter=max_iter, tol=tol)


def conjugate_gradient(
    objective: Objective, theta: Any, *, ctx: ComputeContext, max_iter: int = 100, tol: float | None = 1e-4
) -> OptimizeResult:
    """Polak–Ribière+ nonlinear conjugate gradient: :func:`minimize` with :class:`ConjugateGradient`."""
    return minimize(objective, theta, ctx=ctx, rule=ConjugateGradient(), max_iter=max_iter, tol=tol)
