"""``python -m explorer evaluate``: mean SSIM/PSNR/NMSE of method instances over every slice of a directory."""

from __future__ import annotations

import argparse
import json
import sys

from explorer.cli.options import add_mask, add_methods, add_metric, mask_config, method_instances
from explorer.cli.progress import Progress
from explorer.errors import ExplorerError

NAME = "evaluate"


def add_parser(sub) -> None:
    """Register the ``evaluate`` sub-command."""
    e = sub.add_parser("evaluate", help="mean SSIM/PSNR/NMSE of methods over every slice of a directory of volumes")
    e.add_argument("--data", required=True, help="directory of fastMRI-layout .h5 volumes with references, one file, or "
                                                 "an embedded sample (sample:brain,seed=201,slices=5,contrast=t1)")
    add_methods(e, help="method (repeatable); LABEL=METHOD runs another instance under its own label")
    add_mask(e, seed_help="mask seed of the first slice (slice i uses seed + i)")
    add_metric(e)
    e.add_argument("--max-slices", type=int, default=None, help="score at most this many slices, evenly spread")
    e.add_argument("--batch-size", type=int, default=8, help="slices per forward pass of the trained networks")
    e.add_argument("--out", default=None, help="write every record (metrics, timings, provenance) to this Parquet table")
    e.add_argument("--resume", action="store_true", help="continue the --out table: reuse the rows of finished tasks")
    e.add_argument("--csv", default=None, help="also export the records as CSV here")
    e.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run the ``evaluate`` command; returns the exit status."""
    from explorer.robustness.evaluate import evaluate  # noqa: PLC0415

    if args.max_slices is not None and args.max_slices < 1:
        raise ExplorerError("--max-slices must be at least 1")
    if args.batch_size < 1:
        raise ExplorerError("--batch-size must be at least 1")
    _, params = method_instances(args.method, args.set)
    from explorer.engine.table import output_table  # noqa: PLC0415

    table = output_table(args.out, args.resume)
    if args.csv and table is None:
        raise ExplorerError("--csv exports the --out table: give --out too")
    mask_cfg = mask_config(args)
    data = args.data
    if data.startswith("sample:"):  # the embedded sample, written on first use (as every --data)
        from explorer.data.sample import sample_path  # noqa: PLC0415
        from explorer.data.sample_sources import parse_source  # noqa: PLC0415

        data = str(sample_path(parse_source(data)))
    with Progress("evaluate", enabled=not args.json) as bar:
        result = evaluate(data, args.method, mask_cfg, params, args.max_slices, batch_size=args.batch_size,
                          progress=lambda done, total, label: bar(done, total, {}), table=table, resume=args.resume,
                          metric=args.metric)
    rows = result.summary()
    if bar.stop_requested:
        print(f"evaluate: stopped after {len(result.slices)} slice(s); the figures cover those", file=sys.stderr)
    if args.csv:
        from explorer.engine.table import read_records, write_csv  # noqa: PLC0415

        write_csv(args.csv, read_records(table))
    if args.json:
        print(json.dumps({"data": args.data, "slices": [list(s) for s in result.slices], "skipped": list(result.skipped),
                          "mask": {"type": mask_cfg.type, "acceleration": mask_cfg.acceleration,
                                   "center_fraction": mask_cfg.resolved_center_fraction, "seed": mask_cfg.seed},
                          "metric": args.metric, "resumed": result.resumed, "table": None if table is None else str(table), "results": rows,
                          "notes": result.notes or {}}))
        return 0
    print(f"{len(result.slices)} slices from {args.data}  mask {mask_cfg.type} {mask_cfg.acceleration:g}x "
          f"(seed {mask_cfg.seed} + slice number)" + (f"  skipped {len(result.skipped)} file(s) without reference" if result.skipped else "")
          + (f"  ({result.resumed} record(s) reused from {table})" if result.resumed else ""))
    print(f"{'method':<16}{'SSIM':>16}{'PSNR (dB)':>16}{'NMSE':>18}{'seconds':>9}")
    for r in rows:
        print(f"{r['label']:<16}{r['ssim']:>9.4f} ± {r['ssim_std']:.3f}{r['psnr']:>9.2f} ± {r['psnr_std']:.2f}"
              f"{r['nmse']:>10.4f} ± {r['nmse_std']:.3f}{r['seconds']:9.2f}")
    for label, notes in (result.notes or {}).items():
        for note in notes:
            print(f"  {label}: {note}")
    return 0
