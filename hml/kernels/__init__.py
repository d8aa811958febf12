"""Numerical primitives, as free functions: each a portable default written against the array API
standard, with the native paths that some libraries do measurably faster (or without a GPU sync)
beside it.

Rules of the room:

* A kernel is called like any function, on arrays of any backend; it runs the native path of its
  first argument's library when there is one (:class:`~hml.kernels._dispatch.Kernel`), else the
  portable default. A native path may decline an input (a dtype it has no kernel for) and let the
  default run.
* Each native path says in one line why it exists -- the synchronisation it avoids, or that it is
  faster (the measurements are in ``benchmarks/RESULTS.md``, not here) -- and
  ``tests/test_kernels.py`` checks each against the default.
* Library-specific code lives here and in :mod:`hml.backends` only: the algorithms call these
  functions and the standard's namespace.

============================  ====================================  =====================
kernel                        computes                              native paths
============================  ====================================  =====================
``segment_sum``               S[k] = Σ_{i: ids[i]=k} values[i]      numpy (Numba†), torch, cupy
``segment_count``             n[k] = #{i: ids[i]=k}                 numpy, torch, cupy
``segment_sum_and_count``     both in one pass                      cupy (one kernel), numpy
                                                                    (Numba†)
``segment_moves``             ΔS, Δn when rows change segment       numpy (Numba†)
``nearest_centroid``          argminₖ ‖cₖ‖² − 2 x·cₖ (and the min)  cupy (fused kernel), numpy
                                                                    (Numba†; else K ≤ 16: running
                                                                    minimum)
``nearest_centroid_scratch``  values per row it writes              cupy
``row_major``                 X, each row contiguous in memory      numpy (a copy if not)
``column_sums``               Σᵢ A[i, :]                            cupy (GEMV)
``cholesky``, ``solve``,      the standard's, flagging failure      torch (no status read),
``inv``                       as NaN where a library would sync     dask (its conventions)
``least_norm_solve``          M⁺ b for a Gram matrix M (by eigh)    dask (one block)
``random_uniform``            U(low, high), drawn on the host       (one code: NumPy's rng)
============================  ====================================  =====================

† Where Numba is installed (the ``numba`` extra; :func:`compiled_loops` says whether they run): compiled
loops, :mod:`hml.kernels._numba` (the same labels as the NumPy paths bit for bit, sums to rounding; where
the scores' GEMM is thin, float64 with 3 ≤ K ≤ 8 or K ≤ 64 at D ≤ 16, the scores too, without the GEMM: the
same labels but at ties to rounding), on blocks large enough that a small fit never loads Numba.
"""

from __future__ import annotations

from hml.kernels._dispatch import Kernel
from hml.kernels._numba import status as compiled_loops
from hml.kernels.distances import nearest_centroid, nearest_centroid_scratch, row_major, scores
from hml.kernels.linalg import cholesky, inv, least_norm_solve, solve
from hml.kernels.random import random_uniform
from hml.kernels.reductions import column_sums
from hml.kernels.segments import segment_count, segment_moves, segment_sum, segment_sum_and_count

__all__ = [
    "Kernel",
    "cholesky",
    "column_sums",
    "compiled_loops",
    "inv",
    "least_norm_solve",
    "nearest_centroid",
    "nearest_centroid_scratch",
    "random_uniform",
    "row_major",
    "scores",
    "segment_count",
    "segment_moves",
    "segment_sum",
    "segment_sum_and_count",
    "solve",
]
