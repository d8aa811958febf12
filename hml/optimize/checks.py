"""Two tools around an objective: the largest curvature of a quadratic (a safe gradient-descent
step), and a finite-difference check of a gradient."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hml.backends import ComputeContext
from hml.exceptions import DivergenceError
from hml.optimize.loop import Objective, dot, overflowed_at_start, total

__all__ = ["check_gradient", "largest_curvature"]


def largest_curvature(
    objective: Objective, theta: Any, *, ctx: ComputeContext, iterations: int = 20, seed: int = 0
) -> float:
    r"""λ_max, the largest eigenvalue of the Hessian H of a quadratic J, by power iteration.

    H is never formed: for a quadratic, Hv is a difference of two gradients, one objective
    call (two GEMVs) per iteration; from a random unit v₀, after ``iterations`` steps,

    .. math::
        :name: largest-curvature-power-iteration

        H v_j &= \nabla J(\theta + v_j) - \nabla J(\theta) \\
        v_{j+1} &= H v_j \,/\, \lVert H v_j \rVert \\
        \lambda_{\max} &\approx v_j^\top H v_j

    The estimate approaches λ_max from below, and 1/λ is then a step for which
    gradient descent on J cannot diverge (it does for steps past 2/λ_max) and makes
    progress along every direction. One host read, at the end.
    """
    xp = ctx.xp
    cost, gradient = objective(theta)
    # A generic start (a fixed seed, so every backend takes the same steps): any vector
    # not orthogonal to the top eigenvector converges to it.
    v = ctx.asarray(np.random.default_rng(seed).standard_normal(tuple(theta.shape)), dtype=theta.dtype)
    v = v / xp.sqrt(dot(xp, v, v))
    curvature = xp.zeros((), dtype=theta.dtype, device=ctx.device)
    tiny = xp.asarray(float(xp.finfo(theta.dtype).smallest_normal), dtype=theta.dtype, device=ctx.device)
    for _ in range(iterations):
        hv = objective(theta + v)[1] - gradient
        curvature = dot(xp, v, hv)
        # ‖Hv‖ as s‖Hv/s‖ with s = max|Hv|: (Hv)ᵀ(Hv) overflows once λ ≳ 1e154 (X ≳ 1e77 unscaled)
        # though λ itself does not. `tiny` keeps a flat J (H v = 0) from dividing by zero; λ is then 0.
        largest = xp.maximum(xp.max(xp.abs(hv)), tiny)
        unit = hv / largest
        v = unit / xp.sqrt(dot(xp, unit, unit))
        v, curvature = ctx.backend.materialize(v, curvature)  # lazy backends: one small graph per step
    curvature, initial = (float(v) for v in ctx.read(xp.stack([curvature, total(xp, cost)]), "largest curvature"))
    if not math.isfinite(initial):
        raise overflowed_at_start(initial)
    if not math.isfinite(curvature):
        raise DivergenceError(f"the largest curvature of J is not finite ({curvature}); check the data for huge values")
    return curvature


def check_gradient(
    objective: Objective, theta: Any, *, ctx: ComputeContext, epsilon: float = 1e-6, coordinates: Any = None
) -> float:
    r"""Relative error between ``objective``'s gradient g and central finite differences ĝ,

    .. math::
        :name: gradient-check

        \hat g_j = \frac{J(\theta + \varepsilon e_j) - J(\theta - \varepsilon e_j)}{2 \varepsilon}, \qquad
        \text{error} = \frac{\lVert g - \hat g \rVert_2}{\max\big(\lVert g \rVert_2, \lVert \hat g \rVert_2\big)}

    over the flat indices ``coordinates`` of θ (default: all of them; two evaluations
    of J each, so keep θ small). In float64 a correct gradient gives ~1e-9 or less.
    """
    xp = ctx.xp
    _, gradient = objective(theta)
    flat_gradient = ctx.read(xp.reshape(gradient, (-1,)), "gradient check")
    size = flat_gradient.shape[0]
    indices = range(size) if coordinates is None else [int(i) for i in coordinates]
    positions = xp.reshape(xp.arange(size, device=ctx.device), theta.shape)
    analytic, numeric = [], []
    for i in indices:  # a loop over parameters (finite differences), not over examples
        step = epsilon * xp.astype(positions == i, theta.dtype)
        plus, minus = total(xp, objective(theta + step)[0]), total(xp, objective(theta - step)[0])
        plus, minus = ctx.read(xp.stack([plus, minus]), "gradient check")
        numeric.append((float(plus) - float(minus)) / (2.0 * epsilon))
        analytic.append(float(flat_gradient[i]))
    difference = np.linalg.norm(np.subtract(analytic, numeric))
    scale = max(float(np.linalg.norm(analytic)), float(np.linalg.norm(numeric)), 1e-300)
    return float(difference / scale)
