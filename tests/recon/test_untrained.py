"""Un-trained networks (ConvDecoder, Deep Decoder, DIP): short fits on tiny problems."""

from functools import partial

import pytest
import torch

from explorer.physics import Operator, fft2c
from explorer.recon import untrained_nets as nets
from explorer.recon.base import build, get_method
from explorer.recon.fit import fit
from explorer.recon.untrained import PRESETS
from tests.conftest import phantom, smooth_maps

METHODS = ("convdecoder", "deep_decoder", "dip")
TINY = {"iterations": 60, "width": 16, "layers": 4}
NETS = {
    "convdecoder": lambda size, ch: nets.ConvDecoder(size, ch, 16, 4),
    "deep_decoder": lambda size, ch: nets.DeepDecoder(size, ch, 16, 4),
    "dip": lambda size, ch: nets.SkipNet(size, ch, 16, 3),
}


def _problem(h=32, w=32, coils=3):
    mask = torch.zeros(1, 1, 1, w, dtype=torch.bool)
    mask[..., ::3] = True
    mask[..., w // 2 - 3 : w // 2 + 3] = True
    op = Operator(mask, smooth_maps(coils, h, w)[None])
    return op.forward(phantom(h, w)[None]), op


def _recon(name, **kw):
    spec = get_method(name)
    return build(name, spec.make_config({**TINY, **kw}))


def _loss(coils, y, mask):
    return float(((fft2c(coils) - y) * mask).abs().pow(2).sum() / y.abs().pow(2).sum())


@pytest.mark.parametrize("name", METHODS)
def test_fit_lowers_loss_and_keeps_the_best_output(name):
    y, op = _problem()
    net, z = nets.build(partial(NETS[name], (32, 32), 6), torch.Generator().manual_seed(0))
    with torch.enable_grad():
        res = fit(net, z, y[0], op.mask[0], iterations=80, lr=0.03)
    assert len(res.losses) == 80 and not res.stopped
    assert res.best_loss < 0.3 * res.losses[0]
    assert res.best_loss == min(res.losses) <= res.losses[-1]
    # the returned coil images are the best iterate's output (in the units of y)
    assert _loss(res.coil_images, y[0], op.mask[0]) == pytest.approx(res.best_loss, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("name", METHODS)
def test_deterministic_under_seed_and_seed_matters(name):
    y, op = _problem()
    a, b = _recon(name, iterations=15)(y, op), _recon(name, iterations=15)(y, op)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    c = _recon(name, iterations=15, seed=1)(y, op)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", METHODS)
def test_stop_request_returns_early_with_a_finite_image(name, monkeypatch):
    monkeypatch.setattr("explorer.recon.base.PROGRESS_INTERVAL", 0.0)  # report every step
    y, op = _problem()
    calls = []

    def progress(step, total, info):
        calls.append((step, total, info["loss"]))
        return step >= 5

    x = _recon(name)(y, op, progress=progress)
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5] and calls[0][1] == TINY["iterations"]
    assert x.shape == (1, 32, 32) and torch.isfinite(x.real).all() and float(x.abs().max()) > 0


@pytest.mark.parametrize("name", METHODS)
def test_odd_sizes_and_scale_invariance(name):
    y, op = _problem(30, 26)
    x = _recon(name, iterations=10)(y, op)
    assert x.shape == (1, 30, 26) and x.dtype == torch.complex64
    # units do not matter: y is normalised before the fit (a power of two keeps the arithmetic exact)
    torch.testing.assert_close(_recon(name, iterations=10)(2.0**-20 * y, op), 2.0**-20 * x, rtol=1e-5, atol=0)


def test_patience_stops_a_stalled_fit(monkeypatch):
    monkeypatch.setattr("explorer.recon.base.PROGRESS_INTERVAL", 0.0)  # report every step
    y, op = _problem()
    seen = []
    _recon("convdecoder", iterations=200, lr=0.9, patience=3)(y, op, progress=lambda s, t, i: seen.append(s))
    assert 3 < len(seen) < 200 and seen == list(range(1, len(seen) + 1))


def test_fit_progress_is_throttled():
    y, op = _problem()
    seen = []
    _recon("convdecoder", iterations=60)(y, op, progress=lambda s, t, i: seen.append(s))
    assert seen[0] == 1 and seen[-1] == 60 and len(seen) < 60


def test_presets_and_overrides():
    cfg = get_method("convdecoder").make_config({"preset": "paper"})
    assert cfg.settings() == PRESETS["convdecoder"]["paper"]
    s = cfg.settings()
    assert (s.layers, s.width, s.iterations, s.lr) == (8, 160, 20000, 8e-3)
    cfg = get_method("convdecoder").make_config({"preset": "paper", "iterations": "500"})
    assert cfg.settings().iterations == 500 and cfg.settings().width == 160
    assert get_method("dip").config_cls().settings() == PRESETS["dip"]["fast"]


def test_architectures_hit_odd_sizes_and_geometric_grid():
    assert nets.geometric_sizes((8, 5), (640, 368), 7)[-1] == (640, 368)
    assert nets.aspect_size((640, 368), 8) == (8, 5)
    g = torch.Generator().manual_seed(0)
    for make in NETS.values():
        net, z = nets.build(partial(make, (31, 17), 4), g)
        assert net(z).shape == (1, 4, 31, 17)
    paper, z = nets.build(partial(nets.ConvDecoder, (64, 48), 16, 160, 8), g)
    assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in paper.modules()) == 8
