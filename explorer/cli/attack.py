"""``python -m explorer attack``: worst-case k-space perturbations of one slice for each method instance.

Prints a table (or ``--json``: one object per method and eps under ``"results"``) of clean and perturbed
SSIM/PSNR/NMSE, the budget reached ``||e||/||k||``, steps, seconds and the strategy (gradient / joint), each worst
case followed by its random baseline: ``--noise-draws`` complex Gaussian perturbations of exactly the budget's norm,
mean ± sample sd (``--json``: one object per method and eps under ``"noise"``; 0 = none). ``--out DIR`` also writes
``attack.csv`` (both kinds of row, told apart by its ``kind`` column), and per method and eps the perturbation ``e_<label>_<eps>.npy`` and perturbed image (a folder
holding such files from an earlier run is refused unless ``--force``). One Ctrl-C stops the method under way
(keeping its worst perturbation so far) and ends the command: the methods after it are listed as ``not_run``.
"""

from __future__ import annotations

import argparse
import json
import sys

from explorer.cli.options import add_slice_arguments, load_problem
from explorer.cli.outputs import add_force, refuse_earlier
from explorer.errors import ExplorerError

NAME = "attack"
OUTPUTS = ("attack.csv", "transfer.csv", "e_*.npy", "perturbed_*.npy")  # what --out receives


def add_parser(sub) -> None:
    """Register the ``attack`` sub-command."""
    a = sub.add_parser("attack", help="adversarial k-space perturbations (PGD under an l2 budget) for each method")
    add_slice_arguments(a)
    a.add_argument("--eps", default="0.08", help="relative l2 budget(s), comma-separated (e.g. 0.01,0.02,0.04,0.08)")
    a.add_argument("--objective", default="clean", help="clean (deviation from the clean recon), target (from the reference) or paper (the papers' per family: clean for trained networks, target for the others)")
    a.add_argument("--region", default=None, help="row0,col0,row1,col1: maximise the error inside this box only")
    a.add_argument("--budget", default="full", help="full (eps x ||fully sampled k||, the paper's) or measured (eps x ||y||)")
    a.add_argument("--steps", type=int, default=20, help="gradient steps per restart")
    a.add_argument("--step-size", type=float, default=0.0, help="step as a fraction of the budget (0 = 2.5/steps)")
    a.add_argument("--restarts", type=int, default=1)
    a.add_argument("--optimizer", default="pgd", help="pgd (normalised l2 steps) or adam (the paper's)")
    a.add_argument("--patience", type=int, default=5, help="stop after this many steps without a new worst (0 = never)")
    a.add_argument("--attack-seed", type=int, default=0, help="seed of the random starts (and of the noise draws)")
    a.add_argument("--noise-draws", type=int, default=3,
                   help="complex Gaussian perturbations of exactly each budget's norm scored beside each worst case "
                        "(mean ± sd; 0 = none, at most 32); each draw is one more reconstruction per method and budget "
                        "(an un-trained fit is refitted from scratch per draw)")
    a.add_argument("--transfer", action="store_true", help="also apply each method's perturbation to every other method")
    a.add_argument("--out", default=None, help="write attack.csv, perturbations and images here")
    add_force(a)
    a.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run the attacks of ``args``; returns the exit status."""
    import dataclasses  # noqa: PLC0415

    from explorer.engine import run_method  # noqa: PLC0415
    from explorer.cli.progress import Progress  # noqa: PLC0415
    from explorer.robustness.attack import AttackConfig, sweep, with_noise  # noqa: PLC0415
    from explorer.robustness.objectives import parse_eps, parse_region  # noqa: PLC0415
    from explorer.robustness.perturbations import transfer  # noqa: PLC0415

    eps = parse_eps(args.eps, "--eps")
    config = AttackConfig(eps=max(eps), objective=args.objective, region=parse_region(args.region), budget=args.budget,
                          steps=args.steps, step_size=args.step_size, restarts=args.restarts, optimizer=args.optimizer,
                          patience=args.patience, seed=args.attack_seed,
                          noise_draws=args.noise_draws)  # validated before any work
    for value in eps:
        dataclasses.replace(config, eps=value)
    refuse_earlier(args.out, OUTPUTS, args.force)
    data, volume, index, _, problem, instances = load_problem(args)
    results, cleans, not_run = [], {}, []
    for instance in instances:
        if results and any(r.halted for r in results):
            not_run.append(instance.label)  # one Ctrl-C ends the whole command, not only the method under way
            continue
        cleans[instance.label] = clean = run_method(problem, instance)
        with Progress(f"attack {instance.display}", enabled=not args.json) as progress:
            try:
                results += with_noise(problem, sweep(problem, instance, eps, config, progress, clean), progress)
            except ExplorerError as exc:
                raise ExplorerError(f"{instance.label}: {exc}") from None
    rows = [r.row() for r in results]
    noise = [r.noise.row() for r in results if r.noise is not None]
    stopped = any(r.halted for r in results)
    transfers = transfer(problem, results, instances, cleans, noise=not stopped) if args.transfer else []
    if args.out is not None:
        _write(args.out, results, [row for r in results for row in _rows(r)], transfers, args.metric)
    if args.json:
        print(json.dumps({"file": data, "slice": index, "device": str(problem.device),
                          "maps": "fixed: ESPIRiT of the clean measurements", "metric": problem.metric, "results": rows,
                          "noise": noise, "transfer": transfers, **({"not_run": not_run} if not_run else {})}))
        return 0
    print(f"{volume.name}  slice {index}  objective {config.objective}  budget {config.budget}  maps: clean ESPIRiT")
    print(f"{'method':<14}{'eps':>7}{'reached':>9}{'SSIM':>8}{'->':>3}{'SSIM':>8}{'PSNR':>8}{'->':>3}{'PSNR':>8}"
          f"{'steps':>7}{'sec':>8}  strategy")
    for result in results:
        r = result.row()
        print(f"{r['label']:<14}{r['eps']:7.3f}{r['ratio']:9.4f}{_f(r['ssim_clean'], 8, 4)}{'':3}{_f(r['ssim_perturbed'], 8, 4)}"
              f"{_f(r['psnr_clean'], 8, 2)}{'':3}{_f(r['psnr_perturbed'], 8, 2)}{r['steps']:7d}{r['seconds']:8.1f}  {r['strategy']}")
        if result.noise is not None:  # the random baseline: means over the draws, their sd in the last column
            n = result.noise.row()
            print(f"{'  noise':<14}{n['eps']:7.3f}{_f(n['ratio'], 9, 4)}{_f(n['ssim_clean'], 8, 4)}{'':3}"
                  f"{_f(n['ssim_perturbed'], 8, 4)}{_f(n['psnr_clean'], 8, 2)}{'':3}{_f(n['psnr_perturbed'], 8, 2)}"
                  f"{'-':>7}{n['seconds']:8.1f}  random: mean of {n['draws']} Gaussian draw(s) of the same norm "
                  f"(sd SSIM {_f(n['ssim_perturbed_sd'], 0, 4)}, PSNR {_f(n['psnr_perturbed_sd'], 0, 2)} dB)")
    for t in transfers:
        print(f"transfer {t['source']} -> {t['target']} (eps {t['eps']:g}): SSIM {_f(t['ssim_clean'], 0, 4)} -> "
              f"{_f(t['ssim_perturbed'], 0, 4)}")
    if stopped:
        print("stopped early: the worst perturbation found so far is reported"
              + (f"; not run: {', '.join(not_run)}" if not_run else ""), file=sys.stderr)
    return 0


def _f(value, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def _rows(result) -> list[dict]:
    """A result's CSV rows: its worst case, then its noise baseline (if any)."""
    return [result.row()] + ([result.noise.row()] if result.noise is not None else [])


def _write(out: str, results, rows: list[dict], transfers: list[dict], metric: str) -> None:
    from pathlib import Path  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from explorer.export import records_csv  # noqa: PLC0415

    folder = Path(out)
    for r in results:
        stem = f"{r.instance.label}_{r.config.eps:g}"
        np.save(folder / f"e_{stem}.npy", r.e[0].numpy())
        np.save(folder / f"perturbed_{stem}.npy", r.perturbed.image)
    for name, table in (("attack.csv", rows), ("transfer.csv", transfers)):
        if table:
            (folder / name).write_text(records_csv(table, {"metric": metric}))
