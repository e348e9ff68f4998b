"""Training data for the trained networks: fastMRI-layout volumes -> masked examples -> losses.

Examples use the reconstructors' own transforms (:mod:`explorer.recon.trained`), so a network
sees in training exactly what it sees in the explorer:

* U-net (fastMRI ``UnetDataTransform`` + ``UnetModule``): input = normalised zero-filled magnitude
  ``(B, h, w)`` cropped to the reference size; target = the reference normalised with the input's
  mean/std and clamped to [-6, 6]; loss = L1.
* VarNet (``VarNetDataTransform`` + ``VarNetModule``): input = masked k-space ``(B, C, H, W)`` and mask
  ``(B, 1, 1, W)``; output cropped to the reference ``(B, h, w)``; loss = ``fastmri.SSIMLoss`` with
  ``data_range`` = the volume's maximum (the file's ``max`` attribute, else the slice's).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.data.fastmri import TARGET_KEYS, FastMRIVolume, list_volumes
from explorer.data.sample_sources import SYNTHETIC, sample_variant
from explorer.data.slice import Slice, anatomy_of
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig, make_mask
from explorer.physics import center_crop
from explorer.recon.fastmri_transforms import CLAMP, EPS, crop_shape, unet_input, varnet_forward


@dataclass(frozen=True)
class SliceRef:
    """One training slice: ``volume`` index into :attr:`SliceSet.volumes` and slice ``index``."""

    volume: int
    index: int


class SliceSet:
    """The slices with a reference image of every ``.h5`` volume under a directory.

    Args:
        directory: searched recursively (:func:`explorer.data.fastmri.list_volumes`).
        challenge: ``"multicoil"`` or ``"singlecoil"``; every volume must be of that kind.
        what: how the directory is named in error messages (``--data`` / ``--val``).

    Raises:
        ExplorerError: missing or empty directory, unreadable file, wrong challenge, no volume
            with a reference (test files, which carry none, are skipped).
    """

    def __init__(self, directory: str | Path, challenge: str, what: str = "--data"):
        self.directory = Path(directory).expanduser()
        self.challenge = challenge
        paths = list_volumes(self.directory)
        if not paths:
            raise ExplorerError(f"{what} {self.directory} holds no .h5 files")
        self.volumes: list[FastMRIVolume] = []
        self.skipped = 0
        for path in paths:
            volume = FastMRIVolume(path)
            if volume.challenge != challenge:
                raise ExplorerError(f"{path.name} in {what} is {volume.challenge} data but --challenge is {challenge}")
            if not volume.has_target:
                self.skipped += 1
                continue
            self.volumes.append(volume)
        if not self.volumes:
            raise ExplorerError(f"{what} {self.directory} has no volumes with reference images ({TARGET_KEYS[challenge]})")
        self.refs = [SliceRef(v, s) for v, vol in enumerate(self.volumes) for s in range(vol.num_slices)]
        found = Counter(v.attrs.get("anatomy") or anatomy_of(v.attrs.get("acquisition")) for v in self.volumes)
        self.anatomy: str | None = found.most_common(1)[0][0]

    def __len__(self) -> int:
        return len(self.refs)

    def read(self, i: int) -> Slice:
        """Slice ``i`` (k-space ``(C, H, W)`` complex64, reference ``(h, w)``)."""
        ref = self.refs[i]
        return self.volumes[ref.volume].read_slice(ref.index)

    def min_shapes(self) -> tuple[int, int]:
        """Smallest k-space side and smallest reference side over all volumes (for architecture checks)."""
        kspace = min(min(v.shape) for v in self.volumes)
        return kspace, min(kspace, min(min(v.header.recon_size[:2]) if v.header else min(v.shape) for v in self.volumes))

    def describe(self) -> dict:
        """Model-card entry: directory name, anatomy, challenge, volume and slice counts, and where the volumes
        come from: ``source`` ``"embedded sample (synthetic)"``, ``"files"`` or ``"mixed"``, with the sample
        variants seen (``samples``: family, contrast, dataset, fov)."""
        specs = [sample_variant(v.attrs) for v in self.volumes]
        synthetic = sum(spec is not None for spec in specs)
        source = SYNTHETIC if synthetic == len(specs) else ("files" if synthetic == 0 else "mixed")
        variants = sorted({json.dumps(spec, sort_keys=True) for spec in specs if spec is not None})
        return {"dir": self.directory.name, "anatomy": self.anatomy, "challenge": self.challenge,
                "volumes": len(self.volumes), "slices": len(self.refs), "skipped_without_reference": self.skipped,
                "source": source, "samples": [json.loads(v) for v in variants]}


class Example(NamedTuple):
    """One masked training slice (batch dim 1), on the training device.

    Attributes:
        y: masked k-space ``(1, C, H, W)`` complex64 (VarNet input).
        mask: bool ``(1, 1, H|1, W)``.
        image: normalised U-net input ``(1, h, w)`` (``None`` for VarNet).
        target: ``(1, h, w)``: normalised and clamped for the U-net, the reference for VarNet.
        max_value: ``(1,)`` the SSIM data range.
        maps: coil maps ``(1, C, H, W)`` for the self-supervised term of a network without its own (the U-net on
            multicoil data), else ``None``.
    """

    y: torch.Tensor
    mask: torch.Tensor
    image: torch.Tensor | None
    target: torch.Tensor
    max_value: torch.Tensor
    maps: torch.Tensor | None = None


def make_example(kind: str, sl: Slice, mask_cfg: MaskConfig, device: torch.device,
                 maps: torch.Tensor | None = None) -> Example:
    """Mask ``sl`` with ``mask_cfg`` (padded columns never sampled) and build the network's input/target.

    Raises:
        ExplorerError: the slice has no reference, or the mask cannot be drawn.
    """
    if sl.target is None:
        raise ExplorerError(f"{sl.meta.source} slice {sl.meta.index} has no reference image")
    sampled = make_mask(mask_cfg, sl.shape, sl.meta.padding)
    mask = sampled.mask.to(device)
    y = sl.kspace.to(device).unsqueeze(0) * mask  # (1, C, H, W)
    crop = crop_shape(sl.shape, tuple(sl.target.shape))
    target = center_crop(torch.from_numpy(sl.target).to(device), crop).unsqueeze(0)
    max_value = torch.tensor([float(sl.meta.attrs.get("max", float(sl.target.max())))], device=device)
    if kind == "unet":
        inp = unet_input(y, mask, crop)
        normed = ((target - inp.mean[:, None, None]) / (inp.std[:, None, None] + EPS)).clamp(-CLAMP, CLAMP)
        return Example(y, mask, inp.image, normed, max_value, maps)
    return Example(y, mask, None, target, max_value, maps)


def batch_loss(kind: str, model: nn.Module, examples: list[Example], ssim_loss: nn.Module | None = None) -> torch.Tensor:
    """Mean training loss over ``examples`` (stacked in groups of equal shapes).

    U-net: L1 between the output and the normalised target; VarNet: ``ssim_loss`` (a
    ``fastmri.SSIMLoss``) between the cropped output and the reference.

    Returns:
        scalar tensor.
    """
    groups: dict[tuple, list[Example]] = {}
    for ex in examples:
        key = (tuple(ex.y.shape), tuple(ex.mask.shape), tuple(ex.target.shape))
        groups.setdefault(key, []).append(ex)
    total = 0.0
    for group in groups.values():
        target = torch.cat([ex.target for ex in group])
        if kind == "unet":
            out = model(torch.cat([ex.image for ex in group]).unsqueeze(1)).squeeze(1)
            loss = F.l1_loss(out, target)
        else:
            out = varnet_forward(model, torch.cat([ex.y for ex in group]), torch.cat([ex.mask for ex in group]))
            out = center_crop(out, tuple(target.shape[-2:]))
            loss = ssim_loss(out.unsqueeze(1), target.unsqueeze(1), data_range=torch.cat([ex.max_value for ex in group]))
        total = total + loss * (len(group) / len(examples))
    return total


LOSSES = {
    "supervised": "fastMRI's: U-net l1 on the normalised image, VarNet SSIM against the reference",
    "self": "self-supervised: ||M (y - k(y))||_1 / ||M y||_1 on the measured data (no reference needed)",
    "both": "the supervised loss plus the self-supervised term",
}


def self_supervised_loss(kind: str, model: nn.Module, examples: list[Example]) -> torch.Tensor:
    """Mean ``||M (y - k(y))||_1 / ||M y||_1`` over ``examples``, ``k`` the network's predicted multi-coil k-space
    (:meth:`~explorer.recon.base.NetworkReconstructor.kspace`, the same term test-time training minimises)."""
    from explorer.engine.core import kspace_loss  # noqa: PLC0415
    from explorer.physics import Operator  # noqa: PLC0415
    from explorer.recon.trained import make_recon  # noqa: PLC0415

    total = 0.0
    for ex in examples:
        recon = make_recon(kind, model, tuple(ex.target.shape[-2:]))
        total = total + kspace_loss(recon.kspace(ex.y, Operator(mask=ex.mask, maps=ex.maps)), ex.y, ex.mask).mean()
    return total / len(examples)


def training_loss(kind: str, model: nn.Module, examples: list[Example], ssim_loss: nn.Module | None = None,
                  loss: str = "supervised") -> torch.Tensor:
    """The training loss :data:`LOSSES` ``loss`` of ``examples`` (scalar)."""
    if loss == "self":
        return self_supervised_loss(kind, model, examples)
    supervised = batch_loss(kind, model, examples, ssim_loss)
    return supervised + self_supervised_loss(kind, model, examples) if loss == "both" else supervised


def val_indices(n: int, limit: int) -> list[int]:
    """All ``n`` slice indices, or ``limit`` evenly spaced ones."""
    if limit <= 0 or limit >= n:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, limit)})
