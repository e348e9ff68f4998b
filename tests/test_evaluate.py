"""Test-set evaluation (library and ``evaluate`` CLI)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from explorer.cli.main import main
from explorer.data.fastmri import FastMRIVolume
from explorer.data.sample import SampleSpec, write_sample
from explorer.engine import prepare, run_method
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.robustness.evaluate import evaluate

MASK = MaskConfig("random", 3, None, seed=4)


@pytest.fixture(scope="module")
def test_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("testset")
    a = write_sample(d, SampleSpec(family="knee", size=32, slices=2, coils=2, seed=3))
    b = write_sample(d, SampleSpec(family="knee", size=32, slices=1, coils=2, seed=4))
    junk = d / "sub" / "test_file.h5"  # a fastMRI-style test file: mask, no reference -> skipped
    junk.parent.mkdir()
    with h5py.File(b) as src, h5py.File(junk, "w") as dst:
        for key in ("kspace", "ismrmrd_header"):
            dst.create_dataset(key, data=src[key][()])
        dst.create_dataset("mask", data=src["kspace"][0, 0, 0] != 0)
    return d, a, b


def test_every_slice_scored_with_its_own_mask(test_dir):
    d, a, b = test_dir
    ev = evaluate(d, ["zero_filled", "sense"], MASK)
    order = [(b, 0), (a, 0), (a, 1)]  # files in sorted order (b's name sorts first)
    assert ev.slices == tuple((p.name, i) for p, i in order) and ev.skipped == ("test_file.h5",)
    for n, (path, i) in enumerate(order):
        problem = prepare(FastMRIVolume(path).read_slice(i), MaskConfig("random", 3, None, seed=4 + n))
        expected = run_method(problem, "zero_filled").metrics
        assert ev.metrics["zero_filled"]["ssim"][n] == pytest.approx(expected["ssim"], abs=1e-12)
        assert ev.metrics["zero_filled"]["nmse"][n] == pytest.approx(expected["nmse"], abs=1e-12)
    rows = ev.summary()
    assert [r["method"] for r in rows] == ["zero_filled", "sense"]
    assert rows[0]["ssim"] == pytest.approx(ev.metrics["zero_filled"]["ssim"].mean())
    assert evaluate(d, ["zero_filled"], MASK, max_slices=2).slices == ((b.name, 0), (a.name, 1))


def test_bad_inputs_are_clear_errors(test_dir, tmp_path):
    d, _, _ = test_dir
    with pytest.raises(ExplorerError, match="no .h5 volumes"):
        evaluate(tmp_path, ["zero_filled"], MASK)
    with pytest.raises(ExplorerError, match="unknown method"):
        evaluate(d, ["nope"], MASK)
    with pytest.raises(ExplorerError, match="no parameter"):
        evaluate(d, ["l1"], MASK, configs={"l1": {"bogus": 1}})


def test_cli_json_and_errors(test_dir, capsys, tmp_path):
    d, _, _ = test_dir
    assert main(["evaluate", "--data", str(d), "--method", "zero_filled", "--acceleration", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["method"] == "zero_filled" and out["results"][0]["slices"] == 3
    assert 0 < out["results"][0]["ssim"] <= 1 and out["skipped"] == ["test_file.h5"]
    for argv, message in [(["--data", str(tmp_path)], "no .h5 volumes"),
                          (["--data", str(d), "--max-slices", "0"], "--max-slices"),
                          (["--data", str(d), "--acceleration", "0"], "acceleration")]:
        assert main(["evaluate", "--method", "zero_filled", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_progress_can_stop_an_evaluation(test_dir):
    d, _, _ = test_dir
    seen = []
    ev = evaluate(d, ["zero_filled"], MASK, progress=lambda done, total, label: seen.append(done) or done == 2)
    assert seen == [1, 2] and len(ev.slices) == 2 and len(ev.metrics["zero_filled"]["ssim"]) == 2


def test_trained_networks_run_in_batches_with_the_same_scores(test_dir, tiny_checkpoints):
    d, _, _ = test_dir
    sets = {"unet": {"checkpoint": str(tiny_checkpoints["unet"]), "crop": 32},
            "varnet": {"checkpoint": str(tiny_checkpoints["varnet"]), "crop": 32}}
    one = evaluate(d, ["unet", "varnet"], MASK, configs=sets, batch_size=1)
    three = evaluate(d, ["unet", "varnet"], MASK, configs=sets, batch_size=3)
    for m in ("unet", "varnet"):
        for k in ("ssim", "psnr", "nmse"):
            np.testing.assert_allclose(three.metrics[m][k], one.metrics[m][k], rtol=1e-4, atol=1e-6)


def test_cli_scores_an_embedded_sample_like_its_file(capsys, tmp_path, monkeypatch):
    """``--data sample:...`` (as every --data of the CLI) scores the same slices as the sample's written file."""
    from explorer.data.sample import sample_path
    from explorer.data.sample_sources import parse_source

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    source = "sample:brain,size=32,slices=2,coils=2,seed=201,contrast=t1"
    assert main(["evaluate", "--data", source, "--method", "zero_filled", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    path = sample_path(parse_source(source))
    assert out["data"] == source and [s[0] for s in out["slices"]] == [path.name, path.name]
    assert main(["evaluate", "--data", str(path), "--method", "zero_filled", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["results"]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in again] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in out["results"]]
    assert main(["evaluate", "--data", "sample:liver", "--method", "zero_filled"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "liver" in err and len(err.strip().splitlines()) == 1
