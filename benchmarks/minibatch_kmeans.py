"""Mini-batch k-means on 1,000,000 × 32, K = 64 (issue 23's floors), side by side in one process.

    python benchmarks/minibatch_kmeans.py [--rounds 3] [--n 1000000] [--data blobs|uniform]

Three comparisons, each timed alternately (a, b, b, a, ...) so both sides see the same drift of a
shared machine, medians reported:

1. hml's ``MiniBatchKMeans()`` against hml's ``KMeans()``, both with their defaults (k-means++ seeding
   -- on 3 × 1024 rows for mini-batch, on all rows for Lloyd --, their stopping rules, the labels):
   the fit a user gets. Floors: time ≤ 0.5×, inertia within 2 %.
2. The same two from the same k-means++ centroids (``init=`` the array): the algorithms alone.
3. hml's ``MiniBatchKMeans`` against scikit-learn's, from the same centroids, the same batch size
   (1024) and the same number of steps (one epoch: ``max_iter=1, max_no_improvement=None``), labels
   computed by both. Floor: time ≤ 1.0×.

Data: 64 Gaussian blobs (``sklearn.datasets.make_blobs``, σ = 2, centres in [−10, 10]³²) or uniform
[0, 1)³² (clusters that never settle), float64.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import hml


def timed(fit):
    start = time.perf_counter()
    model = fit()
    return time.perf_counter() - start, model


def alternated(a, b, rounds: int) -> tuple[list[float], list[float], object, object]:
    """Times of ``a`` and ``b`` over ``rounds`` pairs, in the order a b b a a b ..., and their last models."""
    times_a, times_b = [], []
    model_a = model_b = None
    for r in range(rounds):
        for which in "ab" if r % 2 == 0 else "ba":
            if which == "a":
                t, model_a = timed(a)
                times_a.append(t)
            else:
                t, model_b = timed(b)
                times_b.append(t)
    return times_a, times_b, model_a, model_b


def report(name: str, label_a: str, label_b: str, times_a, times_b, model_a, model_b) -> None:
    ta, tb = statistics.median(times_a), statistics.median(times_b)
    ia, ib = float(model_a.inertia_), float(model_b.inertia_)
    steps = getattr(model_a, "n_steps_", None)
    print(
        f"{name}: {label_a} {ta:.3f} s (inertia {ia:.6g}{f', {steps} steps' if steps else ''}), "
        f"{label_b} {tb:.3f} s (inertia {ib:.6g}); time ratio {ta / tb:.3f}, inertia ratio {ia / ib:.5f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--data", default="blobs", choices=["blobs", "uniform"])
    args = parser.parse_args()
    from sklearn.cluster import MiniBatchKMeans, kmeans_plusplus
    from sklearn.datasets import make_blobs

    d, k, batch = 32, 64, 1024
    if args.data == "blobs":
        X, _ = make_blobs(args.n, d, centers=k, cluster_std=2.0, random_state=0)
    else:
        X = np.random.default_rng(0).random((args.n, d))
    start, _ = kmeans_plusplus(X[: 3 * batch], k, random_state=0)
    print(f"{args.data} {X.shape[0]} x {d}, K = {k}, float64; {args.rounds} alternated rounds, medians", flush=True)
    warnings.simplefilter("ignore")

    report(
        "1. defaults",
        "hml MiniBatchKMeans",
        "hml KMeans",
        *alternated(
            lambda: hml.MiniBatchKMeans(k, random_state=0).fit(X),
            lambda: hml.KMeans(k, random_state=0).fit(X),
            args.rounds,
        ),
    )
    report(
        "2. same centroids",
        "hml MiniBatchKMeans",
        "hml KMeans",
        *alternated(
            lambda: hml.MiniBatchKMeans(k, init=start, random_state=0).fit(X),
            lambda: hml.KMeans(k, init=start).fit(X),
            args.rounds,
        ),
    )
    report(
        "3. one epoch, same centroids",
        "hml MiniBatchKMeans",
        "scikit-learn MiniBatchKMeans",
        *alternated(
            lambda: hml.MiniBatchKMeans(k, init=start, max_iter=1, max_no_improvement=None, random_state=0).fit(X),
            lambda: MiniBatchKMeans(
                k, init=start, n_init=1, batch_size=batch, max_iter=1, max_no_improvement=None, random_state=0
            ).fit(X),
            args.rounds,
        ),
    )


if __name__ == "__main__":
    main()
