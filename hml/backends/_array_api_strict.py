"""array-api-strict: the standard's reference implementation.

It refuses anything outside the standard, so the test suite runs every
algorithm on it to prove the code is portable. Its extra devices imitate real
hardware: ``device1`` catches mixed-device bugs, ``no_float64`` a GPU without
double precision (as Apple's MPS).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hml.backends._base import Backend
from hml.exceptions import BackendUnavailableError


class ArrayApiStrictBackend(Backend):
    name = "array_api_strict"
    module = "array_api_strict"
    install = 'pip install "array-api-strict>=2.3"'

    def _namespace(self) -> Any:
        return self.library()

    def devices(self) -> list[Any]:
        return list(self.library().__array_namespace_info__().devices())

    def device_name(self, device: Any) -> str:
        return getattr(device, "_device", str(device))

    def normalize_device(self, device: Any) -> Any:
        if device is None:
            return self.default_device()
        for known in self.devices():
            if device == known or str(device) in (str(known), getattr(known, "_device", None)):
                return known
        raise BackendUnavailableError(f"backend 'array_api_strict' has no device {device!r}; devices: {self.devices()}")

    def supports_float64(self, device: Any) -> bool:
        info = self.library().__array_namespace_info__()
        return "float64" in info.dtypes(device=self.normalize_device(device))

    def owns(self, array: Any) -> bool:
        return type(array).__module__.startswith("array_api_strict")

    def to_numpy(self, array: Any) -> np.ndarray:
        # DLPack works from every array_api_strict device; np.asarray refuses non-CPU ones.
        return np.array(np.from_dlpack(array))
