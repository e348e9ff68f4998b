"""``python -m explorer readers``: reader studies: build a blinded reading session, add readers (personal codes),
follow its progress, fill it with SIMULATED readers, export the answers and analyse them (see
:mod:`explorer.readers`).

Actions::

    readers build SESSION (--demo | --spec FILE | --study DIR) [--task likert|2afc|detection] [--repeats F] ...
    readers add-reader SESSION [--name NAME]          # prints the reader's personal code (shown once)
    readers status SESSION
    readers simulate SESSION [--readers N]            # scripted model observers, labelled as simulated
    readers export SESSION --out FILE [--format csv|parquet] [--table answers|key|audit|readers]
    readers analyse SESSION [--json] [--csv FILE]     # --csv: every analysis table in one CSV
    readers copy SESSION --out FILE                   # a consistent single-file copy, also while readers answer
    readers register SESSION [--study DIR]            # link a session to the study folder it was built from
    readers report DIR                                # DIR/report.html again, with its reader studies and their CSV
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from explorer.cli.outputs import add_force
from explorer.errors import ExplorerError

NAME = "readers"
ACTIONS = ("build", "add-reader", "status", "simulate", "export", "analyse", "copy", "register", "report")


def _session(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", help="the session file (e.g. knee.reading)")


def add_parser(sub) -> None:
    """Register the ``readers`` command and its actions."""
    r = sub.add_parser("readers", help="reader studies: blinded reading sessions, readers, answers and their analysis",
                       description="Reader studies: build a blinded reading session (one SQLite file), give each "
                       "reader a personal code, export and analyse the answers.")
    actions = r.add_subparsers(dest="action", required=True, metavar="ACTION")

    b = actions.add_parser("build", help="build a session from a study spec, a study folder or the demonstration")
    _session(b)
    source = b.add_mutually_exclusive_group(required=True)
    source.add_argument("--demo", action="store_true",
                        help="the demonstration: embedded knee sample, zero-filled, l1 and U-net at 4x")
    source.add_argument("--spec", default=None, metavar="FILE", help="a study spec (YAML/JSON, as `study`): its "
                        "reconstructions are run now")
    source.add_argument("--study", default=None, metavar="DIR", help="a study folder (spec.yaml + results.parquet): "
                        "its finished units, reconstructed again (the session is registered in DIR/readers/, so the "
                        "study's report shows its analysis)")
    b.add_argument("--task", default="likert", help="likert (default), 2afc or detection")
    b.add_argument("--seed", type=int, default=0, help="seed of the order, left/right placement and repeats")
    b.add_argument("--repeats", type=float, default=None, metavar="F",
                   help="fraction of cases shown again for intra-reader consistency (default 0; demo 0.25)")
    b.add_argument("--criteria", default=None, help="Likert criteria, comma-separated (default: overall, artifacts, "
                   "sharpness, confidence)")
    b.add_argument("--show-reference", action="store_true", help="show the fully sampled reference beside each case")
    b.add_argument("--order", default="per-reader", help="per-reader (default: each reader's own seeded order) or shared")
    b.add_argument("--dtype", default="float16", help="stored pixels: float16 (default) or float32")
    b.add_argument("--name", default=None, help="session name (default: the study's)")
    b.add_argument("--conditions", default=None, help="condition kinds kept, comma-separated: clean, attack, lesion, "
                   "shift (default: all)")
    b.add_argument("--methods", default=None, help="method labels kept, comma-separated (default: all)")
    b.add_argument("--pairs", default=None, metavar="A:B,...", help="2AFC pairs of labels (default: every pair)")
    b.add_argument("--max-subjects", type=int, default=None, metavar="N", help="keep the first N slices")
    b.add_argument("--demo-size", type=int, default=96, help="demo image size in pixels (32..320, default 96)")
    b.add_argument("--demo-slices", type=int, default=3, help="demo slices (1..16, default 3)")
    add_force(b, "SESSION")
    b.add_argument("--json", action="store_true", help="print one JSON object")

    a = actions.add_parser("add-reader", help="add a reader and print their personal code (shown once)")
    _session(a)
    a.add_argument("--name", default=None, help="a display name (initials, a pseudonym); default 'reader N'")
    a.add_argument("--json", action="store_true", help="print one JSON object")

    s = actions.add_parser("status", help="the session's settings and each reader's progress")
    _session(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")

    m = actions.add_parser("simulate", help="add SIMULATED readers (scripted model observers) who answer every item")
    _session(m)
    m.add_argument("--readers", type=int, default=2, help="how many (default 2)")
    m.add_argument("--metric", default="ssim", help="Likert/2AFC observers rate by: ssim (default), psnr or nmse")
    m.add_argument("--noise", type=float, default=0.5, help="observer noise (default 0.5)")
    m.add_argument("--fraction", type=float, default=1.0, help="share of each reader's items answered (default 1)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--json", action="store_true", help="print one JSON object")

    e = actions.add_parser("export", help="write the answers (unblinded), the key, the audit log or the readers")
    _session(e)
    e.add_argument("--out", required=True, metavar="FILE", help="output file (.csv or .parquet)")
    e.add_argument("--format", default=None, help="csv or parquet (default: from --out's suffix)")
    e.add_argument("--table", default="answers", help="answers (default), key, audit or readers")
    add_force(e, "--out")

    n = actions.add_parser("analyse", help="ratings, preferences, ROC areas, agreement, consistency, metric correlation")
    _session(n)
    n.add_argument("--boot", type=int, default=2000, help="bootstrap replicates (default 2000; 0: no intervals)")
    n.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    n.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    n.add_argument("--tolerance", type=float, default=None, metavar="PX",
                   help="detection: a click within PX pixels of the lesion centre localises it (default: lesion size)")
    n.add_argument("--readers", default="all", help="all (default), human or simulated")
    n.add_argument("--json", action="store_true", help="print one JSON object")
    n.add_argument("--csv", default=None, metavar="FILE", help="also write every analysis table to one CSV (columns: "
                   "session, task, table, then the tables' columns)")
    add_force(n, "--csv")

    c = actions.add_parser("copy", help="a consistent single-file copy of the session (safe while readers answer)")
    _session(c)
    c.add_argument("--out", required=True, metavar="FILE", help="the copy")
    add_force(c, "--out")

    g = actions.add_parser("register", help="register a session with a study folder (its report then shows the "
                           "session's analysis); builds with --study do it themselves")
    _session(g)
    g.add_argument("--study", default=None, metavar="DIR", help="the study folder (default: the one the session "
                   "was built from)")

    p = actions.add_parser("report", help="write a study folder's report.html again, with the analysis of the "
                           "reading sessions registered with it (also as DIR/readers/reader-analysis.csv)")
    p.add_argument("study", metavar="DIR", help="the study folder (spec.yaml + results.parquet)")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap replicates (default 2000; 0: no intervals)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _list(text: str | None, what: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise ExplorerError(f"{what} is empty")
    return values


def _pairs(text: str | None) -> tuple[tuple[str, str], ...] | None:
    if text is None:
        return None
    out = []
    for item in _list(text, "--pairs"):
        a, sep, b = item.partition(":")
        if not sep or not a.strip() or not b.strip():
            raise ExplorerError(f"--pairs takes A:B pairs of method labels, got {item!r}")
        out.append((a.strip(), b.strip()))
    return tuple(out)


def _build(args: argparse.Namespace) -> int:
    from explorer.readers.options import ReadingOptions  # noqa: PLC0415
    from explorer.readers.session import build_demo, build_from_spec, build_from_study  # noqa: PLC0415
    from explorer.readers.store import check_output  # noqa: PLC0415

    if args.demo and any(v is not None for v in (args.criteria, args.conditions, args.methods, args.pairs,
                                                  args.max_subjects, args.name)):
        raise ExplorerError("--demo takes --task, --seed, --repeats and --demo-size/--demo-slices only")
    check_output(args.session, args.force)
    if args.repeats is not None and not math.isfinite(args.repeats):
        raise ExplorerError(f"--repeats must be a fraction in [0, 1], got {args.repeats}")

    def report(done: int, total: int, what: str) -> None:
        if not args.json:  # Ctrl-C ends the build; nothing is written until every reconstruction is done
            print(f"build: {done}/{total} {what}", file=sys.stderr, flush=True)

    if args.demo:
        built = build_demo(args.session, args.task, args.demo_size, args.demo_slices, args.seed,
                           0.25 if args.repeats is None else args.repeats, args.force, report)
    else:
        options = ReadingOptions(
            task=args.task, seed=args.seed, repeats=0.0 if args.repeats is None else args.repeats,
            criteria=_list(args.criteria, "--criteria") or ReadingOptions().criteria,
            show_reference=args.show_reference, order=args.order, dtype=args.dtype, name=args.name or "",
            conditions=_list(args.conditions, "--conditions"), methods=_list(args.methods, "--methods"),
            pairs=_pairs(args.pairs), max_subjects=args.max_subjects)
        if args.spec is not None:
            built = build_from_spec(args.session, args.spec, options, args.force, report)
        else:
            built = build_from_study(args.session, args.study, options, args.force, report)
    if args.json:
        print(json.dumps(built.as_dict()))
    else:
        print(f"wrote {built.path}: {built.cases} cases ({built.items} items with repeats) from {built.reconstructions} "
              f"reconstructions; methods {', '.join(built.labels)}; conditions {', '.join(built.conditions)}")
        for note in built.notes:
            print(f"note: {note}")
        if built.link is not None:
            print(f"registered with the study folder {args.study} ({built.link}): its report shows this session "
                  f"(python -m explorer readers report {args.study})")
        print(f"next: python -m explorer readers add-reader {built.path} --name INITIALS", file=sys.stderr)
    return 0


def _add_reader(args: argparse.Namespace) -> int:
    from explorer.readers.codes import add_reader  # noqa: PLC0415

    new = add_reader(args.session, args.name)
    if args.json:
        print(json.dumps({"reader_id": new.reader_id, "name": new.name, "kind": new.kind, "code": new.code}))
    else:
        print(f"{new.name}: personal code {new.code}")
        print("give the code to the reader; it is shown only now (the session keeps its hash)", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    from explorer.readers.tables import status  # noqa: PLC0415

    st = status(args.session)
    if args.json:
        print(json.dumps(st.as_dict()))
        return 0
    print(f"{st.name}  task {st.task}  {st.cases} cases, {st.items} items (repeats included)  created {st.created}")
    print(f"source: {st.source}")
    for note in st.notes:
        print(f"note: {note}")
    if not st.readers:
        print("no readers yet: python -m explorer readers add-reader SESSION")
    else:
        print(f"{'reader':<40}{'kind':<11}{'answered':>10}{'changes':>9}  last answer")
        for r in st.readers:
            print(f"{r['name']:<40}{r['kind']:<11}{r['answered']:>5}/{r['total']:<4}{r['changes']:>9}  {r['last'] or '-'}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from explorer.readers.simulated import ModelObserver, simulate  # noqa: PLC0415

    for name in ("noise", "fraction"):
        if not math.isfinite(getattr(args, name)):
            raise ExplorerError(f"--{name} must be a finite number")
    observer = ModelObserver(metric=args.metric, noise=args.noise)
    added = simulate(args.session, args.readers, observer, args.seed, args.fraction)
    if args.json:
        print(json.dumps({"simulated": True, "readers": [{"reader_id": r.reader_id, "name": r.name, "code": r.code}
                                                         for r in added]}))
    else:
        for r in added:
            print(f"{r.name}: answered (SIMULATED reader, not a person)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from explorer.readers.tables import export  # noqa: PLC0415

    fmt = args.format or {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(Path(args.out).suffix.lower())
    if fmt is None:
        raise ExplorerError("give --format csv or parquet (--out has neither suffix)")
    target = export(args.session, args.out, fmt, args.table, args.force)
    print(f"wrote {target} ({args.table}, {fmt}; unblinded: it names the methods)")
    return 0


def _analyse(args: argparse.Namespace) -> int:
    from explorer.readers.analysis import analyse  # noqa: PLC0415

    kinds = {"all": ("human", "simulated"), "human": ("human",), "simulated": ("simulated",)}.get(args.readers)
    if kinds is None:
        raise ExplorerError(f"--readers must be all, human or simulated, got {args.readers!r}")
    if args.tolerance is not None and not math.isfinite(args.tolerance):
        raise ExplorerError("--tolerance must be a finite number of pixels")
    if args.csv is not None:
        from explorer.readers.store import check_output  # noqa: PLC0415

        check_output(args.csv, args.force)
    result = analyse(args.session, args.boot, args.seed, args.level, args.tolerance, kinds)
    if args.csv is not None:
        _write_csv(args.session, result, args.csv)
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0
    import pandas as pd  # noqa: PLC0415

    print(f"task {result.task}; readers: " + (", ".join(f"{r.name} ({r.kind}, {r.answers} answers)"
                                                      for r in result.readers.itertuples()) or "none"))
    for note in result.notes:
        print(f"note: {note}")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 40):
        for name, frame in result.tables.items():
            print(f"\n{name}: {result.captions[name]}")
            print(frame.round(4).to_string(index=False) if len(frame) else "(nothing to show yet)")
    return 0


def _write_csv(session: str, result, out: str) -> None:
    """Every table of ``result`` (session ``session``) in one CSV (:meth:`~explorer.readers.report.StudyReaders.frame`'s
    columns), as the study report's download."""
    from pathlib import Path  # noqa: PLC0415

    from explorer.readers.report import SessionReport, StudyReaders  # noqa: PLC0415
    from explorer.readers.tables import status  # noqa: PLC0415

    StudyReaders((SessionReport(Path(session), status(session), result),)).frame().to_csv(out, index=False)
    print(f"wrote {out} (every analysis table; unblinded: it names the methods)", file=sys.stderr)


def _copy(args: argparse.Namespace) -> int:
    from explorer.readers.store import copy_session  # noqa: PLC0415

    target = copy_session(args.session, args.out, args.force)
    print(f"wrote {target}")
    return 0


def _register(args: argparse.Namespace) -> int:
    from explorer.readers.links import register  # noqa: PLC0415
    from explorer.readers.store import session_meta  # noqa: PLC0415

    study = args.study or session_meta(args.session).get("study")
    if not study:
        raise ExplorerError("the session records no study folder (built from a spec, the demonstration, or before "
                            "sessions recorded it): give --study DIR")
    link = register(args.session, study)
    print(f"registered {args.session} with the study {study} ({link})")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from explorer.engine.table import read_records  # noqa: PLC0415
    from explorer.readers.links import FOLDER, study_sessions  # noqa: PLC0415
    from explorer.readers.report import CSV_NAME, study_readers  # noqa: PLC0415
    from explorer.study.report import report_html  # noqa: PLC0415
    from explorer.study.runner import RESULTS, SPEC  # noqa: PLC0415
    from explorer.study.spec import load_spec  # noqa: PLC0415

    folder = Path(args.study).expanduser()
    if not (folder / SPEC).is_file() or not (folder / RESULTS).is_file():
        raise ExplorerError(f"{folder} is not a study folder (it needs {SPEC} and {RESULTS}: python -m explorer study)")
    if not study_sessions(folder)[0]:
        raise ExplorerError(f"no reading session is registered with {folder}: build one with `readers build SESSION "
                            f"--study {folder}`, or `readers register SESSION --study {folder}`")
    if not 0 <= args.boot <= 100_000:
        raise ExplorerError(f"--boot must be an integer in 0..100000, got {args.boot}")
    readers = study_readers(folder, args.boot, args.seed)
    records = read_records(folder / RESULTS)
    spec_text = (folder / SPEC).read_text()
    try:
        title = f"Study {load_spec(folder / SPEC).name}"
    except ExplorerError:
        title = f"Study {folder.resolve().name}"
    (folder / "report.html").write_text(report_html(records, spec_text, title, readers.sections(), readers.files()))
    csv = folder / FOLDER / CSV_NAME
    csv.write_text(readers.csv())
    sessions = [{"session": str(r.path), "name": r.name, "error": r.error or None,
                 "readers": None if r.analysis is None else len(r.analysis.readers)} for r in readers.sessions]
    if args.json:
        print(json.dumps({"report": str(folder / "report.html"), "csv": str(csv), "sessions": sessions,
                          "notes": list(readers.notes)}))
        return 0
    for r in sessions:
        print(f"{r['name']}: " + (f"could not be read: {r['error']}" if r["error"] else f"{r['readers']} readers")
              + f" ({r['session']})")
    for note in readers.notes:
        print(f"note: {note}")
    print(f"wrote {folder / 'report.html'} and {csv} (unblinded: they name the methods)")
    return 0


RUNS = {"build": _build, "add-reader": _add_reader, "status": _status, "simulate": _simulate, "export": _export,
        "analyse": _analyse, "copy": _copy, "register": _register, "report": _report}


def run(args: argparse.Namespace) -> int:
    """Run a ``readers`` action; returns the exit status."""
    if args.action not in RUNS:
        raise ExplorerError(f"unknown readers action {args.action!r}; use {', '.join(ACTIONS)}")
    return RUNS[args.action](args)
