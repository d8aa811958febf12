"""NumPy: the CPU backend and the default."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from hml.backends._base import Backend


class NumpyBackend(Backend):
    name = "numpy"
    module = "numpy"
    install = 'pip install "numpy>=2"'

    def owns(self, array: Any) -> bool:
        return array_api_compat.is_numpy_array(array)

    def from_numpy(self, array: np.ndarray, device: Any) -> Any:
        return np.asarray(array)

    def to_device(self, array: Any, device: Any) -> Any:
        return array
