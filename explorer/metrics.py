"""Image-quality metrics as ``fastmri.evaluate`` computes them, under a named definition.

``fastmri.evaluate`` is imported on first use (it pulls in scipy.stats: ~0.6 s that the
app's first page does not need).

All metrics compare magnitude images centre-cropped to the target size. Three definitions
(:data:`METRIC_DEFINITIONS`), named in every table that reports them:

* ``fastmri`` (the default): ``data_range = target.max()`` of the slice (fastMRI's per-volume convention applied per
  slice);
* ``volume``: the fastMRI leaderboard's, ``data_range`` = the maximum of the whole volume's reference (a fastMRI
  file's ``max`` attribute);
* ``paper``: the papers' (Darestani et al.): the reconstruction affinely rescaled to the reference's mean and standard
  deviation, then SSIM / PSNR / NMSE with ``data_range = target.max()`` (their TTT and knee -> brain notebooks;
  their attack notebooks rescale the reference to the reconstruction instead).
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.physics import center_crop

METRIC_NAMES: tuple[str, ...] = ("ssim", "psnr", "nmse")
METRIC_DEFINITIONS: dict[str, str] = {
    "fastmri": "fastMRI's evaluate per slice: SSIM (7x7 window) and PSNR with data range = the slice reference's max",
    "volume": "the fastMRI leaderboard's: data range = the max of the whole volume's reference (the file's max)",
    "paper": "the papers': the reconstruction rescaled to the reference's mean and std, data range = reference max",
}


def check_definition(definition: str) -> str:
    """``definition`` if it is one of :data:`METRIC_DEFINITIONS`.

    Raises:
        ExplorerError: an unknown definition.
    """
    if definition not in METRIC_DEFINITIONS:
        raise ExplorerError(f"metric definition must be one of {', '.join(METRIC_DEFINITIONS)}, got {definition!r}")
    return definition


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


def compute_metrics(target: np.ndarray, recon: np.ndarray, definition: str = "fastmri",
                    volume_max: float | None = None) -> dict[str, float]:
    """SSIM, PSNR (dB) and NMSE of ``recon`` against ``target`` via ``fastmri.evaluate``.

    Args:
        target: float ``(h, w)`` reference magnitude.
        recon: float ``(h, w)`` magnitude, same shape.
        definition: one of :data:`METRIC_DEFINITIONS`.
        volume_max: the volume reference's maximum (``definition="volume"``).

    Returns:
        ``{"ssim": ..., "psnr": ..., "nmse": ...}``.

    Raises:
        ExplorerError: shapes differ, an all-zero target, an unknown definition, ``volume`` without ``volume_max``.
    """
    from fastmri import evaluate  # noqa: PLC0415 (lazy: see module docstring)

    check_definition(definition)
    if target.shape != recon.shape:
        raise ExplorerError(f"target {target.shape} and reconstruction {recon.shape} differ in shape")
    gt = np.asarray(target, dtype=np.float64)[None]
    pred = np.asarray(recon, dtype=np.float64)[None]
    maxval = float(gt.max())
    if maxval <= 0:
        raise ExplorerError("the target image is all zeros; metrics are undefined")
    if definition == "volume":
        if volume_max is None or not volume_max >= maxval:
            raise ExplorerError("the volume metric needs the volume reference's maximum (a fastMRI file's 'max' "
                                "attribute), at least the slice's")
        maxval = float(volume_max)
    elif definition == "paper":
        spread = pred.std()
        pred = (pred - pred.mean()) / (spread if spread > 0 else 1.0) * gt.std() + gt.mean()
    return {
        "ssim": float(np.asarray(evaluate.ssim(gt, pred, maxval=maxval)).item()),
        "psnr": float(evaluate.psnr(gt, pred, maxval=maxval)),
        "nmse": float(evaluate.nmse(gt, pred)),
    }
