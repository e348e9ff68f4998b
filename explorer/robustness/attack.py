"""Worst-case k-space perturbations of one slice, for every method (Darestani, Chaudhari & Heckel, ICML 2021).

Threat model: a perturbation ``e`` of the multi-coil k-space, added before the mask (``y' = M (k + e)``),
with ``||e||_2 <= eps * ||k||_2`` (:mod:`~explorer.robustness.objectives`). ``e`` lives on the sampled
entries: the others cannot change a reconstruction and would only spend budget. Coil maps stay those of the
clean data (``Problem.perturbed(maps="fixed")``). The strategy follows the method's declared gradient:

* ``gradient="exact"`` (zero-filled, SENSE, unrolled l1/TV, U-net, VarNet end to end with its sensitivity
  network): projected gradient ascent through the engine's differentiable :func:`~explorer.engine.reconstruct`:
  normalised l2 steps of ``step_size * budget``, projection onto the ball by rescaling, restarts (the first
  from a random point of a tenth of the budget, or from a given start; the others from a random
  point of random radius), the worst iterate kept, early stop after ``patience`` steps without a new worst.
  ``optimizer="adam"``: Adam on ``e`` (the paper's optimiser for trained networks) with the same projection.
* ``gradient="data_consistency"`` (ConvDecoder, Deep Decoder, DIP): the paper's joint scheme. The fit's
  network and ``e`` are optimised together by Adam: a clean fit during the warm-up, then the data term on
  ``y + e`` minus ``joint_weight`` times the objective of the network's image. The last ``e`` is kept and the
  method is refitted from scratch on ``y + e``; that refit is what is scored.

Every result is scored by the engine (:func:`~explorer.engine.run_method` on the perturbed problem).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch

from explorer.engine import MethodInstance, MethodResult, Problem, as_instance, run_method
from explorer.engine.tasks import Described, ProblemCache, Record, Task, file_name, make_record
from explorer.errors import ExplorerError
from explorer.recon.base import ProgressFn, get_method
from explorer.robustness.objectives import (MAX_BUDGETS, OPTIMIZERS, AttackConfig, budget_norm, make_objective,
                                           resolve_objective)
from explorer.robustness.registry import Experiment, Page, Section, Verdict, judge, mean_sd, register
from explorer.robustness.search import Search, gradient_search, joint_search, l2norm

STRATEGIES: dict[str, str] = {"exact": "gradient", "data_consistency": "joint"}  # by Capabilities.gradient


@dataclass(frozen=True, eq=False)
class AttackResult:
    """One method attacked at one budget.

    Attributes:
        instance: the method instance; config: the attack settings; strategy: ``"gradient"`` or ``"joint"``.
        clean / perturbed: the engine's scored results on the clean and perturbed problems.
        e: the perturbation ``(1, C, H, W)`` complex64 on the CPU (zero off the sampled entries).
        ratio: ``||e|| / ||k||`` reached (``||y||`` with the measured budget).
        objective: the objective of the perturbed result; history: ``((step, objective), ...)`` of the search.
        steps: search steps run; seconds: wall time (search + scoring); stopped: the user stopped it.
        maps: the coil-maps policy (always the clean data's: ``"fixed"``).
    """

    instance: MethodInstance
    config: AttackConfig
    strategy: str
    clean: MethodResult
    perturbed: MethodResult
    e: torch.Tensor
    ratio: float
    objective: float
    history: tuple[tuple[int, float], ...]
    steps: int
    seconds: float
    stopped: bool = False
    maps: str = "fixed"

    def row(self) -> dict:
        """One flat record (JSON / CSV / Parquet)."""
        out = {"label": self.instance.label, "method": self.instance.name, "eps": self.config.eps,
               "objective_name": resolve_objective(self.config.objective, self.instance.capabilities.weights),
               "protocol": "paper" if self.config.objective == "paper" else "ours", "budget": self.config.budget,
               "strategy": self.strategy,
               "ratio": self.ratio, "objective": self.objective, "steps": self.steps, "seconds": self.seconds,
               "stopped": self.stopped, "maps": "fixed (clean data)", "seed": self.config.seed}
        for name in ("ssim", "psnr", "nmse"):
            clean = (self.clean.metrics or {}).get(name)
            pert = (self.perturbed.metrics or {}).get(name)
            out[f"{name}_clean"], out[f"{name}_perturbed"] = clean, pert
            out[f"{name}_drop"] = None if clean is None or pert is None else clean - pert
        return out


def attack(problem: Problem, method: MethodInstance | str, config: AttackConfig = AttackConfig(),
           progress: ProgressFn | None = None, clean: MethodResult | None = None,
           start: torch.Tensor | None = None) -> AttackResult:
    """Attack one method instance on ``problem``.

    Args:
        problem: the clean undersampled slice (its maps serve every perturbed reconstruction).
        method: the instance; its ``capabilities.gradient`` chooses the strategy.
        config: :class:`AttackConfig`.
        progress: ``progress(step, total, info)``; ``info`` has ``"objective"``, ``"worst"`` and ``"history"``
            during the search (``"phase": "attack"``; ``"warm-up"`` during the joint scheme's clean fit),
            ``"phase": "refit"`` while a fit is refitted; returning
            True stops the search (the worst iterate so far is kept and scored).
        clean: the instance's clean result, if already computed (else computed here).
        start: a starting perturbation ``(1, C, H, W)`` (gradient strategy; e.g. a smaller budget's worst).

    Raises:
        ExplorerError: a method with no gradient; bad budget/objective/region for this slice.
    """
    instance = as_instance(method)
    strategy = STRATEGIES.get(instance.capabilities.gradient)
    if strategy is None:
        raise ExplorerError(f"{instance.display} is not differentiable and has no fit to attack; "
                            "apply another method's perturbation to it (transfer) instead")
    began = time.perf_counter()
    clean = clean if clean is not None else run_method(problem, instance)
    budget = budget_norm(problem.kspace, problem.y, config.budget, config.eps, problem.slice.acquired_mask is None)
    objective = make_objective(resolve_objective(config.objective, instance.capabilities.weights), clean.image,
                               problem.target, problem.device, config.region)
    refit = progress
    if strategy == "gradient":
        search = Search(progress, config.restarts * config.steps)
        e = gradient_search(problem, instance, objective, budget, config, search, start)
        refit = None
    else:
        e, search = joint_search(problem, instance, objective, budget, config, progress)
        if progress is not None:
            refit = _offset(progress, search.total // 2, search.total)
    perturbed = run_method(problem.perturbed(e=e), instance, progress=refit)
    reached = float(l2norm(e))
    return AttackResult(instance, config, strategy, clean, perturbed, e.detach().cpu().to(torch.complex64),
                        reached / (budget / config.eps) if config.eps > 0 else 0.0, objective.of_image(perturbed.image),
                        tuple(search.history), search.step, time.perf_counter() - began,
                        search.stopped or perturbed.stopped)


def _offset(progress: ProgressFn, offset: int, total: int) -> ProgressFn:
    """Report a refit's steps after the search's, as phase ``"refit"``."""
    def report(step: int, _total: int, info: dict):
        return progress(offset + step, total, {"phase": "refit", "fit_loss": info.get("loss")})
    return report


def sweep(problem: Problem, method: MethodInstance | str, eps_values: list[float], config: AttackConfig = AttackConfig(),
          progress: Callable[[int, int, dict], bool | None] | None = None,
          clean: MethodResult | None = None) -> list[AttackResult]:
    """Attack at every budget in ``eps_values`` (ascending), each gradient search also starting from the
    previous budget's worst perturbation (so the worst case found never shrinks as eps grows).

    ``progress`` receives ``info["eps"]`` and ``info["index"]`` (which budget) besides the attack's fields.
    """
    instance = as_instance(method)
    clean = clean if clean is not None else run_method(problem, instance)
    results: list[AttackResult] = []
    for index, eps in enumerate(sorted(eps_values)):
        wrapped = None
        if progress is not None:
            def wrapped(step, total, info, _eps=eps, _index=index):
                return progress(step, total, {**info, "eps": _eps, "index": _index})
        start = results[-1].e if results and results[-1].strategy == "gradient" else None
        result = attack(problem, instance, replace(config, eps=eps), wrapped, clean, start)
        results.append(result)
        if result.stopped:
            break
    return results




# ----------------------------------------------------------------------------- the experiment in a study

SETTINGS = {
    "eps": "relative l2 budgets (a list; default [0.08])", "budget": "full or measured",
    "objective": "clean, target or paper (the papers' per family: clean for trained networks, target for the others)",
    "steps": "gradient steps per restart", "restarts": "independent starts", "optimizer": "pgd or adam",
    "step_size": "step as a fraction of the budget (0 = 2.5/steps)", "patience": "steps without a new worst",
    "seed": "seed of the random starts",
}


def _check(settings: dict) -> None:
    eps = settings.get("eps", [0.08])
    if (not isinstance(eps, list) or not eps or len(eps) > MAX_BUDGETS
            or not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in eps)):
        raise ExplorerError(f"eps must be a non-empty list of at most {MAX_BUDGETS} numbers")
    for value in eps:
        AttackConfig(eps=float(value), **{k: v for k, v in settings.items() if k != "eps"})


def _unit(task: Task, settings: dict, problems: ProblemCache) -> list[Record]:
    """One method on one slice at every budget: one record per budget, its scores the attack row."""
    problem = problems.problem(task)
    config = AttackConfig(**{k: v for k, v in settings.items() if k != "eps"})
    records = []
    for result in sweep(problem, task.method, [float(e) for e in settings.get("eps", [0.08])], config):
        described = Described("attack", json.dumps({"eps": result.config.eps, "objective": config.objective,
                                                    "budget": config.budget, "steps": config.steps,
                                                    "seed": config.seed}, sort_keys=True))
        record = make_record(replace(task, perturbation=described), problem, result.perturbed, file=file_name(task))
        records.append(replace(record, scores=json.dumps(result.row(), default=float)))
    return records


def summary(records: Sequence[Record]) -> list[dict]:
    """``[{label, method, eps, n, ssim_clean, ssim_drop, ssim_drop_sd, psnr_drop, psnr_drop_sd}]`` of a study's attack
    records, sorted by label and eps: mean and spread over slices."""
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    methods = {}
    for r in records:
        scores = json.loads(r.scores) if r.scores else {}
        groups[(r.label, float(scores.get("eps", json.loads(r.perturbation or "{}").get("eps", 0.0))))].append(scores)
        methods[r.label] = r.method
    rows = []
    for (label, eps), items in sorted(groups.items()):
        ssim_drop, ssim_sd = mean_sd([s.get("ssim_drop") for s in items])
        psnr_drop, psnr_sd = mean_sd([s.get("psnr_drop") for s in items])
        rows.append({"label": label, "method": methods[label], "eps": eps, "n": len(items),
                     "ssim_clean": mean_sd([s.get("ssim_clean") for s in items])[0], "ssim_drop": ssim_drop,
                     "ssim_drop_sd": ssim_sd, "psnr_drop": psnr_drop, "psnr_drop_sd": psnr_sd})
    return rows


def _report(records: Sequence[Record]) -> list[Section]:
    from explorer.figures.attack import drop_figure  # noqa: PLC0415 (plotly only when a report is drawn)

    rows = summary(records)
    if not rows:
        return []
    return [Section("Adversarial attacks: SSIM drop against the budget", drop_figure(rows), (("Attack summary", rows),),
                    "Mean ± sd over slices; drop = clean − perturbed.")]


def conclusions(records: Sequence[Record]) -> list[Verdict]:
    """The talk's first conclusion, judged at the largest budget of the run: are the trained networks (family
    ``trained``) more sensitive than the sparsity-based methods (family ``sparse``)?"""
    rows = summary([r for r in records if not r.error])
    if not rows:
        return []
    eps = max(r["eps"] for r in rows)
    drops: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["eps"] == eps:
            drops[get_method(r["method"]).family].append(r["ssim_drop"])
    trained, sparse = (float(sum(drops[f]) / len(drops[f])) if drops[f] else None for f in ("trained", "sparse"))
    difference = None if trained is None or sparse is None else trained - sparse
    objectives = sorted({json.loads(r.scores).get("objective_name", "?") for r in records if r.scores and not r.error})
    by_family = ", ".join(f"{f} {sum(v) / len(v):.3f}" for f, v in sorted(drops.items()) if v)
    measured = (f"mean SSIM drop at eps {eps:g} by family: {by_family}; objectives {', '.join(objectives)}"
                if difference is not None else f"needs trained and sparse methods; the run has {by_family}")
    return [Verdict("No evidence that DNNs are fundamentally more susceptible to adversarial perturbations than "
                    "sparsity based methods", judge(difference, lambda d: d <= 0.02, lambda d: d > 0.05), measured,
                    "agrees if the trained family's mean SSIM drop at the largest budget exceeds the sparse family's "
                    "by at most 0.02; disagrees if by more than 0.05")]


EXPERIMENT = register(Experiment(
    name="attack", title="Adversarial attacks", run=_unit, settings=SETTINGS, check=_check, summary=summary,
    report=_report, conclusions=conclusions, page=Page("pages/attack.py", "Attack", ":material/bolt:"),
    description="worst-case k-space perturbations under an l2 budget: SSIM/PSNR drop per method and budget",
))

__all__ = ["AttackConfig", "AttackResult", "EXPERIMENT", "OPTIMIZERS", "STRATEGIES", "attack", "conclusions", "summary",
           "sweep"]
