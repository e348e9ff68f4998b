"""Realistic corruptions as perturbations (explorer.robustness.realistic): the engine runs them as task perturbations,
zero motion changes nothing, larger corruptions are larger, the worst-case motion search returns its worst, and the
``realistic`` command's outputs and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.cli.main import main
from explorer.data.fastmri import FastMRIVolume, write_volume
from explorer.engine import MethodInstance, prepare
from explorer.engine.tasks import Task, run_task
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.robustness.realistic import Realistic, realistic_rows, worst_motion
from tests.conftest import multicoil_kspace


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return write_volume(tmp_path_factory.mktemp("realistic") / "m.h5", multicoil_kspace(slices=1, coils=4, h=48, w=48))


@pytest.fixture(scope="module")
def problem(path, one_thread):
    return prepare(FastMRIVolume(path).read_slice(0), MaskConfig("random", 4, seed=0), "cpu")


ZF = MethodInstance.of("zero_filled")


def test_the_corruption_enters_only_through_the_sampled_measurements(problem):
    noisy = Realistic("noise", 20.0, maps="fixed").apply(problem)
    mask = problem.sampled.mask.expand_as(problem.y)
    assert torch.equal(noisy.y[~mask.bool()], problem.y[~mask.bool()])  # zero off the mask
    assert not torch.equal(noisy.y, problem.y)
    k = problem.slice.kspace
    expected = float(((noisy.y[0] - problem.y[0]).abs().pow(2).sum() / k.abs().pow(2).sum()).sqrt())
    assert Realistic("noise", 20.0).ratio(problem) == pytest.approx(expected, rel=1e-4)


def test_zero_motion_is_the_identity_and_more_motion_is_larger(problem):
    rows = realistic_rows(problem, ZF, [Realistic("motion", 0.0, maps="fixed"), Realistic("motion", 1.0),
                                        Realistic("motion", 4.0)])
    assert rows[0]["ratio"] == 0.0 and rows[0]["ssim_drop"] == pytest.approx(0.0, abs=1e-7)
    assert 0 < rows[1]["ratio"] < rows[2]["ratio"]
    assert rows[2]["ssim_drop"] > 0


def test_the_engine_runs_a_realistic_task_like_the_library(problem, path):
    corruption = Realistic("spikes", 2, seed=1, maps="fixed")
    record = run_task(Task(str(path), 0, ZF, MaskConfig("random", 4, seed=0), perturbation=corruption, device="cpu"))
    row = realistic_rows(problem, ZF, [corruption])[0]
    assert record.error is None and record.ssim == pytest.approx(row["ssim_perturbed"], abs=1e-6)


def test_worst_motion_is_the_worst_of_those_tried(problem):
    found = worst_motion(problem, ZF, 3.0, 3.0, shots=4, candidates=4, seed=2)
    assert len(found["tried"]) == 4
    assert found["worst"]["ssim_perturbed"] == min(r["ssim_perturbed"] for r in found["tried"])
    assert all(abs(r["rotation"]) <= 3.0 and all(abs(v) <= 3.0 for v in r["shift"]) for r in found["tried"])
    with pytest.raises(ExplorerError, match="motion bounds"):
        worst_motion(problem, ZF, 90.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "tremor", "level": 1}, "kind"), ({"kind": "noise", "level": 500}, "SNR"),
    ({"kind": "spikes", "level": 1.5}, "whole number"), ({"kind": "motion", "level": 2, "ordering": "x"}, "ordering"),
    ({"kind": "noise", "level": 20, "maps": "x"}, "maps"),
])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(ExplorerError, match=message):
        Realistic(**kwargs)


def _run(capsys, *argv):
    code = main(["realistic", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_and_errors(path, capsys, tmp_path):
    code, out, err = _run(capsys, "--data", str(path), "--acceleration", "4", "--method", "zero_filled", "--kind",
                          "noise", "--levels", "30,10", "--worst-motion", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert [r["level"] for r in report["rows"]] == [30.0, 10.0] and report["rows"][1]["ratio"] > report["rows"][0]["ratio"]
    assert report["worst_motion"][0]["candidates"] == 2
    for extra, message in ((["--kind", "noise", "--levels", "x"], "--levels"),
                           (["--kind", "tremor", "--levels", "1"], "kind")):
        code, _, err = _run(capsys, "--data", str(path), "--method", "zero_filled", *extra)
        assert code == 2 and err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1
    under = write_volume(tmp_path / "u.h5", multicoil_kspace(slices=1, coils=2, h=32, w=32),
                         mask=np.tile(np.arange(32) % 2 == 0, (1,)).astype(np.float32))
    code, _, err = _run(capsys, "--data", str(under), "--method", "zero_filled", "--kind", "noise", "--levels", "20")
    assert code == 2 and "undersampled" in err
