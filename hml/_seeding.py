"""Greedy k-means++ seeding as passes over row blocks (:func:`hml.backends.reduce_rows`): the
potentials of each centroid's trials, and D(x)², the squared distance to the nearest centroid so far."""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from hml import kernels
from hml._kmeans import Data, about, nearest_distances
from hml.backends import PerBlock, Rows, Sum

__all__ = ["KEEP_TRIAL_BYTES", "kmeans_plus_plus"]

#: k-means++ keeps its trials' D(x)² (N × trials values) up to this many bytes and a quarter of X; beyond
#: (10⁷ rows, or few features) seeding holds X and two N-vectors only (issue 5's memory floor).
KEEP_TRIAL_BYTES = 64 << 20


def kmeans_plus_plus(data: Data, k: int, rng: np.random.Generator) -> Any:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii; the greedy variant scikit-learn uses).

    The first centroid is a uniformly random row (∝ its weight); each next one is the best, by the
    resulting potential Σᵢ sᵢ minₖ‖xᵢ − cₖ‖², of 2 + ⌊ln k⌋ rows drawn with probability ∝ s D(x)², D(x)²
    the squared distance to the nearest centroid chosen so far: for a uniform draw t from [0, Σ D(x)²), the
    row where the running sum of D(x)² passes t -- found from the blocks' totals (added up on the
    host, in float64), then within the one block t falls in. The random numbers are drawn on the
    host, so a seed picks the same rows on every backend. D(x)² is one N-vector beside X. Host
    reads: the blocks' sizes once, then three per centroid (the blocks' potentials, the sampled
    rows, the best trial). Passes over X: one per centroid where the trials' D(x)², N × trials values,
    take at most :data:`KEEP_TRIAL_BYTES` and a quarter of X (the winner's are then a column of them),
    else two (the winner's recomputed) -- and always two on a lazy backend (they would stay in the graph).
    """
    ctx, X = data.ctx, data.X
    xp = ctx.xp
    n = X.shape[0]
    trials = 2 + int(math.log(k))
    why = "k-means++ seeding"
    if data.weights is None:
        first = int(rng.integers(n))
    else:
        host = np.asarray(ctx.read(data.weights, why), dtype=np.float64)
        first = int(rng.choice(n, p=host / host.sum()))
    closest = nearest_distances(data, ctx.take_rows(X, [first]))
    chosen = [first]
    per_block = {"potential": PerBlock(X.dtype), "rows": PerBlock(xp.int64)}
    weighted, none = ([], (None,)) if data.weights is None else ([data.weights], ())
    blocks = data.reduce(_block_potential, [closest, *weighted], none, per_block)
    stops = np.cumsum(ctx.read(blocks.rows, why))  # once: the blocks are the same in every pass
    starts = np.concatenate([[0], stops[:-1]])
    out = {"potentials": Sum((trials,), X.dtype)}
    kept_bytes = n * trials * (4 if X.dtype == xp.float32 else 8)
    keep = not ctx.backend.lazy and kept_bytes <= KEEP_TRIAL_BYTES and 4 * trials <= X.shape[1]
    nearest = Rows(X.dtype, width=trials)
    for _ in range(1, k):
        ends = np.cumsum(ctx.read(blocks.potential, why).astype(np.float64))
        picks = []  # (block, position in the block) of each trial, found on the device
        for target in rng.random(trials) * ends[-1]:  # a loop over the few trials
            b = min(int(np.searchsorted(ends, target, side="right")), len(ends) - 1)
            within = target - (ends[b - 1] if b else 0.0)
            mass = closest[int(starts[b]) : int(stops[b])]
            if data.weights is not None:
                mass = mass * data.weights[int(starts[b]) : int(stops[b])]
            cumulative = xp.cumulative_sum(mass)
            picks.append((b, xp.searchsorted(cumulative, ctx.asarray(np.asarray([within]), dtype=cumulative.dtype))))
        positions = ctx.read(xp.concat([position for _, position in picks]), why)
        candidates = [
            min(int(starts[b]) + int(p), int(stops[b]) - 1) for (b, _), p in zip(picks, positions, strict=True)
        ]
        rows = ctx.take_rows(X, candidates)
        # The potential each candidate would leave: Σᵢ min(D(xᵢ)², ‖xᵢ − candidate‖²).
        shared = about(rows, data.origin)[:2]
        arrays = [X, data.squared_norms, closest, *weighted]
        if keep:
            result = data.reduce(_trial_block, arrays, (*none, *shared), {**out, "nearest": nearest})
            best = int(np.argmin(ctx.read(result.potentials, why)))
            (closest,) = ctx.backend.materialize(result.nearest[:, best])
        else:
            potentials = data.reduce(_potential_block, arrays, (*none, *shared), out).potentials
            best = int(np.argmin(ctx.read(potentials, why)))
            new = nearest_distances(data, rows[best : best + 1, ...])
            (closest,) = ctx.backend.materialize(xp.minimum(closest, new))
        chosen.append(candidates[best])
        blocks = data.reduce(_block_potential, [closest, *weighted], none, per_block)
    return ctx.take_rows(X, chosen)


def _block_potential(closest: Any, weights: Any) -> tuple[Any, Any]:
    """This block's Σ s D(x)², and its number of rows."""
    xp = array_api_compat.array_namespace(closest)
    rows = xp.full((1,), closest.shape[0], dtype=xp.int64, device=array_api_compat.device(closest))
    potential = xp.sum(closest) if weights is None else xp.vecdot(weights, closest)
    return xp.reshape(potential, (1,)), rows


def _trial_block(X: Any, norms: Any, closest: Any, weights: Any, shifted: Any, bias: Any) -> tuple[Any, Any]:
    """Σᵢ sᵢ min(D(xᵢ)², ‖xᵢ − c‖²) over these rows for each candidate c, and the min(D(xᵢ)², ‖xᵢ − c‖²)
    (``norms``: the rows' ‖x − o‖²; ``shifted``, ``bias``: the candidates' :func:`hml._kmeans.relative`)."""
    xp = array_api_compat.array_namespace(X)
    distances = kernels.scores(X, shifted, bias)
    distances += norms[:, None]
    nearest = xp.minimum(distances, closest[:, None])
    return (xp.sum(nearest, axis=0) if weights is None else weights @ nearest), nearest


def _potential_block(X: Any, norms: Any, closest: Any, weights: Any, shifted: Any, bias: Any) -> tuple[Any]:
    """Σᵢ sᵢ min(D(xᵢ)², ‖xᵢ − c‖²) over these rows, for each candidate c."""
    return _trial_block(X, norms, closest, weights, shifted, bias)[:1]
