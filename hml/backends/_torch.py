"""PyTorch: the CPU, NVIDIA GPUs ('cuda') and Apple GPUs ('mps')."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import array_api_compat
import numpy as np

from hml.backends._base import Backend
from hml.exceptions import BackendUnavailableError


class TorchBackend(Backend):
    name = "torch"
    module = "torch"
    # The requirement itself, not "hml[torch]": that works only for an hml from PyPI, this
    # however hml was installed (a checkout, -e, a wheel). tests/test_backends.py keeps it
    # equal to pyproject.toml's extra.
    install = 'pip install "torch>=2.2" (see pytorch.org for the CUDA build that fits your driver)'

    def devices(self) -> list[Any]:
        torch = self.library()
        found = [torch.device("cpu")]
        if torch.cuda.is_available():
            found += [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            found.append(torch.device("mps"))
        return found

    def default_device(self) -> Any:
        return self.library().get_default_device()

    def normalize_device(self, device: Any) -> Any:
        torch = self.library()
        if device is None:
            return self.default_device()
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise BackendUnavailableError(
                f"backend 'torch' cannot use device={device!r} ({exc}); use 'cpu', 'cuda', 'cuda:N' or 'mps'"
            ) from exc
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailableError(
                    f"backend 'torch' with device={device!r}: torch {torch.__version__} sees no "
                    "CUDA device (torch.cuda.is_available() is False). Install a CUDA build of "
                    "PyTorch on a machine with an NVIDIA GPU, or use device='cpu'."
                )
            index = dev.index if dev.index is not None else torch.cuda.current_device()
            if index >= torch.cuda.device_count():
                raise BackendUnavailableError(
                    f"backend 'torch' has no CUDA device {index}; this machine has {torch.cuda.device_count()}"
                )
            return torch.device("cuda", index)
        if dev.type == "mps":
            mps = getattr(torch.backends, "mps", None)
            if mps is None or not mps.is_available():
                raise BackendUnavailableError("backend 'torch': the 'mps' device is not available here")
            return dev
        if dev.type != "cpu":
            raise BackendUnavailableError(f"backend 'torch' does not support device={device!r}")
        return dev

    def on_gpu(self, device: Any) -> bool:
        return getattr(device, "type", str(device)) != "cpu"  # cuda, mps

    def supports_float64(self, device: Any) -> bool:
        return getattr(device, "type", str(device)) != "mps"

    def owns(self, array: Any) -> bool:
        return array_api_compat.is_torch_array(array)

    def from_numpy(self, array: np.ndarray, device: Any) -> Any:
        """What torch cannot hold as NumPy has it, first: another byte order, negative strides (``X[::-1]``),
        and unsigned integers wider than a byte (held as int64: torch's ``index_select`` takes no uint16)."""
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if array.dtype.kind == "u" and array.dtype.itemsize > 1:
            if array.dtype.itemsize == 8 and array.size and int(array.max()) > np.iinfo(np.int64).max:
                raise TypeError(
                    f"torch holds no unsigned integers above 2**63 - 1, and these reach {int(array.max())}; encode "
                    "them (as strings, or smaller integers), or use backend='numpy'"
                )
            array = array.astype(np.int64)
        if any(stride < 0 for stride in array.strides):
            array = np.ascontiguousarray(array)
        if array.flags.writeable:
            return self.library().asarray(array, device=self.normalize_device(device))
        with warnings.catch_warnings():  # a read-only array (a DataFrame's): hml never writes into its inputs
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return self.library().asarray(array, device=self.normalize_device(device))

    def as_input(self, array: Any) -> Any:
        if array.layout != self.library().strided:
            raise TypeError(
                f"a torch tensor of layout {array.layout} is sparse; sparse input is not supported: hml computes on "
                "dense arrays. Pass its .to_dense() if it fits in memory"
            )
        # Data that requires grad is data here: a fit must not record itself in the input's graph.
        return array.detach() if array.requires_grad else array

    def to_numpy(self, array: Any) -> np.ndarray:
        if array.dtype == self.library().bfloat16:  # NumPy has no bfloat16: float32 holds every value
            array = array.float()
        host: np.ndarray = array.detach().cpu().resolve_conj().numpy()
        return host

    def to_device(self, array: Any, device: Any) -> Any:
        return array.to(device)

    def synchronize(self, device: Any = None) -> None:
        torch = self.library()
        dev = self.normalize_device(device)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        elif dev.type == "mps":
            torch.mps.synchronize()

    def _on_cuda(self, device: Any) -> bool:
        return getattr(device, "type", None) == "cuda" or (device is None and self.library().cuda.is_available())

    @contextlib.contextmanager
    def _sync_debug_mode(self, mode: int) -> Iterator[None]:
        cuda = self.library().cuda
        previous = cuda.get_sync_debug_mode()
        if previous != mode:
            cuda.set_sync_debug_mode(mode)
        try:
            yield
        finally:
            if previous != mode:
                cuda.set_sync_debug_mode(previous)

    @contextlib.contextmanager
    def allow_sync(self, device: Any = None) -> Iterator[None]:
        if not self._on_cuda(device):
            yield
            return
        with self._sync_debug_mode(0):
            yield

    @contextlib.contextmanager
    def forbid_sync(self, device: Any = None) -> Iterator[bool]:
        # Process-wide in PyTorch (not per thread): a debugging aid for tests, as intended.
        if not self._on_cuda(device):
            yield False
            return
        with self._sync_debug_mode(2):  # "error"
            yield True
