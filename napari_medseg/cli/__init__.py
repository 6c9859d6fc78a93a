"""``napari-medseg`` command line. Each subcommand is a module of this package that defines
``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; they are found automatically."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from napari_medseg.core.errors import MedsegError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-medseg", description=__doc__.split(".")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        p = sub.add_parser(info.name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except MedsegError as exc:
        print(f"napari-medseg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # stdout closed early (``info --json | head -1``): end quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"napari-medseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
