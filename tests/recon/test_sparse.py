"""Sparse recovery (l1-wavelet, TV): transforms, solvers, differentiability, scaling, tuning, CLI."""

import itertools
import json

import numpy as np
import pytest
import pywt
import torch

from explorer.cli.main import main
from explorer.data.sample import SampleSpec, write_sample
from explorer.data.sources import open_volume
from explorer.engine import prepare, run_method
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.physics import Operator, ifft2c, rss
from explorer.recon import solvers
from explorer.recon.base import build
from explorer.recon.classical import SenseConfig
from explorer.recon.sparse import (
    L1Config,
    TVConfig,
    l1_objective,
    l1_wavelet,
    lipschitz,
    total_variation,
    tuned_lambda,
    tv_objective,
)
from explorer.robustness.tune import tune, tune_volume
from tests.conftest import phantom, smooth_maps

pytestmark = pytest.mark.usefixtures("one_thread")


def _problem(h=32, w=32, coils=4, every=3, noise=0.0, dtype=torch.complex64, seed=0, random=False):
    """Phantom, smooth maps, column mask (every ``every``-th column, or random at rate 1/every) + centre."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(1, 1, 1, w, dtype=torch.bool)
    if random:
        mask = mask | (torch.rand(1, 1, 1, w, generator=g) < 1 / every)
    else:
        mask[..., ::every] = True
    mask[..., w // 2 - 3: w // 2 + 3] = True
    maps = smooth_maps(coils, h, w)[None].to(dtype) if coils > 1 else None
    op = Operator(mask, maps)
    x = phantom(h, w, seed)[None].to(dtype)
    y = op.forward(x)
    e = torch.complex(torch.randn(y.shape, generator=g), torch.randn(y.shape, generator=g)).to(dtype)
    return y + noise * e * mask, op, x


def _nrmse(a, b):
    return float((a.abs() - b.abs()).norm() / b.abs().norm())


@pytest.mark.parametrize("name", ["haar", "db2", "db4"])
def test_wavelet_is_orthonormal_and_matches_pywt_periodization(name):
    x = torch.randn(3, 32, 48, dtype=torch.float64)
    wav = solvers.Wavelet(name, 3)
    coeffs = wav.forward(x)
    energy = sum(c.pow(2).sum() for c in coeffs)
    torch.testing.assert_close(energy, x.pow(2).sum())
    torch.testing.assert_close(wav.inverse(coeffs), x)
    c = [torch.randn_like(t) for t in coeffs]  # inverse == adjoint
    lhs = sum((a * b).sum() for a, b in zip(coeffs, c))
    torch.testing.assert_close(lhs, (x * wav.inverse(c)).sum())
    shift = pywt.Wavelet(name).dec_len // 2 - 1  # same transform as pywt up to a circular shift
    approx, (ch, cv, cd) = pywt.dwt2(torch.roll(x, (-shift, -shift), (-2, -1)).numpy(), name, mode="periodization")
    one = solvers.Wavelet(name, 1).forward(x)
    for ours, ref in ((one[0][:, 0], approx), (one[1][:, 0], cv), (one[1][:, 1], ch), (one[1][:, 2], cd)):
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-10)


def test_tv_gradient_adjoint_and_norm():
    x = torch.randn(2, 12, 10, dtype=torch.complex128)
    p = torch.randn(2, 2, 12, 10, dtype=torch.complex128)
    torch.testing.assert_close((solvers.grad2d(x).conj() * p).sum(), (x.conj() * solvers.grad2d_adjoint(p)).sum())
    v = x
    for _ in range(200):
        v = solvers.grad2d_adjoint(solvers.grad2d(v))
        v = v / v.norm()
    assert float(solvers.grad2d(v).norm() ** 2) <= 8.0 + 1e-6


@pytest.mark.parametrize("h, w, coils", [(32, 32, 4), (31, 30, 3), (16, 16, 1)])
def test_data_term_gradient_matches_operator(h, w, coils):
    y, op, _ = _problem(h, w, coils, dtype=torch.complex128)
    x = torch.randn(1, h, w, dtype=torch.complex128)
    r, g = solvers.DataTerm(op, y).residual_and_gradient(x)
    r0 = op.forward(x) - y
    torch.testing.assert_close(g, op.adjoint(r0))
    torch.testing.assert_close(r.norm(), r0.norm())


@pytest.mark.parametrize("coils", [1, 4])
def test_buffered_no_grad_path_equals_the_autograd_path(coils):
    y, op, _ = _problem(32, 32, coils, noise=0.02)
    with torch.no_grad():
        fast = l1_wavelet(y, op, 0.01, 10), total_variation(y, op, 0.01, 10)
    yg = y.clone().requires_grad_(True)
    graph = l1_wavelet(yg, op, 0.01, 10), total_variation(yg, op, 0.01, 10)
    for a, b in zip(fast, graph):
        torch.testing.assert_close(a, b.detach())


def test_unit_step_is_safe_for_normalised_maps():
    _, op, _ = _problem(dtype=torch.complex128)
    assert float(lipschitz(op)) == pytest.approx(1.0)
    v = torch.randn(1, 32, 32, dtype=torch.complex128)
    for _ in range(100):  # power iteration on A^H A
        v = op.normal(v)
        v = v / v.norm()
    assert float(op.normal(v).norm()) <= 1.0 + 1e-9
    assert float(lipschitz(op.with_maps(2 * op.maps))) == pytest.approx(4.0)


@pytest.mark.parametrize("method", ["l1", "tv"])
@pytest.mark.parametrize("output", ["image", "dc_rss"])
def test_beats_zero_filled_on_phantom(method, output):
    y, op, x = _problem(64, 64, 4, every=4, noise=0.02)
    zf = rss(ifft2c(y), dim=1)
    cfg = {"l1": L1Config(output=output), "tv": TVConfig(output=output)}[method]
    out = build(method, cfg)(y, op)
    assert _nrmse(out, x) < 0.75 * _nrmse(zf, x)


@pytest.mark.parametrize("method", ["l1", "tv"])
@pytest.mark.parametrize("output", ["image", "dc_rss"])
def test_gradient_wrt_y_matches_finite_differences(method, output):
    y, op, _ = _problem(16, 16, 2, every=2, noise=0.01, dtype=torch.complex128)
    recon = build(method, {"l1": L1Config(iterations=5, levels=2, output=output), "tv": TVConfig(iterations=8, output=output)}[method])
    weights = torch.rand(1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss(k):
        return (weights * recon(k, op).abs().pow(2)).sum()

    yg = y.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(yg), yg)
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        v = torch.complex(torch.randn(y.shape, generator=g), torch.randn(y.shape, generator=g)).to(y.dtype) * op.mask * 0.1
        eps = 1e-6
        with torch.no_grad():
            fd = (loss(y + eps * v) - loss(y - eps * v)) / (2 * eps)
        ad = (grad.conj() * v).real.sum()
        assert float(abs(fd - ad)) <= 1e-5 * float(abs(fd)) + 1e-9


@pytest.mark.parametrize("method", ["l1", "tv"])
def test_objective_decreases(method):
    y, op, _ = _problem(32, 32, 4, noise=0.02, dtype=torch.complex128)
    lam = 0.01
    run = {"l1": lambda n: l1_wavelet(y, op, lam, n, "db4", 3), "tv": lambda n: total_variation(y, op, lam, n)}[method]
    objective = {"l1": lambda x: l1_objective(x, y, op, lam, "db4", 3), "tv": lambda x: tv_objective(x, y, op, lam)}[method]
    values = [float(objective(torch.zeros(1, 32, 32, dtype=y.dtype)))]
    values += [float(objective(run(n))) for n in (2, 4, 8, 16, 32, 64, 128)]
    assert all(b <= a * (1 + 1e-3) for a, b in itertools.pairwise(values)), values
    assert values[-1] < 0.5 * values[0]


@pytest.mark.parametrize("method", ["l1", "tv"])
def test_small_lambda_approaches_sense_least_squares(method):
    y, op, _ = _problem(32, 32, 4, every=2, noise=0.02, dtype=torch.complex128)
    sense = build("sense", SenseConfig(iterations=100, output="image"))(y, op)
    x = {"l1": lambda: l1_wavelet(y, op, 1e-9, 400, "db4", 3), "tv": lambda: total_variation(y, op, 1e-9, 400)}[method]()
    assert float((x - sense).norm() / sense.norm()) < 1e-3


@pytest.mark.parametrize("method", ["l1", "tv"])
@pytest.mark.parametrize("output", ["image", "dc_rss"])
def test_lambda_is_scale_invariant(method, output):
    y, op, _ = _problem(32, 32, 4, noise=0.02)
    recon = build(method, {"l1": L1Config(iterations=20, output=output), "tv": TVConfig(iterations=20, output=output)}[method])
    base = recon(y, op)
    for factor in (1000.0, 1e-4):
        torch.testing.assert_close(recon(factor * y, op), factor * base, rtol=1e-4, atol=1e-5 * factor * float(base.abs().max()))


@pytest.mark.parametrize("method", ["l1", "tv"])
def test_progress_is_throttled_to_a_few_reports_a_second(method):
    y, op, _ = _problem()
    seen = []
    build(method, {"l1": L1Config(iterations=50), "tv": TVConfig(iterations=50)}[method])(
        y, op, progress=lambda step, total, info: seen.append(step))
    assert seen[0] == 1 and seen[-1] == 50 and len(seen) < 10  # 50 fast steps: the first, the last, few between


@pytest.mark.parametrize("method", ["l1", "tv"])
def test_progress_reports_and_stops_early(method, monkeypatch):
    monkeypatch.setattr("explorer.recon.base.PROGRESS_INTERVAL", 0.0)  # report every step
    y, op, _ = _problem()
    seen = []
    stop = lambda step, total, info: seen.append((step, total, info["residual"])) or step == 3
    out = build(method, {"l1": L1Config(iterations=50), "tv": TVConfig(iterations=50)}[method])(y, op, progress=stop)
    assert [s[:2] for s in seen] == [(1, 50), (2, 50), (3, 50)]
    ref = build(method, {"l1": L1Config(iterations=3), "tv": TVConfig(iterations=3)}[method])(y, op)
    torch.testing.assert_close(out, ref)


def test_l1_pads_sizes_not_divisible_by_the_wavelet_scale_and_runs_single_coil():
    for coils in (1, 3):
        y, op, x = _problem(30, 26, coils, every=2, random=True)
        out = l1_wavelet(y, op, 1e-3, 100, "haar", 3)  # 30x26 solved on a 32x32 grid
        assert out.shape == (1, 30, 26) and _nrmse(out, x) < 0.5 * _nrmse(op.adjoint(y), x)


@pytest.fixture
def tiny_file(tmp_path):
    return write_sample(tmp_path, SampleSpec(family="knee", size=48, slices=2, coils=4))


def test_tune_picks_the_best_grid_point(tiny_file):
    tiny_volume = open_volume(tiny_file)
    mask = MaskConfig("random", 4.0, 0.25)
    grid = (1e-4, 1e-2, 3.0)
    result = tune_volume("tv", tiny_volume, [0, 1], mask, grid, TVConfig(iterations=20))
    assert len(result.ssim) == 3 and all(len(row) == 2 for row in result.ssim)
    assert result.best_lam == grid[int(np.argmax(result.mean_ssim))] and result.best_lam != 3.0
    problem = prepare(tiny_volume.read_slice(1), mask)
    assert result.ssim[1][1] == pytest.approx(run_method(problem, "tv", TVConfig(lam=1e-2, iterations=20)).metrics["ssim"])
    with pytest.raises(ExplorerError):
        tune("sense", [problem], grid)
    with pytest.raises(ExplorerError):
        tune("tv", [problem], (0.1, -1.0))
    with pytest.raises(ExplorerError):
        tune_volume("tv", tiny_volume, [5], mask, grid)


def test_cli_tune(tiny_file, capsys):
    args = ["tune", "--method", "l1", "--data", str(tiny_file), "--slices", "0,1", "--grid", "0.001,0.01",
            "--center-fraction", "0.25", "--set", "l1.iterations=5"]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    grid = out["grid"]
    assert [g["lam"] for g in grid] == [0.001, 0.01] and out["slices"] == [0, 1]
    assert all(g["mean_ssim"] == pytest.approx(float(np.mean(g["ssim"]))) and len(g["ssim"]) == 2 for g in grid)
    best = max(grid, key=lambda g: g["mean_ssim"])  # the best mean SSIM, not just any grid value
    assert (out["best_lam"], out["best_ssim"]) == (best["lam"], best["mean_ssim"])
    assert main(args) == 0
    assert "best lam" in capsys.readouterr().out
    for bad in (["--grid", "x"], ["--slices", "0,9"], ["--method", "sense"]):
        assert main(args + bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and err.count("\n") == 1


def test_tuned_defaults_are_used():
    assert L1Config().lam == tuned_lambda("l1") and TVConfig().lam == tuned_lambda("tv")
    assert tuned_lambda("tv", "knee/singlecoil") == 0.02 and tuned_lambda("tv", "brain/singlecoil") == 0.03
    assert tuned_lambda("tv", "unknown-family") == tuned_lambda("tv") == tuned_lambda("tv", None)
    # every stored value is the best of its recorded tuning run (a default edited without re-tuning fails here)
    from explorer.recon.sparse import TUNED  # noqa: PLC0415

    for method, keys in TUNED["how"]["mean_ssim"].items():
        for key, scores in keys.items():
            assert tuned_lambda(method, key) == float(max(scores, key=scores.get)), (method, key)
