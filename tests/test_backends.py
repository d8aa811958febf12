"""The backend layer: selection precedence, thread/async safety, conversion, errors, RNG."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import types

import numpy as np
import pytest

import hml
from hml import backends
from hml.exceptions import BackendUnavailableError


# -- selection and precedence ------------------------------------------------------------
def test_default_is_auto_and_follows_the_input():
    assert hml.get_backend() == "auto"
    strict = pytest.importorskip("array_api_strict")
    ctx = backends.resolve(like=strict.asarray([[1.0]]))
    assert ctx.backend.name == "array_api_strict"
    assert backends.resolve(like=[[1.0]]).backend.name == "numpy"


def test_precedence_argument_over_context_over_global_over_env(monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("array_api_strict")
    pytest.importorskip("dask.array")
    monkeypatch.setenv("HML_BACKEND", "dask")
    assert backends.resolve().backend.name == "dask"
    hml.set_backend("array_api_strict")
    assert backends.resolve().backend.name == "array_api_strict"
    with hml.use_backend("torch"):
        assert hml.get_backend() == "torch"
        assert backends.resolve().backend.name == "torch"
        assert backends.resolve(backend="numpy").backend.name == "numpy"
    assert hml.get_backend() == "array_api_strict"
    hml.set_backend("auto")
    assert hml.get_backend() == "dask"


def test_estimator_backend_argument_wins_over_use_backend():
    pytest.importorskip("array_api_strict")
    X = np.random.default_rng(0).normal(size=(10, 2))
    y = X @ np.array([1.0, 2.0])
    with hml.use_backend("array_api_strict"):
        model = hml.LinearRegression(backend="numpy", solver="normal").fit(X, y)
        inherited = hml.LinearRegression(solver="normal", l2=1e-3).fit(X, y)
    assert isinstance(model.coef_, np.ndarray)
    assert type(inherited.coef_).__module__.startswith("array_api_strict")
    # Output mirrors the input's namespace whatever computed it.
    assert isinstance(inherited.predict(X), np.ndarray)


def test_use_backend_is_local_to_each_thread():
    pytest.importorskip("torch")
    pytest.importorskip("array_api_strict")
    names = ["numpy", "torch", "array_api_strict"] + (
        ["dask"] if backends.available_backends()["dask"].available else []
    )
    barrier = threading.Barrier(len(names))
    seen, errors = {}, []

    def worker(name):
        try:
            with hml.use_backend(name):
                barrier.wait(timeout=10)  # every thread is inside its own block now
                seen[name] = [hml.get_backend() for _ in range(200)]
                barrier.wait(timeout=10)
            seen[name + "/after"] = hml.get_backend()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for name in names:
        assert set(seen[name]) == {name}
        assert seen[name + "/after"] == "auto"
    assert hml.get_backend() == "auto"


def test_use_backend_is_local_to_each_asyncio_task():
    pytest.importorskip("torch")

    async def task(name, results):
        with hml.use_backend(name):
            await asyncio.sleep(0.01)
            results[name] = hml.get_backend()

    async def main():
        results = {}
        await asyncio.gather(task("numpy", results), task("torch", results))
        return results

    assert asyncio.run(main()) == {"numpy": "numpy", "torch": "torch"}


def test_use_backend_restores_on_exception():
    with pytest.raises(KeyError):
        with hml.use_backend("numpy"):
            raise KeyError("boom")
    assert hml.get_backend() == "auto"


# -- errors --------------------------------------------------------------------------
def test_unknown_backend_names_the_choices():
    with pytest.raises(BackendUnavailableError, match=r"unknown backend 'jax'.*numpy"):
        hml.set_backend("jax")
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        with hml.use_backend("nope"):
            pass
    X, y = np.ones((3, 1)), np.ones(3)
    model = hml.LinearRegression(backend="nope")
    with pytest.raises(BackendUnavailableError, match="unknown backend 'nope'"):
        model.fit(X, y)
    assert not hasattr(model, "coef_")


def test_bad_hml_backend_environment_variable(monkeypatch):
    monkeypatch.setenv("HML_BACKEND", "numpyy")
    with pytest.raises(BackendUnavailableError, match="HML_BACKEND='numpyy'"):
        hml.LinearRegression().fit(np.ones((3, 1)), np.ones(3))


def _fresh_cupy_backend(monkeypatch, module):
    monkeypatch.setitem(sys.modules, "cupy", module)
    backend = type(backends.get_backend_object("cupy"))()
    monkeypatch.setitem(backends._REGISTRY, "cupy", backend)
    return backend


def test_install_hints_name_the_packages_of_pyprojects_extras():
    """The hint installs the package itself (works for a checkout, -e or PyPI install alike),
    at the version pyproject.toml's extra asks for."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    expected = {
        "cupy": extras["cuda12"] + extras["cuda13"],
        "torch": extras["torch"],
        "dask": extras["dask"],
        "array_api_strict": [r for r in extras["test"] if r.startswith("array-api-strict")],
    }
    for name, requirements in expected.items():
        hint = backends.get_backend_object(name).install
        assert "hml[" not in hint
        for requirement in requirements:
            assert f'pip install "{requirement}"' in hint, (name, requirement, hint)


def test_cupy_missing_says_how_to_install(monkeypatch):
    _fresh_cupy_backend(monkeypatch, None)  # a None entry makes `import cupy` fail
    with pytest.raises(BackendUnavailableError, match=r'pip install "cupy-cuda12x>=13"'):
        hml.LinearRegression(backend="cupy").fit(np.ones((3, 1)), np.ones(3))
    assert hml.available_backends()["cupy"].available is False


def test_cupy_without_a_gpu_says_so(monkeypatch):
    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.SimpleNamespace(
        __version__="13.6.0",
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device)),
    )
    _fresh_cupy_backend(monkeypatch, fake)
    with pytest.raises(BackendUnavailableError, match="CuPy 13.6.0 is installed but no CUDA device"):
        hml.set_backend("cupy")
    assert hml.get_backend() == "auto"
    status = hml.available_backends()["cupy"]
    assert not status.available and "no CUDA device" in status.reason


def test_torch_cuda_without_a_gpu_says_so():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendUnavailableError, match="sees no CUDA device"):
        hml.LinearRegression(backend="torch", device="cuda").fit(np.ones((3, 1)), np.ones(3))


def test_device_without_backend_is_refused():
    with pytest.raises(ValueError, match="device= needs an explicit backend"):
        hml.set_backend("auto", device="cuda")


# -- reporting -------------------------------------------------------------------------
def test_available_backends_reports_every_backend():
    report = hml.available_backends()
    assert list(report) == list(backends.backend_names())
    assert report["numpy"].available and report["numpy"].devices == ["cpu"]
    assert report["numpy"].version == np.__version__
    for status in report.values():
        assert status.available or ("pip install" in status.reason or "CUDA" in status.reason)


# -- conversion and output mirroring ----------------------------------------------------
def test_round_trip_through_every_backend(case):
    data = np.arange(12.0, dtype=np.float32).reshape(4, 3)
    moved = case.asarray(data)
    assert backends.backend_of(moved).name == case.backend
    back = backends.mirror(moved, data)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, data)
    # Mirroring onto an array of the case's own backend keeps namespace and device.
    again = backends.mirror(data, moved)
    assert backends.backend_of(again).name == case.backend
    import array_api_compat

    assert str(array_api_compat.device(again)) == str(array_api_compat.device(moved))


def test_lists_move_to_every_backend(case):
    moved = case.ctx.asarray([[1.0, 2.0], [3.0, 4.0]], dtype=case.xp.float32)
    assert backends.backend_of(moved).name == case.backend and moved.dtype == case.xp.float32
    np.testing.assert_array_equal(case.to_numpy(moved), [[1.0, 2.0], [3.0, 4.0]])


def test_synchronize_runs_everywhere(case):
    backends.synchronize(case.backend, case.device)


def test_check_random_state():
    assert isinstance(backends.check_random_state(None), np.random.Generator)
    gen = np.random.default_rng(3)
    assert backends.check_random_state(gen) is gen
    assert backends.check_random_state(3).random() == np.random.default_rng(3).random()
    with pytest.raises(ValueError, match="random_state"):
        backends.check_random_state("seed")
    with pytest.raises(ValueError, match="random_state"):
        backends.check_random_state(-1)


def test_to_numpy_brings_any_backends_array_or_a_list_to_the_host(case):
    values = np.arange(6.0).reshape(2, 3)
    host = backends.to_numpy(case.asarray(values))
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, values.astype(host.dtype))
    np.testing.assert_array_equal(backends.to_numpy([[1, 2], [3, 4]]), [[1, 2], [3, 4]])


# -- the row primitive ------------------------------------------------------------------------
def _row_step(X, labels, weights):
    """A block's rows (a vector and a matrix), its one value, and its sums."""
    import array_api_compat

    xp = array_api_compat.array_namespace(X)
    scores = X @ weights
    count = xp.full((1,), X.shape[0], dtype=xp.int64, device=array_api_compat.device(X))
    return scores, X * 2.0, count, X.T @ X, xp.sum(xp.astype(labels, X.dtype))


@pytest.mark.parametrize("working_memory", [None, 24 * 37])  # one block; blocks of at most 37 rows
def test_reduce_rows_agrees_with_one_call_on_every_backend(case, working_memory):
    """reduce_rows in blocks (on threads for NumPy, per chunk on Dask) against the whole computation on
    the host: rows in row order, one value per block, sums added in order (to a running total). The
    blocks are of nearly equal size, at most the budget's 37 rows, and as many as a multiple of the
    threads that run them (NumPy's, also inside a Dask chunk), so no thread is left a short last block."""
    rng = np.random.default_rng(0)
    X, labels, w = rng.normal(size=(500, 3)), rng.integers(0, 4, 500), rng.normal(size=3)
    xp = case.xp
    dtype = xp.float64 if case.float64 else xp.float32
    out = {
        "scores": backends.Rows(dtype),
        "doubled": backends.Rows(dtype, width=3),
        "rows": backends.PerBlock(xp.int64),
        "gram": backends.Sum((3, 3), dtype),
        "labels": backends.Sum((), dtype),
    }
    Xc, wc = case.asarray(X), case.asarray(w)
    start = {"labels": xp.asarray(100.0, dtype=dtype, device=case.ctx.device)}
    result = backends.reduce_rows(
        _row_step, [Xc, case.asarray(labels)], (wc,), out=out, row_bytes=24, working_memory=working_memory, start=start
    )
    tolerance = 1e-12 if case.float64 else 1e-4
    np.testing.assert_allclose(case.to_numpy(result.scores), X @ w, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(case.to_numpy(result.doubled), 2.0 * X, rtol=tolerance)
    blocks = case.to_numpy(result.rows)  # on Dask the 500 rows are one chunk, cut into the same blocks
    if working_memory is None:
        np.testing.assert_array_equal(blocks, [500])
    else:
        from hml.backends import _rows

        threads = _rows._threads() if case.backend in ("numpy", "dask") else 1
        fewest = -(-500 // 37)  # 14 blocks of at most 37 rows
        assert len(blocks) == -(-fewest // threads) * threads and blocks.sum() == 500
        assert blocks.max() <= 37 and (blocks[:-1] == blocks[0]).all() and blocks[0] - blocks[-1] < len(blocks)
    np.testing.assert_allclose(case.to_numpy(result.gram), X.T @ X, rtol=tolerance)
    assert float(case.to_numpy(result.labels)) == pytest.approx(100.0 + labels.sum(), rel=tolerance)


def test_one_block_asks_for_no_thread_count(monkeypatch):
    """Rows that fit in one block run as one call without counting threads (``os.cpu_count()`` reads
    ``/sys`` each time: ~6 µs in every evaluation of a small fit, 1.4 of 12.8 ms in a 100-step fit on 10,000 × 16);
    two blocks do count them."""
    from hml.backends import _rows

    asked = []
    monkeypatch.setattr(_rows, "_threads", lambda: asked.append(1) or 1)
    X = np.random.default_rng(0).normal(size=(100, 3))
    out = {"gram": backends.Sum((3, 3), np.float64)}
    result = backends.reduce_rows(lambda X: (X.T @ X,), [X], out=out, row_bytes=24, working_memory=2400)
    np.testing.assert_allclose(result.gram, X.T @ X, rtol=1e-13)
    assert asked == []
    backends.reduce_rows(lambda X: (X.T @ X,), [X], out=out, row_bytes=24, working_memory=2376)  # 99 rows a block
    assert asked


def test_threads_change_nothing_in_the_row_primitive(monkeypatch):
    """NumPy's blocks on threads against the same blocks in order: the same results, bit for bit."""
    from hml.backends import _rows

    rng = np.random.default_rng(1)
    X, labels, w = rng.normal(size=(5000, 3)), rng.integers(0, 4, 5000), rng.normal(size=3)
    out = {
        "scores": backends.Rows(np.float64),
        "doubled": backends.Rows(np.float64, width=3),
        "rows": backends.PerBlock(np.int64),
        "gram": backends.Sum((3, 3), np.float64),
        "labels": backends.Sum((), np.float64),
    }
    run = lambda: backends.reduce_rows(_row_step, [X, labels], (w,), out=out, row_bytes=24, working_memory=2400)  # noqa: E731
    threaded = run()
    monkeypatch.setattr(_rows, "_threads", lambda: 1)
    sequential = run()
    for name in out:
        np.testing.assert_array_equal(getattr(threaded, name), getattr(sequential, name))


def test_small_steps_run_numpy_blas_on_one_thread_and_restore_it():
    """backends.small_steps: NumPy's BLAS at one thread inside (a thin product's threads cost more
    than they save), as before after; the same products either way; nothing changes elsewhere."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1024, 32)), rng.normal(size=(32, 64))

    def blas_threads():
        return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]

    before = blas_threads()
    with backends.small_steps(a):
        assert set(blas_threads()) <= {1}
        inside = a @ b
    assert blas_threads() == before
    np.testing.assert_allclose(inside, a @ b, rtol=1e-13)
    strict = pytest.importorskip("array_api_strict")
    with backends.small_steps(strict.asarray([1.0])):  # not NumPy: nothing to limit
        assert blas_threads() == before


def _numpy_blas_threads(threadpoolctl):
    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]


def _overlapping_holds(monkeypatch):
    """threadpoolctl, and BLAS's threads now (more than one, or the test skips): blocks on two threads
    (whatever the cores), so every multi-block call holds BLAS at one thread while its blocks run."""
    from hml.backends import _rows

    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = _numpy_blas_threads(threadpoolctl)
    if not before or max(before) < 2:
        pytest.skip(f"BLAS threads {before}: nothing to see restored")
    monkeypatch.setattr(_rows, "_threads", lambda: 2)
    return threadpoolctl, before


def test_calls_from_several_threads_at_once_leave_blas_as_it_was(monkeypatch):
    """Four threads each call reduce_rows on two blocks, each entering while another holds BLAS at one
    thread (threadpoolctl's limit is process-wide) and leaving after it: BLAS is as before afterwards,
    not at the one thread the later ones saw on entry, and is at one thread while any of them runs."""
    threadpoolctl, before = _overlapping_holds(monkeypatch)
    X = np.random.default_rng(0).normal(size=(200, 3))
    out = {"gram": backends.Sum((3, 3), np.float64)}
    inside, failures = [], []

    def slow_block(X):
        time.sleep(0.1)  # the later threads enter while this one holds
        inside.append(_numpy_blas_threads(threadpoolctl))
        return (X.T @ X,)

    def call():
        try:
            result = backends.reduce_rows(slow_block, [X], out=out, row_bytes=24, working_memory=24 * 100)
            np.testing.assert_allclose(result.gram, X.T @ X, rtol=1e-13)
        except BaseException as error:  # reported in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
        time.sleep(0.03)
    for thread in threads:
        thread.join(timeout=30)
    assert not failures and len(inside) == 8
    assert all(set(seen) <= {1} for seen in inside)
    assert _numpy_blas_threads(threadpoolctl) == before


def test_a_dask_pass_over_several_chunks_leaves_blas_as_it_was(monkeypatch):
    """Dask's threaded scheduler runs the chunks' in-memory steps at once, each holding BLAS at one
    thread for its blocks: afterwards BLAS is as before."""
    threadpoolctl, before = _overlapping_holds(monkeypatch)
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    X = np.random.default_rng(0).normal(size=(800, 3))
    rows = np.arange(800.0)

    def slow_block(X, rows):
        time.sleep(0.01 * (1 + float(rows[0]) // 200))  # later chunks finish later
        return (X.T @ X,)

    out = {"gram": backends.Sum((3, 3), np.float64)}
    with dask.config.set(scheduler="threads", num_workers=4):
        result = backends.reduce_rows(
            slow_block,
            [da.from_array(X, chunks=(200, 3)), da.from_array(rows, chunks=200)],
            out=out,
            row_bytes=32,
            working_memory=32 * 100,
        )
        np.testing.assert_allclose(backends.to_numpy(result.gram), X.T @ X, rtol=1e-13)
    assert _numpy_blas_threads(threadpoolctl) == before


def test_reduce_rows_inside_a_block_runs_its_blocks_on_that_thread(monkeypatch):
    """A block function that itself calls reduce_rows over several blocks: the inner blocks run in order
    on the block's thread instead of waiting for the pool's threads, every one of which runs an outer
    block waiting for them (a deadlock). The call runs in a thread joined with a timeout, so a
    regression fails here instead of hanging the suite."""
    from hml.backends import _rows

    monkeypatch.setattr(_rows, "_threads", lambda: 2)
    X = np.arange(3000.0).reshape(1000, 3)

    def row_sums(Y):
        return (Y.sum(axis=1),)

    def nested(Y):  # 5 inner blocks of 50 rows in each outer block of 250
        inner = backends.reduce_rows(
            row_sums, [Y], out={"sums": backends.Rows(np.float64)}, row_bytes=8, working_memory=400
        )
        return (inner.sums,)

    found = []
    caller = threading.Thread(
        target=lambda: found.append(
            backends.reduce_rows(nested, [X], out={"sums": backends.Rows(np.float64)}, row_bytes=8, working_memory=2000)
        ),
        daemon=True,
    )
    caller.start()
    caller.join(timeout=30)
    if caller.is_alive():  # unblock the pool's threads (their queued inner blocks fail), so the suite can exit
        _rows._pool(2).shutdown(wait=False, cancel_futures=True)
        _rows._pool.cache_clear()
        pytest.fail("reduce_rows inside a block did not return within 30 s: deadlocked on the shared pool")
    np.testing.assert_array_equal(found[0].sums, X.sum(axis=1))


def _fit_in_child(X):
    return hml.KMeans(4, init=X[:4], max_iter=2, tol=0.0, working_memory=64 * 1024).fit(X).inertia_


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork is POSIX's")
def test_a_forked_child_runs_blocks_after_the_parent_has(monkeypatch):
    """The row blocks' thread pool, started in the parent, was in the child without its threads: the child's
    first blocked fit waited for ever (joblib's "multiprocessing" backend, multiprocessing.Pool)."""
    import multiprocessing

    monkeypatch.setenv("HML_NUM_THREADS", "2")  # the pool, on any machine
    X = np.random.default_rng(0).normal(size=(20_000, 8))
    expected = _fit_in_child(X)  # the parent's pool starts here
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_fit_in_child, (X,)).get(timeout=60) == pytest.approx(expected, rel=1e-12)


def test_the_block_threads_follow_hml_num_threads_and_the_cores_the_process_may_use(monkeypatch):
    import os

    from hml.backends import _rows

    monkeypatch.delenv("HML_NUM_THREADS", raising=False)
    if hasattr(os, "sched_getaffinity"):
        assert _rows._threads() == len(os.sched_getaffinity(0)) or not hml._platform.can_start_threads()
    monkeypatch.setenv("HML_NUM_THREADS", "3")
    assert _rows._threads() == 3
    monkeypatch.setenv("HML_NUM_THREADS", "0")
    with pytest.raises(ValueError, match=r"HML_NUM_THREADS='0': give a whole number of threads >= 1, or unset it"):
        _rows._threads()


def test_torch_takes_what_numpy_holds_and_torch_does_not():
    """Negative strides, another byte order and wide unsigned labels: a fit succeeded and predict failed inside
    torch (index_select on UInt16), or the fit itself did (X[::-1]). bfloat16 tensors come back as float32."""
    torch = pytest.importorskip("torch")
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    expected = hml.LogisticRegression().fit(X, y).predict(X)
    for labels in (y.astype(np.uint16), y.astype(np.uint64), y.astype(">i8")):
        predicted = hml.LogisticRegression(backend="torch").fit(X, labels).predict(X)
        np.testing.assert_array_equal(backends.to_numpy(predicted), expected)
    flipped = hml.LinearRegression(backend="torch").fit(X[::-1], X[::-1, 0] * 2.0 + 1.0)
    reference = hml.LinearRegression().fit(X[::-1].copy(), X[::-1, 0] * 2.0 + 1.0)
    np.testing.assert_allclose(backends.to_numpy(flipped.predict(X[::-1])), reference.predict(X[::-1]), rtol=1e-10)
    big_endian = hml.LinearRegression(backend="torch").fit(X.astype(">f8"), X[:, 1])
    np.testing.assert_allclose(backends.to_numpy(big_endian.coef_), hml.LinearRegression().fit(X, X[:, 1]).coef_)
    half = torch.randn(40, 3, dtype=torch.bfloat16)
    host = backends.to_numpy(half)
    assert host.dtype == np.float32 and np.array_equal(host, half.float().numpy())
    assert hml.metrics.accuracy_score((half[:, 0] > 0).to(torch.bfloat16), (half[:, 0] > 0).to(torch.bfloat16)) == 1.0
