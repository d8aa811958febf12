"""What a network's ``partial_fit`` carries from one chunk of rows to the next: the optimiser's state, the
order of the mini-batches, the weights' scale, and the class weights it can use; which solvers take steps and
mini-batches -- beside :mod:`hml._mlp`, the math every fit shares.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np

from hml import backends
from hml._array import SampleWeight, check_sample_weight
from hml.exceptions import DivergenceError
from hml.optimize import MiniBatches

__all__ = [
    "StepSolversOnly",
    "blaming_earlier_steps",
    "check_partial_fit",
    "checked_batch_size",
    "row_weights",
    "partial_batches",
    "partial_class_weight",
    "rule_key",
    "saved_state",
]


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


@contextlib.contextmanager
def blaming_earlier_steps(history: Any, p: SimpleNamespace) -> Iterator[None]:
    """A later call's J(θ₀) is that of the weights the earlier calls left (their ``history`` of costs; None
    for the first call): non-finite after costs that grew a thousandfold, those steps diverged -- a growth of
    1e110 is no error within a call -- and the data, which the loop's message blames, are not at fault."""
    try:
        yield
    except DivergenceError as exc:
        if history is None or "J(θ₀)" not in str(exc):
            raise
        costs = backends.to_numpy(history)
        first, last = float(costs[0]), float(costs[-1])
        if not last > 1e3 * max(first, 1e-300):  # the steps did not blow up: this chunk's values overflow
            raise
        raise DivergenceError(
            f"partial_fit: the weights that the earlier calls left give a non-finite cost on this chunk (the last "
            f"cost was {last:.4g}; cost_history_ shows its growth): those steps diverged, with "
            f"learning_rate={p.learning_rate}. Start again (fit, or a new estimator) with a smaller learning_rate"
        ) from exc


def check_partial_fit(p: SimpleNamespace) -> None:
    """What ``partial_fit`` refuses: a solver that takes no steps, and ``early_stopping``, which it would ignore
    (as scikit-learn's): it holds out none of its chunk's rows."""
    if p.solver not in ("gd", "adam"):
        raise ValueError(f"partial_fit takes steps: solver='gd' or 'adam'; got solver={p.solver!r}")
    if p.early_stopping:
        raise ValueError(
            "partial_fit takes every row of its chunk and holds out none: early_stopping=True is for fit. Set "
            "early_stopping=False, and score a held-out chunk between calls to stop"
        )


def checked_batch_size(p: SimpleNamespace, default: int | None) -> int | None:
    """``batch_size`` for a fit: None for the full-batch L-BFGS and CG, which ignore the class's ``default`` (as
    scikit-learn's) and refuse another."""
    if p.batch_size is None or p.solver in ("gd", "adam"):
        return p.batch_size  # type: ignore[no-any-return]
    if p.batch_size != default:
        raise ValueError(
            f"batch_size={p.batch_size} is for solver='gd' or 'adam' (mini-batches); solver={p.solver!r} takes "
            "every row at each iteration: set batch_size=None"
        )
    return None
