"""CuPy: NVIDIA GPUs through CUDA."""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import array_api_compat
import numpy as np

from hml.backends._base import Backend
from hml.exceptions import BackendUnavailableError


class CupyBackend(Backend):
    name = "cupy"
    module = "cupy"
    install = 'pip install "cupy-cuda12x>=13" (CUDA 12) or pip install "cupy-cuda13x>=13" (CUDA 13)'
    gpu = True

    def _device_count(self) -> int:
        cupy = self.library()
        try:
            return int(cupy.cuda.runtime.getDeviceCount())
        except Exception as exc:  # CUDARuntimeError has no stable import path
            raise BackendUnavailableError(
                f"backend 'cupy': CuPy {cupy.__version__} is installed but no CUDA device "
                f"is usable ({exc}). Check the NVIDIA driver with `nvidia-smi`, or use "
                f"backend='numpy' on a machine without a GPU."
            ) from exc

    def check_available(self, device: Any = None) -> None:
        if self._device_count() == 0:
            raise BackendUnavailableError(
                "backend 'cupy': CuPy is installed but found no CUDA device. "
                "Use backend='numpy' on a machine without a GPU."
            )
        if device is not None:
            self.normalize_device(device)

    def devices(self) -> list[Any]:
        cupy = self.library()
        return [cupy.cuda.Device(i) for i in range(self._device_count())]

    def default_device(self) -> Any:
        self.check_available()
        return self.library().cuda.Device()

    def normalize_device(self, device: Any) -> Any:
        cupy = self.library()
        if device is None:
            return self.default_device()
        if isinstance(device, cupy.cuda.Device):
            index = device.id
        elif isinstance(device, int):
            index = device
        elif isinstance(device, str) and (device == "cuda" or device.startswith("cuda:")):
            index = int(device.partition(":")[2] or 0)
        else:
            raise BackendUnavailableError(
                f"backend 'cupy' takes device=None, an int, 'cuda', 'cuda:N' or a cupy.cuda.Device; got {device!r}"
            )
        count = self._device_count()
        if not 0 <= index < count:
            raise BackendUnavailableError(f"backend 'cupy' has no CUDA device {index}; this machine has {count}")
        return cupy.cuda.Device(index)

    def owns(self, array: Any) -> bool:
        return array_api_compat.is_cupy_array(array)

    def from_numpy(self, array: np.ndarray, device: Any) -> Any:
        cupy = self.library()
        with self.normalize_device(device):
            return cupy.asarray(array)

    def to_numpy(self, array: Any) -> np.ndarray:
        host: np.ndarray = self.library().asnumpy(array)
        return host

    def to_device(self, array: Any, device: Any) -> Any:
        if array.device.id == device.id:
            return array
        with device:
            return self.library().asarray(array)

    def synchronize(self, device: Any = None) -> None:
        self.normalize_device(device).synchronize()

    @contextlib.contextmanager
    def allow_sync(self, device: Any = None) -> Iterator[None]:
        # CuPy's guard is a thread-local flag (cupy/_core/syncdetect.py); set it directly
        # rather than through cupyx.allow_synchronize, which warns on every call.
        try:
            state = importlib.import_module("cupy._core.syncdetect")._thread_local
        except ImportError:
            yield
            return
        previous = getattr(state, "allowed", True)
        state.allowed = True
        try:
            yield
        finally:
            state.allowed = previous

    @contextlib.contextmanager
    def forbid_sync(self, device: Any = None) -> Iterator[bool]:
        guard = getattr(importlib.import_module("cupyx"), "allow_synchronize", None)
        if guard is None:  # removed in some future CuPy: nothing to detect with
            yield False
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" / deprecated since CuPy 10
            context = guard(False)
            context.__enter__()
        try:
            yield True
        finally:
            context.__exit__(None, None, None)

    working_memory = 1 << 28  # a block is a kernel launch: make few, large ones

    def column_sums(self, matrix: Any) -> Any:
        # CuPy reduces a C-ordered matrix over axis 0 slowly: on an H100, 1M × 1024 float32 took
        # 23.8 ms against 1.4 ms as the GEMV 1ᵀ A, and 1M × 10 4.6 ms against 0.05 ms
        # (benchmarks/gpu/mlp_parts.py); torch takes 1.5 and 0.04 ms either way.
        if matrix.ndim != 2 or matrix.shape[0] <= matrix.shape[1]:
            return super().column_sums(matrix)
        cupy = self.library()
        return (cupy.ones((1, matrix.shape[0]), dtype=matrix.dtype) @ matrix)[0]

    def segment_sum(self, values: Any, segment_ids: Any, n_segments: int) -> Any:
        cupy = self.library()
        sums = cupy.zeros((n_segments, values.shape[1]), dtype=values.dtype)
        cupy.add.at(sums, segment_ids, values)  # atomic adds on the GPU
        return sums

    #: Whether k-means' E-step uses the fused kernel below (float32, D ≤ 64). On an H100 its
    #: first version already made a Lloyd iteration at N = 10⁷, D = 32, K = 256 take 16.3 ms
    #: instead of the portable GEMM + argmin's 35.9 ms (benchmarks/results/gpu-h100-2026-11-23.md);
    #: HML_CUPY_FUSED_KMEANS=0 turns it off. tests/test_cluster.py checks that the two agree.
    fused_kmeans: bool = os.environ.get("HML_CUPY_FUSED_KMEANS", "1") != "0"

    def nearest_centroid(
        self, block: Any, centroids: Any, centroid_norms: Any, *, with_scores: bool = False
    ) -> tuple[Any, Any]:
        if self._fuses(block.dtype, block.shape[1]):
            labels, best = self.fused_nearest_centroid(block, centroids, centroid_norms)
            return labels, (best if with_scores else None)
        return super().nearest_centroid(block, centroids, centroid_norms, with_scores=with_scores)

    def _fuses(self, dtype: Any, n_features: int) -> bool:
        return self.fused_kmeans and dtype == self.library().float32 and n_features <= _FUSED_MAX_FEATURES

    def nearest_centroid_scratch(self, n_clusters: int, n_features: int, dtype: Any) -> int:
        # The fused kernel writes a label and a score per row, not K scores: blocks can be
        # K/2 times longer, so a Lloyd iteration is a few launches, not dozens.
        return 2 if self._fuses(dtype, n_features) else n_clusters

    def fused_nearest_centroid(self, block: Any, centroids: Any, centroid_norms: Any) -> tuple[Any, Any]:
        """argminₖ and minₖ of ‖cₖ‖² − 2 x·cₖ in one kernel: the N × K scores never reach memory.

        Each thread keeps R rows in registers (R = 2 for D ≤ 32, else 1) and walks the
        centroids, staged tile by tile in shared memory with the −2 folded in, so that each
        value loaded from shared memory feeds R FMAs. The FLOPs are the GEMM's (2·N·D·K), the
        bytes X's once. float32, D ≤ 64; ties go to the lowest index, as argmin's do.
        On an H100 at N = 10⁷, D = 32, K = 256: 5.2 ms (R = 2) against 7.2 ms with one row per
        thread and no −2 folding (benchmarks/gpu/kmeans_parts.py).
        """
        cupy = self.library()
        n, d = block.shape
        k = centroids.shape[0]
        tile = min(k, _FUSED_SHARED_FLOATS // (d + 1))
        rows_per_thread = 2 if d <= 32 else 1
        kernel = _compiled(cupy, "nearest_centroid", D=d, TILE=tile, R=rows_per_thread)
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

    def segment_sum_and_count(self, values: Any, segment_ids: Any, n_segments: int) -> tuple[Any, Any]:
        """Sums and counts in one kernel: each thread block adds its rows into a private K × D
        copy in shared memory, then adds that copy to the result once (K·(D+1) global atomics
        per block, not per row). float32 with K·(D+1) ≤ 12,288; else the two scatter-adds.
        On an H100 at N = 10⁷, D = 32, K = 256: 1.3 ms against 4.5 ms for the scatter-adds.
        """
        cupy = self.library()
        n, d = values.shape
        if values.dtype != cupy.float32 or n_segments * (d + 1) > _FUSED_SHARED_FLOATS or n == 0:
            return super().segment_sum_and_count(values, segment_ids, n_segments)
        kernel = _compiled(cupy, "segment_sums", D=d)
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

    def segment_count(self, segment_ids: Any, n_segments: int, dtype: Any) -> Any:
        # Not cupy.bincount: it reads max(ids) back to size its output (a synchronisation).
        cupy = self.library()
        counts = cupy.zeros(n_segments, dtype=dtype)
        cupy.add.at(counts, segment_ids, cupy.ones(segment_ids.shape, dtype=dtype))
        return counts


_FUSED_MAX_FEATURES = 64  # a row lives in registers
_FUSED_SHARED_FLOATS = 12 * 1024  # 48 KiB of shared memory per block: a tile of centroids and their norms
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


def _compiled(cupy: Any, name: str, **constants: int) -> Any:
    """Kernel ``name`` of ``_KERNEL_SOURCE`` compiled with these compile-time constants (cached)."""
    key = (name, *sorted(constants.items()))
    if key not in _KERNELS:
        options = tuple(f"-D{macro}={value}" for macro, value in sorted(constants.items()))
        _KERNELS[key] = cupy.RawModule(code=_KERNEL_SOURCE, options=options).get_function(name)
    return _KERNELS[key]
