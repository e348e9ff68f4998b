"""Adversarial attacks on k-space: budget, optimality on a linear problem, monotonicity in eps, determinism,
shared models untouched, every family end to end (small sizes, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.data.fastmri import FastMRIVolume, write_volume
from explorer.engine import MethodInstance, prepare, run_method
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.physics import ifft2c
from explorer.recon import model_store
from explorer.recon.base import available_methods, get_method
from explorer.robustness.attack import AttackConfig, attack, sweep
from explorer.robustness.noise import noise_baseline
from explorer.robustness.objectives import parse_region
from explorer.robustness.perturbations import transfer
from tests.conftest import multicoil_kspace

SMALL = {"l1": {"iterations": 10}, "tv": {"iterations": 10}, "sense": {"iterations": 5},
         "convdecoder": {"iterations": 24, "width": 8, "layers": 3},
         "deep_decoder": {"iterations": 24, "width": 8, "layers": 3},
         "dip": {"iterations": 24, "width": 8, "layers": 2}}


def _instance(name: str, **extra) -> MethodInstance:
    return MethodInstance(name, name, get_method(name).make_config({**SMALL.get(name, {}), **extra}))


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    path = write_volume(tmp_path_factory.mktemp("atk") / "m.h5", multicoil_kspace(slices=1, coils=4, h=32, w=32))
    return prepare(FastMRIVolume(path).read_slice(0), MaskConfig("random", 3, seed=0), "cpu")


def test_budget_holds_for_every_eps(problem):
    norm_k = float(problem.kspace.abs().pow(2).sum().sqrt())
    for eps in (0.001, 0.05, 0.3):
        result = attack(problem, _instance("zero_filled"), AttackConfig(eps=eps, steps=6, step_size=1.0, patience=0))
        reached = float(result.e.abs().pow(2).sum().sqrt()) / norm_k
        assert reached <= eps * (1 + 1e-6) and result.ratio == pytest.approx(reached, rel=1e-6)
        assert reached >= 0.99 * eps  # normalised steps of the whole budget end on the sphere
        mask = problem.sampled.mask.expand_as(problem.y)
        assert (result.e[~mask] == 0).all()  # only sampled entries carry budget


def test_reaches_the_analytic_worst_case_of_a_linear_problem(tmp_path):
    """Single coil, k-space = a DC spike: the clean image is a positive constant c, so for a small budget the
    objective is ||Re(F^-1 M e)||^2 / ||x0||^2 to first order; its maximum is (budget * sigma)^2 / (c^2 N),
    sigma the top singular value of e -> Re(F^-1 M e), found here by power iteration, independently."""
    n = 32
    k = np.zeros((1, n, n), np.complex64)
    k[0, n // 2, n // 2] = 50.0 * n
    problem = prepare(FastMRIVolume(write_volume(tmp_path / "dc.h5", k)).read_slice(0), MaskConfig("random", 4, seed=1), "cpu")
    mask = problem.sampled.mask.expand_as(problem.y)

    def linear(e):
        return ifft2c(e * mask).real

    v = torch.randn(problem.y.shape, dtype=torch.complex64) * mask
    for _ in range(50):  # power iteration on J^T J
        v = v.requires_grad_(True)
        (g,) = torch.autograd.grad(linear(v).pow(2).sum() / 2, v)
        v = (g / g.abs().pow(2).sum().sqrt()).detach()
    sigma = float(linear(v).pow(2).sum().sqrt())
    eps = 1e-4
    budget = eps * float(problem.kspace.abs().pow(2).sum().sqrt())
    x0 = run_method(problem, _instance("zero_filled")).image
    worst = (budget * sigma) ** 2 / float((x0.astype(np.float64) ** 2).sum())
    result = attack(problem, _instance("zero_filled"), AttackConfig(eps=eps, steps=30, patience=0))
    assert result.objective >= 0.95 * worst, (result.objective, worst)
    assert result.objective <= 1.05 * worst


def test_deviation_does_not_decrease_with_eps_and_same_seed_same_result(problem):
    config = AttackConfig(steps=5, restarts=2, seed=3)
    results = sweep(problem, _instance("l1"), [0.04, 0.01, 0.02], config)
    assert [r.config.eps for r in results] == [0.01, 0.02, 0.04]
    values = [r.objective for r in results]
    assert values == sorted(values) and values[0] > 0
    again = attack(problem, _instance("l1"), AttackConfig(eps=0.01, steps=5, restarts=2, seed=3))
    assert torch.equal(again.e, results[0].e) and again.objective == results[0].objective
    other = attack(problem, _instance("l1"), AttackConfig(eps=0.01, steps=5, restarts=2, seed=4))
    assert not torch.equal(other.e, results[0].e)


def test_shared_model_and_clean_result_untouched(problem, tiny_checkpoints):
    inst = _instance("unet", checkpoint=str(tiny_checkpoints["unet"]))
    model = model_store.load_model(tiny_checkpoints["unet"], "unet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clean = run_method(problem, inst)
    image = clean.image.copy()
    result = attack(problem, inst, AttackConfig(eps=0.05, steps=4), clean=clean)
    assert result.clean is clean and np.array_equal(clean.image, image)
    assert model_store.load_model(tiny_checkpoints["unet"], "unet") is model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not p.requires_grad for p in model.parameters()) and not model.training
    assert result.perturbed.metrics["ssim"] < clean.metrics["ssim"]


@pytest.mark.parametrize("name", sorted(s.name for s in available_methods()))
def test_every_method_runs_end_to_end(problem, tiny_checkpoints, name):
    extra = {"checkpoint": str(tiny_checkpoints[name])} if name in tiny_checkpoints else {}
    inst = _instance(name, **extra)
    result = attack(problem, inst, AttackConfig(eps=0.05, steps=3))
    expected = {"exact": "gradient", "data_consistency": "joint"}[inst.capabilities.gradient]
    assert result.strategy == expected and result.maps == "fixed"
    assert 0 < result.ratio <= 0.05 * (1 + 1e-6)
    assert np.isfinite(result.objective) and result.objective > 0
    assert result.history and result.row()["ssim_drop"] is not None


def test_region_objective_and_transfer(problem):
    box = parse_region("8,8,16,16")
    zf, sense = _instance("zero_filled"), _instance("sense")
    whole = attack(problem, zf, AttackConfig(eps=0.05, steps=5))
    local = attack(problem, zf, AttackConfig(eps=0.05, steps=5, region=box))
    inside = lambda r: float(((r.perturbed.image - r.clean.image)[8:16, 8:16] ** 2).sum())  # noqa: E731
    assert inside(local) > inside(whole)  # the box objective concentrates the damage in the box
    rows = transfer(problem, [whole], [zf, sense])
    noise = "noise (Gaussian, same norm)"  # then Gaussian perturbations of the same norm applied to every target
    assert [(r["source"], r["target"]) for r in rows] == [("zero_filled", "zero_filled"), ("zero_filled", "sense"),
                                                          (noise, "zero_filled"), (noise, "sense")]
    assert rows[0]["ssim_perturbed"] == whole.perturbed.metrics["ssim"] and rows[1]["ssim_drop"] is not None
    assert all(r["draws"] == 3 and r["ssim_drop_sd"] is not None and r["eps"] == 0.05 for r in rows[2:])
    assert len(transfer(problem, [whole], [zf, sense], noise=False)) == 2


@pytest.mark.parametrize("bad, message", [
    ({"eps": -1}, "eps"), ({"steps": 0}, "steps"), ({"objective": "x"}, "objective"), ({"budget": "y"}, "budget"),
    ({"optimizer": "sgd"}, "optimizer"), ({"seed": 2**32}, "seed"), ({"joint_warmup": 1.0}, "warm-up"),
    ({"noise_draws": -1}, "noise draws"), ({"noise_draws": 33}, "noise draws"), ({"noise_draws": 1.5}, "noise draws"),
    ({"noise_draws": True}, "noise draws"),
])
def test_bad_settings_are_one_line_errors(bad, message):
    with pytest.raises(ExplorerError, match=message):
        AttackConfig(**bad)


def test_region_outside_and_target_without_reference(problem):
    with pytest.raises(ExplorerError, match="outside"):
        attack(problem, _instance("zero_filled"), AttackConfig(region=(0, 0, 99, 99)))
    for text in ("1,2,3", "4,4,2,8", "a,b,c,d"):
        with pytest.raises(ExplorerError, match="region"):
            parse_region(text)


def test_progress_reports_the_search_and_stop_keeps_the_worst_so_far(problem, monkeypatch):
    from explorer.recon import base

    monkeypatch.setattr(base, "PROGRESS_INTERVAL", 0.0)
    seen = []

    def stop_at_third(step, total, info):
        seen.append((step, total, info.get("phase")))
        return step >= 3

    result = attack(problem, _instance("l1"), AttackConfig(eps=0.05, steps=50, patience=0), progress=stop_at_third)
    assert result.stopped and result.steps == 3 and seen[-1][:2] == (3, 50)
    assert result.objective >= 0 and result.objective == pytest.approx(max(v for _, v in result.history), rel=1e-4)
    phases = []
    attack(problem, _instance("convdecoder"), AttackConfig(eps=0.05),
           progress=lambda step, total, info: phases.append((info.get("phase"), total)))
    assert phases[0] == ("warm-up", 48) and ("attack", 48) in phases and phases[-1][0] == "refit"


def test_the_joint_scheme_degrades_an_untrained_network_more_than_noise_of_its_norm(problem):
    """ConvDecoder (a 100-step fit, seeded: deterministic on the CPU), the papers' objective for un-trained networks
    (distance from the reference), eps 0.1: the refit on y + e loses SSIM (measured 0.468 -> 0.386), more than under
    random perturbations of the same norm on the same sampled entries."""
    inst = _instance("convdecoder", iterations=100)
    result = attack(problem, inst, AttackConfig(eps=0.1, objective="target"))
    clean, attacked = result.clean.metrics["ssim"], result.perturbed.metrics["ssim"]
    assert result.strategy == "joint" and attacked < clean - 0.03
    noise = noise_baseline(problem, inst, result.config, draws=2, clean=result.clean)  # refitted per draw
    assert noise.draws == 2 and all(ssim > attacked for ssim in noise.values("ssim"))


def test_the_papers_objective_is_chosen_per_method_from_its_capabilities(problem, tiny_checkpoints):
    """``objective="paper"``: deviation from the clean reconstruction for a network with weights, distance from the
    reference for the others (as the papers' notebooks); each row names the objective it ran and the protocol."""
    unet = attack(problem, _instance("unet", checkpoint=str(tiny_checkpoints["unet"])), AttackConfig(eps=0.05, steps=2,
                                                                                                     objective="paper"))
    sense = attack(problem, _instance("sense"), AttackConfig(eps=0.05, steps=2, objective="paper"))
    assert (unet.row()["objective_name"], sense.row()["objective_name"]) == ("clean", "target")
    assert unet.row()["protocol"] == sense.row()["protocol"] == "paper"
    again = attack(problem, _instance("sense"), AttackConfig(eps=0.05, steps=2, objective="target"))
    assert again.objective == pytest.approx(sense.objective) and again.row()["protocol"] == "ours"
