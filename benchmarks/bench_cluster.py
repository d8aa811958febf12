"""KMeans by backend and size, beside scikit-learn's Lloyd in the same run, and its memory.

Floors (issue 5):
- N = 200,000, D = 32, K = 64, float64, 20 Lloyd iterations from the same initial centroids:
  hml on NumPy ≤ 1.5× scikit-learn's ``KMeans(algorithm="lloyd", n_init=1, tol=0)`` time
  (``KMeansVsScikitLearn.track_hml_over_sklearn``);
- N = 10,000,000, D = 16, K = 16, float32 on NumPy: peak memory ≤ 1.3× the size of X
  (``KMeansMemory.track_peak_over_X``).

Floors (issue 24), each side by side with scikit-learn in one benchmark: 20 Lloyd iterations ≤ 1.0× at
200,000 × 32, K = 64 (float64 and float32), 1,000,000 × 16, K = 8 and 100,000 × 128, K = 256 (float32)
(``KMeansVsScikitLearn``); k-means++ seeding with one iteration ≤ 1.0× (``KMeansPlusPlusVsScikitLearn``).
Each ``track_hml_over_sklearn`` is hml as installed with the ``bench`` extra, Numba's compiled loops
included; ``track_hml_numpy_paths_over_sklearn``, hml without them.

Floor (issue 23): mini-batch k-means on N = 1,000,000, D = 32, K = 64, one epoch of batches of 1024 from
the same centroids, labels computed: hml ≤ 1.0× scikit-learn's ``MiniBatchKMeans``
(``MiniBatchKMeansVsScikitLearn.track_hml_over_sklearn``); its other floors, against hml's Lloyd, are
measured by ``benchmarks/minibatch_kmeans.py``.
"""

from __future__ import annotations

import contextlib
import tracemalloc

import numpy as np

import hml

from .common import LABELS, context, interleaved_ratio, peer, quietly, sizes


@contextlib.contextmanager
def numpy_paths():
    """hml's kernels without their compiled loops (``hml.kernels._numba``), as on a machine without Numba."""
    from hml.kernels import _numba

    saved, _numba.ENABLED = _numba.ENABLED, False
    try:
        yield
    finally:
        _numba.ENABLED = saved


def shape_of(shape: str) -> tuple[int, int, int, str]:
    """asv's "NxDxK" or "NxDxK:dtype" (float64 unless named) as (N, D, K, dtype)."""
    dims, _, dtype = shape.partition(":")
    n, d, k = map(int, dims.split("x"))
    return n, d, k, dtype or "float64"


def clustered(n: int, d: int, k: int, dtype="float64", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform data (clusters that keep moving for many iterations) and k distinct rows as start."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, d), dtype=np.float32 if dtype == "float32" else np.float64)
    return X, X[rng.choice(n, k, replace=False)]


class _OnBackend:
    """Uniform data and k starting rows, on a backend (asv's parameters: backend label, "NxDxK")."""

    def setup(self, label, shape):
        n, d, k = map(int, shape.split("x"))
        self.ctx = ctx = context(label)
        X, start = clustered(n, d, k)
        self.k = k
        self.X = ctx.backend.materialize(ctx.asarray(X))[0]
        self.start = ctx.asarray(start)


class KMeansIterations(_OnBackend):
    """20 Lloyd iterations (tol=0) from given centroids, by backend and size."""

    params = (LABELS, sizes(["200000x32x64", "1000000x16x16"], ["20000x32x64"]))
    param_names = ["backend", "shape"]
    timeout = 600

    def time_20_iterations(self, *args):
        quietly(lambda: hml.KMeans(self.k, init=self.start, max_iter=20, tol=0.0).fit(self.X))
        self.ctx.backend.synchronize(self.ctx.device)


class _BesideScikitLearn:
    """A fit of hml's (``_hml``) beside scikit-learn's ``peer`` on the same NumPy data, timed alternately."""

    param_names = ["shape"]
    peer_rounds = 7

    def setup(self, shape):
        n, d, k, dtype = shape_of(shape)
        self.X, self.start = clustered(n, d, k, dtype)
        self.k = k
        self.peer = self._peer(peer("sklearn.cluster", "scikit-learn"))
        self.ctx = context("numpy")

    def _sklearn(self):
        quietly(lambda: self.peer.fit(self.X))

    def time_hml(self, shape):
        self._hml()

    def time_sklearn(self, shape):
        self._sklearn()

    def track_hml_over_sklearn(self, shape):
        return interleaved_ratio(self.ctx, self._hml, self._sklearn, rounds=self.peer_rounds)

    track_hml_over_sklearn.unit = "ratio"

    def track_hml_numpy_paths_over_sklearn(self, shape):
        """The same ratio on the NumPy paths alone: hml where Numba is not installed (or ``HML_NUMBA=0``)."""
        with numpy_paths():
            return interleaved_ratio(self.ctx, self._hml, self._sklearn, rounds=self.peer_rounds)

    track_hml_numpy_paths_over_sklearn.unit = "ratio"


class KMeansVsScikitLearn(_BesideScikitLearn):
    """The same 20 iterations beside ``sklearn.cluster.KMeans(algorithm="lloyd", n_init=1, tol=0)``: the
    four shapes of issue 24 (≤ 1.0× on each), float32 kept in float32 by both."""

    params = (
        sizes(
            ["200000x32x64", "200000x32x64:float32", "1000000x16x8", "100000x128x256:float32"],
            ["20000x32x64", "20000x16x8:float32"],
        ),
    )
    timeout = 600

    def _peer(self, cluster):
        return cluster.KMeans(self.k, init=self.start, algorithm="lloyd", n_init=1, tol=0.0, max_iter=20)

    def _hml(self):
        quietly(lambda: hml.KMeans(self.k, init=self.start, max_iter=20, tol=0.0).fit(self.X))


class KMeansPlusPlusVsScikitLearn(_BesideScikitLearn):
    """Seeding, as every default fit starts: greedy k-means++ and one Lloyd iteration, beside scikit-learn's
    ``KMeans(init="k-means++", n_init=1, max_iter=1)`` (issue 24: k-means++ ≤ 1.0× scikit-learn's)."""

    params = (sizes(["200000x32x64", "1000000x16x8", "100000x128x256:float32"], ["20000x32x64"]),)
    timeout = 900
    peer_rounds = 5

    def _peer(self, cluster):
        return cluster.KMeans(
            self.k, init="k-means++", algorithm="lloyd", n_init=1, tol=0.0, max_iter=1, random_state=0
        )

    def _hml(self):
        quietly(lambda: hml.KMeans(self.k, init="k-means++", n_init=1, max_iter=1, tol=0.0, random_state=0).fit(self.X))


def _one_epoch(k, start):
    """Mini-batch k-means for one epoch of batches of 1,024 from ``start``, no early stop."""
    return hml.MiniBatchKMeans(k, init=start, max_iter=1, max_no_improvement=None, random_state=0)


class MiniBatchKMeansSteps(_OnBackend):
    """One epoch of mini-batch k-means (batches of 1024, no early stop) from given centroids, by backend."""

    params = (LABELS, sizes(["1000000x32x64"], ["20000x32x64"]))
    param_names = ["backend", "shape"]
    timeout = 600

    def time_one_epoch(self, *args):
        quietly(lambda: _one_epoch(self.k, self.start).fit(self.X))
        self.ctx.backend.synchronize(self.ctx.device)


class MiniBatchKMeansVsScikitLearn(_BesideScikitLearn):
    """The same epoch beside ``sklearn.cluster.MiniBatchKMeans`` with the same batch size, centroids and steps."""

    params = (sizes(["1000000x32x64"], ["20000x32x64"]),)
    timeout = 900
    peer_rounds = 3

    def _peer(self, cluster):
        return cluster.MiniBatchKMeans(
            self.k, init=self.start, n_init=1, batch_size=1024, max_iter=1, max_no_improvement=None, random_state=0
        )

    def _hml(self):
        quietly(lambda: _one_epoch(self.k, self.start).fit(self.X))


class KMeansMemory:
    """Peak memory of a fit (k-means++ included) over the size of X, measured by tracemalloc."""

    params = (sizes(["10000000x16x16"], ["1000000x16x16"]),)
    param_names = ["shape"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, shape):
        n, d, self.k = map(int, shape.split("x"))
        self.X = np.random.default_rng(0).random((n, d), dtype=np.float32)

    def track_peak_over_X(self, shape):
        """(size of X + peak of everything the fit allocates) / size of X."""
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        quietly(lambda: hml.KMeans(self.k, max_iter=10, random_state=0).fit(self.X))
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return (self.X.nbytes + peak) / self.X.nbytes

    track_peak_over_X.unit = "ratio"
