"""k-means on float32 data far from 0: how many labels are not the nearest centroid, and how far the reported
distortion is from the true one -- hml and scikit-learn, against float64 references computed from the differences.

    python benchmarks/kmeans_precision.py
    python benchmarks/kmeans_precision.py --rows 200000 --offsets 0 1000 10000
    python benchmarks/kmeans_precision.py --twins

Data: K Gaussian blobs (centres N(0, 4²) in each feature, unit noise: overlapping, many rows near a boundary),
moved ``offset`` from 0 in every feature, as float32. For each offset: a fit from the same k-means++ seeds
(scikit-learn's, given to both), then ``predict`` at the blobs' true means. "wrong" counts rows whose label is not
the nearest centroid by exact float64 distances at the centroids the labels were made for; "J error" is the
reported distortion (``inertia_`` for the fit, ``-score`` for predict) against Σ‖xᵢ − c_{lᵢ}‖² in float64.

``--twins``: uniform data in [0, 1) (200,000 × 32, K = 64, eight seeds of k rows): how many labels of the float32
fit differ from its float64 twin's (the same rows in float64, the same seeds) after 3 and 10 Lloyd iterations.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def blobs(n: int, d: int, k: int, offset: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(0, k, n)
    return (centres[labels] + rng.normal(size=(n, d)) + offset).astype(np.float32), labels


def exact_squared(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    out = np.empty((X.shape[0], C.shape[0]))
    Xd = X.astype(np.float64)
    for k, c in enumerate(np.asarray(C, dtype=np.float64)):  # a loop over the K centroids, each a vector pass
        difference = Xd - c
        out[:, k] = np.einsum("ij,ij->i", difference, difference)
    return out


def judged(X: np.ndarray, centres: np.ndarray, labels: np.ndarray, reported: float) -> str:
    squared = exact_squared(X, centres)
    wrong = int((np.asarray(labels) != np.argmin(squared, axis=1)).sum())
    true = squared[np.arange(X.shape[0]), np.asarray(labels)].sum()
    return f"wrong {wrong:>6,} ({wrong / X.shape[0]:7.3%}), J error {abs(reported - true) / true:.1e}"


def twins() -> None:
    from sklearn.cluster import KMeans

    import hml

    X = np.random.default_rng(0).random((200_000, 32)).astype(np.float32)
    totals = {"hml": [0, 0], "scikit-learn": [0, 0]}
    for seed in range(8):
        start = X[np.random.default_rng(seed + 1).choice(X.shape[0], 64, replace=False)]
        for column, iterations in enumerate((3, 10)):
            fits = {
                "hml": lambda Z, c, i=iterations: hml.KMeans(64, init=c, max_iter=i, tol=0.0).fit(Z),
                "scikit-learn": lambda Z, c, i=iterations: KMeans(
                    64, init=c, n_init=1, max_iter=i, tol=0.0, algorithm="lloyd"
                ).fit(Z),
            }
            for name, fit in fits.items():
                single, double = fit(X, start), fit(X.astype(np.float64), start.astype(np.float64))
                totals[name][column] += int((np.asarray(single.labels_) != np.asarray(double.labels_)).sum())
    for name, (three, ten) in totals.items():
        print(f"{name}: labels unlike the float64 twin's, 8 seeds, after 3 iterations {three:,}, after 10 {ten:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--offsets", type=float, nargs="+", default=[0.0, 10.0, 100.0, 1e3, 1e4, 1e5])
    parser.add_argument("--twins", action="store_true", help="float32 fits against their float64 twins")
    args = parser.parse_args()
    if args.twins:
        warnings.simplefilter("ignore")
        twins()
        return
    from sklearn.cluster import KMeans, kmeans_plusplus

    import hml

    warnings.simplefilter("ignore")
    n, d, k = args.rows, args.features, args.clusters
    print(f"{n:,} rows × {d}, K = {k}, float32; hml {hml.__version__}")
    for offset in args.offsets:
        X, truth = blobs(n, d, k, offset)
        seeds, _ = kmeans_plusplus(X, k, random_state=0)
        means = np.stack([X[truth == j].astype(np.float64).mean(axis=0) for j in range(k)]).astype(np.float32)
        ours = hml.KMeans(k, init=seeds, max_iter=100).fit(X)
        peer = KMeans(k, init=seeds, n_init=1, max_iter=100, algorithm="lloyd").fit(X)
        at_means = hml.KMeans(k, init=means, max_iter=1).fit(X[:k])
        at_means.cluster_centers_ = means
        peer_at_means = KMeans(k, init=means, n_init=1, max_iter=1).fit(X[:k])
        peer_at_means.cluster_centers_ = means
        print(f"offset {offset:>8g}")
        print(f"  fit      hml           {judged(X, np.asarray(ours.cluster_centers_), ours.labels_, ours.inertia_)}")
        print(f"  fit      scikit-learn  {judged(X, peer.cluster_centers_, peer.labels_, peer.inertia_)}")
        print(f"  predict  hml           {judged(X, means, at_means.predict(X), -at_means.score(X))}")
        print(f"  predict  scikit-learn  {judged(X, means, peer_at_means.predict(X), -peer_at_means.score(X))}")


if __name__ == "__main__":
    main()
