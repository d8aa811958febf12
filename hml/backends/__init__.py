"""The backend layer: which array library, on which device, does the arithmetic.

Rules of the room (read before changing anything here):

* Algorithms are written once, against the Python array API standard. They never
  import a backend's library; they get the namespace ``xp`` and the device from
  this module (:func:`resolve`) and call only the standard, ``array_api_compat``
  and ``array_api_extra``.
* A backend is a small :class:`Backend` object, one module per library. Its
  library is imported only when the backend is first used, may be absent, and may
  be present but unusable (CuPy without a GPU). Every such case raises
  :class:`hml.BackendUnavailableError` naming what is missing and the ``pip``
  command that fixes it -- never a bare ``ImportError`` deep inside a fit.
* What the standard lacks (moving arrays between libraries, synchronising a GPU,
  forcing a lazy Dask graph, host-side random numbers) lives here, as a method
  with a portable default that backends override only where theirs is wrong or
  measurably slower. Each override has a test that it agrees with the default.
* Selection, highest precedence first: an estimator's ``backend=`` argument; the
  :func:`use_backend` context manager; :func:`set_backend`; the ``HML_BACKEND``
  environment variable; otherwise ``"auto"``, which computes in the namespace of
  the input arrays (NumPy for lists and pandas objects). The context manager's
  setting lives in a :class:`contextvars.ContextVar`, so threads and asyncio
  tasks each see their own.
* Inputs move to the chosen backend once, at ``fit``/``predict`` entry; fitted
  attributes stay on its device; ``predict``/``transform`` return arrays in the
  namespace and on the device of the ``X`` they were given.

Why ``hml/backends`` and not a top-level ``backends`` package: a top-level import
package named ``backends`` would collide with an unrelated project of that name
on PyPI.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import array_api_compat
import numpy as np

from hml.backends._array_api_strict import ArrayApiStrictBackend
from hml.backends._base import Backend, dtype_name, numpy_dtype
from hml.backends._cupy import CupyBackend
from hml.backends._dask import DaskBackend
from hml.backends._numpy import NumpyBackend
from hml.backends._rows import PerBlock, Rows, Sum, block_bytes, call_once, keep, reduce_rows, small_steps
from hml.backends._torch import TorchBackend
from hml.exceptions import BackendUnavailableError

__all__ = [
    "AUTO",
    "Backend",
    "BackendStatus",
    "BackendUnavailableError",
    "ComputeContext",
    "HostTransfers",
    "PerBlock",
    "Rows",
    "Sum",
    "available_backends",
    "backend_names",
    "backend_of",
    "block_bytes",
    "call_once",
    "check_random_state",
    "count_host_transfers",
    "in_host_transfer",
    "dtype_name",
    "numpy_dtype",
    "get_backend",
    "get_backend_object",
    "is_array",
    "keep",
    "mirror",
    "reduce_rows",
    "resolve",
    "set_backend",
    "small_steps",
    "synchronize",
    "to_numpy",
    "use_backend",
]

AUTO = "auto"

#: Registry, in the order ``hml info`` lists them and ``backend_of`` tries them.
_REGISTRY: dict[str, Backend] = {
    b.name: b for b in (NumpyBackend(), CupyBackend(), TorchBackend(), DaskBackend(), ArrayApiStrictBackend())
}

#: The backend of each array type seen by :func:`backend_of`.
_OWNERS: dict[type, Backend] = {}

# (name, device) set by use_backend; None means "not set in this context".
_context_choice: contextvars.ContextVar[tuple[str, Any] | None] = contextvars.ContextVar("hml_backend", default=None)
_global_choice: tuple[str, Any] | None = None
_global_lock = threading.Lock()


def backend_names() -> tuple[str, ...]:
    """Names of every backend hml knows, importable here or not."""
    return tuple(_REGISTRY)


def get_backend_object(name: str) -> Backend:
    """The :class:`hml.backends.Backend` registered under ``name`` (``"auto"`` is not one)."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise BackendUnavailableError(f"unknown backend {name!r}; choose one of {[AUTO, *_REGISTRY]}") from None


def _validated(name: str, device: Any) -> tuple[str, Any]:
    if name == AUTO:
        if device is not None:
            raise ValueError("device= needs an explicit backend; backend='auto' follows the input's device")
        return (AUTO, None)
    get_backend_object(name).check_available(device)
    return (name, device)


def set_backend(name: str, device: Any = None) -> None:
    """Set the process-wide default backend (``"auto"`` restores the default).

    Raises :class:`hml.BackendUnavailableError` at once if the backend cannot be used here.
    """
    global _global_choice
    choice = _validated(name, device)
    with _global_lock:
        _global_choice = None if choice[0] == AUTO else choice


@contextlib.contextmanager
def use_backend(name: str, device: Any = None) -> Iterator[Backend | None]:
    """Compute with backend ``name`` (optionally on ``device``) inside a ``with`` block.

    The setting is local to the current thread / asyncio task and is restored on exit::

        with hml.use_backend("torch", device="cuda"):
            model.fit(X, y)
    """
    choice = _validated(name, device)
    token = _context_choice.set(choice)
    try:
        yield None if choice[0] == AUTO else _REGISTRY[choice[0]]
    finally:
        _context_choice.reset(token)


def _current_choice() -> tuple[str, Any]:
    choice = _context_choice.get()
    if choice is not None:
        return choice
    if _global_choice is not None:
        return _global_choice
    env = os.environ.get("HML_BACKEND", "").strip()
    if env:
        if env != AUTO and env not in _REGISTRY:
            raise BackendUnavailableError(
                f"environment variable HML_BACKEND={env!r} names no backend; "
                f"choose one of {[AUTO, *_REGISTRY]} or unset it"
            )
        return (env, None)
    return (AUTO, None)


def get_backend() -> str:
    """Name of the backend selected for this context (``"auto"`` when none is)."""
    return _current_choice()[0]


def is_array(obj: Any) -> bool:
    """Whether ``obj`` is an array of some array library (lists, scalars, pandas objects and types
    such as ``np.float32``, whose class attribute ``__array_namespace__`` looks like an array's, are not)."""
    return array_api_compat.is_array_api_obj(obj) and not isinstance(obj, (np.generic, type))


def backend_of(array: Any) -> Backend:
    """The backend whose library ``array`` belongs to (NumPy for lists, scalars, pandas).

    Found once per array type, then cached: the kernels ask for every block they compute."""
    owner = _OWNERS.get(type(array))
    if owner is not None:
        return owner
    if not is_array(array):
        return _REGISTRY["numpy"]
    for backend in _REGISTRY.values():
        if backend.owns(array):
            _OWNERS[type(array)] = backend
            return backend
    raise BackendUnavailableError(
        f"arrays of type {type(array).__module__}.{type(array).__qualname__} are not supported; "
        f"convert them to one of {list(_REGISTRY)}"
    )


def to_numpy(array: Any) -> np.ndarray:
    """``array`` on the host as NumPy: an array of any backend is copied back, anything else
    goes through ``np.asarray``."""
    if not is_array(array):
        return np.asarray(array)
    backend = backend_of(array)
    with _transfer(backend, None):
        return backend.to_numpy(array)


# -- host transfers: the only places library code waits for a device ---------------------
@dataclass
class HostTransfers:
    """The host transfers :func:`hml.backends.count_host_transfers` saw, by the reason the code gave.

    ``reads``: device → host read-backs (:meth:`ComputeContext.read`), each a GPU
    synchronisation (or a Dask compute). ``uploads``: host → device copies of host data
    (:meth:`ComputeContext.asarray` of NumPy data onto another backend), such as the
    random numbers drawn on the host.
    """

    reads: collections.Counter[str] = field(default_factory=collections.Counter)
    uploads: int = 0

    @property
    def n_reads(self) -> int:
        return sum(self.reads.values())


_transfers: contextvars.ContextVar[HostTransfers | None] = contextvars.ContextVar("hml_transfers", default=None)
_in_transfer: contextvars.ContextVar[bool] = contextvars.ContextVar("hml_in_transfer", default=False)


@contextlib.contextmanager
def count_host_transfers() -> Iterator[HostTransfers]:
    """Count the host reads and uploads of the hml code run inside (this thread / task only).

    Every read-back in hml goes through :meth:`ComputeContext.read` with a reason, so a
    test can hold the library to its documented reads -- one per ``check_every``
    gradient-descent iterations, one per line-search evaluation, one per Lloyd
    iteration -- and, with the GPU libraries' own guards on (``cupyx.allow_synchronize
    (False)``, ``torch.cuda.set_sync_debug_mode("error")``), prove there are no others::

        with hml.backends.count_host_transfers() as seen:
            model.fit(X, y)
        seen.reads  # Counter({'cost window': 10, 'input check': 2, ...})
    """
    log = HostTransfers()
    token = _transfers.set(log)
    try:
        yield log
    finally:
        _transfers.reset(token)


def in_host_transfer() -> bool:
    """Whether a documented host transfer is under way (sync guards in tests let it through)."""
    return _in_transfer.get()


@contextlib.contextmanager
def _transfer(backend: Backend, device: Any) -> Iterator[None]:
    token = _in_transfer.set(True)
    try:
        with backend.allow_sync(device):
            yield
    finally:
        _in_transfer.reset(token)


@dataclass(frozen=True)
class ComputeContext:
    """Where one public call computes: the backend, its namespace ``xp`` and the device."""

    backend: Backend
    xp: Any
    device: Any

    def asarray(self, array: Any, dtype: Any = None) -> Any:
        """Move ``array`` (of any supported library, or a list) here, optionally casting.

        An array already of this backend, on this device and of ``dtype`` comes back as
        is: no copy.
        """
        source = backend_of(array)
        if not source.owns(array):  # lists, scalars, pandas objects
            array = np.asarray(array)
        if source is self.backend:
            out = self.backend.to_device(array, self.device)
        else:
            with _transfer(source, None):
                host = source.to_numpy(array)
            if dtype is not None:
                # Cast on the host: a device without float64 must never receive a float64 array.
                host = host.astype(numpy_dtype(dtype), copy=False)
            log = _transfers.get()
            if log is not None:
                log.uploads += 1
            with _transfer(self.backend, self.device):
                out = self.backend.from_numpy(host, self.device)
        if dtype is not None and out.dtype != dtype:
            out = self.xp.astype(out, dtype)
        return out

    def take_rows(self, array: Any, indices: Any) -> Any:
        """The rows of ``array`` (here) at host ``indices`` (NumPy integers), in their order. The indices
        become NumPy's index type first: int32 on wasm32 (Pyodide), where ``take`` refuses int64."""
        return self.backend.take_rows(self, array, np.asarray(indices).astype(np.intp, copy=False))

    def read(self, array: Any, why: str) -> np.ndarray:
        """``array`` on the host, as NumPy: the one way hml's algorithms read device values.

        On a GPU this waits for the queued work (a synchronisation), on Dask it computes
        the graph; so the algorithms batch what they need into one array and read it
        once -- a window of costs, the line search's three scalars, the k-means
        convergence test. ``why`` names the read for :func:`hml.backends.count_host_transfers`.
        """
        log = _transfers.get()
        if log is not None:
            log.reads[why] += 1
        with _transfer(self.backend, self.device):
            return self.backend.to_numpy(array)

    def to_numpy(self, array: Any) -> np.ndarray:
        """``array`` on the host, for results leaving the library (not counted as an algorithm's read)."""
        with _transfer(self.backend, self.device):
            return self.backend.to_numpy(array)

    def concrete(self, *arrays: Any, why: str = "fitted state") -> tuple[Any, ...]:
        """:meth:`Backend.concrete`: lazy arrays computed, in one pass, into their chunks' library
        (counted as one read where that computes anything); other arrays unchanged."""
        if not self.backend.lazy or not arrays:
            return arrays
        log = _transfers.get()
        if log is not None:
            log.reads[why] += 1
        with _transfer(self.backend, self.device):
            return tuple(self.backend.concrete(*arrays))


def resolve(backend: str | None = None, device: Any = None, like: Any = None) -> ComputeContext:
    """Pick where to compute, by the documented precedence.

    ``backend``/``device`` are an estimator's own arguments (``None``: not set);
    ``like`` is the input array that ``"auto"`` follows.
    """
    if backend is None:
        name, context_device = _current_choice()
        if device is None:
            device = context_device
    else:
        name = backend
    if name == AUTO:
        source = backend_of(like) if like is not None else _REGISTRY["numpy"]
        if device is not None:
            source.check_available(device)
            dev = source.normalize_device(device)
        elif like is not None and source.owns(like):
            dev = array_api_compat.device(like)
        else:
            dev = source.default_device()
        return ComputeContext(source, source.xp, dev)
    target = get_backend_object(name)
    target.check_available(device)
    return ComputeContext(target, target.xp, target.normalize_device(device))


def mirror(result: Any, like: Any) -> Any:
    """Return ``result`` in the namespace and on the device of the input ``like``.

    A NumPy user gets NumPy back even when the work ran on a GPU.
    """
    target = backend_of(like)
    device = array_api_compat.device(like) if target.owns(like) else target.default_device()
    source = backend_of(result)
    if source is target:
        return target.to_device(result, device)
    with _transfer(source, None):
        host = source.to_numpy(result)
    with _transfer(target, device):
        return target.from_numpy(host, device)


def synchronize(backend: str | None = None, device: Any = None) -> None:
    """Wait for queued device work to finish (a no-op on the CPU); use it around timings."""
    ctx = resolve(backend, device)
    ctx.backend.synchronize(ctx.device)


def check_random_state(random_state: Any) -> np.random.Generator:
    """A NumPy ``Generator`` from ``None``, an int seed or a ``Generator``.

    Random numbers are drawn on the host and then moved to the device, so the same
    seed gives the same numbers on every backend.
    """
    if random_state is None or isinstance(random_state, (int, np.integer)):
        if random_state is not None and random_state < 0:
            raise ValueError(f"random_state must be None, a non-negative int or a numpy Generator; got {random_state}")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    raise ValueError(f"random_state must be None, a non-negative int or a numpy.random.Generator; got {random_state!r}")


@dataclass
class BackendStatus:
    """What :func:`hml.available_backends` reports for one backend."""

    name: str
    available: bool
    version: str | None = None
    devices: list[str] = field(default_factory=list)
    reason: str | None = None
    install: str = ""


def available_backends() -> dict[str, BackendStatus]:
    """Every known backend: importable or not (and why), its version and devices."""
    report = {}
    for name, backend in _REGISTRY.items():
        try:
            backend.check_available()
            devices = [backend.device_name(d) for d in backend.devices()]
            report[name] = BackendStatus(name, True, backend.version(), devices, install=backend.install)
        except BackendUnavailableError as exc:
            report[name] = BackendStatus(name, False, reason=str(exc), install=backend.install)
    return report
