"""The distribution: its name, metadata, typing marker, changelog and version, said once and consistently;
the API reference lists every public name. (CI also builds the wheel, runs ``twine check`` and runs the
suite against the installed wheel: ``.ci/run``.)"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
from pathlib import Path

import pytest

import hml

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DISTRIBUTION = PROJECT["name"]

#: The modules whose ``__all__`` is public API (the rest of hml is private, or re-exported from these).
PUBLIC_MODULES = [
    "hml",
    "hml.backends",
    "hml.datasets",
    "hml.metrics",
    "hml.model_selection",
    "hml.plotting",
    "hml.optimize",
    "hml.persistence",
    "hml.notebook",
    "hml.features",
    "hml.numerics",
    "hml.exceptions",
    "hml.kernels",
    "hml.linear_model",
    "hml.neural_network",
    "hml.cluster",
    "hml.anomaly",
]


def test_the_distribution_is_named_apart_from_the_import_name():
    assert DISTRIBUTION == "homemade-ml"
    assert PROJECT["scripts"] == {"hml": "hml.cli:main"}
    assert PROJECT["dynamic"] == ["version", "readme"] and "version" not in PROJECT and "readme" not in PROJECT


def test_classifiers_name_every_python_from_the_floor_to_3_13():
    floor = re.fullmatch(r">=3\.(\d+)", PROJECT["requires-python"]).group(1)
    listed = {
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert listed == {f"3.{minor}" for minor in range(int(floor), 14)}
    assert "Typing :: Typed" in PROJECT["classifiers"]


def test_the_package_is_typed_and_licensed():
    assert (Path(hml.__file__).parent / "py.typed").is_file()
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert {"Source", "Documentation", "Changelog", "Issues"} <= set(PROJECT["urls"])


def test_the_installed_metadata_is_this_version():
    """One version, in hml/__init__.py: what the installed distribution reports (editable or wheel)."""
    try:
        installed = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{DISTRIBUTION} is not installed (run from a checkout without pip install)")
    assert installed == hml.__version__
    version_strings = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "hml").rglob("*.py")
        if re.search(r"^__version__\s*=", path.read_text(encoding="utf-8"), re.M)
    ]
    assert version_strings == ["hml/__init__.py"]


def test_the_pypi_page_is_the_readme_with_its_relative_links_made_absolute():
    """On pypi.org a relative link resolves against pypi.org and breaks: the installed description (what PyPI
    shows) is README.md with each relative link pointing into the repository, and only that changed."""
    try:
        metadata = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{DISTRIBUTION} is not installed (run from a checkout without pip install)")
    assert metadata["Description-Content-Type"].startswith("text/markdown")
    # The body (the standard library's adapter) or a Description field (importlib_metadata's, where installed).
    description = metadata["Description"] or metadata.get_payload()
    repository = PROJECT["urls"]["Source"]
    assert repository == "https://github.com/homemade-ml/homemade-ml"
    files, raw = f"{repository}/blob/main/", "https://raw.githubusercontent.com/homemade-ml/homemade-ml/main/"
    targets = re.findall(r"\]\(([^)\s]+)\)", description)
    assert len(targets) > 20
    relative = [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]
    assert not relative, f"relative links on the PyPI page: {relative}"
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", description)
    assert images and all(image.startswith(raw) for image in images)
    into_repository = [t.removeprefix(files).removeprefix(raw) for t in targets if t.startswith((files, raw))]
    assert len(into_repository) >= 15  # the notebooks, the guides, the licence ...
    missing = [path for path in into_repository if not (ROOT / path).is_file()]
    assert not missing, f"links to files the repository does not have: {missing}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = description.replace(files, "").replace(raw, "").strip()
    direct_url = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json") or "{}"
    if unlinked != readme.strip() and json.loads(direct_url).get("dir_info", {}).get("editable"):
        pytest.skip("the editable install's metadata predates README.md's last edit: pip install -e . again")
    assert unlinked == readme.strip()


def test_the_changelog_keeps_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog")
    assert "keepachangelog.com" in text and "semver.org" in text.lower()
    sections = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert sections and sections[0] in ("Unreleased", hml.__version__)
    assert re.search(r"^### Added$", text, re.M)


def test_the_browser_notebooks_install_this_distribution():
    """The JupyterLite notebooks install hml by its distribution's name (the site's wheel is named so)."""
    installs = [
        (path.name, requirement)
        for path in sorted((ROOT / "notebooks").glob("*/*.ipynb"))
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
        for requirement in re.findall(r"piplite\.install\(\[([^\]]*)\]", "".join(cell["source"]))
    ]
    assert installs, "no notebook installs hml in the browser"
    assert {requirement.split(",")[0] for _, requirement in installs} == {f'"{DISTRIBUTION}"'}, installs


def test_the_api_reference_lists_every_public_name():
    reference = (ROOT / "docs" / "api" / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   ([\w.]+)$", reference, re.M))
    current = None
    documented = set()
    for line in reference.splitlines():
        if line.startswith(".. currentmodule:: "):
            current = line.split(":: ")[1]
        elif re.fullmatch(r"   [\w.]+", line) and current:
            documented.add(f"{current}.{line.strip()}")
    assert listed
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if name == "__version__" or isinstance(obj, type(hml)):  # the version; submodules have sections
                continue
            # Documented under any public path that reaches the same object.
            if not any(_reaches(path, obj) for path in documented if path.rsplit(".", 1)[1] == name):
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names missing from docs/api/index.rst: {missing}"


def _reaches(path: str, obj: object) -> bool:
    module_name, _, rest = path.partition(".")
    target: object = importlib.import_module(module_name)
    for part in rest.split("."):
        target = getattr(target, part, None)
        if target is None:
            return False
    return target is obj


def test_the_site_builder_removes_only_a_site_it_built(tmp_path):
    """``lite/build.py --output DIR`` deleted DIR whatever it held, minutes before it checked ``--pyodide``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lite_build", ROOT / "lite" / "build.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "precious.txt").write_text("my work")
    pyodide = tmp_path / "pyodide"
    pyodide.mkdir()
    with pytest.raises(SystemExit, match=r"--pyodide .*: no pyodide.js and pyodide-lock.json there"):
        builder.build(mine, pyodide)
    (pyodide / "pyodide.js").write_text("")
    (pyodide / "pyodide-lock.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"work exists and is not a site this script built \(no jupyter-lite.json\)"):
        builder.build(mine, pyodide)
    assert (mine / "precious.txt").read_text() == "my work"
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(SystemExit, match=r"afile is a file; give a folder for the site"):
        builder.build(afile, pyodide)
    interrupted = tmp_path / "_site-source"  # a build stopped after its first step: the script's own folder
    (interrupted / "files").mkdir(parents=True)
    (interrupted / builder.SOURCE_MARK).write_text("")
    with pytest.raises(SystemExit, match=r"jupyterlite-core is not installed|the site was not built") as stopped:
        if importlib.util.find_spec("jupyterlite_core") is not None:
            pytest.skip("jupyterlite-core is installed: a build would run")
        builder.build(tmp_path / "site", pyodide)
    assert "is not a site this script built" not in str(stopped.value)


def test_install_hints_name_what_pip_can_install():
    """The distribution is homemade-ml: "pip install hml[plot]" installs another project, or nothing."""
    for path in (ROOT / "hml").rglob("*.py"):
        assert 'pip install "hml[' not in path.read_text(encoding="utf-8"), path
