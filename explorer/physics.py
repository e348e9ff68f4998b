"""MRI forward physics: centred orthonormal FFTs and the (SENSE) measurement operator.

Conventions: complex data are native ``torch.complex64`` (fastMRI's real view ``(..., 2)`` only at ``fastmri.models``).
k-space ``(B, C, H, W)`` with ``C`` coils (1 for single-coil); images ``(B, H, W)``;
coil maps ``(B, C, H, W)``; masks boolean, broadcastable to ``(B, 1, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2D FFT over the last two dims, identical to ``fastmri.fft2c``.

    Args:
        x: complex tensor ``(..., H, W)``.

    Returns:
        complex tensor ``(..., H, W)``: ``fftshift(fft2(ifftshift(x), norm="ortho"))``.
    """
    x = torch.fft.ifftshift(x, dim=(-2, -1))
    x = torch.fft.fft2(x, dim=(-2, -1), norm="ortho")
    return torch.fft.fftshift(x, dim=(-2, -1))


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal inverse 2D FFT, identical to ``fastmri.ifft2c``.

    Args:
        k: complex tensor ``(..., H, W)``.

    Returns:
        complex tensor ``(..., H, W)``.
    """
    k = torch.fft.ifftshift(k, dim=(-2, -1))
    k = torch.fft.ifft2(k, dim=(-2, -1), norm="ortho")
    return torch.fft.fftshift(k, dim=(-2, -1))


def abs2(x: torch.Tensor) -> torch.Tensor:
    """``|x|^2`` of a complex or real tensor, with finite gradients everywhere (torch's ``sgn(0) = 0``)."""
    return x.abs() ** 2


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` (the same values) whose gradient is 0 instead of inf/NaN where ``x == 0``.

    The subgradient 0 at an exact zero: an RSS or magnitude image that is exactly zero somewhere
    (zero-filled air, zero padding) stays differentiable w.r.t. the k-space.
    """
    positive = x > 0
    return torch.where(positive, x, torch.ones_like(x)).sqrt() * positive


def rss(coil_images: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares coil combination (finite gradients where a pixel is exactly zero).

    Args:
        coil_images: complex or real tensor ``(B, C, H, W)`` (coil axis ``dim``).

    Returns:
        real tensor ``(B, H, W)``.
    """
    return safe_sqrt(abs2(coil_images).sum(dim))


def magnitude(x: torch.Tensor) -> torch.Tensor:
    """``|x|`` with finite gradients where ``x == 0`` (see :func:`safe_sqrt`)."""
    return safe_sqrt(abs2(x))


def center_crop(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Centre-crop the last two dims to ``shape`` (the fastMRI convention).

    Args:
        x: tensor ``(..., H, W)`` with ``H >= shape[0]`` and ``W >= shape[1]``.
        shape: target ``(h, w)``.

    Returns:
        tensor ``(..., h, w)``.
    """
    h, w = x.shape[-2], x.shape[-1]
    th, tw = min(shape[0], h), min(shape[1], w)
    top, left = (h - th) // 2, (w - tw) // 2
    return x[..., top : top + th, left : left + tw]


@dataclass(frozen=True, eq=False)
class Operator:
    """Immutable undersampled (SENSE) Fourier operator ``A = M F S``.

    Attributes:
        mask: bool tensor broadcastable to ``(B, 1, H, W)`` (typically ``(1, 1, 1, W)``
            for 1D masks or ``(1, 1, H, W)`` for 2D masks); True = sampled.
        maps: complex coil sensitivities ``(B, C, H, W)`` (one set), ``(B, K, C, H, W)`` (``K``
            ESPIRiT map sets, "soft SENSE": the image has one component per set and the coil images
            are ``sum_k S_k x_k``), or ``None`` for the single-coil operator (``C = 1``, identity sensitivity).

    ``forward`` maps an image (:meth:`image_shape`: ``(B, H, W)``, or ``(B, K, H, W)`` with ``K`` sets) to
    masked k-space ``(B, C, H, W)``; ``adjoint`` maps k-space back to an image; ``normal`` is ``A^H A``.
    Variants are new objects: :meth:`with_mask`, :meth:`with_maps`.
    """

    mask: torch.Tensor
    maps: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.mask.dtype != torch.bool:
            object.__setattr__(self, "mask", self.mask.bool())
        if self.mask.ndim != 4:
            raise ValueError(f"mask must be 4D (B, 1, H|1, W), got shape {tuple(self.mask.shape)}")
        if self.maps is not None:
            if self.maps.ndim not in (4, 5) or not self.maps.is_complex():
                raise ValueError("maps must be a complex tensor (B, C, H, W) or (B, K, C, H, W)")

    @property
    def num_coils(self) -> int:
        """Number of coils ``C`` (1 without maps)."""
        return 1 if self.maps is None else self.maps.shape[-3]

    @property
    def sets(self) -> int:
        """Number of map sets ``K`` (1 without maps or with one set)."""
        return 1 if self.maps is None or self.maps.ndim == 4 else self.maps.shape[1]

    def image_shape(self, batch: int, h: int, w: int) -> tuple[int, ...]:
        """Shape of this operator's images: ``(B, H, W)``, or ``(B, K, H, W)`` with ``K > 1`` map sets."""
        return (batch, h, w) if self.maps is None or self.maps.ndim == 4 else (batch, self.maps.shape[1], h, w)

    def with_mask(self, mask: torch.Tensor) -> "Operator":
        """The same operator with another sampling mask."""
        return Operator(mask=mask, maps=self.maps)

    def with_maps(self, maps: torch.Tensor | None) -> "Operator":
        """The same operator with other coil maps."""
        return Operator(mask=self.mask, maps=maps)

    def to(self, device: torch.device | str) -> "Operator":
        """A copy on ``device``."""
        maps = None if self.maps is None else self.maps.to(device)
        return Operator(mask=self.mask.to(device), maps=maps)

    def coil_images(self, x: torch.Tensor) -> torch.Tensor:
        """``S x``: image (:meth:`image_shape`) -> coil images ``(B, C, H, W)``."""
        if self.maps is None:
            return x.unsqueeze(1)
        if self.maps.ndim == 4:
            return self.maps * x.unsqueeze(1)
        return (self.maps * x.unsqueeze(2)).sum(1)

    def combine_coils(self, coil_images: torch.Tensor) -> torch.Tensor:
        """``S^H c``: coil images ``(B, C, H, W)`` -> image (:meth:`image_shape`)."""
        if self.maps is None:
            return coil_images[:, 0]
        if self.maps.ndim == 4:
            return (self.maps.conj() * coil_images).sum(1)
        return (self.maps.conj() * coil_images.unsqueeze(1)).sum(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``A x``: image (:meth:`image_shape`) complex -> masked k-space ``(B, C, H, W)``."""
        return fft2c(self.coil_images(x)) * self.mask

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``A^H y``: k-space ``(B, C, H, W)`` -> image (:meth:`image_shape`) complex."""
        return self.combine_coils(ifft2c(y * self.mask))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^H A x`` for an image (:meth:`image_shape`)."""
        return self.adjoint(self.forward(x))

    __call__ = forward


def combine_sets(x: torch.Tensor, op: Operator) -> torch.Tensor:
    """One image ``(B, H, W)`` from an image of ``op`` (:meth:`Operator.image_shape`): itself with one map set,
    the root-sum-of-squares over the sets with several (BART's ``rss`` of ``pics`` output, zero phase)."""
    if op.maps is None or op.maps.ndim == 4:
        return x
    return rss(x, dim=1).to(x.dtype)
