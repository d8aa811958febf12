"""KMeans against scikit-learn's Lloyd, its own invariants, and on every backend."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import hml
from hml import backends


def blobs(n=3000, d=4, k=5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    return centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scikit_learn_lloyd_from_the_same_centroids(seed):
    cluster = pytest.importorskip("sklearn.cluster")
    X = blobs(seed=seed, k=6)
    start = X[np.random.default_rng(seed).choice(len(X), 6, replace=False)]
    ours = hml.KMeans(6, init=start, max_iter=300).fit(X)
    peer = cluster.KMeans(6, init=start, algorithm="lloyd", n_init=1, max_iter=300).fit(X)
    np.testing.assert_array_equal(ours.labels_, peer.labels_)
    assert ours.inertia_ == pytest.approx(peer.inertia_, rel=1e-9)
    np.testing.assert_allclose(ours.cluster_centers_, peer.cluster_centers_, rtol=1e-9, atol=1e-12)
    assert ours.n_iter_ == peer.n_iter_


def test_fixed_iterations_match_scikit_learn():
    cluster = pytest.importorskip("sklearn.cluster")
    X = np.random.default_rng(3).random((4000, 8))  # uniform: labels keep moving
    start = X[:16]
    ours = hml.KMeans(16, init=start, max_iter=7, tol=0.0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = cluster.KMeans(16, init=start, algorithm="lloyd", n_init=1, max_iter=7, tol=0.0).fit(X)
    np.testing.assert_array_equal(ours.labels_, peer.labels_)
    assert ours.inertia_ == pytest.approx(peer.inertia_, rel=1e-9)


def test_inertia_and_history_are_the_distortion():
    X = blobs()
    model = hml.KMeans(5, random_state=0).fit(X)
    centres = np.asarray(model.cluster_centers_)
    direct = ((X - centres[model.labels_]) ** 2).sum()
    assert model.inertia_ == pytest.approx(direct, rel=1e-10)
    assert model.score(X) == pytest.approx(-direct, rel=1e-10)
    history = np.asarray(model.cost_history_)
    assert history.shape == (model.n_iter_,) and np.all(
        np.diff(history) <= 1e-9 * history[0]
    )  # Lloyd never increases J
    distances = model.transform(X)
    np.testing.assert_allclose(distances, np.sqrt(((X[:, None, :] - centres[None]) ** 2).sum(-1)), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(model.predict(X), distances.argmin(axis=1))


def test_blocked_and_unblocked_results_are_identical():
    X = blobs(n=2000)
    whole = hml.KMeans(5, random_state=3, working_memory=1 << 30).fit(X)
    for budget in (512, 4096, 100_000):  # blocks of a few rows up to a few hundred
        blocked = hml.KMeans(5, random_state=3, working_memory=budget).fit(X)
        np.testing.assert_array_equal(blocked.labels_, whole.labels_)
        np.testing.assert_allclose(blocked.cluster_centers_, whole.cluster_centers_, rtol=1e-12)
        assert blocked.inertia_ == pytest.approx(whole.inertia_, rel=1e-12)
        assert blocked.n_iter_ == whole.n_iter_


def test_kmeans_plus_plus_is_reproducible_across_backends(case):
    X = blobs(n=600, k=4)
    reference = hml.KMeans(4, random_state=11).fit(X)
    model = hml.KMeans(4, random_state=11).fit(case.asarray(X))
    tolerance = 1e-9 if case.float64 else 1e-4
    np.testing.assert_allclose(
        case.to_numpy(model.cluster_centers_), reference.cluster_centers_, rtol=tolerance, atol=tolerance
    )
    np.testing.assert_array_equal(case.to_numpy(model.labels_), reference.labels_)
    assert model.inertia_ == pytest.approx(reference.inertia_, rel=tolerance)
    labels = model.predict(case.asarray(X))
    assert type(labels) is type(case.asarray(X))
    np.testing.assert_array_equal(case.to_numpy(labels), reference.labels_)


def test_init_size_seeds_k_means_plus_plus_from_a_uniform_sample(case, monkeypatch):
    """init_size=m: greedy k-means++ on m rows drawn without replacement (the same rows, and so
    the same seeds, on every backend); init_size >= n is all the rows, as without it."""
    import hml._kmeans as _kmeans
    import hml.cluster as cluster

    X = blobs(n=800, k=4)
    starts = []
    real_lloyd = cluster._lloyd

    def capture(blocks, centroids, max_iter, tol):
        starts.append(np.asarray(blocks.ctx.to_numpy(centroids)))
        return real_lloyd(blocks, centroids, max_iter, tol)

    monkeypatch.setattr(cluster, "_lloyd", capture)
    hml.KMeans(4, init_size=100, random_state=7).fit(case.asarray(X))
    rng = np.random.default_rng(7)
    sample = X[np.sort(rng.choice(800, size=100, replace=False))]
    ctx = backends.resolve("numpy")
    expected = _kmeans.kmeans_plus_plus(_kmeans.prepared(ctx, sample, 4, None), 4, rng)
    tolerance = 1e-12 if case.float64 else 1e-5
    np.testing.assert_allclose(starts[-1], expected, rtol=tolerance, atol=tolerance)
    assert all(any(np.allclose(seed, row, rtol=tolerance, atol=tolerance) for row in sample) for seed in starts[-1])
    hml.KMeans(4, init_size=800, random_state=7).fit(case.asarray(X))
    hml.KMeans(4, random_state=7).fit(case.asarray(X))
    np.testing.assert_array_equal(starts[-2], starts[-1])


def test_random_init_uses_distinct_training_rows():
    X = blobs(n=300)
    model = hml.KMeans(5, init="random", n_init=1, max_iter=1, random_state=0)
    rows = np.random.default_rng(0).choice(300, 5, replace=False)
    direct = hml.KMeans(5, init=X[rows], max_iter=1).fit(X)
    np.testing.assert_allclose(model.fit(X).cluster_centers_, direct.cluster_centers_)


def test_empty_clusters_are_reseeded_without_nan():
    # Two tight groups and five starting centroids, three of them far away from every point:
    # those clusters are empty after the first assignment.
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 0.1, (50, 2)), rng.normal(10, 0.1, (50, 2))]
    start = np.array([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0], [200.0, 200.0], [300.0, 300.0]])
    model = hml.KMeans(5, init=start, max_iter=50).fit(X)
    centres = np.asarray(model.cluster_centers_)
    assert np.isfinite(centres).all()
    assert len(np.unique(model.labels_)) == 5  # every cluster got points
    assert np.abs(centres).max() < 11.0
    # The rule: the first empty cluster takes the point farthest from its centroid.
    d = ((X - start[[0, 1]][(X[:, 0] > 5).astype(int)]) ** 2).sum(axis=1)
    first = hml.KMeans(5, init=start, max_iter=1).fit(X)
    np.testing.assert_allclose(np.asarray(first.cluster_centers_)[2], X[np.argmax(d)])


def test_bad_input():
    X = blobs(n=20)
    with pytest.raises(ValueError, match=r"n_clusters=30 is larger than the number of samples, 20"):
        hml.KMeans(30).fit(X)
    with pytest.raises(ValueError, match=r"X contains 1 NaN"):
        hml.KMeans(2).fit(np.where(np.arange(80).reshape(20, 4) == 7, np.nan, X))
    with pytest.raises(ValueError, match=r"init has 3 centroids but n_clusters=2"):
        hml.KMeans(2, init=X[:3]).fit(X)
    with pytest.raises(
        ValueError, match=r"init has 3 features, but the estimator was fitted with 4|init has 3 features"
    ):
        hml.KMeans(2, init=X[:2, :3]).fit(X)
    with pytest.raises(ValueError, match=r"init must be one of \['k-means\+\+', 'random'\]"):
        hml.KMeans(2, init="kmeans").fit(X)
    with pytest.raises(ValueError, match=r"init_size=2 is smaller than n_clusters=3.*use init_size >= 3"):
        hml.KMeans(3, init_size=2).fit(X)
    with pytest.raises(hml.NotFittedError):
        hml.KMeans(2).predict(X)


def test_memory_stays_near_the_size_of_X():
    """A fit allocates blocks, ‖x‖² and int32 labels -- never an N × K matrix (tracemalloc sees NumPy's allocations)."""
    import tracemalloc

    X = np.random.default_rng(0).random((400_000, 8), dtype=np.float32)
    # Each block takes the budget and a thread per core holds one at once (two here, 16 on the
    # GPU machine's CPU): keep all of them together at an eighth of X.
    budget = X.nbytes // (8 * min(os.cpu_count() or 1, 64))
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    hml.KMeans(64, max_iter=3, random_state=0, working_memory=budget).fit(X)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    # An N × K float32 distance matrix alone would be 8 × the size of X here.
    assert peak < X.nbytes  # (0.53 × here: ‖x‖², two int32 label vectors, k-means++ distances)


def test_threaded_blocks_agree_with_the_sequential_path(monkeypatch):
    """The row primitive runs NumPy's blocks on threads; in order, one thread, the fit is the same, bit for bit."""
    from hml.backends import _rows

    X = blobs(n=3000)
    threaded = hml.KMeans(5, random_state=4, working_memory=4096).fit(X)
    monkeypatch.setattr(_rows, "_threads", lambda: 1)
    sequential = hml.KMeans(5, random_state=4, working_memory=4096).fit(X)
    np.testing.assert_array_equal(threaded.labels_, sequential.labels_)
    np.testing.assert_array_equal(threaded.cluster_centers_, sequential.cluster_centers_)
    assert threaded.inertia_ == sequential.inertia_
