"""``python -m explorer dataset build``: a folder of complex images -> fastMRI-layout .h5 volumes (single-coil, or
semi-real multi-coil with real ESPIRiT coil maps); see :mod:`explorer.data.adapter`."""

from __future__ import annotations

import argparse
import math
import sys

from explorer.cli.outputs import add_force, refuse_earlier
from explorer.errors import ExplorerError

NAME = "dataset"


def _snr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ExplorerError(f"--snr must be a number of dB or inf, got {text!r}") from None
    return value


def add_parser(sub) -> None:
    """Register the ``dataset`` command and its ``build`` action."""
    d = sub.add_parser("dataset", help="build fastMRI-layout .h5 volumes from a folder of complex images")
    actions = d.add_subparsers(dest="action", required=True)
    b = actions.add_parser("build", help="turn .mat (v5, v7.3) / .npy / .cfl complex images into fastMRI-layout volumes",
                           description="Files are taken in natural numeric order (2.mat before 10.mat); each holds an "
                           "image (H, W) or a stack (S, H, W) (with --coils measured: one multi-coil k-space slice). "
                           "Neighbouring slices are near-duplicates: split train/val by --range blocks, not by slices.")
    b.add_argument("--in", dest="input", required=True, metavar="DIR", help="folder of .mat / .npy / .cfl+.hdr images")
    b.add_argument("--out", required=True, metavar="DIR", help="output folder (PREFIX_0001.h5, ...)")
    add_force(b)
    b.add_argument("--key", default=None, help=".mat variable (default: the only one), e.g. Img")
    b.add_argument("--range", dest="file_range", default=None, metavar="A-B",
                   help="files A..B (1-based, inclusive, by position in the sorted list), e.g. 1-480")
    b.add_argument("--slices-per-volume", type=int, default=None, metavar="N",
                   help="group N consecutive slices into one volume (default: one volume per file)")
    b.add_argument("--coils", default="single", help="single (k-space = FFT of the image), semi-real (real ESPIRiT "
                   "coil maps from --maps-from times the image, plus noise) or measured (each file holds one real "
                   "multi-coil k-space slice, centred; one volume per file, reference = RSS)")
    b.add_argument("--coil-axis", type=int, default=0, metavar="AXIS",
                   help="measured .npy/.mat k-space: the axis of the coils (default 0: (C, H, W); -1 for (H, W, C))")
    b.add_argument("--maps-from", default=None, metavar="FILE",
                   help="one real multi-coil k-space: fastMRI .h5 (middle slice), .npy/.mat (C, H, W) or BART .cfl "
                   "(H, W, 1, C) or (1, H, W, C)")
    b.add_argument("--anatomy", default=None, help="knee or brain: recorded in the volumes, so methods take that "
                   "anatomy's defaults (tuned lambda, checkpoint auto) and trained networks' cards name it")
    b.add_argument("--snr", type=_snr, default=40.0, metavar="DB",
                   help="semi-real noise, dB relative to the mean k-space power (default 40; inf: none)")
    b.add_argument("--seed", type=int, default=0, help="noise seed (semi-real)")
    b.add_argument("--crop", type=float, default=0.95, help="ESPIRiT eigenvalue crop of the maps (default 0.95)")
    b.add_argument("--prefix", default="volume", help="output file-name stem (default volume)")
    b.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run ``dataset build``; returns the exit status."""
    import json  # noqa: PLC0415

    from explorer.data.adapter import BuildConfig, build, check_config, output_patterns, parse_range  # noqa: PLC0415
    from explorer.export import output_dir  # noqa: PLC0415

    if args.action != "build":
        raise ExplorerError(f"unknown dataset action {args.action!r}; use build")
    config = BuildConfig(coils=args.coils, key=args.key, slices_per_volume=args.slices_per_volume,
                         file_range=None if args.file_range is None else parse_range(args.file_range),
                         maps_from=args.maps_from, snr_db=args.snr, seed=args.seed, crop=args.crop, prefix=args.prefix,
                         anatomy=args.anatomy, coil_axis=args.coil_axis)
    check_config(config)
    refuse_earlier(args.out, output_patterns(config), args.force)
    out = output_dir(args.out)
    rows = []

    def report(path, shape):
        rows.append({"path": str(path), "kspace_shape": list(shape)})
        if not args.json:
            print(f"{path}  kspace {' x '.join(map(str, shape))}")

    written = {path.name for path in build(args.input, out, config, report=report)}
    stale = sorted({p.name for pattern in output_patterns(config) for p in out.glob(pattern)} - written)
    if stale:  # --force replaced some: the rest are an earlier build's and would mix into this dataset
        print(f"note: {out} also holds {len(stale)} earlier file(s) this build did not write ({stale[0]}"
              f"{', ...' if len(stale) > 1 else ''}); remove them before using the folder", file=sys.stderr)
    if args.json:
        print(json.dumps({"volumes": rows, "semi_real": config.coils == "semi-real",
                          "snr_db": None if not math.isfinite(config.snr_db) or config.coils != "semi-real"
                          else config.snr_db}))
    return 0
