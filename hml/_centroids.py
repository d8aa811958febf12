"""What both k-means estimators (:mod:`hml.cluster`) share: the hyper-parameters of the centroids and
their seeding, and everything done with fitted centroids -- predict, transform, score.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from hml import backends
from hml._array import check_sample_weight, check_X
from hml._kmeans import (
    Data,
    about,
    assign,
    prepared,
    row_bytes_per_row,
    transform_block,
)
from hml._outputs import TransformerOutput
from hml._params import ArrayLike, Either, Integer, OneOf, param
from hml._seeding import kmeans_plus_plus
from hml.backends import Rows
from hml.base import RANDOM_STATE, VERBOSE, BaseEstimator
from hml.exceptions import warn

__all__ = ["Centroids"]


class Centroids(TransformerOutput, BaseEstimator):
    """What both k-means estimators share: the hyper-parameters of the centroids and their seeding,
    and everything done with fitted centroids (predict, transform, score)."""

    _estimator_type: ClassVar[str] = "clusterer"

    if TYPE_CHECKING:  # set by fit
        cluster_centers_: Any
        labels_: Any

    n_clusters: int = param(default=8, rule=Integer(1), doc="K, the number of clusters.", kw_only=False)
    init: Literal["k-means++", "random"] | Any = param(
        default="k-means++",
        rule=Either((OneOf(("k-means++", "random")), ArrayLike("an array of starting centroids"))),
        doc="Greedy k-means++ seeding; ``'random'``: ``n_clusters`` distinct training rows (the original "
        "project); or the starting centroids themselves, an array of shape (n_clusters, n_features).",
    )
    random_state: Any = RANDOM_STATE
    working_memory: int | None = param(
        default=None,
        rule=Integer(1, allow_none=True),
        doc="Bytes for one block of rows and its distances; ``None``: the backend's default (more on a GPU "
        "than on a CPU; on Dask, that of the chunks' library, in each chunk).",
    )
    verbose: bool = VERBOSE

    #: How many runs ``n_init='auto'`` makes with ``init='random'`` (scikit-learn's numbers).
    _random_runs: ClassVar[int] = 10

    def _n_init(self, p: SimpleNamespace) -> int:
        """``n_init`` resolved, with scikit-learn's warning when given centroids make restarts pointless."""
        random = isinstance(p.init, str) and p.init == "random"
        n_init: int = (self._random_runs if random else 1) if p.n_init == "auto" else p.n_init
        if not isinstance(p.init, str) and n_init != 1:
            warn(
                f"Explicit initial center position passed: performing only one init in {type(self).__name__} "
                f"instead of n_init={n_init} (every run would start from the same centroids); pass n_init=1",
                RuntimeWarning,
            )
            n_init = 1
        return n_init

    def _start(self, p: SimpleNamespace, ctx: backends.ComputeContext, X: Any) -> Any:
        """The centroids ``init`` gives (checked against X), or None when they are to be seeded."""
        k, n = p.n_clusters, X.shape[0]
        if k > n:
            raise ValueError(f"n_clusters={k} is larger than the number of samples, {n}; use n_clusters <= {n}")
        if isinstance(p.init, str):
            return None
        if callable(p.init):  # scikit-learn's init(X, n_clusters, random_state)
            raise TypeError(
                f"init={p.init!r} is a callable, which hml does not call; pass 'k-means++', 'random' or its "
                f"centroids, init=your_init(X, {k}, random_state), an array of shape ({k}, {X.shape[1]})"
            )
        start = check_X(p.init, ctx, dtype=X.dtype, name="init")
        if start.shape != (k, X.shape[1]):
            raise ValueError(
                f"init has {start.shape[0]} centroids of {start.shape[1]} features, for n_clusters={k} and X's "
                f"{X.shape[1]} features; pass an array of shape ({k}, {X.shape[1]})"
            )
        return start

    @staticmethod
    def _chance(data: Data, p: SimpleNamespace) -> np.ndarray | None:
        """The rows' probabilities ∝ their weights, for ``init='random'`` on weighted rows (else None)."""
        if data.weights is None or not (isinstance(p.init, str) and p.init == "random"):
            return None
        k = p.n_clusters
        weights = np.asarray(data.ctx.read(data.weights, "k-means random init"), dtype=np.float64)
        chance: np.ndarray = weights / weights.sum()  # not in place: on NumPy the read is the weights themselves
        if np.count_nonzero(chance) < k:
            raise ValueError(
                f"init='random' draws n_clusters={k} distinct rows of positive weight, but sample_weight has "
                f"{np.count_nonzero(chance)}; use n_clusters <= {np.count_nonzero(chance)} or init='k-means++'"
            )
        return chance

    @staticmethod
    def _seeded(data: Data, p: SimpleNamespace, init_size: int | None, chance: np.ndarray | None) -> Any:
        """Seeded centroids (materialised): ``n_clusters`` rows drawn ∝ ``chance`` for ``'random'``, else
        k-means++ on all rows, or on ``init_size`` of them drawn at random."""
        ctx, X = data.ctx, data.X
        n, k, rng = X.shape[0], p.n_clusters, p.random_state
        if p.init == "random":
            centroids = ctx.take_rows(X, rng.choice(n, size=k, replace=False, p=chance))
        elif init_size is not None and init_size < n:
            # Among the rows of positive weight: those of weight 0 can never be drawn, and a sample of only them
            # left k-means++ no probabilities (NaN). Sorted: a chunked X is then read once, chunk after chunk.
            pool: int | np.ndarray = n
            if data.weights is not None:
                positive = np.flatnonzero(np.asarray(ctx.read(data.weights, "k-means++ sample")) > 0)
                pool = positive if positive.size < n else n
            size = min(init_size, n if isinstance(pool, int) else pool.size)
            rows = np.sort(rng.choice(pool, size=size, replace=False))
            sample = ctx.take_rows(X, rows)
            sample_weights = None if data.weights is None else ctx.take_rows(data.weights, rows)
            # One pass over X; the seeding reads the sample.
            if sample_weights is None:
                (sample,) = ctx.backend.materialize(sample)
            else:
                sample, sample_weights = ctx.backend.materialize(sample, sample_weights)
            centroids = kmeans_plus_plus(prepared(ctx, sample, k, data.working_memory, sample_weights), k, rng)
        else:  # ‖x‖² of every row, where the data came without them
            full = data if data.squared_norms is not None else prepared(ctx, X, k, data.working_memory, data.weights)
            centroids = kmeans_plus_plus(full, k, rng)
        # Materialised before use (lazily, rows taken from a streamed X would otherwise be
        # taken again inside every chunk's task of the first iteration: 12 passes, not 1).
        (centroids,) = ctx.backend.materialize(centroids)
        return centroids

    def _data(self, X: Any) -> Data:
        """``X`` checked against the fit, for a pass that computes ‖x‖² itself (no norms kept)."""
        ctx, Xc = self._validate_X(X)
        return self._pass(ctx, Xc)

    def _pass(self, ctx: backends.ComputeContext, X: Any, weights: Any = None) -> Data:
        """X for a pass that computes ‖x − o‖² itself, blocked as a fit blocks it."""
        row_bytes = functools.partial(row_bytes_per_row, self.n_clusters, X.shape[1])
        return Data(ctx, X, None, None, row_bytes, self.working_memory, weights)

    def predict(self, X: Any) -> Any:
        """The index of each row's nearest centroid (int32), in the namespace and device of ``X``."""
        labels, _ = assign(self._data(X), self.cluster_centers_, measure=False)
        return backends.mirror(labels, X)

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """``fit(X)`` then the labels of its rows."""
        self.fit(X, sample_weight=sample_weight)
        if "labels_" not in self.__dict__:
            return self.predict(X)
        return backends.mirror(self.labels_, X)

    def transform(self, X: Any) -> Any:
        """‖x − cₖ‖ for every row and centroid, shape (n_samples, n_clusters), block by block."""
        data = self._data(X)
        centroids = self.cluster_centers_
        out = {"distances": Rows(centroids.dtype, width=centroids.shape[0])}
        distances = data.reduce(transform_block, [data.X], (centroids, *about(centroids, data.origin)), out)
        return self._output(distances.distances, X)

    def _names_out(self, names: list[str]) -> list[str]:
        """The columns of :meth:`transform`, one per centroid: ``kmeans0``, ``kmeans1``, ... (scikit-learn's
        names: the class's name in lower case, then k)."""
        return [f"{type(self).__name__.lower()}{k}" for k in range(self.cluster_centers_.shape[0])]

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """``fit(X)``, then the distances ‖x − cₖ‖ of its rows to the fitted centroids (``y`` is ignored)."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """−J: minus the sum of squared distances of the rows of ``X`` to their nearest centroid, each row's
        times its ``sample_weight`` (as scikit-learn's)."""
        ctx, Xc = self._validate_X(X)
        weights = check_sample_weight(sample_weight, ctx, n_samples=Xc.shape[0], dtype=Xc.dtype)
        data = self._pass(ctx, Xc, None if weights is None else weights.given)
        _, inertia = assign(data, self.cluster_centers_)
        return -float(data.ctx.read(inertia, "k-means score"))
