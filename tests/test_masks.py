import numpy as np
import pytest
import torch
from fastmri.data import subsample

from explorer.errors import ExplorerError
from explorer.masks import MASK_TYPES, MaskConfig, default_center_fraction, make_mask, mask_from_columns


def test_default_center_fractions_follow_fastmri():
    assert default_center_fraction(4) == 0.08
    assert default_center_fraction(8) == 0.04


@pytest.mark.parametrize("kind", [t for t in MASK_TYPES if t != "poisson"])
def test_1d_masks_are_fastmris_own_patterns(kind):
    cls = {"random": subsample.RandomMaskFunc, "equispaced": subsample.EquiSpacedMaskFunc,
           "equispaced_fraction": subsample.EquispacedMaskFractionFunc, "magic": subsample.MagicMaskFunc,
           "magic_fraction": subsample.MagicMaskFractionFunc}[kind]
    expected, num_low = cls([0.08], [4], seed=7)((1, 64, 368, 2), seed=7)
    got = make_mask(MaskConfig(kind, 4, seed=7), (64, 368))
    assert got.mask.shape == (1, 1, 1, 368)
    assert np.array_equal(got.mask.reshape(-1).numpy(), expected.reshape(-1).numpy() > 0)
    assert got.num_low_frequencies == num_low


@pytest.mark.parametrize("kind", MASK_TYPES)
@pytest.mark.parametrize("accel", [4, 8])
def test_actual_acceleration_is_close_to_nominal(kind, accel):
    accs = [make_mask(MaskConfig(kind, accel, seed=s), (96, 320)).acceleration for s in range(5)]
    assert abs(np.mean(accs) - accel) / accel < 0.25


def test_padded_columns_are_never_sampled_and_acceleration_counts_the_band():
    padding = (20, 300)
    for kind in MASK_TYPES:
        m = make_mask(MaskConfig(kind, 4, seed=1), (64, 320), padding)
        pattern = m.pattern((64, 320))
        assert not pattern[:, :20].any() and not pattern[:, 300:].any()
        band = pattern[:, 20:300]
        expected = band.size / band.sum() if kind == "poisson" else band.shape[1] / band[0].sum()
        assert m.acceleration == pytest.approx(expected)


def test_masks_are_deterministic_under_a_seed_and_vary_with_it():
    for kind in ("random", "poisson"):
        a = make_mask(MaskConfig(kind, 4, seed=3), (64, 64)).mask
        b = make_mask(MaskConfig(kind, 4, seed=3), (64, 64)).mask
        c = make_mask(MaskConfig(kind, 4, seed=4), (64, 64)).mask
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_poisson_mask_is_2d_with_a_full_centre():
    m = make_mask(MaskConfig("poisson", 6, 0.1, seed=0), (80, 64))
    assert m.mask.shape == (1, 1, 80, 64)
    p = m.pattern((80, 64))
    assert p[36:44, 29:35].all()
    assert len({tuple(row) for row in p}) > 10  # rows differ: not a 1D mask


@pytest.mark.parametrize("kwargs", [
    {"acceleration": 0.5}, {"acceleration": float("nan")}, {"center_fraction": 0.0},
    {"center_fraction": 1.0}, {"center_fraction": -0.2}, {"type": "spiral"},
    {"type": "equispaced", "acceleration": 2.5}, {"type": "poisson", "acceleration": 32},
])
def test_bad_mask_configs_raise_one_line_errors(kwargs):
    with pytest.raises(ExplorerError) as info:
        MaskConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_mask_from_file_columns():
    cols = np.zeros(40, bool)
    cols[17:23] = True
    cols[::5] = True
    m = mask_from_columns(cols, (2, 38))
    assert m.num_low_frequencies >= 6
    assert m.acceleration == pytest.approx(36 / cols[2:38].sum())
    with pytest.raises(ExplorerError):
        mask_from_columns(np.zeros(40, bool))
