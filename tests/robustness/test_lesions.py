"""Worst-case lesions: the false-negative search beats random lesions of the same bounds, the hallucination
objective creates contrast that noise of the same norm does not, the smallest-eps headline is consistent, and the
``lesion`` command (JSON, files, refusals, one-line errors). Tiny problems (48x48, 2 coils), CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.cli.main import main
from explorer.data.fastmri import FastMRIVolume, write_volume
from explorer.engine import MethodInstance, prepare, run_method
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import get_method
from explorer.robustness.insertion import Feature, reference_image
from explorer.robustness.lesion_attack import make_targeted, measure, targeted_attack
from explorer.robustness.lesion_structures import Criteria, feature_structure, image_structure
from explorer.robustness.lesion_runs import appearing, vanishing
from explorer.robustness.lesions import LesionBounds, false_negative_search, random_candidates, score_lesion
from explorer.robustness.noise import noise_draws
from explorer.robustness.objectives import AttackConfig, budget_norm
from tests.conftest import multicoil_kspace

SMALL = {"sense": {"iterations": 8}, "convdecoder": {"iterations": 16, "width": 8, "layers": 3}}
BOUNDS = LesionBounds(sizes=(3, 5), contrasts=(0.1, 0.3), shapes=("square", "disk"))


def _instance(name: str) -> MethodInstance:
    return MethodInstance(name, name, get_method(name).make_config(SMALL.get(name, {})))


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return write_volume(tmp_path_factory.mktemp("lesion") / "m.h5", multicoil_kspace(slices=1, coils=2, h=48, w=48))


@pytest.fixture(scope="module")
def problem(path, one_thread):
    return prepare(FastMRIVolume(path).read_slice(0), MaskConfig("random", 3, seed=0), "cpu")


@pytest.mark.parametrize("name", ["zero_filled", "sense"])
def test_the_search_finds_a_lesion_no_better_recovered_than_random_ones(problem, name):
    instance = _instance(name)
    search = false_negative_search(problem, instance, BOUNDS, candidates=6, refine=4, seed=3)
    reference = reference_image(problem.slice.kspace, problem.crop)
    # the same seed: its N random candidates are exactly random_candidates' N
    assert tuple(c.feature for c in search.candidates) == random_candidates(reference, BOUNDS, 6, seed=3)
    worst = search.worst.value
    assert worst <= min(c.value for c in search.candidates) and worst == min(c.value for c in (*search.candidates, *search.refined))
    independent = [score_lesion(problem, instance, f).value for f in random_candidates(reference, BOUNDS, 6, seed=99)]
    assert worst <= max(independent)  # the check: no better recovered than the best of N random lesions
    f = search.worst.feature
    assert 3 <= f.size <= 5 and 0.1 <= f.contrast <= 0.3 and f.shape in ("square", "disk")
    assert sum(r["worst"] for r in search.rows()) == 1 and len(search.rows()) == 6 + len(search.refined)


def test_a_region_bounds_every_candidate(problem):
    bounds = LesionBounds(region=(10, 12, 30, 36), sizes=(3, 3), contrasts=(0.2, 0.2))
    search = false_negative_search(problem, _instance("zero_filled"), bounds, candidates=5, refine=6, seed=1)
    for c in (*search.candidates, *search.refined):
        r0, c0, r1, c1 = c.feature.window(problem.crop)
        assert 10 <= r0 and r1 <= 30 and 12 <= c0 and c1 <= 36 and c.feature.size == 3
    with pytest.raises(ExplorerError, match="no room"):
        random_candidates(reference_image(problem.slice.kspace, problem.crop),
                          LesionBounds(region=(0, 0, 4, 4), sizes=(3, 3)), 1)


def test_the_objective_is_one_at_the_clean_image_and_zero_at_the_target(problem):
    clean = run_method(problem, _instance("zero_filled")).image
    structure = feature_structure(Feature(row=24, col=24, size=5, contrast=0.2), clean)
    for weight in (0.0, 1.0, 5.0):
        objective = make_targeted(structure, clean, 1.0, weight, torch.device("cpu"))
        assert objective.of_image(clean) == pytest.approx(-1.0, rel=1e-5)
        assert objective.of_image(clean + structure.change) == pytest.approx(0.0, abs=1e-6)
    change, _ = measure("hallucination", structure, clean + structure.change, clean, None)
    assert change == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("name", ["zero_filled", "sense"])
def test_the_hallucination_raises_the_contrast_more_than_noise_of_the_same_norm(problem, name):
    instance = _instance(name)
    clean = run_method(problem, instance)
    structure = feature_structure(Feature(row=24, col=24, size=5, contrast=1 / 6), reference_image(problem.slice.kspace, problem.crop))
    config = AttackConfig(eps=0.03, steps=15, noise_draws=0)
    result = targeted_attack(problem, instance, structure, "hallucination", config, clean=clean)
    assert result.strategy == "gradient" and result.ratio <= 0.03 * (1 + 1e-5)
    assert (result.e[~problem.sampled.mask.expand_as(problem.y).cpu()] == 0).all()
    budget = budget_norm(problem.kspace, problem.y, "full", 0.03, True)
    noise = [measure("hallucination", structure, run_method(problem.perturbed(e=e), instance).image, clean.image, None)[0]
             for e in noise_draws(problem, budget, 4, seed=7)]
    assert result.change > 0.1 and result.change > max(noise) + 0.05
    assert result.loss < 1.0  # the targeted loss fell below its clean value


def test_the_joint_strategy_runs_for_a_fit_within_the_budget(problem):
    structure = feature_structure(Feature(row=24, col=24, size=5, contrast=0.2), reference_image(problem.slice.kspace, problem.crop))
    result = targeted_attack(problem, _instance("convdecoder"), structure, "hallucination",
                             AttackConfig(eps=0.02, noise_draws=1))
    assert result.strategy == "joint" and result.ratio <= 0.02 * (1 + 1e-5) and len(result.noise) == 1
    assert np.isfinite(result.change) and np.isfinite(result.loss)


def test_the_smallest_eps_is_one_of_the_list_and_the_previous_budget_did_not_meet_it(problem):
    eps = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16]
    headline = appearing(problem, _instance("zero_filled"), Feature(row=24, col=24, size=5, contrast=1 / 6), eps,
                         AttackConfig(steps=20, noise_draws=1), Criteria(appear=0.3))
    assert headline.eps in eps and not headline.clean_met and headline.clean_measure == 0.0
    tried = [r.config.eps for r in headline.results]
    assert tried == eps[:eps.index(headline.found_at) + 1]  # every budget up to the first that met it, in order
    assert headline.results[-1].met and headline.results[-1].change >= 0.3
    assert headline.results[-1].ratio == headline.reached <= headline.eps * (1 + 1e-6) <= headline.found_at * (1 + 1e-6)
    index = eps.index(headline.eps)
    assert index > 0  # the clean image does not meet it: some budget is needed
    before = [r for r in headline.results if r.config.eps < headline.eps]
    assert before and not any(r.met for r in before) and all(r.change < 0.3 for r in before)
    assert headline.reached > eps[index - 1]  # no perturbation found within the previous budget meets it
    row = headline.row()
    assert row["smallest_eps"] == headline.eps and row["appear_threshold"] == 0.3 and "0.3" in row["criterion"]
    assert all(r.row(headline.criteria)["appear_threshold"] == 0.3 for r in headline.results)


def test_a_lesion_vanishes_under_the_erase_attack_and_a_missed_one_counts_at_zero(problem):
    feature = Feature(row=20, col=20, size=5, contrast=0.3)
    eps = [0.01, 0.03, 0.1]
    headline, featured = vanishing(problem, _instance("sense"), feature, eps, AttackConfig(steps=15, noise_draws=2),
                                   Criteria(vanish=0.5))
    assert headline.mode == "erase" and featured.target.shape == problem.crop
    assert not headline.clean_met and headline.clean_measure >= 0.5 and headline.eps in eps
    met = headline.results[-1]
    assert met.met and met.score.contrast_recovery < 0.5 and met.change < 0
    assert all(r.score.contrast_recovery >= 0.5 and not r.met for r in headline.results[:-1])
    assert min(met.noise) >= 0.5  # Gaussian noise of the same norm leaves the lesion visible
    missed, _ = vanishing(problem, _instance("sense"), feature, [0.01], AttackConfig(steps=2, noise_draws=0),
                          Criteria(vanish=5.0))
    assert missed.clean_met and missed.eps == 0.0 and missed.results == ()


@pytest.mark.parametrize("make, message", [
    (lambda: LesionBounds(sizes=(5, 3)), "sizes"), (lambda: LesionBounds(contrasts=(-0.1, 0.1)), "contrasts"),
    (lambda: LesionBounds(shapes=("hexagon",)), "shapes"), (lambda: LesionBounds(relative_to="min"), "contrast reference"),
    (lambda: Criteria(appear=float("nan")), "appear"), (lambda: Criteria(vanish_local_ssim="x"), "vanish local ssim"),
    (lambda: image_structure((0, 0, 4, 4), np.zeros((4, 4)), (48, 48)), "not all zero"),
    (lambda: image_structure((0, 0, 4, 4), np.ones((3, 4)), (48, 48)), "4x4"),
    (lambda: image_structure((40, 40, 50, 50), np.ones((10, 10)), (48, 48)), "outside"),
])
def test_bad_bounds_criteria_and_structures_are_refused(make, message):
    with pytest.raises(ExplorerError, match=message):
        make()


# ----------------------------------------------------------------------------- the command


def _run(capsys, *argv):
    code = main(["lesion", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_false_negative_json_and_out_refusal(path, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data", str(path), "--acceleration", "3", "--method", "zero_filled", "--mode", "false-negative",
            "--candidates", "3", "--refine", "2", "--sizes", "3,4", "--steps", "4", "--eps", "0.01,0.04",
            "--vanish", "0.2", "--json", "--out", str(out)]
    code, text, _ = _run(capsys, *argv)
    assert code == 0
    report = json.loads(text)
    assert report["thresholds"]["vanish_threshold"] == 0.2 and "0.2" in report["thresholds"]["criterion"]
    (search,) = report["searches"]
    assert search["random_candidates"] == 3 and search["worst"]["contrast_recovery"] <= search["random_worst"]
    assert len(report["candidates"]) == 3 + search["refinement_evaluations"] and len(report["headline"]) == 1
    assert (out / "candidates.csv").is_file() and (out / "headline.csv").is_file()
    code, _, err = _run(capsys, *argv)  # an earlier run's files: refused without --force
    assert code == 2 and err.startswith("error:") and "--force" in err and len(err.strip().splitlines()) == 1
    assert _run(capsys, *argv, "--force")[0] == 0


def test_cli_hallucination_json_files_and_table(path, tmp_path, capsys):
    out = tmp_path / "h"
    argv = ["--data", str(path), "--acceleration", "3", "--method", "zero_filled", "--mode", "hallucination",
            "--at", "24,24", "--steps", "10", "--eps", "0.02,0.08", "--appear", "0.4", "--noise-draws", "1"]
    code, text, _ = _run(capsys, *argv, "--json", "--out", str(out))
    assert code == 0
    report = json.loads(text)
    assert report["structure"]["shape"] == "square" and report["thresholds"]["appear_threshold"] == 0.4
    attacks = report["attacks"]
    assert [a["eps"] for a in attacks] == report["headline"][0]["eps_tried"]
    assert all(a["ratio"] <= a["eps"] * (1 + 1e-5) and a["noise_draws"] == 1 and a["appear_threshold"] == 0.4
               for a in attacks)
    assert np.load(out / f"e_zero_filled_{attacks[0]['eps']:g}.npy").shape == (2, 48, 48)
    assert (out / "attacks.csv").is_file()
    code, text, _ = _run(capsys, *argv)
    assert code == 0 and "criterion: appeared" in text and ">= 0.4" in text and "eps 0.02" in text
    patch = tmp_path / "patch.npy"
    np.save(patch, np.full((5, 5), 0.2, np.float32))
    code, text, _ = _run(capsys, "--data", str(path), "--acceleration", "3", "--method", "zero_filled", "--mode",
                         "hallucination", "--box", "20,20,25,25", "--image", str(patch), "--steps", "3", "--eps", "0.02",
                         "--json")
    assert code == 0 and json.loads(text)["structure"]["box"] == [20, 20, 25, 25]


@pytest.mark.parametrize("extra, message", [
    (["--mode", "both"], "--mode"), (["--mode", "hallucination"], "--at"),
    (["--mode", "hallucination", "--at", "24,24", "--box", "1,1,5,5"], "one of them"),
    (["--mode", "hallucination", "--box", "1,1,5,5"], "--image"),
    (["--mode", "hallucination", "--box", "1,1,5,5", "--image", "/nonexistent.npy"], "--image"),
    (["--mode", "hallucination", "--at", "1,1"], "does not fit"), (["--mode", "hallucination", "--at", "x"], "position"),
    (["--mode", "false-negative", "--sizes", "3"], "two values"),
    (["--mode", "false-negative", "--contrasts", "-0.1,0.1"], "contrasts"),
    (["--mode", "false-negative", "--shapes", "hexagon"], "shapes"),
    (["--mode", "false-negative", "--candidates", "0"], "--candidates"),
    (["--mode", "false-negative", "--measure", "psnr"], "measure"),
    (["--mode", "false-negative", "--region", "0,0,99,99"], "outside"),
    (["--mode", "false-negative", "--eps", "a"], "--eps"), (["--mode", "false-negative", "--steps", "0"], "steps"),
    (["--mode", "false-negative", "--appear", "nan"], "appear"),
    (["--mode", "false-negative", "--outside-weight", "-1"], "--outside-weight"),
])
def test_cli_bad_inputs_exit_2_with_one_line(path, capsys, extra, message):
    code, _, err = _run(capsys, "--data", str(path), "--acceleration", "3", "--method", "zero_filled",
                        "--candidates", "1", "--refine", "0", "--steps", "1", *extra)
    assert code == 2 and err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("mode, module, name, extra", [
    ("false-negative", "explorer.robustness.lesion_runs", "false_negative_search", ["--candidates", "3", "--refine", "2"]),
    ("hallucination", "explorer.robustness.lesion_runs", "smallest_eps", ["--at", "24,24"]),  # lesion_method calls it
])
def test_one_ctrl_c_ends_the_whole_command(path, monkeypatch, capsys, mode, module, name, extra):
    import importlib
    import os
    import signal

    target = importlib.import_module(module)
    real, calls = getattr(target, name), []

    def interrupted(problem, instance, *args, **kwargs):
        calls.append(instance.label)
        progress = args[6]
        progress(0, 10, {})  # the loop is polling: from here Ctrl-C asks for a soft stop
        os.kill(os.getpid(), signal.SIGINT)
        return real(problem, instance, *args, **kwargs)

    monkeypatch.setattr(target, name, interrupted)
    code, text, _ = _run(capsys, "--data", str(path), "--acceleration", "3", "--method", "zero_filled", "--method",
                         "sense", "--mode", mode, "--steps", "4", "--eps", "0.01,0.02", "--json", *extra)
    report = json.loads(text)
    assert code == 0 and calls == ["zero_filled"] and report["not_run"] == ["sense"]
    if mode == "false-negative":
        assert report["searches"][0]["stopped"] and report["headline"] == []
    else:
        assert report["headline"][0]["stopped"] and len(report["attacks"]) == 1


def test_a_larger_budget_searches_a_fresh_start_as_well_as_the_warm_one(problem, monkeypatch):
    """From the smaller ball's optimum alone, fixed-length steps can stay stuck there however large the new budget:
    each budget after the first runs a fresh start and then the warm one, and its objective is never worse."""
    import explorer.robustness.lesion_attack as lesion_attack
    from explorer.robustness.lesion_attack import smallest_eps

    real, starts = lesion_attack.gradient_search, []

    def recording(problem, instance, objective, budget, config, search, start):
        starts.append((config.eps, start is not None))
        return real(problem, instance, objective, budget, config, search, start)

    monkeypatch.setattr(lesion_attack, "gradient_search", recording)
    reference = reference_image(problem.slice.kspace, problem.crop)
    structure = feature_structure(Feature(row=24, col=24, size=5), reference)
    headline = smallest_eps(problem, _instance("zero_filled"), structure, [0.001, 0.002],
                            config=AttackConfig(steps=3, noise_draws=0), until_met=False)
    assert starts == [(0.001, False), (0.002, False), (0.002, True)]
    first, second = headline.results
    assert second.loss <= first.loss + 1e-9  # the warm start is inside the larger ball: never worse
