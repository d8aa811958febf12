"""CuPy: NVIDIA GPUs through CUDA."""

from __future__ import annotations

import contextlib
import importlib
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
