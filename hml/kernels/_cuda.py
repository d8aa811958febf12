"""CUDA kernels for CuPy: the k-means E-step and M-step, each fused into one kernel.

Compiled on first use (``cupy.RawModule``) with the sizes as compile-time constants, and cached.
The callers in :mod:`hml.kernels.distances` and :mod:`hml.kernels.segments` check what each kernel
handles (float32, D ≤ 64, shared memory) and fall back to the portable path otherwise.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

#: Whether k-means' E-step uses the fused kernel (float32, D ≤ 64); ``HML_CUPY_FUSED_KMEANS=0``
#: turns it off. ``tests/test_kernels.py`` checks that it agrees with the portable GEMM + argmin
#: (on a GPU); ``benchmarks/gpu/kmeans_parts.py`` times the two.
FUSED_KMEANS: bool = os.environ.get("HML_CUPY_FUSED_KMEANS", "1") != "0"


def fuses(dtype: Any, n_features: int) -> bool:
    """Whether :func:`hml.kernels.nearest_centroid` handles a block of this dtype and width."""
    import cupy

    return FUSED_KMEANS and dtype == cupy.float32 and n_features <= FUSED_MAX_FEATURES


def nearest_centroid(block: Any, centroids: Any, centroid_norms: Any) -> tuple[Any, Any]:
    """argminₖ and minₖ of ‖cₖ‖² − 2 x·cₖ in one kernel: the N × K scores never reach memory.

    Each thread keeps R rows in registers (R = 2 for D ≤ 32, else 1) and walks the centroids,
    staged tile by tile in shared memory with the −2 folded in, so that each value loaded from
    shared memory feeds R FMAs. The FLOPs are the GEMM's (2·N·D·K), the bytes X's once. float32,
    D ≤ 64 (:func:`fuses`); ties go to the lowest index, as argmin's do.
    """
    import cupy

    n, d = block.shape
    k = centroids.shape[0]
    tile = min(k, FUSED_SHARED_FLOATS // (d + 1))
    rows_per_thread = 2 if d <= 32 else 1
    kernel = compiled(cupy, "nearest_centroid", D=d, TILE=tile, R=rows_per_thread)
    labels = cupy.empty(n, dtype=cupy.int32)
    best = cupy.empty(n, dtype=cupy.float32)
    threads = 256
    per_block = threads * rows_per_thread
    kernel(
        ((n + per_block - 1) // per_block,),
        (threads,),
        (
            cupy.ascontiguousarray(block),
            cupy.ascontiguousarray(centroids),
            cupy.ascontiguousarray(centroid_norms),
            np.int64(n),
            np.int32(k),
            labels,
            best,
        ),
        shared_mem=tile * (d + 1) * 4,
    )
    return labels, best


def segment_sums(values: Any, segment_ids: Any, n_segments: int) -> Any:
    """Sums and counts in one kernel: each thread block adds its rows into a private K × D copy in
    shared memory, then adds that copy to the result once (K·(D+1) global atomics per block, not per
    row). float32 with K·(D+1) ≤ 12,288; ``NotImplemented`` otherwise."""
    import cupy

    n, d = values.shape
    if values.dtype != cupy.float32 or n_segments * (d + 1) > FUSED_SHARED_FLOATS or n == 0:
        return NotImplemented
    kernel = compiled(cupy, "segment_sums", D=d)
    sums = cupy.zeros((n_segments, d), dtype=cupy.float32)
    counts = cupy.zeros(n_segments, dtype=cupy.float32)
    device = cupy.cuda.Device()
    blocks = min(device.attributes["MultiProcessorCount"] * 4, (n * d + 255) // 256)
    kernel(
        (blocks,),
        (256,),
        (
            cupy.ascontiguousarray(values),
            cupy.ascontiguousarray(segment_ids, dtype=cupy.int32),
            np.int64(n),
            np.int32(n_segments),
            sums,
            counts,
        ),
        shared_mem=n_segments * (d + 1) * 4,
    )
    return sums, counts


FUSED_MAX_FEATURES = 64  # a row lives in registers
FUSED_SHARED_FLOATS = 12 * 1024  # 48 KiB of shared memory per block: a tile of centroids and their norms
_KERNEL_SOURCE = r"""
// Each kernel is compiled on its own with its constants; the others get placeholders.
#ifndef TILE
#define TILE 1
#endif
#ifndef R
#define R 1
#endif

extern "C" __global__ void __launch_bounds__(256) nearest_centroid(
    const float* __restrict__ X, const float* __restrict__ C, const float* __restrict__ cnorm,
    const long long n, const int k, int* __restrict__ labels, float* __restrict__ best_out)
{
    // D (features), TILE (centroids per shared-memory tile) and R (rows per thread) are
    // compile-time constants. score(x, c) = ‖c‖² + x·(−2c), the −2 folded into the tile.
    extern __shared__ float shared[];
    float* tile_c = shared;             // TILE * D values of −2c
    float* tile_n = shared + TILE * D;  // TILE squared norms
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
    for (int r = 0; r < R; ++r) { best[r] = __int_as_float(0x7f800000); best_k[r] = 0; }  // +inf
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
#if D % 4 == 0
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
#else
            #pragma unroll
            for (int j = 0; j < D; ++j) {
                const float v = tile_c[c * D + j];
                #pragma unroll
                for (int r = 0; r < R; ++r) dot[r] = fmaf(x[r][j], v, dot[r]);
            }
#endif
            #pragma unroll
            for (int r = 0; r < R; ++r) {
                if (dot[r] < best[r]) { best[r] = dot[r]; best_k[r] = start + c; }  // strict: the first minimum wins
            }
        }
    }
    #pragma unroll
    for (int r = 0; r < R; ++r) {
        if (first + r < n) { labels[first + r] = best_k[r]; best_out[first + r] = best[r]; }
    }
}

extern "C" __global__ void segment_sums(
    const float* __restrict__ X, const int* __restrict__ labels, const long long n, const int k,
    float* __restrict__ sums, float* __restrict__ counts)
{
    // Consecutive threads take consecutive elements of X: coalesced reads, and the columns of
    // one row land in distinct shared-memory banks. Each block adds into its own K × D copy.
    extern __shared__ float shared[];
    float* s_sums = shared;
    float* s_counts = shared + k * D;
    for (int i = threadIdx.x; i < k * (D + 1); i += blockDim.x) shared[i] = 0.0f;
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
_KERNELS: dict[tuple[Any, ...], Any] = {}


def compiled(cupy: Any, name: str, **constants: int) -> Any:
    """Kernel ``name`` of ``_KERNEL_SOURCE`` compiled with these compile-time constants (cached)."""
    key = (name, *sorted(constants.items()))
    if key not in _KERNELS:
        options = tuple(f"-D{macro}={value}" for macro, value in sorted(constants.items()))
        _KERNELS[key] = cupy.RawModule(code=_KERNEL_SOURCE, options=options).get_function(name)
    return _KERNELS[key]
