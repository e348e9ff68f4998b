import h5py
import numpy as np
import pytest
import torch

from explorer.data.fastmri import FastMRIVolume, list_volumes, reference_from_kspace, write_volume
from explorer.data.sources import open_volume
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.physics import center_crop, ifft2c, rss
from explorer.engine import prepare
from tests.conftest import multicoil_kspace


def test_multicoil_with_stored_reference(tmp_path):
    k = multicoil_kspace(slices=2, coils=4, h=48, w=40)
    target = np.stack([center_crop(rss(ifft2c(torch.from_numpy(s)), 0), (32, 32)).numpy() for s in k])
    path = write_volume(tmp_path / "m.h5", k, target, attrs={"acquisition": "CORPD_FBK", "patient_id": "abc"})
    vol = open_volume(path)
    assert (vol.challenge, vol.num_slices, vol.num_coils, vol.shape) == ("multicoil", 2, 4, (48, 40))
    sl = vol.read_slice(1)
    assert sl.kspace.dtype == torch.complex64 and sl.kspace.shape == (4, 48, 40)
    np.testing.assert_array_equal(sl.target, target[1])
    assert sl.meta.attrs["acquisition"] == "CORPD_FBK" and sl.meta.attrs["max"] == pytest.approx(target.max())
    assert sl.meta.recon_size == (32, 32, 1) and sl.meta.encoding_size == (48, 40, 1)
    assert sl.acquired_mask is None


def test_singlecoil_file_reads_as_one_coil(tmp_path):
    k = multicoil_kspace(slices=3, coils=1, h=32, w=32)[:, 0]
    esc = np.abs(np.stack([ifft2c(torch.from_numpy(s)).numpy() for s in k])).astype(np.float32)
    path = write_volume(tmp_path / "s.h5", k, esc)
    with h5py.File(path) as hf:
        assert "reconstruction_esc" in hf and hf["kspace"].ndim == 3
    sl = open_volume(path).read_slice(0)
    assert sl.kspace.shape == (1, 32, 32) and sl.meta.challenge == "singlecoil"
    np.testing.assert_allclose(sl.target, esc[0])


def test_reference_computed_from_fully_sampled_kspace_when_absent(multicoil_file):
    sl = open_volume(multicoil_file).read_slice(2)
    expected = reference_from_kspace(sl.kspace, (32, 32)).numpy()
    np.testing.assert_allclose(sl.target, expected)


def test_padding_band_from_header_matches_fastmri_and_masks_respect_it(tmp_path):
    k = multicoil_kspace(slices=1, coils=2, h=32, w=48)
    k[..., :5] = 0
    k[..., 43:] = 0
    path = write_volume(tmp_path / "p.h5", k, padding=(5, 43))
    # fastMRI's own metadata code must agree with ours
    from fastmri.data.mri_data import SliceDataset
    meta, _ = SliceDataset._retrieve_metadata(None, path)
    vol = FastMRIVolume(path)
    assert vol.padding == (meta["padding_left"], meta["padding_right"]) == (5, 43)
    problem = prepare(vol.read_slice(0), MaskConfig("equispaced", 2, seed=0))
    cols = problem.sampled.mask.reshape(-1).numpy()
    assert not cols[:5].any() and not cols[43:].any()


def test_test_set_file_with_mask_has_no_reference_and_uses_its_mask(tmp_path):
    k = multicoil_kspace(slices=2, coils=2, h=32, w=32)
    cols = np.zeros(32, bool)
    cols[13:19] = True
    cols[::4] = True
    k = k * cols
    path = write_volume(tmp_path / "test.h5", k, mask=cols)
    sl = open_volume(path).read_slice(0)
    assert sl.target is None
    np.testing.assert_array_equal(sl.acquired_mask, cols)
    problem = prepare(sl, MaskConfig("random", 8))
    np.testing.assert_array_equal(problem.sampled.mask.reshape(-1).numpy(), cols)


def test_only_the_requested_slice_is_read(tmp_path, monkeypatch):
    path = write_volume(tmp_path / "big.h5", np.zeros((6, 2, 16, 16), np.complex64) + 1)
    reads = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        if self.name == "/kspace":
            reads.append(key)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    FastMRIVolume(path).read_slice(4)
    assert reads == [4]


def test_list_volumes(tmp_path):
    write_volume(tmp_path / "b" / "x.h5", np.ones((1, 8, 8), np.complex64))
    write_volume(tmp_path / "a.h5", np.ones((1, 8, 8), np.complex64))
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_volumes(tmp_path)] == ["a.h5", "x.h5"]
    with pytest.raises(ExplorerError):
        list_volumes(tmp_path / "missing")


def _bad_files(tmp_path):
    cases = {}
    p = tmp_path / "text.h5"
    p.write_text("not hdf5 at all")
    cases["not HDF5"] = p
    good = write_volume(tmp_path / "good.h5", multicoil_kspace(slices=2, coils=2, h=32, w=32))
    data = good.read_bytes()
    p = tmp_path / "trunc.h5"
    p.write_bytes(data[: len(data) // 2])
    cases["truncated"] = p
    p = tmp_path / "nokspace.h5"
    with h5py.File(p, "w") as hf:
        hf["image"] = np.zeros((2, 4, 4))
    cases["missing kspace"] = p
    p = tmp_path / "ndim.h5"
    with h5py.File(p, "w") as hf:
        hf["kspace"] = np.zeros((4, 4), np.complex64)
    cases["wrong ndim"] = p
    p = tmp_path / "dtype.h5"
    with h5py.File(p, "w") as hf:
        hf["kspace"] = np.zeros((2, 4, 4), np.float32)
    cases["wrong dtype"] = p
    p = tmp_path / "nan.h5"
    k = np.ones((2, 2, 4, 4), np.complex64)
    k[0, 0, 1, 1] = np.nan
    k[1, 0, 1, 1] = np.inf
    with h5py.File(p, "w") as hf:
        hf["kspace"] = k
    cases["nan"] = p
    return cases


def test_bad_files_raise_one_line_errors(tmp_path):
    for label, path in _bad_files(tmp_path).items():
        with pytest.raises(ExplorerError) as info:
            open_volume(path).read_slice(0)
        assert "\n" not in str(info.value), label
    with pytest.raises(ExplorerError, match="out of range"):
        open_volume(tmp_path / "good.h5").read_slice(2)
    with pytest.raises(ExplorerError, match="out of range"):
        open_volume(tmp_path / "good.h5").read_slice(-1)
    with pytest.raises(ExplorerError, match="no such file"):
        open_volume(tmp_path / "absent.h5")
    with pytest.raises(ExplorerError, match="unknown sample family"):
        open_volume("sample:elbow")


def test_declared_slice_sizes_past_the_limit_are_refused_before_reading(tmp_path, monkeypatch):
    huge = tmp_path / "huge.h5"
    with h5py.File(huge, "w") as f:  # a tiny file declaring 16 x 16384 x 16384 complex k-space (never written)
        f.create_dataset("kspace", shape=(16, 16384, 16384), dtype=np.complex64)
    with pytest.raises(ExplorerError, match="2,048 MiB, past the limit of 512 MiB"):
        FastMRIVolume(huge)
    monkeypatch.setenv("EXPLORER_MAX_SLICE_MB", "4096")
    assert FastMRIVolume(huge).num_slices == 16  # the limit is configurable
    monkeypatch.setenv("EXPLORER_MAX_SLICE_MB", "lots")
    with pytest.raises(ExplorerError, match="EXPLORER_MAX_SLICE_MB"):
        FastMRIVolume(huge)


@pytest.mark.parametrize("extra, message", [
    ({"reconstruction_rss": np.zeros((2, 16, 16), np.float32)}, "one 2D image for each of the 3"),
    ({"mask": np.ones((2, 16), bool)}, "one entry per k-space column"),
    ({"mask": np.ones(15, bool)}, "one entry per k-space column"),
    ({"ismrmrd_header": "zero-recon"}, "reconSpace matrix size (0, 0, 1) must be positive"),
])
def test_companion_datasets_that_do_not_match_the_kspace_are_refused_at_open(tmp_path, extra, message):
    from explorer.data.header import build_header

    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["kspace"] = np.zeros((3, 2, 16, 16), np.complex64)
        for key, value in extra.items():
            f[key] = build_header((16, 16, 1), (0, 0, 1)) if isinstance(value, str) else value
    with pytest.raises(ExplorerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FastMRIVolume(path)
