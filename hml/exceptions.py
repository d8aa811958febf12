"""The exceptions and warnings hml raises, in one place."""

import os
import sys
import warnings

__all__ = [
    "BackendUnavailableError",
    "ChecksumMismatchError",
    "ConvergenceWarning",
    "DatasetError",
    "DatasetFormatError",
    "DivergenceError",
    "NotFittedError",
    "warn",
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
    so code written against either keeps working.
    """


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
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
