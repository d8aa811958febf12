"""The exceptions and warnings hml raises, in one place."""

import functools
import os
import sys
import warnings
from types import FrameType

__all__ = [
    "BackendUnavailableError",
    "ChecksumMismatchError",
    "ConvergenceWarning",
    "DatasetError",
    "DatasetFormatError",
    "DivergenceError",
    "DataConversionWarning",
    "NotFittedError",
    "PerformanceWarning",
    "as_sklearn",
    "warn",
    "warn_column_vector",
]


class BackendUnavailableError(RuntimeError):
    """A backend (or a device of it) was asked for that cannot be used here.

    The message names what is missing and how to get it, e.g.
    ``pip install "cupy-cuda12x>=13"`` -- the package itself, a command that works however
    hml was installed.
    """


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``.

    Subclasses both ``ValueError`` and ``AttributeError``, as scikit-learn's does,
    so code written against either keeps working. Raised through :func:`hml.exceptions.as_sklearn`,
    so where scikit-learn is in use it is scikit-learn's ``NotFittedError`` too.
    """


class DataConversionWarning(UserWarning):
    """The input had to be reshaped or converted (a column vector ``y``, for one)."""


class PerformanceWarning(UserWarning):
    """The computation runs as asked, but measurably slower than another choice would (Dask on small data)."""


def as_sklearn(cls: type) -> type:
    """``cls``, or -- when scikit-learn is already imported -- a subclass of ``cls`` and of
    scikit-learn's class of the same name.

    hml does not depend on scikit-learn, and importing it would cost a second at every
    ``import hml``; but a user of scikit-learn's tools (``GridSearchCV``, ``check_estimator``)
    has it imported already, and there ``except sklearn.exceptions.NotFittedError`` should
    catch hml's too. ``except hml.NotFittedError`` catches both kinds.
    """
    module = sys.modules.get("sklearn.exceptions")
    if module is None or cls not in _SKLEARN_NAMES:
        return cls
    return _both(cls, getattr(module, _SKLEARN_NAMES[cls]))


@functools.cache
def _both(cls: type, sklearn_cls: type) -> type:
    return type(cls.__name__, (cls, sklearn_cls), {"__module__": cls.__module__, "__doc__": cls.__doc__})


class DivergenceError(FloatingPointError):
    """Gradient descent diverged: the cost became non-finite or exploded."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at ``max_iter`` before meeting ``tol``."""


class DatasetError(OSError):
    """A data set file could not be obtained: offline, not found, or not in the cache.

    The message names every URL tried, the cache path, and the two variables that
    steer downloads (``HML_DATA_HOME``, ``HML_DATA_MIRROR``).
    """


class ChecksumMismatchError(DatasetError):
    """A downloaded file's checksum is not the one the registry expects.

    The file is never left in the cache: downloads are written to a temporary
    file and renamed only after their checksum passes.
    """


class DatasetFormatError(DatasetError, ValueError):
    """A data set file is corrupt: a truncated gzip stream, a wrong IDX magic number, bad columns."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first line outside hml: the user's call.

    A warning raised three or five frames deep in a fit then names the user's
    ``model.fit(X, y)`` line, whichever path led to it (Python 3.12's
    ``skip_file_prefixes``, for every Python hml supports).
    """
    frame: FrameType | None = sys._getframe(1)
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, as_sklearn(category), stacklevel=level)


def warn_column_vector(name: str) -> None:
    """scikit-learn's warning for a target of shape (n, 1) where one of shape (n,) belongs."""
    warn(
        f"A column-vector {name} was passed when a 1d array was expected; it is used as {name}.ravel(). "
        f"Pass an array of shape (n_samples,) to silence this warning",
        DataConversionWarning,
    )


#: hml's exceptions and warnings that scikit-learn has a class of the same name and meaning for.
_SKLEARN_NAMES = {
    NotFittedError: "NotFittedError",
    DataConversionWarning: "DataConversionWarning",
    ConvergenceWarning: "ConvergenceWarning",
}
