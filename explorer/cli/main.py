"""Command-line interface over the explorer library (``python -m explorer ...`` or ``mri-explorer ...``).

One command table (:data:`COMMANDS`): each command is a module of this package with ``NAME``, ``add_parser(sub)`` and
``run(args) -> exit status``; shared options are in :mod:`explorer.cli.options`. Every bad input exits with status 2
and one line ``error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys

from explorer.cli import (app, attack, card, dataset, download, evaluate, experiments, features, files, filtered, lesion,
                          methods, readers, realistic, recon, results, sample, shift, study, train, ttt, tune, zoo)
from explorer.errors import ExplorerError

#: The commands, in the order ``--help`` lists them.
COMMANDS = (app, sample, download, dataset, recon, attack, features, lesion, realistic, ttt, shift, filtered, zoo, study,
            experiments, readers, train, card, methods, files, tune, evaluate, results)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one ``error:`` line and exit status 2."""

    def error(self, message: str):  # noqa: D401
        raise ExplorerError(message)


def parser(prog: str = "python -m explorer") -> argparse.ArgumentParser:
    """The parser of every command in :data:`COMMANDS`."""
    p = _Parser(prog=prog, description="MRI robustness explorer: reconstruct and compare.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None, prog: str = "python -m explorer") -> int:
    """Entry point; returns the process exit status."""
    try:
        args = parser(prog).parse_args(argv)
        return {command.NAME: command for command in COMMANDS}[args.command].run(args)
    except ExplorerError as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else 'invalid input'}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory: use a smaller slice, fewer methods or smaller settings", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001  (a bug: still one line unless debugging)
        if isinstance(exc, ModuleNotFoundError) and exc.name == "fastmri":  # installed apart (see pyproject.toml)
            print("error: fastmri is not installed: pip install --no-deps fastmri==0.3.0", file=sys.stderr)
            return 2
        if os.environ.get("EXPLORER_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set EXPLORER_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def console() -> None:
    """The ``mri-explorer`` console command (``pyproject.toml``): :func:`main` under that name."""
    sys.exit(main(prog="mri-explorer"))


__all__ = ["COMMANDS", "console", "main", "parser"]
