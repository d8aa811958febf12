"""L-BFGS and nonlinear conjugate gradient: rules that choose a direction and search along it.

Both take θ_{k+1} = θ_k + α_k d_k with α_k from the strong-Wolfe line search of
:mod:`hml.optimize.line_search`; they differ in d_k:

- L-BFGS: d = −H∇J, H built from the last ``memory`` steps s = θ_{k+1} − θ_k and gradient
  changes y = ∇J_{k+1} − ∇J_k (the two-loop recursion), with c₂ = 0.9;
- Polak–Ribière+ CG: d₊ = −∇J₊ + β d, β = max(0, ∇J₊ᵀ(∇J₊ − ∇J) / ‖∇J‖²), with c₂ = 0.1
  (CG needs a more exact line search to stay conjugate).

Host reads: one per line-search evaluation (J, ∇J·d and ‖∇J‖∞ together), plus one at the start
(J, ‖∇J‖∞, ‖∇J‖²); a new direction's slope and ‖∇J‖² travel with the next search's first
evaluation. The loop's tests use these same numbers. Their cost-change criterion: with ``tol``
set, a fit also ends when an iteration changes J by at most 64 ε relative (rounding noise,
scikit-learn's choice for L-BFGS). Where no step lowers J beyond rounding the rule raises
:class:`~hml.optimize.loop.Stalled` (θ is a minimiser to working precision); where none lowers
it at all, :class:`~hml.optimize.loop.Failed` (the gradient is wrong).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hml.backends import ComputeContext
from hml.exceptions import DivergenceError
from hml.numerics import positive_part
from hml.optimize.line_search import Line, LineSearchFailed, Point, wolfe_step
from hml.optimize.loop import Evaluation, Failed, Objective, Stalled, dot, gradient_norm, total

__all__ = ["LBFGS", "ConjugateGradient"]

#: The cost change that is rounding noise, in units of the dtype's ε (scikit-learn's for L-BFGS).
_NOISE_ULPS = 64.0


@dataclass
class SearchState:
    """Where a line-search method stands: the current point and its ‖∇J‖², the direction and its
    slope φ'(0) (or both still on the device in ``pending``), the last accepted step."""

    point: Evaluation
    gg: float
    direction: Any
    slope: float
    pending: Any = None
    previous: Point | None = None  # the last accepted step ...
    previous_slope: float = math.nan  # ... and the slope φ'(0) it started from
    steepest_alpha: float | None = None  # the last step accepted along −∇J
    pairs: deque[tuple[Any, Any, float]] = field(default_factory=deque)  # L-BFGS: (s, y, ρ = 1/yᵀs)

    def restart(self) -> None:
        """Along −∇J from here: the curvature model went bad, or d was no descent direction."""
        self.direction, self.slope, self.previous = -self.point.gradient, -self.gg, None
        self.pairs.clear()


class _LineSearchRule:
    """What L-BFGS and CG share: the start, the search along d, the stall and failure rules."""

    name = ""
    c2 = 0.9
    cost_change_ulps: float | None = _NOISE_ULPS

    def init(self, point: Evaluation, ctx: ComputeContext) -> tuple[SearchState, Evaluation]:
        """Read J(θ₀), ‖∇J(θ₀)‖∞ and ‖∇J(θ₀)‖² (one read); the first direction is −∇J."""
        xp = ctx.xp
        gradient = point.gradient
        values = ctx.read(
            xp.stack([total(xp, point.cost), gradient_norm(xp, gradient), dot(xp, gradient, gradient)]), "initial cost"
        )
        f, gnorm, gg = (float(v) for v in values)
        if math.isfinite(f) and not math.isfinite(gg):
            raise DivergenceError(
                f"the cost at the initial parameters is {f}, but ‖∇J‖² is {gg}; check the data for huge values"
            )
        point = Evaluation(point.theta, point.cost, gradient, f, gnorm)
        return SearchState(point, gg, -gradient, -gg, pairs=self._pairs()), point

    def _pairs(self) -> deque[tuple[Any, Any, float]]:
        return deque()

    def update(
        self, state: SearchState, point: Evaluation, objective: Objective, ctx: ComputeContext
    ) -> tuple[SearchState, Evaluation]:
        """A strong-Wolfe step along d, restarting along −∇J where d fails; the new point and direction."""
        xp = ctx.xp
        assert point.f is not None and point.gnorm is not None  # init and update read both
        f, gnorm = point.f, point.gnorm
        noise = _NOISE_ULPS * float(xp.finfo(point.theta.dtype).eps)
        while True:
            if state.previous is None:
                # Along −∇J: at the start, the step whose first-order decrease α‖∇J‖² is J itself
                # (a loss is ≥ 0); on a restart, the last step taken along −∇J. Both are the right
                # size whatever the scale of X and y -- on X × s, ∇J grows s-fold and the step
                # must shrink s²-fold -- where a unit-ish step is |x|² times too long. Without
                # either, unit-ish length.
                if state.steepest_alpha is not None:
                    alpha: Any = state.steepest_alpha
                elif f > 0.0 and state.gg > 0.0:
                    alpha = f / state.gg
                else:
                    alpha = min(1.0, 1.0 / max(gnorm, 1e-300))
            else:
                alpha = self._first_trial(state, xp)
            line = Line(objective, ctx, point.theta, state.direction)
            first, extra = line.start(alpha, state.pending)
            if state.pending is not None:
                state.slope, state.gg = extra
                state.pending = None
                if state.slope >= 0:  # not a descent direction (CG after a loose line search)
                    state.restart()
                    continue
            try:
                step = wolfe_step(line, Point(0.0, f, state.slope), first, 1e-4, self.c2)
            except LineSearchFailed:
                if abs(first.f - f) <= noise * max(abs(f), 1e-300):
                    raise Stalled from None  # even the first trial changed J by rounding only
                if self._can_restart(state):
                    state.restart()
                    continue
                raise Failed(
                    "the line search found no step that lowers the cost",
                    "the cost is at the limit of floating-point precision, or the gradient is wrong",
                ) from None
            return self._accept(state, line, step, ctx)

    def _accept(
        self, state: SearchState, line: Line, step: Point, ctx: ComputeContext
    ) -> tuple[SearchState, Evaluation]:
        xp = ctx.xp
        theta, cost, gradient = line.arrays[step.alpha]
        if state.previous is None:
            state.steepest_alpha = step.alpha
        direction = self._next_direction(state, step, gradient, ctx)
        # The new direction's slope and ‖∇J‖² stay on the device, read with the next evaluation.
        # Lazy backends: computed now, or every later direction (built from this one) would drag
        # the whole history's graph along.
        state.direction, state.pending = ctx.backend.materialize(
            direction, xp.stack([dot(xp, gradient, direction), dot(xp, gradient, gradient)])
        )
        state.previous, state.previous_slope = step, state.slope
        state.point = Evaluation(theta, cost, gradient, step.f, step.gnorm)
        return state, state.point

    def _first_trial(self, state: SearchState, xp: Any) -> Any:
        return 1.0

    def _can_restart(self, state: SearchState) -> bool:
        raise NotImplementedError

    def _next_direction(self, state: SearchState, step: Point, gradient: Any, ctx: ComputeContext) -> Any:
        raise NotImplementedError


class LBFGS(_LineSearchRule):
    r"""Limited-memory BFGS (Liu & Nocedal, 1989): a quasi-Newton direction from the last ``memory``
    steps, a strong-Wolfe line search along it with c₂ = 0.9, and a unit first trial step once there
    are pairs (the direction is then already scaled). Before, the first trial step along −∇J is
    J(θ₀)/‖∇J(θ₀)‖², whose first-order decrease is J itself: right at any scale of the data for a loss
    ≥ 0 with its minimum near 0; subtract a large constant from a cost first (J = ½‖θ − 1‖² + 10¹¹
    stops at iteration 0, the line search unable to come back from a step 10¹¹ long).

    Parameters
    ----------
    memory : int, default=10
        M, the (s, y) pairs kept.

    Notes
    -----
    With the steps s_j = θ_{j+1} − θ_j and gradient changes y_j = ∇J(θ_{j+1}) − ∇J(θ_j) of the last
    M iterations, and ρ_j = 1 / y_jᵀs_j, the direction is d_k = −H_k ∇J(θ_k) for the inverse-Hessian
    approximation H_k that the BFGS updates of the kept pairs make of H⁰ = γI (γ = sᵀy / yᵀy of
    the newest pair; γ = 1 before there is one) -- computed, without forming H, by the two-loop
    recursion (Nocedal & Wright, Algorithm 7.4). Each kept pair j, oldest first, updates

    .. math::
        :name: lbfgs-direction

        H \leftarrow (I - \rho_j s_j y_j^\top)\, H \,(I - \rho_j y_j s_j^\top) + \rho_j s_j s_j^\top

    A pair enters only when y_jᵀs_j > 0 (by a margin), which keeps H positive definite, so d a
    descent direction; where the line search fails along d, the pairs are dropped and the
    search restarts along −∇J.
    """

    name = "lbfgs"
    c2 = 0.9

    def __init__(self, memory: int = 10):
        self.memory = memory

    def _pairs(self) -> deque[tuple[Any, Any, float]]:
        return deque(maxlen=self.memory)

    def _can_restart(self, state: SearchState) -> bool:
        return bool(state.pairs)  # there is curvature to drop

    def _next_direction(self, state: SearchState, step: Point, gradient: Any, ctx: ComputeContext) -> Any:
        s, y = ctx.backend.materialize(step.alpha * state.direction, gradient - state.point.gradient)
        ys = step.alpha * (step.slope - state.slope)  # yᵀs = α (φ'(α) − φ'(0)), already on the host
        if ys > 1e-10 * step.alpha * abs(state.slope):  # keep the model positive definite
            state.pairs.append((s, y, 1.0 / ys))
        return _two_loop(ctx.xp, gradient, state.pairs)


class ConjugateGradient(_LineSearchRule):
    r"""Polak–Ribière+ nonlinear conjugate gradient, with a strong-Wolfe line search (c₂ = 0.1: a
    more exact search than L-BFGS's keeps the directions conjugate); the first trial step repeats
    the last step's first-order change (along −∇J at the start: :class:`LBFGS`'s, J(θ₀)/‖∇J(θ₀)‖²). Works on θ of any shape (the original project passed a
    2-D θ to SciPy's CG, which current SciPy rejects).

    Notes
    -----
    From d₀ = −∇J(θ₀), each direction is the new steepest descent plus a share β of the last
    direction, g_k = ∇J(θ_k):

    .. math::
        :name: conjugate-gradient-direction

        d_{k+1} &= -g_{k+1} + \beta_{k+1} d_k \\
        \beta_{k+1} &= \max\Big(0, \frac{g_{k+1}^\top (g_{k+1} - g_k)}{\lVert g_k \rVert^2}\Big)

    The max(0, ·) (the "+") restarts along −∇J where Polak–Ribière's β would turn negative.
    """

    name = "cg"
    c2 = 0.1

    def _first_trial(self, state: SearchState, xp: Any) -> Any:
        # α₀ = α₋ φ'₋(0) / φ'(0), on the device (φ'(0) is read with this very evaluation);
        # if d is no descent direction, α₀ = 0 and the read restarts along −∇J.
        assert state.previous is not None
        slope = state.pending[0]
        descent = slope < 0
        return xp.where(
            descent,
            (state.previous.alpha * state.previous_slope) / xp.where(descent, slope, -1.0),
            xp.zeros_like(slope),
        )

    def _can_restart(self, state: SearchState) -> bool:
        return state.previous is not None  # d was a conjugate direction

    def _next_direction(self, state: SearchState, step: Point, gradient: Any, ctx: ComputeContext) -> Any:
        xp = ctx.xp
        beta = positive_part(dot(xp, gradient, gradient - state.point.gradient) / state.gg, xp)
        return -gradient + beta * state.direction


def _two_loop(xp: Any, gradient: Any, history: deque[tuple[Any, Any, float]]) -> Any:
    """d = −H∇J by the L-BFGS two-loop recursion over the last (s, y) pairs (Nocedal & Wright, Alg. 7.4).

    Every product stays on the device; H₀ = γI with γ = sᵀy / yᵀy of the newest pair.
    """
    q = gradient
    alphas = []
    for s, y, rho in reversed(history):
        a = rho * dot(xp, s, q)
        alphas.append(a)
        q = q - a * y
    if history:
        s, y, rho = history[-1]
        q = q * (1.0 / (rho * dot(xp, y, y)))
    for (s, y, rho), a in zip(history, reversed(alphas), strict=True):
        b = rho * dot(xp, y, q)
        q = q + (a - b) * s
    return -q
