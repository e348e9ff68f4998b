"""fastMRI's data transforms for its U-net and VarNet, on the explorer's complex tensors.

* U-net (``UnetDataTransform`` + ``UnetModule``): zero-filled image ``ifft2c(y)``, centre-cropped, magnitude
  (coil RSS for multicoil), instance-normalised ``(x - mean) / (std + 1e-11)``, clamped to [-6, 6];
  the output is de-normalised ``out * std + mean``.
* VarNet (``VarNetDataTransform`` + ``VarNetModule``): masked k-space as a real view ``(B, C, H, W, 2)``,
  the mask ``(B, 1, 1, W, 1)`` bool, ``num_low_frequencies=None`` for column masks.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from explorer.physics import safe_sqrt

EPS = 1e-11  # fastMRI's normalisation epsilon
CLAMP = 6.0


def crop_shape(shape: tuple[int, int], crop: int | tuple[int, int]) -> tuple[int, int]:
    """The crop ``(h, w)`` for k-space of size ``shape = (H, W)``: ``crop`` capped per dimension."""
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    return min(int(ch), shape[0]), min(int(cw), shape[1])


def pad_to(image: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Zero-pad a centre crop ``(B, h, w)`` back to ``(B, H, W)`` (inverse of :func:`center_crop`)."""
    h, w = image.shape[-2:]
    top, left = (shape[0] - h) // 2, (shape[1] - w) // 2
    if (h, w) == tuple(shape):
        return image
    return F.pad(image, (left, shape[1] - w - left, top, shape[0] - h - top))


class UnetInput(NamedTuple):
    """U-net input (``UnetDataTransform``).

    Attributes:
        image: normalised, clamped magnitude ``(B, h, w)``.
        mean, std: per-item normalisation ``(B,)``.
    """

    image: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


def unet_input(y: torch.Tensor, mask: torch.Tensor, crop: tuple[int, int]) -> UnetInput:
    """fastMRI's U-net input from measured k-space.

    Args:
        y: complex k-space ``(B, C, H, W)`` (``C = 1``: single-coil, magnitude; else coil RSS).
        mask: bool, broadcastable to ``y`` (``y`` is multiplied by it).
        crop: ``(h, w)`` centre crop of the zero-filled image.

    Returns:
        :class:`UnetInput`.
    """
    import fastmri  # noqa: PLC0415
    from fastmri.data.transforms import complex_center_crop  # noqa: PLC0415

    coils = fastmri.ifft2c(torch.view_as_real(y * mask))  # (B, C, H, W, 2)
    coils = complex_center_crop(coils, crop)
    mag = safe_sqrt((coils**2).sum(dim=-1))  # fastmri.complex_abs, (B, C, h, w)
    image = mag[:, 0] if mag.shape[1] == 1 else safe_sqrt((mag**2).sum(dim=1))  # fastmri.rss
    flat = image.reshape(image.shape[0], -1)
    mean, std = flat.mean(dim=1), flat.std(dim=1)
    image = ((image - mean[:, None, None]) / (std[:, None, None] + EPS)).clamp(-CLAMP, CLAMP)
    return UnetInput(image, mean, std)


def unet_forward(model: nn.Module, inp: UnetInput) -> torch.Tensor:
    """De-normalised U-net output ``(B, h, w)`` (``UnetModule``: ``out * std + mean``)."""
    out = model(inp.image.unsqueeze(1)).squeeze(1)
    return out * inp.std[:, None, None] + inp.mean[:, None, None]


def varnet_mask(mask: torch.Tensor) -> tuple[torch.Tensor, int | None]:
    """VarNet's mask and ``num_low_frequencies`` from an operator mask.

    Args:
        mask: bool ``(B, 1, H|1, W)``.

    Returns:
        ``(mask5, num_low)``: bool ``(B, 1, 1, W, 1)`` for column masks with ``num_low=None`` (VarNet
        finds the centre); bool ``(B, 1, H, W, 1)`` for 2D masks with ``num_low`` = the fully sampled
        centre of the middle row (VarNet's own search reads the first row only).
    """
    mask5 = mask.bool().unsqueeze(-1)
    if mask.shape[-2] == 1:
        return mask5, None
    row = mask[:, 0, mask.shape[-2] // 2, :].to(torch.int8)
    cent = row.shape[1] // 2
    left = torch.argmin(row[:, :cent].flip(1), dim=1)
    right = torch.argmin(row[:, cent:], dim=1)
    return mask5, max(int(2 * torch.min(left, right).min()), 1)


def varnet_forward(model: nn.Module, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """VarNet's RSS magnitude ``(B, H, W)`` from measured k-space ``y`` ``(B, C, H, W)`` and a mask ``(B, 1, H|1, W)``."""
    mask5, num_low = varnet_mask(mask)
    masked = torch.view_as_real(y * mask)  # (B, C, H, W, 2)
    return model(masked, mask5, num_low)

