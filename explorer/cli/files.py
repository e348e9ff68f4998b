"""``python -m explorer files``: the .h5 volumes under a data directory."""

from __future__ import annotations

import argparse
import os

from explorer.errors import ExplorerError

NAME = "files"


def add_parser(sub) -> None:
    """Register the ``files`` sub-command."""
    f = sub.add_parser("files", help="list the .h5 volumes under a data directory")
    f.add_argument("--data-dir", default=os.environ.get("EXPLORER_DATA_DIR"))


def run(args: argparse.Namespace) -> int:
    """Run the ``files`` command; returns the exit status."""
    from explorer.data.fastmri import list_volumes  # noqa: PLC0415

    if not args.data_dir:
        raise ExplorerError("give --data-dir or set EXPLORER_DATA_DIR")
    for path in list_volumes(args.data_dir):
        print(path)
    return 0
