"""Every bad input the foundation issue lists gets a clear error and leaves the estimator unchanged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from estimators import SPECS, classes

import hml


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    return X, X @ np.array([1.0, 2.0, 3.0])


def _fitted(data):
    return hml.LinearRegression(solver="normal").fit(*data)


def _assert_unchanged(model, before):
    after = {k: v for k, v in vars(model).items()}
    assert after.keys() == before.keys()
    for key, value in before.items():
        if key.endswith("_") and hasattr(value, "shape"):
            np.testing.assert_array_equal(after[key], value)
        else:
            assert after[key] is value


BAD_X = [
    (
        "nan",
        lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X),
        ValueError,
        r"X contains 1 NaN or infinite value\(s\) \(the first at row 2, column 1\)",
    ),
    (
        "inf",
        lambda X: np.where(np.arange(X.size).reshape(X.shape) == 0, np.inf, X),
        ValueError,
        r"X contains 1 NaN or infinite.*row 0, column 0",
    ),
    (
        "1-D",
        lambda X: X[:, 0],
        ValueError,
        r"X must be a 2-D array.*got a 1-D array of shape \(20,\).*reshape\(-1, 1\)",
    ),
    ("3-D", lambda X: X[:, :, None], ValueError, r"X must be a 2-D array.*got a 3-D array"),
    (
        "zero rows",
        lambda X: X[:0],
        ValueError,
        r"X has 0 sample\(s\) \(shape=\(0, 3\)\) while a minimum of 1 is required",
    ),
    ("strings", lambda X: X.astype(str), TypeError, r"X must hold real numbers; got dtype <U.*encode categories"),
    ("ragged", lambda X: [[1.0, 2.0], [3.0]], ValueError, r"X could not be read as a numeric array"),
    ("complex", lambda X: X.astype(complex), ValueError, r"Complex data not supported: X has dtype complex128"),
    (
        "sparse",
        lambda X: __import__("scipy.sparse").sparse.csr_array(X),
        TypeError,
        r"X is a sparse matrix \(csr_array\); sparse input is not supported.*X.toarray\(\)",
    ),
    (
        "objects",
        lambda X: np.array([[{"a": 1}] * X.shape[1]] * X.shape[0], dtype=object),
        TypeError,
        r"X holds values that are not numbers \(float\(\) argument must be a string or a.*number",
    ),
    ("None", lambda X: None, ValueError, r"X is None"),
]


@pytest.mark.parametrize("name,corrupt,error,message", BAD_X, ids=[b[0] for b in BAD_X])
def test_bad_X_in_fit(data, name, corrupt, error, message):
    X, y = data
    model = hml.LinearRegression()
    with pytest.raises(error, match=message):
        model.fit(corrupt(X), y)
    assert vars(model) == vars(hml.LinearRegression())


@pytest.mark.parametrize("name,corrupt,error,message", BAD_X, ids=[b[0] for b in BAD_X])
def test_bad_X_in_predict_leaves_the_fit_unchanged(data, name, corrupt, error, message):
    model = _fitted(data)
    before = dict(vars(model))
    with pytest.raises(error, match=message):
        model.predict(corrupt(data[0]))
    _assert_unchanged(model, before)


def test_bad_X_is_caught_on_every_backend(case, data):
    X, y = data
    X = X.copy()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN.*row 3, column 2"):
        hml.LinearRegression().fit(case.asarray(X), case.asarray(y))


@pytest.mark.parametrize(
    "bad_y,message",
    [
        (np.array([np.nan] + [1.0] * 19), r"y contains 1 NaN or infinite value"),
        (np.ones(19), r"y has 19 values but X has 20 rows"),
        (np.ones((20, 2)), r"y must be 1-D .* got shape \(20, 2\)"),
    ],
)
def test_bad_y(data, bad_y, message):
    model = hml.LinearRegression()
    with pytest.raises(ValueError, match=message):
        model.fit(data[0], bad_y)
    assert not hasattr(model, "coef_")


def test_column_y_is_accepted_with_a_warning(data):
    """A column y is used as y.ravel(), with scikit-learn's DataConversionWarning (on this line)."""
    X, y = data
    with pytest.warns(hml.DataConversionWarning, match=r"A column-vector y was passed when a 1d array") as record:
        column = hml.LinearRegression(solver="normal").fit(X, y[:, None])
    assert record[0].filename == __file__
    np.testing.assert_allclose(column.coef_, hml.LinearRegression(solver="normal").fit(X, y).coef_)
    labels = (y > np.median(y)).astype(int)
    with pytest.warns(hml.DataConversionWarning):
        hml.LogisticRegression().fit(X, labels[:, None])


@pytest.mark.parametrize(
    "params,message",
    [
        (dict(max_iter=-1), r"max_iter must be an integer >= 1; got -1"),
        (dict(max_iter=2.5), r"max_iter must be an integer >= 1; got 2.5"),
        (dict(learning_rate=0.0), r"learning_rate must be 'auto' or a finite number > 0; got 0.0"),
        (dict(learning_rate=-0.1), r"learning_rate must be 'auto' or a finite number > 0; got -0.1"),
        (dict(learning_rate=float("nan")), r"learning_rate must be 'auto' or a finite number > 0; got nan"),
        (dict(l2=-1.0), r"l2 must be a finite number >= 0; got -1.0"),
        (dict(tol=-1e-3), r"tol must be a finite number >= 0 or None"),
        (dict(solver="lstsq"), r"solver must be one of \['gd', 'normal'\]; got 'lstsq'"),
        (dict(polynomial_degree=-2), r"polynomial_degree must be an integer >= 0; got -2"),
        (dict(normalize="yes"), r"normalize must be True or False"),
        (dict(dtype="float16"), r"dtype must be 'float32', 'float64' or None; got 'float16'"),
    ],
)
def test_bad_hyperparameters_are_named(data, params, message):
    model = hml.LinearRegression(**params)
    with pytest.raises(ValueError, match=message):
        model.fit(*data)
    assert not hasattr(model, "coef_")


def test_bad_hyperparameters_leave_a_fitted_model_unchanged(data):
    model = _fitted(data)
    before = dict(vars(model))
    model.set_params(learning_rate=-1.0, solver="gd")
    with pytest.raises(ValueError, match="learning_rate"):
        model.fit(*data)
    before.update(learning_rate=-1.0, solver="gd")
    _assert_unchanged(model, before)


def test_predict_before_fit(data):
    for method, args in [("predict", (data[0],)), ("score", data)]:
        with pytest.raises(hml.NotFittedError, match=r"this LinearRegression is not fitted yet; call fit"):
            getattr(hml.LinearRegression(), method)(*args)
    # Both conventions users rely on: NotFittedError is a ValueError and an AttributeError.
    assert issubclass(hml.NotFittedError, ValueError) and issubclass(hml.NotFittedError, AttributeError)


def test_predict_with_a_different_number_of_features(data):
    model = _fitted(data)
    with pytest.raises(ValueError, match=r"X has 2 features, but \w+ is expecting 3 features as input"):
        model.predict(data[0][:, :2])


def test_unknown_backend_leaves_the_estimator_unchanged(data):
    model = _fitted(data)
    before = dict(vars(model))
    model.set_params(backend="tensorflow")
    with pytest.raises(hml.BackendUnavailableError, match=r"unknown backend 'tensorflow'; choose one of"):
        model.fit(*data)
    before["backend"] = "tensorflow"
    _assert_unchanged(model, before)


@pytest.mark.parametrize("estimator", [hml.LogisticRegression, hml.MultilayerPerceptron])
def test_a_classifier_refuses_a_continuous_target(estimator):
    """100 distinct floats are a regression target, not 100 classes: refused as scikit-learn does."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 2)), rng.normal(size=100)
    with pytest.raises(ValueError, match=r"Unknown label type: continuous.*use a regressor \(hml.LinearRegression\)"):
        estimator().fit(X, y)
    estimator(max_iter=5).fit(X, np.round(np.abs(y)) % 2)  # whole-number floats are class labels


def test_a_missing_label_is_named():
    """None, NaN (pandas' missing value in an object column) and pandas.NA: a NaN label was a class of its own
    and broke the sort of the labels (22 classes from 1, 2 and NaN; accuracy_score(y, y) = 0.75)."""
    pandas = pytest.importorskip("pandas")
    X = np.random.default_rng(0).normal(size=(6, 2))
    for missing in (None, np.nan, float("nan"), pandas.NA, pandas.NaT):
        y = np.array(["a", "b", missing, "a", "b", "a"], dtype=object)
        with pytest.raises(
            ValueError, match=r"y contains 1 missing label\(s\), None, NaN or pandas.NA \(the first at index 2\)"
        ):
            hml.LogisticRegression().fit(X, y)
    y = pandas.Series([1, 2, None, 1] * 10).astype(object)
    for call in (
        lambda: hml.LogisticRegression().fit(np.zeros((40, 2)), y),
        lambda: hml.metrics.accuracy_score(y, y),
        lambda: hml.metrics.confusion_matrix(y, y),
        lambda: hml.metrics.adjusted_rand_score(y, y),
        lambda: hml.model_selection.train_test_split(np.zeros((40, 2)), stratify=y),
    ):
        with pytest.raises(ValueError, match=r"missing label\(s\).*\(the first at index 2\)"):
            call()
    flags = pandas.Series(pandas.array([True, False, None, True] * 10, dtype="boolean"))
    with pytest.raises(ValueError, match=r"y_true contains 10 missing label\(s\)"):
        hml.metrics.accuracy_score(flags, flags)


def test_labels_that_do_not_compare_are_named_with_their_types():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    model = hml.MultilayerPerceptron(solver="adam", max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match=r"y holds labels of types \['str'\], which do not compare with the fitted"):
        model.partial_fit(X, np.where(y, "yes", "no").astype(object))
    with pytest.raises(ValueError, match=r"labels_true mixes labels of types \['int', 'str'\]"):
        hml.metrics.adjusted_rand_score(np.array([1, "a"] * 20, dtype=object), y)
    with pytest.raises(ValueError, match=r"y has only the class 'spam'"):
        hml.LogisticRegression().fit(X[:10], np.array(["spam"] * 10, dtype=object))
    with pytest.raises(ValueError, match=r"stratify: the label 'ham' has only 1 row"):
        hml.model_selection.train_test_split(X[:10], stratify=np.array(["spam"] * 9 + ["ham"], dtype=object))
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match=r"y is a sparse matrix \(csr_matrix\); labels are dense: pass y.toarray"):
        hml.LogisticRegression().fit(X, sparse.csr_matrix(y.reshape(-1, 1)))
    with pytest.raises(ValueError, match=r"y mixes labels of types \['int', 'str'\]"):
        hml.LogisticRegression().fit(X[:6], np.array([1, "a", 1, "a", 1, "a"], dtype=object))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_dataframe_columns_are_remembered_and_checked(spec):
    """feature_names_in_ from a DataFrame's columns; reordered or renamed columns at predict are refused."""
    pd = pytest.importorskip("pandas")
    X, y = spec.data(n=40, d=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        model = spec.make().fit(frame, y)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c"])
    for method in (getattr(model, name) for name in spec.outputs):
        method(frame)  # the same columns: accepted
        with pytest.raises(
            ValueError, match=r"The feature names should match.*another order.*X\[model.feature_names_in_\]"
        ):
            method(frame[["c", "a", "b"]])
        renamed = frame.rename(columns={"c": "d"})
        with pytest.raises(ValueError, match=r"unseen at fit time: \['d'\].*now missing: \['c'\]"):
            method(renamed)
        with pytest.warns(
            UserWarning, match="X does not have valid feature names, but .* was fitted with feature names"
        ):
            method(frame.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        model.fit(frame.to_numpy(), y)  # a refit on an array forgets the names
    assert not hasattr(model, "feature_names_in_")
    for method in (getattr(model, name) for name in spec.outputs):
        with pytest.warns(UserWarning, match="X has feature names, but .* was fitted without feature names"):
            method(frame)


@pytest.mark.parametrize("estimator", classes(), ids=lambda cls: cls.__name__)
def test_every_parameter_is_declared_once_and_the_rest_follows(estimator):
    """One declaration per parameter (name, default, rule, doc) is the source of __init__'s signature,
    get_params, the validation at fit and the docstring's Parameters section -- in the same order."""
    import inspect

    from hml._params import validate

    declared = estimator.__params__
    signature = inspect.signature(estimator)
    assert list(signature.parameters) == list(declared) == estimator._param_names()
    for name, declaration in declared.items():
        assert signature.parameters[name].default is declaration.default
        assert getattr(estimator, name) is declaration.default
    assert list(estimator().get_params()) == list(declared)
    assert list(vars(validate(estimator()))) == list(declared)  # the defaults pass their own rules
    section = inspect.getdoc(estimator).split("Parameters\n----------\n", 1)[1].split("\n\n", 1)[0]
    documented = [line.split(" : ")[0] for line in section.splitlines() if not line.startswith(" ")]
    assert documented == list(declared)
    for name, declaration in declared.items():
        assert f"{name} : {declaration.rule.describe()}, default={declaration.default!r}" in section


def _as_numpy_scalar(value):
    """A Python bool, int, float or string as NumPy's own (np.bool_, np.int64, np.float64, np.str_);
    anything else (None, arrays) as it is."""
    if isinstance(value, str):
        return np.str_(value)
    return np.asarray(value)[()] if isinstance(value, (bool, int, float)) else value


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_a_fit_validates_its_parameters_once_and_uses_the_validated_values(spec, monkeypatch):
    """Validation runs once per fit, in the wrapper that makes fits all-or-nothing (fit_predict and
    fit_transform included), and the fit computes with what it returned: NumPy scalars and strings
    -- here every parameter that is a scalar, the spec's and the defaults -- which the rules turn
    into Python ones, fit as their Python equals do."""
    import hml._params
    import hml.base

    calls = []
    original = hml._params.validate

    def counting(model):
        calls.append(type(model).__name__)
        return original(model)

    monkeypatch.setattr(hml.base, "validate", counting)
    X, y = spec.data(n=30, d=2)
    numpy_params = {name: _as_numpy_scalar(value) for name, value in spec.make().get_params().items()}
    assert any(isinstance(value, np.generic) for value in numpy_params.values())
    name = spec.cls.__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        model = spec.cls(**numpy_params).fit(X, y)
        assert calls == [name]
        reference = spec.make().fit(X, y)
        for method in ("fit_predict", "fit_transform"):
            if hasattr(model, method):
                calls.clear()
                getattr(model, method)(X)
                assert calls == [name], method
    for method in spec.outputs:
        np.testing.assert_array_equal(getattr(model, method)(X), getattr(reference, method)(X))


@pytest.mark.parametrize(
    "estimator, params, message",
    [
        (hml.KMeans, {"n_init": 0}, r"n_init must be 'auto' or an integer >= 1; got 0"),
        (
            hml.KMeans,
            {"init": "kmeans++"},
            r"init must be one of \['k-means\+\+', 'random'\] or an array of starting centroids; got 'kmeans\+\+'",
        ),
        (hml.KMeans, {"working_memory": 0}, r"working_memory must be an integer >= 1 or None; got 0"),
        (hml.MultilayerPerceptron, {"momentum": 1.0}, r"momentum must be in \[0, 1\); got 1.0"),
        (hml.GaussianAnomalyDetection, {"contamination": 0.7}, r"contamination must be in \(0, 0.5\] or None; got 0.7"),
        # A string for a number (scikit-learn's contamination="auto", a number read from a file as text) is
        # refused in the same words, not by a TypeError from comparing it with 0.
        (
            hml.GaussianAnomalyDetection,
            {"contamination": "auto"},
            r"must be a number in \(0, 0.5\] or None; got 'auto'",
        ),
        (hml.LinearRegression, {"tol": "1e-6"}, r"tol must be a finite number >= 0 or None; got '1e-6'"),
        (
            hml.LinearRegression,
            {"learning_rate": "0.1"},
            r"learning_rate must be 'auto' or a finite number > 0; got '0.1'",
        ),
        (hml.LinearRegression, {"l2": None}, r"l2 must be a finite number >= 0; got None"),
        (hml.MultilayerPerceptron, {"momentum": -0.5}, r"momentum must be a number in \[0, 1\); got -0.5"),
        (hml.LinearRegression, {"verbose": "yes"}, r"verbose must be True or False; got 'yes'"),
        (hml.LogisticRegression, {"normalize": 1}, r"normalize must be True or False; got 1"),
        # An array is shown by its shape, not its repr (which Either built for every option tried).
        (
            hml.MiniBatchKMeans,
            {"n_clusters": np.zeros((300, 2))},
            r"n_clusters must be an integer >= 1; got an array of shape \(300, 2\) and dtype float64$",
        ),
    ],
)
def test_constraint_messages_name_the_parameter_the_value_and_the_rule(estimator, params, message):
    X = np.random.default_rng(0).normal(size=(30, 2))
    y = np.arange(30) % 2
    with pytest.raises(ValueError, match=message):
        estimator(**params).fit(X, y)


@pytest.mark.parametrize("class_weight", ["balanced", {0: 2.0}])
def test_a_wrong_length_sample_weight_beside_class_weight_is_named(class_weight):
    """With "balanced" the class totals were counted with the weights first: NumPy's "The weights and list don't
    have the same length" instead of the check that names sample_weight."""
    X, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 2
    for estimator in (hml.LogisticRegression, hml.MultilayerPerceptron):
        with pytest.raises(
            ValueError, match=r"sample_weight must be 1-D with one weight per row of X \(30\); got shape \(29,\)"
        ):
            estimator(class_weight=class_weight).fit(X, y, sample_weight=np.ones(29))


def test_a_sparse_torch_tensor_gets_the_sparse_message(data):
    torch = pytest.importorskip("torch")
    X, y = data
    with pytest.raises(TypeError, match=r"layout torch.sparse_coo is sparse; sparse input is not supported.*to_dense"):
        hml.LinearRegression().fit(torch.asarray(X).to_sparse(), y)


def test_torch_data_that_requires_grad_is_data_the_fit_leaves_no_graph(data):
    """Fitted on tensors with requires_grad=True, the model used to keep an autograd graph of its fit:
    its attributes required grad, predictions on plain tensors did too, and copy.deepcopy failed."""
    import copy

    torch = pytest.importorskip("torch")
    X, y = data
    X_grad, y_grad = torch.asarray(X).requires_grad_(), torch.asarray(y).requires_grad_()
    for model in (
        hml.LinearRegression(),
        hml.KMeans(2, n_init=1, random_state=0),
        hml.MultilayerPerceptronRegressor(max_iter=3),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hml.ConvergenceWarning)
            model.fit(X_grad, None if isinstance(model, hml.KMeans) else y_grad)
        tensors = [v for v in vars(model).values() if isinstance(v, torch.Tensor)]
        tensors += [
            t for v in vars(model).values() if isinstance(v, (list, tuple)) for t in v if isinstance(t, torch.Tensor)
        ]
        assert tensors and not any(t.requires_grad for t in tensors), type(model).__name__
        assert not model.predict(torch.asarray(X)).requires_grad
        copy.deepcopy(model)
    assert X_grad.grad is None and X_grad.requires_grad  # the user's tensor is left as it was


def test_masked_arrays_frames_with_pandas_na_and_tiny_weights():
    """A masked array with nothing masked is its data (NumPy's masked arithmetic broke the fits' broadcasting);
    with a mask, it is refused (the metrics followed the mask: MSE 0.333 where scikit-learn's is 25.25). pandas.NA
    beside float columns is NaN, named at its cell. Weights of 1e-320 are weights all alike (m/Σs overflowed)."""
    pandas = pytest.importorskip("pandas")
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5]
    masked = np.ma.masked_array(X, mask=False)
    np.testing.assert_allclose(
        hml.LinearRegression().fit(masked, y).predict(X), hml.LinearRegression().fit(X, y).predict(X)
    )
    assert hml.KMeans(2, random_state=0).fit(X).predict(masked).shape == (40,)
    with pytest.raises(ValueError, match=r"y_true is a masked array with 1 masked value\(s\).*y_true.filled"):
        hml.metrics.mean_squared_error(np.ma.masked_array([0.0, 1, 2, 3], mask=[1, 0, 0, 0]), [10.0, 1, 2, 4])
    frame = pandas.DataFrame(
        {"a": np.arange(10.0), "b": pandas.array([1, 2, 3, None, 5, 6, 7, 8, 9, 10], dtype="Int64")}
    )
    with pytest.raises(ValueError, match=r"X contains 1 NaN or infinite value\(s\) \(the first at row 3, column 1\)"):
        hml.LinearRegression().fit(frame, np.arange(10.0))
    tiny = hml.FeatureTransformer().fit(X, sample_weight=np.full(40, 1e-320))
    np.testing.assert_allclose(tiny.transform(X), hml.FeatureTransformer().fit(X).transform(X), rtol=1e-12)
    weighted = hml.LinearRegression().fit(X, y, sample_weight=np.full(40, 1e-320))
    np.testing.assert_allclose(weighted.predict(X), hml.LinearRegression().fit(X, y).predict(X), rtol=1e-9)


def test_a_huge_polynomial_degree_is_refused_at_once():
    with pytest.raises(ValueError, match=r"polynomial_degree=1000000000 and sinusoid_degree=0 on 3 features make"):
        hml.FeatureTransformer(polynomial_degree=10**9).fit(np.ones((4, 3)) * np.arange(4.0)[:, None])
    for degree in range(0, 7):
        ft = hml.FeatureTransformer(polynomial_degree=degree, normalize=False).fit(np.arange(12.0).reshape(4, 3))
        assert ft.n_features_out_ == len(ft.get_feature_names_out())


def test_review_leftovers_labels_weights_and_threads(monkeypatch):
    """Integers past 2⁶³ in an object column stay exact classes (float64 merged two); an infinite label in an
    object column is refused as in a float one; masked labels are refused as masked X is; weights whose sum
    overflows are refused (n/Σs was 0: coef_ [0, 0]); HML_NUM_THREADS='²' is named (isdigit accepts it)."""
    pandas = pytest.importorskip("pandas")
    X = np.random.default_rng(0).normal(size=(30, 2))
    big = pandas.Series([2**63, 2**63 + 1, 5] * 10, dtype=object)
    model = hml.LogisticRegression().fit(X, big)
    assert model.classes_.tolist() == [5, 2**63, 2**63 + 1]
    with pytest.raises(ValueError, match=r"y contains NaN or infinite labels"):
        hml.LogisticRegression().fit(X, pandas.Series([1, 2, float("inf")] * 10, dtype=object))
    with pytest.raises(ValueError, match=r"y is a masked array with masked labels"):
        hml.LogisticRegression().fit(X, np.ma.masked_array([0, 1, 1] * 10, mask=[1] + [0] * 29))
    with pytest.raises(ValueError, match=r"sample_weight sums past the largest float64.*divide the weights"):
        hml.LinearRegression().fit(X, X[:, 0], sample_weight=np.full(30, 1e308))
    from hml.backends import _rows

    monkeypatch.setenv("HML_NUM_THREADS", "²")
    with pytest.raises(ValueError, match=r"HML_NUM_THREADS='²': give a whole number"):
        _rows._threads()
