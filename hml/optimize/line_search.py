"""A strong-Wolfe line search (Nocedal & Wright, Algorithms 3.5 and 3.6), one host read per evaluation.

Along a direction d from θ, φ(α) = J(θ + αd) and φ'(α) = ∇J(θ + αd)·d. A step α is accepted when

    φ(α) ≤ φ(0) + c₁ α φ'(0)        (sufficient decrease)
    |φ'(α)| ≤ c₂ |φ'(0)|            (curvature)

L-BFGS (c₂ = 0.9) and nonlinear conjugate gradient (c₂ = 0.1) search along their directions with
it (:mod:`hml.optimize.quasi_newton`). The Wolfe test needs φ and φ' on the host, so each
evaluation reads J, ∇J·d and ‖∇J‖∞ back in one transfer -- the loop's convergence test then uses
those same numbers, and costs no read of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hml.backends import ComputeContext
from hml.optimize.loop import Objective, dot, total

__all__ = ["Line", "LineSearchFailed", "Point", "wolfe_step"]


class LineSearchFailed(Exception):
    """No step along the direction satisfied the Wolfe conditions, or lowered J, within the budget."""


@dataclass(frozen=True)
class Point:
    """One point of a line search: the step α, φ(α) = J(θ + αd), φ'(α) = ∇J(θ + αd)·d and
    ‖∇J(θ + αd)‖∞ (NaN where not evaluated: the origin)."""

    alpha: float
    f: float
    slope: float
    gnorm: float = math.nan


class Line:
    """φ(α) = J(θ + α d) along a search direction, one host read per evaluation.

    ``evaluate(α)`` returns the :class:`Point` at α -- φ, φ' and ‖∇J‖∞ read back together,
    in one transfer -- and keeps the device arrays (θ + αd, J, ∇J) of each point in
    ``arrays[α]`` for the caller.

    ``start(α, extra)`` is the first evaluation: α may still be a 0-d device array and
    ``extra`` device scalars (the new direction's φ'(0) and ‖∇J‖²), read in the same
    transfer, so an iteration of L-BFGS or CG costs exactly one read per evaluation.
    """

    def __init__(self, objective: Objective, ctx: ComputeContext, theta: Any, direction: Any):
        self.objective, self.ctx, self.theta, self.direction = objective, ctx, theta, direction
        self.arrays: dict[float, tuple[Any, Any, Any]] = {}

    def start(self, alpha: Any, extra: Any = None) -> tuple[Point, list[float]]:
        """The first evaluation, and the ``extra`` values, as floats."""
        xp = self.ctx.xp
        on_host = isinstance(alpha, float)
        more = ([] if on_host else [xp.reshape(alpha, (1,))]) + ([] if extra is None else [extra])
        values, arrays = self._evaluate(alpha, more)
        if not on_host:
            alpha = values.pop(3)
        self.arrays[alpha] = arrays
        return Point(alpha, *values[:3]), values[3:]

    def evaluate(self, alpha: float) -> Point:
        values, self.arrays[alpha] = self._evaluate(alpha, [])
        return Point(alpha, *values)

    def _evaluate(self, alpha: Any, more: list[Any]) -> tuple[list[float], tuple[Any, Any, Any]]:
        xp = self.ctx.xp
        theta = self.theta + alpha * self.direction
        cost, gradient = self.objective(theta)
        scalars = xp.concat(
            [xp.stack([total(xp, cost), dot(xp, gradient, self.direction), xp.max(xp.abs(gradient))]), *more]
        )
        theta, cost, gradient, scalars = self.ctx.backend.materialize(theta, cost, gradient, scalars)
        values = [float(v) for v in self.ctx.read(scalars, "line search")]
        return values, (theta, cost, gradient)


def _cubic_minimum(lo: Point, hi: Point) -> float:
    """The minimiser of the cubic through (a, φ(a), φ'(a)) and (b, φ(b), φ'(b)), kept inside
    [a, b] away from the ends (Nocedal & Wright, eq. 3.59); the midpoint when it does not exist."""
    a, fa, da, b, fb, db = lo.alpha, lo.f, lo.slope, hi.alpha, hi.f, hi.slope
    low, high = min(a, b), max(a, b)
    try:
        d1 = da + db - 3.0 * (fa - fb) / (a - b)
        d2 = math.copysign(math.sqrt(d1 * d1 - da * db), b - a)
        x = b - (b - a) * (db + d2 - d1) / (db - da + 2.0 * d2)
    except (ValueError, ZeroDivisionError):
        return 0.5 * (a + b)
    margin = 0.1 * (high - low)
    if not math.isfinite(x) or not low + margin <= x <= high - margin:
        return 0.5 * (a + b)
    return x


def wolfe_step(line: Line, origin: Point, first: Point, c1: float, c2: float, max_evaluations: int = 30) -> Point:
    """A step satisfying the strong Wolfe conditions (Algorithm 3.5), bracketing then zooming.

    ``origin`` is α = 0 (φ(0), φ'(0)); ``first`` the first trial, already evaluated by
    :meth:`Line.start`. Raises :class:`LineSearchFailed` after ``max_evaluations``.
    """
    previous, point = origin, first
    alpha = first.alpha
    for i in range(max_evaluations):
        if i:
            point = line.evaluate(alpha)
        if not math.isfinite(point.f):  # overshot into overflow: come back towards the last good point
            alpha = 0.5 * (previous.alpha + point.alpha)
            continue
        if point.f > origin.f + c1 * point.alpha * origin.slope or (i > 0 and point.f >= previous.f):
            return _zoom(line, origin, previous, point, c1, c2, max_evaluations - i - 1)
        if abs(point.slope) <= -c2 * origin.slope:
            return point
        if point.slope >= 0:
            return _zoom(line, origin, point, previous, c1, c2, max_evaluations - i - 1)
        previous, alpha = point, 2.0 * point.alpha
    raise LineSearchFailed


def _zoom(line: Line, origin: Point, lo: Point, hi: Point, c1: float, c2: float, budget: int) -> Point:
    """Narrow [lo, hi], which brackets a strong-Wolfe step, by cubic interpolation (Algorithm 3.6)."""
    for _ in range(max(budget, 0)):
        point = line.evaluate(_cubic_minimum(lo, hi))
        if point.f > origin.f + c1 * point.alpha * origin.slope or point.f >= lo.f:
            hi = point
        else:
            if abs(point.slope) <= -c2 * origin.slope:
                return point
            if point.slope * (hi.alpha - lo.alpha) >= 0:
                hi = lo
            lo = point
        # Relative to α itself (no floor of 1): on badly scaled X the good step is ~1/|x|².
        if abs(hi.alpha - lo.alpha) <= 1e-12 * max(abs(lo.alpha), abs(hi.alpha)):
            break
    # No strong-Wolfe point in budget: accept the best decrease found, if any.
    if lo.alpha > 0 and lo.f < origin.f:
        return lo
    raise LineSearchFailed
