"""Running a study into a directory: the spec, a Parquet results table (one row per record, with provenance) and
a log; resumable, and a failed unit is recorded with its one-line error while the study goes on.

The table is rewritten atomically with the finished units' rows (at most every ``flush_seconds``, and at the end,
on a stop and on Ctrl-C), so an interrupted run leaves complete rows only, and a killed process loses at most the
last ``flush_seconds`` of units; ``resume=True`` skips the units whose rows are
there without error (failed units are run again).
"""

from __future__ import annotations

import datetime
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from explorer.engine.table import read_records, write_records
from explorer.engine.tasks import Record
from explorer.errors import ExplorerError
from explorer.study.executors import EXECUTORS, run_ray, run_serial
from explorer.study.lock import StudyLock
from explorer.study.spec import StudySpec, parse_spec, spec_from_text
from explorer.study.units import Unit, expand

RESULTS = "results.parquet"
SPEC = "spec.yaml"
LOG = "study.log"

ProgressFn = Callable[[int, int, dict], "bool | None"]


@dataclass(frozen=True)
class StudyRun:
    """What :func:`run_study` did.

    Attributes:
        table: the results table; units: units in the study; skipped: finished earlier (resume);
        run: units run now; failed: units whose rows carry an error; seconds: wall time; stopped: stopped early.
    """

    table: Path
    units: int
    skipped: int
    run: int
    failed: int
    seconds: float
    stopped: bool


def prepare_dir(out: str | Path, resume: bool) -> Path:
    """The study directory (checked before any work): an existing study only with ``resume``."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ExplorerError(f"--out {path} is a file; give a directory")
    if (path / RESULTS).exists() and not resume:
        raise ExplorerError(f"{path} holds a study already: add --resume to continue it, or choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExplorerError(f"cannot create {path} ({exc.strerror or exc})") from None
    return path


def run_study(spec: StudySpec, out: str | Path, executor: str = "serial", workers: int | None = None,
              address: str | None = None, resume: bool = False, progress: ProgressFn | None = None,
              spec_file: str | Path | None = None, units: list[Unit] | None = None,
              flush_seconds: float = 2.0) -> StudyRun:
    """Expand ``spec``, run its units with ``executor``, append their records to ``out/results.parquet``.

    Args:
        executor: ``"serial"`` (this process) or ``"ray"`` (:func:`~explorer.study.executors.run_ray`).
        workers / address: Ray's local CPUs / cluster address.
        resume: skip units whose rows exist without error (failed ones run again).
        progress: ``progress(done, total, {"rate", "eta", "unit"})`` after each unit; True stops after the units
            under way (their rows are kept).
        spec_file: copied to ``out/spec.yaml`` (else the parsed spec is written as JSON-compatible YAML).
        units: run these instead of ``expand(spec)`` (tests, the app).
        flush_seconds: the table is rewritten at most this often (0: after every unit); each rewrite costs
            O(rows), which matters for studies of many thousands of units.

    Raises:
        ExplorerError: bad executor, an existing study without ``resume``, a folder another study is writing
            (:class:`~explorer.study.lock.StudyLock`), ``resume`` with another spec than the folder's, expansion
            errors.
    """
    if executor not in EXECUTORS:
        raise ExplorerError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    directory = prepare_dir(out, resume)
    with StudyLock(directory):
        prepare_dir(directory, resume)  # again under the lock: a study that finished meanwhile is not overwritten
        if resume:
            check_resumed_spec(directory, spec)
        return _run_locked(spec, directory, executor, workers, address, resume, progress, spec_file, units,
                           flush_seconds)


def check_resumed_spec(directory: Path, spec: StudySpec) -> None:
    """Refuse to resume the study in ``directory`` with a spec other than the one it was started with.

    Raises:
        ExplorerError: the folder's ``spec.yaml`` differs from ``spec`` (or cannot be read).
    """
    path = directory / SPEC
    if not path.exists():
        return  # nothing written yet (a study stopped before its first unit)
    try:
        earlier = parse_spec(spec_from_text(path.read_bytes(), SPEC), base=spec.base)
    except (OSError, ExplorerError):
        raise ExplorerError(f"cannot read the spec of the study in {directory} ({SPEC}); resume it with that spec "
                            "or choose another --out") from None
    if earlier != spec:
        raise ExplorerError(f"{directory} holds a study of another spec ({SPEC} differs); --resume needs the same "
                            "spec, or choose another --out")


def _run_locked(spec: StudySpec, directory: Path, executor: str, workers: int | None, address: str | None,
                resume: bool, progress: ProgressFn | None, spec_file: str | Path | None, units: list[Unit] | None,
                flush_seconds: float) -> StudyRun:
    units = expand(spec) if units is None else units
    table = directory / RESULTS
    records: list[Record] = read_records(table) if resume else []
    finished = {r.unit for r in records if r.error is None and r.unit}
    records = [r for r in records if r.unit in finished]  # failed units run again: their error rows go
    todo = [u for u in units if u.key() not in finished]
    _write_spec(directory, spec, spec_file)
    log = _Log(directory / LOG)
    log(f"study {spec.name}: {len(units)} units, {len(units) - len(todo)} done earlier, {len(todo)} to run "
        f"({executor}{', ' + str(workers) + ' workers' if workers else ''}{', ' + address if address else ''})")
    stop_flag = {"stop": False}
    stop = lambda: stop_flag["stop"]  # noqa: E731
    stream = run_serial(todo, stop) if executor == "serial" else run_ray(todo, workers, address, stop)
    start, done, failed = time.perf_counter(), 0, 0
    written = {"at": time.perf_counter(), "rows": len(records)}

    def flush(force: bool = False) -> None:
        due = force or time.perf_counter() - written["at"] >= flush_seconds
        if due and (len(records) != written["rows"] or not table.exists()):
            write_records(table, records)  # atomic: the previous complete table until the rename
            written.update(at=time.perf_counter(), rows=len(records))

    try:
        for unit, new in stream:
            records += new
            flush()
            done += 1
            errors = [r.error for r in new if r.error]
            failed += bool(errors)
            log(f"{unit.experiment} {unit.method.label} {Path(unit.data).name if not unit.data.startswith('sample:') else unit.data} "
                f"slice {unit.slice}{' ' + unit.role if unit.role else ''}: "
                + (f"FAILED {errors[0]}" if errors else ", ".join(f"SSIM {r.ssim:.4f}" for r in new if r.ssim is not None)
                   or "done"))
            if progress is not None:
                elapsed = time.perf_counter() - start
                rate = done / elapsed if elapsed > 0 else 0.0
                info = {"rate": rate, "eta": (len(todo) - done) / rate if rate > 0 else None, "unit": unit.experiment}
                if progress(done, len(todo), info):
                    stop_flag["stop"] = True
    except KeyboardInterrupt:
        flush(force=True)
        log(f"interrupted after {done} of {len(todo)} units; rerun with --resume to continue")
        raise
    except BaseException as exc:  # the executor itself failed (Ray lost, disk full): the log says so, then it goes up
        try:
            flush(force=True)
        except Exception:  # noqa: BLE001 - the abort is logged even when the table cannot be written
            pass
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        log(f"aborted after {done} of {len(todo)} units: {type(exc).__name__}{': ' + text if text else ''}; "
            "rerun with --resume to continue")
        raise
    flush(force=True)
    stopped = done < len(todo)
    seconds = time.perf_counter() - start
    log(f"{'stopped' if stopped else 'finished'}: {done} units run, {failed} failed, {seconds:.1f} s")
    return StudyRun(table, len(units), len(units) - len(todo), done, failed, seconds, stopped)


def _write_spec(directory: Path, spec: StudySpec, spec_file: str | Path | None) -> None:
    target = directory / SPEC
    if spec_file is not None and Path(spec_file).resolve() != target.resolve():
        shutil.copyfile(spec_file, target)
    elif spec_file is None:
        import yaml  # noqa: PLC0415

        target.write_text(yaml.safe_dump(json.loads(json.dumps(spec.raw, default=str)), sort_keys=False))


class _Log:
    """Appends timestamped lines to the study log."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, line: str) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with open(self.path, "a") as f:
            f.write(f"{stamp} {line}\n")


__all__ = ["LOG", "RESULTS", "SPEC", "StudyRun", "check_resumed_spec", "prepare_dir", "run_study"]
