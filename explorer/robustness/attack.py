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

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch

from explorer.engine import MethodInstance, MethodResult, Problem, as_instance, reconstruct, run_method
from explorer.errors import ExplorerError
from explorer.physics import fft2c, rss
from explorer.recon.base import FitReconstructor, ProgressFn, Throttle
from explorer.robustness.objectives import BUDGETS, OBJECTIVES, Objective, budget_norm, make_objective

STRATEGIES: dict[str, str] = {"exact": "gradient", "data_consistency": "joint"}  # by Capabilities.gradient
OPTIMIZERS = ("pgd", "adam")
# First start: a random point of norm budget / 10. (The paper's code starts at ||k|| / 1e4, 1/800 of its 0.08
# budget; the clean objective is flat at e = 0, and in float32 so tiny a start can leave its gradient exactly zero.)
START_FRACTION = 0.1


@dataclass(frozen=True)
class AttackConfig:
    """Attack settings (frozen: a cache key).

    Attributes:
        eps: relative l2 budget (the paper: 0.08 at 4x).
        objective: ``"clean"`` or ``"target"`` (:data:`~explorer.robustness.objectives.OBJECTIVES`).
        region: ``(row0, col0, row1, col1)`` box in the reference-size image the objective is restricted to.
        budget: ``"full"`` or ``"measured"``.
        steps: gradient steps per restart (gradient strategy).
        step_size: step length as a fraction of the budget (PGD) or Adam's learning rate in the same unit;
            0 = ``2.5 / steps`` (the usual PGD choice: the ball is crossed in well under the steps given).
        restarts: independent starts (gradient strategy); the worst result over all is kept.
        optimizer: ``"pgd"`` (normalised steps) or ``"adam"``.
        patience: stop a restart after this many steps without a new worst iterate (0 = never).
        seed: random starts.
        joint_weight: weight of the objective in the joint scheme (the paper's lam1 = 0.05).
        joint_warmup: fraction of the fit's steps fitted to the clean data before ``e`` enters (paper: 100/400).
    """

    eps: float = 0.08
    objective: str = "clean"
    region: tuple[int, int, int, int] | None = None
    budget: str = "full"
    steps: int = 20
    step_size: float = 0.0
    restarts: int = 1
    optimizer: str = "pgd"
    patience: int = 5
    seed: int = 0
    joint_weight: float = 0.05
    joint_warmup: float = 0.25

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.eps <= 10 and math.isfinite(self.eps), f"eps must be in [0, 10], got {self.eps}"),
            (self.objective in OBJECTIVES, f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"),
            (self.budget in BUDGETS, f"budget must be one of {', '.join(BUDGETS)}, got {self.budget!r}"),
            (1 <= self.steps <= 100000, f"steps must be in [1, 100000], got {self.steps}"),
            (0 <= self.step_size <= 10, f"step size must be in [0, 10], got {self.step_size}"),
            (1 <= self.restarts <= 100, f"restarts must be in [1, 100], got {self.restarts}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
            (0 <= self.patience <= 100000, f"patience must be in [0, 100000], got {self.patience}"),
            (0 <= self.seed < 2**32, f"seed must be in [0, 2**32), got {self.seed}"),
            (0 <= self.joint_weight <= 100, f"joint weight must be in [0, 100], got {self.joint_weight}"),
            (0 <= self.joint_warmup < 1, f"joint warm-up must be in [0, 1), got {self.joint_warmup}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ExplorerError(message)

    @property
    def alpha(self) -> float:
        """The step size actually used (fraction of the budget)."""
        return self.step_size or 2.5 / self.steps


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
               "objective_name": self.config.objective, "budget": self.config.budget, "strategy": self.strategy,
               "ratio": self.ratio, "objective": self.objective, "steps": self.steps, "seconds": self.seconds,
               "stopped": self.stopped, "maps": "fixed (clean data)", "seed": self.config.seed}
        for name in ("ssim", "psnr", "nmse"):
            clean = (self.clean.metrics or {}).get(name)
            pert = (self.perturbed.metrics or {}).get(name)
            out[f"{name}_clean"], out[f"{name}_perturbed"] = clean, pert
            out[f"{name}_drop"] = None if clean is None or pert is None else clean - pert
        return out


def _direction(shape: tuple[int, ...], mask: torch.Tensor, generator: torch.Generator, device) -> torch.Tensor:
    """A random unit-norm complex direction on the sampled entries ``(1, C, H, W)``."""
    d = torch.complex(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)).to(device) * mask
    return d / _norm(d).clamp_min(1e-30)


def _norm(x: torch.Tensor) -> torch.Tensor:
    """l2 norm of a complex tensor (one pass over its real view, no temporary)."""
    return torch.linalg.vector_norm(torch.view_as_real(x) if x.is_complex() else x)


def _project(e: torch.Tensor, budget: float) -> None:
    """Rescale ``e`` in place onto the l2 ball of radius ``budget`` (if outside)."""
    norm = float(_norm(e))
    if norm > budget:
        e.mul_(budget / norm)


class _Search:
    """Bookkeeping of a search: the worst iterate, the history, progress reports and stop requests."""

    def __init__(self, progress: ProgressFn | None, total: int):
        self.throttle, self.total = Throttle(progress), total
        self.worst, self.worst_e = -math.inf, None
        self.history: list[tuple[int, float]] = []
        self.step, self.reported, self.stopped = 0, 0, False

    def record(self, value: float, e: torch.Tensor | None, step: bool = True) -> bool:
        """Record the objective of the current iterate (``step``: after a new search step); True if a new worst."""
        self.step += step
        self.history.append((self.step, value))
        new = value > self.worst
        if new and e is not None:
            self.worst = value
            if self.worst_e is None or self.worst_e.shape != e.shape:
                self.worst_e = e.detach().clone()
            else:
                self.worst_e.copy_(e.detach())  # no new allocation per step
        return new

    def report(self) -> None:
        if self.throttle.due(self.step, self.total):
            recent, self.reported = self.history[self.reported:], len(self.history)
            if self.history:
                info = {"objective": self.history[-1][1], "worst": self.worst, "history": recent, "phase": "attack"}
            else:  # the joint scheme's clean warm-up: no objective yet
                info = {"objective": None, "worst": None, "history": [], "phase": "warm-up"}
            self.stopped = self.throttle.report(self.step, self.total, info) or self.stopped


def _gradient_search(problem: Problem, instance: MethodInstance, objective: Objective, budget: float,
                     config: AttackConfig, search: _Search, start: torch.Tensor | None) -> torch.Tensor:
    """Projected gradient ascent with restarts; returns the worst ``e`` found."""
    recon = instance.build()
    mask = problem.sampled.mask.to(problem.device)
    generator = torch.Generator().manual_seed(config.seed)
    n_sampled = max(int(mask.expand_as(problem.y).sum()), 1)

    def value(e: torch.Tensor, grad: bool) -> torch.Tensor:
        with torch.enable_grad() if grad else torch.no_grad():
            return objective(reconstruct(problem.perturbed(e=e), instance, reconstructor=recon))

    for restart in range(config.restarts):
        direction = _direction(tuple(problem.y.shape), mask, generator, problem.device)
        if restart == 0 and start is not None:
            e = start.to(problem.device, torch.complex64) * mask
        else:
            radius = START_FRACTION if restart == 0 else float(torch.rand((), generator=generator))
            e = direction * budget * radius
        _project(e, budget)
        e.requires_grad_(True)
        adam = torch.optim.Adam([e], lr=config.alpha * budget / math.sqrt(n_sampled)) if config.optimizer == "adam" else None
        since = 0
        for _ in range(config.steps):
            current = value(e, grad=True)
            (g,) = torch.autograd.grad(current, e)
            since = 0 if search.record(float(current.detach()), e) else since + 1
            with torch.no_grad():  # g is zero off the sampled entries: e enters only through M (k + e)
                if adam is not None:
                    e.grad = -g  # ascent
                    adam.step()
                else:
                    norm = float(_norm(g))
                    if norm == 0:
                        break  # a flat objective: nothing to climb
                    e.add_(g, alpha=config.alpha * budget / norm)
                _project(e, budget)
            search.report()
            if search.stopped or (config.patience and since >= config.patience):
                break
        if not search.stopped:
            search.record(float(value(e.detach(), grad=False)), e, step=False)  # the last iterate counts too
        if search.stopped:
            break
    return search.worst_e


def _joint_search(problem: Problem, instance: MethodInstance, objective: Objective, budget: float,
                  config: AttackConfig, progress: ProgressFn | None) -> tuple[torch.Tensor, _Search]:
    """The joint scheme: Adam on (fit weights, e); returns the last ``e`` and the search (its total counts
    the refit's steps too, which follow it)."""
    recon = instance.build()
    if not isinstance(recon, FitReconstructor):
        raise ExplorerError(f"{instance.display} declares a data-consistency gradient but exposes no fit to attack")
    op = problem.operator(instance.spec.needs_maps(instance.config))
    gen = recon.generator(problem.y.detach(), op)
    search = _Search(progress, 2 * gen.iterations)
    mask = problem.sampled.mask.to(problem.device)
    k, y0 = problem.kspace, problem.y.detach()
    energy = y0.abs().pow(2).sum().clamp_min(1e-30)
    warm = int(round(gen.iterations * config.joint_warmup))
    alpha = config.step_size or 2.5 / max(gen.iterations - warm, 1)
    n_sampled = max(int(mask.expand_as(y0).sum()), 1)
    generator = torch.Generator().manual_seed(config.seed)
    e = (_direction(tuple(y0.shape), mask, generator, problem.device) * budget * START_FRACTION).requires_grad_(True)
    optimizer = torch.optim.Adam([{"params": list(gen.module.parameters()), "lr": gen.lr},
                                  {"params": [e], "lr": alpha * budget / math.sqrt(n_sampled)}])
    with torch.enable_grad():
        for step in range(1, gen.iterations + 1):
            optimizer.zero_grad(set_to_none=True)
            coils = gen.coil_images()
            adversarial = step > warm
            target = (k + e) * mask if adversarial else y0
            loss = ((fft2c(coils) - target[0]) * mask[0]).abs().pow(2).sum() / energy
            if adversarial:
                deviation = objective(rss(coils, dim=0)[None])
                (loss - config.joint_weight * deviation).backward()
                search.record(float(deviation.detach()), None)
            else:
                loss.backward()
                search.step += 1
            optimizer.step()
            with torch.no_grad():
                _project(e, budget)
            search.report()
            if search.stopped:
                break
    return e.detach(), search


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
    objective = make_objective(config.objective, clean.image, problem.target, problem.device, config.region)
    refit = progress
    if strategy == "gradient":
        search = _Search(progress, config.restarts * config.steps)
        e = _gradient_search(problem, instance, objective, budget, config, search, start)
        refit = None
    else:
        e, search = _joint_search(problem, instance, objective, budget, config, progress)
        if progress is not None:
            refit = _offset(progress, search.total // 2, search.total)
    perturbed = run_method(problem.perturbed(e=e), instance, progress=refit)
    norm = float(_norm(e))
    return AttackResult(instance, config, strategy, clean, perturbed, e.detach().cpu().to(torch.complex64),
                        norm / (budget / config.eps) if config.eps > 0 else 0.0, objective.of_image(perturbed.image),
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


__all__ = ["AttackConfig", "AttackResult", "OPTIMIZERS", "STRATEGIES", "attack", "sweep"]
