"""k-means++ seeding (greedy, with one Lloyd iteration, as every default fit starts) at issue 24's shapes:
hml with the code of a git ref and of the working tree, and scikit-learn, timed alternately in one process.

    python benchmarks/kmeans_plusplus.py --before HEAD~1 --rounds 5
    python benchmarks/kmeans_plusplus.py --before HEAD~1 --rounds 5 --lloyd

Prints, per shape, the median times, after ÷ before, after ÷ scikit-learn, and whether both hml versions
chose the same centres (the asv benchmark ``KMeansPlusPlusVsScikitLearn`` tracks the ratio to scikit-learn).
With ``--lloyd``: 20 Lloyd iterations (``tol=0``) from the same k rows instead, timed per iteration
(``KMeansVsScikitLearn``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from before_after import load_before
from common import alternated_medians

SHAPES = [
    (200_000, 32, 64, "float64"),
    (1_000_000, 16, 8, "float64"),
    (200_000, 32, 64, "float32"),
    (100_000, 128, 256, "float32"),
]
ITERATIONS = 20


def sides(old, new, sklearn_kmeans, X, k, lloyd=False):
    """The three fits to time: the ref's hml, the working tree's, scikit-learn's."""
    if lloyd:
        start = X[np.random.default_rng(0).choice(X.shape[0], k, replace=False)]
        return {
            "before": lambda: old.KMeans(k, init=start, max_iter=ITERATIONS, tol=0.0).fit(X),
            "after": lambda: new.KMeans(k, init=start, max_iter=ITERATIONS, tol=0.0).fit(X),
            "sklearn": lambda: sklearn_kmeans(
                k, init=start, n_init=1, max_iter=ITERATIONS, tol=0.0, algorithm="lloyd"
            ).fit(X),
        }
    return {
        "before": lambda: old.KMeans(k, n_init=1, max_iter=1, tol=0.0, random_state=0).fit(X),
        "after": lambda: new.KMeans(k, n_init=1, max_iter=1, tol=0.0, random_state=0).fit(X),
        "sklearn": lambda: sklearn_kmeans(k, n_init=1, max_iter=1, tol=0.0, algorithm="lloyd", random_state=0).fit(X),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD", help="the git ref to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lloyd", action="store_true", help="time 20 Lloyd iterations from given centres")
    args = parser.parse_args()
    old = load_before(args.before, Path(tempfile.mkdtemp()))
    from sklearn.cluster import KMeans

    import hml

    warnings.simplefilter("ignore")
    for n, d, k, dtype in SHAPES:
        X = np.random.default_rng(0).random((n, d), dtype=np.float32 if dtype == "float32" else np.float64)
        fits = sides(old, hml, KMeans, X, k, args.lloyd)
        models = {name: fit() for name, fit in fits.items()}  # and a warm-up
        same = np.array_equal(models["before"].cluster_centers_, models["after"].cluster_centers_)
        t = alternated_medians(fits, args.rounds)
        print(
            f"{n:,} × {d}, K = {k}, {dtype}: before {t['before'] * 1e3:.0f} ms, after {t['after'] * 1e3:.0f} ms "
            f"({t['after'] / t['before']:.3f}×), scikit-learn {t['sklearn'] * 1e3:.0f} ms: after ÷ scikit-learn "
            f"{t['after'] / t['sklearn']:.3f}, before ÷ scikit-learn {t['before'] / t['sklearn']:.3f}; same centres: {same}",
            flush=True,
        )


if __name__ == "__main__":
    main()
