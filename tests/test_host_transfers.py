"""GPU-correct by design: host reads only where documented, float32 kept, inputs not copied.

On a GPU every read of a device value by the host (``float(x)``, ``bool(x)``, a copy to
NumPy) waits for the device; hml batches its reads and names each one
(:meth:`hml.backends.ComputeContext.read`). These tests run on every backend case:

* on ``cupy`` and ``torch`` on ``cuda`` the GPU libraries' own guards
  (``cupyx.allow_synchronize(False)``, ``torch.cuda.set_sync_debug_mode("error")``)
  are on around each fit and predict, so any synchronisation outside a documented
  read fails the test;
* on ``array_api_strict`` the same guard is imitated on the CPU: its arrays refuse
  ``bool``/``int``/``float``/DLPack outside a documented read, so CI catches an
  implicit read without a GPU;
* on ``torch`` (CPU too) a Python scalar that array_api_compat turns into a tensor
  (``xp.maximum(x, 0.0)``) fails: on CUDA that is a host-to-device copy, which the
  first GPU run found the real guard rejecting (``xp.clip(x, min=0.0)`` is the fix);
* everywhere, :func:`hml.backends.count_host_transfers` holds the training loops to
  their documented reads: one per ``check_every`` gradient-descent iterations, one per
  line-search evaluation (L-BFGS, CG), one per Lloyd iteration.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import array_api_compat
import numpy as np
import pytest

import hml
from hml import backends


# -- the guard ------------------------------------------------------------------------------
class ImplicitHostRead(AssertionError):
    """An array_api_strict array was read by the host outside a documented transfer."""


_STRICT_READS = ("__bool__", "__int__", "__float__", "__index__", "__complex__", "__dlpack__", "__array__")


@contextlib.contextmanager
def _strict_guard():
    """array_api_strict arrays behave as GPU arrays under a sync guard: reads outside
    :meth:`ComputeContext.read` (and the other documented transfers) raise."""
    import array_api_strict

    cls = type(array_api_strict.asarray(0.0))
    saved = {name: cls.__dict__[name] for name in _STRICT_READS if name in cls.__dict__}

    def guarded(name, original):
        def method(self, *args, **kwargs):
            if not backends.in_host_transfer():
                raise ImplicitHostRead(f"implicit host read: {name} on an array of shape {self.shape}")
            return original(self, *args, **kwargs)

        return method

    for name, original in saved.items():
        setattr(cls, name, guarded(name, original))
    try:
        yield True
    finally:
        for name, original in saved.items():
            setattr(cls, name, original)


class ScalarUpload(AssertionError):
    """A Python scalar became a torch tensor: a host-to-device copy on CUDA."""


@contextlib.contextmanager
def _torch_scalar_guard():
    """array_api_compat's torch wrappers (maximum, minimum, ...) turn a Python scalar operand
    into a tensor on the other operand's device; on CUDA that copy synchronises. Refuse it
    on every torch device, so the CPU run catches what the GPU guard would."""
    aliases = pytest.importorskip("array_api_compat.torch._aliases")
    original = aliases._scalar_to_tensor

    def guarded(x, other):
        if isinstance(x, aliases._py_scalars) and not backends.in_host_transfer():
            raise ScalarUpload(
                f"the Python scalar {x!r} became a tensor on {other.device}: "
                "an upload on CUDA (use xp.clip(x, min=...) or a tensor operand)"
            )
        return original(x, other)

    aliases._scalar_to_tensor = guarded
    try:
        yield
    finally:
        aliases._scalar_to_tensor = original


@contextlib.contextmanager
def no_implicit_reads(case):
    """The sync guard of ``case``'s backend: real on GPUs, imitated on array_api_strict."""
    if case.backend == "array_api_strict":
        with _strict_guard() as active:
            yield active
    else:
        with contextlib.ExitStack() as stack:
            if case.backend == "torch":
                stack.enter_context(_torch_scalar_guard())
            yield stack.enter_context(case.ctx.backend.forbid_sync(case.ctx.device))


def test_the_torch_scalar_guard_catches_a_scalar_operand():
    """The guard is real: xp.maximum(x, 0.0) fails under it, xp.clip(x, min=0.0) passes."""
    pytest.importorskip("torch")
    ctx = backends.resolve("torch", device="cpu")
    x = ctx.xp.asarray([-1.0, 2.0])
    with _torch_scalar_guard():
        with pytest.raises(ScalarUpload):
            ctx.xp.maximum(x, 0.0)
        assert ctx.xp.clip(x, min=0.0).tolist() == [0.0, 2.0]
    assert ctx.xp.maximum(x, 0.0).tolist() == [0.0, 2.0]  # restored afterwards


def test_the_imitated_guard_catches_an_implicit_read():
    """The guard is real: float() on a strict array fails, the documented read passes."""
    pytest.importorskip("array_api_strict")
    ctx = backends.resolve("array_api_strict")
    x = ctx.xp.asarray([1.0, 2.0])
    with _strict_guard():
        with pytest.raises(ImplicitHostRead):
            float(ctx.xp.sum(x))
        with pytest.raises(ImplicitHostRead):
            bool(ctx.xp.all(x > 0))
        assert float(ctx.read(ctx.xp.sum(x), "test")) == 3.0
    assert float(ctx.xp.sum(x)) == 3.0  # restored afterwards


# -- the estimators, as a user fits them -----------------------------------------------------
def _classification(n=240, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    y = np.arange(n) % k
    return centres[y] + rng.normal(size=(n, d)), y


def _regression(n=200, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)


#: name -> (estimator factory taking max_iter, data, the read that is the training loop's, per-iteration rule)
FITS = {
    "linear-gd": (lambda it: hml.LinearRegression(max_iter=it, learning_rate=0.1), _regression),
    "linear-normal": (lambda it: hml.LinearRegression(solver="normal"), _regression),
    "logistic-lbfgs": (lambda it: hml.LogisticRegression(max_iter=it), _classification),
    "logistic-ovr-gd": (
        lambda it: hml.LogisticRegression(solver="gd", multi_class="ovr", max_iter=it),
        _classification,
    ),
    "logistic-cg": (lambda it: hml.LogisticRegression(solver="cg", max_iter=it), _classification),
    "mlp-gd": (lambda it: hml.MultilayerPerceptron(layers=[4, 5, 3], max_iter=it, random_state=0), _classification),
    "mlp-minibatch": (
        lambda it: hml.MultilayerPerceptron(
            layers=[4, 5, 3], max_iter=it, batch_size=64, momentum=0.9, learning_rate=0.1, random_state=0
        ),
        _classification,
    ),
    "mlp-lbfgs": (
        lambda it: hml.MultilayerPerceptron(layers=[4, 5, 3], solver="lbfgs", max_iter=it, random_state=0),
        _classification,
    ),
    "kmeans": (lambda it: hml.KMeans(3, max_iter=it, tol=0.0, random_state=0), _classification),
    "anomaly-diag": (lambda it: hml.GaussianAnomalyDetection(threshold=1e-3), _classification),
    "anomaly-full": (lambda it: hml.GaussianAnomalyDetection(covariance="full", threshold=1e-3), _classification),
}


def _fit(case, name, max_iter=20):
    factory, data = FITS[name]
    X, y = data()
    X, y = case.asarray(X), case.asarray(y)
    model = factory(max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        with backends.count_host_transfers() as seen:
            model.fit(X, y)
    return model, X, seen


def _outputs(model, X):
    """Every per-row output the model offers, by method name."""
    methods = ["predict", "predict_proba", "decision_function", "transform", "score_samples", "log_density"]
    return {m: getattr(model, m)(X) for m in methods if hasattr(model, m)}


@pytest.mark.parametrize("name", list(FITS))
def test_no_implicit_host_reads_in_fit_or_predict(case, name):
    """Fit and predict under the backend's sync guard: only documented reads may wait for the device."""
    with no_implicit_reads(case) as active:
        model, X, seen = _fit(case, name)
        outputs = _outputs(model, X)
    if not active and case.backend not in ("numpy", "torch", "dask"):
        pytest.fail(f"no sync guard for backend {case.backend!r}")
    assert outputs  # the guarded block ran predictions too
    assert seen.n_reads > 0 or case.lazy  # the reads were counted (a fit reads at least its input check)


#: The training loop's read, and how many there are for max_iter iterations of a fit.
LOOP_READS = {
    "linear-gd": ("cost window", lambda model, it: math.ceil(it / 10)),
    "logistic-ovr-gd": ("cost window", lambda model, it: math.ceil(it / 10)),
    "mlp-gd": ("cost window", lambda model, it: math.ceil(it / 10)),
    "mlp-minibatch": ("cost window", lambda model, it: it),  # check_every=1 epoch
    "kmeans": ("k-means convergence", lambda model, it: model.n_iter_),
}


@pytest.mark.parametrize("name", list(FITS))
def test_training_loops_read_only_what_is_documented(case, name):
    """Doubling max_iter adds only the loop's documented reads; every other read is per fit."""
    short, _, seen_short = _fit(case, name, max_iter=20)
    long, _, seen_long = _fit(case, name, max_iter=40)
    loop = {"cost window", "line search", "k-means convergence"}
    for kind in set(seen_short.reads) | set(seen_long.reads):
        if kind not in loop:
            assert seen_short.reads[kind] == seen_long.reads[kind], (kind, seen_short.reads, seen_long.reads)
    if name in LOOP_READS:
        kind, expected = LOOP_READS[name]
        assert seen_short.reads[kind] == expected(short, 20)
        assert seen_long.reads[kind] == expected(long, 40)
    if "line search" in seen_long.reads:  # L-BFGS / CG: one read per evaluation, at least one per iteration
        assert seen_long.reads["line search"] >= long.n_iter_
        assert set(seen_long.reads) & loop == {"line search"}
    if name == "mlp-minibatch":  # the epoch's order is drawn on the host: one upload per epoch, nothing per batch
        assert seen_long.uploads - seen_short.uploads == (0 if case.backend == "numpy" else 20)


@pytest.mark.parametrize("method", ["lbfgs", "conjugate_gradient"])
def test_line_search_reads_are_its_evaluations(method):
    """L-BFGS and CG read once per evaluation of J -- the new direction's slope travels with
    the next evaluation's read -- so reads == objective calls − 1 (the initial one)."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(30, 5))
    ctx = backends.resolve("numpy")
    H = A.T @ A + np.eye(5)
    b = rng.normal(size=5)
    calls = []

    def objective(theta):
        calls.append(1)
        return 0.5 * theta @ H @ theta - b @ theta, H @ theta - b

    with backends.count_host_transfers() as seen:
        result = getattr(hml.optimize, method)(objective, np.zeros(5), ctx=ctx, max_iter=50, tol=1e-10)
    np.testing.assert_allclose(result.theta, np.linalg.solve(H, b), rtol=1e-6)
    assert seen.reads == {"initial cost": 1, "line search": len(calls) - 1}
    assert len(calls) - 1 >= result.n_iter


# -- precision, copies, where the results live ------------------------------------------------
def _float_arrays(model):
    """The fitted array attributes of ``model`` (lists of arrays flattened), by name."""
    found = {}
    for name, value in vars(model).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        values = value if isinstance(value, list) else [value]
        for i, item in enumerate(values):
            if (
                backends.is_array(item)
                and not isinstance(item, np.ndarray)
                or isinstance(item, np.ndarray)
                and item.dtype.kind == "f"
            ):
                found[f"{name}[{i}]" if isinstance(value, list) else name] = item
    return found


@pytest.mark.parametrize("name", list(FITS))
def test_float32_stays_float32_end_to_end(case, name):
    factory, data = FITS[name]
    X, y = data()
    X32 = case.asarray(X.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        model = factory(20).fit(X32, case.asarray(y))
    xp = case.xp
    for attr, value in _float_arrays(model).items():
        if array_api_compat.array_namespace(value).isdtype(value.dtype, "real floating"):
            assert value.dtype == xp.float32, (attr, value.dtype)
    for method, out in _outputs(model, X32).items():
        namespace = array_api_compat.array_namespace(out)
        if namespace.isdtype(out.dtype, "real floating"):
            assert out.dtype == xp.float32, (method, out.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_input_already_on_the_device_is_not_copied(case, dtype):
    """X of the backend, on its device and of a floating dtype is used as it is."""
    if dtype == "float64" and not case.float64:
        pytest.skip("no float64 on this device")
    X = case.ctx.asarray(np.random.default_rng(0).normal(size=(50, 3)).astype(dtype))
    with backends.count_host_transfers() as seen:
        checked = hml._array.check_X(X, case.ctx)
    assert checked is X
    assert seen.uploads == 0


@pytest.mark.parametrize("name", list(FITS))
def test_outputs_mirror_the_input_namespace_and_device(case, name):
    """Predictions on the case's arrays come back as arrays of its library, on its device;
    on NumPy input (the model fitted elsewhere), as NumPy."""
    model, X, _ = _fit(case, name)
    for method, out in _outputs(model, X).items():
        assert case.ctx.backend.owns(out), (method, type(out))
        assert str(array_api_compat.device(out)) == str(array_api_compat.device(X)), method
    host = case.to_numpy(X)
    for method, out in _outputs(model, host).items():
        assert isinstance(out, np.ndarray), (method, type(out))


@pytest.mark.parametrize("name", [n for n in FITS if n not in ("linear-normal", "anomaly-diag", "anomaly-full")])
def test_cost_history_stays_on_the_device(case, name):
    """... and on a lazy backend (Dask), where the device is the chunks' host, the fitted model is concrete."""
    model, _, _ = _fit(case, name)
    if case.lazy:
        assert isinstance(model.cost_history_, np.ndarray)
    else:
        assert case.ctx.backend.owns(model.cost_history_)
    # J at every iterate θ₀ … θₙ, whatever the method (k-means: the distortion of each E-step).
    assert model.cost_history_.shape[0] == model.n_iter_ + (0 if name == "kmeans" else 1)


@pytest.mark.parametrize("name", ["linear-gd", "logistic-lbfgs", "mlp-minibatch", "kmeans"])
def test_verbose_shows_a_progress_bar_with_the_cost_and_reads_nothing_more(case, name, capsys):
    """verbose=True: a tqdm bar on stderr with the cost, from the reads the fit makes anyway."""
    quiet, _, seen_quiet = _fit(case, name)
    capsys.readouterr()
    factory, data = FITS[name]
    X, y = (case.asarray(a) for a in data())
    model = factory(20).set_params(verbose=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        with backends.count_host_transfers() as seen:
            model.fit(X, y)
    err = capsys.readouterr().err
    assert type(model).__name__ in err and "cost=" in err
    assert seen.reads == seen_quiet.reads and seen.uploads == seen_quiet.uploads
    assert model.n_iter_ == quiet.n_iter_


def test_warnings_name_the_users_line():
    """A ConvergenceWarning raised deep in an optimiser points at the caller's fit line."""
    X, y = _regression()
    with pytest.warns(hml.ConvergenceWarning) as record:
        hml.LinearRegression(max_iter=3, tol=1e-12).fit(X, y)  # this line
    assert record[0].filename == __file__
    with pytest.warns(hml.ConvergenceWarning) as record:
        hml.LogisticRegression(max_iter=1).fit(*_classification())
    assert record[0].filename == __file__
