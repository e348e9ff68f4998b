"""The adversarially filtered shift (the seed paper's third shift): from a pool of slices keep the ``k`` on which one or
more filter models do worst, then compare every model's SSIM on the whole pool with its SSIM on that subset.

Slices are not chosen by every model's own failures but by the filter models' (their mean SSIM per slice, lowest
first), so the subset is a shift for every other model, as the papers' filtered fastMRI set was (slices on which a
strong model does worst). Every model is evaluated once on the pool (:func:`~explorer.robustness.evaluate.evaluate`:
each slice its own seeded mask, the same for every model; configurations pinned on the pool's anatomy); the subset's
scores are those slices' scores. The scatter puts the pool (x) against the subset (y), with ``y = x`` and the
least-squares line across models.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from explorer.engine.tasks import ProblemCache, Record, Task, run_task
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.robustness.evaluate import Evaluation, evaluate, instances_for
from explorer.robustness.registry import Experiment, Section, Verdict, register
from explorer.robustness.shift import linear_fit, resolve_set, shift_verdicts

MAX_KEEP = 100_000


def check_filter(filters: Sequence[str], keep: int, labels: Sequence[str]) -> None:
    """The filter models are among the models compared, and at least one slice is kept.

    Raises:
        ExplorerError: one line.
    """
    if not isinstance(keep, int) or isinstance(keep, bool) or not 1 <= keep <= MAX_KEEP:
        raise ExplorerError(f"keep must be an integer in 1..{MAX_KEEP}, got {keep!r}")
    if not filters or not all(isinstance(f, str) for f in filters):
        raise ExplorerError("give one or more filter models (labels of the models compared)")
    unknown = [f for f in filters if f not in labels]
    if unknown:
        raise ExplorerError(f"filter model {unknown[0]!r} is not one of the models compared ({', '.join(labels)})")


def hardest(scores: dict[str, np.ndarray], filters: Sequence[str], keep: int) -> list[int]:
    """The indices of the ``keep`` slices with the lowest mean SSIM over the filter models (ties: the earlier slice),
    in slice order.

    Args:
        scores: ``{label: SSIM per slice (n,)}``, every array over the same slices.
    """
    mean = np.mean([np.asarray(scores[f], dtype=float) for f in filters], axis=0)
    order = np.argsort(mean, kind="stable")[:keep]
    return sorted(int(i) for i in order)


def compare(scores: dict[str, np.ndarray], kept: Sequence[int], names: dict[str, tuple[str, str]]) -> list[dict]:
    """One row per model: mean SSIM on every slice (``ssim_pool``) and on the kept ones (``ssim_filtered``).

    Args:
        names: ``{label: (method name, family)}``.
    """
    rows = []
    for label, values in scores.items():
        values = np.asarray(values, dtype=float)
        if not len(values):
            continue
        subset = values[list(kept)]
        rows.append({"label": label, "method": names[label][0], "family": names[label][1],
                     "ssim_pool": float(values.mean()), "ssim_filtered": float(subset.mean()),
                     "gap": float(values.mean() - subset.mean()), "slices_pool": int(len(values)),
                     "slices_filtered": int(len(subset))})
    return rows


@dataclass(frozen=True)
class FilteredShift:
    """What :func:`filtered_shift` measured.

    Attributes:
        pool: the pool (a path); evaluation: every model on it; filters: the filter models' labels;
        kept: the indices (into ``evaluation.slices``) of the slices kept; rows: :func:`compare`'s rows; fit: the line
        ``ssim_filtered = slope * ssim_pool + intercept`` across models (or ``None``).
    """

    pool: str
    evaluation: Evaluation
    filters: tuple[str, ...]
    kept: tuple[int, ...]
    rows: list[dict]
    fit: dict | None

    @property
    def kept_slices(self) -> list[tuple[str, int]]:
        """``(file, slice)`` of the kept slices."""
        return [self.evaluation.slices[i] for i in self.kept]


def filtered_shift(pool: str, methods: Sequence[str], filters: Sequence[str], keep: int, mask: MaskConfig,
                   configs: dict[str, dict] | None = None, max_slices: int | None = None,
                   progress: Callable[[int, int, str], bool | None] | None = None,
                   sample_size: int | None = None, metric: str = "fastmri") -> FilteredShift:
    """Evaluate ``methods`` on the pool, keep the ``keep`` slices the ``filters`` do worst on, compare.

    Args:
        pool: a directory or file of volumes, or ``sample:<family>``.
        methods: registry names or ``"LABEL=METHOD"`` instances; filters: labels among them.
        configs: ``{label: {param: value}}``; max_slices: at most this many pool slices (evenly spread).
        metric: the metric definition (:data:`explorer.metrics.METRIC_DEFINITIONS`).
        progress: ``progress(done, total, slice)``; True stops the evaluation (the slices done so far are used).

    Raises:
        ExplorerError: a filter that is not a model, ``keep`` out of range, a bad pool.
    """
    instances = instances_for(methods, configs, None)
    check_filter(list(filters), keep, [i.label for i in instances])
    path, anatomy = resolve_set(pool, sample_size)
    pinned = {inst.label: dataclasses.asdict(inst.config) for inst in instances_for(methods, configs, anatomy)}
    names = {inst.label: (inst.name, inst.spec.family) for inst in instances_for(methods, pinned, anatomy)}
    evaluation = evaluate(path, methods, mask, pinned, max_slices, progress=progress, metric=metric)
    scores = {label: evaluation.metrics[label]["ssim"] for label in evaluation.methods}
    if not len(evaluation.slices):
        raise ExplorerError(f"no slice of {pool} was scored")
    kept = hardest(scores, filters, min(keep, len(evaluation.slices)))
    rows = compare(scores, kept, names)
    fit = linear_fit([r["ssim_pool"] for r in rows], [r["ssim_filtered"] for r in rows])
    return FilteredShift(path, evaluation, tuple(filters), tuple(kept), rows, fit)


# ----------------------------------------------------------------------------- the experiment in a study

def _check(settings: dict) -> None:
    filters, keep = settings.get("filter"), settings.get("keep", 5)
    if not isinstance(filters, list) or not filters or not all(isinstance(f, str) for f in filters):
        raise ExplorerError("filter must be a non-empty list of model labels")
    check_filter(filters, keep, filters)


def _check_labels(settings: dict, labels: Sequence[str]) -> None:
    check_filter(settings["filter"], settings.get("keep", 5), labels)


def _unit(task: Task, settings: dict, problems: ProblemCache) -> list[Record]:
    """The model on one pool slice; the record's scores carry the filter settings (its summary groups by them)."""
    record = run_task(task, problems, catch=False)
    return [dataclasses.replace(record, scores=json.dumps({"filter": settings["filter"],
                                                           "keep": int(settings.get("keep", 5))}))]


def _scores(records: Sequence[Record]) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, str]], list[tuple]]:
    """``({label: SSIM per pool slice}, {label: (method, family)}, pool slices)`` over the slices every model scored."""
    from explorer.recon.base import get_method  # noqa: PLC0415

    by_slice: dict[tuple, dict[str, float]] = defaultdict(dict)
    names = {}
    for r in records:
        if r.ssim is not None:
            by_slice[(r.file or r.data, r.slice, r.mask_type, r.acceleration, r.mask_seed)][r.label] = r.ssim
            names[r.label] = (r.method, get_method(r.method).family)
    labels = list(names)
    slices = [key for key, got in by_slice.items() if set(got) == set(labels)]
    return {label: np.array([by_slice[s][label] for s in slices]) for label in labels}, names, slices


def _groups(records: Sequence[Record]) -> dict[str, list[Record]]:
    """The records of each filtered shift of a study (by its settings, which the records' scores carry)."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[r.scores or "{}"].append(r)
    return groups


def summary(records: Sequence[Record]) -> list[dict]:
    """Every model's SSIM on the pool and on the filtered subset, per filtered shift of the study."""
    return [{"filter": " + ".join(info["filters"]), "keep": len(info["kept"]), **row}
            for group in _groups(records).values() for rows, _, info in [_summary(group)] for row in rows]


def _summary(records: Sequence[Record]) -> tuple[list[dict], dict | None, dict]:
    settings = json.loads(records[0].scores or "{}") if records else {}
    scores, names, slices = _scores(records)
    filters = [f for f in settings.get("filter", []) if f in scores]
    if not filters or not slices:
        return [], None, {"filters": filters, "kept": []}
    kept = hardest(scores, filters, min(int(settings.get("keep", 5)), len(slices)))
    rows = compare(scores, kept, names)
    fit = linear_fit([r["ssim_pool"] for r in rows], [r["ssim_filtered"] for r in rows])
    return rows, fit, {"filters": filters, "kept": [slices[i] for i in kept], "pool": len(slices)}


def _report(records: Sequence[Record]) -> list[Section]:
    from explorer.figures.shift import shift_figure  # noqa: PLC0415 (plotly only when a report is drawn)

    sections = []
    for group in _groups(records).values():
        rows, fit, info = _summary(group)
        if not rows:
            continue
        kept = ", ".join(f"{file} [{index}]" for file, index, *_ in info["kept"])
        filters = " + ".join(info["filters"])
        figure = shift_figure(rows, fit, x="ssim_pool", y="ssim_filtered",
                              x_title=f"SSIM, whole pool ({info['pool']} slices)",
                              y_title=f"SSIM, the {len(info['kept'])} slices where {filters} do worst")
        sections.append(Section(f"Adversarially filtered shift ({filters}): SSIM on the pool vs on its hardest slices",
                                figure, (("Per model", rows), ("Linear fit", [{"models": "all", **(fit or {})}])),
                                f"Kept slices: {kept}."))
    return sections


def conclusions(records: Sequence[Record]) -> list[Verdict]:
    """The talk's third and fourth conclusions on each filtered shift (pool against its hardest slices)."""
    out = []
    for group in _groups(records).values():
        rows, fit, info = _summary(group)
        if rows:
            out += shift_verdicts(rows, fit, f"filtered by {' + '.join(info['filters'])}", "ssim_pool",
                                  "ssim_filtered")
    return out


EXPERIMENT = register(Experiment(
    name="filtered", title="Adversarially filtered shift", run=_unit,
    settings={"filter": "labels of the filter models (they choose the slices)", "keep": "slices kept (default 5)"},
    check=_check, check_labels=_check_labels, pinned=True, summary=summary, report=_report, conclusions=conclusions,
    description="the k slices of a pool on which filter models do worst: every model's SSIM there vs on the pool",
))

__all__ = ["EXPERIMENT", "FilteredShift", "check_filter", "compare", "conclusions", "filtered_shift", "hardest", "summary"]
