"""``python -m explorer download``: fetch the Stanford 3D FSE knees (mridata.org) or fastMRI files (signed URLs).

mridata.org volumes are chosen by UUID (``--mridata UUID``, repeatable, or ``--mridata all`` for the 20 Stanford
fully sampled 3D FSE knees) and saved as ``<uuid>.h5``. fastMRI files come from the signed URLs of the user's
data-sharing agreement email (``--url`` / ``--urls FILE``); the product never ships or guesses them. Downloads
resume from ``<name>.part`` and are renamed only after the size and checksum check.
"""

from __future__ import annotations

import argparse

from explorer.errors import ExplorerError

NAME = "download"


def add_parser(sub) -> None:
    """Register the ``download`` sub-command."""
    s = sub.add_parser("download", help="download mridata.org knees (by UUID or 'all') or fastMRI files (signed URLs)",
                       description="Download real data with resume, progress and size/checksum verification.")
    s.add_argument("--out", required=True, help="output directory (created)")
    s.add_argument("--mridata", action="append", default=[], metavar="UUID",
                   help="a mridata.org UUID (repeatable), or 'all' for the 20 Stanford fully sampled 3D FSE knees")
    s.add_argument("--mridata-list", default="", metavar="FILE", help="a file of mridata.org UUIDs, one a line")
    s.add_argument("--mridata-base", default="", metavar="URL",
                   help="download base for mridata UUIDs, for a mirror or tests (default $EXPLORER_MRIDATA_BASE or "
                   "http://mridata.org/download/)")
    s.add_argument("--url", action="append", default=[], help="a (fastMRI signed) URL to fetch (repeatable)")
    s.add_argument("--urls", default="", metavar="FILE", help="a file of URLs, one a line")
    s.add_argument("--checksums", default="", metavar="FILE",
                   help="'<hex>  <name>' lines (md5 or sha256 by length) to verify the files against")
    s.add_argument("--timeout", type=float, default=30.0, help="seconds without an answer before giving up (30)")
    s.add_argument("--dry-run", action="store_true", help="print URL, target and size (HEAD) without writing")
    s.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the ``download`` command; returns the exit status."""
    from pathlib import Path  # noqa: PLC0415

    from explorer.data import download as dl  # noqa: PLC0415

    if args.timeout <= 0:
        raise ExplorerError("--timeout must be positive")
    uuids = list(args.mridata) + (dl.read_lines(args.mridata_list) if args.mridata_list else [])
    urls = list(args.url) + (dl.read_lines(args.urls) if args.urls else [])
    if not uuids and not urls:
        raise ExplorerError("nothing to download: give --mridata UUID|all, --mridata-list, --url or --urls")
    items = dl.mridata_items(uuids, args.mridata_base) + dl.url_items(urls)
    names = [i.name for i in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ExplorerError(f"two URLs would write the same file {dup[0]}")
    if args.checksums:
        items = dl.with_checksums(items, dl.read_checksums(args.checksums))
    if args.dry_run:
        folder = Path(args.out)
        for item in items:
            target = folder / item.name
            if target.is_file():
                print(f"skip {item.url} -> {target} (already complete)")
                continue
            size = dl.remote_size(item, args.timeout)
            print(f"fetch {item.url} -> {target} ({'size unknown' if size is None else f'{size} bytes'})")
        return 0
    folder = dl.out_dir(args.out)
    for item in items:
        status = dl.fetch(item, folder, timeout=args.timeout, quiet=args.quiet)
        if status == "skipped":
            print(f"skipped {folder / item.name} (already complete)")
        else:
            print(f"downloaded {folder / item.name}")
    return 0
