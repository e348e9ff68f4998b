"""``python -m explorer train``: train a U-net or an E2E VarNet on fastMRI-layout volumes (see :mod:`explorer.training.train`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.cli.progress import Progress

_ARCH_FLAGS = {  # CLI flag -> constructor kwarg, per model
    "unet": {"chans": "chans", "pools": "num_pool_layers"},
    "varnet": {"cascades": "num_cascades", "chans": "chans", "pools": "pools", "sens_chans": "sens_chans", "sens_pools": "sens_pools"},
}


def add_parser(sub) -> None:
    """Register the ``train`` sub-command."""
    tr = sub.add_parser("train", help="train a U-net or E2E VarNet on a directory of fastMRI-layout .h5 volumes")
    tr.add_argument("--model", required=True, choices=("unet", "varnet"))
    tr.add_argument("--data", required=True, help="directory of training volumes (searched recursively)")
    tr.add_argument("--val", default=None, help="directory of validation volumes (SSIM after every epoch)")
    tr.add_argument("--challenge", default="multicoil", choices=("multicoil", "singlecoil"))
    tr.add_argument("--mask", default="random", help="random, equispaced, equispaced_fraction, magic, magic_fraction (U-net also poisson)")
    tr.add_argument("--acceleration", type=float, default=4.0)
    tr.add_argument("--center-fraction", type=float, default=None, help="default: 0.08 at 4x, 0.04 at 8x")
    tr.add_argument("--epochs", type=int, default=10, help="passes over the training slices (default 10)")
    tr.add_argument("--steps", type=int, default=None, help="optimizer steps; overrides --epochs")
    tr.add_argument("--chans", type=int, default=None, help="channels of the first conv layer (U-net 32, VarNet cascades 18)")
    tr.add_argument("--pools", type=int, default=None, help="pooling layers (default 4)")
    tr.add_argument("--cascades", type=int, default=None, help="VarNet cascades (default 12)")
    tr.add_argument("--sens-chans", type=int, default=None, help="VarNet coil-map U-net channels (default 8)")
    tr.add_argument("--sens-pools", type=int, default=None, help="VarNet coil-map U-net pooling layers (default 4)")
    tr.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: U-net 1e-3, VarNet 3e-4)")
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
    tr.add_argument("--out", required=True, help="checkpoint CKPT.pt (its model card also goes to CKPT.json)")


def run(args: argparse.Namespace) -> int:
    """Run the ``train`` command; returns the exit status."""
    from explorer.training.train import TrainOptions, train  # noqa: PLC0415

    flags = ("cascades", "chans", "pools", "sens_chans", "sens_pools")
    arch = {}
    for flag in flags:
        value = getattr(args, flag)
        if value is None:
            continue
        if flag not in _ARCH_FLAGS[args.model]:
            raise ExplorerError(f"--{flag.replace('_', '-')} applies to the VarNet only")
        arch[_ARCH_FLAGS[args.model][flag]] = value
    options = TrainOptions(
        model=args.model, data=Path(args.data), out=Path(args.out), val=Path(args.val) if args.val else None,
        challenge=args.challenge, mask=args.mask, acceleration=args.acceleration, center_fraction=args.center_fraction,
        epochs=args.epochs, steps=args.steps, arch=arch, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        resume=args.resume, force=args.force, half=args.half, state=Path(args.state) if args.state else None,
        val_slices=args.val_slices, save_every=args.save_every, loss=args.loss,
        snapshot_every=args.snapshot_every,
    )
    with Progress(f"train {args.model}", enabled=True) as progress:
        train(options, progress=progress, log=lambda line: print(line, flush=True))
    return 0
