"""Output files and folders of the commands: nothing written earlier is replaced without ``--force``.

A command names the files it writes (glob patterns, e.g. ``attack.csv``, ``e_*.npy``); an ``--out`` folder that
already holds files of those names is refused before any work, with one line naming one of them, unless the user
adds ``--force``. A single output file (``study --csv``) is checked the same way, and for being writable, before
the work that fills it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Iterable

from explorer.errors import ExplorerError


def add_force(parser: argparse.ArgumentParser, what: str = "--out") -> None:
    """Add ``--force``: replace the outputs of an earlier run in ``what``."""
    parser.add_argument("--force", action="store_true",
                        help=f"replace the files an earlier run wrote in {what} (refused without it)")


def refuse_earlier(out: str | None, patterns: Iterable[str], force: bool, flag: str = "--out") -> None:
    """Refuse an output folder holding files of the names this command writes, unless ``force``.

    Args:
        out: the folder (None: no output asked for).
        patterns: glob patterns of the command's output files, relative to the folder.

    Raises:
        ExplorerError: the folder holds such a file (one named) and ``force`` is False.
    """
    if out is None or force:
        return
    path = Path(out).expanduser()
    if not path.is_dir():
        return
    found = sorted({p.name for pattern in patterns for p in path.glob(pattern) if p.is_file()})
    if found:
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        raise ExplorerError(f"{flag} {path} already holds {found[0]}{more} from an earlier run; add --force to "
                            f"replace them, or choose another {flag}")


def check_output_file(path: str, force: bool, flag: str) -> Path:
    """An output file checked before any work: not a folder, its folder exists and is writable, and an existing
    file only with ``force``.

    Raises:
        ExplorerError: one line naming the problem.
    """
    if not path.strip():
        raise ExplorerError(f"{flag} is empty: give a file name")
    target = Path(path).expanduser()
    if target.is_dir():
        raise ExplorerError(f"{flag} {target} is a folder; give a file name")
    if target.exists() and not force:
        raise ExplorerError(f"{flag} {target} exists; add --force to replace it, or choose another name")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise ExplorerError(f"{flag} {target}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ExplorerError(f"{flag} {target} is not writable")
    return target


__all__ = ["add_force", "check_output_file", "refuse_earlier"]
