"""Two ESPIRiT map sets ("soft SENSE") for a field of view smaller than the object: the estimate (against
BART's ``ecalib -m2``), the operator with a set axis, the methods that use maps, and the ``auto`` choice."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.data.cfl import read_cfl, write_cfl
from explorer.data.fastmri import FastMRIVolume
from explorer.data.sample import SampleSpec, generate, sample_path
from explorer.data.sample_sources import parse_source
from explorer.engine import MethodInstance, prepare, run_method
from explorer.errors import ExplorerError
from explorer.espirit import espirit, espirit_maps
from explorer.masks import MaskConfig
from explorer.physics import Operator, combine_sets
from explorer.recon.sparse import data_scale, l1_wavelet, lipschitz

BART = shutil.which("bart") or "/usr/bin/bart"
needs_bart = pytest.mark.skipif(not Path(BART).exists(), reason="BART (Debian package bart) is not installed")
FOLDED = "sample:knee,fov=0.75,size=96,slices=1"


@pytest.fixture(scope="module")
def folded_kspace():
    """Fully sampled k-space ``(8, 64, 38)`` of the brain sample with a 0.6x phase-encode field of view."""
    k, _ = generate(SampleSpec(family="brain", size=64, slices=1, fov=0.6))
    return torch.from_numpy(k[0])


def _bart(*args):
    subprocess.run([BART, *args], check=True, capture_output=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_two_sets_extend_the_one_set_estimate(folded_kspace):
    maps, values = espirit(folded_kspace, (24, 24), 6, sets=2)
    assert maps.shape == (1, 2, 8, 64, 38) and values.shape == (1, 2, 64, 38)
    torch.testing.assert_close(maps[0, 0], espirit_maps(folded_kspace, (24, 24), 6), rtol=0, atol=0)
    assert bool((values[0, 0] >= values[0, 1] - 1e-5).all())
    both = (maps[0, 0].abs().sum(0) > 0) & (maps[0, 1].abs().sum(0) > 0)
    assert int(both.sum()) > 20  # the folded region has two sets
    inner = (maps[0, 0].conj() * maps[0, 1]).sum(0).abs()[both]
    assert float(inner.max()) < 1e-3  # orthogonal eigenvectors
    norms = maps[0, 1].abs().pow(2).sum(0)[both]
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=1e-4)
    with pytest.raises(ExplorerError, match="map sets must be 1 or 2"):
        espirit(folded_kspace, (24, 24), 6, sets=3)


@needs_bart
def test_two_sets_agree_with_bart_ecalib_m2(folded_kspace, tmp_path):
    """Each pixel's two maps span the same subspace as BART's (eigenvectors of a double eigenvalue are only
    defined up to a rotation within it), and single eigenvectors agree up to phase where the eigenvalues differ."""
    write_cfl(tmp_path / "ksp", folded_kspace.permute(1, 2, 0).numpy()[:, :, None, :])
    _bart("ecalib", "-m2", "-r", "24", "-k", "6", "-t", "0.0004", "-c", "0.95", str(tmp_path / "ksp"),
          str(tmp_path / "sens"), str(tmp_path / "ev"))
    h, w = folded_kspace.shape[-2:]
    theirs = torch.from_numpy(read_cfl(tmp_path / "sens").reshape(h, w, 8, 2)).permute(3, 2, 0, 1)  # (K, C, H, W)
    ours, values = espirit(folded_kspace, (24, 24), 6, sets=2)
    basis, _ = torch.linalg.qr(ours[0].permute(2, 3, 1, 0))  # (H, W, C, K)
    for k in range(2):
        b = theirs[k].permute(1, 2, 0)
        norm = b.abs().pow(2).sum(-1).sqrt()
        inside = (norm > 0) & (ours[0, k].abs().sum(0) > 0)
        inside &= (values[0, k] - 0.95).abs() > 0.02  # not on the crop edge, where the two crops may differ
        captured = (basis.mH @ b.unsqueeze(-1)).squeeze(-1).abs().pow(2).sum(-1).sqrt() / norm.clamp_min(1e-12)
        assert int(inside.sum()) > 20 and float(captured[inside].mean()) > 0.995, k
    separated = (values[0, 0] - values[0, 1]).abs() > 0.1
    a, b = ours[0, 0], theirs[0]
    both = separated & (a.abs().sum(0) > 0) & (b.abs().sum(0) > 0)
    cosine = (a.conj() * b).sum(0).abs() / (a.abs().pow(2).sum(0) * b.abs().pow(2).sum(0)).sqrt()
    assert float(cosine[both].min()) > 0.99


def test_operator_with_sets_is_adjoint_and_unit_lipschitz(folded_kspace):
    maps, _ = espirit(folded_kspace, (24, 24), 6, sets=2)
    mask = torch.zeros(1, 1, 1, 38, dtype=torch.bool)
    mask[..., ::2] = True
    op = Operator(mask=mask, maps=maps)
    assert op.sets == 2 and op.num_coils == 8 and op.image_shape(1, 64, 38) == (1, 2, 64, 38)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 64, 38, dtype=torch.complex64, generator=g)
    y = torch.randn(1, 8, 64, 38, dtype=torch.complex64, generator=g) * mask
    lhs, rhs = (op.forward(x).conj() * y).sum(), (x.conj() * op.adjoint(y)).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-4, atol=1e-3)
    assert float(lipschitz(op)) == pytest.approx(1.0, abs=1e-3)  # orthonormal ESPIRiT sets
    assert combine_sets(x, op).shape == (1, 64, 38)
    torch.testing.assert_close(combine_sets(x, op).real, x.abs().pow(2).sum(1).sqrt())


@needs_bart
@pytest.mark.usefixtures("one_thread")
def test_l1_with_two_sets_matches_bart_pics(tmp_path):
    """The same problem for both (our two-set maps, the mask, our data scale via ``-w``; orthonormal Haar without
    cycle spinning): our objective is at most BART's, and the root-sum-of-squares of the set images agree within
    2% NRMSE (measured 1.0%; one set on the same data: 1.0% too)."""
    from explorer.recon.sparse import l1_objective

    from explorer.physics import fft2c, ifft2c

    k = torch.from_numpy(generate(SampleSpec(family="knee", size=128, slices=1, fov=0.5))[0][0])  # (8, 128, 64)
    k = fft2c(ifft2c(k)[:, 32:96])  # square 64 x 64 (BART's Haar levels then match ours), folded along W
    maps, _ = espirit(k, (24, 24), 6, sets=2)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(1, 1, 1, 64, generator=g) < 0.3
    mask[..., 26:38] = True
    y = k[None] * mask
    op = Operator(mask=mask, maps=maps)
    lam, iterations = 0.01, 300
    ours = l1_wavelet(y, op, lam, iterations, "haar", 3)
    scale = float(data_scale(y, op))
    write_cfl(tmp_path / "ksp", y[0].permute(1, 2, 0).numpy()[:, :, None, :])
    write_cfl(tmp_path / "sens", maps[0].permute(2, 3, 1, 0).numpy()[:, :, None, :, :])
    _bart("pics", "-S", "-n", "-w", f"{scale:.9g}", "--wavelet", "haar", "-R", f"W:3:0:{lam}", "-i", str(iterations),
          str(tmp_path / "ksp"), str(tmp_path / "sens"), str(tmp_path / "out"))
    theirs = torch.from_numpy(read_cfl(tmp_path / "out").reshape(64, 64, 2)).permute(2, 0, 1)[None]
    objective = [float(l1_objective(x, y, op, lam, "haar", 3)) for x in (ours, theirs)]
    assert objective[0] <= objective[1] * (1 + 1e-3), objective
    a, b = combine_sets(ours, op).abs(), combine_sets(theirs, op).abs()
    nrmse = float((a - b).norm() / b.norm())
    assert nrmse < 0.02, nrmse


@pytest.fixture(scope="module")
def folded_problem(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    import os

    old = os.environ.get("EXPLORER_CACHE_DIR")
    os.environ["EXPLORER_CACHE_DIR"] = str(cache)
    try:
        sl = FastMRIVolume(sample_path(parse_source(FOLDED))).read_slice(0)
    finally:
        if old is None:
            os.environ.pop("EXPLORER_CACHE_DIR")
        else:
            os.environ["EXPLORER_CACHE_DIR"] = old
    return prepare(sl, MaskConfig("random", 4, 0.16, seed=0), "cpu")


def test_two_sets_help_every_method_that_uses_maps_on_folded_anatomy(folded_problem):
    """The folded knee (0.75x phase-encode field of view, 96x72, 4x random): with two map sets SENSE, l1 and
    TV score higher than with one, and SENSE rises above zero-filled; auto chooses two and says so."""
    p = folded_problem
    chosen = p.coil_maps("auto")
    assert chosen.sets == 2 and chosen.maps.shape == (1, 2, 8, 96, 72) and chosen.folded > 0.05
    assert chosen.note.startswith("2 ESPIRiT map sets (auto: second eigenvalue >= 0.95 over")
    zero_filled = run_method(p, "zero_filled").metrics["ssim"]
    for name in ("sense", "l1", "tv"):
        one, two = (run_method(p, MethodInstance.of(name, {"maps": k}, anatomy="knee")) for k in ("1", "2"))
        assert two.metrics["ssim"] > one.metrics["ssim"] + 0.01, name
        assert two.notes == ("2 ESPIRiT map sets (second eigenvalue >= 0.95 over "
                             f"{100 * chosen.folded:.1f}% of the object)",) and one.notes == ("1 ESPIRiT map set",)
    sense_two = run_method(p, MethodInstance.of("sense", {"maps": "2"})).metrics["ssim"]
    assert sense_two > zero_filled
    auto = run_method(p, MethodInstance.of("l1", anatomy="knee"))
    assert auto.notes[0].startswith("2 ESPIRiT map sets (auto:")


def test_auto_keeps_one_set_without_folding():
    sl = FastMRIVolume(sample_path(SampleSpec(family="brain", size=64, slices=1))).read_slice(0)
    p = prepare(sl, MaskConfig("random", 3, 0.2, seed=1), "cpu")
    chosen = p.coil_maps("auto")
    assert chosen.sets == 1 and chosen.maps.shape == (1, 8, 64, 64) and chosen.folded < 0.02
    torch.testing.assert_close(chosen.maps, p.coil_maps("1").maps, rtol=0, atol=0)
    auto, one = (run_method(p, MethodInstance.of("l1", {"maps": k})) for k in ("auto", "1"))
    np.testing.assert_array_equal(auto.image, one.image)
    with pytest.raises(ExplorerError, match="coil map sets must be one of auto, 1, 2"):
        p.coil_maps("3")


def test_unet_kspace_with_two_sets_is_exact_for_the_true_magnitude(folded_kspace):
    """With fully sampled data and two orthonormal map sets, a U-net that returns the RSS of the set images
    predicts the measured k-space exactly (zero self-supervised loss), as with one set."""
    from explorer.engine.core import kspace_loss
    from explorer.recon.unet import UnetRecon

    maps, _ = espirit(folded_kspace, (24, 24), 6, sets=2)
    mask = torch.ones(1, 1, 1, 38, dtype=torch.bool)
    op = Operator(mask=mask, maps=maps)
    x = op.adjoint(folded_kspace[None])
    y = op.forward(x)  # the data the two-set model represents exactly
    magnitude = combine_sets(op.adjoint(y), op).abs()

    class Oracle(UnetRecon):
        def _magnitude(self, y, mask, hw):
            return magnitude[..., : hw[0], : hw[1]]

    recon = Oracle(torch.nn.Module(), crop=(64, 38))
    assert float(kspace_loss(recon.kspace(y, op), y, mask)) < 1e-4  # float32 round-off
    magnitude = magnitude * 1.1
    assert float(kspace_loss(recon.kspace(y, op), y, mask)) == pytest.approx(0.1, rel=1e-3)


def test_one_set_reuses_an_estimate_of_two():
    sl = FastMRIVolume(sample_path(SampleSpec(family="knee", size=64, slices=1))).read_slice(0)
    p = prepare(sl, MaskConfig("random", 3, 0.2, seed=1), "cpu")
    two = p.coil_maps("2")
    assert p.has_maps("2") and not p.has_maps("1")
    one = p.coil_maps("1")
    assert one.seconds == 0.0 and torch.equal(one.maps, two.maps[:, 0])
    fresh = prepare(sl, MaskConfig("random", 3, 0.2, seed=1), "cpu")
    torch.testing.assert_close(fresh.coil_maps("1").maps, one.maps, rtol=0, atol=0)  # the same as estimating it


def test_the_crop_threshold_is_exposed(capsys, tmp_path, monkeypatch):
    import json

    from explorer.cli.main import main

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    args = ["recon", "--data", "sample:knee,size=64,slices=1,coils=4", "--center-fraction", "0.2", "--method", "sense",
            "--set", "sense.output=image", "--json"]
    ssim = {}
    for crop in ("0.95", "0.5"):
        assert main([*args, "--maps-crop", crop]) == 0
        ssim[crop] = json.loads(capsys.readouterr().out)["results"][0]["ssim"]
    assert ssim["0.95"] != ssim["0.5"]  # a wider map support changes the SENSE image
    assert main([*args, "--maps-crop", "1.5"]) == 2
    assert "the ESPIRiT crop threshold must be in [0, 1], got 1.5" in capsys.readouterr().err
    sl = FastMRIVolume(sample_path(SampleSpec(family="knee", size=64, slices=1))).read_slice(0)
    wide = prepare(sl, MaskConfig("random", 3, 0.2, seed=1), "cpu", crop=0.5).coil_maps("2")
    tight = prepare(sl, MaskConfig("random", 3, 0.2, seed=1), "cpu").coil_maps("2")
    assert int((wide.maps.abs().sum(2) > 0).sum()) > int((tight.maps.abs().sum(2) > 0).sum())
    assert "0.5 over" in wide.note
