"""``python -m explorer recon``: undersample one slice and reconstruct it with every method instance; metrics, and
with ``--roi`` / ``--profile`` the viewer's ROI statistics and line profile."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explorer.cli.options import add_slice_arguments, load_problem, method_instances
from explorer.cli.outputs import add_force, refuse_earlier
from explorer.cli.progress import Progress
from explorer.errors import ExplorerError
from explorer.metrics import METRIC_DEFINITIONS

NAME = "recon"


def add_parser(sub) -> None:
    """Register the ``recon`` sub-command."""
    r = sub.add_parser("recon", help="undersample a slice and reconstruct it with one or more methods")
    add_slice_arguments(r)
    r.add_argument("--out", default=None, help="write target/mask/<method> .npy+.png and metrics.csv here")
    add_force(r)
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--roi", default=None, metavar="TOP,LEFT,BOTTOM,RIGHT",
                   help="also report mean, std, SSIM and PSNR inside this box (inclusive rows and columns of the image)")
    r.add_argument("--profile", default=None, metavar="ROW0,COL0,ROW1,COL1",
                   help="also give the intensity along this line (JSON, and profile.csv with --out)")


def run(args: argparse.Namespace) -> int:
    """Run the ``recon`` command; returns the exit status."""
    from explorer.engine import run_method  # noqa: PLC0415

    from explorer.viewer.detail import check_inside, profile_csv, report  # noqa: PLC0415
    from explorer.viewer.measure import Box, parse_line  # noqa: PLC0415

    try:
        roi = None if args.roi is None else Box.parse(args.roi)
        line = None if args.profile is None else parse_line(args.profile)
    except ValueError as exc:
        raise ExplorerError(str(exc)) from None
    labels = [i.label for i in method_instances(args.method, args.set)[0]]
    refuse_earlier(args.out, ["metrics.csv", "profile.csv", "target.*", "mask.*"]
                   + [f"{label}.{ext}" for label in labels for ext in ("npy", "png")], args.force)
    data, volume, index, mask_cfg, problem, instances = load_problem(args)
    device = problem.device
    if roi is not None or line is not None:  # checked before any reconstruction runs
        check_inside(roi, line, problem.crop)

    results, not_run = [], []
    for instance in instances:
        if results and results[-1].stopped:
            not_run.append(instance.label)  # one Ctrl-C ends the whole command
            continue
        with Progress(instance.display, enabled=not args.json) as progress:
            try:
                results.append(run_method(problem, instance, progress=progress))
            except ExplorerError as exc:
                raise ExplorerError(f"{instance.label}: {exc}") from None
        if results[-1].stopped:
            done = f" at step {results[-1].steps[0]}/{results[-1].steps[1]}" if results[-1].steps else ""
            print(f"{instance.display}: stopped{done}; its best image so far is kept", file=sys.stderr)
    rows = [{"method": r.method, "label": r.instance, **(r.metrics or {"ssim": None, "psnr": None, "nmse": None}),
             "seconds": r.seconds} for r in results]
    sampled = problem.sampled
    mask_info = {
        "type": "acquired" if sampled.config is None else mask_cfg.type,
        "acceleration": mask_cfg.acceleration if sampled.config is not None else None,
        "acceleration_actual": sampled.acceleration,
        "center_fraction": mask_cfg.resolved_center_fraction if sampled.config is not None else None,
        "seed": mask_cfg.seed if sampled.config is not None else None,
    }
    if args.out is not None:
        from explorer.export import write_results  # noqa: PLC0415

        write_results(args.out, problem.target, sampled.pattern(problem.slice.shape), {r.instance: r.image for r in results}, rows,
                      args.metric)
    detail = report(problem.target, {r.instance: r.image for r in results}, roi, line)
    if line is not None and args.out is not None:
        (Path(args.out) / "profile.csv").write_text(profile_csv(detail["profile"]))
    if args.json:
        print(json.dumps({
            "file": data, "slice": index, "shape": list(problem.slice.shape), "coils": problem.slice.num_coils,
            "device": str(device), "mask": mask_info, "metric": problem.metric,
            "results": [{**row, "notes": list(r.notes)} for row, r in zip(rows, results)], **detail,
            **({"not_run": not_run} if not_run else {}),
        }))
    else:
        print(f"{volume.name}  slice {index}/{volume.num_slices - 1}  {problem.slice.shape[0]}x{problem.slice.shape[1]}  "
              f"{problem.slice.num_coils} coil(s)  device {device}")
        print(f"mask {mask_info['type']}  R={sampled.acceleration:.2f} actual  centre {sampled.num_low_frequencies} lines")
        print(f"metrics: {problem.metric} ({METRIC_DEFINITIONS[problem.metric]})")
        print(f"{'method':<16}{'SSIM':>8}{'PSNR':>8}{'NMSE':>10}{'seconds':>9}")
        for row in rows:
            metric = (f"{row['ssim']:8.4f}{row['psnr']:8.2f}{row['nmse']:10.4f}" if row["ssim"] is not None else f"{'-':>8}{'-':>8}{'-':>10}")
            print(f"{row['label']:<16}{metric}{row['seconds']:9.2f}")
        for r in results:
            for note in r.notes:
                print(f"  {r.instance}: {note}")
        if problem.target is None:
            print("no reference image in this file (test data): metrics not computed")
        if not_run:
            print(f"stopped: not run: {', '.join(not_run)}", file=sys.stderr)
        if roi is not None:
            print(f"ROI {roi.describe()}")
            print(f"{'image':<16}{'mean':>11}{'std':>11}{'SSIM':>8}{'PSNR':>8}")
            for r in detail["roi"]["rows"]:
                quality = (f"{r['ssim']:8.4f}{r['psnr']:8.2f}" if r["ssim"] is not None else f"{'-':>8}{'-':>8}")
                print(f"{r['label']:<16}{r['mean']:11.4g}{r['std']:11.4g}{quality}")
    return 0
