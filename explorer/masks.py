"""Sampling masks: fastMRI's 1D column families and 2D variable-density Poisson disc.

1D masks come from ``fastmri.data.subsample`` itself (random, equispaced,
equispaced_fraction, magic, magic_fraction), so patterns are identical to fastMRI's
for the same seed; 2D Poisson-disc masks come from ``sigpy.mri.poisson``. Columns
outside the acquired band (zero padding) are never marked as sampled, and the
reported acceleration is the actual one over the acquired band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from fastmri.data import subsample

from explorer.errors import ExplorerError

_FASTMRI = {
    "random": subsample.RandomMaskFunc,
    "equispaced": subsample.EquiSpacedMaskFunc,
    "equispaced_fraction": subsample.EquispacedMaskFractionFunc,
    "magic": subsample.MagicMaskFunc,
    "magic_fraction": subsample.MagicMaskFractionFunc,
}
MASK_TYPES: tuple[str, ...] = (*_FASTMRI, "poisson")
# sigpy's Poisson-disc sampler does not terminate for very sparse patterns (e.g. R = 32 on 64x64).
MAX_POISSON_ACCELERATION = 16.0
INTEGER_ACCELERATION = ("equispaced", "equispaced_fraction", "magic", "magic_fraction")


def default_center_fraction(acceleration: float) -> float:
    """fastMRI's defaults: 0.08 at 4x, 0.04 at 8x (``0.32 / R`` in between and beyond)."""
    return round(min(0.32 / max(acceleration, 1.0), 0.5), 4)


@dataclass(frozen=True)
class MaskConfig:
    """A sampling-mask choice (hashable: doubles as a cache key).

    Attributes:
        type: one of :data:`MASK_TYPES`.
        acceleration: nominal acceleration R >= 1 (integer for equispaced/magic).
        center_fraction: fully sampled centre fraction in (0, 1); ``None`` = fastMRI default for R.
        seed: random seed of the pattern.
    """

    type: str = "random"
    acceleration: float = 4.0
    center_fraction: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.type not in MASK_TYPES:
            raise ExplorerError(f"unknown mask type {self.type!r}; choose one of {', '.join(MASK_TYPES)}")
        if not np.isfinite(self.acceleration) or self.acceleration < 1:
            raise ExplorerError(f"acceleration must be >= 1, got {self.acceleration}")
        if self.type in INTEGER_ACCELERATION and float(self.acceleration) != int(self.acceleration):
            raise ExplorerError(f"{self.type} masks need an integer acceleration, got {self.acceleration}")
        if self.type == "poisson" and self.acceleration <= 1:
            raise ExplorerError(f"poisson masks need an acceleration above 1, got {self.acceleration:g}")
        if not isinstance(self.seed, (int, np.integer)) or not 0 <= int(self.seed) < 2**32:
            raise ExplorerError(f"the mask seed must be an integer in [0, 2**32), got {self.seed!r}")
        if self.type == "poisson" and self.acceleration > MAX_POISSON_ACCELERATION:
            raise ExplorerError(f"poisson masks support accelerations up to {MAX_POISSON_ACCELERATION:g}, got {self.acceleration:g}")
        cf = self.center_fraction
        if cf is not None and not (np.isfinite(cf) and 0 < cf < 1):
            raise ExplorerError(f"center fraction must be in (0, 1), got {cf}")

    @property
    def resolved_center_fraction(self) -> float:
        """The centre fraction in use (explicit or the fastMRI default)."""
        return self.center_fraction if self.center_fraction is not None else default_center_fraction(self.acceleration)

    @property
    def is_2d(self) -> bool:
        """True for masks that vary along both k-space axes."""
        return self.type == "poisson"


@dataclass(frozen=True, eq=False)
class SampledMask:
    """A realised mask.

    Attributes:
        mask: bool tensor ``(1, 1, 1, W)`` (1D) or ``(1, 1, H, W)`` (2D); True = sampled.
        num_low_frequencies: width of the fully sampled centre (columns; square side for 2D).
        acceleration: actual acceleration over the acquired band (band size / samples).
        config: the :class:`MaskConfig` it came from (``None`` for a file's own mask).
    """

    mask: torch.Tensor
    num_low_frequencies: int
    acceleration: float
    config: MaskConfig | None

    def pattern(self, shape: tuple[int, int]) -> np.ndarray:
        """The sampled pattern as a bool array ``(H, W)``."""
        return np.broadcast_to(self.mask[0, 0].cpu().numpy(), shape).copy()


def make_mask(config: MaskConfig, shape: tuple[int, int], padding: tuple[int, int] | None = None) -> SampledMask:
    """Draw a mask for k-space of size ``shape = (H, W)``.

    Args:
        config: the mask choice.
        shape: k-space ``(H, W)``; 1D masks select columns (W).
        padding: acquired column band ``[left, right)``; columns outside are zeroed.

    Returns:
        :class:`SampledMask`.
    """
    h, w = shape
    left, right = padding if padding is not None else (0, w)
    if config.is_2d:
        # Drawn over the acquired band only, so the acceleration holds there.
        bw = right - left
        calib = (max(2, round(config.resolved_center_fraction * h)), max(2, round(config.resolved_center_fraction * bw)))
        if config.acceleration > 0.9 * h * bw / (calib[0] * calib[1]) and config.acceleration > 1:
            raise ExplorerError(f"acceleration {config.acceleration} too high for a {calib} centre on {h}x{bw}")
        import sigpy.mri  # noqa: PLC0415  (heavy import, only for 2D masks)

        pattern = np.zeros((h, w), dtype=bool)
        band_pattern = sigpy.mri.poisson((h, bw), config.acceleration, calib=calib, seed=config.seed)
        pattern[:, left:right] = np.abs(band_pattern) > 0
        num_low = min(calib)
    else:
        func = _FASTMRI[config.type]([config.resolved_center_fraction], [_accel_arg(config)], seed=config.seed)
        try:
            mask, num_low = func((1, h, w, 2), seed=config.seed)
        except (ValueError, ZeroDivisionError) as exc:
            raise ExplorerError(f"cannot draw a {config.type} mask for {w} columns ({exc})") from None
        pattern = np.broadcast_to(mask.reshape(1, w).numpy() > 0, (1, w))
    pattern = pattern.copy()
    pattern[:, :left] = False
    pattern[:, right:] = False
    band = pattern[:, left:right]
    sampled = band.sum() if config.is_2d else band[0].sum()
    total = band.size if config.is_2d else band.shape[1]
    if sampled == 0:
        raise ExplorerError("the mask samples nothing inside the acquired band")
    tensor = torch.from_numpy(pattern)[None, None]
    return SampledMask(tensor, int(num_low), float(total / sampled), config)


def mask_from_columns(columns: np.ndarray, padding: tuple[int, int] | None = None) -> SampledMask:
    """Wrap a file's own column mask (fastMRI test files) as a :class:`SampledMask`.

    Args:
        columns: bool ``(W,)``.
    """
    columns = np.asarray(columns, dtype=bool).reshape(-1)
    w = columns.size
    left, right = padding if padding is not None else (0, w)
    if not columns[left:right].any():
        raise ExplorerError("the file's mask samples nothing")
    centre = w // 2
    lo = hi = centre
    while lo > 0 and columns[lo - 1]:
        lo -= 1
    while hi < w and columns[hi]:
        hi += 1
    return SampledMask(torch.from_numpy(columns)[None, None, None], hi - lo, float((right - left) / columns[left:right].sum()), None)


def _accel_arg(config: MaskConfig) -> float | int:
    if config.type in INTEGER_ACCELERATION:
        return int(config.acceleration)
    return float(config.acceleration)
