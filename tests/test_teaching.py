"""The teaching helpers (explorer.teaching.lessons, explorer.teaching.path, explorer.figures.teaching) at 32-64 px."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.data.fastmri import FastMRIVolume
from explorer.data.sample import SampleSpec, sample_path
from explorer.engine import prepare
from explorer.errors import ExplorerError
from explorer.figures import teaching as teaching_figures
from explorer.masks import MaskConfig, make_mask
from explorer.physics import combine_sets, fft2c, ifft2c, rss
from explorer.recon.fit import fit
from explorer.recon.sparse import l1_wavelet, total_variation
from explorer.teaching import lessons as teaching
from explorer.teaching import path as teaching_path
from tests.conftest import multicoil_kspace


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    import os
    os.environ.setdefault("EXPLORER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return FastMRIVolume(sample_path(SampleSpec(size=64, slices=3))).read_slice(1)


@pytest.fixture(scope="module")
def kspace():
    return torch.from_numpy(multicoil_kspace(slices=1, coils=4, h=48, w=40)[0])  # (4, 48, 40)


# ----------------------------------------------------------------------------- regions

@pytest.mark.parametrize("kind", list(teaching.REGION_KINDS))
def test_region_masks_have_the_promised_geometry(kind):
    region = teaching.Region(kind, 0.25, 0.5)
    m = teaching.region_mask(region, (48, 40))
    assert m.shape == (48, 40) and m.dtype == bool
    centre = m[24, 20]
    assert centre == (kind not in ("periphery", "annulus"))
    if kind in ("disc", "square", "rows", "columns"):
        assert not m[0, 0]  # the corner is outside every centre region
    if kind == "rows":
        assert m[24].all() and not m[:, 0].all()
    if kind == "columns":
        assert m[:, 20].all() and not m[0].all()
    if kind == "annulus":
        assert m[24, 20 + 7] and not m[24, 20 + 3] and not m[24, 0]  # 7/20 = 0.35 inside, 3/20 and 1.0 outside


def test_centre_and_periphery_coil_images_add_up_to_the_full_image(kspace):
    disc = teaching.region_mask(teaching.Region("disc", 0.2), kspace.shape[-2:])
    periphery = teaching.region_mask(teaching.Region("periphery", 0.2), kspace.shape[-2:])
    assert not (disc & periphery).any() and (disc | periphery).all()
    total = teaching.region_coil_images(kspace, disc) + teaching.region_coil_images(kspace, periphery)
    torch.testing.assert_close(total, ifft2c(kspace), atol=1e-5, rtol=1e-5)
    full = teaching.region_image(kspace, np.ones(kspace.shape[-2:], bool))
    np.testing.assert_allclose(full, rss(ifft2c(kspace), dim=0).numpy(), atol=1e-5)
    # the centre holds most of the energy; the two shares add up to 1
    share = teaching.energy_share(kspace, disc)
    assert 0.5 < share < 1 and share + teaching.energy_share(kspace, periphery) == pytest.approx(1.0)


def test_region_image_crops_and_a_centre_image_is_blurred(kspace):
    disc = teaching.region_mask(teaching.Region("disc", 0.1), kspace.shape[-2:])
    full = teaching.region_image(kspace, np.ones(kspace.shape[-2:], bool), crop=(32, 32))
    low = teaching.region_image(kspace, disc, crop=(32, 32))
    assert full.shape == low.shape == (32, 32)
    # a low-pass image has much weaker edges (finite differences) than the full one
    assert np.abs(np.diff(low, axis=1)).sum() < 0.8 * np.abs(np.diff(full, axis=1)).sum()


@pytest.mark.parametrize("bad", [dict(kind="blob"), dict(radius=-0.1), dict(radius=2.0),
                                 dict(kind="annulus", radius=0.5, outer=0.3), dict(radius=float("nan"))])
def test_bad_regions_are_one_line_errors(bad):
    with pytest.raises(ExplorerError):
        teaching.Region(**bad)


# ----------------------------------------------------------------------------- point-spread functions

def test_psf_of_a_full_mask_is_a_delta():
    psf = teaching.point_spread_function(np.ones((32, 32), bool))
    expected = np.zeros((32, 32))
    expected[16, 16] = 1
    np.testing.assert_allclose(np.abs(psf), expected, atol=1e-12)
    assert teaching.sidelobe_to_peak(psf) == pytest.approx(0, abs=1e-12)
    db = teaching.psf_decibels(psf)
    assert db[16, 16] == 0 and db.min() == -60


@pytest.mark.parametrize("r", [2, 3, 4])
def test_equispaced_psf_has_r_equal_peaks(r):
    pattern = np.zeros((32, 48), bool)
    pattern[:, ::r] = True
    psf = np.abs(teaching.point_spread_function(pattern))
    peaks = np.argwhere(psf > 0.5)
    assert len(peaks) == r  # the image and R - 1 aliases, W / R apart on the centre row, all of full strength
    assert set(peaks[:, 0]) == {16}
    assert sorted((peaks[:, 1] - 24) % 48) == [i * 48 // r for i in range(r)]
    assert teaching.sidelobe_to_peak(psf) == pytest.approx(1.0)


def test_poisson_psf_side_lobes_are_lower_than_equispaced_ones():
    shape = (64, 64)
    spr = {t: teaching.sidelobe_to_peak(teaching.point_spread_function(make_mask(MaskConfig(t, 4.0), shape).pattern(shape)))
           for t in ("equispaced", "random", "poisson")}
    assert spr["poisson"] < spr["random"] < spr["equispaced"]
    assert 0 < spr["poisson"] < 0.5 < spr["equispaced"]


def test_side_lobes_exclude_the_main_lobe():
    psf = np.zeros((9, 9))
    psf[4, 4], psf[4, 5], psf[1, 1] = 1.0, 0.6, 0.2
    assert teaching.sidelobe_to_peak(psf) == pytest.approx(0.2)  # the neighbour is main lobe
    assert teaching.sidelobe_to_peak(psf, main_lobe=0) == pytest.approx(0.6)


def test_empty_pattern_is_an_error():
    with pytest.raises(ExplorerError):
        teaching.point_spread_function(np.zeros((8, 8), bool))


# ----------------------------------------------------------------------------- iterates

@pytest.mark.parametrize("name", ["l1", "tv"])
def test_iterate_k_equals_a_run_of_k_iterations(small_sample, name):
    problem = prepare(small_sample, MaskConfig("random", 3.0, 0.2, seed=1), "cpu")
    results = teaching.iterates(problem, name, (1, 3, 8), anatomy="knee", output="image")
    op = problem.operator("auto")
    solver = l1_wavelet if name == "l1" else total_variation
    inst = teaching.iterate_instance(name, 8, "knee", "image")
    kwargs = dict(wavelet=inst.config.wavelet, levels=inst.config.levels, spin=inst.config.spin) if name == "l1" else {}
    with torch.no_grad():
        x8 = solver(problem.y, op, inst.config.lam, 8, **kwargs)
    np.testing.assert_allclose(results[-1].image, combine_sets(x8, op)[0].abs().numpy(), rtol=1e-5, atol=1e-6)
    assert [r.config.iterations for r in results] == [1, 3, 8]
    assert not np.allclose(results[0].image, results[-1].image)  # the iterates move
    assert results[-1].metrics["ssim"] > results[0].metrics["ssim"]


def test_iterative_methods_and_non_iterative_error():
    assert {"l1", "tv"} <= set(teaching.iterative_methods()) and not {"unet", "varnet", "dip"} & set(teaching.iterative_methods())
    with pytest.raises(ExplorerError):
        teaching.iterate_instance("unet", 3)


# ----------------------------------------------------------------------------- fit snapshots

def test_fit_snapshots_follow_the_methods_own_fit(small_sample):
    problem = prepare(small_sample, MaskConfig("random", 3.0, 0.2, seed=1), "cpu")
    overrides = {"width": 8, "layers": 3}
    snaps = teaching.fit_snapshots(problem, "convdecoder", (0, 2, 6), overrides)
    assert snaps.steps == (0, 2, 6) and len(snaps.losses) == 6
    assert snaps.generator.shape == snaps.consistent.shape == (3, *problem.crop)
    assert snaps.losses[-1] < snaps.losses[0]
    assert not np.allclose(snaps.generator[0], snaps.generator[-1])
    # the loss curve is the library fit driver's on the same seeded network
    from explorer.recon.base import MethodInstance
    inst = MethodInstance.of("convdecoder", {**overrides, "iterations": 6})
    gen = inst.build().generator(problem.y, problem.operator(False))
    driven = fit(gen.module, gen.z, problem.y[0], problem.sampled.mask[0], 6, gen.lr)
    np.testing.assert_allclose(snaps.losses, driven.losses, rtol=1e-3)
    again = teaching.fit_snapshots(problem, "convdecoder", (0, 2, 6), overrides)
    np.testing.assert_array_equal(again.generator, snaps.generator)  # deterministic on the CPU


def test_fit_snapshots_stop_and_bad_inputs(small_sample):
    problem = prepare(small_sample, MaskConfig("random", 3.0, 0.2, seed=1), "cpu")
    calls = []
    snaps = teaching.fit_snapshots(problem, "convdecoder", (0, 5), {"width": 8, "layers": 3},
                                   progress=lambda step, total, info: calls.append((step, total)) or True)
    # the driver reports after the first step: stopped there, the random network's output is the last one seen
    assert calls == [(1, 5)] and snaps.stopped and snaps.steps == (0,) and len(snaps.losses) == 1
    with pytest.raises(ExplorerError):
        teaching.fit_snapshots(problem, "l1", (0, 2))
    with pytest.raises(ExplorerError):
        teaching.fit_snapshots(problem, "convdecoder", (-1, 2))


# ----------------------------------------------------------------------------- guided path, figures

def test_every_step_quotes_readme_passages_that_exist():
    for step in teaching_path.STEPS:
        for heading, phrase in step.readme:
            passage = teaching_path.readme_passage(heading, phrase)
            assert passage is not None and phrase in passage, (step.title, heading, phrase)
    text = "# t\n\n## A\n\n> note here\n\nfirst para\n\n**Answer** here\nmore\n\n## B\n\n**Answer** other\n"
    assert teaching_path.readme_passage("A", "**Answer**", text) == "note here\n\n**Answer** here more"
    assert teaching_path.readme_passage("B", "**Answer**", text) == "**Answer** other"
    assert teaching_path.readme_passage("C", "x", text) is None
    assert teaching_path.readme_passage("A", "absent", text) is None


def test_guided_steps_name_real_pages_and_methods():
    from explorer import resources
    from explorer.recon.base import get_method

    root = resources.root()
    for step in teaching_path.STEPS:
        assert (root / step.page).is_file()
        for key, value in step.settings.items():
            if key.endswith(".methods"):
                for name in value:
                    get_method(name)


def test_teaching_figures():
    fig = teaching_figures.tiles_figure([np.ones((8, 8)), np.zeros((8, 8)), np.eye(8)], ["a", "b", "c"], cols=2)
    assert len(fig.data) == 3 and fig.layout.xaxis2.matches == "x"
    fig = teaching_figures.tiles_figure([np.full((4, 4), -40.0), np.full((4, 4), 1 + 1j)], ["db", "complex"])
    assert np.asarray(fig.data[0].z).max() == -40 and np.asarray(fig.data[1].z).min() == pytest.approx(np.sqrt(2))
    pattern = np.zeros((8, 8), bool)
    pattern[2:6, 2:6] = True
    k = fft2c(torch.ones(2, 8, 8, dtype=torch.complex64)).numpy()
    fig = teaching_figures.region_kspace_figure(k, pattern, "r")
    z = np.asarray(fig.data[0].z)
    assert z[0, 0] == teaching_figures.KSPACE_FLOOR and z[4, 4] == 0
    with pytest.raises(ValueError):
        teaching_figures.tiles_figure([np.ones((4, 4))], ["a", "b"])
    assert len(teaching_figures.profile_figure({"a": np.zeros(9)}).data) == 1
    assert len(teaching_figures.curve_figure([1, 2], {"a": [0.1, 0.2]}, current=2).data) == 1
