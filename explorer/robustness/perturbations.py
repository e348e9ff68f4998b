"""What is done with perturbations an attack found: apply them to other methods (transfer), and view them."""

from __future__ import annotations

import torch

from explorer.engine import MethodInstance, MethodResult, Problem, run_method
from explorer.physics import center_crop, combine_sets
from explorer.robustness.attack import AttackResult
from explorer.robustness.noise import NOISE_NAME, NoiseBaseline, noise_baseline


def perturbation_image(problem: Problem, e: torch.Tensor) -> torch.Tensor:
    """``|A^H e|`` centre-cropped to the reference size: the perturbation as the image domain sees it.

    ``A = M F S`` with the clean data's ESPIRiT maps (``auto`` map sets, combined by root-sum-of-squares;
    single-coil: no maps).

    Args:
        e: a perturbation ``(1, C, H, W)`` (any device).

    Returns:
        float32 ``(h, w)`` on the CPU.
    """
    op = problem.operator(problem.slice.num_coils > 1)
    with torch.no_grad():
        image = combine_sets(op.adjoint(e.to(problem.device, torch.complex64)), op)
    return center_crop(image.abs(), problem.crop)[0].float().cpu()


def transfer(problem: Problem, sources: list[AttackResult], targets: list[MethodInstance],
             cleans: dict[str, MethodResult] | None = None, noise: bool = True) -> list[dict]:
    """Apply each source's perturbation to every target instance, then (``noise``, for every budget whose settings
    ask for noise draws) the random baseline: Gaussian perturbations of the same norm applied to every target.

    Returns:
        rows ``{"source", "target", "eps", "ssim_clean", "ssim_perturbed", "ssim_drop", "psnr_clean",
        "psnr_perturbed", "psnr_drop"}``; the diagonal is the source's own attack. The noise rows have ``source``
        :data:`~explorer.robustness.noise.NOISE_NAME`, the means over the draws and ``draws``,
        ``ssim_drop_sd``, ``psnr_drop_sd`` (sample sd); a target's own baseline (:func:`~explorer.robustness.attack.with_noise`)
        is reused: the same seed, budget and norm give the same draws.
    """
    cleans = dict(cleans or {})
    rows = []
    for source in sources:
        e = source.e.to(problem.device)
        for target in targets:
            if target.label == source.instance.label:
                clean, perturbed = source.clean, source.perturbed
            else:
                if target.label not in cleans:
                    cleans[target.label] = run_method(problem, target)
                clean, perturbed = cleans[target.label], run_method(problem.perturbed(e=e), target)
            row = {"source": source.instance.label, "target": target.label, "eps": source.config.eps}
            for name in ("ssim", "psnr"):
                a, b = (clean.metrics or {}).get(name), (perturbed.metrics or {}).get(name)
                row.update({f"{name}_clean": a, f"{name}_perturbed": b, f"{name}_drop": None if a is None else a - b})
            rows.append(row)
    budgets = {s.config.eps: s.config for s in sources if s.config.noise_draws} if noise else {}
    for eps, config in sorted(budgets.items()):
        for target in targets:
            baseline = next((s.noise for s in sources if s.instance.label == target.label and _same_draws(s.noise, config)),
                            None)
            if baseline is None:
                if target.label not in cleans:
                    cleans[target.label] = run_method(problem, target)
                baseline = noise_baseline(problem, target, config, clean=cleans[target.label])
            n = baseline.row()
            row = {"source": NOISE_NAME, "target": target.label, "eps": eps, "draws": n["draws"]}
            for name in ("ssim", "psnr"):
                row.update({f"{name}_{k}": n[f"{name}_{k}"] for k in ("clean", "perturbed", "drop", "drop_sd")})
            rows.append(row)
    return rows


def _same_draws(baseline: NoiseBaseline | None, config) -> bool:
    """Whether ``baseline`` holds every draw ``config`` asks for (same budget, norm and seed: the same draws)."""
    return (baseline is not None and not baseline.stopped and baseline.draws == config.noise_draws
            and (baseline.config.eps, baseline.config.budget, baseline.config.seed) == (config.eps, config.budget, config.seed))


__all__ = ["perturbation_image", "transfer"]
