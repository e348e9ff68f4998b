"""Options the commands share, written once: the data flags and their resolution, the mask flags, the
``--method LABEL=METHOD`` / ``--set LABEL.PARAM=VALUE`` grammar, comma-separated lists, and the one-slice problem
that ``recon``, ``attack``, ``features`` and ``ttt`` describe with them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from explorer.errors import ExplorerError

MASK_TYPES = "random, equispaced, equispaced_fraction, magic, magic_fraction, poisson"
RESERVED_LABELS = ("target", "mask", "metrics")  # file names that --out writes besides the methods'


def add_data(p: argparse.ArgumentParser, help: str = "FILE.h5 (fastMRI or raw ISMRMRD), or sample:knee / sample:brain",
             plane: bool = True) -> None:
    """``--data`` (required), ``--data-dir`` (env ``EXPLORER_DATA_DIR``) and, for raw 3D volumes, ``--plane``."""
    p.add_argument("--data", required=True, help=help)
    p.add_argument("--data-dir", default=os.environ.get("EXPLORER_DATA_DIR"),
                   help="resolve relative --data here (env EXPLORER_DATA_DIR)")
    if plane:
        p.add_argument("--plane", default="kxky", help="raw ISMRMRD 3D volumes: kxky (default) or kykz")


def add_mask(p: argparse.ArgumentParser, seed_help: str = "mask seed", types: str = MASK_TYPES) -> None:
    """``--mask --acceleration --center-fraction --seed`` (fastMRI's mask families and 2D Poisson)."""
    p.add_argument("--mask", default="random", help=types)
    p.add_argument("--acceleration", type=float, default=4.0)
    p.add_argument("--center-fraction", type=float, default=None, help="default: 0.08 at 4x, 0.04 at 8x")
    p.add_argument("--seed", type=int, default=0, help=seed_help)


def add_metric(p: argparse.ArgumentParser) -> None:
    """``--metric``: the metric definition (``explorer.metrics.METRIC_DEFINITIONS``), named in every output."""
    p.add_argument("--metric", default="fastmri", help="fastmri (per slice: data range = the slice reference's max; "
                   "default), volume (the fastMRI leaderboard's: the volume's max) or paper (the papers': the "
                   "reconstruction rescaled to the reference's mean and std first)")


def add_methods(p: argparse.ArgumentParser, required: bool = True,
                help: str = "method (repeatable); LABEL=METHOD runs another instance under its own label; see `methods`",
                ) -> None:
    """``--method METHOD | LABEL=METHOD`` (repeatable) and ``--set LABEL.PARAM=VALUE``."""
    p.add_argument("--method", action="append", required=required, default=None if required else [],
                   metavar="METHOD | LABEL=METHOD", help=help)
    p.add_argument("--set", action="append", default=[], metavar="LABEL.PARAM=VALUE", help="parameter of a method instance")


def add_slice_arguments(p: argparse.ArgumentParser) -> None:
    """Everything a one-slice command takes: data, ``--slice``, mask, ``--maps-crop`` and methods."""
    add_data(p)
    p.add_argument("--slice", type=int, default=None, help="slice index (default: the middle slice)")
    add_mask(p)
    p.add_argument("--maps-crop", type=float, default=0.95,
                   help="ESPIRiT crop threshold of the coil maps (bart ecalib -c; default 0.95)")
    add_metric(p)
    add_methods(p)


def resolve_data(data: str, data_dir: str | None) -> str:
    """``--data`` as opened: a sample as it is, a relative path under ``--data-dir``."""
    if data_dir and not data.startswith("sample:") and not Path(data).is_absolute():
        return str(Path(data_dir).expanduser() / data)
    return data


def mask_config(args: argparse.Namespace):
    """The :class:`~explorer.masks.MaskConfig` of :func:`add_mask`'s flags (validated)."""
    from explorer.masks import MaskConfig  # noqa: PLC0415

    return MaskConfig(args.mask, args.acceleration, args.center_fraction, args.seed)


def parse_list(text: str | None, kind: type, what: str) -> list:
    """Comma-separated ``kind`` values of flag ``what``.

    Raises:
        ExplorerError: not such values, or none.
    """
    try:
        values = [kind(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ExplorerError(f"{what} must be comma-separated {kind.__name__} values, got {text!r}") from None
    if not values:
        raise ExplorerError(f"{what} is empty")
    return values


def parse_sets(sets: list[str], labels: list[str]) -> dict[str, dict[str, str]]:
    """``--set LABEL.PARAM=VALUE`` items -> ``{label: {param: value}}`` for the given instance labels."""
    out: dict[str, dict[str, str]] = {m: {} for m in labels}
    for item in sets:
        key, sep, value = item.partition("=")
        name, dot, param = key.rpartition(".")  # labels may hold dots; parameter names never do
        if not sep or not dot or not param or not name:
            raise ExplorerError(f"--set expects LABEL.PARAM=VALUE, got {item!r}")
        if name not in out:
            raise ExplorerError(f"--set {item!r} names {name!r}, which is not a --method label")
        out[name][param] = value
    return out


def method_instances(methods: list[str], sets: list[str], anatomy: str | None = None):
    """``--method METHOD | LABEL=METHOD`` and ``--set LABEL.PARAM=VALUE`` -> ``(method instances for anatomy, their
    parameters {label: {param: value}})``, names, labels and values checked.

    Raises:
        ExplorerError: a label given twice or reserved, an unknown method or parameter, a bad value.
    """
    from explorer.robustness.evaluate import instances_for, parse_instance  # noqa: PLC0415

    pairs = [parse_instance(m) for m in methods]
    labels = [label for label, _ in pairs]
    if len(set(labels)) != len(labels):
        raise ExplorerError("each --method label may be given once (use LABEL=METHOD for several instances)")
    for label in labels:
        if label in RESERVED_LABELS:
            raise ExplorerError(f"--method label {label!r} is reserved (it names an output file); choose another")
    params = parse_sets(sets, labels)
    return instances_for(pairs, params, anatomy), params


def load_problem(args: argparse.Namespace):
    """The undersampled problem and the method instances of :func:`add_slice_arguments`' options (and ``--out``,
    checked before any work). Returns ``(data, volume, index, mask_cfg, problem, instances)``."""
    from explorer.data.sources import open_volume  # noqa: PLC0415
    from explorer.device import get_device  # noqa: PLC0415
    from explorer.engine import prepare  # noqa: PLC0415

    from explorer.metrics import check_definition  # noqa: PLC0415

    check_definition(args.metric)
    method_instances(args.method, args.set)  # validated before any work
    if args.out is not None:
        from explorer.export import output_dir  # noqa: PLC0415

        output_dir(args.out)
    mask_cfg = mask_config(args)
    data = resolve_data(args.data, args.data_dir)
    volume = open_volume(data, plane=args.plane)
    index = volume.num_slices // 2 if args.slice is None else args.slice
    problem = prepare(volume.read_slice(index), mask_cfg, get_device(), crop=args.maps_crop, metric=args.metric)
    instances, _ = method_instances(args.method, args.set, problem.slice.meta.defaults_key)  # data-dependent defaults
    return data, volume, index, mask_cfg, problem, instances


__all__ = ["MASK_TYPES", "RESERVED_LABELS", "add_data", "add_mask", "add_methods", "add_metric", "add_slice_arguments",
           "load_problem",
           "mask_config", "method_instances", "parse_list", "parse_sets", "resolve_data"]
