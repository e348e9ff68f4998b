"""ESPIRiT coil sensitivity maps (Uecker et al., MRM 2014) in torch, on CPU or CUDA.

Conventions of ``sigpy.mri.app.EspiritCalib`` (= ``bart ecalib -m1 -t thresh**2``): kernels are the
right singular vectors of the calibration (Hankel) matrix with singular value ``>= thresh * max``;
maps = top eigenvector of the per-pixel ``C x C`` Gram of the centred inverse-FFT'd kernels, phase
relative to the first coil, zero where the top eigenvalue ``< crop``.
Speed: the Gram is a trigonometric polynomial with only ``(2 kw - 1)**2`` coefficients (tiny FFT),
so it is evaluated exactly anywhere by two small DFT products; ``eigh`` on a coarse grid,
interpolated eigenvectors, a few power iterations per cache-sized row block of the exact
full-resolution Gram, and ``eigh`` again for the few pixels that have not converged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from explorer.errors import ExplorerError

_COARSE_PER_FREQ = 4  # coarse-grid points per Gram frequency along each axis
_POWER_ITERS = 3  # full-resolution power iterations after the coarse initialisation
_EXTRA_ITERS = 12  # more iterations for pixels whose relative eigen-residual is still > _TOL ...
_TOL = 1e-3  # ... and then an exact eigh for those still above it, unless their Rayleigh
_FLOOR = 0.8  # quotient (a lower bound of the eigenvalue) is < _FLOOR * crop (cropped anyway)
_BLOCK_ELEMS = {"cpu": 1 << 19, "cuda": 1 << 25}  # Gram entries per row block (CPU: 4 MiB, in cache)


def calib_shape_for(mask_columns: np.ndarray | torch.Tensor, height: int, max_calib: int = 24,
                    kernel_width: int = 6) -> tuple[int, int]:
    """Calibration shape for a 1D column mask.

    Args:
        mask_columns: bool ``(W,)``, True = sampled column.
        height: number of k-space rows ``H``.
        max_calib: upper bound for both calibration sizes.
        kernel_width: ESPIRiT kernel width; the band must be at least this wide.

    Returns:
        ``(min(max_calib, H), w)``: ``w`` is the width (clipped to ``max_calib``) of the widest
        fully sampled band centred like :func:`espirit_maps` crops it (columns
        ``W//2 - w//2 ... W//2 - w//2 + w - 1``).

    Raises:
        ExplorerError: the mask is not 1D or the centred band is narrower than ``kernel_width``.
    """
    m = torch.as_tensor(np.asarray(mask_columns) if not torch.is_tensor(mask_columns) else mask_columns)
    if m.ndim != 1 or m.numel() == 0:
        raise ExplorerError(f"calib_shape_for needs a 1D column mask, got shape {tuple(m.shape)}")
    m, c, w = m.bool().cpu(), m.numel() // 2, 0
    while w < min(max_calib, m.numel()) and bool(m[c - (w + 1) // 2 : c - (w + 1) // 2 + w + 1].all()):
        w += 1  # the centred window of width w + 1 is fully sampled
    if w < kernel_width:
        raise ExplorerError(f"only {w} fully sampled centre columns; ESPIRiT needs at least {kernel_width}")
    return min(max_calib, height), w


def _dft(n: int, pos: torch.Tensor, kw: int) -> torch.Tensor:
    """``(len(pos), 2 kw - 1)`` complex64: ``exp(2 pi i d (pos - n//2) / n)`` for ``d = -(kw-1) .. kw-1``."""
    d = torch.arange(1 - kw, kw, device=pos.device, dtype=torch.float64)
    phase = (2 * math.pi / n) * (pos.double()[:, None] - n // 2) * d
    return torch.polar(torch.ones_like(phase), phase).to(torch.complex64)


def _gram_coefficients(calib: torch.Tensor, kw: int, thresh: float) -> torch.Tensor:
    """Fourier coefficients of the per-pixel Gram of the ESPIRiT kernel images.

    Args:
        calib: complex64 ``(C, h, w)`` fully sampled calibration k-space.

    Returns:
        complex64 ``(C, C, 2 kw - 1, 2 kw - 1)``, frequencies ``-(kw-1) .. kw-1``, scaled as sigpy's
        ``AHA`` (so the top eigenvalue is about 1 inside the object).
    """
    c = calib.shape[0]
    blocks = calib.unfold(1, kw, 1).unfold(2, kw, 1)  # (C, nby, nbx, kw, kw)
    mat = blocks.permute(1, 2, 0, 3, 4).reshape(-1, c * kw * kw)  # (nblocks, C kw^2)
    wide = mat.shape[0] < mat.shape[1]  # mat = U S V^H: eigh of the smaller Gram gives U or V
    sv2, vecs = torch.linalg.eigh(mat @ mat.mH if wide else mat.mH @ mat)  # sv2 = s^2, ascending
    keep = sv2 >= max(thresh**2, 1e-10) * sv2.max()
    vecs = (mat.mH @ vecs[:, keep]) * sv2[keep].rsqrt() if wide else vecs[:, keep]  # V: (C kw^2, K)
    kernels = vecs.mH.reshape(-1, c, kw, kw)  # (K, C, kw, kw): rows of V^H, as sigpy
    m = 2 * kw  # grid large enough for the (2 kw - 1) lags of the autocorrelation
    img = torch.fft.ifft2(kernels, s=(m, m)) * (m * m)  # (K, C, m, m)
    prod = torch.einsum("kcyx,kdyx->cdyx", img, img.conj())  # (C, C, m, m)
    coef = torch.fft.fft2(prod) / (m * m * kw * kw)
    lags = torch.arange(1 - kw, kw, device=calib.device) % m
    return coef[:, :, lags][:, :, :, lags]


def _power(gram: torch.Tensor, v: torch.Tensor, iters: int) -> tuple[torch.Tensor, ...]:
    """``iters`` (>= 1) power iterations on per-pixel Hermitian matrices.

    Args:
        gram: complex64 ``(C, C, N)``; v: complex64 ``(C, N)`` start vectors.

    Returns:
        unit vectors ``(C, N)``, the Rayleigh quotient ``lam`` (real ``(N,)``) and squared residual
        ``|G v - lam v|^2`` (real ``(N,)``) of the vector before the last step.
    """
    for i in range(iters):
        w = gram[:, 0] * v[0]
        for d in range(1, v.shape[0]):
            w.addcmul_(gram[:, d], v[d])
        if i == iters - 1:
            lam = (v.conj() * w).sum(0).real
            res2 = torch.view_as_real(w - v * lam).square().sum((0, 2))
        v = w * torch.view_as_real(w).square().sum((0, 2)).clamp_min(1e-30).rsqrt()
    return v, lam, res2


def _top_eig(gram: torch.Tensor, v: torch.Tensor, floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Top eigenpairs of per-pixel Hermitian matrices: power iterations, exact ``eigh`` fallback.

    Args:
        gram: complex64 ``(C, C, N)``; v: complex64 ``(C, N)`` start vectors (close to the answer).
        floor: pixels whose Rayleigh quotient ``lam`` is below ``floor`` are cropped anyway; the
            others must reach a relative residual ``|G v - lam v| / lam <= _TOL``: first with
            more power iterations, then with ``torch.linalg.eigh``.

    Returns:
        unit vectors ``(C, N)`` and eigenvalues (real ``(N,)``).
    """
    v, lam, res2 = _power(gram, v, _POWER_ITERS)
    idx = ((res2 > (_TOL * lam).square()) & (lam >= floor)).nonzero().squeeze(1)
    if idx.numel():  # slow convergence (small eigen-gap): more iterations on these pixels only
        sub = gram[:, :, idx]  # (C, C, n)
        vs, ls, rs = _power(sub, v[:, idx], _EXTRA_ITERS)
        v[:, idx], lam[idx] = vs, ls
        left = ((rs > (_TOL * ls).square()) & (ls >= floor)).nonzero().squeeze(1)
        if left.numel():  # still not converged: exact
            evals, evecs = torch.linalg.eigh(sub[:, :, left].permute(2, 0, 1))  # (m, C), (m, C, C)
            v[:, idx[left]], lam[idx[left]] = evecs[..., -1].T, evals[..., -1]
    return v, lam


def _phase_to_first(v: torch.Tensor) -> torch.Tensor:
    """Rotate each vector ``(C, ...)`` so that its first coil is real and >= 0."""
    ref = v[0]
    return v * torch.where(ref.abs() > 0, ref.conj() / ref.abs().clamp_min(1e-30), torch.ones_like(ref))


def _maps_one(ksp: torch.Tensor, calib_shape: tuple[int, int], kw: int, thresh: float,
              crop: float, sets: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """ESPIRiT maps of one slice: complex64 ``(C, H, W)`` -> maps complex64 ``(K, C, H, W)`` and eigenvalues
    ``(K, H, W)`` of the ``K = sets`` (1 or 2) largest eigenpairs; each map zero where its eigenvalue < ``crop``."""
    c, h, w = ksp.shape
    r0, c0 = h // 2 - calib_shape[0] // 2, w // 2 - calib_shape[1] // 2  # sigpy.resize centring
    calib = ksp[:, r0 : r0 + calib_shape[0], c0 : c0 + calib_shape[1]]
    if not bool(torch.isfinite(torch.view_as_real(calib)).all()):
        raise ExplorerError("the k-space calibration region contains NaN or Inf")
    if not bool((calib != 0).any()):
        raise ExplorerError("the k-space calibration region is all zero")
    coef = _gram_coefficients(calib, kw, thresh)
    dev = ksp.device
    # exact eigenvectors on a coarse grid (float sample positions, corners included)
    n_coarse = _COARSE_PER_FREQ * (2 * kw - 1)
    hc, wc = min(h, max(2, n_coarse)), min(w, max(2, n_coarse))
    ys, xs = torch.linspace(0, h - 1, hc, device=dev), torch.linspace(0, w - 1, wc, device=dev)
    gram_c = _dft(h, ys, kw) @ coef @ _dft(w, xs, kw).T  # (C, C, hc, wc)
    _, vecs = torch.linalg.eigh(gram_c.permute(2, 3, 0, 1))  # (hc, wc, C, C)
    starts = [_upsample(_phase_to_first(vecs[..., -1 - k].permute(2, 0, 1)), h, w) for k in range(sets)]
    # refine against the exact full-resolution Gram, one block of rows at a time
    nf, eh = 2 * kw - 1, _dft(h, torch.arange(h, device=dev), kw)  # (H, 2kw-1)
    ew = _dft(w, torch.arange(w, device=dev), kw).T.contiguous()  # (2kw-1, W)
    maps = torch.empty((sets, *starts[0].shape), dtype=starts[0].dtype, device=dev)
    values = torch.empty((sets, h, w), dtype=torch.float32, device=dev)
    step = max(1, max(4096, _BLOCK_ELEMS.get(dev.type, 1 << 22) // (c * c)) // w)  # rows per block
    for y in range(0, h, step):
        rows = slice(y, min(h, y + step))
        gram = ((eh[rows] @ coef).reshape(-1, nf) @ ew).reshape(c, c, -1)  # (C, C, rows * W)
        v, lam = _top_eig(gram, starts[0][:, rows].reshape(c, -1), _FLOOR * crop)
        maps[0, :, rows] = (_phase_to_first(v) * (lam >= crop)).reshape(c, -1, w)
        values[0, rows] = lam.reshape(-1, w)
        if sets > 1:  # the second eigenpair: the top one of the deflated Gram G - lam v v^H
            gram = gram - lam * v.unsqueeze(1) * v.conj().unsqueeze(0)
            start = starts[1][:, rows].reshape(c, -1)
            start = start - v * (v.conj() * start).sum(0)  # orthogonal to the first eigenvector
            v2, lam2 = _top_eig(gram, start, _FLOOR * crop)
            maps[1, :, rows] = (_phase_to_first(v2) * (lam2 >= crop)).reshape(c, -1, w)
            values[1, rows] = lam2.reshape(-1, w)
    return maps, values


def _upsample(v: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear upsampling of complex ``(C, hc, wc)`` to ``(C, H, W)`` (an exact copy at the same size)."""
    v = F.interpolate(torch.view_as_real(v).permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=True)
    return torch.view_as_complex(v.permute(0, 2, 3, 1).contiguous())


def espirit_maps(kspace: torch.Tensor, calib_shape: tuple[int, int] = (24, 24), kernel_width: int = 6,
                 thresh: float = 0.02, crop: float = 0.95) -> torch.Tensor:
    """ESPIRiT coil sensitivity maps (one set: the top eigenvector), like ``bart ecalib -m1``.

    Args:
        kspace: complex64 ``(C, H, W)`` or ``(B, C, H, W)``, possibly undersampled; the central
            ``calib_shape`` region (rows, cols) must be fully sampled (the caller clips the calib
            columns to the ACS width, e.g. with :func:`calib_shape_for`).
        calib_shape: ``(rows, cols)`` of the calibration region, each ``>= kernel_width``.
        kernel_width: ESPIRiT kernel size (square).
        thresh: keep kernels with singular value ``>= thresh * max``.
        crop: zero the maps where the top eigenvalue is ``< crop``.

    Returns:
        complex64 maps, same shape and device as ``kspace``: ``sum_c |S_c|^2 = 1`` where the
        eigenvalue is ``>= crop``, 0 elsewhere; phase relative to the first coil.

    Raises:
        ExplorerError: bad shape, dtype or sizes, or an empty/non-finite calibration region.
    """
    maps, _ = espirit(kspace, calib_shape, kernel_width, thresh, crop, sets=1)
    return maps[:, 0] if kspace.ndim == 4 else maps[0, 0]


def espirit(kspace: torch.Tensor, calib_shape: tuple[int, int] = (24, 24), kernel_width: int = 6,
            thresh: float = 0.02, crop: float = 0.95, sets: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """ESPIRiT with ``sets`` map sets (1 or 2, like ``bart ecalib -m1`` / ``-m2``) and the eigenvalue maps.

    The ``k``-th set is the ``k``-th eigenvector of each pixel's Gram, zero where its own eigenvalue is
    ``< crop`` (BART's cropping per map set), phase relative to the first coil. The first set is exactly
    :func:`espirit_maps`. A second set matters where the field of view is smaller than the object: two
    tissue positions fold onto one pixel, and each eigenvector is the sensitivity seen from one of them
    (Uecker et al. 2014, "soft SENSE").

    Args:
        kspace: complex64 ``(C, H, W)`` or ``(B, C, H, W)`` (see :func:`espirit_maps`).
        sets: number of map sets ``K`` (1 or 2).
        calib_shape, kernel_width, thresh, crop: as :func:`espirit_maps`.

    Returns:
        maps complex64 ``(B, K, C, H, W)`` and eigenvalues float32 ``(B, K, H, W)`` (``B = 1`` for a
        ``(C, H, W)`` input).

    Raises:
        ExplorerError: as :func:`espirit_maps`; ``sets`` not 1 or 2.
    """
    if sets not in (1, 2):
        raise ExplorerError(f"ESPIRiT map sets must be 1 or 2, got {sets!r}")
    if not torch.is_tensor(kspace) or not kspace.is_complex():
        raise ExplorerError("espirit_maps needs complex k-space (a torch complex64 tensor)")
    if kspace.ndim not in (3, 4) or min(kspace.shape) == 0:
        raise ExplorerError(f"k-space must be (C, H, W) or (B, C, H, W), got shape {tuple(kspace.shape)}")
    if len(calib_shape) != 2 or int(kernel_width) < 1:
        raise ExplorerError(f"bad calib_shape {calib_shape} / kernel_width {kernel_width}")
    kw, (ch, cw), (h, w) = int(kernel_width), (int(calib_shape[0]), int(calib_shape[1])), kspace.shape[-2:]
    if ch > h or cw > w:
        raise ExplorerError(f"calibration region {ch}x{cw} is larger than the image {h}x{w}")
    if ch < kw or cw < kw:
        raise ExplorerError(f"calibration region {ch}x{cw} is smaller than the kernel width {kw}")
    with torch.no_grad():
        ksp = kspace.to(torch.complex64)
        batch = ksp if ksp.ndim == 4 else ksp[None]
        pairs = [_maps_one(k, (ch, cw), kw, float(thresh), float(crop), sets) for k in batch]
    return torch.stack([m for m, _ in pairs]), torch.stack([v for _, v in pairs])
