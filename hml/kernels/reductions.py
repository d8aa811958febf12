"""Column sums of tall matrices: the bias gradients Σᵢ δᵢ of the linear models and the perceptron."""

from __future__ import annotations

from typing import Any

import array_api_compat

from hml.kernels._dispatch import kernel

__all__ = ["column_sums"]


@kernel
def column_sums(matrix: Any) -> Any:
    """Σᵢ matrix[i, :], shape (columns,)."""
    return array_api_compat.array_namespace(matrix).sum(matrix, axis=0)


@column_sums.native_path("cupy", "CuPy's axis-0 reduction of a C-ordered tall matrix is far slower than the GEMV 1ᵀA")
def _cupy_column_sums(matrix: Any) -> Any:
    import cupy

    if matrix.ndim != 2 or matrix.shape[0] <= matrix.shape[1]:
        return NotImplemented
    return (cupy.ones((1, matrix.shape[0]), dtype=matrix.dtype) @ matrix)[0]
