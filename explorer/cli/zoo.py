"""``python -m explorer zoo``: train a model zoo (several sizes and training lengths) on the embedded sample for
distribution-shift studies (``shift --zoo DIR``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

NAME = "zoo"


def add_parser(sub) -> None:
    """Register the ``zoo`` sub-command."""
    from explorer.training.zoo import DEFAULT_MEMBERS  # noqa: PLC0415

    names = ", ".join(m.name for m in DEFAULT_MEMBERS)
    z = sub.add_parser("zoo", help="train a zoo of U-nets and VarNets (sizes x training lengths) for shift studies")
    z.add_argument("--out", required=True, help="zoo directory: data/, the checkpoints and zoo.json")
    z.add_argument("--family", default="knee", help="sample family trained on (knee or brain)")
    z.add_argument("--contrast", default="", help="sample contrast (knee pd/pdfs, brain t2/t1)")
    z.add_argument("--dataset", default="", help="sample dataset (knee fastmri/stanford)")
    z.add_argument("--size", type=int, default=320, help="sample matrix size")
    z.add_argument("--subjects", type=int, default=24, help="training subjects, 10 slices each")
    z.add_argument("--data", default=None, help="train on these volumes instead of writing the sample's")
    z.add_argument("--val", default=None, help="validation volumes (with --data)")
    z.add_argument("--members", default=None, help=f"comma-separated subset of: {names} (default: all)")
    z.add_argument("--steps", type=int, default=None, help="steps of every member (default: each member's, 300)")
    z.add_argument("--snapshot-every", type=int, default=100, help="also keep a checkpoint every N steps")
    z.add_argument("--loss", default="supervised", help="supervised, self or both (see train)")
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--json", action="store_true",
                   help="print one JSON object (the manifest's models and the wall time); messages go to stderr")


def run(args: argparse.Namespace) -> int:
    """Run the ``zoo`` command; returns the exit status."""
    from dataclasses import replace  # noqa: PLC0415

    from explorer.errors import ExplorerError  # noqa: PLC0415
    from explorer.cli.progress import Progress  # noqa: PLC0415
    from explorer.training.zoo import DEFAULT_MEMBERS, ZooOptions, build_zoo, read_zoo  # noqa: PLC0415

    members = DEFAULT_MEMBERS
    if args.members:
        by_name = {m.name: m for m in DEFAULT_MEMBERS}
        wanted = [n.strip() for n in args.members.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in by_name]
        if unknown or not wanted:
            raise ExplorerError(f"unknown zoo member {unknown[0] if unknown else '(none)'!r}; choose from "
                                f"{', '.join(by_name)}")
        members = tuple(by_name[n] for n in wanted)
    if args.steps is not None:
        if args.steps < 1:
            raise ExplorerError(f"--steps must be >= 1, got {args.steps}")
        members = tuple(replace(m, steps=args.steps) for m in members)
    if args.val and not args.data:
        raise ExplorerError("--val needs --data")
    options = ZooOptions(out=Path(args.out), family=args.family, contrast=args.contrast, dataset=args.dataset,
                         size=args.size, subjects=args.subjects, members=members, snapshot_every=args.snapshot_every,
                         loss=args.loss, seed=args.seed, train_dir=Path(args.data) if args.data else None,
                         val_dir=Path(args.val) if args.val else None)
    out = sys.stderr if args.json else sys.stdout
    started = time.perf_counter()
    with Progress("zoo", enabled=True) as progress:
        manifest = build_zoo(options, progress, log=lambda line: print(line, file=out, flush=True))
    models = read_zoo(manifest.parent)
    if args.json:
        print(json.dumps({"family": args.family, "contrast": args.contrast, "dataset": args.dataset,
                          "loss": args.loss, "seed": args.seed, "seconds": round(time.perf_counter() - started, 1),
                          "models": [{k: m[k] for k in ("label", "method", "steps", "val_ssim")} for m in models]}))
        return 0
    print(f"{'model':<24}{'method':<8}{'steps':>6}{'val SSIM':>10}")
    for m in models:
        ssim = "-" if m["val_ssim"] is None else f"{m['val_ssim']:.4f}"
        print(f"{m['label']:<24}{m['method']:<8}{m['steps']:>6}{ssim:>10}")
    print(f"wrote {manifest}; use it with: python -m explorer shift ... --zoo {manifest.parent}", file=sys.stderr)
    return 0
