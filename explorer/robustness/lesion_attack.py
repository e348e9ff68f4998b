"""Targeted lesion attacks under the attack's k-space budget: make a small structure appear, or make one vanish.

Threat model: exactly the attack's (:mod:`~explorer.robustness.attack`): ``e`` on the full multi-coil k-space before
the mask (``y' = M (k + e)``), nonzero only on the measured entries, ``||e||_2 <= eps * ||k||_2`` (or ``eps * ||y||_2``
with the measured budget; :func:`~explorer.robustness.objectives.budget_norm`), projection by rescaling, the clean
data's ESPIRiT maps fixed. The search is the attack's: :func:`~explorer.robustness.search.gradient_search` for
``capabilities.gradient == "exact"``, :func:`~explorer.robustness.search.joint_search` (then a refit on ``y + e``) for
``"data_consistency"``, chosen through :data:`~explorer.robustness.attack.STRATEGIES`; methods without a gradient
are refused.

Objective (minimised; the searches maximise ``-L``). With ``m(e)`` the magnitude of ``f(M (k + e))`` centre-cropped
to the reference size ``(h, w)``, ``c = m(0)`` the clean reconstruction's magnitude, ``s`` the structure's magnitude
``(h, w)`` (:class:`Structure`; zero outside its footprint), ``B`` its box (1 inside, 0 outside) and ``sigma = +1``
(``"hallucination"``: make ``s`` appear) or ``-1`` (``"erase"``: make a present ``s`` vanish)::

    L(e) = ( ||B * (m(e) - t)||^2  +  lambda ||(1 - B) * (m(e) - c)||^2 ) / ||s||^2

with the box's target ``t = c + s`` (hallucination) and, in erase mode, ``t = c0``, the same method's reconstruction
of the slice *without* the lesion (:func:`~explorer.robustness.lesions.vanishing` passes it; ``c - s`` when none is
given: a method that over- or under-shoots the lesion's contrast would keep part of it under ``c - s``).
``lambda`` = ``outside_weight`` (default 1): the rest of the image should change as little as possible. In
hallucination mode ``L = 1`` at ``e = 0`` and 0 when the structure is created exactly with nothing else changed.

What is measured (module :mod:`~explorer.robustness.feature_scores`'s contrast: mean in the footprint ``profile >= 0.5``
minus mean in the ring around it, ``C``): the *contrast change* ``(C(m(e)) - C(c)) / C(s)`` (1: the structure's full
contrast created, 0: nothing, -1 in erase mode: a present structure fully removed) and, where the problem has a
reference, the features' scores of the structure against it (:func:`~explorer.robustness.feature_scores.score_feature`:
contrast recovery, local SSIM, window MSE). :func:`smallest_eps` sweeps an increasing eps list and reports the first
budget whose result meets :class:`Criteria` (the headline number per method).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import torch

from explorer.engine import MethodInstance, MethodResult, Problem, as_instance, run_method
from explorer.errors import ExplorerError
from explorer.physics import center_crop, magnitude
from explorer.recon.base import ProgressFn
from explorer.robustness.attack import STRATEGIES
from explorer.robustness.feature_scores import FeatureScore, score_feature
from explorer.robustness.lesion_structures import Criteria, Structure
from explorer.robustness.noise import noise_draws, sample_sd
from explorer.robustness.objectives import AttackConfig, budget_norm
from explorer.robustness.search import Search, gradient_search, joint_search, l2norm

SIGNS: dict[str, float] = {"hallucination": 1.0, "erase": -1.0}


@dataclass(frozen=True, eq=False)
class TargetedObjective:
    """``-L`` of the module docstring (the searches maximise it).

    Attributes:
        clean: ``c`` ``(h, w)`` float32; change: ``s`` ``(h, w)``; inside: ``B`` ``(h, w)`` float32 in {0, 1};
        target: ``t`` ``(h, w)``, what ``B`` should show; outside_weight: ``lambda``. All tensors on the problem's device.
    """

    clean: torch.Tensor
    change: torch.Tensor
    inside: torch.Tensor
    target: torch.Tensor
    outside_weight: float

    def loss(self, m: torch.Tensor) -> torch.Tensor:
        """``L`` of a magnitude ``m`` ``(h, w)`` (torch scalar, differentiable)."""
        inner = (self.inside * (m - self.target)).pow(2).sum()
        outer = ((1 - self.inside) * (m - self.clean)).pow(2).sum()
        return (inner + self.outside_weight * outer) / self.change.pow(2).sum().clamp_min(1e-30)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``-L`` of a reconstruction ``x`` ``(1, H, W)`` or ``(H, W)`` (complex or real; differentiable)."""
        m = center_crop(magnitude(x[0] if x.ndim == 3 else x), tuple(self.clean.shape))
        return -self.loss(m.float())

    def of_image(self, image: np.ndarray) -> float:
        """``-L`` of a scored magnitude image ``(h, w)``."""
        return float(-self.loss(torch.from_numpy(np.asarray(image, np.float32)).to(self.clean.device)))


def make_targeted(structure: Structure, clean_image: np.ndarray, sign: float, outside_weight: float,
                  device: torch.device, target: np.ndarray | None = None) -> TargetedObjective:
    """The :class:`TargetedObjective` of ``structure`` for a clean magnitude ``c`` ``(h, w)``: the box's target
    ``target`` ``(h, w)`` if given, else ``c + sign * s``."""
    if clean_image.shape != structure.change.shape:
        raise ExplorerError(f"the structure's image {structure.change.shape} and the reconstruction "
                            f"{clean_image.shape} differ in shape")
    if not (math.isfinite(outside_weight) and 0 <= outside_weight <= 1e6):
        raise ExplorerError(f"outside weight must be in [0, 1e6], got {outside_weight}")
    inside = np.zeros(structure.change.shape, np.float32)
    r0, c0, r1, c1 = structure.box
    inside[r0:r1, c0:c1] = 1
    as_tensor = lambda a: torch.from_numpy(np.asarray(a, np.float32)).to(device)  # noqa: E731
    if target is None:
        target = clean_image + sign * structure.change
    elif target.shape != clean_image.shape:
        raise ExplorerError(f"the box's target {target.shape} and the reconstruction {clean_image.shape} differ in shape")
    return TargetedObjective(as_tensor(clean_image), as_tensor(structure.change), as_tensor(inside), as_tensor(target),
                             float(outside_weight))


@dataclass(frozen=True, eq=False)
class TargetedResult:
    """One targeted attack at one budget.

    Attributes:
        instance, mode (``"hallucination"`` | ``"erase"``), config (its ``eps``, ``budget``, steps ...), strategy.
        structure; clean / attacked: the engine's results on the clean and perturbed problems.
        e: ``(1, C, H, W)`` complex64 on the CPU (zero off the measured entries); ratio: ``||e|| / ||k||`` reached.
        loss: ``L`` of the attacked image; change: its contrast change; score: the structure's feature scores against
        the problem's reference (``None`` without one); outside: ``||(1-B)(m - c)|| / ||(1-B) c||``.
        met: the criteria's verdict; noise: per Gaussian draw of the same norm (``config.noise_draws``) the same
        measure (contrast change, or contrast recovery in erase mode).
        steps, seconds, stopped: the search's.
    """

    instance: MethodInstance
    mode: str
    config: AttackConfig
    strategy: str
    structure: Structure
    clean: MethodResult
    attacked: MethodResult
    e: torch.Tensor
    ratio: float
    loss: float
    change: float
    score: FeatureScore | None
    outside: float
    met: bool
    noise: tuple[float, ...]
    steps: int
    seconds: float
    stopped: bool = False

    @property
    def measure(self) -> float | None:
        """What the criterion reads: the contrast change (hallucination) or the contrast recovery (erase)."""
        if self.mode == "hallucination":
            return self.change
        return None if self.score is None else self.score.contrast_recovery

    def row(self, criteria: Criteria) -> dict:
        noise = [v for v in self.noise if v is not None]
        out = {"label": self.instance.label, "method": self.instance.name, "mode": self.mode, "eps": self.config.eps,
               "budget": self.config.budget, "strategy": self.strategy, "ratio": self.ratio, "loss": self.loss,
               "contrast_change": self.change, "outside_change": self.outside, "met": self.met,
               **criteria.row(self.mode), "steps": self.steps, "seconds": self.seconds, "stopped": self.stopped,
               "maps": "fixed (clean data)", "seed": self.config.seed, "noise_draws": len(noise),
               "noise_measure": sum(noise) / len(noise) if noise else None, "noise_measure_sd": sample_sd(noise)}
        out.update({f"{k}": v for k, v in (self.score.row() if self.score else {}).items() if k != "box"})
        for name in ("ssim", "psnr"):
            out[f"{name}_clean"] = (self.clean.metrics or {}).get(name)
            out[f"{name}_attacked"] = (self.attacked.metrics or {}).get(name)
        return out


def measure(mode: str, structure: Structure, image: np.ndarray, clean_image: np.ndarray,
            reference: np.ndarray | None) -> tuple[float, FeatureScore | None]:
    """``(contrast change, feature scores)`` of a magnitude ``image`` ``(h, w)`` (scores ``None`` without a reference,
    or for a given image without a feature in hallucination mode: they need the reference to hold the structure)."""
    change = (structure.contrast_of(image) - structure.contrast_of(clean_image)) / structure.contrast_of(structure.change)
    score = None
    if reference is not None and mode == "erase":
        score = score_feature(np.asarray(image), np.asarray(reference), profile=structure.profile)
    return float(change), score


def targeted_attack(problem: Problem, method: MethodInstance | str, structure: Structure, mode: str = "hallucination",
                    config: AttackConfig = AttackConfig(), criteria: Criteria = Criteria(), outside_weight: float = 1.0,
                    progress: ProgressFn | None = None, clean: MethodResult | None = None,
                    start: torch.Tensor | None = None, target: np.ndarray | None = None) -> TargetedResult:
    """Attack one method instance with the targeted objective (module docstring) at ``config.eps``.

    Args:
        problem: the clean undersampled slice (with the lesion already inserted, in erase mode).
        method: the instance; its ``capabilities.gradient`` chooses the strategy.
        structure: what to create (hallucination) or remove (erase).
        config: the attack's settings (``eps``, ``budget``, ``steps``, ``restarts``, ``optimizer``, ``patience``,
            ``seed``, ``joint_*``, ``noise_draws``; ``objective`` and ``region`` are not used).
        progress: as :func:`~explorer.robustness.attack.attack`'s (True stops; the best iterate so far is scored).
        clean: the instance's clean result on ``problem`` (else computed); start: a starting ``e`` ``(1, C, H, W)``.
        target: what the box should show ``(h, w)`` (default ``c + sigma s``; erase mode: ``c0``, module docstring).

    Raises:
        ExplorerError: a method with no gradient, an unknown mode, a bad budget or structure.
    """
    if mode not in SIGNS:
        raise ExplorerError(f"mode must be one of {', '.join(SIGNS)}, got {mode!r}")
    instance = as_instance(method)
    strategy = STRATEGIES.get(instance.capabilities.gradient)
    if strategy is None:
        raise ExplorerError(f"{instance.display} is not differentiable and has no fit to attack")
    began = time.perf_counter()
    clean = clean if clean is not None else run_method(problem, instance)
    has_full = problem.slice.acquired_mask is None
    budget = budget_norm(problem.kspace, problem.y, config.budget, config.eps, has_full)
    objective = make_targeted(structure, clean.image, SIGNS[mode], outside_weight, problem.device, target)
    refit = progress
    if strategy == "gradient":
        # a warm start (the previous budget's best e) is searched after a fresh start of its own: from the smaller
        # ball's optimum alone, fixed-length steps can stay stuck there however large the new budget
        search = Search(progress, (2 if start is not None else 1) * config.restarts * config.steps)
        e = gradient_search(problem, instance, objective, budget, config, search, None)
        if start is not None and not search.stopped:
            e = gradient_search(problem, instance, objective, budget, config, search, start)
        refit = None
    else:
        e, search = joint_search(problem, instance, objective, budget, config, progress)
    if e is None:  # stopped before a first iterate
        e = torch.zeros_like(problem.y)
    attacked = run_method(problem.perturbed(e=e), instance, progress=refit)
    change, score = measure(mode, structure, attacked.image, clean.image, problem.target)
    noise = []
    if not (search.stopped or attacked.stopped):
        for draw in noise_draws(problem, budget, config.noise_draws, config.seed):
            image = run_method(problem.perturbed(e=draw), instance).image
            n_change, n_score = measure(mode, structure, image, clean.image, problem.target)
            noise.append(n_change if mode == "hallucination" else (n_score.contrast_recovery if n_score else None))
    outside = 1 - objective.inside.cpu().numpy()
    c = clean.image.astype(np.float64)
    out_change = float(np.linalg.norm(outside * (attacked.image - c)) / max(np.linalg.norm(outside * c), 1e-30))
    unit = budget / config.eps if config.eps > 0 else 0.0
    return TargetedResult(instance, mode, config, strategy, structure, clean, attacked, e.detach().cpu().to(torch.complex64),
                          float(l2norm(e)) / unit if unit else 0.0, -objective.of_image(attacked.image), change, score,
                          out_change, criteria.met(mode, change, score), tuple(noise), search.step,
                          time.perf_counter() - began, search.stopped or attacked.stopped)


@dataclass(frozen=True, eq=False)
class Headline:
    """The smallest budget at which the criterion is met, for one method.

    Attributes:
        instance, mode, criteria.
        eps: the smallest eps of the list (ascending) within which a perturbation meeting the criterion was found:
            the first budget whose attack meets it, or a smaller one of the list when that attack's perturbation
            (a targeted optimum can lie inside the ball) is no larger (``||e|| / ||k|| <= eps``); ``0.0`` when the clean
            reconstruction already meets it (no attack run); ``None`` when no budget of the list does (or stopped first).
        found_at: the budget of the attack that found it; reached: that perturbation's ``||e|| / ||k||``.
        clean_met: the clean reconstruction already meets it; clean_measure: its measure (0 change in
            hallucination mode; the clean contrast recovery in erase mode).
        results: the attacks run, in ascending eps (up to and including the first that meets it).
        stopped: a stop request ended the sweep.
    """

    instance: MethodInstance
    mode: str
    criteria: Criteria
    eps: float | None
    clean_met: bool
    clean_measure: float | None
    results: tuple[TargetedResult, ...]
    stopped: bool
    found_at: float | None = None
    reached: float | None = None

    def row(self) -> dict:
        return {"label": self.instance.label, "method": self.instance.name, "mode": self.mode,
                "smallest_eps": self.eps, "found_at_eps": self.found_at, "reached": self.reached,
                "clean_met": self.clean_met, "clean_measure": self.clean_measure,
                "eps_tried": [r.config.eps for r in self.results], **self.criteria.row(self.mode),
                "stopped": self.stopped}


def smallest_eps(problem: Problem, method: MethodInstance | str, structure: Structure, eps_values: Sequence[float],
                 mode: str = "hallucination", config: AttackConfig = AttackConfig(), criteria: Criteria = Criteria(),
                 outside_weight: float = 1.0, progress: Callable[[int, int, dict], bool | None] | None = None,
                 clean: MethodResult | None = None, until_met: bool = True, target: np.ndarray | None = None) -> Headline:
    """Attack at each eps of ``eps_values`` in ascending order (a gradient search also starting from the previous
    budget's best ``e``) and report the first budget whose attack meets ``criteria``.

    ``progress`` receives ``info["eps"]`` and ``info["index"]``. ``until_met``: stop at the first budget that meets it.
    ``target``: the box's target (:func:`targeted_attack`).
    """
    instance = as_instance(method)
    values = sorted({float(v) for v in eps_values})
    if not values:
        raise ExplorerError("give at least one eps")
    clean = clean if clean is not None else run_method(problem, instance)
    change, score = measure(mode, structure, clean.image, clean.image, problem.target)
    clean_met = criteria.met(mode, change, score)
    clean_measure = change if mode == "hallucination" else (score.contrast_recovery if score else None)
    if clean_met:
        return Headline(instance, mode, criteria, 0.0, True, clean_measure, (), False)
    results: list[TargetedResult] = []
    found: TargetedResult | None = None
    for index, eps in enumerate(values):
        wrapped = None
        if progress is not None:
            def wrapped(step, total, info, _eps=eps, _index=index):
                return progress(step, total, {**info, "eps": _eps, "index": _index})
        start = results[-1].e if results and results[-1].strategy == "gradient" else None
        result = targeted_attack(problem, instance, structure, mode, replace(config, eps=eps), criteria, outside_weight,
                                 wrapped, clean, start, target)
        results.append(result)
        if result.met and found is None:
            found = result  # a stopped search's best perturbation still counts when it meets the criterion
        if result.stopped or (found is not None and until_met):
            break
    stopped = bool(results and results[-1].stopped)
    if found is None:
        return Headline(instance, mode, criteria, None, False, clean_measure, tuple(results), stopped)
    smallest = min(v for v in values if v >= found.ratio * (1 - 1e-6) or v == found.config.eps)
    return Headline(instance, mode, criteria, smallest, False, clean_measure, tuple(results), stopped,
                    found.config.eps, found.ratio)


__all__ = ["Headline", "SIGNS", "TargetedObjective", "TargetedResult", "make_targeted", "measure", "smallest_eps",
           "targeted_attack"]
