"""How many rows' distances Hamerly's bounds would leave to compute in each Lloyd iteration, at issue 24's shapes
(the uniform data and starting rows of ``kmeans_roofline.py``): exact Lloyd in NumPy, with each row's upper bound
u on the distance to its centroid and lower bound l on the distance to any other, moved by the centroids' shifts.
A row needs its K distances when u > max(l, s/2) even after u is made exact (s: its centroid's distance to the
nearest other centroid). Prints that fraction of the rows per iteration.

    python benchmarks/kmeans_bounds.py

An upper bound on what bounds could save (their own passes over u, l and the labels are not counted). The check
that no row the bounds settle changes its label runs on every iteration.
"""

from __future__ import annotations

import numpy as np

SHAPES = [(200_000, 32, 64), (1_000_000, 16, 8), (100_000, 128, 256)]
ITERATIONS = 20


def distances(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum((X * X).sum(axis=1)[:, None] - 2.0 * X @ C.T + (C * C).sum(axis=1), 0.0))


def main() -> None:
    for n, d, k in SHAPES:
        X = np.random.default_rng(0).random((n, d))
        C = X[np.random.default_rng(0).choice(n, k, replace=False)]
        rows = np.arange(n)
        D = distances(X, C)
        labels = D.argmin(axis=1)
        upper = D[rows, labels]
        D[rows, labels] = np.inf
        lower = D.min(axis=1)
        fractions = []
        for _ in range(ITERATIONS):
            moved = np.array([X[labels == j].mean(axis=0) for j in range(k)])
            shift = np.sqrt(((moved - C) ** 2).sum(axis=1))
            C = moved
            between = np.sqrt(((C[:, None] - C[None]) ** 2).sum(axis=2))
            np.fill_diagonal(between, np.inf)
            half = between.min(axis=1) / 2.0
            upper = upper + shift[labels]
            largest, second = np.argmax(shift), np.partition(shift, -2)[-2]
            lower = lower - np.where(labels == largest, second, shift[largest])
            bound = np.maximum(lower, half[labels])
            tightened = np.sqrt(((X - C[labels]) ** 2).sum(axis=1))
            needs = (upper > bound) & (tightened > bound)
            fractions.append(needs.mean())
            D = distances(X, C)
            new = D.argmin(axis=1)
            assert np.array_equal(new[~needs], labels[~needs]), "a row the bounds settle changed its label"
            nearest = D[rows, new]
            D[rows, new] = np.inf
            upper = np.where(needs, nearest, np.minimum(upper, tightened))
            lower = np.where(needs, D.min(axis=1), lower)
            labels = new
        print(
            f"{n:,} × {d}, K = {k}: rows needing distances per iteration "
            + " ".join(f"{f:.2f}" for f in fractions)
            + f" (mean {np.mean(fractions):.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
