"""Where a k-means Lloyd iteration's time goes on CuPy, part by part.

At the issue's size (N = 10⁷, D = 32, K = 256, float32) this times, with CUDA events (median
of --repeats after a warm-up), the kernels of ``hml/backends/_cupy.py`` against what they
replace, and checks that they agree:

* ``e-fused-r1``   the fused nearest-centroid kernel with one row per thread;
* ``e-fused-r2``   the same with two rows per thread (what the backend uses for D ≤ 32), so
                   each centroid value loaded from shared memory feeds two FMAs;
* ``e-portable``   the portable E-step: a GEMM for the N × K scores, then argmin;
* ``m-add-at``     the M-step's sums and counts by ``cupyx`` scatter-adds;
* ``m-shared``     the backend's one kernel: per-block sums in shared memory;
* ``iteration``    a whole hml Lloyd iteration, (T(6 it) − T(1 it)) / 5;

and prints the GEMM roofline's figure for 2·N·D·K flops at --gemm-tflops. Needs CuPy and a
CUDA GPU::

    python benchmarks/gpu/kmeans_parts.py --json parts.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from events import median_ms  # beside this script

import hml
from hml import backends, kernels
from hml.kernels import _cuda


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--clusters", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gemm-tflops", type=float, default=51.3, help="the FP32 GEMM rate measured (side_by_side)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    import cupy

    n, d, k = args.rows, args.features, args.clusters
    rng = np.random.default_rng(0)
    X = cupy.asarray(rng.random((n, d), dtype=np.float32))
    C = X[cupy.asarray(rng.choice(n, k, replace=False))]
    norms = cupy.sum(C * C, axis=1)
    backend = backends.get_backend_object("cupy")
    results: dict = {
        "rows": n,
        "features": d,
        "clusters": k,
        "roofline_ms": 2.0 * n * d * k / (args.gemm_tflops * 1e12) * 1e3,
    }

    def timed(function) -> float:
        return median_ms(function, args.repeats)

    def report(name: str, ms: float, note: str = "") -> None:
        results[name] = ms
        print(f"{name:<14} {ms:9.3f} ms  {note}", flush=True)

    labels, best = kernels.nearest_centroid.portable(X, C, norms, with_scores=True)
    report("e-portable", timed(lambda: kernels.nearest_centroid.portable(X, C, norms)), "GEMM + argmin, one block")

    tile = min(k, _cuda.FUSED_SHARED_FLOATS // (d + 1))
    for rows_per_thread in (1, 2):
        kernel = _cuda.compiled(cupy, "nearest_centroid", D=d, TILE=tile, R=rows_per_thread)
        out_labels, out_best = cupy.empty(n, dtype=cupy.int32), cupy.empty(n, dtype=cupy.float32)
        blocks = (n + 256 * rows_per_thread - 1) // (256 * rows_per_thread)

        def run(kernel=kernel, out_labels=out_labels, out_best=out_best, blocks=blocks):
            kernel(
                (blocks,),
                (256,),
                (X, C, norms, np.int64(n), np.int32(k), out_labels, out_best),
                shared_mem=tile * (d + 1) * 4,
            )

        run()
        differ = int(cupy.sum(out_labels != labels))
        worst = float(cupy.max(cupy.abs(out_best - best)))
        report(
            f"e-fused-r{rows_per_thread}",
            timed(run),
            f"labels differing from e-portable: {differ}; max |Δ score| {worst:.2e}",
        )
        results[f"e-fused-r{rows_per_thread}-differ"] = differ

    reference_sums = kernels.segment_sum(X, labels, k)
    reference_counts = kernels.segment_count(labels, k, X.dtype)
    report("m-add-at", timed(lambda: (kernels.segment_sum(X, labels, k), kernels.segment_count(labels, k, X.dtype))))
    sums, counts = kernels.segment_sum_and_count(X, labels, k)
    rel = float(cupy.max(cupy.abs(sums - reference_sums)) / cupy.max(cupy.abs(reference_sums)))
    same_counts = bool(cupy.all(counts == reference_counts))
    report(
        "m-shared",
        timed(lambda: kernels.segment_sum_and_count(X, labels, k)),
        f"max relative Δ sums vs add.at {rel:.2e}; counts equal: {same_counts}",
    )
    results["m-shared-rel"], results["m-shared-counts-equal"] = rel, same_counts

    def fit(max_iter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return hml.KMeans(k, init=C, n_init=1, max_iter=max_iter, tol=0.0).fit(X)

    fit(1)
    backend.synchronize()
    t1 = timed(lambda: fit(1))
    t6 = timed(lambda: fit(6))
    report("iteration", (t6 - t1) / 5, f"hml KMeans, fused={_cuda.FUSED_KMEANS}; T(1 it) {t1:.1f} ms")
    print(f"roofline       {results['roofline_ms']:9.3f} ms  2·N·D·K at {args.gemm_tflops} TFLOP/s")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
