"""Registry-wide gradient contract: every method's declared ``capabilities.gradient`` holds.

* ``"exact"``: the autograd directional derivative of ``recon`` w.r.t. ``y`` matches a central finite
  difference of ``t -> recon(y + t v)`` (complex128, 32x32, 4 coils; the trained networks as tiny
  random-weight models converted to float64 through ``with_module``).
* ``"data_consistency"``: the gradient is exactly that of the data-consistency step with the fitted
  coil images held fixed (and zero on unsampled k-space).
"""

from __future__ import annotations

import copy

import pytest
import torch

from explorer.physics import Operator, magnitude, rss
from explorer.recon.base import MethodInstance, NetworkReconstructor, available_methods
from tests.conftest import phantom, smooth_maps

H, W, C = 32, 32, 4
SMALL = {"l1": {"iterations": 15}, "tv": {"iterations": 15}, "sense": {"iterations": 6},
         "convdecoder": {"iterations": 4, "width": 8, "layers": 3},
         "deep_decoder": {"iterations": 4, "width": 8, "layers": 3},
         "dip": {"iterations": 4, "width": 8, "layers": 2}}
EXACT = [m.name for m in available_methods() if m.capabilities.gradient == "exact"]
DATA_CONSISTENCY = [m.name for m in available_methods() if m.capabilities.gradient == "data_consistency"]


@pytest.fixture(scope="module")
def settings(tiny_checkpoints):
    out = dict(SMALL)
    for kind, path in tiny_checkpoints.items():
        out[kind] = {"checkpoint": str(path)}
    return out


def _problem(dtype=torch.complex128):
    mask = torch.zeros(1, 1, 1, W, dtype=torch.bool)
    mask[..., ::3] = True
    mask[..., 13:19] = True
    maps = smooth_maps(C, H, W)[None].to(dtype)
    op = Operator(mask, maps)
    g = torch.Generator().manual_seed(3)
    y = op.forward(phantom(H, W)[None].to(dtype))
    y = y + 0.01 * torch.complex(torch.randn(y.shape, generator=g, dtype=torch.float64),
                                 torch.randn(y.shape, generator=g, dtype=torch.float64)).to(dtype) * op.mask
    return y, op


def _reconstructor(name, settings):
    recon = MethodInstance.of(name, settings.get(name)).build()
    if isinstance(recon, NetworkReconstructor):  # float64 copy of the network (the shared model is untouched)
        recon = recon.with_module(copy.deepcopy(recon.module).double())
    return recon


def test_every_method_declares_a_gradient_and_networks_are_reachable(settings):
    assert EXACT and DATA_CONSISTENCY
    for spec in available_methods():
        caps = spec.capabilities
        assert caps.gradient in ("exact", "data_consistency", "none") and caps.cost in ("instant", "interactive", "long")
        recon = MethodInstance.of(spec.name, settings.get(spec.name)).build()
        assert isinstance(recon, NetworkReconstructor) == caps.weights, spec.name
        if caps.weights:
            assert all(not p.requires_grad for p in recon.module.parameters()) and not recon.module.training


@pytest.mark.parametrize("name", EXACT)
def test_exact_gradient_matches_finite_differences(name, settings):
    y, op = _problem()
    recon = _reconstructor(name, settings)
    g = torch.Generator().manual_seed(7)
    v = torch.complex(torch.randn(y.shape, generator=g, dtype=torch.float64), torch.randn(y.shape, generator=g, dtype=torch.float64))
    v = v * op.mask * (y.norm() / (v * op.mask).norm())
    w = torch.randn(1, H, W, generator=g, dtype=torch.float64)

    def loss(yy):
        x = recon(yy, op)
        return (w * magnitude(x)).sum()  # a generic real functional of the output image

    y0 = y.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(loss(y0), y0)
    analytic = float((grad.conj() * v).real.sum())  # torch's convention: dL = Re<grad, dy>
    h = 1e-7  # small: ReLU kinks of the networks lie within 1e-6 of y along v
    with torch.no_grad():
        numeric = (float(loss(y + h * v)) - float(loss(y - h * v))) / (2 * h)
    assert torch.isfinite(grad.real).all() and abs(numeric) > 0
    assert analytic == pytest.approx(numeric, rel=2e-4, abs=1e-9 * abs(float(loss(y))))


@pytest.mark.parametrize("name", DATA_CONSISTENCY)
def test_data_consistency_gradient_is_exactly_that_of_the_dc_step(name, settings):
    y, op = _problem(torch.complex64)
    recon = _reconstructor(name, settings)
    y0 = y.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(recon(y0, op).abs().pow(2).sum(), y0)
        coils = recon.fit(y, op)  # the same seeded fit, held fixed
        y1 = y.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(recon.data_consistency(coils, y1, op).abs().pow(2).sum(), y1)
    torch.testing.assert_close(grad, expected)
    assert grad.abs().sum() > 0 and (grad * ~op.mask).abs().max() == 0  # only through the sampled entries


def test_rss_and_magnitude_have_finite_gradients_at_exact_zeros():
    x = torch.zeros(1, 3, 4, 4, dtype=torch.complex64)
    x[0, :, 0, 0] = torch.tensor([1 + 1j, 2, 0])
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(rss(x, dim=1).sum() + magnitude(x).sum(), x)
    assert torch.isfinite(g.real).all() and torch.isfinite(g.imag).all()
    assert g[0, :, 1:, 1:].abs().max() == 0 and g[0, 0, 0, 0].abs() > 0
