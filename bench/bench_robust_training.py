"""Robust training benchmark: U-nets trained plainly, with jittering and adversarially, then attacked.

Run: ``python bench/bench_robust_training.py [--steps 400] [--jitter 0.05] [--adv-train 0.05] [--eps 0.01,0.02,0.05]
[--json PATH]`` (``--smoke``: tiny sizes, seconds; only checks that the script runs).

Data: the embedded knee sample (synthetic, fastMRI layout): training subjects ``1..--subjects`` (``--slices`` slices
each) and held-back subjects ``101..100+--test-subjects`` whose slices are never trained on. Every network is a U-net
of the same architecture trained with the same recipe (``--steps``, ``--batch-size``, ``--seed``: the same initial
weights, slice order and masks); they differ only in the robust training (:mod:`explorer.training.robust`):

* ``plain``: ``python -m explorer train`` as shipped;
* ``jitter SIGMA``: complex white Gaussian noise on each example's measured k-space, ``E||e||^2 = SIGMA^2 ||k||^2``;
* ``adv EPS`` (skipped with ``--adv-train 0``): PGD on the measured k-space, ``||e|| <= EPS ||k||``, ``--adv-steps``.

Each network is attacked on every held-back slice (4x random mask, seed = the slice's position) by
:func:`explorer.robustness.attack.sweep` (clean objective, full budget ``||e|| <= eps ||k||``, ``--attack-steps`` PGD
steps, warm-started across the budgets) and scored beside ``--noise-draws`` complex Gaussian perturbations of exactly
each budget's norm (:mod:`explorer.robustness.noise`). The table gives, per network, the clean SSIM and, per eps, the
worst-case SSIM drop and the Gaussian-noise drop (means over the held-back slices; the noise drop also over its draws).
``--json PATH`` writes every number (per slice too). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else float("nan")


def _sd(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) > 1 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="sample matrix side (default 128)")
    parser.add_argument("--coils", type=int, default=4)
    parser.add_argument("--subjects", type=int, default=6, help="training subjects (default 6)")
    parser.add_argument("--slices", type=int, default=5, help="slices per subject (default 5)")
    parser.add_argument("--test-subjects", type=int, default=2, help="held-back subjects attacked (default 2)")
    parser.add_argument("--chans", type=int, default=16)
    parser.add_argument("--pools", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400, help="training steps of every network (default 400)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="weights, slice order and masks of every network")
    parser.add_argument("--jitter", type=float, default=0.05, help="jittering level SIGMA (default 0.05)")
    parser.add_argument("--adv-train", type=float, default=0.05, help="adversarial-training budget EPS (0: no such network)")
    parser.add_argument("--adv-steps", type=int, default=3)
    parser.add_argument("--eps", default="0.01,0.02,0.05", help="attack budgets (default 0.01,0.02,0.05)")
    parser.add_argument("--attack-steps", type=int, default=20)
    parser.add_argument("--noise-draws", type=int, default=3)
    parser.add_argument("--work", default=None, help="folder for the data and checkpoints (default: a temporary one)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="write every number to PATH (-: standard output, the table then goes to standard error)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only checks that the script runs (CI)")
    args = parser.parse_args()
    global print  # noqa: PLW0603 - with --json -, the table and messages go to standard error
    if args.json == "-":
        print = _to_stderr  # noqa: A001
    if args.smoke:
        args.size, args.coils, args.subjects, args.slices, args.test_subjects = 32, 2, 1, 2, 1
        args.chans, args.pools, args.steps, args.batch_size, args.adv_steps = 4, 2, 2, 2, 1
        args.eps, args.attack_steps, args.noise_draws = "0.02,0.05", 2, 2

    import torch  # noqa: PLC0415

    from explorer.data.fastmri import FastMRIVolume  # noqa: PLC0415
    from explorer.data.sample import SampleSpec, write_sample  # noqa: PLC0415
    from explorer.device import describe_device, get_device  # noqa: PLC0415
    from explorer.engine import MethodInstance, prepare  # noqa: PLC0415
    from explorer.masks import MaskConfig  # noqa: PLC0415
    from explorer.recon.base import get_method  # noqa: PLC0415
    from explorer.robustness.attack import AttackConfig, sweep, with_noise  # noqa: PLC0415
    from explorer.robustness.objectives import parse_eps  # noqa: PLC0415
    from explorer.training.train import TrainOptions, train  # noqa: PLC0415

    eps_values = parse_eps(args.eps)
    device = get_device()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work).expanduser() if args.work else Path(tmp)
        began = time.perf_counter()
        train_dir, test_dir = work / "train", work / "heldback"
        for seed in range(1, args.subjects + 1):
            write_sample(train_dir, SampleSpec("knee", args.size, args.slices, args.coils, seed))
        test_files = [write_sample(test_dir, SampleSpec("knee", args.size, args.slices, args.coils, 100 + i))
                      for i in range(1, args.test_subjects + 1)]
        slices = [FastMRIVolume(f).read_slice(s) for f in test_files for s in range(args.slices)]
        recipes = [("plain", {}), (f"jitter {args.jitter:g}", {"jitter": args.jitter})]
        if args.adv_train > 0:
            recipes.append((f"adv {args.adv_train:g}", {"adv_train": args.adv_train, "adv_steps": args.adv_steps}))
        print(f"sample:knee {args.size}x{args.size} {args.coils} coils; train {args.subjects}x{args.slices} slices, "
              f"held back {len(slices)}; U-net chans {args.chans} pools {args.pools}; {args.steps} steps x batch "
              f"{args.batch_size}, seed {args.seed}; attack {args.attack_steps} PGD steps, clean objective, "
              f"{args.noise_draws} noise draws; device {describe_device(device)}, torch {torch.__version__}", flush=True)

        networks = []
        for label, robust in recipes:
            out = work / f"unet_{label.replace(' ', '_')}.pt"
            result = train(TrainOptions(model="unet", data=train_dir, out=out, steps=args.steps, batch_size=args.batch_size,
                                        seed=args.seed, arch={"chans": args.chans, "num_pool_layers": args.pools},
                                        force=True, **robust))
            instance = MethodInstance(label, "unet", get_method("unet").make_config({"checkpoint": str(out)}))
            config = AttackConfig(steps=args.attack_steps, noise_draws=args.noise_draws, seed=args.seed)
            per_slice = []
            for index, sl in enumerate(slices):
                problem = prepare(sl, MaskConfig("random", 4, seed=index), device)
                results = with_noise(problem, sweep(problem, instance, eps_values, config))
                per_slice.append([{"eps": r.config.eps, "ssim_clean": r.row()["ssim_clean"],
                                   "worst_ssim_drop": r.row()["ssim_drop"],
                                   "noise_ssim_drop": r.noise.row()["ssim_drop"] if r.noise is not None else None,
                                   "ratio": r.ratio} for r in results])
            rows = []
            for k, eps in enumerate(eps_values):
                worst = [s[k]["worst_ssim_drop"] for s in per_slice]
                noise = [s[k]["noise_ssim_drop"] for s in per_slice]
                rows.append({"eps": eps, "worst_ssim_drop": _mean(worst), "worst_ssim_drop_sd": _sd(worst),
                             "noise_ssim_drop": _mean(noise), "noise_ssim_drop_sd": _sd(noise)})
            networks.append({"label": label, "checkpoint_card_robust_training": result.card.get("robust_training"),
                             "train_seconds": round(result.seconds, 1), "final_loss": result.losses[-1],
                             "clean_ssim": _mean([s[0]["ssim_clean"] for s in per_slice]), "rows": rows,
                             "per_slice": per_slice})
            print(f"  trained and attacked {label}: {result.seconds:.1f} s training", flush=True)

    head = "| network | train s | clean SSIM | " + " | ".join(f"eps {e:g} worst | eps {e:g} noise" for e in eps_values) + " |"
    print()
    print(head)
    print("|" + "---|" * (3 + 2 * len(eps_values)))
    for net in networks:
        cells = " | ".join(f"{r['worst_ssim_drop']:.4f} | {r['noise_ssim_drop']:.4f}" for r in net["rows"])
        print(f"| {net['label']} | {net['train_seconds']:.1f} | {net['clean_ssim']:.4f} | {cells} |")
    print(f"\nSSIM drops (clean - perturbed), means over {len(slices)} held-back slices; noise: complex Gaussian of "
          f"exactly the budget's norm, {args.noise_draws} draws. Total {time.perf_counter() - began:.1f} s.")
    if args.json:
        text = json.dumps({"settings": {k: v for k, v in vars(args).items() if k != "json"},
                           "device": describe_device(device), "eps": eps_values, "networks": networks},
                          indent=1, default=float)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            Path(args.json).write_text(text)


def _to_stderr(*parts, **kwargs) -> None:
    import builtins  # noqa: PLC0415

    builtins.print(*parts, **{**kwargs, "file": sys.stderr})


if __name__ == "__main__":
    main()
