"""Saved models (``model.save``/``hml.load``) and moved ones (``model.to``): nothing lost, nothing run.

Round trips on every pair of CPU backends: the loaded model predicts bit-identically on the
backend it was saved from and within 1e-12 relative (float64) on the others. Every damaged
or tampered file gets a ValueError naming what is wrong; none runs code.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from estimators import BY_ID, SPECS

import hml
from hml import persistence

CPU_BACKENDS = [
    name
    for name in ("numpy", "array_api_strict", "torch", "dask")
    if name == "numpy" or __import__("importlib").util.find_spec(name.split(".")[0]) is not None
]


#: Class labels as strings: the host arrays of the format (saved as unicode, never as objects).
LABELS = np.array(["no", "yes", "maybe"])


def _fit(spec, backend: str):
    import warnings

    X, y = spec.data(n=120, d=3)
    if spec.target == "classes":
        y = LABELS[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.make(backend=backend).fit(X, y), X


def _host(values):
    values = values.compute() if hasattr(values, "compute") else values
    from hml import backends

    return backends.backend_of(values).to_numpy(values) if not isinstance(values, np.ndarray) else values


def _same(moved, expected):
    """Moved to another backend, floats agree to rounding and labels (ints, strings) exactly."""
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(moved, expected, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(moved, expected)


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("source", CPU_BACKENDS)
def test_round_trip_on_every_pair_of_cpu_backends(tmp_path, spec, source):
    model, X = _fit(spec, source)
    expected = {method: _host(getattr(model, method)(X)) for method in spec.outputs}
    path = model.save(tmp_path / "model.npz")
    again = hml.load(path)
    assert type(again) is type(model) and again._ctx_.backend.name == model._ctx_.backend.name
    for method in spec.outputs:
        np.testing.assert_array_equal(_host(getattr(again, method)(X)), expected[method])  # bit-identical
    assert again.get_params() == model.get_params()
    for target in CPU_BACKENDS:
        moved = hml.load(path, backend=target)
        assert moved._ctx_.backend.name == target
        for method in spec.outputs:
            _same(_host(getattr(moved, method)(X)), expected[method])
        assert moved.backend == target  # the explicit backend parameter follows the move


def test_the_list_is_the_registry_of_saved_model_classes():
    """Every class a file may name (hml's own estimators register as they are defined; the example
    estimator registers itself) is in tests/estimators.py's SPECS, and every class there is one of
    them: a new estimator cannot miss the cross-cutting tests, and none runs them unsaveable."""
    registered = set(persistence._estimator_classes().values())
    assert {spec.cls for spec in SPECS} == registered
    assert {cls.__name__ for cls in registered} == set(persistence._estimator_classes())


def test_saved_file_is_an_npz_of_plain_arrays_with_json(tmp_path):
    model, X = _fit(BY_ID["logistic-lbfgs"], "numpy")
    path = model.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        metadata = json.loads(npz["__hml__"].tobytes())
        assert all(npz[name].dtype != object for name in npz.files)
    assert metadata["format"] == "hml-model" and metadata["format_version"] == persistence.FORMAT_VERSION
    assert metadata["model"]["class"] == "LogisticRegression"
    assert metadata["versions"]["hml"] == hml.__version__ and metadata["versions"]["numpy"] == np.__version__
    assert metadata["model"]["state"]["classes_"]["on"] == "host"
    assert metadata["model"]["state"]["feature_transformer_"]["estimator"]["class"] == "FeatureTransformer"


def test_to_moves_the_state_and_leaves_the_original(tmp_path):
    model, X = _fit(BY_ID["mlp-gd"], "torch" if "torch" in CPU_BACKENDS else "array_api_strict")
    before = {name: _host(w).copy() for name, w in enumerate(model.coefs_)}
    moved = model.to("numpy")
    assert isinstance(moved.coefs_[0], np.ndarray) and moved.backend == "numpy"
    assert model.backend != "numpy" and not isinstance(model.coefs_[0], np.ndarray)
    for i, w in enumerate(model.coefs_):
        np.testing.assert_array_equal(_host(w), before[i])
    np.testing.assert_allclose(moved.predict_proba(X), _host(model.predict_proba(X)), rtol=1e-12, atol=1e-15)
    with pytest.warns(hml.ConvergenceWarning):  # the original's few iterations
        moved.fit(X, np.where(X[:, 0] > 0, "a", "b"))  # the copy refits where it lives now
    assert isinstance(moved.coefs_[0], np.ndarray)


def test_dataframe_feature_names_survive_the_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = BY_ID["linear-gd"].data(n=120, d=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = hml.LinearRegression(max_iter=30).fit(frame, y)
    again = hml.load(model.save(tmp_path / "m.npz"))
    assert again.feature_names_in_.dtype == object and list(again.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(again.predict(frame), model.predict(frame))
    with pytest.raises(ValueError, match="feature names should match"):
        again.predict(frame[["c", "b", "a"]])


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_saved_file_gets_the_mode_of_any_new_file(tmp_path):
    model, _ = _fit(BY_ID["linear-gd"], "numpy")
    umask = os.umask(0o027)
    try:
        path = model.save(tmp_path / "m.npz")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600


def test_unfitted_models_and_unsaveable_parameters_are_refused(tmp_path):
    with pytest.raises(hml.NotFittedError):
        hml.LinearRegression().save(tmp_path / "m.npz")
    model, _ = _fit(BY_ID["kmeans"], "numpy")
    model.set_params(random_state=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"random_state=Generator.*set_params\(random_state=\.\.\.\)"):
        model.save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


# -- damaged and tampered files ------------------------------------------------------------
def _rewrite(path, edit_metadata=None, edit_arrays=None):
    """Rewrite a saved file with its JSON and/or arrays changed, as an attacker could."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    metadata = json.loads(arrays.pop("__hml__").tobytes())
    if edit_metadata:
        edit_metadata(metadata)
    if edit_arrays:
        edit_arrays(arrays, metadata)
    arrays["__hml__"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


@pytest.fixture
def saved(tmp_path):
    model, X = _fit(BY_ID["logistic-lbfgs"], "numpy")
    return model.save(tmp_path / "m.npz")


def _coef_array(metadata):
    return metadata["model"]["state"]["coef_"]["array"]


TAMPERED = {
    "newer format": (
        lambda m: m.update(format_version=persistence.FORMAT_VERSION + 1),
        None,
        r"format version 2 .* reads up to version 1 -- upgrade hml",
    ),
    "another format": (lambda m: m.update(format="sklearn"), None, r"its format is 'sklearn'"),
    "unknown class": (lambda m: m["model"].update({"class": "os.system"}), None, r"unknown class 'os.system'"),
    "unknown parameter": (
        lambda m: m["model"]["params"].update(evil={"json": 1}),
        None,
        r"parameters are \[.*\], the file has",
    ),
    "dunder attribute": (
        lambda m: m["model"]["state"].update(__class__={"json": "x"}),
        None,
        r"'__class__' is not a fitted attribute's name",
    ),
    "method name": (
        lambda m: m["model"]["state"].update(predict={"json": 1}),
        None,
        r"'predict' is not a fitted attribute's name",
    ),
    "wrong shape": (None, lambda a, m: a.update({_coef_array(m): np.zeros((7, 7))}), r"arrays do not fit together"),
    "wrong dtype": (
        None,
        lambda a, m: a.update({_coef_array(m): a[_coef_array(m)].astype(np.float32)}),
        r"is float32, but the model computes in float64",
    ),
    "complex dtype": (
        None,
        lambda a, m: a.update({_coef_array(m): a[_coef_array(m)].astype(complex)}),
        r"dtype complex128, which the format does not hold",
    ),
    "missing array": (
        None,
        lambda a, m: a.pop(_coef_array(m)),
        r"refers to array 'a\d+', which the file does not hold",
    ),
    "extra array": (None, lambda a, m: a.update(extra=np.zeros(3)), r"arrays \['extra'\] are not part of the model"),
    "untagged value": (lambda m: m["model"]["state"].update(n_iter_=5), None, r"n_iter_ is not a tagged value"),
    "integer weights": (
        None,
        lambda a, m: a.update({_coef_array(m): a[_coef_array(m)].astype(np.int64)}),
        r"coef_ is int64, but the model computes in float64",
    ),
    "NaN weights": (
        None,
        lambda a, m: a.update({_coef_array(m): np.full_like(a[_coef_array(m)], np.nan)}),
        r"predict_proba of two rows of zeros is not finite",
    ),
    "a class more": (  # predicts on, with the labels shifted and no probability for one class
        None,
        lambda a, m: a.update({m["model"]["state"]["classes_"]["array"]: np.array(["a", "maybe", "no", "yes"])}),
        r"classes_ has shape \(4,\), the model has 3 outputs",
    ),
    "no backend": (lambda m: m["fitted_on"].pop("backend"), None, r"its 'fitted_on' names no backend"),
    "a list for a class": (
        lambda m: m["model"].update({"class": ["LogisticRegression"]}),
        None,
        r"unknown class \['LogisticRegression'\]",
    ),
    "a list for an array's name": (
        lambda m: m["model"]["state"]["coef_"].update(array=[_coef_array(m)]),
        None,
        r"coef_ refers to array \['a\d+'\], which the file does not hold",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_files_are_refused_with_what_is_wrong(saved, case):
    edit_metadata, edit_arrays, message = TAMPERED[case]
    _rewrite(saved, edit_metadata, edit_arrays)
    with pytest.raises(ValueError, match=message):
        hml.load(saved)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_a_smuggled_pickle_is_refused_and_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, _ = _fit(BY_ID["linear-gd"], "numpy")
    path = model.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["a0"] = np.array([_Boom()], dtype=object)  # np.savez pickles object arrays
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    with pytest.raises(ValueError, match="pickled data, which hml never writes and does not read"):
        hml.load(path)
    (tmp_path / "p.npz").write_bytes(pickle.dumps(_Boom()))  # a bare pickle under an .npz name
    with pytest.raises(ValueError, match="pickled data"):
        hml.load(tmp_path / "p.npz")
    assert not (tmp_path / "pwned.txt").exists()


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_and_garbage_files_are_refused(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="damaged or truncated"):
        hml.load(saved)
    saved.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="damaged or truncated"):
        hml.load(saved)


def test_an_npz_not_written_by_hml_is_refused(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="no '__hml__' entry"):
        hml.load(tmp_path / "x.npz")


# -- atomic writes ---------------------------------------------------------------------------
def test_a_full_disk_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    model, X = _fit(BY_ID["linear-gd"], "numpy")
    path = model.save(tmp_path / "m.npz")
    before = path.read_bytes()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"No space left on device; nothing was written"):
        model.save(path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_an_interrupted_save_leaves_no_partial_file(tmp_path, monkeypatch):
    model, _ = _fit(BY_ID["linear-gd"], "numpy")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_directory_gives_a_clear_error(tmp_path):
    model, _ = _fit(BY_ID["linear-gd"], "numpy")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OSError, match="cannot create a file in .* choose a writable directory"):
            model.save(tmp_path / "m.npz")
    finally:
        tmp_path.chmod(0o700)


def test_a_zip_member_bomb_is_not_special_cased_but_fails_cleanly(tmp_path):
    """A zip whose member is not an .npy at all: a clear 'damaged' error, not a NumPy traceback."""
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__hml__.npy", b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="damaged or truncated"):
        hml.load(path)


def test_devices_a_float64_model_loads_where_float64_exists_and_is_refused_elsewhere(tmp_path):
    pytest.importorskip("array_api_strict")
    X, y = BY_ID["linear-gd"].data(n=120, d=3)
    model = hml.LinearRegression(max_iter=30).fit(X, y)
    path = model.save(tmp_path / "m.npz")
    on_device1 = hml.load(path, backend="array_api_strict", device="device1")
    assert "device1" in str(on_device1.coef_.device)
    np.testing.assert_allclose(_host(on_device1.predict(X)), model.predict(X), rtol=1e-12)
    with pytest.raises(
        ValueError,
        match=r"computes in float64, which array_api_strict on device .*no_float64.* "
        r"does not support.*dtype='float32'",
    ):
        hml.load(path, backend="array_api_strict", device="no_float64")
    single = hml.LinearRegression(max_iter=30, dtype="float32").fit(X, y)
    moved = hml.load(single.save(tmp_path / "s.npz"), backend="array_api_strict", device="no_float64")
    np.testing.assert_allclose(_host(moved.predict(X)), single.predict(X), rtol=1e-6)


@pytest.mark.parametrize("labels", [(0, 1), ("no", "yes")])
def test_a_class_weight_dict_round_trips_with_its_label_types(tmp_path, labels):
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = np.where(X[:, 0] > 0, labels[1], labels[0])
    model = hml.LogisticRegression(class_weight={labels[0]: 3.0}).fit(X, y)
    again = hml.load(model.save(tmp_path / "m.npz"))
    assert again.class_weight == {labels[0]: 3.0} and type(next(iter(again.class_weight))) is type(labels[0])
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


def test_json_nested_past_the_recursion_limit_is_refused(saved):
    with np.load(saved, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["__hml__"] = np.frombuffer(b"[" * 100_000, dtype=np.uint8)
    with open(saved, "wb") as file:
        np.savez(file, **arrays)
    with pytest.raises(ValueError, match=r"'__hml__' entry is not JSON \(RecursionError"):
        hml.load(saved)


def test_cluster_labels_must_be_integers(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 2))
    path = hml.KMeans(3, n_init=1, random_state=0).fit(X).save(tmp_path / "k.npz")

    def floats(arrays, metadata):
        name = metadata["model"]["state"]["labels_"]["array"]
        arrays[name] = arrays[name].astype(np.float64)

    _rewrite(path, edit_arrays=floats)
    with pytest.raises(ValueError, match=r"KMeans.labels_ is float64, where it holds integers"):
        hml.load(path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_dtype_given_as_a_numpy_type_saves_and_moves(tmp_path, dtype):
    """``np.float32`` (a type, whose ``__array_namespace__`` makes it look like an array) is a dtype."""
    X, y = BY_ID["linear-gd"].data(n=60, d=3)
    model = hml.LinearRegression(max_iter=30, dtype=dtype).fit(X, y)
    again = hml.load(model.save(tmp_path / "m.npz"))
    assert again.get_params()["dtype"] == np.dtype(dtype).name and again.coef_.dtype == dtype
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(model.to("numpy").predict(X), model.predict(X))


def test_an_anomaly_detector_without_a_threshold_yet_loads(tmp_path):
    """Saved between fit and fit_threshold: it has no predict yet, and loads to call fit_threshold."""
    rng = np.random.default_rng(0)
    X, X_val = rng.normal(size=(60, 2)), rng.normal(size=(20, 2)) * [1.0, 4.0]
    model = hml.GaussianAnomalyDetection(contamination=None).fit(X)
    again = hml.load(model.save(tmp_path / "g.npz"))
    np.testing.assert_array_equal(again.score_samples(X), model.score_samples(X))
    y_val = (np.abs(X_val[:, 1]) > 4).astype(int)
    again.fit_threshold(X_val, y_val)
    model.fit_threshold(X_val, y_val)
    np.testing.assert_array_equal(again.predict(X_val), model.predict(X_val))


def test_saving_onto_a_directory_says_to_give_a_file_name(tmp_path):
    model, _ = _fit(BY_ID["linear-gd"], "numpy")
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError, match=r"nothing was written \(give a file name, not a directory\)"):
        model.save(tmp_path / "d")


def test_labels_as_numbers_in_an_object_column_or_float16_can_be_saved(tmp_path):
    """Series.astype(object) of integers and float16 labels fitted, then save refused them."""
    pandas = pytest.importorskip("pandas")
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    for labels in (pandas.Series(y).astype(object), y.astype(np.float16)):
        model = hml.LogisticRegression().fit(X, labels)
        loaded = hml.load(model.save(tmp_path / "model.npz"))
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        assert model.classes_.tolist() == [0, 1]
