"""Writing a file so that a reader finds the old one or the whole new one, never a part.

Shared by saved models (:mod:`hml.persistence`) and the data-set cache (:mod:`hml.datasets`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_file", "umask"]


def umask() -> int:
    """The process's umask (read by setting it, the only way; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: Path, suffix: str = ".tmp") -> Iterator[tuple[BinaryIO, Path]]:
    """A new file beside ``path``, open for writing, and its name; it becomes ``path`` when the
    block ends without an error.

    Then it is flushed, fsynced, given the mode any new file of the user gets (0644 under the
    usual umask, as ``open(path, "w")`` would give; mkstemp makes it 0600) and renamed onto
    ``path`` in one step. On any error, ``KeyboardInterrupt`` included, it is removed and
    ``path`` is as it was. Errors of creating it propagate before the block runs.
    """
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            yield file, temporary
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
