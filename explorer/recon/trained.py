"""Trained networks behind the reconstructor contract: what every registered network kind shares.

Each kind (:mod:`explorer.recon.networks`; the built-in ones in :mod:`explorer.recon.unet` and
:mod:`explorer.recon.varnet`) wraps its ``torch.nn.Module`` in a reconstructor built on :class:`_NetworkRecon`, which
reproduces fastMRI's data transforms (:mod:`explorer.recon.fastmri_transforms`) and returns a complex image
``(B, H, W)`` of the k-space size: the network's magnitude inside the crop (zero phase), zero-padded back to
``(H, W)`` (metrics crop it again). The crop is ``crop x crop`` capped at the k-space size (fastMRI's references are
320x320).

Reconstructors run on the device of ``y`` with a cached, shared model (:func:`explorer.recon.model_store.load_model`)
that they never modify; they run under ``torch.inference_mode`` unless a gradient is needed (``y`` or the model's
parameters require grad and grad mode is on): outputs are differentiable w.r.t. ``y``. They are
:class:`~explorer.recon.base.NetworkReconstructor` s: ``module`` is the network, ``with_module`` rebuilds the
reconstructor around another one (e.g. a deep copy adapted at test time), and ``kspace(y, op)`` is the predicted
multi-coil k-space of a self-supervised loss.

:func:`register_network` registers a kind and its method (same name, family ``"trained"``, a checkpoint parameter).
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import field, replace
from pathlib import Path

import torch
from torch import nn

from explorer.data.slice import key_anatomy
from explorer.device import get_device
from explorer.errors import ExplorerError
from explorer.physics import Operator, center_crop, combine_sets, fft2c
from explorer.recon import checkpoints as ckpts
from explorer.recon import model_store
from explorer.recon.base import Capabilities, ProgressFn, register
from explorer.recon.fastmri_transforms import crop_shape, pad_to
from explorer.recon.networks import NetworkKind, add_network, get_network, kind_of_config

DEFAULT_CROP = 320

_CHECKPOINT_HELP = ("auto: the shipped checkpoint trained on the data's anatomy; knee / brain: that shipped "
                    "checkpoint; otherwise a .pt file (from `python -m explorer train`, or a published fastMRI {what} "
                    "state dict, also Lightning-style)")
_CROP_HELP = ("side of the centre crop the network sees and returns (fastMRI's reference size: 320); capped at the "
              "k-space size; outside it the output is zero")


def checkpoint_field(what: str):
    """The ``checkpoint`` field of a network's config (``what``: the network's name in the help)."""
    return field(default="auto", metadata={"help": _CHECKPOINT_HELP.format(what=what)})


def crop_field():
    """The ``crop`` field of a network's config."""
    return field(default=DEFAULT_CROP, metadata={"help": _CROP_HELP, "min": 16, "max": 4096})


# ----------------------------------------------------------------------------- reconstructors


class _NetworkRecon(abc.ABC):
    """A reconstructor around a fastMRI network (a :class:`~explorer.recon.base.NetworkReconstructor`).

    The module is never modified here; it must sit on the device of ``y``. Runs under
    ``torch.inference_mode`` unless a gradient is needed (grad mode on and ``y`` or a parameter
    requires grad), so outputs are differentiable w.r.t. ``y`` (and the weights of a trainable copy).
    Subclasses give :meth:`_magnitude` (the network's magnitude image inside the crop); :meth:`kspace` (the predicted
    k-space of a self-supervised loss) is the same for every network.

    Args:
        module: the network.
        crop: crop side (or ``(h, w)``), capped at the k-space size.
    """

    label = "network"

    def __init__(self, module: nn.Module, crop: int | tuple[int, int] = DEFAULT_CROP):
        self.module, self.crop = module, crop
        self.pools = self._pool_count(module)

    def with_module(self, module: nn.Module) -> "_NetworkRecon":
        """The same reconstructor around ``module`` (e.g. a trainable deep copy)."""
        return type(self)(module, self.crop)

    def _pool_count(self, module: nn.Module) -> int:
        unets = [m for m in module.modules() if hasattr(m, "num_pool_layers")]
        return max((int(m.num_pool_layers) for m in unets), default=0)

    def _smallest(self, shape: tuple[int, int], hw: tuple[int, int]) -> int:
        return min(hw)

    def _check(self, y: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
        if y.ndim != 4 or not y.is_complex():
            raise ValueError(f"y must be complex k-space (B, C, H, W), got {tuple(y.shape)} {y.dtype}")
        shape = tuple(y.shape[-2:])
        hw = crop_shape(shape, self.crop)
        smallest = self._smallest(shape, hw)
        if smallest < 2 ** (self.pools + 1):  # the bottleneck needs >= 2x2 pixels (instance normalisation)
            raise ExplorerError(f"a {smallest}-pixel image is too small for this {self.label} ({self.pools} pooling layers)")
        return shape, hw

    def _grad_context(self, y: torch.Tensor):
        need = torch.is_grad_enabled() and (y.requires_grad or any(p.requires_grad for p in self.module.parameters()))
        return need, (contextlib.nullcontext() if need else torch.inference_mode())

    @abc.abstractmethod
    def _magnitude(self, y: torch.Tensor, mask: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """The network's magnitude image ``(B, h, w)`` inside the crop ``hw``."""

    def kspace(self, y: torch.Tensor, op: Operator) -> torch.Tensor:
        """The predicted multi-coil k-space ``F S x`` ``(B, C, H, W)`` of the network's image, through ``op``'s ESPIRiT
        maps ``S`` (the papers' self-supervised loss ``||M (y - F S f(y))||``, for every network).

        The network outputs a magnitude. Its complex image ``x`` takes the phase of the SENSE-combined zero-filled
        image ``A^H y`` (single-coil: the zero-filled image itself), and outside the crop (where the network has no
        output) that image itself. With ``K`` map sets the magnitude is shared among the sets in the proportions of
        ``A^H y``: ``x_k = |x| (A^H y)_k / RSS_k(A^H y)``. With fully sampled ``y = F S x*`` and unit-norm maps,
        ``A^H y = x*``: a network that returns ``|x*|`` predicts ``y`` exactly (zero loss); one that passes its
        measured k-space through (its image the zero-filled one) does not (aliasing stays in ``F S x``).
        """
        shape, hw = self._check(y)
        need_grad, context = self._grad_context(y)
        with context:
            zero_filled = op.adjoint(y)  # A^H y: (B, H, W), or (B, K, H, W) with K map sets
            magnitude = self._magnitude(y, op.mask.to(y.device), hw)
            support = pad_to(torch.ones_like(magnitude), shape) > 0
            if zero_filled.ndim == 3:
                phase = torch.sgn(center_crop(zero_filled, hw))
            else:  # the magnitude shared among the sets as A^H y shares it: x_k = |x| (A^H y)_k / RSS(A^H y)
                norm = combine_sets(zero_filled, op).abs().unsqueeze(1)
                phase = center_crop(zero_filled / torch.where(norm > 0, norm, torch.ones_like(norm)), hw)
                magnitude, support = magnitude.unsqueeze(1), support.unsqueeze(1)
            inside = pad_to(magnitude.to(phase.dtype) * phase, shape)
            x = torch.where(support, inside, zero_filled)
            k = fft2c(op.coil_images(x))
        return self._as_tensor(k, need_grad)


    def __call__(self, y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        """``x (B, H, W)`` complex64: the network's magnitude (zero phase) inside the crop, zero outside."""
        shape, hw = self._check(y)
        mask = op.mask.to(y.device)
        need_grad, context = self._grad_context(y)
        with context:
            magnitude = self._magnitude(y, mask, hw)
            x = pad_to(torch.complex(magnitude, torch.zeros_like(magnitude)), shape)
        if progress is not None:
            progress(1, 1, {})
        return self._as_tensor(x, need_grad)

    def _as_tensor(self, x: torch.Tensor, need_grad: bool) -> torch.Tensor:
        """An ordinary tensor: inference tensors cannot be saved for a later backward."""
        if need_grad:
            return x
        with torch.no_grad():
            return x.clone()


def make_recon(kind: str, model: nn.Module, crop: int | tuple[int, int] = DEFAULT_CROP) -> _NetworkRecon:
    """A reconstructor around ``model`` of network kind ``kind``.

    Returns:
        the kind's reconstructor: ``recon(y (B, C, H, W), op, progress=None) -> x (B, H, W)`` complex64, zero
        outside the crop.

    Raises:
        ExplorerError: unknown kind.
    """
    return get_network(kind).recon(model, crop)


class CheckpointRecon:
    """A method's reconstructor: the shared cached model of a checkpoint, loaded per device of ``y``.

    ``module`` is the model on the compute device (frozen, eval mode: never modify it);
    :meth:`with_module` gives a fixed-module reconstructor (e.g. around a trainable deep copy).
    """

    def __init__(self, kind: str, checkpoint: str, crop: int):
        self.kind, self.checkpoint, self.crop = kind, checkpoint, crop
        device = model_store.device_key(get_device())  # fail early (missing / refused / unusable file), warm the cache
        self._default = str(device)
        self._recons = {self._default: make_recon(kind, model_store.load_model(checkpoint, kind, device), crop)}

    @property
    def module(self) -> nn.Module:
        """The shared model on the compute device (frozen: deep-copy it to adapt it)."""
        return self._recons[self._default].module

    def _for(self, device: torch.device) -> _NetworkRecon:
        key = str(model_store.device_key(device))
        if key not in self._recons:
            self._recons[key] = make_recon(self.kind, model_store.load_model(self.checkpoint, self.kind, device), self.crop)
        return self._recons[key]

    def with_module(self, module: nn.Module) -> _NetworkRecon:
        """A reconstructor around ``module`` instead of the shared model."""
        return self._recons[self._default].with_module(module)

    def kspace(self, y: torch.Tensor, op: Operator) -> torch.Tensor:
        """The predicted multi-coil k-space ``(B, C, H, W)`` (see :class:`UnetRecon` / :class:`VarNetRecon`)."""
        return self._for(y.device).kspace(y, op)

    def __call__(self, y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        return self._for(y.device)(y, op, progress)


CAPABILITIES = Capabilities(gradient="exact", weights=True, batches=True, cost="interactive")


def _anatomy_defaults(key: str | None) -> dict[str, str]:
    anatomy = key_anatomy(key)
    return {"checkpoint": anatomy if anatomy in ckpts.ANATOMIES else "knee"}


def register_network(kind: NetworkKind) -> NetworkKind:
    """Register a network kind and its reconstruction method (same name; the shipped checkpoint trained on the
    data's anatomy by default).

    Raises:
        ValueError / RuntimeError: the name is taken.
    """
    add_network(kind)
    name = kind.name
    register(name, kind.label, "trained", kind.config, kind.description, anatomy_defaults=_anatomy_defaults,
             describe=lambda config, anatomy: describe(config, anatomy),
             cache_token=lambda config: file_token(config),
             capabilities=replace(CAPABILITIES, adapt_lr=kind.adapt_lr),
             weights_file=lambda config: weights_file(config),
             data_notes=lambda config, problem: model_store.shift_notes(name, config.checkpoint, problem),
             )(lambda config: CheckpointRecon(name, config.checkpoint, config.crop))
    return kind


# ----------------------------------------------------------------------------- labels for the app


def checkpoint_anatomy(config) -> str | None:
    """Anatomy the config's checkpoint was trained on (``"knee"`` / ``"brain"`` / ``None`` unknown)."""
    return model_store.checkpoint_anatomy(kind_of_config(config).name, config.checkpoint)


def describe(config, anatomy: str | None) -> str:
    """One line naming the checkpoint and any anatomy shift, e.g. ``"knee checkpoint · on brain data: anatomy shift"``.

    Args:
        config: a network kind's config.
        anatomy: the data's anatomy (``SliceMeta.anatomy``).
    """
    return model_store.describe_checkpoint(kind_of_config(config).name, config.checkpoint, anatomy)


def file_token(config) -> tuple[str, int, int]:
    """``(resolved checkpoint path, mtime_ns, size)``: results cached for one file version only.

    Raises:
        ExplorerError: the checkpoint cannot be resolved (missing file).
    """
    path = weights_file(config)
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def weights_file(config) -> Path:
    """The resolved checkpoint file of a configured network.

    Raises:
        ExplorerError: the checkpoint cannot be resolved (missing file).
    """
    return model_store.resolve(config.checkpoint, kind_of_config(config).name).resolve()


__all__ = ["DEFAULT_CROP", "CheckpointRecon", "checkpoint_anatomy", "checkpoint_field", "crop_field", "describe",
           "file_token", "make_recon", "register_network", "weights_file"]
