"""Realistic k-space corruptions for the teaching mode (issue 28 item 3, teaching part): complex noise at a chosen SNR,
rigid in-plane motion per shot, k-space spikes, partial Fourier (zero-filled or conjugate-symmetric) and truncation
with or without a Hamming filter (Gibbs ringing).

Every function takes the fully sampled, centred multi-coil k-space ``(C, H, W)`` complex64 of one slice (fastMRI's
convention: rows = readout, columns = phase encodes) and returns a new one of the same shape; nothing is changed in
place. The images are the coil root-sum-of-squares (:func:`image`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.physics import center_crop, fft2c, ifft2c, rss

#: Shot orderings of the phase-encode columns: which columns each shot of a multi-shot acquisition acquires.
ORDERINGS = {"sequential": "contiguous blocks of columns, shot after shot (centre in the middle shot)",
             "interleaved": "every S-th column, column j in shot j mod S"}
#: Bounds of the settings (the teaching controls use them too).
SNR_DB = (-10.0, 80.0)
MAX_SHOTS = 64
MAX_ROTATION = 20.0
MAX_SHIFT = 20.0
MAX_SPIKES = 50


def image(kspace: torch.Tensor, crop: tuple[int, int] | None = None) -> np.ndarray:
    """The coil root-sum-of-squares image of ``kspace`` ``(C, H, W)``, float32 ``(h, w)`` (centre-cropped to ``crop``)."""
    out = rss(ifft2c(kspace), dim=0)
    if crop is not None:
        out = center_crop(out, crop)
    return out.cpu().numpy().astype(np.float32)


def _check(kspace: torch.Tensor) -> None:
    if kspace.ndim != 3 or not kspace.is_complex():
        raise ExplorerError(f"expected complex k-space (C, H, W), got {tuple(kspace.shape)} {kspace.dtype}")


# --------------------------------------------------------------------------------------------------------- noise

def add_noise(kspace: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    """``kspace`` + complex white Gaussian noise, ``SNR = mean |k|^2 / E|n|^2`` in dB (the same definition as the
    dataset adapter's semi-real noise).

    Raises:
        ExplorerError: an SNR outside :data:`SNR_DB`.
    """
    _check(kspace)
    if not (isinstance(snr_db, (int, float)) and SNR_DB[0] <= snr_db <= SNR_DB[1]):
        raise ExplorerError(f"SNR must be between {SNR_DB[0]:g} and {SNR_DB[1]:g} dB, got {snr_db}")
    power = float(kspace.abs().pow(2).mean())
    sigma = math.sqrt(power / 10 ** (snr_db / 10) / 2)
    g = torch.Generator().manual_seed(int(seed))
    noise = torch.complex(torch.randn(kspace.shape, generator=g), torch.randn(kspace.shape, generator=g))
    return kspace + (sigma * noise).to(kspace.device, kspace.dtype)


# --------------------------------------------------------------------------------------------------------- motion

@dataclass(frozen=True)
class Motion:
    """Rigid in-plane motion over a multi-shot acquisition: the object is still in the first shot and has rotated by
    ``rotation`` degrees and moved by ``shift`` = (rows, columns) pixels in the last, linearly in
    between. The shots split the phase-encode columns by ``ordering`` (:data:`ORDERINGS`)."""

    shots: int = 8
    rotation: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    ordering: str = "sequential"

    def __post_init__(self) -> None:
        if not (isinstance(self.shots, int) and 1 <= self.shots <= MAX_SHOTS):
            raise ExplorerError(f"shots must be an integer in [1, {MAX_SHOTS}], got {self.shots!r}")
        if not abs(self.rotation) <= MAX_ROTATION:
            raise ExplorerError(f"rotation must be within ±{MAX_ROTATION:g} degrees, got {self.rotation}")
        if len(self.shift) != 2 or not all(abs(v) <= MAX_SHIFT for v in self.shift):
            raise ExplorerError(f"shift must be two values within ±{MAX_SHIFT:g} pixels, got {self.shift}")
        if self.ordering not in ORDERINGS:
            raise ExplorerError(f"ordering must be one of {', '.join(ORDERINGS)}, got {self.ordering!r}")


def shot_of_columns(width: int, shots: int, ordering: str) -> np.ndarray:
    """The shot ``(W,)`` int that acquires each phase-encode column."""
    columns = np.arange(width)
    if ordering == "interleaved":
        return columns % shots
    return np.minimum(columns * shots // width, shots - 1)


def moved(kspace: torch.Tensor, rotation: float, shift: tuple[float, float]) -> torch.Tensor:
    """The k-space of the coil images rotated by ``rotation`` degrees about the centre (bilinear) and shifted by
    ``shift`` pixels (a linear phase in k-space: exact). The coil images move as a whole (a teaching approximation:
    in a scanner the coils stay and only the object moves)."""
    k = kspace
    if rotation:
        images = ifft2c(k)
        theta = math.radians(rotation)
        h, w = images.shape[-2:]
        affine = torch.tensor([[math.cos(theta), -math.sin(theta) * h / w, 0.0],
                               [math.sin(theta) * w / h, math.cos(theta), 0.0]], dtype=torch.float32)[None]
        grid = torch.nn.functional.affine_grid(affine, (1, 1, h, w), align_corners=False).to(images.device)
        parts = torch.cat([images.real, images.imag])[None].float()
        turned = torch.nn.functional.grid_sample(parts, grid, mode="bilinear", padding_mode="zeros",
                                                 align_corners=False)[0]
        c = images.shape[0]
        k = fft2c(torch.complex(turned[:c], turned[c:]).to(kspace.dtype))
    if shift[0] or shift[1]:
        h, w = k.shape[-2:]
        fy = (torch.arange(h, device=k.device) - h // 2).float() / h
        fx = (torch.arange(w, device=k.device) - w // 2).float() / w
        phase = torch.exp(-2j * math.pi * (fy[:, None] * shift[0] + fx[None, :] * shift[1]))
        k = k * phase.to(k.dtype)
    return k


def motion(kspace: torch.Tensor, config: Motion) -> torch.Tensor:
    """The k-space acquired while the object moved (:class:`Motion`): each shot's columns taken from the k-space of
    the object in that shot's position."""
    _check(kspace)
    width = kspace.shape[-1]
    shots = shot_of_columns(width, config.shots, config.ordering)
    out = kspace.clone()
    for s in range(config.shots):
        fraction = s / (config.shots - 1) if config.shots > 1 else 0.0
        rotation, shift = config.rotation * fraction, (config.shift[0] * fraction, config.shift[1] * fraction)
        if rotation == 0 and shift == (0.0, 0.0):
            continue
        columns = torch.from_numpy(np.flatnonzero(shots == s))
        out[..., columns] = moved(kspace, rotation, shift)[..., columns]
    return out


# --------------------------------------------------------------------------------------------------------- spikes

def spikes(kspace: torch.Tensor, count: int, amplitude: float = 0.5, seed: int = 0) -> torch.Tensor:
    """``count`` k-space spikes (a loose contact, static discharge): single samples of every coil set to
    ``amplitude`` x the k-space's maximum magnitude, at seeded random positions outside the central 10%; each spike
    paints a stripe pattern (herringbone) over the whole image.

    Raises:
        ExplorerError: a count outside [0, :data:`MAX_SPIKES`] or an amplitude outside (0, 10].
    """
    _check(kspace)
    if not (isinstance(count, int) and 0 <= count <= MAX_SPIKES):
        raise ExplorerError(f"spikes must be an integer in [0, {MAX_SPIKES}], got {count!r}")
    if not 0 < amplitude <= 10:
        raise ExplorerError(f"spike amplitude must be in (0, 10] x the k-space maximum, got {amplitude}")
    h, w = kspace.shape[-2:]
    rng = np.random.default_rng(int(seed))
    out = kspace.clone()
    peak = float(kspace.abs().max())
    placed = 0
    while placed < count:
        r, c = int(rng.integers(h)), int(rng.integers(w))
        if abs(r - h // 2) < 0.05 * h and abs(c - w // 2) < 0.05 * w:
            continue
        out[:, r, c] = amplitude * peak * np.exp(1j * rng.uniform(0, 2 * np.pi))
        placed += 1
    return out


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
    _check(kspace)
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
    _check(kspace)
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
