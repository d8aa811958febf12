"""Test configuration: a ``case`` fixture that runs a test on every backend importable here.

Each case names a backend and device and converts NumPy test data to arrays of
that backend, so a test states its data once in NumPy and its expectations once.
GPU cases (cupy, torch on cuda) carry the ``gpu`` marker and skip, with the
reason, on machines without a GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hml
from hml import backends
from hml.exceptions import BackendUnavailableError


@dataclass(frozen=True)
class Case:
    """One backend (and device) to run a test on."""

    id: str
    backend: str
    device: Any = None
    float64: bool = True  # whether the device has float64
    lazy: bool = False  # Dask: results are graphs until computed

    @property
    def ctx(self) -> backends.ComputeContext:
        return backends.resolve(self.backend, self.device)

    @property
    def xp(self) -> Any:
        return self.ctx.xp

    def asarray(self, array: Any) -> Any:
        """NumPy test data as an array of this case's backend and device (float64 → float32 without float64)."""
        array = np.asarray(array)
        if not self.float64 and array.dtype == np.float64:
            array = array.astype(np.float32)
        return self.ctx.asarray(array)

    def to_numpy(self, array: Any) -> np.ndarray:
        return backends.backend_of(array).to_numpy(array)

    @property
    def rtol(self) -> float:
        """A tolerance for results that agree to rounding in this case's precision."""
        return 1e-10 if self.float64 else 1e-4


def _usable(name: str, device: Any = None) -> str | None:
    """None if the backend/device can be used here, else the reason it cannot."""
    try:
        backends.get_backend_object(name).check_available(device)
    except BackendUnavailableError as exc:
        return str(exc)
    return None


#: Case id -> why it cannot run here (None: it runs), reported once in the pytest header.
CASE_STATUS: dict[str, str | None] = {}


def _case(case: Case, *, gpu: bool = False):
    reason = CASE_STATUS[case.id] = _usable(case.backend, case.device)
    marks = [pytest.mark.skipif(reason is not None, reason=reason or "")]
    if gpu:
        marks.append(pytest.mark.gpu)
    return pytest.param(case, id=case.id, marks=marks)


ALL_CASES = [
    _case(Case("numpy", "numpy")),
    _case(Case("strict", "array_api_strict")),
    _case(Case("strict-device1", "array_api_strict", "device1")),
    _case(Case("strict-no_float64", "array_api_strict", "no_float64", float64=False)),
    _case(Case("torch-cpu", "torch", "cpu")),
    _case(Case("dask", "dask", lazy=True)),
    _case(Case("cupy", "cupy"), gpu=True),
    _case(Case("torch-cuda", "torch", "cuda"), gpu=True),
]


#: ``HML_BACKEND=cupy pytest`` (or torch, dask, ...) runs the backend-parametrised tests on
#: that backend's cases only -- and fails at once if none of them can run here, instead of
#: passing with every case skipped. Read once, before any test clears the variable.
SELECTED_BACKEND = os.environ.get("HML_BACKEND", "").strip() or None
if SELECTED_BACKEND == "auto":
    SELECTED_BACKEND = None


def _selected(params: list) -> list:
    if SELECTED_BACKEND is None:
        return params
    return [p for p in params if p.values[0].backend == SELECTED_BACKEND]


@pytest.fixture(params=_selected(ALL_CASES))
def case(request) -> Case:
    """Every backend/device importable here (GPU ones under the ``gpu`` marker)."""
    return request.param


@pytest.fixture(params=_selected([p for p in ALL_CASES if p.values[0].float64]))
def case64(request) -> Case:
    """Every case whose device has float64 (for tests with float64-tight tolerances)."""
    return request.param


@pytest.fixture(autouse=True)
def _clean_backend_selection(monkeypatch):
    """No test leaks a global backend choice, or sees the developer's HML_BACKEND."""
    monkeypatch.delenv("HML_BACKEND", raising=False)
    backends.set_backend("auto")
    yield
    backends.set_backend("auto")


#: ``HML_TEST_INSTALLED=1`` (CI's run against the built wheel): the suite must test the installed
#: package, not the checkout's ``hml/`` beside it -- else a file missing from the wheel goes unseen.
if os.environ.get("HML_TEST_INSTALLED") and Path(hml.__file__).resolve().is_relative_to(
    Path(__file__).resolve().parents[1]
):
    raise pytest.UsageError(
        f"HML_TEST_INSTALLED is set but hml was imported from the checkout ({hml.__file__}): run the `pytest` "
        "command, not `python -m pytest` (which puts the current directory first on sys.path)"
    )


def pytest_report_header(config):
    """One line per backend case: run, or skipped and why (instead of a skip line per test)."""
    lines = [f"hml {hml.__version__} imported from {Path(hml.__file__).parent}"]
    lines += [
        f"hml backend case {case_id}: " + ("runs" if reason is None else f"SKIPPED -- {reason}")
        for case_id, reason in CASE_STATUS.items()
    ]
    if SELECTED_BACKEND is not None:
        lines.append(f"HML_BACKEND={SELECTED_BACKEND}: backend-parametrised tests run on its cases only")
    return lines


#: Case id -> {"passed": n, "failed": n, "skipped": n}: what actually ran on each backend.
CASE_OUTCOMES: dict[str, dict[str, int]] = {}
_ITEM_CASES: dict[str, str] = {}


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        case = callspec and (callspec.params.get("case") or callspec.params.get("case64"))
        if isinstance(case, Case):
            _ITEM_CASES[item.nodeid] = case.id
            # Under pytest-xdist the controller collects nothing: the case travels with the report.
            item.user_properties.append(("hml_case", case.id))


def pytest_sessionstart(session):
    if SELECTED_BACKEND is None:
        return
    cases = [case_id for case_id in CASE_STATUS if case_id.split("-")[0] == _CASE_PREFIX.get(SELECTED_BACKEND)]
    if SELECTED_BACKEND not in {c.values[0].backend for c in ALL_CASES}:
        pytest.exit(f"HML_BACKEND={SELECTED_BACKEND!r} names no backend the tests know", returncode=4)
    usable = [case_id for case_id in cases if CASE_STATUS[case_id] is None]
    if not usable:
        reasons = "; ".join(f"{case_id}: {CASE_STATUS[case_id]}" for case_id in cases)
        pytest.exit(
            f"HML_BACKEND={SELECTED_BACKEND!r} was asked for, but none of its cases can run here ({reasons})",
            returncode=4,
        )


_CASE_PREFIX = {"numpy": "numpy", "array_api_strict": "strict", "torch": "torch", "dask": "dask", "cupy": "cupy"}


def pytest_runtest_logreport(report):
    case_id = _ITEM_CASES.get(report.nodeid) or dict(report.user_properties).get("hml_case")
    if case_id is None:
        return
    outcome = None
    if report.when == "call":
        outcome = report.outcome
    elif report.when == "setup" and report.outcome != "passed":
        outcome = report.outcome  # skipped (or an error in a fixture)
    if outcome is not None:
        counts = CASE_OUTCOMES.setdefault(case_id, {"passed": 0, "failed": 0, "skipped": 0})
        counts[outcome] = counts.get(outcome, 0) + 1


def pytest_terminal_summary(terminalreporter):
    """How many tests ran on each backend case -- on a GPU machine, the proof the GPU was used."""
    if not CASE_OUTCOMES:
        return
    terminalreporter.section("hml tests per backend case")
    for case_id in CASE_STATUS:
        counts = CASE_OUTCOMES.get(case_id)
        if counts:
            terminalreporter.write_line(
                f"{case_id:<20} {counts['passed']:>5} passed {counts['failed']:>5} failed {counts['skipped']:>5} skipped"
            )


#: The offline copy of the data sets beside every checkout (see ../shared/data/README.md).
DATA_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config):
    """Loaders read from the offline mirror when it is here (unless HML_DATA_MIRROR already says where)."""
    if DATA_MIRROR.is_dir() and not os.environ.get("HML_DATA_MIRROR"):
        os.environ["HML_DATA_MIRROR"] = DATA_MIRROR.as_uri()


@pytest.fixture(scope="session", autouse=True)
def _data_home(tmp_path_factory):
    """Downloads go to a cache of this test session, never the developer's ~/.cache/hml."""
    previous = os.environ.get("HML_DATA_HOME")
    os.environ["HML_DATA_HOME"] = str(tmp_path_factory.mktemp("hml-data-home"))
    yield
    if previous is None:
        del os.environ["HML_DATA_HOME"]
    else:
        os.environ["HML_DATA_HOME"] = previous
