"""Robust training (``train --jitter`` / ``--adv-train``): jitter draws have the stated size, the adversarial inner loop
really attacks (it raises the training loss more than noise of the same norm), both train and write loadable checkpoints
whose cards say how, resuming reproduces the run, bad values are one-line errors (tiny, CPU)."""

import json
import math

import numpy as np
import pytest
import torch

from explorer.cli.main import main
from explorer.data.fastmri import FastMRIVolume
from explorer.data.sample import SampleSpec, write_sample
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon import checkpoints as ckpts
from explorer.training.examples import criterion, example_of, mask_slice, training_loss
from explorer.training.robust import (ADV_STEPS, RobustTraining, adversarial_perturbations, jitter_noise,
                                      perturbation_seed)
from explorer.training.train import TrainOptions, train
from tests.conftest import TINY_ARCH

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny knee volume (32x32, 2 slices, 2 coils)."""
    root = tmp_path_factory.mktemp("data") / "train"
    write_sample(root, SampleSpec("knee", 32, 2, 2, 1))
    return root


@pytest.fixture(scope="module")
def masked(dataset):
    sl = FastMRIVolume(next(dataset.glob("*.h5"))).read_slice(1)
    return mask_slice(sl, MaskConfig("random", 4, seed=3), CPU), sl


def _options(dataset, out, kind="unet", **kw):
    return TrainOptions(model=kind, data=dataset, out=out, arch=TINY_ARCH[kind], **{"batch_size": 2, "steps": 2, **kw})


def test_masked_slice_carries_the_full_kspace_norm_and_builds_the_same_example(masked):
    m, sl = masked
    assert m.kspace_norm == pytest.approx(float(sl.kspace.abs().pow(2).sum().sqrt()), rel=1e-5)
    assert torch.equal(example_of("unet", m).image, example_of("unet", m, e=torch.zeros_like(m.y)).image)


def test_jitter_draws_have_the_stated_per_entry_std_and_expected_norm():
    """64x64, 4 coils, half the columns: m = 8192 sampled entries, so ||e||^2 / (sigma ||k||)^2 has sd 1/sqrt(m) ~ 1%."""
    from explorer.training.examples import MaskedSlice  # noqa: PLC0415

    mask = torch.zeros(1, 1, 1, 64, dtype=torch.bool)
    mask[..., ::2] = True
    y = torch.zeros(1, 4, 64, 64, dtype=torch.complex64)
    m = MaskedSlice(y, mask, (64, 64), torch.zeros(1, 64, 64), torch.ones(1), 250.0)
    sigma, entries = 0.05, 4 * 64 * 32
    e = jitter_noise(m, sigma, torch.Generator().manual_seed(0))
    assert e.shape == y.shape and e.dtype == torch.complex64
    assert not e[..., 1::2].abs().any()  # zero off the sampled entries
    on = e[..., ::2]
    s = sigma * 250.0 / math.sqrt(entries)  # per-entry complex std: E|e_j|^2 = s^2
    assert float(on.real.std()) == pytest.approx(s / math.sqrt(2), rel=0.05)
    assert float(on.imag.std()) == pytest.approx(s / math.sqrt(2), rel=0.05)
    assert abs(float(on.real.mean())) < 0.05 * s
    assert float(e.abs().pow(2).sum()) == pytest.approx((sigma * 250.0) ** 2, rel=0.05)
    again = jitter_noise(m, sigma, torch.Generator().manual_seed(0))
    assert torch.equal(e, again)  # seeded
    assert perturbation_seed(0, 1, 0, 1) not in {perturbation_seed(0, 2, 0, 1), perturbation_seed(0, 1, 1, 1),
                                                 perturbation_seed(0, 1, 0, 2)}  # fresh per step, item, stream


def test_the_inner_loop_attacks_the_training_loss(masked):
    """Against a fixed tiny U-net: PGD's perturbed example has a higher training loss than the clean one and than
    Gaussian noise of the same norm, within the budget and on the sampled entries only."""
    m, _ = masked
    torch.manual_seed(0)
    model = ckpts.build_model("unet", TINY_ARCH["unet"]).train()
    supervised = criterion("unet", CPU)

    def loss_of(examples):
        return training_loss("unet", model, examples, supervised)

    eps = 0.05
    with torch.no_grad():
        clean = float(loss_of([example_of("unet", m)]))
    (e,) = adversarial_perturbations(loss_of, "unet", [m], [None], eps, 5, [torch.Generator().manual_seed(0)])
    assert float(e.abs().pow(2).sum().sqrt()) <= eps * m.kspace_norm * (1 + 1e-5)
    assert not (e * ~m.mask).abs().any()
    noise = jitter_noise(m, eps, torch.Generator().manual_seed(1))
    noise = noise * (eps * m.kspace_norm / float(noise.abs().pow(2).sum().sqrt()))  # exactly the budget's norm
    with torch.no_grad():
        attacked, noisy = float(loss_of([example_of("unet", m, e=e)])), float(loss_of([example_of("unet", m, e=noise)]))
    assert attacked > clean and attacked > noisy, (clean, noisy, attacked)
    assert all(p.grad is None for p in model.parameters())  # the inner loop leaves the weights' gradients alone


@pytest.mark.parametrize("kind,extra", [("unet", {"jitter": 0.05}), ("unet", {"adv_train": 0.05, "adv_steps": 2}),
                                        ("varnet", {"adv_train": 0.05})])
def test_robust_training_writes_a_loadable_checkpoint_with_its_card(dataset, tmp_path, kind, extra):
    result = train(_options(dataset, tmp_path / "r.pt", kind, **extra))
    assert len(result.losses) == 2 and np.isfinite(result.losses).all()
    payload = torch.load(result.checkpoint, weights_only=True)
    card = payload["card"]["robust_training"]
    assert card == json.loads(result.checkpoint.with_suffix(".json").read_text())["robust_training"] == \
        result.card["robust_training"]
    ckpts.load_checkpoint(result.checkpoint, kind)  # weights_only, recognised
    if "jitter" in extra:
        assert card["method"] == "jitter" and card["sigma"] == 0.05 and "sigma^2 ||k||^2" in card["definition"]
    else:
        assert card["method"] == "adversarial" and card["eps"] == 0.05
        assert card["steps"] == extra.get("adv_steps", ADV_STEPS) and card["trains_on"] == "perturbed examples only"
    plain = train(_options(dataset, tmp_path / "p.pt", kind))
    assert "robust_training" not in plain.card and plain.losses[0] != result.losses[0]  # it changed the examples


def test_jitter_resumes_to_the_same_run_and_refuses_another_level(dataset, tmp_path):
    whole = train(_options(dataset, tmp_path / "w.pt", steps=3, jitter=0.1))
    part = _options(dataset, tmp_path / "r.pt", steps=3, jitter=0.1, workers=1)  # workers draw the same examples
    assert train(part, progress=lambda step, total, info: step == 1).steps == 1
    part.resume = True
    assert train(part).losses == whole.losses
    other = _options(dataset, tmp_path / "r.pt", steps=4, jitter=0.2, resume=True)
    with pytest.raises(ExplorerError, match="cannot resume from r.state.pt: robust training was"):
        train(other)


@pytest.mark.parametrize("kw,message", [
    ({"jitter": -0.1}, "--jitter must be a finite number in [0, 10]"),
    ({"jitter": float("nan")}, "--jitter must be a finite number"),
    ({"adv_train": float("inf")}, "--adv-train must be a finite number"),
    ({"jitter": 0.1, "adv_train": 0.1}, "--jitter and --adv-train cannot be combined"),
    ({"adv_train": 0.1, "adv_steps": 0}, "--adv-steps must be an integer in [1, 100]"),
    ({"adv_steps": 2}, "--adv-steps applies to adversarial training only"),
])
def test_bad_values_are_refused(dataset, tmp_path, kw, message):
    with pytest.raises(ExplorerError, match=message.replace("[", r"\[").replace("]", r"\]")):
        train(_options(dataset, tmp_path / "x.pt", **kw))
    assert not (tmp_path / "x.pt").exists()
    assert RobustTraining.of(0.0, 0.0, None) is None


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args,message", [
    (["--jitter", "-1"], "--jitter must be a finite number in [0, 10] (relative to ||k||), got -1.0"),
    (["--adv-train", "nan"], "--adv-train must be a finite number"),
    (["--jitter", "0.1", "--adv-train", "0.1"], "--jitter and --adv-train cannot be combined: choose one"),
    (["--adv-steps", "3"], "--adv-steps applies to adversarial training only"),
])
def test_cli_bad_values_exit_2_with_one_line(capsys, dataset, tmp_path, args, message):
    code, out, err = run(capsys, "train", "--model", "unet", "--data", dataset, *args, "--out", tmp_path / "x.pt")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err
    assert not (tmp_path / "x.pt").exists()


def test_cli_json_reports_the_robust_training(capsys, dataset, tmp_path):
    out = tmp_path / "unet.pt"
    code, stdout, err = run(capsys, "train", "--model", "unet", "--data", dataset, "--chans", "4", "--pools", "2",
                            "--steps", "1", "--adv-train", "0.02", "--adv-steps", "1", "--json", "--out", out)
    assert code == 0, err
    report = json.loads(stdout)
    assert report["robust_training"]["method"] == "adversarial" and report["robust_training"]["eps"] == 0.02
    assert report["card"]["robust_training"] == report["robust_training"] and report["steps"] == 1
    assert f"wrote {out}" in err  # the log went to stderr
