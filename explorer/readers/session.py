"""Building a reading session: reconstructions from a study spec or a study folder, through the engine
(:mod:`explorer.readers.reconstructions`), into one session file (:mod:`explorer.readers.store`), with the settings of
:class:`~explorer.readers.options.ReadingOptions`.

Entry points: :func:`build_from_spec` (a spec file or :class:`~explorer.study.spec.StudySpec`: the library runs the
reconstructions), :func:`build_from_study` (a study folder: its ``spec.yaml`` and ``results.parquet``; units that
failed in the study are skipped, and each image's metrics are compared with the table's), :func:`build_demo` (a
small seeded session on the embedded knee sample).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.readers.design import DETECTION_KINDS, Reconstruction, labels_in_order, make_design
from explorer.readers.links import register
from explorer.readers.options import ReadingOptions
from explorer.readers.reconstructions import ProgressFn, reconstruct_units, select_units, with_study_metrics
from explorer.readers.store import check_output, write_session
from explorer.readers.tasks import DETECTION, LIKERT, check_task

# ----------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class BuiltSession:
    """What a build wrote: the ``path``, counts of ``reconstructions``, ``cases``, ``items`` (repeats included),
    the method ``labels``, the ``conditions``, the build's ``notes`` and, for a session built from a study folder, the
    ``link`` that registers it there (:func:`~explorer.readers.links.register`; ``None`` otherwise, or when the folder
    could not be written: a note says so)."""

    path: Path
    reconstructions: int
    cases: int
    items: int
    labels: tuple[str, ...]
    conditions: tuple[str, ...]
    notes: tuple[str, ...]
    link: Path | None = None

    def as_dict(self) -> dict:
        return {"path": str(self.path), "reconstructions": self.reconstructions, "cases": self.cases,
                "items": self.items, "labels": list(self.labels), "conditions": list(self.conditions),
                "notes": list(self.notes), "link": None if self.link is None else str(self.link)}


def build_session(path: str | Path, recons: list[Reconstruction], options: ReadingOptions, source: str = "",
                  notes: list[str] | tuple[str, ...] = (), force: bool = False,
                  study: str | Path | None = None) -> BuiltSession:
    """Write a session of ``recons`` (any reconstructions: the engine's, or a test's) with ``options``.

    Args:
        source: one line saying where the cases come from; study: the study folder they come from (recorded as
            ``meta["study"]``, its absolute path; ``None``: not from a study folder).

    Raises:
        ExplorerError: see :func:`~explorer.readers.design.make_design` and
            :func:`~explorer.readers.store.write_session`.
    """
    if options.task == DETECTION and any(r.kind not in DETECTION_KINDS for r in recons):
        raise ExplorerError("a detection session reads clean and lesion cases only")
    recons = [r for r in recons if options.methods is None or r.label in options.methods]
    design = make_design(recons, options.task, options.seed, options.repeats, options.pairs)
    labels = tuple(labels_in_order(recons))
    conditions = tuple(dict.fromkeys(recons[i].condition for c in design.cases for i in c.images))
    meta = {"name": options.name or "reading session", "task": options.task,
            "criteria": list(options.criteria) if options.task == LIKERT else [],
            "show_reference": options.show_reference, "seed": options.seed, "order": options.order,
            "repeats": options.repeats, "labels": list(labels), "conditions": list(conditions), "source": source,
            "notes": list(notes), "options": options.as_dict(), "explorer_version": _version(),
            "metric": recons[0].metric if recons else "fastmri",
            "study": None if study is None else str(Path(study).expanduser().resolve())}
    target = write_session(path, recons, design, meta, options.dtype, force)
    return BuiltSession(target, len(recons), len(design.cases), len(design.items), labels, conditions, tuple(notes))


def _version() -> str:
    import explorer  # noqa: PLC0415

    return explorer.__version__


def build_from_spec(path: str | Path, spec, options: ReadingOptions, force: bool = False,
                    progress: ProgressFn | None = None) -> BuiltSession:
    """Build a session from a study spec: the library runs every reconstruction it needs.

    Args:
        spec: a spec file (YAML / JSON, as ``python -m explorer study``) or a :class:`~explorer.study.spec.StudySpec`.

    Raises:
        ExplorerError: the output (checked first), the spec, a unit that fails.
    """
    from explorer.study.spec import StudySpec, load_spec  # noqa: PLC0415

    check_output(path, force)
    source = f"spec {spec}" if not isinstance(spec, StudySpec) else f"spec {spec.name}"
    spec = spec if isinstance(spec, StudySpec) else load_spec(spec)
    units, notes = select_units(spec, options)
    recons = reconstruct_units(units, progress)
    options = options if options.name else dataclasses.replace(options, name=spec.name)
    return build_session(path, recons, options, source, notes, force)


def build_from_study(path: str | Path, folder: str | Path, options: ReadingOptions, force: bool = False,
                     progress: ProgressFn | None = None) -> BuiltSession:
    """Build a session from a study folder (``spec.yaml`` + ``results.parquet``): its units that finished without
    error, reconstructed again exactly as the study did, their metrics compared with the table's. The session records
    the folder and is registered in it (:func:`~explorer.readers.links.register`: the study's report shows its
    analysis); a folder that cannot be written leaves a note instead.

    Raises:
        ExplorerError: not a study folder; see :func:`build_from_spec`.
    """
    from explorer.engine.table import read_records  # noqa: PLC0415
    from explorer.study.runner import RESULTS, SPEC  # noqa: PLC0415
    from explorer.study.spec import load_spec  # noqa: PLC0415

    check_output(path, force)
    folder = Path(folder).expanduser()
    if not (folder / SPEC).is_file() or not (folder / RESULTS).is_file():
        raise ExplorerError(f"{folder} is not a study folder (it needs {SPEC} and {RESULTS}: python -m explorer study)")
    spec = load_spec(folder / SPEC)
    records = read_records(folder / RESULTS)
    units, notes = select_units(spec, options, records)
    recons = reconstruct_units(units, progress)
    recons, more = with_study_metrics(recons, units, records)
    options = options if options.name else dataclasses.replace(options, name=spec.name)
    built = build_session(path, recons, options, f"study {folder}", notes + more, force, study=folder)
    try:
        return dataclasses.replace(built, link=register(built.path, folder))
    except ExplorerError as exc:
        note = f"not registered with the study folder: {exc} (python -m explorer readers register {built.path})"
        return dataclasses.replace(built, notes=built.notes + (note,))


# ----------------------------------------------------------------------------- the demonstration

DEMO_METHODS = ("zero_filled", "l1", "unet")


def demo_spec(task: str = LIKERT, size: int = 96, slices: int = 3, seed: int = 0):
    """The demonstration's study spec: ``slices`` slices of the embedded knee sample at ``size`` px, zero-filled, l1
    and the U-net at 4x (random mask); Likert and 2AFC read them clean and attacked (eps 0.05, 5 steps), detection
    clean and with one small inserted lesion (a disk of 3-5 px at 0.2-0.3 of the image maximum)."""
    from explorer.study.spec import parse_spec  # noqa: PLC0415

    check_task(task)
    if isinstance(slices, bool) or not isinstance(slices, int) or not 1 <= slices <= 16:
        raise ExplorerError(f"demo slices must be an integer in 1..16, got {slices!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 320:
        raise ExplorerError(f"demo size must be an integer in 32..320, got {size!r}")
    source = f"sample:knee,size={size},slices={slices + 2}"
    if task == DETECTION:
        experiments = ["clean", {"features": {"count": 1, "sizes": [3, 4, 5], "contrasts": [0.2, 0.3],
                                              "shape": "disk", "seed": seed}}]
    else:
        experiments = ["clean", {"attack": {"eps": [0.05], "steps": 5, "seed": seed}}]
    raw = {"name": f"reader-demo-{task}", "data": [{"source": source, "slices": list(range(1, slices + 1))}],
           "masks": [{"type": "random", "acceleration": 4, "seed": seed}], "methods": list(DEMO_METHODS),
           "experiments": experiments}
    return parse_spec(raw)


def build_demo(path: str | Path, task: str = LIKERT, size: int = 96, slices: int = 3, seed: int = 0,
               repeats: float = 0.25, force: bool = False, progress: ProgressFn | None = None) -> BuiltSession:
    """The demonstration session (see :func:`demo_spec`): seeded, built in seconds on a CPU."""
    options = ReadingOptions(task=task, seed=seed, repeats=repeats, name=f"demonstration ({task}, embedded knee)")
    check_output(path, force)
    spec = demo_spec(task, size, slices, seed)
    units, notes = select_units(spec, options)
    recons = reconstruct_units(units, progress)
    return build_session(path, recons, options, f"demo {task} sample:knee size={size} slices={slices}", notes, force)


__all__ = ["BuiltSession", "DEMO_METHODS", "build_demo", "build_from_spec", "build_from_study", "build_session",
           "demo_spec"]
