import dataclasses

import numpy as np
import pytest
import torch

from explorer.data.fastmri import FastMRIVolume
from explorer.data.sample import SampleSpec, sample_path
from explorer.engine import espirit_kernel_width, prepare, run_method
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    import os
    os.environ.setdefault("EXPLORER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return FastMRIVolume(sample_path(SampleSpec(size=64, slices=3))).read_slice(1)


def test_measurements_are_masked_kspace(small_sample):
    p = prepare(small_sample, MaskConfig("random", 3, 0.2, seed=1))
    cols = p.sampled.mask.reshape(-1)
    assert p.y.shape == (1, 8, 64, 64)
    assert torch.equal(p.y[0][..., cols], small_sample.kspace[..., cols])
    assert (p.y[0][..., ~cols] == 0).all()


def test_espirit_kernel_is_standard_for_standard_calibration_and_narrowed_for_small_centres():
    assert espirit_kernel_width((24, 24), 8) == 6 and espirit_kernel_width((24, 24), 15) == 6
    assert espirit_kernel_width((24, 6), 8) == 3


@pytest.mark.parametrize("cf", [0.1, 0.2])
def test_sense_beats_nothing_on_small_images_with_narrow_centres(small_sample, cf):
    # regression: a 6-column centre once gave empty ESPIRiT maps and a black SENSE image
    p = prepare(small_sample, MaskConfig("random", 3, cf, seed=0))
    maps = p.maps_and_seconds[0]
    assert (maps.abs().sum(1) > 0).float().mean() > 0.5
    zf, sense = run_method(p, "zero_filled"), run_method(p, "sense")
    assert sense.metrics["ssim"] > 0.5 and sense.metrics["nmse"] < 0.1
    assert sense.image.shape == zf.image.shape == small_sample.target.shape


def test_too_small_centre_is_a_clear_error(small_sample):
    p = prepare(small_sample, MaskConfig("equispaced", 8, 0.03))
    with pytest.raises(ExplorerError, match="too small for ESPIRiT|fully sampled centre"):
        run_method(p, "sense")
    assert np.isfinite(run_method(p, "zero_filled").image).all()


def test_maps_are_estimated_once_under_concurrent_access(small_sample, monkeypatch):
    import threading

    import explorer.engine.problem as pipeline

    p = prepare(small_sample, MaskConfig("random", 3, 0.2, seed=2))
    assert not p.maps_ready
    count = []
    real = pipeline.Problem._estimate_maps
    monkeypatch.setattr(pipeline.Problem, "_estimate_maps", lambda self: count.append(1) or real(self))
    got = []
    threads = [threading.Thread(target=lambda: got.append(p.maps_and_seconds[0])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(count) == 1 and p.maps_ready
    assert all(m is got[0] for m in got)


def test_a_stop_request_after_the_last_step_does_not_mark_the_result_stopped(small_sample, monkeypatch):
    from explorer.recon import base

    def one_shot(config):
        def recon(y, op, progress=None):
            for step in (1, 2):
                if progress is not None and progress(step, 2, {"loss": 1.0 / step}):
                    break
            return torch.zeros(y.shape[0], *y.shape[-2:], dtype=y.dtype)
        return recon

    base.available_methods()
    monkeypatch.setitem(base.REGISTRY, "two_steps", base.MethodSpec(
        "two_steps", "Two steps", "sparse", base.get_method("zero_filled").config_cls, one_shot, "test", lambda c: False))
    p = prepare(small_sample, MaskConfig("random", 3, 0.2, seed=1))
    asks = []
    done = run_method(p, "two_steps", progress=lambda s, t, i: asks.append(s) or s == 2)  # asks to stop at the end
    assert done.steps == (2, 2) and not done.stopped and done.history == ((1, 1.0), (2, 0.5))
    early = run_method(p, "two_steps", progress=lambda s, t, i: True)  # asks to stop after step 1
    assert early.steps == (1, 2) and early.stopped


def test_run_batch_matches_single_runs_also_with_each_problems_own_maps(small_sample):
    from explorer.engine import run_batch

    problems = [prepare(small_sample, MaskConfig("random", 3, 0.2, seed=s)) for s in (1, 2)]
    for name in ("zero_filled", "sense"):
        batch = run_batch(problems, name)
        for p, r in zip(problems, batch):
            single = run_method(p, name)
            np.testing.assert_allclose(r.image, single.image, rtol=1e-4, atol=1e-6 * single.image.max())
            assert r.metrics["ssim"] == pytest.approx(single.metrics["ssim"], abs=1e-5)
    other = prepare(small_sample, MaskConfig("random", 3, 0.2, seed=1), "cpu")
    bigger = dataclasses.replace(other, y=torch.zeros(1, 8, 64, 32, dtype=torch.complex64))
    with pytest.raises(ExplorerError, match="one k-space shape"):
        run_batch([other, bigger], "zero_filled")


# ----------------------------------------------------------------------------- reconstruct / score / maps policy


def test_reconstruct_is_a_tensor_in_the_callers_grad_mode_and_score_matches_run_method(small_sample):
    from explorer.engine import MethodInstance, reconstruct, score

    p = prepare(small_sample, MaskConfig("random", 3, 0.2, seed=1))
    sense = MethodInstance.of("sense")
    x = reconstruct(p, sense)
    assert isinstance(x, torch.Tensor) and x.shape == (1, 64, 64) and x.device == p.device
    result = run_method(p, sense)
    scored = score(p, x)
    np.testing.assert_array_equal(scored.image, result.image)
    assert scored.metrics == result.metrics and not x.requires_grad
    y = p.y.clone().requires_grad_(True)
    with torch.enable_grad():
        x = reconstruct(p.perturbed(y=y), sense)
        (g,) = torch.autograd.grad(x.abs().sum(), y)
    assert x.requires_grad and torch.isfinite(g.real).all() and g.abs().sum() > 0


def test_a_perturbed_problem_keeps_the_clean_maps_unless_asked_to_reestimate(small_sample, monkeypatch):
    import explorer.engine.problem as problem_mod

    p = prepare(small_sample, MaskConfig("random", 3, 0.2, seed=2))
    clean_maps = p.maps_and_seconds[0]
    count = []
    real = problem_mod.Problem._estimate_maps
    monkeypatch.setattr(problem_mod.Problem, "_estimate_maps", lambda self: count.append(1) or real(self))
    g = torch.Generator().manual_seed(0)
    e = 0.3 * p.kspace.norm() * torch.randn(p.kspace.shape, generator=g, dtype=torch.complex64) / p.kspace.numel() ** 0.5
    fixed = p.perturbed(e=e)
    assert fixed.maps_policy == "fixed" and fixed.maps_and_seconds[0] is clean_maps and count == []
    assert torch.equal(fixed.y, (p.kspace + e) * p.sampled.mask)
    assert run_method(fixed, "sense").metrics["ssim"] < run_method(p, "sense").metrics["ssim"]
    assert count == []  # reconstructing the perturbed problem never re-estimated maps
    again = p.perturbed(e=e, maps="reestimate")
    assert not again.maps_ready and again.maps_and_seconds[0] is not clean_maps and count == [1]
    assert not torch.allclose(again.maps_and_seconds[0], clean_maps)
    with pytest.raises(ExplorerError, match="one of"):
        p.perturbed(e=e, y=p.y)
    with pytest.raises(ExplorerError, match="policy"):
        p.perturbed(e=e, maps="sometimes")


def test_problems_pickle_with_their_maps(small_sample):
    import pickle

    p = prepare(small_sample, MaskConfig("random", 3, 0.2, seed=1))
    p.maps_and_seconds  # noqa: B018 (estimate)
    q = pickle.loads(pickle.dumps(p))
    assert q.maps_ready and torch.equal(q.maps_and_seconds[0], p.maps_and_seconds[0]) and torch.equal(q.y, p.y)
    assert q.device == p.device and q.sampled.config == p.sampled.config
    assert run_method(q, "sense").metrics == run_method(p, "sense").metrics
    fixed = pickle.loads(pickle.dumps(p.perturbed(y=p.y * 1.1)))
    assert fixed.maps_policy == "fixed" and torch.equal(fixed.maps_and_seconds[0], p.maps_and_seconds[0])


# ----------------------------------------------------------------------------- method instances


def test_instances_of_one_method_run_side_by_side_under_their_labels(small_sample, tiny_checkpoints):
    from explorer.engine import MethodInstance

    p = prepare(small_sample, MaskConfig("random", 3, 0.2, seed=1))
    a = MethodInstance.of("l1", {"lam": 0.001, "iterations": 5}, label="l1 weak")
    b = MethodInstance.of("l1", {"lam": 0.1, "iterations": 5}, label="l1 strong")
    ra, rb = run_method(p, a), run_method(p, b)
    assert (ra.label, ra.instance, rb.label, rb.instance) == ("l1 weak", "l1 weak", "l1 strong", "l1 strong")
    assert ra.method == rb.method == "l1" and ra.metrics != rb.metrics
    assert MethodInstance.of("sense").display == "SENSE (CG)"
    with pytest.raises(ExplorerError, match="label"):
        MethodInstance("", "sense")
    with pytest.raises(ExplorerError, match="label"):
        MethodInstance("a/b", "sense")
    with pytest.raises(ExplorerError, match="is not a"):
        MethodInstance("x", "sense", a.config)


# ----------------------------------------------------------------------------- networks: copies and k-space


def test_adapting_a_trainable_copy_changes_neither_the_cached_model_nor_cached_results(small_sample, tiny_checkpoints):
    from explorer.engine import MethodInstance, kspace_loss, reconstruct, score, trainable_copy

    p = prepare(small_sample, MaskConfig("random", 3, 0.2, seed=1))
    for kind, path in tiny_checkpoints.items():
        instance = MethodInstance.of(kind, {"checkpoint": str(path), "crop": 64})
        shared = instance.build().module
        before = {k: v.clone() for k, v in shared.state_dict().items()}
        result = run_method(p, instance)
        copy_ = trainable_copy(instance)
        assert copy_.module is not shared and all(q.requires_grad for q in copy_.module.parameters())
        optimizer = torch.optim.Adam(copy_.module.parameters(), lr=1e-2)
        op = p.operator(True)
        losses = []
        for _ in range(3):
            optimizer.zero_grad()
            loss = kspace_loss(copy_.kspace(p.y, op), p.y, op.mask).sum()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        assert all(torch.equal(before[k], v) for k, v in shared.state_dict().items())  # the shared model is untouched
        assert all(not q.requires_grad for q in shared.parameters()) and not shared.training
        assert any(not torch.equal(before[k], v) for k, v in copy_.module.state_dict().items())
        again = run_method(p, instance)
        np.testing.assert_array_equal(again.image, result.image)  # a cached result is unchanged
        with torch.no_grad():
            adapted = reconstruct(p, instance, reconstructor=copy_)
        assert not np.allclose(score(p, adapted).image, result.image)  # the adapted copy reconstructs differently
    with pytest.raises(ExplorerError, match="no trained weights"):
        trainable_copy(MethodInstance.of("sense"))


def test_kspace_loss_is_zero_at_the_true_image_for_every_network(tiny_checkpoints):
    from torch import nn

    from explorer.engine import kspace_loss
    from explorer.physics import Operator, center_crop, fft2c, ifft2c, rss
    from explorer.recon.fastmri_transforms import unet_input
    from explorer.recon.unet import UnetRecon
    from tests.conftest import phantom, smooth_maps

    h = w = 32
    maps = smooth_maps(4, h, w)[None]
    x_true = phantom(h, w)[None]
    mask = torch.zeros(1, 1, 1, w, dtype=torch.bool)
    mask[..., ::2] = True
    op = Operator(mask, maps)
    y = op.forward(x_true)
    assert float(kspace_loss(fft2c(maps * x_true.unsqueeze(1)), y, mask)) == 0.0

    class Oracle(nn.Module):  # a "U-net" that returns the true magnitude (normalised as the U-net's output)
        in_chans = out_chans = 1
        num_pool_layers = 0

        def __init__(self, inp):
            super().__init__()
            self.out = ((x_true.abs() - inp.mean[:, None, None]) / inp.std[:, None, None]).float()

        def forward(self, image):
            return self.out.unsqueeze(1)

    full = op.with_mask(torch.ones_like(mask))
    y_full = full.forward(x_true)
    oracle = UnetRecon(Oracle(unet_input(y_full, full.mask, (h, w))), crop=h)
    # phase from A^H y (= x* when fully sampled, unit-norm maps): the predicted k-space is y itself
    assert float(kspace_loss(oracle.kspace(y_full, full), y_full, full.mask)) < 1e-5
    # VarNet: its predicted k-space is what its image summarises (RSS of the inverse FFT)
    from explorer.engine import MethodInstance

    varnet = MethodInstance.of("varnet", {"checkpoint": str(tiny_checkpoints["varnet"]), "crop": h}).build()
    with torch.no_grad():
        k = varnet.kspace(y, op)
        torch.testing.assert_close(center_crop(rss(ifft2c(k), dim=1), (h, w)), varnet(y, op).real, rtol=1e-4, atol=1e-6)
    assert k.shape == y.shape
