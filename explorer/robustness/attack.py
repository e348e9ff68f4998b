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

Every result is scored by the engine (:func:`~explorer.engine.run_method` on the perturbed problem). Beside every
worst case, :func:`with_noise` scores ``noise_draws`` complex Gaussian perturbations of exactly the budget's norm
(:mod:`~explorer.robustness.noise`): the random baseline that tells a worst case from plain ill-conditioning.
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
from explorer.robustness.noise import METRICS, NOISE_NAME, NoiseBaseline, noise_baseline, pooled
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
        noise: the random baseline at this budget (:func:`with_noise`), or ``None``.
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
    noise: NoiseBaseline | None = None

    @property
    def halted(self) -> bool:
        """A stop request ended the search, its scoring or its noise baseline."""
        return self.stopped or (self.noise is not None and self.noise.stopped)

    def row(self) -> dict:
        """One flat record (JSON / CSV / Parquet); ``kind`` ``"worst case"`` (the noise baseline's rows: ``"noise"``)."""
        out = {"label": self.instance.label, "method": self.instance.name, "eps": self.config.eps, "kind": "worst case",
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


def with_noise(problem: Problem, results: Sequence[AttackResult],
               progress: Callable[[int, int, dict], bool | None] | None = None) -> list[AttackResult]:
    """``results`` (one method's sweep), each with its random baseline: ``config.noise_draws`` complex Gaussian
    perturbations of exactly its budget's norm, reconstructed and scored (:func:`~explorer.robustness.noise.noise_baseline`;
    none when 0). Stopped results get none; a stop during the draws keeps the draws so far and skips the budgets after.

    ``progress`` receives ``info["phase"] == "noise"``, ``info["eps"]`` and ``info["index"]`` (which budget).
    """
    out: list[AttackResult] = []
    halted = False
    for index, result in enumerate(results):
        if halted or result.stopped or not result.config.noise_draws:
            out.append(result)
            continue
        wrapped = None
        if progress is not None:
            def wrapped(step, total, info, _eps=result.config.eps, _index=index):
                return progress(step, total, {**info, "eps": _eps, "index": _index})
        noise = noise_baseline(problem, result.instance, result.config, clean=result.clean, progress=wrapped)
        out.append(replace(result, noise=noise))
        halted = noise.stopped
    return out


# ----------------------------------------------------------------------------- the experiment in a study

SETTINGS = {
    "eps": "relative l2 budgets (a list; default [0.08])", "budget": "full or measured",
    "objective": "clean, target or paper (the papers' per family: clean for trained networks, target for the others)",
    "steps": "gradient steps per restart", "restarts": "independent starts", "optimizer": "pgd or adam",
    "step_size": "step as a fraction of the budget (0 = 2.5/steps)", "patience": "steps without a new worst",
    "seed": "seed of the random starts",
    "noise_draws": "Gaussian perturbations of each budget's norm scored beside the worst case (default 3, 0 = none; "
                   "each one more reconstruction per method, slice and budget: an un-trained fit is refitted per draw)",
}
#: What an attack record's scores keep of its noise baseline (prefixed ``noise_``).
NOISE_FIELDS = ("draws", "ratio", "seconds", "stopped", *(f"{m}_{k}" for m in METRICS
                                                          for k in ("perturbed", "perturbed_sd", "drop", "drop_sd")))


def _check(settings: dict) -> None:
    eps = settings.get("eps", [0.08])
    if (not isinstance(eps, list) or not eps or len(eps) > MAX_BUDGETS
            or not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in eps)):
        raise ExplorerError(f"eps must be a non-empty list of at most {MAX_BUDGETS} numbers")
    for value in eps:
        AttackConfig(eps=float(value), **{k: v for k, v in settings.items() if k != "eps"})


def _unit(task: Task, settings: dict, problems: ProblemCache) -> list[Record]:
    """One method on one slice at every budget: one record per budget, its scores the attack row and its noise
    baseline's mean and sd as ``noise_*`` fields (:data:`NOISE_FIELDS`)."""
    problem = problems.problem(task)
    config = AttackConfig(**{k: v for k, v in settings.items() if k != "eps"})
    records = []
    for result in with_noise(problem, sweep(problem, task.method, [float(e) for e in settings.get("eps", [0.08])], config)):
        described = Described("attack", json.dumps({"eps": result.config.eps, "objective": config.objective,
                                                    "budget": config.budget, "steps": config.steps,
                                                    "seed": config.seed}, sort_keys=True))
        record = make_record(replace(task, perturbation=described), problem, result.perturbed, file=file_name(task))
        scores = result.row()
        if result.noise is not None:
            noise = result.noise.row()
            scores.update({f"noise_{k}": noise[k] for k in NOISE_FIELDS})
        records.append(replace(record, scores=json.dumps(scores, default=float)))
    return records


def summary(records: Sequence[Record]) -> list[dict]:
    """``[{label, method, eps, kind, n, draws, ssim_clean, ssim_drop, ssim_drop_sd, psnr_drop, psnr_drop_sd}]`` of a
    study's attack records, sorted by label and eps, each budget's ``kind`` ``"worst case"`` row (mean and spread over
    the ``n`` slices) followed by its ``"noise"`` row where the records hold a noise baseline (mean and sample sd over
    the slices' ``draws`` Gaussian perturbations of the same norm, pooled)."""
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
        ssim_clean = mean_sd([s.get("ssim_clean") for s in items])[0]
        rows.append({"label": label, "method": methods[label], "eps": eps, "kind": "worst case", "n": len(items),
                     "draws": None, "ssim_clean": ssim_clean, "ssim_drop": ssim_drop, "ssim_drop_sd": ssim_sd,
                     "psnr_drop": psnr_drop, "psnr_drop_sd": psnr_sd})
        noisy = [s for s in items if s.get("noise_draws")]
        if noisy:
            ssim = pooled([(s.get("noise_ssim_drop"), s.get("noise_ssim_drop_sd"), s["noise_draws"]) for s in noisy])
            psnr = pooled([(s.get("noise_psnr_drop"), s.get("noise_psnr_drop_sd"), s["noise_draws"]) for s in noisy])
            rows.append({"label": label, "method": methods[label], "eps": eps, "kind": "noise", "n": len(noisy),
                         "draws": sum(s["noise_draws"] for s in noisy), "ssim_clean": ssim_clean,
                         "ssim_drop": ssim[0], "ssim_drop_sd": ssim[1], "psnr_drop": psnr[0], "psnr_drop_sd": psnr[1]})
    return rows


def _report(records: Sequence[Record]) -> list[Section]:
    from explorer.figures.attack import drop_figure  # noqa: PLC0415 (plotly only when a report is drawn)

    rows = summary(records)
    if not rows:
        return []
    return [Section("Adversarial attacks: SSIM drop against the budget", drop_figure(rows), (("Attack summary", rows),),
                    "Worst case: mean ± sd over slices; noise: complex Gaussian perturbations of the same norm "
                    f"({NOISE_NAME}), mean ± sample sd over the slices' draws; drop = clean − perturbed.")]


def conclusions(records: Sequence[Record]) -> list[Verdict]:
    """The talk's first conclusion, judged at the largest budget of the run: are the trained networks (family
    ``trained``) more sensitive than the sparsity-based methods (family ``sparse``)?"""
    rows = summary([r for r in records if not r.error])
    if not rows:
        return []
    eps = max(r["eps"] for r in rows)
    drops: dict[str, list[float]] = defaultdict(list)
    noise: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["eps"] == eps:
            (drops if r["kind"] == "worst case" else noise)[get_method(r["method"]).family].append(r["ssim_drop"])
    trained, sparse = (float(sum(drops[f]) / len(drops[f])) if drops[f] else None for f in ("trained", "sparse"))
    difference = None if trained is None or sparse is None else trained - sparse
    objectives = sorted({json.loads(r.scores).get("objective_name", "?") for r in records if r.scores and not r.error})
    by_family = ", ".join(f"{f} {sum(v) / len(v):.3f}" for f, v in sorted(drops.items()) if v)
    noise_by_family = ", ".join(f"{f} {sum(v) / len(v):.3f}" for f, v in sorted(noise.items()) if v)
    measured = (f"mean SSIM drop at eps {eps:g} by family: {by_family}; objectives {', '.join(objectives)}"
                + (f"; Gaussian noise of the same norm: {noise_by_family}" if noise_by_family else "")
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

__all__ = ["AttackConfig", "AttackResult", "EXPERIMENT", "NOISE_FIELDS", "OPTIMIZERS", "STRATEGIES", "attack",
           "conclusions", "summary", "sweep", "with_noise"]
