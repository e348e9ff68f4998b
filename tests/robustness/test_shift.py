"""Distribution-shift studies: both sets evaluated with the same seeded masks, configurations pinned on the
in-distribution set, the linear fit, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.cli.main import main
from explorer.data.fastmri import write_volume
from explorer.masks import MaskConfig
from explorer.physics import ifft2c, rss
from explorer.robustness.evaluate import evaluate
from explorer.robustness.shift import linear_fit, shift_study
from tests.conftest import multicoil_kspace

MASK = MaskConfig("equispaced_fraction", 3.0, center_fraction=0.25)


def _set(folder, acquisition: str, noise: float, seed: int):
    k = multicoil_kspace(slices=2, coils=4, h=32, w=32, noise=noise)
    k = np.roll(k, seed, axis=-1)  # a different object per set
    target = rss(ifft2c(torch.from_numpy(k)), dim=1).numpy()
    folder.mkdir()
    write_volume(folder / "v.h5", k, target, attrs={"acquisition": acquisition})
    return str(folder)


@pytest.fixture
def sets(tmp_path):
    return _set(tmp_path / "knee", "CORPD_FBK", 0.0, 0), _set(tmp_path / "brain", "AXT2", 0.02, 3)


def test_linear_fit():
    fit = linear_fit([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert fit["slope"] == pytest.approx(1.0) and fit["intercept"] == pytest.approx(-0.1) and fit["r"] == pytest.approx(1.0)
    assert linear_fit([0.5], [0.4]) is None and linear_fit([0.5, 0.5], [0.4, 0.6]) is None


def test_shift_study_rows_fit_and_reproducibility(sets):
    id_set, ood_set = sets
    methods = ["zero_filled", "sense", "weak=l1", "strong=l1"]
    configs = {"weak": {"lam": "0.001", "iterations": "10"}, "strong": {"lam": "0.05", "iterations": "10"}}
    study = shift_study(id_set, ood_set, methods, MASK, configs)
    assert [r["label"] for r in study.rows] == ["zero_filled", "sense", "weak", "strong"]
    for r in study.rows:
        assert 0 < r["ssim_id"] <= 1 and 0 < r["ssim_ood"] <= 1 and r["gap"] == pytest.approx(r["ssim_id"] - r["ssim_ood"])
        assert r["slices_id"] == r["slices_ood"] == 2
    assert {r["family"] for r in study.rows} == {"baseline", "sparse"}
    assert study.fit["n"] == 4
    direct = evaluate(ood_set, ["zero_filled"], MASK)  # the same seeded masks as a plain evaluation
    assert study.rows[0]["ssim_ood"] == pytest.approx(float(direct.metrics["zero_filled"]["ssim"].mean()))
    again = shift_study(id_set, ood_set, methods, MASK, configs)
    assert again.rows == study.rows and again.fit == study.fit


def test_a_slice_of_the_study_is_reconstructed_again_exactly(sets):
    """What the Shift page shows for a (set, slice, model): the study's own reconstruction, same mask and config."""
    from explorer.errors import ExplorerError  # noqa: PLC0415
    from explorer.metrics import compute_metrics  # noqa: PLC0415

    id_set, ood_set = sets
    study = shift_study(id_set, ood_set, ["zero_filled", "weak=l1"], MASK, {"weak": {"lam": "0.001", "iterations": "10"}})
    for which, ev in (("id", study.id_eval), ("ood", study.ood_eval)):
        for n in range(len(ev.slices)):
            problem, result = study.slice_result(which, n, "weak")
            assert problem.slice.meta.index == ev.slices[n][1] and problem.sampled.config.seed == MASK.seed + n
            assert compute_metrics(problem.target, result.image)["ssim"] == pytest.approx(ev.metrics["weak"]["ssim"][n], abs=1e-6)
    with pytest.raises(ExplorerError, match="not in the evaluation"):
        study.slice_result("ood", 5, "weak")
    with pytest.raises(ExplorerError, match="no instance"):
        study.slice_result("id", 0, "strong")


def test_configurations_are_pinned_on_the_in_distribution_set(sets):
    """l1's tuned lam depends on the anatomy: the knee value is kept on the brain set."""
    id_set, ood_set = sets
    study = shift_study(id_set, ood_set, ["l1"], MASK, {"l1": {"iterations": "5"}})
    knee_lam = evaluate(ood_set, ["l1"], MASK, {"l1": {"iterations": "5"}}).metrics  # brain defaults on brain
    from explorer.recon.base import get_method  # noqa: PLC0415

    spec = get_method("l1")
    knee, brain = spec.make_config({}, anatomy="knee").lam, spec.make_config({}, anatomy="brain").lam
    pinned = evaluate(ood_set, ["l1"], MASK, {"l1": {"iterations": "5", "lam": str(knee)}}).metrics
    assert study.rows[0]["ssim_ood"] == pytest.approx(float(pinned["l1"]["ssim"].mean()))
    if knee != brain:
        assert study.rows[0]["ssim_ood"] != pytest.approx(float(knee_lam["l1"]["ssim"].mean()))


def test_shift_cli(capsys, sets, tmp_path):
    id_set, ood_set = sets
    code = main(["shift", "--id", id_set, "--ood", ood_set, "--method", "zero_filled", "--method", "sense",
                 "--mask", "equispaced_fraction", "--acceleration", "3", "--center-fraction", "0.25", "--json",
                 "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert [m["label"] for m in result["models"]] == ["zero_filled", "sense"] and result["fit"]["n"] == 2
    assert (tmp_path / "out" / "shift.csv").exists() and (tmp_path / "out" / "shift.html").exists()
    assert main(["shift", "--id", "/nonexistent", "--ood", ood_set, "--method", "zero_filled"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["shift", "--id", "sample:ankle", "--ood", ood_set, "--method", "zero_filled"]) == 2
    assert "unknown sample" in capsys.readouterr().err


def test_max_slices_must_be_positive(capsys, sets):
    id_set, ood_set = sets
    assert main(["shift", "--id", id_set, "--ood", ood_set, "--method", "zero_filled", "--max-slices", "0"]) == 2
    assert "--max-slices must be >= 1" in capsys.readouterr().err
