"""Contract tests over every registered reconstructor: ``recon(y, op) -> x``."""

import dataclasses

import pytest
import torch

from explorer.physics import Operator, ifft2c, rss
from explorer.recon.base import available_methods, build, get_method
from tests.conftest import phantom, smooth_maps

# Smallest sensible settings for slow methods (by registry name); default config otherwise.
TINY: dict[str, dict] = {
    "convdecoder": {"iterations": 3, "width": 8, "layers": 3},
    "deep_decoder": {"iterations": 3, "width": 8, "layers": 3},
    "dip": {"iterations": 3, "width": 8, "layers": 2},
    "l1": {"iterations": 10},
    "tv": {"iterations": 20},
}

H, W, C = 32, 32, 4


@pytest.fixture(autouse=True, scope="module")
def _tiny_trained_checkpoints(tiny_checkpoints):
    """The trained networks run on tiny random-weight checkpoints (session fixture in conftest)."""
    for name, path in tiny_checkpoints.items():
        TINY[name] = {"checkpoint": str(path)}


def _problem(coils=C):
    mask = torch.zeros(1, 1, 1, W, dtype=torch.bool)
    mask[..., ::3] = True
    mask[..., 13:19] = True
    maps = smooth_maps(coils, H, W)[None] if coils > 1 else None
    op = Operator(mask, maps)
    x = phantom(H, W)[None]
    return op.forward(x), op, x


def _recon(spec):
    return build(spec.name, spec.make_config(TINY.get(spec.name)))


METHODS = [m.name for m in available_methods()]


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("coils", [1, C])
def test_shape_dtype_finite(name, coils):
    y, op, _ = _problem(coils)
    x = _recon(get_method(name))(y, op)
    assert x.shape == (1, H, W) and x.dtype == torch.complex64
    assert torch.isfinite(x.real).all() and torch.isfinite(x.imag).all()


@pytest.mark.parametrize("name", METHODS)
def test_deterministic(name):
    y, op, _ = _problem()
    torch.testing.assert_close(_recon(get_method(name))(y, op), _recon(get_method(name))(y, op))


@pytest.mark.parametrize("name", METHODS)
def test_gradient_with_respect_to_measurements(name):
    y, op, _ = _problem()
    y = y.clone().requires_grad_(True)
    x = _recon(get_method(name))(y, op)
    (g,) = torch.autograd.grad(x.abs().pow(2).sum(), y)
    assert torch.isfinite(g.real).all() and g.abs().sum() > 0


@pytest.mark.parametrize("name", METHODS)
def test_batch_items_are_independent(name):
    y, op, _ = _problem()
    y2 = torch.cat([y, 0.5 * y])
    op2 = op.with_maps(None if op.maps is None else op.maps.expand(2, -1, -1, -1))
    out = _recon(get_method(name))(y2, op2)
    torch.testing.assert_close(out[:1], _recon(get_method(name))(y, op), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", METHODS)
def test_config_is_frozen_hashable_and_documented(name):
    spec = get_method(name)
    cfg = spec.config_cls()
    hash(cfg)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, dataclasses.fields(cfg)[0].name, None)
    assert all(p.help for p in spec.params())


def test_sense_inverts_fully_sampled_data_and_beats_zero_filled_when_undersampled():
    y, op, x = _problem()
    full = op.with_mask(torch.ones(1, 1, 1, W, dtype=torch.bool))
    image = get_method("sense").make_config({"output": "image"})
    xs = build("sense", image)(full.forward(x), full)
    torch.testing.assert_close(xs, x, rtol=1e-3, atol=1e-3)
    # default output dc_rss: fully sampled, that is exactly the RSS of the measured coil images
    torch.testing.assert_close(build("sense")(full.forward(x), full).real, rss(ifft2c(full.forward(x)), dim=1))
    err_sense = (build("sense", image)(y, op).abs() - x.abs()).norm()
    err_zf = (build("zero_filled")(y, op).abs() - x.abs()).norm()
    assert err_sense < 0.8 * err_zf


def test_zero_filled_is_rss_of_inverse_fft():
    y, op, _ = _problem()
    torch.testing.assert_close(build("zero_filled")(y, op).real, rss(ifft2c(y), dim=1))


def test_anatomy_defaults_apply_under_user_values():
    from explorer.data.slice import anatomy_of
    from explorer.recon.sparse import tuned_lambda

    spec = get_method("l1")
    assert spec.make_config({}, anatomy="knee").lam == tuned_lambda("l1", "knee")
    assert spec.make_config({}, anatomy="brain").lam == tuned_lambda("l1", "brain")
    assert spec.make_config({"lam": "0.02"}, anatomy="knee").lam == 0.02  # the user's value wins
    assert {p.name: p.default for p in spec.params("knee")}["lam"] == tuned_lambda("l1", "knee")
    assert get_method("zero_filled").make_config({}, anatomy="knee") == get_method("zero_filled").make_config({})
    assert anatomy_of("CORPDFS_FBK") == "knee" and anatomy_of(b"AXFLAIR") == "brain" and anatomy_of("") is None
    assert anatomy_of(None, "sample:brain") == "brain"
