"""Command-line interface over the explorer library (``python -m explorer ...``).

Every bad input exits with status 2 and one line ``error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.cli.progress import Progress as _Progress
from explorer.cli.options import add_slice_arguments, load_problem


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one ``error:`` line and exit status 2."""

    def error(self, message: str):  # noqa: D401
        raise ExplorerError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m explorer", description="MRI robustness explorer: reconstruct and compare.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("sample", help="write embedded sample volume(s) as fastMRI-layout .h5")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--family", choices=None, action="append", help="knee or brain (repeatable; default both)")
    s.add_argument("--size", type=int, default=320)
    s.add_argument("--slices", type=int, default=5)
    s.add_argument("--coils", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--contrast", default="", help="knee: pd (default) or pdfs (fat-suppressed); brain: t2 (default) or "
                   "t1 (the same subject in another contrast: a contrast shift)")
    s.add_argument("--dataset", default="", help="knee: fastmri (default, 2D FSE) or stanford (a Stanford-like 3D FSE "
                   "acquisition of the same subject: a dataset shift)")

    r = sub.add_parser("recon", help="undersample a slice and reconstruct it with one or more methods")
    add_slice_arguments(r)
    r.add_argument("--out", default=None, help="write target/mask/<method> .npy+.png and metrics.csv here")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--roi", default=None, metavar="TOP,LEFT,BOTTOM,RIGHT",
                   help="also report mean, std, SSIM and PSNR inside this box (inclusive rows and columns of the image)")
    r.add_argument("--profile", default=None, metavar="ROW0,COL0,ROW1,COL1",
                   help="also give the intensity along this line (JSON, and profile.csv with --out)")

    import importlib  # noqa: PLC0415

    for module in _MODULES.values():
        importlib.import_module(module).add_parser(sub)

    m = sub.add_parser("methods", help="list reconstruction methods and their parameters")
    m.add_argument("--json", action="store_true")

    f = sub.add_parser("files", help="list the .h5 volumes under a data directory")
    f.add_argument("--data-dir", default=os.environ.get("EXPLORER_DATA_DIR"))

    t = sub.add_parser("tune", help="grid-search lam of a sparse method (l1, tv) maximising the mean SSIM over slices")
    t.add_argument("--method", required=True, help="method with a lam parameter: l1 or tv")
    t.add_argument("--data", required=True, help="FILE.h5 (with reference images), or sample:knee / sample:brain")
    t.add_argument("--data-dir", default=os.environ.get("EXPLORER_DATA_DIR"), help="resolve relative --data here (env EXPLORER_DATA_DIR)")
    t.add_argument("--plane", default="kxky", help="raw ISMRMRD 3D volumes: kxky (default) or kykz")
    t.add_argument("--slices", default=None, help="comma-separated slice indices (default: the middle slice)")
    t.add_argument("--grid", default=None, help="comma-separated lam values (default: 1e-4 ... 1e-1)")
    t.add_argument("--mask", default="random", help="random, equispaced, equispaced_fraction, magic, magic_fraction, poisson")
    t.add_argument("--acceleration", type=float, default=4.0)
    t.add_argument("--center-fraction", type=float, default=None, help="default: 0.08 at 4x, 0.04 at 8x")
    t.add_argument("--seed", type=int, default=0, help="mask seed")
    t.add_argument("--set", action="append", default=[], metavar="NAME.PARAM=VALUE", help="other method parameters (e.g. l1.iterations=30)")
    t.add_argument("--json", action="store_true", help="print one JSON object")

    e = sub.add_parser("evaluate", help="mean SSIM/PSNR/NMSE of methods over every slice of a directory of volumes")
    e.add_argument("--data", required=True, help="directory of fastMRI-layout .h5 volumes with references (or one file)")
    e.add_argument("--method", action="append", required=True, metavar="METHOD | LABEL=METHOD",
                   help="method (repeatable); LABEL=METHOD runs another instance under its own label")
    e.add_argument("--set", action="append", default=[], metavar="LABEL.PARAM=VALUE", help="parameter of a method instance")
    e.add_argument("--mask", default="random", help="random, equispaced, equispaced_fraction, magic, magic_fraction, poisson")
    e.add_argument("--acceleration", type=float, default=4.0)
    e.add_argument("--center-fraction", type=float, default=None, help="default: 0.08 at 4x, 0.04 at 8x")
    e.add_argument("--seed", type=int, default=0, help="mask seed of the first slice (slice i uses seed + i)")
    e.add_argument("--max-slices", type=int, default=None, help="score at most this many slices, evenly spread")
    e.add_argument("--batch-size", type=int, default=8, help="slices per forward pass of the trained networks")
    e.add_argument("--out", default=None, help="write every record (metrics, timings, provenance) to this Parquet table")
    e.add_argument("--resume", action="store_true", help="continue the --out table: reuse the rows of finished tasks")
    e.add_argument("--csv", default=None, help="also export the records as CSV here")
    e.add_argument("--json", action="store_true", help="print one JSON object")

    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    try:
        args = _parser().parse_args(argv)
        return _run_command(args)
    except ExplorerError as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else 'invalid input'}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory: use a smaller slice, fewer methods or smaller settings", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001  (a bug: still one line unless debugging)
        if os.environ.get("EXPLORER_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set EXPLORER_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def _cmd_sample(args) -> int:
    from explorer.data.sample import FAMILIES, SampleSpec, write_sample  # noqa: PLC0415

    from explorer.export import output_dir  # noqa: PLC0415

    output_dir(args.out)
    families = args.family or list(FAMILIES)
    for family in families:
        if family not in FAMILIES:
            raise ExplorerError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
        spec = SampleSpec(family=family, size=args.size, slices=args.slices, coils=args.coils, seed=args.seed,
                          contrast=args.contrast, dataset=args.dataset)
        print(write_sample(args.out, spec))
    return 0


def _parse_sets(sets: list[str], labels: list[str]) -> dict[str, dict[str, str]]:
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


RESERVED_LABELS = ("target", "mask", "metrics")  # file names that --out writes besides the methods'


def _instances(methods: list[str], sets: list[str], anatomy: str | None = None):
    """``--method METHOD | LABEL=METHOD`` and ``--set LABEL.PARAM=VALUE`` -> method instances (for ``anatomy``)."""
    from explorer.robustness.evaluate import instances_for, parse_instance  # noqa: PLC0415

    pairs = [parse_instance(m) for m in methods]
    labels = [label for label, _ in pairs]
    if len(set(labels)) != len(labels):
        raise ExplorerError("each --method label may be given once (use LABEL=METHOD for several instances)")
    for label in labels:
        if label in RESERVED_LABELS:
            raise ExplorerError(f"--method label {label!r} is reserved (it names an output file); choose another")
    params = _parse_sets(sets, labels)
    return instances_for(pairs, params, anatomy), params


def _cmd_recon(args) -> int:
    from explorer.engine import run_method  # noqa: PLC0415

    from explorer.viewer.detail import check_inside, profile_csv, report  # noqa: PLC0415
    from explorer.viewer.measure import Box, parse_line  # noqa: PLC0415

    try:
        roi = None if args.roi is None else Box.parse(args.roi)
        line = None if args.profile is None else parse_line(args.profile)
    except ValueError as exc:
        raise ExplorerError(str(exc)) from None
    data, volume, index, mask_cfg, problem, instances = load_problem(args)
    device = problem.device
    if roi is not None or line is not None:  # checked before any reconstruction runs
        check_inside(roi, line, problem.crop)

    results = []
    for instance in instances:
        with _Progress(instance.display, enabled=not args.json) as progress:
            try:
                results.append(run_method(problem, instance, progress=progress))
            except ExplorerError as exc:
                raise ExplorerError(f"{instance.label}: {exc}") from None
        if results[-1].stopped:
            done = f" at step {results[-1].steps[0]}/{results[-1].steps[1]}" if results[-1].steps else ""
            print(f"{instance.display}: stopped{done}; its best image so far is kept", file=sys.stderr)
    rows = [{"method": r.method, "label": r.instance, **(r.metrics or {"ssim": None, "psnr": None, "nmse": None}),
             "seconds": r.seconds} for r in results]
    sampled = problem.sampled
    mask_info = {
        "type": "acquired" if sampled.config is None else mask_cfg.type,
        "acceleration": mask_cfg.acceleration if sampled.config is not None else None,
        "acceleration_actual": sampled.acceleration,
        "center_fraction": mask_cfg.resolved_center_fraction if sampled.config is not None else None,
        "seed": mask_cfg.seed if sampled.config is not None else None,
    }
    if args.out is not None:
        from explorer.export import write_results  # noqa: PLC0415

        write_results(args.out, problem.target, sampled.pattern(problem.slice.shape), {r.instance: r.image for r in results}, rows)
    detail = report(problem.target, {r.instance: r.image for r in results}, roi, line)
    if line is not None and args.out is not None:
        (Path(args.out) / "profile.csv").write_text(profile_csv(detail["profile"]))
    if args.json:
        print(json.dumps({
            "file": data, "slice": index, "shape": list(problem.slice.shape), "coils": problem.slice.num_coils,
            "device": str(device), "mask": mask_info,
            "results": [{**row, "notes": list(r.notes)} for row, r in zip(rows, results)], **detail,
        }))
    else:
        print(f"{volume.name}  slice {index}/{volume.num_slices - 1}  {problem.slice.shape[0]}x{problem.slice.shape[1]}  "
              f"{problem.slice.num_coils} coil(s)  device {device}")
        print(f"mask {mask_info['type']}  R={sampled.acceleration:.2f} actual  centre {sampled.num_low_frequencies} lines")
        print(f"{'method':<16}{'SSIM':>8}{'PSNR':>8}{'NMSE':>10}{'seconds':>9}")
        for row in rows:
            metric = (f"{row['ssim']:8.4f}{row['psnr']:8.2f}{row['nmse']:10.4f}" if row["ssim"] is not None else f"{'-':>8}{'-':>8}{'-':>10}")
            print(f"{row['label']:<16}{metric}{row['seconds']:9.2f}")
        for r in results:
            for note in r.notes:
                print(f"  {r.instance}: {note}")
        if problem.target is None:
            print("no reference image in this file (test data): metrics not computed")
        if roi is not None:
            print(f"ROI {roi.describe()}")
            print(f"{'image':<16}{'mean':>11}{'std':>11}{'SSIM':>8}{'PSNR':>8}")
            for r in detail["roi"]["rows"]:
                quality = (f"{r['ssim']:8.4f}{r['psnr']:8.2f}" if r["ssim"] is not None else f"{'-':>8}{'-':>8}")
                print(f"{r['label']:<16}{r['mean']:11.4g}{r['std']:11.4g}{quality}")
    return 0


def _cmd_methods(args) -> int:
    from explorer.recon.base import available_methods  # noqa: PLC0415

    methods = available_methods()
    listing = [{
        "name": m.name, "label": m.label, "family": m.family, "description": m.description,
        "capabilities": dataclasses.asdict(m.capabilities),
        "params": [{"name": p.name, "type": p.type.__name__, "default": p.default, "help": p.help,
                    "min": p.min, "max": p.max, "choices": list(p.choices) if p.choices else None} for p in m.params()],
    } for m in methods]
    if args.json:
        print(json.dumps(listing))
        return 0
    for m in listing:
        caps = m["capabilities"]
        print(f"{m['name']:<14}{m['label']} - {m['description']}  [gradient {caps['gradient']}, cost {caps['cost']}"
              f"{', trained weights' if caps['weights'] else ''}{', batches slices' if caps['batches'] else ''}]")
        for p in m["params"]:
            print(f"    {m['name']}.{p['name']}={p['default']!r}  ({p['type']}) {p['help']}")
    return 0


def _cmd_files(args) -> int:
    from explorer.data.fastmri import list_volumes  # noqa: PLC0415

    if not args.data_dir:
        raise ExplorerError("give --data-dir or set EXPLORER_DATA_DIR")
    for path in list_volumes(args.data_dir):
        print(path)
    return 0


def _parse_list(text: str, kind, what: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ExplorerError(f"{what} must be comma-separated {kind.__name__} values, got {text!r}") from None
    if not values:
        raise ExplorerError(f"{what} is empty")
    return values


def _cmd_tune(args) -> int:
    from explorer.data.sources import open_volume  # noqa: PLC0415
    from explorer.device import get_device  # noqa: PLC0415
    from explorer.masks import MaskConfig  # noqa: PLC0415
    from explorer.recon.base import get_method  # noqa: PLC0415
    from explorer.robustness.tune import DEFAULT_GRID, tune_volume  # noqa: PLC0415

    spec = get_method(args.method)
    config = spec.make_config(_parse_sets(args.set, [spec.name])[spec.name])
    grid = _parse_list(args.grid, float, "--grid") if args.grid is not None else list(DEFAULT_GRID)
    mask_cfg = MaskConfig(args.mask, args.acceleration, args.center_fraction, args.seed)
    data = args.data
    if args.data_dir and not data.startswith("sample:") and not Path(data).is_absolute():
        data = str(Path(args.data_dir).expanduser() / data)
    volume = open_volume(data, plane=args.plane)
    slices = _parse_list(args.slices, int, "--slices") if args.slices is not None else [volume.num_slices // 2]
    with _Progress(f"tune {spec.name}", enabled=not args.json) as progress:
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


def _cmd_evaluate(args) -> int:
    from explorer.robustness.evaluate import evaluate  # noqa: PLC0415
    from explorer.masks import MaskConfig  # noqa: PLC0415

    if args.max_slices is not None and args.max_slices < 1:
        raise ExplorerError("--max-slices must be at least 1")
    if args.batch_size < 1:
        raise ExplorerError("--batch-size must be at least 1")
    _, params = _instances(args.method, args.set)
    from explorer.engine.table import output_table  # noqa: PLC0415

    table = output_table(args.out, args.resume)
    if args.csv and table is None:
        raise ExplorerError("--csv exports the --out table: give --out too")
    mask_cfg = MaskConfig(args.mask, args.acceleration, args.center_fraction, args.seed)
    with _Progress("evaluate", enabled=not args.json) as bar:
        result = evaluate(args.data, args.method, mask_cfg, params, args.max_slices, batch_size=args.batch_size,
                          progress=lambda done, total, label: bar(done, total, {}), table=table, resume=args.resume)
    rows = result.summary()
    if bar.stop_requested:
        print(f"evaluate: stopped after {len(result.slices)} slice(s); the figures cover those", file=sys.stderr)
    if args.csv:
        from explorer.engine.table import read_records, write_csv  # noqa: PLC0415

        write_csv(args.csv, read_records(table))
    if args.json:
        print(json.dumps({"data": args.data, "slices": [list(s) for s in result.slices], "skipped": list(result.skipped),
                          "mask": {"type": mask_cfg.type, "acceleration": mask_cfg.acceleration,
                                   "center_fraction": mask_cfg.resolved_center_fraction, "seed": mask_cfg.seed},
                          "resumed": result.resumed, "table": None if table is None else str(table), "results": rows,
                          "notes": result.notes or {}}))
        return 0
    print(f"{len(result.slices)} slices from {args.data}  mask {mask_cfg.type} {mask_cfg.acceleration:g}x "
          f"(seed {mask_cfg.seed} + slice number)" + (f"  skipped {len(result.skipped)} file(s) without reference" if result.skipped else "")
          + (f"  ({result.resumed} record(s) reused from {table})" if result.resumed else ""))
    print(f"{'method':<16}{'SSIM':>16}{'PSNR (dB)':>16}{'NMSE':>18}{'seconds':>9}")
    for r in rows:
        print(f"{r['label']:<16}{r['ssim']:>9.4f} ± {r['ssim_std']:.3f}{r['psnr']:>9.2f} ± {r['psnr_std']:.2f}"
              f"{r['nmse']:>10.4f} ± {r['nmse_std']:.3f}{r['seconds']:9.2f}")
    for label, notes in (result.notes or {}).items():
        for note in notes:
            print(f"  {label}: {note}")
    return 0


_COMMANDS = {"evaluate": _cmd_evaluate, "sample": _cmd_sample, "recon": _cmd_recon, "methods": _cmd_methods, "files": _cmd_files, "tune": _cmd_tune}
# Experiment commands, each in its own module (``add_parser(sub)`` and ``run(args)``), imported when run.
_MODULES = {"attack": "explorer.cli.attack", "features": "explorer.cli.features", "ttt": "explorer.cli.ttt",
            "shift": "explorer.cli.shift", "zoo": "explorer.cli.zoo", "study": "explorer.cli.study",
            "train": "explorer.cli.train"}


def _run_command(args) -> int:
    if args.command in _MODULES:
        import importlib  # noqa: PLC0415

        return importlib.import_module(_MODULES[args.command]).run(args)
    return _COMMANDS[args.command](args)
