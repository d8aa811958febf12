"""Mini-batch k-means (Sculley, "Web-scale k-means clustering", 2010), as scikit-learn's
``MiniBatchKMeans`` runs it: each step moves the centroids towards the mean of a random batch.

A step on a batch B (rows drawn at random, with replacement, ∝ their weights), from centroids c
with weights v (the weight of every row each centroid has taken so far):

* the E-step on B: lᵢ = argminₖ ‖xᵢ − cₖ‖², Sₖ = Σ_{lᵢ=k} sᵢxᵢ, nₖ = Σ_{lᵢ=k} sᵢ, and the batch's
  distortion J_B = Σᵢ sᵢ‖xᵢ − c_{lᵢ}‖² (at c, before the move: what the stopping rule watches);
* the move: vₖ⁺ = vₖ + nₖ and cₖ⁺ = (vₖcₖ + Sₖ) / vₖ⁺ = cₖ + (Sₖ − nₖcₖ) / vₖ⁺ -- a gradient step on
  the distortion with a learning rate 1/vₖ⁺ per centroid, which makes cₖ the mean of every row it
  has ever taken (the running mean); a centroid that took no row stays;
* re-seeding of starved centroids (every ⌈10K / b⌉-th step, and at the first): those with
  vₖ⁺ < ``reassignment_ratio`` · maxⱼ vⱼ⁺ (at most b/2 of them, the lightest) move to rows of the
  batch, and their v becomes the smallest v of the others.

The steps run in *rounds*. A round draws the rows of many batches on the host, gathers them in one
take (sorted: a chunked X is then read once, chunk after chunk, and never held whole), then runs
its steps on those rows where they are; the batches are the same, and the fit bit-identical,
whether X is a NumPy array, on a GPU, or a Dask array in memory or streamed from disk. The host
reads the steps' [J_B, shift] once per :data:`READ_EVERY` steps and applies scikit-learn's
stopping rule to each step in turn (:class:`Stopping`); a fit that should have stopped inside
the window goes back to the centroids of that step, so the window changes nothing but the number of
reads.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from hml import backends, kernels
from hml._kmeans import about, relative, squared_from, sums_and_counts

__all__ = [
    "READ_EVERY",
    "ROUND_BYTES",
    "MiniBatchState",
    "Stopping",
    "batch_block",
    "fit_steps",
    "partial_step",
    "minibatch_update",
    "reassign_every",
    "reseeding",
    "round_rows",
    "run_steps",
]

#: Steps between two reads of the steps' [J_B, shift] (a GPU synchronisation each).
READ_EVERY = 16
#: The bytes of rows a round gathers when ``working_memory`` is not given: on a streamed Dask array
#: each round is one pass over X, so a fit of s steps of b rows of r bytes reads X about s·b·r / 64 MiB times.
ROUND_BYTES = 64 << 20


class MiniBatchState(NamedTuple):
    """What a step starts from, and what :meth:`partial_fit` carries from call to call."""

    centroids: Any  # c (K × D)
    weights: Any  # v (K,): the weight of the rows each centroid has taken so far
    since_reassign: int  # rows seen since the last re-seeding test (scikit-learn's counter)
    started: bool  # whether a step has run (before the first, every v is 0: re-seed after it)


def reassign_every(n_clusters: int) -> int:
    """Rows between two re-seeding tests: 10 K (scikit-learn's)."""
    return 10 * n_clusters


def batch_block(
    X: Any, squared: Any, weights: Any, shifted: Any, bias: Any, origin: Any, k: int, *, xp: Any = None
) -> tuple[Any, Any, Any]:
    """The E-step on a batch: S, n and J_B = Σᵢ sᵢ‖xᵢ − c_{lᵢ}‖², measured directly (sᵢ = 1 without
    weights), the distances about ``origin`` (``shifted``, ``bias``: :func:`hml._kmeans.relative`'s);
    ``squared`` the rows' ‖xᵢ − o‖², or None to compute them. Its arguments follow
    :class:`hml._kmeans.Data`'s block convention (X, ‖x − o‖², s, then the shared ones)."""
    xp = array_api_compat.array_namespace(X) if xp is None else xp
    nearest, best = kernels.nearest_centroid(X, shifted, bias, with_scores=True)
    distances = best + (squared_from(X, origin) if squared is None else squared)
    sums, counts = sums_and_counts(X, weights, nearest, k)
    return sums, counts, (xp.sum(distances) if weights is None else xp.vecdot(weights, distances))


def reseeding(state: MiniBatchState, batch_size: int, ratio: float) -> tuple[float, int]:
    """The re-seeding ratio of the next step (0 when it tests nothing) and the counter after it: a test at
    the first step and whenever 10 K rows have passed since the last, scikit-learn's rule but for one case:
    it also tests at every step where some vₖ is 0 (after the first step, a centroid past its cap of b/2,
    or one that took rows of weight 0 only), which would read v back every step."""
    since = state.since_reassign + batch_size
    due = not state.started or since >= reassign_every(state.centroids.shape[0])
    return (ratio if due else 0.0), (0 if due else since)


def minibatch_update(
    centroids: Any, weights: Any, sums: Any, counts: Any, candidates: Any, ratio: float, most: int, *, xp: Any = None
) -> tuple[Any, Any, Any]:
    """The move of a step, vₖ⁺ = vₖ + nₖ, cₖ⁺ = (vₖcₖ + Sₖ)/vₖ⁺ (unchanged where nₖ = 0), then, with
    ``ratio`` > 0, the re-seeding: the j-th centroid (in index order) with vₖ⁺ < ratio · max v⁺, of
    at most ``most`` (the lightest), moves to ``candidates[j]`` (rows of the batch, in random order)
    and takes the smallest v⁺ of the others. Returns (c⁺, v⁺, Σₖ‖cₖ⁺ − cₖ‖²)."""
    xp = array_api_compat.array_namespace(centroids, sums) if xp is None else xp
    new_weights = weights + counts
    taken = xp.reshape(counts > 0, (-1, 1))
    divisor = xp.reshape(xp.where(counts > 0, new_weights, xp.ones_like(new_weights)), (-1, 1))
    moved = xp.where(taken, (xp.reshape(weights, (-1, 1)) * centroids + sums) / divisor, centroids)
    if ratio > 0:
        starved = new_weights < ratio * xp.max(new_weights)
        k = centroids.shape[0]
        if most < k:  # scikit-learn's cap, half a batch: keep the flags of the `most` lightest only
            rank = xp.argsort(xp.argsort(new_weights, stable=True), stable=True)
            starved = starved & (rank < most)
        # Each starved centroid's place among them (at most `most` - 1 < the candidates); the
        # others' index is never used, kept in range by the remainder.
        # The namespace's index type (int32 on wasm32, where NumPy's take refuses int64 indices).
        flags = xp.astype(starved, xp.__array_namespace_info__().default_dtypes()["indexing"])
        index = (xp.cumulative_sum(flags) - flags) % candidates.shape[0]
        moved = xp.where(xp.reshape(starved, (-1, 1)), xp.take(candidates, index, axis=0), moved)
        lightest = xp.min(xp.where(starved, xp.full_like(new_weights, math.inf), new_weights))
        new_weights = xp.where(starved, lightest, new_weights)
    return moved, new_weights, xp.sum((moved - centroids) ** 2)


class Stopping:
    """scikit-learn's stopping rule for mini-batch k-means, step by step (the first step excepted:
    its J_B measures the initial centroids): stop when the centroid shift is at most ``tol`` (when
    ``tol`` > 0), or when the exponentially weighted average of J_B / b, with weight
    α = min(1, 2b / (n + 1)), has not reached a new minimum for ``max_no_improvement`` steps."""

    def __init__(self, batch_size: int, n_samples: int, tol: float, max_no_improvement: int | None):
        self.batch_size, self.tol, self.patience = batch_size, tol, max_no_improvement
        self.alpha = min(1.0, batch_size * 2.0 / (n_samples + 1))
        self.average: float | None = None
        self.best: float | None = None
        self.without_improvement = 0

    def stop(self, step: int, batch_inertia: float, shift: float) -> bool:
        """Whether the fit stops after ``step`` (counted from 1), with its J_B and shift."""
        mean = batch_inertia / self.batch_size
        if step == 1:
            return False
        self.average = mean if self.average is None else self.average * (1 - self.alpha) + mean * self.alpha
        if self.tol > 0.0 and shift <= self.tol:
            return True
        if self.best is None or self.average < self.best:
            self.without_improvement, self.best = 0, self.average
        else:
            self.without_improvement += 1
        return self.patience is not None and self.without_improvement >= self.patience


def round_rows(batch_size: int, row_bytes: int, budget: int) -> int:
    """How many batches a round gathers: as many as ``budget`` bytes hold, at least one."""
    return max(1, budget // max(1, batch_size * row_bytes))


class Round(NamedTuple):
    """A round's result: the state after each step run, and each step's [J_B, shift] (on the device)."""

    states: list[MiniBatchState]
    statuses: list[Any]


def run_steps(
    rows: Any,
    state: MiniBatchState,
    batch_size: int,
    n_steps: int,
    reassignment_ratio: float,
    with_shift: bool,
    origin: Any,
) -> Round:
    """``n_steps`` steps on consecutive batches of the gathered ``rows`` (in the order drawn), from
    ``state``, the distances about ``origin`` (one point for the whole fit): no host read. Each step's own
    rows are its re-seeding candidates: they were drawn at random, so its first rows are as random as any."""
    xp = array_api_compat.array_namespace(rows)
    k = state.centroids.shape[0]
    states, statuses = [], []
    for step in range(n_steps):  # a loop over batches, each a few array operations
        rows_of_step = slice(step * batch_size, (step + 1) * batch_size)
        batch, centroids = rows[rows_of_step, ...], state.centroids
        shifted, bias = relative(centroids, origin)
        # ‖x − o‖² per batch: for the whole round at once, X − o would double the round's memory.
        sums, counts, inertia = batch_block(batch, None, None, shifted, bias, origin, k, xp=xp)
        ratio, since = reseeding(state, batch_size, reassignment_ratio)
        centroids, weights, shift = minibatch_update(
            centroids, state.weights, sums, counts, batch, ratio, batch_size // 2, xp=xp
        )
        state = MiniBatchState(centroids, weights, since, True)
        statuses.append(xp.stack([inertia, shift if with_shift else xp.zeros_like(shift)]))
        states.append(state)
    return Round(states, statuses)


def draws(rng: np.random.Generator, n_samples: int, size: int, cumulative: np.ndarray | None) -> np.ndarray:
    """``size`` row indices drawn with replacement: uniformly, or ∝ the weights whose running sum
    (float64, on the host) is ``cumulative`` -- the same draws when every weight is 1."""
    if cumulative is None:
        return np.minimum((rng.random(size) * n_samples).astype(np.int64), n_samples - 1)
    picks: np.ndarray = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")
    drawn: np.ndarray = np.minimum(picks, n_samples - 1)
    return drawn


def gathered(ctx: backends.ComputeContext, X: Any, indices: np.ndarray) -> Any:
    """The rows of X at ``indices``, in that order, as a concrete array of X's chunks' library: from a
    lazy X taken in sorted order (one read of each chunk), then put back in draw order."""
    if not ctx.backend.lazy:  # in memory: one take, in draw order
        return ctx.take_rows(X, indices)
    order = np.argsort(indices, kind="stable")
    (rows,) = ctx.concrete(ctx.take_rows(X, indices[order]), why="mini-batch k-means rows")
    inner = backends.resolve(backends.AUTO, like=rows)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    return inner.xp.take(rows, inner.asarray(inverse), axis=0)


class Fitted(NamedTuple):
    """What :func:`fit_steps` leaves: the state after the last step run, the steps run, and J_B / b
    of each (on the device of the rows)."""

    state: MiniBatchState
    n_steps: int
    history: Any
    stopping: Stopping


def fit_steps(
    ctx: backends.ComputeContext,
    X: Any,
    state: MiniBatchState,
    rng: np.random.Generator,
    cumulative: np.ndarray | None,
    batch_size: int,
    max_steps: int,
    stopping: Stopping,
    reassignment_ratio: float,
    budget: int,
) -> Fitted:
    """Up to ``max_steps`` steps on batches drawn from X (∝ the weights whose running sum is
    ``cumulative``), in rounds that gather at most ``budget`` bytes of rows, until ``stopping``
    says so, the distances about the first centroids' mean (a point among the data: :func:`hml._kmeans.origin`).
    Host reads: one per :data:`READ_EVERY` steps (the steps' [J_B, shift])."""
    from hml._array import squares_overflow
    from hml.optimize import cost_callback, progress_callback

    report, on_cost = progress_callback(), cost_callback()
    n, itemsize = X.shape[0], 4 if X.dtype == ctx.xp.float32 else 8
    # Whole read windows, as many as the budget holds (at least one): a round never exceeds the budget
    # by more than a window's batches.
    per_round = READ_EVERY * max(1, round_rows(batch_size, X.shape[1] * itemsize, budget) // READ_EVERY)
    with_shift = stopping.tol > 0.0
    origin = array_api_compat.array_namespace(state.centroids).mean(state.centroids, axis=0)
    done, history, stopped = 0, [], False
    while done < max_steps and not stopped:
        steps = min(per_round, max_steps - done)
        rows = gathered(ctx, X, draws(rng, n, steps * batch_size, cumulative))
        inner = backends.resolve(backends.AUTO, like=rows)
        for start in range(0, steps, READ_EVERY):  # a loop over windows of steps
            count = min(READ_EVERY, steps - start)
            window = rows[start * batch_size : (start + count) * batch_size, ...]
            with backends.small_steps(window):
                ran = run_steps(window, state, batch_size, count, reassignment_ratio, with_shift, origin)
            statuses = inner.xp.stack(ran.statuses)
            kept = count
            for i, (inertia, shift) in enumerate(inner.read(statuses, "mini-batch k-means")):
                done += 1
                report(done, max_steps)
                if not math.isfinite(float(inertia)):
                    raise squares_overflow(ctx, X, "MiniBatchKMeans")
                if stopping.stop(done, float(inertia), float(shift)):
                    kept, stopped = i + 1, True
                    break
            state = ran.states[kept - 1]
            history.append(statuses[:kept, 0] / batch_size)
            on_cost(done, float(stopping.average if stopping.average is not None else 0.0))
            if stopped:
                break
    xp = array_api_compat.array_namespace(state.centroids)
    return Fitted(state, done, xp.concat(history), stopping)


def partial_step(
    data: Any, state: MiniBatchState, candidates: Any, reassignment_ratio: float, batch_size: int
) -> tuple[MiniBatchState, Any]:
    """One step on all the rows of ``data`` (a :class:`hml._kmeans.Data`, weighted or not) as the batch,
    in blocks (lazily on Dask): the new state, and J_B (0-d, on the device). ``batch_size`` is what
    the re-seeding counter adds per step (scikit-learn's: the batch size of the first call)."""
    ctx = data.ctx
    centroids = state.centroids
    k, d = centroids.shape
    out = {"sums": backends.Sum((k, d), centroids.dtype), "counts": backends.Sum((k,), centroids.dtype)}
    out["inertia"] = backends.Sum((), centroids.dtype)
    block, arrays, absent = data.rows(batch_block)  # ‖x − o‖² not kept: each block computes its own
    step = data.reduce(block, arrays, (*absent, *about(centroids, data.origin), k), out)
    ratio, since = reseeding(state, batch_size, reassignment_ratio)
    dtype = centroids.dtype
    moved, new_weights, _ = backends.call_once(
        minibatch_update,
        (centroids, state.weights, step.sums, step.counts, candidates, ratio, data.X.shape[0] // 2),
        [((k, d), dtype), ((k,), dtype), ((), dtype)],
    )
    moved, new_weights, inertia = ctx.backend.materialize(moved, new_weights, step.inertia)
    return MiniBatchState(moved, new_weights, since, True), inertia
