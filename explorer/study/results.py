"""Numbers tied to commands: results files that one command regenerates, and the README tables generated from them.

A :class:`Measurement` names the CLI commands (its parts, each printing JSON), the code they depend on and how its
README table is drawn. ``python -m explorer results run NAME`` runs the parts and writes ``results/NAME.json`` with
the command, the commit, the date, every part's command line and output, and a hash of the code
(:func:`~explorer.study.provenance.code_hash`). ``python -m explorer results readme`` rewrites the README's blocks

    <!-- results:NAME -->
    ...generated...
    <!-- /results:NAME -->

from those files, and :func:`check` (run by the test suite) fails when a block differs from its file or a file is
older than the code it measured. A run interrupted part way resumes from ``results/.partial/NAME.json`` (parts done
under the same code are not run again). ``{work}`` in a command stands for ``results/.work/NAME/``, where a
study's folder stays until the next run.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from explorer.errors import ExplorerError
from explorer.resources import import_root, readme
from explorer.study.provenance import code_hash


@dataclass(frozen=True)
class Part:
    """One command of a measurement: ``python -m explorer <argv...>`` printing one JSON document; ``label`` groups
    parts in the table (e.g. the network or the anatomy)."""

    label: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Measurement:
    """A README table and the commands that measure it.

    Args:
        name: ``results/<name>.json`` and the README block's name.
        title: what it measures (one line).
        parts: the commands, run in order.
        code: modules the commands load by name (methods, network kinds) besides their own imports.
        files: data the numbers depend on (checkpoints), relative to the checkout.
        render: the table (markdown) from ``[(part label, part output), ...]``.
        note: what the provenance line adds (protocol, metric definition, settings).
    """

    name: str
    title: str
    parts: tuple[Part, ...]
    render: Callable[[list[tuple[str, dict]]], str] = field(compare=False)
    code: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    note: str = ""

    @property
    def command(self) -> str:
        return f"python -m explorer results run {self.name}"

    def scripts(self) -> tuple[str, ...]:
        """The scripts its parts run (e.g. ``bench/bench_singlecoil.py``), relative to the checkout."""
        return tuple(sorted({p.argv[0] for p in self.parts if is_script(p.argv)}))

    def entries(self) -> tuple[str, ...]:
        """The modules whose code the numbers depend on: each part's command module (or the ``explorer`` modules its
        script imports) and :attr:`code`."""
        from explorer.study.provenance import modules, script_imports  # noqa: PLC0415

        known = set(modules())
        commands = {f"explorer.cli.{p.argv[0]}" for p in self.parts if not is_script(p.argv)}
        imported = {m for script in self.scripts() for m in script_imports(import_root() / script, known)}
        return tuple(sorted(commands | imported | set(self.code)))

    def code_hash(self) -> tuple[str, list[str]]:
        return code_hash(self.entries(), self.files + self.scripts())


def results_dir() -> Path:
    """``results/`` of the checkout (``$EXPLORER_RESULTS_DIR`` overrides)."""
    env = os.environ.get("EXPLORER_RESULTS_DIR", "").strip()
    return Path(env) if env else import_root() / "results"


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)


def is_script(argv: tuple[str, ...]) -> bool:
    """Whether a part runs a script of the checkout (``bench/x.py ...``) rather than an ``explorer`` command."""
    return bool(argv) and argv[0].endswith(".py")


def command_line(argv: tuple[str, ...]) -> str:
    """How a part runs: ``python bench/x.py ...`` or ``python -m explorer ...``."""
    return f"python {' '.join(argv)}" if is_script(argv) else f"python -m explorer {' '.join(argv)}"


def run_part(argv: tuple[str, ...]) -> dict:
    """Run ``python -m explorer <argv>`` (or the script ``argv[0]``) in the checkout and parse its standard output as
    JSON (progress and messages on standard error pass through)."""
    command = [sys.executable, *argv] if is_script(argv) else [sys.executable, "-m", "explorer", *argv]
    done = subprocess.run(command, cwd=import_root(), stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise ExplorerError(f"`{command_line(argv)}` failed with exit status {done.returncode}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise ExplorerError(f"`{command_line(argv)}` did not print JSON: {exc}") from None


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=import_root(), capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _dirty(covered: list[str]) -> bool:
    """Whether any module or file the numbers depend on differs from the commit (other edits do not count)."""
    from explorer.study.provenance import modules  # noqa: PLC0415

    found = modules()
    paths = [str(found[name].relative_to(import_root())) if name in found else name for name in covered]
    return bool(_git("status", "--porcelain", "--", *paths))


def _with_work_dir(argv: tuple[str, ...], work: Path) -> tuple[str, ...]:
    """``argv`` with ``{work}`` standing for the measurement's work directory (e.g. a study's ``--out``: the study
    stays there to be opened in the app until the next run; a model zoo that later parts read)."""
    if not any("{work}" in a for a in argv):
        return argv
    work.mkdir(parents=True, exist_ok=True)
    return tuple(a.replace("{work}", str(work)) for a in argv)


def run(measurement: Measurement, execute: Callable[[tuple[str, ...]], dict] = run_part,
        progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> dict:
    """Run every part of ``measurement`` (resuming parts done under the same code) and write its results file.

    Returns:
        the results file's content.
    """
    if os.environ.get("EXPLORER_CHECKPOINT_DIR", "").strip():
        raise ExplorerError("unset EXPLORER_CHECKPOINT_DIR: results files measure the checkout's shipped checkpoints")
    digest, covered = measurement.code_hash()
    folder = results_dir()
    partial_path = folder / ".partial" / f"{measurement.name}.json"
    partial = json.loads(partial_path.read_text()) if partial_path.is_file() else {}
    done = partial.get("parts", {}) if partial.get("code_hash") == digest else {}
    work = folder / ".work" / measurement.name
    if not done and work.exists():  # a fresh run starts from an empty work directory; a resumed one keeps what its
        shutil.rmtree(work)         # finished parts wrote there (later parts may read it: a zoo, a study)
    parts = []
    for index, part in enumerate(measurement.parts, 1):
        key = json.dumps(list(part.argv))
        if key in done:
            progress(f"[{index}/{len(measurement.parts)}] done before: {' '.join(part.argv)}")
            parts.append(done[key])
            continue
        progress(f"[{index}/{len(measurement.parts)}] {command_line(part.argv)}")
        start = time.perf_counter()
        output = execute(_with_work_dir(part.argv, work))
        if measurement.code_hash()[0] != digest:
            raise ExplorerError(f"the code of {measurement.name} changed during the run: run it again")
        entry = {"label": part.label, "argv": list(part.argv), "seconds": round(time.perf_counter() - start, 1),
                 "output": output}
        done[key] = entry
        parts.append(entry)
        _write_json(partial_path, {"code_hash": digest, "parts": done})
    result = {
        "name": measurement.name, "title": measurement.title, "command": measurement.command,
        "commit": _git("rev-parse", "HEAD"), "dirty": _dirty(covered),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "code_hash": digest, "code": covered, "parts": parts,
    }
    _write_json(folder / f"{measurement.name}.json", result)
    partial_path.unlink(missing_ok=True)
    return result


def load(name: str) -> dict | None:
    """The results file of ``name``, or ``None`` when there is none."""
    path = results_dir() / f"{name}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ExplorerError(f"{path} is not valid JSON: {exc}") from None


def block(measurement: Measurement, result: dict) -> str:
    """The README block's text: the table and a line naming the command, the commit and the date."""
    table = measurement.render([(p["label"], p["output"]) for p in result["parts"]]).strip()
    seconds = sum(p.get("seconds", 0) for p in result["parts"])
    devices = sorted({str(p["output"].get("device")) for p in result["parts"]
                      if isinstance(p["output"], dict) and p["output"].get("device")})
    note = f" {measurement.note.strip()}" if measurement.note.strip() else ""
    line = (f"<sub>Generated from `results/{measurement.name}.json` by `{measurement.command}` (commit "
            f"{result['commit'][:7] or 'unknown'}{', uncommitted changes' if result.get('dirty') else ''}, "
            f"{result['date']}, {seconds / 60:.1f} min{' on ' + ', '.join(devices) if devices else ''}).{note}</sub>")
    return f"{table}\n\n{line}"


_BLOCK = re.compile(r"(<!-- results:([\w-]+) -->\n)(.*?)(\n<!-- /results:\2 -->)", re.S)
_OPENING = re.compile(r"<!-- results:([\w-]+) -->")


def blocks(text: str) -> dict[str, str]:
    """``{name: content}`` of the README's results blocks."""
    return {m.group(2): m.group(3) for m in _BLOCK.finditer(text)}


def malformed(text: str) -> list[str]:
    """Problems with the markers themselves: an opening marker without its closing one on a line of its own (with
    an empty line between them when the block is empty), and a name used twice."""
    opened = _OPENING.findall(text)
    matched = [m.group(2) for m in _BLOCK.finditer(text)]
    problems = [f"README block {name!r}: no closing marker, or not on lines of their own (an empty block needs an "
                "empty line)" for name in dict.fromkeys(opened) if opened.count(name) > matched.count(name)]
    problems += [f"README block {name!r} appears {matched.count(name)} times" for name in dict.fromkeys(matched)
                 if matched.count(name) > 1]
    return problems


def update_readme(text: str, found: dict[str, Measurement]) -> tuple[str, list[str]]:
    """``text`` with every block of a measurement in ``found`` whose results file exists regenerated; and the names
    regenerated."""
    updated = []

    def replace(match: re.Match) -> str:
        name = match.group(2)
        result = load(name) if name in found else None
        if result is None:
            return match.group(0)
        updated.append(name)
        return f"{match.group(1)}{block(found[name], result)}{match.group(4)}"

    return _BLOCK.sub(replace, text), updated


def check(found: dict[str, Measurement], text: str | None = None) -> list[str]:
    """What is wrong with the README's generated numbers (empty when nothing): blocks without a measurement of
    ``found`` or without a results file, results files older than the code they measured, blocks that differ from
    their file."""
    if text is None:
        if not readme().is_file():
            raise ExplorerError(f"no README at {readme()}")
        text = readme().read_text()
    problems = malformed(text)
    present = blocks(text)
    problems += [f"measurement {name!r} has no block in the README" for name in found if name not in present]
    for name, content in present.items():
        if name not in found:
            problems.append(f"README block {name!r}: no such measurement")
            continue
        result = load(name)
        if result is None:
            problems.append(f"README block {name!r}: no results/{name}.json (run `{found[name].command}`)")
            continue
        if result.get("code_hash") != found[name].code_hash()[0]:
            problems.append(f"results/{name}.json is older than the code it measured (run `{found[name].command}`)")
        if {tuple(p["argv"]) for p in result["parts"]} != {p.argv for p in found[name].parts}:
            problems.append(f"results/{name}.json ran other commands than the measurement names "
                            f"(run `{found[name].command}`)")
        try:
            drawn = block(found[name], result)
        except Exception as exc:  # noqa: BLE001  (a file the table cannot be drawn from is a problem to report)
            problems.append(f"results/{name}.json cannot be drawn: {type(exc).__name__}: {exc}")
            continue
        if content != drawn:
            problems.append(f"README block {name!r} differs from results/{name}.json "
                            "(run `python -m explorer results readme`)")
    return problems


__all__ = ["Measurement", "Part", "block", "blocks", "check", "load", "malformed", "results_dir", "run", "run_part",
           "update_readme"]
