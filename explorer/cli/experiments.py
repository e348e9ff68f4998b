"""``python -m explorer experiments``: the registered robustness experiments a study spec may name, with their
settings (:mod:`explorer.robustness.registry`)."""

from __future__ import annotations

import argparse
import json

NAME = "experiments"


def add_parser(sub) -> None:
    """Register the ``experiments`` sub-command."""
    e = sub.add_parser("experiments", help="list the robustness experiments a study spec may name, with their settings")
    e.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run the ``experiments`` command; returns the exit status."""
    from explorer.robustness.registry import experiments  # noqa: PLC0415

    listing = [{"name": e.name, "title": e.title, "description": e.description, "settings": dict(e.settings),
                "page": e.page.path if e.page else None} for e in experiments()]
    if args.json:
        print(json.dumps(listing))
        return 0
    for e in listing:
        print(f"{e['name']:<12}{e['title']} - {e['description']}")
        for key, text in e["settings"].items():
            print(f"    {e['name']}.{key}  {text}")
    return 0
