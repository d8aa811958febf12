"""The ``hml`` command line: ``hml demo``, ``hml info``, ``hml data list|fetch|catalogue``.

Also ``python -m hml``; a bare ``hml`` (or ``hml data``) prints its help.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings

__all__ = ["main"]


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    """A warning as a line of the command's own: hml.exceptions.warn names the caller's line, which on the command
    line is the console script's wrapper (``bin/hml:6: ... sys.exit(main())``)."""
    print(f"hml: {category.__name__}: {message}", file=sys.stderr)


def _info(args: argparse.Namespace) -> int:
    import hml
    from hml.backends import available_backends, get_backend
    from hml.exceptions import BackendUnavailableError
    from hml.kernels import compiled_loops

    print(f"hml {hml.__version__} (Python {platform.python_version()}, {platform.platform()})")
    exit_status = 0
    statuses = available_backends()
    try:
        selected = get_backend()
        print(f"selected backend: {selected}")
        if selected in statuses and not statuses[selected].available:  # named, but a fit would raise
            print(f"  but {selected} is unavailable here: {statuses[selected].reason}")
            exit_status = 1
    except BackendUnavailableError as exc:  # a misspelled HML_BACKEND: say so, and list what there is
        print(f"selected backend: none -- {exc}")
        exit_status = 1
    print("backends:")
    for status in statuses.values():
        if status.available:
            print(f"  {status.name:<17} available    {status.version:<14} devices: {', '.join(status.devices)}")
        else:
            print(f"  {status.name:<17} unavailable  {status.reason}")
    print(f"compiled loops: {compiled_loops()}")
    return exit_status


def _data_list(args: argparse.Namespace) -> int:
    from hml.datasets import DATASETS, cache_status, data_home, human_size

    home = data_home(args.data_home)
    print(f"cache: {home}")
    print(f"{'name':<22}{'download':>10}  status")
    for info in DATASETS.values():
        states = [cache_status(f, home) for f in info.files]
        summary = (
            "cached"
            if all(s == "cached" for s in states)
            else ", ".join(f"{f.filename} {s}" for f, s in zip(info.files, states, strict=True) if s != "cached")
        )
        print(f"{info.name:<22}{human_size(info.size):>10}  {summary}")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from hml.datasets import DATASETS, fetch
    from hml.exceptions import DatasetError

    names = list(DATASETS) if args.names == ["all"] else args.names
    failed = []
    for name in names:
        try:
            paths = fetch(name, args.data_home)
        except (DatasetError, ValueError) as exc:
            failed.append(name)
            print(f"{name}: FAILED -- {exc}", file=sys.stderr)
            continue
        print(f"{name}: " + ", ".join(str(p) for p in paths))
    if failed:
        print(f"could not fetch: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _data_catalogue(args: argparse.Namespace) -> int:
    from hml.datasets import catalogue_markdown

    sys.stdout.write(catalogue_markdown())
    return 0


def _demo(args: argparse.Namespace) -> int:
    from hml.demo import run_demo

    return run_demo(backend=args.backend, device=args.device, only=args.only, out=args.out)


def _help(parser: argparse.ArgumentParser) -> int:
    """A command given without its sub-command: its help, and success (it is a question, not an error)."""
    parser.print_help()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``hml`` command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    import hml
    from hml.demo import STEPS

    parser = argparse.ArgumentParser(prog="hml", description="homemade machine learning")
    parser.add_argument("--version", action="version", version=f"hml {hml.__version__}")
    parser.set_defaults(run=lambda args: _help(parser))
    commands = parser.add_subparsers(dest="command", metavar="{demo,info,data}")
    demo = commands.add_parser(
        "demo",
        help="train the five algorithms on their demo data sets: a table, PNG plots and results.json",
        description="Train each algorithm on its demo data set (downloaded on first use), print a table of "
        "metrics, fit times and quality floors, and write PNG plots and results.json to --out.",
    )
    demo.add_argument("--backend", default="numpy", help="numpy (default), cupy, torch, dask or array_api_strict")
    demo.add_argument("--device", default=None, help="a device of the backend, e.g. cuda or cuda:1 for torch")
    demo.add_argument(
        "--only", nargs="+", metavar="NAME", choices=list(STEPS), help=f"run only these: {', '.join(STEPS)}"
    )
    demo.add_argument("--out", default="hml-demo", help="folder for the plots and results.json (default ./hml-demo)")
    demo.set_defaults(run=_demo)
    info = commands.add_parser("info", help="version, backends (importable or why not) and devices")
    info.set_defaults(run=_info)

    data_parser = commands.add_parser("data", help="the data sets: list, fetch, catalogue")
    data_parser.set_defaults(run=lambda args: _help(data_parser))
    data = data_parser.add_subparsers(dest="action", metavar="{list,fetch,catalogue}")
    listing = data.add_parser("list", help="each data set: size and whether it is in the cache (checksums verified)")
    listing.set_defaults(run=_data_list)
    fetching = data.add_parser("fetch", help="download data sets into the cache (honours HML_DATA_MIRROR)")
    fetching.add_argument("names", nargs="+", metavar="NAME", help="a data set name from `hml data list`, or all")
    fetching.set_defaults(run=_data_fetch)
    for sub in (listing, fetching):
        sub.add_argument("--data-home", default=None, help="cache folder (default: $HML_DATA_HOME or the user cache)")
    catalogue = data.add_parser("catalogue", help="print the Markdown catalogue that data/README.md holds")
    catalogue.set_defaults(run=_data_catalogue)
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():  # restored on return: main() may run inside a Python session
            warnings.showwarning = _show_warning
            status: int = args.run(args)
        sys.stdout.flush()  # here, not at exit: a buffered write to a reader that left fails in the flush
    except BrokenPipeError:  # `hml data list | head -1`: the reader left; no traceback (Python's own recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
