"""``python -m explorer realistic``: realistic corruptions of the acquisition (noise at an SNR, rigid motion per shot,
k-space spikes) applied to one slice, every method reconstructed from them, beside the size of each corruption in the
adversarial budget's units (``||M (k' - k)|| / ||k||``); ``--worst-motion N`` adds a small worst-case search over
motion parameters per method. ``--json`` prints one object. One Ctrl-C stops the method under way and ends the
command (later methods are listed as ``not_run``).
"""

from __future__ import annotations

import argparse
import json
import sys

from explorer.cli.options import add_slice_arguments, load_problem, parse_list
from explorer.errors import ExplorerError

NAME = "realistic"


def add_parser(sub) -> None:
    """Register the ``realistic`` sub-command."""
    from explorer.robustness.realistic import KINDS, MAPS, ORDERINGS  # noqa: PLC0415

    p = sub.add_parser(NAME, help="realistic corruptions (noise, motion per shot, spikes) and every method on them")
    add_slice_arguments(p)
    p.add_argument("--kind", required=True, help="; ".join(f"{k}: {v}" for k, v in KINDS.items()))
    p.add_argument("--levels", required=True, help="comma-separated levels of the kind (e.g. 30,20,10 dB of SNR)")
    p.add_argument("--shots", type=int, default=8, help="motion: shots of the acquisition")
    p.add_argument("--ordering", default="sequential", help=f"motion: {', '.join(ORDERINGS)}")
    p.add_argument("--maps", default="reestimate", help=f"coil maps of the corrupted data: {', '.join(MAPS)}")
    p.add_argument("--corruption-seed", type=int, default=0, help="seed of the noise or the spikes")
    p.add_argument("--worst-motion", type=int, default=0, metavar="N",
                   help="also search N random motions per method and report the worst (0 = no search)")
    p.add_argument("--max-rotation", type=float, default=5.0, help="worst-motion bound in degrees")
    p.add_argument("--max-shift", type=float, default=5.0, help="worst-motion bound in pixels (both directions)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(out=None)  # writes no files


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    from explorer.cli.progress import Progress  # noqa: PLC0415
    from explorer.robustness.realistic import Realistic, realistic_rows, worst_motion  # noqa: PLC0415

    levels = parse_list(args.levels, float, "--levels")
    corruptions = [Realistic(args.kind, level, args.shots, args.ordering, args.corruption_seed, args.maps)
                   for level in levels]  # every setting checked before any work
    if args.worst_motion and not (1 <= args.worst_motion <= 64):
        raise ExplorerError(f"--worst-motion must be in [0, 64], got {args.worst_motion}")
    data, volume, index, _, problem, instances = load_problem(args)
    if problem.slice.acquired_mask is not None:
        raise ExplorerError("realistic corruptions act on the acquisition: this file is already undersampled")
    rows, worst, not_run = [], [], []
    for instance in instances:
        if not_run or (rows and rows[-1].get("stopped")):
            not_run.append(instance.label)
            continue
        with Progress(f"realistic {instance.display}", enabled=not args.json) as progress:
            try:
                mine = realistic_rows(problem, instance, corruptions, progress=progress)
                if args.worst_motion and not progress.stop_requested:
                    worst.append(worst_motion(problem, instance, args.max_rotation, args.max_shift, args.shots,
                                              args.ordering, args.worst_motion, args.corruption_seed, progress))
            except ExplorerError as exc:
                raise ExplorerError(f"{instance.label}: {exc}") from None
            for row in mine:
                row.pop("image")
            rows += mine
            if progress.stop_requested:
                not_run.append("(stopped)")
    not_run = [n for n in not_run if n != "(stopped)"]
    report = {"file": data, "slice": index, "kind": args.kind, "maps": args.maps, "metric": problem.metric,
              "rows": rows, "worst_motion": [{"label": w["worst"]["label"], **w["worst"], "candidates": len(w["tried"])}
                                             for w in worst], **({"not_run": not_run} if not_run else {})}
    if args.json:
        print(json.dumps(report, default=float))
        return 0
    print(f"{volume.name}  slice {index}  {args.kind}  maps {args.maps}")
    print(f"{'method':<14} {'level':>7} {'||e||/||k||':>12} {'SSIM clean':>11} {'SSIM':>7} {'drop':>7}")
    for r in rows:
        drop = "-" if r["ssim_drop"] is None else f"{r['ssim_drop']:.4f}"
        ssim = "-" if r["ssim_perturbed"] is None else f"{r['ssim_perturbed']:.4f}"
        clean = "-" if r["ssim_clean"] is None else f"{r['ssim_clean']:.4f}"
        print(f"{r['label']:<14} {r['level']:>7g} {r['ratio']:>12.4f} {clean:>11} {ssim:>7} {drop:>7}")
    for w in report["worst_motion"]:
        print(f"{w['label']:<14} worst of {w['candidates']} motions: rotation {w['rotation']:+.2f} deg, shift "
              f"({w['shift'][0]:+.2f}, {w['shift'][1]:+.2f}) px, ||e||/||k|| {w['ratio']:.4f}, SSIM "
              f"{'-' if w['ssim_perturbed'] is None else format(w['ssim_perturbed'], '.4f')}")
    if not_run:
        print(f"stopped early; not run: {', '.join(not_run)}", file=sys.stderr)
    return 0
