"""Where a k-means Lloyd iteration's time goes on CuPy, part by part, with candidate kernels.

At the issue's size (N = 10⁷, D = 32, K = 256, float32) this times, with CUDA events (median
of --repeats after a warm-up):

* ``e-fused``      the backend's fused nearest-centroid kernel (one thread per row);
* ``e-fused-r2``   the same with two rows per thread, so each centroid value loaded from
                   shared memory feeds two FMAs (a candidate);
* ``m-add-at``     the M-step's sums and counts by ``cupyx`` scatter-adds (the backend's);
* ``m-shared``     sums and counts accumulated per thread block in shared memory, then added
                   to the result once per block (a candidate);
* ``iteration``    a whole hml Lloyd iteration, (T(6 it) − T(1 it)) / 5;

checks that each candidate agrees with what it would replace, and prints the GEMM roofline's
figure for 2·N·D·K flops at --gemm-tflops. Needs CuPy and a CUDA GPU::

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

import hml  # noqa: E402
from hml import backends  # noqa: E402

_R2_SOURCE = r"""
extern "C" __global__ void __launch_bounds__(256) nearest_centroid_rows(
    const float* __restrict__ X, const float* __restrict__ C, const float* __restrict__ cnorm,
    const long long n, const int k, int* __restrict__ labels, float* __restrict__ best_out)
{
    // score(x, c) = ‖c‖² + x·(−2c): the −2 is folded into the centroids staged in shared memory.
    extern __shared__ float shared[];
    float* tile_c = shared;
    float* tile_n = shared + TILE * D;
    const long long first = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * R;
    float x[R][D];
    #pragma unroll
    for (int r = 0; r < R; ++r) {
        #pragma unroll
        for (int j = 0; j < D; ++j) x[r][j] = (first + r < n) ? X[(first + r) * D + j] : 0.0f;
    }
    float best[R];
    int best_k[R];
    #pragma unroll
    for (int r = 0; r < R; ++r) { best[r] = __int_as_float(0x7f800000); best_k[r] = 0; }
    for (int start = 0; start < k; start += TILE) {
        const int count = min(TILE, k - start);
        __syncthreads();
        for (int i = threadIdx.x; i < count * D; i += blockDim.x) tile_c[i] = -2.0f * C[(long long)start * D + i];
        for (int i = threadIdx.x; i < count; i += blockDim.x) tile_n[i] = cnorm[start + i];
        __syncthreads();
        for (int c = 0; c < count; ++c) {
            float dot[R];
            #pragma unroll
            for (int r = 0; r < R; ++r) dot[r] = tile_n[c];
            #pragma unroll
            for (int j = 0; j < D; j += 4) {
                const float4 v = *reinterpret_cast<const float4*>(&tile_c[c * D + j]);
                #pragma unroll
                for (int r = 0; r < R; ++r) {
                    dot[r] = fmaf(x[r][j], v.x, dot[r]);
                    dot[r] = fmaf(x[r][j + 1], v.y, dot[r]);
                    dot[r] = fmaf(x[r][j + 2], v.z, dot[r]);
                    dot[r] = fmaf(x[r][j + 3], v.w, dot[r]);
                }
            }
            #pragma unroll
            for (int r = 0; r < R; ++r) if (dot[r] < best[r]) { best[r] = dot[r]; best_k[r] = start + c; }
        }
    }
    #pragma unroll
    for (int r = 0; r < R; ++r) if (first + r < n) { labels[first + r] = best_k[r]; best_out[first + r] = best[r]; }
}
"""

_SEGMENT_SOURCE = r"""
extern "C" __global__ void segment_sums(
    const float* __restrict__ X, const int* __restrict__ labels, const long long n, const int k,
    float* __restrict__ sums, float* __restrict__ counts)
{
    // Each block adds its rows into a private K × D copy in shared memory (consecutive threads
    // take consecutive elements of X: coalesced reads, and one row's columns in distinct banks),
    // then adds that copy to the result: K·D global atomics per block instead of per row.
    extern __shared__ float shared[];
    float* s_sums = shared;
    float* s_counts = shared + k * D;
    for (int i = threadIdx.x; i < k * D + k; i += blockDim.x) shared[i] = 0.0f;
    __syncthreads();
    const long long total = n * D;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const long long row = e / D;
        const int col = (int)(e - row * D);
        const int label = labels[row];
        atomicAdd(&s_sums[label * D + col], X[e]);
        if (col == 0) atomicAdd(&s_counts[label], 1.0f);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < k * D; i += blockDim.x) atomicAdd(&sums[i], s_sums[i]);
    for (int i = threadIdx.x; i < k; i += blockDim.x) atomicAdd(&counts[i], s_counts[i]);
}
"""


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
    results: dict = {"rows": n, "features": d, "clusters": k, "roofline_ms": 2.0 * n * d * k / (args.gemm_tflops * 1e12) * 1e3}

    def timed(function) -> float:
        function()
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        times = []
        for _ in range(args.repeats):
            start.record()
            function()
            stop.record()
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop))
        return float(np.median(times))

    def report(name: str, ms: float, note: str = "") -> None:
        results[name] = ms
        print(f"{name:<14} {ms:9.3f} ms  {note}", flush=True)

    labels, best = backend.fused_nearest_centroid(X, C, norms)
    report("e-fused", timed(lambda: backend.fused_nearest_centroid(X, C, norms)))

    tile = min(k, (12 * 1024) // (d + 1))
    for rows_per_thread in (1, 2):
        kernel = cupy.RawModule(code=_R2_SOURCE, options=(f"-DD={d}", f"-DTILE={tile}", f"-DR={rows_per_thread}")
                                ).get_function("nearest_centroid_rows")
        out_labels, out_best = cupy.empty(n, dtype=cupy.int32), cupy.empty(n, dtype=cupy.float32)
        blocks = (n + 256 * rows_per_thread - 1) // (256 * rows_per_thread)

        def run(kernel=kernel, out_labels=out_labels, out_best=out_best, blocks=blocks):
            kernel((blocks,), (256,), (X, C, norms, np.int64(n), np.int32(k), out_labels, out_best),
                   shared_mem=tile * (d + 1) * 4)

        run()
        differ = int(cupy.sum(out_labels != labels))
        worst = float(cupy.max(cupy.abs(out_best - best)))
        report(f"e-fused-r{rows_per_thread}", timed(run), f"labels differing from e-fused: {differ}; max |Δ score| {worst:.2e}")
        results[f"e-fused-r{rows_per_thread}-differ"] = differ

    reference_sums = backend.segment_sum(X, labels, k)
    reference_counts = backend.segment_count(labels, k, X.dtype)
    report("m-add-at", timed(lambda: (backend.segment_sum(X, labels, k), backend.segment_count(labels, k, X.dtype))))

    segment = cupy.RawModule(code=_SEGMENT_SOURCE, options=(f"-DD={d}",)).get_function("segment_sums")
    grid = cupy.cuda.Device().attributes["MultiProcessorCount"] * 4

    def shared_sums():
        sums = cupy.zeros((k, d), dtype=cupy.float32)
        counts = cupy.zeros(k, dtype=cupy.float32)
        segment((grid,), (256,), (X, labels, np.int64(n), np.int32(k), sums, counts), shared_mem=(k * d + k) * 4)
        return sums, counts

    sums, counts = shared_sums()
    rel = float(cupy.max(cupy.abs(sums - reference_sums)) / cupy.max(cupy.abs(reference_sums)))
    same_counts = bool(cupy.all(counts == reference_counts))
    report("m-shared", timed(shared_sums), f"max relative Δ sums vs add.at {rel:.2e}; counts equal: {same_counts}")
    results["m-shared-rel"], results["m-shared-counts-equal"] = rel, same_counts

    host_start = cupy.asnumpy(C)

    def fit(max_iter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return hml.KMeans(k, init=C, n_init=1, max_iter=max_iter, tol=0.0).fit(X)

    fit(1)
    backend.synchronize()
    t1 = timed(lambda: fit(1))
    t6 = timed(lambda: fit(6))
    report("iteration", (t6 - t1) / 5, f"hml KMeans, fused={backend.fused_kmeans}; T(1 it) {t1:.1f} ms")
    del host_start
    print(f"roofline       {results['roofline_ms']:9.3f} ms  2·N·D·K at {args.gemm_tflops} TFLOP/s")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
