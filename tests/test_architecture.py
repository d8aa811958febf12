"""The layers of the library and which may import which -- the table CONTRIBUTING.md shows.

Read from the source (every ``import`` of every module, at any depth), so the page and
the code cannot drift apart:

* a module imports only from layers below its own, never from its own layer (the
  estimators never import each other; shared numerics live in ``hml.numerics``);
* no module imports another module's private (``_``-prefixed) name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hml"

#: Bottom to top. A module may import any module of a lower layer; the top layer (the
#: applications built on the library) may import anything.
LAYERS: list[set[str]] = [
    {"hml.exceptions", "hml._files", "hml._platform", "hml._routing"},
    {"hml.backends"},
    {"hml.kernels"},
    {"hml._array", "hml._labels", "hml._params", "hml.numerics"},
    {
        "hml._concrete",
        "hml._declarations",
        "hml.optimize",
        "hml._kmeans",
        "hml.metrics",
        "hml.model_selection",
        "hml.datasets",
        "hml.persistence",
    },
    {
        "hml.base",
        "hml._linear_objectives",
        "hml._mlp",
        "hml._mlp_partial",
        "hml._minibatch",
        "hml._seeding",
        "hml._reseeding",
        "hml._outputs",
    },
    {"hml.features", "hml._centroids"},
    {"hml.linear_model", "hml.neural_network", "hml.cluster", "hml.anomaly"},
    {"hml", "hml.__main__", "hml.plotting", "hml.notebook", "hml.demo", "hml.demo_steps", "hml.cli"},
]


def _unit(module: str) -> str:
    """The layer unit of a module: a subpackage's private modules belong to the subpackage."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in ("backends", "datasets", "kernels", "optimize"):
        return ".".join(parts[:2])
    return module


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every import of hml in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hml":
            names = [alias.name for alias in node.names]
            if node.module == "hml":  # from hml import backends, ... : submodules
                submodules = [n for n in names if (PACKAGE / f"{n}.py").exists() or (PACKAGE / n).is_dir()]
                found += [(f"hml.{n}", [], node.lineno) for n in submodules]
                names = [n for n in names if n not in submodules]
                if names:
                    found.append(("hml", names, node.lineno))
            else:
                found.append((node.module, names, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name.split(".")[0] == "hml"]
    return found


def _layer(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"{unit} is in no layer: add it to LAYERS here and to CONTRIBUTING.md")


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_imports_follow_the_layers(path):
    unit = _unit(_module_name(path))
    level = _layer(unit)
    if level == len(LAYERS) - 1:
        return
    for module, _, line in _imports(path):
        target = _unit(module)
        if target == unit:
            continue  # a subpackage's own modules
        assert _layer(target) < level, (
            f"{_module_name(path)}:{line} imports {module} (layer {_layer(target)}) from layer {level}: "
            "import only from lower layers (see CONTRIBUTING.md)"
        )


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_no_module_imports_another_modules_private_name(path):
    unit = _unit(_module_name(path))
    for module, names, line in _imports(path):
        if _unit(module) == unit:
            continue
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{_module_name(path)}:{line} imports private {private} from {module}"


def test_every_module_is_in_a_layer():
    for path in MODULES:
        _layer(_unit(_module_name(path)))


def test_contributing_page_shows_the_same_layers():
    """CONTRIBUTING.md's layer table lists exactly the modules of LAYERS, layer by layer."""
    import re

    text = (PACKAGE.parent / "CONTRIBUTING.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d) \| (.*?) \|", text, flags=re.M)
    assert [int(number) for number, _ in rows] == list(range(len(LAYERS)))
    for (number, cell), layer in zip(rows, LAYERS, strict=True):
        named = set(re.findall(r"`(hml[\w.]*)`", cell))
        assert named == layer, f"layer {number}: CONTRIBUTING.md names {sorted(named)}, the test {sorted(layer)}"


#: Array-API calls whose array_api_compat forms synchronise a GPU, found by the first GPU run
#: (tests/test_host_transfers.py catches the torch case on the CPU too): ``xp.clip`` is
#: boolean-mask assignment on CuPy; a Python scalar operand of ``xp.maximum``/``xp.minimum`` is
#: copied to the device on torch. ``hml.numerics.positive_part`` is max(x, 0) without either.
_SYNCING_CALLS = {"clip": "any operands", "maximum": "a Python number", "minimum": "a Python number"}


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if "backends" not in p.parts and "kernels" not in p.parts],
    ids=[_module_name(p) for p in MODULES if "backends" not in p.parts and "kernels" not in p.parts],
)
def test_no_array_api_call_that_synchronises_a_gpu(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "xp"
        ):
            continue
        name = node.func.attr
        numbers = [
            a
            for a in node.args
            if isinstance(a, ast.Constant)
            and isinstance(a.value, (int, float))
            or isinstance(a, ast.UnaryOp)
            and isinstance(a.operand, ast.Constant)
        ]
        assert not (name == "clip" or name in _SYNCING_CALLS and numbers), (
            f"{_module_name(path)}:{node.lineno} calls xp.{name} with {_SYNCING_CALLS.get(name)}: on a GPU "
            "that synchronises (use hml.numerics.positive_part, or a 0-d array made on the device)"
        )


#: The modules written against the array API only: the estimators and what they share.
ALGORITHMS = [
    path for path in MODULES if _layer(_unit(_module_name(path))) in (_layer("hml.features"), len(LAYERS) - 2)
]


@pytest.mark.parametrize("path", ALGORITHMS, ids=[_module_name(p) for p in ALGORITHMS])
def test_algorithms_leave_blocks_threads_and_chunks_to_the_row_primitive(path):
    """No estimator names Dask, a thread or a chunk in its code: how rows are split into blocks,
    threads or Dask chunks is hml.backends.reduce_rows' choice alone (docstrings and comments may
    still say what happens on Dask)."""
    words = ("dask", "thread", "chunk")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
        elif isinstance(node, (ast.FunctionDef, ast.arg, ast.keyword)):
            names = [getattr(node, "name", None) or getattr(node, "arg", None) or ""]
        else:
            continue
        found = [name for name in names if any(word in name.lower() for word in words)]
        assert not found, f"{_module_name(path)}:{node.lineno} names {found}: use hml.backends.reduce_rows"


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_no_module_is_over_450_lines(path):
    """A module that grows past this holds more than one idea: split it (as optimize/ and kernels/ were)."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 450, f"{_module_name(path)} has {lines} lines: split it"
