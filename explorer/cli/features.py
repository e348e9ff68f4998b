"""``python -m explorer features``: insert small features into a slice and score their recovery per method.

One slice: features at given positions (``--at ROW,COL``, repeatable) or ``--random N`` inside the anatomy,
every method run on the slice with the features (the same mask), and per feature and method: position, size,
contrast, window MSE (the paper's score), contrast recovery, local SSIM and whole-image SSIM/PSNR.
``--boxes FILE.csv`` also scores the annotation boxes of this slice (fastMRI+ layout) on the unmodified slice.
``--slices A,B,...`` with ``--random N``: a study over those slices, with the correlation of the window MSE
with whole-image SSIM per method (the paper: "recovery of fine details is strongly correlated with overall
reconstruction quality").
"""

from __future__ import annotations

import argparse
import json
import sys

from explorer.cli.options import (add_slice_arguments, load_problem, mask_config, method_instances, parse_list,
                                  resolve_data)
from explorer.cli.outputs import add_force, refuse_earlier
from explorer.errors import ExplorerError

NAME = "features"
ONE_SLICE_OUTPUTS = ("features.csv", "boxes.csv", "target_with_features.npy", "target_without_features.npy")  # and
# <label>.npy per method: what --out receives
STUDY_OUTPUTS = ("records.parquet", "study.csv")


def add_parser(sub) -> None:
    """Register the ``features`` sub-command."""
    f = sub.add_parser("features", help="insert small features and score their recovery per method")
    add_slice_arguments(f)
    f.add_argument("--shape", default="square", help="square (the paper's), disk, line or blob")
    f.add_argument("--size", type=int, default=5, help="side / diameter / length / FWHM in pixels")
    f.add_argument("--contrast", type=float, default=1 / 6,
                   help="amplitude relative to --relative-to (negative: darker; the paper's: 1/6 of the maximum)")
    f.add_argument("--relative-to", default="max", help="max (image maximum) or local (local mean)")
    f.add_argument("--angle", type=float, default=0.0, help="line angle in degrees")
    f.add_argument("--width", type=int, default=1, help="line width in pixels")
    f.add_argument("--at", action="append", default=[], metavar="ROW,COL",
                   help="feature centre in the reference-size image (repeatable)")
    f.add_argument("--random", type=int, default=0, metavar="N", help="N features at random places inside the anatomy")
    f.add_argument("--sizes", default=None, help="random features: sizes to draw from (e.g. 3,5,8)")
    f.add_argument("--contrasts", default=None, help="random features: contrasts to draw from (e.g. 0.1,0.17,-0.1)")
    f.add_argument("--feature-seed", type=int, default=0, help="seed of the random placement")
    f.add_argument("--paper-mode", action="store_true",
                   help="add the same real feature to every coil image (the paper's code) instead of through the coil maps")
    f.add_argument("--boxes", default=None, help="annotation CSV (fastMRI+ layout): score this slice's boxes too")
    f.add_argument("--slices", default=None, help="study: comma-separated slices, --random N features on each")
    f.add_argument("--out", default=None, help="write features.csv (and images, or the study's records) here")
    add_force(f)
    f.add_argument("--json", action="store_true", help="print one JSON object")


def _template(args):
    from explorer.robustness.insertion import Feature  # noqa: PLC0415

    return Feature(shape=args.shape, size=args.size, contrast=args.contrast, relative_to=args.relative_to,
                   angle=args.angle, width=args.width)


def run(args: argparse.Namespace) -> int:
    """Run the ``features`` command; returns the exit status."""
    from explorer.robustness.insertion import parse_position  # noqa: PLC0415

    template = _template(args)  # validated before any work
    positions = [parse_position(text) for text in args.at]
    sizes = tuple(parse_list(args.sizes, int, "--sizes")) if args.sizes is not None else ()
    contrasts = tuple(parse_list(args.contrasts, float, "--contrasts")) if args.contrasts is not None else ()
    if args.random < 0:
        raise ExplorerError(f"--random must be >= 0, got {args.random}")
    labels = [f"{i.label}.npy" for i in method_instances(args.method, args.set)[0]]
    refuse_earlier(args.out, STUDY_OUTPUTS if args.slices is not None else ONE_SLICE_OUTPUTS + tuple(labels),
                   args.force)
    if args.slices is not None:
        return _study(args, template, sizes, contrasts)
    if not positions and not args.random and not args.boxes:
        raise ExplorerError("give feature positions (--at ROW,COL), --random N, or --boxes FILE.csv")
    return _one_slice(args, template, positions, sizes, contrasts)


def _one_slice(args, template, positions, sizes, contrasts) -> int:
    from dataclasses import replace  # noqa: PLC0415

    from explorer.engine import run_method  # noqa: PLC0415
    from explorer.cli.progress import Progress  # noqa: PLC0415
    from explorer.robustness.boxes import boxes_for, read_boxes, score_boxes  # noqa: PLC0415
    from explorer.robustness.insertion import place_random, reference_image  # noqa: PLC0415
    from explorer.robustness.features import run_features  # noqa: PLC0415

    boxes_table = read_boxes(args.boxes) if args.boxes else None
    data, volume, index, _, problem, instances = load_problem(args)
    mode = "paper" if args.paper_mode else "coil"
    features = tuple(replace(template, row=r, col=c) for r, c in positions)
    if args.random:
        reference = reference_image(problem.slice.kspace, problem.crop)
        features += place_random(reference, args.random, template, args.feature_seed, sizes, contrasts, avoid=features)
    out: dict = {"file": data, "slice": index, "mode": mode, "maps": "ESPIRiT of the measured data with the features",
                 "metric": problem.metric,
                 "features": [f.describe() for f in features], "results": [], "whole": [], "boxes": []}
    if features:
        with Progress("features", enabled=not args.json) as progress:
            run = run_features(problem, features, instances, mode, progress=lambda label, s, t, i: progress(s, t, i))
        for label, message in run.failures.items():
            print(f"warning: {label}: {message}", file=sys.stderr)
        out["results"] = run.rows
        out["whole"] = [{"label": r.instance, "method": r.method, **(r.metrics or {}), "seconds": r.seconds}
                        for r in run.results]
    if boxes_table is not None:
        boxes = boxes_for(boxes_table, volume, index)
        if boxes:
            cleans = [run_method(problem, inst) for inst in instances]
            out["boxes"] = score_boxes(problem, cleans, boxes)
        elif not features:
            raise ExplorerError(f"{args.boxes} has no box for slice {index} of {volume.name}")
    if args.out is not None:
        _write(args.out, out, run if features else None)
    if args.json:
        print(json.dumps(out))
        return 0
    _print(out)
    return 0


def _print(out: dict) -> None:
    print(f"{out['file']}  slice {out['slice']}  insertion: {out['mode']}")
    if out["results"]:
        print(f"{'method':<14}{'#':>3}{'shape':>8}{'row':>5}{'col':>5}{'size':>5}{'contrast':>9}{'win MSE':>9}"
              f"{'recovery':>9}{'loc SSIM':>9}{'SSIM':>8}")
        for r in out["results"]:
            rec = "-" if r["contrast_recovery"] is None else f"{r['contrast_recovery']:.3f}"
            ssim = "-" if r["ssim"] is None else f"{r['ssim']:.4f}"
            print(f"{r['label']:<14}{r['feature']:>3}{r['shape']:>8}{r['row']:>5}{r['col']:>5}{r['size']:>5}"
                  f"{r['contrast']:>9.3g}{r['window_mse']:>9.4f}{rec:>9}{r['local_ssim']:>9.4f}{ssim:>8}")
    for b in out["boxes"]:
        print(f"box {b['label']!r} rows {b['row0']}-{b['row1']} cols {b['col0']}-{b['col1']}  {b['method_label']}: "
              f"window MSE {b['window_mse']:.4f}  local SSIM {b['local_ssim']:.4f}")


def _write(folder: str, out: dict, run) -> None:
    from pathlib import Path  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from explorer.export import records_csv  # noqa: PLC0415

    path = Path(folder)
    if out["results"]:
        (path / "features.csv").write_text(records_csv(out["results"], {"metric": out.get("metric")}))
    if out["boxes"]:
        (path / "boxes.csv").write_text(records_csv(out["boxes"], {"metric": out.get("metric")}))
    if run is not None:
        np.save(path / "target_with_features.npy", run.problem.target)
        np.save(path / "target_without_features.npy", run.inserted.reference)
        for r in run.results:
            np.save(path / f"{r.instance}.npy", r.image)


def _study(args, template, sizes, contrasts) -> int:
    from pathlib import Path  # noqa: PLC0415

    from explorer.data.sources import open_volume  # noqa: PLC0415
    from explorer.engine.table import write_records  # noqa: PLC0415
    from explorer.engine.tasks import run_tasks  # noqa: PLC0415
    from explorer.cli.progress import Progress  # noqa: PLC0415
    from explorer.export import output_dir, records_csv  # noqa: PLC0415
    from explorer.robustness.features import (correlation, feature_tasks, method_correlation,  # noqa: PLC0415
                                                    method_means, study_rows)

    if not args.random:
        raise ExplorerError("a study (--slices) places --random N features on each slice")
    slices = parse_list(args.slices, int, "--slices")
    if args.out is not None:
        output_dir(args.out)
    data = resolve_data(args.data, args.data_dir)
    volume = open_volume(data)
    bad = [s for s in slices if not 0 <= s < volume.num_slices]
    if bad:
        raise ExplorerError(f"slice {bad[0]} is out of range: {volume.name} has {volume.num_slices} slices")
    instances, _ = method_instances(args.method, args.set, volume.read_slice(slices[0]).meta.defaults_key)
    mask = mask_config(args)
    tasks = feature_tasks(data, slices, instances, args.random, template, sizes, contrasts, args.feature_seed,
                          "paper" if args.paper_mode else "coil", mask, metric=args.metric)
    records, stopped = [], False
    with Progress("features study", enabled=False) as progress:
        progress(0, len(tasks), {})  # from here one Ctrl-C stops after the task under way, keeping the rows so far
        for i, record in enumerate(run_tasks(tasks), start=1):
            records.append(record)
            if not args.json:
                state = record.error or f"SSIM {record.ssim:.4f}"
                print(f"[{i}/{len(tasks)}] slice {record.slice} {record.label}: {state}", file=sys.stderr, flush=True)
            if progress(i, len(tasks), {}):
                print(f"stopped after {i} of {len(tasks)} tasks: the rows so far are reported", file=sys.stderr)
                stopped = True
                break
    rows = study_rows(records)
    stats = correlation(rows)
    scores = ("window_mse", "contrast_recovery", "local_ssim")
    across = {y: method_correlation(rows, y=y) for y in scores}
    if args.out is not None:
        write_records(Path(args.out) / "records.parquet", records)
        (Path(args.out) / "study.csv").write_text(records_csv(rows, {"metric": args.metric}))
    if args.json:
        print(json.dumps({"file": data, "slices": slices, "features_per_slice": args.random, "metric": args.metric,
                          "rows": rows,
                          "correlation": stats, "method_means": method_means(rows), "method_correlation": across,
                          "errors": {r.label: r.error for r in records if r.error},
                          **({"stopped": True} if stopped else {})}))
        return 0
    print(f"{len(rows)} feature scores; correlation of window MSE with whole-image SSIM:")
    for label, s in stats.items():
        p = "-" if s["pearson"] is None else f"{s['pearson']:+.3f}"
        sp = "-" if s["spearman"] is None else f"{s['spearman']:+.3f}"
        print(f"  {label:<14} n {s['n']:>4}  Pearson {p}  Spearman {sp}")
    print("across methods (their means), Pearson r with whole-image SSIM: " + ", ".join(
        f"{y} {'-' if c['pearson'] is None else format(c['pearson'], '+.3f')}" for y, c in across.items()))
    return 0
