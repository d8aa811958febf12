"""The README's code runs as printed (on numpy) and with its one flag switched."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import hml

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_quick_start_runs(backend, capsys):
    code = quick_start()
    assert 'BACKEND = "numpy"' in code
    exec(compile(code.replace('BACKEND = "numpy"', f'BACKEND = "{backend}"'), str(README), "exec"), {})
    out = capsys.readouterr().out
    r2 = float(re.search(r"R² = ([0-9.]+)", out).group(1))
    assert r2 > 0.95


def _python_block(heading: str) -> str:
    section = README.read_text(encoding="utf-8").split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.skipif(not os.environ.get("HML_DATA_MIRROR"), reason="needs the data mirror (HML_DATA_MIRROR)")
def test_data_sets_section_runs():
    namespace = {}
    exec(compile(_python_block("## Data sets"), str(README), "exec"), namespace)
    assert namespace["X"].shape == (150, 4) and namespace["mnist"].data.shape == (60000, 784)


@pytest.mark.skipif(not os.environ.get("HML_DATA_MIRROR"), reason="needs the data mirror (HML_DATA_MIRROR)")
def test_clustering_section_runs():
    namespace = {}
    exec(compile(_python_block("## Clustering and anomaly detection"), str(README), "exec"), namespace)
    assert namespace["kmeans"].cluster_centers_.shape == (3, 4)
    assert 0.5 < namespace["f1"] <= 1.0 and set(namespace["flags"].tolist()) <= {0, 1}


def test_saving_section_runs_with_its_gpu_swapped_for_numpy(tmp_path, monkeypatch):
    """The README's save/load/to example, fitted on NumPy instead of a CUDA device."""
    monkeypatch.chdir(tmp_path)
    code = _python_block("## Saving, loading and moving models")
    assert 'backend="torch", device="cuda"' in code
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    namespace = {"hml": hml, "X": X, "y": (X[:, 0] > 0).astype(int)}
    exec(compile(code.replace('backend="torch", device="cuda"', 'backend="numpy"'), str(README), "exec"), namespace)
    assert (tmp_path / "model.npz").is_file()
    np.testing.assert_array_equal(namespace["cpu"].predict_proba(X), namespace["model"].predict_proba(X))


def _bash_block(heading: str) -> str:
    section = README.read_text(encoding="utf-8").split(f"\n{heading}\n", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip()


def test_try_it_and_tests_are_one_command_each():
    """The README's contract with a new user (and what .ci/run executes): one line each."""
    try_it, tests = _bash_block("## Try it"), _bash_block("## Tests")
    assert "\n" not in try_it and "pip install" in try_it and try_it.endswith("hml demo")
    assert "\n" not in tests and "pip install" in tests and "pytest" in tests
    assert "torch" not in try_it + tests  # any torch spec but the pinned CPU build pulls GBs of CUDA packages


def test_every_notebook_is_linked_and_every_link_resolves():
    root = README.parent
    text = README.read_text(encoding="utf-8")
    links = set(re.findall(r"\]\((notebooks/[^)]+)\)", text))
    notebooks = {
        p.relative_to(root).as_posix()
        for p in (root / "notebooks").rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    }
    assert notebooks and notebooks <= links
    for link in links:
        assert (root / link).is_file(), link


PUBLIC_MODULES = [
    "hml",
    "hml.backends",
    "hml.optimize",
    "hml.metrics",
    "hml.model_selection",
    "hml.plotting",
    "hml.datasets",
    "hml.features",
    "hml.numerics",
    "hml.linear_model",
    "hml.cluster",
    "hml.anomaly",
    "hml.neural_network",
    "hml.notebook",
    "hml.exceptions",
    "hml.base",
    "hml.demo",
    "hml.cli",
]


def test_every_public_function_class_and_method_has_a_docstring():
    """What `help()` shows a user is never empty (KMeans.fit_transform was)."""
    import importlib
    import inspect

    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
                missing.append(f"{module_name}.{name}")
            if inspect.isclass(obj):
                missing += [
                    f"{module_name}.{name}.{attr}"
                    for attr, member in inspect.getmembers(obj)
                    if not attr.startswith("_") and callable(member) and not inspect.getdoc(member)
                ]
    assert not missing, f"no docstring: {sorted(set(missing))}"


def test_dask_section_runs_on_a_local_cluster():
    """The README's Dask example, with its remote scheduler and Zarr store swapped for local stand-ins."""
    pytest.importorskip("distributed")
    code = _python_block("## Dask: chunked arrays and clusters")
    assert 'Client("tcp://scheduler.example:8786")' in code and 'da.from_zarr("s3://bucket/features.zarr")' in code
    code = code.replace(
        'Client("tcp://scheduler.example:8786")',
        "Client(LocalCluster(n_workers=1, processes=False, dashboard_address=None))",
    )
    code = code.replace(
        'da.from_zarr("s3://bucket/features.zarr")',
        "da.from_array(np.random.default_rng(0).normal(size=(400, 3)), chunks=100)",
    )
    namespace: dict = {}
    exec(compile("import numpy as np\nfrom distributed import LocalCluster\n" + code, str(README), "exec"), namespace)
    try:
        labels = namespace["labels"]
        assert hasattr(labels, "__dask_graph__") and labels.compute().shape == (400,)
    finally:
        namespace["client"].close()
