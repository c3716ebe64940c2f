"""The ``napari-useg`` command line.

Every module of this package (not starting with ``_``) is a subcommand: it
defines ``NAME``, ``HELP``, ``add_arguments(parser, argv)`` and ``run(args) -> int``.
Method parameters become options through :mod:`napari_useg.cli._params`, read
from the method's own declaration.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from napari_useg.core.version import __version__

__all__ = ["main", "build_parser"]

#: Errors shown as one line (no traceback): bad input, files, parameters, and a run
#: refused because it would not fit in memory (the message names both numbers).
USER_ERRORS = (ValueError, TypeError, FileExistsError, FileNotFoundError, KeyError,
               NotADirectoryError, IsADirectoryError, PermissionError, MemoryError)


def _commands() -> list:
    pkg = sys.modules[__name__]
    mods = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            mods.append(importlib.import_module(f"{__name__}.{info.name}"))
    return mods


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full parser; ``argv`` lets commands add options of the chosen ``--method``."""
    parser = argparse.ArgumentParser(
        prog="napari-useg",
        description="Unsupervised image segmentation (napari-useg).",
    )
    parser.add_argument("--version", action="version", version=f"napari-useg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p, list(argv))
        p.set_defaults(_run=mod.run)
    return parser


def _warning_printer(command: str):
    """``warnings.showwarning`` for a command: one line on stderr, no source line."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        kind = "" if issubclass(category, UserWarning) else f" ({category.__name__})"
        print(f"napari-useg {command}: warning{kind}: {message}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``napari-useg``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            return int(args._run(args) or 0)
    except USER_ERRORS as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"napari-useg {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"napari-useg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
