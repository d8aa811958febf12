"""The `hml` command line."""

import subprocess
import sys

import hml
from hml.cli import main


def test_info_lists_every_backend(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"hml {hml.__version__}" in out
    for name, status in hml.available_backends().items():
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert ("unavailable" in line) != status.available
    assert "numpy" in out and "devices: cpu" in out


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "hml.cli", "info"], capture_output=True, text=True, check=True)
    assert "backends:" in result.stdout
