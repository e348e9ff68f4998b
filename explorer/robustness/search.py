"""The two searches of an attack (see :mod:`explorer.robustness.attack`): projected gradient ascent through the whole
reconstruction (methods with an exact gradient) and the joint scheme (fits whose output depends on ``y`` only through
data consistency), with the bookkeeping they share (worst iterate, history, progress, stop requests).

Shapes: perturbations ``e`` and measurements ``(1, C, H, W)`` complex64; masks broadcastable ``(1, 1, H|1, W)``.
"""

from __future__ import annotations

import math

import torch

from explorer.engine import MethodInstance, Problem, reconstruct
from explorer.errors import ExplorerError
from explorer.physics import fft2c, rss
from explorer.recon.base import FitReconstructor, ProgressFn, Throttle
from explorer.robustness.objectives import AttackConfig, Objective

# First start: a random point of norm budget / 10. (The paper's code starts at ||k|| / 1e4, 1/800 of its 0.08
# budget; the clean objective is flat at e = 0, and in float32 so tiny a start can leave its gradient exactly zero.)
START_FRACTION = 0.1


def random_direction(shape: tuple[int, ...], mask: torch.Tensor, generator: torch.Generator, device) -> torch.Tensor:
    """A random unit-norm complex direction on the sampled entries ``(1, C, H, W)``."""
    d = torch.complex(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)).to(device) * mask
    return d / l2norm(d).clamp_min(1e-30)


def l2norm(x: torch.Tensor) -> torch.Tensor:
    """l2 norm of a complex tensor (one pass over its real view, no temporary)."""
    return torch.linalg.vector_norm(torch.view_as_real(x) if x.is_complex() else x)


def project(e: torch.Tensor, budget: float) -> None:
    """Rescale ``e`` in place onto the l2 ball of radius ``budget`` (if outside)."""
    size = float(l2norm(e))
    if size > budget:
        e.mul_(budget / size)


class Search:
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


def gradient_search(problem: Problem, instance: MethodInstance, objective: Objective, budget: float,
                     config: AttackConfig, search: Search, start: torch.Tensor | None) -> torch.Tensor:
    """Projected gradient ascent with restarts; returns the worst ``e`` found."""
    recon = instance.build()
    mask = problem.sampled.mask.to(problem.device)
    generator = torch.Generator().manual_seed(config.seed)
    n_sampled = max(int(mask.expand_as(problem.y).sum()), 1)

    def value(e: torch.Tensor, grad: bool) -> torch.Tensor:
        with torch.enable_grad() if grad else torch.no_grad():
            return objective(reconstruct(problem.perturbed(e=e), instance, reconstructor=recon))

    for restart in range(config.restarts):
        direction = random_direction(tuple(problem.y.shape), mask, generator, problem.device)
        if restart == 0 and start is not None:
            e = start.to(problem.device, torch.complex64) * mask
        else:
            radius = START_FRACTION if restart == 0 else float(torch.rand((), generator=generator))
            e = direction * budget * radius
        project(e, budget)
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
                    norm = float(l2norm(g))
                    if norm == 0:
                        break  # a flat objective: nothing to climb
                    e.add_(g, alpha=config.alpha * budget / norm)
                project(e, budget)
            search.report()
            if search.stopped or (config.patience and since >= config.patience):
                break
        if not search.stopped:
            search.record(float(value(e.detach(), grad=False)), e, step=False)  # the last iterate counts too
        if search.stopped:
            break
    return search.worst_e


def joint_search(problem: Problem, instance: MethodInstance, objective: Objective, budget: float,
                  config: AttackConfig, progress: ProgressFn | None) -> tuple[torch.Tensor, Search]:
    """The joint scheme: Adam on (fit weights, e); returns the last ``e`` and the search (its total counts
    the refit's steps too, which follow it)."""
    recon = instance.build()
    if not isinstance(recon, FitReconstructor):
        raise ExplorerError(f"{instance.display} declares a data-consistency gradient but exposes no fit to attack")
    op = problem.operator(instance.spec.needs_maps(instance.config))
    gen = recon.generator(problem.y.detach(), op)
    search = Search(progress, 2 * gen.iterations)
    mask = problem.sampled.mask.to(problem.device)
    k, y0 = problem.kspace, problem.y.detach()
    energy = y0.abs().pow(2).sum().clamp_min(1e-30)
    warm = int(round(gen.iterations * config.joint_warmup))
    alpha = config.step_size or 2.5 / max(gen.iterations - warm, 1)
    n_sampled = max(int(mask.expand_as(y0).sum()), 1)
    generator = torch.Generator().manual_seed(config.seed)
    e = (random_direction(tuple(y0.shape), mask, generator, problem.device) * budget * START_FRACTION).requires_grad_(True)
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
                project(e, budget)
            search.report()
            if search.stopped:
                break
    return e.detach(), search


__all__ = ["START_FRACTION", "Search", "gradient_search", "joint_search", "l2norm", "project", "random_direction"]
