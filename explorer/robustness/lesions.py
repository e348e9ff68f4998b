"""Worst-case lesions (issue 28 item 2; FNAF, Cheng, Calivà et al., MIDL 2020): the lesion a method misses, and the
smallest k-space budget at which a lesion vanishes or a fake one appears.

* :func:`false_negative_search`: within :class:`LesionBounds` (a region box or the whole object, a size range, a
  contrast range relative to the reference as the features experiment resolves it, shape families of
  :mod:`~explorer.robustness.insertion`), the feature a method recovers worst. A seeded random search
  (:func:`random_candidates`: ``candidates`` features, each inserted alone into the fully sampled slice through the
  coil maps, undersampled with the problem's own mask, reconstructed, scored by
  :func:`~explorer.robustness.feature_scores.score_feature`), then a deterministic local refinement from the worst
  (a pattern search over position, size, contrast and a line's angle within the bounds: the first move that makes
  the recovery worse is taken; the step halves when none does). It works for every method (no gradient used).
  Each candidate is a new acquisition: its coil maps are estimated on its own measurements, as the features
  experiment's (:class:`~explorer.robustness.insertion.FeatureInsertion`), so one candidate costs one ESPIRiT (for
  methods with maps) and one reconstruction.

The headline numbers (the smallest budget at which a lesion vanishes or appears) and one method's whole run, shared
by the CLI and the Lesions page, are in :mod:`~explorer.robustness.lesion_runs`.

Shapes: reference-size images ``(h, w)``; k-space ``(1, C, H, W)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from explorer.engine import MethodInstance, Problem, as_instance, run_method
from explorer.errors import ExplorerError
from explorer.robustness.feature_scores import FeatureScore, score_feature
from explorer.robustness.insertion import (CONTRAST_REFERENCES, MAX_SIZE, MODES, SHAPES, Feature, Inserted, full_maps,
                                          insert_features, reference_image, tissue_mask)
from explorer.robustness.objectives import check_region

#: Recovery measures a search can minimise: ``+1`` higher is better recovered, ``-1`` lower is better.
MEASURES: dict[str, int] = {"contrast_recovery": 1, "local_ssim": 1, "window_mse": -1}
MAX_CANDIDATES = 256


@dataclass(frozen=True)
class LesionBounds:
    """Where and what lesions a search may try.

    Attributes:
        region: ``(row0, col0, row1, col1)`` half-open box the whole footprint must lie in, or ``None`` (the whole
            object: the tissue mask of :func:`~explorer.robustness.insertion.tissue_mask`, always required too).
        sizes: ``(smallest, largest)`` size in pixels (side, diameter, length or FWHM).
        contrasts: ``(lowest, highest)`` contrast relative to ``relative_to``; both of one sign, non-zero.
        shapes: shape families to draw from (:data:`~explorer.robustness.insertion.SHAPES`).
        relative_to: ``"max"`` or ``"local"`` (as :class:`~explorer.robustness.insertion.Feature`).
    """

    region: tuple[int, int, int, int] | None = None
    sizes: tuple[int, int] = (3, 7)
    contrasts: tuple[float, float] = (0.1, 0.25)
    shapes: tuple[str, ...] = ("square",)
    relative_to: str = "max"

    def __post_init__(self) -> None:
        lo, hi = self.sizes
        c0, c1 = self.contrasts
        checks = [
            (len(self.sizes) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in self.sizes)
             and 1 <= lo <= hi <= MAX_SIZE, f"sizes must be two integers 1 <= smallest <= largest <= {MAX_SIZE}, "
                                            f"got {self.sizes}"),
            (all(math.isfinite(v) for v in self.contrasts) and c0 <= c1 and (c0 > 0 or c1 < 0) and max(abs(c0), abs(c1)) <= 10,
             f"contrasts must be lowest <= highest, both non-zero and of one sign, |contrast| <= 10, got {self.contrasts}"),
            (bool(self.shapes) and all(s in SHAPES for s in self.shapes),
             f"shapes must be among {', '.join(SHAPES)}, got {', '.join(map(str, self.shapes)) or 'none'}"),
            (self.relative_to in CONTRAST_REFERENCES,
             f"contrast reference must be one of {', '.join(CONTRAST_REFERENCES)}, got {self.relative_to!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ExplorerError(message)

    def describe(self) -> dict:
        return {"region": list(self.region) if self.region else "whole object", "sizes": list(self.sizes),
                "contrasts": list(self.contrasts), "shapes": list(self.shapes), "relative_to": self.relative_to}


def allowed_centres(reference: np.ndarray, bounds: LesionBounds, probe: Feature) -> np.ndarray:
    """Centres ``(h, w)`` bool where ``probe`` (its shape and size) lies inside the anatomy and the region.

    Raises:
        ExplorerError: a region outside the image.
    """
    from scipy import ndimage  # noqa: PLC0415

    shape = reference.shape
    check_region(bounds.region, shape)
    margin = probe.radius + 1
    allowed = ndimage.binary_erosion(tissue_mask(reference), iterations=margin)
    allowed[:margin] = allowed[-margin:] = False
    allowed[:, :margin] = allowed[:, -margin:] = False
    if bounds.region is not None:
        r0, c0, r1, c1 = bounds.region
        inside = np.zeros(shape, bool)
        inside[r0 + probe.radius:r1 - probe.radius, c0 + probe.radius:c1 - probe.radius] = True
        allowed &= inside
    return allowed


class _Centres:
    """:func:`allowed_centres` per (shape, size), computed once."""

    def __init__(self, reference: np.ndarray, bounds: LesionBounds):
        self.reference, self.bounds, self.cache = reference, bounds, {}

    def __call__(self, feature: Feature) -> np.ndarray:
        key = (feature.shape, feature.size)
        if key not in self.cache:
            self.cache[key] = allowed_centres(self.reference, self.bounds, feature)
        return self.cache[key]

    def admits(self, feature: Feature) -> bool:
        lo, hi = self.bounds.sizes
        c0, c1 = self.bounds.contrasts
        if not (lo <= feature.size <= hi and c0 <= feature.contrast <= c1 and feature.row >= 0 and feature.col >= 0):
            return False
        allowed = self(feature)
        return feature.row < allowed.shape[0] and feature.col < allowed.shape[1] and bool(allowed[feature.row, feature.col])


def random_candidates(reference: np.ndarray, bounds: LesionBounds, count: int, seed: int = 0) -> tuple[Feature, ...]:
    """``count`` features drawn independently within ``bounds`` (the same seed, the same features).

    Each draws its shape (uniform over ``bounds.shapes``), size (uniform integer in the range), contrast (uniform in
    the range), a line's angle (uniform in [0, 180)) and its centre (uniform over :func:`allowed_centres`).

    Raises:
        ExplorerError: a count outside ``[1, MAX_CANDIDATES]``; no room for a drawn size in the bounds.
    """
    if not (isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_CANDIDATES):
        raise ExplorerError(f"candidates must be an integer in [1, {MAX_CANDIDATES}], got {count!r}")
    rng = np.random.default_rng(seed)
    centres = _Centres(reference, bounds)
    out = []
    for _ in range(count):
        shape = bounds.shapes[int(rng.integers(len(bounds.shapes)))]
        size = int(rng.integers(bounds.sizes[0], bounds.sizes[1] + 1))
        contrast = float(rng.uniform(*bounds.contrasts))
        angle = float(rng.uniform(0, 180))
        probe = Feature(shape=shape, size=size, contrast=contrast, relative_to=bounds.relative_to,
                        angle=angle if shape == "line" else 0.0)
        rows, cols = np.nonzero(centres(probe))
        if not len(rows):
            raise ExplorerError(f"no room for a {shape} of size {size} inside the anatomy"
                                + (f" and the region {bounds.region}" if bounds.region else "") + ": widen the bounds")
        pick = int(rng.integers(len(rows)))
        out.append(replace(probe, row=int(rows[pick]), col=int(cols[pick])))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Candidate:
    """One lesion tried: its feature, the method's scores of it, and the value the search ranks by.

    Attributes:
        feature; score: :class:`~explorer.robustness.feature_scores.FeatureScore`; value: the ranked measure (``None``
        where undefined); ssim: whole-image SSIM on the slice with the lesion; phase: ``"random"`` or ``"refine"``;
        stopped: a stop request cut the method's fit short (never chosen as the worst).
    """

    feature: Feature
    score: FeatureScore
    value: float | None
    ssim: float | None
    phase: str
    seconds: float
    stopped: bool = False

    def row(self) -> dict:
        return {**self.feature.describe(), **self.score.row(), "ssim": self.ssim, "phase": self.phase,
                "seconds": self.seconds, "stopped": self.stopped}


def featured_problem(problem: Problem, feature: Feature, mode: str = "coil",
                     maps: torch.Tensor | None = None) -> tuple[Problem, Inserted]:
    """``problem``'s slice with ``feature`` inserted, undersampled with the same mask (the same
    :class:`~explorer.masks.SampledMask`); its coil maps are estimated on its own measurements when first needed.

    Args:
        maps: coil maps ``(C, H, W)`` for the insertion (default: ESPIRiT on the full k-space, per call).
    """
    inserted = insert_features(problem.slice, [feature], mode, maps)
    k = inserted.slice.kspace.to(problem.device)
    y = (k * problem.sampled.mask[0].to(problem.device)).unsqueeze(0)
    return Problem(inserted.slice, problem.sampled, y, problem.device, maps_crop=problem.maps_crop,
                   metric=problem.metric), inserted


def score_lesion(problem: Problem, instance: MethodInstance, feature: Feature, measure: str = "contrast_recovery",
                 mode: str = "coil", maps: torch.Tensor | None = None, progress=None,
                 phase: str = "random") -> Candidate:
    """Insert ``feature``, reconstruct with ``instance``, score the feature against the reference with it."""
    began = time.perf_counter()
    featured, _ = featured_problem(problem, feature, mode, maps)
    result = run_method(featured, instance, progress=progress)
    score = score_feature(result.image, featured.target, profile=feature.profile(featured.target.shape))
    value = getattr(score, measure)
    return Candidate(feature, score, None if value is None or not math.isfinite(value) else float(value),
                     (result.metrics or {}).get("ssim"), phase, time.perf_counter() - began, result.stopped)


@dataclass(frozen=True, eq=False)
class LesionSearch:
    """A false-negative search of one method.

    Attributes:
        instance, bounds, measure, seed, mode.
        worst: the worst recovered candidate that ran to the end (``None`` if none did).
        candidates: the ``N`` random candidates, in draw order; refined: the refinement's evaluations.
        seconds; stopped: a stop request ended it (the worst so far is kept).
    """

    instance: MethodInstance
    bounds: LesionBounds
    measure: str
    seed: int
    mode: str
    worst: Candidate | None
    candidates: tuple[Candidate, ...]
    refined: tuple[Candidate, ...]
    seconds: float
    stopped: bool

    def rows(self) -> list[dict]:
        """One row per candidate tried (random, then refinement), ``worst`` marking the chosen one."""
        return [{"label": self.instance.label, "method": self.instance.name, "measure": self.measure, **c.row(),
                 "worst": c is self.worst} for c in (*self.candidates, *self.refined)]

    def summary(self) -> dict:
        w = self.worst
        random = [c.value for c in self.candidates if c.value is not None and not c.stopped]
        sign = MEASURES[self.measure]
        return {"label": self.instance.label, "method": self.instance.name, "measure": self.measure,
                "bounds": self.bounds.describe(), "seed": self.seed, "mode": self.mode,
                "worst": None if w is None else {**w.feature.describe(), **w.score.row(), "ssim": w.ssim, "phase": w.phase},
                "random_candidates": len(self.candidates), "refinement_evaluations": len(self.refined),
                "random_worst": (min(random) if sign > 0 else max(random)) if random else None,
                "random_best": (max(random) if sign > 0 else min(random)) if random else None,
                "random_median": float(np.median(random)) if random else None,
                "seconds": self.seconds, "stopped": self.stopped}


def _badness(candidate: Candidate, measure: str) -> float:
    """Larger is worse recovered; ``-inf`` for a candidate that cannot be ranked."""
    if candidate.value is None or candidate.stopped:
        return -math.inf
    return -MEASURES[measure] * candidate.value


def _moves(feature: Feature, step: int, contrast_step: float) -> list[Feature]:
    """The pattern search's neighbours of ``feature`` (those a :class:`Feature` admits)."""
    changes = [{"row": feature.row + dr, "col": feature.col + dc} for dr, dc in ((-step, 0), (step, 0), (0, -step), (0, step))]
    changes += [{"size": feature.size + d} for d in (-1, 1)]
    changes += [{"contrast": feature.contrast + d} for d in (-contrast_step, contrast_step) if d]
    if feature.shape == "line":
        changes += [{"angle": (feature.angle + d) % 180} for d in (-30.0, 30.0)]
    out = []
    for change in changes:
        try:
            out.append(replace(feature, **change))
        except ExplorerError:  # off the image's corner, size 0, contrast 0: not a neighbour
            continue
    return out


def false_negative_search(problem: Problem, method: MethodInstance | str, bounds: LesionBounds = LesionBounds(),
                          candidates: int = 16, refine: int = 16, seed: int = 0, measure: str = "contrast_recovery",
                          mode: str = "coil", progress: Callable[[int, int, dict], bool | None] | None = None,
                          maps: torch.Tensor | None = None) -> LesionSearch:
    """The lesion within ``bounds`` that ``method`` recovers worst (module docstring).

    Args:
        problem: a fully sampled slice and its mask.
        candidates: ``N`` random features (:func:`random_candidates` with ``seed``: the same ``N`` features).
        refine: evaluations of the local refinement (0 = none).
        measure: :data:`MEASURES` (``contrast_recovery`` and ``local_ssim``: lower is worse; ``window_mse``: higher).
        mode: insertion mode (:data:`~explorer.robustness.insertion.MODES`).
        progress: ``progress(evaluation, total, info)`` after each candidate (``info["phase"]``, ``info["worst"]``) and
            during each method fit; True stops: the worst so far is kept.
        maps: insertion coil maps ``(C, H, W)`` (default: ESPIRiT of the full k-space, once).

    Raises:
        ExplorerError: an undersampled file, bad bounds, counts or measure.
    """
    if measure not in MEASURES:
        raise ExplorerError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    if mode not in MODES:
        raise ExplorerError(f"insertion mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not (isinstance(refine, int) and not isinstance(refine, bool) and 0 <= refine <= MAX_CANDIDATES):
        raise ExplorerError(f"refinement evaluations must be an integer in [0, {MAX_CANDIDATES}], got {refine!r}")
    if problem.slice.acquired_mask is not None:
        raise ExplorerError("a lesion search needs a fully sampled slice: this file is already undersampled")
    instance = as_instance(method)
    began = time.perf_counter()
    reference = reference_image(problem.slice.kspace, problem.crop)
    features = random_candidates(reference, bounds, candidates, seed)
    if mode == "coil" and maps is None and problem.slice.num_coils > 1:
        maps = full_maps(problem.slice.kspace.to(torch.complex64))
    total = candidates + refine
    state = {"done": 0, "stopped": False, "worst": None}

    def evaluate(feature: Feature, phase: str) -> Candidate:
        def inner(step, _total, info):
            answer = progress(state["done"], total, {"phase": phase, "fit_step": step}) if progress else None
            state["stopped"] = state["stopped"] or bool(answer)
            return answer
        candidate = score_lesion(problem, instance, feature, measure, mode, maps, inner if progress else None, phase)
        state["done"] += 1
        if state["worst"] is None or _badness(candidate, measure) > _badness(state["worst"], measure):
            if _badness(candidate, measure) > -math.inf:
                state["worst"] = candidate
        if progress is not None and not state["stopped"]:
            w = state["worst"]
            state["stopped"] = bool(progress(state["done"], total, {"phase": phase, "worst": None if w is None else w.value}))
        state["stopped"] = state["stopped"] or candidate.stopped
        return candidate

    tried: list[Candidate] = []
    for feature in features:
        tried.append(evaluate(feature, "random"))
        if state["stopped"]:
            break
    refined: list[Candidate] = []
    if state["worst"] is not None and refine and not state["stopped"]:
        centres = _Centres(reference, bounds)
        seen = {c.feature for c in tried}
        current = state["worst"]
        step = max(2, current.feature.size)
        contrast_step = (bounds.contrasts[1] - bounds.contrasts[0]) / 4
        while len(refined) < refine and not state["stopped"] and (step >= 1 or contrast_step > 1e-3):
            improved = False
            for move in _moves(current.feature, max(step, 1), contrast_step):
                if len(refined) >= refine or state["stopped"]:
                    break
                if move in seen or not centres.admits(move):
                    continue
                seen.add(move)
                candidate = evaluate(move, "refine")
                refined.append(candidate)
                if _badness(candidate, measure) > _badness(current, measure):
                    current, improved = candidate, True
                    break
            if not improved:
                if step <= 1 and contrast_step <= 1e-3:
                    break
                step, contrast_step = step // 2, contrast_step / 2
    return LesionSearch(instance, bounds, measure, seed, mode, state["worst"], tuple(tried), tuple(refined),
                        time.perf_counter() - began, state["stopped"])


__all__ = ["Candidate", "LesionBounds", "LesionSearch", "MAX_CANDIDATES", "MEASURES", "allowed_centres",
           "false_negative_search", "featured_problem", "random_candidates", "score_lesion"]
