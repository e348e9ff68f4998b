"""The training schedule, examples built by ``torch.utils.data.DataLoader`` workers, and mixed precision.

* :func:`batches`: which slices every step trains on (one permutation per epoch from a seeded ``torch.Generator``)
  and :func:`step_seed`: each item's mask seed. :func:`explorer.training.train.train` follows the same rule in its
  loop; the loader checks that both agree at every step.
* ``--workers N`` (``N > 0``): :func:`example_loader` reads and masks the slices and builds each network kind's
  examples on the CPU in ``N`` worker processes, ahead of the optimizer; :func:`on_device` moves them to the training
  device and attaches the ESPIRiT maps of the self-supervised term (computed, once per slice, in the main process).
  The examples are those of ``N = 0`` (built in the training process, on the training device): identical on the CPU;
  on CUDA the kind's input transforms (e.g. the U-net's zero-filled magnitude) run on the CPU instead of the GPU,
  so they match to float rounding. Each item's mask depends only on ``(seed, step, item)``, never on a worker.
* ``--amp bf16``: :func:`autocast` runs the forward pass and the loss under ``torch.autocast`` with ``bfloat16`` on
  the training device's type (CPU or CUDA); the weights, the optimizer and the checkpoint stay float32. ``off`` (the
  default) is no context at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import ContextManager, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.networks import Example
from explorer.training.examples import SliceSet, make_example, mask_slice

AMP_MODES = ("off", "bf16")


def step_seed(seed: int, step: int, item: int) -> int:
    """Mask seed of batch item ``item`` at step ``step`` (deterministic, well mixed)."""
    return int(np.random.SeedSequence([seed, step, item]).generate_state(1)[0])


def check_amp(amp: str, device: torch.device) -> None:
    """``amp`` is one of :data:`AMP_MODES` and usable on ``device``.

    Raises:
        ExplorerError: an unknown mode; ``bf16`` on a CUDA device without bfloat16 support.
    """
    if amp not in AMP_MODES:
        raise ExplorerError(f"--amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ExplorerError("--amp bf16 needs a GPU with bfloat16 support; use --amp off")


def autocast(amp: str, device: torch.device) -> ContextManager:
    """The mixed-precision context of the forward pass and loss: ``torch.autocast(device.type, torch.bfloat16)`` for
    ``"bf16"``, a no-op context for ``"off"``."""
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def batches(n: int, batch_size: int, rng_state: torch.Tensor, step: int, epoch_start: int,
            total: int) -> Iterator[tuple[int, tuple[int, ...]]]:
    """The ``(step, slice indices)`` of every step from ``step`` up to ``total``.

    Args:
        n: training slices; batch_size: slices per step (the last batch of an epoch may be shorter).
        rng_state: the shuffling generator's state at the start of the current epoch (``torch.Generator.get_state``).
        step, epoch_start: the next step and the step the current epoch began at.
        total: the step to stop before.

    Yields:
        ``(step, indices)``: the slices ``perm[pos * batch_size:(pos + 1) * batch_size]`` of the epoch's permutation
        (``pos = step - epoch_start``); a new permutation once an epoch's slices are used up.
    """
    gen = torch.Generator()
    gen.set_state(rng_state)
    perm = torch.randperm(n, generator=gen)
    while step < total:
        pos = step - epoch_start
        yield step, tuple(perm[pos * batch_size:(pos + 1) * batch_size].tolist())
        step += 1
        if (step - epoch_start) * batch_size >= n:
            epoch_start = step
            perm = torch.randperm(n, generator=gen)


class StepExamples(Dataset):
    """One step's examples, built on the CPU (a DataLoader worker's job).

    Indexed by ``(step, indices)`` (what :func:`batches` yields); an item is ``(step, indices, examples)`` with one
    :class:`~explorer.recon.networks.Example` (batch dim 1, no maps) per index, masked with
    ``step_seed(seed, step, item)``; with ``masked=True`` the items hold the
    :class:`~explorer.training.examples.MaskedSlice` instead (robust training perturbs them before the kind builds
    its example).
    """

    def __init__(self, kind: str, slices: SliceSet, mask_cfg: MaskConfig, seed: int, masked: bool = False):
        self.kind, self.slices, self.mask_cfg, self.seed, self.masked = kind, slices, mask_cfg, seed, masked

    def __getitem__(self, key: tuple[int, tuple[int, ...]]) -> tuple[int, tuple[int, ...], list]:
        step, indices = key
        cpu = torch.device("cpu")
        build = mask_slice if self.masked else (lambda sl, cfg, device: make_example(self.kind, sl, cfg, device))
        examples = [build(self.slices.read(i), dataclasses.replace(self.mask_cfg, seed=step_seed(self.seed, step, j)), cpu)
                    for j, i in enumerate(indices)]
        return step, indices, examples


def _as_is(item):
    """The DataLoader's collate function: an item is already one step."""
    return item


def example_loader(kind: str, slices: SliceSet, mask_cfg: MaskConfig, seed: int, workers: int,
                   schedule: Iterator[tuple[int, tuple[int, ...]]], device: torch.device,
                   masked: bool = False) -> DataLoader:
    """A DataLoader yielding ``(step, indices, examples)`` for every ``(step, indices)`` of ``schedule``, built by
    ``workers`` processes (pinned memory when ``device`` is CUDA); ``masked``: the masked slices instead of the
    examples (:class:`StepExamples`)."""
    return DataLoader(StepExamples(kind, slices, mask_cfg, seed, masked), sampler=schedule, batch_size=None,
                      num_workers=workers, collate_fn=_as_is, pin_memory=device.type == "cuda")


def on_device(example: Example, device: torch.device, maps: torch.Tensor | None) -> Example:
    """``example``'s tensors on ``device`` (non-blocking from pinned memory), with ESPIRiT ``maps`` ``(1, C, H, W)``
    (or ``None``) attached, as :func:`~explorer.training.examples.make_example` would have built it there."""
    moved = [None if t is None else t.to(device, non_blocking=True) for t in example]
    return Example(*moved)._replace(maps=maps)
