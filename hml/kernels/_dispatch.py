"""How a kernel picks its implementation: the library of its first array argument."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from hml import backends

__all__ = ["Kernel", "kernel"]


class Kernel:
    """A numerical primitive: its portable default, written against the array API standard, and
    native paths by library name (``"numpy"``, ``"cupy"``, ``"torch"``, ``"dask"``), each with the
    one-line reason it exists.

    A call runs the native path of the first argument's library when there is one, else the
    default. A native path may decline an input it does not handle (a dtype, a size) by returning
    ``NotImplemented``; the default then runs. ``tests/test_kernels.py`` checks every native path
    and the default against the same reference -- except the default on a library whose path is
    ``required``: there the library's own function breaks the standard's contract (Dask's
    ``cholesky`` gives the upper factor), which is why the path exists.
    """

    __name__: str

    def __init__(self, portable: Callable[..., Any]):
        functools.update_wrapper(self, portable)
        self.portable = portable
        self.native: dict[str, tuple[Callable[..., Any], str]] = {}
        #: Libraries on which the default is wrong, not merely slower: their path is required.
        self.required: set[str] = set()

    def native_path(
        self, library: str, why: str, *, required: bool = False
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated function as the path for arrays of ``library``, for the reason ``why``
        (``required``: the default gives a wrong result there)."""

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.native[library] = (function, why)
            if required:
                self.required.add(library)
            return function

        return register

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        path = self.native.get(backends.backend_of(args[0]).name)
        if path is not None:
            result = path[0](*args, **kwargs)
            if result is not NotImplemented:
                return result
        return self.portable(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<hml kernel {self.__name__} (native: {', '.join(self.native) or 'none'})>"


def kernel(portable: Callable[..., Any]) -> Kernel:
    """Make ``portable`` (the array-API default) a :class:`Kernel`, to which native paths are added."""
    return Kernel(portable)
