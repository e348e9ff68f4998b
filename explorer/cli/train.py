"""``python -m explorer train``: train a network kind (U-net, E2E VarNet, ...) on fastMRI-layout volumes (see
:mod:`explorer.training.train`); its architecture flags come from the kinds (:mod:`explorer.recon.networks`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explorer.cli.progress import Progress
from explorer.errors import ExplorerError
from explorer.recon.networks import get_network, network_kinds


def _arch_flags() -> dict[str, str]:
    """``{flag: help}`` of every kind's architecture flags (a flag several kinds share: each kind's meaning)."""
    helps: dict[str, list[str]] = {}
    for kind in network_kinds():
        for flag, (_, text) in kind.flags.items():
            helps.setdefault(flag, []).append(f"{kind.label}: {text}")
    return {flag: "; ".join(texts) for flag, texts in helps.items()}

NAME = "train"


def add_parser(sub) -> None:
    """Register the ``train`` sub-command."""
    kinds = network_kinds()
    tr = sub.add_parser("train", help=f"train a {' or '.join(k.label for k in kinds)} on a directory of fastMRI-layout "
                        ".h5 volumes")
    tr.add_argument("--model", required=True, choices=[k.name for k in kinds])
    tr.add_argument("--data", required=True, help="directory of training volumes (searched recursively)")
    tr.add_argument("--val", default=None, help="directory of validation volumes (SSIM after every epoch)")
    tr.add_argument("--challenge", default="multicoil", choices=("multicoil", "singlecoil"))
    tr.add_argument("--mask", default="random", help="random, equispaced, equispaced_fraction, magic, magic_fraction (U-net also poisson)")
    tr.add_argument("--acceleration", type=float, default=4.0)
    tr.add_argument("--center-fraction", type=float, default=None, help="default: 0.08 at 4x, 0.04 at 8x")
    tr.add_argument("--epochs", type=int, default=10, help="passes over the training slices (default 10)")
    tr.add_argument("--steps", type=int, default=None, help="optimizer steps; overrides --epochs")
    for flag, text in _arch_flags().items():
        tr.add_argument(f"--{flag.replace('_', '-')}", dest=f"arch_{flag}", type=int, default=None, help=text)
    tr.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: " + ", ".join(
        f"{k.label} {k.train_lr:g}" for k in kinds) + ")")
    tr.add_argument("--batch-size", type=int, default=1)
    tr.add_argument("--seed", type=int, default=0, help="weights, shuffling and masks")
    tr.add_argument("--resume", action="store_true", help="continue from the training state")
    tr.add_argument("--force", action="store_true", help="overwrite an existing checkpoint, card and training state")
    tr.add_argument("--loss", default="supervised", help="supervised (fastMRI's), self (self-supervised k-space l1 on "
                    "the measured data, as test-time training) or both")
    tr.add_argument("--snapshot-every", type=int, default=0, help="also keep a checkpoint every N steps "
                    "(CKPT_stepNNNNNN.pt): models of several training lengths from one run")
    tr.add_argument("--half", action="store_true", help="store the checkpoint weights as float16 (loaded back as float32)")
    tr.add_argument("--state", default=None, help="training-state file (default: CKPT.state.pt next to --out)")
    tr.add_argument("--val-slices", type=int, default=0, help="validate on this many evenly spaced slices (default: all)")
    tr.add_argument("--save-every", type=int, default=200, help="also write the training state every N steps")
    tr.add_argument("--workers", type=int, default=0, help="DataLoader worker processes that read, mask and prepare "
                    "the examples ahead of the optimizer (default 0: in the training process; the examples are the same)")
    tr.add_argument("--amp", default="off", choices=("off", "bf16"), help="mixed precision: bf16 runs the forward pass and "
                    "loss under bfloat16 autocast on the training device (weights and checkpoint stay float32; default off)")
    tr.add_argument("--jitter", type=float, default=0.0, metavar="SIGMA", help="robust training by jittering: add complex "
                    "white Gaussian noise to each example's measured k-space, per entry of std SIGMA ||k|| / sqrt(m) "
                    "(m sampled entries, k the fully sampled k-space), so E||e||^2 = SIGMA^2 ||k||^2: the unit of an "
                    "attack's eps; a fresh seeded draw every step (default 0: off)")
    tr.add_argument("--adv-train", type=float, default=0.0, metavar="EPS", help="adversarial training: each step, PGD on "
                    "the measured k-space raises the training loss under ||e|| <= EPS ||k|| (as an attack's budget), "
                    "then the step trains on the perturbed examples (default 0: off; not with --jitter)")
    tr.add_argument("--adv-steps", type=int, default=None, metavar="N", help="PGD steps of --adv-train (default 3; each "
                    "one more forward and backward pass per training step)")
    tr.add_argument("--json", action="store_true", help="print one JSON object at the end (checkpoint, steps, losses, "
                    "validation SSIM, seconds, robust training, the model card); the log goes to stderr")
    tr.add_argument("--out", required=True, help="checkpoint CKPT.pt (its model card also goes to CKPT.json)")


def run(args: argparse.Namespace) -> int:
    """Run the ``train`` command; returns the exit status."""
    from explorer.training.train import TrainOptions, train  # noqa: PLC0415

    flags = get_network(args.model).flags
    arch = {}
    for flag in _arch_flags():
        value = getattr(args, f"arch_{flag}")
        if value is None:
            continue
        if flag not in flags:
            owners = [k.label for k in network_kinds() if flag in k.flags]
            raise ExplorerError(f"--{flag.replace('_', '-')} applies to the {' and '.join(owners)} only")
        arch[flags[flag][0]] = value
    options = TrainOptions(
        model=args.model, data=Path(args.data), out=Path(args.out), val=Path(args.val) if args.val else None,
        challenge=args.challenge, mask=args.mask, acceleration=args.acceleration, center_fraction=args.center_fraction,
        epochs=args.epochs, steps=args.steps, arch=arch, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        resume=args.resume, force=args.force, half=args.half, state=Path(args.state) if args.state else None,
        val_slices=args.val_slices, save_every=args.save_every, loss=args.loss,
        snapshot_every=args.snapshot_every, workers=args.workers, amp=args.amp,
        jitter=args.jitter, adv_train=args.adv_train, adv_steps=args.adv_steps,
    )
    out = sys.stderr if args.json else sys.stdout
    with Progress(f"train {args.model}", enabled=not args.json) as progress:
        result = train(options, progress=progress, log=lambda line: print(line, file=out, flush=True))
    if args.json:
        print(json.dumps({"checkpoint": str(result.checkpoint), "state": str(result.state), "steps": result.steps,
                          "epochs": result.epochs, "final_loss": result.losses[-1] if result.losses else None,
                          "losses": result.losses, "val_ssim": result.val_ssim, "seconds": result.seconds,
                          "stopped": result.stopped, "robust_training": result.card.get("robust_training"),
                          "card": result.card}))
    return 0
