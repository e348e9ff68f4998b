"""``python -m explorer shift``: every model on an in-distribution and a shifted set; SSIM on one against the
other, with the best linear fit across models."""

from __future__ import annotations

import argparse
import json
import sys

from explorer.cli.options import add_mask, add_methods, add_metric, mask_config, method_instances

NAME = "shift"


def add_parser(sub) -> None:
    """Register the ``shift`` sub-command."""
    s = sub.add_parser("shift", help="distribution shift: every model on an in-distribution and a shifted set")
    s.add_argument("--id", required=True, dest="id_set", help="in-distribution set: directory, .h5 file or sample:<family>")
    s.add_argument("--ood", required=True, dest="ood_set", help="shifted set: directory, .h5 file or sample:<family>")
    add_methods(s, required=False,
                help="model (repeatable); several instances of one method make the scatter (LABEL=METHOD)")
    s.add_argument("--zoo", action="append", default=[], metavar="DIR",
                   help="add every checkpoint of a model zoo (python -m explorer zoo) as a model (repeatable)")
    add_mask(s, seed_help="mask seed of the first slice of each set (slice i: seed + i)")
    add_metric(s)
    s.add_argument("--max-slices", type=int, default=None, help="at most this many slices per set, evenly spread")
    s.add_argument("--out", default=None, help="write shift.csv and shift.html (the scatter) here")
    s.add_argument("--force", action="store_true", help="replace shift.csv and shift.html of an earlier run")
    s.add_argument("--json", action="store_true", help="print one JSON object")


def zoo_instances(zoos: list[str], methods: list[str], sets: list[str]) -> tuple[list[str], list[str]]:
    """``methods`` and ``sets`` plus one instance per checkpoint of each zoo (``LABEL=METHOD`` and
    ``LABEL.checkpoint=PATH``)."""
    from explorer.training.zoo import read_zoo  # noqa: PLC0415

    for directory in zoos:
        for model in read_zoo(directory):
            methods.append(f"{model['label']}={model['method']}")
            sets.append(f"{model['label']}.checkpoint={model['checkpoint']}")
    return methods, sets


def run(args: argparse.Namespace) -> int:
    """Run the ``shift`` command; returns the exit status."""
    from explorer.export import output_dir  # noqa: PLC0415
    from explorer.robustness.shift import shift_study  # noqa: PLC0415

    from explorer.errors import ExplorerError  # noqa: PLC0415

    mask = mask_config(args)
    methods, sets = zoo_instances(args.zoo, list(args.method), list(args.set))
    if not methods:
        raise ExplorerError("give at least one --method or --zoo")
    _, configs = method_instances(methods, sets)  # names, labels and parameters checked before any work
    if args.out is not None:
        from explorer.cli.outputs import refuse_earlier  # noqa: PLC0415

        refuse_earlier(args.out, ("shift.csv", "shift.html"), args.force)
        output_dir(args.out)

    def progress(name, done, total, where):
        if not args.json:
            print(f"[{name} {done}/{total}] {where}", file=sys.stderr, flush=True)

    study = shift_study(args.id_set, args.ood_set, methods, mask, configs, args.max_slices, progress, metric=args.metric)
    if args.out is not None:
        from pathlib import Path  # noqa: PLC0415

        from explorer.export import records_csv  # noqa: PLC0415
        from explorer.figures.shift import shift_figure  # noqa: PLC0415

        (Path(args.out) / "shift.csv").write_text(records_csv(study.rows, {"metric": args.metric}))
        shift_figure(study.rows, study.fit).write_html(Path(args.out) / "shift.html", include_plotlyjs="cdn")
    if args.json:
        print(json.dumps({"id": study.id_set, "ood": study.ood_set, "metric": args.metric, "models": study.rows, "fit": study.fit}))
        return 0
    print(f"in-distribution {study.id_set}  ->  shifted {study.ood_set}")
    print(f"{'model':<16}{'method':<14}{'SSIM ID':>9}{'SSIM OOD':>10}{'gap':>8}{'PSNR ID':>9}{'PSNR OOD':>10}")
    for r in study.rows:
        print(f"{r['label']:<16}{r['method']:<14}{r['ssim_id']:9.4f}{r['ssim_ood']:10.4f}{r['gap']:8.4f}"
              f"{r['psnr_id']:9.2f}{r['psnr_ood']:10.2f}")
    if study.fit:
        r_text = "-" if study.fit["r"] is None else f"{study.fit['r']:+.3f}"
        print(f"fit across models: SSIM_OOD = {study.fit['slope']:.3f} SSIM_ID {study.fit['intercept']:+.3f}  (r {r_text})")
    return 0
