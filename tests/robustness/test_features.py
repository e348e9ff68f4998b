"""Small features: shapes, physically consistent insertion, placement inside the anatomy, scores, the
experiment loop and study records."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.data.slice import Slice, SliceMeta
from explorer.engine import prepare, run_method
from explorer.engine.tasks import run_tasks
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.physics import fft2c, ifft2c
from explorer.robustness.feature_scores import padded, score_feature
from explorer.robustness.features import (correlation, feature_tasks, method_correlation, method_means,
                                                run_features, study_rows)
from explorer.robustness.insertion import (Feature, insert_features, parse_position, place_random, reference_image,
                                          tissue_mask)
from tests.conftest import phantom, smooth_maps

H = W = 48


def _slice(coils: int = 4, real: bool = False, seed: int = 0) -> tuple[Slice, torch.Tensor, torch.Tensor]:
    """A fully sampled slice whose coil images are exactly ``S x`` (returns slice, x, maps)."""
    x = phantom(H, W, seed)
    if real:
        x = x.abs().to(torch.complex64)
    maps = smooth_maps(coils, H, W) if coils > 1 else torch.ones(1, H, W, dtype=torch.complex64)
    k = fft2c(maps * x).to(torch.complex64)
    meta = SliceMeta(source="test", index=0, num_slices=1, challenge="multicoil" if coils > 1 else "singlecoil",
                     padding=(0, W))
    return Slice(kspace=k, target=reference_image(k, (H, W)), meta=meta), x, maps


@pytest.mark.parametrize("shape, size, area", [("square", 5, 25), ("disk", 5, 21), ("line", 9, 9)])
def test_shapes_have_the_expected_footprints(shape, size, area):
    f = Feature(shape=shape, row=20, col=20, size=size)
    profile = f.profile((H, W))
    assert int((profile > 0).sum()) == area
    assert profile[20, 20] == 1.0
    r0, c0, r1, c1 = f.window((H, W))
    assert r0 <= 20 < r1 and c0 <= 20 < c1 and (profile[r0:r1, c0:c1] > 0).sum() == area
    blob = Feature(shape="blob", row=20, col=20, size=4).profile((H, W))
    assert blob[20, 20] == pytest.approx(1.0) and blob[20, 22] == pytest.approx(0.5, abs=1e-6)  # FWHM 4 px


def test_coil_insertion_is_A_of_x_plus_f():
    """Coil mode: the new k-space is F S (x + f e^{i phase}) exactly, the phase that of the image."""
    slc, x, maps = _slice()
    features = (Feature(row=20, col=24, size=5, contrast=0.2), Feature(shape="disk", row=30, col=18, size=4, contrast=-0.1))
    inserted = insert_features(slc, features, "coil", maps=maps)
    delta = ifft2c(inserted.slice.kspace) - ifft2c(slc.kspace)  # = S f e^{i phase}
    f = (maps.conj() * delta).sum(0)  # the combined feature
    profile = sum(feat.profile((H, W)) * a for feat, a in zip(features, inserted.amplitudes))
    torch.testing.assert_close(f.abs(), torch.from_numpy(np.abs(profile)).float(), atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(maps * f, delta, atol=1e-6, rtol=1e-4)
    on = profile != 0
    sign = torch.from_numpy(np.sign(profile[on]).astype(np.float32))
    phase_diff = torch.angle(f[torch.from_numpy(on)] * x[torch.from_numpy(on)].conj() * sign)
    assert float(phase_diff.abs().max()) < 0.2  # the feature has the image's local phase


def test_zero_filled_at_full_sampling_returns_the_feature_exactly():
    """Real-valued image, coil images exactly S x: the RSS of the full k-space with the feature is x + f."""
    slc, x, maps = _slice(real=True)
    feature = Feature(row=24, col=24, size=6, contrast=0.25)
    inserted = insert_features(slc, [feature], "coil", maps=maps)
    problem = prepare(inserted.slice, MaskConfig("random", 1.0, center_fraction=0.5), "cpu")
    assert bool(problem.sampled.mask.all())  # full sampling
    result = run_method(problem, "zero_filled")
    expected = x.abs().numpy() + feature.profile((H, W)) * inserted.amplitudes[0]
    np.testing.assert_allclose(result.image, expected, atol=1e-5 * expected.max())
    assert inserted.amplitudes[0] == pytest.approx(0.25 * float(slc.target.max()), rel=1e-6)
    # ... and an identity method scores a perfect recovery
    score = score_feature(result.image, problem.target, profile=feature.profile((H, W)))
    assert score.window_mse == pytest.approx(0.0, abs=1e-10)
    assert score.contrast_recovery == pytest.approx(1.0, abs=1e-5)
    assert score.local_ssim == pytest.approx(1.0, abs=1e-6)


def test_paper_mode_adds_the_same_real_feature_to_every_coil():
    slc, _, _ = _slice()
    feature = Feature(row=20, col=20, size=5)
    inserted = insert_features(slc, [feature], "paper")
    delta = ifft2c(inserted.slice.kspace) - ifft2c(slc.kspace)
    expected = torch.from_numpy(feature.profile((H, W)) * inserted.amplitudes[0]).to(torch.complex64)
    for coil in delta:
        torch.testing.assert_close(coil, expected, atol=1e-6, rtol=1e-4)


def test_local_contrast_and_darker_features():
    slc, _, maps = _slice(real=True)
    feature = Feature(row=24, col=24, size=4, contrast=-0.3, relative_to="local")
    inserted = insert_features(slc, [feature], "coil", maps=maps)
    patch = inserted.reference[24 - 6:24 + 7, 24 - 6:24 + 7]
    assert inserted.amplitudes[0] == pytest.approx(-0.3 * patch.mean(), rel=1e-5)
    assert inserted.slice.target[24, 24] < inserted.reference[24, 24]


def test_random_placement_stays_inside_the_anatomy_and_reproduces():
    slc, _, _ = _slice()
    reference = slc.target
    tissue = tissue_mask(reference)
    assert 0.2 < tissue.mean() < 0.9  # the phantom's ellipse, not the air around it
    for seed in range(8):
        features = place_random(reference, 3, Feature(shape="disk", size=3), seed=seed, sizes=(2, 3, 4))
        for f in features:
            assert tissue[f.profile(reference.shape) > 0].all()
        assert features == place_random(reference, 3, Feature(shape="disk", size=3), seed=seed, sizes=(2, 3, 4))
    assert place_random(reference, 3, Feature(), seed=1) != place_random(reference, 3, Feature(), seed=2)
    with pytest.raises(ExplorerError, match="no room inside the anatomy"):
        place_random(reference, 40, Feature(size=8), seed=0)


def test_bad_features_are_clear_errors():
    slc, _, _ = _slice()
    with pytest.raises(ExplorerError, match="does not fit inside"):
        insert_features(slc, [Feature(row=1, col=20, size=5)])
    with pytest.raises(ExplorerError, match="outside the coil maps' support"):
        insert_features(slc, [Feature(row=5, col=5, size=3)], maps=smooth_maps(4, H, W) * torch.from_numpy(
            (slc.target > 0.1 * slc.target.max()).astype(np.float32)))
    with pytest.raises(ExplorerError, match="shape must be one of"):
        Feature(shape="star")
    with pytest.raises(ExplorerError, match="contrast"):
        Feature(contrast=0)
    with pytest.raises(ExplorerError, match="ROW,COL"):
        parse_position("3;4")
    assert parse_position("12,40") == (12, 40)
    undersampled = Slice(kspace=slc.kspace, target=None, meta=slc.meta, acquired_mask=np.ones(W, bool))
    with pytest.raises(ExplorerError, match="fully sampled"):
        insert_features(undersampled, [Feature(row=20, col=20)])


def test_padded_windows_stay_inside_the_image():
    assert padded((0, 0, 3, 3), (48, 48)) == (0, 0, 11, 11)
    assert padded((45, 40, 48, 48), (48, 48)) == (37, 34, 48, 48)  # grown by 3, shifted back inside
    r0, c0, r1, c1 = padded((20, 20, 25, 25), (48, 48))
    assert (r1 - r0, c1 - c0) == (11, 11) and r0 <= 20 and r1 >= 25


def test_run_features_scores_every_method_and_feature():
    slc, _, _ = _slice()
    problem = prepare(slc, MaskConfig("equispaced_fraction", 2.0, center_fraction=0.25), "cpu")
    features = (Feature(row=20, col=24, size=5, contrast=0.3), Feature(shape="line", row=30, col=20, size=9, contrast=0.3))
    run = run_features(problem, features, ["zero_filled", "sense"])
    assert [r.method for r in run.results] == ["zero_filled", "sense"] and not run.failures
    assert len(run.rows) == 4
    rows = {(r["label"], r["feature"]): r for r in run.rows}
    for feature in (0, 1):  # noiseless, 2x with a 25% centre: SENSE recovers both, zero-filled less well
        sense, zf = rows[("sense", feature)], rows[("zero_filled", feature)]
        assert sense["contrast_recovery"] == pytest.approx(1.0, abs=0.02) and sense["local_ssim"] > 0.99
        assert sense["window_mse"] < 1e-3 < zf["window_mse"] and zf["local_ssim"] < sense["local_ssim"]
    for row in run.rows:
        assert row["ssim"] == pytest.approx(next(r for r in run.results if r.method == row["method"]).metrics["ssim"])
    np.testing.assert_array_equal(run.problem.target, run.inserted.slice.target)
    assert not np.allclose(run.problem.target, slc.target)  # the reference holds the features


def test_study_tasks_carry_feature_scores_and_correlation(tmp_path):
    from explorer.data.fastmri import write_volume  # noqa: PLC0415
    from tests.conftest import multicoil_kspace  # noqa: PLC0415

    path = write_volume(tmp_path / "v.h5", multicoil_kspace(slices=2, coils=4, h=H, w=W))
    from explorer.engine import as_instance  # noqa: PLC0415

    methods = [as_instance("zero_filled"), as_instance("sense")]
    tasks = feature_tasks(str(path), [0, 1], methods, 3, Feature(size=3), sizes=(2, 3), contrasts=(0.2, 0.4), seed=0,
                          mask=MaskConfig("equispaced_fraction", 2.0, center_fraction=0.25))
    assert len(tasks) == 4 and tasks[0].feature == tasks[1].feature != tasks[2].feature
    records = list(run_tasks(tasks))
    assert all(r.error is None for r in records)
    assert len(json.loads(records[0].scores)) == 3
    rows = study_rows(records)
    assert len(rows) == 12 and {"window_mse", "contrast_recovery", "local_ssim", "ssim", "size", "contrast"} <= set(rows[0])
    stats = correlation(rows)
    pooled = np.array([(r["ssim"], r["window_mse"]) for r in rows])
    assert stats["all"]["n"] == 12
    assert stats["all"]["pearson"] == pytest.approx(float(np.corrcoef(pooled[:, 0], pooled[:, 1])[0, 1]))
    sense = pooled[[r["label"] == "sense" for r in rows]]
    assert stats["sense"]["n"] == 6
    assert stats["sense"]["pearson"] == pytest.approx(float(np.corrcoef(sense[:, 0], sense[:, 1])[0, 1]))
    # same seed, same tasks
    again = feature_tasks(str(path), [0, 1], methods, 3, Feature(size=3), sizes=(2, 3), contrasts=(0.2, 0.4), seed=0,
                          mask=MaskConfig("equispaced_fraction", 2.0, center_fraction=0.25))
    assert [t.key() for t in again] == [t.key() for t in tasks]


def test_method_means_and_correlation():
    rows = [{"label": m, "ssim": s, "window_mse": w, "contrast_recovery": c, "local_ssim": 0.5}
            for m, s, w, c in [("a", 0.6, 0.4, 0.5), ("a", 0.7, 0.2, 0.7), ("b", 0.8, 0.1, 0.9), ("c", 0.5, 0.6, 0.2)]]
    means = method_means(rows)
    assert [m["label"] for m in means] == ["a", "b", "c"] and means[0]["ssim"] == pytest.approx(0.65)
    assert means[0]["window_mse"] == pytest.approx(0.3) and means[0]["n"] == 2
    assert method_correlation(rows)["pearson"] == pytest.approx(-0.99, abs=0.01) and method_correlation(rows)["n"] == 3
    assert method_correlation(rows[:2])["pearson"] is None  # one method
