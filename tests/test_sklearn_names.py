"""docs/scikit-learn.md lists every parameter and method an hml estimator and its scikit-learn
counterpart do not share, or share under another name or meaning: the tables against the classes."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import hml

pytest.importorskip("sklearn")

PAGE = Path(__file__).resolve().parents[1] / "docs" / "scikit-learn.md"
#: What every hml estimator has beyond scikit-learn's (the page says so once, above the tables).
EVERYWHERE = {"backend", "device", "dtype", "save", "to"}


def _sections() -> dict[str, tuple[str, list[tuple[str | None, str | None]]]]:
    """{hml class: (scikit-learn dotted path, [(hml name, scikit-learn name), ...])}, names as written
    (``fit()`` for a method, None for —)."""
    sections = {}
    for block in PAGE.read_text(encoding="utf-8").split("\n## ")[1:]:
        heading, *lines = block.splitlines()
        ours, theirs = (part.strip() for part in heading.split("↔"))
        rows = []
        for line in lines:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(cells) == 3 and cells[0] not in ("hml", "---"):
                rows.append(tuple(None if cell == "—" else cell.strip("`") for cell in cells[:2]))
        sections[ours] = (theirs, rows)
    return sections


def _names(cls: type) -> set[str]:
    """Its parameters, and its public methods as ``name()``."""
    params = set(cls().get_params())
    methods = {
        f"{name}()"
        for name in dir(cls)
        if not name.startswith("_")
        and callable(getattr(cls, name))
        and name not in ("get_params", "set_params", "get_metadata_routing")
        and not name.startswith("set_")
    }
    return params | methods


SECTIONS = _sections()


def test_every_estimator_has_its_table():
    public = {
        spec for spec in hml.__all__ if isinstance(getattr(hml, spec), type) and hasattr(getattr(hml, spec), "fit")
    }
    assert set(SECTIONS) == public


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_the_table_is_every_difference(name):
    path, rows = SECTIONS[name]
    module, _, cls_name = path.rpartition(".")
    ours, theirs = (
        _names(getattr(hml, name)) - {f"{n}()" for n in EVERYWHERE} - EVERYWHERE,
        _names(getattr(importlib.import_module(module), cls_name)),
    )
    for hml_name, sklearn_name in rows:
        row = f"{name} row ({hml_name} | {sklearn_name})"
        if hml_name is not None:
            assert hml_name in ours, f"{row}: hml has no {hml_name}"
            if sklearn_name is None:
                assert hml_name not in theirs, f"{row}: scikit-learn has {hml_name} too"
        if sklearn_name is not None:
            assert sklearn_name in theirs, f"{row}: scikit-learn has no {sklearn_name}"
            if hml_name is None:
                assert sklearn_name not in ours, f"{row}: hml has {sklearn_name} too"
    listed_ours = {hml_name for hml_name, _ in rows if hml_name is not None}
    listed_theirs = {sklearn_name for _, sklearn_name in rows if sklearn_name is not None}
    assert not (ours - theirs) - listed_ours, f"{name}: not in its table: {sorted((ours - theirs) - listed_ours)}"
    assert not (theirs - ours) - listed_theirs, (
        f"{name}: scikit-learn's, not in the table: {sorted((theirs - ours) - listed_theirs)}"
    )
    assert all(re.fullmatch(r"\w+(\(\))?", n) for n in listed_ours | listed_theirs)
