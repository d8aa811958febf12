"""What a network's ``partial_fit`` carries from one chunk of rows to the next: the optimiser's state, the
order of the mini-batches, the weights' scale, and the class weights it can use -- beside :mod:`hml._mlp`,
the math every fit shares.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from hml import backends
from hml._array import SampleWeight, check_sample_weight
from hml.optimize import MiniBatches

__all__ = ["StepSolversOnly", "row_weights", "partial_batches", "partial_class_weight", "rule_key", "saved_state"]


def rule_key(p: SimpleNamespace) -> str:
    """Which step rule a saved state is of: its arrays fit no other."""
    return f"{p.solver}, momentum" if p.solver == "gd" and p.momentum else str(p.solver)


def saved_state(ctx: backends.ComputeContext, saved: Any, p: SimpleNamespace) -> Any:
    """The optimiser state an earlier fit or partial_fit left, back on ``ctx``'s backend and device (the
    fitted state is concrete), if it is of the rule ``p`` asks for now; else None: a fresh one."""
    if not saved or saved[0] != rule_key(p):
        return None
    return tuple(ctx.asarray(part) if backends.is_array(part) else part for part in saved[1:])


def partial_class_weight(p: SimpleNamespace) -> Any:
    """A partial_fit's ``class_weight``: a dict weighs every chunk (as SGDClassifier's); ``"balanced"`` is refused."""
    if isinstance(getattr(p, "class_weight", None), str):  # "balanced" needs the class counts of all the data
        raise ValueError(
            f"class_weight={p.class_weight!r} cannot be estimated from the one chunk partial_fit sees; compute the "
            "weights once from all the targets (or a large sample), e.g. dict(zip(classes, sklearn.utils."
            "class_weight.compute_class_weight('balanced', classes=classes, y=y_all))), and pass them as a dict"
        )
    return getattr(p, "class_weight", None)


def partial_batches(p: SimpleNamespace, n_samples: int, epochs_done: int) -> MiniBatches | None:
    """A partial_fit's mini-batches, in a new order every call: drawn from ``p.random_state`` on the first (as a
    one-epoch fit's), then from a generator seeded by (a draw from it, the epochs done), as MiniBatchKMeans's: the
    orders follow from the seed, and a saved model (``n_iter_`` kept, no Generator) goes on with the same."""
    if p.batch_size is None:
        return None
    seeded = np.random.default_rng([int(p.random_state.integers(2**32)), epochs_done]) if epochs_done else None
    return MiniBatches(n_samples, p.batch_size, p.random_state if seeded is None else seeded)


class StepSolversOnly:
    """``partial_fit`` exists for the step solvers only (``hasattr`` says so, as scikit-learn's MLP)."""

    def __init__(self, method: Any):
        self.method = method
        self.__doc__ = method.__doc__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is not None and obj.solver not in ("gd", "adam"):
            raise AttributeError(
                f"partial_fit takes steps: solver='gd' or 'adam'; this {type(obj).__name__} has solver={obj.solver!r}"
            )
        return self.method.__get__(obj, owner)


def row_weights(
    sample_weight: Any, ctx: backends.ComputeContext, X: Any, scale: float | None
) -> tuple[SampleWeight | None, float]:
    """A chunk's weights sᵢ / s̄ for the objective, and s̄: the mean weight of the rows that came first (the
    first chunk's, or fit's), given as ``scale`` (None on the first chunk, which sets it). Normalised once, as
    fit normalises all its rows, and not chunk by chunk: a chunk of one class keeps its class weight, and a
    chunk of heavier rows takes a larger step, as in SGDClassifier's partial_fit. The n of the penalty
    λ/(2n)‖w‖² is the chunk's rows times s̄ (Σs on the first chunk, as fit's)."""
    n = X.shape[0]
    if sample_weight is None and scale in (None, 1.0):
        return None, 1.0
    weights = check_sample_weight(1.0 if sample_weight is None else sample_weight, ctx, n_samples=n, dtype=X.dtype)
    if weights is None:  # every weight 1 (check_sample_weight's None), beside a scale set by other weights
        weights = SampleWeight(ctx.xp.ones((n,), dtype=X.dtype, device=ctx.device), float(n))
    scale = weights.total / n if scale is None else scale
    return SampleWeight(weights.normalised * (weights.total / (n * scale)), n * scale), scale
