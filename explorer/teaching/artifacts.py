"""Realistic k-space corruptions for the teaching mode (issue 28 item 3, teaching part): complex noise at a chosen SNR,
rigid in-plane motion per shot and k-space spikes (from :mod:`explorer.robustness.realistic`, where they are also
perturbations of the engine), partial Fourier (zero-filled or conjugate-symmetric) and truncation with or without a
Hamming filter (Gibbs ringing).

Every function takes the fully sampled, centred multi-coil k-space ``(C, H, W)`` complex64 of one slice (fastMRI's
convention: rows = readout, columns = phase encodes) and returns a new one of the same shape; nothing is changed in
place. The images are the coil root-sum-of-squares (:func:`image`).
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.physics import center_crop, ifft2c, rss
from explorer.robustness.realistic import (MAX_ROTATION, MAX_SHIFT, MAX_SHOTS, MAX_SPIKES, ORDERINGS, SNR_DB, Motion,
                                           add_noise, check_kspace, motion, moved, shot_of_columns, spikes)


def image(kspace: torch.Tensor, crop: tuple[int, int] | None = None) -> np.ndarray:
    """The coil root-sum-of-squares image of ``kspace`` ``(C, H, W)``, float32 ``(h, w)`` (centre-cropped to ``crop``)."""
    out = rss(ifft2c(kspace), dim=0)
    if crop is not None:
        out = center_crop(out, crop)
    return out.cpu().numpy().astype(np.float32)


# --------------------------------------------------------------------------------------------------------- partial Fourier

PARTIAL_METHODS = {"zero": "zero-filled: the missing columns stay zero (blurred, ringing along the phase encodes)",
                   "conjugate": "conjugate-symmetric: k(-k) = conj k(k) fills them (exact for a real image; the "
                                "image's phase makes it wrong)"}


def partial_fourier(kspace: torch.Tensor, fraction: float, method: str = "zero") -> tuple[torch.Tensor, np.ndarray]:
    """Partial Fourier along the phase encodes: only the first ``fraction`` of the columns (from the left edge, past
    the centre) are acquired; the rest is zero or filled by conjugate symmetry (:data:`PARTIAL_METHODS`).

    Returns:
        ``(k-space (C, H, W), acquired columns (W,) bool)``.

    Raises:
        ExplorerError: a fraction outside [0.5, 1] or an unknown method.
    """
    check_kspace(kspace)
    if not 0.5 <= fraction <= 1.0:
        raise ExplorerError(f"the partial Fourier fraction must be in [0.5, 1], got {fraction}")
    if method not in PARTIAL_METHODS:
        raise ExplorerError(f"method must be one of {', '.join(PARTIAL_METHODS)}, got {method!r}")
    h, w = kspace.shape[-2:]
    acquired = np.arange(w) < max(w // 2 + 1, int(round(fraction * w)))
    keep = torch.from_numpy(acquired).to(kspace.device)
    out = kspace * keep
    if method == "conjugate":
        rows, cols = (h - np.arange(h)) % h, (w - np.arange(w)) % w  # the centred index of -k (Nyquist maps to itself)
        mirrored = kspace[:, torch.from_numpy(rows)][:, :, torch.from_numpy(cols)].conj()
        missing = ~keep & torch.from_numpy(acquired[cols]).to(kspace.device)  # columns whose mirror was acquired
        out = torch.where(missing, mirrored, out)
    return out, acquired


# --------------------------------------------------------------------------------------------------------- truncation

def truncate(kspace: torch.Tensor, fraction: float, hamming: bool = False) -> torch.Tensor:
    """Keep the central ``fraction`` of k-space in each direction (a low-resolution acquisition), zero the rest:
    sharp edges ring (Gibbs). With ``hamming``, the kept part is weighted by a separable Hamming window, trading the
    ringing for a little more blur.

    Raises:
        ExplorerError: a fraction outside (0, 1].
    """
    check_kspace(kspace)
    if not 0 < fraction <= 1:
        raise ExplorerError(f"the kept fraction must be in (0, 1], got {fraction}")
    h, w = kspace.shape[-2:]
    weights = []
    for n in (h, w):
        keep = max(2, int(round(fraction * n)))
        start = n // 2 - keep // 2
        window = np.zeros(n)
        window[start:start + keep] = np.hamming(keep) if hamming else 1.0
        weights.append(torch.from_numpy(window).float())
    return kspace * (weights[0][:, None] * weights[1][None, :]).to(kspace.device, kspace.real.dtype)


__all__ = ["MAX_ROTATION", "MAX_SHIFT", "MAX_SHOTS", "MAX_SPIKES", "ORDERINGS", "PARTIAL_METHODS", "SNR_DB", "Motion",
           "add_noise", "image", "motion", "moved", "partial_fourier", "shot_of_columns", "spikes", "truncate"]
