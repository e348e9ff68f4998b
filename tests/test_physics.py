import fastmri
from fastmri.data import transforms as fastmri_transforms
import numpy as np
import pytest
import torch

from explorer.physics import Operator, center_crop, fft2c, ifft2c, rss
from tests.conftest import smooth_maps


def _crandn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))


def test_fft2c_matches_numpy_centred_orthonormal():
    x = _crandn(2, 3, 16, 12)
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(fft2c(x).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(ifft2c(fft2c(x)).numpy(), x.numpy(), atol=1e-5)


def test_fft2c_identical_to_fastmri():
    x = _crandn(2, 4, 15, 10)  # odd size: the shifts must match exactly
    ours = fft2c(x)
    theirs = torch.view_as_complex(fastmri.fft2c(torch.view_as_real(x)).contiguous())
    torch.testing.assert_close(ours, theirs)
    theirs_inv = torch.view_as_complex(fastmri.ifft2c(torch.view_as_real(x)).contiguous())
    torch.testing.assert_close(ifft2c(x), theirs_inv)


def test_fft2c_preserves_energy():
    x = _crandn(1, 1, 20, 20)
    assert torch.allclose(fft2c(x).abs().pow(2).sum(), x.abs().pow(2).sum(), rtol=1e-5)


def _ops(h=16, w=12):
    mask1d = torch.rand(1, 1, 1, w, generator=torch.Generator().manual_seed(3)) > 0.5
    mask2d = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(4)) > 0.5
    maps = smooth_maps(4, h, w)[None]
    return [Operator(mask1d), Operator(mask1d, maps), Operator(mask2d, maps)]


@pytest.mark.parametrize("op", _ops(), ids=["singlecoil", "multicoil-1d", "multicoil-2d"])
def test_operator_adjointness(op):
    x = _crandn(2, 16, 12, seed=1)
    y = _crandn(2, op.num_coils, 16, 12, seed=2)
    lhs = (op.forward(x).conj() * y).sum()
    rhs = (x.conj() * op.adjoint(y)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", _ops(), ids=["singlecoil", "multicoil-1d", "multicoil-2d"])
def test_autograd_of_data_fidelity_equals_adjoint_residual(op):
    x = _crandn(1, 16, 12, seed=5).requires_grad_(True)
    y = _crandn(1, op.num_coils, 16, 12, seed=6) * op.mask
    loss = 0.5 * (op.forward(x) - y).abs().pow(2).sum()
    (grad,) = torch.autograd.grad(loss, x)
    # torch returns the conjugate Wirtinger gradient: d/d(conj x) scaled by 2 -> A^H(Ax - y)
    expected = op.adjoint(op.forward(x) - y)
    torch.testing.assert_close(grad, expected.detach(), rtol=1e-4, atol=1e-5)


def test_operator_is_immutable_and_variants_are_new():
    op = _ops()[1]
    other = op.with_mask(torch.ones(1, 1, 1, 12, dtype=torch.bool))
    assert other is not op and not torch.equal(other.mask, op.mask)
    assert other.maps is op.maps
    with pytest.raises(Exception):
        op.mask = other.mask


def test_operator_rejects_bad_shapes():
    with pytest.raises(ValueError):
        Operator(torch.ones(12, dtype=torch.bool))
    with pytest.raises(ValueError):
        Operator(torch.ones(1, 1, 1, 12, dtype=torch.bool), maps=torch.ones(4, 16, 12))


def test_rss_of_fully_sampled_sense_image_with_normalised_maps():
    maps = smooth_maps(4, 16, 12)[None]
    x = _crandn(1, 16, 12, seed=7)
    op = Operator(torch.ones(1, 1, 1, 12, dtype=torch.bool), maps)
    torch.testing.assert_close(rss(ifft2c(op.forward(x)), dim=1), x.abs(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(op.adjoint(op.forward(x)), x, rtol=1e-4, atol=1e-5)


def test_center_crop_matches_fastmri():
    x = torch.arange(7 * 9.0).reshape(7, 9)
    torch.testing.assert_close(center_crop(x, (4, 5)), fastmri_transforms.center_crop(x, (4, 5)))
