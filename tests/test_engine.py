import dataclasses

import numpy as np
import pytest
import torch

from explorer.data.fastmri import FastMRIVolume
from explorer.data.sample import SampleSpec, sample_path
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.engine import espirit_kernel_width, prepare, run_method


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
