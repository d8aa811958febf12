"""The registry: every file hml can download, where from, and its checksum.

One entry per file, one :class:`DatasetInfo` per data set. The catalogue in
``data/README.md`` is generated from this module (``hml data catalogue``) and a test
checks the two agree, so the documentation cannot drift from what the loaders fetch.

Checksums
---------
``sha256`` is taken over a file's *content*: the decompressed bytes of a ``.gz``.
Unlike the hash of the archive it survives re-compression, so one value holds for
every mirror. ``archive_md5`` is the hash of the downloaded bytes, known only where
the publisher printed it (the Fashion-MNIST images have nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATASETS", "DataFile", "DatasetInfo", "FILES"]

_HOMEMADE_COMMIT = "7510d8e0648077f4acaac6080804c1f9dd588e91"
_HOMEMADE = f"https://raw.githubusercontent.com/trekhleb/homemade-machine-learning/{_HOMEMADE_COMMIT}/data/"
_MNIST = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
_FASHION = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)


@dataclass(frozen=True)
class DataFile:
    """One downloadable file.

    ``folder`` is the data set's folder (in the cache and in a mirror), ``filename``
    the name at the source, ``urls`` the sources tried in order, ``size`` the bytes
    to download (for progress and ``hml data list``).
    """

    folder: str
    filename: str
    urls: tuple[str, ...]
    size: int
    sha256: str | None = None
    archive_md5: str | None = None

    def __post_init__(self) -> None:
        if self.sha256 is None and self.archive_md5 is None:
            raise ValueError(f"{self.key}: a registry entry needs a checksum")

    @property
    def key(self) -> str:
        return f"{self.folder}/{self.filename}"

    @property
    def gzip(self) -> bool:
        return self.filename.endswith(".gz")


@dataclass(frozen=True)
class DatasetInfo:
    """One data set of the catalogue: what it is, where it comes from, who uses it."""

    name: str
    loader: str
    title: str
    description: str
    source: str
    licence: str
    notebook: str
    files: tuple[DataFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def _homemade(filename: str, size: int, sha256: str) -> DataFile:
    return DataFile("homemade", filename, (_HOMEMADE + filename,), size, sha256=sha256)


def _idx(folder: str, hosts: tuple[str, ...], filename: str, size: int, **checksums: str) -> DataFile:
    return DataFile(folder, filename, tuple(host + filename for host in hosts), size, **checksums)


_HOMEMADE_SOURCE = f"[homemade-machine-learning](https://github.com/trekhleb/homemade-machine-learning/tree/{_HOMEMADE_COMMIT}/data) @ `{_HOMEMADE_COMMIT[:7]}`"
_COURSE = "the original project's MIT-licensed repository (from Andrew Ng's *Machine Learning* course exercises)"

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "world_happiness_2017",
            "load_world_happiness_2017",
            "World Happiness Report 2017",
            "155 countries: happiness score and six explanatory factors (GDP per capita, family, health, freedom, generosity, trust)",
            _HOMEMADE_SOURCE,
            "CC0 (Kaggle, Sustainable Development Solutions Network); redistributed in the MIT-licensed original project",
            "notebooks/linear_regression/",
            (
                _homemade(
                    "world-happiness-report-2017.csv",
                    29380,
                    "cd90e5d3d7d504cbcfeef20c4f016fd19f19dce2e73cffb078412b6ebc73ab92",
                ),
            ),
        ),
        DatasetInfo(
            "iris",
            "load_iris",
            "Iris (Fisher, 1936)",
            "150 flowers, 4 measurements, 3 species (SETOSA, VERSICOLOR, VIRGINICA)",
            _HOMEMADE_SOURCE,
            "CC BY 4.0 (UCI Machine Learning Repository); redistributed in the MIT-licensed original project",
            "notebooks/logistic_regression/, notebooks/k_means/",
            (_homemade("iris.csv", 3856, "501cdbc0994362c898a8368c0f0e9d88cc8bdee32cefb9854f5bd5bf7512835c"),),
        ),
        DatasetInfo(
            "microchips",
            "load_microchips",
            "Microchip quality tests",
            "118 microchips, 2 test results, valid or not: a class boundary no straight line separates",
            _HOMEMADE_SOURCE,
            f"redistributed in {_COURSE}",
            "notebooks/logistic_regression/",
            (
                _homemade(
                    "microchips-tests.csv", 2257, "6ad46c0ef212853274926584eea6d96707c53f8f623dbe1cd97dedde1e6758b6"
                ),
            ),
        ),
        DatasetInfo(
            "nonlinear_xy",
            "load_nonlinear_xy",
            "Non-linear x → y",
            "250 points of a wavy curve, for polynomial and sinusoid features",
            _HOMEMADE_SOURCE,
            "MIT (the original project)",
            "notebooks/linear_regression/",
            (
                _homemade(
                    "non-linear-regression-x-y.csv",
                    4517,
                    "f5c5fc667f5dfc3e422358fb4fbf664893d67daa4c5f5ec00dec1d6581cfaba2",
                ),
            ),
        ),
        DatasetInfo(
            "server_params",
            "load_server_params",
            "Server operational parameters",
            "307 servers: latency (ms) and throughput (mb/s), with anomalies labelled",
            _HOMEMADE_SOURCE,
            f"redistributed in {_COURSE}",
            "notebooks/anomaly_detection/",
            (
                _homemade(
                    "server-operational-params.csv",
                    11634,
                    "26d4ea63a72879c4b4c141e10844db3dc8c767510115eeff5899704b67804cf2",
                ),
            ),
        ),
        DatasetInfo(
            "mnist",
            "load_mnist",
            "MNIST handwritten digits",
            "70,000 28×28 grey-scale digits (60,000 train, 10,000 test), IDX format",
            "[ossci-datasets mirror](https://ossci-datasets.s3.amazonaws.com/mnist/) of Y. LeCun, C. Cortes, C. Burges",
            "CC BY-SA 3.0",
            "notebooks/logistic_regression/, notebooks/neural_network/",
            (
                _idx(
                    "mnist",
                    _MNIST,
                    "train-images-idx3-ubyte.gz",
                    9912422,
                    sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                ),
                _idx(
                    "mnist",
                    _MNIST,
                    "train-labels-idx1-ubyte.gz",
                    28881,
                    sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                ),
                _idx(
                    "mnist",
                    _MNIST,
                    "t10k-images-idx3-ubyte.gz",
                    1648877,
                    sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                ),
                _idx(
                    "mnist",
                    _MNIST,
                    "t10k-labels-idx1-ubyte.gz",
                    4542,
                    sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            ),
        ),
        DatasetInfo(
            "fashion_mnist",
            "load_fashion_mnist",
            "Fashion-MNIST (Zalando Research)",
            "70,000 28×28 grey-scale clothing images in 10 classes, a drop-in replacement for MNIST",
            "[zalandoresearch/fashion-mnist](https://github.com/zalandoresearch/fashion-mnist)",
            "MIT",
            "notebooks/logistic_regression/, notebooks/neural_network/",
            (
                _idx(
                    "fashion-mnist",
                    _FASHION,
                    "train-images-idx3-ubyte.gz",
                    26421880,
                    archive_md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                ),
                _idx(
                    "fashion-mnist",
                    _FASHION,
                    "train-labels-idx1-ubyte.gz",
                    29515,
                    sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                    archive_md5="25c81989df183df01b3e8a0aad5dffbe",
                ),
                _idx(
                    "fashion-mnist",
                    _FASHION,
                    "t10k-images-idx3-ubyte.gz",
                    4422102,
                    archive_md5="bef4ecab320f06d8554ea6380940ec79",
                ),
                _idx(
                    "fashion-mnist",
                    _FASHION,
                    "t10k-labels-idx1-ubyte.gz",
                    5148,
                    sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                    archive_md5="bb300cfdad3c16e7a12a480ee83cd310",
                ),
            ),
        ),
    )
}

#: Every file, by ``folder/filename``.
FILES: dict[str, DataFile] = {f.key: f for info in DATASETS.values() for f in info.files}
