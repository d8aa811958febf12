"""Linear algebra whose failure may come back as NaN instead of an exception.

Libraries that check a factorisation's status on the host (PyTorch) wait for the GPU to do it;
their native paths skip that check and return NaN on failure, which the callers' batched
finiteness reads catch. Callers handle both an exception and NaN.
"""

from __future__ import annotations

import functools
from typing import Any

import array_api_compat

from hml.kernels._dispatch import kernel

__all__ = ["cholesky", "inv", "least_norm_solve", "solve"]


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


@kernel
def least_norm_solve(matrix: Any, rhs: Any, shift: float = 0.0) -> Any:
    """The minimum-norm w minimising ‖M w − rhs‖ for a symmetric positive semi-definite M (a Gram
    matrix): w = M⁺ rhs = V diag(1/λ⁺) Vᵀ rhs from M = V diag(λ) Vᵀ, where 1/λ⁺ is 1/λ for
    λ > d·ε·λ_max and 0 for the others.

    The cut is the rounding of a Gram matrix: its eigenvalues are known to about ε·λ_max, so
    smaller ones are noise, the directions M does not determine. For M = ZᵀZ this is the
    least-squares solution of minimum norm of Z w = y (``rhs`` = Zᵀy), as ``lstsq`` gives it,
    for any rank of Z; for a full-rank, well-conditioned M it is ``solve``'s answer. M squares Z's
    condition number: a direction of Z whose singular value is below √(d·ε) of the largest (cond(Z)
    beyond about 10⁸/√d in float64) is cut as noise, where ``lstsq`` on Z itself would keep it.

    ``shift`` λ ≥ 0: (M + λI)⁻¹ rhs on the directions M determines, 1/(λ + λᵢ), and 0 on the others -- the ridge
    solution where λ is at the rounding of M, whose noise 1/(λ + noise) would blow up.
    """
    xp = array_api_compat.array_namespace(matrix, rhs)
    eigenvalues, vectors = xp.linalg.eigh(matrix)
    cutoff = matrix.shape[0] * xp.finfo(matrix.dtype).eps * xp.max(xp.abs(eigenvalues))
    kept = eigenvalues > cutoff
    inverse = xp.where(
        kept, 1.0 / (xp.where(kept, eigenvalues, xp.ones_like(eigenvalues)) + shift), xp.zeros_like(eigenvalues)
    )
    return vectors @ (xp.reshape(inverse, (-1, 1)) * (vectors.T @ rhs))


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


@least_norm_solve.native_path("dask", "dask has no eigh: the small matrix as one block, solved there", required=True)
def _dask_least_norm_solve(matrix: Any, rhs: Any, shift: float = 0.0) -> Any:
    import dask.array as da

    d = matrix.shape[0]
    k = rhs.shape[1]
    solve_block = functools.partial(least_norm_solve.portable, shift=shift)
    return da.map_blocks(
        solve_block, matrix.rechunk((d, d)), rhs.rechunk((d, k)), chunks=((d,), (k,)), dtype=matrix.dtype
    )
