"""``python -m explorer filtered``: the adversarially filtered shift: every model on a pool of slices against the
``--keep`` slices on which the ``--filter`` models do worst, with the best linear fit across models."""

from __future__ import annotations

import argparse
import json
import sys

from explorer.cli.options import add_mask, add_methods, add_metric, mask_config, method_instances
from explorer.errors import ExplorerError

NAME = "filtered"


def add_parser(sub) -> None:
    """Register the ``filtered`` sub-command."""
    f = sub.add_parser("filtered", help="adversarially filtered shift: every model on a pool vs on the slices where "
                       "filter models do worst")
    f.add_argument("--pool", required=True, help="the pool: directory, .h5 file or sample:<family>")
    add_methods(f, required=False, help="model (repeatable; LABEL=METHOD for several instances of one method)")
    f.add_argument("--zoo", action="append", default=[], metavar="DIR",
                   help="add every checkpoint of a model zoo (python -m explorer zoo) as a model (repeatable)")
    f.add_argument("--filter", action="append", required=True, metavar="LABEL",
                   help="a filter model: the label of one of the models (repeatable: their mean SSIM decides)")
    f.add_argument("--keep", type=int, default=5, help="slices kept: those the filter models do worst on (default 5)")
    add_mask(f, seed_help="mask seed of the first pool slice (slice i: seed + i)")
    add_metric(f)
    f.add_argument("--max-slices", type=int, default=None, help="at most this many pool slices, evenly spread")
    f.add_argument("--out", default=None, help="write filtered.csv and filtered.html (the scatter) here")
    f.add_argument("--force", action="store_true", help="replace filtered.csv and filtered.html of an earlier run")
    f.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run the ``filtered`` command; returns the exit status."""
    from explorer.cli.shift import zoo_instances  # noqa: PLC0415
    from explorer.export import output_dir  # noqa: PLC0415
    from explorer.robustness.filtered import check_filter, filtered_shift  # noqa: PLC0415

    methods, sets = zoo_instances(args.zoo, list(args.method), list(args.set))
    if not methods:
        raise ExplorerError("give at least one --method or --zoo")
    instances, configs = method_instances(methods, sets)  # names, labels and parameters checked before any work
    check_filter(args.filter, args.keep, [i.label for i in instances])
    mask = mask_config(args)
    if args.out is not None:
        from explorer.cli.outputs import refuse_earlier  # noqa: PLC0415

        refuse_earlier(args.out, ("filtered.csv", "filtered.html"), args.force)
        output_dir(args.out)

    def progress(done, total, where):
        if not args.json:
            print(f"[pool {done}/{total}] {where}", file=sys.stderr, flush=True)

    result = filtered_shift(args.pool, methods, args.filter, args.keep, mask, configs, args.max_slices, progress,
                            metric=args.metric)
    kept = [{"file": f, "slice": s} for f, s in result.kept_slices]
    if args.out is not None:
        from pathlib import Path  # noqa: PLC0415

        from explorer.export import records_csv  # noqa: PLC0415
        from explorer.figures.shift import shift_figure  # noqa: PLC0415

        (Path(args.out) / "filtered.csv").write_text(records_csv(result.rows, {"metric": args.metric}))
        shift_figure(result.rows, result.fit, x="ssim_pool", y="ssim_filtered", x_title="SSIM, whole pool",
                     y_title="SSIM, filtered subset").write_html(Path(args.out) / "filtered.html", include_plotlyjs="cdn")
    if args.json:
        print(json.dumps({"pool": result.pool, "metric": args.metric, "filters": list(result.filters), "kept": kept, "models": result.rows,
                          "fit": result.fit}))
        return 0
    print(f"pool {result.pool}: {len(result.evaluation.slices)} slices; kept the {len(kept)} where "
          f"{' + '.join(result.filters)} do worst: " + ", ".join(f"{k['file']} [{k['slice']}]" for k in kept))
    print(f"{'model':<16}{'method':<14}{'SSIM pool':>11}{'SSIM kept':>11}{'gap':>8}")
    for r in result.rows:
        print(f"{r['label']:<16}{r['method']:<14}{r['ssim_pool']:11.4f}{r['ssim_filtered']:11.4f}{r['gap']:8.4f}")
    if result.fit:
        r_text = "-" if result.fit["r"] is None else f"{result.fit['r']:+.3f}"
        print(f"fit across models: SSIM_kept = {result.fit['slope']:.3f} SSIM_pool {result.fit['intercept']:+.3f}  "
              f"(r {r_text})")
    return 0
