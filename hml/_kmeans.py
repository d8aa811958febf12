"""k-means as passes over row blocks: X's squared norms, the E-step, Lloyd's step and update,
k-means++ seeding -- each a block function that
:func:`hml.backends.reduce_rows` runs over the rows (blocks, threads, chunks), so no N × K matrix
is ever built. :mod:`hml.cluster` iterates them.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import array_api_compat

from hml import backends, kernels
from hml._array import squares_overflow
from hml.backends import Rows, Sum
from hml.numerics import centred_sum_of_squares, positive_part

__all__ = [
    "Data",
    "LloydStep",
    "about",
    "assign",
    "assign_and_count",
    "cluster_means",
    "column_variance_mean",
    "lloyd_step",
    "lloyd_update",
    "nearest_distances",
    "origin",
    "prepared",
    "relative",
    "row_bytes_per_row",
    "sums_and_counts",
    "transform_block",
]


class _WithoutNorms(NamedTuple):
    """A block function of (X, ‖x‖², s, *shared) called with X's and s's rows only: None for ‖x‖²."""

    block: Any

    def __call__(self, X: Any, weights: Any, *shared: Any) -> Any:
        return self.block(X, None, weights, *shared)


class Data(NamedTuple):
    """X as the passes of a fit read it: with ‖xᵢ − o‖² per row and Σᵢ sᵢ‖xᵢ − o‖², computed once (and, on a
    lazy backend, held), the bytes per row and block that size the blocks, the sample weights sᵢ
    (None: every row counts once; a fit's weights, normalised to mean 1, otherwise), and the origin o
    the distances are computed from (:func:`origin`; None where no ‖x − o‖² are kept: :func:`about`).

    A block function takes X's rows, then ‖x‖²'s, then the weights' -- or None in their place,
    passed in ``shared`` when there are none (:meth:`rows`)."""

    ctx: backends.ComputeContext
    X: Any
    squared_norms: Any
    total_squared_norm: Any
    row_bytes: Any
    working_memory: int | None
    weights: Any = None
    origin: Any = None

    def rows(self, block: Any) -> tuple[Any, list[Any], tuple[Any, ...]]:
        """``block`` (a function of X's rows, ‖x‖²'s, the weights', then its shared arguments) as
        :meth:`reduce` calls it, the row arrays present, and the Nones that stand for the absent ones
        at the start of the shared arguments; with weights but no ‖x‖², the block behind an adapter
        that puts None between X and the weights (the block then computes ‖x‖² itself)."""
        if self.squared_norms is None and self.weights is not None:
            return _WithoutNorms(block), [self.X, self.weights], ()
        present = [a for a in (self.X, self.squared_norms, self.weights) if a is not None]
        return block, present, (None,) * (3 - len(present))

    def reduce(
        self, function: Any, arrays: list[Any], shared: tuple[Any, ...], out: dict[str, Any], **kwargs: Any
    ) -> Any:
        """:func:`hml.backends.reduce_rows` of ``function`` over blocks of X's rows."""
        return backends.reduce_rows(
            function, arrays, shared, out=out, row_bytes=self.row_bytes, working_memory=self.working_memory, **kwargs
        )


def row_bytes_per_row(n_clusters: int, n_features: int, like: Any) -> int:
    """A block's bytes per row, in the library and dtype of ``like`` (X, or a vector beside it, so
    that both are cut into the same blocks): the row and what the E-step writes for it."""
    itemsize = 4 if like.dtype == array_api_compat.array_namespace(like).float32 else 8
    return int(itemsize * (kernels.nearest_centroid_scratch(like, n_clusters, n_features) + n_features))


def prepared(
    ctx: backends.ComputeContext, X: Any, n_clusters: int, working_memory: int | None, weights: Any = None
) -> Data:
    """X with its squared distances from the origin (one pass), for the passes of a fit; X row-major."""
    X = kernels.row_major(X)
    row_bytes = functools.partial(row_bytes_per_row, n_clusters, X.shape[1])  # in each chunk's own library
    out: dict[str, Rows | Sum] = {"norms": Rows(X.dtype), "total": Sum((), X.dtype)}
    # Lazily, o is computed with the norms from X's first rows: the first chunks are read once, in their pass.
    o = origin(X, spread=not ctx.backend.lazy)
    arrays, shared = ([X], (None, o)) if weights is None else ([X, weights], (o,))
    norms = backends.reduce_rows(
        _norms_block, arrays, shared, out=out, row_bytes=row_bytes, working_memory=working_memory
    )
    o, squared_norms, total = ctx.backend.materialize(o, norms.norms, norms.total)
    return Data(ctx, X, squared_norms, total, row_bytes, working_memory, weights, o)


def _norms_block(X: Any, weights: Any, origin: Any) -> tuple[Any, Any]:
    norms = squared_from(X, origin)
    xp = array_api_compat.array_namespace(norms)
    return norms, xp.sum(norms) if weights is None else xp.vecdot(weights, norms)


#: How many of X's first rows :func:`origin` averages.
ORIGIN_ROWS = 1024


def origin(X: Any, spread: bool = True) -> Any:
    """o, the mean of :data:`ORIGIN_ROWS` of X's rows, evenly spaced through X (``spread``; X's first
    rows otherwise): a point among the data, which the distances are computed from.

    ‖x − c‖² = ‖x‖² − 2x·c + ‖c‖² in X's dtype carries a rounding error of about ε(‖x‖² + ‖c‖²): where
    the data lie far from 0 against their spread (float32 coordinates near 10³ with a spread near 1)
    that is larger than the differences that decide a nearest centroid, and the labels, inertia and
    distances come out wrong. From o (:func:`relative`) the error is about ε‖x‖‖c − o‖ instead: smaller
    by the ratio of the data's distance from 0 to its spread -- most of what scikit-learn gets by centring
    a copy of X by its mean (exact at any distance), with no copy and no extra pass (o, unlike X's mean,
    needs no pass of its own). Rows spread through X keep o among the data where X is sorted (by group,
    by time) and its first rows lie apart from the rest; on a lazy backend, where that sample would read
    every chunk in a pass of its own, the first rows stand in. A pass that keeps no ‖x − o‖² (predict,
    mini-batches) takes the centroids' mean instead (:func:`about`)."""
    xp = array_api_compat.array_namespace(X)
    n = X.shape[0]
    step = max(1, n // ORIGIN_ROWS) if spread else 1
    return xp.mean(X[: min(step * ORIGIN_ROWS, n) : step, ...], axis=0)  # the standard leaves stops past the end open


def squared_from(X: Any, origin: Any) -> Any:
    """‖xᵢ − o‖² for each row of X."""
    xp = array_api_compat.array_namespace(X)
    shifted = X - origin
    return xp.vecdot(shifted, shifted)  # a fused multiply-add along each row: no second temporary


def squared_to(X: Any, centroids: Any, labels: Any) -> Any:
    """‖xᵢ − c_{lᵢ}‖² for each row of X, from the differences: no cancellation (a row at its centroid gives 0)."""
    xp = array_api_compat.array_namespace(X)
    difference = xp.take(centroids, labels, axis=0)
    difference -= X  # c − x in place: one N × D temporary, not two (X is in the centroids' dtype)
    return xp.vecdot(difference, difference)


def relative(centroids: Any, origin: Any) -> tuple[Any, Any]:
    """(c − o, ‖c − o‖² + 2o·(c − o)) for each centroid c: the arguments of
    :func:`hml.kernels.nearest_centroid` and :func:`hml.kernels.scores` whose scores
    ‖c − o‖² + 2o·(c − o) − 2x·(c − o) are ‖x − c‖² − ‖x − o‖² (the same argmin as ‖x − c‖²;
    adding ‖x − o‖² gives the distance)."""
    xp = array_api_compat.array_namespace(centroids)
    shifted = centroids - origin
    return shifted, xp.sum(shifted * (shifted + 2.0 * origin), axis=1)


def about(centroids: Any, origin: Any) -> tuple[Any, Any, Any]:
    """:func:`relative`'s (c − o, ‖c − o‖² + 2o·(c − o)), and o: ``origin``, or where it is None (a pass that
    keeps no ‖x − o‖²) the centroids' mean, also a point among the data. One task on Dask
    (:func:`hml.backends.call_once`): as a few lazy operations, used by several computations, they were
    graph keys reused with other contents, which Dask warns of."""
    k, d = centroids.shape
    out = [((k, d), centroids.dtype), ((k,), centroids.dtype), ((d,), centroids.dtype)]
    return backends.call_once(_about, (centroids, origin), out)


def _about(centroids: Any, origin: Any) -> tuple[Any, Any, Any]:
    if origin is None:
        origin = array_api_compat.array_namespace(centroids).mean(centroids, axis=0)
    return (*relative(centroids, origin), origin)


# -- the E-step, the M-step and what they share -----------------------------------------------------
def _assign_block(
    X: Any, norms: Any, weights: Any, centroids: Any, shifted: Any, bias: Any, measure: bool
) -> tuple[Any, Any]:
    """lᵢ = argminₖ ‖xᵢ − cₖ‖² on these rows (``shifted``, ``bias``: :func:`relative`'s) and, with ``measure``
    (else 0), J = Σᵢ sᵢ ‖xᵢ − c_{lᵢ}‖² measured directly, from the differences: no cancellation, so a row at its
    centroid adds exactly 0 (``norms`` unused)."""
    xp = array_api_compat.array_namespace(X)
    nearest, _ = kernels.nearest_centroid(X, shifted, bias)
    if not measure:
        return nearest, xp.zeros((), dtype=X.dtype, device=array_api_compat.device(X))
    distances = squared_to(X, centroids, nearest)
    return nearest, xp.sum(distances) if weights is None else xp.vecdot(weights, distances)


def _distance_block(X: Any, norms: Any, shifted: Any, bias: Any) -> tuple[Any]:
    """minₖ ‖xᵢ − cₖ‖² for these rows (``norms``: their ‖x − o‖²; ``shifted``, ``bias``: :func:`relative`'s)."""
    xp = array_api_compat.array_namespace(X)
    return (xp.min(kernels.scores(X, shifted, bias), axis=1) + norms,)


def transform_block(X: Any, centroids: Any, shifted: Any, bias: Any, origin: Any) -> tuple[Any]:
    """‖xᵢ − cₖ‖ for these rows and every centroid.

    From the GEMM identity on the rows about the origin o, ‖x − o‖² − 2(x − o)·(c − o) + ‖c − o‖² (clipped
    at 0 before the root; ``shifted`` = c − o, ``bias`` unused), except the distance to each row's nearest
    centroid, computed directly as ‖xᵢ − c_{lᵢ}‖: the identity cancels catastrophically where x ≈ c (a
    point at a centroid would be ~1e-7·‖x − o‖ from it, not 0), and the nearest centroid is where that
    happens. One extra gather and difference per row, no N × K × D work. The rows less o (a transform is
    one pass: the copy is cheap there) keep the GEMM's terms the size of the distances: with x itself they
    were ‖x‖·‖c − o‖, and float32 data 10⁴ from 0 had distances 10⁻² off.
    """
    xp = array_api_compat.array_namespace(X)
    rows = X - origin
    scores = kernels.scores(rows, shifted, xp.sum(shifted * shifted, axis=1))
    squared = positive_part(scores + xp.vecdot(rows, rows)[:, None], xp)
    nearest = xp.argmin(scores, axis=1)
    exact = squared_to(X, centroids, nearest)
    k = centroids.shape[0]
    is_nearest = xp.arange(k, dtype=nearest.dtype, device=array_api_compat.device(X))[None, :] == nearest[:, None]
    return (xp.sqrt(xp.where(is_nearest, exact[:, None], squared)),)


def _assign_counting_block(
    X: Any, norms: Any, weights: Any, centroids: Any, shifted: Any, bias: Any, measure: bool
) -> tuple[Any, Any, Any]:
    """:func:`_assign_block` and nₖ, the number of these rows each centroid is nearest to."""
    nearest, inertia = _assign_block(X, norms, weights, centroids, shifted, bias, measure)
    return nearest, inertia, kernels.segment_count(nearest, centroids.shape[0], X.dtype)


def assign(data: Data, centroids: Any, measure: bool = True) -> tuple[Any, Any]:
    """The E-step alone: each row's nearest centroid (int32) and the distortion J they give (0-d; 0 without
    ``measure``)."""
    step = _assign(data, centroids, _assign_block, {}, measure)
    return step.labels, step.inertia


def assign_and_count(data: Data, centroids: Any) -> tuple[Any, Any, Any]:
    """:func:`assign`, and the number of clusters no row is nearest to (0-d, in X's dtype)."""
    xp = array_api_compat.array_namespace(centroids)
    more = {"counts": Sum((centroids.shape[0],), centroids.dtype)}
    step = _assign(data, centroids, _assign_counting_block, more, True)
    return step.labels, step.inertia, xp.sum(xp.astype(step.counts == 0, centroids.dtype))


def _assign(data: Data, centroids: Any, block: Any, more: dict[str, Any], measure: bool) -> Any:
    out = {"labels": Rows(array_api_compat.array_namespace(centroids).int32), "inertia": Sum((), centroids.dtype)}
    block, arrays, absent = data.rows(block)
    shifted, bias, _ = about(centroids, data.origin)
    return data.reduce(block, arrays, (*absent, centroids, shifted, bias, measure), {**out, **more})


def nearest_distances(data: Data, centroids: Any) -> Any:
    """minₖ ‖xᵢ − cₖ‖² for every row (an N-vector, like X's rows)."""
    out = {"distances": Rows(centroids.dtype)}
    arrays, shared = [data.X, data.squared_norms], about(centroids, data.origin)[:2]
    return data.reduce(_distance_block, arrays, shared, out).distances


class LloydStep(NamedTuple):
    """One Lloyd iteration's E-step with what its M-step needs."""

    labels: Any  # int32 labels
    sums: Any  # S (K × D): Sₖ = Σ_{i: lᵢ = k} xᵢ
    counts: Any  # n (K,): nₖ = #{i: lᵢ = k}
    n_changed: Any  # how many labels differ from the previous step's (None on the first)


def _first_lloyd_block(
    X: Any, weights: Any, shifted: Any, bias: Any, k: int, carried: Any
) -> tuple[Any, Any, Any, Any]:
    """:func:`_lloyd_block` of the first iteration: no labels before (the count of changes is 0)."""
    return _lloyd_block(X, None, weights, shifted, bias, k, carried)


def sums_and_counts(X: Any, weights: Any, labels: Any, k: int) -> tuple[Any, Any]:
    """Sₖ = Σ_{lᵢ=k} sᵢxᵢ and nₖ = Σ_{lᵢ=k} sᵢ (sᵢ = 1 without weights: the rows and their number)."""
    if weights is None:
        sums, counts = kernels.segment_sum_and_count(X, labels, k)
        return sums, counts
    xp = array_api_compat.array_namespace(X)
    column = xp.reshape(weights, (-1, 1))
    return kernels.segment_sum(X * column, labels, k), xp.reshape(kernels.segment_sum(column, labels, k), (k,))


def _lloyd_block(
    X: Any, before: Any, weights: Any, shifted: Any, bias: Any, k: int, carried: Any
) -> tuple[Any, Any, Any, Any]:
    """The E-step on these rows (``shifted``, ``bias``: :func:`relative`'s) with their share of the M-step's S
    and n, and #labels ≠ ``before``.

    ``carried``: the dtype of the S and n carried from one iteration to the next (float64 where the device
    has it), or None where every iteration sums all rows. Carried, they change only by the rows whose label
    changed -- after the first few iterations a few percent of them -- so the block returns that change,
    from those rows alone. Float32 rows are summed in float64 then, also on the first iteration: S is then
    the same function of the labels whatever moves led to them (else its roundings add up over the
    iterations, and the labels of near-ties may cycle).
    """
    xp = array_api_compat.array_namespace(X)
    # int32 labels: half the memory of the default index type (40 MB per 10 M rows).
    nearest, _ = kernels.nearest_centroid(X, shifted, bias)
    if before is not None and carried is not None:
        return nearest, *kernels.segment_moves(X, weights, before, nearest, k, dtype=carried)
    n_changed = xp.zeros((), dtype=xp.int64, device=array_api_compat.device(X))
    if before is not None:
        n_changed = xp.sum(xp.astype(nearest != before, xp.int64))
    if carried is not None and carried != X.dtype:
        X, weights = (None if a is None else xp.astype(a, carried) for a in (X, weights))
    return nearest, *sums_and_counts(X, weights, nearest, k), n_changed


def lloyd_step(data: Data, centroids: Any, previous: LloydStep | None) -> LloydStep:
    """The E-step with the M-step's per-cluster sums S and counts n, over the blocks of X.

    With the ``previous`` step, S and n are updated from the rows whose label changed only --
    where selecting rows by a data-dependent mask costs no wait (not on a GPU, where it reads the
    count back: there every block sums all its rows, one scatter-add kernel). Those S and n are
    carried in float64 where the device has it (:func:`_lloyd_block`).
    """
    ctx, X = data.ctx, data.X
    xp = ctx.xp
    k, d = centroids.shape
    carried = None
    if ctx.backend.cheap_data_dependent_shapes(X):
        carried = xp.float64 if ctx.backend.supports_float64(ctx.device) else X.dtype
    summed = X.dtype if carried is None else carried
    out = {
        "labels": Rows(xp.int32),
        "sums": Sum((k, d), summed),
        "counts": Sum((k,), summed),
        "changed": Sum((), xp.int64),
    }
    shared = (*about(centroids, data.origin)[:2], k, carried)
    rows, none = ([X], (None,)) if data.weights is None else ([X, data.weights], ())
    if previous is None:
        step = data.reduce(_first_lloyd_block, rows, (*none, *shared), out)
        return LloydStep(step.labels, step.sums, step.counts, None)
    start = {"sums": previous.sums, "counts": previous.counts} if carried is not None else None
    rows = [X, previous.labels] + ([] if data.weights is None else [data.weights])
    step = data.reduce(_lloyd_block, rows, (*none, *shared), out, start=start)
    return LloydStep(step.labels, step.sums, step.counts, step.changed)


def lloyd_update(
    centroids: Any, sums: Any, counts: Any, n_changed: Any, total_squared_norm: Any, origin: Any, empty_below: Any
) -> tuple[Any, Any, Any, Any]:
    """The M-step and what the convergence test reads, from the E-step's S, n and #changed labels.

    cₖ⁺ = Sₖ / nₖ (an empty cluster keeps its centroid here; it is re-seeded once the status
    shows it), and status = [#empty clusters, #changed labels (−1 on the first iteration),
    shift Σₖ‖cₖ⁺ − cₖ‖², J]. J is the distortion at the centroids ``c`` the labels were
    chosen for, from the sums about the origin o (``total_squared_norm`` = Σᵢ‖xᵢ − o‖²):
    J = Σᵢ‖xᵢ − o‖² − 2 Σₖ (cₖ − o)·(Sₖ − nₖo) + Σₖ nₖ‖cₖ − o‖², no N-long pass.
    Returns (c⁺, S, n, status): c⁺ in the centroids' dtype, S and n in theirs (:func:`lloyd_step`'s).
    A cluster is empty where nₖ < ``empty_below`` (:func:`hml._reseeding.empty_below`). Written for
    :func:`hml.backends.call_once`: one task on a lazy backend.
    """
    xp = array_api_compat.array_namespace(centroids, sums, counts)
    empty = counts < empty_below
    new_centroids = cluster_means(centroids, sums, counts, empty_below)
    shift = xp.sum((new_centroids - centroids) ** 2)
    shifted, column = centroids - origin, xp.reshape(counts, (-1, 1))
    inertia = total_squared_norm - 2.0 * xp.sum(shifted * (sums - column * origin)) + xp.sum(column * shifted * shifted)
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


def cluster_means(centroids: Any, sums: Any, counts: Any, empty_below: Any) -> Any:
    """cₖ⁺ = Sₖ / nₖ in the centroids' dtype, and cₖ⁺ = cₖ for a cluster with no rows (nₖ < ``empty_below``,
    :func:`hml._reseeding.empty_below`): never 0/0, nor a residue over a residue."""
    xp = array_api_compat.array_namespace(centroids, sums, counts)
    empty = xp.reshape(counts < empty_below, (-1, 1))
    means = sums / xp.where(empty, xp.ones_like(sums[:, :1]), xp.reshape(counts, (-1, 1)))
    return xp.where(empty, centroids, xp.astype(means, centroids.dtype, copy=False))


def column_variance_mean(data: Data, tol: float = 1.0) -> float:
    """``tol`` × the mean over features of Var(X[:, j]) (scikit-learn scales ``tol`` by it), read with Σᵢ‖xᵢ‖²:
    if either is not finite, X's squares overflow its dtype and k-means would return NaN -- refused here (for
    ``tol`` = 0, the total alone, which bounds the centred sum of squares: no pass over X for the variances)."""
    ctx, X, s = data.ctx, data.X, data.weights
    if not tol:
        if not math.isfinite(float(ctx.read(data.total_squared_norm, "k-means overflow check"))):
            raise squares_overflow(ctx, X, "KMeans")
        return 0.0
    centre = ctx.xp.mean(X, axis=0) if s is None else (s @ X) / float(X.shape[0])
    sums = ctx.xp.stack([ctx.xp.mean(centred_sum_of_squares(X, centre, ctx.xp, s)), data.total_squared_norm])
    centred, total = (float(v) for v in ctx.read(sums, "k-means tol scale"))
    if not (math.isfinite(centred * X.shape[1]) and math.isfinite(total)):
        raise squares_overflow(ctx, X, "KMeans")
    return tol * centred / int(X.shape[0])
