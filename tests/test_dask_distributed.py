"""The estimators on a ``dask.distributed`` cluster: the work runs on the workers, and matches NumPy.

A ``LocalCluster`` of two worker processes on 127.0.0.1 (no dashboard), started once for
the module and closed in a ``finally``. Every fit is checked against the same fit on NumPy,
and the scheduler's log against "Detected different `run_spec`": a graph key reused with
other contents, which Dask warns "can cause failures and deadlocks" (hml once did it by
reading a lazy value and then using it again in another computation).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from estimators import BY_ID, SPECS, Spec

import hml

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None, timeout="60s"
    )
    try:
        with distributed.Client(cluster, timeout="60s") as client:
            yield client
    finally:
        cluster.close(timeout=30)


def _data(spec, seed=0):
    return spec.data(n=600, d=4, seed=seed)


def _make(spec, **params):
    # Iterations just past the training loop's first read (two past it): a value read and then used
    # again in the next iteration's graph is what reuses a key. No more: each iteration costs a
    # cluster a few rounds of its scheduler.
    return spec.make(max_iter=(spec.read_every or 1) + 2, **params)


def _chunked(y):
    return None if y is None else da.from_array(y, chunks=150)


def _check_outputs(spec, model, reference, X, X_d):
    """Every output computed on the workers (lazily, on dask input) equals the NumPy model's."""
    for method in spec.outputs:
        predicted = getattr(model, method)(X_d)
        assert hasattr(predicted, "__dask_graph__"), method
        expected = np.asarray(getattr(reference, method)(X))
        np.testing.assert_allclose(np.asarray(predicted.compute()), expected, rtol=1e-9, atol=1e-12, err_msg=method)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_fits_on_the_workers_match_numpy_without_scheduler_warnings(client, spec):
    X, y = _data(spec)
    X_d = da.from_array(X, chunks=150)
    earlier = _reused_keys(client)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        with distributed.get_task_stream(client) as stream:
            model = _make(spec).fit(X_d, _chunked(y))
        reference = _make(spec).fit(X, y)
    workers = {task["worker"] for task in stream.data}
    assert workers and workers <= set(client.scheduler_info()["workers"])  # the fit's tasks ran on the cluster
    _check_outputs(spec, model, reference, X, X_d)
    reused = _reused_keys(client)[len(earlier) :]
    assert not reused, reused[:3]
    _check_nothing_held(client, spec, model)


def _check_nothing_held(client, spec, model):
    """A fitted model holds concrete arrays only: while it lives the scheduler forgets every task of its fit (an
    optimiser's state left lazy in a tuple kept 1,381 of them, and their data, on the cluster)."""
    held = _tasks_left(client)
    assert not held, f"{spec}: {held} tasks held on the scheduler while the fitted model lives"
    assert hasattr(model, "n_features_in_")  # it lived through the check


@pytest.fixture(autouse=True)
def _forgotten(request):
    """Each test starts on a scheduler that holds no task of an earlier one. Two fits of the same data (the
    specs share it) build the same keys -- dask names a key after its inputs -- and a previous test's keys that
    the scheduler still held, not yet forgotten, met the next fit's differently fused graph as a "different
    `run_spec`" (CI, once: mlp-minibatch, then mlp-adam; reproduced with the code before hml's k-means origin,
    and gone once the scheduler is empty between the fits). The check is for keys reused within a fit."""
    if "client" not in request.fixturenames:
        yield
        return
    _tasks_left(request.getfixturevalue("client"))
    yield


def _tasks_left(client, seconds=30):
    """How many tasks the scheduler still holds once it has had ``seconds`` to forget those nothing refers to."""
    import gc
    import time

    deadline = time.monotonic() + seconds
    while True:
        gc.collect()
        left = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _reused_keys(client):
    """The scheduler's "different `run_spec`" warnings so far, oldest first."""
    log = [message for _, message in reversed(client.get_scheduler_logs(n=100_000))]
    return [message.splitlines()[0] for message in log if "Detected different `run_spec`" in message]


# Streaming changes how each pass of a training loop reads X (a closed-form fit reads it once either
# way): one spec per kind of loop -- gradient descent's cost windows, a line search, Lloyd's
# iterations -- and k-means++ from a sample, which reads X for the sample too.
ONE_PER_LOOP: dict[str, Spec] = {}
for _spec in SPECS:
    if _spec.iterative:
        ONE_PER_LOOP.setdefault(_spec.loop_read, _spec)
STREAMED = [pytest.param(spec, {}, id=spec.id) for spec in ONE_PER_LOOP.values()] + [
    pytest.param(BY_ID["kmeans"], {"init_size": 100}, id="kmeans-sample")
]


@pytest.mark.parametrize("spec, params", STREAMED)
def test_streamed_fits_on_the_workers_match_numpy_without_scheduler_warnings(client, spec, params, monkeypatch):
    """With the training matrices streamed (not kept), every pass rebuilds the standardised chunks
    on the workers: still the NumPy fit, and still no graph key reused with other contents."""
    monkeypatch.setattr("hml.backends._dask.KEEP_FRACTION", 0.0)
    X, y = _data(spec, seed=1)
    X_d = da.from_array(X, chunks=150)
    earlier = _reused_keys(client)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        model = _make(spec, **params).fit(X_d, _chunked(y))
        reference = _make(spec, **params).fit(X, y)
    _check_outputs(spec, model, reference, X, X_d)
    reused = _reused_keys(client)[len(earlier) :]
    assert not reused, reused[:3]
    _check_nothing_held(client, spec, model)


def test_numpy_blocks_run_on_one_thread_inside_a_worker_and_on_every_core_outside(client):
    """In a worker's task, the worker's threads are the parallelism: hml's CPU blocks run in
    order there, instead of a thread per core in every worker process (4 threads on 2 cores
    for 2 workers). Outside, one per core, even though a LocalCluster has set OMP_NUM_THREADS=1
    in this process as well."""
    import os

    from hml.backends._rows import _threads

    assert client.submit(_threads, pure=False).result(timeout=60) == 1
    assert _threads() == (os.cpu_count() or 1)


def _alignment(chunk):
    return np.full((1,) * chunk.ndim, chunk.flags.aligned)


def _unaligned_copy(chunk):
    """The chunk's values in memory one byte past an aligned address: as distributed may deserialise
    a chunk (``da.from_array(x).persist()``: at whatever offset its frame lands), made here for certain."""
    raw = np.empty(chunk.nbytes + 1, dtype=np.uint8)
    copy = raw[1:].view(chunk.dtype).reshape(chunk.shape)
    copy[...] = chunk
    return copy


def test_kept_chunks_held_unaligned_are_aligned_once(client):
    """Persisted chunks at odd byte offsets (where NumPy and BLAS take slow paths): ``keep`` persists
    aligned copies of them once per fit, and leaves aligned chunks computed on the workers as they are."""
    from hml import backends

    source = da.from_array(np.arange(4000.0).reshape(1000, 4), chunks=(250, 4))
    X = source.map_blocks(_unaligned_copy, dtype=source.dtype).persist()
    distributed.wait(X)
    flags = lambda a: a.map_blocks(_alignment, chunks=((1,) * 4, (1,)), dtype=bool).compute()  # noqa: E731
    assert not np.any(flags(X))  # held on the workers as made: no chunk aligned
    (kept,) = backends.keep(X)
    assert kept.name != X.name
    assert np.all(flags(kept))
    np.testing.assert_array_equal(kept.compute(), source.compute())
    computed = (X + 1.0).persist()  # chunks made on the workers by NumPy: aligned, kept as they are
    distributed.wait(computed)
    assert np.all(flags(computed))
    (same,) = backends.keep(computed)
    assert same.name == computed.name


def test_a_persisted_chunk_is_read_from_its_future_without_a_graph(client):
    """Reading a persisted one-chunk value (the k-means status) asks for its future's result:
    no graph is submitted, so no task runs for the read."""
    from hml.backends._dask import DaskBackend, _persisted_future

    status = (da.arange(4.0, chunks=4) * 2.0).persist()
    distributed.wait(status)
    assert _persisted_future(status) is not None
    two_chunks = da.arange(4.0, chunks=2).persist()
    distributed.wait(two_chunks)  # its tasks must not finish inside the task stream below
    assert _persisted_future(two_chunks) is None  # two chunks: computed as usual
    assert _persisted_future(da.arange(4.0, chunks=4) * 2.0) is None  # not persisted
    with distributed.get_task_stream(client) as stream:
        value = DaskBackend().to_numpy(status)
    np.testing.assert_array_equal(value, [0.0, 2.0, 4.0, 6.0])
    assert not stream.data


def test_chunk_sums_are_one_task_not_a_tree_with_a_pick_and_an_alias_per_chunk(client):
    """Each task is a round of the scheduler (1-5 ms here): at 8 chunks, a call runs the 8 chunk
    tasks, one task adding their sums and one per output. ``da.reduction`` ran 8 more to pick
    the sums, and 8 aliases once those were fused with the chunk tasks."""
    from hml import backends

    X = da.from_array(np.arange(240.0).reshape(80, 3), chunks=(10, 3)).persist()
    distributed.wait(X)  # its own tasks must not finish inside the task stream below
    out = {"total": backends.Sum((), np.float64), "columns": backends.Sum((3,), np.float64)}
    result = backends.reduce_rows(lambda X: (np.sum(X), np.sum(X, axis=0)), [X], (), out=out, row_bytes=24)
    with distributed.get_task_stream(client) as stream:
        sums = client.persist([result.total, result.columns])  # persisted, as a fit's iteration is: no finalize task
        distributed.wait(sums)
    assert len(stream.data) == 8 + 1 + 2
    total, columns = client.compute(sums, sync=True)
    np.testing.assert_array_equal(columns, np.arange(240.0).reshape(80, 3).sum(axis=0))
    assert total == np.arange(240.0).sum()
