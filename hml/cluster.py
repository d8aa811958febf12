"""k-means clustering (Lloyd's algorithm), written once against the array API.

Every pass over X runs on blocks of rows (:mod:`hml._kmeans`, through :func:`hml.backends.reduce_rows`),
so no N × K matrix is ever built: a 10-million-row fit needs X, two int32 label vectors and ‖x‖²,
plus one block.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any, ClassVar, Literal

import numpy as np

from hml import backends
from hml._array import check_sample_weight, check_X
from hml._kmeans import (
    Data,
    LloydStep,
    assign,
    assign_and_count,
    centroid_norms,
    cluster_means,
    column_variance_mean,
    kmeans_plus_plus,
    lloyd_step,
    lloyd_update,
    prepared,
    reseed_empty,
    row_bytes_per_row,
    transform_block,
)
from hml._params import ArrayLike, Either, Integer, OneOf, Real, param
from hml.backends import Rows
from hml.base import RANDOM_STATE, VERBOSE, BaseEstimator
from hml.exceptions import ConvergenceWarning, warn
from hml.optimize import cost_callback, progress_callback

__all__ = ["KMeans"]


def _lloyd(data: Data, centroids: Any, max_iter: int, tol: float) -> tuple[Any, Any, Any, int, Any]:
    """Lloyd's iterations from ``centroids``, as scikit-learn's ``algorithm="lloyd"`` runs them.

    Each iteration assigns every row to its nearest centroid (E-step), then moves each
    centroid to the mean of its rows, cₖ = Sₖ / nₖ (M-step; S and n by segment sums).
    Stops when no label changes, or when the centroid shift Σₖ‖cₖ⁺ − cₖ‖² ≤ ``tol``.
    Afterwards one more E-step makes ``labels`` those of the final centroids.

    Host reads: one per iteration -- the number of empty clusters, of changed labels and
    the shift, read together -- plus a few when a cluster empties (rare). Returns the
    centroids, the labels, [inertia, #clusters without a row] (on the device), the
    iterations and the history.
    """
    ctx = data.ctx
    xp = ctx.xp
    k = centroids.shape[0]
    history: list[Any] = []
    previous: LloydStep | None = None
    report, on_cost = progress_callback(), cost_callback()
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        labels, sums, counts, changed = lloyd_step(data, centroids, previous)
        dtype = centroids.dtype
        update = backends.call_once(
            lloyd_update,
            (centroids, sums, counts, changed, data.total_squared_norm),
            [(centroids.shape, dtype), (centroids.shape, dtype), ((k,), dtype), ((4,), dtype)],
        )
        labels, new_centroids, sums, counts, status = ctx.backend.materialize(labels, *update)
        # J from the materialised status, not the inertia expression: lazily that would keep
        # this iteration's whole E-step in the history's graph, recomputed at the end of the fit.
        history.append(status[3])
        n_empty, n_changed, shift_value, distortion = (float(v) for v in ctx.read(status, "k-means convergence"))
        on_cost(n_iter, distortion)
        reseeded = n_empty > 0
        if reseeded:
            empty = np.flatnonzero(ctx.read(counts == 0, "k-means empty-cluster re-seeding"))
            sums, counts = reseed_empty(data, centroids, labels, sums, counts, empty)
            new_centroids = cluster_means(centroids, sums, counts)
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
    del previous, labels  # free the labels before the final pass makes new ones
    # One more E-step: the labels of the final centroids (unchanged after a strict
    # convergence), the inertia measured directly, Σᵢ minₖ ‖xᵢ − cₖ‖², and how many
    # clusters are left with no row (more clusters than distinct points).
    labels, inertia, n_empty = assign_and_count(data, centroids)
    return centroids, labels, xp.stack([inertia, n_empty]), n_iter, xp.stack(history)


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
        The distortion J at each iteration's E-step (J at the centroids that iteration started from).
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
        doc="Bytes for one block of rows and its distances; ``None``: the backend's default (more on a GPU "
        "than on a CPU; on Dask, that of the chunks' library, in each chunk).",
    )
    verbose: bool = VERBOSE

    @staticmethod
    def _n_init(p: SimpleNamespace) -> int:
        if p.n_init == "auto":
            return 10 if isinstance(p.init, str) and p.init == "random" else 1
        n_init: int = p.n_init
        return n_init

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> KMeans:
        """Cluster the rows of ``X`` (n_samples × n_features); ``y`` is ignored. ``sample_weight`` (one per
        row, ≥ 0) counts a row that many times: weighted centroids Sₖ/nₖ = Σ sᵢxᵢ / Σ sᵢ, inertia Σ sᵢ‖xᵢ − c‖²,
        k-means++ draws ∝ sᵢ D(xᵢ)²."""
        p = self._validated
        k = p.n_clusters
        n_init = self._n_init(p)
        given = not isinstance(p.init, str)
        if given and n_init != 1:
            warn(
                f"Explicit initial center position passed: performing only one init in KMeans instead of "
                f"n_init={n_init} (every run would start from the same centroids); pass n_init=1",
                RuntimeWarning,
            )
            n_init = 1
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
        weights = check_sample_weight(sample_weight, ctx, n_samples=n, dtype=X.dtype)
        # Held when they fit in memory, streamed from their source when they do not.
        (X,) = backends.keep(X)
        s = None if weights is None else weights.normalised
        data = prepared(ctx, X, k, p.working_memory, s)
        if given:
            start = check_X(p.init, ctx, dtype=X.dtype, n_features=X.shape[1], name="init")
            if start.shape[0] != k:
                raise ValueError(
                    f"init has {start.shape[0]} centroids but n_clusters={k}; pass an array of shape ({k}, {X.shape[1]})"
                )
        scaled_tol = p.tol * column_variance_mean(data)
        with self._progress_bar(p.max_iter * n_init, p.verbose):
            best = self._runs(data, p, n_init, start if given else None, scaled_tol)
        centroids, labels, inertia, n_iter, history = best
        if weights is not None:  # from the mean-1 weights ŝ = s·n/Σs back to Σ sᵢ‖xᵢ − c‖²
            inertia, history = inertia * (weights.total / n), history * (weights.total / n)
        self.cluster_centers_ = centroids
        self.labels_ = labels
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.cost_history_ = history
        self._remember_input(fit_input)
        return self

    def _runs(
        self, data: Data, p: SimpleNamespace, n_init: int, start: Any, scaled_tol: float
    ) -> tuple[Any, Any, float, int, Any]:
        """``n_init`` runs of Lloyd's algorithm from ``start`` (given centroids) or seeded ones; the lowest inertia."""
        ctx, X = data.ctx, data.X
        n, k, rng = X.shape[0], p.n_clusters, p.random_state
        best, best_empty = None, 0
        chance = None  # the rows' probabilities ∝ their weights, for a random draw
        if data.weights is not None and isinstance(p.init, str) and p.init == "random":
            weights = np.asarray(ctx.read(data.weights, "k-means random init"), dtype=np.float64)
            chance = weights / weights.sum()  # not in place: on NumPy the read is the weights themselves
            if np.count_nonzero(chance) < k:
                raise ValueError(
                    f"init='random' draws n_clusters={k} distinct rows of positive weight, but sample_weight has "
                    f"{np.count_nonzero(chance)}; use n_clusters <= {np.count_nonzero(chance)} or init='k-means++'"
                )
        for _ in range(n_init):  # a loop over restarts
            if start is not None:
                centroids = start
            elif p.init == "random":
                centroids = ctx.take_rows(X, rng.choice(n, size=k, replace=False, p=chance))
            elif p.init_size is not None and p.init_size < n:
                # Sorted: a chunked X is then read once, chunk after chunk.
                rows = np.sort(rng.choice(n, size=p.init_size, replace=False))
                sample = ctx.take_rows(X, rows)
                sample_weights = None if data.weights is None else ctx.take_rows(data.weights, rows)
                # One pass over X; the seeding reads the sample.
                if sample_weights is None:
                    (sample,) = ctx.backend.materialize(sample)
                else:
                    sample, sample_weights = ctx.backend.materialize(sample, sample_weights)
                centroids = kmeans_plus_plus(prepared(ctx, sample, k, p.working_memory, sample_weights), k, rng)
            else:
                centroids = kmeans_plus_plus(data, k, rng)
            # Materialised before use (lazily, rows taken from a streamed X would otherwise be
            # taken again inside every chunk's task of the first iteration: 12 passes, not 1).
            (centroids,) = ctx.backend.materialize(centroids)
            run = _lloyd(data, centroids, p.max_iter, scaled_tol)
            inertia, n_empty = (float(v) for v in ctx.read(run[2], "k-means inertia"))
            if best is None or inertia < best[2]:
                best, best_empty = (*run[:2], inertia, *run[3:]), int(n_empty)
        assert best is not None  # n_init >= 1: at least one run
        if best_empty:
            warn(
                f"Number of distinct clusters ({k - best_empty}) found smaller than n_clusters ({k}). "
                "Possibly due to duplicate points in X.",
                ConvergenceWarning,
            )
        return best

    def _data(self, X: Any) -> Data:
        """``X`` checked against the fit, for a pass that computes ‖x‖² itself (no norms kept)."""
        ctx, Xc = self._validate_X(X)
        row_bytes = functools.partial(row_bytes_per_row, self.n_clusters, Xc.shape[1])
        return Data(ctx, Xc, None, None, row_bytes, self.working_memory)

    def predict(self, X: Any) -> Any:
        """The index of each row's nearest centroid (int32), in the namespace and device of ``X``."""
        labels, _ = assign(self._data(X), self.cluster_centers_)
        return backends.mirror(labels, X)

    def fit_predict(self, X: Any, y: Any = None) -> Any:
        """``fit(X)`` then the labels of its rows."""
        self.fit(X)
        return backends.mirror(self.labels_, X)

    def transform(self, X: Any) -> Any:
        """‖x − cₖ‖ for every row and centroid, shape (n_samples, n_clusters), block by block."""
        data = self._data(X)
        centroids = self.cluster_centers_
        out = {"distances": Rows(centroids.dtype, width=centroids.shape[0])}
        distances = data.reduce(transform_block, [data.X], (centroids, centroid_norms(centroids)), out)
        return backends.mirror(distances.distances, X)

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """``fit(X)``, then the distances ‖x − cₖ‖ of its rows to the fitted centroids (``y`` is ignored)."""
        return self.fit(X).transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """−J: minus the sum of squared distances of the rows of ``X`` to their nearest centroid."""
        data = self._data(X)
        _, inertia = assign(data, self.cluster_centers_)
        return -float(data.ctx.read(inertia, "k-means score"))
