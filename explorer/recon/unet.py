"""fastMRI's U-net as a trained-network kind (Ronneberger et al. 2015; Zbontar et al. 2018).

Fed as fastMRI's ``UnetDataTransform`` + ``UnetModule`` feed it: the zero-filled image ``ifft2c(y)``, centre-cropped to
the reference size, magnitude (coil RSS for multicoil), instance-normalised ``(x - mean) / (std + 1e-11)`` and clamped
to [-6, 6]; the output is de-normalised ``out * std + mean``. Trained with L1 between the output and the reference
normalised by the input's mean and std (clamped), Adam 1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from explorer.errors import ExplorerError
from explorer.recon.checkpoints import count_prefixed, shape_of
from explorer.recon.fastmri_transforms import CLAMP, EPS, unet_forward, unet_input
from explorer.recon.networks import Example, NetworkKind, Shipped
from explorer.recon.trained import DEFAULT_CROP, _NetworkRecon, checkpoint_field, crop_field, register_network


@dataclass(frozen=True)
class UnetConfig:
    """U-net parameters (frozen; doubles as a cache key)."""

    checkpoint: str = checkpoint_field("U-net")
    crop: int = crop_field()


class UnetRecon(_NetworkRecon):
    """fastMRI's U-net fed as ``UnetDataTransform`` feeds it (see the module docstring); its predicted k-space is
    :meth:`~explorer.recon.trained._NetworkRecon.kspace` (through ``op``'s ESPIRiT maps)."""

    label = "U-net"

    def __init__(self, module: nn.Module, crop: int | tuple[int, int] = DEFAULT_CROP):
        if (getattr(module, "in_chans", 1), getattr(module, "out_chans", 1)) != (1, 1):
            raise ExplorerError(f"this U-net has {module.in_chans} input / {module.out_chans} output channels; "
                                "the explorer's U-net maps a magnitude image to a magnitude image (1 / 1)")
        super().__init__(module, crop)

    def _pool_count(self, module: nn.Module) -> int:
        return int(getattr(module, "num_pool_layers", 0))

    def _magnitude(self, y, mask, hw):
        return unet_forward(self.module, unet_input(y, mask, hw))


def _build(**arch: Any) -> nn.Module:
    from fastmri.models import Unet  # noqa: PLC0415

    return Unet(**arch)


def _recognise(state_dict: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """U-net kwargs from a state dict: ``down_sample_layers.0.layers.0.weight`` is ``(chans, in_chans, 3, 3)``, the
    number of ``down_sample_layers`` is ``num_pool_layers``, ``up_conv.{pools-1}.1.weight`` is ``(out_chans, ...)``."""
    if "down_sample_layers.0.layers.0.weight" not in state_dict:
        return None
    first = shape_of(state_dict, "down_sample_layers.0.layers.0.weight")
    pools = count_prefixed(list(state_dict), "down_sample_layers.")
    try:
        out_chans = shape_of(state_dict, f"up_conv.{pools - 1}.1.weight")[0]
    except KeyError as exc:
        raise ExplorerError(f"incomplete U-net state dict: no {exc.args[0]}") from None
    return {"in_chans": first[1], "out_chans": out_chans, "chans": first[0], "num_pool_layers": pools}


def _example(y, mask, crop, target, max_value, maps) -> Example:
    """Input: the normalised zero-filled magnitude; target: the reference normalised with the input's mean and std,
    clamped (``UnetDataTransform``)."""
    inp = unet_input(y, mask, crop)
    normed = ((target - inp.mean[:, None, None]) / (inp.std[:, None, None] + EPS)).clamp(-CLAMP, CLAMP)
    return Example(y, mask, inp.image, normed, max_value, maps)


def _criterion(device: torch.device):
    def l1(model: nn.Module, group: list[Example]) -> torch.Tensor:
        out = model(torch.cat([ex.image for ex in group]).unsqueeze(1)).squeeze(1)
        return F.l1_loss(out, torch.cat([ex.target for ex in group]))

    return l1


def _input_side(arch: Mapping[str, Any]) -> tuple[int, str]:
    return arch["num_pool_layers"], "reference"


UNET = register_network(NetworkKind(
    name="unet", label="U-net",
    description="fastMRI U-net trained end to end: zero-filled RSS magnitude in, de-aliased magnitude out.",
    build=_build,
    default_arch={"in_chans": 1, "out_chans": 1, "chans": 32, "num_pool_layers": 4, "drop_prob": 0.0},
    official_arch={"in_chans": 1, "out_chans": 1, "chans": 256, "num_pool_layers": 4, "drop_prob": 0.0},
    recognised=("in_chans", "out_chans", "chans", "num_pool_layers"),
    recognise=_recognise, key_prefixes=("down_sample_layers.",), lightning_prefix="unet.",
    recon=UnetRecon, config=UnetConfig, adapt_lr=1e-5, train_lr=1e-3, loss_name="l1 (normalised image)",
    flags={"chans": ("chans", "channels of the first conv layer (default 32)"),
           "pools": ("num_pool_layers", "pooling layers (default 4)")},
    # Sized to train in about 40 minutes on 2 CPU cores and to run interactively there. The knee U-net is trained
    # with the self-supervised term too: test-time training helps it more (its card).
    shipped=Shipped("--chans 16 --pools 4", "--steps 600 --batch-size 4",
                    {"knee": "--loss both --snapshot-every 100 "}),
    tiny={"chans": 4, "num_pool_layers": 2},
    input_side=_input_side, example=_example, criterion=_criterion,
))

__all__ = ["UNET", "UnetConfig", "UnetRecon"]
