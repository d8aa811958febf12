"""Data sets of the demos, downloaded on first use with a checksum, then cached.

Every loader returns a :class:`Dataset` of NumPy arrays (``X, y = load_iris()`` also
works). Files come from their public sources, or from ``$HML_DATA_MIRROR``; they are
cached under ``$HML_DATA_HOME`` (default: the platform's user cache, e.g.
``~/.cache/hml``). See ``data/README.md`` for the catalogue and ``hml data list``.

>>> from hml.datasets import load_mnist
>>> mnist = load_mnist("train")            # doctest: +SKIP
>>> X = mnist.data / 255.0                 # (60000, 784) uint8 pixels, scaled to [0, 1]
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hml.datasets._download import cache_status, data_home, fetch_file, read_file, urls_for
from hml.datasets._formats import parse_csv, parse_idx
from hml.datasets._registry import DATASETS, FILES, DataFile, DatasetInfo
from hml.exceptions import DatasetError, DatasetFormatError

__all__ = [
    "DATASETS",
    "DataFile",
    "Dataset",
    "DatasetInfo",
    "cache_status",
    "catalogue_markdown",
    "data_home",
    "fetch",
    "fetch_file",
    "load_fashion_mnist",
    "load_iris",
    "load_microchips",
    "load_mnist",
    "load_nonlinear_xy",
    "load_server_params",
    "load_world_happiness_2017",
    "parse_idx",
    "urls_for",
]

PathLike = str | os.PathLike[str] | None


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set as NumPy arrays.

    Attributes
    ----------
    data : ndarray, shape (n_samples, n_features)
        The features (``float64`` for the small sets, ``uint8`` pixels for the images).
    target : ndarray, shape (n_samples,)
        ``float64`` for regression, class codes for classification as ``np.intp``, NumPy's index
        type (int64, or int32 on 32-bit platforms and WebAssembly), so ``np.bincount(target)`` and
        indexing by it work everywhere.
    feature_names, target_names : tuple of str
        Column names of ``data``; class names indexed by the codes in ``target``
        (the name of the target column for regression).
    columns : dict of str to ndarray
        Every column of the original file under its original name, e.g. ``"Country"``.
    images : ndarray, shape (n_samples, 28, 28), or None
        The image sets' pixels as pictures (a view of ``data``).
    """

    name: str
    data: np.ndarray
    target: np.ndarray
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    columns: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    images: np.ndarray | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        """``X, y = dataset``."""
        return iter((self.data, self.target))

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, data={self.data.dtype}{list(self.data.shape)}, "
            f"target={self.target.dtype}{list(self.target.shape)}, target_names={self.target_names!r})"
        )


def fetch(name: str, data_home: PathLike = None) -> list[Path]:
    """Download the files of data set ``name`` (see ``DATASETS``) into the cache; return their paths.

    Every file is tried, so one that cannot be had does not keep the others out of
    the cache; the first failure is then raised, with the count of the others.
    """
    paths, errors = [], []
    for file in _info(name).files:
        try:
            paths.append(fetch_file(file, data_home))
        except DatasetError as exc:
            errors.append(exc)
    if errors:
        more = f"\n({len(errors) - 1} more file(s) of {name} failed too)" if len(errors) > 1 else ""
        raise type(errors[0])(f"{errors[0]}{more}")
    return paths


def _info(name: str) -> DatasetInfo:
    key = name.replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[key]


def _csv(key: str, data_home: PathLike, download: bool, columns: dict[str, type]) -> dict[str, np.ndarray]:
    return parse_csv(read_file(FILES[key], data_home, download=_checked(download)), key, columns)


def _checked(download: bool) -> bool:
    """``download`` as a bool: "no" or 0 are not a reading of True (any truthy value downloaded)."""
    if not isinstance(download, bool | np.bool_):
        raise TypeError(f"download must be True or False; got {download!r}")
    return bool(download)


def _table(
    name: str,
    columns: dict[str, np.ndarray],
    features: list[str],
    target: str,
    target_names: Sequence[str] | None = None,
) -> Dataset:
    data = np.stack([columns[f] for f in features], axis=1)
    return Dataset(
        name,
        data,
        columns[target],
        tuple(features),
        tuple(target_names or (target,)),
        columns=columns,
    )


_HAPPINESS_FACTORS = [
    "Economy..GDP.per.Capita.",
    "Family",
    "Health..Life.Expectancy.",
    "Freedom",
    "Generosity",
    "Trust..Government.Corruption.",
]


def load_world_happiness_2017(*, data_home: PathLike = None, download: bool = True) -> Dataset:
    """World Happiness Report 2017: 155 countries.

    ``data`` holds the six explanatory factors (GDP first; the original's univariate demo
    uses ``data[:, :1]``, its multivariate one GDP and ``"Freedom"``), ``target`` the
    happiness score. ``columns`` has all twelve columns, ``"Country"`` included.
    ``"Dystopia.Residual"`` is left out of ``data``: with it the six factors add up to
    the score exactly.
    """
    numeric = [
        "Happiness.Rank",
        "Happiness.Score",
        "Whisker.high",
        "Whisker.low",
        *_HAPPINESS_FACTORS,
        "Dystopia.Residual",
    ]
    columns = _csv(
        "homemade/world-happiness-report-2017.csv",
        data_home,
        download,
        {"Country": str, **dict.fromkeys(numeric, float)},
    )
    columns["Happiness.Rank"] = columns["Happiness.Rank"].astype(np.int64)
    return _table("world_happiness_2017", columns, _HAPPINESS_FACTORS, "Happiness.Score")


def load_iris(*, data_home: PathLike = None, download: bool = True) -> Dataset:
    """Iris: 150 flowers, 4 measurements; ``target`` codes 0, 1, 2 for ``target_names``
    (``"SETOSA"``, ``"VERSICOLOR"``, ``"VIRGINICA"``); ``columns["class"]`` holds the names as strings."""
    features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    columns = _csv("homemade/iris.csv", data_home, download, {**dict.fromkeys(features, float), "class": str})
    names, codes = np.unique(columns["class"], return_inverse=True)
    columns["target"] = codes.astype(np.intp)
    return _table("iris", columns, features, "target", [str(n) for n in names])


def load_microchips(*, data_home: PathLike = None, download: bool = True) -> Dataset:
    """Microchip tests: 118 chips, two test results (``param_1``, ``param_2``); ``target`` 1 = valid."""
    columns = _csv(
        "homemade/microchips-tests.csv", data_home, download, {"param_1": float, "param_2": float, "validity": int}
    )
    return _table("microchips", columns, ["param_1", "param_2"], "validity", ["invalid", "valid"])


def load_nonlinear_xy(*, data_home: PathLike = None, download: bool = True) -> Dataset:
    """250 points ``(x, y)`` of a non-linear curve: ``data`` is ``x`` as one column, ``target`` is ``y``."""
    columns = _csv("homemade/non-linear-regression-x-y.csv", data_home, download, {"x": float, "y": float})
    return _table("nonlinear_xy", columns, ["x"], "y")


def load_server_params(*, data_home: PathLike = None, download: bool = True) -> Dataset:
    """Server operational parameters: latency (ms) and throughput (mb/s) of 307 servers; ``target`` 1 = anomaly."""
    features = ["Latency (ms)", "Throughput (mb/s)"]
    columns = _csv(
        "homemade/server-operational-params.csv",
        data_home,
        download,
        {**dict.fromkeys(features, float), "Anomaly": int},
    )
    return _table("server_params", columns, features, "Anomaly", ["normal", "anomaly"])


_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_PIXEL_NAMES = tuple(f"pixel_{row}_{col}" for row in range(28) for col in range(28))


def _load_idx_pair(
    name: str, folder: str, split: str, data_home: PathLike, download: bool, target_names: Sequence[str]
) -> Dataset:
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"split={split!r} is not a split of {name}; use 'train' or 'test'")
    prefix = _SPLIT_PREFIX[split]
    images_key, labels_key = f"{folder}/{prefix}-images-idx3-ubyte.gz", f"{folder}/{prefix}-labels-idx1-ubyte.gz"
    download = _checked(download)
    labels = parse_idx(read_file(FILES[labels_key], data_home, download=download), labels_key)
    images = parse_idx(read_file(FILES[images_key], data_home, download=download), images_key)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DatasetFormatError(
            f"{images_key} has shape {images.shape} and {labels_key} shape {labels.shape}; "
            "expected (n, rows, cols) images and n labels"
        )
    if labels.size and int(labels.max()) >= len(target_names):
        raise DatasetFormatError(f"{labels_key}: label {int(labels.max())} is not one of 0..{len(target_names) - 1}")
    n, rows, cols = images.shape
    pixels = (
        _PIXEL_NAMES if (rows, cols) == (28, 28) else tuple(f"pixel_{r}_{c}" for r in range(rows) for c in range(cols))
    )
    return Dataset(
        f"{name}_{split}",
        images.reshape(n, rows * cols),
        labels.astype(np.intp),
        pixels,
        tuple(target_names),
        images=images,
    )


def load_mnist(split: str = "train", *, data_home: PathLike = None, download: bool = True) -> Dataset:
    """MNIST digits: ``split="train"`` (60,000) or ``"test"`` (10,000).

    ``data`` is ``(n, 784)`` ``uint8`` pixels (0 = background, 255 = ink), row by row;
    ``images`` the same memory as ``(n, 28, 28)``; ``target`` the digit.
    """
    return _load_idx_pair("mnist", "mnist", split, data_home, download, [str(d) for d in range(10)])


FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def load_fashion_mnist(split: str = "train", *, data_home: PathLike = None, download: bool = True) -> Dataset:
    """Fashion-MNIST: ``split="train"`` (60,000) or ``"test"`` (10,000) 28×28 clothing images.

    Same layout as :func:`load_mnist`; ``target_names`` are the ten garment classes.
    """
    return _load_idx_pair("fashion_mnist", "fashion-mnist", split, data_home, download, FASHION_MNIST_CLASSES)


def human_size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


CATALOGUE_START = "<!-- catalogue: generated by `hml data catalogue`; a test checks it matches hml/datasets -->"
CATALOGUE_END = "<!-- end of catalogue -->"


def catalogue_markdown() -> str:
    """The catalogue table of ``data/README.md``, generated from the registry."""
    lines = [
        CATALOGUE_START,
        "",
        "| name | loader | what it is | source | licence | download | used by |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for info in DATASETS.values():
        lines.append(
            f"| `{info.name}` | `hml.datasets.{info.loader}` | **{info.title}**: {info.description} | {info.source} "
            f"| {info.licence} | {human_size(info.size)} | {info.notebook} |"
        )
    lines += [
        "",
        "Files and checksums (SHA-256 of the content, decompressed for `.gz`; MD5 of the archive where published):",
        "",
    ]
    lines += ["| file | size | SHA-256 of content | MD5 of archive |", "| --- | --- | --- | --- |"]
    for info in DATASETS.values():
        for f in info.files:
            lines.append(f"| `{f.key}` | {f.size:,} B | `{f.sha256 or '—'}` | `{f.archive_md5 or '—'}` |")
    lines += ["", CATALOGUE_END]
    return "\n".join(lines) + "\n"
