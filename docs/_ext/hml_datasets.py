"""The data sets guide's catalogue, written at build time from hml's registry (``hml.datasets.DATASETS``).

``data/README.md`` holds the same catalogue as one wide Markdown table (``hml data catalogue``; a test
keeps it equal to the registry). A page of the site is narrower than GitHub's, so this writes the
registry's entries as cards, one per data set, and the files with their checksums as a list, into
``docs/guides/_generated/catalogue.md`` (ignored by git, and by Sphinx as a source), which
``guides/datasets.md`` includes. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hml_docs import write_if_changed
from sphinx.application import Sphinx

OUT = Path(__file__).resolve().parents[1] / "guides" / "_generated" / "catalogue.md"


def catalogue() -> str:
    from hml.datasets import DATASETS, human_size

    lines = ["::::{grid} 1 1 2 2", ":gutter: 2", ""]
    for info in DATASETS.values():
        used_by = ", ".join(
            folder.strip().strip("/").rpartition("/")[2].replace("_", " ") for folder in info.notebook.split(",")
        )
        lines += [
            f":::{{grid-item-card}} {info.title}",
            f"{{py:func}}`~hml.datasets.{info.loader}` · `{info.name}` · {human_size(info.size)}",
            "",
            f"{info.description}.",
            "",
            f"**Source:** {info.source}. **Licence:** {info.licence}. **Notebooks:** {used_by}.",
            ":::",
            "",
        ]
    lines += ["::::", ""]
    lines += ["Each file, as it sits in the cache and in a mirror, with its size and checksum:", ""]
    for info in DATASETS.values():
        for file in info.files:
            checksums = [f"SHA-256 of the content `{file.sha256}`"] if file.sha256 else []
            checksums += [f"MD5 of the archive `{file.archive_md5}`"] if file.archive_md5 else []
            lines += [f"`{file.key}` ({file.size:,} bytes)", *(f": {checksum}" for checksum in checksums), ""]
    return "\n".join(lines)


def write_catalogue(app: Sphinx | None = None) -> None:
    write_if_changed(OUT, catalogue().encode())


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", write_catalogue)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
