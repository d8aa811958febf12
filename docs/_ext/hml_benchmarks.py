"""The benchmarks page's chart and ratio tables, made at build time from the committed results.

Nothing on the page is a number copied by hand or an image drawn by hand:

- **CPU ratios** come from ``benchmarks/RESULTS.md``: each figure of :data:`CPU_RATIOS` names a table
  (the one after an HTML comment ``<!-- ratios:NAME -->`` there), a row (how its first cell begins) and
  a column. The cell's leading number is the ratio; a range ``a–b`` is drawn as its median when the cell
  gives one (``1.27–1.52 (median 1.31)``), else the range's geometric middle, with a whisker across it.
- **GPU ratios** come from the raw files of one GPU report, ``benchmarks/results/<GPU_REPORT>-run*.json``:
  for each workload, hml on CuPy (the fused k-means kernel where it was measured: the default) and hml on
  PyTorch CUDA, each over the same algorithm hand-written in PyTorch (eager), both sides from the latest
  call that timed both.
- It writes, under ``docs/guides/_generated/`` (ignored by git, and by Sphinx as a source):
  ``benchmark-ratios.png`` (bars from the line at 1, log scale) and ``ratios-cpu.md``/``ratios-gpu.md``
  (the same figures as tables, each with where it was recorded); ``guides/benchmarks.md`` shows them.

A figure that cannot be found -- a marker, row or column renamed, a cell that is not a ratio -- stops the
build with what is missing, rather than drawing a wrong bar. matplotlib (Agg) is imported only when an
input changed: a stamp of their SHA-256 sits beside the outputs (a no-op build adds a few milliseconds).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hml_docs import write_if_changed
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

DOCS = Path(__file__).resolve().parents[1]
REPO = DOCS.parent
RESULTS = REPO / "benchmarks" / "RESULTS.md"
#: The GPU report whose raw files are charted; ``guides/benchmarks.md`` includes its ``.md``.
GPU_REPORT = "gpu-h100-2026-11-23"
GPU_RUNS = REPO / "benchmarks" / "results"
OUT = DOCS / "guides" / "_generated"
CHART = OUT / "benchmark-ratios.png"
CPU_TABLE = OUT / "ratios-cpu.md"
GPU_TABLE = OUT / "ratios-gpu.md"
STAMP = OUT / ".inputs.sha256"


@dataclass(frozen=True)
class Figure:
    """One CPU ratio: in the table after ``<!-- ratios:{table} -->``, the row whose first cell begins
    with ``row`` (bold and code marks aside), the column headed ``column``; drawn with ``label``."""

    table: str
    row: str
    column: str
    label: str


#: The CPU figures charted: hml's time over a peer's, timed side by side in one process. The latest
#: figure of each comparison (RESULTS.md keeps the history; a section re-measuring one supersedes it).
CPU_RATIOS = (
    Figure("logistic-mnist", "ratio", "fit time", "logistic regression, full MNIST\n÷ scikit-learn LogisticRegression"),
    Figure("read-accounting", "MLP epoch", "now", "MLP epoch [784, 25, 10], float64\n÷ the same in PyTorch (CPU)"),
    Figure("mlp-epoch-cpu", "float32", "asv ratio", "MLP epoch [784, 25, 10], float32\n÷ the same in PyTorch (CPU)"),
    Figure(
        "mlp-epoch-fair",
        "MLP epoch alone, float64 ÷ PyTorch",
        "hml ÷ peer",
        "MLP epoch [784, 256, 10], batch 128, float64\n÷ PyTorch SGD (CPU)",
    ),
    Figure(
        "mlp-epoch-fair",
        "MLP epoch alone, float32 ÷ PyTorch",
        "hml ÷ peer",
        "MLP epoch [784, 256, 10], batch 128, float32\n÷ PyTorch SGD (CPU)",
    ),
    Figure(
        "kmeans-compiled",
        "k-means 200,000 × 32, K = 64, float64",
        "hml ÷ peer",
        "k-means 200,000 × 32, K = 64, float64\n(numba extra) ÷ scikit-learn KMeans",
    ),
    Figure(
        "kmeans-compiled",
        "k-means 200,000 × 32, K = 64, float32",
        "hml ÷ peer",
        "k-means 200,000 × 32, K = 64, float32\n(numba extra) ÷ scikit-learn KMeans",
    ),
    Figure(
        "kmeans-gemm-free",
        "k-means 1,000,000 × 16, K = 8",
        "hml ÷ peer",
        "k-means 1,000,000 × 16, K = 8, float64\n(numba extra) ÷ scikit-learn KMeans",
    ),
    Figure(
        "minibatch-kmeans", "one epoch", "time ratio", "mini-batch k-means, one epoch\n÷ scikit-learn MiniBatchKMeans"
    ),
    Figure(
        "unsupervised",
        "ThresholdVsScikitLearn",
        "measured",
        "F1-optimal threshold, 10⁶ scores\n÷ precision_recall_curve",
    ),
    Figure(
        "normal-equation", "10,000 × 16", "hml / scikit-learn", "normal equation, 10,000 × 16\n÷ scikit-learn Ridge"
    ),
    Figure(
        "normal-equation", "200,000 × 64", "hml / scikit-learn", "normal equation, 200,000 × 64\n÷ scikit-learn Ridge"
    ),
    Figure(
        "normal-equation",
        "1,000,000 × 64",
        "hml / scikit-learn",
        "normal equation, 1,000,000 × 64\n÷ scikit-learn Ridge",
    ),
)

#: The GPU sides charted, each a list of variants of the raw files (the first one measured is used).
GPU_SIDES = {"hml on CuPy": ("hml-cupy-fused", "hml-cupy"), "hml on PyTorch CUDA": ("hml-torch",)}
GPU_PEER = "torch-eager"
COLOURS = {"hml on NumPy (CPU)": "#4c72b0", "hml on CuPy": "#55a868", "hml on PyTorch CUDA": "#c44e52"}


@dataclass(frozen=True)
class Ratio:
    """A bar: hml's time over the peer's, ``low``–``high`` when recorded as a range."""

    label: str  # the row of the chart (a GPU workload's two sides share it)
    value: float
    low: float | None
    high: float | None
    shown: str  # the figure as the table writes it
    source: str  # where it was recorded
    side: str  # the series (colour)


# -- RESULTS.md ------------------------------------------------------------------------------------

NUMBER = r"\d+(?:\.\d+)?"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def marked_table(text: str, name: str) -> tuple[list[str], list[list[str]], str]:
    """The header, rows and section heading of the table after ``<!-- ratios:name -->`` in RESULTS.md."""
    marker = f"<!-- ratios:{name} -->"
    if text.count(marker) != 1:
        raise ExtensionError(f"hml_benchmarks: {RESULTS} has {text.count(marker)} markers {marker!r}, expected 1")
    before, after = text.split(marker)
    section = ""  # "section › subsection" of the table
    for level, title in re.findall(r"^(#{2,3}) (.+)$", before, re.M):
        section = title if level == "##" else f"{section.split(' › ')[0]} › {title}"
    lines = after.lstrip("\n").splitlines()
    table = []
    for line in lines:
        if not line.startswith("|"):
            break
        table.append(line)
    if len(table) < 3:
        raise ExtensionError(f"hml_benchmarks: no Markdown table right after {marker!r} in {RESULTS}")
    return _cells(table[0]), [_cells(line) for line in table[2:]], section


def parse_ratio(cell: str, where: str) -> tuple[float, float | None, float | None, str]:
    """(value, low, high, as written) of a cell such as ``**0.35**``, ``0.47–0.48`` or ``1.27–1.52 (median 1.31)``."""
    text = cell.replace("**", "").strip()
    span = re.match(rf"({NUMBER})\s*[–-]\s*({NUMBER})", text)
    if span:
        low, high = float(span.group(1)), float(span.group(2))
        median = re.search(rf"median ({NUMBER})", text)
        if median:
            value = float(median.group(1))
            return value, low, high, f"{median.group(1)} ({span.group(1)}–{span.group(2)})"
        return math.sqrt(low * high), low, high, f"{span.group(1)}–{span.group(2)}"
    single = re.match(NUMBER, text)
    if not single:
        raise ExtensionError(f"hml_benchmarks: {where}: {cell!r} does not begin with a ratio")
    return float(single.group(0)), None, None, single.group(0)


def cpu_ratios(text: str) -> list[Ratio]:
    ratios = []
    for figure in CPU_RATIOS:
        header, rows, section = marked_table(text, figure.table)
        where = f"{RESULTS.name}, table {figure.table!r}"
        if figure.column not in header:
            raise ExtensionError(f"hml_benchmarks: {where} has no column {figure.column!r} (it has {header})")
        matching = [row for row in rows if row[0].replace("**", "").replace("`", "").startswith(figure.row)]
        if len(matching) != 1:
            raise ExtensionError(f"hml_benchmarks: {where}: {len(matching)} rows name {figure.row!r}, expected 1")
        cell = matching[0][header.index(figure.column)]
        value, low, high, shown = parse_ratio(cell, f"{where}, row {figure.row!r}")
        ratios.append(Ratio(figure.label, value, low, high, shown, section, "hml on NumPy (CPU)"))
    return ratios


# -- the GPU report's raw files ----------------------------------------------------------------------


def gpu_runs() -> list[tuple[int, dict[str, Any]]]:
    runs = []
    for path in GPU_RUNS.glob(f"{GPU_REPORT}-run*.json"):
        number = re.fullmatch(rf"{re.escape(GPU_REPORT)}-run(\d+)\.json", path.name)
        if number:
            runs.append((int(number.group(1)), json.loads(path.read_text(encoding="utf-8"))))
    if not runs:
        raise ExtensionError(f"hml_benchmarks: no {GPU_REPORT}-run*.json in {GPU_RUNS}")
    return sorted(runs, key=lambda run: run[0])


def _seconds(run: dict[str, Any], workload: str, variant: str) -> float | None:
    for row in run["rows"]:
        if row["workload"] == workload and row["variant"] == variant and row["seconds"] is not None:
            return float(row["seconds"])
    return None


SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def compact(workload: str) -> str:
    """A raw file's workload, shorter: ``N=10,000,000`` as ``N=10⁷``, no ``float32`` (every GPU figure is)."""

    def power_of_ten(match: re.Match[str]) -> str:
        digits = match.group(0).replace(",", "")
        if digits.startswith("1") and set(digits[1:]) == {"0"} and len(digits) > 4:
            return "10" + str(len(digits) - 1).translate(SUPERSCRIPTS)
        return match.group(0)

    short = re.sub(r",? float32", "", workload).replace(" × ", "×")
    return re.sub(r"\d{1,3}(?:,\d{3})+", power_of_ten, short)


def gpu_ratios(runs: list[tuple[int, dict[str, Any]]]) -> tuple[list[Ratio], list[tuple[str, ...]]]:
    """The bars, and the table rows (workload, side and call, hml ms, peer ms, ratio)."""
    workloads = list(dict.fromkeys(row["workload"] for _, run in runs for row in run["rows"]))  # first seen first
    ratios: list[Ratio] = []
    table: list[tuple[str, ...]] = []
    for workload in workloads:
        found_sides = []
        for side, variants in GPU_SIDES.items():
            for number, run in reversed(runs):  # the latest call that timed both sides
                peer = _seconds(run, workload, GPU_PEER)
                found = [(v, s) for v in variants if (s := _seconds(run, workload, v)) is not None]
                if peer is None or not found:
                    continue
                variant, seconds = found[0]
                found_sides.append((side, number, seconds / peer))
                table.append(
                    (
                        compact(workload),
                        f"{side} (`{variant}`), call {number}",
                        f"{seconds * 1e3:.2f}",
                        f"{peer * 1e3:.2f}",
                        f"**{seconds / peer:.2f}**",
                    )
                )
                break
        calls = sorted({number for _, number, _ in found_sides})
        call = f"call{'s' * (len(calls) > 1)} {', '.join(map(str, calls))}"
        label = "\n".join(textwrap.wrap(f"{compact(workload)} ({call})", 30))
        ratios += [Ratio(label, r, None, None, f"{r:.2f}", f"call {n}", side) for side, n, r in found_sides]
    if not ratios:
        raise ExtensionError(f"hml_benchmarks: no workload of {GPU_REPORT} has both hml and {GPU_PEER} timed")
    return ratios, table


# -- outputs -----------------------------------------------------------------------------------------


def markdown_tables(cpu: list[Ratio], gpu_table: list[tuple[str, ...]]) -> tuple[str, str]:
    cpu_lines = ["| comparison | hml ÷ peer | recorded in `benchmarks/RESULTS.md` |", "| --- | ---: | --- |"]
    cpu_lines += [f"| {r.label.replace(chr(10), ' ')} | **{r.shown}** | {r.source} |" for r in cpu]
    gpu_lines = [
        "| workload | hml | hml (ms) | PyTorch (ms) | hml ÷ PyTorch |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    gpu_lines += ["| " + " | ".join(row) + " |" for row in gpu_table]
    return "\n".join(cpu_lines) + "\n", "\n".join(gpu_lines) + "\n"


def chart(panels: list[tuple[str, list[Ratio]]]) -> bytes:
    """Horizontal bars from the line at 1 (left of it, hml is faster), log scale, one panel per machine;
    the bars sharing a label (a GPU workload's sides) side by side in one row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    values = [x for _, ratios in panels for r in ratios for x in (r.value, r.low or r.value, r.high or r.value)]
    left, right = min(values) / 2.5, max(values) * 2.5
    ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if left <= t <= right]
    rows = [list(dict.fromkeys(r.label for r in ratios)) for _, ratios in panels]
    lines = [sum(label.count("\n") + 1 for label in labels) for labels in rows]
    heights = [max(len(labels), n / 2) for labels, n in zip(rows, lines, strict=True)]
    with plt.rc_context(
        {"font.size": 10.5, "axes.spines.top": False, "axes.spines.right": False, "axes.spines.left": False}
    ):
        figure, axes = plt.subplots(
            len(panels),
            1,
            figsize=(7, 0.5 * sum(heights) + 1.0 * len(panels)),
            gridspec_kw={"height_ratios": heights},
            layout="constrained",
            squeeze=False,
        )
        handles: dict[str, Any] = {}
        for ax, (title, ratios), labels in zip(axes[:, 0], panels, rows, strict=True):
            sides = list(dict.fromkeys(r.side for r in ratios))
            height = 0.7 / len(sides)
            for r in ratios:
                row = len(labels) - 1 - labels.index(r.label)  # the first label at the top
                y = row + ((len(sides) - 1) / 2 - sides.index(r.side)) * height  # the sides top to bottom
                ax.barh(y, r.value - 1, left=1, height=height * 0.9, color=COLOURS[r.side], label=r.side)
                if r.low is not None and r.high is not None:
                    ax.errorbar(
                        r.value,
                        y,
                        xerr=[[r.value - r.low], [r.high - r.value]],
                        fmt="none",
                        ecolor="black",
                        elinewidth=1,
                        capsize=3,
                    )
                faster = r.value < 1
                end = (r.low if faster else r.high) or r.value
                ax.annotate(
                    f"{r.shown}×",
                    (end, y),
                    xytext=(-4 if faster else 4, 0),
                    textcoords="offset points",
                    ha="right" if faster else "left",
                    va="center",
                    fontsize=10,
                )
            ax.axvline(1, color="black", linewidth=1.2)
            ax.set_xscale("log")
            ax.set_xlim(left, right)
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([f"{t:g}×" for t in ticks])
            ax.set_yticks(range(len(labels))[::-1], labels, fontsize=10.5)
            ax.tick_params(axis="y", length=0)
            ax.set_ylim(-0.6, len(labels) - 0.4)
            ax.set_title("\n".join(textwrap.wrap(title, 38)), loc="left", fontsize=10.5, fontweight="bold")
            ax.grid(axis="x", color="#dddddd", linewidth=0.6)
            ax.set_axisbelow(True)
            handles.update(zip(*ax.get_legend_handles_labels()[::-1], strict=True))
        axes[-1, 0].set_xlabel("hml's time ÷ the peer's time (log scale)\nleft of the line at 1, hml is faster")
        if len(handles) > 1:
            figure.legend(
                handles.values(),
                handles.keys(),
                loc="outside lower center",
                ncol=len(handles),
                fontsize=9.5,
                frameon=False,
            )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=200, metadata={"Software": None})
        plt.close(figure)
    return buffer.getvalue()


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    for path in [Path(__file__), RESULTS, *sorted(GPU_RUNS.glob(f"{GPU_REPORT}-run*.json"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def generate(app: Sphinx | None = None) -> None:
    """Write the chart and the tables when an input changed since the last build."""
    digest = _inputs_digest()
    outputs = (CHART, CPU_TABLE, GPU_TABLE)
    if STAMP.is_file() and STAMP.read_text() == digest and all(path.is_file() for path in outputs):
        return
    cpu = cpu_ratios(RESULTS.read_text(encoding="utf-8"))
    runs = gpu_runs()
    gpu, gpu_table = gpu_ratios(runs)
    gpu_name = runs[-1][1].get("info", {}).get("gpu", "GPU")
    cpu_md, gpu_md = markdown_tables(cpu, gpu_table)
    png = chart(
        [
            ("CPU (2 cores): hml on NumPy ÷ scikit-learn or PyTorch, in one process", cpu),
            (f"GPU ({gpu_name}, float32): hml ÷ the same, hand-written in PyTorch", gpu),
        ]
    )
    write_if_changed(CHART, png)
    write_if_changed(CPU_TABLE, cpu_md.encode())
    write_if_changed(GPU_TABLE, gpu_md.encode())
    write_if_changed(STAMP, digest.encode())


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
