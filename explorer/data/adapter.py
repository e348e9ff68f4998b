"""Dataset adapter: a folder of complex images (or one real multi-coil slice for coil maps) -> fastMRI-layout volumes.

Inputs, one complex image ``(H, W)`` or a stack ``(S, H, W)`` per file, in natural numeric order (``2.mat`` before
``10.mat``):

- ``.mat`` v5 (``scipy.io.loadmat``) and v7.3 (HDF5; MATLAB's column-major layout is transposed back, and complex data
  stored as a compound of ``real``/``imag`` is joined), the variable picked by ``key`` (default: the only one);
- ``.npy`` (no pickles);
- BART ``.cfl``/``.hdr``: singleton dimensions dropped, then ``(H, W)`` or ``(H, W, S)`` (slices in BART's last
  non-singleton dimension), moved to ``(S, H, W)``.

Outputs: single-coil volumes (``kspace (S, H, W)`` = centred orthonormal FFT of the images, ``reconstruction_esc`` =
``|x|``) or semi-real multi-coil volumes (``kspace (S, C, H, W)`` = ``F(S_c x)`` + white Gaussian noise, with real coil
maps ``S`` estimated by ESPIRiT from one real multi-coil k-space slice, ``reconstruction_rss`` = RSS of the noiseless
coil images). Every file's attributes say what it is (``semi_real``, ``source``, ``maps_from``, ``snr_db``,
``adapter``). The volumes of one build are written into a hidden staging folder of the output folder and moved to
their final names only when all of them are written: a failure leaves no ``.h5`` of this build behind.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from explorer.data.fastmri import write_volume
from explorer.data.image_files import (MAX_FILES, MAX_SIDE, MIN_SIDE, list_inputs, load_images, natural_key,
                                       parse_range, read_array, select, volumes)
from explorer.errors import ExplorerError
from explorer.physics import fft2c, ifft2c, rss

#: Anatomies a built volume may be labelled with (``--anatomy``), as the methods' per-anatomy defaults know them.
ANATOMIES = ("knee", "brain")

ADAPTER = "mri-explorer dataset build"
COIL_MODES = ("single", "semi-real", "measured")
#: The most coils of a maps source (image size and file caps: :mod:`explorer.data.image_files`).
MAX_COILS = 64
#: SNR bounds in dB (``inf``: no noise).
SNR_RANGE = (0.0, 200.0)


@dataclass(frozen=True)
class BuildConfig:
    """Settings of one build (see :func:`build`).

    ``slices_per_volume`` None: one volume per file; ``file_range`` ``(a, b)``: files ``a..b`` (1-based, inclusive, by
    position in the sorted list) or None for all; ``snr_db`` ``inf``: no noise.
    """

    coils: str = "single"
    key: str | None = None
    slices_per_volume: int | None = None
    file_range: tuple[int, int] | None = None
    maps_from: str | None = None
    snr_db: float = 40.0
    seed: int = 0
    crop: float = 0.95
    prefix: str = "volume"
    coil_axis: int = 0  # measured: the axis of the coils in .npy/.mat k-space
    anatomy: str | None = None  # "knee" / "brain": written as the volumes' ``anatomy`` attribute (method defaults,
    #                             model cards and shift notes read it); None: unknown




# -------------------------------------------------------------------------------------------------------- coil maps

def read_maps_kspace(path: str | Path, key: str | None = None, coil_axis: int = 0, what: str = "--maps-from"
                     ) -> torch.Tensor:
    """One real multi-coil k-space slice (for the coil maps of semi-real data, or a measured volume).

    Layouts: a fastMRI-layout (or ISMRMRD) ``.h5`` (its middle slice), ``.npy``/``.mat`` k-space with the coils on
    ``coil_axis`` and two spatial axes (singleton axes dropped; ``.mat`` variable ``key``, default the only one), or a
    BART ``.cfl`` with one 2D slice in two of dimensions 0-2 (``(H, W, 1, C)`` or BART's ``(1, H, W, C)`` of a
    slice across the readout) and the coils in dimension 3 (trailing singleton dimensions allowed).

    Args:
        what: how messages name the file's role (``--maps-from``, or the input file).

    Returns:
        complex64 ``(C, H, W)``.

    Raises:
        ExplorerError: missing or unreadable file, wrong shape or dtype, fewer than 2 coils, NaN/Inf.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ExplorerError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".h5":
        from explorer.data.sources import open_volume  # noqa: PLC0415

        volume = open_volume(path)
        kspace = volume.read_slice(volume.num_slices // 2).kspace.numpy()
    elif suffix in (".npy", ".mat"):
        kspace = read_array(path, key)
        if not -kspace.ndim <= coil_axis < kspace.ndim:
            raise ExplorerError(f"{what} {path.name}: no coil axis {coil_axis} in shape {kspace.shape}")
        kspace = np.moveaxis(kspace, coil_axis, 0)
        kspace = kspace.reshape((kspace.shape[0],) + tuple(d for d in kspace.shape[1:] if d != 1))
        if kspace.ndim != 3:
            raise ExplorerError(f"{what} {path.name}: expected multi-coil k-space (C, H, W) with the coils on axis "
                                f"{coil_axis} (--coil-axis), got shape {kspace.shape}")
    elif suffix == ".cfl":
        kspace = read_array(path)
        dims = kspace.shape
        spatial = [d for d in dims[:3] if d != 1]
        if kspace.ndim < 4 or len(spatial) != 2 or any(d != 1 for d in dims[4:]):
            raise ExplorerError(f"{what} {path.name}: expected one 2D BART k-space slice (two of dims 0-2 "
                                f"above 1, coils in dim 3), got dims {dims}")
        kspace = np.moveaxis(kspace.reshape(tuple(spatial) + dims[3:4]), -1, 0)
    else:
        raise ExplorerError(f"{what} {path.name}: unsupported type {suffix!r} (use .h5, .npy, .mat or .cfl)")
    if kspace.dtype.kind != "c":
        raise ExplorerError(f"{what} {path.name}: k-space must be complex, got dtype {kspace.dtype}")
    c, h, w = kspace.shape
    if not 2 <= c <= MAX_COILS:
        raise ExplorerError(f"{what} {path.name}: needs 2..{MAX_COILS} coils (C, H, W), got shape {kspace.shape}")
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        raise ExplorerError(f"{what} {path.name}: k-space {h}x{w} outside {MIN_SIDE}..{MAX_SIDE} per side")
    if not np.isfinite(kspace).all():
        raise ExplorerError(f"{what} {path.name}: k-space contains NaN or Inf values")
    return torch.from_numpy(np.ascontiguousarray(kspace, dtype=np.complex64))


def resample_maps(maps: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear resampling of coil maps (real and imaginary parts) to ``shape``, renormalised.

    The support (where the maps are non-zero) is resampled the same way and kept where it is ``>= 0.5``; inside it
    the maps are scaled to ``sum_c |S_c|^2 = 1``, outside they are 0.

    Args:
        maps: complex64 ``(C, h, w)``.
        shape: ``(H, W)``.

    Returns:
        complex64 ``(C, H, W)``.
    """
    support = (maps.abs().sum(0) > 0).float()
    if tuple(maps.shape[-2:]) != tuple(shape):
        parts = torch.cat([maps.real, maps.imag])[None]
        parts = F.interpolate(parts, size=tuple(shape), mode="bilinear", align_corners=False)[0]
        maps = torch.complex(parts[: maps.shape[0]], parts[maps.shape[0]:])
        support = F.interpolate(support[None, None], size=tuple(shape), mode="bilinear", align_corners=False)[0, 0]
    power = (maps.abs() ** 2).sum(0)
    inside = (support >= 0.5) & (power > 1e-12)
    scale = torch.where(inside, power.clamp_min(1e-12).rsqrt(), torch.zeros_like(power))
    return (maps * scale).to(torch.complex64)


def estimate_maps(path: str | Path, shape: tuple[int, int], crop: float = 0.95) -> torch.Tensor:
    """Real coil maps for semi-real data: ESPIRiT of the slice of :func:`read_maps_kspace`, resampled to ``shape``.

    Args:
        path: the maps source (see :func:`read_maps_kspace`).
        shape: image size ``(H, W)``.
        crop: ESPIRiT eigenvalue threshold (0.95 like ``bart ecalib``; 0 keeps the whole field of view).

    Returns:
        complex64 maps ``(C, H, W)``, ``sum_c |S_c|^2 = 1`` inside their support, 0 outside.

    Raises:
        ExplorerError: as :func:`read_maps_kspace`; maps empty after ESPIRiT.
    """
    from explorer.espirit import espirit_maps  # noqa: PLC0415

    if not 0.0 <= crop < 1.0:
        raise ExplorerError(f"--crop must be in [0, 1), got {crop}")
    kspace = read_maps_kspace(path)
    h, w = kspace.shape[-2:]
    maps = espirit_maps(kspace, calib_shape=(min(24, h), min(24, w)), crop=crop)
    maps = resample_maps(maps, shape)
    if not bool((maps.abs().sum(0) > 0).any()):
        raise ExplorerError(f"--maps-from {Path(path).name}: ESPIRiT found no coil sensitivity (empty maps)")
    return maps


# -------------------------------------------------------------------------------------------------------- simulation

def single_coil(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Single-coil volume of complex images ``(S, H, W)``: k-space complex64 ``(S, H, W)`` = ``fft2c(x)`` and
    target float32 ``(S, H, W)`` = ``|x|``."""
    x = torch.from_numpy(np.asarray(images, dtype=np.complex64))
    return fft2c(x).numpy(), x.abs().float().numpy()


def semi_real(images: np.ndarray, maps: torch.Tensor, snr_db: float, generator: torch.Generator,
              files: tuple[str, ...] | list[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Semi-real multi-coil volume.

    Args:
        images: complex ``(S, H, W)``.
        maps: complex64 ``(C, H, W)``.
        snr_db: noise level relative to the mean power of the noiseless k-space of the volume (``inf``: none).
        generator: the noise's random generator.
        files: the slices' file names (for the error message).

    Returns:
        k-space complex64 ``(S, C, H, W)`` = ``F(S_c x)`` + complex white Gaussian noise, and target float32
        ``(S, H, W)`` = RSS of the noiseless coil images.

    Raises:
        ExplorerError: a slice whose noiseless k-space power is below the volume's noise power (it would be pure
            noise: independent files stored at very different scales put into one volume).
    """
    x = torch.from_numpy(np.asarray(images, dtype=np.complex64))
    coil_images = maps[None] * x[:, None]
    kspace = fft2c(coil_images)
    target = rss(coil_images, dim=1).float()
    if math.isfinite(snr_db):
        power = float((kspace.abs() ** 2).mean())
        noise_power = power / 10 ** (snr_db / 10)
        weak = [i for i, p in enumerate((kspace.abs() ** 2).mean(dim=(1, 2, 3)).tolist()) if p < noise_power]
        if weak:
            names = ", ".join(files[i] for i in weak[:3]) if files else ", ".join(f"slice {i}" for i in weak[:3])
            raise ExplorerError(f"{len(weak)} of {x.shape[0]} slices of one volume ({names}"
                                f"{', ...' if len(weak) > 3 else ''}) have less signal than the volume's noise at "
                                f"{snr_db:g} dB (files stored at different scales?): build them one volume per file "
                                f"with --slices-per-volume 1")
        sigma = math.sqrt(noise_power / 2)
        noise = torch.complex(torch.randn(kspace.shape, generator=generator),
                              torch.randn(kspace.shape, generator=generator))
        kspace = kspace + sigma * noise
    return kspace.to(torch.complex64).numpy(), target.numpy()


# ------------------------------------------------------------------------------------------------------------ build

def check_config(config: BuildConfig) -> None:
    """Validate the settings before any file is read.

    Raises:
        ExplorerError: unknown coil mode, maps file missing or given for single-coil, bad SNR, crop, slices per
            volume or prefix.
    """
    if config.coils not in COIL_MODES:
        raise ExplorerError(f"unknown --coils {config.coils!r}; choose one of {', '.join(COIL_MODES)}")
    if config.coils == "semi-real" and not config.maps_from:
        raise ExplorerError("--coils semi-real needs --maps-from FILE (one real multi-coil k-space slice)")
    if config.coils != "semi-real" and config.maps_from:
        raise ExplorerError("--maps-from is only used with --coils semi-real")
    if config.coils == "measured" and config.slices_per_volume is not None:
        raise ExplorerError("--coils measured writes one volume per k-space file: drop --slices-per-volume")
    low, high = SNR_RANGE
    if math.isnan(config.snr_db) or not (low <= config.snr_db <= high or config.snr_db == math.inf):
        raise ExplorerError(f"--snr must be between {low:g} and {high:g} dB, or inf (no noise), got {config.snr_db}")
    if config.slices_per_volume is not None and not 1 <= config.slices_per_volume <= MAX_FILES:
        raise ExplorerError(f"--slices-per-volume must be 1..{MAX_FILES}, got {config.slices_per_volume}")
    if not 0.0 <= config.crop < 1.0:
        raise ExplorerError(f"--crop must be in [0, 1), got {config.crop}")
    if config.anatomy is not None and config.anatomy not in ANATOMIES:
        raise ExplorerError(f"--anatomy must be one of {', '.join(ANATOMIES)}, got {config.anatomy!r}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", config.prefix or ""):
        raise ExplorerError(f"--prefix must be a plain file-name stem (letters, digits, _ . -), got {config.prefix!r}")


def output_patterns(config: BuildConfig) -> list[str]:
    """Glob patterns of the files a build writes (for the refusal of earlier outputs)."""
    return [f"{config.prefix}_*.h5"]


def measured(kspace: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A one-slice volume of measured multi-coil k-space ``(C, H, W)`` (centred, fastMRI's convention): k-space
    complex64 ``(1, C, H, W)`` as given, target float32 ``(1, H, W)`` = RSS of the coil images (fastMRI's
    ``reconstruction_rss``)."""
    k = kspace.to(torch.complex64)[None]
    return k.numpy(), rss(ifft2c(k), dim=1).float().numpy()


def _stage_measured(chosen: list[tuple[int, Path]], config: BuildConfig, staging: Path) -> list[tuple[Path, tuple]]:
    staged = []
    for number, (_, path) in enumerate(chosen, start=1):
        kspace, target = measured(read_maps_kspace(path, config.key, config.coil_axis, what="input"))
        attrs = {"semi_real": False, "measured": True, "adapter": ADAPTER, "source": str(path), "maps_from": "",
                 "snr_db": float(math.inf), **({"anatomy": config.anatomy} if config.anatomy else {})}
        out = staging / f"{config.prefix}_{number:04d}.h5"
        write_volume(out, kspace, target, recon_size=tuple(target.shape[-2:]), attrs=attrs)
        staged.append((out, kspace.shape))
    return staged


def build(in_dir: str | Path, out_dir: str | Path, config: BuildConfig,
          report: Callable[[Path, tuple[int, ...]], None] | None = None) -> list[Path]:
    """Build the volumes of ``in_dir`` into ``out_dir`` (``<prefix>_0001.h5``, ...).

    Volumes are written into a staging folder inside ``out_dir`` and moved to their final names once all are
    written; on any failure the staging folder is removed and nothing of this build remains.

    Args:
        in_dir: the input folder.
        out_dir: the output folder (created).
        config: the settings.
        report: called with each final path and its k-space shape (after the move).

    Returns:
        the written paths, in order.

    Raises:
        ExplorerError: every bad input (one line).
    """
    check_config(config)
    chosen = select(list_inputs(in_dir), config.file_range)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    maps_cache: dict[tuple[int, int], torch.Tensor] = {}
    staging = Path(tempfile.mkdtemp(prefix=".dataset-build-", dir=out))
    staged: list[tuple[Path, tuple[int, ...]]] = []
    try:
        if config.coils == "measured":
            staged = _stage_measured(chosen, config, staging)
        for number, volume in enumerate(() if config.coils == "measured" else
                                        volumes(chosen, config.key, config.slices_per_volume), start=1):
            shape = tuple(volume.images.shape[-2:])
            attrs = {"semi_real": config.coils == "semi-real", "adapter": ADAPTER,
                     "source": f"{Path(in_dir).expanduser()}: {', '.join(volume.files)}",
                     "maps_from": str(config.maps_from or ""), "snr_db": float(math.inf)}
            if config.anatomy:
                attrs["anatomy"] = config.anatomy
            if config.coils == "semi-real":
                if shape not in maps_cache:
                    maps_cache[shape] = estimate_maps(config.maps_from, shape, config.crop)
                generator = torch.Generator().manual_seed(int(config.seed) * 1_000_003 + volume.first_position)
                kspace, target = semi_real(volume.images, maps_cache[shape], config.snr_db, generator,
                                           volume.files)
                attrs["snr_db"] = float(config.snr_db)
                attrs["seed"] = int(config.seed)
            else:
                kspace, target = single_coil(volume.images)
            path = staging / f"{config.prefix}_{number:04d}.h5"
            write_volume(path, kspace, target, recon_size=shape, attrs=attrs)
            staged.append((path, kspace.shape))
        written = []
        for path, shape in staged:
            final = out / path.name
            path.replace(final)
            written.append(final)
            if report is not None:
                report(final, shape)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = ["ADAPTER", "BuildConfig", "build", "check_config", "estimate_maps", "list_inputs", "load_images",
           "measured", "natural_key", "output_patterns", "parse_range", "read_array", "read_maps_kspace", "resample_maps",
           "select", "semi_real", "single_coil", "volumes"]
