"""Optimisers shared by every gradient-based model, written once against the array API.

An objective is a function ``theta -> (cost, gradient)`` returning a 0-d array and
an array shaped like ``theta``, both on the device. Computing both together lets a
model reuse its residual for the cost, so recording the cost history costs no
extra pass over the data.

An objective of a *separable* problem (one-vs-all logistic regression: K independent
classifiers trained as one matrix problem) may return its cost as a 1-D array of
the parts, J = Σₖ Jₖ; the optimisers then minimise the sum and also keep the
history of the parts (``OptimizeResult.cost_parts``) -- from the same pass.

Convergence scalars are read back to the host only every ``check_every``
iterations (``float(x)`` on a GPU array waits for the GPU, and on a Dask array
computes the graph); the cost history stays on the device until the end.

:func:`progress` lets a caller watch the iterations of any fit (a progress bar)
without adding a host read: the callback receives Python ints only.

``tol`` means the same for every optimiser here: stop once the largest gradient
component has fallen to ``tol`` times its size at the start,

    ‖∇J(θ_k)‖∞ ≤ tol · ‖∇J(θ₀)‖∞,

a first-order optimality test that, being relative, does not change when the data
(and so J) are rescaled. ``tol=None`` runs all ``max_iter`` iterations; a ``tol``
that ``max_iter`` does not reach ends the fit with a :class:`hml.ConvergenceWarning`.
Mini-batch descent, which never sees ∇J itself, tests the mean of an epoch's batch
gradients against the first batch's gradient.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hml.backends import ComputeContext
from hml.exceptions import ConvergenceWarning, DivergenceError, warn
from hml.numerics import positive_part

__all__ = [
    "OptimizeResult",
    "check_gradient",
    "conjugate_gradient",
    "gradient_descent",
    "largest_curvature",
    "lbfgs",
    "minibatch_gradient_descent",
    "minimize",
    "cost_callback",
    "progress",
    "progress_callback",
    "reached",
]

Objective = Callable[[Any], "tuple[Any, Any]"]
ProgressCallback = Callable[[int, int], None]
CostCallback = Callable[[int, float], None]

_progress: contextvars.ContextVar[tuple[ProgressCallback, CostCallback] | None] = contextvars.ContextVar(
    "hml_progress", default=None
)


@contextlib.contextmanager
def progress(callback: ProgressCallback, *, on_cost: CostCallback | None = None) -> Iterator[ProgressCallback]:
    """Call ``callback(iteration, max_iter)`` after every iteration (or epoch) of the fits run inside,
    and ``on_cost(iteration, cost)`` whenever the fit reads its cost back anyway.

    Every optimiser here and k-means' Lloyd iterations report. ``callback`` gets Python
    ints only, and ``on_cost`` a float the fit has already read for its own convergence
    test (once per cost window, line-search evaluation or Lloyd iteration), so watching a
    fit adds no GPU synchronisation. Local to the thread or asyncio task, like
    :func:`hml.use_backend`. Estimators' ``verbose=True`` uses it for a progress bar::

        from tqdm.auto import tqdm
        bar = tqdm(total=model.max_iter)
        with hml.optimize.progress(lambda iteration, max_iter: bar.update(1),
                                   on_cost=lambda iteration, cost: bar.set_postfix(cost=cost)):
            model.fit(X, y)
    """
    token = _progress.set((callback, on_cost or _no_cost))
    try:
        yield callback
    finally:
        _progress.reset(token)


def progress_callback() -> ProgressCallback:
    """The iteration callback :func:`progress` set for this context (a no-op when none is), looked up once per fit."""
    hooks = _progress.get()
    return _no_progress if hooks is None else hooks[0]


def cost_callback() -> CostCallback:
    """The ``on_cost`` callback :func:`progress` set for this context (a no-op when none is)."""
    hooks = _progress.get()
    return _no_cost if hooks is None else hooks[1]


def _no_progress(iteration: int, max_iter: int) -> None:
    pass


def _no_cost(iteration: int, cost: float) -> None:
    pass


def _gnorm(xp: Any, gradient: Any) -> Any:
    """‖∇J‖∞, the largest gradient component in size (a 0-d device array)."""
    return xp.max(xp.abs(gradient))


def reached(gnorm: float, initial_gnorm: float, tol: float | None) -> bool:
    """The stopping rule every optimiser shares: ‖∇J(θ_k)‖∞ ≤ tol · ‖∇J(θ₀)‖∞ (never, for ``tol=None``)."""
    return tol is not None and gnorm <= tol * initial_gnorm


def _total(xp: Any, cost: Any) -> Any:
    """J from an objective's cost: the cost itself, or the sum of its parts when it is 1-D."""
    return cost if cost.ndim == 0 else xp.sum(cost)


@dataclass
class OptimizeResult:
    """What an optimiser found.

    ``cost_history[k]`` is J(θ_k), the cost at the parameters iteration k started
    from (θ_0 is the initial guess), so it has ``n_iter`` entries. For an objective
    whose cost is 1-D (the parts Jₖ of a separable problem), ``cost_parts[k]`` holds
    the parts and ``cost_history`` their sum; otherwise ``cost_parts`` is None.
    """

    theta: Any
    cost_history: Any
    n_iter: int
    converged: bool
    cost_parts: Any = None


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
    """Batch gradient descent: θ ← θ − α ∇J(θ), for at most ``max_iter`` iterations.

    Stops early once ‖∇J(θ_k)‖∞ ≤ ``tol`` · ‖∇J(θ₀)‖∞ (see the module's docstring),
    tested every ``check_every`` iterations with the cost window's one host read.

    Raises :class:`hml.DivergenceError` when the cost becomes non-finite or grows past
    ``divergence_factor`` times its initial value -- the sign of a learning rate too
    large for the curvature of J; ``hint`` is appended to its advice (the caller knows
    what else would help, such as ``normalize=True``).
    """
    monitor = _CostWindow(ctx, tol, learning_rate, divergence_factor, hint)
    report = progress_callback()
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        cost, gradient = objective(theta)
        theta = theta - learning_rate * gradient
        if ctx.backend.lazy:
            # One pass over X per iteration and a graph that never spans two: a window of
            # unmaterialised iterations would hold every chunk of a streamed X until the last
            # of them had used it -- all of X in memory.
            theta, cost, gradient = ctx.backend.materialize(theta, cost, gradient)
        monitor.record(cost)
        if n_iter == 1:
            monitor.start(gradient)
        report(n_iter, max_iter)
        if n_iter % check_every and n_iter != max_iter:
            continue
        converged, (theta,) = monitor.check(n_iter, gradient, theta)
        if converged:
            break
    return monitor.result(theta, n_iter, converged, max_iter=max_iter)


class _CostWindow:
    """The costs since the last check, kept on the device and read back once per window.

    ``check`` reads the whole window in one transfer -- with ‖∇J‖∞ of the newest gradient
    (and, the first time, of the initial one given to ``start``): a GPU sync, or one Dask
    compute of the window, materialising the given arrays with it. It raises
    :class:`hml.DivergenceError` when the cost became non-finite or grew past
    ``divergence_factor`` × its first value, and reports convergence by :func:`reached`.
    Costs given as parts (1-D) are checked by their sum, and the parts are kept for the result.
    """

    def __init__(
        self, ctx: ComputeContext, tol: float | None, learning_rate: float, divergence_factor: float, hint: str = ""
    ):
        self.ctx, self.tol = ctx, tol
        self.learning_rate, self.divergence_factor, self.hint = learning_rate, divergence_factor, hint
        self.window: list[Any] = []  # device costs (0-d, or 1-D parts) since the last check
        self.history: list[Any] = []  # one device array of totals per checked window
        self.parts: list[Any] = []  # the same windows' parts, for separable objectives
        self.initial_cost: float | None = None
        self.initial_gnorm: Any = None  # ‖∇J(θ₀)‖∞: a device scalar until the first check reads it
        self.gnorm = math.inf  # ‖∇J‖∞ at the last check
        self.on_cost = cost_callback()

    def record(self, cost: Any) -> None:
        self.window.append(cost)

    def start(self, gradient: Any) -> None:
        """Remember ‖∇J(θ₀)‖∞, the scale ``tol`` is relative to (read with the first window)."""
        self.initial_gnorm = _gnorm(self.ctx.xp, gradient)

    def check(self, n_iter: int, gradient: Any, *arrays: Any) -> tuple[bool, tuple[Any, ...]]:
        """Read the window and ‖``gradient``‖∞; whether the fit converged, and ``arrays`` materialised."""
        xp = self.ctx.xp
        costs = xp.stack(self.window)
        norms = [_gnorm(xp, gradient)]
        if not isinstance(self.initial_gnorm, float):
            norms.append(self.initial_gnorm)
        norms = xp.stack(norms)
        if costs.ndim == 2:  # parts: computed with their sums, so a lazy backend keeps no graph of them
            *materialized, costs, parts, norms = self.ctx.backend.materialize(
                *arrays, xp.sum(costs, axis=1), costs, norms
            )
            self.parts.append(parts)
        else:
            *materialized, costs, norms = self.ctx.backend.materialize(*arrays, costs, norms)
        self.history.append(costs)
        self.window = []
        values = [float(c) for c in self.ctx.read(xp.concat([costs, norms]), "cost window")]
        n = costs.shape[0]
        self.gnorm = values[n]
        if len(values) > n + 1:
            self.initial_gnorm = values[n + 1]
        values = values[:n]
        if self.initial_cost is None:
            self.initial_cost = values[0]
        _check_divergence(values, self.initial_cost, self.divergence_factor, self.learning_rate, n_iter, self.hint)
        self.on_cost(n_iter, values[-1])
        return reached(self.gnorm, self.initial_gnorm, self.tol), tuple(materialized)

    def result(
        self, theta: Any, n_iter: int, converged: bool, *, max_iter: int, what: str = "gradient descent"
    ) -> OptimizeResult:
        xp = self.ctx.xp
        if not bool(self.ctx.read(xp.all(xp.isfinite(theta)), "final parameters are finite")):
            raise _divergence(self.learning_rate, n_iter, "the parameters overflowed", self.hint)
        if self.tol is not None and not converged:
            warn(
                _unconverged(
                    what,
                    self.tol,
                    self.gnorm,
                    self.initial_gnorm,
                    max_iter,
                    "increase max_iter or learning_rate, or loosen tol" + self.hint,
                ),
                ConvergenceWarning,
            )
        parts = xp.concat(self.parts) if self.parts else None
        return OptimizeResult(theta, xp.concat(self.history), n_iter, converged, parts)


def _unconverged(what: str, tol: float, gnorm: float, initial_gnorm: float, max_iter: int, advice: str) -> str:
    ratio = gnorm / initial_gnorm if initial_gnorm > 0 else math.inf
    return (
        f"{what} did not reach tol={tol} in max_iter={max_iter} iterations: the largest gradient component "
        f"fell to {ratio:.3g} of its start (‖∇J‖∞ = {gnorm:.3g}), not to tol; {advice}"
    )


def _check_divergence(
    window: list[float], initial: float, factor: float, learning_rate: float, iteration: int, hint: str = ""
) -> None:
    if not math.isfinite(initial):  # J(θ₀) itself overflowed: no learning rate can help
        raise _overflowed_at_start(initial)
    for cost in window:
        if not math.isfinite(cost):
            raise _divergence(learning_rate, iteration, "the cost became non-finite", hint)
        # The absolute floor keeps a zero initial cost (y ≡ 0) from flagging rounding noise.
        if cost > factor * max(initial, 1e-300) and cost > 1e-12:
            raise _divergence(learning_rate, iteration, f"the cost grew from {initial:.4g} to {cost:.4g}", hint)


def _overflowed_at_start(initial: float) -> DivergenceError:
    return DivergenceError(
        f"the cost at the starting parameters, J(θ₀), is already {initial}: the data's values are too large "
        "for floating-point arithmetic (their squares overflow). Rescale them -- divide y (and X) by their "
        "largest absolute value, or standardise them; a smaller learning rate cannot help"
    )


def _divergence(learning_rate: float, iteration: int, what: str, hint: str = "") -> DivergenceError:
    return DivergenceError(
        f"gradient descent diverged by iteration {iteration}: {what}. "
        f"learning_rate={learning_rate} is too large for this problem; try learning_rate={learning_rate / 10:g}{hint}"
    )


# -- mini-batch gradient descent with momentum ---------------------------------------
BatchObjective = Callable[[Any, Any], "tuple[Any, Any]"]


def minibatch_gradient_descent(
    objective: BatchObjective,
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
    """Mini-batch gradient descent with (heavy-ball) momentum, ``max_iter`` epochs.

    Each epoch visits the rows in a fresh order drawn on the host from ``rng`` (so the
    same seed gives the same batches on every backend) and, per batch B,
    v ← μ v − α ∇J_B(θ), θ ← θ + v, where ``objective(theta, rows)`` returns J_B and
    ∇J_B for the rows ``rows`` (an integer index array on the device). With μ = 0
    this is plain stochastic gradient descent.

    ``cost_history[k]`` is the mean of the batch costs of epoch k (the cost while θ moved).
    ``tol`` stops once the mean of an epoch's batch gradients, an estimate of ∇J, has
    ‖·‖∞ ≤ ``tol`` × that of the first batch's gradient (the module's rule, with estimates:
    with a constant learning rate the batches' noise may keep a small ``tol`` out of
    reach). Divergence is reported as by :func:`gradient_descent`.
    """
    xp = ctx.xp
    monitor = _CostWindow(ctx, tol, learning_rate, divergence_factor, hint)
    report = progress_callback()
    velocity = None
    converged = False
    n_iter = 0
    starts = range(0, n_samples, batch_size)
    for n_iter in range(1, max_iter + 1):
        order = ctx.asarray(rng.permutation(n_samples))
        batch_costs = []
        gradient_sum: Any = None
        for start in starts:
            rows = order[start : min(start + batch_size, n_samples)]
            cost, gradient = objective(theta, rows)
            if velocity is None:
                monitor.start(gradient)
            batch_costs.append(cost)
            gradient_sum = gradient if gradient_sum is None else gradient_sum + gradient
            step = -learning_rate * gradient
            velocity = step if velocity is None or momentum == 0.0 else momentum * velocity + step
            theta = theta + velocity
        monitor.record(xp.mean(xp.stack(batch_costs), axis=0))
        report(n_iter, max_iter)
        if n_iter % check_every and n_iter != max_iter:
            continue
        converged, (theta, velocity) = monitor.check(n_iter, gradient_sum / len(starts), theta, velocity)
        if converged:
            break
    return monitor.result(theta, n_iter, converged, max_iter=max_iter, what="mini-batch gradient descent")


# -- line search, conjugate gradient, L-BFGS ------------------------------------------
class _LineSearchFailed(Exception):
    pass


@dataclass(frozen=True)
class _Point:
    """One point of a line search: the step α, φ(α) = J(θ + αd), φ'(α) = ∇J(θ + αd)·d and
    ‖∇J(θ + αd)‖∞ (NaN where not evaluated: the origin)."""

    alpha: float
    f: float
    slope: float
    gnorm: float = math.nan


class _Line:
    """φ(α) = J(θ + α d) along a search direction, one host read per evaluation.

    ``evaluate(α)`` returns the :class:`_Point` at α -- φ, φ' and ‖∇J‖∞ read back together,
    in one transfer -- and keeps the device arrays (θ + αd, J, ∇J) of each point in
    ``arrays[α]`` for the caller.

    ``start(α, extra)`` is the first evaluation: α may still be a 0-d device array and
    ``extra`` device scalars (the new direction's φ'(0) and ‖∇J‖²), read in the same
    transfer, so an iteration of L-BFGS or CG costs exactly one read per evaluation.
    """

    def __init__(self, objective: Objective, ctx: ComputeContext, theta: Any, direction: Any):
        self.objective, self.ctx, self.theta, self.direction = objective, ctx, theta, direction
        self.arrays: dict[float, tuple[Any, Any, Any]] = {}

    def start(self, alpha: Any, extra: Any = None) -> tuple[_Point, list[float]]:
        """The first evaluation, and the ``extra`` values, as floats."""
        xp = self.ctx.xp
        on_host = isinstance(alpha, float)
        more = ([] if on_host else [xp.reshape(alpha, (1,))]) + ([] if extra is None else [extra])
        values, arrays = self._evaluate(alpha, more)
        if not on_host:
            alpha = values.pop(3)
        self.arrays[alpha] = arrays
        return _Point(alpha, *values[:3]), values[3:]

    def evaluate(self, alpha: float) -> _Point:
        values, self.arrays[alpha] = self._evaluate(alpha, [])
        return _Point(alpha, *values)

    def _evaluate(self, alpha: Any, more: list[Any]) -> tuple[list[float], tuple[Any, Any, Any]]:
        xp = self.ctx.xp
        theta = self.theta + alpha * self.direction
        cost, gradient = self.objective(theta)
        scalars = xp.concat(
            [xp.stack([_total(xp, cost), _dot(xp, gradient, self.direction), xp.max(xp.abs(gradient))]), *more]
        )
        theta, cost, gradient, scalars = self.ctx.backend.materialize(theta, cost, gradient, scalars)
        values = [float(v) for v in self.ctx.read(scalars, "line search")]
        return values, (theta, cost, gradient)


def _dot(xp: Any, a: Any, b: Any) -> Any:
    """Σ a⊙b over every axis (the Frobenius inner product), a 0-d array."""
    return xp.sum(a * b)


def _cubic_minimum(lo: _Point, hi: _Point) -> float:
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


def _wolfe_step(line: _Line, origin: _Point, first: _Point, c1: float, c2: float, max_evaluations: int = 30) -> _Point:
    """A step satisfying the strong Wolfe conditions (Nocedal & Wright, Algorithms 3.5 and 3.6):

        φ(α) ≤ φ(0) + c₁ α φ'(0)        (sufficient decrease)
        |φ'(α)| ≤ c₂ |φ'(0)|            (curvature)

    ``origin`` is α = 0 (φ(0), φ'(0)); ``first`` the first trial, already evaluated by
    :meth:`_Line.start`. Raises _LineSearchFailed after ``max_evaluations``.
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
    raise _LineSearchFailed


def _zoom(line: _Line, origin: _Point, lo: _Point, hi: _Point, c1: float, c2: float, budget: int) -> _Point:
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
    raise _LineSearchFailed


class _LBFGSDirection:
    """d = −H∇J from the last ``memory`` (s, y) pairs; a unit first trial step (the step is already scaled)."""

    name, c2 = "lbfgs", 0.9

    def __init__(self, ctx: ComputeContext, memory: int):
        self.ctx = ctx
        self.history: deque[tuple[Any, Any, Any]] = deque(maxlen=memory)  # (s, y, ρ = 1/yᵀs)

    def reset(self) -> None:
        self.history.clear()

    def can_restart(self, previous: _Point | None) -> bool:
        """Whether a failed line search is worth a restart along −∇J: there is curvature to drop."""
        return bool(self.history)

    def first_trial(self, previous: _Point, previous_slope: float, pending: Any) -> Any:
        return 1.0

    def next(self, step: _Point, slope: float, direction: Any, gradient: Any, gradient_new: Any, gg: float) -> Any:
        s, y = self.ctx.backend.materialize(step.alpha * direction, gradient_new - gradient)
        ys = step.alpha * (step.slope - slope)  # yᵀs = α (φ'(α) − φ'(0)), already on the host
        if ys > 1e-10 * step.alpha * abs(slope):  # keep the model positive definite
            self.history.append((s, y, 1.0 / ys))
        return _two_loop(self.ctx.xp, gradient_new, self.history)


class _PolakRibiereDirection:
    """d₊ = −∇J₊ + β d, β = max(0, ∇J₊ᵀ(∇J₊ − ∇J) / ‖∇J‖²), on the device; the first trial step
    repeats the last step's first-order change."""

    name, c2 = "cg", 0.1  # CG needs a more exact line search to stay conjugate

    def __init__(self, ctx: ComputeContext):
        self.ctx = ctx

    def reset(self) -> None:
        pass

    def can_restart(self, previous: _Point | None) -> bool:
        """Whether a failed line search is worth a restart along −∇J: d was a conjugate direction."""
        return previous is not None

    def first_trial(self, previous: _Point, previous_slope: float, pending: Any) -> Any:
        # α₀ = α₋ φ'₋(0) / φ'(0), on the device (φ'(0) is read with this very evaluation);
        # if d is no descent direction, α₀ = 0 and the read restarts along −∇J.
        xp = self.ctx.xp
        descent = pending[0] < 0
        return xp.where(
            descent, (previous.alpha * previous_slope) / xp.where(descent, pending[0], -1.0), xp.zeros_like(pending[0])
        )

    def next(self, step: _Point, slope: float, direction: Any, gradient: Any, gradient_new: Any, gg: float) -> Any:
        xp = self.ctx.xp
        beta = positive_part(_dot(xp, gradient_new, gradient_new - gradient) / gg, xp)
        return -gradient_new + beta * direction


def _quasi_newton(
    objective: Objective, theta: Any, *, ctx: ComputeContext, direction_rule: Any, max_iter: int, tol: float | None
) -> OptimizeResult:
    """Line-search descent along the directions of ``direction_rule`` (L-BFGS or Polak–Ribière+).

    Stops when ‖∇J(θ_k)‖∞ ≤ ``tol`` · ‖∇J(θ₀)‖∞ (:func:`reached`), or when the relative
    cost change is rounding noise (64 ε) -- no step can do better.
    """
    xp = ctx.xp
    rule = direction_rule
    eps = float(xp.finfo(theta.dtype).eps)
    ftol = 64.0 * eps  # a cost change this small is rounding noise (scikit-learn's choice for L-BFGS)
    report, on_cost = progress_callback(), cost_callback()
    # Materialised before they are read: both are used again (the history, the first new
    # direction), and on Dask a graph computed twice in two calls reuses its keys with a
    # different task fusion, which a distributed scheduler warns can deadlock.
    cost, gradient = ctx.backend.materialize(*objective(theta))
    scalars = ctx.read(xp.stack([_total(xp, cost), _gnorm(xp, gradient), _dot(xp, gradient, gradient)]), "initial cost")
    f, gnorm, gg = (float(v) for v in scalars)
    initial_gnorm = gnorm
    if not (math.isfinite(f) and math.isfinite(gg)):
        raise DivergenceError(
            f"the cost at the initial parameters is {f}, and ‖∇J‖² {gg}; check the data for huge values"
        )
    costs = [cost]
    direction = -gradient
    slope = -gg
    # The slope φ'(0) = ∇Jᵀd and ‖∇J‖² of a new direction stay on the device and are read
    # with the next line search's first evaluation (one read per evaluation in all).
    pending = None
    previous: _Point | None = None  # the last accepted step, and the slope φ'(0) it started from
    previous_slope = math.nan
    steepest_alpha: float | None = None  # the last step accepted along −∇J
    converged = reached(gnorm, initial_gnorm, tol)
    n_iter = 0
    while not converged and n_iter < max_iter:
        n_iter += 1
        if previous is None:
            # Along −∇J: at the start, the step whose first-order decrease α‖∇J‖² is J itself
            # (a loss is ≥ 0); on a restart, the last step taken along −∇J. Both are the right
            # size whatever the scale of X and y -- on X × s, ∇J grows s-fold and the step
            # must shrink s²-fold -- where a unit-ish step is |x|² times too long. Without
            # either, unit-ish length.
            if steepest_alpha is not None:
                alpha = steepest_alpha
            elif f > 0.0 and gg > 0.0:
                alpha = f / gg
            else:
                alpha = min(1.0, 1.0 / max(gnorm, 1e-300))
        else:
            alpha = rule.first_trial(previous, previous_slope, pending)
        line = _Line(objective, ctx, theta, direction)
        first, extra = line.start(alpha, pending)
        if pending is not None:
            slope, gg = extra
            pending = None
            if slope >= 0:  # not a descent direction (CG after a loose line search): restart along −∇J
                rule.reset()
                direction, slope, previous = -gradient, -gg, None
                n_iter -= 1
                continue
        try:
            step = _wolfe_step(line, _Point(0.0, f, slope), first, 1e-4, rule.c2)
        except _LineSearchFailed:
            if abs(first.f - f) <= ftol * max(abs(f), 1e-300):
                # Even the first trial step changed J by rounding noise only: J is at its floor.
                converged = True
                break
            if rule.can_restart(previous):
                rule.reset()  # the curvature model went bad: restart from steepest descent
                direction, slope, previous = -gradient, -gg, None
                n_iter -= 1
                continue
            warn(
                f"{rule.name}: the line search found no step that lowers the cost after {n_iter} iteration(s); "
                "the cost is at the limit of floating-point precision, or the gradient is wrong",
                ConvergenceWarning,
            )
            break
        theta_new, cost_new, gradient_new = line.arrays[step.alpha]
        costs.append(cost_new)
        # Relative to the cost itself (no floor of 1, unlike SciPy), so rescaling the data changes nothing.
        change = abs(f - step.f) / max(abs(f), abs(step.f), 1e-300)
        if previous is None:
            steepest_alpha = step.alpha
        direction = rule.next(step, slope, direction, gradient, gradient_new, gg)
        theta, gradient, f, gnorm = theta_new, gradient_new, step.f, step.gnorm
        pending = xp.stack([_dot(xp, gradient, direction), _dot(xp, gradient, gradient)])
        # Lazy backends: compute the new direction now, or every later direction (built
        # from this one) would drag the whole history's graph along.
        direction, pending = ctx.backend.materialize(direction, pending)
        previous, previous_slope = step, slope
        converged = reached(gnorm, initial_gnorm, tol) or change <= ftol
        report(n_iter, max_iter)
        on_cost(n_iter, f)
    if not converged and tol is not None:
        warn(
            _unconverged(rule.name, tol, gnorm, initial_gnorm, max_iter, "increase max_iter, or loosen tol"),
            ConvergenceWarning,
        )
    costs = xp.stack(costs)
    if costs.ndim == 2:
        return OptimizeResult(theta, xp.sum(costs, axis=1), n_iter, converged, costs)
    return OptimizeResult(theta, costs, n_iter, converged)


def _two_loop(xp: Any, gradient: Any, history: deque[tuple[Any, Any, Any]]) -> Any:
    """d = −H∇J by the L-BFGS two-loop recursion over the last (s, y) pairs (Nocedal & Wright, Alg. 7.4).

    Every product stays on the device; H₀ = γI with γ = sᵀy / yᵀy of the newest pair.
    """
    q = gradient
    alphas = []
    for s, y, rho in reversed(history):
        a = rho * _dot(xp, s, q)
        alphas.append(a)
        q = q - a * y
    if history:
        s, y, rho = history[-1]
        q = q * (1.0 / (rho * _dot(xp, y, y)))
    for (s, y, rho), a in zip(history, reversed(alphas), strict=True):
        b = rho * _dot(xp, y, q)
        q = q + (a - b) * s
    return -q


def lbfgs(
    objective: Objective,
    theta: Any,
    *,
    ctx: ComputeContext,
    max_iter: int = 100,
    tol: float | None = 1e-4,
    memory: int = 10,
) -> OptimizeResult:
    """Limited-memory BFGS with a strong-Wolfe line search (c₁ = 1e-4, c₂ = 0.9).

    θ_{k+1} = θ_k + α_k d_k with d_k = −H_k ∇J(θ_k), H_k built from the last ``memory``
    steps s = θ_{k+1} − θ_k and gradient changes y. Stops when ‖∇J(θ_k)‖∞ ≤ ``tol`` · ‖∇J(θ₀)‖∞
    or the relative cost change falls to 64 ε (rounding noise, scikit-learn's choice for L-BFGS).

    Host reads: each line-search evaluation reads J, ∇J·d and ‖∇J‖∞ in one transfer --
    the Wolfe test needs them -- and the convergence test uses those same numbers, so
    checking convergence costs no extra GPU synchronisation. Usually one evaluation per iteration.
    """
    return _quasi_newton(
        objective, theta, ctx=ctx, direction_rule=_LBFGSDirection(ctx, memory), max_iter=max_iter, tol=tol
    )


def conjugate_gradient(
    objective: Objective, theta: Any, *, ctx: ComputeContext, max_iter: int = 100, tol: float | None = 1e-4
) -> OptimizeResult:
    """Nonlinear conjugate gradient, Polak-Ribière+ with a strong-Wolfe line search (c₂ = 0.1).

    d₀ = −∇J₀; d_{k+1} = −∇J_{k+1} + β d_k, β = max(0, ∇J_{k+1}ᵀ(∇J_{k+1} − ∇J_k) / ‖∇J_k‖²),
    restarting along −∇J whenever d is not a descent direction. Works on θ of any shape
    (the original project passed a 2-D θ to SciPy's CG, which current SciPy rejects).
    Stopping rule and host reads as :func:`lbfgs`.
    """
    return _quasi_newton(
        objective, theta, ctx=ctx, direction_rule=_PolakRibiereDirection(ctx), max_iter=max_iter, tol=tol
    )


def minimize(
    objective: Objective,
    theta: Any,
    *,
    ctx: ComputeContext,
    method: str,
    max_iter: int,
    tol: float | None,
    learning_rate: float = 1.0,
    hint: str = "",
) -> OptimizeResult:
    """Dispatch to ``"gd"`` (:func:`gradient_descent`, with ``hint``), ``"cg"`` or ``"lbfgs"``.

    ``tol`` means the same for all three (the module's rule); ``None`` runs ``max_iter``
    iterations (the line-search methods still stop where no step can lower the cost).
    """
    if method == "gd":
        return gradient_descent(
            objective, theta, ctx=ctx, learning_rate=learning_rate, max_iter=max_iter, tol=tol, hint=hint
        )
    if method == "cg":
        return conjugate_gradient(objective, theta, ctx=ctx, max_iter=max_iter, tol=tol)
    if method == "lbfgs":
        return lbfgs(objective, theta, ctx=ctx, max_iter=max_iter, tol=tol)
    raise ValueError(f"method must be one of ['gd', 'cg', 'lbfgs']; got {method!r}")


def largest_curvature(
    objective: Objective, theta: Any, *, ctx: ComputeContext, iterations: int = 20, seed: int = 0
) -> float:
    """λ_max, the largest eigenvalue of the Hessian H of a quadratic J, by power iteration.

    H is never formed: for a quadratic, H v = ∇J(θ + v) − ∇J(θ), one objective call
    (two GEMVs) per iteration, and λ ≈ vᵀHv for the unit vector v after ``iterations``
    steps. The estimate approaches λ_max from below, and 1/λ is then a step for which
    gradient descent on J cannot diverge (it does for steps past 2/λ_max) and makes
    progress along every direction. One host read, at the end.
    """
    xp = ctx.xp
    cost, gradient = objective(theta)
    # A generic start (a fixed seed, so every backend takes the same steps): any vector
    # not orthogonal to the top eigenvector converges to it.
    v = ctx.asarray(np.random.default_rng(seed).standard_normal(tuple(theta.shape)), dtype=theta.dtype)
    v = v / xp.sqrt(_dot(xp, v, v))
    curvature = xp.zeros((), dtype=theta.dtype, device=ctx.device)
    tiny = xp.asarray(float(xp.finfo(theta.dtype).smallest_normal), dtype=theta.dtype, device=ctx.device)
    for _ in range(iterations):
        hv = objective(theta + v)[1] - gradient
        curvature = _dot(xp, v, hv)
        # ‖Hv‖ as s‖Hv/s‖ with s = max|Hv|: (Hv)ᵀ(Hv) overflows once λ ≳ 1e154 (X ≳ 1e77 unscaled)
        # though λ itself does not. `tiny` keeps a flat J (H v = 0) from dividing by zero; λ is then 0.
        largest = xp.maximum(xp.max(xp.abs(hv)), tiny)
        unit = hv / largest
        v = unit / xp.sqrt(_dot(xp, unit, unit))
        v, curvature = ctx.backend.materialize(v, curvature)  # lazy backends: one small graph per step
    curvature, initial = (float(v) for v in ctx.read(xp.stack([curvature, _total(xp, cost)]), "largest curvature"))
    if not math.isfinite(initial):
        raise _overflowed_at_start(initial)
    if not math.isfinite(curvature):
        raise DivergenceError(f"the largest curvature of J is not finite ({curvature}); check the data for huge values")
    return curvature


def check_gradient(
    objective: Objective, theta: Any, *, ctx: ComputeContext, epsilon: float = 1e-6, coordinates: Any = None
) -> float:
    """Relative error between ``objective``'s gradient and central finite differences.

        gᵢ ≈ (J(θ + ε eᵢ) − J(θ − ε eᵢ)) / (2ε),   error = ‖g − ĝ‖₂ / max(‖g‖₂, ‖ĝ‖₂)

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
        plus, minus = _total(xp, objective(theta + step)[0]), _total(xp, objective(theta - step)[0])
        plus, minus = ctx.read(xp.stack([plus, minus]), "gradient check")
        numeric.append((float(plus) - float(minus)) / (2.0 * epsilon))
        analytic.append(float(flat_gradient[i]))
    difference = np.linalg.norm(np.subtract(analytic, numeric))
    scale = max(float(np.linalg.norm(analytic)), float(np.linalg.norm(numeric)), 1e-300)
    return float(difference / scale)
