"""The random baseline of an attack: complex white Gaussian perturbations of exactly the attack's budget.

A worst-case drop means little on its own: an ill-conditioned method also loses accuracy under a *random*
perturbation of the same size. Beside every worst case (:mod:`~explorer.robustness.attack`) the explorer
therefore reports the drop under ``draws`` seeded draws of complex white Gaussian noise in the attack's own
k-space: ``e`` on the full multi-coil k-space before the mask (``y' = M (k + e)``), zero off the sampled entries
(the others cannot change a reconstruction), rescaled so that ``||e||_2`` equals the budget
(:func:`~explorer.robustness.objectives.budget_norm`) exactly. Each draw is reconstructed by the method
(:func:`~explorer.engine.run_method` on ``problem.perturbed(e=e)``, the clean data's coil maps) and scored by the
engine; the baseline reports the mean and the sample standard deviation of the drops over the draws (the
robust-nets / SMUG convention: every adversarial error beside Gaussian noise of the same norm).

Cost: ``draws`` reconstructions per method and budget, each as long as the clean one (an un-trained fit is
refitted from scratch per draw). Draw ``i`` has the same direction at every budget (common random numbers: a
sweep's noise curve varies with eps only), from a stream of its own, never the attack's random starts'.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch

from explorer.engine import MethodInstance, MethodResult, Problem, as_instance, run_method
from explorer.errors import ExplorerError
from explorer.recon.base import ProgressFn
from explorer.robustness.objectives import MAX_NOISE_DRAWS, AttackConfig, budget_norm
from explorer.robustness.search import l2norm, random_direction

NOISE_NAME = "noise (Gaussian, same norm)"  # the baseline's objective_name in tables
NOISE_STRATEGY = "random"
#: The noise draws' seeds are ``NOISE_STREAM + seed``: apart from every attack seed (those are below 2**32).
NOISE_STREAM = 2**32
METRICS = ("ssim", "psnr", "nmse")


def noise_draws(problem: Problem, budget: float, draws: int, seed: int = 0) -> list[torch.Tensor]:
    """``draws`` complex white Gaussian perturbations of norm ``budget`` on the sampled entries.

    Args:
        problem: the slice (its ``y`` gives the shape, its mask the sampled entries).
        budget: the absolute l2 norm of every draw (e.g. :func:`~explorer.robustness.objectives.budget_norm`).
        draws: how many (0 = none); seed: the draws' seed (the same seed, the same draws).

    Returns:
        ``draws`` tensors ``(1, C, H, W)`` complex64 on the problem's device, zero off the sampled entries, each of
        l2 norm ``budget``.

    Raises:
        ExplorerError: a negative or non-finite budget, a draw count outside ``[0, MAX_NOISE_DRAWS]``.
    """
    if not (isinstance(draws, int) and not isinstance(draws, bool) and 0 <= draws <= MAX_NOISE_DRAWS):
        raise ExplorerError(f"noise draws must be an integer in [0, {MAX_NOISE_DRAWS}], got {draws!r}")
    if not (math.isfinite(budget) and budget >= 0):
        raise ExplorerError(f"the noise budget must be a finite number >= 0, got {budget!r}")
    mask = problem.sampled.mask.to(problem.device)
    generator = torch.Generator().manual_seed(NOISE_STREAM + int(seed))
    out = []
    for _ in range(draws):
        # a unit direction, rescaled by its measured norm: ||e|| is the budget to float32's precision
        e = random_direction(tuple(problem.y.shape), mask, generator, problem.device)
        out.append(e * (budget / max(float(l2norm(e)), 1e-30)))
    return out


def sample_sd(values: Sequence[float]) -> float | None:
    """The sample standard deviation (``n - 1``), ``None`` below two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


@dataclass(frozen=True, eq=False)
class NoiseBaseline:
    """One method's scores under Gaussian perturbations of one budget's norm.

    Attributes:
        instance: the method instance; config: the attack settings (``eps``, ``budget``, ``seed``, ``noise_draws``).
        clean: the clean result the drops are taken from.
        metrics: per draw the perturbed result's ``{"ssim", "psnr", "nmse"}`` (``None`` without a reference).
        ratios: per draw ``||e|| / ||k||`` (``||y||`` with the measured budget).
        seconds: wall time of all draws; stopped: a stop request ended it (the draws so far are kept).
    """

    instance: MethodInstance
    config: AttackConfig
    clean: MethodResult
    metrics: tuple[dict | None, ...]
    ratios: tuple[float, ...]
    seconds: float
    stopped: bool = False

    @property
    def draws(self) -> int:
        """The draws scored."""
        return len(self.metrics)

    def values(self, name: str) -> list[float]:
        """The perturbed ``name`` (ssim, psnr, nmse) of every draw that has it."""
        return [m[name] for m in self.metrics if m and m.get(name) is not None]

    def drops(self, name: str) -> list[float]:
        """Per draw ``clean - perturbed`` of ``name`` (empty without a reference)."""
        clean = (self.clean.metrics or {}).get(name)
        return [] if clean is None else [clean - v for v in self.values(name)]

    def row(self) -> dict:
        """One flat record like :meth:`~explorer.robustness.attack.AttackResult.row`: ``kind`` ``"noise"``, the
        mean over the draws of the perturbed scores and drops, and their sample standard deviation (``*_sd``)."""
        out = {"label": self.instance.label, "method": self.instance.name, "eps": self.config.eps, "kind": "noise",
               "objective_name": NOISE_NAME,
               "protocol": "paper" if self.config.objective == "paper" else "ours", "budget": self.config.budget,
               "strategy": NOISE_STRATEGY, "draws": self.draws,
               "ratio": sum(self.ratios) / len(self.ratios) if self.ratios else None, "seconds": self.seconds,
               "stopped": self.stopped, "maps": "fixed (clean data)", "seed": self.config.seed}
        for name in METRICS:
            values, drops = self.values(name), self.drops(name)
            out[f"{name}_clean"] = (self.clean.metrics or {}).get(name)
            out[f"{name}_perturbed"] = sum(values) / len(values) if values else None
            out[f"{name}_perturbed_sd"] = sample_sd(values)
            out[f"{name}_drop"] = sum(drops) / len(drops) if drops else None
            out[f"{name}_drop_sd"] = sample_sd(drops)
        return out


def noise_baseline(problem: Problem, method: MethodInstance | str, config: AttackConfig,
                   draws: int | None = None, clean: MethodResult | None = None,
                   progress: ProgressFn | None = None) -> NoiseBaseline:
    """Reconstruct and score ``method`` under ``draws`` Gaussian perturbations of the budget ``config`` gives.

    Args:
        problem: the clean undersampled slice (its coil maps serve every perturbed reconstruction).
        method: the instance (any method: nothing here depends on its gradient).
        config: the attack's settings: ``eps`` and ``budget`` fix the norm, ``seed`` the draws.
        draws: how many (default ``config.noise_draws``).
        clean: the instance's clean result, if already computed (else computed here).
        progress: ``progress(step, total, info)`` with ``info["phase"] == "noise"`` and ``info["draw"]``: a fit's
            own steps during each draw, then ``(draw, draws)`` after it; returning True stops (the draws scored
            so far are kept, the stopped fit's draw included).

    Raises:
        ExplorerError: a bad draw count; a budget this slice cannot give (``full`` on a test file, zero data).
    """
    instance = as_instance(method)
    draws = config.noise_draws if draws is None else draws
    began = time.perf_counter()
    clean = clean if clean is not None else run_method(problem, instance)
    budget = budget_norm(problem.kspace, problem.y, config.budget, config.eps, problem.slice.acquired_mask is None)
    unit = budget / config.eps if config.eps > 0 else 0.0
    metrics, ratios, stopped = [], [], False
    for index, e in enumerate(noise_draws(problem, budget, draws, config.seed)):
        inner = None
        if progress is not None:
            def inner(step, total, info, _index=index):
                return progress(step, total, {**info, "phase": "noise", "draw": _index + 1})
        result = run_method(problem.perturbed(e=e), instance, progress=inner)
        metrics.append(result.metrics)
        ratios.append(float(l2norm(e)) / unit if unit else 0.0)
        stopped = result.stopped
        if not stopped and progress is not None:
            stopped = bool(progress(index + 1, draws, {"phase": "noise", "draw": index + 1}))
        if stopped:
            break
    return NoiseBaseline(instance, config, clean, tuple(metrics), tuple(ratios), time.perf_counter() - began, stopped)


def pooled(groups: Sequence[tuple[float, float | None, int]]) -> tuple[float, float | None, int]:
    """Mean, sample sd and count of the union of groups given as ``(mean, sample sd, n)`` (e.g. slices' draws)."""
    groups = [(m, s, n) for m, s, n in groups if n > 0 and m is not None and math.isfinite(m)]
    total = sum(n for _, _, n in groups)
    if not total:
        return float("nan"), None, 0
    mean = sum(m * n for m, _, n in groups) / total
    if total < 2:
        return mean, None, total
    squares = sum((n - 1) * (s or 0.0) ** 2 + n * (m - mean) ** 2 for m, s, n in groups)
    return mean, math.sqrt(squares / (total - 1)), total


__all__ = ["METRICS", "NOISE_NAME", "NOISE_STRATEGY", "NOISE_STREAM", "NoiseBaseline", "noise_baseline", "noise_draws",
           "pooled", "sample_sd"]
