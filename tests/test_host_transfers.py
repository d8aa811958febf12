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
from estimators import BY_ID, LOOP_READS, SPECS, loop_iterations

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
def _data(case, spec):
    X, y = spec.data(n=240, d=4)
    return case.asarray(X), None if y is None else case.asarray(y)


def _fit(case, spec, **params):
    """The spec's fit (``params`` override its own) on the case's arrays, and the reads it made."""
    X, y = _data(case, spec)
    model = spec.make(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        with backends.count_host_transfers() as seen:
            model.fit(X, y)
    return model, X, seen


def _outputs(spec, model, X):
    """Every per-row output the model offers, by method name."""
    return {method: getattr(model, method)(X) for method in spec.outputs}


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_no_implicit_host_reads_in_fit_or_predict(case, spec):
    """Fit and predict under the backend's sync guard: only documented reads may wait for the device."""
    with no_implicit_reads(case) as active:
        model, X, seen = _fit(case, spec)
        outputs = _outputs(spec, model, X)
    if not active and case.backend not in ("numpy", "torch", "dask"):
        pytest.fail(f"no sync guard for backend {case.backend!r}")
    assert outputs  # the guarded block ran predictions too
    assert seen.n_reads > 0 or case.lazy  # the reads were counted (a fit reads at least its input check)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_training_loops_read_only_what_is_documented(case, spec):
    """Doubling max_iter adds only the loop's documented reads (the spec's ``loop_read``, one per
    ``read_every`` iterations); every other read is per fit, and a fit without a loop makes none."""
    short, _, seen_short = _fit(case, spec, max_iter=20)
    long, _, seen_long = _fit(case, spec, max_iter=40)
    for kind in set(seen_short.reads) | set(seen_long.reads):
        if kind not in LOOP_READS:
            assert seen_short.reads[kind] == seen_long.reads[kind], (kind, seen_short.reads, seen_long.reads)
    expected = set() if spec.loop_read is None else {spec.loop_read}
    assert set(seen_short.reads) & LOOP_READS == expected and set(seen_long.reads) & LOOP_READS == expected
    for model, seen in ((short, seen_short), (long, seen_long)):
        if spec.read_every is not None:  # one per window of iterations (epoch, Lloyd iteration)
            assert seen.reads[spec.loop_read] == math.ceil(loop_iterations(model) / spec.read_every)
        elif spec.loop_read is not None:  # L-BFGS / CG: one read per evaluation, at least one per iteration
            assert seen.reads[spec.loop_read] >= loop_iterations(model)
    # The loop's own uploads (a mini-batch epoch's order, drawn on the host: one per epoch, nothing per batch).
    assert seen_long.uploads - seen_short.uploads == (0 if case.backend == "numpy" else 20 * spec.loop_uploads)


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


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float32_stays_float32_end_to_end(case, spec):
    X, y = spec.data(n=240, d=4)
    X32 = case.asarray(X.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        model = spec.make().fit(X32, None if y is None else case.asarray(y))
    xp = case.xp
    for attr, value in _float_arrays(model).items():
        if array_api_compat.array_namespace(value).isdtype(value.dtype, "real floating"):
            assert value.dtype == xp.float32, (attr, value.dtype)
    for method, out in _outputs(spec, model, X32).items():
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


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_outputs_mirror_the_input_namespace_and_device(case, spec):
    """Predictions on the case's arrays come back as arrays of its library, on its device;
    on NumPy input (the model fitted elsewhere), as NumPy."""
    model, X, _ = _fit(case, spec)
    for method, out in _outputs(spec, model, X).items():
        assert case.ctx.backend.owns(out), (method, type(out))
        assert str(array_api_compat.device(out)) == str(array_api_compat.device(X)), method
    host = case.to_numpy(X)
    for method, out in _outputs(spec, model, host).items():
        assert isinstance(out, np.ndarray), (method, type(out))


# The iterative fits keep a cost history (a closed-form fit has no iterates to record).
@pytest.mark.parametrize("spec", [spec for spec in SPECS if spec.iterative], ids=str)
def test_cost_history_stays_on_the_device(case, spec):
    """... and on a lazy backend (Dask), where the device is the chunks' host, the fitted model is concrete."""
    model, _, _ = _fit(case, spec)
    if case.lazy:
        assert isinstance(model.cost_history_, np.ndarray)
    else:
        assert case.ctx.backend.owns(model.cost_history_)
    # J at every iterate θ₀ … θₙ, whatever the method (k-means: the distortion of each E-step;
    # mini-batch k-means: of each batch, before its step).
    assert model.cost_history_.shape[0] == loop_iterations(model) + (0 if spec.kind == "clusterer" else 1)


# verbose=True shows the iterations: the iterative fits have it.
@pytest.mark.parametrize("spec", [spec for spec in SPECS if spec.iterative], ids=str)
def test_verbose_shows_a_progress_bar_with_the_cost_and_reads_nothing_more(case, spec, capsys):
    """verbose=True: a tqdm bar on stderr with the cost, from the reads the fit makes anyway."""
    quiet, _, seen_quiet = _fit(case, spec)
    capsys.readouterr()
    model, _, seen = _fit(case, spec, verbose=True)
    err = capsys.readouterr().err
    assert type(model).__name__ in err and "cost=" in err
    assert seen.reads == seen_quiet.reads and seen.uploads == seen_quiet.uploads
    assert model.n_iter_ == quiet.n_iter_


def test_warnings_name_the_users_line():
    """A ConvergenceWarning raised deep in an optimiser points at the caller's fit line."""
    X, y = BY_ID["linear-gd"].data()
    with pytest.warns(hml.ConvergenceWarning) as record:
        hml.LinearRegression(max_iter=3, tol=1e-12).fit(X, y)  # this line
    assert record[0].filename == __file__
    with pytest.warns(hml.ConvergenceWarning) as record:
        hml.LogisticRegression(max_iter=1).fit(*BY_ID["logistic-lbfgs"].data())
    assert record[0].filename == __file__
