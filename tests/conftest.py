"""Shared fixtures: small synthetic multicoil data written in fastMRI layout."""

from __future__ import annotations

import explorer  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)

import numpy as np
import pytest
import torch

from explorer.data.fastmri import write_volume
from explorer.physics import fft2c
from explorer.recon.networks import network_kinds


def smooth_maps(coils: int, h: int, w: int) -> torch.Tensor:
    """Smooth complex coil sensitivities ``(C, H, W)`` (Gaussian profiles around the FOV)."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    maps = []
    for c in range(coils):
        ang = 2 * np.pi * c / coils
        cy, cx = 1.2 * np.sin(ang), 1.2 * np.cos(ang)
        mag = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 1.5)
        maps.append(mag * torch.exp(1j * (0.5 * yy * np.cos(ang) + 0.3 * xx + c)))
    maps = torch.stack(maps).to(torch.complex64)
    return maps / torch.sqrt((maps.abs() ** 2).sum(0, keepdim=True))


def phantom(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A structured complex test image ``(H, W)``: ellipses, small dots, smooth phase."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    img = ((yy / 0.8) ** 2 + (xx / 0.6) ** 2 < 1).float() * 0.6
    img = img + ((yy / 0.3) ** 2 + ((xx - 0.1) / 0.2) ** 2 < 1).float() * 0.4
    for _ in range(6):
        cy, cx = (torch.rand(2, generator=g) - 0.5) * 1.0
        img = img + 0.5 * (((yy - cy) ** 2 + (xx - cx) ** 2) < 0.004).float()
    return (img * torch.exp(1j * 0.4 * (xx + yy))).to(torch.complex64)


def multicoil_kspace(slices: int = 3, coils: int = 4, h: int = 32, w: int = 32, noise: float = 0.0) -> np.ndarray:
    """Fully sampled multicoil k-space ``(S, C, H, W)`` complex64."""
    maps = smooth_maps(coils, h, w)
    ks = []
    for s in range(slices):
        k = fft2c(maps * phantom(h, w, seed=s))
        if noise:
            g = torch.Generator().manual_seed(100 + s)
            k = k + noise * torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g))
        ks.append(k)
    return torch.stack(ks).numpy().astype(np.complex64)


@pytest.fixture
def multicoil_file(tmp_path):
    """A fully sampled 3-slice 4-coil 32x32 fastMRI-layout file (no stored reference)."""
    return write_volume(tmp_path / "multi.h5", multicoil_kspace())


@pytest.fixture(scope="session", autouse=True)
def _private_upload_store(tmp_path_factory):
    """Uploads made by tests go to a private store, never the machine's shared temp folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_UPLOAD_DIR", str(tmp_path_factory.mktemp("uploads")))
        yield


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny problems on one torch thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# Tiny architectures of the trained networks (random weights) for fast tests: each network kind declares its own.
TINY_ARCH = {kind.name: dict(kind.tiny) for kind in network_kinds()}


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """Randomly initialised tiny U-net and VarNet checkpoints ``{"unet": path, "varnet": path}`` (a knee card)."""
    from explorer.recon.checkpoints import random_checkpoint

    directory = tmp_path_factory.mktemp("checkpoints")
    return {kind: random_checkpoint(kind, arch, directory / f"{kind}_tiny.pt", seed=0, card={"data": {"anatomy": "knee"}})
            for kind, arch in TINY_ARCH.items()}
