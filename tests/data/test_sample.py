"""Tests of the embedded sample generator (explorer.data.sample)."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from explorer.data.fastmri import FastMRIVolume
from explorer.data.sample import (
    FAMILIES,
    GENERATOR_VERSION,
    SampleSpec,
    cache_dir,
    generate,
    parts,
    sample_path,
    write_sample,
)
from explorer.errors import ExplorerError
from explorer.physics import ifft2c, rss

SMALL = 48


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = (a - a.mean()).ravel()
    b = (b - b.mean()).ravel()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


@pytest.fixture(scope="module")
def volumes() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {f: generate(SampleSpec(family=f, size=64, slices=5, seed=0)) for f in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_shapes_dtypes_and_finiteness(family):
    kspace, target = generate(SampleSpec(family=family, size=SMALL, slices=3, coils=4))
    assert kspace.shape == (3, 4, SMALL, SMALL) and kspace.dtype == np.complex64
    assert target.shape == (3, SMALL, SMALL) and target.dtype == np.float32
    assert np.isfinite(kspace).all() and np.isfinite(target).all()
    assert (target >= 0).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_deterministic_and_seed_changes_subject(family):
    spec = SampleSpec(family=family, size=SMALL, slices=2, coils=3, seed=7)
    k1, t1 = generate(spec)
    k2, t2 = generate(spec)
    np.testing.assert_array_equal(k1, k2)
    np.testing.assert_array_equal(t1, t2)
    # another seed: another subject (anatomy, not only noise)
    other = parts(SampleSpec(family=family, size=SMALL, slices=2, coils=3, seed=8)).image
    same = parts(spec).image
    assert np.abs(np.abs(other) - np.abs(same)).mean() > 0.05 * np.abs(same).mean()


@pytest.mark.parametrize("family", FAMILIES)
def test_target_is_rss_of_full_kspace(family, volumes):
    kspace, target = volumes[family]
    ref = rss(ifft2c(torch.from_numpy(kspace)), dim=1).numpy()
    np.testing.assert_allclose(target, ref, rtol=1e-4, atol=1e-6 * float(ref.max()))


@pytest.mark.parametrize("odd", [33, 50])
def test_target_is_rss_for_odd_and_non_multiple_of_4_sizes(odd):
    kspace, target = generate(SampleSpec(family="brain", size=odd, slices=1, coils=2))
    ref = rss(ifft2c(torch.from_numpy(kspace)), dim=1).numpy()
    np.testing.assert_allclose(target, ref, rtol=1e-4, atol=1e-6 * float(ref.max()))


def test_signal_scale_resembles_fastmri(volumes):
    for _, target in volumes.values():
        assert 5e-5 < float(target.max()) < 3e-3


def test_families_differ(volumes):
    knee, brain = volumes["knee"][1][2], volumes["brain"][1][2]
    assert _corr(knee, brain) < 0.5
    # knee fills the field of view top to bottom; the brain is an oval with air around it
    def fg(img):
        return (img > 0.2 * img.max()).mean()

    assert fg(knee) > fg(brain) + 0.1


@pytest.mark.parametrize("family", FAMILIES)
def test_slices_vary_smoothly(family, volumes):
    target = volumes[family][1]
    adjacent = [_corr(target[i], target[i + 1]) for i in range(4)]
    assert min(adjacent) > 0.75
    assert _corr(target[0], target[1]) > _corr(target[0], target[4])
    assert _corr(target[4], target[3]) > _corr(target[4], target[0])
    assert max(adjacent) < 0.999  # slices are different cuts, not copies


@pytest.mark.parametrize("family", FAMILIES)
def test_slices_are_cuts_of_one_3d_object(family):
    one = parts(SampleSpec(family=family, size=SMALL, slices=1))
    three = parts(SampleSpec(family=family, size=SMALL, slices=3))
    assert three.z[1] == one.z[0] == 0.0
    np.testing.assert_allclose(three.image[1], one.image[0], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(three.maps[1], one.maps[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_snr_in_plausible_range(family):
    kspace, target = generate(SampleSpec(family=family, size=128, slices=1))
    # noise from the outer k-space ring (signal is negligible there)
    h = kspace.shape[-1]
    yy, xx = np.mgrid[:h, :h] - h // 2
    outer = np.hypot(yy, xx) > 0.45 * h
    sigma = np.concatenate([kspace[0][:, outer].real.ravel(), kspace[0][:, outer].imag.ravel()]).std()
    tissue = target[0][target[0] > 0.25 * np.percentile(target[0], 99)]
    snr = float(np.median(tissue)) / sigma
    assert 15 < snr < 60, snr
    # the background (air) is noise only, at the chi-distribution level of 8 coils
    corner = target[0][:8, :8]
    assert 0.5 * sigma < corner.mean() < 5 * sigma


@pytest.mark.parametrize("family", FAMILIES)
def test_coil_maps_smooth_and_not_flat(family):
    maps = parts(SampleSpec(family=family, size=64, slices=1, coils=8)).maps[0]
    assert maps.shape == (8, 64, 64)
    # smooth: small first and second differences (2.5 mm pixels), unlike anatomy
    peak = np.abs(maps).max()
    assert np.abs(np.diff(maps, axis=-1)).max() < 0.1 * peak
    assert np.abs(np.diff(maps, axis=-2)).max() < 0.1 * peak
    lap = 4 * maps[:, 1:-1, 1:-1] - maps[:, 2:, 1:-1] - maps[:, :-2, 1:-1] - maps[:, 1:-1, 2:] - maps[:, 1:-1, :-2]
    assert np.abs(lap).max() < 0.05 * peak
    # not flat: coils differ and their RSS varies over the field of view
    combined = np.sqrt((np.abs(maps) ** 2).sum(0))
    assert combined.max() / combined.min() > 1.3
    assert np.abs(np.corrcoef(np.abs(maps).reshape(8, -1))).min() < 0.8
    assert np.std(np.angle(maps[0] * maps[1].conj())) > 0.05  # coil-dependent phase


def test_single_coil_generate_and_file(tmp_path):
    spec = SampleSpec(family="knee", size=32, slices=2, coils=1)
    kspace, target = generate(spec)
    assert kspace.shape == (2, 1, 32, 32)
    path = write_sample(tmp_path, spec)
    vol = FastMRIVolume(path)
    assert vol.challenge == "singlecoil" and vol.target_key == "reconstruction_esc"
    sl = vol.read_slice(1)
    assert sl.kspace.shape == (1, 32, 32)
    np.testing.assert_array_equal(sl.target, target[1])


@pytest.mark.parametrize("family", FAMILIES)
def test_write_sample_round_trips(tmp_path, family):
    spec = SampleSpec(family=family, size=32, slices=3, coils=4, seed=3)
    kspace, target = generate(spec)
    path = write_sample(tmp_path, spec)
    assert path.name == f"sample_{family}_32_s3_c4_seed3.h5"
    vol = FastMRIVolume(path)
    assert (vol.num_slices, vol.num_coils, vol.shape, vol.challenge) == (3, 4, (32, 32), "multicoil")
    assert vol.attrs["acquisition"] == {"knee": "CORPD_FBK", "brain": "AXT2"}[family]
    assert vol.attrs["patient_id"]
    assert json.loads(vol.attrs["sample_spec"]) == asdict(spec)
    assert vol.attrs["max"] == pytest.approx(float(target.max()))
    for i in range(3):
        sl = vol.read_slice(i)
        np.testing.assert_array_equal(sl.target, target[i])
        np.testing.assert_array_equal(sl.kspace.numpy(), kspace[i])
        assert sl.meta.padding == (0, 32)


def test_cache_dir_from_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("EXPLORER_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "mri-explorer"


def test_sample_path_materialises_once(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    spec = SampleSpec(family="brain", size=32, slices=2, coils=2)
    p1 = sample_path(spec)
    assert p1.parent == tmp_path / "cache" and p1.is_file()
    assert f"g{GENERATOR_VERSION}" in p1.name
    mtime = p1.stat().st_mtime_ns
    p2 = sample_path(spec)
    assert p2 == p1 and p2.stat().st_mtime_ns == mtime
    assert sorted(x.name for x in p1.parent.iterdir()) == [p1.name]  # no temp leftovers
    _, target = generate(spec)
    np.testing.assert_array_equal(FastMRIVolume(p1).read_slice(0).target, target[0])


def test_sample_path_unwritable_cache_is_an_explorer_error(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(blocker / "sub"))
    with pytest.raises(ExplorerError, match="cache"):
        sample_path(SampleSpec(size=16, slices=1, coils=1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"family": "spine"},
        {"size": 15},
        {"size": 1025},
        {"slices": 0},
        {"coils": 0},
        {"size": 32.0},
        {"seed": -1},
        {"coils": True},
        {"size": 1024, "slices": 256, "coils": 32},
    ],
)
def test_bad_specs_raise_one_line_explorer_error(kwargs):
    spec = SampleSpec(**kwargs)
    for call in (generate, parts, sample_path, lambda s: write_sample("/nonexistent-dir", s)):
        with pytest.raises(ExplorerError) as info:
            call(spec)
        assert "\n" not in str(info.value)


def test_default_spec_smoke():
    kspace, target = generate(SampleSpec())
    assert kspace.shape == (5, 8, 320, 320) and target.shape == (5, 320, 320)
    assert 1e-4 < float(target.max()) < 1e-3


@pytest.mark.parametrize("family, contrast, acquisition", [("knee", "pdfs", "CORPDFS_FBK"), ("brain", "t1", "AXT1")])
def test_contrast_shift_families(tmp_path, family, contrast, acquisition):
    """Another contrast of the same subject: deterministic, the default unchanged, a real change of contrast,
    the fastMRI protocol name (so the anatomy is still recognised), and readable by fastMRI's own loader."""
    from fastmri.data.mri_data import SliceDataset  # noqa: PLC0415

    from explorer.data.sample import CONTRASTS, file_name  # noqa: PLC0415

    base = SampleSpec(family=family, size=48, slices=2, coils=4, seed=3)
    shifted = SampleSpec(family=family, size=48, slices=2, coils=4, seed=3, contrast=contrast)
    default_k, default_t = generate(base)
    explicit_k, _ = generate(SampleSpec(family=family, size=48, slices=2, coils=4, seed=3, contrast=CONTRASTS[family][0]))
    np.testing.assert_array_equal(default_k, explicit_k)  # "" is the family's default contrast
    k1, t1 = generate(shifted)
    k2, _ = generate(shifted)
    np.testing.assert_array_equal(k1, k2)
    assert not np.allclose(t1, default_t) and np.corrcoef(t1.ravel(), default_t.ravel())[0, 1] < 0.95
    assert file_name(shifted).endswith(f"_{contrast}.h5") and file_name(base).endswith("seed3.h5")
    path = write_sample(tmp_path, shifted)
    volume = FastMRIVolume(path)
    assert volume.attrs["acquisition"] == acquisition and volume.read_slice(0).meta.anatomy == family
    dataset = SliceDataset(tmp_path, transform=None, challenge="multicoil")
    assert len(dataset) == 2
    kspace, _, target, _, fname, index = dataset[1]
    np.testing.assert_array_equal(kspace, k1[1])
    assert fname == path.name and index == 1
    with pytest.raises(ExplorerError, match=f"unknown {family} contrast"):
        generate(SampleSpec(family=family, size=48, contrast="flair"))


def test_stanford_like_dataset(tmp_path):
    """The Stanford-like 3D FSE knee: deterministic; the default (fastMRI-like) data unchanged by its existence;
    a real shift (lower SNR, other resolution, coils and contrast); a knee protocol name; readable by fastMRI's
    loader; and reachable as a source ``sample:knee,dataset=stanford``."""
    from fastmri.data.mri_data import SliceDataset  # noqa: PLC0415

    from explorer.data.sample import file_name, slice_positions  # noqa: PLC0415

    from explorer.data.sample_sources import parse_source  # noqa: PLC0415

    base = SampleSpec(family="knee", size=48, slices=2, coils=4, seed=3)
    stanford = SampleSpec(family="knee", size=48, slices=2, coils=4, seed=3, dataset="stanford")
    np.testing.assert_array_equal(generate(base)[0], generate(SampleSpec(family="knee", size=48, slices=2, coils=4,
                                                                        seed=3, dataset="fastmri"))[0])
    k1, t1 = generate(stanford)
    np.testing.assert_array_equal(k1, generate(stanford)[0])
    p_base, p_st = parts(base), parts(stanford)

    def snr(p):  # median coil-combined tissue signal over the noise level
        combined = np.sqrt((np.abs(p.maps * p.image[:, None]) ** 2).sum(1))
        return np.median(combined[combined > 0.25 * combined.max()]) / p.noise_std

    assert snr(p_base) > 1.5 * snr(p_st)  # lower SNR
    assert np.ptp(slice_positions(stanford)) == pytest.approx(0.6)  # thin 3D partitions (fastMRI-like: 3 mm)
    assert np.ptp(slice_positions(base)) == pytest.approx(3.0)
    assert not np.allclose(np.abs(p_st.maps), np.abs(p_base.maps), atol=1e-2)  # another coil array
    assert stanford.acquisition == "CORPD_3DFSE"
    assert SampleSpec(family="knee", contrast="pdfs", dataset="stanford").acquisition == "CORPDFS_3DFSE"
    assert file_name(stanford).endswith("seed3_stanford.h5")
    path = write_sample(tmp_path, stanford)
    kspace, _, _, _, fname, _ = SliceDataset(tmp_path, transform=None, challenge="multicoil")[1]
    np.testing.assert_array_equal(kspace, k1[1])
    assert FastMRIVolume(path).read_slice(0).meta.anatomy == "knee"
    with pytest.raises(ExplorerError, match="unknown brain sample dataset"):
        generate(SampleSpec(family="brain", size=48, dataset="stanford"))
    assert parse_source("sample:knee,dataset=stanford,seed=3,size=48,slices=2,coils=4") == stanford
    assert parse_source("sample:knee", size=48) == SampleSpec(size=48)
    for bad, message in (("sample:knee,colour=red", "bad sample field"), ("sample:knee,seed=x", "must be an integer"),
                         ("sample:leg", "unknown sample family"), ("sample:knee,dataset=ge", "unknown knee sample")):
        with pytest.raises(ExplorerError, match=message):
            parse_source(bad)


def test_stanford_source_opens(tmp_path, monkeypatch):
    from explorer.data.sources import open_volume  # noqa: PLC0415

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    volume = open_volume("sample:knee,dataset=stanford,size=32,slices=2,coils=2")
    first = volume.read_slice(0)
    assert first.meta.anatomy == "knee" and first.kspace.shape[-3:] == (2, 32, 32)
    assert volume.attrs["acquisition"] == "CORPD_3DFSE"


def test_folded_field_of_view(tmp_path):
    """``fov < 1``: the phase-encode field of view is smaller than the object and the anatomy wraps around; the
    same pixel size, deterministic, the reference the RSS of that acquisition, readable from a source."""
    from explorer.data.sample import file_name, folded_width  # noqa: PLC0415
    from explorer.data.sample_sources import parse_source  # noqa: PLC0415
    from explorer.physics import fft2c  # noqa: PLC0415

    spec = SampleSpec(family="brain", size=64, slices=1, coils=4, seed=2, fov=0.6)
    k, t = generate(spec)
    assert folded_width(spec) == 38 and k.shape == (1, 4, 64, 38) and t.shape == (1, 64, 38)
    np.testing.assert_array_equal(k, generate(spec)[0])
    np.testing.assert_allclose(t[0], rss(ifft2c(torch.from_numpy(k[0])), dim=0).numpy(), rtol=1e-4, atol=1e-9)
    # half the field of view = every second phase-encode line of the full acquisition (times sqrt 2, orthonormal
    # FFTs): the wrap is the physics of a decimated k-space, centred as fastMRI centres it (noise aside)
    half = SampleSpec(family="brain", size=64, slices=1, coils=4, seed=2, fov=0.5)
    full = parts(SampleSpec(family="brain", size=64, slices=1, coils=4, seed=2))
    decimated = fft2c(torch.from_numpy(full.maps * full.image[:, None]))[..., ::2].numpy() * np.sqrt(2)
    folded, _ = generate(half)
    assert np.linalg.norm(folded - decimated) < 0.2 * np.linalg.norm(decimated)  # the rest is the noise
    assert np.linalg.norm(folded - decimated) < 3 * full.noise_std * np.sqrt(decimated.size * 2)
    outside = np.abs(full.image[0][:, :16]).sum() + np.abs(full.image[0][:, 48:]).sum()
    assert outside > 0.05 * np.abs(full.image[0]).sum()  # a real fold: the head reaches outside the half FOV
    assert file_name(spec).endswith("seed2_fov0.6.h5")
    assert parse_source("sample:brain,fov=0.6,size=64,slices=1,coils=4,seed=2") == spec
    path = write_sample(tmp_path, spec)
    assert FastMRIVolume(path).read_slice(0).target.shape == (64, 38)
    for bad in (0.4, 1.5, "x"):
        with pytest.raises(ExplorerError, match="sample fov must be a number in 0.5..1"):
            generate(SampleSpec(family="brain", size=64, fov=bad))
    with pytest.raises(ExplorerError, match="sample fov must be a number"):
        parse_source("sample:brain,fov=wide")
