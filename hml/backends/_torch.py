"""PyTorch: the CPU, NVIDIA GPUs ('cuda') and Apple GPUs ('mps')."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from hml.backends._base import Backend
from hml.exceptions import BackendUnavailableError


class TorchBackend(Backend):
    name = "torch"
    module = "torch"
    install = 'pip install "hml[torch]" (see pytorch.org for the CUDA build that fits your driver)'

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
                    f"backend 'torch' has no CUDA device {index}; this machine has "
                    f"{torch.cuda.device_count()}"
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

    def supports_float64(self, device: Any) -> bool:
        return getattr(device, "type", str(device)) != "mps"

    def owns(self, array: Any) -> bool:
        return array_api_compat.is_torch_array(array)

    def from_numpy(self, array: np.ndarray, device: Any) -> Any:
        return self.library().asarray(array, device=self.normalize_device(device))

    def to_numpy(self, array: Any) -> np.ndarray:
        return array.detach().cpu().resolve_conj().numpy()

    def to_device(self, array: Any, device: Any) -> Any:
        return array.to(device)

    def synchronize(self, device: Any = None) -> None:
        torch = self.library()
        dev = self.normalize_device(device)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        elif dev.type == "mps":
            torch.mps.synchronize()

    def segment_sum(self, values: Any, segment_ids: Any, n_segments: int) -> Any:
        torch = self.library()
        sums = torch.zeros((n_segments, values.shape[1]), dtype=values.dtype, device=values.device)
        return sums.index_add_(0, segment_ids, values)

    def segment_count(self, segment_ids: Any, n_segments: int, dtype: Any) -> Any:
        return self.library().bincount(segment_ids, minlength=n_segments).to(dtype)
