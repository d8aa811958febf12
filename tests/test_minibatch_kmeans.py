"""MiniBatchKMeans against closed forms (a step is a running mean), scikit-learn's MiniBatchKMeans and
its stopping rule, Lloyd's distortion, on every backend, and on data streamed in chunks."""

from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pytest

import hml
from hml._minibatch import READ_EVERY, Stopping


def blobs(n=3000, d=4, k=5, seed=0, scale=4.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=scale, size=(k, d))
    return centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))


def _means(X, centres, counts=None, weights=None):
    """The closed form of one step from ``centres`` with taken weights ``counts``: cₖ ← (vₖcₖ + Sₖ)/(vₖ + nₖ)."""
    k = len(centres)
    counts = np.zeros(k) if counts is None else counts
    weights = np.ones(len(X)) if weights is None else weights
    labels = ((X[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    sums = np.zeros_like(centres)
    np.add.at(sums, labels, weights[:, None] * X)
    taken = np.bincount(labels, weights=weights, minlength=k)
    moved = np.where(
        taken[:, None] > 0, (counts[:, None] * centres + sums) / np.maximum(counts + taken, 1e-300)[:, None], centres
    )
    return moved, counts + taken


def test_partial_fit_steps_are_running_means(case64):
    """Each call moves every centroid to the mean of all rows it has taken (reassignment off):
    the first call from given centres is one Lloyd step, the next ones weight old and new rows."""
    X = blobs(n=900, k=3)
    start = X[:3].copy()
    model = hml.MiniBatchKMeans(3, init=start, reassignment_ratio=0.0)
    centres, counts = start, None
    for chunk in np.array_split(X, 3):
        model.partial_fit(case64.asarray(chunk))
        centres, counts = _means(chunk, centres, counts)
        np.testing.assert_allclose(case64.to_numpy(model.cluster_centers_), centres, rtol=1e-12, atol=1e-12)
    assert model.n_steps_ == 3
    lloyd = hml.KMeans(3, init=start, max_iter=1, tol=0.0).fit(X[:300])
    first = hml.MiniBatchKMeans(3, init=start, reassignment_ratio=0.0).partial_fit(X[:300])
    np.testing.assert_allclose(first.cluster_centers_, lloyd.cluster_centers_, rtol=1e-12)


def test_weighted_partial_fit_is_repeated_rows_and_a_zero_weight_drops_the_row():
    X = blobs(n=120, k=3, seed=1)
    w = np.random.default_rng(2).integers(0, 4, 120)
    start = X[:3].copy()
    w[:3] = np.maximum(w[:3], 1)
    weighted = hml.MiniBatchKMeans(3, init=start, reassignment_ratio=0.0)
    repeated = hml.MiniBatchKMeans(3, init=start, reassignment_ratio=0.0)
    for chunk in (slice(0, 60), slice(60, 120)):
        weighted.partial_fit(X[chunk], sample_weight=w[chunk].astype(float))
        repeated.partial_fit(np.repeat(X[chunk], w[chunk], axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-10, atol=1e-12)
    centres, _ = _means(X[:60], start, weights=w[:60].astype(float))
    once = hml.MiniBatchKMeans(3, init=start, reassignment_ratio=0.0).partial_fit(X[:60], sample_weight=w[:60] * 1.0)
    np.testing.assert_allclose(once.cluster_centers_, centres, rtol=1e-12)


def test_partial_fit_matches_scikit_learn_from_the_same_centres():
    cluster = pytest.importorskip("sklearn.cluster")
    X = blobs(n=2000, k=6, seed=3)
    start = X[:6].copy()
    ours = hml.MiniBatchKMeans(6, init=start, reassignment_ratio=0.0)
    peer = cluster.MiniBatchKMeans(6, init=start, n_init=1, reassignment_ratio=0.0)
    for chunk in np.array_split(X, 8):
        ours.partial_fit(chunk)
        peer.partial_fit(chunk)
    np.testing.assert_allclose(ours.cluster_centers_, peer.cluster_centers_, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours.labels_, peer.labels_)
    assert ours.inertia_ == pytest.approx(peer.inertia_, rel=1e-10)


def test_the_stopping_rule_is_scikit_learns():
    """The same sequence of batch distortions and shifts stops both rules at the same step."""
    cluster = pytest.importorskip("sklearn.cluster")
    rng = np.random.default_rng(0)
    inertias = 1000.0 * (1.0 + np.exp(-np.arange(300) / 30.0)) * (1.0 + 0.05 * rng.random(300))
    shifts = np.exp(-np.arange(300) / 20.0)
    for tol, patience in ((0.0, 10), (0.0, 3), (1e-3, None), (1e-3, 20), (0.0, None)):
        peer = cluster.MiniBatchKMeans(max_no_improvement=patience, verbose=False)
        peer._batch_size, peer._tol = 64, tol
        peer._ewa_inertia, peer._ewa_inertia_min, peer._no_improvement = None, None, 0
        ours = Stopping(64, 5000, tol, patience)
        for step in range(300):
            theirs = peer._mini_batch_convergence(step, 300, 5000, shifts[step], inertias[step])
            assert ours.stop(step + 1, inertias[step], shifts[step]) == theirs, (tol, patience, step)
            if theirs:
                break
        assert ours.average == pytest.approx(peer._ewa_inertia, rel=1e-14)


def test_a_fit_stopped_inside_a_read_window_is_the_fit_of_that_many_steps():
    """The rule is read every READ_EVERY steps; a stop inside the window goes back to its step."""
    X = blobs(n=64, k=3, seed=4)
    stopped = hml.MiniBatchKMeans(3, batch_size=64, max_no_improvement=2, max_iter=500, random_state=0).fit(X)
    assert stopped.n_steps_ % READ_EVERY != 0  # it did stop inside a window
    exact = hml.MiniBatchKMeans(
        3, batch_size=64, max_no_improvement=None, max_iter=stopped.n_steps_, random_state=0
    ).fit(X)
    assert exact.n_steps_ == stopped.n_steps_
    np.testing.assert_array_equal(stopped.cluster_centers_, exact.cluster_centers_)
    np.testing.assert_array_equal(stopped.cost_history_, exact.cost_history_)


def test_reaches_lloyds_distortion_and_scikit_learns():
    cluster = pytest.importorskip("sklearn.cluster")
    X = blobs(n=20_000, d=8, k=10, seed=5)
    start, _ = cluster.kmeans_plusplus(X, 10, random_state=5)  # a good start: the local optimum is the same
    lloyd = hml.KMeans(10, init=start).fit(X)
    ours = hml.MiniBatchKMeans(10, init=start, batch_size=256, random_state=0).fit(X)
    peer = cluster.MiniBatchKMeans(10, init=start, n_init=1, batch_size=256, random_state=0).fit(X)
    assert ours.inertia_ <= 1.02 * lloyd.inertia_
    assert ours.inertia_ <= 1.02 * peer.inertia_
    centres = np.asarray(ours.cluster_centers_)
    assert ours.inertia_ == pytest.approx(((X - centres[ours.labels_]) ** 2).sum(), rel=1e-10)
    assert ours.n_iter_ == int(np.ceil(ours.n_steps_ * 256 / len(X)))
    assert ours.cost_history_.shape == (ours.n_steps_,)


def test_a_fit_is_the_same_on_every_backend(case):
    X = blobs(n=500, k=4, seed=6)
    reference = hml.MiniBatchKMeans(4, batch_size=50, random_state=7).fit(X)
    model = hml.MiniBatchKMeans(4, batch_size=50, random_state=7).fit(case.asarray(X))
    tolerance = 1e-10 if case.float64 else 1e-3
    assert model.n_steps_ == reference.n_steps_ or not case.float64
    np.testing.assert_allclose(
        case.to_numpy(model.cluster_centers_), reference.cluster_centers_, rtol=tolerance, atol=tolerance
    )


def test_a_starved_centroid_is_reseeded_unless_the_ratio_is_zero():
    X = blobs(n=2000, k=3, seed=8)
    start = np.vstack([X[:2], np.full((1, X.shape[1]), 1e3)])  # one centroid no row is near
    kept = hml.MiniBatchKMeans(3, init=start, reassignment_ratio=0.0, random_state=0).fit(X)
    np.testing.assert_array_equal(kept.cluster_centers_[2], start[2])
    reseeded = hml.MiniBatchKMeans(3, init=start, random_state=0).fit(X)
    assert np.abs(np.asarray(reseeded.cluster_centers_)).max() < 100
    assert len(np.unique(reseeded.labels_)) == 3


def test_weighted_fits_draw_rows_by_weight():
    """Integer weights and repeated rows give batches of the same rows in distribution: on separated
    blobs the two fits find the same centres; a zero-weight blob is never drawn."""
    X = blobs(n=3000, k=3, seed=9, scale=20.0)
    w = np.random.default_rng(9).integers(1, 4, 3000)
    weighted = hml.MiniBatchKMeans(3, random_state=0).fit(X, sample_weight=w.astype(float))
    repeated = hml.MiniBatchKMeans(3, random_state=0).fit(np.repeat(X, w, axis=0))
    order = lambda c: np.asarray(c)[np.lexsort(np.asarray(c).T)]  # noqa: E731
    np.testing.assert_allclose(order(weighted.cluster_centers_), order(repeated.cluster_centers_), atol=0.2)
    far = np.vstack([X, np.full((50, X.shape[1]), 1e4)])
    w0 = np.r_[np.ones(3000), np.zeros(50)]
    model = hml.MiniBatchKMeans(3, random_state=0, reassignment_ratio=0.0).fit(far, sample_weight=w0)
    assert np.abs(np.asarray(model.cluster_centers_)).max() < 100


def test_the_weighted_inertia_is_the_weighted_distortion(case64):
    """inertia_ = Σᵢ sᵢ minₖ‖xᵢ − cₖ‖² for fit and partial_fit (‖x‖² is not kept there: each block makes its own)."""
    X = blobs(n=500, k=3, seed=14)
    w = np.random.default_rng(14).integers(0, 4, 500).astype(float)
    for model in (
        hml.MiniBatchKMeans(3, random_state=0).fit(case64.asarray(X), sample_weight=case64.asarray(w)),
        hml.MiniBatchKMeans(3, random_state=0).partial_fit(case64.asarray(X), sample_weight=case64.asarray(w)),
    ):
        centres = case64.to_numpy(model.cluster_centers_)
        direct = (w * ((X[:, None, :] - centres[None]) ** 2).sum(-1).min(1)).sum()
        assert float(model.inertia_) == pytest.approx(direct, rel=1e-10)


def test_n_init_auto_is_scikit_learns_and_keeps_the_best_seeding(monkeypatch):
    from hml import _centroids

    X = blobs(n=1000, k=4, seed=10)
    seeded = []
    original = _centroids.Centroids._seeded

    def counting(data, p, init_size, chance):
        seeded.append(init_size)
        return original(data, p, init_size, chance)

    monkeypatch.setattr(_centroids.Centroids, "_seeded", staticmethod(counting))
    hml.MiniBatchKMeans(4, init="random", random_state=0, batch_size=100).fit(X)
    assert seeded == [300, 300, 300]  # three seedings, each on 3 × batch_size rows
    seeded.clear()
    hml.MiniBatchKMeans(4, random_state=0, batch_size=100).fit(X)
    assert seeded == [300]


def test_the_seedings_are_compared_on_weighted_held_out_rows(monkeypatch):
    """With n_init > 1 the seedings are scored on held-out rows by their weighted distortion (scikit-learn's
    rule), so rows of weight 0 -- a fifth of them here, far away -- do not choose the seeding: the inertia each
    seeding is compared by is Σ ŝᵢ minₖ ‖xᵢ − cₖ‖² over the held-out rows with their weights (ŝ = s·n/Σs),
    computed here directly. They were scored unweighted, the far rows deciding."""
    from hml import cluster

    rng = np.random.default_rng(0)
    n = 3000
    X = rng.normal(size=(n, 2)) + 6 * rng.integers(0, 3, size=(n, 1))
    X[:600] = rng.normal(size=(600, 2)) * 50 + 300
    weights = np.ones(n)
    weights[:600] = 0.0
    scored = []
    original = cluster.assign

    def spy(data, centroids, measure=True):
        labels, inertia = original(data, centroids, measure)
        if data.X.shape[0] == 3 * 256:  # the held-out rows: init_size = 3 × batch_size
            held = np.asarray(data.X)
            far = (np.abs(held) > 100).any(axis=1)  # the rows of weight 0
            distances = ((held[:, None, :] - np.asarray(centroids)[None]) ** 2).sum(axis=2).min(axis=1)
            scored.append((float(inertia), float(distances[~far].sum() * n / weights.sum()), far.any()))
        return labels, inertia

    monkeypatch.setattr(cluster, "assign", spy)
    hml.MiniBatchKMeans(3, n_init=3, batch_size=256, random_state=3).fit(X, sample_weight=weights)
    assert len(scored) == 3 and all(far for _, _, far in scored)
    for used, weighted, _ in scored:
        assert used == pytest.approx(weighted, rel=1e-9)


def test_without_labels_the_inertia_is_the_smoothed_batch_distortion():
    X = blobs(n=20_000, k=5, seed=11)
    exact = hml.MiniBatchKMeans(5, random_state=0).fit(X)
    estimate = hml.MiniBatchKMeans(5, random_state=0, compute_labels=False).fit(X)
    assert "labels_" not in vars(estimate)
    assert estimate.inertia_ == pytest.approx(exact.inertia_, rel=0.1)


def test_bad_parameters_name_the_fix():
    X = blobs(n=100)
    with pytest.raises(ValueError, match=r"init_size=2 is smaller than n_clusters=5.*init_size >= 5"):
        hml.MiniBatchKMeans(5, init_size=2).fit(X)
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1; got 0"):
        hml.MiniBatchKMeans(5, batch_size=0).fit(X)
    with pytest.raises(ValueError, match=r"n_clusters=200 is larger than the number of samples, 100"):
        hml.MiniBatchKMeans(200).partial_fit(X)
    with pytest.raises(ValueError, match=r"X has 3 features, but MiniBatchKMeans is expecting 4"):
        hml.MiniBatchKMeans(5, random_state=0).partial_fit(X).partial_fit(X[:, :3])


def test_partial_fit_goes_on_after_saving_and_loading(tmp_path):
    X = blobs(n=1500, k=3, seed=12)
    chunks = np.array_split(X, 5)
    model = hml.MiniBatchKMeans(3, random_state=0)
    for chunk in chunks[:3]:
        model.partial_fit(chunk)
    model.save(tmp_path / "model.hml")
    loaded = hml.load(tmp_path / "model.hml")
    for chunk in chunks[3:]:
        model.partial_fit(chunk)
        loaded.partial_fit(chunk)
    np.testing.assert_array_equal(loaded.cluster_centers_, model.cluster_centers_)
    assert loaded.n_steps_ == model.n_steps_ == 5


def test_a_generator_of_chunks_is_learnt_one_chunk_at_a_time():
    """partial_fit over a stream: each chunk is made, learnt and dropped (never two alive at once
    beyond the one being made), and the result is the running mean of them all."""
    alive = []

    def stream():
        rng = np.random.default_rng(13)
        centres = rng.normal(scale=6.0, size=(3, 4))
        for _ in range(20):
            chunk = centres[rng.integers(0, 3, 500)] + rng.normal(size=(500, 4))
            alive.append(weakref.ref(chunk))
            yield chunk

    model = hml.MiniBatchKMeans(3, random_state=0, compute_labels=False)
    most = 0
    for chunk in stream():
        model.partial_fit(chunk)
        del chunk
        gc.collect()
        most = max(most, sum(ref() is not None for ref in alive))
    assert most <= 1 and model.n_steps_ == 20


def test_a_dask_array_streamed_from_its_source_is_read_a_round_at_a_time(monkeypatch):
    """Not kept in memory (KEEP_FRACTION = 0): each round of batches reads every chunk once, X is
    never whole in memory, and the fit equals the in-memory fit."""
    da = pytest.importorskip("dask.array")
    monkeypatch.setattr("hml.backends._dask.KEEP_FRACTION", 0.0)
    made = [0]
    alive = []

    def chunk(block_id=None):
        made[0] += 1
        rng = np.random.default_rng([1, block_id[0]])
        values = rng.normal(scale=5.0, size=(3, 3))[rng.integers(0, 3, 400)] + rng.normal(size=(400, 3))
        alive.append(weakref.ref(values))
        most[0] = max(most[0], sum(ref() is not None for ref in alive))
        return values

    most = [0]
    X = da.map_blocks(chunk, chunks=((400,) * 5, (3,)), dtype=np.float64, meta=np.empty((0, 0)))
    params = {"n_clusters": 3, "batch_size": 100, "max_iter": 8, "max_no_improvement": None, "random_state": 0}
    params["working_memory"] = 100 * 3 * 8 * READ_EVERY * 2  # two read windows of batches per round
    in_memory = hml.MiniBatchKMeans(**params).fit(X.compute())
    made[0], most[0] = 0, 0
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = hml.MiniBatchKMeans(**params).fit(X)
    np.testing.assert_allclose(streamed.cluster_centers_, in_memory.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(streamed.labels_), in_memory.labels_)
    steps = 8 * 2000 // 100
    rounds = -(-steps // (2 * READ_EVERY))
    # whole passes: the input check, the seeding sample, each round, the final labels and inertia
    assert made[0] == 5 * (rounds + 3), made[0]
    assert most[0] <= 3  # of 5: X is never whole in memory (dask's threads may hold a chunk each)
