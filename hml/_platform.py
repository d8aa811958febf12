"""What differs when hml runs in a web browser, under Pyodide (CPython compiled to WebAssembly, as in
JupyterLite): the platform checks, each asked by the one layer that owns the behaviour.

* no sockets: ``urllib`` cannot download; :mod:`hml.datasets` asks :func:`in_browser` and downloads
  by a synchronous ``XMLHttpRequest`` instead;
* no threads: starting one raises ``RuntimeError: can't start new thread``; the row primitive
  (``hml.backends._rows``) runs its blocks in order where :func:`can_start_threads` says no, and
  :func:`progress_bar` leaves out tqdm's monitor thread there;
* the umask reported (0o777) is never applied to new files: ``hml._files`` lets the file system
  give a new file its mode instead of computing it from the umask, so it needs no check here;
* NumPy's index type ``np.intp`` is int32 on wasm32: the data sets give their class codes as
  ``np.intp`` everywhere, which needs no check either.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import threading
from typing import Any

__all__ = ["can_start_threads", "in_browser", "progress_bar"]


def in_browser() -> bool:
    """True under Pyodide / Emscripten (JupyterLite, PyScript): ``sys.platform == "emscripten"``."""
    return sys.platform == "emscripten"


@functools.cache
def can_start_threads() -> bool:
    """Whether this interpreter can start a thread, found once by starting one that does nothing.

    False under Pyodide, which is built without threads, and wherever a thread limit makes
    ``Thread.start`` raise ``RuntimeError``.
    """
    probe = threading.Thread(target=lambda: None, name="hml-thread-probe", daemon=True)
    try:
        probe.start()
    except RuntimeError:
        return False
    probe.join()
    return True


def progress_bar(*args: Any, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(*args, **kwargs)``; where no thread can start, without tqdm's monitor thread,
    which would otherwise warn "can't start new thread" on the first bar (the monitor only closes
    bars left hanging; a bar still updates and closes without it). Without ipywidgets, the text bar at once:
    ``tqdm.auto`` in a notebook would warn "IProgress not found. Please update jupyter and ipywidgets" (in
    JupyterLite, advice no one can follow) before falling back to it."""
    if importlib.util.find_spec("ipywidgets") is None:
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm

    if not can_start_threads():
        tqdm.monitor_interval = 0
    return tqdm(*args, **kwargs)
