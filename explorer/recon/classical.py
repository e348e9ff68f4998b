"""Baselines: zero-filled reconstruction and SENSE by conjugate gradient."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from explorer.physics import Operator, combine_sets, fft2c, ifft2c, rss
from explorer.recon.base import Capabilities, ProgressFn, Throttle, register

OUTPUTS: tuple[str, ...] = ("dc_rss", "image")
MAP_SETS: tuple[str, ...] = ("auto", "1", "2")  # = explorer.engine.problem.MAP_SETS
MAPS_HELP = ("ESPIRiT map sets: 1, 2 (soft SENSE, for a field of view smaller than the object: folded anatomy), "
             "or auto (2 where the second eigenvalue map shows folding)")
_OUTPUT_HELP = "dc_rss: measured k-space re-inserted into the coil images, then root-sum-of-squares; image: the SENSE image x"


def combine(x: torch.Tensor, y: torch.Tensor, op: Operator, output: str) -> torch.Tensor:
    """A method's output ``(B, H, W)`` from its SENSE image ``x`` (``op.image_shape``: ``(B, H, W)``, or
    ``(B, K, H, W)`` with ``K`` map sets) and the measurements ``y`` ``(B, C, H, W)``.

    ``"image"``: ``x`` itself (with several map sets: their root-sum-of-squares, as BART's ``rss``).
    ``"dc_rss"``: the coil images ``S x`` with the measured k-space re-inserted where sampled, combined by
    root-sum-of-squares: comparable with fastMRI's RSS reference, which keeps the signal (and noise)
    outside the ESPIRiT support that ``x`` lacks.
    """
    if output == "image":
        return combine_sets(x, op)
    images = ifft2c(y * op.mask + fft2c(op.coil_images(x)) * ~op.mask)
    return images[:, 0] if op.maps is None else rss(images, dim=1).to(x.dtype)


@dataclass(frozen=True)
class ZeroFilledConfig:
    """Zero-filled reconstruction parameters."""

    combine: str = field(default="rss", metadata={"help": "coil combination: root-sum-of-squares, or SENSE (A^H y with ESPIRiT maps)", "choices": ("rss", "sense")})


@register("zero_filled", "Zero-filled", "baseline", ZeroFilledConfig,
          "Inverse FFT of the zero-filled k-space (RSS over coils, as fastMRI).",
          needs_maps=lambda cfg: cfg.combine == "sense",
          capabilities=Capabilities(gradient="exact", batches=True, cost="instant"))
def zero_filled(config: ZeroFilledConfig):
    """Zero-filled recon: ``rss(ifft2c(y))`` (real-valued, returned as complex) or ``A^H y``."""

    def recon(y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        if config.combine == "sense" and op.maps is not None:
            return combine_sets(op.adjoint(y), op)
        return rss(ifft2c(y * op.mask), dim=1).to(y.dtype)

    return recon


@dataclass(frozen=True)
class SenseConfig:
    """SENSE (CG on the normal equations) parameters."""

    iterations: int = field(default=10, metadata={"help": "conjugate-gradient iterations (fixed count)", "min": 1, "max": 500})
    l2: float = field(default=0.0, metadata={"help": "Tikhonov weight lambda in (A^H A + lambda I) x = A^H y (A has unit norm, so lambda is scale-free)", "min": 0.0, "max": 10.0})
    output: str = field(default="dc_rss", metadata={"help": _OUTPUT_HELP, "choices": OUTPUTS})
    maps: str = field(default="auto", metadata={"help": MAPS_HELP, "choices": MAP_SETS})


@register("sense", "SENSE (CG)", "baseline", SenseConfig,
          "Least-squares SENSE with ESPIRiT maps, solved by conjugate gradient.",
          needs_maps=lambda cfg: cfg.maps, capabilities=Capabilities(gradient="exact", cost="instant"))
def sense(config: SenseConfig):
    """SENSE: ``argmin_x ||A x - y||^2 + lambda ||x||^2`` by ``iterations`` CG steps."""

    def recon(y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        rhs = op.adjoint(y)
        x = conjugate_gradient(lambda x: op.normal(x) + config.l2 * x, rhs, config.iterations, progress)
        return combine(x, y, op, config.output)

    return recon


def conjugate_gradient(normal, rhs: torch.Tensor, iterations: int, progress: ProgressFn | None = None) -> torch.Tensor:
    """Solve ``normal(x) = rhs`` for Hermitian positive semi-definite ``normal`` by CG.

    Out-of-place throughout, so autograd differentiates through the iterations. No host
    synchronisation per iteration: the residual is read only when progress is due.

    Args:
        normal: callable image ``(B, ...)`` -> image ``(B, ...)`` (e.g. ``(B, H, W)`` or ``(B, K, H, W)``).
        rhs: complex ``(B, ...)``.
        iterations: fixed number of steps (stops early only on exact convergence).

    Returns:
        complex ``(B, ...)``.
    """
    x = torch.zeros_like(rhs)
    r = rhs
    p = r
    rs = _dot(r, r)
    eps = torch.finfo(rhs.real.dtype).tiny
    throttle = Throttle(progress)
    for it in range(iterations):
        ap = normal(p)
        alpha = rs / _dot(p, ap).clamp_min(eps)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = _dot(r, r)
        if throttle.due(it + 1, iterations):
            residual = rs_new.sum().sqrt()
            if throttle.report(it + 1, iterations, {"residual": float(residual)}) or float(residual) == 0:
                break
        p = r + (rs_new / rs.clamp_min(eps)) * p  # exact convergence (r = 0) leaves x fixed: p = 0, alpha = 0
        rs = rs_new
    return x


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real part of <a, b> per batch item, shaped ``(B, 1, ..., 1)`` for broadcasting."""
    return (a.conj() * b).real.sum(dim=tuple(range(1, a.ndim)), keepdim=True)
