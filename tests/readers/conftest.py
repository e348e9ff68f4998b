"""Reader-study fixtures: synthetic reconstructions (no engine: fast) with tell-tale labels, methods and conditions,
so a test can look for them in everything the reading API returns."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.readers.design import Lesion, Reconstruction
from explorer.readers.options import ReadingOptions
from explorer.readers.session import build_session

LABELS = ("LABELALPHA", "LABELBETA", "LABELGAMMA")
METHODS = {"LABELALPHA": "METHODALPHA", "LABELBETA": "METHODBETA", "LABELGAMMA": "METHODGAMMA"}
CONDITIONS = (("clean", "clean"), ("CONDATTACK eps=0.04", "attack"))


def _reference(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    body = ((yy / 0.4) ** 2 + (xx / 0.3) ** 2 < 1).astype(float)
    return (body * (0.6 + 0.2 * rng.random((size, size)))).astype(np.float32) * 3e-4


def make_recons(subjects: int = 4, size: int = 32, conditions=CONDITIONS, labels=LABELS, lesion: bool = False,
                seed: int = 0) -> list[Reconstruction]:
    """Reconstructions of ``subjects`` slices by every label under every condition; each label adds more noise
    (its SSIM is lower), and with ``lesion`` every subject also has a ``lesion`` case (a bright 5x5 square)."""
    rng = np.random.default_rng(seed)
    out = []
    kinds = [("clean", "clean"), ("lesion", "lesion")] if lesion else list(conditions)
    for s in range(subjects):
        ref = _reference(rng, size)
        row, col = int(rng.integers(10, size - 10)), int(rng.integers(10, size - 10))
        for condition, kind in kinds:
            truth = ref.copy()
            lesions = ()
            if kind == "lesion":
                truth[row - 2:row + 3, col - 2:col + 3] += 2e-4
                lesions = (Lesion(row, col, (row - 2, col - 2, row + 3, col + 3), 5, 0.5, "square"),)
            for k, label in enumerate(labels):
                noise = (k + 1) * (2 if kind == "attack" else 1) * 1e-5
                image = (truth + noise * rng.standard_normal(truth.shape)).astype(np.float32)
                metrics = {"ssim": 0.95 - 0.1 * k - (0.2 if kind == "attack" else 0.0) - 0.01 * s,
                           "psnr": 35.0 - 3 * k - 0.5 * s, "nmse": 0.01 * (k + 1) * (1 + s / 10)}
                out.append(Reconstruction(f"sample:test#{s}", condition, kind, label, METHODS[label], image, truth,
                                          metrics, lesions, "sample:test", s,
                                          0.04 if kind == "attack" else None, "{}", "synthetic"))
    return out


@pytest.fixture
def make_session(tmp_path):
    """``make_session(task, name="s.reading", recons=None, **options) -> path`` of a synthetic session."""

    def make(task: str = "likert", name: str = "s.reading", recons=None, **options):
        recons = recons if recons is not None else make_recons(lesion=task == "detection")
        built = build_session(tmp_path / name, recons, ReadingOptions(task=task, **options), "synthetic")
        return built.path

    return make
