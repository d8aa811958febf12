"""The README's code runs as printed (on numpy) and with its one flag switched."""

from __future__ import annotations

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
