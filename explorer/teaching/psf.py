"""Teaching helpers: point-spread functions of sampling masks and what a mask's acceleration really is.

No Streamlit here (the Home page's teaching mode draws these). PSFs are inverse FFTs of sampling patterns.

Conventions: k-space ``(C, H, W)`` complex (rows: readout kx, columns: phase encode ky, centre at
``(H // 2, W // 2)``, the centred orthonormal FFT of :mod:`explorer.physics`); patterns bool ``(H, W)``.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.masks import SampledMask
from explorer.physics import ifft2c

# ----------------------------------------------------------------------------- point-spread functions


def point_spread_function(pattern: np.ndarray) -> np.ndarray:
    """The point-spread function of a sampling pattern: ``ifft2c(pattern)`` scaled to 1 at the centre.

    The zero-filled image of undersampled data is the true image convolved with it (per coil). A full pattern
    gives a delta at ``(H // 2, W // 2)``; the centre is always the largest magnitude (a non-negative pattern).

    Args:
        pattern: bool or non-negative real ``(H, W)`` (a column mask ``(1, W)`` broadcasts over ``H`` rows only
            if given as ``(H, W)``).

    Returns:
        complex128 ``(H, W)`` with value 1 at ``(H // 2, W // 2)``.

    Raises:
        ExplorerError: an empty pattern.
    """
    p = np.asarray(pattern, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"pattern must be 2D (H, W), got shape {p.shape}")
    if p.sum() <= 0:
        raise ExplorerError("the sampling pattern samples nothing")
    psf = ifft2c(torch.from_numpy(p.astype(np.complex128))).numpy()
    return psf / psf[p.shape[0] // 2, p.shape[1] // 2]


def sidelobe_to_peak(psf: np.ndarray, main_lobe: int = 1) -> float:
    """Peak side-lobe-to-peak ratio: the largest ``|psf|`` outside the main lobe over ``|psf|`` at the centre
    (after Lustig, Donoho & Pauly 2007). 0 for full sampling; 1 when an alias is as strong as the image itself.

    Args:
        psf: ``(H, W)`` with its peak at ``(H // 2, W // 2)`` (:func:`point_spread_function`).
        main_lobe: the main lobe is the square of pixels within this Chebyshev distance of the centre (default
            1: the centre and its 8 neighbours). A pattern that covers all of k-space has a one-pixel main lobe;
            a variable-density one (denser at the centre: 2D Poisson) widens it to the neighbours, which are
            blur, not aliasing, and would otherwise count as side lobes. 0 excludes the centre pixel only.
    """
    mag = np.abs(np.asarray(psf))
    h, w = mag.shape
    peak = mag[h // 2, w // 2]
    side = mag.copy()
    r = int(main_lobe)
    side[max(h // 2 - r, 0):h // 2 + r + 1, max(w // 2 - r, 0):w // 2 + r + 1] = 0.0
    return float(side.max() / peak) if peak > 0 else float("nan")


def psf_decibels(psf: np.ndarray, floor: float = -60.0) -> np.ndarray:
    """``20 log10 |psf|`` (the centre is 0 dB) floored at ``floor``, float32 ``(H, W)``."""
    mag = np.abs(np.asarray(psf))
    return np.maximum(20.0 * np.log10(np.maximum(mag, 1e-12)), floor).astype(np.float32)


def psf_view(values: np.ndarray, half: int | None = None, cells: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A readable view of a PSF image: the square of half-size ``half`` around its centre ``(H // 2, W // 2)``
    (clipped to the image; ``None``: all of it), reduced to about ``cells`` blocks per axis (odd blocks, centred on the PSF centre) by the block
    **maximum** (a one-pixel-thin PSF row or an isolated alias peak survives; a mean or a browser's resampling
    would thin it out or drop it).

    Args:
        values: real ``(H, W)``: ``|PSF|`` or its dB (:func:`psf_decibels`); the maximum is taken as is.
        half: half-size of the crop in pixels.
        cells: the most blocks per axis.

    Returns:
        ``(blocks (h', w'), x (w',), y (h',))``: the block maxima and their blocks' centre offsets (pixels) from
        the PSF centre along the columns (x) and rows (y).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be 2D (H, W), got shape {v.shape}")
    if cells < 1:
        raise ValueError("cells must be at least 1")
    h, w = v.shape
    cy, cx = h // 2, w // 2
    if half is not None:
        r = max(int(half), 0)
        v = v[max(cy - r, 0):cy + r + 1, max(cx - r, 0):cx + r + 1]
        cy, cx = cy - max(cy - r, 0), cx - max(cx - r, 0)
    block = max(1, -(-max(v.shape) // int(cells)))
    block += 1 - block % 2  # odd: the centre pixel sits in the middle of its block (offset 0)
    start_y, start_x = cy - block // 2 - ((cy - block // 2) // block) * block, cx - block // 2 - ((cx - block // 2) // block) * block

    def edges(start: int, n: int) -> np.ndarray:
        return np.unique(np.clip(np.r_[0, np.arange(start, n, block), n], 0, n))

    ey, ex = edges(start_y, v.shape[0]), edges(start_x, v.shape[1])
    rows = np.maximum.reduceat(v, ey[:-1], axis=0)
    out = np.maximum.reduceat(rows, ex[:-1], axis=1)
    y = (ey[:-1] + ey[1:] - 1) / 2 - cy
    x = (ex[:-1] + ex[1:] - 1) / 2 - cx
    return out.astype(np.float32), x, y


def acceleration_note(sampled: SampledMask, shape: tuple[int, int]) -> str:
    """Why a mask's actual acceleration differs from its nominal R, in one sentence with this mask's counts.

    fastMRI's column masks add a fully sampled centre (``num_low_frequencies`` columns): the equispaced and MAGIC
    masks sample every R-th column on top of it, so the actual R is below the nominal one (more so at high R,
    where the centre is a larger share of the lines); the "fraction" variants widen the spacing to compensate; the
    random mask keeps each column outside the centre with the probability that makes W/R lines on average, so a
    draw lands near R. The actual R is over the acquired band (``sampled.acceleration``).

    Args:
        sampled: the realised mask.
        shape: k-space ``(H, W)``.
    """
    pattern = sampled.pattern(shape)
    config = sampled.config
    centre = int(sampled.num_low_frequencies)
    actual = float(sampled.acceleration)
    if config is not None and config.is_2d:
        n = int(pattern.sum())
        band = round(actual * n)
        return (f"{n:,} of {band:,} k-space points (variable density around a fully sampled {centre}×{centre} "
                f"centre): actual R = {band:,}/{n:,} = {actual:.2f} for the nominal {config.acceleration:g}.")
    n = int(pattern.any(0).sum())
    band = round(actual * n)
    outer = n - centre
    if config is None:
        return (f"The file's own mask: {n} of {band} columns, {centre} of them the fully sampled centre: "
                f"R = {band}/{n} = {actual:.2f}.")
    r = config.acceleration
    asked = band / r
    kind = config.type
    if kind in ("equispaced", "magic"):
        how = (f"every {_ordinal(r)} column gives about W/R = {asked:.0f} of the {band} lines, and the fully sampled "
               f"centre ({centre} columns, a fraction {config.resolved_center_fraction:g}) is added on top: "
               f"{centre} + {outer} outside it = {n} lines")
    elif kind in ("equispaced_fraction", "magic_fraction"):
        how = (f"the spacing is widened so that the fully sampled centre ({centre} columns) and the lines outside "
               f"it ({outer}) make about W/R = {asked:.0f}: {n} lines")
    elif kind == "random":
        p = (asked - centre) / max(band - centre, 1)
        how = (f"besides the fully sampled centre ({centre} columns), each of the other {band - centre} columns is "
               f"kept with probability {p:.3f}, which gives W/R = {asked:.0f} lines on average; this draw kept "
               f"{outer}: {n} lines")
    else:
        how = f"{n} lines, {centre} of them the fully sampled centre"
    return f"Nominal R = {r:g}, actual R = {band}/{n} = {actual:.2f}: {how}."


def _ordinal(r: float) -> str:
    n = int(r)
    if float(r) != n:
        return f"{r:g}th"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}" if n != 1 else "single"
