"""k-means on float32 data far from 0 against its spread: labels, distances and distortion as exact as
float32 allows, on every backend.

By the GEMM identity ‖x − c‖² = ‖x‖² − 2x·c + ‖c‖² in float32, rounding is about ε‖x‖²: at 1,000
units from 0 with a spread of a few units, larger than the differences that pick a nearest centroid.
hml computes the distances about an origin among the data (``hml._kmeans.origin``); the references
here are computed directly, ‖x − c‖² from the differences, in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import hml
from hml import _kmeans, _seeding, backends

OFFSET = 1000.0


def far_blobs(n=20_000, d=16, k=8, seed=0, scale=4.0, offset=OFFSET):
    """k overlapping Gaussian blobs (many rows near a boundary) ``offset`` from 0 in every feature, float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=scale, size=(k, d))
    labels = rng.integers(0, k, n)
    return (centres[labels] + rng.normal(size=(n, d)) + offset).astype(np.float32), labels


def exact_squared(X, C):
    """‖xᵢ − cₖ‖² from the differences, in float64: N × K."""
    difference = X.astype(np.float64)[:, None, :] - np.asarray(C, dtype=np.float64)[None, :, :]
    return np.einsum("ikd,ikd->ik", difference, difference)


def near_ties(squared, rtol):
    """Rows whose two smallest squared distances are within ``rtol`` of the larger: where float32 may pick either."""
    two = np.sort(squared, axis=1)[:, :2]
    return two[:, 1] - two[:, 0] <= rtol * two[:, 1]


@pytest.mark.parametrize("estimator", ["KMeans", "MiniBatchKMeans"])
def test_a_float32_fit_far_from_zero_labels_rows_by_their_nearest_centroid(case, estimator):
    X, _ = far_blobs()
    model = getattr(hml, estimator)(8, random_state=0).fit(case.asarray(X))
    centres = case.to_numpy(model.cluster_centers_)
    squared = exact_squared(X, centres)
    labels = case.to_numpy(model.labels_)
    wrong = labels != np.argmin(squared, axis=1)
    # Only near-ties may differ (before the origin: 1,000 units out, hundreds of rows of 20,000 did).
    assert not (wrong & ~near_ties(squared, 1e-4)).any(), int(wrong.sum())
    assert wrong.sum() <= 5
    direct = squared[np.arange(len(X)), labels].sum()
    assert float(model.inertia_) == pytest.approx(direct, rel=1e-5)


def test_predict_transform_and_score_far_from_zero_are_float32_exact(case):
    X, truth = far_blobs(seed=1)
    centres = np.stack([X[truth == k].astype(np.float64).mean(axis=0) for k in range(8)]).astype(np.float32)
    model = hml.KMeans(8, init=case.asarray(centres), max_iter=1, tol=0.0).fit(case.asarray(X[:100]))
    fitted = case.to_numpy(model.cluster_centers_)
    squared = exact_squared(X, fitted)
    predicted = case.to_numpy(model.predict(case.asarray(X)))
    wrong = predicted != np.argmin(squared, axis=1)
    assert not (wrong & ~near_ties(squared, 1e-4)).any() and wrong.sum() <= 5, int(wrong.sum())
    # The distances to every centroid, not only the nearest: within float32 rounding of the spread.
    distances = case.to_numpy(model.transform(case.asarray(X)))
    np.testing.assert_allclose(distances, np.sqrt(squared), rtol=1e-4, atol=1e-3)
    assert model.score(case.asarray(X)) == pytest.approx(-squared.min(axis=1).sum(), rel=1e-5)


@pytest.mark.parametrize("offset", [1e4, 1e5])
def test_transform_far_from_zero_is_as_exact_as_near_it(case, offset):
    """The distances to every centroid of float32 rows 10⁴ and 10⁵ from 0 (a spread of a few units), against
    the distances of the same float32 values in float64: within 10⁻⁴, as near 0. The GEMM identity took
    the rows themselves, its terms ‖x‖·‖c − o‖ in size: 3.0e-3 and 2.4e-2 off here (scikit-learn, which
    computes in float64, ~1e-6); now the rows less the origin, 3e-6."""
    X, truth = far_blobs(n=4_000, seed=2, offset=offset)
    centres = np.stack([X[truth == k].astype(np.float64).mean(axis=0) for k in range(8)]).astype(np.float32)
    model = hml.KMeans(8, init=case.asarray(centres), max_iter=1, tol=0.0).fit(case.asarray(X[:100]))
    squared = exact_squared(X, case.to_numpy(model.cluster_centers_))
    distances = case.to_numpy(model.transform(case.asarray(X)))
    np.testing.assert_allclose(distances, np.sqrt(squared), rtol=0, atol=1e-4)


def test_kmeans_plus_plus_far_from_zero_draws_what_it_draws_at_zero():
    """Seeding float32 data 1,000 units out picks the rows it picks for the same data at 0, in float64: the D(x)²
    it samples by are the distances' own, not rounding of ‖x‖² (±1 unit there, against D(x)² of a few)."""
    X, _ = far_blobs(n=5000, seed=2)
    ctx = backends.resolve("numpy")
    chosen = []
    for data in (X, X.astype(np.float64) - OFFSET):
        centres = _seeding.kmeans_plus_plus(_kmeans.prepared(ctx, data, 8, None), 8, np.random.default_rng(0))
        chosen.append(np.asarray(centres, dtype=np.float64))
    np.testing.assert_allclose(chosen[0] - OFFSET, chosen[1], atol=1e-3)


def test_distances_about_any_origin_are_the_distances():
    """``relative``: the kernel's scores about o, plus ‖x − o‖², are ‖x − c‖² for any o (float64, closed form)."""
    rng = np.random.default_rng(3)
    X, C = rng.normal(size=(50, 5)), rng.normal(size=(7, 5))
    for o in (np.zeros(5), rng.normal(size=5), X[:10].mean(axis=0)):
        scores = hml.kernels.scores(X, *_kmeans.relative(C, o)) + _kmeans.squared_from(X, o)[:, None]
        np.testing.assert_allclose(scores, exact_squared(X, C), rtol=1e-12, atol=1e-12)


def test_the_origin_is_the_mean_of_rows_spread_through_x_or_of_the_first_rows(case):
    X = np.random.default_rng(4).normal(size=(3000, 3))
    spread, first = X[:2048:2].mean(axis=0), X[:1024].mean(axis=0)  # 1,024 rows, every second one
    np.testing.assert_allclose(case.to_numpy(_kmeans.origin(case.asarray(X))), spread, rtol=case.rtol)
    np.testing.assert_allclose(case.to_numpy(_kmeans.origin(case.asarray(X), spread=False)), first, rtol=case.rtol)
    np.testing.assert_allclose(case.to_numpy(_kmeans.origin(case.asarray(X[:5]))), X[:5].mean(axis=0), rtol=case.rtol)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_sorted_rows_whose_first_rows_lie_apart_keep_their_labels(backend):
    """1,024 float32 rows near 0, then 20,000 near 10⁴: an origin from the first rows lay 10⁴ from most of
    the data, and 5,382 rows took a centroid that is not their nearest (inertia 2.4 × the least). From
    rows spread through X it lies among them."""
    pytest.importorskip(backend)
    rng = np.random.default_rng(0)
    rest = rng.normal(size=(20_000, 4)) + 10_000 + 3 * rng.integers(0, 3, size=(20_000, 1))
    X = np.concatenate([rng.normal(size=(1024, 4)), rest]).astype(np.float32)
    init = np.array([[0.0] * 4, [10_000.0] * 4, [10_003.0] * 4, [10_006.0] * 4], dtype=np.float32)
    model = hml.KMeans(4, init=init, backend=backend).fit(X)
    squared = exact_squared(X, backends.to_numpy(model.cluster_centers_))
    wrong = backends.to_numpy(model.labels_) != np.argmin(squared, axis=1)
    assert wrong.sum() <= 0.005 * len(X), int(wrong.sum())
    assert float(model.inertia_) <= 1.01 * squared.min(axis=1).sum()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_each_centroid_is_the_mean_of_its_rows_to_float32_rounding(backend):
    """The M-step's centroids are their rows' means as exactly as float32 holds them (within half a unit in
    the last place) after 60 iterations from the same start -- the rows being those the fit one iteration
    shorter labels with its final centroids. Where S and n are carried from one iteration to the next (the
    moved rows' change added: NumPy, PyTorch on the CPU), float32 rows are summed in float64, so S is the
    same function of the labels whatever moves led to them. Summed in float32, S + ΔS rounded anew every
    iteration (ε·‖S‖: 1,000 × the rows of a cluster here): 23 half-units off on NumPy, and PyTorch's float32
    segment sums 3,463 (0.1 of a unit of the data)."""
    if backend == "torch":
        pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    n, m = 200_000, 60
    X = (rng.normal(size=(n, 4)) + 3 * rng.integers(0, 6, size=(n, 1)) + OFFSET).astype(np.float32)
    init = X[rng.choice(n, 6, replace=False)]
    before = hml.KMeans(6, init=init, tol=0.0, max_iter=m - 1, backend=backend).fit(X)
    after = hml.KMeans(6, init=init, tol=0.0, max_iter=m, backend=backend).fit(X)
    assert after.n_iter_ == m  # not converged: the labels still move
    labels = backends.to_numpy(before.labels_)
    means = np.stack([X[labels == k].astype(np.float64).mean(axis=0) for k in range(6)])
    half_ulp = np.spacing(np.abs(means).astype(np.float32)).astype(np.float64) / 2
    assert np.all(np.abs(backends.to_numpy(after.cluster_centers_) - means) <= half_ulp * (1 + 1e-6))
