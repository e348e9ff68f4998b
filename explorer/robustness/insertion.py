"""Small features: insert fine details into a fully sampled slice, physically consistently.

A :class:`Feature` (square, disk, thin line or Gaussian blob) lives in the reference-size image (e.g. the
320x320 crop): ``row``/``col`` is its centre pixel, ``size`` its side, diameter, length or FWHM in pixels, and
``contrast`` its amplitude relative to the image maximum or to the local mean (negative: darker).

Insertion (:func:`insert_features`), ``mode="coil"`` (default): the feature is added to the complex image
``x = sum_c conj(S_c) c_c`` with the image's local phase and re-simulated through the coil maps into every
coil, ``c_c' = c_c + S_c f e^{i phase}``, so the measured data stays that of one object seen by every coil.
``mode="paper"``: the same real-valued feature is added to every coil image (zero phase, no maps), as the
paper's code did (Darestani et al. 2021, ``small_features_artificial``). The new k-space goes through the same
mask; the reference is the root-sum-of-squares image of the new fully sampled k-space, centre-cropped.

:class:`FeatureInsertion` plugs into :class:`~explorer.engine.Task` (``feature=``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from explorer.data.slice import Slice
from explorer.engine.problem import Problem, prepare
from explorer.errors import ExplorerError
from explorer.physics import center_crop, fft2c, ifft2c, rss

SHAPES: dict[str, str] = {
    "square": "filled square, size = side (the paper's: 5 px at 1/6 of the image maximum)",
    "disk": "filled disk, size = diameter",
    "line": "thin line ('crack'), size = length, 1-2 px wide, at an angle",
    "blob": "Gaussian blob, size = full width at half maximum",
}
CONTRAST_REFERENCES = ("max", "local")
MODES: dict[str, str] = {
    "coil": "added to the complex image with its local phase, through the coil maps (physically consistent)",
    "paper": "the same real feature added to every coil image (the paper's code)",
}
MAX_SIZE = 64
MAX_FEATURES = 64
PAPER_CONTRAST = 1 / 6  # the paper: max(RSS of the fully sampled image) / 6


@dataclass(frozen=True)
class Feature:
    """One small feature in the reference-size image.

    Attributes:
        shape: one of :data:`SHAPES`.
        row, col: centre pixel (row 0 at the top) in the reference-size image.
        size: side / diameter / length / FWHM in pixels.
        contrast: amplitude relative to ``relative_to`` (negative = darker than its surroundings).
        relative_to: ``"max"`` (the reference image's maximum) or ``"local"`` (the reference's mean in a
            window of three times the size around the centre).
        angle: line orientation in degrees (0 = horizontal, counter-clockwise).
        width: line width in pixels.
    """

    shape: str = "square"
    row: int = 0
    col: int = 0
    size: int = 5
    contrast: float = PAPER_CONTRAST
    relative_to: str = "max"
    angle: float = 0.0
    width: int = 1

    def __post_init__(self) -> None:
        checks = [
            (self.shape in SHAPES, f"feature shape must be one of {', '.join(SHAPES)}, got {self.shape!r}"),
            (1 <= self.size <= MAX_SIZE, f"feature size must be in [1, {MAX_SIZE}] pixels, got {self.size}"),
            (math.isfinite(self.contrast) and 0 < abs(self.contrast) <= 10,
             f"feature contrast must be non-zero with |contrast| <= 10, got {self.contrast}"),
            (self.relative_to in CONTRAST_REFERENCES,
             f"contrast reference must be one of {', '.join(CONTRAST_REFERENCES)}, got {self.relative_to!r}"),
            (math.isfinite(self.angle), f"line angle must be finite, got {self.angle}"),
            (1 <= self.width <= 8, f"line width must be in [1, 8] pixels, got {self.width}"),
            (self.row >= 0 and self.col >= 0, f"feature position must be >= 0, got ({self.row}, {self.col})"),
        ]
        for ok, message in checks:
            if not ok:
                raise ExplorerError(message)

    @property
    def radius(self) -> int:
        """Half the extent of the feature's footprint (pixels, rounded up), blob tails included."""
        extent = self.size * 1.7 if self.shape == "blob" else self.size  # a blob's tail reaches ~1.7 FWHM
        return int(math.ceil(extent / 2))

    def profile(self, shape: tuple[int, int]) -> np.ndarray:
        """The feature's profile on an ``(h, w)`` grid: float32 in [0, 1] (1 = full amplitude)."""
        h, w = shape
        rr, cc = np.mgrid[0:h, 0:w].astype(np.float64)
        dr, dc = rr - self.row, cc - self.col
        if self.shape == "square":
            top, left = self.row - self.size // 2, self.col - self.size // 2
            out = ((rr >= top) & (rr < top + self.size) & (cc >= left) & (cc < left + self.size)).astype(np.float64)
        elif self.shape == "disk":
            out = (dr ** 2 + dc ** 2 <= (self.size / 2) ** 2).astype(np.float64)
            if 0 <= self.row < h and 0 <= self.col < w:
                out[self.row, self.col] = 1.0  # size 1: one pixel
        elif self.shape == "line":
            theta = math.radians(self.angle)
            along = dc * math.cos(theta) - dr * math.sin(theta)  # rows grow downwards
            across = dc * math.sin(theta) + dr * math.cos(theta)
            out = ((np.abs(along) <= (self.size - 1) / 2 + 0.5) & (np.abs(across) <= self.width / 2)).astype(np.float64)
        else:  # blob
            sigma = self.size / (2 * math.sqrt(2 * math.log(2)))
            out = np.exp(-(dr ** 2 + dc ** 2) / (2 * sigma ** 2))
            out[out < 1e-3] = 0.0
        return out.astype(np.float32)

    def check_inside(self, shape: tuple[int, int]) -> None:
        """Refuse a feature whose footprint is not entirely inside an ``(h, w)`` image."""
        r = self.radius
        if self.row - r < 0 or self.col - r < 0 or self.row + r >= shape[0] or self.col + r >= shape[1]:
            raise ExplorerError(f"feature at ({self.row}, {self.col}) of size {self.size} does not fit inside the "
                                f"{shape[0]}x{shape[1]} image")

    def window(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """The half-open box ``(row0, col0, row1, col1)`` of the footprint, clipped to ``shape``."""
        rows, cols = np.nonzero(self.profile(shape) > 0)
        if not len(rows):
            raise ExplorerError(f"feature at ({self.row}, {self.col}) lies outside the {shape[0]}x{shape[1]} image")
        return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1

    def describe(self) -> dict:
        out = {"shape": self.shape, "row": self.row, "col": self.col, "size": self.size, "contrast": self.contrast,
               "relative_to": self.relative_to}
        if self.shape == "line":
            out.update(angle=self.angle, width=self.width)
        return out


def parse_position(text: str) -> tuple[int, int]:
    """``"ROW,COL"`` -> ``(row, col)``.

    Raises:
        ExplorerError: not two non-negative integers.
    """
    try:
        row, col = (int(v) for v in str(text).split(","))
    except ValueError:
        raise ExplorerError(f"position {text!r}: give ROW,COL (two integers, pixels from the top left)") from None
    if row < 0 or col < 0:
        raise ExplorerError(f"position {text!r}: row and column must be >= 0")
    return row, col


@dataclass(frozen=True)
class Inserted:
    """A slice with features and what the scores need.

    Attributes:
        slice: the new fully sampled slice (its target: RSS of the new k-space, centre-cropped).
        features: the features, their amplitudes resolved.
        amplitudes: each feature's absolute amplitude (image units).
        reference: the reference image without the features ``(h, w)`` (RSS of the original k-space, cropped).
        mode: ``"coil"`` or ``"paper"``.
    """

    slice: Slice
    features: tuple[Feature, ...]
    amplitudes: tuple[float, ...]
    reference: np.ndarray
    mode: str


def reference_image(kspace: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """RSS (single coil: magnitude) of the fully sampled k-space ``(C, H, W)``, centre-cropped to ``shape``."""
    image = rss(ifft2c(kspace), dim=0)
    return center_crop(image, shape).float().cpu().numpy()


def _offset(full: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the centre crop in the full image grid (the :func:`center_crop` convention)."""
    return (full[0] - min(crop[0], full[0])) // 2, (full[1] - min(crop[1], full[1])) // 2


def full_maps(kspace: torch.Tensor) -> torch.Tensor:
    """ESPIRiT maps ``(C, H, W)`` from the centre of the fully sampled k-space (24x24 calibration)."""
    from explorer.espirit import espirit_maps  # noqa: PLC0415

    h, w = kspace.shape[-2:]
    calib = (min(24, h), min(24, w))
    return espirit_maps(kspace, calib_shape=calib, kernel_width=min(6, *calib))


def _local_phase(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Phase of the complex image ``x`` ``(H, W)`` averaged over a ``(2 radius + 1)^2`` box (noise-robust)."""
    k = 2 * radius + 1
    parts = torch.stack([x.real, x.imag])[:, None].double()
    smooth = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(parts, (radius,) * 4, mode="replicate"), k, stride=1)
    return torch.atan2(smooth[1, 0], smooth[0, 0])


def insert_features(slice_: Slice, features: list[Feature] | tuple[Feature, ...], mode: str = "coil",
                    maps: torch.Tensor | None = None) -> Inserted:
    """Insert ``features`` into a fully sampled slice.

    Args:
        slice_: a fully sampled slice (not a test file's undersampled one).
        features: one or more :class:`Feature` in reference-size image coordinates.
        mode: ``"coil"`` or ``"paper"`` (:data:`MODES`).
        maps: coil maps ``(C, H, W)`` for ``mode="coil"`` (default: ESPIRiT on the full k-space).

    Returns:
        :class:`Inserted`.

    Raises:
        ExplorerError: an undersampled slice, a bad mode, too many features, a feature outside the image, or
            (coil mode) a feature outside the coil maps' support (air).
    """
    if mode not in MODES:
        raise ExplorerError(f"insertion mode must be one of {', '.join(MODES)}, got {mode!r}")
    if slice_.acquired_mask is not None:
        raise ExplorerError("small features need a fully sampled slice: this file is already undersampled")
    if not 1 <= len(features) <= MAX_FEATURES:
        raise ExplorerError(f"give 1 to {MAX_FEATURES} features, got {len(features)}")
    k = slice_.kspace.to(torch.complex64)
    crop = slice_.target_shape
    full = tuple(k.shape[-2:])
    top, left = _offset(full, crop)
    reference = reference_image(k, crop)
    coils = ifft2c(k)
    multicoil = k.shape[0] > 1
    if mode == "coil":
        maps = (full_maps(k) if multicoil else torch.ones_like(k)) if maps is None else maps.to(k)
        combined = (maps.conj() * coils).sum(0)
    total = torch.zeros(full, dtype=torch.complex64)
    amplitudes = []
    for feature in features:
        feature.check_inside(crop)
        profile_crop = feature.profile(crop)
        if feature.relative_to == "max":
            amplitude = feature.contrast * float(reference.max())
        else:
            r = 3 * max(feature.radius, 1)
            patch = reference[max(feature.row - r, 0):feature.row + r + 1, max(feature.col - r, 0):feature.col + r + 1]
            amplitude = feature.contrast * float(patch.mean())
        profile = torch.zeros(full, dtype=torch.float32)
        ch, cw = min(crop[0], full[0]), min(crop[1], full[1])
        profile[top:top + ch, left:left + cw] = torch.from_numpy(profile_crop[:ch, :cw])
        if mode == "coil":
            support = (maps.abs() ** 2).sum(0)
            inside = float((support * profile).sum() / profile.sum().clamp_min(1e-12))
            if inside < 0.5:
                raise ExplorerError(f"feature at ({feature.row}, {feature.col}) lies outside the coil maps' support "
                                    "(air): place it inside the anatomy")
            phase = _local_phase(combined, max(feature.radius, 2)).float()
            total = total + profile * amplitude * torch.polar(torch.ones_like(phase), phase)
        else:
            total = total + (profile * amplitude).to(torch.complex64)
        amplitudes.append(amplitude)
    new_coils = coils + (maps * total if mode == "coil" else total.expand_as(coils))
    new_k = fft2c(new_coils).to(torch.complex64)
    new_slice = Slice(kspace=new_k, target=reference_image(new_k, crop), meta=slice_.meta)
    return Inserted(new_slice, tuple(features), tuple(amplitudes), reference, mode)


def tissue_mask(reference: np.ndarray, threshold: float = 0.15) -> np.ndarray:
    """Pixels inside the anatomy: the reference above ``threshold`` x a robust maximum, smoothed and filled.

    Args:
        reference: ``(h, w)`` magnitude.

    Returns:
        bool ``(h, w)``.
    """
    from scipy import ndimage  # noqa: PLC0415

    top = float(np.percentile(reference, 99.5)) or 1.0
    smooth = ndimage.uniform_filter(reference.astype(np.float64), size=5)
    mask = ndimage.binary_fill_holes(smooth > threshold * top)
    return ndimage.binary_opening(mask, iterations=2)


def place_random(reference: np.ndarray, count: int, template: Feature, seed: int = 0,
                 sizes: tuple[int, ...] | None = None, contrasts: tuple[float, ...] | None = None,
                 avoid: tuple[Feature, ...] = ()) -> tuple[Feature, ...]:
    """``count`` copies of ``template`` at random positions entirely inside the anatomy, not overlapping.

    Args:
        reference: the reference image ``(h, w)`` (its tissue mask bounds the placement).
        template: shape, size, contrast, ... of every feature (its position is ignored).
        seed: placement seed (same seed, same features).
        sizes / contrasts: if given, each feature draws its size / contrast from these.
        avoid: features already placed (kept clear of).

    Raises:
        ExplorerError: not enough room inside the anatomy.
    """
    from scipy import ndimage  # noqa: PLC0415

    if not 1 <= count <= MAX_FEATURES:
        raise ExplorerError(f"random features: give 1 to {MAX_FEATURES}, got {count}")
    rng = np.random.default_rng(seed)
    tissue = tissue_mask(reference)
    placed: list[Feature] = list(avoid)
    out: list[Feature] = []
    for _ in range(count):
        size = int(rng.choice(sizes)) if sizes else template.size
        contrast = float(rng.choice(contrasts)) if contrasts else template.contrast
        angle = float(rng.uniform(0, 180)) if template.shape == "line" else template.angle
        probe = replace(template, size=size, contrast=contrast, angle=angle, row=0, col=0)
        margin = probe.radius + 2
        allowed = ndimage.binary_erosion(tissue, iterations=margin) if margin else tissue
        allowed[:margin] = allowed[-margin:] = False
        allowed[:, :margin] = allowed[:, -margin:] = False
        for other in placed:  # keep clear of the others' boxes
            r0, c0, r1, c1 = other.window(reference.shape)
            gap = margin + 2
            allowed[max(r0 - gap, 0):r1 + gap, max(c0 - gap, 0):c1 + gap] = False
        rows, cols = np.nonzero(allowed)
        if not len(rows):
            raise ExplorerError(f"no room inside the anatomy for {count} features of size {size}: use fewer or smaller")
        pick = int(rng.integers(len(rows)))
        feature = replace(probe, row=int(rows[pick]), col=int(cols[pick]))
        placed.append(feature)
        out.append(feature)
    return tuple(out)


@dataclass(frozen=True)
class FeatureInsertion:
    """A :class:`~explorer.engine.Task` feature: insert ``features`` (``mode``), then undersample with the
    task's mask; coil maps are estimated on the new measurements (it is a new acquisition)."""

    features: tuple[Feature, ...]
    mode: str = "coil"

    def apply(self, problem: Problem, maps: str = "fixed") -> Problem:
        inserted = insert_features(problem.slice, self.features, self.mode)
        return prepare(inserted.slice, problem.sampled.config, problem.device)

    def describe(self) -> dict:
        return {"kind": "features", "mode": self.mode, "features": [f.describe() for f in self.features]}


__all__ = ["CONTRAST_REFERENCES", "Feature", "FeatureInsertion", "Inserted", "MODES", "PAPER_CONTRAST", "SHAPES",
           "full_maps", "insert_features", "parse_position", "place_random", "reference_image", "tissue_mask"]
