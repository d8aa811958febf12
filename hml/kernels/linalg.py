"""Linear algebra whose failure may come back as NaN instead of an exception.

Libraries that check a factorisation's status on the host (PyTorch) wait for the GPU to do it;
their native paths skip that check and return NaN on failure, which the callers' batched
finiteness reads catch. Callers handle both an exception and NaN.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from hml.kernels._dispatch import kernel

__all__ = ["cholesky", "inv", "solve"]


@kernel
def cholesky(matrix: Any) -> Any:
    """The lower-triangular L with LLᵀ = ``matrix`` (the standard's ``linalg.cholesky``, upper=False)."""
    return array_api_compat.array_namespace(matrix).linalg.cholesky(matrix)


@kernel
def solve(matrix: Any, rhs: Any) -> Any:
    """X with ``matrix`` X = ``rhs`` (the standard's ``linalg.solve``)."""
    return array_api_compat.array_namespace(matrix).linalg.solve(matrix, rhs)


@kernel
def inv(matrix: Any) -> Any:
    """``matrix``⁻¹ in ``matrix``'s dtype (the standard's ``linalg.inv``)."""
    return array_api_compat.array_namespace(matrix).linalg.inv(matrix)


# -- PyTorch: the *_ex forms return the status on the device; a failed result becomes NaN ----------
def _nan_unless(result: Any, info: Any) -> Any:
    import torch

    ok = (info == 0).reshape(info.shape + (1,) * (result.ndim - info.ndim))
    return torch.where(ok, result, torch.full_like(result, float("nan")))


@cholesky.native_path("torch", "cholesky_ex: no host read of the status (a GPU sync); NaN on failure")
def _torch_cholesky(matrix: Any) -> Any:
    import torch

    return _nan_unless(*torch.linalg.cholesky_ex(matrix))


@solve.native_path("torch", "solve_ex: no host read of the status (a GPU sync); NaN on failure")
def _torch_solve(matrix: Any, rhs: Any) -> Any:
    import torch

    return _nan_unless(*torch.linalg.solve_ex(matrix, rhs))


@inv.native_path("torch", "inv_ex: no host read of the status (a GPU sync); NaN on failure")
def _torch_inv(matrix: Any) -> Any:
    import torch

    return _nan_unless(*torch.linalg.inv_ex(matrix))


# -- Dask -----------------------------------------------------------------------------------------
@cholesky.native_path("dask", "dask's cholesky returns the upper factor unless told lower=True", required=True)
def _dask_cholesky(matrix: Any) -> Any:
    import dask.array as da

    return da.linalg.cholesky(matrix, lower=True)


@inv.native_path("dask", "dask's inv returns float64 whatever it is given: float32 stays float32", required=True)
def _dask_inv(matrix: Any) -> Any:
    import dask.array as da

    return da.linalg.inv(matrix).astype(matrix.dtype)
