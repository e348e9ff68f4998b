"""``python -m explorer study SPEC.yaml --out DIR``: a declarative robustness study (clean, attack, small features,
shift, test-time training) over files x slices x masks x method instances, serial or on Ray, resumable."""

from __future__ import annotations

import argparse
import sys

NAME = "study"


def add_parser(sub) -> None:
    """Register the ``study`` sub-command."""
    s = sub.add_parser("study", help="run a study spec (YAML) into a results table; serial or on Ray; resumable")
    s.add_argument("spec", nargs="?", default=None, help="the study spec (YAML or JSON; see explorer/study/spec.py)")
    s.add_argument("--preset", default=None, help="a built-in spec instead: paper-fast (the papers' findings on the "
                   "samples, sized for 2 CPU cores) or paper (the papers' settings: far longer on a CPU)")
    s.add_argument("--data", action="append", default=[], metavar="KEY=DIR",
                   help="with --preset: real data instead of the samples (knee=DIR, brain=DIR, stanford=DIR), or the real-data "
                        "arms added (real-brain=DIR: mc/test and measured built by the README's dataset build)")
    s.add_argument("--out", required=True, help="study directory: results.parquet, spec.yaml, study.log, report.html")
    s.add_argument("--executor", default="serial", help="serial (default, this process) or ray")
    s.add_argument("--ray-address", default=None, help="join this Ray cluster (default: start a local Ray)")
    s.add_argument("--workers", type=int, default=None, help="CPUs of the local Ray (default: all)")
    s.add_argument("--resume", action="store_true", help="continue a study: skip finished units, rerun failed ones")
    s.add_argument("--csv", default=None, help="also export the table as CSV here (checked before the study runs)")
    s.add_argument("--force", action="store_true", help="replace an existing --csv file")
    s.add_argument("--json", action="store_true", help="print one JSON object: the run's counts and time, the metric "
                   "definitions, the papers' conclusions beside what it measured, each experiment's summary rows")


def run(args: argparse.Namespace) -> int:
    """Run the ``study`` command; returns the exit status."""
    from explorer.errors import ExplorerError  # noqa: PLC0415
    from explorer.cli.progress import Progress  # noqa: PLC0415
    from explorer.study.executors import EXECUTORS  # noqa: PLC0415
    from explorer.study.runner import prepare_dir, run_study  # noqa: PLC0415
    from explorer.study.spec import load_spec  # noqa: PLC0415

    if args.executor not in EXECUTORS:
        raise ExplorerError(f"--executor must be one of {', '.join(EXECUTORS)}, got {args.executor!r}")
    if args.workers is not None and args.workers < 1:
        raise ExplorerError(f"--workers must be >= 1, got {args.workers}")
    if args.executor == "serial" and (args.workers or args.ray_address):
        raise ExplorerError("--workers and --ray-address apply to --executor ray")
    if (args.spec is None) == (args.preset is None):
        raise ExplorerError("give a spec file or --preset (one of them)")
    if args.data and args.preset is None:
        raise ExplorerError("--data applies to --preset")
    if args.csv is not None:
        from explorer.cli.outputs import check_output_file  # noqa: PLC0415

        check_output_file(args.csv, args.force, "--csv")  # before the study, not after hours of work
    elif args.force:
        raise ExplorerError("--force applies to --csv (a study folder is continued with --resume)")
    if args.preset is not None:
        from explorer.study.presets import preset  # noqa: PLC0415
        from explorer.study.spec import parse_spec  # noqa: PLC0415

        data = {}
        for item in args.data:
            key, sep, value = item.partition("=")
            if not sep or not value.strip():
                raise ExplorerError(f"--data must be KEY=DIR, got {item!r}")
            data[key.strip()] = value.strip()
        spec = parse_spec(preset(args.preset, data), base=".")
    else:
        spec = load_spec(args.spec)
    prepare_dir(args.out, args.resume)  # refuse an existing study before expanding anything
    if args.ray_address:
        from explorer.study.executors import reachable  # noqa: PLC0415

        reachable(args.ray_address)
    with Progress(f"study {spec.name}", enabled=True) as progress:
        result = run_study(spec, args.out, args.executor, args.workers, args.ray_address, args.resume, progress,
                           spec_file=args.spec)
    from pathlib import Path  # noqa: PLC0415

    from explorer.engine.table import read_records, write_csv  # noqa: PLC0415
    from explorer.readers.report import study_readers  # noqa: PLC0415
    from explorer.study.report import report_html  # noqa: PLC0415

    records = read_records(result.table)
    spec_text = (Path(args.out) / "spec.yaml").read_text()
    readers = study_readers(args.out)  # reading sessions registered with the folder (none for a new study)
    (Path(args.out) / "report.html").write_text(report_html(records, spec_text, f"Study {spec.name}",
                                                            readers.sections(), readers.files()))
    if args.csv:
        write_csv(args.csv, records)
    if args.json:
        import json  # noqa: PLC0415

        from explorer.study.report import conclusions, definitions, summaries  # noqa: PLC0415

        print(json.dumps({"name": spec.name, "preset": args.preset, "executor": args.executor, "units": result.units,
                          "skipped": result.skipped, "run": result.run, "failed": result.failed,
                          "stopped": result.stopped, "seconds": result.seconds, "rows": len(records),
                          "definitions": definitions(records), "conclusions": conclusions(records),
                          "summaries": summaries(records)}, default=float))
        return 0
    state = "stopped early (rerun with --resume)" if result.stopped else "finished"
    print(f"{spec.name}: {state}: {result.units} units, {result.skipped} done earlier, {result.run} run now, "
          f"{result.failed} failed, {result.seconds:.1f} s -> {result.table}")
    if result.failed:
        print(f"failed units are recorded with their one-line error in {result.table} (see study.log)", file=sys.stderr)
    return 0
