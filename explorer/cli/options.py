"""Command-line options shared by the commands that work on one slice (``recon``, ``attack``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_slice_arguments(r: argparse.ArgumentParser) -> None:
    """``--data --data-dir --plane --slice --mask --acceleration --center-fraction --seed --method --set``."""
    r.add_argument("--data", required=True, help="FILE.h5 (fastMRI or raw ISMRMRD), or sample:knee / sample:brain")
    r.add_argument("--data-dir", default=os.environ.get("EXPLORER_DATA_DIR"), help="resolve relative --data here (env EXPLORER_DATA_DIR)")
    r.add_argument("--plane", default="kxky", help="raw ISMRMRD 3D volumes: kxky (default) or kykz")
    r.add_argument("--slice", type=int, default=None, help="slice index (default: the middle slice)")
    r.add_argument("--mask", default="random", help="random, equispaced, equispaced_fraction, magic, magic_fraction, poisson")
    r.add_argument("--acceleration", type=float, default=4.0)
    r.add_argument("--center-fraction", type=float, default=None, help="default: 0.08 at 4x, 0.04 at 8x")
    r.add_argument("--seed", type=int, default=0, help="mask seed")
    r.add_argument("--maps-crop", type=float, default=0.95,
                   help="ESPIRiT crop threshold of the coil maps (bart ecalib -c; default 0.95)")
    r.add_argument("--method", action="append", required=True, metavar="METHOD | LABEL=METHOD",
                   help="method (repeatable); LABEL=METHOD runs another instance under its own label; see `methods`")
    r.add_argument("--set", action="append", default=[], metavar="LABEL.PARAM=VALUE", help="parameter of a method instance")


def load_problem(args):
    """The undersampled problem and the method instances of ``add_slice_arguments``' options (and ``--out``,
    checked before any work). Returns ``(data, volume, index, mask_cfg, problem, instances)``."""
    from explorer.data.sources import open_volume  # noqa: PLC0415
    from explorer.device import get_device  # noqa: PLC0415
    from explorer.engine import prepare  # noqa: PLC0415
    from explorer.masks import MaskConfig  # noqa: PLC0415

    from explorer.cli.main import _instances  # noqa: PLC0415

    _instances(args.method, args.set)  # validated before any work
    if args.out is not None:
        from explorer.export import output_dir  # noqa: PLC0415

        output_dir(args.out)
    mask_cfg = MaskConfig(args.mask, args.acceleration, args.center_fraction, args.seed)
    data = args.data
    if args.data_dir and not data.startswith("sample:") and not Path(data).is_absolute():
        data = str(Path(args.data_dir).expanduser() / data)
    volume = open_volume(data, plane=args.plane)
    index = volume.num_slices // 2 if args.slice is None else args.slice
    problem = prepare(volume.read_slice(index), mask_cfg, get_device(), crop=args.maps_crop)
    instances, _ = _instances(args.method, args.set, problem.slice.meta.defaults_key)  # data-dependent defaults
    return data, volume, index, mask_cfg, problem, instances
