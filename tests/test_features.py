"""hml.features against independent references: scikit-learn's PolynomialFeatures, direct formulas."""

from __future__ import annotations

from itertools import combinations_with_replacement

import numpy as np
import pytest

import hml
from hml.features import FeatureTransformer

sklearn_preprocessing = pytest.importorskip("sklearn.preprocessing")


@pytest.fixture
def data():
    rng = np.random.default_rng(42)
    return rng.normal(loc=[1.0, -3.0, 10.0], scale=[2.0, 0.5, 4.0], size=(40, 3))


def test_polynomial_features_match_scikit_learn_order_and_values(case, data):
    ft = FeatureTransformer(polynomial_degree=4, normalize=False)
    out = case.to_numpy(ft.fit_transform(case.asarray(data)))
    reference = sklearn_preprocessing.PolynomialFeatures(degree=4, include_bias=False).fit(data)
    np.testing.assert_allclose(out, reference.transform(data), rtol=case.rtol * 10)
    assert list(ft.get_feature_names_out()) == [name.replace(" ", " ") for name in reference.get_feature_names_out()]


def test_sinusoid_features_are_sin_k_x(case, data):
    ft = FeatureTransformer(sinusoid_degree=3, normalize=False)
    out = case.to_numpy(ft.fit_transform(case.asarray(data)))
    expected = np.concatenate([data] + [np.sin(k * data) for k in (1, 2, 3)], axis=1)
    np.testing.assert_allclose(out, expected, rtol=case.rtol * 10, atol=case.rtol)
    assert ft.get_feature_names_out()[3:6].tolist() == ["sin(1*x0)", "sin(1*x1)", "sin(1*x2)"]


def test_normalisation_uses_training_statistics_at_transform_time(case, data):
    """The original project's bug: test data normalised with its own statistics."""
    train, test = data[:30], data[30:] + 5.0
    ft = FeatureTransformer(polynomial_degree=2, sinusoid_degree=1).fit(case.asarray(train))
    out = case.to_numpy(ft.transform(case.asarray(test)))
    mu, sigma = train.mean(axis=0), train.std(axis=0)
    z_train, z_test = (train - mu) / sigma, (test - mu) / sigma

    def expand(z):
        mono = [np.prod(z[:, list(c)], axis=1) for c in combinations_with_replacement(range(3), 2)]
        return np.column_stack(mono + [np.sin(z[:, i]) for i in range(3)])

    g_train = expand(z_train)
    g_mu, g_sigma = g_train.mean(axis=0), g_train.std(axis=0)
    expected = np.concatenate([z_test, (expand(z_test) - g_mu) / g_sigma], axis=1)
    tol = 1e-9 if case.float64 else 2e-3
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    # The test rows are shifted, so their own statistics would have given mean 0: they must not.
    assert abs(out[:, 0].mean()) > 1.0


def test_training_output_is_standardised(data):
    out = FeatureTransformer(polynomial_degree=3, sinusoid_degree=2).fit_transform(data)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1.0, rtol=1e-12)


def test_constant_feature_is_safe(case):
    X = np.column_stack([np.full(10, 0.1), np.arange(10.0)])
    out = case.to_numpy(FeatureTransformer(polynomial_degree=2).fit_transform(case.asarray(X)))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:, 0], 0.0, atol=1e-6)


@pytest.mark.parametrize("rows", [10, 2000, 100_000])
@pytest.mark.parametrize("value", [0.1, 123.456, -7.77e300])
def test_a_constant_feature_is_constant_however_many_rows(rows, value):
    """NumPy sums a column's rows one after another, so its mean errs by up to m·ε·|μ|: a column of 2,000
    rows of 0.1 had σ = 3.5e-15, was scaled by its inverse, and a change of 1e-9 at predict time became
    2.8e5 (sklearn's StandardScaler gives σ = 1). At −7.77e300 (the scaled path) σ was 2.2e287."""
    X = np.column_stack([np.random.default_rng(0).normal(size=rows), np.full(rows, value)])
    model = FeatureTransformer().fit(X)
    assert model.scale_[1] == 1.0
    moved = model.transform(np.array([[0.0, value], [0.0, value * (1 + 1e-9)]]))
    np.testing.assert_allclose(moved[:, 1], [0.0, value * 1e-9], atol=abs(value) * 1e-12)
    line = hml.LinearRegression(solver="normal").fit(X, X[:, 0] * 2.0 + 1.0)
    np.testing.assert_allclose(line.predict(np.array([[1.0, value * (1 + 1e-9)]])), [3.0], rtol=1e-6)


def test_the_moments_are_exact_far_from_zero():
    """1e15 + N(0, 100): the corrected two-pass moments give σ to rounding (it was 99.538817 for 99.538786)."""
    from hml.numerics import standardisation

    noise = np.random.default_rng(0).normal(scale=100.0, size=5000)
    X = (1e15 + noise)[:, None]
    mean, scale = standardisation(X, np)
    exact = np.std(X[:, 0] - 1e15)  # the offset is exact in float64 at this size: the spread alone
    assert abs(scale[0] - exact) <= 1e-12 * exact


def test_identity_when_nothing_is_asked(data):
    ft = FeatureTransformer(normalize=False).fit(data)
    np.testing.assert_array_equal(ft.transform(data), data)
    assert ft.n_features_out_ == 3


def test_output_count_and_names_agree(data):
    ft = FeatureTransformer(polynomial_degree=3, sinusoid_degree=2).fit(data)
    assert ft.transform(data).shape[1] == ft.n_features_out_ == len(ft.get_feature_names_out())
    names = ft.get_feature_names_out(["gdp", "freedom", "trust"])
    assert names[0] == "gdp" and "gdp^2" in names and "gdp freedom" in names


def test_bad_parameters_and_inputs(data):
    with pytest.raises(ValueError, match="polynomial_degree must be an integer >= 0; got -1"):
        FeatureTransformer(polynomial_degree=-1).fit(data)
    with pytest.raises(ValueError, match="sinusoid_degree"):
        FeatureTransformer(sinusoid_degree=1.5).fit(data)
    with pytest.raises(ValueError, match="lower the degrees"):
        FeatureTransformer(polynomial_degree=30).fit(np.ones((3, 20)))
    ft = FeatureTransformer().fit(data)
    with pytest.raises(ValueError, match=r"X has 2 features, but FeatureTransformer is expecting 3 features"):
        ft.transform(data[:, :2])


def test_feature_names_out_follow_the_dataframe_fitted_on_as_scikit_learns():
    pd = pytest.importorskip("pandas")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    frame = pd.DataFrame({"age": [20.0, 35.0, 50.0, 65.0], "income": [1.0, 3.0, 2.0, 5.0]})
    ours = FeatureTransformer(polynomial_degree=2).fit(frame).get_feature_names_out()
    theirs = preprocessing.PolynomialFeatures(2, include_bias=False).fit(frame).get_feature_names_out()
    assert ours.tolist() == theirs.tolist() == ["age", "income", "age^2", "age income", "income^2"]
    assert FeatureTransformer().fit(frame.to_numpy()).get_feature_names_out().tolist() == ["x0", "x1"]


def test_names_given_must_be_those_fitted_on():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"gdp": [1.0, 2.0, 3.0], "freedom": [0.5, 0.1, 0.9]})
    model = FeatureTransformer(polynomial_degree=2).fit(frame)
    assert list(model.get_feature_names_out(["gdp", "freedom"])) == list(model.get_feature_names_out())
    with pytest.raises(ValueError, match=r"input_features \['p', 'q'\] is not equal to feature_names_in_"):
        model.get_feature_names_out(["p", "q"])


def test_set_output_pandas_names_the_columns_in_pipelines_too():
    pandas = pytest.importorskip("pandas")
    pipeline = pytest.importorskip("sklearn.pipeline")
    frame = pandas.DataFrame({"gdp": [1.0, 2.0, 3.0, 4.0], "freedom": [0.5, 0.1, 0.9, 0.3]}, index=[7, 8, 9, 10])
    model = FeatureTransformer(polynomial_degree=2).set_output(transform="pandas")
    out = model.fit_transform(frame)
    assert list(out.columns) == list(model.get_feature_names_out()) and list(out.index) == [7, 8, 9, 10]
    np.testing.assert_array_equal(out.to_numpy(), model.set_output(transform="default").transform(frame))
    chained = pipeline.make_pipeline(FeatureTransformer(polynomial_degree=2)).set_output(transform="pandas")
    assert list(chained.fit_transform(frame).columns) == ["gdp", "freedom", "gdp^2", "gdp freedom", "freedom^2"]
    with pytest.raises(ValueError, match=r"set_output\(transform='polars'\): FeatureTransformer gives"):
        model.set_output(transform="polars")


def test_monomials_that_overflow_are_refused_not_nan():
    """Degree 30 of a float32 column with a value 30 σ out: the two last columns were NaN, silently, and a
    LinearRegression on them blamed the data's size."""
    X = np.random.default_rng(0).normal(size=(1000, 1)).astype(np.float32)
    X[0, 0] = 30.0
    with pytest.raises(ValueError, match=r"polynomial_degree=30: some monomials .* overflow float32"):
        FeatureTransformer(polynomial_degree=30).fit(X)
    with pytest.raises(ValueError, match=r"polynomial_degree=30: some monomials"):
        hml.LinearRegression(polynomial_degree=30, max_iter=20).fit(X, X[:, 0])
    assert np.isfinite(FeatureTransformer(polynomial_degree=30, dtype="float64").fit_transform(X)).all()
