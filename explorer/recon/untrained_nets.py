"""Un-trained image generators: ConvDecoder, Deep Decoder and the DIP encoder-decoder.

Each network maps a fixed random input ``z`` (``(1, *net.input_shape)``) to ``out_channels``
real channels of exactly ``out_size``; the fitting driver (:mod:`explorer.recon.fit`) reads
them as ``out_channels // 2`` complex coil images (channel ``2c`` real, ``2c + 1`` imaginary).

* :class:`ConvDecoder` (Darestani & Heckel 2021): blocks of nearest upsampling -> conv 3x3
  -> ReLU -> BatchNorm, a last conv 3x3 -> ReLU -> BatchNorm, then a 1x1 conv to the
  outputs; no biases. The upsampled sizes grow geometrically from the input to the output
  size, so odd output sizes are hit exactly.
* :class:`DeepDecoder` (Heckel & Hand 2019): the same with 1x1 convolutions and bilinear
  upsampling (conv -> upsample -> ReLU -> BatchNorm), so only the upsampling mixes pixels.
* :class:`SkipNet` (Ulyanov et al. 2018, DIP): an encoder-decoder with strided-conv
  downsampling, nearest upsampling and 1x1-conv skip branches at every scale, fed with
  full-resolution noise.

Networks are built on the ``meta`` device and initialised from a ``torch.Generator``
(:func:`build`), so a seed fixes weights and input without touching the global RNG.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

Size = tuple[int, int]


def aspect_size(out_size: Size, long_side: int) -> Size:
    """An input grid with ``long_side`` pixels along the longer axis and the output's aspect.

    Args:
        out_size: output ``(H, W)``.
        long_side: pixels along the longer axis (clipped to the output).

    Returns:
        ``(h, w)`` with ``h / w ~ H / W``, each at least 1 and at most the output size.
    """
    h, w = out_size
    scale = long_side / max(h, w)
    return (max(1, min(h, round(h * scale))), max(1, min(w, round(w * scale))))


def geometric_sizes(in_size: Size, out_size: Size, steps: int) -> list[Size]:
    """Sizes after each of ``steps`` upsamplings, growing geometrically; the last is ``out_size``.

    Args:
        in_size: ``(h, w)`` of the input grid.
        out_size: final ``(H, W)``.
        steps: number of upsamplings (>= 1).

    Returns:
        ``steps`` sizes, non-decreasing, ending exactly at ``out_size``.
    """
    ratios = [(o / i) ** (1.0 / steps) for o, i in zip(out_size, in_size)]
    sizes = [tuple(min(o, math.ceil(i * r**n)) for i, o, r in zip(in_size, out_size, ratios)) for n in range(1, steps)]
    return [*sizes, tuple(out_size)]


class ConvDecoder(nn.Module):
    """ConvDecoder: ``layers`` conv 3x3 blocks of ``width`` channels, then a 1x1 conv.

    Args:
        out_size: output ``(H, W)``.
        out_channels: output channels (``2 * coils``).
        width: channels of every hidden layer.
        layers: number of conv 3x3 layers (>= 2): ``layers - 1`` upsampling blocks and the last conv.
        in_size: input grid; default 8 pixels on the longer axis at the output's aspect
            (the paper's 8x4 for 640x368 k-space).

    Shapes: input ``(1, width, *in_size)`` -> output ``(1, out_channels, H, W)``.
    """

    def __init__(self, out_size: Size, out_channels: int, width: int, layers: int, in_size: Size | None = None):
        super().__init__()
        if layers < 2:
            raise ValueError(f"ConvDecoder needs at least 2 layers, got {layers}")
        in_size = in_size or aspect_size(out_size, 8)
        body: list[nn.Module] = []
        for size in geometric_sizes(in_size, out_size, layers - 1):
            body += [nn.Upsample(size=size, mode="nearest"), _conv(width, width, 3), nn.ReLU(), nn.BatchNorm2d(width)]
        body += [_conv(width, width, 3), nn.ReLU(), nn.BatchNorm2d(width), _conv(width, out_channels, 1)]
        self.body = nn.Sequential(*body)
        self.input_shape = (width, *in_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(1, width, h, w)`` -> ``(1, out_channels, H, W)``."""
        return self.body(z)


class DeepDecoder(nn.Module):
    """Deep Decoder: 1x1 convs, bilinear upsampling, ReLU and BatchNorm (channel normalisation).

    Args:
        out_size: output ``(H, W)``.
        out_channels: output channels (``2 * coils``).
        width: channels of every hidden layer.
        layers: number of hidden 1x1-conv layers (>= 2): ``layers - 1`` upsampling blocks and the last one.
        in_size: input grid; default 16 pixels on the longer axis (the paper's 16x16).

    Shapes: input ``(1, width, *in_size)`` -> output ``(1, out_channels, H, W)``.
    """

    def __init__(self, out_size: Size, out_channels: int, width: int, layers: int, in_size: Size | None = None):
        super().__init__()
        if layers < 2:
            raise ValueError(f"Deep Decoder needs at least 2 layers, got {layers}")
        in_size = in_size or aspect_size(out_size, 16)
        body: list[nn.Module] = []
        for size in geometric_sizes(in_size, out_size, layers - 1):
            body += [_conv(width, width, 1), nn.Upsample(size=size, mode="bilinear", align_corners=False),
                     nn.ReLU(), nn.BatchNorm2d(width)]
        body += [_conv(width, width, 1), nn.ReLU(), nn.BatchNorm2d(width), _conv(width, out_channels, 1)]
        self.body = nn.Sequential(*body)
        self.input_shape = (width, *in_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(1, width, h, w)`` -> ``(1, out_channels, H, W)``."""
        return self.body(z)


class _Scale(nn.Module):
    """One DIP scale: ``merge(cat(skip(x), up(deeper(down(x)))))``; output ``width`` channels at the input size."""

    def __init__(self, cin: int, width: int, skip: int, size: Size, deeper: nn.Module | None, k_down: int, k_up: int):
        super().__init__()
        self.skip = nn.Sequential(_conv(cin, skip, 1, bias=True), nn.BatchNorm2d(skip), nn.ReLU()) if skip else None
        self.down = nn.Sequential(
            _conv(cin, width, k_down, stride=2, bias=True), nn.BatchNorm2d(width), nn.ReLU(),
            _conv(width, width, k_down, bias=True), nn.BatchNorm2d(width), nn.ReLU(),
        )
        self.deeper = deeper
        self.up = nn.Upsample(size=size, mode="nearest")
        self.merge = nn.Sequential(
            nn.BatchNorm2d(skip + width), _conv(skip + width, width, k_up, bias=True), nn.BatchNorm2d(width), nn.ReLU(),
            _conv(width, width, 1, bias=True), nn.BatchNorm2d(width), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.down(x)
        if self.deeper is not None:
            d = self.deeper(d)
        d = self.up(d)
        if self.skip is not None:
            d = torch.cat([self.skip(x), d], dim=1)
        return self.merge(d)


class SkipNet(nn.Module):
    """DIP encoder-decoder with skip connections (Ulyanov's ``skip`` architecture).

    Args:
        out_size: output ``(H, W)`` (also the input noise size).
        out_channels: output channels (``2 * coils``).
        width: channels of every scale (and of the input noise).
        layers: number of scales (each halves the size); reduced so the coarsest grid
            keeps at least 2x2 pixels (BatchNorm needs more than one value per channel).
        skip: channels of the 1x1-conv skip branch at every scale (0 = plain encoder-decoder).
        k_down: kernel size of the encoder convs; ``k_up``: of the decoder convs.

    Shapes: input ``(1, width, H, W)`` -> output ``(1, out_channels, H, W)``.
    """

    def __init__(self, out_size: Size, out_channels: int, width: int, layers: int, skip: int = 4,
                 k_down: int = 3, k_up: int = 3):
        super().__init__()
        sizes = [tuple(out_size)]
        while len(sizes) <= layers and min(math.ceil(s / 2) for s in sizes[-1]) >= 2:
            sizes.append(tuple(math.ceil(s / 2) for s in sizes[-1]))
        deeper = None
        for size in reversed(sizes[:-1]):  # coarsest scale first; each scale upsamples back to `size`
            deeper = _Scale(width, width, skip, size, deeper, k_down, k_up)
        if deeper is None:
            raise ValueError(f"output {out_size} too small for the DIP encoder-decoder")
        self.body = nn.Sequential(deeper, _conv(width, out_channels, 1, bias=True))
        self.input_shape = (width, *out_size)
        self.scales = len(sizes) - 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(1, width, H, W)`` -> ``(1, out_channels, H, W)``."""
        return self.body(z)


def _conv(cin: int, cout: int, k: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, bias=bias)


def build(make: Callable[[], nn.Module], generator: torch.Generator, device: torch.device | str = "cpu",
          input_scale: float = 0.1) -> tuple[nn.Module, torch.Tensor]:
    """Build a network and its fixed input from ``generator`` alone (no global RNG).

    Weights get PyTorch's default initialisation (Kaiming-uniform with ``a = sqrt(5)``,
    uniform biases), BatchNorm weight 1 and bias 0; the input is uniform on
    ``[0, input_scale)`` as in the ConvDecoder/Deep Decoder code. Everything is drawn on
    the CPU, so the same seed gives the same network on every device.

    Args:
        make: constructs the (uninitialised) network; it must set ``input_shape``.
        generator: CPU generator to draw weights and input from.
        device: where the network and input live.
        input_scale: the input's range.

    Returns:
        ``(net, z)`` with ``z`` of shape ``(1, *net.input_shape)`` on ``device``.
    """
    with torch.device("meta"):
        net = make()
    net = net.to_empty(device="cpu")
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    bound = 1.0 / math.sqrt(m.weight[0].numel())
                    m.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
    z = torch.rand((1, *net.input_shape), generator=generator) * input_scale
    return net.to(device), z.to(device)
