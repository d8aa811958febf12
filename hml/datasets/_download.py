"""Downloading, verifying and caching data set files.

Rules
-----
- A file lives at ``<data home>/<folder>/<filename>``: the layout of the sources'
  folders, so a cache can itself serve as a mirror.
- The data home is ``data_home=`` if given, else ``$HML_DATA_HOME``, else the platform's
  user cache (``~/.cache/hml`` on Linux, ``~/Library/Caches/hml`` on macOS,
  ``%LOCALAPPDATA%\\hml\\Cache`` on Windows).
- ``$HML_DATA_MIRROR`` (a base URL; ``file://`` works) replaces the sources' hosts:
  a file is fetched from ``<mirror>/<folder>/<filename>`` and from nowhere else.
- A download goes to a temporary file beside its target and is renamed into place only
  after its checksum passes, so an interrupted or corrupt download never leaves a file
  that looks valid. A cached file is verified each time it is read (for MNIST this is
  the same pass that decompresses it); one that fails is downloaded again.
- In a browser (Pyodide, JupyterLite), which has no sockets, an ``http(s)`` file is fetched
  by a synchronous ``XMLHttpRequest`` of the page's worker: the host must allow the site's
  origin (CORS), as a JupyterLite site's own files and ``raw.githubusercontent.com`` do.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import os
import sys
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

from hml._files import atomic_file
from hml._platform import in_browser, progress_bar
from hml.datasets._registry import DataFile
from hml.exceptions import ChecksumMismatchError, DatasetError, DatasetFormatError, warn

__all__ = ["cache_path", "cache_status", "data_home", "fetch_file", "read_file", "urls_for"]

#: Files larger than this get a progress bar while downloading.
PROGRESS_MIN_BYTES = 1 << 20
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0
_ENVIRONMENT_HELP = (
    "Offline, or behind a firewall? Set HML_DATA_MIRROR to a base URL (file:// works) that holds "
    "the data set folders (<mirror>/<folder>/<file>), or HML_DATA_HOME to a cache folder that already has the file."
)


def data_home(data_home: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``data_home``, else ``$HML_DATA_HOME``, else the platform's user cache."""
    if data_home is not None:
        return Path(data_home).expanduser()
    if os.environ.get("HML_DATA_HOME"):
        return Path(os.environ["HML_DATA_HOME"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "hml" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "hml"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hml"


def cache_path(file: DataFile, home: str | os.PathLike[str] | None = None) -> Path:
    return data_home(home) / file.folder / file.filename


def urls_for(file: DataFile) -> tuple[str, ...]:
    """Where ``file`` is downloaded from: the mirror if ``$HML_DATA_MIRROR`` is set, else its sources."""
    mirror = os.environ.get("HML_DATA_MIRROR", "").strip()
    if mirror:
        return (f"{mirror.rstrip('/')}/{file.folder}/{file.filename}",)
    return file.urls


def _content(file: DataFile, raw: bytes, where: str) -> bytes:
    """Verify ``raw`` (the bytes as downloaded) against ``file``'s checksums; return its content.

    The content is ``raw`` decompressed for a ``.gz``, else ``raw`` itself.
    """
    if file.archive_md5 is not None:
        digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        if digest != file.archive_md5:
            raise ChecksumMismatchError(f"{where}: MD5 {digest} does not match the published {file.archive_md5}")
    content = raw
    if file.gzip:
        try:
            # wbits=31: a gzip header and trailer, decompressed in one call.
            content = zlib.decompress(raw, wbits=31)
        except zlib.error as exc:
            raise DatasetFormatError(
                f"{where}: not a complete gzip stream ({exc}); the file is truncated or corrupt"
            ) from None
    if file.sha256 is not None:
        digest = hashlib.sha256(content).hexdigest()
        if digest != file.sha256:
            raise ChecksumMismatchError(
                f"{where}: SHA-256 of the content {digest} does not match the expected {file.sha256}"
            )
    return content


def _progress(file: DataFile, total: int | None) -> Any:
    if (total or file.size) < PROGRESS_MIN_BYTES:
        return None
    return progress_bar(
        total=total or file.size, unit="B", unit_scale=True, unit_divisor=1024, desc=file.filename, leave=False
    )


def _chunks(file: DataFile, url: str) -> Iterator[bytes]:
    """The bytes of ``url``, as they arrive (with a progress bar for a large file)."""
    if in_browser() and not url.startswith("file:"):
        yield _browser_get(url)
        return
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        bar = _progress(file, int(length) if length and length.isdigit() else None)
        try:
            while chunk := response.read(_CHUNK):
                if bar is not None:
                    bar.update(len(chunk))
                yield chunk
        finally:
            if bar is not None:
                bar.close()


def _browser_get(url: str) -> bytes:
    """The body of ``url`` by a synchronous ``XMLHttpRequest``: in Pyodide the only way to HTTP from
    synchronous code (no sockets in WebAssembly). A binary response of a synchronous request is
    allowed in a web worker, where JupyterLite's kernel runs; a relative URL is taken relative to
    the worker's script, so a mirror should be given as an absolute URL.

    Failures are ``urllib``'s errors, so :func:`read_file` reports them like any other download's.
    """
    js = importlib.import_module("js")  # Pyodide's bridge to the JavaScript global scope (the worker's)
    request = js.XMLHttpRequest.new()
    request.open("GET", url, False)  # False: synchronous
    request.responseType = "arraybuffer"
    try:
        request.send()
    except Exception as exc:  # a JsException: network error, CORS refusal, blocked request
        raise urllib.error.URLError(f"XMLHttpRequest failed: {exc}") from None
    if request.status != 200:
        raise urllib.error.HTTPError(url, int(request.status), str(request.statusText), Message(), None)
    return bytes(js.Uint8Array.new(request.response).to_bytes())


def _download(file: DataFile, url: str, target: Path) -> bytes:
    """Download ``url`` to ``target`` through a temporary file; return the verified content."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target, suffix=".part") as (out, _):
        received = []
        for chunk in _chunks(file, url):
            out.write(chunk)
            received.append(chunk)
        # Verified before it replaces anything (a bad download leaves the cache as it was), and from
        # the bytes in memory: read back while still open, the file is empty on JupyterLite's /drive.
        return _content(file, b"".join(received), f"{file.key} downloaded from {url}")


def _cannot_write(exc: BaseException) -> bool:
    """An error of writing into the cache (disk full, read-only, no permission, a file where a folder
    belongs), not of the source."""
    return (
        not isinstance(exc, urllib.error.URLError)
        and isinstance(exc, OSError)
        and exc.errno
        in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR)
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
    return f"{type(exc).__name__}: {exc}"


def read_file(file: DataFile, home: str | os.PathLike[str] | None = None, *, download: bool = True) -> bytes:
    """The verified content of ``file``, from the cache or downloaded into it.

    Raises
    ------
    DatasetError
        Not cached and ``download=False``, or no URL could deliver it (each URL and
        why it failed, the cache path, and ``HML_DATA_MIRROR``/``HML_DATA_HOME`` in the message).
    ChecksumMismatchError
        Every URL delivered a file whose checksum is wrong.
    """
    target = cache_path(file, home)
    if target.is_file():
        try:
            return _content(file, target.read_bytes(), f"cached {target}")
        except DatasetError as exc:
            if not download:
                raise type(exc)(
                    f"{exc}, and download=False: delete it or pass download=True to fetch it again"
                ) from None
            warn(f"{exc}; downloading it again", UserWarning)
    if not download:
        raise DatasetError(f"{file.key} is not in the cache at {target} and download=False. {_ENVIRONMENT_HELP}")
    failures: list[tuple[str, BaseException]] = []
    for url in urls_for(file):
        try:
            return _download(file, url, target)
        except (OSError, ValueError) as exc:  # URLError and DatasetError are OSErrors
            failures.append((url, exc))
    tried = "\n".join(f"  {url}: {_reason(exc)}" for url, exc in failures)
    if all(_cannot_write(exc) for _, exc in failures):
        # The sources answered; the cache could not take the file (full, read-only, no access).
        chosen = (  # what chose the folder is what to change
            f"give data_home (--data-home) a folder you can write to (it is {str(home)!r})"
            if home is not None
            else "set HML_DATA_HOME to a folder you can write to "
            f"(HML_DATA_HOME={os.environ.get('HML_DATA_HOME', '')!r})"
        )
        raise DatasetError(
            f"could not write {file.key} into the cache at {target.parent}: nothing was kept there. Tried:\n{tried}\n"
            f"Free space there, or {chosen}"
        )
    kinds = {type(exc) for _, exc in failures}
    if len(kinds) == 1 and issubclass(kinds.pop(), DatasetError):
        # Every source delivered a bad file (checksum, truncated): say that, not "offline?".
        raise type(failures[0][1])(f"could not get a valid {file.key}; tried:\n{tried}")
    raise DatasetError(
        f"could not download {file.key} into {target}. Tried:\n{tried}\n"
        f"{_ENVIRONMENT_HELP} "
        f"(HML_DATA_MIRROR={os.environ.get('HML_DATA_MIRROR', '')!r}, HML_DATA_HOME={os.environ.get('HML_DATA_HOME', '')!r})"
    )


def fetch_file(file: DataFile, home: str | os.PathLike[str] | None = None) -> Path:
    """Make sure ``file`` is in the cache, verified; return its path."""
    read_file(file, home)
    return cache_path(file, home)


def cache_status(file: DataFile, home: str | os.PathLike[str] | None = None) -> str:
    """``"cached"`` (present, checksum passes), ``"missing"``, or ``"corrupt"``."""
    target = cache_path(file, home)
    if not target.is_file():
        return "missing"
    try:
        _content(file, target.read_bytes(), str(target))
    except DatasetError:
        return "corrupt"
    return "cached"
