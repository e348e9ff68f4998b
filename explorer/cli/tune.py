"""``python -m explorer tune``: grid-search the lambda of a sparse method (l1, tv) maximising the mean SSIM."""

from __future__ import annotations

import argparse
import json

from explorer.cli.options import add_data, add_mask, mask_config, parse_list, parse_sets, resolve_data
from explorer.cli.progress import Progress

NAME = "tune"


def add_parser(sub) -> None:
    """Register the ``tune`` sub-command."""
    t = sub.add_parser("tune", help="grid-search lam of a sparse method (l1, tv) maximising the mean SSIM over slices")
    t.add_argument("--method", required=True, help="method with a lam parameter: l1 or tv")
    add_data(t, help="FILE.h5 (with reference images), or sample:knee / sample:brain")
    t.add_argument("--slices", default=None, help="comma-separated slice indices (default: the middle slice)")
    t.add_argument("--grid", default=None, help="comma-separated lam values (default: 1e-4 ... 1e-1)")
    add_mask(t)
    t.add_argument("--set", action="append", default=[], metavar="NAME.PARAM=VALUE",
                   help="other method parameters (e.g. l1.iterations=30)")
    t.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run the ``tune`` command; returns the exit status."""
    from explorer.data.sources import open_volume  # noqa: PLC0415
    from explorer.device import get_device  # noqa: PLC0415
    from explorer.recon.base import get_method  # noqa: PLC0415
    from explorer.robustness.tune import DEFAULT_GRID, tune_volume  # noqa: PLC0415

    spec = get_method(args.method)
    config = spec.make_config(parse_sets(args.set, [spec.name])[spec.name])
    grid = parse_list(args.grid, float, "--grid") if args.grid is not None else list(DEFAULT_GRID)
    mask_cfg = mask_config(args)
    data = resolve_data(args.data, args.data_dir)
    volume = open_volume(data, plane=args.plane)
    slices = parse_list(args.slices, int, "--slices") if args.slices is not None else [volume.num_slices // 2]
    with Progress(f"tune {spec.name}", enabled=not args.json) as progress:
        result = tune_volume(spec.name, volume, slices, mask_cfg, grid, config, get_device(), progress)
    if args.json:
        print(json.dumps({"file": data, "mask": {"type": mask_cfg.type, "acceleration": mask_cfg.acceleration,
                                                 "center_fraction": mask_cfg.resolved_center_fraction, "seed": mask_cfg.seed},
                          **result.as_dict()}))
        return 0
    print(f"{volume.name}  slices {','.join(map(str, result.slices))}  mask {mask_cfg.type} R={mask_cfg.acceleration:g}  method {spec.name}")
    print(f"{'lam':>10}{'mean SSIM':>11}  " + "".join(f"{'s' + str(i):>8}" for i in result.slices))
    for i, (lam, mean, row) in enumerate(zip(result.grid, result.mean_ssim, result.ssim)):
        mark = " *" if i == result.best_index else ""
        print(f"{lam:>10.3g}{mean:>11.4f}  " + "".join(f"{v:8.4f}" for v in row) + mark)
    print(f"best lam {result.best_lam:.3g}  (mean SSIM {result.best_ssim:.4f})")
    return 0
