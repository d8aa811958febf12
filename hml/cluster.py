"""k-means clustering, written once against the array API: Lloyd's algorithm (:class:`KMeans`) and
Sculley's mini-batch k-means (:class:`MiniBatchKMeans`).

Every pass over X runs on blocks of rows (:mod:`hml._kmeans`, through :func:`hml.backends.reduce_rows`),
so no N × K matrix is ever built: a 10-million-row fit needs X, two int32 label vectors and ‖x‖²,
plus one block. Mini-batch k-means (:mod:`hml._minibatch`) reads a batch of rows per step.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from hml import backends
from hml._array import check_sample_weight
from hml._centroids import Centroids
from hml._declarations import redeclared
from hml._kmeans import (
    Data,
    LloydStep,
    assign,
    assign_and_count,
    cluster_means,
    column_variance_mean,
    lloyd_step,
    lloyd_update,
    prepared,
)
from hml._minibatch import ROUND_BYTES, MiniBatchState, Stopping, fit_steps, partial_step
from hml._params import Boolean, Either, Integer, OneOf, Real, param
from hml._reseeding import empty_below, reseed_empty
from hml.base import FitInput
from hml.exceptions import ConvergenceWarning, warn
from hml.optimize import cost_callback, progress_callback

__all__ = ["KMeans", "MiniBatchKMeans"]


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
    n_iter, (below,) = 0, ctx.backend.materialize(empty_below(data))
    for n_iter in range(1, max_iter + 1):
        labels, sums, counts, changed = lloyd_step(data, centroids, previous)
        dtype = centroids.dtype
        update = backends.call_once(
            lloyd_update,
            (centroids, sums, counts, changed, data.total_squared_norm, data.origin, below),
            [(centroids.shape, dtype), (centroids.shape, sums.dtype), ((k,), counts.dtype), ((4,), dtype)],
        )
        labels, new_centroids, sums, counts, status = ctx.backend.materialize(labels, *update)
        # J from the materialised status, not the inertia expression: lazily that would keep
        # this iteration's whole E-step in the history's graph, recomputed at the end of the fit.
        history.append(status[3])
        n_empty, n_changed, shift_value, distortion = (float(v) for v in ctx.read(status, "k-means convergence"))
        on_cost(n_iter, distortion)
        reseeded = n_empty > 0
        if reseeded:
            empty = np.flatnonzero(ctx.read(counts < below, "k-means empty-cluster re-seeding"))
            sums, counts = reseed_empty(data, centroids, labels, sums, counts, empty)
            new_centroids = cluster_means(centroids, sums, counts, below)
            shift = xp.sum((new_centroids - centroids) ** 2)
            new_centroids, sums, counts, shift = ctx.backend.materialize(new_centroids, sums, counts, shift)
            shift_value = float(ctx.read(shift, "k-means empty-cluster re-seeding"))
        centroids = new_centroids
        report(n_iter, max_iter)
        if n_changed == 0 or shift_value <= tol:
            break
        # A re-seeded point sits in its new cluster's sums but keeps its old label: sum all rows again next time.
        previous = None if reseeded else LloydStep(labels, sums, counts, None)
    del previous, labels  # free the labels before the final pass makes new ones
    # One more E-step: the labels of the final centroids (unchanged after a strict
    # convergence), the inertia measured directly, Σᵢ minₖ ‖xᵢ − cₖ‖², and how many
    # clusters are left with no row (more clusters than distinct points).
    labels, inertia, n_empty = assign_and_count(data, centroids)
    return centroids, labels, xp.stack([inertia, n_empty]), n_iter, xp.stack(history)


class KMeans(Centroids):
    r"""k-means clustering by Lloyd's algorithm: the centroids and labels that minimise the distortion J (Notes).

    Each iteration labels every row with its nearest centroid, by one GEMM per block of rows (blocks sized
    from a memory budget: no N × K matrix is built), then moves every centroid to the mean of its rows, a
    segment sum (a native scatter-add where the backend has one). An empty cluster never gets a NaN centroid:
    it takes the row farthest from its own centroid (the next farthest for a second one, ...), which leaves
    its former cluster -- a deterministic rule, scikit-learn's.

    Attributes
    ----------
    cluster_centers_ : array (n_clusters, n_features), on the compute device
    labels_ : array (n_samples,) of int32
    inertia_ : float, the distortion J (Notes) of the final centroids and labels
    n_iter_ : int
    cost_history_ : array of shape (``n_iter_``,)
        J at each iteration's E-step (at the centroids that iteration started from).
    n_features_in_ : int

    Notes
    -----
    The distortion (inertia), with sᵢ the weight of row i (1 without ``sample_weight``) and lᵢ its label:

    .. math::
        :name: k-means-inertia

        J(c) &= \sum_{i} s_i \min_k \lVert x_i - c_k \rVert^2 = \sum_{i} s_i \lVert x_i - c_{l_i} \rVert^2, \\
        l_i &= \operatorname*{arg\,min}_k \lVert x_i - c_k \rVert^2 .

    A Lloyd iteration: the E-step (‖xᵢ‖² is the same for every centroid, so the argmin leaves it out; about
    a point among the data: the math page), then the M-step, the mean of each cluster's rows. Neither raises J.

    .. math::
        :name: k-means-lloyd-step

        l_i &\leftarrow \operatorname*{arg\,min}_k \big( \lVert c_k \rVert^2 - 2\, x_i \cdot c_k \big), \\
        c_k &\leftarrow \frac{S_k}{n_k}, \quad S_k = \sum_{i:\, l_i = k} s_i x_i, \quad n_k = \sum_{i:\, l_i = k} s_i .

    The iterations stop when no label changes, or once the centroids' shift is small for the data's scale:

    .. math::
        :name: k-means-convergence

        \sum_{k=1}^{K} \lVert c_k^{+} - c_k \rVert^2
        \le \mathrm{tol} \cdot \frac{1}{d} \sum_{j=1}^{d} \operatorname{Var}(x_{\cdot j}) .
    """

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
        doc="Stop when the centroids' shift is at most ``tol`` × the mean variance of the features (scikit-learn's "
        "convention, the variance weighted by ``sample_weight``; the formula in Notes), or when no label changes.",
    )

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> KMeans:
        """Cluster the rows of ``X`` (n_samples × n_features); ``y`` is ignored. ``sample_weight`` (one per row,
        ≥ 0) counts a row that many times: the sᵢ of the Notes; k-means++ draws rows ∝ sᵢ D(xᵢ)²."""
        p = self._validated
        k = p.n_clusters
        n_init = self._n_init(p)
        fit_input = self._validate_fit_X(X, p)
        ctx, X = fit_input.ctx, fit_input.X
        n = X.shape[0]
        start = self._start(p, ctx, X)
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
        scaled_tol = column_variance_mean(data, p.tol)
        with self._progress_bar(p.max_iter * n_init, p.verbose):
            best = self._runs(data, p, n_init, start, scaled_tol)
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
        ctx, k = data.ctx, p.n_clusters
        best, best_empty = None, 0
        chance = self._chance(data, p)
        for _ in range(n_init):  # a loop over restarts
            centroids = start if start is not None else self._seeded(data, p, p.init_size, chance)
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


class MiniBatchKMeans(Centroids):
    r"""k-means clustering by Sculley's mini-batch algorithm: scikit-learn's ``MiniBatchKMeans``.

    Each step takes a batch of ``batch_size`` rows drawn at random (with replacement, ∝ ``sample_weight``),
    assigns them to their nearest centroids, and moves each centroid to the running mean of every row it has
    taken (Notes). A centroid that takes too little weight (below ``reassignment_ratio`` of the heaviest's)
    is re-seeded at a row of the batch. A step costs a batch, not a pass over X: a fit reaches within about a
    percent of Lloyd's distortion in a fraction of its time, and :meth:`partial_fit` learns from data that
    arrives in chunks. A fit draws the rows of many batches at once and gathers them in one take, sorted, so
    a Dask array streamed from its source is read chunk after chunk, once per round of batches, and never
    held whole (``hml._minibatch``); the batches, and the fit, are the same on every backend.

    Attributes
    ----------
    cluster_centers_ : array (n_clusters, n_features), on the compute device
    labels_ : array (n_samples,) of int32
        Each row's nearest final centroid (with ``compute_labels``).
    inertia_ : float
        With ``compute_labels``, the distortion J of the final centroids (:class:`KMeans`'s Notes); else the
        smoothed batch distortion J̄ (Notes) times Σᵢ sᵢ, as scikit-learn.
    n_steps_ : int, the batches processed
    n_iter_ : int, the epochs begun: ⌈n_steps_ · batch_size / n_samples⌉
    cost_history_ : array of shape (``n_steps_``,)
        J_B / b of each step (Notes): its rows' mean squared distance to their centroids, before the move.
    n_features_in_ : int

    Notes
    -----
    A step on a batch B of b rows labels them as :class:`KMeans`'s E-step (lᵢ; Sₖ and nₖ the sum and the
    weight of the rows labelled k, each drawn row counting 1 in a fit, sᵢ in :meth:`partial_fit`), then moves
    each centroid that took rows to the mean of every row it has taken, vₖ being their weight (0 at first):

    .. math::
        :name: mini-batch-k-means-step

        J_B &= \sum_{i \in B} s_i \lVert x_i - c_{l_i} \rVert^2 , \qquad v_k^{+} = v_k + n_k , \\
        c_k^{+} &= \frac{v_k c_k + S_k}{v_k^{+}} = c_k + \frac{1}{v_k^{+}} \big( S_k - n_k c_k \big) .

    Sculley's update: a step along Sₖ − nₖcₖ (−½ ∂J_B/∂cₖ) with centroid k's own learning rate 1 / vₖ⁺.
    Besides ``max_iter`` and ``tol``, the fit stops once the batch distortions' exponentially weighted
    average J̄ (from the second step: the first measures the initial centroids) has not reached a new
    minimum for ``max_no_improvement`` steps (scikit-learn's rule):

    .. math::
        :name: mini-batch-k-means-stopping

        \bar J_t &= (1 - \alpha)\, \bar J_{t-1} + \alpha\, \frac{J_{B_t}}{b}, \qquad \bar J_2 = \frac{J_{B_2}}{b}, \\
        \alpha &= \min\Big(1, \frac{2b}{n + 1}\Big).
    """

    n_init: int | Literal["auto"] = redeclared(
        KMeans,
        "n_init",
        "auto",
        doc="Seedings tried (k-means++ on ``init_size`` rows), keeping the one whose centroids give the lowest "
        "distortion on another ``init_size`` rows drawn at random. ``'auto'``: 1 for k-means++ or given "
        "centroids, 3 for ``'random'`` (scikit-learn's rule).",
    )
    init_size: int | None = redeclared(
        KMeans,
        "init_size",
        None,
        doc="The seeding runs on this many rows drawn at random; ``None``: 3 × ``batch_size`` (at least "
        "3 × ``n_clusters``), at most the number of rows.",
    )
    max_iter: int = redeclared(
        KMeans, "max_iter", 100, doc="Epochs, at most: the fit stops after ⌊max_iter · n_samples / batch_size⌋ steps."
    )
    batch_size: int = param(default=1024, rule=Integer(1), doc="b, the rows of a batch.")
    tol: float = redeclared(
        KMeans,
        "tol",
        0.0,
        doc="Stop when a step's centroid shift Σₖ‖cₖ⁺ − cₖ‖² is at most ``tol`` × the mean variance of the "
        "features (scikit-learn's convention; one more pass over X to measure it); 0: never by the shift.",
    )
    max_no_improvement: int | None = param(
        default=10,
        rule=Integer(0, allow_none=True),
        doc="Stop when the smoothed batch distortion J̄ (an exponentially weighted average of J_B / b: Notes) has "
        "not reached a new minimum for this many steps; ``None``: never by it.",
    )
    compute_labels: bool = param(
        default=True,
        rule=Boolean(),
        doc="After the fit, one pass over X for ``labels_`` and the exact ``inertia_``.",
    )
    reassignment_ratio: float = param(
        default=0.01,
        rule=Real(),
        doc="Re-seed a centroid whose taken weight is below this fraction of the heaviest centroid's, at a "
        "random row of the batch (tested every ⌈10 · n_clusters / batch_size⌉ steps); 0: never.",
    )

    _random_runs: ClassVar[int] = 3

    if TYPE_CHECKING:  # set by fit and partial_fit
        _minibatch_state_: tuple[Any, int, bool]

    def _init_size(self, p: SimpleNamespace, n: int) -> int:
        """The seeding sample's size: ``init_size``, else 3 b (at least 3 K); at most n."""
        size: int = p.init_size if p.init_size is not None else max(3 * min(p.batch_size, n), 3 * p.n_clusters)
        if size < p.n_clusters:
            raise ValueError(
                f"init_size={size} is smaller than n_clusters={p.n_clusters}: the seeding needs at least one row "
                f"per centroid; use init_size >= {p.n_clusters}, or None"
            )
        return min(size, n)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MiniBatchKMeans:
        """Cluster the rows of ``X`` (n_samples × n_features) by mini-batch steps; ``y`` is ignored. ``sample_weight``
        (one per row, ≥ 0): batches drawn ∝ sᵢ (one read of the weights), the inertia weighted by sᵢ."""
        p = self._validated
        fit_input = self._validate_fit_X(X, p)
        ctx, X = fit_input.ctx, fit_input.X
        n = X.shape[0]
        start = self._start(p, ctx, X)
        n_init = self._n_init(p)
        batch_size = min(p.batch_size, n)
        init_size = self._init_size(p, n)
        weights = check_sample_weight(sample_weight, ctx, n_samples=n, dtype=X.dtype)
        (X,) = backends.keep(X)
        s = None if weights is None else weights.normalised
        data = self._pass(ctx, X, s)
        scaled_tol = column_variance_mean(prepared(ctx, X, p.n_clusters, p.working_memory, s), p.tol) if p.tol else 0.0
        centroids = start if start is not None else self._best_seeding(data, p, n_init, init_size)
        cumulative = None
        if s is not None:  # the batches are drawn ∝ s: its running sum, once, on the host
            cumulative = np.cumsum(np.asarray(ctx.read(s, "mini-batch k-means draws"), dtype=np.float64))
        # The steps run where the gathered rows are: in X's chunks' library on Dask.
        (centroids,) = ctx.concrete(centroids, why="k-means seeding")
        inner = backends.resolve(backends.AUTO, like=centroids)
        state = MiniBatchState(centroids, inner.xp.zeros((p.n_clusters,), dtype=X.dtype, device=inner.device), 0, False)
        max_steps = max(1, p.max_iter * n // batch_size)
        stopping = Stopping(batch_size, n, scaled_tol, p.max_no_improvement)
        budget = p.working_memory if p.working_memory is not None else ROUND_BYTES
        with self._progress_bar(max_steps, p.verbose):
            fitted = fit_steps(
                ctx, X, state, p.random_state, cumulative, batch_size, max_steps, stopping, p.reassignment_ratio, budget
            )
        self._finish(p, ctx, data, fitted.state, weights)
        if not p.compute_labels:
            average = stopping.average if stopping.average is not None else float("nan")
            self.inertia_ = average * (n if weights is None else weights.total)
        self.n_steps_, self._batch_size_ = fitted.n_steps, batch_size
        self.n_iter_ = math.ceil(fitted.n_steps * batch_size / n)
        self.cost_history_ = fitted.history
        self._remember_input(fit_input)
        return self

    def _best_seeding(self, data: Data, p: SimpleNamespace, n_init: int, init_size: int) -> Any:
        """The seeding of ``n_init`` tries whose centroids give the lowest distortion on ``init_size``
        other rows (one try: no such rows)."""
        ctx, X = data.ctx, data.X
        chance = self._chance(data, p)
        if n_init == 1:
            return self._seeded(data, p, init_size, chance)
        rows = np.sort(p.random_state.integers(0, X.shape[0], size=init_size))  # scored with their weights
        taken = [ctx.take_rows(a, rows) for a in (X, data.weights) if a is not None]
        held_out = self._pass(ctx, *ctx.backend.materialize(*taken))
        best, best_inertia = None, math.inf
        for _ in range(n_init):  # a loop over seedings
            centroids = self._seeded(data, p, init_size, chance)
            inertia = float(ctx.read(assign(held_out, centroids)[1], "k-means inertia"))
            if inertia < best_inertia:
                best, best_inertia = centroids, inertia
        return best

    def _finish(
        self, p: SimpleNamespace, ctx: backends.ComputeContext, data: Data, state: MiniBatchState, weights: Any
    ) -> None:
        """The fitted centroids and the state a later :meth:`partial_fit` goes on from; with
        ``compute_labels``, the labels and distortion of ``data``'s rows (one pass)."""
        centroids = state.centroids
        self.cluster_centers_ = centroids
        self._minibatch_state_ = (state.weights, state.since_reassign, state.started)
        if p.compute_labels:
            # Together, so that a streamed X is read once for both.
            labels, inertia = ctx.backend.materialize(*assign(data, centroids))
            inertia = float(ctx.read(inertia, "k-means inertia"))
            self.labels_ = labels
            n = data.X.shape[0]
            self.inertia_ = inertia if weights is None else inertia * (weights.total / n)
        elif "labels_" in self.__dict__:
            del self.labels_

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MiniBatchKMeans:
        """One step with all the rows of ``X`` as the batch (weighted by ``sample_weight`` as given), going on
        from the centroids of earlier calls: for data that arrives, or is read, in chunks. The first call
        seeds the centroids on its rows (``init``, ``init_size``) and fixes the features."""
        p = self._validated
        first = "cluster_centers_" not in self.__dict__
        if first:
            fit_input = self._validate_fit_X(X, p)
        else:
            ctx, Xc = self._validate_X(X)
            fit_input = FitInput(ctx, Xc, getattr(self, "feature_names_in_", None))
        ctx, X = fit_input.ctx, fit_input.X
        n = X.shape[0]
        weights = check_sample_weight(sample_weight, ctx, n_samples=n, dtype=X.dtype)
        data = self._pass(ctx, X, None if weights is None else weights.given)
        steps = 0 if first else self.n_steps_
        rng = np.random.default_rng([int(p.random_state.integers(2**32)), steps])
        if first:
            start = self._start(p, ctx, X)
            seeding = SimpleNamespace(**{**vars(p), "random_state": rng})
            centroids = start if start is not None else self._seeded(data, seeding, self._init_size(p, n), None)
            state = MiniBatchState(centroids, ctx.xp.zeros((p.n_clusters,), dtype=X.dtype, device=ctx.device), 0, False)
            history = None
            self._batch_size_ = min(p.batch_size, n)
        else:
            v, since, started = self._minibatch_state_
            state = MiniBatchState(ctx.asarray(self.cluster_centers_), ctx.asarray(v), since, started)
            history = self.cost_history_
        candidates = ctx.take_rows(X, rng.choice(n, size=min(p.n_clusters, n), replace=False))
        state, inertia = partial_step(data, state, candidates, p.reassignment_ratio, self._batch_size_)
        self._finish(p, ctx, data, state, None)
        if not p.compute_labels:
            self.inertia_ = float(ctx.read(inertia, "k-means inertia"))
        mean = ctx.xp.reshape(inertia, (1,)) / float(n if weights is None else weights.total)
        self.cost_history_ = mean if history is None else ctx.xp.concat([ctx.asarray(history), mean])
        self.n_steps_ = steps + 1
        self._remember_input(fit_input)
        return self
