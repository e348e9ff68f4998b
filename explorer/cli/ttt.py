"""``python -m explorer ttt``: test-time training of trained networks on one slice.

Per method instance with weights: metrics before and after, steps, the step whose weights are used, the stop
reason and seconds; with ``--reference-checkpoint`` (a model of the same method trained on the target
distribution), its SSIM and the gap closed ``(SSIM_TTT - SSIM_PQ) / (SSIM_QQ - SSIM_PQ)``. Every reference is
loaded and run before any training, so a bad one fails at once. ``--out DIR`` writes ``ttt.csv`` and the images
(a folder holding such files from an earlier run is refused unless ``--force``). One Ctrl-C stops the network under
way (keeping the weights its stopping rule would keep so far) and ends the command: the networks after it are listed
as ``not_run``.
"""

from __future__ import annotations

import argparse
import json

import sys

from explorer.cli.options import add_slice_arguments, load_problem
from explorer.cli.outputs import add_force, refuse_earlier
from explorer.errors import ExplorerError

NAME = "ttt"
OUTPUTS = ("ttt.csv", "target.npy", "*_before.npy", "*_after.npy", "*_reference.npy")  # what --out receives


def add_parser(sub) -> None:
    """Register the ``ttt`` sub-command."""
    t = sub.add_parser("ttt", help="test-time training of a trained network on one slice (self-supervised, self-validated)")
    add_slice_arguments(t)
    t.add_argument("--protocol", default="ours", help="ours (columns held out of loss and input, <= 200 steps, window "
                   "20, rollback) or paper (5%% of the entries held out of the loss, <= 2500 steps, window 100, no "
                   "rollback); the flags below change it")
    t.add_argument("--steps", type=int, default=None, help="maximum Adam steps (protocol's: 200 / 2500)")
    t.add_argument("--lr", type=float, default=None, help="learning rate (0 = the method's: U-net 1e-5, VarNet 1e-4)")
    t.add_argument("--window", type=int, default=None, help="W of the stopping rule (protocol's: 20 / 100; the papers "
                   "use 20 for the dataset shift)")
    t.add_argument("--holdout", type=float, default=None, help="share of the sampled locations held out (0.05)")
    t.add_argument("--holdout-unit", default=None, help="columns (ours) or entries (the papers')")
    t.add_argument("--ttt-seed", type=int, default=0, help="seed of the hold-out draw")
    t.add_argument("--no-rollback", action="store_true", help="keep the last weights instead of the best held-out ones")
    t.add_argument("--reference-checkpoint", default=None,
                   help="checkpoint of the same method trained on the target distribution (e.g. brain): gap closed")
    t.add_argument("--out", default=None, help="write ttt.csv and the reconstructions (.npy) here")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    add_force(t)


def run(args: argparse.Namespace) -> int:
    """Run the ``ttt`` command; returns the exit status."""
    import dataclasses  # noqa: PLC0415
    from dataclasses import replace  # noqa: PLC0415

    from explorer.engine import MethodInstance, run_method  # noqa: PLC0415
    from explorer.cli.progress import Progress  # noqa: PLC0415
    from explorer.robustness.ttt import protocol_config, test_time_train  # noqa: PLC0415

    changes = {name: value for name, value in (("steps", args.steps), ("lr", args.lr), ("window", args.window),
                                               ("holdout", args.holdout), ("holdout_unit", args.holdout_unit))
               if value is not None}
    if args.no_rollback:
        changes["rollback"] = False
    config = protocol_config(args.protocol, seed=args.ttt_seed, **changes)
    refuse_earlier(args.out, OUTPUTS, args.force)
    data, volume, index, _, problem, instances = load_problem(args)
    without = [i.display for i in instances if not i.capabilities.weights]
    if without:
        raise ExplorerError(f"{without[0]} has no trained weights to adapt at test time")
    references = {}  # every reference before any training: a bad one fails at once
    if args.reference_checkpoint:
        for instance in instances:
            if not hasattr(instance.config, "checkpoint"):
                raise ExplorerError(f"{instance.display} takes no checkpoint: --reference-checkpoint does not apply")
            ref_instance = MethodInstance(f"{instance.label}_reference", instance.name,
                                          replace(instance.config, checkpoint=args.reference_checkpoint))
            references[instance.label] = run_method(problem, ref_instance)
    rows, results, not_run, stopped = [], [], [], False
    for instance in instances:
        if stopped:
            not_run.append(instance.label)  # one Ctrl-C ends the whole command, not only the network under way
            continue
        reference = references.get(instance.label)
        with Progress(f"TTT {instance.display}", enabled=not args.json) as progress:
            result = test_time_train(problem, instance, config, progress)
            stopped = progress.stop_requested
        results.append((instance, result, reference))
        rows.append(result.row(reference))
    if args.out is not None:
        _write(args.out, problem, rows, results, args.metric)
    if args.json:
        print(json.dumps({"file": data, "slice": index, "device": str(problem.device), "protocol": config.protocol, "metric": problem.metric,
                          "settings": dataclasses.asdict(config), "results": rows,
                          **({"not_run": not_run} if not_run else {})}))
        return 0
    print(f"{volume.name}  slice {index}  protocol {config.protocol}: hold-out {config.holdout:g} "
          f"{config.holdout_unit}{'' if config.holdout_input else ' (loss only)'}, window {config.window}, "
          f"at most {config.steps} steps{'' if config.rollback else ', no rollback'}")
    for r in rows:
        gap = "" if r.get("gap_closed") is None else f"  reference {r['ssim_reference']:.4f}  gap closed {r['gap_closed']:.0%}"
        print(f"{r['label']:<14} SSIM {_f(r['ssim_before'])} -> {_f(r['ssim_after'])}  PSNR {_f(r['psnr_before'], 2)} -> "
              f"{_f(r['psnr_after'], 2)}  {r['steps']} steps (weights of step {r['best_step']}, {r['stop_reason']}) "
              f"{r['seconds']:.1f} s{gap}")
    if stopped:
        print("stopped early: the weights kept so far are reported"
              + (f"; not run: {', '.join(not_run)}" if not_run else ""), file=sys.stderr)
    return 0


def _f(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _write(folder: str, problem, rows: list[dict], results, metric: str) -> None:
    from pathlib import Path  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from explorer.export import records_csv  # noqa: PLC0415

    path = Path(folder)
    (path / "ttt.csv").write_text(records_csv(rows, {"metric": metric}))
    if problem.target is not None:
        np.save(path / "target.npy", problem.target)
    for instance, result, reference in results:
        np.save(path / f"{instance.label}_before.npy", result.before.image)
        np.save(path / f"{instance.label}_after.npy", result.after.image)
        if reference is not None:
            np.save(path / f"{instance.label}_reference.npy", reference.image)
