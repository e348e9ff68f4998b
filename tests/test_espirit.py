"""ESPIRiT maps: agreement with sigpy and a direct implementation, normalisation, ACS-only data,
batching, single coil, input checks, calib_shape_for."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.errors import ExplorerError
from explorer.espirit import calib_shape_for, espirit_maps
from explorer.physics import fft2c, ifft2c


def _coil_maps(coils: int, h: int, w: int) -> torch.Tensor:
    """Smooth complex sensitivities ``(C, H, W)``: Gaussian profiles around the FOV, phase ramps."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    maps = []
    for c in range(coils):
        a = 2 * np.pi * c / coils
        mag = torch.exp(-((yy - 1.3 * np.sin(a)) ** 2 + (xx - 1.3 * np.cos(a)) ** 2) / 1.5)
        maps.append(mag * torch.exp(1j * (0.6 * yy * np.cos(a) + 0.4 * xx * np.sin(a) + a)))
    return torch.stack(maps).to(torch.complex64)


def _object(h: int, w: int) -> torch.Tensor:
    """A structured complex image ``(H, W)`` inside ~80% of the FOV (ellipses, a hole, dots)."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    img = ((yy / 0.8) ** 2 + (xx / 0.7) ** 2 < 1).float()
    img = img + 0.6 * (((yy + 0.2) / 0.3) ** 2 + ((xx - 0.2) / 0.2) ** 2 < 1).float()
    img = img - 0.5 * (((yy - 0.35) / 0.15) ** 2 + ((xx + 0.25) / 0.2) ** 2 < 1).float()
    for cy, cx in [(0.1, -0.4), (-0.5, 0.1), (0.5, 0.4)]:
        img = img + 0.8 * ((yy - cy) ** 2 + (xx - cx) ** 2 < 0.003).float()
    return (img * torch.exp(1j * 0.5 * (xx - yy))).to(torch.complex64)


def _kspace(coils: int = 8, h: int = 64, w: int = 64, noise: float = 1e-4) -> torch.Tensor:
    """Fully sampled k-space ``(C, H, W)`` complex64 of the object seen by the coils, light noise."""
    k = fft2c(_coil_maps(coils, h, w) * _object(h, w))
    g = torch.Generator().manual_seed(0)
    scale = noise * k.abs().max()
    return k + scale * torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g))


def _similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``|<a, b>| / (|a| |b|)`` over the coil axis of ``(C, H, W)`` maps."""
    return (a.conj() * b).sum(0).abs() / (a.norm(dim=0) * b.norm(dim=0)).clamp_min(1e-30)


def _support(m: torch.Tensor) -> torch.Tensor:
    return m.abs().sum(0) > 0


def _direct_espirit(ksp: torch.Tensor, calib: tuple[int, int], kw: int, thresh: float, crop: float):
    """Slow textbook ESPIRiT (sigpy's steps, full-size kernel images, exact eigh): ``(C, H, W)``."""
    c, h, w = ksp.shape
    r0, c0 = h // 2 - calib[0] // 2, w // 2 - calib[1] // 2
    cal = ksp[:, r0 : r0 + calib[0], c0 : c0 + calib[1]].to(torch.complex128)
    mat = cal.unfold(1, kw, 1).unfold(2, kw, 1).permute(1, 2, 0, 3, 4).reshape(-1, c * kw * kw)
    _, s, vh = torch.linalg.svd(mat, full_matrices=False)
    kernels = vh[s >= thresh * s.max()].reshape(-1, c, kw, kw)
    padded = torch.zeros(kernels.shape[0], c, h, w, dtype=torch.complex128)
    padded[..., h // 2 - kw // 2 : h // 2 - kw // 2 + kw, w // 2 - kw // 2 : w // 2 - kw // 2 + kw] = kernels
    img = ifft2c(padded)  # (K, C, H, W)
    gram = torch.einsum("kcyx,kdyx->yxcd", img, img.conj()) * (h * w / kw**2)
    evals, evecs = torch.linalg.eigh(gram)
    v = evecs[..., -1].permute(2, 0, 1)
    v = v * torch.exp(-1j * v[0].angle())
    return (v * (evals[..., -1] >= crop)).to(torch.complex64)


@pytest.mark.parametrize("size", [64, 96])
def test_matches_sigpy_espiritcalib(size):
    mr = pytest.importorskip("sigpy.mri")
    ksp = _kspace(8, size, size)
    ours = espirit_maps(ksp, calib_shape=(24, 24), kernel_width=6, thresh=0.02, crop=0.95)
    ref = torch.from_numpy(
        mr.app.EspiritCalib(ksp.numpy(), calib_width=24, thresh=0.02, kernel_width=6, crop=0.95,
                            show_pbar=False).run()
    )
    s_ours, s_ref = _support(ours), _support(ref)
    assert s_ours.float().mean() > 0.3  # the test is not vacuous
    assert (s_ours == s_ref).float().mean() > 0.97
    both = s_ours & s_ref
    assert _similarity(ours, ref)[both].min() > 0.99


@pytest.mark.parametrize(
    "shape,calib",  # (48, 40)/(24, 10): fewer patches than kernel entries (the "wide" SVD path)
    [((45, 52), (24, 17)), ((40, 33), (20, 24)), ((32, 32), (24, 24)), ((48, 40), (24, 10))],
)
def test_matches_direct_implementation_rectangular_and_odd(shape, calib):
    ksp = _kspace(6, *shape)
    ours = espirit_maps(ksp, calib_shape=calib, kernel_width=5, thresh=0.02, crop=0.9)
    ref = _direct_espirit(ksp, calib, 5, 0.02, 0.9)
    s_ours, s_ref = _support(ours), _support(ref)
    assert s_ours.any() and (s_ours == s_ref).float().mean() > 0.99
    assert _similarity(ours, ref)[s_ours & s_ref].min() > 0.999


def test_normalised_on_support_zero_outside():
    ksp = _kspace(8, 64, 64)
    maps = espirit_maps(ksp)
    assert maps.shape == ksp.shape and maps.dtype == torch.complex64 and maps.device == ksp.device
    energy = (maps.abs() ** 2).sum(0)
    sup = _support(maps)
    assert 0.3 < sup.float().mean() < 1.0
    torch.testing.assert_close(energy[sup], torch.ones_like(energy[sup]), atol=1e-4, rtol=0)
    assert (maps[:, ~sup] == 0).all()
    assert (maps[0][sup].imag.abs() < 1e-4).all() and (maps[0][sup].real >= 0).all()  # phase of coil 0


def test_complex128_input_gives_complex64_maps():
    ksp = _kspace(4, 40, 40)
    maps = espirit_maps(ksp.to(torch.complex128))
    assert maps.dtype == torch.complex64
    torch.testing.assert_close(maps, espirit_maps(ksp), atol=1e-4, rtol=0)


def test_crop_zero_keeps_everything_with_signal():
    maps = espirit_maps(_kspace(4, 48, 48), crop=0.0)
    assert _support(maps).float().mean() > 0.99


def test_undersampled_acs_only_matches_full_data():
    from fastmri.data.subsample import RandomMaskFunc

    full = _kspace(8, 64, 96)
    mask, _ = RandomMaskFunc([0.2], [4], seed=1)((1, 96, 1), seed=3)
    cols = mask.reshape(-1).bool()
    calib = calib_shape_for(cols, 64)
    assert calib[0] == 24 and 12 <= calib[1] <= 24
    under = full * cols
    maps_under = espirit_maps(under, calib_shape=calib)
    # identical calibration data -> identical maps
    torch.testing.assert_close(maps_under, espirit_maps(full, calib_shape=calib))
    # and close to the maps from the full 24x24 calibration
    maps_full = espirit_maps(full)
    s_u, s_f = _support(maps_under), _support(maps_full)
    assert (s_u == s_f).float().mean() > 0.95
    assert _similarity(maps_under, maps_full)[s_u & s_f].quantile(0.01) > 0.98


def test_batch_equals_per_item():
    batch = torch.stack([_kspace(4, 48, 48), 2.5 * _kspace(4, 48, 48, noise=1e-3).roll(3, dims=-1)])
    out = espirit_maps(batch)
    assert out.shape == batch.shape
    for b in range(2):
        torch.testing.assert_close(out[b], espirit_maps(batch[b]))


def test_single_coil_has_unit_magnitude_on_support():
    ksp = fft2c(_object(48, 40))[None]
    maps = espirit_maps(ksp, calib_shape=(24, 20))
    sup = _support(maps)
    assert sup.float().mean() > 0.5
    torch.testing.assert_close(maps.abs()[0][sup], torch.ones(int(sup.sum())), atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    ksp = _kspace(8, 96, 96)
    cpu = espirit_maps(ksp)
    gpu = espirit_maps(ksp.cuda())
    assert gpu.device.type == "cuda"
    s_c, s_g = _support(cpu), _support(gpu.cpu())
    assert (s_c == s_g).float().mean() > 0.999
    assert _similarity(cpu, gpu.cpu())[s_c & s_g].min() > 0.999


@pytest.mark.parametrize(
    "ksp,kwargs",
    [
        (torch.zeros(4, 32, 32), {}),  # real dtype
        (np.zeros((4, 32, 32), np.complex64), {}),  # not a tensor
        (torch.zeros(32, 32, dtype=torch.complex64), {}),  # 2D
        (torch.zeros(1, 1, 4, 32, 32, dtype=torch.complex64), {}),  # 5D
        (torch.ones(4, 32, 32, dtype=torch.complex64), {"calib_shape": (40, 24)}),  # calib > image
        (torch.ones(4, 32, 32, dtype=torch.complex64), {"calib_shape": (24, 4)}),  # calib < kernel
        (torch.ones(4, 32, 32, dtype=torch.complex64), {"calib_shape": (24,)}),
        (torch.zeros(4, 32, 32, dtype=torch.complex64), {}),  # no calibration signal
        (torch.full((4, 32, 32), float("nan"), dtype=torch.complex64), {}),
    ],
)
def test_bad_inputs_raise_explorer_error(ksp, kwargs):
    with pytest.raises(ExplorerError) as info:
        espirit_maps(ksp, **kwargs)
    assert "\n" not in str(info.value)


def test_calib_shape_for_fastmri_random_mask():
    from fastmri.data.subsample import RandomMaskFunc

    for seed in range(5):
        mask, num_low = RandomMaskFunc([0.08], [4], seed=seed)((1, 64, 1))
        cols = mask.reshape(-1).bool()
        rows, width = calib_shape_for(cols, 320, kernel_width=4)
        assert rows == 24 and num_low <= width <= 24  # 5 ACS lines (+ random neighbours)
        start = 64 // 2 - width // 2
        assert cols[start : start + width].all()
        if width < 24:  # maximal: one more centred column is unsampled
            wider = 64 // 2 - (width + 1) // 2
            assert not cols[wider : wider + width + 1].all()
        if width < 6:
            with pytest.raises(ExplorerError):
                calib_shape_for(cols.numpy(), 320)
    mask, _ = RandomMaskFunc([0.5], [2], seed=0)((1, 64, 1))
    assert calib_shape_for(mask.reshape(-1).numpy(), 16) == (16, 24)  # clipped both ways


def test_calib_shape_for_rejects_bad_masks():
    with pytest.raises(ExplorerError):
        calib_shape_for(np.ones((4, 4), bool), 32)
    narrow = np.zeros(64, bool)
    narrow[30:34] = True
    with pytest.raises(ExplorerError):
        calib_shape_for(narrow, 32)
    assert calib_shape_for(narrow, 32, kernel_width=4) == (24, 4)
