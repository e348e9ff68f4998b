"""Raw ISMRMRD (mridata.org Stanford 3D FSE layout) reader and writer."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
import torch

import explorer.data.ismrmrd as ism
from explorer.data.fastmri import write_volume
from explorer.data.header import parse_header
from explorer.data.ismrmrd import IsmrmrdVolume, is_ismrmrd_file
from explorer.data.ismrmrd_write import write_stanford_like
from explorer.errors import ExplorerError
from explorer.physics import fft2c, rss

C, Z, Y, X = 4, 8, 16, 12  # coils, stored slices, phase encodes (ky), readout samples (kx)


def _c(dims, x, inverse=False):
    """Centred orthonormal FFT over ``dims`` (numpy reference, independent of the module)."""
    fn = np.fft.ifftn if inverse else np.fft.fftn
    return np.fft.fftshift(fn(np.fft.ifftshift(x, axes=dims), axes=dims, norm="ortho"), axes=dims)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def image():
    """Known complex coil images ``(C, Z, Y, X)``: an asymmetric 3D object times smooth coil maps."""
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(np.arange(Z), np.arange(Y), np.arange(X), indexing="ij")
    obj = ((z - 3) ** 2 / 9 + (y - 7) ** 2 / 25 + (x - 5) ** 2 / 16 < 1) * (1 + 0.05 * y + 0.1 * z)
    obj = obj + 0.1 * rng.standard_normal(obj.shape)
    maps = np.stack([np.exp(1j * (0.3 * c * y + 0.2 * x)) * (1 + 0.1 * c * z) for c in range(C)])
    return (maps * obj).astype(np.complex64)


@pytest.fixture(scope="module")
def hybrid(image):
    """Hybrid volume ``(C, Z, KY, KX)``: k-space in-plane, image space along z."""
    return _c((2, 3), image).astype(np.complex64)


@pytest.fixture
def raw(tmp_path, hybrid):
    return write_stanford_like(tmp_path / "knee.h5", hybrid)


def test_writer_reproduces_the_stanford_layout(raw, hybrid):
    with h5py.File(raw, "r") as hf:
        assert set(hf["dataset"]) == {"data", "xml"}
        data = hf["dataset/data"]
        assert data.shape == (Z * Y,)
        rec = data[3]  # ky-major order: acquisition 3 is (slice 3, ky 0)
        assert (rec["head"]["idx"]["slice"], rec["head"]["idx"]["kspace_encode_step_1"]) == (3, 0)
        assert (rec["head"]["number_of_samples"], rec["head"]["active_channels"]) == (X, C)
        samples = rec["data"].view(np.complex64).reshape(C, X)
        np.testing.assert_allclose(samples, -hybrid[:, 3, 0, :])  # (-1)**slice sign applied
        info = parse_header(hf["dataset/xml"][0])
    assert info.recon_size == (512, 512, 1)
    assert info.padding == (0, Y + 1)  # the maximum = KY quirk: a naive reader overruns W


def test_is_ismrmrd_file(raw, tmp_path):
    assert is_ismrmrd_file(raw)
    fastmri = write_volume(tmp_path / "fm.h5", np.ones((1, 2, 4, 4), np.complex64))
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    assert not any(is_ismrmrd_file(p) for p in (fastmri, text, tmp_path / "absent.h5", tmp_path))


@pytest.mark.parametrize("order", ["ky-major", "slice-major"])
def test_kxky_slices_reproduce_the_known_kspace(tmp_path, image, hybrid, order):
    vol = IsmrmrdVolume(write_stanford_like(tmp_path / "k.h5", hybrid, order=order))
    assert (vol.num_slices, vol.num_coils, vol.shape, vol.padding) == (Z, C, (X, Y), (0, Y))
    assert (vol.challenge, vol.plane, vol.name) == ("multicoil", "kxky", "k.h5")
    for z in range(Z):
        s = vol.read_slice(z)
        assert s.kspace.dtype == torch.complex64 and s.kspace.shape == (C, X, Y)
        # readout kx along H, ky along W (sign undone): slice z is the transpose of the hybrid plane
        np.testing.assert_allclose(s.kspace.numpy(), hybrid[:, z].transpose(0, 2, 1), atol=1e-6)
        # the target is the RSS of the full planes, i.e. of the object's slice with x down, y across
        np.testing.assert_allclose(s.target, np.sqrt((abs(image[:, z]) ** 2).sum(0)).T, rtol=1e-4, atol=1e-5)
        assert s.target.dtype == np.float32 and s.target_shape == (X, Y)
    assert s.meta.index == Z - 1 and s.meta.num_slices == Z and s.meta.padding == (0, Y)
    assert s.meta.encoding_size == (X, Y, Z) and s.meta.recon_size == (512, 512, 1)


def test_kykz_planes_are_the_fft_along_z_of_the_hybrid_data(raw, image, hybrid):
    vol = IsmrmrdVolume(raw, plane="kykz", source="stanford:knee")
    assert (vol.num_slices, vol.shape, vol.padding, vol.name) == (X, (Y, Z), (0, Z), "knee.h5")
    expected = _c((1,), _c((3,), hybrid, inverse=True))  # (C, KZ, KY, x)
    for x in range(X):
        s = vol.read_slice(x)
        assert s.kspace.dtype == torch.complex64 and s.kspace.shape == (C, Y, Z)
        np.testing.assert_allclose(s.kspace.numpy(), expected[..., x].transpose(0, 2, 1), atol=1e-5)
        np.testing.assert_allclose(s.kspace, fft2c(torch.from_numpy(image[..., x]).transpose(1, 2)), atol=1e-5)
        np.testing.assert_allclose(s.target, rss(torch.from_numpy(image[..., x])).T.numpy(), rtol=1e-4, atol=1e-5)
    assert s.meta.attrs["plane"] == "kykz" and s.meta.source == "stanford:knee"


def test_kykz_cache_is_built_once_and_reused(raw, tmp_path, monkeypatch):
    first = IsmrmrdVolume(raw, plane="kykz")
    assert first.cache_path.parent == tmp_path / "cache" and not first.cache_path.exists()
    k0 = first.read_slice(2).kspace
    assert first.cache_path.is_file() and not list(first.cache_path.parent.glob("*.part*"))

    def no_rebuild(*args, **kwargs):
        raise AssertionError("cache rebuilt")

    monkeypatch.setattr(ism, "_build_kykz_cache", no_rebuild)
    second = IsmrmrdVolume(raw, plane="kykz")
    assert second.cache_path == first.cache_path
    assert torch.equal(second.read_slice(2).kspace, k0)
    stat = raw.stat()
    os.utime(raw, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed: new cache key
    assert IsmrmrdVolume(raw, plane="kykz").cache_path != first.cache_path


def test_kykz_cache_build_reports_progress(raw):
    seen = []
    IsmrmrdVolume(raw, plane="kykz").ensure_cache(seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_noise_acquisitions_are_ignored(raw, hybrid):
    with h5py.File(raw, "r+") as hf:
        data = hf["dataset/data"]
        rec = data[0]
        rec["head"]["flags"] = 1 << 18  # ACQ_IS_NOISE_MEASUREMENT
        rec["head"]["idx"]["slice"] = 200
        data.resize((data.shape[0] + 1,))
        data[-1] = rec
    vol = IsmrmrdVolume(raw)
    assert vol.num_slices == Z
    np.testing.assert_allclose(vol.read_slice(1).kspace.numpy(), hybrid[:, 1].transpose(0, 2, 1), atol=1e-6)


def test_compressed_table_takes_the_slow_header_path(raw, tmp_path, hybrid):
    copy = tmp_path / "gz.h5"
    with h5py.File(raw, "r") as src, h5py.File(copy, "w") as dst:
        dst.create_dataset("dataset/xml", data=src["dataset/xml"][()])
        dst.create_dataset("dataset/data", data=src["dataset/data"][()], chunks=(16,), compression="gzip")
    np.testing.assert_allclose(IsmrmrdVolume(copy).read_slice(5).kspace.numpy(), hybrid[:, 5].transpose(0, 2, 1),
                               atol=1e-6)
    for path in (raw, copy):  # raw-chunk fast path and whole-record slow path agree with h5py
        with h5py.File(path, "r") as hf:
            assert np.array_equal(ism._read_heads(hf["dataset/data"], block=5), hf["dataset/data"][()]["head"])


def test_bad_slice_and_plane(raw):
    vol = IsmrmrdVolume(raw)
    for index in (-1, Z, 1.0, "0"):
        with pytest.raises(ExplorerError, match="out of range"):
            vol.read_slice(index)
    with pytest.raises(ExplorerError, match="out of range"):
        IsmrmrdVolume(raw, plane="kykz").read_slice(X)
    with pytest.raises(ExplorerError, match="unknown plane"):
        IsmrmrdVolume(raw, plane="xz")


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and exc_info.value.__cause__ is None
    return message


def test_missing_and_duplicate_acquisitions(tmp_path, hybrid, raw):
    with pytest.raises(ExplorerError, match="2 missing acquisitions") as err:
        IsmrmrdVolume(write_stanford_like(tmp_path / "m.h5", hybrid, drop=[(2, 5), (7, 0)]))
    assert "slice 2, ky 5" in _one_line(err)
    with h5py.File(raw, "r+") as hf:
        rec = hf["dataset/data"][1]
        rec["head"]["idx"]["slice"] = 0  # now two acquisitions claim (slice 0, ky 0)
        hf["dataset/data"][1] = rec
    with pytest.raises(ExplorerError, match="duplicate"):
        IsmrmrdVolume(raw)


def test_malformed_files(tmp_path):
    text = tmp_path / "text.h5"
    text.write_text("hello")
    no_data = tmp_path / "no_data.h5"
    with h5py.File(no_data, "w") as hf:
        hf.create_dataset("dataset/xml", data=[b"<x/>"])
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as hf:
        hf.create_dataset("dataset/xml", data=[b"<x/>"])
        hf.create_dataset("dataset/data", shape=(0,), maxshape=(None,), dtype=ism_acquisition_dtype())
    for path, pattern in ((tmp_path / "absent.h5", "no such file"), (text, "not a readable HDF5"),
                          (no_data, "not an ISMRMRD file"), (empty, "no acquisitions")):
        for plane in ("kxky", "kykz"):
            with pytest.raises(ExplorerError, match=pattern) as err:
                IsmrmrdVolume(path, plane=plane)
            _one_line(err)


def ism_acquisition_dtype():
    from ismrmrd.hdf5 import acquisition_dtype

    return acquisition_dtype


def test_nan_and_wrong_sample_count(raw, tmp_path):
    with h5py.File(raw, "r+") as hf:
        data = hf["dataset/data"]
        rec = data[Z + 3]  # (slice 3, ky 1)
        rec["data"] = np.full(2 * C * X, np.nan, np.float32)
        data[Z + 3] = rec
        rec = data[Z + 5]  # (slice 5, ky 1)
        rec["data"] = np.zeros(2 * C * (X - 1), np.float32)
        data[Z + 5] = rec
    vol = IsmrmrdVolume(raw)
    vol.read_slice(2)  # other slices stay readable
    with pytest.raises(ExplorerError, match="NaN") as err:
        vol.read_slice(3)
    _one_line(err)
    with pytest.raises(ExplorerError, match=f"expected {C} coils x {X}"):
        vol.read_slice(5)
    kykz = IsmrmrdVolume(raw, plane="kykz")
    with pytest.raises(ExplorerError):
        kykz.read_slice(0)
    assert not kykz.cache_path.exists() and not list((tmp_path / "cache").glob("*"))


def test_inconsistent_readouts(raw):
    with h5py.File(raw, "r+") as hf:
        rec = hf["dataset/data"][4]
        rec["head"]["number_of_samples"] = X - 2
        hf["dataset/data"][4] = rec
    with pytest.raises(ExplorerError, match="readout length"):
        IsmrmrdVolume(raw)


def test_declared_sizes_are_checked_before_anything_is_allocated(raw, hybrid, tmp_path):
    """Headers claiming 60000 coils x 60000 samples, or a 65000-slice grid, are refused at open (one line)."""
    huge = write_stanford_like(tmp_path / "huge.h5", hybrid)
    with h5py.File(huge, "r+") as hf:
        data = hf["dataset/data"]
        records = data[:]
        records["head"]["active_channels"] = 60000
        records["head"]["number_of_samples"] = 60000
        data[:] = records
    with pytest.raises(ExplorerError, match="EXPLORER_MAX_SLICE_MB") as err:
        IsmrmrdVolume(huge)
    _one_line(err)
    with h5py.File(raw, "r+") as hf:
        rec = hf["dataset/data"][3]
        rec["head"]["idx"]["slice"] = 65000
        hf["dataset/data"][3] = rec
    with pytest.raises(ExplorerError, match="missing acquisitions in the 65001 slices") as err:
        IsmrmrdVolume(raw, plane="kykz")
    _one_line(err)
