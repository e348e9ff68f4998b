"""The small-features experiment: insert features, reconstruct with every method, score every feature.

One slice (:func:`run_features`: the page and the ``features`` CLI) or a study over slices and random
features (:func:`feature_tasks` -> :func:`~explorer.engine.run_tasks`, whose records carry the per-feature
scores; :func:`study_rows`, :func:`correlation`). The same loop serves every method: nothing here depends on
a method's name or family.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from explorer.engine import MethodInstance, MethodResult, Problem, as_instance, prepare, run_method
from explorer.engine.tasks import ProblemCache, Record, Task, run_task
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import ProgressFn
from explorer.robustness.feature_scores import score_feature
from explorer.robustness.insertion import (MODES, SHAPES, Feature, FeatureInsertion, Inserted, insert_features,
                                          place_random)
from explorer.robustness.registry import Experiment, Page, Section, Verdict, judge, register


def feature_rows(features: tuple[Feature, ...], truth: np.ndarray, result: MethodResult) -> list[dict]:
    """One row per feature of ``result`` (the method's image on the slice with the features)."""
    rows = []
    for index, feature in enumerate(features):
        score = score_feature(result.image, truth, profile=feature.profile(truth.shape))
        rows.append({"feature": index, **feature.describe(), **score.row(), "label": result.instance or result.label,
                     "method": result.method, "ssim": (result.metrics or {}).get("ssim"),
                     "psnr": (result.metrics or {}).get("psnr")})
    return rows


@dataclass(frozen=True, eq=False)
class FeatureRun:
    """The experiment on one slice.

    Attributes:
        inserted: the slice with the features (:class:`~explorer.robustness.insertion.Inserted`).
        problem: its undersampled problem (the same mask as the clean one).
        results: each method's result on it (whole-image metrics against the reference with the features).
        rows: one row per (method, feature): position, shape, size, contrast, window MSE, contrast recovery,
            local SSIM, whole-image SSIM and PSNR.
        failures: ``{label: one-line error}`` of methods that failed.
    """

    inserted: Inserted
    problem: Problem
    results: list[MethodResult]
    rows: list[dict]
    failures: dict[str, str]


def run_features(problem: Problem, features: tuple[Feature, ...], methods: list[MethodInstance | str],
                 mode: str = "coil", progress: Callable[[str, int, int, dict], bool | None] | None = None,
                 results: dict[str, MethodResult] | None = None) -> FeatureRun:
    """Insert ``features`` into ``problem``'s slice, undersample it with the same mask, run every method.

    Args:
        problem: the clean problem (a fully sampled slice and its mask).
        features: the features (reference-size image coordinates).
        methods: method instances (or names).
        mode: ``"coil"`` or ``"paper"``.
        progress: ``progress(label, step, total, info)`` of each method's run; True stops it (best so far kept)
            and the methods after it are not run (``failures``: "not run: stopped").
        results: results already computed on this featured problem, by label (reused, not recomputed).

    Raises:
        ExplorerError: bad features (outside the image or the anatomy), an undersampled file.
    """
    inserted = insert_features(problem.slice, features, mode)
    featured = prepare(inserted.slice, problem.sampled.config, problem.device)
    done, failures, rows = [], {}, []
    stopped = {"by_user": False}
    for method in methods:
        instance = as_instance(method)
        result = (results or {}).get(instance.label)
        if result is None and stopped["by_user"]:
            failures[instance.label] = "not run: stopped"  # a stop ends the whole run, not only the method
            continue
        if result is None:
            report: ProgressFn | None = None
            if progress is not None:
                def report(step, total, info, _label=instance.label):
                    answer = progress(_label, step, total, info)
                    stopped["by_user"] = stopped["by_user"] or bool(answer)
                    return answer
            try:
                result = run_method(featured, instance, progress=report)
            except ExplorerError as exc:
                failures[instance.label] = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
                continue
        done.append(result)
        rows += feature_rows(inserted.features, featured.target, result)
    return FeatureRun(inserted, featured, done, rows, failures)


# ------------------------------------------------------------------ studies over slices


@dataclass(frozen=True)
class StudyFeatures(FeatureInsertion):
    """A task feature that also scores its features (``score``: the records' ``scores`` column)."""

    def score(self, problem: Problem, result: MethodResult) -> list[dict]:
        return [{k: v for k, v in row.items() if k not in ("label", "method", "ssim", "psnr")}
                for row in feature_rows(self.features, problem.target, result)]


def feature_tasks(data: str, slices: list[int], methods: list[MethodInstance], count: int, template: Feature,
                  sizes: tuple[int, ...], contrasts: tuple[float, ...], seed: int = 0, mode: str = "coil",
                  mask: MaskConfig = MaskConfig(), reference: Callable[[int], np.ndarray] | None = None,
                  metric: str = "fastmri") -> list[Task]:
    """Tasks of a study: on each slice, ``count`` random features (sizes and contrasts drawn from the lists,
    seeded per slice), every method.

    Args:
        reference: ``slice index -> reference image (h, w)`` for the placement (default: read from ``data``).
    """
    from explorer.data.sources import open_volume  # noqa: PLC0415
    from explorer.robustness.insertion import reference_image  # noqa: PLC0415

    volume = None if reference is not None else open_volume(data)
    tasks = []
    for index in slices:
        if reference is not None:
            image = reference(index)
        else:
            slc = volume.read_slice(index)
            image = reference_image(slc.kspace, slc.target_shape)
        features = place_random(image, count, template, seed=seed * 100003 + index, sizes=sizes, contrasts=contrasts)
        for method in methods:
            tasks.append(Task(data=data, slice=int(index), method=method, mask=mask, feature=StudyFeatures(features, mode),
                              metric=metric))
    return tasks


def study_rows(records) -> list[dict]:
    """One row per (record, feature) from study records: the record's identity and whole-image metrics and
    the feature's scores (records that failed or carry no scores are skipped)."""
    rows = []
    for record in records:
        if record.error or not getattr(record, "scores", ""):
            continue
        for score in json.loads(record.scores):
            rows.append({"data": record.data, "slice": record.slice, "label": record.label, "method": record.method,
                         "ssim": record.ssim, "psnr": record.psnr, **score})
    return rows


def correlation(rows: list[dict], x: str = "ssim", y: str = "window_mse") -> dict[str, dict]:
    """Pearson and Spearman correlation of ``y`` with ``x``, pooled (``"all"``) and per method label.

    Returns:
        ``{label: {"n", "pearson", "spearman"}}`` (``None`` where fewer than 3 points or no spread).
    """
    from scipy import stats  # noqa: PLC0415

    groups: dict[str, list[tuple[float, float]]] = {"all": []}
    for row in rows:
        a, b = row.get(x), row.get(y)
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            continue
        groups["all"].append((a, b))
        groups.setdefault(row["label"], []).append((a, b))
    out = {}
    for label, points in groups.items():
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        ok = len(pts) >= 3 and pts[:, 0].std() > 0 and pts[:, 1].std() > 0
        out[label] = {"n": len(pts),
                      "pearson": float(stats.pearsonr(pts[:, 0], pts[:, 1])[0]) if ok else None,
                      "spearman": float(stats.spearmanr(pts[:, 0], pts[:, 1])[0]) if ok else None}
    return out


def method_means(rows: list[dict], keys: tuple[str, ...] = ("ssim", "window_mse", "contrast_recovery", "local_ssim")) -> list[dict]:
    """Per method label, the mean of each of ``keys`` over its feature rows (and the row count)."""
    out = []
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        entry = {"label": label, "n": len(mine)}
        for key in keys:
            values = [r[key] for r in mine if r.get(key) is not None and math.isfinite(r[key])]
            entry[key] = float(np.mean(values)) if values else None
        out.append(entry)
    return out


def method_correlation(rows: list[dict], x: str = "ssim", y: str = "window_mse") -> dict:
    """Pearson correlation across methods of their mean ``y`` with their mean ``x`` (the paper's claim is about
    methods: better overall quality, better recovery of fine details); ``None`` with fewer than 3 methods."""
    means = [m for m in method_means(rows, (x, y)) if m[x] is not None and m[y] is not None]
    if len(means) < 3:
        return {"n": len(means), "pearson": None}
    a, b = np.array([m[x] for m in means]), np.array([m[y] for m in means])
    return {"n": len(means), "pearson": float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else None}


def with_position(feature: Feature, row: int, col: int) -> Feature:
    """``feature`` moved to ``(row, col)``."""
    return replace(feature, row=int(row), col=int(col))




# ----------------------------------------------------------------------------- the experiment in a study

SETTINGS = {"count": "random features per slice (1-100)", "sizes": "sizes to draw from (px)",
            "contrasts": "contrasts to draw from", "seed": "seed of the placement", "shape": "square, disk, line or blob",
            "mode": "coil (through the coil maps) or paper (the paper's code)"}


def _check(settings: dict) -> None:
    """Every setting checked before a study starts (the unit would refuse the same values, one slice at a time)."""
    count = settings.get("count", 3)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100:
        raise ExplorerError("count must be an integer in 1..100")
    seed = settings.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ExplorerError(f"seed must be an integer, got {seed!r}")
    mode = settings.get("mode", "coil")
    if mode not in MODES:
        raise ExplorerError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    shape = settings.get("shape", "square")
    if not isinstance(shape, str):
        raise ExplorerError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    for key, kind in (("sizes", int), ("contrasts", (int, float))):
        values = settings.get(key)
        if key in settings and (not isinstance(values, list) or not values or len(values) > 64
                                or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values)):
            raise ExplorerError(f"{key} must be a non-empty list of at most 64 "
                                f"{'integers' if key == 'sizes' else 'numbers'}")
    for size in settings.get("sizes", (5,)):
        for contrast in settings.get("contrasts", (0.17,)):
            Feature(shape=shape, size=size, contrast=float(contrast))  # the feature's own checks (ranges, shape)


def _unit(task: Task, settings: dict, problems: ProblemCache) -> list[Record]:
    """``count`` random features on the task's slice, the task's method: one record, its scores per feature."""
    template = Feature(shape=settings.get("shape", "square"))
    tasks = feature_tasks(task.data, [task.slice], [task.method], int(settings.get("count", 3)), template,
                          tuple(settings.get("sizes", (3, 5))), tuple(float(c) for c in settings.get("contrasts", (0.17,))),
                          seed=int(settings.get("seed", 0)), mode=settings.get("mode", "coil"), mask=task.mask,
                          metric=task.metric)
    return [run_task(tasks[0], problems, catch=False)]


def _report(records: Sequence[Record]) -> list[Section]:
    from explorer.figures.features import scatter_figure  # noqa: PLC0415 (plotly only when a report is drawn)

    rows = study_rows(records)
    if not rows:
        return []
    stats = correlation(rows)
    table = [{"label": label, **values} for label, values in stats.items()]
    return [Section("Small features: recovery against whole-image SSIM", scatter_figure(rows, stats),
                    (("Correlation of the window MSE with whole-image SSIM", table),),
                    f"{len(rows)} inserted features scored.")]


def conclusions(records: Sequence[Record]) -> list[Verdict]:
    """The talk's second conclusion: across methods, is the recovery of the inserted features (their mean window
    MSE, the papers' score: lower is better) correlated with whole-image SSIM?"""
    rows = study_rows(records)
    if not rows:
        return []
    found = method_correlation(rows)
    r = found["pearson"]
    measured = (f"Pearson r of the methods' mean window MSE with their mean SSIM: {r:+.2f} over {found['n']} methods"
                if r is not None else f"needs 3 or more methods with scores; the run has {found['n']}")
    return [Verdict("Recovery of fine details is strongly correlated with overall reconstruction quality",
                    judge(r, lambda v: v <= -0.7, lambda v: v > -0.3), measured,
                    "agrees if r <= -0.7 (higher SSIM, lower feature error); disagrees if r > -0.3")]


EXPERIMENT = register(Experiment(
    name="features", title="Small features", run=_unit, settings=SETTINGS, check=_check, summary=study_rows,
    report=_report, conclusions=conclusions, page=Page("pages/features.py", "Small features", ":material/center_focus_strong:"),
    description="small features inserted into fully sampled slices: how well each method recovers them",
))

__all__ = ["EXPERIMENT", "FeatureRun", "StudyFeatures", "conclusions", "correlation", "feature_rows", "feature_tasks", "method_correlation",
           "method_means", "run_features", "study_rows", "with_position"]
