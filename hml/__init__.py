"""hml -- homemade machine learning.

The classic algorithms written once against the Python array API standard, run on
NumPy (CPU), CuPy (NVIDIA GPUs), PyTorch or Dask::

    import hml
    model = hml.LinearRegression(backend="cupy").fit(X, y)   # or: with hml.use_backend("torch"): ...
"""

__version__ = "0.1.0"

from hml import backends, datasets, features, metrics, model_selection, notebook, numerics, optimize, plotting
from hml.anomaly import GaussianAnomalyDetection
from hml.backends import (
    available_backends,
    get_backend,
    set_backend,
    synchronize,
    use_backend,
)
from hml.cluster import KMeans, MiniBatchKMeans
from hml.exceptions import (
    BackendUnavailableError,
    ChecksumMismatchError,
    ConvergenceWarning,
    DataConversionWarning,
    DatasetError,
    DatasetFormatError,
    DivergenceError,
    NotFittedError,
    PerformanceWarning,
)
from hml.features import FeatureTransformer
from hml.linear_model import LinearRegression, LogisticRegression
from hml.neural_network import MultilayerPerceptron, MultilayerPerceptronRegressor
from hml.persistence import load

__all__ = [
    "BackendUnavailableError",
    "ChecksumMismatchError",
    "ConvergenceWarning",
    "DataConversionWarning",
    "DatasetError",
    "DatasetFormatError",
    "DivergenceError",
    "FeatureTransformer",
    "GaussianAnomalyDetection",
    "KMeans",
    "LinearRegression",
    "LogisticRegression",
    "MiniBatchKMeans",
    "MultilayerPerceptron",
    "MultilayerPerceptronRegressor",
    "NotFittedError",
    "PerformanceWarning",
    "__version__",
    "available_backends",
    "backends",
    "datasets",
    "features",
    "get_backend",
    "load",
    "metrics",
    "numerics",
    "model_selection",
    "notebook",
    "optimize",
    "plotting",
    "set_backend",
    "synchronize",
    "use_backend",
]
