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
from typing import Callable, NamedTuple

import torch
from torch import nn

from explorer.physics import fft2c, ifft2c, rss
from explorer.recon.base import ProgressFn, Throttle

PATIENCE_CHECK = 25  # on a GPU, the early-stopping rule reads the best step this often (a synchronisation)


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
        step_offset: int = 0, total: int | None = None,
        snapshot: Callable[[int, torch.Tensor], None] | None = None) -> FitResult:
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
        progress: ``progress(step_offset + step, total, {"loss", "best", "history"})``, at most every
            :data:`~explorer.recon.base.PROGRESS_INTERVAL` seconds and after the last step, with
            ``history`` the ``(step, loss)`` of every step since the previous report; returning
            True stops the fit (the best output so far is kept).
        step_offset, total: for reporting several fits as one run (default: 0, ``iterations``).
        snapshot: ``snapshot(updates, coil images (C, H, W))`` at every step, before its update: the output of the
            weights after ``updates`` Adam steps, detached, in the units of ``y`` (e.g. to watch the fit).

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
    throttle = Throttle(progress)
    # The best iterate is tracked on the device (no host synchronisation per step); the patience
    # rule reads it every step on the CPU, and on a GPU only every PATIENCE_CHECK steps or when reporting.
    check_every = 1 if z.device.type == "cpu" else PATIENCE_CHECK
    net.train()
    best = None
    best_loss = torch.full((), float("inf"), device=y.device)
    best_step = torch.zeros((), dtype=torch.long, device=y.device)
    losses: list[torch.Tensor] = []
    reported = 0  # losses[:reported] have been reported
    stopped = False
    with torch.enable_grad():
        for step in range(1, iterations + 1):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext():
                out = net(z)
            coils = as_coil_images(out)
            if snapshot is not None:
                snapshot(step - 1, coils.detach() / s)
            loss = (((fft2c(coils) - target) * maskf).abs() ** 2).sum() / energy
            loss.backward()
            value = loss.detach()
            losses.append(value)
            improved = value < best_loss  # the output that produced this loss (weights before the update)
            best = coils.detach().clone() if best is None else torch.where(improved, coils.detach(), best)
            best_step = torch.where(improved, step, best_step)
            best_loss = torch.minimum(best_loss, value)
            optimizer.step()
            if throttle.due(step_offset + step, total):
                start = reported
                reported = len(losses)
                recent = torch.stack(losses[start:]).tolist()  # one synchronisation per report
                history = [(step_offset + start + j + 1, v) for j, v in enumerate(recent)]
                if throttle.report(step_offset + step, total, {"loss": recent[-1], "best": float(best_loss),
                                                               "history": history}):
                    stopped = True
                    break
            if patience and step % check_every == 0 and step - int(best_step) >= patience:
                break
    images = torch.zeros_like(y) if best is None else best / s
    history = torch.stack(losses).tolist() if losses else []
    return FitResult(images.to(torch.complex64), history, float(best_loss), int(best_step), stopped, s)


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
