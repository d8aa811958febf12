"""The guides' code runs as printed, and prints what the page says it prints.

Each page's ```python blocks run in order in one namespace, in a temporary folder, as a reader would paste them.
What a page shows as output is checked in two forms:

* comment lines directly below a ``print(...)`` line are its output, whitespace aside (``...`` stands for
  anything), e.g. ``print(seen.reads)`` above ``# Counter({'line search': 11, ...})``;
* a comment at the end of a ``print(...)`` line mixes output and prose (``# 0.73, against the species``), so
  only its values are held to the output: each number (``~x``: within a factor of 10 of x), ``True``/``False``,
  dotted name (``torch.Tensor``), dtype (``float32``), 'quoted' word and upper-case word must be in it; a
  comment starting "e.g." is an example, not checked.

Where a page needs what the test environment lacks (a GPU, a cluster), the test swaps in a local stand-in and
first asserts that the page still says what it swaps, as tests/test_docs.py does for the README.
"""

from __future__ import annotations

import builtins
import io
import os
import re
import sys
from pathlib import Path

import pytest

import hml

DOCS = Path(__file__).resolve().parents[1] / "docs"

needs_mirror = pytest.mark.skipif(
    not os.environ.get("HML_DATA_MIRROR"), reason="needs the data mirror (HML_DATA_MIRROR)"
)

#: page -> (modules it needs, {block number: why it does not run}, [(text on the page, what runs instead)]).
PAGES = {
    "guides/getting-started.md": ((), {}, []),
    "guides/datasets.md": ((), {}, []),
    "guides/saving.md": (("torch",), {}, []),
    "guides/backends.md": (("torch",), {3: "a GPU (CuPy)"}, []),
    "guides/dask.md": (
        ("dask.array", "distributed"),
        {3: "a sketch of a GPU cluster, marked as never run"},
        [
            ("rows, features, block = 2_000_000, 32, 250_000", "rows, features, block = 100_000, 32, 25_000"),
            ("LocalCluster(n_workers=2, threads_per_worker=1)", "LocalCluster(n_workers=1, processes=False)"),
            ("size=(1_000_000, 16), chunks=(125_000, 16)", "size=(40_000, 16), chunks=(10_000, 16)"),
            # each Lloyd iteration on a cluster costs a round trip to the scheduler: the code runs, not to the end
            ("init_size=20_000, random_state=0)", "init_size=20_000, random_state=0, max_iter=5)"),
        ],
    ),
    "math/optimisers.md": ((), {0: "the loop's outline, not code to run"}, []),
}
PAGES_WITH_DATA = {"guides/getting-started.md", "guides/datasets.md", "guides/saving.md"}

_NUMBER = r"(?<![\w.])[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?"
_WORDS = [
    r"\b(?:True|False)\b",
    r"\b[A-Za-z_]\w*\.[A-Za-z_]\w*\b",  # dotted names: torch.Tensor, dask.array
    r"\b(?:u?int|float|complex)\d+\b",  # dtypes
    r"(?<!\w)'([^']+)'(?!\w)",  # 'quoted'
    r"\b[A-Z]{4,}\b",  # SETOSA
]


def blocks(page: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (DOCS / page).read_text(encoding="utf-8"), re.S | re.M)


def _squash(text: str) -> str:
    return " ".join(text.split())


def _expected_below(lines: list[str], index: int) -> str | None:
    """The comment lines directly below line ``index`` (a print), as one string; None if there are none."""
    below = []
    for line in lines[index + 1 :]:
        if not line.strip().startswith("#"):
            break
        below.append(line.strip()[1:])
    return " ".join(below) if below else None


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(_NUMBER, text)]


def check_trailing_comment(comment: str, output: str) -> list[str]:
    """What in an end-of-line comment the output does not bear out (an empty list: all of it)."""
    comment = comment.strip()
    if comment.startswith("e.g."):
        return []
    wrong = []
    printed = _numbers(output)  # each value the comment names takes one of the output's, so twice needs two
    for approximate, number in re.findall(r"(~?)(" + _NUMBER + ")", comment):
        value = float(number)
        near = [p for p in printed if (value / 10 <= abs(p) <= value * 10 if approximate else p == value)]
        if near:
            printed.remove(near[0])
        else:
            wrong.append(f"{approximate}{number} (in {comment!r})")
    for pattern in _WORDS:
        words = re.findall(pattern, comment)
        wrong += [
            f"{word} (in {comment!r})"
            for word in set(words)
            if len(re.findall(rf"(?<!\w){re.escape(word)}(?!\w)", output)) < words.count(word)
        ]
    return wrong


def run_page(page: str, tmp_path: Path, monkeypatch) -> int:
    """Run a page's blocks; return how many printed outputs were checked against the page."""
    needs, skipped, swaps = PAGES[page]
    for module in needs:
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    checked = 0
    codes = blocks(page)
    assert len(codes) > max(skipped, default=-1)
    for number, code in enumerate(codes):
        if number in skipped:
            continue
        for text, stand_in in swaps:
            code = code.replace(text, stand_in) if text in code else code
        printed: dict[int, list[str]] = {}
        filename = f"{page}, block {number}"

        def record(*args, _printed=printed, _filename=filename, **kwargs):
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename != _filename:  # a print inside a helper
                frame = frame.f_back
            buffer = io.StringIO()
            builtins.print(*args, **{**kwargs, "file": buffer})
            if frame is not None:
                _printed.setdefault(frame.f_lineno - 1, []).append(buffer.getvalue())

        namespace["print"] = record
        exec(compile(code, filename, "exec"), namespace)
        lines = code.splitlines()
        for index, line in enumerate(lines):
            if "print(" not in line or line.lstrip().startswith("#"):
                continue
            output = "".join(printed.get(index, []))
            below = _expected_below(lines, index)
            if below is not None:
                pattern = ".*".join(re.escape(part) for part in _squash(below).split("..."))
                assert re.fullmatch(pattern, _squash(output), re.S), f"{filename}: {line.strip()}\n{output}"
                checked += 1
            if "  # " in line:
                wrong = check_trailing_comment(line.split("  # ", 1)[1], output)
                assert not wrong, f"{filename}: {line.strip()} printed {output!r}; not there: {wrong}"
                checked += 1
    for text, _ in swaps:  # each stand-in replaced something the page still says
        assert any(text in code for code in codes), f"{page} no longer says {text!r}"
    return checked


@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_guide_runs_and_prints_what_it_says(page, tmp_path, monkeypatch):
    if page in PAGES_WITH_DATA and not os.environ.get("HML_DATA_MIRROR"):
        pytest.skip("needs the data mirror (HML_DATA_MIRROR)")
    try:
        checked = run_page(page, tmp_path, monkeypatch)
    finally:
        hml.set_backend("auto")  # backends.md sets the process default; a failure must not leave it set
    assert checked >= 1


def test_the_comment_check_catches_a_wrong_value():
    """The checker itself: each kind of claim it reads, against a right and a wrong output."""
    assert not check_trailing_comment("0.73, against the species", "adjusted Rand index 0.73")
    assert check_trailing_comment("0.73, against the species", "adjusted Rand index 0.74")
    assert not check_trailing_comment("(3, 4) 78.94", "(3, 4) 78.94")
    assert check_trailing_comment("(3, 4) 78.94", "(3, 5) 78.94")
    assert not check_trailing_comment("~3e-16", "4.440892098500626e-16")
    assert check_trailing_comment("~3e-16", "1.2e-12")
    assert not check_trailing_comment("torch.Tensor, cpu: X's", "<class 'torch.Tensor'> cpu")
    assert check_trailing_comment("torch.Tensor, numpy.ndarray", "<class 'torch.Tensor'> <class 'numpy.float64'>")
    assert check_trailing_comment("float32 float32", "float64 float32")
    assert check_trailing_comment("True: bit-identical", "False")
    assert check_trailing_comment("'numpy': the explicit backend= followed the move", "torch")
    assert check_trailing_comment("SETOSA SETOSA", "VIRGINICA SETOSA")
    assert not check_trailing_comment("e.g. /home/you/.cache/hml", "/root/.cache/hml")
