"""k-means clustering (Lloyd's algorithm), written once against the array API.

Every pass over X runs in blocks of rows sized from the backend's ``working_memory``,
so no N × K matrix is ever built: a 10-million-row fit needs X, two int32 label
vectors and ‖x‖², plus one block.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar, Literal, NamedTuple

import array_api_compat
import numpy as np

from hml import backends
from hml._array import check_X, squares_overflow
from hml._params import ArrayLike, Either, Integer, OneOf, Real, param
from hml.base import RANDOM_STATE, VERBOSE, BaseEstimator
from hml.numerics import centred_sum_of_squares, positive_part
from hml.optimize import cost_callback, progress_callback

__all__ = ["KMeans"]


class _Blocks:
    """Row blocks of X with their squared norms ‖xᵢ‖², computed once per fit."""

    def __init__(
        self,
        ctx: backends.ComputeContext,
        X: Any,
        n_clusters: int,
        working_memory: int | None,
        squared_norms: Any = None,
    ):
        xp = ctx.xp
        self.ctx, self.X = ctx, X
        itemsize = 4 if X.dtype == xp.float32 else 8
        budget = ctx.backend.working_memory_for(ctx.device) if working_memory is None else working_memory
        # One block's distance matrix (rows × K; a fused E-step writes less) and its rows fit the budget.
        scratch = ctx.backend.nearest_centroid_scratch(n_clusters, X.shape[1], X.dtype)
        rows = max(1, budget // (itemsize * (scratch + X.shape[1])))
        n = X.shape[0]
        self.bounds = _snap(
            [(start, min(start + rows, n)) for start in range(0, n, rows)], ctx.backend.row_chunk_ends(X)
        )
        # Computed once (Dask: persisted) and reused by every pass; or given, for a chunk of X.
        if squared_norms is not None:
            self.squared_norms = [squared_norms[start:stop] for start, stop in self.bounds]
        else:
            self.squared_norms = list(ctx.backend.materialize(*[xp.sum(block * block, axis=1) for block in self]))
        self._total_squared_norm: Any = None

    @property
    def total_squared_norm(self) -> Any:
        """Σᵢ‖xᵢ‖², a 0-d array computed once (Dask: persisted), not re-summed every iteration."""
        if self._total_squared_norm is None:
            xp = self.ctx.xp
            (self._total_squared_norm,) = self.ctx.backend.materialize(
                sum(xp.sum(norms) for norms in self.squared_norms)
            )
        return self._total_squared_norm

    def __iter__(self) -> Iterator[Any]:
        return (self.X[start:stop, ...] for start, stop in self.bounds)

    def rows(self, indices: Any) -> Any:
        """The rows of X at host ``indices``, as an array on the device."""
        return self.ctx.take_rows(self.X, indices)


def _scores(block: Any, centroids: Any, centroid_norms: Any) -> Any:
    """‖c‖² − 2 x·c for every row x of ``block`` and centroid c: ‖x − c‖² without the ‖x‖² term,
    which argmin does not need. One GEMM; −2 is folded into the small centroid matrix."""
    scores = block @ (-2.0 * centroids).T
    scores += centroid_norms
    return scores


class Assignment(NamedTuple):
    """The E-step alone: each row's nearest centroid and the distortion they give."""

    labels: list[Any]  # int32 label blocks, on the device
    inertia: Any  # J = Σᵢ minₖ ‖xᵢ − cₖ‖², a 0-d array


class LloydStep(NamedTuple):
    """One Lloyd iteration's E-step with what its M-step needs."""

    labels: list[Any]  # int32 label blocks
    sums: Any  # S (K × D): Sₖ = Σ_{i: lᵢ = k} xᵢ
    counts: Any  # n (K,): nₖ = #{i: lᵢ = k}
    n_changed: Any  # how many labels differ from the previous step's (None on the first)


def _snap(bounds: list[tuple[int, int]], chunk_ends: list[int] | None) -> list[tuple[int, int]]:
    """Block bounds moved to the nearest chunk ends at or after them, so that no chunk of a
    chunked X is split between two blocks -- a streamed chunk would be read once for each."""
    if chunk_ends is None:
        return bounds
    snapped, start = [], 0
    for _, stop in bounds:
        end = next(e for e in chunk_ends if e >= stop)
        if end > start:
            snapped.append((start, end))
            start = end
    return snapped


def _total(parts: list[Any], start: Any = None) -> Any:
    """The sum of the blocks' parts, in block order however the blocks were scheduled (None parts skipped)."""
    for part in parts:
        if part is not None:
            start = part if start is None else start + part
    return start


def _assign(blocks: _Blocks, centroids: Any) -> Assignment:
    """The E-step: lᵢ = argminₖ ‖xᵢ − cₖ‖² and J = Σᵢ ‖xᵢ − c_{lᵢ}‖², measured directly, block by block."""
    ctx = blocks.ctx
    xp, backend = ctx.xp, ctx.backend
    centroid_norms = xp.sum(centroids * centroids, axis=1)
    block_list = list(blocks)

    def step(b: int) -> tuple[Any, Any]:
        nearest, best = backend.nearest_centroid(block_list[b], centroids, centroid_norms, with_scores=True)
        return nearest, xp.sum(best + blocks.squared_norms[b])

    results = backend.map_blocks(step, range(len(block_list)))
    return Assignment([r[0] for r in results], _total([r[1] for r in results]))


def _lloyd_step(blocks: _Blocks, centroids: Any, previous: LloydStep | None = None) -> LloydStep:
    """The E-step with the M-step's per-cluster sums S and counts n.

    With the ``previous`` step, S and n are updated from the rows whose label changed only
    -- after the first few iterations a few percent of them -- instead of summed again from
    all N rows. Backends on which selecting rows by a data-dependent mask waits for the device
    (GPUs) or cannot be done (Dask) always sum all rows: on a GPU that costs one scatter-add
    kernel, not a synchronisation.
    """
    ctx = blocks.ctx
    xp, backend = ctx.xp, ctx.backend
    if backend.lazy:
        return _lloyd_step_by_chunks(blocks, centroids, previous)
    k = centroids.shape[0]
    incremental = previous is not None and backend.cheap_data_dependent_shapes(ctx.device)
    centroid_norms = xp.sum(centroids * centroids, axis=1)
    block_list = list(blocks)

    def step(b: int) -> tuple[Any, Any, Any, Any]:
        """One block: its labels, and its share of the sums, counts and changes."""
        block = block_list[b]
        # int32 labels: half the memory of the default index type (40 MB per 10 M rows).
        nearest, _ = backend.nearest_centroid(block, centroids, centroid_norms)
        changed = n_changed = None
        if previous is not None:
            changed = nearest != previous.labels[b]
            n_changed = xp.sum(xp.astype(changed, xp.int64))
        if incremental and previous is not None:  # incremental implies a previous step
            moved = xp.nonzero(changed)[0]
            rows = xp.take(block, moved, axis=0)
            to, frm = xp.take(nearest, moved), xp.take(previous.labels[b], moved)
            sums = backend.segment_sum(rows, to, k) - backend.segment_sum(rows, frm, k)
            counts = backend.segment_count(to, k, block.dtype) - backend.segment_count(frm, k, block.dtype)
        else:
            sums, counts = backend.segment_sum_and_count(block, nearest, k)
        return nearest, sums, counts, n_changed

    results = backend.map_blocks(step, range(len(block_list)))
    sums = _total([r[1] for r in results], previous.sums if incremental and previous is not None else None)
    counts = _total([r[2] for r in results], previous.counts if incremental and previous is not None else None)
    return LloydStep([r[0] for r in results], sums, counts, _total([r[3] for r in results]))


def _lloyd_update(
    centroids: Any, sums: Any, counts: Any, n_changed: Any, total_squared_norm: Any
) -> tuple[Any, Any, Any, Any]:
    """The M-step and what the convergence test reads, from the E-step's S, n and #changed labels.

    cₖ⁺ = Sₖ / nₖ (an empty cluster divides by 1 here; it is re-seeded once the status shows
    it), and status = [#empty clusters, #changed labels (−1 on the first iteration),
    shift Σₖ‖cₖ⁺ − cₖ‖², J]. J is the distortion at the centroids ``c`` the labels were
    chosen for, from the sums: J = Σᵢ‖xᵢ‖² − 2 Σₖ cₖ·Sₖ + Σₖ nₖ‖cₖ‖², no N-long pass.
    Returns (c⁺, S, n, status). Written for :meth:`Backend.call_once`: one task on Dask.
    """
    xp = array_api_compat.array_namespace(centroids, sums, counts)
    k = centroids.shape[0]
    empty = counts == 0
    new_centroids = sums / xp.reshape(xp.where(empty, xp.ones_like(counts), counts), (k, 1))
    shift = xp.sum((new_centroids - centroids) ** 2)
    inertia = (
        total_squared_norm - 2.0 * xp.sum(centroids * sums) + xp.sum(counts * xp.sum(centroids * centroids, axis=1))
    )
    if n_changed is None:  # the first iteration: nothing to compare with
        n_changed = xp.full((), -1, dtype=xp.int64, device=array_api_compat.device(centroids))  # a fill: no host copy
    status = xp.stack(
        [
            xp.astype(xp.sum(xp.astype(empty, xp.int64)), shift.dtype),
            xp.astype(n_changed, shift.dtype),
            shift,
            xp.astype(inertia, shift.dtype),
        ]
    )
    return new_centroids, sums, counts, status


def _lloyd_step_by_chunks(blocks: _Blocks, centroids: Any, previous: LloydStep | None) -> LloydStep:
    """:func:`_lloyd_step` on a chunked backend (Dask): one task per chunk of X.

    Each chunk runs the in-memory step in its own library (cache-sized blocks, the fused
    E-step and scatter-add) and returns its labels, its share of S and n, and how many of
    its labels changed; S and n are added up over the chunks. One pass over X, and a graph
    of a few tasks per chunk instead of one per array operation. Where the chunks' library
    selects rows cheaply (NumPy), each chunk returns only the change of its share of S and n
    from the rows whose label changed, added to the previous S and n -- as in memory.
    """
    ctx = blocks.ctx
    xp = ctx.xp
    k, d = centroids.shape
    dtype = blocks.X.dtype
    out = [("rows", np.int32), ("sum", (k, d), dtype), ("sum", (k,), dtype), ("sum", (), np.int64)]
    incremental = previous is not None and ctx.backend.chunks_have_cheap_data_dependent_shapes(blocks.X)
    labels: list[Any] = []
    sums: list[Any] = []
    counts: list[Any] = []
    n_changed: list[Any] = []
    for b, block in enumerate(blocks):
        # No previous labels on the first iteration: compare with −1, which no label equals.
        before = previous.labels[b] if previous is not None else xp.full((block.shape[0],), -1, dtype=xp.int32)
        parts = ctx.backend.map_row_chunks(
            _lloyd_chunk, [block, blocks.squared_norms[b], before], (centroids, k, incremental), out
        )
        for collected, part in zip((labels, sums, counts, n_changed), parts, strict=True):
            collected.append(part)
    total_sums = _total(sums, previous.sums if incremental and previous is not None else None)
    total_counts = _total(counts, previous.counts if incremental and previous is not None else None)
    return LloydStep(labels, total_sums, total_counts, _total(n_changed) if previous is not None else None)


def _lloyd_chunk(
    X: Any, squared_norms: Any, before: Any, centroids: Any, k: int, incremental: bool
) -> tuple[Any, Any, Any, Any]:
    """One chunk's Lloyd step, computed in the chunk's library: labels, S, n, and #labels ≠ ``before``;
    ``incremental``: the change of S and n from the rows whose label is no longer ``before``."""
    ctx = backends.resolve(backends.backend_of(X).name, like=X)
    xp = ctx.xp
    blocks = _Blocks(ctx, X, k, None, squared_norms=squared_norms)
    previous = None
    if incremental:  # a previous step whose S and n are zero: _lloyd_step then returns the change alone
        zeros = xp.zeros((k, X.shape[1]), dtype=X.dtype, device=ctx.device)
        previous = LloydStep([before[start:stop] for start, stop in blocks.bounds], zeros, zeros[:, 0], None)
    step = _lloyd_step(blocks, ctx.asarray(centroids), previous)
    labels = step.labels[0] if len(step.labels) == 1 else xp.concat(step.labels)
    return labels, step.sums, step.counts, xp.sum(xp.astype(labels != before, xp.int64))


def _reseed_empty(
    blocks: _Blocks, centroids: Any, labels: list[Any], sums: Any, counts: Any, empty: np.ndarray
) -> tuple[Any, Any]:
    """Move each empty cluster to one of the points farthest from their centroid.

    The rule (scikit-learn's): the n_empty points with the largest ‖xᵢ − c_{lᵢ}‖², farthest
    first, become the centroids of the empty clusters in index order, and leave the sums
    and counts of the clusters they were in. Deterministic: no random numbers.
    """
    ctx = blocks.ctx
    xp = ctx.xp
    # The labels are each row's nearest centroid, so "own centroid" is the nearest one.
    distances = xp.concat(_block_distances(blocks, centroids))
    why = "k-means empty-cluster re-seeding"  # rare: these reads happen only when a cluster empties
    farthest = ctx.read(xp.argsort(distances, descending=True, stable=True)[: empty.size], why)
    old_labels = ctx.read(ctx.take_rows(xp.concat(labels), farthest), why)
    sums_host, counts_host = ctx.read(sums, why).copy(), ctx.read(counts, why).copy()
    rows = ctx.read(blocks.rows(farthest), why)
    for cluster, previous, row in zip(empty, old_labels, rows, strict=True):  # a loop over the (few) empty clusters
        sums_host[previous] -= row
        counts_host[previous] -= 1
        sums_host[cluster] = row
        counts_host[cluster] = 1
    return ctx.asarray(sums_host, dtype=sums.dtype), ctx.asarray(counts_host, dtype=counts.dtype)


def _kmeans_plus_plus(blocks: _Blocks, k: int, rng: np.random.Generator) -> Any:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii; the greedy variant scikit-learn uses).

    The first centroid is a uniformly random row; each next one is the best, by the
    resulting potential Σᵢ minₖ‖xᵢ − cₖ‖², of 2 + ⌊ln k⌋ rows drawn with probability
    ∝ D(x)², the squared distance to the nearest centroid chosen so far. The random
    numbers are drawn on the host, so a seed picks the same rows on every backend.
    D(x)² lives in blocks, like X, so seeding adds one N-vector to the memory of a fit.
    Host reads: three per centroid (the block potentials, the sampled rows, the best trial).
    """
    ctx = blocks.ctx
    xp = ctx.xp
    n = blocks.X.shape[0]
    trials = 2 + int(math.log(k))
    first = int(rng.integers(n))
    closest = _block_distances(blocks, blocks.rows([first]))
    chosen = [first]
    why = "k-means++ seeding"
    for _ in range(1, k):
        block_potentials = ctx.read(xp.stack([xp.sum(part) for part in closest]), why).astype(np.float64)
        ends = np.cumsum(block_potentials)
        picks = []  # (block, position in the block) of each trial, found on the device
        for target in rng.random(trials) * ends[-1]:  # a loop over the few trials
            b = min(int(np.searchsorted(ends, target, side="right")), len(closest) - 1)
            within = target - (ends[b - 1] if b else 0.0)
            cumulative = xp.cumulative_sum(closest[b])
            picks.append((b, xp.searchsorted(cumulative, ctx.asarray(np.asarray([within]), dtype=cumulative.dtype))))
        positions = ctx.read(xp.concat([position for _, position in picks]), why)
        candidates = [
            min(blocks.bounds[b][0] + int(p), blocks.bounds[b][1] - 1)
            for (b, _), p in zip(picks, positions, strict=True)
        ]
        candidate_rows = blocks.rows(candidates)
        # The potential each candidate would leave: Σᵢ min(D(xᵢ)², ‖xᵢ − candidate‖²).
        candidate_norms = xp.sum(candidate_rows * candidate_rows, axis=1)
        potentials = None
        for block, norms, part in zip(blocks, blocks.squared_norms, closest, strict=True):
            distances = _scores(block, candidate_rows, candidate_norms) + norms[:, None]
            total = xp.sum(xp.minimum(distances, part[:, None]), axis=0)
            potentials = total if potentials is None else potentials + total
        best = int(np.argmin(ctx.read(potentials, why)))
        chosen.append(candidates[best])
        new = _block_distances(blocks, candidate_rows[best : best + 1, ...])
        closest = list(ctx.backend.materialize(*[xp.minimum(a, b) for a, b in zip(closest, new, strict=True)]))
    return blocks.rows(chosen)


def _block_distances(blocks: _Blocks, centroids: Any) -> list[Any]:
    """minₖ ‖xᵢ − cₖ‖² for the rows of each block (a list of blocks, like X's)."""
    xp = blocks.ctx.xp
    centroid_norms = xp.sum(centroids * centroids, axis=1)
    return [
        xp.min(_scores(block, centroids, centroid_norms), axis=1) + norms
        for block, norms in zip(blocks, blocks.squared_norms, strict=True)
    ]


def _column_variance_mean(blocks: _Blocks) -> float:
    """mean over features of Var(X[:, j]) (scikit-learn scales ``tol`` by it).

    Read with Σᵢ‖xᵢ‖², which every distortion J is computed from: if either is not finite,
    X's squares overflow its dtype, and k-means would return NaN -- refused here instead."""
    ctx, X = blocks.ctx, blocks.X
    xp = ctx.xp
    sums = xp.stack([xp.mean(centred_sum_of_squares(X, xp.mean(X, axis=0), xp)), blocks.total_squared_norm])
    centred, total = (float(v) for v in ctx.read(sums, "k-means tol scale"))
    if not (math.isfinite(centred * X.shape[1]) and math.isfinite(total)):
        raise squares_overflow(ctx, X, "KMeans")
    mean: float = centred / X.shape[0]
    return mean


def _lloyd(blocks: _Blocks, centroids: Any, max_iter: int, tol: float) -> tuple[Any, list[Any], Any, int, Any]:
    """Lloyd's iterations from ``centroids``, as scikit-learn's ``algorithm="lloyd"`` runs them.

    Each iteration assigns every row to its nearest centroid (E-step), then moves each
    centroid to the mean of its rows, cₖ = Sₖ / nₖ (M-step; S and n by segment sums).
    Stops when no label changes, or when the centroid shift Σₖ‖cₖ⁺ − cₖ‖² ≤ ``tol``.
    Afterwards one more E-step makes ``labels`` those of the final centroids.

    Host reads: one per iteration -- the number of empty clusters, of changed labels and
    the shift, read together -- plus a few when a cluster empties (rare).
    """
    ctx = blocks.ctx
    xp = ctx.xp
    k = centroids.shape[0]
    history: list[Any] = []
    previous: LloydStep | None = None
    report, on_cost = progress_callback(), cost_callback()
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        labels, sums, counts, changed = _lloyd_step(blocks, centroids, previous)
        dtype = centroids.dtype
        update = ctx.backend.call_once(
            _lloyd_update,
            (centroids, sums, counts, changed, blocks.total_squared_norm),
            [(centroids.shape, dtype), (centroids.shape, dtype), ((k,), dtype), ((4,), dtype)],
        )
        *labels, new_centroids, sums, counts, status = ctx.backend.materialize(*labels, *update)
        # J from the materialised status, not the inertia expression: on Dask that would keep
        # this iteration's whole E-step in the history's graph, recomputed at the end of the fit.
        history.append(status[3])
        n_empty, n_changed, shift_value, distortion = (float(v) for v in ctx.read(status, "k-means convergence"))
        on_cost(n_iter, distortion)
        reseeded = n_empty > 0
        if reseeded:
            empty = np.flatnonzero(ctx.read(counts == 0, "k-means empty-cluster re-seeding"))
            sums, counts = _reseed_empty(blocks, centroids, labels, sums, counts, empty)
            new_centroids = sums / xp.reshape(counts, (k, 1))
            shift = xp.sum((new_centroids - centroids) ** 2)
            new_centroids, sums, counts, shift = ctx.backend.materialize(new_centroids, sums, counts, shift)
            shift_value = float(ctx.read(shift, "k-means empty-cluster re-seeding"))
        centroids = new_centroids
        report(n_iter, max_iter)
        if n_changed == 0 or shift_value <= tol:
            break
        # A re-seeded point sits in its new cluster's sums but keeps its old label: sum
        # all rows again next time rather than update from labels that disagree with S.
        previous = None if reseeded else LloydStep(labels, sums, counts, None)
    del previous, labels  # free the label blocks before the final pass makes new ones
    # One more E-step: the labels of the final centroids (unchanged after a strict
    # convergence) and the inertia measured directly, Σᵢ minₖ ‖xᵢ − cₖ‖².
    labels, inertia = _assign(blocks, centroids)
    return centroids, labels, inertia, n_iter, xp.stack(history)


class KMeans(BaseEstimator):
    """k-means clustering by Lloyd's algorithm: minimise J = Σᵢ ‖xᵢ − c_{lᵢ}‖² over centroids c and labels l.

    Distances come from the GEMM identity ‖x − c‖² = ‖x‖² − 2x·c + ‖c‖², computed in
    blocks of rows sized from a memory budget, so no N × K matrix is built; the
    centroid update is a segment sum (a native scatter-add where the backend has one).

    Attributes
    ----------
    cluster_centers_ : array (n_clusters, n_features), on the compute device
    labels_ : array (n_samples,) of int32
    inertia_ : float
        Σᵢ ‖xᵢ − c_{lᵢ}‖² for the final centroids and labels.
    n_iter_ : int
    cost_history_ : array (n_iter_,)
        The distortion J at each iteration's E-step.
    n_features_in_ : int

    Empty clusters never produce NaN centroids: an empty cluster takes the point
    farthest from its own centroid (the next farthest for a second empty cluster, ...),
    which leaves its former cluster -- a deterministic rule, scikit-learn's.
    """

    _estimator_type: ClassVar[str] = "clusterer"

    n_clusters: int = param(default=8, rule=Integer(1), doc="K, the number of clusters.", kw_only=False)
    init: Literal["k-means++", "random"] | Any = param(
        default="k-means++",
        rule=Either((OneOf(("k-means++", "random")), ArrayLike("an array of starting centroids"))),
        doc="Greedy k-means++ seeding; ``'random'``: ``n_clusters`` distinct training rows (the original "
        "project); or the starting centroids themselves, an array of shape (n_clusters, n_features).",
    )
    init_size: int | None = param(
        default=None,
        rule=Integer(1, allow_none=True),
        doc="k-means++ from this many rows drawn uniformly at random (without replacement) instead of all of "
        "them: one pass over X to take the sample, then about two passes over the sample per centroid, instead "
        "of about two passes over X per centroid. For data that does not fit in memory (Dask), where each pass "
        "reads X from its source; scikit-learn's ``MiniBatchKMeans`` has the same parameter. ``None``, or at "
        "least the number of rows: all rows (scikit-learn's ``KMeans``). The rows are drawn on the host: the "
        "same on every backend.",
    )
    n_init: int | Literal["auto"] = param(
        default="auto",
        rule=Either((OneOf(("auto",)), Integer(1))),
        doc="Runs from different seeds, keeping the lowest inertia. ``'auto'``: 1 for k-means++ or given "
        "centroids, 10 for ``'random'`` (scikit-learn's rule).",
    )
    max_iter: int = param(default=300, rule=Integer(1), doc="Lloyd iterations, at most.")
    tol: float = param(
        default=1e-4,
        rule=Real(),
        doc="Stop when the centroid shift Σₖ‖cₖ⁺ − cₖ‖² is at most ``tol`` × the mean variance of the features "
        "(scikit-learn's convention), or when no label changes.",
    )
    random_state: Any = RANDOM_STATE
    working_memory: int | None = param(
        default=None,
        rule=Integer(1, allow_none=True),
        doc="Bytes for one block of distances; ``None``: the backend's default (more on GPUs and Dask than on CPUs).",
    )
    verbose: bool = VERBOSE

    @staticmethod
    def _n_init(p: SimpleNamespace) -> int:
        if p.n_init == "auto":
            return 10 if isinstance(p.init, str) and p.init == "random" else 1
        n_init: int = p.n_init
        return n_init

    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Cluster the rows of ``X`` (n_samples × n_features); ``y`` is ignored."""
        p = self._validated
        k = p.n_clusters
        n_init = self._n_init(p)
        given = not isinstance(p.init, str)
        fit_input = self._validate_fit_X(X, p)
        ctx, X = fit_input.ctx, fit_input.X
        n = X.shape[0]
        if k > n:
            raise ValueError(f"n_clusters={k} is larger than the number of samples, {n}; use n_clusters <= {n}")
        if p.init_size is not None and p.init_size < k:
            raise ValueError(
                f"init_size={p.init_size} is smaller than n_clusters={k}: k-means++ needs at "
                f"least one row per centroid; use init_size >= {k}, or None for all rows"
            )
        (X,) = ctx.backend.keep(X)  # Dask: persisted when it fits in memory, streamed when it does not
        blocks = _Blocks(ctx, X, k, p.working_memory)
        if given:
            start = check_X(p.init, ctx, dtype=X.dtype, n_features=X.shape[1], name="init")
            if start.shape[0] != k:
                raise ValueError(
                    f"init has {start.shape[0]} centroids but n_clusters={k}; pass an array of shape ({k}, {X.shape[1]})"
                )
        scaled_tol = p.tol * _column_variance_mean(blocks)
        with self._progress_bar(p.max_iter * n_init, p.verbose):
            best = self._runs(blocks, p, n_init, start if given else None, scaled_tol)
        centroids, labels, inertia, n_iter, history = best
        self.cluster_centers_ = centroids
        self.labels_ = ctx.xp.concat(labels)
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.cost_history_ = history
        self._remember_input(fit_input)
        return self

    def _runs(
        self, blocks: _Blocks, p: SimpleNamespace, n_init: int, start: Any, scaled_tol: float
    ) -> tuple[Any, list[Any], float, int, Any]:
        """``n_init`` runs of Lloyd's algorithm from ``start`` (given centroids) or seeded ones; the lowest inertia."""
        ctx, n = blocks.ctx, blocks.X.shape[0]
        k, rng = p.n_clusters, p.random_state
        best = None
        for _ in range(n_init):  # a loop over restarts
            if start is not None:
                centroids = start
            elif p.init == "random":
                centroids = blocks.rows(rng.choice(n, size=k, replace=False))
            elif p.init_size is not None and p.init_size < n:
                # Sorted: on Dask the take reads each chunk once, in order.
                sample = blocks.rows(np.sort(rng.choice(n, size=p.init_size, replace=False)))
                (sample,) = ctx.backend.materialize(sample)  # one pass over X; the seeding reads the sample
                centroids = _kmeans_plus_plus(_Blocks(ctx, sample, k, p.working_memory), k, rng)
            else:
                centroids = _kmeans_plus_plus(blocks, k, rng)
            # Materialised before use (Dask: rows taken from a streamed X would otherwise be
            # taken again inside every chunk's task of the first iteration: 12 passes, not 1).
            (centroids,) = ctx.backend.materialize(centroids)
            run = _lloyd(blocks, centroids, p.max_iter, scaled_tol)
            run = (*run[:2], float(ctx.read(run[2], "k-means inertia")), *run[3:])
            if best is None or run[2] < best[2]:
                best = run
        assert best is not None  # n_init >= 1: at least one run
        return best

    def _blocks(self, X: Any) -> _Blocks:
        ctx, Xc = self._validate_X(X)
        return _Blocks(ctx, Xc, self.n_clusters, self.working_memory)

    def predict(self, X: Any) -> Any:
        """The index of each row's nearest centroid (int32), in the namespace and device of ``X``."""
        blocks = self._blocks(X)
        labels = _assign(blocks, self.cluster_centers_).labels
        return backends.mirror(blocks.ctx.xp.concat(labels), X)

    def fit_predict(self, X: Any, y: Any = None) -> Any:
        """``fit(X)`` then the labels of its rows."""
        self.fit(X)
        return backends.mirror(self.labels_, X)

    def transform(self, X: Any) -> Any:
        """‖x − cₖ‖ for every row and centroid, shape (n_samples, n_clusters), block by block."""
        blocks = self._blocks(X)
        xp = blocks.ctx.xp
        centroids = self.cluster_centers_
        centroid_norms = xp.sum(centroids * centroids, axis=1)
        distances = xp.concat(
            [
                xp.sqrt(positive_part(_scores(block, centroids, centroid_norms) + norms[:, None], xp))
                for block, norms in zip(blocks, blocks.squared_norms, strict=True)
            ]
        )
        return backends.mirror(distances, X)

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """``fit(X)``, then the distances ‖x − cₖ‖ of its rows to the fitted centroids (``y`` is ignored)."""
        return self.fit(X).transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """−J: minus the sum of squared distances of the rows of ``X`` to their nearest centroid."""
        blocks = self._blocks(X)
        return -float(blocks.ctx.read(_assign(blocks, self.cluster_centers_).inertia, "k-means score"))
