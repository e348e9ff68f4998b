"""Teaching helpers: k-space regions (which part of k-space holds what) and the images of each region.

No Streamlit here (the Home page's teaching mode draws these). Region images are inverse FFTs of masked k-space.

Conventions: k-space ``(C, H, W)`` complex (rows: readout kx, columns: phase encode ky, centre at
``(H // 2, W // 2)``, the centred orthonormal FFT of :mod:`explorer.physics`); patterns bool ``(H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.physics import center_crop, ifft2c, rss

# ----------------------------------------------------------------------------- k-space regions

REGION_KINDS: dict[str, str] = {
    "disc": "Centre disc",
    "square": "Centre square",
    "periphery": "Periphery (outside a disc)",
    "annulus": "Band between two radii",
    "rows": "Horizontal band (centre rows)",
    "columns": "Vertical band (centre columns)",
}
MAX_RADIUS = 1.5  # radii are in units of the k-space half-size; the corners lie at sqrt(2)


@dataclass(frozen=True)
class Region:
    """A region of k-space (hashable: doubles as a cache key).

    Radii are relative to the k-space half-size along each axis (1 = the edge of k-space; the corners are at
    sqrt(2)), so a disc is an ellipse on a non-square grid.

    Attributes:
        kind: one of :data:`REGION_KINDS`.
        radius: the disc / square / periphery radius, the inner radius of an annulus, the half-width of a band.
        outer: the outer radius of an annulus (other kinds ignore it).
    """

    kind: str = "disc"
    radius: float = 0.1
    outer: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in REGION_KINDS:
            raise ExplorerError(f"unknown k-space region {self.kind!r}; choose one of {', '.join(REGION_KINDS)}")
        for name in ("radius", "outer"):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and 0.0 <= value <= MAX_RADIUS):
                raise ExplorerError(f"the region's {name} must be in [0, {MAX_RADIUS:g}], got {value}")
        if self.kind == "annulus" and self.outer <= self.radius:
            raise ExplorerError(f"the band's outer radius ({self.outer:g}) must exceed its inner radius ({self.radius:g})")


def region_mask(region: Region, shape: tuple[int, int]) -> np.ndarray:
    """The bool pattern ``(H, W)`` of ``region`` on a k-space grid of ``shape``; True = inside."""
    h, w = shape
    u = (np.arange(h) - h // 2)[:, None] / (h / 2)  # (H, 1) normalised row offset
    v = (np.arange(w) - w // 2)[None, :] / (w / 2)  # (1, W) normalised column offset
    radius = np.sqrt(u**2 + v**2)
    r, kind = region.radius, region.kind
    if kind == "disc":
        inside = radius <= r
    elif kind == "square":
        inside = np.maximum(np.abs(u), np.abs(v)) <= r
    elif kind == "periphery":
        inside = radius > r
    elif kind == "annulus":
        inside = (radius > r) & (radius <= region.outer)
    elif kind == "rows":
        inside = np.broadcast_to(np.abs(u) <= r, (h, w))
    else:  # columns
        inside = np.broadcast_to(np.abs(v) <= r, (h, w))
    return np.array(np.broadcast_to(inside, (h, w)), dtype=bool)  # a writable copy


def region_coil_images(kspace: torch.Tensor, pattern: np.ndarray) -> torch.Tensor:
    """Coil images of the k-space inside ``pattern``: ``ifft2c(k * pattern)``.

    Linear in the pattern: the coil images of two disjoint regions add up to those of their union.

    Args:
        kspace: complex ``(C, H, W)``.
        pattern: bool ``(H, W)`` (or broadcastable).

    Returns:
        complex ``(C, H, W)``.
    """
    if kspace.ndim != 3 or not kspace.is_complex():
        raise ValueError(f"kspace must be complex (C, H, W), got {tuple(kspace.shape)} {kspace.dtype}")
    keep = torch.from_numpy(np.array(pattern, dtype=bool)).to(kspace.device)
    return ifft2c(kspace * keep)


def region_image(kspace: torch.Tensor, pattern: np.ndarray, crop: tuple[int, int] | None = None) -> np.ndarray:
    """The image the k-space inside ``pattern`` alone makes: coil root-sum-of-squares, float32 ``(h, w)``
    (centre-cropped to ``crop`` when given)."""
    image = rss(region_coil_images(kspace, pattern), dim=0)
    if crop is not None:
        image = center_crop(image, crop)
    return image.cpu().numpy().astype(np.float32)


def energy_share(kspace: torch.Tensor, pattern: np.ndarray) -> float:
    """The share of the k-space energy ``sum |k|^2`` (all coils) inside ``pattern``, in [0, 1]."""
    power = kspace.abs().pow(2).sum(0).cpu().numpy()
    total = float(power.sum())
    return float(power[np.asarray(pattern, dtype=bool)].sum() / total) if total > 0 else 0.0
