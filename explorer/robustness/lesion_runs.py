"""One method's worst-case lesion run (issue 28 item 2), the same for ``python -m explorer lesion`` and the Lesions page.

* :func:`vanishing` / :func:`appearing`: the headline numbers (:func:`~explorer.robustness.lesion_attack.smallest_eps`):
  the targeted attack of :mod:`~explorer.robustness.lesion_attack` erasing a lesion inserted in the slice, or creating
  one in the clean slice, over an increasing eps list.
* :func:`lesion_method`: false negative (the search of :mod:`~explorer.robustness.lesions`, then the budget that
  erases its worst lesion) or hallucination (the budget at which a structure appears), with the gradient strategy
  chosen from the method's capabilities.

Shapes: reference-size images ``(h, w)``; k-space ``(1, C, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from explorer.engine import MethodInstance, MethodResult, Problem, as_instance, run_method
from explorer.errors import ExplorerError
from explorer.robustness.attack import STRATEGIES
from explorer.robustness.insertion import Feature, reference_image
from explorer.robustness.lesion_attack import Headline, smallest_eps
from explorer.robustness.lesion_structures import Criteria, Structure, feature_structure
from explorer.robustness.lesions import LesionBounds, LesionSearch, false_negative_search, featured_problem
from explorer.robustness.objectives import AttackConfig


def vanishing(problem: Problem, method: MethodInstance | str, feature: Feature, eps_values: Sequence[float],
              config: AttackConfig = AttackConfig(), criteria: Criteria = Criteria(), outside_weight: float = 1.0,
              mode: str = "coil", progress=None, maps: torch.Tensor | None = None) -> tuple[Headline, Problem]:
    """The smallest eps at which ``feature``, inserted into the slice (``mode``), vanishes from ``method``'s
    reconstruction under the erase attack (:func:`~explorer.robustness.lesion_attack.smallest_eps`, mode ``"erase"``,
    ``s`` = the inserted amplitude x the feature's profile, the box's target ``c0`` = the method's reconstruction of the
    slice without the lesion). Returns the headline and the problem with the lesion."""
    instance = as_instance(method)
    featured, inserted = featured_problem(problem, feature, mode, maps)
    structure = feature_structure(feature, inserted.reference, amplitude=inserted.amplitudes[0])
    without = run_method(problem, instance).image  # c0: what the box should show once the lesion is gone
    return smallest_eps(featured, instance, structure, eps_values, "erase", config, criteria, outside_weight,
                        progress, target=without), featured


def appearing(problem: Problem, method: MethodInstance | str, feature: Feature, eps_values: Sequence[float],
              config: AttackConfig = AttackConfig(), criteria: Criteria = Criteria(), outside_weight: float = 1.0,
              progress=None, clean: MethodResult | None = None) -> Headline:
    """The smallest eps at which ``feature`` appears in ``method``'s reconstruction of the clean slice under the
    hallucination attack (amplitude relative to the fully sampled reference, else to the stored target, else to
    the clean reconstruction)."""
    instance = as_instance(method)
    clean = clean if clean is not None else run_method(problem, instance)
    if problem.slice.acquired_mask is None:
        reference = reference_image(problem.slice.kspace, problem.crop)
    else:
        reference = problem.target if problem.target is not None else clean.image
    structure = feature_structure(feature, reference)
    return smallest_eps(problem, instance, structure, eps_values, "hallucination", config, criteria, outside_weight,
                        progress, clean)


@dataclass(frozen=True)
class LesionOutcome:
    """One method's lesion run (:func:`lesion_method`).

    Attributes:
        instance: the method.
        search: the false-negative search (``None`` in hallucination mode).
        headline: the smallest-eps sweep (``None``: no gradient strategy, no lesion scored, or stopped in the search).
        note: why there is no headline, when there is a reason to say.
        stopped: a stop request ended the search or the sweep.
        problem: the problem the headline's attacks ran on (with the lesion inserted in erase mode).
    """

    instance: MethodInstance
    search: LesionSearch | None
    headline: Headline | None
    note: str | None
    stopped: bool
    problem: Problem


def lesion_structure(problem: Problem, feature: Feature, first: MethodInstance) -> Structure:
    """The hallucination target of ``feature`` on this slice: its amplitude relative to the fully sampled reference,
    else the stored target, else ``first``'s reconstruction (a test file without a reference)."""
    if problem.slice.acquired_mask is None:
        reference = reference_image(problem.slice.kspace, problem.crop)
    else:
        reference = problem.target if problem.target is not None else run_method(problem, first).image
    return feature_structure(feature, reference)


def lesion_method(problem: Problem, instance: MethodInstance, eps_values: Sequence[float], config: AttackConfig,
                  criteria: Criteria, outside_weight: float = 1.0, *, bounds: LesionBounds | None = None,
                  candidates: int = 16, refine: int = 16, seed: int = 0, measure: str = "contrast_recovery",
                  mode: str = "coil", maps: torch.Tensor | None = None, structure: Structure | None = None,
                  progress: Callable[[int, int, dict], bool | None] | None = None) -> LesionOutcome:
    """One method's run, the same for the CLI and the app: with ``bounds`` (false negative), the lesion it recovers
    worst (:func:`false_negative_search`) and the smallest eps that erases it (:func:`vanishing`); else (hallucination)
    the smallest eps at which ``structure`` appears (:func:`~explorer.robustness.lesion_attack.smallest_eps`).
    Methods without a gradient strategy get the search only.

    Raises:
        ExplorerError: bad settings, an undersampled file in false-negative mode, neither bounds nor structure.
    """
    if (bounds is None) == (structure is None):
        raise ExplorerError("a lesion run needs search bounds (false negative) or a structure (hallucination)")
    search = None
    if bounds is not None:
        search = false_negative_search(problem, instance, bounds, candidates, refine, seed, measure, mode, progress,
                                       maps)
        if search.stopped:
            return LesionOutcome(instance, search, None, None, True, problem)
    if STRATEGIES.get(instance.capabilities.gradient) is None:
        return LesionOutcome(instance, search, None, f"{instance.label}: no gradient and no fit to attack: no headline "
                             "budget", False, problem)
    if search is not None:
        if search.worst is None:
            return LesionOutcome(instance, search, None, f"{instance.label}: no lesion scored", False, problem)
        headline, attacked = vanishing(problem, instance, search.worst.feature, eps_values, config, criteria,
                                       outside_weight, mode, progress, maps)
        return LesionOutcome(instance, search, headline, None, headline.stopped, attacked)
    headline = smallest_eps(problem, instance, structure, eps_values, "hallucination", config, criteria, outside_weight,
                            progress)
    return LesionOutcome(instance, None, headline, None, headline.stopped, problem)


__all__ = ["LesionOutcome", "appearing", "lesion_method", "lesion_structure", "vanishing"]
