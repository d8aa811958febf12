"""Writing a file so that a reader finds the old one or the whole new one, never a part.

Shared by saved models (:mod:`hml.persistence`) and the data-set cache (:mod:`hml.datasets`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_file"]

#: Names tried before giving up, as ``tempfile.mkstemp`` does (``tempfile.TMP_MAX``).
_ATTEMPTS = 10000


def _new_file(directory: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A file of a new, unguessable name in ``directory``, created for writing; its descriptor and path.

    Created with mode 0o666 and left to the file system to restrict, exactly as ``open(path, "w")``:
    it gets the mode any new file of the user gets there, and the umask is never read. (Reading it
    means setting it, which races with other threads creating files; a default ACL overrides it;
    and under Pyodide it reads 0o777 but is never applied, so a mode computed from it was 000.)
    """
    # O_EXCL: never an existing file; O_BINARY (Windows): no newline translation.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        path = directory / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary file name of the form {prefix}XXXXXXXX{suffix} in {directory}")


@contextlib.contextmanager
def atomic_file(path: Path, suffix: str = ".tmp") -> Iterator[tuple[BinaryIO, Path]]:
    """A new file beside ``path``, open for writing, and its name; it becomes ``path`` when the
    block ends without an error.

    Then it is flushed, fsynced and renamed onto ``path`` in one step. It has the mode any new
    file of the user gets (0644 under the usual umask, as ``open(path, "w")`` gives; not
    ``mkstemp``'s 0600). On any error, ``KeyboardInterrupt`` included, it is removed and ``path``
    is as it was. Errors of creating it propagate before the block runs.
    """
    handle, temporary = _new_file(path.parent, f".{path.name}.", suffix)
    try:
        with os.fdopen(handle, "wb") as file:
            yield file, temporary
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
