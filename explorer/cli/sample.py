"""``python -m explorer sample``: write the embedded sample (knee, brain and their variants) as fastMRI-layout .h5."""

from __future__ import annotations

import argparse

from explorer.errors import ExplorerError

NAME = "sample"


def add_parser(sub) -> None:
    """Register the ``sample`` sub-command."""
    s = sub.add_parser("sample", help="write embedded sample volume(s) as fastMRI-layout .h5")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--force", action="store_true", help="replace sample files an earlier run wrote there")
    s.add_argument("--family", choices=None, action="append", help="knee or brain (repeatable; default both)")
    s.add_argument("--size", type=int, default=320)
    s.add_argument("--slices", type=int, default=5)
    s.add_argument("--coils", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--contrast", default="", help="knee: pd (default) or pdfs (fat-suppressed); brain: t2 (default) or "
                   "t1 (the same subject in another contrast: a contrast shift)")
    s.add_argument("--dataset", default="", help="knee: fastmri (default, 2D FSE) or stanford (a Stanford-like 3D FSE "
                   "acquisition of the same subject: a dataset shift)")


def run(args: argparse.Namespace) -> int:
    """Run the ``sample`` command; returns the exit status."""
    from explorer.cli.outputs import refuse_earlier  # noqa: PLC0415
    from explorer.data.sample import FAMILIES, SampleSpec, file_name, write_sample  # noqa: PLC0415

    from explorer.export import output_dir  # noqa: PLC0415

    families = args.family or list(FAMILIES)
    specs = []
    for family in families:
        if family not in FAMILIES:
            raise ExplorerError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
        specs.append(SampleSpec(family=family, size=args.size, slices=args.slices, coils=args.coils, seed=args.seed,
                                contrast=args.contrast, dataset=args.dataset))
    refuse_earlier(args.out, [file_name(spec) for spec in specs], args.force)
    output_dir(args.out)
    for spec in specs:
        print(write_sample(args.out, spec))
    return 0
