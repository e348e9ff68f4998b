"""``python -m explorer methods``: the registered reconstruction methods, their capabilities and parameters."""

from __future__ import annotations

import argparse
import dataclasses
import json

NAME = "methods"


def add_parser(sub) -> None:
    """Register the ``methods`` sub-command."""
    m = sub.add_parser("methods", help="list reconstruction methods and their parameters")
    m.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run the ``methods`` command; returns the exit status."""
    from explorer.recon.base import available_methods  # noqa: PLC0415

    methods = available_methods()
    listing = [{
        "name": m.name, "label": m.label, "family": m.family, "description": m.description,
        "capabilities": dataclasses.asdict(m.capabilities),
        "params": [{"name": p.name, "type": p.type.__name__, "default": p.default, "help": p.help,
                    "min": p.min, "max": p.max, "choices": list(p.choices) if p.choices else None} for p in m.params()],
    } for m in methods]
    if args.json:
        print(json.dumps(listing))
        return 0
    for m in listing:
        caps = m["capabilities"]
        print(f"{m['name']:<14}{m['label']} - {m['description']}  [gradient {caps['gradient']}, cost {caps['cost']}"
              f"{', trained weights' if caps['weights'] else ''}{', batches slices' if caps['batches'] else ''}]")
        for p in m["params"]:
            print(f"    {m['name']}.{p['name']}={p['default']!r}  ({p['type']}) {p['help']}")
    return 0
