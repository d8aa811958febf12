"""The :class:`Backend` base class: what every backend offers the algorithms."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import array_api_compat
import array_api_extra as xpx
import numpy as np

from hml.exceptions import BackendUnavailableError


def dtype_name(dtype: Any) -> str:
    """``"float32"`` for ``numpy.float32``, ``torch.float32``, ``array_api_strict.float32`` or ``"float32"``."""
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, (np.dtype, type)):
        name: str = np.dtype(dtype).name
        return name
    return str(dtype).rsplit(".", 1)[-1]


def numpy_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of the same name as a dtype of any backend."""
    return np.dtype(dtype_name(dtype))


class Backend:
    """One array library hml can compute with.

    A subclass names the library (``name``, ``module``), tells users how to
    install it (``install``) and overrides the few methods whose generic
    version is wrong or slow for it. Instances are stateless apart from a cached
    namespace, so one instance per backend is shared by every estimator.
    """

    #: Name used in ``backend=``, ``set_backend`` and ``HML_BACKEND``.
    name: str = ""
    #: Module to import to use the backend.
    module: str = ""
    #: What to run when ``module`` is missing.
    install: str = ""
    #: Whether the backend computes on a GPU (and so needs one to be present).
    gpu: bool = False
    #: Whether arrays are lazy graphs (Dask): no data-dependent shapes, batch the reads.
    lazy: bool = False

    def __init__(self) -> None:
        self._xp: Any = None
        self._lib: Any = None

    def __repr__(self) -> str:
        return f"<hml backend {self.name!r}>"

    # -- import and availability ------------------------------------------------
    def library(self) -> Any:
        """The imported library module (``numpy``, ``cupy``, ``torch``...)."""
        if self._lib is None:
            try:
                self._lib = importlib.import_module(self.module)
            except ImportError as exc:
                raise BackendUnavailableError(
                    f"backend {self.name!r} needs the {self.module!r} package, which "
                    f"could not be imported ({exc}). Install it with: {self.install}"
                ) from exc
        return self._lib

    @property
    def xp(self) -> Any:
        """The array-API-compatible namespace (``array_api_compat`` wrapper)."""
        if self._xp is None:
            self._xp = self._namespace()
        return self._xp

    def _namespace(self) -> Any:
        # array_api_compat wraps the library so that it follows the standard.
        self.library()
        return importlib.import_module(f"array_api_compat.{self.module}")

    def version(self) -> str:
        """The library's version string."""
        return str(getattr(self.library(), "__version__", "unknown"))

    def check_available(self, device: Any = None) -> None:
        """Raise :class:`BackendUnavailableError` unless this backend (and ``device``) can be used."""
        self.library()
        if device is not None:
            self.normalize_device(device)

    def devices(self) -> list[Any]:
        """The devices this backend can compute on, on this machine."""
        return ["cpu"]

    def device_name(self, device: Any) -> str:
        """A short, user-facing name for ``device`` (what ``device=`` accepts)."""
        return str(device)

    # -- devices ---------------------------------------------------------------
    def default_device(self) -> Any:
        """The device used when ``device=None``."""
        return self.devices()[0]

    def normalize_device(self, device: Any) -> Any:
        """Turn a user's ``device=`` (``None``, a string, a device object) into a device object."""
        if device is None:
            return self.default_device()
        if str(device) in {str(d) for d in self.devices()}:
            return device
        raise BackendUnavailableError(
            f"backend {self.name!r} has no device {device!r}; devices here: {[str(d) for d in self.devices()]}"
        )

    def chunks_have_cheap_data_dependent_shapes(self, array: Any) -> bool:
        """:meth:`cheap_data_dependent_shapes` for the library that computes ``array``'s chunks:
        the array's own library here; a chunked backend (Dask) asks its chunks' library."""
        return self.cheap_data_dependent_shapes(array_api_compat.device(array))

    def supports_float64(self, device: Any) -> bool:
        """Whether ``device`` computes in float64 (Apple's MPS, for one, does not)."""
        return True

    def cheap_data_dependent_shapes(self, device: Any) -> bool:
        """Whether an array whose shape depends on its data (``nonzero``, a mask) costs no wait.

        True on the CPU. False on a GPU, where the host must read the size back (a
        synchronisation), and on Dask, where such shapes are unknown until computed:
        there the algorithms take a fixed-shape path instead (k-means sums every row).
        """
        return not (self.gpu or self.lazy)

    # -- arrays ------------------------------------------------------------------
    def owns(self, array: Any) -> bool:
        """Whether ``array`` belongs to this backend's library."""
        raise NotImplementedError

    def from_numpy(self, array: np.ndarray, device: Any) -> Any:
        """A NumPy array as an array of this backend on ``device`` (a host-to-device copy)."""
        return self.xp.asarray(array, device=device)

    def to_numpy(self, array: Any) -> np.ndarray:
        """An array of this backend as NumPy (a device-to-host copy; on a GPU it waits for the device)."""
        return np.asarray(array)

    def to_device(self, array: Any, device: Any) -> Any:
        """Move an array of this backend to ``device`` (no copy when already there)."""
        if str(array_api_compat.device(array)) == str(device):
            return array
        return array_api_compat.to_device(array, device)

    def synchronize(self, device: Any = None) -> None:
        """Wait until queued work on ``device`` is done (for honest timing). No-op on the CPU."""

    @contextlib.contextmanager
    def allow_sync(self, device: Any = None) -> Iterator[None]:
        """Let a documented host transfer synchronise while the library's sync guard is on.

        GPU backends lift ``cupyx.allow_synchronize(False)`` / ``torch.cuda.set_sync_debug_mode
        ("error")`` here, so a test that turns the guard on around a fit fails on every
        *other* synchronisation. Nothing to lift on the CPU.
        """
        yield

    @contextlib.contextmanager
    def forbid_sync(self, device: Any = None) -> Iterator[bool]:
        """Turn the library's own guard against device synchronisation on (a debugging aid).

        Yields whether this backend has such a guard; CPU backends have none (their
        reads cost no wait) and yield False.
        """
        yield False

    def materialize(self, *arrays: Any) -> tuple[Any, ...]:
        """Compute lazy arrays now (Dask), so that an iterative loop does not grow one huge graph."""
        return arrays

    def take_rows(self, ctx: Any, array: Any, indices: np.ndarray) -> Any:
        """``array``'s rows at host ``indices``: the standard's ``take`` with the indices uploaded."""
        return ctx.xp.take(array, ctx.asarray(indices), axis=0)

    def row_chunk_ends(self, array: Any) -> list[int] | None:
        """The row index after each row chunk of a chunked array (Dask), ascending; None in memory."""
        return None

    def keep(self, *arrays: Any) -> tuple[Any, ...]:
        """The training matrices an iterative fit passes over again and again: computed once
        and held (:meth:`materialize`) where they fit in memory. A lazy backend streams them
        from their source instead -- recomputing them in every pass -- when they do not."""
        return self.materialize(*arrays)

    #: Below this many bytes of X, a fit here is measurably slower than on NumPy (None: never).
    small_data_bytes: int | None = None
    #: What to say then: the measurement behind ``small_data_bytes``.
    small_data_advice: str = ""

    def with_known_shape(self, array: Any) -> Any:
        """``array`` with every dimension's size known (Dask: ``X[mask]`` has NaN chunk sizes)."""
        return array

    def concrete(self, *arrays: Any) -> tuple[Any, ...]:
        """The arrays as concrete arrays of the library that holds their data: themselves, except
        on a lazy backend, where they are computed (together, one pass) into their chunks' library
        (NumPy, or CuPy for Dask arrays of CuPy chunks). A fitted model keeps these, so it holds no
        graph over its training data."""
        return arrays

    # -- segment sums (the standard has no scatter-add) ----------------------------
    #: Bytes a chunked algorithm may spend on one block of temporaries (k-means: rows × K
    #: distances plus the block's rows). 8 MiB on CPUs: on 2 cores, with blocks on threads,
    #: 1, 2, 4, 8 MiB gave k-means/scikit-learn ratios ≈ 1.5, 1.3, 1.2, 1.2. GPU and Dask
    #: backends raise it, since for them each block is a kernel launch or a graph.
    working_memory: int = 1 << 23

    def working_memory_for(self, device: Any) -> int:
        """``working_memory`` on ``device``: one backend can drive both a CPU and a GPU (torch)."""
        return self.working_memory

    def segment_sum(self, values: Any, segment_ids: Any, n_segments: int) -> Any:
        """S[k] = Σ_{i : ids[i] = k} values[i], shape (n_segments, d): the k-means centroid update.

        Portable fallback: one_hot(ids)ᵀ @ values (``array_api_extra.one_hot``), a GEMM;
        callers pass row blocks, so the one-hot block stays small. Backends with a native
        scatter-add override it; ``tests/test_cluster.py`` checks each against this fallback.
        """
        return xpx.one_hot(segment_ids, n_segments, dtype=values.dtype, xp=self.xp).T @ values

    def segment_count(self, segment_ids: Any, n_segments: int, dtype: Any) -> Any:
        """n[k] = #{i : ids[i] = k}, shape (n_segments,), as ``dtype`` (fallback: column sums of the one-hot)."""
        return self.xp.sum(xpx.one_hot(segment_ids, n_segments, dtype=dtype, xp=self.xp), axis=0)

    def column_sums(self, matrix: Any) -> Any:
        """Σᵢ matrix[i, :], shape (columns,): the bias gradients of tall N × d matrices."""
        return self.xp.sum(matrix, axis=0)

    def segment_sum_and_count(self, values: Any, segment_ids: Any, n_segments: int) -> tuple[Any, Any]:
        """``(segment_sum, segment_count)`` of one pass, the counts in ``values``' dtype: the M-step.

        Two calls here; a backend may compute both in one kernel (``tests/test_cluster.py``
        checks agreement with these two).
        """
        return (
            self.segment_sum(values, segment_ids, n_segments),
            self.segment_count(segment_ids, n_segments, values.dtype),
        )

    def nearest_centroid_scratch(self, n_clusters: int, n_features: int, dtype: Any) -> int:
        """Values per row that :meth:`nearest_centroid` writes to memory: the K scores, portably."""
        return n_clusters

    def nearest_centroid(
        self, block: Any, centroids: Any, centroid_norms: Any, *, with_scores: bool = False
    ) -> tuple[Any, Any]:
        """The k-means E-step for a block of rows: lᵢ = argminₖ ‖cₖ‖² − 2 xᵢ·cₖ (int32) and,
        with ``with_scores``, that minimum (‖xᵢ − c_{lᵢ}‖² without the ‖xᵢ‖² term), else None.

        Portable: one GEMM for the rows × K scores (−2 folded into the small centroid
        matrix), then argmin (and min) over them. A backend may fuse the two so that the
        scores are never written to memory (``tests/test_cluster.py`` checks agreement).
        """
        xp = self.xp
        scores = block @ (-2.0 * centroids).T
        scores += centroid_norms
        nearest = xp.astype(xp.argmin(scores, axis=1), xp.int32)
        return nearest, (xp.min(scores, axis=1) if with_scores else None)

    def map_blocks(self, function: Any, items: Any) -> list[Any]:
        """``[function(item) for item in items]``, in order.

        The default runs them one after another. The NumPy backend runs interleaved
        groups of them on a thread per core (NumPy releases the GIL in its kernels),
        with BLAS held to one thread so the two kinds of threads do not compete.
        Results come back in item order either way, so reductions over them are identical.
        """
        return [function(item) for item in items]

    def map_row_chunks(
        self, function: Any, arrays: list[Any], shared: tuple[Any, ...], out: list[Any]
    ) -> tuple[Any, ...]:
        """``function(*row_chunks, *shared)`` on each row chunk of the row-aligned ``arrays``, in the
        chunks' own library, its outputs combined: ``("rows", dtype)`` concatenated along the rows,
        ``("sum", shape, dtype)`` added up. In-memory arrays are one chunk: one call, as they are.

        A chunked backend (Dask) runs one task per chunk, so a step written for in-memory
        arrays -- with its cache-sized blocks and fused primitives -- runs once per chunk
        instead of as a graph of many small array operations.
        """
        return tuple(function(*arrays, *shared))

    def call_once(self, function: Any, args: tuple[Any, ...], out: list[Any]) -> tuple[Any, ...]:
        """``function(*args)`` on small arrays (parameters, sums over the rows), returning the
        tuple of arrays that ``out`` lists as ``(shape, dtype)``; ``args`` that are not arrays
        pass as they are. In-memory backends call it.

        A chunked backend (Dask) runs it as one task on the arrays' single chunks, in their
        library: an update written as ~20 small array operations (the k-means M-step and
        its convergence status) is then one task to schedule instead of ~20, each a round
        of the scheduler (1-5 ms on a distributed cluster).
        """
        return tuple(function(*args))

    # -- linear algebra: a failure may come back as NaN instead of an exception ------------
    # Libraries that check a factorisation's status on the host (PyTorch) wait for the GPU to
    # do it; their overrides skip that check and return NaN on failure, which the callers'
    # batched finiteness reads catch. Callers handle both an exception and NaN.
    def cholesky(self, matrix: Any) -> Any:
        """The lower-triangular L with LLᵀ = ``matrix`` (the standard's ``linalg.cholesky``, upper=False)."""
        return self.xp.linalg.cholesky(matrix)

    def solve(self, matrix: Any, rhs: Any) -> Any:
        """X with ``matrix`` X = ``rhs`` (the standard's ``linalg.solve``)."""
        return self.xp.linalg.solve(matrix, rhs)

    def inv(self, matrix: Any) -> Any:
        """``matrix``⁻¹ in ``matrix``'s dtype (the standard's ``linalg.inv``)."""
        return self.xp.linalg.inv(matrix)

    # -- random numbers ------------------------------------------------------------
    def random_uniform(
        self,
        rng: np.random.Generator,
        shape: int | tuple[int, ...],
        *,
        low: float = 0.0,
        high: float = 1.0,
        dtype: Any,
        device: Any,
    ) -> Any:
        """``U(low, high)`` samples drawn on the host and moved here.

        Drawing with NumPy's generator makes the same ``random_state`` give the
        same numbers on every backend.
        """
        sample = rng.uniform(low, high, size=shape)
        return self._upload(sample.astype(numpy_dtype(dtype)), device)

    def random_normal(self, rng: np.random.Generator, shape: int | tuple[int, ...], *, dtype: Any, device: Any) -> Any:
        """Standard-normal samples drawn on the host and moved here."""
        sample = rng.standard_normal(size=shape)
        return self._upload(sample.astype(numpy_dtype(dtype)), device)

    def permutation(self, rng: np.random.Generator, n: int, *, device: Any) -> Any:
        """A random permutation of ``0..n-1`` (int64 indices) drawn on the host."""
        return self._upload(rng.permutation(n).astype(np.int64), device)

    def _upload(self, host: np.ndarray, device: Any) -> Any:
        # A host draw moved to the device is an upload: it waits for the host buffer, which
        # torch's sync-debug mode reports as a synchronisation. It happens once, at the start.
        with self.allow_sync(device):
            return self.from_numpy(host, device)
