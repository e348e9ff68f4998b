"""Realistic k-space corruptions of the teaching mode (explorer.teaching.artifacts): each does what it says."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.errors import ExplorerError
from explorer.physics import fft2c, ifft2c
from explorer.teaching import artifacts
from tests.conftest import multicoil_kspace


@pytest.fixture(scope="module")
def kspace() -> torch.Tensor:
    return torch.from_numpy(multicoil_kspace(slices=1, coils=4, h=48, w=40)[0]).to(torch.complex64)


def test_noise_has_the_snr_asked_and_is_seeded(kspace):
    noisy = artifacts.add_noise(kspace, 20.0, seed=3)
    measured = 10 * math.log10(float(kspace.abs().pow(2).mean()) / float((noisy - kspace).abs().pow(2).mean()))
    assert abs(measured - 20.0) < 0.5
    assert torch.equal(noisy, artifacts.add_noise(kspace, 20.0, seed=3))
    assert not torch.equal(noisy, artifacts.add_noise(kspace, 20.0, seed=4))


def test_motion_with_zero_parameters_is_the_identity(kspace):
    for ordering in artifacts.ORDERINGS:
        assert torch.equal(artifacts.motion(kspace, artifacts.Motion(8, 0.0, (0.0, 0.0), ordering)), kspace)
    assert torch.equal(artifacts.motion(kspace, artifacts.Motion(1, 5.0, (3.0, 3.0))), kspace)  # one shot: no motion


def test_motion_shifts_each_shots_columns_by_its_own_amount(kspace):
    config = artifacts.Motion(4, 0.0, (0.0, 6.0), "interleaved")
    out = artifacts.motion(kspace, config)
    shots = artifacts.shot_of_columns(kspace.shape[-1], 4, "interleaved")
    assert list(shots[:5]) == [0, 1, 2, 3, 0]
    for s in range(4):  # shot s: the object moved by 6 s / 3 pixels (an integer shift: a roll of the images)
        cols = torch.from_numpy(np.flatnonzero(shots == s))
        shift = 6 * s // 3
        rolled = fft2c(torch.roll(ifft2c(kspace), shifts=shift, dims=-1))
        torch.testing.assert_close(out[..., cols], rolled[..., cols], atol=1e-4, rtol=1e-4)
    seq = artifacts.shot_of_columns(40, 4, "sequential")
    assert list(np.bincount(seq)) == [10, 10, 10, 10] and all(np.diff(seq) >= 0)


def test_a_rotation_moves_the_image_and_keeps_its_energy(kspace):
    turned = artifacts.moved(kspace, 10.0, (0.0, 0.0))
    before, after = artifacts.image(kspace), artifacts.image(turned)
    assert np.linalg.norm(after - before) > 0.05 * np.linalg.norm(before)
    assert abs(np.linalg.norm(after) / np.linalg.norm(before) - 1) < 0.1


def test_spikes_change_that_many_samples_outside_the_centre(kspace):
    out = artifacts.spikes(kspace, 3, 0.5, seed=1)
    changed = (out != kspace).any(0).nonzero()
    assert len(changed) == 3
    h, w = kspace.shape[-2:]
    for r, c in changed.tolist():
        assert not (abs(r - h // 2) < 0.05 * h and abs(c - w // 2) < 0.05 * w)
        assert torch.allclose(out[:, r, c].abs(), torch.full((4,), 0.5 * float(kspace.abs().max())))


def test_conjugate_symmetric_partial_fourier_is_exact_for_a_real_image():
    rng = np.random.default_rng(0)
    real = torch.from_numpy(rng.random((2, 32, 32)).astype(np.float32)).to(torch.complex64)
    k = fft2c(real)
    filled, acquired = artifacts.partial_fourier(k, 0.625, "conjugate")
    assert acquired.sum() == 20 and acquired[:20].all()
    torch.testing.assert_close(filled, k, atol=1e-4, rtol=1e-4)
    zero, _ = artifacts.partial_fourier(k, 0.625, "zero")
    assert float((zero - k).abs().max()) > 1e-2  # zero-filling loses the columns
    phased = real * torch.exp(1j * torch.linspace(0, 2, 32))[None, None, :].to(torch.complex64)
    kp = fft2c(phased)
    wrong, _ = artifacts.partial_fourier(kp, 0.625, "conjugate")
    assert float((wrong - kp).abs().max()) > 1e-2  # the image's phase breaks the symmetry


def test_truncation_rings_and_hamming_tames_it():
    edge = torch.zeros(1, 64, 64, dtype=torch.complex64)
    edge[:, 16:48, 16:48] = 1.0
    k = fft2c(edge)
    box = artifacts.image(artifacts.truncate(k, 0.25))
    tapered = artifacts.image(artifacts.truncate(k, 0.25, hamming=True))
    inside = box[20:44, 20:44]
    assert box.max() > 1.05 * inside.mean()  # overshoot at the edges: Gibbs
    assert tapered.max() < box.max()
    assert torch.equal(artifacts.truncate(k, 1.0), k)


@pytest.mark.parametrize("call, message", [
    (lambda k: artifacts.add_noise(k, 200.0), "SNR"),
    (lambda k: artifacts.Motion(0), "shots"),
    (lambda k: artifacts.Motion(4, 90.0), "rotation"),
    (lambda k: artifacts.Motion(4, 0.0, (0.0, 0.0), "random"), "ordering"),
    (lambda k: artifacts.spikes(k, 500), "spikes"),
    (lambda k: artifacts.partial_fourier(k, 0.3), "fraction"),
    (lambda k: artifacts.truncate(k, 0.0), "fraction"),
    (lambda k: artifacts.add_noise(k[0], 10.0), "(C, H, W)"),
])
def test_bad_settings_are_one_line_errors(kspace, call, message):
    with pytest.raises(ExplorerError, match=None) as info:
        call(kspace)
    assert message in str(info.value) and "\n" not in str(info.value)
