"""Trained networks: fastMRI's U-net and end-to-end VarNet behind the reconstructor contract.

Both wrap ``fastmri.models`` themselves and reproduce fastMRI's data transforms:

* U-net (``UnetDataTransform`` + ``UnetModule``): zero-filled image ``ifft2c(y)``, centre-cropped to
  the reference size, magnitude (coil RSS for multicoil), instance-normalised ``(x - mean) / (std +
  1e-11)`` and clamped to [-6, 6]; the output is de-normalised ``out * std + mean``.
* VarNet (``VarNetDataTransform`` + ``VarNetModule``): masked k-space as a real view ``(B, C, H, W, 2)``,
  the mask ``(B, 1, 1, W, 1)`` bool, ``num_low_frequencies=None`` (VarNet finds the fully sampled
  centre itself); the output is the RSS magnitude, centre-cropped to the reference size.

The contract returns a complex image ``(B, H, W)`` of the k-space size: the cropped magnitude
(zero phase), zero-padded back to ``(H, W)`` (metrics crop it again). The crop is ``crop x crop``
capped at the k-space size (fastMRI's references are 320x320).

Reconstructors run on the device of ``y`` with a cached, shared model
(:func:`explorer.recon.model_store.load_model`) that they never modify; they run under
``torch.inference_mode`` unless a gradient is needed (``y`` or the model's parameters require
grad and grad mode is on): outputs are differentiable w.r.t. ``y``. :func:`make_recon` builds a
reconstructor around any model (e.g. a deep copy adapted at test time).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from explorer.device import get_device
from explorer.errors import ExplorerError
from explorer.physics import Operator, center_crop
from explorer.recon import checkpoints as ckpts
from explorer.recon import model_store
from explorer.recon.base import ProgressFn, Reconstructor, register

EPS = 1e-11  # fastMRI's normalisation epsilon
CLAMP = 6.0
DEFAULT_CROP = 320

_CHECKPOINT_HELP = ("auto: the shipped checkpoint trained on the data's anatomy; knee / brain: that shipped "
                    "checkpoint; otherwise a .pt file (from `python -m explorer train`, or a published fastMRI {what} "
                    "state dict, also Lightning-style)")
_CROP_HELP = ("side of the centre crop the network sees and returns (fastMRI's reference size: 320); capped at the "
              "k-space size; outside it the output is zero")


@dataclass(frozen=True)
class UnetConfig:
    """U-net parameters (frozen; doubles as a cache key)."""

    checkpoint: str = field(default="auto", metadata={"help": _CHECKPOINT_HELP.format(what="U-net")})
    crop: int = field(default=DEFAULT_CROP, metadata={"help": _CROP_HELP, "min": 16, "max": 4096})


@dataclass(frozen=True)
class VarNetConfig:
    """End-to-end VarNet parameters (frozen; doubles as a cache key)."""

    checkpoint: str = field(default="auto", metadata={"help": _CHECKPOINT_HELP.format(what="VarNet")})
    crop: int = field(default=DEFAULT_CROP, metadata={"help": _CROP_HELP, "min": 16, "max": 4096})


KIND_OF_CONFIG = {UnetConfig: "unet", VarNetConfig: "varnet"}


# ----------------------------------------------------------------------------- transforms


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
    mag = _safe_sqrt((coils**2).sum(dim=-1))  # fastmri.complex_abs, (B, C, h, w)
    image = mag[:, 0] if mag.shape[1] == 1 else _safe_sqrt((mag**2).sum(dim=1))  # fastmri.rss
    flat = image.reshape(image.shape[0], -1)
    mean, std = flat.mean(dim=1), flat.std(dim=1)
    image = ((image - mean[:, None, None]) / (std[:, None, None] + EPS)).clamp(-CLAMP, CLAMP)
    return UnetInput(image, mean, std)


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``x.sqrt()`` (the same values) with a zero instead of a NaN gradient where ``x == 0``.

    Zero-filled images can hold exact zeros; fastMRI's ``complex_abs`` / ``rss`` would then give NaN
    gradients w.r.t. the k-space.
    """
    positive = x > 0
    return torch.where(positive, x, torch.ones_like(x)).sqrt() * positive


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


# ----------------------------------------------------------------------------- reconstructors


def make_recon(kind: str, model: nn.Module, crop: int | tuple[int, int] = DEFAULT_CROP) -> Reconstructor:
    """A reconstructor around ``model`` (never modified; must sit on the device of ``y``).

    Args:
        kind: ``"unet"`` or ``"varnet"``.
        model: ``fastmri.models.Unet`` (1 in / 1 out channel) or ``VarNet``.
        crop: crop side (or ``(h, w)``), capped at the k-space size.

    Returns:
        ``recon(y (B, C, H, W), op, progress=None) -> x (B, H, W)`` complex64, zero outside the crop.
    """
    if kind not in ckpts.KINDS:
        raise ExplorerError(f"unknown model kind {kind!r}")
    pools = _pool_count(kind, model)
    if kind == "unet" and (getattr(model, "in_chans", 1), getattr(model, "out_chans", 1)) != (1, 1):
        raise ExplorerError(f"this U-net has {model.in_chans} input / {model.out_chans} output channels; "
                            "the explorer's U-net maps a magnitude image to a magnitude image (1 / 1)")

    def recon(y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        if y.ndim != 4 or not y.is_complex():
            raise ValueError(f"y must be complex k-space (B, C, H, W), got {tuple(y.shape)} {y.dtype}")
        shape = tuple(y.shape[-2:])
        hw = crop_shape(shape, crop)
        smallest = min(hw) if kind == "unet" else min(shape)
        if smallest < 2 ** pools:
            raise ExplorerError(f"a {min(hw)}-pixel image is too small for this {ckpts.LABELS[kind]} ({pools} pooling layers)")
        mask = op.mask.to(y.device)
        need_grad = torch.is_grad_enabled() and (y.requires_grad or any(p.requires_grad for p in model.parameters()))
        with contextlib.nullcontext() if need_grad else torch.inference_mode():
            if kind == "unet":
                magnitude = unet_forward(model, unet_input(y, mask, hw))
            else:
                magnitude = center_crop(varnet_forward(model, y, mask), hw)
            x = torch.complex(magnitude, torch.zeros_like(magnitude))
            x = pad_to(x, shape)
        if not need_grad:
            with torch.no_grad():
                x = x.clone()  # an ordinary tensor: inference tensors cannot be saved for a later backward
        if progress is not None:
            progress(1, 1, {})
        return x

    return recon


def _pool_count(kind: str, model: nn.Module) -> int:
    if kind == "unet":
        return int(getattr(model, "num_pool_layers", 0))
    unets = [m for m in model.modules() if hasattr(m, "num_pool_layers")]
    return max((int(m.num_pool_layers) for m in unets), default=0)


def _factory(kind: str):
    def factory(config) -> Reconstructor:
        device = model_store.device_key(get_device())  # fail early (missing / refused / unusable file), warm the cache
        recons = {str(device): make_recon(kind, model_store.load_model(config.checkpoint, kind, device), config.crop)}

        def recon(y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
            key = str(model_store.device_key(y.device))
            if key not in recons:
                recons[key] = make_recon(kind, model_store.load_model(config.checkpoint, kind, y.device), config.crop)
            return recons[key](y, op, progress)

        return recon

    return factory


def _anatomy_defaults(anatomy: str | None) -> dict[str, str]:
    return {"checkpoint": anatomy if anatomy in ckpts.ANATOMIES else "knee"}


@register("unet", "U-net", "trained", UnetConfig,
          "fastMRI U-net trained end to end: zero-filled RSS magnitude in, de-aliased magnitude out.",
          anatomy_defaults=_anatomy_defaults, describe=lambda config, anatomy: describe(config, anatomy),
          cache_token=lambda config: file_token(config))
def unet(config: UnetConfig) -> Reconstructor:
    """fastMRI's U-net (Ronneberger et al. 2015; Zbontar et al. 2018) from a checkpoint."""
    return _factory("unet")(config)


@register("varnet", "E2E VarNet", "trained", VarNetConfig,
          "fastMRI end-to-end VarNet: learned coil maps, cascades of U-net + soft data consistency in k-space.",
          anatomy_defaults=_anatomy_defaults, describe=lambda config, anatomy: describe(config, anatomy),
          cache_token=lambda config: file_token(config))
def varnet(config: VarNetConfig) -> Reconstructor:
    """End-to-end variational network (Sriram et al. 2020) from a checkpoint."""
    return _factory("varnet")(config)


# ----------------------------------------------------------------------------- labels for the app


def checkpoint_anatomy(config) -> str | None:
    """Anatomy the config's checkpoint was trained on (``"knee"`` / ``"brain"`` / ``None`` unknown)."""
    return model_store.checkpoint_anatomy(KIND_OF_CONFIG[type(config)], config.checkpoint)


def describe(config, anatomy: str | None) -> str:
    """One line naming the checkpoint and any anatomy shift, e.g. ``"knee checkpoint · on brain data: anatomy shift"``.

    Args:
        config: a :class:`UnetConfig` / :class:`VarNetConfig`.
        anatomy: the data's anatomy (``SliceMeta.anatomy``).
    """
    return model_store.describe_checkpoint(KIND_OF_CONFIG[type(config)], config.checkpoint, anatomy)


def file_token(config) -> tuple[str, int, int]:
    """``(resolved checkpoint path, mtime_ns, size)``: results cached for one file version only.

    Raises:
        ExplorerError: the checkpoint cannot be resolved (missing file).
    """
    path = model_store.resolve(config.checkpoint, KIND_OF_CONFIG[type(config)]).resolve()
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size
