"""``python -m explorer card``: add provenance (data sources, commits, split, terms, commands) or test results to a
checkpoint's model card, in the ``.pt`` and its ``.json``."""

from __future__ import annotations

import argparse
import json

NAME = "card"


def add_parser(sub) -> None:
    """Register the ``card`` sub-command."""
    c = sub.add_parser("card", help="show a checkpoint's model card or add provenance / test results to it")
    c.add_argument("checkpoint", nargs="+", help="explorer checkpoint file(s) (.pt written by `train`)")
    c.add_argument("--merge", default=None, metavar="NOTE.json",
                   help="merge this JSON object into each card (new keys; nested objects key by key; what training "
                        "recorded cannot be replaced)")
    c.add_argument("--key", default=None, metavar="NAME",
                   help="with --merge: take only this key of the note's top-level object (one note file for several "
                        "checkpoints: {\"unet_brain-real\": {...}, ...})")


def run(args: argparse.Namespace) -> int:
    """Run the ``card`` command; returns the exit status."""
    from explorer.errors import ExplorerError  # noqa: PLC0415
    from explorer.recon.checkpoints import load_checkpoint  # noqa: PLC0415
    from explorer.training.cards import annotate, read_note  # noqa: PLC0415

    if args.merge is None:
        if args.key is not None:
            raise ExplorerError("--key selects a part of the --merge note: give --merge too")
        for path in args.checkpoint:
            print(json.dumps(load_checkpoint(path).card, indent=2))
        return 0
    note = read_note(args.merge)
    for path in args.checkpoint:
        part = note
        if args.key is not None:
            if not isinstance(note, dict) or args.key not in note:
                raise ExplorerError(f"{args.merge}: no key {args.key!r} in the note")
            part = note[args.key]
        annotate(path, part)
        print(f"card of {path}: added {', '.join(part) if isinstance(part, dict) else '?'}")
    return 0
