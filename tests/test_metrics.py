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
