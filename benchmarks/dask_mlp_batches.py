"""What a mini-batch step of the networks costs on Dask, by how often θ is computed (``LAZY_ROUND``).

    python benchmarks/dask_mlp_batches.py                # 16,000 × 4, batch 200, 2 epochs
    python benchmarks/dask_mlp_batches.py --rows 4000 --rounds 1 4 0

``MultilayerPerceptronRegressor`` (its defaults: Adam, batches of 200) fitted on a NumPy array and on
the same rows as a Dask array of 4 chunks, once per value of ``hml.optimize.batches.LAZY_ROUND``
(0: never within an epoch, the graph of a whole epoch built first); prints the Dask time per batch
and the largest difference of the fitted weights from NumPy's.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 4, 8, 16, 32, 0])
    args = parser.parse_args()
    import dask.array as da

    import hml
    from hml.optimize import batches

    warnings.simplefilter("ignore")  # ConvergenceWarning after two epochs, Dask's small-data warning
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, 4))
    y = X @ np.array([1.0, 2.0, 3.0, 4.0])
    dX, dy = da.from_array(X, chunks=(args.rows // 4, 4)), da.from_array(y, chunks=args.rows // 4)
    model = hml.MultilayerPerceptronRegressor(max_iter=args.epochs, random_state=0)
    reference = model.fit(X, y).coefs_
    n_batches = args.epochs * -(-args.rows // 200)
    for rounds in args.rounds:
        batches.LAZY_ROUND = rounds or 10**9
        start = time.perf_counter()
        fitted = hml.MultilayerPerceptronRegressor(max_iter=args.epochs, random_state=0).fit(dX, dy)
        elapsed = time.perf_counter() - start
        worst = max(float(np.max(np.abs(np.asarray(a) - b))) for a, b in zip(fitted.coefs_, reference, strict=True))
        print(
            f"LAZY_ROUND {rounds or 'never':>5}: {1000 * elapsed / n_batches:6.1f} ms a batch "
            f"({n_batches} batches), weights within {worst:.1e} of NumPy's",
            flush=True,
        )


if __name__ == "__main__":
    main()
