"""Optimisers shared by every gradient-based model, written once against the array API.

An objective is a function ``theta -> (cost, gradient)`` returning a 0-d array and
an array shaped like ``theta``, both on the device. Computing both together lets a
model reuse its residual for the cost, so recording the cost history costs no
extra pass over the data.

Convergence scalars are read back to the host only every ``check_every``
iterations (``float(x)`` on a GPU array waits for the GPU, and on a Dask array
computes the graph); the cost history stays on the device until the end.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from hml.backends import ComputeContext
from hml.exceptions import ConvergenceWarning, DivergenceError

__all__ = ["OptimizeResult", "gradient_descent"]

Objective = Callable[[Any], "tuple[Any, Any]"]


@dataclass
class OptimizeResult:
    """What an optimiser found.

    ``cost_history[k]`` is J(θ_k), the cost at the parameters iteration k started
    from (θ_0 is the initial guess), so it has ``n_iter`` entries.
    """

    theta: Any
    cost_history: Any
    n_iter: int
    converged: bool


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
) -> OptimizeResult:
    """Batch gradient descent: θ ← θ − α ∇J(θ), for at most ``max_iter`` iterations.

    Stops early when ``tol`` is set and the relative change of the cost over one
    iteration, |J_{k−1} − J_k| / max(|J_k|, tiny), falls to ``tol`` or below.

    Raises :class:`hml.DivergenceError` when the cost becomes non-finite or grows past
    ``divergence_factor`` times its initial value -- the sign of a learning rate too
    large for the curvature of J.
    """
    xp = ctx.xp
    history: list[Any] = []  # one device array per checked window of iterations
    window: list[Any] = []  # 0-d device costs since the last check
    initial_cost = previous_cost = None
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        cost, gradient = objective(theta)
        theta = theta - learning_rate * gradient
        window.append(cost)
        if n_iter % check_every and n_iter != max_iter:
            continue
        # One host read per window (a GPU sync, or one Dask compute of the whole window).
        theta, costs = ctx.backend.materialize(theta, xp.stack(window))
        history.append(costs)
        window = []
        values = [float(c) for c in ctx.to_numpy(costs)]
        if initial_cost is None:
            initial_cost = values[0]
        _check_divergence(values, initial_cost, divergence_factor, learning_rate, n_iter)
        if previous_cost is not None:
            values.insert(0, previous_cost)
        previous_cost = values[-1]
        if tol is not None and len(values) > 1:
            change = abs(values[-2] - values[-1]) / max(abs(values[-1]), 1e-300)
            if change <= tol:
                converged = True
                break
    if not bool(xp.all(xp.isfinite(theta))):
        raise _divergence(learning_rate, n_iter, "the parameters overflowed")
    if tol is not None and not converged:
        warnings.warn(
            f"gradient descent did not reach tol={tol} in max_iter={max_iter} iterations; "
            "increase max_iter or learning_rate, or loosen tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    return OptimizeResult(theta, xp.concat(history), n_iter, converged)


def _check_divergence(window: list[float], initial: float, factor: float, learning_rate: float, iteration: int) -> None:
    for cost in window:
        if not math.isfinite(cost):
            raise _divergence(learning_rate, iteration, "the cost became non-finite")
        # The absolute floor keeps a zero initial cost (y ≡ 0) from flagging rounding noise.
        if cost > factor * max(initial, 1e-300) and cost > 1e-12:
            raise _divergence(learning_rate, iteration, f"the cost grew from {initial:.4g} to {cost:.4g}")


def _divergence(learning_rate: float, iteration: int, what: str) -> DivergenceError:
    return DivergenceError(
        f"gradient descent diverged by iteration {iteration}: {what}. "
        f"learning_rate={learning_rate} is too large for this problem; try learning_rate={learning_rate / 10:g} "
        "(normalize=True also helps)"
    )
