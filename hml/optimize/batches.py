"""Mini-batches: a data source for the optimisation loop, one epoch of shuffled row blocks per iteration."""

from __future__ import annotations

from typing import Any

import numpy as np

from hml.backends import ComputeContext
from hml.optimize.loop import Evaluation, Objective, Rule, StepRule

__all__ = ["MiniBatches"]

#: On a lazy backend, θ, the optimiser's state and the running sums are computed every this many
#: batches: an epoch's graph built whole grows with each batch and costs more to extend at each one.
#: (Figures in ``benchmarks/RESULTS.md``.)
LAZY_ROUND = 4


class MiniBatches:
    """Each iteration an epoch: the rows in a fresh order, in batches of ``batch_size``, one step of
    the rule per batch B with J_B and ∇J_B from ``objective(theta, rows)``.

    The order is drawn on the host from ``rng`` (the same seed gives the same batches on every
    backend) and moved to the device once per epoch. ``objective(theta, rows)`` returns the cost
    and gradient on the rows ``rows`` (a device index array, or a slice) such that their
    row-weighted mean over a partition of the rows is J and ∇J on all of them (a mean loss over
    the rows plus a penalty that does not depend on them, as every hml objective is).

    What the loop records: J(θ₀) and ∇J(θ₀) on all rows, evaluated in blocks of ``block_rows``
    (its memory is that of a block, not of all rows); then for each epoch the mean of its batch
    costs and of its batch gradients -- estimates of J and ∇J as θ moved, which the tolerance
    test compares with the exact ∇J(θ₀) (with a constant step the batches' noise may keep a
    small ``tol`` out of reach). Where no tolerance needs ∇J(θ₀) and the objective carries
    ``cost_only(theta, rows) -> J`` (as :func:`hml.neural_network.mlp_objective`'s does), J(θ₀)
    alone: a forward pass, about half the work of the start; and a start without ∇J(θ₀) leaves
    out the epochs' mean gradients too (their gradient is None: a pass per batch saved).
    """

    name = "mini-batch "
    check_every = 1

    def __init__(self, n_samples: int, batch_size: int, rng: np.random.Generator, block_rows: int = 8192):
        self.n_samples, self.batch_size, self.rng = n_samples, batch_size, rng
        self.block_rows = max(block_rows, batch_size)
        #: Whether an epoch records its mean batch gradient: not after a start without one (no tolerance
        #: compares with it), which saves a pass over the gradient per batch.
        self.mean_gradient = True

    def initial(self, objective: Objective, theta: Any, ctx: ComputeContext, gradient: bool = True) -> Evaluation:
        """J(θ₀), ∇J(θ₀) = Σ_b (m_b / n) (J_b, ∇J_b) over consecutive row blocks b of m_b rows; without
        ``gradient``, by the objective's ``cost_only`` where it has one, J(θ₀) and None."""
        n = self.n_samples
        self.mean_gradient = gradient
        cost_only = None if gradient else getattr(objective, "cost_only", None)
        cost = total_gradient = None
        for start in range(0, n, self.block_rows):
            stop = min(start + self.block_rows, n)
            weight = (stop - start) / n
            if cost_only is not None:
                block_cost = cost_only(theta, slice(start, stop))
            else:
                block_cost, block_gradient = objective(theta, slice(start, stop))
                block_gradient = weight * block_gradient
                total_gradient = block_gradient if total_gradient is None else total_gradient + block_gradient
            cost = weight * block_cost if cost is None else cost + weight * block_cost
        if total_gradient is None:
            (cost,) = ctx.backend.materialize(cost)
            return Evaluation(theta, cost, None)
        return Evaluation(theta, *ctx.backend.materialize(cost, total_gradient))

    def iterate(
        self, rule: Rule, state: Any, point: Evaluation, objective: Objective, ctx: ComputeContext
    ) -> tuple[Any, Evaluation]:
        """One epoch: a step of ``rule`` per batch; the mean batch cost and gradient to record."""
        if not isinstance(rule, StepRule):
            raise ValueError(f"{rule.name} needs all rows every iteration; mini-batches take a step rule")
        xp = ctx.xp
        n = self.n_samples
        order = ctx.asarray(self.rng.permutation(n))
        theta, costs = point.theta, []
        gradient_sum: Any = None
        b = self.batch_size
        full, last = divmod(n, b)  # full batches of b rows, then one of `last` rows (if any)
        for batch, start in enumerate(range(0, full * b, b), start=1):
            cost, gradient = objective(theta, order[start : start + b])
            costs.append(cost)
            if self.mean_gradient:
                if gradient_sum is None:  # a copy, which the later batches are added to in place
                    gradient_sum = xp.asarray(gradient, copy=True)
                else:
                    gradient_sum += gradient
            theta, state = rule.step(theta, gradient, state)
            if ctx.backend.lazy and batch % LAZY_ROUND == 0:
                summed = [xp.sum(xp.stack(costs), axis=0)] + ([] if gradient_sum is None else [gradient_sum])
                theta, *rest = ctx.backend.materialize(theta, *summed, *state)
                costs, gradient_sum = rest[:1], (rest[1] if gradient_sum is not None else None)
                state = tuple(rest[len(summed) :])
        # The row-weighted means: each full batch weighs b/n, the short last one last/n.
        mean_cost = xp.sum(xp.stack(costs), axis=0) * (b / n) if costs else None
        mean_gradient = gradient_sum * (b / n) if gradient_sum is not None else None
        if last:
            cost, gradient = objective(theta, order[full * b : n])
            theta, state = rule.step(theta, gradient, state)
            share = last / n
            mean_cost = cost * share if mean_cost is None else mean_cost + cost * share
            if self.mean_gradient:
                mean_gradient = gradient * share if mean_gradient is None else mean_gradient + gradient * share
        if ctx.backend.lazy:  # the epoch's graph, computed: the next epoch starts from values
            gradients = [] if mean_gradient is None else [mean_gradient]
            theta, mean_cost, *rest = ctx.backend.materialize(theta, mean_cost, *gradients, *state)
            if gradients:
                mean_gradient, *rest = rest
            state = tuple(rest)
        return state, Evaluation(theta, mean_cost, mean_gradient)
