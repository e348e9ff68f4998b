"""Single-coil sparse recovery: defaults tuned per data kind (anatomy + single-coil), and l1's random cycle
spinning (BART pics' default): deterministic, differentiable, and what lifts single-coil l1 above zero-filled."""

import numpy as np
import pytest
import torch

from explorer.data.fastmri import FastMRIVolume
from explorer.data.sample import sample_path
from explorer.data.sample_sources import parse_source
from explorer.data.slice import defaults_key, key_anatomy
from explorer.engine import MethodInstance, prepare, run_method
from explorer.masks import MaskConfig
from explorer.physics import Operator
from explorer.recon.base import get_method
from explorer.recon.sparse import l1_wavelet, spin_shift, tuned_lambda
from tests.conftest import phantom


@pytest.fixture(scope="module")
def single_coil_knee(tmp_path_factory):
    import os

    os.environ.setdefault("EXPLORER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return FastMRIVolume(sample_path(parse_source("sample:knee,coils=1,size=64,slices=1"))).read_slice(0)


def test_single_coil_data_gets_its_own_tuned_defaults(single_coil_knee):
    assert defaults_key("knee", "singlecoil") == "knee/singlecoil" and defaults_key(None, "singlecoil") == "singlecoil"
    assert defaults_key("brain", "multicoil") == "brain" and key_anatomy("knee/singlecoil") == "knee"
    assert single_coil_knee.meta.defaults_key == "knee/singlecoil"
    assert tuned_lambda("l1", "knee/singlecoil") == 0.01 != tuned_lambda("l1", "knee")
    assert tuned_lambda("tv", "knee/singlecoil") == 0.02 and tuned_lambda("tv", "singlecoil") == 0.03
    assert get_method("l1").make_config({}, anatomy="knee/singlecoil").lam == 0.01
    assert get_method("unet").make_config({}, anatomy="brain/singlecoil").checkpoint == "brain"  # the anatomy part


def test_cycle_spinning_is_deterministic_and_lifts_single_coil_l1(single_coil_knee):
    p = prepare(single_coil_knee, MaskConfig("random", 4, 0.16, seed=0), "cpu")
    key = single_coil_knee.meta.defaults_key
    spun, again, plain = (run_method(p, MethodInstance.of("l1", {"spin": s}, anatomy=key)) for s in (True, True, False))
    np.testing.assert_array_equal(spun.image, again.image)
    zero_filled = run_method(p, "zero_filled").metrics["ssim"]
    assert spun.metrics["ssim"] > zero_filled + 0.01 > plain.metrics["ssim"], (spun.metrics, zero_filled, plain.metrics)
    shifts = {spin_shift(k, 4) for k in range(50)}
    assert len(shifts) > 20 and all(0 <= dy < 16 and 0 <= dx < 16 for dy, dx in shifts)


def test_cycle_spinning_is_differentiable_exactly(one_thread):
    """The shifts are a fixed function of the iteration, so autograd's directional derivative matches a
    central finite difference (float64)."""
    h = w = 32
    mask = torch.zeros(1, 1, 1, w, dtype=torch.bool)
    mask[..., ::2] = True
    mask[..., 14:18] = True
    op = Operator(mask=mask)
    x = phantom(h, w).to(torch.complex128)
    y = (op.forward(x[None]))
    direction = torch.randn(y.shape, dtype=torch.complex128, generator=torch.Generator().manual_seed(0)) * mask
    y = y.clone().requires_grad_(True)
    out = l1_wavelet(y, op, 0.01, 20, "db2", 3, spin=True).abs().pow(2).sum()
    (grad,) = torch.autograd.grad(out, y)
    analytic = float((grad.conj() * direction).real.sum())
    eps = 1e-6
    with torch.no_grad():
        f = [float(l1_wavelet(y + s * eps * direction, op, 0.01, 20, "db2", 3, spin=True).abs().pow(2).sum())
             for s in (1, -1)]
    numeric = (f[0] - f[1]) / (2 * eps)
    assert analytic == pytest.approx(numeric, rel=1e-4)
