"""Loading MNIST from a warm cache (issue floor: ≤ 0.5 s for the 47 MB training images).

The files are fetched once (``setup_cache``) through ``HML_DATA_MIRROR`` or the network;
without either the benchmarks are skipped.
"""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path

from hml import datasets
from hml.datasets._registry import FILES
from hml.exceptions import DatasetError


class LoadMNIST:
    timeout = 300

    def setup_cache(self) -> str:
        home = tempfile.mkdtemp(prefix="hml-bench-data-")
        try:
            datasets.fetch("mnist", home)
        except DatasetError as exc:
            return f"unavailable: {exc}"
        return home

    def setup(self, home: str):
        if home.startswith("unavailable"):
            raise NotImplementedError(home)

    def time_load_mnist_train_warm(self, home: str):
        """Read, verify (SHA-256 of 47 MB), decompress and parse both training files."""
        datasets.load_mnist("train", data_home=home)

    def time_gunzip_train_images(self, home: str):
        """The floor under the loader: decompressing the image archive and nothing else."""
        zlib.decompress((Path(home) / FILES["mnist/train-images-idx3-ubyte.gz"].key).read_bytes(), wbits=31)
