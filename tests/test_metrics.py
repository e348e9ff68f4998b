import numpy as np
import pytest
import torch
from fastmri import evaluate

from explorer.errors import ExplorerError
from explorer.metrics import compute_metrics, to_magnitude


def test_metrics_equal_fastmri_evaluate(rng):
    gt = rng.random((40, 36)).astype(np.float32) + np.linspace(0, 2, 36, dtype=np.float32)
    pred = gt + 0.1 * rng.standard_normal(gt.shape).astype(np.float32)
    m = compute_metrics(gt, pred)
    assert m["ssim"] == pytest.approx(np.asarray(evaluate.ssim(gt[None].astype(np.float64), pred[None].astype(np.float64))).item(), rel=1e-6)
    assert m["psnr"] == pytest.approx(float(evaluate.psnr(gt[None].astype(np.float64), pred[None].astype(np.float64))), rel=1e-6)
    assert m["nmse"] == pytest.approx(float(evaluate.nmse(gt[None].astype(np.float64), pred[None].astype(np.float64))), rel=1e-6)


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_perfect_reconstruction_scores_perfectly(rng):
    gt = rng.random((32, 32)).astype(np.float32)
    m = compute_metrics(gt, gt.copy())
    assert m["ssim"] == pytest.approx(1.0) and m["nmse"] == 0.0 and m["psnr"] == np.inf


def test_to_magnitude_crops_centre_of_complex_image():
    x = torch.zeros(1, 10, 8, dtype=torch.complex64)
    x[0, 3:7, 2:6] = 3 + 4j
    mag = to_magnitude(x, (4, 4))
    assert mag.shape == (4, 4) and np.allclose(mag, 5.0)


def test_metric_errors(rng):
    with pytest.raises(ExplorerError):
        compute_metrics(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ExplorerError):
        compute_metrics(rng.random((8, 8)), rng.random((8, 9)))


def test_the_volume_definition_uses_the_volume_maximum(rng):
    gt = rng.random((40, 36)) + 0.5
    pred = gt + 0.05 * rng.standard_normal(gt.shape)
    volume_max = 3.0 * float(gt.max())  # a brighter slice elsewhere in the volume
    ssim_volume = np.asarray(evaluate.ssim(gt[None], pred[None], maxval=volume_max)).item()
    m = compute_metrics(gt, pred, "volume", volume_max)
    assert m["ssim"] == pytest.approx(ssim_volume, rel=1e-9) and m["ssim"] != pytest.approx(compute_metrics(gt, pred)["ssim"])
    assert m["psnr"] == pytest.approx(compute_metrics(gt, pred)["psnr"] + 20 * np.log10(3.0), rel=1e-6)
    with pytest.raises(ExplorerError, match="volume reference's maximum"):
        compute_metrics(gt, pred, "volume")


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_the_paper_definition_rescales_the_reconstruction_first(rng):
    gt = rng.random((32, 32)) + np.linspace(0, 1, 32)
    scaled = 0.5 * gt + 0.2  # a reconstruction off by an affine intensity map
    assert compute_metrics(gt, scaled, "paper")["ssim"] == pytest.approx(1.0)
    assert compute_metrics(gt, scaled, "paper")["nmse"] == pytest.approx(0.0, abs=1e-12)
    assert compute_metrics(gt, scaled)["ssim"] < 0.95  # fastMRI's does not forgive it
    with pytest.raises(ExplorerError, match="metric definition must be one of fastmri, volume, paper"):
        compute_metrics(gt, scaled, "leaderboard")


def test_the_definition_travels_from_a_study_spec_to_every_row(tmp_path):
    from explorer.engine.table import read_records  # noqa: PLC0415
    from explorer.study.runner import run_study  # noqa: PLC0415
    from explorer.study.spec import parse_spec  # noqa: PLC0415

    spec = {"data": [{"source": "sample:knee,size=64,slices=3,coils=4", "slices": [1]}], "metric": "paper",
            "masks": [{"type": "random", "acceleration": 3, "center_fraction": 0.2}], "methods": ["zero_filled"]}
    records = read_records(run_study(parse_spec(spec), tmp_path / "p").table)
    plain = read_records(run_study(parse_spec({**spec, "metric": "fastmri"}), tmp_path / "f").table)
    assert [r.metric for r in records] == ["paper"] and [r.metric for r in plain] == ["fastmri"]
    assert records[0].ssim != plain[0].ssim and records[0].unit != plain[0].unit
    with pytest.raises(ExplorerError, match="metric must be one of"):
        parse_spec({**spec, "metric": "best"})
