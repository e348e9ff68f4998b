"""The fitting driver shared by the un-trained networks (ConvDecoder, Deep Decoder, DIP).

A network ``G`` with a fixed input ``z`` outputs ``C`` complex coil images; its weights are
fitted to the measured k-space of one slice by Adam on the data-consistency loss

    L(G) = ||M F G(z) - s y||^2 / ||s y||^2,

(relative, so the reported value is scale-free), keeping the output of the best-loss
iterate. The scale ``s`` (Darestani & Heckel's ``get_scale_factor``) matches the norm of
the network's initial RSS image to that of the zero-filled RSS image, so fits do not
depend on the units of ``y``. :func:`consistent_rss` then replaces the sampled k-space
entries by ``y`` (data consistency) and combines the coils by root-sum-of-squares.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
from torch import nn

from explorer.physics import fft2c, ifft2c, rss
from explorer.recon.base import ProgressFn


class FitResult(NamedTuple):
    """The outcome of one fit.

    Attributes:
        coil_images: complex64 ``(C, H, W)``: the network output with the lowest loss,
            in the units of ``y`` (detached); zeros if no step ran.
        losses: the loss of every step (before that step's update).
        best_loss: the lowest loss (``inf`` if no step ran); ``best_step`` its 1-based step.
        stopped: True if the progress callback asked to stop.
        scale: the factor ``s`` applied to ``y`` during the fit.
    """

    coil_images: torch.Tensor
    losses: list[float]
    best_loss: float
    best_step: int
    stopped: bool
    scale: float


def as_coil_images(out: torch.Tensor) -> torch.Tensor:
    """Network output ``(1, 2C, H, W)`` real -> complex64 coil images ``(C, H, W)`` (channels re, im, re, ...)."""
    out = out[0].float()
    return torch.complex(out[0::2], out[1::2])


def scale_factor(net: nn.Module, z: torch.Tensor, y: torch.Tensor) -> float:
    """``||RSS(G(z))|| / ||RSS(F^-1 y)||`` for the initial network (Darestani & Heckel's scaling).

    Args:
        net: the network (train mode); z: its input ``(1, ...)``; y: k-space ``(C, H, W)``.

    Returns:
        the factor to multiply ``y`` by (1.0 if either norm is zero).
    """
    with torch.no_grad():
        out = rss(as_coil_images(net(z)), dim=0).norm()
        ref = rss(ifft2c(y), dim=0).norm()
    ratio = float(out / ref) if float(ref) > 0 else 1.0
    return ratio if ratio > 0 and ratio == ratio and ratio != float("inf") else 1.0


def fit(net: nn.Module, z: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, iterations: int, lr: float,
        patience: int = 0, amp: bool = False, progress: ProgressFn | None = None,
        step_offset: int = 0, total: int | None = None) -> FitResult:
    """Fit ``net`` so that ``M F G(z)`` matches the measured k-space ``y``.

    Gradients are enabled inside (the contract runs methods under ``torch.no_grad()``).

    Args:
        net: generator with ``2C`` output channels of size ``(H, W)``; trained in place.
        z: its fixed input ``(1, ...)``, on the same device.
        y: measured k-space ``(C, H, W)`` complex (zero where unsampled); not differentiated.
        mask: bool, broadcastable to ``(C, H, W)`` (e.g. ``(1, 1, W)``); True = sampled.
        iterations: Adam steps.
        lr: Adam learning rate.
        patience: stop after this many steps without a new best loss (0 = never).
        amp: run the network in bfloat16 autocast (CUDA only; ignored elsewhere).
        progress: ``progress(step_offset + step, total, {"loss", "best"})`` after every
            step; returning True stops the fit (the best output so far is kept).
        step_offset, total: for reporting several fits as one run (default: 0, ``iterations``).

    Returns:
        :class:`FitResult`.
    """
    y = y.detach()
    maskf = mask.to(y.real.dtype)
    s = scale_factor(net, z, y)
    target = y * s
    energy = (target.abs() ** 2).sum()
    if float(energy) == 0:  # nothing measured: nothing to fit (the result is zero-filled after DC)
        iterations = 0
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    use_amp = amp and z.device.type == "cuda"
    total = iterations if total is None else total
    net.train()
    best, best_loss, best_step, losses, stopped = None, float("inf"), 0, [], False
    with torch.enable_grad():
        for step in range(1, iterations + 1):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext():
                out = net(z)
            coils = as_coil_images(out)
            loss = (((fft2c(coils) - target) * maskf).abs() ** 2).sum() / energy
            loss.backward()
            value = float(loss.detach())
            losses.append(value)
            if value < best_loss:  # the output that produced this loss (weights before the update)
                best, best_loss, best_step = coils.detach().clone(), value, step
            optimizer.step()
            if progress is not None and progress(step_offset + step, total, {"loss": value, "best": best_loss}):
                stopped = True
                break
            if patience and step - best_step >= patience:
                break
    images = torch.zeros_like(y) if best is None else best / s
    return FitResult(images.to(torch.complex64), losses, best_loss, best_step, stopped, s)


def consistent_rss(coil_images: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Data consistency (sampled entries of ``F G`` replaced by ``y``), then RSS.

    Differentiable w.r.t. ``y`` (through the sampled entries).

    Args:
        coil_images: complex ``(C, H, W)`` fitted coil images (units of ``y``).
        y: measured k-space ``(C, H, W)``.
        mask: bool broadcastable to ``(C, H, W)``.

    Returns:
        real ``(H, W)`` root-sum-of-squares image.
    """
    k = torch.where(mask, y, fft2c(coil_images.to(y.dtype)))
    return rss(ifft2c(k), dim=0)
