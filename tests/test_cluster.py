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


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plus_plus_keeps_or_recomputes_the_trials_distances_alike(weighted, monkeypatch):
    """Seeding keeps the trials' D(x)² where they fit (one pass over X a centroid) and recomputes the
    winner's otherwise (two): the same rows are chosen either way, over several blocks."""
    import hml._kmeans as _kmeans
    import hml._seeding as _seeding

    X = blobs(n=3000, d=16, k=8, seed=5)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=3000) if weighted else None
    ctx = backends.resolve("numpy")

    def seeds(seed):
        data = _kmeans.prepared(ctx, X, 8, 4096, None if weights is None else weights / weights.mean())
        return _seeding.kmeans_plus_plus(data, 8, np.random.default_rng(seed))

    kept = [seeds(seed) for seed in range(4)]
    monkeypatch.setattr(_seeding, "KEEP_TRIAL_BYTES", 0)
    recomputed = [seeds(seed) for seed in range(4)]
    for one, other in zip(kept, recomputed, strict=True):
        np.testing.assert_array_equal(one, other)
    assert all(len({row.tobytes() for row in one}) == 8 for one in kept)


def test_init_size_seeds_k_means_plus_plus_from_a_uniform_sample(case, monkeypatch):
    """init_size=m: greedy k-means++ on m rows drawn without replacement (the same rows, and so
    the same seeds, on every backend); init_size >= n is all the rows, as without it."""
    import hml._kmeans as _kmeans
    import hml._seeding as _seeding
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
    expected = _seeding.kmeans_plus_plus(_kmeans.prepared(ctx, sample, 4, None), 4, rng)
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


def test_fewer_distinct_points_than_clusters_stops_and_warns_like_scikit_learn(case):
    """Four distinct points, five clusters (scikit-learn's test_kmeans_warns_less_centers_than_unique_points):
    it used to run all 300 iterations, re-seeding in a loop, with NaN in its history and 150 0/0 warnings."""
    X = np.array([[0, 0], [1, 1], [1, 1], [1, 0], [0, 1]], float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = hml.KMeans(5, init=case.asarray(X)).fit(case.asarray(X))
    messages = [str(w.message) for w in caught]
    assert messages == [
        "Number of distinct clusters (4) found smaller than n_clusters (5). Possibly due to duplicate points in X."
    ]
    assert issubclass(caught[0].category, hml.ConvergenceWarning)
    assert model.n_iter_ == 1
    assert np.isfinite(case.to_numpy(model.cost_history_)).all()
    centres = case.to_numpy(model.cluster_centers_)
    assert np.isfinite(centres).all()
    assert {tuple(c) for c in centres} == {tuple(x) for x in X}  # the duplicate keeps its place
    assert float(model.inertia_) == 0.0
    # The same from k-means++, which picks a duplicate as a second centroid (its D² is 0 only
    # when every other point is taken): the labels say so too.
    with pytest.warns(hml.ConvergenceWarning, match=r"distinct clusters \(4\) found smaller than n_clusters \(5\)"):
        seeded = hml.KMeans(5, random_state=0).fit(case.asarray(X))
    assert len(np.unique(case.to_numpy(seeded.labels_))) == 4
    assert np.isfinite(case.to_numpy(seeded.cost_history_)).all()


def test_a_reseeded_point_that_leaves_its_cluster_empty_gives_no_nan():
    """An empty cluster takes the farthest point; when that point was alone in its cluster, that
    cluster is empty in turn and keeps its centroid (it used to become 0/0)."""
    X = np.array([[0.0], [0.1], [0.2], [10.0]])
    start = np.array([[0.1], [9.0], [50.0]])  # 10.0 alone with centroid 9; 50 empty
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 0/0
        model = hml.KMeans(3, init=start, max_iter=20).fit(X)
    assert np.isfinite(model.cluster_centers_).all() and np.isfinite(model.cost_history_).all()
    reference = pytest.importorskip("sklearn.cluster").KMeans(3, init=start, n_init=1, max_iter=20).fit(X)
    assert model.inertia_ == pytest.approx(reference.inertia_, abs=1e-12)


def test_a_weighted_cluster_emptied_by_reseeding_keeps_its_centroid():
    """Two empty clusters take the two farthest rows, both of a third cluster: that one is left with no row
    and keeps its centroid, weighted too. Its weight nₖ less the two rows' weights was a rounding residue
    (5.6e-17, −2.2e-16), not 0, and Sₖ / nₖ gave it an arbitrary centroid ((−1024, −512), or 0) that then
    took rows from the big cluster."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(50, 2)) * 0.5, [[1000.0, 100.0], [1000.0, -100.0]]])
    init = np.array([[0.0, 0.0], [1000.0, 0.0], [1e5, 1e5], [-1e5, -1e5]])  # 2 and 3 take no row
    for _ in range(30):
        weights = rng.random(52) + 0.05
        with pytest.warns(hml.ConvergenceWarning, match=r"distinct clusters \(3\)"):  # cluster 1 ends empty
            model = hml.KMeans(4, init=init, max_iter=1).fit(X, sample_weight=weights)
        np.testing.assert_array_equal(model.cluster_centers_[1], init[1])
        np.testing.assert_array_equal(np.bincount(model.labels_, minlength=4), [50, 0, 1, 1])


def test_a_weighted_cluster_that_loses_its_rows_in_an_iteration_is_reseeded():
    """Weighted S and n carried from one iteration to the next: a cluster that lost all its rows was left with
    n = −4.4e-16, not 0, so it was not re-seeded and its centroid became a residue over a residue (2.0; 0 with
    the data shifted to 1,000) -- a centroid with no row, and "9 distinct clusters" of 21 distinct points."""
    X = np.array(
        """-1.0538429388941055 0.5228599440195709 -1.739641928098505 -4.1581577983723506 0.2725990647258373
        -1.3169029392044844 0.9613518024999597 -3.20968551044343 -4.095449342040732 2.2166279966907356
        0.4381416441301568 -5.952741778471044 -4.4829159699728 3.9184700174586062 -2.679037261108809
        -1.7580869126394467 2.4747250341584532 -2.5567944147348887 -0.9888275961768717 -1.71831181655232
        5.853249806737013""".split(),
        dtype=np.float64,
    ).reshape(-1, 1)
    weights = np.array([1 / 3, 0.7, 0.1, 0.3, 0.7, 0.7, 2 / 3, 2 / 3, 1 / 3, 2 / 3, 1 / 3, 2 / 3, 0.1, 0.2, 0.3, 2 / 3])
    weights = np.r_[weights, 1 / 3, 0.2, 0.3, 0.3, 2 / 3]
    init = np.array(
        """-0.6664179875233736 -1.6282438039808735 -2.791700094991204 -1.1814795254722306 -1.553048803342855
        1.7651792087425524 4.412987308277106 -1.8174018624209585 -0.4621615945803208 -0.7353894267657425""".split(),
        dtype=np.float64,
    ).reshape(-1, 1)
    for offset in (0.0, 1000.0):
        with warnings.catch_warnings():
            warnings.simplefilter("error", hml.ConvergenceWarning)  # no "distinct clusters" warning
            model = hml.KMeans(10, init=init + offset, tol=0.0).fit(X + offset, sample_weight=weights)
        assert (np.bincount(model.labels_, minlength=10) > 0).all()
        centres = model.cluster_centers_[:, 0] - offset
        assert centres.min() >= X.min() and centres.max() <= X.max()
        reference = pytest.importorskip("sklearn.cluster").KMeans(10, init=init, n_init=1, tol=0.0)
        reference.fit(X, sample_weight=weights)
        np.testing.assert_allclose(centres, reference.cluster_centers_[:, 0], atol=1e-9 * (1 + offset))
        assert float(model.inertia_) == pytest.approx(reference.inertia_, rel=1e-9)


def test_distances_of_a_point_to_itself_are_exactly_zero(case):
    """transform() computes each row's distance to its nearest centroid directly: no cancellation
    in ‖x‖² − 2x·c + ‖c‖² (1.2e-7 on the diagonal before), and no distance is negative."""
    X = blobs(n=600, d=6) * 3.0 + 100.0  # far from 0: the identity cancels most
    model = hml.KMeans(4, random_state=0).fit(case.asarray(X))
    centres = model.cluster_centers_
    distances = case.to_numpy(model.transform(centres))
    np.testing.assert_array_equal(np.diag(distances), 0.0)
    assert (distances >= 0).all()
    on_points = case.to_numpy(model.transform(case.asarray(X)))
    exact = np.sqrt(((X[:, None, :] - case.to_numpy(centres)[None, :, :]) ** 2).sum(axis=2))
    nearest = np.argmin(exact, axis=1)
    # The nearest centroid's distance to the rounding of a direct difference; the others to the GEMM's.
    np.testing.assert_allclose(on_points[np.arange(len(X)), nearest], exact[np.arange(len(X)), nearest], rtol=case.rtol)
    np.testing.assert_allclose(on_points, exact, rtol=case.rtol, atol=1e-6 * np.abs(X).max())


def test_explicit_centroids_with_several_inits_warn_and_run_once(monkeypatch):
    X = blobs(n=200)
    runs = []
    import hml.cluster

    original = hml.cluster._lloyd
    monkeypatch.setattr(hml.cluster, "_lloyd", lambda *args: runs.append(1) or original(*args))
    with pytest.warns(
        RuntimeWarning, match=r"Explicit initial center position passed: performing only one init.*n_init=3"
    ):
        model = hml.KMeans(5, init=X[:5], n_init=3).fit(X)
    assert len(runs) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = hml.KMeans(5, init=X[:5], n_init=1).fit(X)  # the fix: no warning
    np.testing.assert_array_equal(model.cluster_centers_, again.cluster_centers_)


def test_numpy_string_options_are_accepted():
    X = blobs(n=200)
    ours = hml.KMeans(3, init=np.str_("k-means++"), n_init=np.str_("auto"), random_state=0).fit(X)
    theirs = hml.KMeans(3, init="k-means++", n_init="auto", random_state=0).fit(X)
    np.testing.assert_array_equal(ours.cluster_centers_, theirs.cluster_centers_)


def test_bad_input():
    X = blobs(n=20)
    with pytest.raises(ValueError, match=r"n_clusters=30 is larger than the number of samples, 20"):
        hml.KMeans(30).fit(X)
    with pytest.raises(ValueError, match=r"X contains 1 NaN"):
        hml.KMeans(2).fit(np.where(np.arange(80).reshape(20, 4) == 7, np.nan, X))
    with pytest.raises(ValueError, match=r"init has 3 centroids of 4 features, for n_clusters=2 .* shape \(2, 4\)"):
        hml.KMeans(2, init=X[:3]).fit(X)
    with pytest.raises(ValueError, match=r"init has 2 centroids of 3 features, for n_clusters=2 and X's 4 features"):
        hml.KMeans(2, init=X[:2, :3]).fit(X)
    with pytest.raises(TypeError, match=r"init=.* is a callable, which hml does not call; .* shape \(2, 4\)"):
        hml.KMeans(2, init=lambda X, k, random_state: X[:k]).fit(X)
    with pytest.raises(ValueError, match=r"X contains 1 NaN .*remove or impute them first"):
        hml.KMeans(2).fit(X).predict(np.where(np.arange(80).reshape(20, 4) == 7, np.nan, X))
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


@pytest.mark.parametrize("name", ["KMeans", "MiniBatchKMeans"])
def test_transform_names_its_columns_and_gives_a_data_frame_as_scikit_learn(name):
    pandas = pytest.importorskip("pandas")
    sklearn = pytest.importorskip("sklearn")
    from sklearn import cluster, pipeline

    X = np.random.default_rng(0).normal(size=(60, 2))
    frame = pandas.DataFrame(X, columns=["a", "b"], index=np.arange(100, 160))
    ours = getattr(hml, name)(3, n_init=1, random_state=0).fit(frame)
    theirs = getattr(cluster, name)(3, n_init=1, random_state=0).fit(frame)
    assert ours.get_feature_names_out().tolist() == theirs.get_feature_names_out().tolist()
    assert ours.get_feature_names_out(["a", "b"]).tolist() == theirs.get_feature_names_out(["a", "b"]).tolist()
    with pytest.raises(ValueError, match=r"input_features \['p', 'q'\] is not equal to feature_names_in_"):
        ours.get_feature_names_out(["p", "q"])
    with pytest.raises(ValueError, match=f"input_features has 3 names; the {name} was fitted on 2 features"):
        ours.get_feature_names_out(["a", "b", "c"])

    out = ours.set_output(transform="pandas").transform(frame)
    assert list(out.columns) == list(theirs.get_feature_names_out()) and list(out.index) == list(frame.index)
    np.testing.assert_array_equal(out.to_numpy(), ours.set_output(transform="default").transform(frame))
    with sklearn.config_context(transform_output="pandas"):
        chained = pipeline.make_pipeline(getattr(hml, name)(3, n_init=1, random_state=0)).fit_transform(frame)
    assert isinstance(chained, pandas.DataFrame) and chained.shape == (60, 3)
    assert not isinstance(ours.transform(frame), pandas.DataFrame)
    with pytest.raises(ValueError, match=rf"set_output\(transform='polars'\): {name} gives 'default' or 'pandas'"):
        ours.set_output(transform="polars")


@pytest.mark.parametrize("name", ["KMeans", "MiniBatchKMeans"])
def test_init_size_draws_its_sample_among_rows_of_positive_weight(name):
    """Five rows of positive weight in 2,000: a uniform sample of init_size=20 held none, and k-means++ drew from
    NaN probabilities ("Probabilities contain NaN")."""
    X = np.random.default_rng(0).normal(size=(2000, 3))
    w = np.zeros(2000)
    w[[5, 500, 1000, 1500, 1999]] = 1.0
    model = getattr(hml, name)(4, init_size=20, random_state=0, n_init=1).fit(X, sample_weight=w)
    assert np.isfinite(model.cluster_centers_).all()
    assert len(set(model.predict(X[w > 0]).tolist())) == 4  # seeded on the five: every cluster holds some
