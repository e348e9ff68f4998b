"""Baselines: zero-filled reconstruction and SENSE by conjugate gradient."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from explorer.physics import Operator, ifft2c, rss
from explorer.recon.base import ProgressFn, register


@dataclass(frozen=True)
class ZeroFilledConfig:
    """Zero-filled reconstruction parameters."""

    combine: str = field(default="rss", metadata={"help": "coil combination: root-sum-of-squares, or SENSE (A^H y with ESPIRiT maps)", "choices": ("rss", "sense")})


@register("zero_filled", "Zero-filled", "baseline", ZeroFilledConfig,
          "Inverse FFT of the zero-filled k-space (RSS over coils, as fastMRI).",
          needs_maps=lambda cfg: cfg.combine == "sense")
def zero_filled(config: ZeroFilledConfig):
    """Zero-filled recon: ``rss(ifft2c(y))`` (real-valued, returned as complex) or ``A^H y``."""

    def recon(y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        if config.combine == "sense" and op.maps is not None:
            return op.adjoint(y)
        return rss(ifft2c(y * op.mask), dim=1).to(y.dtype)

    return recon


@dataclass(frozen=True)
class SenseConfig:
    """SENSE (CG on the normal equations) parameters."""

    iterations: int = field(default=10, metadata={"help": "conjugate-gradient iterations (fixed count)", "min": 1, "max": 500})
    l2: float = field(default=0.0, metadata={"help": "Tikhonov weight lambda in (A^H A + lambda I) x = A^H y (A has unit norm, so lambda is scale-free)", "min": 0.0, "max": 10.0})


@register("sense", "SENSE (CG)", "baseline", SenseConfig,
          "Least-squares SENSE with ESPIRiT maps, solved by conjugate gradient.",
          needs_maps=lambda cfg: True)
def sense(config: SenseConfig):
    """SENSE: ``argmin_x ||A x - y||^2 + lambda ||x||^2`` by ``iterations`` CG steps."""

    def recon(y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        rhs = op.adjoint(y)
        return conjugate_gradient(lambda x: op.normal(x) + config.l2 * x, rhs, config.iterations, progress)

    return recon


def conjugate_gradient(normal, rhs: torch.Tensor, iterations: int, progress: ProgressFn | None = None) -> torch.Tensor:
    """Solve ``normal(x) = rhs`` for Hermitian positive semi-definite ``normal`` by CG.

    Out-of-place throughout, so autograd differentiates through the iterations.

    Args:
        normal: callable image ``(B, H, W)`` -> image ``(B, H, W)``.
        rhs: complex ``(B, H, W)``.
        iterations: fixed number of steps (stops early only on exact convergence).

    Returns:
        complex ``(B, H, W)``.
    """
    x = torch.zeros_like(rhs)
    r = rhs
    p = r
    rs = _dot(r, r)
    eps = torch.finfo(rhs.real.dtype).tiny
    for it in range(iterations):
        ap = normal(p)
        alpha = rs / _dot(p, ap).clamp_min(eps)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = _dot(r, r)
        if progress is not None and progress(it + 1, iterations, {"residual": float(rs_new.sum().sqrt())}):
            break
        if bool((rs_new == 0).all()):
            break
        p = r + (rs_new / rs.clamp_min(eps)) * p
        rs = rs_new
    return x


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real part of <a, b> per batch item, shaped ``(B, 1, 1)`` for broadcasting."""
    return (a.conj() * b).real.sum(dim=(-2, -1), keepdim=True)
