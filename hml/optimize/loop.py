"""The optimisation loop -- the only one in hml -- and what every method shares: the result,
the stopping rule, the host reads, divergence, progress and the cost history.

A method is a small *rule* (:mod:`hml.optimize.rules`, :mod:`hml.optimize.quasi_newton`) and
the rows it sees each iteration a *data source* (all rows, or :class:`~hml.optimize.batches.MiniBatches`);
:func:`minimize` runs any rule on any source it supports. See :mod:`hml.optimize` for the contract.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import array_api_compat

from hml.backends import ComputeContext
from hml.exceptions import ConvergenceWarning, DivergenceError, warn
from hml.optimize.progress import cost_callback, progress_callback

__all__ = [
    "Evaluation",
    "Failed",
    "FullBatch",
    "Objective",
    "OptimizeResult",
    "Rule",
    "Source",
    "Stalled",
    "StepRule",
    "dot",
    "gradient_norm",
    "minimize",
    "reached",
    "total",
]

Objective = Callable[..., "tuple[Any, Any]"]


def total(xp: Any, cost: Any) -> Any:
    """J from an objective's cost: the cost itself, or the sum of its parts when it is 1-D."""
    return cost if cost.ndim == 0 else xp.sum(cost)


def dot(xp: Any, a: Any, b: Any) -> Any:
    """Σ a⊙b over every axis (the Frobenius inner product), a 0-d array."""
    return xp.sum(a * b)


def gradient_norm(xp: Any, gradient: Any) -> Any:
    """‖∇J‖∞, the largest gradient component in size (a 0-d device array)."""
    return xp.max(xp.abs(gradient))


def reached(gnorm: float, initial_gnorm: float, tol: float | None) -> bool:
    r"""The stopping rule of every method: whether the largest gradient component ``gnorm`` has fallen
    to ``tol`` times its size at the start, ``initial_gnorm`` (never, for ``tol=None``):

    .. math::
        :name: stopping-rule

        \lVert \nabla J(\theta_k) \rVert_\infty \le \mathrm{tol} \cdot \lVert \nabla J(\theta_0) \rVert_\infty
    """
    return tol is not None and gnorm <= tol * initial_gnorm


@dataclass(frozen=True)
class Evaluation:
    """J and ∇J at θ, on the device; ``f`` and ``gnorm`` (J and ‖∇J‖∞) on the host when the method
    has already read them (a line search), so the loop tests them without a read of its own.

    A mini-batch epoch reports its mean batch cost and gradient here, estimates of J and ∇J."""

    theta: Any
    cost: Any
    gradient: Any
    f: float | None = None
    gnorm: float | None = None


class Stalled(Exception):
    """No step lowers J beyond rounding: θ is a minimiser to the precision of the arithmetic."""


class Failed(Exception):
    """The method cannot go on: the loop ends there, with a ConvergenceWarning saying ``what`` happened
    and ``why`` it may have."""

    def __init__(self, what: str, why: str):
        super().__init__(what, why)
        self.what, self.why = what, why


class Rule(Protocol):
    """An optimisation method: ``init`` its state from the evaluation at θ₀, then ``update`` it once
    per iteration, returning the state and the evaluation at the new θ. Rules that step along a
    given gradient derive from :class:`StepRule`, which mini-batches can drive too."""

    name: str
    #: The relative change of J over an iteration at which a fit with ``tol`` set ends ("cost change"),
    #: in units of the dtype's ε; None: the method has no such criterion.
    cost_change_ulps: float | None

    def init(self, point: Evaluation, ctx: ComputeContext) -> tuple[Any, Evaluation]:
        """The state to start from, and the evaluation at θ₀ (with J and ‖∇J‖∞ on the host if read)."""
        ...

    def update(
        self, state: Any, point: Evaluation, objective: Objective, ctx: ComputeContext
    ) -> tuple[Any, Evaluation]:
        """One iteration from ``point``: the new state, and the evaluation at the new θ."""
        ...


class StepRule:
    """A rule θ ← step(θ, ∇J, state): gradient descent, momentum, Adam (:class:`hml.optimize.GradientDescent`, ...).

    A subclass writes ``initial_state(theta, ctx)`` and ``step(theta, gradient, state)``; a full-batch
    iteration is one step then one evaluation at the new θ, whose gradient the next step uses."""

    name = ""
    learning_rate = 1.0
    cost_change_ulps: float | None = None

    def initial_state(self, theta: Any, ctx: ComputeContext) -> tuple[Any, ...]:
        """The rule's arrays before the first step (none, for plain gradient descent)."""
        return ()

    def step(self, theta: Any, gradient: Any, state: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        """θ and the state after one step along ``gradient`` (∇J, or a batch's estimate of it)."""
        raise NotImplementedError

    def init(self, point: Evaluation, ctx: ComputeContext) -> tuple[Any, Evaluation]:
        """:meth:`initial_state` at θ₀; the evaluation at θ₀ as it is."""
        return self.initial_state(point.theta, ctx), point

    def update(
        self, state: Any, point: Evaluation, objective: Objective, ctx: ComputeContext
    ) -> tuple[Any, Evaluation]:
        """One full-batch iteration: a :meth:`step` along ∇J at ``point``, then J and ∇J at the new θ."""
        theta, state = self.step(point.theta, point.gradient, state)
        cost, gradient = objective(theta)
        if ctx.backend.lazy:
            # One pass over X per iteration and a graph that never spans two: a window of
            # unmaterialised iterations would hold every chunk of a streamed X until the last
            # of them had used it -- all of X in memory.
            theta, cost, gradient, *rest = ctx.backend.materialize(theta, cost, gradient, *state)
            state = tuple(rest)
        return state, Evaluation(theta, cost, gradient)


class Source(Protocol):
    """Which rows an iteration sees: :class:`FullBatch` or :class:`~hml.optimize.batches.MiniBatches`."""

    name: str
    #: Iterations between the loop's reads when the rule reads nothing itself.
    check_every: int

    def initial(self, objective: Objective, theta: Any, ctx: ComputeContext, gradient: bool = True) -> Evaluation:
        """J(θ₀) and ∇J(θ₀) on all rows (without ``gradient``, the gradient may be None: no tolerance needs it)."""
        ...

    def iterate(
        self, rule: Rule, state: Any, point: Evaluation, objective: Objective, ctx: ComputeContext
    ) -> tuple[Any, Evaluation]:
        """One iteration of ``rule`` from ``point``: the new state and what the loop records."""
        ...


class FullBatch:
    """Every iteration on all rows: the objective is ``theta -> (J, ∇J)``."""

    name = ""
    check_every = 10

    def initial(self, objective: Objective, theta: Any, ctx: ComputeContext, gradient: bool = True) -> Evaluation:
        """J(θ₀) and ∇J(θ₀): one evaluation, with or without ``gradient`` (the first iteration steps along it)."""
        cost, first_gradient = objective(theta)
        # Materialised: the first iteration and the first read both use them (on Dask a graph
        # computed twice, in two calls, reuses its keys with a different task fusion).
        return Evaluation(theta, *ctx.backend.materialize(cost, first_gradient))

    def iterate(
        self, rule: Rule, state: Any, point: Evaluation, objective: Objective, ctx: ComputeContext
    ) -> tuple[Any, Evaluation]:
        """The rule's own update, on all rows."""
        return rule.update(state, point, objective, ctx)


@dataclass
class OptimizeResult:
    """What :func:`minimize` found.

    ``cost_history[k]`` is J(θ_k), k = 0 … ``n_iter``: it starts with the cost at the initial
    guess and has ``n_iter + 1`` entries whatever the method (mini-batches: J(θ₀) on all rows,
    then each epoch's mean batch cost). For an objective whose cost is 1-D (the parts Jₖ of a
    separable problem), ``cost_parts[k]`` holds the parts and ``cost_history`` their sum;
    otherwise ``cost_parts`` is None. ``stop`` says why the loop ended: ``"tol"`` (the gradient
    test), ``"cost change"`` (the line-search methods' criterion), ``"cost floor"`` (no step
    lowers J beyond rounding), ``"max_iter"``, ``"line search failed"``, or ``"callback"`` (the
    caller's early stopping). ``state`` is the
    rule's final state (velocity, Adam's moments, the L-BFGS pairs).
    """

    theta: Any
    cost_history: Any
    n_iter: int
    converged: bool
    cost_parts: Any = None
    stop: str = "max_iter"
    state: Any = None


def minimize(
    objective: Objective,
    theta: Any,
    *,
    ctx: ComputeContext,
    rule: Rule,
    max_iter: int,
    tol: float | None,
    batches: Source | None = None,
    check_every: int | None = None,
    divergence_factor: float = 10.0,
    hint: str = "",
    start: Evaluation | None = None,
    callback: Callable[[int, Evaluation], bool] | None = None,
    state: Any = None,
) -> OptimizeResult:
    """Minimise J from ``theta`` with ``rule`` for at most ``max_iter`` iterations (epochs, with ``batches``).

    The one loop: it evaluates J(θ₀) and ∇J(θ₀), lets the rule update θ once per iteration, and
    owns what every method shares -- the stopping test of :func:`reached` (and the
    rule's cost-change criterion, when it has one and ``tol`` is set; ``tol=None`` runs exactly
    ``max_iter`` iterations), the host reads (the rule's own, or one per ``check_every``
    iterations: the costs since the last read with ‖∇J‖∞), divergence (J non-finite, or above
    ``divergence_factor`` × J(θ₀): :class:`hml.DivergenceError`, with ``hint`` added to its
    advice), :func:`~hml.optimize.progress` and the cost history. ``start``: the evaluation at
    ``theta``, when the caller already has it (a warm start), instead of a new one. ``callback(k,
    point)``, after each iteration k: True ends the loop, converged (``stop="callback"``: early
    stopping on a validation score). ``state``: the rule's state to go on from (a step rule's velocity or
    Adam's moments, from an earlier result's ``state``: incremental fits), instead of a fresh one.
    """
    source: Source = batches if batches is not None else FullBatch()
    # Concrete before its first use: on Dask, slices of a lazy θ₀ taken in two graphs (the first
    # evaluation, the first batch) would reuse their keys with a different task fusion.
    if start is None:
        (theta,) = ctx.backend.materialize(theta)
        start = source.initial(objective, theta, ctx, gradient=tol is not None)
    if state is None:
        state, point = rule.init(start, ctx)
    else:
        point = start
    monitor = _Monitor(ctx, rule, source, tol, check_every or source.check_every, max_iter, divergence_factor, hint)
    monitor.start(point)
    n_iter = 0
    while n_iter < max_iter and monitor.stop is None:
        n_iter += 1
        try:
            state, point = source.iterate(rule, state, point, objective, ctx)
        except Stalled:
            if tol is not None:  # a minimiser to working precision: the gradient can fall no further
                n_iter -= 1
                monitor.stop, monitor.converged = "cost floor", True
                break
            for iteration in range(n_iter, max_iter + 1):  # tol=None: every iteration, each keeping θ
                monitor.record(iteration, point)
            n_iter = max_iter
            break
        except Failed as failure:
            n_iter -= 1
            monitor.stop = "line search failed"
            warn(f"{rule.name}: {failure.what} after {n_iter} iteration(s); {failure.why}", ConvergenceWarning)
            break
        monitor.record(n_iter, point)
        # The iterate that met tol is seen too: early stopping scored every one but it, and kept θ₀ from a stop
        # at the first.
        if callback is not None and monitor.stop in (None, "tol", "cost change") and callback(n_iter, point):
            if monitor.stop is None:
                monitor.stop, monitor.converged = "callback", True
    return monitor.result(point, n_iter, state)


class _Monitor:
    """The costs and gradient norms of the loop: on the device until read, read in batches.

    A point whose J and ‖∇J‖∞ the rule has already read (a line search) is tested at once, with
    no read; otherwise the costs since the last read are read every ``check_every`` iterations
    (and at the last), with ‖∇J‖∞ of the newest gradient -- and, the first time, of ∇J(θ₀) and
    J(θ₀) -- in one transfer (a GPU sync, or one Dask compute, which materialises them).
    """

    def __init__(
        self,
        ctx: ComputeContext,
        rule: Rule,
        source: Source,
        tol: float | None,
        check_every: int,
        max_iter: int,
        divergence_factor: float,
        hint: str,
    ):
        self.ctx, self.rule, self.source, self.tol = ctx, rule, source, tol
        self.check_every, self.max_iter = check_every, max_iter
        self.divergence_factor, self.hint = divergence_factor, hint
        self.window: list[Any] = []  # device costs (0-d, or 1-D parts) not yet read
        self.history: list[Any] = []  # device arrays of totals, one per read window
        self.parts: list[Any] = []  # the same windows' parts, for separable objectives
        self.initial_cost: float | None = None
        self.initial_gnorm: Any = None  # ‖∇J(θ₀)‖∞: a device scalar until the first read
        self.gnorm = math.inf  # ‖∇J‖∞ at the last test
        self.last_cost: float | None = None
        self.stop: str | None = None
        self.converged = False
        self.on_cost, self.report = cost_callback(), progress_callback()
        self.name = f"{source.name}{rule.name}"

    def start(self, point: Evaluation) -> None:
        self.window.append(point.cost)
        if point.f is not None and point.gnorm is not None:
            self.initial_gnorm = point.gnorm
            self._test(0, [point.f], point.gnorm)
        elif point.gradient is None:  # a start without ∇J(θ₀): no tolerance compares with it
            self.initial_gnorm = math.nan
        else:
            self.initial_gnorm = gradient_norm(self.ctx.xp, point.gradient)

    def record(self, n_iter: int, point: Evaluation) -> None:
        self.window.append(point.cost)
        if point.f is not None and point.gnorm is not None:
            self._test(n_iter, [point.f], point.gnorm)
        elif n_iter % self.check_every == 0 or n_iter == self.max_iter:
            self._read(n_iter, point.gradient)
        self.report(n_iter, self.max_iter)

    def _flush(self) -> Any:
        """The window as one device array of totals (its parts kept), materialised; the window emptied."""
        xp = self.ctx.xp
        costs = xp.stack(self.window)
        self.window = []
        if costs.ndim == 2:  # parts: computed with their sums, so a lazy backend keeps no graph of them
            costs, parts = self.ctx.backend.materialize(xp.sum(costs, axis=1), costs)
            self.parts.append(parts)
        else:
            (costs,) = self.ctx.backend.materialize(costs)
        self.history.append(costs)
        return costs

    def _read(self, n_iter: int, gradient: Any) -> None:
        xp = self.ctx.xp
        costs = self._flush()
        if gradient is None:  # an epoch without its mean gradient (no tolerance): the norm is NaN, a fill
            norms = [xp.full((), math.nan, dtype=costs.dtype, device=array_api_compat.device(costs))]
        else:
            norms = [gradient_norm(xp, gradient)]
        if not isinstance(self.initial_gnorm, float):
            norms.append(self.initial_gnorm)
        values = [float(v) for v in self.ctx.read(xp.concat([costs, xp.stack(norms)]), "cost window")]
        n = costs.shape[0]
        if len(values) > n + 1:
            self.initial_gnorm = values[n + 1]
        self._test(n_iter, values[:n], values[n])

    def _test(self, n_iter: int, costs: list[float], gnorm: float) -> None:
        """Divergence, the progress hook, the stopping tests -- on values already on the host."""
        if self.initial_cost is None:
            self.initial_cost = costs[0]
            if not math.isfinite(self.initial_cost):  # J(θ₀) itself overflowed: no step size can help
                raise overflowed_at_start(self.initial_cost)
        self._check_divergence(costs, n_iter)
        self.gnorm = gnorm
        if n_iter:
            self.on_cost(n_iter, costs[-1])
        previous, self.last_cost = self.last_cost, costs[-1]
        if reached(gnorm, self.initial_gnorm, self.tol):
            self.stop, self.converged = "tol", True
        elif self.tol is not None and previous is not None and self._cost_settled(previous, costs[-1]):
            self.stop, self.converged = "cost change", True

    def _cost_settled(self, before: float, after: float) -> bool:
        """The rule's cost-change criterion: |ΔJ| ≤ (ulps · ε) · max(|J|) over the iteration."""
        ulps = self.rule.cost_change_ulps
        if ulps is None:
            return False
        eps = float(self.ctx.xp.finfo(self.window[-1].dtype if self.window else self.history[-1].dtype).eps)
        # Relative to the cost itself (no floor of 1, unlike SciPy), so rescaling the data changes nothing.
        return abs(before - after) <= ulps * eps * max(abs(before), abs(after), 1e-300)

    def _check_divergence(self, costs: list[float], n_iter: int) -> None:
        assert self.initial_cost is not None
        floor = max(self.initial_cost, 1e-300)
        for cost in costs:
            if not math.isfinite(cost):
                raise self._divergence(n_iter, "the cost became non-finite")
            # The absolute floor keeps a zero initial cost (y ≡ 0) from flagging rounding noise.
            if cost > self.divergence_factor * floor and cost > 1e-12:
                raise self._divergence(n_iter, f"the cost grew from {self.initial_cost:.4g} to {cost:.4g}")

    def _divergence(self, iteration: int, what: str) -> DivergenceError:
        rate = getattr(self.rule, "learning_rate", None)
        advice = (
            f"learning_rate={rate} is too large for this problem; try learning_rate={rate / 10:g}"
            if isinstance(rate, float)
            else "check the objective's gradient and the data for huge values"
        )
        return DivergenceError(f"{self.name} diverged by iteration {iteration}: {what}. {advice}{self.hint}")

    def result(self, point: Evaluation, n_iter: int, state: Any) -> OptimizeResult:
        xp = self.ctx.xp
        if self.window:
            if point.f is None:  # unread costs (an early stop): the costs are still checked for divergence
                self._read(n_iter, point.gradient)
            else:
                self._flush()
        stop = self.stop or "max_iter"
        if stop == "max_iter" and self.tol is not None:
            if isinstance(getattr(self.rule, "learning_rate", None), float):
                advice = "increase max_iter or learning_rate, or loosen tol" + self.hint
            else:
                advice = "increase max_iter, or loosen tol"
            warn(
                _unconverged(self.name, self.tol, self.gnorm, self.initial_gnorm, self.max_iter, advice),
                ConvergenceWarning,
            )
        history = xp.concat(self.history)
        parts = xp.concat(self.parts) if self.parts else None
        return OptimizeResult(point.theta, history, n_iter, self.converged, parts, stop, state)


def _unconverged(what: str, tol: float, gnorm: float, initial_gnorm: float, max_iter: int, advice: str) -> str:
    ratio = gnorm / initial_gnorm if initial_gnorm > 0 else math.inf
    return (
        f"{what} did not reach tol={tol} in max_iter={max_iter} iterations: the largest gradient component "
        f"fell to {ratio:.3g} of its start (‖∇J‖∞ = {gnorm:.3g}), not to tol; {advice}"
    )


def overflowed_at_start(initial: float) -> DivergenceError:
    return DivergenceError(
        f"the cost at the starting parameters, J(θ₀), is already {initial}: the data's values are too large "
        "for floating-point arithmetic (their squares overflow). Rescale them -- divide y (and X) by their "
        "largest absolute value, or standardise them; a smaller learning rate cannot help"
    )
