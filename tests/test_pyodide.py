"""What breaks hml in a browser (Pyodide, as in JupyterLite), imitated here on the CPU.

Each test provokes one difference of Pyodide on CPython and checks hml's behaviour against an
independent reference; the old code fails each of them. The real check, hml in Pyodide in
Chromium, is ``tests/browser/`` (every notebook of the JupyterLite site, run offline).

* NumPy's index type is int32 on wasm32: ``np.intp`` replaced by ``np.int32``;
* no thread can start: ``threading.Thread.start`` raises ``RuntimeError("can't start new thread")``;
* the umask reads 0o777 and is never applied: ``os.umask`` returns 0o777 and changes nothing;
* a file read back while it is still open for writing is empty (JupyterLite's ``/drive``);
* no sockets: downloads go through a (fake) synchronous ``XMLHttpRequest`` of the ``js`` module.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import sys
import threading
import types
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from data_mirror import MIRROR, needs_mirror

import hml
from hml import _platform, backends, datasets
from hml.datasets import DataFile
from hml.datasets._registry import FILES
from hml.exceptions import DatasetError


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty data cache for one test."""
    monkeypatch.setenv("HML_DATA_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_threads(monkeypatch):
    """An interpreter in which no thread can start, as Pyodide's (built without threads)."""

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    _platform.can_start_threads.cache_clear()
    yield
    _platform.can_start_threads.cache_clear()


# -- 1. class codes of NumPy's index type ------------------------------------------------------------
@needs_mirror
@pytest.mark.parametrize("index_type", [np.intp, np.int32], ids=["this platform", "wasm32"])
def test_class_codes_are_numpys_index_type(home, monkeypatch, index_type):
    """``np.bincount`` casts its input to ``np.intp`` by the 'safe' rule: int64 codes fail where intp is
    int32 (wasm32), so the codes must be intp. The counts are checked against the files themselves."""
    with monkeypatch.context() as patch:  # NumPy as it is again for the references below
        patch.setattr(np, "intp", index_type)
        loaded = {
            "iris": datasets.load_iris(),
            "microchips": datasets.load_microchips(),
            "server_params": datasets.load_server_params(),
            "mnist": datasets.load_mnist("test"),
        }
    for name, dataset in loaded.items():
        assert dataset.target.dtype == np.dtype(index_type), name
        assert np.can_cast(dataset.target.dtype, index_type, casting="safe"), name  # what bincount requires
    with open(MIRROR / "homemade" / "iris.csv", newline="") as file:
        species = Counter(row["class"] for row in csv.DictReader(file))
    assert np.bincount(loaded["iris"].target).tolist() == [species[name] for name in loaded["iris"].target_names]
    with gzip.open(MIRROR / "mnist" / "t10k-labels-idx1-ubyte.gz") as file:
        digits = np.frombuffer(file.read()[8:], dtype=np.uint8)
    assert np.bincount(loaded["mnist"].target).tolist() == np.bincount(digits).tolist()


# -- 2. no threads ------------------------------------------------------------------------------------
def _row_step(X, weights):
    """A block's scores X·w (one per row) and its Gram matrix XᵀX (summed over the blocks)."""
    return X @ weights, X.T @ X


def test_rows_run_in_order_where_no_thread_can_start(no_threads, monkeypatch):
    """Pyodide reports one core, but a build that reported more must not try to start threads."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert not _platform.can_start_threads()
    rng = np.random.default_rng(0)
    X, w = rng.normal(size=(5000, 3)), rng.normal(size=3)
    out = {"scores": backends.Rows(np.float64), "gram": backends.Sum((3, 3), np.float64)}
    result = backends.reduce_rows(_row_step, [X], (w,), out=out, row_bytes=24, working_memory=2400)  # 50 blocks
    np.testing.assert_allclose(result.scores, X @ w, rtol=1e-13)
    np.testing.assert_allclose(result.gram, X.T @ X, rtol=1e-12)


def test_a_fit_over_many_blocks_is_the_same_without_threads(monkeypatch):
    """k-means with blocks of 10 rows, first with no thread able to start (and no pool of threads left
    from earlier tests), then on threads: the same model, bit for bit (sums are added in block order
    however the blocks ran)."""
    from hml.backends import _rows

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    X = np.random.default_rng(1).normal(size=(2000, 4))
    fit = lambda: hml.KMeans(n_clusters=5, random_state=0, working_memory=10 * 4 * 8 * 8).fit(X)  # noqa: E731

    def refuse(self):
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patch:
        patch.setattr(threading.Thread, "start", refuse)
        _rows._pool.cache_clear()
        _platform.can_start_threads.cache_clear()
        alone = fit()
    _platform.can_start_threads.cache_clear()
    threaded = fit()
    np.testing.assert_array_equal(alone.cluster_centers_, threaded.cluster_centers_)
    np.testing.assert_array_equal(alone.labels_, threaded.labels_)


def test_progress_bars_start_no_monitor_thread_where_none_can_start(no_threads, monkeypatch):
    """tqdm's monitor thread cannot start: plain tqdm warns (the imitation is faithful), hml's bar does not."""
    from tqdm.auto import tqdm
    from tqdm.std import TqdmMonitorWarning

    monkeypatch.setattr(tqdm, "monitor_interval", 10)  # tqdm's default, restored after the test
    monkeypatch.setattr(tqdm, "monitor", None)
    with pytest.warns(TqdmMonitorWarning, match="can't start new thread"):
        tqdm(total=2, disable=False, file=sys.stderr).close()
    monkeypatch.setattr(tqdm, "monitor_interval", 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bar = _platform.progress_bar(total=3, disable=False, file=sys.stderr)
        bar.update(3)
        assert bar.n == 3
        bar.close()


@needs_mirror
def test_a_large_download_shows_progress_without_threads(home, no_threads, monkeypatch):
    """MNIST's test images (1.6 MB, over the progress-bar threshold) download where no thread can start."""
    from tqdm.auto import tqdm

    monkeypatch.setattr(tqdm, "monitor_interval", 10)
    monkeypatch.setattr(tqdm, "monitor", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = datasets.load_mnist("test").images
    with gzip.open(MIRROR / "mnist" / "t10k-images-idx3-ubyte.gz") as file:
        np.testing.assert_array_equal(images.ravel(), np.frombuffer(file.read()[16:], dtype=np.uint8))


# -- 3. an umask that reads 0o777 and is never applied -----------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_new_files_get_the_mode_the_file_system_gives_whatever_the_umask_reads(tmp_path, monkeypatch):
    """Pyodide's umask reads 0o777; a mode computed from it was 000, and a second read of the cache or
    ``hml.load`` of a saved model raised PermissionError. The mode must be that of a file made by open()."""
    monkeypatch.setattr(os, "umask", lambda mask=0: 0o777)  # reads 0o777, applies nothing
    reference = tmp_path / "made-by-open"
    reference.write_bytes(b"")
    mode = reference.stat().st_mode & 0o777
    assert mode & 0o600 == 0o600  # the process's real umask leaves the owner read and write

    X = np.random.default_rng(2).normal(size=(40, 2))
    model = hml.LinearRegression(max_iter=20, tol=None).fit(X, X @ [1.0, -2.0])
    path = model.save(tmp_path / "model.npz")
    assert path.stat().st_mode & 0o777 == mode
    np.testing.assert_array_equal(hml.load(path).predict(X), model.predict(X))


@needs_mirror
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_cache_is_readable_whatever_the_umask_reads(home, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "umask", lambda mask=0: 0o777)
    first = datasets.load_iris()
    cached = home / "homemade" / "iris.csv"
    reference = tmp_path / "made-by-open"
    reference.write_bytes(b"")
    assert cached.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
    np.testing.assert_array_equal(datasets.load_iris(download=False).data, first.data)  # from the cache


# -- 4. a file still open reads back empty -------------------------------------------------------------
@needs_mirror
def test_a_download_is_checked_from_memory_not_by_reading_the_open_file(home, monkeypatch):
    """On JupyterLite's /drive, reading the temporary download while it is open returns b''."""
    real_read_bytes = Path.read_bytes

    def empty_while_downloading(path):
        return b"" if path.name.endswith(".part") else real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", empty_while_downloading)
    iris = datasets.load_iris()
    assert iris.data.shape == (150, 4)
    assert (home / "homemade" / "iris.csv").read_bytes() == (MIRROR / "homemade" / "iris.csv").read_bytes()


# -- 5. downloads by XMLHttpRequest -----------------------------------------------------------------
class _FakeXMLHttpRequest:
    """The part of the browser's XMLHttpRequest that hml uses, serving a dict of URL -> bytes."""

    served: dict[str, bytes] = {}
    requests: list[tuple[str, str, bool, str]] = []

    def __init__(self) -> None:
        self.responseType = ""
        self.status = 0
        self.statusText = ""
        self.response: bytes | None = None

    @classmethod
    def new(cls) -> _FakeXMLHttpRequest:
        return cls()

    def open(self, method: str, url: str, asynchronous: bool) -> None:
        self.method, self.url, self.asynchronous = method, url, asynchronous

    def send(self) -> None:
        type(self).requests.append((self.method, self.url, self.asynchronous, self.responseType))
        if self.url.startswith("https://unreachable"):
            raise RuntimeError("NetworkError: Failed to execute 'send' on 'XMLHttpRequest'")
        if self.url in self.served:
            self.status, self.statusText, self.response = 200, "OK", self.served[self.url]
        else:
            self.status, self.statusText = 404, "Not Found"


class _FakeUint8Array:
    def __init__(self, buffer: bytes) -> None:
        self.buffer = buffer

    @classmethod
    def new(cls, buffer: bytes) -> _FakeUint8Array:
        return cls(buffer)

    def to_bytes(self) -> bytes:
        return bytes(self.buffer)


@pytest.fixture
def browser(monkeypatch):
    """hml told it runs in a browser, with a ``js`` module whose XMLHttpRequest serves a dict."""
    from hml.datasets import _download

    monkeypatch.setattr(_download, "in_browser", lambda: True)
    monkeypatch.setattr(_FakeXMLHttpRequest, "served", {})
    monkeypatch.setattr(_FakeXMLHttpRequest, "requests", [])
    fake_js = types.ModuleType("js")
    fake_js.XMLHttpRequest = _FakeXMLHttpRequest  # type: ignore[attr-defined]
    fake_js.Uint8Array = _FakeUint8Array  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "js", fake_js)
    return _FakeXMLHttpRequest


def test_in_a_browser_downloads_go_through_a_synchronous_xmlhttprequest(home, browser, monkeypatch):
    site = "http://127.0.0.1:8000/files/data"
    content = b"param_1,param_2,validity\n0.05,0.69,1\n-0.09,0.68,0\n"
    file = FILES["homemade/microchips-tests.csv"]
    ours = DataFile(file.folder, file.filename, file.urls, len(content), sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(FILES, file.key, ours)  # this test's own content, with its checksum
    monkeypatch.setenv("HML_DATA_MIRROR", site)
    browser.served[f"{site}/homemade/microchips-tests.csv"] = content
    chips = datasets.load_microchips()
    assert chips.target.tolist() == [1, 0] and chips.data.tolist() == [[0.05, 0.69], [-0.09, 0.68]]
    assert browser.requests == [("GET", f"{site}/homemade/microchips-tests.csv", False, "arraybuffer")]
    assert (home / "homemade" / "microchips-tests.csv").read_bytes() == content


def test_in_a_browser_a_failed_request_says_why(home, browser, monkeypatch):
    monkeypatch.setenv("HML_DATA_MIRROR", "http://127.0.0.1:8000/files/data")
    with pytest.raises(DatasetError, match=r"(?s)127.0.0.1:8000/files/data/homemade/iris.csv: HTTP 404 Not Found"):
        datasets.load_iris()
    monkeypatch.setenv("HML_DATA_MIRROR", "https://unreachable.example")
    with pytest.raises(DatasetError, match=r"(?s)XMLHttpRequest failed: NetworkError.*HML_DATA_MIRROR"):
        datasets.load_iris()
    assert not (home / "homemade" / "iris.csv").exists()


@needs_mirror
def test_in_a_browser_a_file_url_is_still_read_by_urllib(home, browser):
    """``file:///drive/...`` (JupyterLite's files) works with urllib in Pyodide; no request is made for it."""
    assert datasets.load_iris().data.shape == (150, 4)
    assert browser.requests == []


def test_host_indices_become_numpys_index_type(monkeypatch):
    """NumPy 2.0's ``take`` (Pyodide's) and ``bincount`` cast indices by the 'safe' rule, so int64 indices
    fail where intp is int32 (wasm32; seen in the browser test): rows are taken at np.intp indices."""
    ctx = backends.resolve("numpy")
    seen = []
    original = type(ctx.backend).take_rows

    def recording(self, context, array, indices):
        seen.append(indices.dtype)
        return original(self, context, array, indices)

    monkeypatch.setattr(type(ctx.backend), "take_rows", recording)
    monkeypatch.setattr(np, "intp", np.int32)
    rows = ctx.take_rows(np.arange(10.0).reshape(5, 2), np.array([3, 1], dtype=np.int64))
    assert seen == [np.dtype(np.int32)]
    np.testing.assert_array_equal(rows, [[6.0, 7.0], [2.0, 3.0]])


def test_without_ipywidgets_the_bar_is_text_at_once(monkeypatch):
    """tqdm.auto in a notebook without ipywidgets (JupyterLite's kernel) warned "IProgress not found. Please
    update jupyter and ipywidgets" before falling back to the text bar."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bar = _platform.progress_bar(total=1, disable=False, file=sys.stderr)
        bar.close()
    assert type(bar).__module__ == "tqdm.std"
