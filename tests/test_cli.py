"""The `hml` command line."""

import subprocess
import sys

import pytest

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


def test_info_says_whether_the_compiled_loops_run(monkeypatch, capsys):
    """On where Numba is installed, off with HML_NUMBA=0, and off with how to install it where it is not."""
    import importlib.metadata
    import importlib.util

    from hml.kernels import _numba

    installed = importlib.util.find_spec("numba") is not None
    main(["info"])
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("compiled loops:"))
    assert line.startswith("compiled loops: on, by Numba") if installed else 'pip install "numba>=0.60"' in line
    monkeypatch.setattr(_numba, "ENABLED", False)
    main(["info"])
    out = capsys.readouterr().out
    assert ("compiled loops: off: HML_NUMBA=0" in out) if installed else "Numba is not installed" in out

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert hml.kernels.compiled_loops() == (
        'off: Numba is not installed (pip install "numba>=0.60" for faster k-means on the CPU)'
    )


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "hml.cli", "info"], capture_output=True, text=True, check=True)
    assert "backends:" in result.stdout


def test_version_and_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "hml", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"hml {hml.__version__}"


def test_bare_commands_print_their_help_and_succeed(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: hml" in out and "demo" in out and "info" in out and "data" in out
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "usage: hml data" in out and "fetch" in out and "catalogue" in out


def test_info_reports_a_misspelled_hml_backend_instead_of_crashing(monkeypatch, capsys):
    monkeypatch.setenv("HML_BACKEND", "nmupy")
    assert main(["info"]) == 1
    out = capsys.readouterr().out
    assert "HML_BACKEND='nmupy' names no backend" in out
    assert "numpy" in out and "devices: cpu" in out  # the backends are still listed


def test_info_says_when_the_selected_backend_cannot_run(monkeypatch, capsys):
    """HML_BACKEND=cupy without CuPy printed "selected backend: cupy" and exited 0; a fit then raised."""
    unavailable = [s.name for s in hml.available_backends().values() if not s.available]
    if not unavailable:
        pytest.skip("every backend runs here")
    monkeypatch.setenv("HML_BACKEND", unavailable[0])
    assert main(["info"]) == 1
    assert f"but {unavailable[0]} is unavailable here:" in capsys.readouterr().out


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`hml data list | head -1` printed a BrokenPipeError traceback."""
    import os

    for buffered in ("", "1"):  # PYTHONUNBUFFERED unset: the write fails in the flush at exit
        environment = {**os.environ, "PYTHONUNBUFFERED": buffered}
        for command in ("data list", "info"):
            done = subprocess.run(
                f"{sys.executable} -m hml {command} | true", shell=True, capture_output=True, text=True, env=environment
            )
            assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


def test_a_warning_is_a_line_of_the_command_not_of_its_wrapper(monkeypatch, capsys):
    """hml.exceptions.warn names the caller's line: on the command line, bin/hml:6 and its sys.exit(main())."""
    import warnings

    from hml import cli
    from hml.exceptions import warn

    monkeypatch.setattr(cli, "_info", lambda args: warn("float32 on this device", UserWarning) or 0)
    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["info"]) == 0
    assert capsys.readouterr().err == "hml: UserWarning: float32 on this device\n"
    assert warnings.showwarning is before
