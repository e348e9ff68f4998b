"""Realistic k-space corruptions (issue 28 item 3): complex white noise at a chosen SNR, rigid in-plane motion per
shot with the shot ordering of the phase encodes, k-space spikes; as perturbations of a problem's measurements
(:class:`Realistic`: ``y' = M corrupt(k)``), their effect on every method beside the adversarial worst case of the
same size (:func:`realistic_rows`), and a small worst-case search over motion parameters (:func:`worst_motion`).

The corruptions take the fully sampled, centred multi-coil k-space ``(C, H, W)`` complex64 of one slice (rows =
readout, columns = phase encodes) and return a new one; nothing is changed in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.physics import fft2c, ifft2c

#: Shot orderings of the phase-encode columns: which columns each shot of a multi-shot acquisition acquires.
ORDERINGS = {"sequential": "contiguous blocks of columns, shot after shot (centre in the middle shot)",
             "interleaved": "every S-th column, column j in shot j mod S"}
#: Bounds of the settings (the teaching controls use them too).
SNR_DB = (-10.0, 80.0)
MAX_SHOTS = 64
MAX_ROTATION = 20.0
MAX_SHIFT = 20.0
MAX_SPIKES = 50


def check_kspace(kspace: torch.Tensor) -> None:
    """Refuse anything but complex k-space ``(C, H, W)`` (one line)."""
    if kspace.ndim != 3 or not kspace.is_complex():
        raise ExplorerError(f"expected complex k-space (C, H, W), got {tuple(kspace.shape)} {kspace.dtype}")


# --------------------------------------------------------------------------------------------------------- noise

def add_noise(kspace: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    """``kspace`` + complex white Gaussian noise, ``SNR = mean |k|^2 / E|n|^2`` in dB (the same definition as the
    dataset adapter's semi-real noise).

    Raises:
        ExplorerError: an SNR outside :data:`SNR_DB`.
    """
    check_kspace(kspace)
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
    check_kspace(kspace)
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
    check_kspace(kspace)
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




# ------------------------------------------------------------------------------------------- as perturbations

#: The kinds of corruption and what a level means in each.
KINDS = {"noise": "complex white noise; level = SNR in dB (lower is worse)",
            "motion": "rigid motion per shot; level L = L degrees of rotation and L pixels of shift along the phase "
                      "encodes by the last shot",
            "spikes": "k-space spikes at 0.3 x the k-space maximum; level = their count"}
#: Coil maps of the corrupted acquisition: ESPIRiT on what was acquired (as a scanner calibrates), or the clean data's.
MAPS = ("reestimate", "fixed")


@dataclass(frozen=True)
class Realistic:
    """A realistic corruption of the acquisition as a perturbation of a problem: ``y' = M corrupt(k)`` with ``k`` the
    fully sampled k-space (the mask, the centre and the sampled columns unchanged).

    Attributes:
        kind: :data:`KINDS`; level: what a level of that kind means.
        shots, ordering: the motion's shots and their ordering (:data:`ORDERINGS`).
        seed: the noise's or the spikes' seed.
        maps: :data:`MAPS` (default ``reestimate``).
    """

    kind: str
    level: float
    shots: int = 8
    ordering: str = "sequential"
    seed: int = 0
    maps: str = "reestimate"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ExplorerError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.maps not in MAPS:
            raise ExplorerError(f"maps must be one of {', '.join(MAPS)}, got {self.maps!r}")
        self.corrupt(torch.zeros(1, 4, 4, dtype=torch.complex64))  # every setting checked now, one line each

    def corrupt(self, kspace: torch.Tensor) -> torch.Tensor:
        """The corrupted full k-space ``(C, H, W)``."""
        if self.kind == "noise":
            return add_noise(kspace, float(self.level), self.seed)
        if self.kind == "motion":
            return motion(kspace, Motion(int(self.shots), float(self.level), (0.0, float(self.level)), self.ordering))
        if float(self.level) != int(self.level):
            raise ExplorerError(f"a spike count must be a whole number, got {self.level}")
        return spikes(kspace, int(self.level), 0.3, self.seed)

    def describe(self) -> dict:
        return {"kind": self.kind, "level": self.level, "shots": self.shots, "ordering": self.ordering,
                "seed": self.seed, "maps": self.maps}

    def apply(self, problem, maps: str | None = None):
        """The problem with the corrupted measurements: an engine task's ``perturbation`` (the task's coil-maps
        policy ``maps`` applies there; else :attr:`maps`).

        Raises:
            ExplorerError: an undersampled file (nothing fully sampled to corrupt).
        """
        if problem.slice.acquired_mask is not None:
            raise ExplorerError("a realistic corruption acts on the acquisition: this file is already undersampled")
        corrupted = self.corrupt(problem.slice.kspace.to(torch.complex64))
        return problem.perturbed(y=corrupted[None].to(problem.device), maps=maps or self.maps)

    def ratio(self, problem) -> float:
        """``||M (k' - k)|| / ||k||``: the corruption's size in the adversarial budget's units (full k-space)."""
        k = problem.slice.kspace.to(torch.complex64)
        mask = problem.sampled.mask[0].to(k.device)
        return float(((self.corrupt(k) - k) * mask).abs().pow(2).sum().sqrt() / k.abs().pow(2).sum().sqrt())


def realistic_rows(problem, instance, perturbations, clean=None, progress=None) -> list[dict]:
    """Each corruption's effect on one method instance: SSIM/PSNR clean and corrupted (against the reference), the
    drops, and the corruption's size ``||M (k' - k)|| / ||k||``.

    Args:
        problem: the clean undersampled problem (fully sampled k-space).
        perturbations: :class:`Realistic` corruptions.
        clean: the instance's clean result (else computed).
        progress: ``progress(done, total, info)`` after each corruption; True stops (the rows so far returned).
    """
    from explorer.engine import run_method  # noqa: PLC0415

    clean = clean if clean is not None else run_method(problem, instance)
    rows = []
    for done, perturbation in enumerate(perturbations, start=1):
        result = run_method(perturbation.apply(problem), instance)
        a, b = clean.metrics or {}, result.metrics or {}
        rows.append({"label": instance.label, "method": instance.name, **perturbation.describe(),
                     "ratio": perturbation.ratio(problem), "ssim_clean": a.get("ssim"),
                     "ssim_perturbed": b.get("ssim"), "psnr_clean": a.get("psnr"), "psnr_perturbed": b.get("psnr"),
                     "ssim_drop": None if None in (a.get("ssim"), b.get("ssim")) else a["ssim"] - b["ssim"],
                     "psnr_drop": None if None in (a.get("psnr"), b.get("psnr")) else a["psnr"] - b["psnr"],
                     "image": result.image})
        if progress is not None and progress(done, len(perturbations), {"level": perturbation.level}):
            break
    return rows


def worst_motion(problem, instance, max_rotation: float = 5.0, max_shift: float = 5.0, shots: int = 8,
                 ordering: str = "sequential", candidates: int = 12, seed: int = 0, progress=None) -> dict:
    """A small worst-case search over motion (adversarial rotation and translation): ``candidates`` seeded random
    motions within ``±max_rotation`` degrees and ``±max_shift`` pixels (both directions) by the last shot, each
    reconstructed; the one with the lowest SSIM against the reference (or, without a reference, the largest change
    from the clean reconstruction) is returned with every candidate tried.

    Returns:
        ``{"worst": row, "tried": [rows]}``, rows as :func:`realistic_rows`' with ``rotation`` and ``shift``.

    Raises:
        ExplorerError: bounds outside the motion's limits, a candidate count outside [1, 64].
    """
    from explorer.engine import run_method  # noqa: PLC0415

    if not (0 <= max_rotation <= MAX_ROTATION and 0 <= max_shift <= MAX_SHIFT):
        raise ExplorerError(f"motion bounds must be within {MAX_ROTATION:g} degrees and {MAX_SHIFT:g} pixels")
    if not (isinstance(candidates, int) and 1 <= candidates <= 64):
        raise ExplorerError(f"candidates must be an integer in [1, 64], got {candidates!r}")
    if problem.slice.acquired_mask is not None:
        raise ExplorerError("a motion search acts on the acquisition: this file is already undersampled")
    rng = np.random.default_rng(int(seed))
    clean = run_method(problem, instance)
    k = problem.slice.kspace.to(torch.complex64)
    mask = problem.sampled.mask[0].to(k.device)
    tried = []
    for done in range(1, candidates + 1):
        rotation = float(rng.uniform(-max_rotation, max_rotation))
        shift = (float(rng.uniform(-max_shift, max_shift)), float(rng.uniform(-max_shift, max_shift)))
        corrupted = motion(k, Motion(int(shots), rotation, shift, ordering))
        result = run_method(problem.perturbed(y=corrupted[None].to(problem.device), maps="reestimate"), instance)
        change = float(np.linalg.norm(result.image - clean.image) / max(np.linalg.norm(clean.image), 1e-30))
        tried.append({"label": instance.label, "method": instance.name, "rotation": rotation, "shift": list(shift),
                      "shots": shots, "ordering": ordering,
                      "ratio": float(((corrupted - k) * mask).abs().pow(2).sum().sqrt() / k.abs().pow(2).sum().sqrt()),
                      "ssim_clean": (clean.metrics or {}).get("ssim"),
                      "ssim_perturbed": (result.metrics or {}).get("ssim"), "change": change})
        if progress is not None and progress(done, candidates, {"phase": "motion"}):
            break
    key = (lambda r: r["ssim_perturbed"]) if tried[0]["ssim_perturbed"] is not None else (lambda r: -r["change"])
    return {"worst": min(tried, key=key), "tried": tried}


__all__ = ["KINDS", "MAPS", "MAX_ROTATION", "MAX_SHIFT", "MAX_SHOTS", "MAX_SPIKES", "ORDERINGS", "SNR_DB", "Motion",
           "Realistic", "add_noise", "check_kspace", "motion", "moved", "realistic_rows", "shot_of_columns", "spikes",
           "worst_motion"]
