"""Agreement with BART (``bart pics``) on the same k-space, coil maps, mask and data scale.

BART conventions checked here (v0.8): ``pics`` uses the centred unitary FFT and the maps as
given (so our Operator); it divides the k-space by a data scale (``-w`` overrides its own
k-space calibration-region estimate) and ``-S`` multiplies the image back; its objective is
``1/2||Ax - y/s||^2 + lam R(x)``. Its default wavelet (dau2 = db2) uses symmetric boundary
extension (a redundant, non-orthogonal transform) with levels down to 16 pixels and random
cycle spinning (``-n`` disables it); its Haar on even sizes is the orthonormal Haar, so the
l1 agreement uses ``--wavelet haar`` and our ``Wavelet("haar", 3)`` (64 -> 32 -> 16 -> 8), the
same objective exactly. TV (``-R T:3:0:lam``) is isotropic with periodic backward differences,
solved by ADMM whose ``-i`` caps the total number of inner CG iterations.
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.data.cfl import read_cfl, write_cfl
from explorer.physics import Operator
from explorer.recon import solvers
from explorer.recon.sparse import (
    data_scale,
    l1_objective,
    l1_wavelet,
    total_variation,
    tv_objective,
)
from tests.conftest import phantom, smooth_maps

BART = shutil.which("bart") or "/usr/bin/bart"
pytestmark = [pytest.mark.skipif(not Path(BART).exists(), reason="BART (Debian package bart) is not installed"),
              pytest.mark.usefixtures("one_thread")]
H = W = 64
C = 4


def bart(*args: str) -> None:
    subprocess.run([BART, *args], check=True, capture_output=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    """Noisy 64x64 4-coil phantom, random columns (~R=3) + 8 centre lines, written as .cfl."""
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(1, 1, 1, W, generator=g) < 0.25
    mask[..., W // 2 - 4: W // 2 + 4] = True
    op = Operator(mask, smooth_maps(C, H, W)[None])
    x = phantom(H, W)[None]
    y = op.forward(x)
    y = y + 0.02 * torch.complex(torch.randn(y.shape, generator=g), torch.randn(y.shape, generator=g)) * mask
    work = tmp_path_factory.mktemp("bart")
    write_cfl(work / "ksp", y[0].permute(1, 2, 0).numpy()[:, :, None, :])
    write_cfl(work / "sens", op.maps[0].permute(1, 2, 0).numpy()[:, :, None, :])
    return y, op, x, work


def pics(work: Path, *args: str) -> torch.Tensor:
    bart("pics", *args, str(work / "ksp"), str(work / "sens"), str(work / "out"))
    return torch.from_numpy(read_cfl(work / "out").reshape(H, W))[None]


def nrmse(x, ref):
    return float((x.abs() - ref.abs()).norm() / ref.abs().norm())


def test_bart_forward_model_is_our_operator(problem, tmp_path):
    _, op, x, _ = problem
    full = op.with_mask(torch.ones(1, 1, 1, W, dtype=torch.bool))
    write_cfl(tmp_path / "ksp", full.forward(x)[0].permute(1, 2, 0).numpy()[:, :, None, :])
    write_cfl(tmp_path / "sens", op.maps[0].permute(1, 2, 0).numpy()[:, :, None, :])
    out = pics(tmp_path, "-S", "-l2", "-r", "1e-6", "-i", "50")
    torch.testing.assert_close(out, x, atol=1e-4, rtol=1e-4)


def test_bart_haar_is_our_orthonormal_haar_and_dau2_is_redundant(tmp_path):
    img = phantom(H, W, seed=3).numpy()
    write_cfl(tmp_path / "img", img)
    bart("wavelet", "-H", "3", str(tmp_path / "img"), str(tmp_path / "wh"))
    bart("wavelet", "3", str(tmp_path / "img"), str(tmp_path / "wd"))
    theirs = np.sort(np.abs(read_cfl(tmp_path / "wh").ravel()))
    coeffs = solvers.Wavelet("haar", 3).forward_complex(torch.from_numpy(img)[None])
    ours = np.sort(np.concatenate([torch.sqrt(c.pow(2).sum(1)).flatten().numpy() for c in coeffs]))
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    assert read_cfl(tmp_path / "wd").size > H * W  # dau2: symmetric extension, more coefficients than pixels


@pytest.mark.parametrize("lam, iterations", [(0.01, 30), (0.003, 100)])
def test_l1_wavelet_matches_or_beats_bart(problem, lam, iterations):
    y, op, x, work = problem
    scale = float(data_scale(y, op)[0])
    theirs = pics(work, "-S", "-n", "-w", f"{scale:.9g}", "--wavelet", "haar", "-R", f"W:3:0:{lam}", "-i", str(iterations))
    ours = l1_wavelet(y, op, lam, iterations, "haar", 3)
    obj_ours, obj_bart = float(l1_objective(ours, y, op, lam, "haar", 3)), float(l1_objective(theirs, y, op, lam, "haar", 3))
    assert obj_ours <= obj_bart * (1 + 1e-3), (obj_ours, obj_bart)
    assert nrmse(ours, x) <= 1.02 * nrmse(theirs, x), (nrmse(ours, x), nrmse(theirs, x))


@pytest.mark.parametrize("lam, iterations", [(0.01, 30), (0.003, 100)])
def test_tv_matches_or_beats_bart(problem, lam, iterations):
    y, op, x, work = problem
    scale = float(data_scale(y, op)[0])
    theirs = pics(work, "-S", "-w", f"{scale:.9g}", "-R", f"T:3:0:{lam}", "-i", str(iterations))
    ours = total_variation(y, op, lam, iterations)
    obj_ours, obj_bart = float(tv_objective(ours, y, op, lam)), float(tv_objective(theirs, y, op, lam))
    assert obj_ours <= obj_bart * (1 + 1e-3), (obj_ours, obj_bart)
    assert nrmse(ours, x) <= 1.02 * nrmse(theirs, x), (nrmse(ours, x), nrmse(theirs, x))
