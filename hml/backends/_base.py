"""The :class:`Backend` base class: what every backend offers the algorithms."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import array_api_compat
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
        """Raise :class:`hml.BackendUnavailableError` unless this backend (and ``device``) can be used."""
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

    def supports_float64(self, device: Any) -> bool:
        """Whether ``device`` computes in float64 (Apple's MPS, for one, does not)."""
        return True

    def on_gpu(self, device: Any) -> bool:
        """Whether ``device`` is a GPU (one backend can drive both a CPU and a GPU: torch)."""
        return self.gpu

    def cheap_data_dependent_shapes(self, array: Any) -> bool:
        """Whether, computing on ``array``'s device, an array whose shape depends on its data
        (``nonzero``, a mask) costs no wait.

        True on the CPU. False on a GPU, where the host must read the size back (a
        synchronisation). A chunked backend (Dask) answers for its chunks' library, which is
        where a block function selects rows; the graph itself cannot.
        """
        return not self.on_gpu(array_api_compat.device(array))

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

    #: Below this many bytes of X, a fit here is measurably slower than on NumPy (None: never);
    #: ``benchmarks/RESULTS.md`` has the measurements.
    small_data_bytes: int | None = None

    def as_input(self, array: Any) -> Any:
        """The user's ``array`` as the estimators compute on it (a new array where it must change; the
        user's is left as it was): Dask's with every dimension's size known and no empty chunk; PyTorch's
        detached from autograd (data, not a parameter to differentiate). Unsupported layouts raise."""
        return array

    def concrete(self, *arrays: Any) -> tuple[Any, ...]:
        """The arrays as concrete arrays of the library that holds their data: themselves, except
        on a lazy backend, where they are computed (together, one pass) into their chunks' library
        (NumPy, or CuPy for Dask arrays of CuPy chunks). A fitted model keeps these, so it holds no
        graph over its training data."""
        return arrays
