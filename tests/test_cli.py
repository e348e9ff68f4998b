import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from explorer.cli.main import main
from explorer.data.fastmri import write_volume
from tests.conftest import multicoil_kspace


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_recon_json_schema(capsys, multicoil_file):
    code, out, err = run(capsys, "recon", "--data", str(multicoil_file), "--method", "zero_filled", "--method", "sense",
                         "--set", "sense.iterations=5", "--acceleration", "3", "--center-fraction", "0.25", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"file", "slice", "shape", "coils", "device", "mask", "metric", "results"}
    assert doc["metric"] == "fastmri"
    assert doc["slice"] == 1 and doc["shape"] == [32, 32] and doc["coils"] == 4 and doc["device"] == "cpu"
    assert set(doc["mask"]) == {"type", "acceleration", "acceleration_actual", "center_fraction", "seed"}
    assert doc["mask"]["type"] == "random" and doc["mask"]["center_fraction"] == 0.25
    assert 2 < doc["mask"]["acceleration_actual"] < 4.5
    assert [r["method"] for r in doc["results"]] == ["zero_filled", "sense"]
    for r in doc["results"]:
        assert set(r) == {"method", "label", "ssim", "psnr", "nmse", "seconds", "notes"} and r["label"] == r["method"]
        assert 0 < r["ssim"] <= 1 and r["nmse"] >= 0 and r["seconds"] >= 0


def test_recon_out_writes_arrays_pngs_and_csv(capsys, tmp_path, multicoil_file):
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "recon", "--data", str(multicoil_file), "--slice", "0", "--mask", "equispaced",
                         "--center-fraction", "0.25", "--method", "zero_filled", "--out", str(out_dir))
    assert code == 0, err
    for name in ("target", "mask", "zero_filled"):
        assert (out_dir / f"{name}.npy").is_file() and (out_dir / f"{name}.png").is_file()
    mask = np.load(out_dir / "mask.npy")
    assert mask.shape == (32, 32) and mask.dtype == bool and mask[:, 12:20].all() and (mask == mask[:1]).all()
    recon = np.load(out_dir / "zero_filled.npy")
    assert recon.shape == np.load(out_dir / "target.npy").shape == (32, 32)
    rows = list(csv.DictReader(open(out_dir / "metrics.csv")))
    assert rows[0]["method"] == "zero_filled" and 0 < float(rows[0]["ssim"]) <= 1
    assert rows[0]["metric"] == "fastmri"  # the CSV names the metric definition that produced it
    assert "zero_filled" in out and "SSIM" in out


def test_every_csv_names_its_metric_definition(capsys, tmp_path, multicoil_file):
    for command, name in ((["recon"], "metrics.csv"), (["attack", "--eps", "0.02", "--steps", "2"], "attack.csv")):
        out_dir = tmp_path / command[0]
        code, _, err = run(capsys, *command, "--data", str(multicoil_file), "--slice", "0", "--method", "zero_filled",
                           "--metric", "paper", "--out", str(out_dir))
        assert code == 0, err
        rows = list(csv.DictReader(open(out_dir / name)))
        assert rows and all(row["metric"] == "paper" for row in rows), (command, rows)


def test_recon_roi_statistics_and_line_profile(capsys, tmp_path, multicoil_file):
    """--roi and --profile report what the viewer shows: the same library functions on the same images."""
    from explorer.viewer.detail import profiles  # noqa: PLC0415
    from explorer.viewer.measure import Box, roi_stats  # noqa: PLC0415

    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "recon", "--data", str(multicoil_file), "--method", "zero_filled", "--acceleration", "3",
                         "--center-fraction", "0.25", "--roi", "8,6,23,21", "--profile", "16,2,20,29",
                         "--out", str(out_dir), "--json")
    assert code == 0, err
    doc = json.loads(out)
    target, image = np.load(out_dir / "target.npy"), np.load(out_dir / "zero_filled.npy")
    assert doc["roi"]["rows_cols"] == [8, 6, 23, 21]
    expected = roi_stats(target, {"zero_filled": image}, Box(8, 6, 24, 22))
    assert [r["label"] for r in doc["roi"]["rows"]] == ["reference", "zero_filled"]
    for got, want in zip(doc["roi"]["rows"], expected):
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-6) and got["std"] == pytest.approx(want["std"], rel=1e-6)
    assert doc["roi"]["rows"][1]["ssim"] == pytest.approx(expected[1]["ssim"], rel=1e-6)
    curves = profiles(target, {"zero_filled": image}, ((16.0, 2.0), (20.0, 29.0)))
    np.testing.assert_allclose(doc["profile"]["values"]["zero_filled"], curves["zero_filled"][1], rtol=1e-6)
    rows = list(csv.DictReader(open(out_dir / "profile.csv")))
    assert list(rows[0]) == ["distance", "reference", "zero_filled"] and len(rows) == len(doc["profile"]["distance"])
    code, out, err = run(capsys, "recon", "--data", str(multicoil_file), "--method", "zero_filled", "--acceleration", "3",
                         "--center-fraction", "0.25", "--roi", "8,6,23,21")
    assert code == 0 and "ROI rows 8–23, columns 6–21 (16×16 px)" in out and "reference" in out


def test_test_file_without_reference_reports_no_metrics(capsys, tmp_path):
    cols = np.zeros(32, bool)
    cols[12:20] = True
    cols[::4] = True
    path = write_volume(tmp_path / "t.h5", multicoil_kspace(2, 2) * cols, mask=cols)
    code, out, err = run(capsys, "recon", "--data", str(path), "--method", "zero_filled", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["mask"]["type"] == "acquired"
    assert doc["results"][0]["ssim"] is None


def test_methods_listing(capsys):
    code, out, _ = run(capsys, "methods", "--json")
    listing = {m["name"]: m for m in json.loads(out)}
    assert code == 0 and {"zero_filled", "sense"} <= set(listing)
    assert {p["name"] for p in listing["sense"]["params"]} >= {"iterations"}
    code, out, _ = run(capsys, "methods")
    assert "sense.iterations=10" in out


def test_data_dir_resolution_and_listing(capsys, tmp_path, multicoil_file, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(multicoil_file.parent))
    code, out, _ = run(capsys, "files")
    assert code == 0 and out.strip() == str(multicoil_file)
    code, out, err = run(capsys, "recon", "--data", multicoil_file.name, "--data-dir", str(multicoil_file.parent),
                         "--method", "zero_filled", "--json")
    assert code == 0, err


def _bad_file(tmp_path, kind):
    import h5py
    p = tmp_path / f"{kind}.h5"
    if kind == "text":
        p.write_text("hello")
    elif kind == "truncated":
        good = write_volume(tmp_path / "g.h5", multicoil_kspace(2, 2))
        p.write_bytes(good.read_bytes()[:3000])
    else:
        with h5py.File(p, "w") as hf:
            if kind == "nokspace":
                hf["x"] = np.zeros(3)
            elif kind == "ndim":
                hf["kspace"] = np.zeros((4, 4), np.complex64)
            elif kind == "dtype":
                hf["kspace"] = np.zeros((1, 2, 4, 4), np.int16)
            elif kind == "nan":
                hf["kspace"] = np.full((1, 2, 8, 8), np.nan, np.complex64)
    return p


@pytest.mark.parametrize("kind", ["text", "truncated", "nokspace", "ndim", "dtype", "nan"])
def test_bad_files_exit_2_with_one_line(capsys, tmp_path, kind):
    code, out, err = run(capsys, "recon", "--data", str(_bad_file(tmp_path, kind)), "--method", "zero_filled")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args", [
    ["--slice", "99"], ["--acceleration", "0.5"], ["--center-fraction", "0"], ["--center-fraction", "1.5"],
    ["--mask", "spiral"], ["--set", "sense.iterations=abc"], ["--set", "zero_filled.nope=1"], ["--set", "oops"],
    ["--acceleration", "four"],
])
def test_bad_arguments_exit_2_with_one_line(capsys, multicoil_file, args):
    code, out, err = run(capsys, "recon", "--data", str(multicoil_file), "--method", "sense", *args)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_unknown_method_and_missing_file(capsys, multicoil_file, tmp_path):
    code, _, err = run(capsys, "recon", "--data", str(multicoil_file), "--method", "magic_net")
    assert code == 2 and "unknown method" in err
    code, _, err = run(capsys, "recon", "--data", str(tmp_path / "nope.h5"), "--method", "sense")
    assert code == 2 and "no such file" in err


def test_module_entry_point_in_a_subprocess(multicoil_file):
    proc = subprocess.run([sys.executable, "-m", "explorer", "recon", "--data", str(multicoil_file), "--slice", "7",
                           "--method", "zero_filled"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: slice 7 out of range") and "Traceback" not in proc.stderr


def test_ctrl_c_stops_a_fit_and_keeps_its_best_image(tmp_path):
    """SIGINT during an (endless) DIP fit: the fit stops, the result is still printed, exit 0."""
    import os
    import signal
    import time

    sample = tmp_path / "s"
    assert main(["sample", "--out", str(sample), "--family", "knee", "--size", "32", "--slices", "1", "--coils", "2"]) == 0
    data = next(sample.glob("*.h5"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "recon", "--data", str(data), "--acceleration", "3",
                             "--method", "dip", "--set", "dip.iterations=100000", "--set", "dip.width=8", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        while not any("running; Ctrl-C stops it" in line for line in seen):  # the fit's first progress report,
            line = proc.stderr.readline()  # after the imports, however long they take on a loaded machine
            assert line, "".join(seen) + proc.stderr.read()
            seen.append(line)
        time.sleep(1)  # a few fit steps
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped at step" in err and "best image so far is kept" in err
    row = json.loads(out)["results"][0]
    assert row["method"] == "dip" and 0 < row["ssim"] <= 1


def test_ctrl_c_before_the_work_polls_interrupts_at_once():
    """Loading, model construction, coil maps: nothing polls the callback yet, so Ctrl-C must not be swallowed."""
    import signal

    from explorer.cli.progress import Progress

    with pytest.raises(KeyboardInterrupt), Progress("unet", enabled=False):
        signal.raise_signal(signal.SIGINT)
    with Progress("dip", enabled=False) as progress:
        assert progress(1, 10, {}) is None
        signal.raise_signal(signal.SIGINT)  # in the loop: ask it to stop after this step
        assert progress(2, 10, {}) is True
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # the second one aborts
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("argv, message", [
    (["recon", "--data", "sample:knee", "--method", "zero_filled", "--seed", "-1"], "seed"),
    (["recon", "--data", "sample:knee", "--method", "zero_filled", "--seed", "4294967296"], "2**32"),
    (["recon", "--data", "sample:knee", "--method", "zero_filled", "--mask", "poisson", "--acceleration", "1"], "above 1"),
    (["recon", "--data", "sample:knee", "--method", "zero_filled", "--out", ""], "--out is empty"),
    (["recon", "--data", "sample:knee", "--method", "a=l1", "--set", "a.lam=-1"], "instance a (l1): l1.lam"),
    (["recon", "--data", "sample:knee", "--method", "zero_filled", "--roi", "1,2,3"], "--roi TOP,LEFT,BOTTOM,RIGHT"),
    (["recon", "--data", "sample:knee", "--method", "zero_filled", "--roi", "9,2,3,4"], "ROI needs"),
    (["recon", "--data", "sample:knee", "--method", "zero_filled", "--roi", "0,0,999,4"], "leaves the"),
    (["recon", "--data", "sample:knee", "--method", "zero_filled", "--profile", "3,3,3,3"], "same pixel"),
    (["recon", "--data", "sample:knee", "--method", "zero_filled", "--profile", "0,0,5,999"], "line leaves"),
    (["train", "--model", "unet", "--data", ".", "--out", "card.json"], ".pt checkpoint"),
    (["train", "--model", "unet", "--data", ".", "--out", "x.pt", "--seed", "99999999999999999999"], "--seed"),
])
def test_user_errors_exit_2_before_any_work(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_an_out_that_is_a_file_or_cannot_be_created_is_refused_before_the_work(capsys, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    for command in (["recon", "--data", "sample:knee", "--method", "zero_filled"], ["sample"]):
        assert main([*command, "--out", str(taken)]) == 2
        assert "not a directory" in capsys.readouterr().err and taken.read_text() == "keep me"
    assert main(["sample", "--out", str(taken / "below")]) == 2
    assert "cannot create" in capsys.readouterr().err


def test_a_network_too_small_for_its_pooling_is_a_clear_error(capsys, multicoil_file, tmp_path):
    from explorer.recon.checkpoints import random_checkpoint

    unet = random_checkpoint("unet", {"chans": 2, "num_pool_layers": 4}, tmp_path / "u4.pt", seed=0)  # needs 32 px
    assert main(["recon", "--data", str(multicoil_file), "--method", "unet", "--set", f"unet.checkpoint={unet}",
                 "--set", "unet.crop=17"]) == 2
    assert "too small" in capsys.readouterr().err


def test_memory_errors_are_one_line_user_errors(capsys, monkeypatch):
    from explorer.cli import methods

    def boom(args):
        raise MemoryError

    monkeypatch.setattr(methods, "run", boom)
    assert main(["methods"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory") and len(err.strip().splitlines()) == 1


def test_sample_dataset_and_recon_from_a_sample_source(tmp_path, capsys, monkeypatch):
    """`sample --dataset stanford` writes the Stanford-like file; `recon --data sample:knee,dataset=stanford,...`
    reads the same k-space; a bad dataset is a one-line error."""
    import h5py

    assert main(["sample", "--out", str(tmp_path), "--family", "knee", "--size", "32", "--slices", "1", "--coils", "2",
                 "--dataset", "stanford"]) == 0
    path = tmp_path / "sample_knee_32_s1_c2_seed0_stanford.h5"
    with h5py.File(path) as hf:
        assert hf.attrs["acquisition"] == "CORPD_3DFSE"
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    capsys.readouterr()
    assert main(["recon", "--data", "sample:knee,dataset=stanford,size=32,slices=1,coils=2", "--method", "zero_filled",
                 "--json"]) == 0
    from_source = json.loads(capsys.readouterr().out)
    assert main(["recon", "--data", str(path), "--method", "zero_filled", "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert from_source["results"][0]["ssim"] == pytest.approx(from_file["results"][0]["ssim"])
    assert main(["sample", "--out", str(tmp_path), "--family", "brain", "--dataset", "stanford"]) == 2
    assert "unknown brain sample dataset" in capsys.readouterr().err
