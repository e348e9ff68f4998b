"""The reconstruction engine: reconstruct (a torch tensor, in the caller's grad mode), then score.

Every loop of the explorer is built on these calls:

* :func:`reconstruct` ``(problem, instance) -> x (1, H, W)`` complex on the problem's device,
  differentiable w.r.t. ``problem.y`` when the caller enables grad and the method declares a gradient;
* :func:`score` ``(problem, x) -> Score``: the magnitude centre-cropped to the reference and the
  fastMRI metrics against it;
* :func:`run_method` = both, timed, under ``torch.no_grad()`` -> :class:`MethodResult` (the app, ``recon``,
  ``evaluate``, ``tune`` and training validation); :func:`run_batch` for methods that batch slices.

Networks: :func:`trainable_copy` rebuilds a weights-owning method around a trainable deep copy of its
shared (frozen) model; :func:`kspace_loss` is the self-supervised loss on a network's predicted k-space.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch

from explorer.engine.problem import Problem
from explorer.errors import ExplorerError
from explorer.metrics import compute_metrics, to_magnitude
from explorer.physics import Operator
from explorer.recon.base import MethodInstance, NetworkReconstructor, ProgressFn, Reconstructor


def as_instance(method: MethodInstance | str, config=None) -> MethodInstance:
    """A :class:`MethodInstance` from an instance, or a registry name (+ optional config)."""
    if isinstance(method, MethodInstance):
        return method
    return MethodInstance(method, method, config)


def reconstruct(problem: Problem, method: MethodInstance | str, progress: ProgressFn | None = None,
                reconstructor: Reconstructor | None = None) -> torch.Tensor:
    """Reconstruct ``problem`` with a method instance, in the caller's grad mode.

    Args:
        problem: the undersampled slice (its ``y`` may require grad).
        method: a :class:`MethodInstance` (or a registry name: default config).
        progress: the method's progress callback (see :mod:`explorer.recon.base`).
        reconstructor: run this instead of ``method.build()`` (e.g. :func:`trainable_copy`'s); coil
            maps are still chosen by ``method``'s capabilities.

    Returns:
        complex image ``(1, H, W)`` on ``problem.device``; under ``torch.enable_grad()`` differentiable
        w.r.t. ``problem.y`` as the method's ``capabilities.gradient`` declares.
    """
    instance = as_instance(method)
    op = problem.operator(instance.spec.needs_maps(instance.config))
    recon = reconstructor if reconstructor is not None else instance.build()
    return recon(problem.y, op, progress=progress)


@dataclass(frozen=True)
class Score:
    """A scored reconstruction.

    Attributes:
        image: magnitude ``(h, w)`` float32, centre-cropped to the reference size.
        metrics: ``{"ssim", "psnr", "nmse"}`` or ``None`` without a reference.
    """

    image: np.ndarray
    metrics: dict[str, float] | None


def score(problem: Problem, x: torch.Tensor) -> Score:
    """Magnitude of ``x`` (``(1, H, W)`` or ``(H, W)``) centre-cropped to the reference, and its metrics under the
    problem's definition (``problem.metric``; the volume's maximum from the file's ``max`` attribute)."""
    image = to_magnitude(x.detach()[0] if x.ndim == 3 else x.detach(), problem.crop)
    volume_max = problem.slice.meta.attrs.get("max")
    metrics = (compute_metrics(problem.target, image, problem.metric, None if volume_max is None else float(volume_max))
               if problem.target is not None else None)
    return Score(image, metrics)


@dataclass(frozen=True, eq=False)
class MethodResult:
    """One method instance's scored output on a :class:`Problem`.

    Attributes:
        method: registry name; label: display name (the instance's); config: the config used.
        image: magnitude ``(h, w)`` float32, centre-cropped to the target size.
        metrics: ``{"ssim", "psnr", "nmse"}`` or ``None`` without a reference.
        seconds: wall time of the reconstruction (coil maps excluded: see ``maps_seconds``).
        maps_seconds: time spent estimating coil maps for it (0 if cached or unused).
        history: ``((step, loss), ...)`` for methods that report a ``"loss"`` (fits), else empty.
        steps: ``(last step reported, total)`` for methods that report progress, else ``None``.
        stopped: True if the progress callback asked the method to stop early (it then
            returned its best estimate so far).
        instance: the instance's label (unique within a comparison).
        notes: what the user should know about this result (e.g. the coil map sets chosen).
    """

    method: str
    label: str
    config: object
    image: np.ndarray
    metrics: dict[str, float] | None
    seconds: float
    maps_seconds: float = 0.0
    history: tuple[tuple[int, float], ...] = ()
    steps: tuple[int, int] | None = None
    stopped: bool = False
    instance: str = ""
    notes: tuple[str, ...] = ()


def loss_history(step: int, info: dict | None) -> list[tuple[int, float]]:
    """The ``(step, loss)`` pairs a progress report carries: its ``"history"``, else its ``"loss"`` at ``step``."""
    info = info or {}
    if info.get("history"):
        return [(int(s), float(v)) for s, v in info["history"]]
    loss = info.get("loss")
    return [(int(step), float(loss))] if isinstance(loss, (int, float)) else []


class _Recorder:
    """Progress callback wrapper recording the loss history and whether a stop was asked."""

    def __init__(self, progress: ProgressFn | None):
        self.progress, self.history, self.steps, self.stopped = progress, [], None, False

    def __call__(self, step: int, total: int, info: dict) -> bool | None:
        self.steps = (int(step), int(total))
        self.history.extend(loss_history(step, info))
        if self.progress is not None and self.progress(step, total, info):
            self.stopped = True
        return True if self.stopped else None


def run_method(problem: Problem, method: MethodInstance | str, config=None, progress: ProgressFn | None = None,
               reconstructor: Reconstructor | None = None) -> MethodResult:
    """Reconstruct ``problem`` (under ``torch.no_grad()``), time it and score it against the reference.

    Args:
        method: a :class:`MethodInstance`, or a registry name with an optional ``config``.
    """
    instance = as_instance(method, config)
    needs_maps = instance.spec.needs_maps(instance.config)
    maps_seconds, notes = 0.0, ()
    if needs_maps:
        ready = problem.has_maps(needs_maps)
        chosen = problem.coil_maps(needs_maps)
        maps_seconds, notes = (0.0 if ready else chosen.seconds), ((chosen.note,) if chosen.note else ())
    notes += tuple(instance.spec.data_notes(instance.config, problem))
    recorder = _Recorder(progress)
    sync(problem.device)
    start = time.perf_counter()
    with torch.no_grad():
        x = reconstruct(problem, instance, progress=recorder, reconstructor=reconstructor)
    sync(problem.device)
    seconds = time.perf_counter() - start
    scored = score(problem, x)
    stopped = recorder.stopped and recorder.steps is not None and recorder.steps[0] < recorder.steps[1]
    return MethodResult(instance.name, instance.display, instance.config, scored.image, scored.metrics, seconds,
                        maps_seconds, tuple(recorder.history), recorder.steps, stopped, instance.label, notes)


def run_batch(problems: list[Problem], method: MethodInstance | str, config=None) -> list[MethodResult]:
    """Reconstruct several problems in one call (one batch through a network), scoring each.

    Every problem must have the same k-space shape and device; methods that use coil maps get
    each problem's own maps stacked. Each result's ``seconds`` is the batch's time divided by its size.

    Raises:
        ExplorerError: the problems differ in shape or device.
    """
    instance = as_instance(method, config)
    if not problems:
        return []
    if len({(tuple(p.y.shape), p.device) for p in problems}) != 1:
        raise ExplorerError("a batch needs slices of one k-space shape on one device")
    device = problems[0].device
    y = torch.cat([p.y for p in problems])  # (B, C, H, W)
    masks = [p.sampled.mask.to(device) for p in problems]
    full = max((tuple(m.shape[-2:]) for m in masks), key=lambda s: s[0])
    mask = torch.cat([m.expand(1, 1, *full) for m in masks])
    maps = None
    choice = instance.spec.needs_maps(instance.config)
    if choice and y.shape[1] > 1:
        each = [p.coil_maps(choice).maps for p in problems]
        if len({tuple(m.shape) for m in each}) > 1:  # "auto" chose different map sets: one at a time
            return [run_method(p, instance) for p in problems]
        maps = torch.cat(each)
    recon = instance.build()
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        x = recon(y, Operator(mask=mask, maps=maps))
    sync(device)
    seconds = (time.perf_counter() - start) / len(problems)
    results = []
    for i, p in enumerate(problems):
        scored = score(p, x[i])
        note = p.coil_maps(choice).note if choice and y.shape[1] > 1 else ""
        notes = ((note,) if note else ()) + tuple(instance.spec.data_notes(instance.config, p))
        results.append(MethodResult(instance.name, instance.display, instance.config, scored.image, scored.metrics,
                                    seconds, instance=instance.label, notes=notes))
    return results


def trainable_copy(method: MethodInstance | Reconstructor) -> NetworkReconstructor:
    """The method's reconstructor rebuilt around a trainable deep copy of its network.

    The shared cached model is untouched (frozen, eval mode); the copy has ``requires_grad=True``
    and stays in eval mode (batch statistics as at inference). Adapt ``copy.module``'s parameters.

    Raises:
        ExplorerError: the method owns no weights (``capabilities.weights`` is False).
    """
    if isinstance(method, MethodInstance):
        if not method.capabilities.weights:
            raise ExplorerError(f"{method.display} has no trained weights to adapt")
        method = method.build()
    if not isinstance(method, NetworkReconstructor):
        raise ExplorerError("this reconstructor exposes no network")
    module = copy.deepcopy(method.module)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(True)
    return method.with_module(module)


def kspace_loss(predicted: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Self-supervised k-space loss ``||M (y - k)||_1 / ||M y||_1`` per batch item ``(B,)``.

    The l1 norm of complex entries as ``|Re| + |Im|`` (the TTT paper's); the denominator is detached.

    Args:
        predicted: a network's predicted k-space ``(B, C, H, W)`` (``NetworkReconstructor.kspace``).
        y: measured k-space ``(B, C, H, W)``.
        mask: bool broadcastable to ``y``: the entries the loss sees.
    """
    diff = torch.view_as_real((y - predicted) * mask).abs().flatten(1).sum(1)
    norm = torch.view_as_real(y * mask).abs().flatten(1).sum(1).detach()
    return diff / norm.clamp_min(torch.finfo(norm.dtype).tiny)


def sync(device: torch.device) -> None:
    """Wait for the device (CUDA) so that wall times measure the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
