"""Un-trained networks: ConvDecoder, Deep Decoder and Deep Image Prior (family "untrained").

Each method fits a randomly initialised generator to the measured k-space of every coil
jointly (no coil maps), keeps the best-loss output, applies data consistency and combines
the coils by root-sum-of-squares (:mod:`explorer.recon.fit`). Architectures live in
:mod:`explorer.recon.untrained_nets`.

Presets: ``preset="fast"`` (default) gives a useful image in about a minute on 2 CPU cores
for a 320x320 8-coil slice; ``preset="paper"`` is the papers' setting (ConvDecoder 8 layers x
160 channels, 20k Adam steps at lr 8e-3; minutes on a GPU). The fields ``iterations``,
``width``, ``layers`` and ``lr`` override the preset when non-zero (0 = the preset's value),
e.g. ``--set convdecoder.preset=paper --set convdecoder.iterations=2000``;
``config.settings()`` gives the resolved values.

Outputs are real RSS magnitudes returned as complex64 (zero phase), like ``zero_filled``.
Fits are deterministic under ``seed`` on the CPU (weights and input are drawn from a
``torch.Generator``); batch items are fitted independently with the same seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import torch
from torch import nn

from explorer.physics import Operator
from explorer.recon import untrained_nets as nets
from explorer.recon.base import Capabilities, ProgressFn, register
from explorer.recon.fit import as_coil_images, consistent_rss, fit, scale_factor


@dataclass(frozen=True)
class FitSettings:
    """Resolved fit settings of an un-trained network.

    Attributes:
        iterations: Adam steps; width: channels per layer; layers: depth (layers or scales);
        lr: Adam learning rate.
    """

    iterations: int
    width: int
    layers: int
    lr: float


PRESETS: dict[str, dict[str, FitSettings]] = {
    "convdecoder": {"fast": FitSettings(400, 32, 6, 8e-3), "paper": FitSettings(20000, 160, 8, 8e-3)},
    "deep_decoder": {"fast": FitSettings(400, 64, 6, 8e-3), "paper": FitSettings(20000, 368, 10, 8e-3)},
    "dip": {"fast": FitSettings(400, 32, 5, 8e-3), "paper": FitSettings(20000, 256, 8, 8e-3)},
}
_SHARED_HELP = {
    "patience": "early stopping: stop after this many steps without a new best loss (0 = run all iterations)",
    "seed": "seed of the network weights and its random input (deterministic on CPU)",
    "amp": "mixed precision (bfloat16 autocast) for the network on CUDA; ignored on CPU",
}


def _settings(self) -> FitSettings:
    """The preset's settings with the non-zero fields of this config applied."""
    base = PRESETS[self._method][self.preset]
    overrides = {k: getattr(self, k) for k in ("iterations", "width", "layers", "lr") if getattr(self, k)}
    return dataclasses.replace(base, **overrides)


def _make_config(method: str, cls_name: str, what: str, layer_word: str):
    """A frozen config dataclass for ``method`` with per-method help texts."""
    fast, paper = PRESETS[method]["fast"], PRESETS[method]["paper"]

    def val(attr):
        return f"0 = the preset's (fast {getattr(fast, attr)}, paper {getattr(paper, attr)})"

    fields = [
        ("preset", str, field(default="fast", metadata={
            "help": "fast: about a minute on 2 CPU cores (320x320, 8 coils); paper: the paper's setting (GPU)",
            "choices": ("fast", "paper")})),
        ("iterations", int, field(default=0, metadata={"help": f"Adam steps; {val('iterations')}", "min": 0, "max": 100000})),
        ("width", int, field(default=0, metadata={"help": f"channels per layer; {val('width')}", "min": 0, "max": 512})),
        ("layers", int, field(default=0, metadata={"help": f"{layer_word}; {val('layers')}", "min": 0, "max": 12})),
        ("lr", float, field(default=0.0, metadata={"help": f"Adam learning rate; {val('lr')}", "min": 0.0, "max": 1.0})),
        ("patience", int, field(default=0, metadata={"help": _SHARED_HELP["patience"], "min": 0, "max": 100000})),
        ("seed", int, field(default=0, metadata={"help": _SHARED_HELP["seed"], "min": 0, "max": 2**31 - 1})),
        ("amp", bool, field(default=False, metadata={"help": _SHARED_HELP["amp"]})),
    ]
    ns = {"settings": _settings, "_method": method, "__module__": __name__,
          "__doc__": f"{what} parameters (frozen; doubles as a cache key). Non-zero fields override the preset."}
    return dataclasses.make_dataclass(cls_name, fields, frozen=True, namespace=ns)


ConvDecoderConfig = _make_config("convdecoder", "ConvDecoderConfig", "ConvDecoder", "conv 3x3 layers (>= 2)")
DeepDecoderConfig = _make_config("deep_decoder", "DeepDecoderConfig", "Deep Decoder", "1x1-conv layers (>= 2)")
DipConfig = _make_config("dip", "DipConfig", "Deep Image Prior", "encoder-decoder scales (>= 1)")


class UntrainedRecon:
    """A reconstructor that fits ``make_net(out_size, out_channels, settings)`` to each batch item.

    ``recon(y, op) = DC(fit(y, op).detach(), y)``: the fit is not differentiated, so the output
    depends on ``y`` under autograd through the data-consistency step only (capability
    ``gradient="data_consistency"``); the robustness loops optimise a fit jointly instead.

    Args:
        make_net: builds the (uninitialised) generator for ``(H, W)`` and ``2 * C`` output channels.
        config: the method's config (``settings()``, ``seed``, ``patience``, ``amp``).
    """

    def __init__(self, make_net: Callable[[tuple[int, int], int, FitSettings], nn.Module], config):
        self.make_net, self.config, self.settings = make_net, config, config.settings()

    def fit(self, y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        """Fitted coil images ``(B, C, H, W)`` complex64 (the best-loss output of each item's fit, detached).

        Batch items are fitted one after another, each from the same seeded network, and reported
        to ``progress`` as one run of ``B * iterations`` steps; after a stop request the remaining
        items are not fitted (their coil images are zero: zero-filled after data consistency).
        """
        if y.ndim != 4 or not y.is_complex():
            raise ValueError(f"y must be complex k-space (B, C, H, W), got {tuple(y.shape)} {y.dtype}")
        b, c, h, w = y.shape
        mask = op.mask.to(y.device)
        settings, config = self.settings, self.config
        coils, stopped = [], False
        for i in range(b):
            mask_i = mask[i if mask.shape[0] > 1 else 0]
            generator = torch.Generator().manual_seed(config.seed)
            net, z = nets.build(partial(self.make_net, (h, w), 2 * c, settings), generator, y.device)
            iterations = 0 if stopped else settings.iterations
            result = fit(net, z, y[i], mask_i, iterations, settings.lr, config.patience, config.amp,
                         progress, step_offset=i * settings.iterations, total=b * settings.iterations)
            stopped = stopped or result.stopped
            coils.append(result.coil_images)
        return torch.stack(coils)

    def generator(self, y: torch.Tensor, op: Operator) -> "Generator":
        """The seeded network this method's fit of ``y`` ``(1, C, H, W)`` starts from (for joint optimisation)."""
        _, c, h, w = y.shape
        net, z = nets.build(partial(self.make_net, (h, w), 2 * c, self.settings),
                            torch.Generator().manual_seed(self.config.seed), y.device)
        return Generator(net, z, scale_factor(net, z, y[0].detach()), self.settings.lr, self.settings.iterations)

    @staticmethod
    def data_consistency(coils: torch.Tensor, y: torch.Tensor, op: Operator) -> torch.Tensor:
        """``x (B, H, W)`` complex64: sampled k-space of ``coils`` ``(B, C, H, W)`` replaced by ``y``, then RSS.

        Differentiable w.r.t. ``y`` (and ``coils``).
        """
        mask = op.mask.to(y.device)
        images = [consistent_rss(coils[i], y[i], mask[i if mask.shape[0] > 1 else 0]) for i in range(y.shape[0])]
        return torch.stack(images).to(torch.complex64)

    def __call__(self, y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        """``recon(y (B, C, H, W), op, progress=None) -> x (B, H, W)`` complex64 (RSS, zero phase)."""
        return self.data_consistency(self.fit(y, op, progress), y, op)


@dataclass
class Generator:
    """A fit's network at its seeded start (:class:`~explorer.recon.base.FitGenerator`).

    Attributes:
        module: the network (train mode); z: its fixed input; scale: the fit's factor ``s`` on ``y``;
        lr, iterations: the fit's settings.
    """

    module: nn.Module
    z: torch.Tensor
    scale: float
    lr: float
    iterations: int

    def coil_images(self) -> torch.Tensor:
        """Coil images ``(C, H, W)`` complex64 in the units of ``y`` (differentiable w.r.t. the weights)."""
        self.module.train()
        return as_coil_images(self.module(self.z)) / self.scale


def untrained_recon(make_net: Callable[[tuple[int, int], int, FitSettings], nn.Module], config) -> UntrainedRecon:
    """The :class:`UntrainedRecon` of ``make_net`` with ``config``."""
    return UntrainedRecon(make_net, config)


CAPABILITIES = Capabilities(gradient="data_consistency", cost="long")


def _convdecoder_net(size, channels, s: FitSettings) -> nn.Module:
    return nets.ConvDecoder(size, channels, s.width, max(s.layers, 2))


def _deep_decoder_net(size, channels, s: FitSettings) -> nn.Module:
    return nets.DeepDecoder(size, channels, s.width, max(s.layers, 2))


def _dip_net(size, channels, s: FitSettings) -> nn.Module:
    return nets.SkipNet(size, channels, s.width, s.layers, skip=4)


@register("convdecoder", "ConvDecoder", "untrained", ConvDecoderConfig,
          "Un-trained ConvDecoder (upsample -> conv3x3 -> ReLU -> BatchNorm) fitted to all coils; data consistency, RSS.",
          capabilities=CAPABILITIES)
def convdecoder(config):
    """ConvDecoder (Darestani & Heckel 2021)."""
    return untrained_recon(_convdecoder_net, config)


@register("deep_decoder", "Deep Decoder", "untrained", DeepDecoderConfig,
          "Un-trained Deep Decoder (1x1 convs, bilinear upsampling, channel norm) fitted to all coils; DC, RSS.",
          capabilities=CAPABILITIES)
def deep_decoder(config):
    """Deep Decoder (Heckel & Hand 2019)."""
    return untrained_recon(_deep_decoder_net, config)


@register("dip", "Deep Image Prior", "untrained", DipConfig,
          "Un-trained encoder-decoder with skips (DIP) fed with fixed noise, fitted to all coils; DC, RSS.",
          capabilities=CAPABILITIES)
def dip(config):
    """Deep Image Prior (Ulyanov et al. 2018) with the multi-coil fitting of Darestani & Heckel."""
    return untrained_recon(_dip_net, config)
