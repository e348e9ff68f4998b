"""The study units a reading session reads, made again with their images kept (:mod:`explorer.readers.session` writes
them into a session file).

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
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable

from explorer.errors import ExplorerError
from explorer.readers.design import DETECTION_KINDS, Lesion, Reconstruction
from explorer.readers.options import ReadingOptions
from explorer.readers.tasks import AFC, DETECTION

#: ``progress(done, total, what)`` after each unit; returning True stops the build.
ProgressFn = Callable[[int, int, str], "bool | None"]


def _role_kind(unit) -> str:
    return "clean" if unit.role == "" or unit.role.partition(" from ")[0] == "id" else "shift"


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


__all__ = ["ProgressFn", "RUNNERS", "UNIT_KINDS", "reconstruct_units", "select_units", "subject_of",
           "with_study_metrics"]
