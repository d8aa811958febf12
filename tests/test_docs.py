"""The README's code runs as printed (on numpy) and with its one flag switched."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

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
