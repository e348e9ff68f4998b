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


# ----------------------------------------------------------------------------- masks drawn line by line, PSF views, notes

def _line_columns(fig) -> list[float]:
    lines = [t for t in fig.data if t.type == "scatter" and t.fill != "toself"]
    assert len(lines) == 1
    assert lines[0].line.width >= 1  # screen pixels, whatever the zoom
    return sorted({float(x) for x in lines[0].x if x is not None})


@pytest.mark.parametrize("kind,accel", [("equispaced", 4), ("equispaced", 8), ("random", 4), ("magic", 8)])
def test_column_masks_are_drawn_line_by_line(kind, accel):
    pattern = make_mask(MaskConfig(kind, accel), (320, 320)).pattern((320, 320))
    columns = np.flatnonzero(pattern[0])
    fig = teaching_figures.mask_figure(pattern, "m", height=240)
    assert not [t for t in fig.data if t.type == "heatmap" and np.asarray(t.z).size > 1]  # no 320-column raster
    assert _line_columns(fig) == [float(c) for c in columns]  # one line per sampled column
    runs = next(t for t in fig.data if t.type == "scatter" and t.fill == "toself")  # the filled runs cover exactly the sampled columns
    xs = [x for x in runs.x if x is not None]
    covered = set()
    for i in range(0, len(xs), 5):
        covered |= set(range(int(xs[i] + 0.5), int(xs[i + 1] + 0.5)))
    assert covered == set(columns.tolist())
    assert list(fig.layout.xaxis.range) == [-0.5, 319.5] and list(fig.layout.yaxis.range) == [319.5, -0.5]
    # (tests/browser/test_teaching_browser.py renders it at 120-240 px and reads every sampled column's pixels)


def test_mask_tiles_and_2d_patterns():
    patterns = [make_mask(MaskConfig(k, 4), (64, 64)).pattern((64, 64)) for k in ("equispaced", "random", "poisson")]
    fig = teaching_figures.mask_tiles_figure(patterns, ["e", "r", "p"], cols=2)
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis3.matches == "y"
    heatmaps = [t for t in fig.data if t.type == "heatmap" and np.asarray(t.z).size > 1]
    assert len(heatmaps) == 1 and np.asarray(heatmaps[0].z).sum() == patterns[2].sum()  # the 2D mask's points
    assert teaching_figures.is_column_pattern(patterns[0]) and not teaching_figures.is_column_pattern(patterns[2])
    assert teaching_figures.column_runs(np.array([1, 1, 0, 1, 0, 0, 1], bool)) == [(0, 1), (3, 3), (6, 6)]
    one_d = teaching_figures.mask_figure(patterns[0][0])  # a (W,) column mask
    assert _line_columns(one_d) == [float(c) for c in np.flatnonzero(patterns[0][0])]
    with pytest.raises(ValueError):
        teaching_figures.mask_tiles_figure(patterns, ["only one"])


def test_psf_view_keeps_thin_rows_and_alias_peaks():
    pattern = make_mask(MaskConfig("equispaced", 4), (320, 320)).pattern((320, 320))
    db = teaching.psf_decibels(teaching.point_spread_function(pattern), -40.0)
    view, x, y = teaching.psf_view(db, 100)
    assert view.shape[0] == y.size and view.shape[1] == x.size and max(view.shape) <= 64
    assert x[np.argmin(np.abs(x))] == 0 and y[np.argmin(np.abs(y))] == 0  # a block centred on the PSF centre
    centre_row = view[np.argmin(np.abs(y))]
    assert centre_row.max() == pytest.approx(0.0)  # the main lobe, 0 dB
    # the PSF is one pixel row; the block maximum keeps the whole of it (every block of that row lies above the
    # floor) and nothing else
    assert (centre_row > -40).all() and (np.delete(view, np.argmin(np.abs(y)), axis=0) == -40).all()
    alias = np.argmin(np.abs(x - 320 / 4))  # the first alias of an every-4th-column mask, at W/R = 80
    assert centre_row[alias] > -10
    whole, wx, wy = teaching.psf_view(db, None)
    assert wx[0] < -150 and wx[-1] > 150 and whole.max() == pytest.approx(0.0)
    with pytest.raises(ValueError):
        teaching.psf_view(np.zeros(5), 2)


@pytest.mark.parametrize("kind,accel,expected", [("equispaced", 8, "320/51 = 6.27"), ("equispaced", 4, "320/99 = 3.23"),
                                                 ("random", 4, "probability"), ("equispaced_fraction", 4, "widened"),
                                                 ("poisson", 4, "k-space points")])
def test_acceleration_note_explains_nominal_vs_actual(kind, accel, expected):
    sampled = make_mask(MaskConfig(kind, accel), (320, 320))
    note = teaching.acceleration_note(sampled, (320, 320))
    assert expected in note and f"Nominal R = {accel}" in note or kind == "poisson"
    assert f"{sampled.acceleration:.2f}" in note
    if kind == "equispaced":
        assert f"centre ({sampled.num_low_frequencies} columns" in note and "added on top" in note


def test_sense_form_scores_the_maps_form_below_the_reference(small_sample):
    problem = prepare(small_sample, MaskConfig("random", 3.0, 0.2, seed=1), "cpu")
    form = teaching.sense_form(problem, "l1", "knee")
    # the fully sampled k-space combined with the ESPIRiT maps is the best image x_k can be: zero outside the
    # maps' support, so it scores below 1 against the coil root-sum-of-squares reference
    assert 0 < form.outside < 1 and form.reference_outside > 0
    assert 0.3 < form.metrics["ssim"] < 0.99
    with pytest.raises(ExplorerError):
        teaching.sense_form(problem, "zero_filled")


def test_curve_figure_labels_only_its_ticks_and_draws_references():
    fig = teaching_figures.curve_figure([1, 2, 5], {"a": [0.1, 0.2, 0.3]}, current=2, x_ticks=teaching.ITERATES,
                                        references={"zero-filled": 0.25})
    assert list(fig.layout.xaxis.tickvals) == list(map(float, teaching.ITERATES))
    assert list(fig.layout.xaxis.ticktext) == ["1", "2", "5", "10", "20", "50", "100"]
    lo, hi = fig.layout.xaxis.range
    assert lo < 0 < 2 < hi  # log10 range spans 1..100 before the later iterates are computed
    assert any(s.y0 == 0.25 for s in fig.layout.shapes) and "0.250" in fig.layout.annotations[0].text
    linear = teaching_figures.curve_figure([3, 7], {"a": [1, 2]}, log_x=False)
    assert list(linear.layout.xaxis.ticktext) == ["3", "7"]
