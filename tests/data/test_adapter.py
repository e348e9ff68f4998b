"""The dataset adapter (``python -m explorer dataset build``): the four input formats, single-coil and semi-real
volumes, grouping and ranges, --force, no partial files, and one ``error:`` line for every bad input."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from explorer.cli.main import main
from explorer.data import adapter, image_files
from explorer.data.adapter import BuildConfig, build, estimate_maps, natural_key, read_maps_kspace
from explorer.data.cfl import write_cfl
from explorer.data.fastmri import write_volume
from explorer.data.sources import open_volume
from explorer.physics import fft2c, ifft2c, rss

N = 32


def image(seed: int, n: int = N) -> np.ndarray:
    """A smooth complex image ``(n, n)``: an ellipse with a phase ramp and a little texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1:1:complex(0, n), -1:1:complex(0, n)]
    body = ((x / 0.8) ** 2 + (y / 0.7) ** 2 < 1).astype(np.float64) * (1 + 0.3 * np.cos(3 * x + seed))
    return (body * np.exp(1j * (0.5 * x + 0.3 * y + rng.uniform(0, 1)))).astype(np.complex128)


def coil_kspace(n: int = 48, coils: int = 4) -> np.ndarray:
    """Multi-coil k-space ``(C, n, n)`` of a phantom under smooth synthetic coil sensitivities."""
    y, x = np.mgrid[-1:1:complex(0, n), -1:1:complex(0, n)]
    maps = []
    for c in range(coils):
        angle = 2 * np.pi * c / coils
        cx, cy = 1.2 * np.cos(angle), 1.2 * np.sin(angle)
        maps.append(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 1.5) * np.exp(1j * (angle + 0.4 * x)))
    phantom = image(7, n)
    coil_images = torch.from_numpy((np.stack(maps) * phantom).astype(np.complex64))
    return fft2c(coil_images).numpy()


def write_mat73(path, name: str, array: np.ndarray) -> None:
    """A MATLAB v7.3 file: 512-byte user block, the array stored transposed, complex as a real/imag compound."""
    compound = np.dtype([("real", "<f8"), ("imag", "<f8")])
    stored = np.empty(array.T.shape, dtype=compound)
    stored["real"], stored["imag"] = array.T.real, array.T.imag
    with h5py.File(path, "w", userblock_size=512) as hf:
        hf.create_dataset(name, data=stored)
        hf.create_group("#refs#")


@pytest.fixture
def folder(tmp_path):
    """Files 1..4 in the four formats (natural order differs from lexical: 10.npy is last)."""
    d = tmp_path / "in"
    d.mkdir()
    images = {1: image(1), 2: image(2), 3: image(3), 10: image(10)}
    scipy.io.savemat(d / "1.mat", {"Img": images[1]})
    write_mat73(d / "2.mat", "Img", images[2])
    write_cfl(d / "3", images[3])
    np.save(d / "10.npy", images[10])
    return d, [images[k] for k in (1, 2, 3, 10)]


@pytest.fixture
def maps_npy(tmp_path):
    path = tmp_path / "maps.npy"
    np.save(path, coil_kspace())
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def build_cli(capsys, src, out, *extra):
    return run(capsys, "dataset", "build", "--in", str(src), "--out", str(out), *extra)


def test_natural_order():
    names = ["10.mat", "2.mat", "1.mat", "img_9.npy", "img_10.npy"]
    assert sorted(names, key=natural_key) == ["1.mat", "2.mat", "10.mat", "img_9.npy", "img_10.npy"]


def test_single_coil_round_trip_in_all_four_formats(capsys, tmp_path, folder):
    src, images = folder
    code, out, err = build_cli(capsys, src, tmp_path / "out", "--key", "Img")
    assert code == 0, err
    files = sorted((tmp_path / "out").glob("volume_*.h5"))
    assert [f.name for f in files] == [f"volume_{i:04d}.h5" for i in range(1, 5)]
    assert not list((tmp_path / "out").glob(".dataset-build-*"))
    for path, x in zip(files, images):
        with h5py.File(path, "r") as hf:
            k = hf["kspace"][()]
            assert k.shape == (1, N, N) and k.dtype == np.complex64
            back = ifft2c(torch.from_numpy(k)).numpy()[0]
            np.testing.assert_allclose(back, x, atol=1e-5)
            np.testing.assert_allclose(hf["reconstruction_esc"][0], np.abs(x), atol=1e-5)
            assert hf.attrs["semi_real"] == False  # noqa: E712  (numpy bool)
            assert hf.attrs["adapter"] == "mri-explorer dataset build"
            assert str(src) in hf.attrs["source"]
        volume = open_volume(path)
        assert volume.challenge == "singlecoil" and volume.num_slices == 1
        assert volume.read_slice(0).kspace.shape == (1, N, N)
    assert "volume_0004.h5" in out


def test_grouping_and_range(capsys, tmp_path, folder):
    src, images = folder
    code, _, err = build_cli(capsys, src, tmp_path / "a", "--key", "Img", "--slices-per-volume", "3")
    assert code == 0, err
    files = sorted((tmp_path / "a").glob("*.h5"))
    assert len(files) == 2
    with h5py.File(files[0], "r") as hf:
        assert hf["kspace"].shape == (3, N, N)
        assert "1.mat, 2.mat, 3.cfl" in hf.attrs["source"]
        np.testing.assert_allclose(hf["reconstruction_esc"][2], np.abs(images[2]), atol=1e-5)
    with h5py.File(files[1], "r") as hf:
        assert hf["kspace"].shape == (1, N, N)  # the remainder
        assert hf.attrs["source"].endswith("10.npy")
    code, _, err = build_cli(capsys, src, tmp_path / "b", "--key", "Img", "--range", "2-4", "--slices-per-volume", "2")
    assert code == 0, err
    files = sorted((tmp_path / "b").glob("*.h5"))
    assert len(files) == 2
    with h5py.File(files[0], "r") as hf:  # files 2 and 3, then 10 alone
        np.testing.assert_allclose(hf["reconstruction_esc"][1], np.abs(images[2]), atol=1e-5)
    with h5py.File(files[1], "r") as hf:
        np.testing.assert_allclose(hf["reconstruction_esc"][0], np.abs(images[3]), atol=1e-5)


def test_stack_files(capsys, tmp_path):
    src = tmp_path / "stacks"
    src.mkdir()
    np.save(src / "a.npy", np.stack([image(1), image(2)]))
    np.save(src / "b.npy", np.stack([image(3), image(4)]))
    code, _, err = build_cli(capsys, src, tmp_path / "out", "--slices-per-volume", "3")
    assert code == 0, err
    shapes = [h5py.File(p, "r")["kspace"].shape for p in sorted((tmp_path / "out").glob("*.h5"))]
    assert shapes == [(3, N, N), (1, N, N)]


def test_anatomy_label_reaches_the_slices(capsys, tmp_path, folder):
    src, _ = folder
    code, _, err = build_cli(capsys, src, tmp_path / "out", "--key", "Img", "--range", "1-2", "--anatomy", "brain")
    assert code == 0, err
    from explorer.data.sources import open_volume

    volume = open_volume(sorted((tmp_path / "out").glob("*.h5"))[0])
    assert volume.read_slice(0).meta.anatomy == "brain"
    code, _, err = build_cli(capsys, src, tmp_path / "bad", "--key", "Img", "--anatomy", "liver")
    assert code == 2 and "--anatomy must be one of knee, brain" in err


def test_measured_multicoil_kspace_in_three_layouts(capsys, tmp_path):
    """--coils measured: each file one real multi-coil k-space slice, kept exactly; the reference is the RSS of the
    coil images; (C, H, W) .npy, (H, W, C) .mat with --coil-axis -1 and BART (1, H, W, C) give the same volume."""
    import scipy.io

    kspace = coil_kspace()
    src = tmp_path / "in"
    for name in ("npy", "mat", "cfl"):
        (src / name).mkdir(parents=True)
    np.save(src / "npy" / "a.npy", kspace)
    scipy.io.savemat(src / "mat" / "a.mat", {"kData": np.moveaxis(kspace, 0, -1)})
    write_cfl(src / "cfl" / "a", np.moveaxis(kspace, 0, -1)[None])
    volumes = {}
    for name, extra in (("npy", []), ("mat", ["--key", "kData", "--coil-axis", "-1"]), ("cfl", [])):
        code, _, err = build_cli(capsys, src / name, tmp_path / name, "--coils", "measured", "--anatomy", "brain", *extra)
        assert code == 0, err
        with h5py.File(tmp_path / name / "volume_0001.h5", "r") as hf:
            volumes[name] = (hf["kspace"][()], hf["reconstruction_rss"][()], hf.attrs["measured"])
    k, target, flag = volumes["npy"]
    assert flag and k.shape == (1, *kspace.shape)
    np.testing.assert_allclose(k[0], kspace, rtol=1e-6, atol=1e-6)
    expected = rss(ifft2c(torch.from_numpy(kspace.astype(np.complex64))), dim=0).numpy()
    np.testing.assert_allclose(target[0], expected, rtol=1e-5, atol=1e-6)
    for other in ("mat", "cfl"):
        np.testing.assert_allclose(volumes[other][0], k, rtol=1e-6, atol=1e-6)
    for extra, message in ((["--slices-per-volume", "2"], "one volume per k-space file"),
                           (["--coil-axis", "5"], "no coil axis 5"),
                           (["--maps-from", str(src / "npy" / "a.npy")], "only used with --coils semi-real")):
        code, _, err = build_cli(capsys, src / "npy", tmp_path / "bad", "--coils", "measured", *extra)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_bart_slice_across_the_readout_reads_as_the_same_kspace(tmp_path):
    """BART's own 2D examples (e.g. espirit-matlab-examples ``full.cfl``, dims 1 x 230 x 180 x 8) hold the slice in
    dimensions 1-2; ``(H, W, 1, C)`` holds it in 0-1. Both read as the same ``(C, H, W)``."""
    kspace = coil_kspace()
    write_cfl(tmp_path / "a", np.moveaxis(kspace, 0, -1)[:, :, None, :])
    write_cfl(tmp_path / "b", np.moveaxis(kspace, 0, -1)[None, :, :, :])
    a, b = read_maps_kspace(tmp_path / "a.cfl"), read_maps_kspace(tmp_path / "b.cfl")
    assert a.shape == kspace.shape
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(a), kspace)


@pytest.mark.parametrize("source", ["npy", "h5", "cfl"])
def test_semi_real_consistent_with_maps(capsys, tmp_path, folder, source):
    src, images = folder
    kspace = coil_kspace()
    if source == "npy":
        maps_from = tmp_path / "maps.npy"
        np.save(maps_from, kspace)
    elif source == "h5":
        maps_from = tmp_path / "maps.h5"
        write_volume(maps_from, np.stack([kspace] * 3), None)
    else:
        maps_from = tmp_path / "maps.cfl"
        write_cfl(tmp_path / "maps", np.moveaxis(kspace, 0, -1)[:, :, None, :])
    code, _, err = build_cli(capsys, src, tmp_path / "out", "--key", "Img", "--coils", "semi-real", "--maps-from",
                             str(maps_from), "--snr", "inf", "--range", "1-2")
    assert code == 0, err
    maps = estimate_maps(maps_from, (N, N))
    power = (maps.abs() ** 2).sum(0)
    inside = power > 0
    assert inside.float().mean() > 0.3
    torch.testing.assert_close(power[inside], torch.ones_like(power[inside]), atol=1e-4, rtol=0)
    for path, x in zip(sorted((tmp_path / "out").glob("*.h5")), images):
        with h5py.File(path, "r") as hf:
            k = torch.from_numpy(hf["kspace"][()])
            assert k.shape == (1, 4, N, N) and k.dtype == torch.complex64
            expected = maps * torch.from_numpy(x.astype(np.complex64))
            torch.testing.assert_close(ifft2c(k)[0], expected, atol=1e-4, rtol=1e-4)
            target = hf["reconstruction_rss"][0]
            np.testing.assert_allclose(target, np.abs(x) * inside.numpy(), atol=1e-4)
            assert hf.attrs["semi_real"] == True  # noqa: E712
            assert hf.attrs["maps_from"] == str(maps_from)
            assert math.isinf(hf.attrs["snr_db"])
        assert open_volume(path).challenge == "multicoil"


def test_semi_real_noise_level_seed_and_recon(capsys, tmp_path, folder, maps_npy):
    src, _ = folder
    args = ("--key", "Img", "--coils", "semi-real", "--maps-from", str(maps_npy), "--range", "1-1", "--seed", "3")
    assert build_cli(capsys, src, tmp_path / "clean", *args, "--snr", "inf")[0] == 0
    assert build_cli(capsys, src, tmp_path / "noisy", *args)[0] == 0  # default 40 dB
    assert build_cli(capsys, src, tmp_path / "again", *args, "--json")[0] == 0
    clean = h5py.File(tmp_path / "clean" / "volume_0001.h5", "r")["kspace"][()]
    noisy = h5py.File(tmp_path / "noisy" / "volume_0001.h5", "r")["kspace"][()]
    again = h5py.File(tmp_path / "again" / "volume_0001.h5", "r")["kspace"][()]
    np.testing.assert_array_equal(noisy, again)
    snr = 10 * np.log10(np.mean(np.abs(clean) ** 2) / np.mean(np.abs(noisy - clean) ** 2))
    assert abs(snr - 40) < 0.5
    with h5py.File(tmp_path / "noisy" / "volume_0001.h5", "r") as hf:
        assert hf.attrs["snr_db"] == 40.0
    code, out, err = run(capsys, "recon", "--data", str(tmp_path / "noisy" / "volume_0001.h5"), "--method",
                         "zero_filled", "--json")
    assert code == 0, err
    json.loads(out)


def test_semi_real_refuses_a_slice_below_the_volume_noise(capsys, tmp_path, maps_npy):
    """Independent files stored at very different scales (EDAEPRec's test_data_23 is ~1e6 smaller than its
    neighbours): in one volume the quiet slice would be pure noise, so the build stops; one volume per file works."""
    src = tmp_path / "scales"
    src.mkdir()
    np.save(src / "1.npy", image(1))
    np.save(src / "2.npy", image(2) * 1e-6)
    np.save(src / "3.npy", image(3))
    args = ("--coils", "semi-real", "--maps-from", str(maps_npy))
    code, _, err = build_cli(capsys, src, tmp_path / "one", *args, "--slices-per-volume", "3")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "1 of 3 slices" in err and "2.npy" in err and "--slices-per-volume 1" in err
    assert not list((tmp_path / "one").glob("*.h5"))
    code, _, err = build_cli(capsys, src, tmp_path / "each", *args, "--slices-per-volume", "1")
    assert code == 0, err
    quiet = h5py.File(tmp_path / "each" / "volume_0002.h5", "r")
    k = quiet["kspace"][()]
    assert k.shape[0] == 1 and np.isfinite(k).all()
    # the quiet file keeps its own 40 dB: its noise is ~1e-6 of the loud files' noise, not theirs
    loud = h5py.File(tmp_path / "each" / "volume_0001.h5", "r")["kspace"][()]
    assert np.mean(np.abs(k) ** 2) < 1e-9 * np.mean(np.abs(loud) ** 2)


def test_force(capsys, tmp_path, folder):
    src, _ = folder
    out = tmp_path / "out"
    assert build_cli(capsys, src, out, "--key", "Img")[0] == 0
    before = (out / "volume_0001.h5").stat().st_mtime_ns
    code, _, err = build_cli(capsys, src, out, "--key", "Img")
    assert code == 2 and err.startswith("error: ") and "--force" in err and len(err.strip().splitlines()) == 1
    assert (out / "volume_0001.h5").stat().st_mtime_ns == before
    assert build_cli(capsys, src, out, "--key", "Img", "--force")[0] == 0
    code, _, err = build_cli(capsys, src, out, "--key", "Img", "--force", "--range", "1-2")
    assert code == 0 and err.startswith("note: ") and "2 earlier file(s)" in err  # volumes 3 and 4 of the last run
    assert build_cli(capsys, src, out, "--key", "Img", "--prefix", "other")[0] == 0  # other names: not refused


def test_no_partial_file_after_a_failure(capsys, tmp_path, folder, monkeypatch):
    src, _ = folder
    calls = []

    def failing(path, kspace, target, **kw):
        calls.append(path)
        if len(calls) == 3:  # midway: a half-written temp file, then a crash
            path.with_name(path.name + ".part").write_bytes(b"half")
            raise OSError("disk full")
        return write_volume(path, kspace, target, **kw)

    monkeypatch.setattr(adapter, "write_volume", failing)
    out = tmp_path / "out"
    with pytest.raises(OSError):
        build(src, out, BuildConfig(key="Img"))
    assert list(out.iterdir()) == []


def _bad_inputs(tmp_path, folder, maps_npy):
    """(name, folder, extra args, expected fragment of the message)."""
    src, _ = folder

    def new(name, files):
        d = tmp_path / name
        d.mkdir()
        for fname, writer in files.items():
            writer(d / fname)
        return d

    wide = np.zeros((N, 48), np.complex64)
    huge = tmp_path / "huge.npy"
    np.lib.format.open_memmap(huge, mode="w+", dtype=np.complex64, shape=(1100, 16))
    nan = image(1).copy()
    nan[3, 3] = np.nan
    maps_bad = tmp_path / "maps_bad.npy"
    np.save(maps_bad, coil_kspace()[0])
    maps_real = tmp_path / "maps_real.npy"
    np.save(maps_real, coil_kspace().real)
    cfl_bad = tmp_path / "mapsbad"
    write_cfl(cfl_bad, np.moveaxis(coil_kspace(), 0, -1))  # (H, W, C): no coil dimension 3
    return [
        ("missing folder", tmp_path / "nope", [], "not found"),
        ("no files", new("empty", {"x.txt": lambda p: p.write_text("hi")}), [], "no readable files"),
        ("corrupt", new("corrupt", {"1.npy": lambda p: p.write_bytes(b"garbage")}), [], "1.npy"),
        ("corrupt mat", new("corruptmat", {"1.mat": lambda p: p.write_bytes(b"MATLAB garbage")}), [], "1.mat"),
        ("wrong key", src, ["--key", "Nope"], "Nope"),
        ("ambiguous", new("amb", {"1.mat": lambda p: scipy.io.savemat(p, {"a": image(1), "b": image(2)})}), [],
         "--key"),
        ("real", new("real", {"1.npy": lambda p: np.save(p, np.abs(image(1)))}), [], "not complex"),
        ("4d", new("fourd", {"1.npy": lambda p: np.save(p, np.zeros((2, 2, N, N), np.complex64))}), [], "shape"),
        ("sizes", new("sizes", {"1.npy": lambda p: np.save(p, image(1)), "2.npy": lambda p: np.save(p, wide)}),
         ["--slices-per-volume", "2"], "differ"),
        ("nan", new("nan", {"1.npy": lambda p: np.save(p, nan)}), [], "NaN"),
        ("too large", new("large", {"1.npy": lambda p: huge.replace(p)}), [], "limit"),
        ("range form", src, ["--key", "Img", "--range", "3"], "--range"),
        ("range order", src, ["--key", "Img", "--range", "3-1"], "--range"),
        ("range past", src, ["--key", "Img", "--range", "1-9"], "--range"),
        ("snr word", src, ["--key", "Img", "--snr", "loud"], "--snr"),
        ("snr nan", src, ["--key", "Img", "--coils", "semi-real", "--maps-from", str(maps_npy), "--snr", "nan"],
         "--snr"),
        ("snr range", src, ["--key", "Img", "--coils", "semi-real", "--maps-from", str(maps_npy), "--snr", "-5"],
         "--snr"),
        ("spv", src, ["--key", "Img", "--slices-per-volume", "0"], "--slices-per-volume"),
        ("coils", src, ["--key", "Img", "--coils", "eight"], "--coils"),
        ("no maps", src, ["--key", "Img", "--coils", "semi-real"], "--maps-from"),
        ("maps missing", src, ["--key", "Img", "--coils", "semi-real", "--maps-from", str(tmp_path / "no.npy")],
         "not found"),
        ("maps shape", src, ["--key", "Img", "--coils", "semi-real", "--maps-from", str(maps_bad)], "(C, H, W)"),
        ("maps real", src, ["--key", "Img", "--coils", "semi-real", "--maps-from", str(maps_real)], "complex"),
        ("maps cfl", src, ["--key", "Img", "--coils", "semi-real", "--maps-from", str(cfl_bad) + ".cfl"],
         "dims 0-2"),
    ]


def test_every_bad_input_is_one_error_line(capsys, tmp_path, folder, maps_npy):
    for name, src, extra, fragment in _bad_inputs(tmp_path, folder, maps_npy):
        out = tmp_path / f"out_{name.replace(' ', '_')}"
        code, _, err = build_cli(capsys, src, out, *extra)
        lines = err.strip().splitlines()
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)
        assert fragment in lines[0], (name, lines[0])
        assert not list(out.glob("*.h5")) if out.exists() else True, name


def test_file_count_cap(tmp_path, monkeypatch, folder):
    src, _ = folder
    monkeypatch.setattr(image_files, "MAX_FILES", 3)
    from explorer.errors import ExplorerError  # noqa: PLC0415

    with pytest.raises(ExplorerError, match="limit of 3"):
        build(src, tmp_path / "out", BuildConfig(key="Img"))
    build(src, tmp_path / "out", BuildConfig(key="Img", file_range=(1, 3)))
