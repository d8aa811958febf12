"""The exceptions and warnings hml raises, in one place."""

__all__ = [
    "BackendUnavailableError",
    "ConvergenceWarning",
    "DivergenceError",
    "NotFittedError",
]


class BackendUnavailableError(RuntimeError):
    """A backend (or a device of it) was asked for that cannot be used here.

    The message names what is missing and how to get it, e.g.
    ``pip install "hml[cuda12]"``.
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
