"""Scores of a small feature (or a pathology box) in a reconstruction.

Per feature: the paper's score, the MSE inside the feature's window after normalising each image to zero mean
and unit standard deviation over the whole (centre-cropped) image (Darestani et al. 2021); the contrast
recovery, (mean in the footprint - mean in a surrounding ring) of the reconstruction over the same of the
reference with the feature (1 = the feature's contrast fully recovered, 0 = gone, < 0 = inverted); and the SSIM
of a small window around it (at least 11x11 px, skimage's 7x7 Gaussian-free SSIM as in fastMRI, data range =
the reference maximum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.errors import ExplorerError

LOCAL_MIN = 11  # side of the smallest local-SSIM window (pixels)


def normalize(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation over the whole image (the paper's ``normalize_instance``)."""
    image = np.asarray(image, dtype=np.float64)
    return (image - image.mean()) / (image.std() or 1.0)


def padded(box: tuple[int, int, int, int], shape: tuple[int, int], minimum: int = LOCAL_MIN,
           margin: int = 3) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` and to at least ``minimum`` pixels a side, kept inside ``shape``."""
    r0, c0, r1, c1 = box
    out = []
    for lo, hi, n in ((r0, r1, shape[0]), (c0, c1, shape[1])):
        lo, hi = lo - margin, hi + margin
        short = max(minimum - (hi - lo), 0)
        lo, hi = lo - short // 2, hi + short - short // 2
        shift = max(-lo, 0) - max(hi - n, 0)
        lo, hi = max(lo + shift, 0), min(hi + shift, n)
        out.append((lo, hi))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def window_mse(recon: np.ndarray, truth: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The paper's score: MSE inside ``box`` of the two images, each normalised over the whole image."""
    r0, c0, r1, c1 = box
    return float(np.mean((normalize(recon)[r0:r1, c0:c1] - normalize(truth)[r0:r1, c0:c1]) ** 2))


def local_ssim(recon: np.ndarray, truth: np.ndarray, box: tuple[int, int, int, int], data_range: float) -> float:
    """SSIM of the window ``box`` (>= 7 px a side), 7x7 uniform window, ``data_range`` the reference maximum."""
    from skimage.metrics import structural_similarity  # noqa: PLC0415

    r0, c0, r1, c1 = box
    if r1 - r0 < 7 or c1 - c0 < 7:
        raise ExplorerError(f"the local SSIM window {box} is smaller than 7x7 pixels")
    return float(structural_similarity(truth[r0:r1, c0:c1].astype(np.float64), recon[r0:r1, c0:c1].astype(np.float64),
                                       data_range=float(data_range), win_size=7))


def ring(footprint: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of the footprint, not in it (nor touching it)."""
    from scipy import ndimage  # noqa: PLC0415

    near = ndimage.binary_dilation(footprint, iterations=1)
    return ndimage.binary_dilation(footprint, iterations=width + 1) & ~near


def contrast(image: np.ndarray, footprint: np.ndarray, background: np.ndarray) -> float:
    """Mean of ``image`` in the footprint minus its mean in the background."""
    return float(image[footprint].mean() - image[background].mean())


@dataclass(frozen=True)
class FeatureScore:
    """Scores of one feature in one reconstruction (see the module docstring)."""

    window_mse: float
    contrast_recovery: float | None
    local_ssim: float
    box: tuple[int, int, int, int]

    def row(self) -> dict:
        return {"window_mse": self.window_mse, "contrast_recovery": self.contrast_recovery,
                "local_ssim": self.local_ssim, "box": list(self.box)}


def score_feature(recon: np.ndarray, truth: np.ndarray, profile: np.ndarray | None = None,
                  box: tuple[int, int, int, int] | None = None) -> FeatureScore:
    """Score one feature (``profile``: its ``(h, w)`` profile) or one box (``box``, no contrast recovery).

    Args:
        recon, truth: ``(h, w)`` magnitudes (the truth with the feature).
        profile: the feature's profile on the same grid (footprint: profile >= 0.5).
        box: ``(row0, col0, row1, col1)`` half-open (used when there is no profile).

    Raises:
        ExplorerError: shapes differ, neither a profile nor a box, or an empty window.
    """
    if recon.shape != truth.shape:
        raise ExplorerError(f"reconstruction {recon.shape} and reference {truth.shape} differ in shape")
    recovery = None
    if profile is not None:
        footprint = profile >= 0.5
        rows, cols = np.nonzero(profile > 0)
        if not footprint.any():
            raise ExplorerError("the feature's footprint is empty")
        box = (int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1)
        background = ring(profile > 0, max(2, int(np.sqrt(footprint.sum()) // 2)))
        truth_contrast = contrast(truth, footprint, background)
        recovery = contrast(recon, footprint, background) / truth_contrast if abs(truth_contrast) > 1e-12 else None
    if box is None:
        raise ExplorerError("score a feature profile or a box")
    r0, c0, r1, c1 = box
    if not (0 <= r0 < r1 <= truth.shape[0] and 0 <= c0 < c1 <= truth.shape[1]):
        raise ExplorerError(f"box {box} is empty or outside the {truth.shape[0]}x{truth.shape[1]} image")
    return FeatureScore(window_mse(recon, truth, box), recovery,
                        local_ssim(recon, truth, padded(box, truth.shape), float(truth.max())), tuple(box))


__all__ = ["FeatureScore", "contrast", "local_ssim", "normalize", "padded", "ring", "score_feature", "window_mse"]
