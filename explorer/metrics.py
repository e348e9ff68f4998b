"""Image-quality metrics exactly as ``fastmri.evaluate`` computes them.

``fastmri.evaluate`` is imported on first use (it pulls in scipy.stats: ~0.6 s that the
app's first page does not need).

All metrics compare magnitude images centre-cropped to the target size, with
``data_range = target.max()`` (fastMRI's per-volume convention applied per slice).
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.physics import center_crop

METRIC_NAMES: tuple[str, ...] = ("ssim", "psnr", "nmse")


def to_magnitude(image: torch.Tensor | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Magnitude of ``image`` centre-cropped to ``shape``.

    Args:
        image: complex or real ``(H, W)`` (a leading batch of 1 is squeezed).
        shape: target ``(h, w)``.

    Returns:
        float32 array ``(h, w)``.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = image.abs() if image.is_complex() else image
        image = image.numpy()
    image = np.abs(np.asarray(image))
    while image.ndim > 2 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise ExplorerError(f"expected a 2D image, got shape {image.shape}")
    return center_crop(torch.from_numpy(np.ascontiguousarray(image)), shape).numpy().astype(np.float32)


def warm_up() -> None:
    """Import ``fastmri.evaluate`` now (it is otherwise imported by the first :func:`compute_metrics`)."""
    from fastmri import evaluate  # noqa: F401, PLC0415


def compute_metrics(target: np.ndarray, recon: np.ndarray) -> dict[str, float]:
    """SSIM, PSNR (dB) and NMSE of ``recon`` against ``target`` via ``fastmri.evaluate``.

    Args:
        target: float ``(h, w)`` reference magnitude.
        recon: float ``(h, w)`` magnitude, same shape.

    Returns:
        ``{"ssim": ..., "psnr": ..., "nmse": ...}``.
    """
    from fastmri import evaluate  # noqa: PLC0415 (lazy: see module docstring)

    if target.shape != recon.shape:
        raise ExplorerError(f"target {target.shape} and reconstruction {recon.shape} differ in shape")
    gt = np.asarray(target, dtype=np.float64)[None]
    pred = np.asarray(recon, dtype=np.float64)[None]
    maxval = float(gt.max())
    if maxval <= 0:
        raise ExplorerError("the target image is all zeros; metrics are undefined")
    return {
        "ssim": float(np.asarray(evaluate.ssim(gt, pred, maxval=maxval)).item()),
        "psnr": float(evaluate.psnr(gt, pred, maxval=maxval)),
        "nmse": float(evaluate.nmse(gt, pred)),
    }
