"""Training data for the trained networks: fastMRI-layout volumes -> masked examples -> losses.

Each network kind (:mod:`explorer.recon.networks`) builds its own examples with its reconstructor's transforms, so a
network sees in training exactly what it sees in the explorer (e.g. the U-net's normalised zero-filled magnitude,
the VarNet's masked k-space), and gives its supervised loss; here they are masked, grouped and summed, with the
self-supervised k-space term every kind shares.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from explorer.data.fastmri import TARGET_KEYS, FastMRIVolume, list_volumes
from explorer.data.sample_sources import SYNTHETIC, sample_variant
from explorer.data.slice import Slice, anatomy_of
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig, make_mask
from explorer.physics import center_crop
from explorer.recon.fastmri_transforms import crop_shape
from explorer.recon.networks import Example, get_network


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


class MaskedSlice(NamedTuple):
    """One masked training slice before a network kind builds its example (batch dim 1).

    Attributes:
        y: masked k-space ``M k`` ``(1, C, H, W)`` complex64.
        mask: bool ``(1, 1, H|1, W)`` (padded columns never sampled).
        crop: ``(h, w)`` the reference's crop (:func:`~explorer.recon.fastmri_transforms.crop_shape`).
        target: the reference, centre-cropped, ``(1, h, w)`` float32.
        max_value: ``(1,)`` the SSIM data range.
        kspace_norm: ``||k||_2`` of the slice's fully sampled multi-coil k-space (a float): the unit of the
            robust-training noise level and budget (:mod:`explorer.training.robust`), as of an attack's budget.
    """

    y: torch.Tensor
    mask: torch.Tensor
    crop: tuple[int, int]
    target: torch.Tensor
    max_value: torch.Tensor
    kspace_norm: float

    def to(self, device: torch.device) -> "MaskedSlice":
        """The same slice with its tensors on ``device`` (non-blocking from pinned memory)."""
        return self._replace(**{name: getattr(self, name).to(device, non_blocking=True)
                                for name in ("y", "mask", "target", "max_value")})


def mask_slice(sl: Slice, mask_cfg: MaskConfig, device: torch.device) -> MaskedSlice:
    """Mask ``sl`` with ``mask_cfg`` (padded columns never sampled): the pieces of a training example.

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
    norm = float(torch.linalg.vector_norm(torch.view_as_real(sl.kspace)))
    return MaskedSlice(y, mask, crop, target, max_value, norm)


def example_of(kind: str, masked: MaskedSlice, maps: torch.Tensor | None = None,
               e: torch.Tensor | None = None) -> Example:
    """Network kind ``kind``'s example of a masked slice, its measured data perturbed by ``e`` if given.

    Args:
        kind: a network kind; masked: :func:`mask_slice`; maps: ESPIRiT maps ``(1, C, H, W)`` or ``None``.
        e: a k-space perturbation ``(1, C, H, W)`` complex64 (may require grad): the example's measured data is
            ``M (k + e) = y + M e``, the attack's threat model (:mod:`explorer.robustness.attack`); ``None`` = clean.

    Returns:
        the kind's :class:`~explorer.recon.networks.Example` (its input and normalised target built from the
        perturbed data, as the kind's transform builds them from any measured data).
    """
    y = masked.y if e is None else masked.y + e * masked.mask
    return get_network(kind).example(y, masked.mask, masked.crop, masked.target, masked.max_value, maps)


def make_example(kind: str, sl: Slice, mask_cfg: MaskConfig, device: torch.device,
                 maps: torch.Tensor | None = None) -> Example:
    """Mask ``sl`` with ``mask_cfg`` (padded columns never sampled) and build network kind ``kind``'s example.

    Raises:
        ExplorerError: the slice has no reference, or the mask cannot be drawn.
    """
    return example_of(kind, mask_slice(sl, mask_cfg, device), maps)


Criterion = Callable[[nn.Module, list[Example]], torch.Tensor]


def criterion(kind: str, device: torch.device) -> Criterion:
    """Network kind ``kind``'s supervised loss on ``device``: ``loss(model, examples of one shape) -> scalar``."""
    return get_network(kind).criterion(device)


def batch_loss(model: nn.Module, examples: list[Example], supervised: Criterion) -> torch.Tensor:
    """Mean supervised loss over ``examples``, stacked in groups of equal shapes (``supervised``: :func:`criterion`).

    Returns:
        scalar tensor.
    """
    groups: dict[tuple, list[Example]] = {}
    for ex in examples:
        key = (tuple(ex.y.shape), tuple(ex.mask.shape), tuple(ex.target.shape))
        groups.setdefault(key, []).append(ex)
    total = 0.0
    for group in groups.values():
        total = total + supervised(model, group) * (len(group) / len(examples))
    return total


LOSSES = {
    "supervised": "the network kind's (fastMRI's: U-net l1 on the normalised image, VarNet SSIM against the reference)",
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


def training_loss(kind: str, model: nn.Module, examples: list[Example], supervised: Criterion,
                  loss: str = "supervised") -> torch.Tensor:
    """The training loss :data:`LOSSES` ``loss`` of ``examples`` (scalar; ``supervised``: :func:`criterion`)."""
    if loss == "self":
        return self_supervised_loss(kind, model, examples)
    value = batch_loss(model, examples, supervised)
    return value + self_supervised_loss(kind, model, examples) if loss == "both" else value


def val_indices(n: int, limit: int) -> list[int]:
    """All ``n`` slice indices, or ``limit`` evenly spaced ones."""
    if limit <= 0 or limit >= n:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, limit)})
