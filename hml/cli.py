"""The ``hml`` command line: ``hml info``."""

from __future__ import annotations

import argparse
import platform
import sys

__all__ = ["main"]


def _info(args: argparse.Namespace) -> int:
    import hml
    from hml.backends import available_backends, get_backend

    print(f"hml {hml.__version__} (Python {platform.python_version()}, {platform.platform()})")
    print(f"selected backend: {get_backend()}")
    print("backends:")
    for status in available_backends().values():
        if status.available:
            print(f"  {status.name:<17} available    {status.version:<14} devices: {', '.join(status.devices)}")
        else:
            print(f"  {status.name:<17} unavailable  {status.reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hml", description="homemade machine learning")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="version, backends (importable or why not) and devices")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
