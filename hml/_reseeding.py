"""Empty clusters of Lloyd's algorithm: which clusters hold no row, and the farthest rows that re-seed
them (scikit-learn's rule). Rare: these passes and reads run only when a cluster empties."""

from __future__ import annotations

from typing import Any

import numpy as np

from hml._kmeans import Data, nearest_distances

__all__ = ["empty_below", "reseed_empty"]


def empty_below(data: Data) -> Any:
    """Half the smallest positive weight (½ without weights): a cluster whose nₖ is below it holds no row.

    Not nₖ = 0: carried from step to step (``lloyd_step``), a weighted nₖ that lost all its rows is a
    rounding residue (−4.4e-16, say) -- and its Sₖ / nₖ a centroid anywhere. A cluster with a row has
    nₖ ≥ its weight, so the test is exact while the residue is below half the smallest weight."""
    if data.weights is None:
        return 0.5
    xp = data.ctx.xp
    return 0.5 * xp.min(xp.where(data.weights > 0, data.weights, xp.full_like(data.weights, xp.inf)))


def reseed_empty(data: Data, centroids: Any, labels: Any, sums: Any, counts: Any, empty: np.ndarray) -> tuple[Any, Any]:
    """Move each empty cluster to one of the points farthest from their centroid.

    The rule (scikit-learn's): the n_empty points with the largest ‖xᵢ − c_{lᵢ}‖², farthest
    first, become the centroids of the empty clusters in index order, and leave the sums
    and counts of the clusters they were in. Deterministic: no random numbers. Only points
    away from their centroid move: a point at its centroid would leave one cluster empty to
    fill another, and when every point is at its centroid (fewer distinct points than
    clusters) the empty clusters stay empty, keeping their centroids.
    """
    ctx = data.ctx
    xp = ctx.xp
    # The labels are each row's nearest centroid, so "own centroid" is the nearest one.
    distances = nearest_distances(data, centroids)
    if data.weights is not None:  # a row of weight 0 is not there: it cannot seed a cluster
        distances = xp.where(data.weights > 0, distances, xp.zeros_like(distances))
    why = "k-means empty-cluster re-seeding"  # rare: these reads happen only when a cluster empties
    farthest = ctx.read(xp.argsort(distances, descending=True, stable=True)[: empty.size], why)
    farthest = farthest[ctx.read(xp.take(distances, ctx.asarray(farthest), axis=0) > 0, why)]
    if farthest.size == 0:
        return sums, counts
    old_labels = ctx.read(ctx.take_rows(labels, farthest), why)
    sums_host, counts_host = ctx.read(sums, why).copy(), ctx.read(counts, why).copy()
    rows = ctx.read(ctx.take_rows(data.X, farthest), why)
    weights = np.ones(farthest.size) if data.weights is None else ctx.read(ctx.take_rows(data.weights, farthest), why)
    # A loop over the (few) empty clusters, the first len(farthest) of them. Weighted, a cluster left with no
    # row keeps a rounding residue for nₖ, below empty_below: it keeps its centroid (cluster_means).
    for cluster, previous, row, weight in zip(empty, old_labels, rows, weights, strict=False):
        sums_host[previous] -= weight * row
        counts_host[previous] -= weight
        sums_host[cluster] = weight * row
        counts_host[cluster] = weight
    return ctx.asarray(sums_host, dtype=sums.dtype), ctx.asarray(counts_host, dtype=counts.dtype)
