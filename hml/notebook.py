"""Support for the project's notebooks: stopping one cleanly when its data cannot be had.

A notebook that needs a data set this machine cannot download (Fashion-MNIST's images
offline, say) calls :func:`skip` with the reason. In Jupyter the reason is shown without
a traceback and the run stops there; ``notebooks/execute.py`` reports the notebook as
skipped, with the reason, instead of failing.
"""

from __future__ import annotations

__all__ = ["NotebookSkipped", "skip"]


class NotebookSkipped(Exception):
    """Raised by :func:`skip`; IPython renders only its message."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for custom tracebacks
        return [f"Notebook skipped: {self}"]


def skip(reason: str) -> None:
    """Stop the notebook here, showing ``reason`` (the cells after this one do not run)."""
    raise NotebookSkipped(reason)
