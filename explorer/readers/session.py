"""Building a reading session: reconstructions from a study spec or a study folder, through the engine, into one
session file (:mod:`explorer.readers.store`).

A session is drawn from a study's units (:func:`explorer.study.units.expand`): every method instance on every slice,
under each experiment the study names, reproduced exactly as the study runs it, with the image kept this time. The
experiments a reader can read map to condition kinds (:data:`~explorer.readers.design.CONDITION_KINDS`):

======================  ==========================================================================================
study experiment        cases
======================  ==========================================================================================
``clean``               ``clean``: the undersampled slice as measured
``attack``              ``attack eps=<e>`` for each budget: the worst perturbation found (:func:`~explorer.robustness
                        .attack.sweep`, the study's settings)
``features``            ``lesion``: the study's small features inserted (ground truth: their centres and boxes)
``shift``               ``clean`` for the in-distribution set, ``shift:<set>`` for the shifted set (configurations
                        pinned on the in-distribution set, as the study does)
======================  ==========================================================================================

Other experiments (test-time training, filtered shifts) are skipped with a note. A detection session keeps the
``clean`` (lesion absent) and ``lesion`` (present) cases; use ``features: {count: 1}`` for one lesion per image.

Entry points: :func:`build_from_spec` (a spec file or :class:`~explorer.study.spec.StudySpec`: the library runs the
reconstructions), :func:`build_from_study` (a study folder: its ``spec.yaml`` and ``results.parquet``; units that
failed in the study are skipped, and each image's metrics are compared with the table's), :func:`build_demo` (a
small seeded session on the embedded knee sample).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from explorer.errors import ExplorerError
from explorer.readers.design import (CONDITION_KINDS, DETECTION_KINDS, Lesion, Reconstruction, labels_in_order,
                                     make_design)
from explorer.readers.store import DTYPES, check_output, write_session
from explorer.readers.tasks import AFC, CRITERIA, DETECTION, LIKERT, check_criteria, check_task

ORDERS: dict[str, str] = {"per-reader": "each reader gets their own seeded order", "shared": "one order for all"}
ProgressFn = Callable[[int, int, str], "bool | None"]


@dataclass(frozen=True)
class ReadingOptions:
    """How a session is built (frozen: checked on creation; every bad value an :class:`ExplorerError`).

    Attributes:
        task: ``"likert"``, ``"2afc"`` or ``"detection"`` (:data:`~explorer.readers.tasks.TASKS`).
        seed: the seed of the left/right placement, the repeats and every reader's order.
        repeats: fraction of cases (0..1) shown a second time, after all first showings (intra-reader consistency).
        criteria: the Likert criteria asked (:data:`~explorer.readers.tasks.CRITERIA`).
        show_reference: show the fully sampled reference beside each case (never for detection: it shows the lesion).
        order: ``"per-reader"`` (default) or ``"shared"``.
        dtype: pixels stored as ``"float16"`` (default: half the size) or ``"float32"``.
        name: the session's name (default: the study's).
        conditions: condition kinds kept (default: all; detection: clean and lesion).
        methods: method labels kept (default: all).
        pairs: 2AFC pairs of labels (default: every pair).
        max_subjects: keep the first N slices (default: all).
    """

    task: str = LIKERT
    seed: int = 0
    repeats: float = 0.0
    criteria: tuple[str, ...] = tuple(CRITERIA)
    show_reference: bool = False
    order: str = "per-reader"
    dtype: str = "float16"
    name: str = ""
    conditions: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    pairs: tuple[tuple[str, str], ...] | None = None
    max_subjects: int | None = None

    def __post_init__(self) -> None:
        check_task(self.task)
        object.__setattr__(self, "criteria", check_criteria(self.criteria))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ExplorerError(f"seed must be an integer >= 0, got {self.seed!r}")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, (int, float)) \
                or not math.isfinite(self.repeats) or not 0 <= self.repeats <= 1:
            raise ExplorerError(f"repeats must be a fraction in [0, 1], got {self.repeats!r}")
        if self.order not in ORDERS:
            raise ExplorerError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.dtype not in DTYPES:
            raise ExplorerError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.task == DETECTION and self.show_reference:
            raise ExplorerError("a detection session cannot show the reference (it shows the lesion)")
        for kind in self.conditions or ():
            if kind not in CONDITION_KINDS:
                raise ExplorerError(f"unknown condition {kind!r}; choose from {', '.join(CONDITION_KINDS)}")
        if self.conditions is not None and not self.conditions:
            raise ExplorerError("give at least one condition")
        if self.task == DETECTION and self.conditions is not None and set(self.conditions) != set(DETECTION_KINDS):
            raise ExplorerError("a detection session reads the clean and lesion conditions (absent and present)")
        if self.methods is not None and not self.methods:
            raise ExplorerError("give at least one method label")
        if self.pairs is not None and self.task != AFC:
            raise ExplorerError("pairs are for 2AFC sessions")
        if self.max_subjects is not None and (isinstance(self.max_subjects, bool) or not isinstance(self.max_subjects, int)
                                              or self.max_subjects < 1):
            raise ExplorerError(f"max subjects must be an integer >= 1, got {self.max_subjects!r}")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The condition kinds the session keeps."""
        if self.task == DETECTION:
            return DETECTION_KINDS
        return self.conditions or tuple(CONDITION_KINDS)

    def as_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


# ----------------------------------------------------------------------------- units -> reconstructions


def _role_kind(unit) -> str:
    return "clean" if unit.role in ("", "id") else "shift"


#: Study experiment -> the condition kind of its units (experiments not here are skipped with a note).
UNIT_KINDS: dict[str, Callable] = {
    "clean": lambda unit: "clean",
    "attack": lambda unit: "attack",
    "features": lambda unit: "lesion",
    "shift": _role_kind,
}


def subject_of(data: str, index: int) -> str:
    """The subject id of a slice: ``"<data>#<slice>"``."""
    return f"{data}#{index}"


def select_units(spec, options: ReadingOptions, records=None) -> tuple[list, list[str]]:
    """The study units a session reads, and notes on what was left out.

    Args:
        spec: a :class:`~explorer.study.spec.StudySpec`; records: the study table's records (a study folder): units
            without a row, or whose rows carry an error, are left out.

    Raises:
        ExplorerError: nothing left to read; what :func:`~explorer.study.units.expand` raises.
    """
    from explorer.study.units import expand  # noqa: PLC0415

    notes: list[str] = []
    units = expand(spec)
    skipped = sorted({u.experiment for u in units if u.experiment not in UNIT_KINDS})
    if skipped:
        notes.append(f"experiments not read (no reading condition): {', '.join(skipped)}")
    kinds = options.kinds
    kept = [u for u in units if u.experiment in UNIT_KINDS and UNIT_KINDS[u.experiment](u) in kinds]
    if options.methods is not None:
        labels = {u.method.label for u in units}
        for label in options.methods:
            if label not in labels:
                raise ExplorerError(f"no method labelled {label!r} in the study (labels: {', '.join(sorted(labels))})")
        kept = [u for u in kept if u.method.label in options.methods]
    if records is not None:
        ok = {r.unit for r in records if r.error is None}
        failed = {r.unit for r in records if r.error is not None}
        missing = [u for u in kept if u.key() not in ok]
        if missing:
            bad = sum(u.key() in failed for u in missing)
            notes.append(f"{len(missing)} units left out: {bad} failed in the study, {len(missing) - bad} not in its table")
        kept = [u for u in kept if u.key() in ok]
    if options.max_subjects is not None:
        subjects = list(dict.fromkeys(subject_of(u.data, u.slice) for u in kept))[:options.max_subjects]
        kept = [u for u in kept if subject_of(u.data, u.slice) in set(subjects)]
    if not kept:
        raise ExplorerError(f"the study has no units to read for a {options.task} session with conditions "
                            f"{', '.join(kinds)}")
    _check_feasible(kept, options)
    return kept, notes


def _check_feasible(units: list, options: ReadingOptions) -> None:
    """Refuse, before any reconstruction runs, a selection the task cannot read.

    Raises:
        ExplorerError: 2AFC with fewer than two methods or pairs naming other labels; detection without lesion-present
            or lesion-absent units.
    """
    from explorer.readers.design import check_pairs  # noqa: PLC0415

    labels = list(dict.fromkeys(u.method.label for u in units))
    if options.task == AFC:
        if len(labels) < 2:
            raise ExplorerError("no cases: 2AFC needs two methods on the same slice and condition "
                                f"(the selection has {', '.join(labels)})")
        check_pairs(options.pairs, labels)
    if options.task == DETECTION:
        found = {UNIT_KINDS[u.experiment](u) for u in units}
        if found != set(DETECTION_KINDS):
            raise ExplorerError("a detection session needs lesion-absent (clean) and lesion-present cases: the study "
                                "needs the clean and features experiments (features: {count: 1} for one lesion each)")


def _base(unit, kind: str, condition: str, problem, result, **extra) -> Reconstruction:
    from explorer.engine.tasks import config_dict  # noqa: PLC0415

    return Reconstruction(
        subject=subject_of(unit.data, unit.slice), condition=condition, kind=kind, label=unit.method.label,
        method=unit.method.name, image=result.image, reference=problem.target, metrics=result.metrics,
        data=unit.data, slice=int(unit.slice), config=json.dumps(config_dict(unit.method.config), sort_keys=True,
                                                                 default=str),
        experiment=unit.experiment, metric=problem.metric, **extra)


def _task(unit):
    from explorer.engine.tasks import Task  # noqa: PLC0415

    return Task(data=unit.data, slice=unit.slice, method=unit.method, mask=unit.mask, metric=unit.metric)


def _clean(unit, problems) -> list[Reconstruction]:
    from explorer.engine import run_method  # noqa: PLC0415

    kind = UNIT_KINDS[unit.experiment](unit)
    problem = problems.problem(_task(unit))
    condition = "clean" if kind == "clean" else f"shift:{unit.role[4:]}"
    return [_base(unit, kind, condition, problem, run_method(problem, unit.method))]


def _attack(unit, problems) -> list[Reconstruction]:
    from explorer.robustness.attack import sweep  # noqa: PLC0415
    from explorer.robustness.objectives import AttackConfig  # noqa: PLC0415

    settings = json.loads(unit.settings)
    problem = problems.problem(_task(unit))
    config = AttackConfig(**{k: v for k, v in settings.items() if k != "eps"})  # as the study's attack unit
    out = []
    for result in sweep(problem, unit.method, [float(e) for e in settings.get("eps", [0.08])], config):
        out.append(_base(unit, "attack", f"attack eps={result.config.eps:g}", problem, result.perturbed,
                         eps=float(result.config.eps)))
    return out


def _lesion(unit, problems) -> list[Reconstruction]:
    from explorer.engine import run_method  # noqa: PLC0415
    from explorer.engine.tasks import task_problem  # noqa: PLC0415
    from explorer.robustness.features import feature_tasks  # noqa: PLC0415
    from explorer.robustness.insertion import Feature  # noqa: PLC0415

    settings = json.loads(unit.settings)  # as the study's features unit
    template = Feature(shape=settings.get("shape", "square"))
    task = feature_tasks(unit.data, [unit.slice], [unit.method], int(settings.get("count", 3)), template,
                         tuple(settings.get("sizes", (3, 5))), tuple(float(c) for c in settings.get("contrasts", (0.17,))),
                         seed=int(settings.get("seed", 0)), mode=settings.get("mode", "coil"), mask=unit.mask,
                         metric=unit.metric)[0]
    problem = task_problem(task, problems)
    result = run_method(problem, task.method)
    shape = problem.target.shape
    lesions = tuple(Lesion(f.row, f.col, f.window(shape), f.size, f.contrast, f.shape) for f in task.feature.features)
    return [_base(unit, "lesion", "lesion", problem, result, lesions=lesions)]


#: Study experiment -> how its unit's images are made again (exactly as the study's unit makes them).
RUNNERS: dict[str, Callable] = {"clean": _clean, "shift": _clean, "attack": _attack, "features": _lesion}


def reconstruct_units(units: list, progress: ProgressFn | None = None) -> list[Reconstruction]:
    """Run every unit and keep its images (one per unit; an attack unit one per budget).

    Args:
        progress: ``progress(done, total, what)`` after each unit; True stops the build.

    Raises:
        ExplorerError: a unit's error (prefixed with the unit), or the build stopped.
    """
    from explorer.engine.tasks import ProblemCache  # noqa: PLC0415

    problems = ProblemCache(size=16)
    out: list[Reconstruction] = []
    seen: set[tuple[str, str, str]] = set()
    for done, unit in enumerate(units, 1):
        try:
            made = RUNNERS[unit.experiment](unit, problems)
        except ExplorerError as exc:
            raise ExplorerError(f"{unit.experiment} {unit.method.label} on {subject_of(unit.data, unit.slice)}: "
                                f"{str(exc).splitlines()[0] if str(exc) else 'failed'}") from None
        for recon in made:  # a clean unit shared with a shift's in-distribution set is read once
            key = (recon.subject, recon.condition, recon.label)
            if key not in seen:
                seen.add(key)
                out.append(recon)
        if progress is not None and progress(done, len(units), f"{unit.experiment} {unit.method.label} "
                                             f"{subject_of(unit.data, unit.slice)}"):
            raise ExplorerError("the build was stopped; no session was written")
    return out


def with_study_metrics(recons: list[Reconstruction], units: list, records) -> tuple[list[Reconstruction], list[str]]:
    """Attach the study table's metrics to each reconstruction (by unit key, and budget for attacks) and note the
    largest difference from the metrics computed now."""
    by_unit: dict[tuple[str, float | None], dict] = {}
    for r in records:
        if r.error is None:
            eps = json.loads(r.perturbation).get("eps") if r.perturbation else None
            by_unit[(r.unit, None if eps is None else float(eps))] = {"ssim": r.ssim, "psnr": r.psnr, "nmse": r.nmse}
    keys = {(subject_of(u.data, u.slice), u.method.label, UNIT_KINDS[u.experiment](u)): u.key() for u in units}
    out, worst = [], 0.0
    for recon in recons:
        unit_key = keys.get((recon.subject, recon.label, recon.kind))
        study = by_unit.get((unit_key, recon.eps))
        if study is not None and recon.metrics and study.get("ssim") is not None:
            worst = max(worst, abs(study["ssim"] - recon.metrics["ssim"]))
        out.append(dataclasses.replace(recon, study_metrics=study))
    notes = [f"largest |SSIM difference| from the study table: {worst:.2g}"] if worst > 1e-4 else []
    return out, notes


# ----------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class BuiltSession:
    """What a build wrote: the ``path``, counts of ``reconstructions``, ``cases``, ``items`` (repeats included),
    the method ``labels``, the ``conditions`` and the build's ``notes``."""

    path: Path
    reconstructions: int
    cases: int
    items: int
    labels: tuple[str, ...]
    conditions: tuple[str, ...]
    notes: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"path": str(self.path), "reconstructions": self.reconstructions, "cases": self.cases,
                "items": self.items, "labels": list(self.labels), "conditions": list(self.conditions),
                "notes": list(self.notes)}


def build_session(path: str | Path, recons: list[Reconstruction], options: ReadingOptions, source: str = "",
                  notes: list[str] | tuple[str, ...] = (), force: bool = False) -> BuiltSession:
    """Write a session of ``recons`` (any reconstructions: the engine's, or a test's) with ``options``.

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
            "metric": recons[0].metric if recons else "fastmri"}
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
    error, reconstructed again exactly as the study did, their metrics compared with the table's.

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
    return build_session(path, recons, options, f"study {folder}", notes + more, force)


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


__all__ = ["BuiltSession", "DEMO_METHODS", "ORDERS", "RUNNERS", "ReadingOptions", "UNIT_KINDS", "build_demo",
           "build_from_spec", "build_from_study", "build_session", "demo_spec", "reconstruct_units", "select_units",
           "subject_of", "with_study_metrics"]
