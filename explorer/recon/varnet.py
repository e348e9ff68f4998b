"""fastMRI's end-to-end VarNet as a trained-network kind (Sriram et al. 2020).

Fed as ``VarNetDataTransform`` + ``VarNetModule`` feed it: the masked k-space as a real view ``(B, C, H, W, 2)``, the
mask ``(B, 1, 1, W, 1)`` bool, ``num_low_frequencies=None`` (VarNet finds the fully sampled centre itself); the
output is the RSS magnitude, centre-cropped to the reference size. Trained with ``fastmri.SSIMLoss`` against the
reference (``data_range`` = the volume's maximum), Adam 3e-4, multicoil data and column masks only.
"""

from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Any, Mapping

import torch
from torch import nn

from explorer.errors import ExplorerError
from explorer.physics import center_crop
from explorer.recon.checkpoints import count_prefixed, shape_of
from explorer.recon.fastmri_transforms import varnet_forward
from explorer.recon.networks import Example, NetworkKind, Shipped
from explorer.recon.trained import _NetworkRecon, checkpoint_field, crop_field, register_network


@dataclass(frozen=True)
class VarNetConfig:
    """End-to-end VarNet parameters (frozen; doubles as a cache key)."""

    checkpoint: str = checkpoint_field("VarNet")
    crop: int = crop_field()


class VarNetRecon(_NetworkRecon):
    """fastMRI's end-to-end VarNet (sensitivity network included), fed as ``VarNetDataTransform`` feeds it.

    Its output is the RSS of its final k-space's inverse FFT, centre-cropped; its predicted k-space for a
    self-supervised loss goes through ``op``'s ESPIRiT maps from that image, as every network's
    (:meth:`~explorer.recon.trained._NetworkRecon.kspace`), not through its own cascades' k-space: that one keeps
    the measured entries (soft data consistency), so a loss on them is minimised by passing the input through.
    """

    label = "E2E VarNet"

    def _smallest(self, shape, hw) -> int:
        return min(shape)

    def _magnitude(self, y, mask, hw):
        return center_crop(varnet_forward(self.module, y, mask), hw)


def _build(**arch: Any) -> nn.Module:
    from fastmri.models import VarNet  # noqa: PLC0415

    return VarNet(**arch)


def _recognise(state_dict: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """VarNet kwargs from a state dict: ``cascades.{i}`` count, ``cascades.0.model.unet`` chans/pools,
    ``sens_net.norm_unet.unet`` chans/pools."""
    keys = list(state_dict)
    if not any(k.startswith(("cascades.", "sens_net.")) for k in keys):
        return None
    sens, casc = "sens_net.norm_unet.unet.", "cascades.0.model.unet."
    cascade_ids = {int(m.group(1)) for k in keys if (m := re.match(r"cascades\.(\d+)\.", k))}
    try:
        return {
            "num_cascades": max(cascade_ids) + 1 if cascade_ids else 0,
            "sens_chans": shape_of(state_dict, sens + "down_sample_layers.0.layers.0.weight")[0],
            "sens_pools": count_prefixed(keys, sens + "down_sample_layers."),
            "chans": shape_of(state_dict, casc + "down_sample_layers.0.layers.0.weight")[0],
            "pools": count_prefixed(keys, casc + "down_sample_layers."),
        }
    except KeyError as exc:
        raise ExplorerError(f"incomplete VarNet state dict: no {exc.args[0]}") from None


def _example(y, mask, crop, target, max_value, maps) -> Example:
    """Input: the masked k-space; target: the reference itself."""
    return Example(y, mask, None, target, max_value, maps)


def _criterion(device: torch.device):
    from fastmri.losses import SSIMLoss  # noqa: PLC0415

    ssim_loss = SSIMLoss().to(device)

    def ssim(model: nn.Module, group: list[Example]) -> torch.Tensor:
        target = torch.cat([ex.target for ex in group])
        out = varnet_forward(model, torch.cat([ex.y for ex in group]), torch.cat([ex.mask for ex in group]))
        out = center_crop(out, tuple(target.shape[-2:]))
        return ssim_loss(out.unsqueeze(1), target.unsqueeze(1), data_range=torch.cat([ex.max_value for ex in group]))

    return ssim


def _input_side(arch: Mapping[str, Any]) -> tuple[int, str]:
    return max(arch["pools"], arch["sens_pools"]), "k-space"


VARNET = register_network(NetworkKind(
    name="varnet", label="E2E VarNet",
    description="fastMRI end-to-end VarNet: learned coil maps, cascades of U-net + soft data consistency in k-space.",
    build=_build,
    default_arch={"num_cascades": 12, "sens_chans": 8, "sens_pools": 4, "chans": 18, "pools": 4, "mask_center": True},
    official_arch={"num_cascades": 12, "sens_chans": 8, "sens_pools": 4, "chans": 18, "pools": 4, "mask_center": True},
    recognised=("num_cascades", "sens_chans", "sens_pools", "chans", "pools"),
    recognise=_recognise, key_prefixes=("cascades.", "sens_net."), lightning_prefix="varnet.",
    recon=VarNetRecon, config=VarNetConfig, adapt_lr=1e-4, train_lr=3e-4, loss_name="ssim",
    flags={"cascades": ("num_cascades", "cascades (default 12)"),
           "chans": ("chans", "channels of each cascade's U-net (default 18)"),
           "pools": ("pools", "pooling layers of each cascade's U-net (default 4)"),
           "sens_chans": ("sens_chans", "coil-map U-net channels (default 8)"),
           "sens_pools": ("sens_pools", "coil-map U-net pooling layers (default 4)")},
    shipped=Shipped("--cascades 5 --chans 10 --pools 3 --sens-chans 4 --sens-pools 3", "--steps 500 --batch-size 1"),
    tiny={"num_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 1},
    input_side=_input_side, example=_example, criterion=_criterion,
    multicoil_only=True, column_masks_only=True,
))

__all__ = ["VARNET", "VarNetConfig", "VarNetRecon"]
