"""Dask-fitted models are concrete: no fitted attribute keeps a graph over the training data.

A Dask fit ends by computing its fitted state (in one pass) into the chunks' library, so
``predict`` on five NumPy rows does not re-read the training chunks, a pickle holds the
model and not its training graph, and ``predict`` on a dask array is a lazy graph over
that array alone. Every estimator is checked against the same fit on NumPy.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from estimators import BY_ID, SPECS

import hml
from hml.base import BaseEstimator

da = pytest.importorskip("dask.array")


def _data(spec):
    return spec.data(n=240, d=4)


def _fit(spec, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        return spec.make().fit(X, y)


def _chunked(y):
    return None if y is None else da.from_array(y, chunks=60)


def _fitted_arrays(model, prefix=""):
    """(name, value) of every fitted array attribute, lists, tuples (an optimiser's state) and fitted
    sub-estimators included."""
    found = []
    for name, value in vars(model).items():
        if not name.endswith("_") or name == "_ctx_":
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for i, item in enumerate(values):
            label = prefix + name + (f"[{i}]" if isinstance(value, (list, tuple)) else "")
            if isinstance(item, BaseEstimator):
                found += _fitted_arrays(item, label + ".")
            elif hasattr(item, "__array_namespace__") or hasattr(item, "__dask_graph__"):
                found.append((label, item))
    return found


@pytest.fixture(scope="module", params=SPECS, ids=str)
def fitted(request):
    spec = request.param
    X, y = _data(spec)
    X_train = da.from_array(X, chunks=60)  # 4 chunks
    model = _fit(spec, X_train, _chunked(y))
    reference = _fit(spec, X, y)  # the same fit on NumPy
    return spec, model, reference, X, X_train


def test_every_fitted_array_is_concrete_numpy(fitted):
    spec, model, _, _, _ = fitted
    arrays = _fitted_arrays(model)
    assert arrays, spec
    lazy = [label for label, value in arrays if not isinstance(value, (np.ndarray, np.generic))]  # 0-d: a scalar
    assert not lazy, f"{spec}: fitted attributes still lazy: {lazy}"


def test_the_fitted_state_matches_the_numpy_fit(fitted):
    spec, model, reference, _, _ = fitted
    ours, theirs = dict(_fitted_arrays(model)), dict(_fitted_arrays(reference))
    assert ours.keys() == theirs.keys()
    for label in ours:
        np.testing.assert_allclose(ours[label], np.asarray(theirs[label]), rtol=1e-9, atol=1e-12, err_msg=label)


def test_a_pickle_holds_the_model_not_the_training_graph(fitted):
    spec, model, reference, X, _ = fitted
    dump = pickle.dumps(model)
    # The NumPy-fitted model's pickle is the size of the model; a graph over X would add its chunks.
    assert len(dump) < 2 * len(pickle.dumps(reference)) + 4096, spec
    restored = pickle.loads(dump)
    for method in spec.outputs:
        np.testing.assert_array_equal(getattr(restored, method)(X), getattr(model, method)(X))


def test_predict_is_lazy_on_dask_input_and_reads_only_that_input(fitted):
    spec, model, reference, X, X_train = fitted
    X_new = da.from_array(X[:50] + 0.01, chunks=25)
    training_keys = {key for key in X_train.__dask_graph__() if isinstance(key, tuple)} | set(
        X_train.__dask_keys__()[0]
    )
    for method in spec.outputs:
        out = getattr(model, method)(X_new)
        assert hasattr(out, "__dask_graph__"), (spec, method, type(out))
        graph_keys = {key if isinstance(key, str) else key[0] for key in out.__dask_graph__()}
        assert not graph_keys & {key if isinstance(key, str) else key[0] for key in training_keys}, (spec, method)
        expected = np.asarray(getattr(reference, method)(X[:50] + 0.01))
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(np.asarray(out.compute()), expected, rtol=1e-9, atol=1e-12)
        else:
            np.testing.assert_array_equal(np.asarray(out.compute()), expected)


def test_predict_on_numpy_input_returns_numpy(fitted):
    spec, model, _, X, _ = fitted
    for method in spec.outputs:
        assert isinstance(getattr(model, method)(X[:5]), np.ndarray), (spec, method)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_unknown_chunk_sizes_are_computed_once_not_misread(spec):
    """``X[mask]`` has NaN chunk sizes; every estimator used to fail on it with a misleading
    message ("X has nan rows", a singular covariance "from nan samples", a TypeError)."""
    X, y = _data(spec)
    X_d = da.from_array(X, chunks=60)
    keep = X_d[:, 0] > X_d[:, 0].mean()
    X_masked, y_masked = X_d[keep], None if y is None else _chunked(y)[keep]
    assert np.isnan(X_masked.shape[0])
    model = _fit(spec, X_masked, y_masked)
    rows = X[:, 0] > X[:, 0].mean()
    reference = _fit(spec, X[rows], None if y is None else y[rows])
    assert model.n_features_in_ == 4
    for method in spec.outputs:
        ours = np.asarray(getattr(model, method)(X_masked).compute())
        np.testing.assert_allclose(ours, np.asarray(getattr(reference, method)(X[rows])), rtol=1e-9, atol=1e-12)
    assert np.isnan(X_masked.shape[0])  # the user's array is left as it was


@pytest.mark.parametrize("spec", [BY_ID["logistic-lbfgs"], BY_ID["logistic-ovr-gd"], BY_ID["mlp-gd"]], ids=str)
def test_a_mask_that_empties_a_chunk_fits_and_predicts_as_numpy(spec):
    """A chunk left with 0 rows: Dask's max over it raises ("zero-size array to reduction operation
    maximum"), which the softmax's and the network's max hit, in fit and in predict."""
    X, y = _data(spec)
    X_d, y_d = da.from_array(X, chunks=60), _chunked(y)
    rows = np.arange(len(X)) >= 60  # the whole first chunk masked out
    keep = da.from_array(rows, chunks=60)
    model = _fit(spec, X_d[keep], y_d[keep])
    reference = _fit(spec, X[rows], y[rows])
    on_numpy = _fit(spec, X, y)
    for method in spec.outputs:
        np.testing.assert_allclose(
            np.asarray(getattr(model, method)(X_d[keep]).compute()),
            np.asarray(getattr(reference, method)(X[rows])),
            rtol=1e-9,
            atol=1e-12,
        )
        np.testing.assert_array_equal(  # a NumPy-fitted model predicting on such an array
            np.asarray(getattr(on_numpy, method)(X_d[keep]).compute()), getattr(on_numpy, method)(X[rows])
        )


def test_mini_batches_on_dask_computed_every_few_batches_equal_numpy():
    """θ, the optimiser's state and the epoch's sums are computed every LAZY_ROUND batches on Dask: 11
    batches an epoch (not a multiple of it, the last one short), Adam and momentum, the mean gradient kept."""
    from hml.optimize import batches

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1030, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    X_d, y_d = da.from_array(X, chunks=300), da.from_array(y, chunks=300)
    assert 1030 // 100 % batches.LAZY_ROUND != 0
    for params in ({"solver": "adam"}, {"solver": "gd", "momentum": 0.9, "learning_rate": 0.01}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, reference = (
                hml.MultilayerPerceptronRegressor(batch_size=100, max_iter=3, random_state=0, **params).fit(*data)
                for data in ((X_d, y_d), (X, y))
            )
        for a, b in zip(ours.coefs_ + ours.intercepts_, reference.coefs_ + reference.intercepts_, strict=True):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.asarray(ours.cost_history_), reference.cost_history_, rtol=1e-12)


def test_small_data_on_dask_warns_once_then_computes_there_as_asked(monkeypatch):
    monkeypatch.setattr("hml._array._warned_small", set())
    X, y = _data(BY_ID["linear-normal"])
    X_d, y_d = da.from_array(X, chunks=60), da.from_array(y, chunks=60)
    with pytest.warns(
        hml.PerformanceWarning,
        match=r"LinearRegression: X is 0.00732 MiB, below the 256 MiB where "
        r"dask pays off.*backend='numpy'",
    ) as record:
        model = hml.LinearRegression().fit(X_d, y_d)
    assert record[0].filename == __file__
    assert hasattr(model.predict(X_d), "__dask_graph__")  # still computed on Dask
    with warnings.catch_warnings():
        warnings.simplefilter("error", hml.PerformanceWarning)
        hml.KMeans(3, random_state=0).fit(X_d)  # once per process
        monkeypatch.setattr("hml._array._warned_small", set())
        hml.LinearRegression().fit(X, y)  # NumPy: nothing to say
        monkeypatch.setattr("hml.backends._dask.DaskBackend.small_data_bytes", X.nbytes)
        hml.LinearRegression().fit(X_d, y_d)  # at the threshold: no warning


@pytest.mark.parametrize("rows_per_chunk", [120, 10])  # 5 chunks: the sums in one task; 50: in a tree
def test_reduce_rows_on_dask_agrees_with_the_in_memory_call(rows_per_chunk):
    """The row primitive on Dask (one task per row chunk, each in blocks) against the same call on
    the whole NumPy arrays: rows (a vector and a matrix) and sums, with and without running totals."""
    from hml import backends

    rng = np.random.default_rng(0)
    X, w = rng.normal(size=(500, 3)), rng.normal(size=3)

    def step(X, weights):
        scores = X @ weights
        return scores > 0, X * 2.0, X.T @ X, np.sum(scores)

    out = {
        "positive": backends.Rows(np.bool_),
        "doubled": backends.Rows(np.float64, width=3),
        "gram": backends.Sum((3, 3), np.float64),
        "total": backends.Sum((), np.float64),
    }
    start = {"total": np.float64(10.0)}
    chunked = backends.reduce_rows(
        step, [da.from_array(X, chunks=(rows_per_chunk, 2))], (w,), out=out, row_bytes=64, start=start
    )
    whole = backends.reduce_rows(step, [X], (w,), out=out, row_bytes=64, start=start)
    assert all(hasattr(value, "__dask_graph__") for value in vars(chunked).values())
    np.testing.assert_array_equal(chunked.positive.compute(), whole.positive)
    np.testing.assert_array_equal(chunked.doubled.compute(), 2.0 * X)
    np.testing.assert_allclose(chunked.gram.compute(), X.T @ X, rtol=1e-12)
    np.testing.assert_allclose(whole.gram, X.T @ X, rtol=1e-12)
    np.testing.assert_allclose(chunked.total.compute(), 10.0 + np.sum(X @ w), rtol=1e-12)
    np.testing.assert_allclose(whole.total, 10.0 + np.sum(X @ w), rtol=1e-12)


@pytest.mark.parametrize("indices", [[0], [5], [0, 3], [11, 0, 0]])
def test_take_rows_at_host_indices_agrees_with_the_portable_take(indices):
    """Dask's override indexes with the host indices; the portable take uploads them. Both give
    the rows; only the override gives the right shape for [0] (dask 2026.8 claims all of X's)."""
    from hml import backends
    from hml.backends._base import Backend

    X = np.arange(24.0).reshape(12, 2)
    ctx = backends.resolve("dask")
    rows = ctx.take_rows(da.from_array(X, chunks=(5, 2)), indices)
    portable = Backend.take_rows(ctx.backend, ctx, da.from_array(X, chunks=(5, 2)), np.asarray(indices))
    assert rows.shape == (len(indices), 2)
    np.testing.assert_array_equal(rows.compute(), X[indices])
    np.testing.assert_array_equal(portable.compute(), X[indices])


def test_kmeans_with_one_cluster_on_dask_matches_numpy():
    """n_clusters=1 from random rows: some run starts at row 0 (the take above)."""
    X = np.random.default_rng(0).normal(size=(12, 1))
    ours = hml.KMeans(1, init="random", n_init=10, max_iter=2, tol=0.0, random_state=3).fit(da.from_array(X))
    reference = hml.KMeans(1, init="random", n_init=10, max_iter=2, tol=0.0, random_state=3).fit(X)
    np.testing.assert_allclose(ours.cluster_centers_, reference.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(ours.cluster_centers_, X.mean(axis=0, keepdims=True), rtol=1e-12)


def test_reduce_rows_hands_each_task_the_chunk_itself_not_a_copy():
    """dask's contraction with concatenation copies even a single block (``concatenate3``): a copy
    of every chunk of X per call. The tasks must see the persisted chunks themselves."""
    from hml import backends

    X = da.from_array(np.arange(60.0).reshape(20, 3), chunks=(5, 3)).persist()
    stored = [v for v in dict(X.__dask_graph__()).values() if isinstance(v, np.ndarray)]  # the persisted chunks
    assert len(stored) == 4
    seen = []

    def step(chunk, weights):
        seen.append(chunk)
        return (chunk @ weights,)

    out = {"rows": backends.Rows(np.float64)}
    result = backends.reduce_rows(step, [X], (da.ones(3, chunks=1),), out=out, row_bytes=8)
    np.testing.assert_array_equal(result.rows.compute(scheduler="sync"), np.arange(60.0).reshape(20, 3).sum(axis=1))
    assert len(seen) == 4
    assert all(any(np.shares_memory(chunk, s) for s in stored) for chunk in seen)


def test_unaligned_chunks_are_aligned_before_the_chunk_step():
    """distributed deserialises persisted chunks at odd byte offsets; BLAS is slow on them."""
    from hml.backends._dask import _aligned

    raw = np.zeros(8 * 10 + 1, dtype=np.uint8)
    unaligned = raw[1:].view(np.float64)
    unaligned[:] = np.arange(10.0)
    assert not unaligned.flags.aligned
    fixed = _aligned(unaligned)
    assert fixed.flags.aligned
    np.testing.assert_array_equal(fixed, np.arange(10.0))
    aligned = np.arange(10.0)
    assert _aligned(aligned) is aligned


def test_call_once_is_one_task_on_the_single_chunks_and_matches_the_call():
    """``call_once`` runs a small update (the k-means M-step) as one task in the chunks' library,
    on arrays of several chunks merged into one, with plain arguments passed as they are."""
    import dask

    from hml import backends

    seen = []

    def update(a, b, scale, missing):
        seen.append((type(a), type(b), missing))
        return a * scale + b.sum(), (a @ b.T)[0]

    a_np, b_np = np.arange(6.0).reshape(2, 3), np.ones((4, 3))
    a_d, b_d = da.from_array(a_np, chunks=(1, 3)), da.from_array(b_np, chunks=2)
    out = backends.call_once(update, (a_d, b_d, 2.0, None), [((2, 3), np.float64), ((4,), np.float64)])
    calls = [
        key
        for key in dict(out[0].__dask_graph__())
        if str(key[0] if isinstance(key, tuple) else key).startswith("hml-update")
    ]
    assert len(calls) == 1
    first, second = dask.compute(*out, scheduler="sync")
    expected = update(a_np, b_np, 2.0, None)
    np.testing.assert_array_equal(first, expected[0])
    np.testing.assert_array_equal(second, expected[1])
    assert seen[0] == (np.ndarray, np.ndarray, None) and len(seen) == 2  # the task once, and the reference
    assert out[0].shape == (2, 3) and out[1].shape == (4,) and out[0].dtype == np.float64


def test_incremental_chunk_sums_agree_with_full_sums(monkeypatch):
    """k-means on Dask with NumPy chunks updates S and n from the rows whose label changed
    (as in memory); with the chunks' library said to select rows expensively (CuPy) every chunk
    sums all its rows. Both give the same fit, and the incremental one is taken on NumPy chunks."""
    from hml import backends

    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(c, 1.0, size=(400, 3)) for c in (-4.0, 0.0, 4.0)])
    Xd = da.from_array(X, chunks=(250, 3))
    dask_backend = backends.resolve("dask").backend
    assert dask_backend.cheap_data_dependent_shapes(Xd)
    start = X[[0, 1, 2, 3]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.PerformanceWarning)
        incremental = hml.KMeans(4, init=start, max_iter=30, tol=0.0).fit(Xd)
        monkeypatch.setattr(type(dask_backend), "cheap_data_dependent_shapes", lambda self, array: False)
        full = hml.KMeans(4, init=start, max_iter=30, tol=0.0).fit(Xd)
    in_memory = hml.KMeans(4, init=start, max_iter=30, tol=0.0).fit(X)
    assert incremental.n_iter_ == full.n_iter_ == in_memory.n_iter_ > 2
    np.testing.assert_array_equal(incremental.labels_, full.labels_)
    np.testing.assert_allclose(incremental.cluster_centers_, full.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(incremental.cluster_centers_, in_memory.cluster_centers_, rtol=1e-12)


def test_training_matrices_are_kept_when_they_fit_and_streamed_when_not(monkeypatch):
    """backends.keep persists a fit's training matrices when they take at most KEEP_FRACTION of
    the memory, and leaves them lazy otherwise (each pass then reads and standardises the chunks
    itself); either way every fit equals the NumPy fit."""
    from hml import backends

    X = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(3, 2))
    kept = backends.keep(X * 2.0)[0]
    assert len(kept.__dask_graph__()) == 2  # its two chunks, computed: nothing left of X or the product
    monkeypatch.setattr("hml.backends._dask.KEEP_FRACTION", 0.0)
    lazy = X * 2.0
    assert backends.keep(lazy)[0] is lazy
    for spec in [spec for spec in SPECS if spec.iterative]:  # a closed-form fit reads X once either way
        Xn, y = _data(spec)
        streamed = _fit(spec, da.from_array(Xn, chunks=(60, Xn.shape[1])), _chunked(y))
        in_memory = _fit(spec, Xn, y)
        for method in spec.outputs:
            np.testing.assert_allclose(
                getattr(streamed, method)(Xn), getattr(in_memory, method)(Xn), rtol=1e-9, atol=1e-12, err_msg=spec.id
            )


def test_a_streamed_X_is_read_once_per_iteration(monkeypatch):
    """When X is not kept (larger than KEEP_FRACTION of the memory), each iteration of gradient
    descent and of Lloyd reads each chunk of X once -- counted where the chunks are made -- and
    no graph spans two iterations (which would hold all of X until its last one)."""
    monkeypatch.setattr("hml.backends._dask.KEEP_FRACTION", 0.0)
    made = [0]

    def chunk(block_id=None):
        made[0] += 1
        return np.random.default_rng([0, block_id[0]]).normal(size=(400, 3))

    X = da.map_blocks(chunk, chunks=((400,) * 5, (3,)), dtype=np.float64, meta=np.empty((0, 0)))
    y = X @ np.array([1.0, -2.0, 0.5])
    fits = {
        "linear GD": lambda it: hml.LinearRegression(learning_rate=0.5, max_iter=it, tol=None),
        "k-means": lambda it: hml.KMeans(3, init=np.eye(3), max_iter=it, tol=0.0),
        # blocks of 500 rows over chunks of 400: snapped to chunk ends, no chunk read twice
        "k-means, several blocks": lambda it: hml.KMeans(
            3, init=np.eye(3), max_iter=it, tol=0.0, working_memory=8 * (3 + 3) * 500
        ),
    }
    for name, make in fits.items():
        passes = {}
        for max_iter in (2, 7):
            made[0] = 0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = make(max_iter).fit(X, y)
            assert model.n_iter_ == max_iter
            passes[max_iter] = made[0] / 5
        assert passes[7] - passes[2] == 5, (name, passes)
    # Random starting rows are taken from X once, not again inside each chunk's task of the first
    # iteration (which made 12 passes of it): validation, ‖x‖², tol's scale, the rows, the
    # iterations, the final E-step and the concrete model.
    made[0] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hml.KMeans(3, init="random", n_init=1, max_iter=2, tol=0.0, random_state=0).fit(X)
    assert made[0] / 5 <= 2 + 6, made[0] / 5
    # k-means++ from a sample (init_size) reads X once for the sample, as "random" does for its
    # rows; from all rows, it reads X about twice per centroid (measured: 23 passes for 8).
    passes = {}
    for init_size in (300, None):
        made[0] = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hml.KMeans(8, init_size=init_size, max_iter=2, tol=0.0, random_state=0).fit(X)
        passes[init_size] = made[0] / 5
    assert passes[300] <= 2 + 6 < 2 * (8 - 1) <= passes[None], passes


def test_lazy_arrays_in_nested_tuples_and_lists_are_made_concrete():
    """An optimiser's state is a tuple (the MLP's ``_rule_state_``): arrays in tuples, in tuples in tuples and in
    lists in tuples are computed with the rest, and each container keeps its type."""
    from hml import backends
    from hml._concrete import make_concrete

    x = da.arange(3.0, chunks=1)
    model = BaseEstimator()
    model.state_ = ("sgd", x, (x + 1, [x * 2]), [("n", x - 1)])
    make_concrete(model, backends.resolve("dask", None, x))
    name, a, (b, [c]), [(n, d)] = model.state_
    assert (name, n) == ("sgd", "n")
    assert type(model.state_) is tuple and type(model.state_[2]) is tuple and type(model.state_[3][0]) is tuple
    for value, expected in ((a, [0, 1, 2]), (b, [1, 2, 3]), (c, [0, 2, 4]), (d, [-1, 0, 1])):
        assert isinstance(value, np.ndarray)
        np.testing.assert_array_equal(value, expected)


def test_lazy_arrays_only_deep_inside_a_tuple_are_made_concrete():
    """A tuple whose lazy arrays all sit in inner tuples or lists is looked into too; a tuple without one is left
    as it was (the same object)."""
    from hml import backends
    from hml._concrete import make_concrete

    x = da.arange(3.0, chunks=1)
    model = BaseEstimator()
    plain = ("key", 1)
    model.state_ = ("sgd", ((x,),), ["n", (x + 1,)], plain)
    make_concrete(model, backends.resolve("dask", None, x))
    _, ((a,),), [_, (b,)], same = model.state_
    assert type(model.state_) is tuple and type(model.state_[1][0]) is tuple and same is plain
    for value, expected in ((a, [0, 1, 2]), (b, [1, 2, 3])):
        assert isinstance(value, np.ndarray)
        np.testing.assert_array_equal(value, expected)


def test_fitted_tuples_keep_their_type_when_made_concrete():
    """Fitted state at any depth of lists and tuples is computed at the end of a Dask fit; a named tuple stays
    one (it came back a plain tuple), a tuple a tuple, a list a list."""
    from typing import NamedTuple

    from hml import backends
    from hml._concrete import make_concrete

    class Pair(NamedTuple):
        first: object
        second: object

    fitted = BaseEstimator()
    fitted.pair_ = Pair(da.ones(3), (da.zeros(2), 1.0))
    fitted.layers_ = [da.ones(2), Pair(da.ones(1), None)]
    make_concrete(fitted, backends.resolve("dask"))
    assert type(fitted.pair_) is Pair and type(fitted.pair_.second) is tuple and type(fitted.layers_[1]) is Pair
    assert isinstance(fitted.pair_.first, np.ndarray) and isinstance(fitted.pair_.second[0], np.ndarray)
    np.testing.assert_array_equal(fitted.layers_[0], np.ones(2))
