"""CuPy: NVIDIA GPUs through CUDA."""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from typing import Any, Iterator

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
                f"backend 'cupy' takes device=None, an int, 'cuda', 'cuda:N' or a "
                f"cupy.cuda.Device; got {device!r}"
            )
        count = self._device_count()
        if not 0 <= index < count:
            raise BackendUnavailableError(
                f"backend 'cupy' has no CUDA device {index}; this machine has {count}"
            )
        return cupy.cuda.Device(index)

    def owns(self, array: Any) -> bool:
        return array_api_compat.is_cupy_array(array)

    def from_numpy(self, array: np.ndarray, device: Any) -> Any:
        cupy = self.library()
        with self.normalize_device(device):
            return cupy.asarray(array)

    def to_numpy(self, array: Any) -> np.ndarray:
        return self.library().asnumpy(array)

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

    def segment_sum(self, values: Any, segment_ids: Any, n_segments: int) -> Any:
        cupy = self.library()
        sums = cupy.zeros((n_segments, values.shape[1]), dtype=values.dtype)
        cupy.add.at(sums, segment_ids, values)  # atomic adds on the GPU
        return sums

    #: Whether k-means' E-step uses the fused kernel below. Off until a GPU run shows it beats
    #: the portable GEMM + argmin (benchmarks/gpu/side_by_side.py times both, as hml-cupy and
    #: hml-cupy-fused); HML_CUPY_FUSED_KMEANS=1 turns it on for such a run.
    fused_kmeans: bool = os.environ.get("HML_CUPY_FUSED_KMEANS") == "1"

    def nearest_centroid(self, block: Any, centroids: Any, centroid_norms: Any, *,
                         with_scores: bool = False) -> tuple[Any, Any]:
        if self.fused_kmeans and block.dtype == self.library().float32 and block.shape[1] <= _FUSED_MAX_FEATURES:
            labels, best = self.fused_nearest_centroid(block, centroids, centroid_norms)
            return labels, (best if with_scores else None)
        return super().nearest_centroid(block, centroids, centroid_norms, with_scores=with_scores)

    def fused_nearest_centroid(self, block: Any, centroids: Any, centroid_norms: Any) -> tuple[Any, Any]:
        """argminₖ and minₖ of ‖cₖ‖² − 2 x·cₖ in one kernel: the N × K scores never reach memory.

        One thread per row keeps its row in registers and walks the centroids, staged tile by
        tile in shared memory; the FLOPs are the GEMM's (2·N·D·K), the bytes X's once. float32,
        D ≤ 64; ties go to the lowest index, as argmin's do.
        """
        cupy = self.library()
        n, d = block.shape
        k = centroids.shape[0]
        tile = min(k, _FUSED_SHARED_FLOATS // (d + 1))
        kernel = _fused_kernel(cupy, d, tile)
        labels = cupy.empty(n, dtype=cupy.int32)
        best = cupy.empty(n, dtype=cupy.float32)
        threads = 256
        kernel(((n + threads - 1) // threads,), (threads,),
               (cupy.ascontiguousarray(block), cupy.ascontiguousarray(centroids),
                cupy.ascontiguousarray(centroid_norms), np.int64(n), np.int32(k), labels, best),
               shared_mem=tile * (d + 1) * 4)
        return labels, best

    def segment_count(self, segment_ids: Any, n_segments: int, dtype: Any) -> Any:
        # Not cupy.bincount: it reads max(ids) back to size its output (a synchronisation).
        cupy = self.library()
        counts = cupy.zeros(n_segments, dtype=dtype)
        cupy.add.at(counts, segment_ids, cupy.ones(segment_ids.shape, dtype=dtype))
        return counts


_FUSED_MAX_FEATURES = 64  # a row lives in registers
_FUSED_SHARED_FLOATS = 12 * 1024  # 48 KiB of shared memory per block: a tile of centroids and their norms
_FUSED_SOURCE = r"""
extern "C" __global__ void nearest_centroid(
    const float* __restrict__ X, const float* __restrict__ C, const float* __restrict__ cnorm,
    const long long n, const int k, int* __restrict__ labels, float* __restrict__ best_out)
{
    // D (features) and TILE (centroids per shared-memory tile) are compile-time constants.
    extern __shared__ float shared[];
    float* tile_c = shared;             // TILE * D centroid values
    float* tile_n = shared + TILE * D;  // their squared norms
    const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    float x[D];
    if (row < n) {
        #pragma unroll
        for (int j = 0; j < D; ++j) x[j] = X[row * D + j];
    }
    float best = __int_as_float(0x7f800000);  // +inf
    int best_k = 0;
    for (int start = 0; start < k; start += TILE) {
        const int count = min(TILE, k - start);
        __syncthreads();
        for (int i = threadIdx.x; i < count * D; i += blockDim.x) tile_c[i] = C[(long long)start * D + i];
        for (int i = threadIdx.x; i < count; i += blockDim.x) tile_n[i] = cnorm[start + i];
        __syncthreads();
        if (row < n) {
            for (int c = 0; c < count; ++c) {
                float dot = 0.0f;
                #pragma unroll
                for (int j = 0; j < D; ++j) dot = fmaf(x[j], tile_c[c * D + j], dot);
                const float score = tile_n[c] - 2.0f * dot;
                if (score < best) { best = score; best_k = start + c; }  // strict: the first minimum wins
            }
        }
    }
    if (row < n) { labels[row] = best_k; best_out[row] = best; }
}
"""
_FUSED_KERNELS: dict[tuple[int, int], Any] = {}


def _fused_kernel(cupy: Any, d: int, tile: int) -> Any:
    """The nearest-centroid kernel compiled for D = ``d`` features and tiles of ``tile`` centroids (cached)."""
    key = (d, tile)
    if key not in _FUSED_KERNELS:
        module = cupy.RawModule(code=_FUSED_SOURCE, options=(f"-DD={d}", f"-DTILE={tile}"))
        _FUSED_KERNELS[key] = module.get_function("nearest_centroid")
    return _FUSED_KERNELS[key]
