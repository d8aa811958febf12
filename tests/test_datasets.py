"""Data set loaders and the download machinery (hml.datasets).

Loaders are checked against the offline mirror (``HML_DATA_MIRROR``, set by conftest when
``../shared/data`` exists) and against pandas reading the same files; every failure mode of
a download is provoked on a throw-away mirror in ``tmp_path``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from data_mirror import MIRROR, needs_mirror

from hml import datasets
from hml.cli import main
from hml.datasets import DATASETS, DataFile, parse_idx
from hml.datasets._registry import FILES
from hml.exceptions import ChecksumMismatchError, DatasetError, DatasetFormatError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty cache for one test."""
    monkeypatch.setenv("HML_DATA_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def fake_mirror(tmp_path, monkeypatch) -> Path:
    """An empty mirror folder the test fills with the files it wants served."""
    root = tmp_path / "mirror"
    root.mkdir()
    monkeypatch.setenv("HML_DATA_MIRROR", root.as_uri())
    return root


def _serve(mirror: Path, key: str, content: bytes) -> None:
    (mirror / key).parent.mkdir(parents=True, exist_ok=True)
    (mirror / key).write_bytes(content)


def _leftovers(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()) if home.exists() else []


def _idx(array: np.ndarray, type_code: int = 0x08) -> bytes:
    dims = np.asarray(array.shape, dtype=">u4").tobytes()
    return bytes([0, 0, type_code, array.ndim]) + dims + array.tobytes()


# --- loaders against the mirror, cross-checked with pandas -------------------------


@needs_mirror
@pytest.mark.parametrize(
    ("loader", "file", "shape", "target", "target_names"),
    [
        (
            "load_world_happiness_2017",
            "world-happiness-report-2017.csv",
            (155, 6),
            "Happiness.Score",
            ("Happiness.Score",),
        ),
        ("load_iris", "iris.csv", (150, 4), "class", ("SETOSA", "VERSICOLOR", "VIRGINICA")),
        ("load_microchips", "microchips-tests.csv", (118, 2), "validity", ("invalid", "valid")),
        ("load_nonlinear_xy", "non-linear-regression-x-y.csv", (250, 1), "y", ("y",)),
        ("load_server_params", "server-operational-params.csv", (307, 2), "Anomaly", ("normal", "anomaly")),
    ],
)
def test_small_loaders_match_pandas(loader, file, shape, target, target_names):
    pd = pytest.importorskip("pandas")
    # round_trip: the correctly rounded parse, as Python's float() does; pandas' default
    # parser may differ in the last digit (3 of 930 values on pandas 2.3 / Python 3.12).
    frame = pd.read_csv(MIRROR / "homemade" / file, float_precision="round_trip")
    dataset = getattr(datasets, loader)()
    assert dataset.data.shape == shape and dataset.data.dtype == np.float64
    assert dataset.target.shape == (shape[0],)
    assert dataset.target_names == target_names
    assert len(dataset.feature_names) == shape[1]
    np.testing.assert_array_equal(dataset.data, frame[list(dataset.feature_names)].to_numpy())
    if target == "class":
        assert dataset.target.dtype == np.intp
        np.testing.assert_array_equal(np.asarray(target_names)[dataset.target], frame["class"].to_numpy())
        assert np.bincount(dataset.target).tolist() == [50, 50, 50]
    elif len(target_names) == 2:
        assert dataset.target.dtype == np.intp and set(dataset.target.tolist()) == {0, 1}
        np.testing.assert_array_equal(dataset.target, frame[target].to_numpy())
    else:
        np.testing.assert_array_equal(dataset.target, frame[target].to_numpy())
    for column in frame.columns:  # the original columns, every one of them
        np.testing.assert_array_equal(dataset.columns[column], frame[column].to_numpy())
    X, y = dataset
    assert X is dataset.data and y is dataset.target


@needs_mirror
def test_world_happiness_values_are_in_range():
    happiness = datasets.load_world_happiness_2017()
    assert happiness.columns["Country"][0] == "Norway" and happiness.columns["Happiness.Rank"][0] == 1
    assert 2.5 < happiness.target.min() < happiness.target.max() < 8.0
    assert happiness.feature_names[0] == "Economy..GDP.per.Capita." and (happiness.data >= 0).all()


@needs_mirror
@pytest.mark.parametrize(
    ("split", "n", "counts"), [("train", 60000, MNIST_TRAIN_COUNTS), ("test", 10000, MNIST_TEST_COUNTS)]
)
def test_mnist(split, n, counts):
    mnist = datasets.load_mnist(split)
    assert mnist.data.shape == (n, 784) and mnist.data.dtype == np.uint8
    assert mnist.images.shape == (n, 28, 28) and np.shares_memory(mnist.images, mnist.data)
    assert mnist.target.dtype == np.intp
    assert np.bincount(mnist.target, minlength=10).tolist() == counts
    assert mnist.data.min() == 0 and mnist.data.max() == 255
    # Digits are drawn in the middle: the border pixels are (almost) all background.
    assert mnist.images[:, 0, :].mean() < 0.01 < mnist.images[:, 14, :].mean()
    assert mnist.target_names == tuple("0123456789") and mnist.feature_names[29] == "pixel_1_1"
    assert mnist.data.flags.writeable


def test_unknown_split_and_name():
    with pytest.raises(ValueError, match=r"split='validation'.*'train' or 'test'"):
        datasets.load_mnist("validation")
    with pytest.raises(ValueError, match=r"unknown data set 'imagenet'"):
        datasets.fetch("imagenet")


# --- Fashion-MNIST: real labels from the mirror, images the test writes -------------


@needs_mirror
def test_fashion_mnist_from_mirror_labels_and_written_images(fake_mirror, home, monkeypatch):
    if not (MIRROR / "fashion-mnist").is_dir():
        pytest.skip(
            f"the mirror at {MIRROR} has no fashion-mnist/ labels (a partial copy, as carried to a GPU machine)"
        )
    for split, prefix, per_class in (("train", "train", 6000), ("test", "t10k", 1000)):
        labels_key = f"fashion-mnist/{prefix}-labels-idx1-ubyte.gz"
        _serve(fake_mirror, labels_key, (MIRROR / labels_key).read_bytes())
        labels = parse_idx(gzip.decompress((MIRROR / labels_key).read_bytes()), labels_key)
        # Each picture carries its label in its pixels, so the pairing can be checked.
        images = np.broadcast_to((labels * 25).astype(np.uint8)[:, None, None], (labels.size, 28, 28))
        content = _idx(np.ascontiguousarray(images))
        images_key = f"fashion-mnist/{prefix}-images-idx3-ubyte.gz"
        _serve(fake_mirror, images_key, gzip.compress(content, compresslevel=1))
        # The registry knows only the MD5 of the official archive; check ours by its content instead.
        official = FILES[images_key]
        monkeypatch.setitem(
            FILES,
            images_key,
            DataFile(
                official.folder,
                official.filename,
                official.urls,
                official.size,
                sha256=hashlib.sha256(content).hexdigest(),
            ),
        )
        fashion = datasets.load_fashion_mnist(split)
        assert fashion.data.shape == (labels.size, 784) and fashion.data.dtype == np.uint8
        assert np.bincount(fashion.target).tolist() == [per_class] * 10
        np.testing.assert_array_equal(fashion.images[:, 5, 7], fashion.target * 25)
        assert fashion.target_names[0] == "T-shirt/top" and fashion.target_names[9] == "Ankle boot"


def test_fashion_mnist_images_are_checked_against_the_published_md5(fake_mirror, home):
    key = "fashion-mnist/t10k-images-idx3-ubyte.gz"
    _serve(fake_mirror, key, gzip.compress(_idx(np.zeros((3, 28, 28), np.uint8))))
    with pytest.raises(ChecksumMismatchError, match=r"MD5 .* does not match the published bef4ecab"):
        datasets.fetch_file(FILES[key])
    assert not list(home.rglob("*images*"))


# --- failure modes: each a clear error and no poisoned cache -----------------------


def test_checksum_mismatch_leaves_nothing_in_the_cache(fake_mirror, home):
    _serve(
        fake_mirror, "homemade/iris.csv", b"sepal_length,sepal_width,petal_length,petal_width,class\n1,2,3,4,SETOSA\n"
    )
    with pytest.raises(ChecksumMismatchError) as info:
        datasets.load_iris()
    message = str(info.value)
    assert "homemade/iris.csv" in message and (fake_mirror / "homemade" / "iris.csv").as_uri() in message
    assert "501cdbc0" in message  # the expected checksum
    assert _leftovers(home) == []


@needs_mirror
def test_truncated_gzip_is_a_clear_error(fake_mirror, home):
    key = "mnist/t10k-labels-idx1-ubyte.gz"
    whole = (MIRROR / key).read_bytes()
    _serve(fake_mirror, key, whole[: len(whole) // 2])
    with pytest.raises(DatasetFormatError, match=r"not a complete gzip stream.*truncated or corrupt"):
        datasets.load_mnist("test")
    assert _leftovers(home) == []


def test_wrong_idx_magic_is_a_clear_error(fake_mirror, home, monkeypatch):
    key = "mnist/t10k-labels-idx1-ubyte.gz"
    content = b"\x1f\x8b\x08\x01" + bytes(16)  # a gzip magic where the IDX magic should be
    _serve(fake_mirror, key, gzip.compress(content))
    entry = FILES[key]
    monkeypatch.setitem(
        FILES,
        key,
        DataFile(entry.folder, entry.filename, entry.urls, entry.size, sha256=hashlib.sha256(content).hexdigest()),
    )
    with pytest.raises(
        DatasetFormatError, match=r"t10k-labels-idx1-ubyte.gz: not an IDX file \(magic number 1f 8b 08 01"
    ):
        datasets.load_mnist("test")


def test_parse_idx_checks_the_header_against_the_payload():
    big_endian = np.arange(-6, 6, dtype=">i4").reshape(3, 4)
    np.testing.assert_array_equal(parse_idx(_idx(big_endian, 0x0C), "ints"), big_endian)
    assert parse_idx(_idx(big_endian, 0x0C), "ints").dtype == np.dtype("int32")
    with pytest.raises(DatasetFormatError, match=r"shape \(3, 4\) .* but the file has"):
        parse_idx(_idx(big_endian, 0x0C)[:-1], "ints")
    with pytest.raises(DatasetFormatError, match=r"not an IDX file \(magic number missing"):
        parse_idx(b"", "empty")
    with pytest.raises(DatasetFormatError, match=r"promises 3 dimensions"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0]), "short")


def test_missing_file_names_url_cache_and_variables(fake_mirror, home):
    with pytest.raises(DatasetError) as info:
        datasets.load_microchips()
    message = str(info.value)
    assert (fake_mirror / "homemade" / "microchips-tests.csv").as_uri() in message
    assert str(home / "homemade" / "microchips-tests.csv") in message
    assert "HML_DATA_MIRROR" in message and "HML_DATA_HOME" in message and "FileNotFoundError" in message
    assert _leftovers(home) == []


def test_no_network_tries_every_source_and_says_what_to_do(home, monkeypatch):
    monkeypatch.delenv("HML_DATA_MIRROR", raising=False)

    def offline(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    with pytest.raises(DatasetError) as info:
        datasets.load_mnist("test")
    message = str(info.value)
    for url in FILES["mnist/t10k-labels-idx1-ubyte.gz"].urls:
        assert url in message
    assert "Name or service not known" in message and "HML_DATA_MIRROR" in message and "HML_DATA_HOME" in message
    assert _leftovers(home) == []


def test_unreachable_mirror(home, monkeypatch):
    monkeypatch.setenv("HML_DATA_MIRROR", "http://127.0.0.1:9")  # the discard port: connection refused
    with pytest.raises(DatasetError, match=r"http://127.0.0.1:9/homemade/iris.csv: .*(refused|Errno)"):
        datasets.load_iris()


@needs_mirror
def test_interrupted_download_leaves_no_partial_file(home, monkeypatch):
    real_urlopen = urllib.request.urlopen

    class Interrupted:
        def __init__(self, response):
            self.response, self.headers, self.sent = response, response.headers, False

        def read(self, n):
            if self.sent:
                raise ConnectionResetError("connection reset by peer")
            self.sent = True
            return self.response.read(1000)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.response.close()

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Interrupted(real_urlopen(url, timeout=timeout)))
    with pytest.raises(DatasetError, match="ConnectionResetError"):
        datasets.load_server_params()
    assert _leftovers(home) == []


@needs_mirror
def test_a_full_disk_during_a_download_leaves_no_partial_file(home, monkeypatch):
    real_fdopen = os.fdopen

    class Full:
        """The download's file: the first write fits, the next finds the disk full."""

        def __init__(self, file):
            self.file, self.writes = file, 0

        def write(self, data):
            self.writes += 1
            if self.writes > 1:
                raise OSError(28, "No space left on device")
            return self.file.write(data[:100])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr("hml.datasets._download._CHUNK", 1000)
    monkeypatch.setattr(os, "fdopen", lambda *args, **kwargs: Full(real_fdopen(*args, **kwargs)))
    with pytest.raises(
        DatasetError,
        match=r"(?s)could not write .* into the cache at .*No space left on device.*"
        r"Free space there, or set HML_DATA_HOME",
    ):
        datasets.load_server_params()
    assert _leftovers(home) == [] and not (home / "homemade" / "server-operational-params.csv").exists()


def test_a_read_only_cache_gives_a_clear_error(home, monkeypatch):
    """A cache directory the user cannot write to (simulated: root writes anywhere). The error
    names the cache and HML_DATA_HOME, which moves it."""

    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(path).parent.is_relative_to(home):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(
        DatasetError,
        match=r"(?s)could not write homemade/iris.csv into the cache at .*"
        r"PermissionError.*Permission denied.*set HML_DATA_HOME to a folder",
    ):
        datasets.load_iris()
    assert _leftovers(home) == []


@needs_mirror
def test_corrupt_cached_file_is_downloaded_again(home):
    reference = datasets.load_iris()
    cached = home / "homemade" / "iris.csv"
    cached.write_bytes(cached.read_bytes().replace(b"SETOSA", b"SETOSX", 1))
    assert datasets.cache_status(FILES["homemade/iris.csv"]) == "corrupt"
    with pytest.warns(UserWarning, match=r"iris.csv: SHA-256 .* downloading it again"):
        again = datasets.load_iris()
    np.testing.assert_array_equal(again.data, reference.data)
    assert datasets.cache_status(FILES["homemade/iris.csv"]) == "cached"


@needs_mirror
def test_a_corrupt_cached_file_with_download_false_says_it_is_corrupt(home):
    datasets.load_iris()
    cached = home / "homemade" / "iris.csv"
    cached.write_bytes(cached.read_bytes().replace(b"SETOSA", b"SETOSX", 1))
    with pytest.raises(ChecksumMismatchError, match=r"iris.csv: SHA-256 .*, and download=False: delete it or pass"):
        datasets.load_iris(download=False)
    assert datasets.cache_status(FILES["homemade/iris.csv"]) == "corrupt"


@needs_mirror
def test_a_file_where_the_cache_folder_belongs_is_a_cache_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("HML_DATA_HOME", str(tmp_path / "file" / "cache"))
    with pytest.raises(
        DatasetError, match=r"(?s)could not write homemade/iris.csv into the cache .*NotADirectoryError"
    ):
        datasets.load_iris()
    elsewhere = str(tmp_path / "file" / "given")
    with pytest.raises(DatasetError, match=r"(?s)could not write.*give data_home \(--data-home\) a folder you can"):
        datasets.load_iris(data_home=elsewhere)  # HML_DATA_HOME did not choose this folder: it is not named


def test_download_false_with_an_empty_cache(home):
    with pytest.raises(DatasetError, match=r"not in the cache at .*download=False"):
        datasets.load_iris(download=False)


@needs_mirror
def test_cached_file_is_used_without_the_mirror(home, monkeypatch):
    datasets.load_nonlinear_xy()
    monkeypatch.setenv("HML_DATA_MIRROR", "http://127.0.0.1:9")
    assert datasets.load_nonlinear_xy(download=False).data.shape == (250, 1)
    assert datasets.load_nonlinear_xy().data.shape == (250, 1)


@needs_mirror
def test_large_download_shows_progress(home, capsys):
    datasets.fetch_file(FILES["mnist/t10k-images-idx3-ubyte.gz"])
    assert "t10k-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_data_home_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("HML_DATA_HOME", raising=False)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert datasets.data_home() == tmp_path / "xdg" / "hml"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert datasets.data_home() == Path.home() / ".cache" / "hml"
    monkeypatch.setenv("HML_DATA_HOME", str(tmp_path / "env"))
    assert datasets.data_home() == tmp_path / "env"
    assert datasets.data_home(tmp_path / "arg") == tmp_path / "arg"


def test_mirror_replaces_the_hosts_keeping_the_folders(monkeypatch):
    entry = FILES["mnist/train-images-idx3-ubyte.gz"]
    monkeypatch.delenv("HML_DATA_MIRROR", raising=False)
    assert datasets.urls_for(entry) == entry.urls and len(entry.urls) == 2
    monkeypatch.setenv("HML_DATA_MIRROR", "https://example.org/hml-data/")
    assert datasets.urls_for(entry) == ("https://example.org/hml-data/mnist/train-images-idx3-ubyte.gz",)


# --- the catalogue and the registry ------------------------------------------------


def test_data_readme_holds_the_generated_catalogue():
    readme = (Path(__file__).resolve().parents[1] / "data" / "README.md").read_text(encoding="utf-8")
    assert datasets.catalogue_markdown() in readme, (
        "data/README.md is stale: regenerate its catalogue with `hml data catalogue`"
    )


def test_registry_entries_are_complete():
    for info in DATASETS.values():
        assert callable(getattr(datasets, info.loader)) and info.licence and info.source and info.files
        for file in info.files:
            assert all(url.endswith("/" + file.filename) for url in file.urls)
            assert file.sha256 or file.archive_md5
    with pytest.raises(ValueError, match="needs a checksum"):
        DataFile("x", "y.csv", ("https://example.org/y.csv",), 1)


# --- the command line ----------------------------------------------------------------


@needs_mirror
def test_cli_fetch_all_then_list(home, capsys):
    status = main(["data", "fetch", "all"])
    out, err = capsys.readouterr()
    fashion_images_mirrored = (MIRROR / "fashion-mnist" / "train-images-idx3-ubyte.gz").exists()
    assert status == (0 if fashion_images_mirrored else 1)
    assert "mnist: " in out and "iris: " in out
    assert fashion_images_mirrored or "fashion_mnist: FAILED" in err
    assert main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    rows = {line.split()[0]: line for line in listing.splitlines()[2:]}
    assert set(rows) == set(DATASETS)
    for name in ("iris", "mnist", "world_happiness_2017", "server_params"):
        assert rows[name].endswith("cached")
    assert str(home) in listing


def test_cli_list_on_an_empty_cache_and_bad_name(home, capsys):
    assert (
        subprocess.run(
            [sys.executable, "-m", "hml.cli", "data", "list"], capture_output=True, text=True, check=True
        ).stdout.count("missing")
        >= 7
    )
    assert main(["data", "fetch", "nope"]) == 1
    assert "unknown data set 'nope'" in capsys.readouterr().err


@needs_mirror
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_cached_files_get_the_users_umask(home, umask):
    """A cached file is created as any new file of the user (0644 under umask 022), not 0600."""
    previous = os.umask(umask)
    try:
        datasets.load_iris()
    finally:
        os.umask(previous)
    mode = (home / "homemade" / "iris.csv").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask


def test_download_must_be_a_bool(home):
    """download="no" downloaded: any truthy value counted as True."""
    for value in ("no", 0, None):
        with pytest.raises(TypeError, match=r"download must be True or False; got"):
            datasets.load_iris(download=value)
    with pytest.raises(TypeError, match=r"download must be True or False"):
        datasets.load_mnist("test", download="no")
