"""Training the trained networks: loss goes down, checkpoints load safely, resume is exact, CLI errors."""

import json

import numpy as np
import pytest
import torch

from explorer.cli.main import main
from explorer.data.fastmri import write_volume
from explorer.data.sample import SampleSpec, write_sample
from explorer.errors import ExplorerError
from explorer.physics import Operator
from explorer.recon import checkpoints as ckpts
from explorer.recon import model_store
from explorer.recon.base import build, get_method
from explorer.recon.networks import get_network
from explorer.training.train import TrainOptions, state_path, train
from tests.conftest import TINY_ARCH, multicoil_kspace


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Tiny knee volumes (32x32, 2 slices): training with 2 and 4 coils, validation with 4 coils."""
    root = tmp_path_factory.mktemp("data")
    write_sample(root / "train", SampleSpec("knee", 32, 2, 2, 1))
    write_sample(root / "train", SampleSpec("knee", 32, 2, 4, 2))
    write_sample(root / "val", SampleSpec("knee", 32, 2, 4, 3))
    write_sample(root / "single", SampleSpec("brain", 32, 2, 1, 4))
    return root


def _options(dataset, tmp_path, kind, **kw):
    return TrainOptions(model=kind, data=dataset / "train", out=tmp_path / f"{kind}.pt", arch=TINY_ARCH[kind],
                        **{"batch_size": 2, **kw})


@pytest.mark.parametrize("kind,lr", [("unet", None), ("varnet", 3e-3)])
def test_training_lowers_the_loss_and_writes_a_safe_checkpoint(dataset, tmp_path, kind, lr):
    result = train(_options(dataset, tmp_path, kind, val=dataset / "val", steps=36, lr=lr))
    losses = np.array(result.losses)
    assert result.steps == 36 and len(losses) == 36 and np.isfinite(losses).all()
    assert losses[-8:].mean() < 0.8 * losses[:8].mean()
    history = result.card["val_history"]
    assert len(history) == 18 and all(0 < h["ssim"] <= 1 for h in history)  # 4 slices / batch 2: an epoch = 2 steps
    assert history[-1]["ssim"] > history[0]["ssim"] and result.val_ssim == history[-1]["ssim"]

    payload = torch.load(result.checkpoint, weights_only=True)
    assert payload["format"] == ckpts.FORMAT and payload["model"] == kind
    card = payload["card"]
    assert card == json.loads(result.checkpoint.with_suffix(".json").read_text()) == result.card
    assert card["architecture"] == {"model": kind, "kwargs": {**get_network(kind).default_arch, **TINY_ARCH[kind]}}
    assert card["data"]["dir"] == "train" and card["data"]["anatomy"] == "knee" and card["data"]["challenge"] == "multicoil"
    assert (card["data"]["volumes"], card["data"]["slices"]) == (2, 4)
    assert card["mask"] == {"type": "random", "acceleration": 4.0, "center_fraction": 0.08}
    assert card["steps"] == 36 and card["epochs"] == 18 and card["seconds"] > 0 and card["torch"] == torch.__version__
    assert card["loss"] == ("ssim" if kind == "varnet" else "l1 (normalised image)") and card["date"]

    state = torch.load(result.state, weights_only=True)
    assert state["step"] == 36 and len(state["losses"]) == 36 and set(state["optimizer"]) == {"state", "param_groups"}

    from explorer.data.fastmri import FastMRIVolume

    sl = FastMRIVolume(next((dataset / "val").glob("*.h5"))).read_slice(0)
    mask = torch.zeros(1, 1, 1, 32, dtype=torch.bool)
    mask[..., ::2] = True
    x = build(kind, get_method(kind).make_config({"checkpoint": str(result.checkpoint)}))(sl.kspace[None] * mask, Operator(mask))
    assert x.shape == (1, 32, 32) and torch.isfinite(x.real).all() and x.abs().max() > 0


def test_resume_continues_exactly_where_it_stopped(dataset, tmp_path):
    straight = train(_options(dataset, tmp_path / "a", "unet", steps=10, batch_size=3))
    interrupted = _options(dataset, tmp_path / "b", "unet", steps=10, batch_size=3)

    def stop_at_4(step, total, info):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(interrupted, progress=stop_at_4)
    assert torch.load(state_path(interrupted.out), weights_only=True)["step"] == 4  # saved on the interrupt
    interrupted.resume = True
    resumed = train(interrupted)
    assert resumed.steps == 10 and resumed.losses == straight.losses
    a, b = ckpts.load_checkpoint(straight.checkpoint), ckpts.load_checkpoint(resumed.checkpoint)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    # more steps later: continues from step 10; a progress callback returning True stops early, saving first
    interrupted.steps = 14
    stopped = train(interrupted, progress=lambda step, total, info: step == 12)
    assert stopped.stopped and stopped.steps == 12 and ckpts.load_checkpoint(stopped.checkpoint).card["steps"] == 12
    assert train(interrupted).steps == 14


def test_resume_refuses_changed_options_and_a_missing_state(dataset, tmp_path):
    options = _options(dataset, tmp_path, "unet", steps=2)
    train(options)
    options.resume, options.arch = True, {"chans": 8, "num_pool_layers": 2}
    with pytest.raises(ExplorerError, match="cannot resume from unet.state.pt: arch was"):
        train(options)
    with pytest.raises(ExplorerError, match="no training state to resume"):
        train(_options(dataset, tmp_path / "other", "unet", steps=2, resume=True))


def test_half_checkpoints_and_single_coil_unet(dataset, tmp_path):
    options = _options(dataset, tmp_path, "unet", steps=3, half=True, challenge="singlecoil")
    options.data = dataset / "single"
    result = train(options)
    payload = torch.load(result.checkpoint, weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values())
    assert result.card["weights_dtype"] == "float16" and result.card["data"]["anatomy"] == "brain"
    assert all(p.dtype == torch.float32 for p in model_store.load_model(result.checkpoint, "unet").parameters())


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_train_and_recon_with_the_checkpoint(capsys, dataset, tmp_path):
    out = tmp_path / "ckpt" / "unet.pt"
    code, stdout, err = run(capsys, "train", "--model", "unet", "--data", dataset / "train", "--val", dataset / "val",
                            "--challenge", "multicoil", "--mask", "random", "--acceleration", "4", "--center-fraction", "0.08",
                            "--chans", "4", "--pools", "2", "--epochs", "2", "--batch-size", "2", "--seed", "1", "--out", out)
    assert code == 0, err
    assert "epoch 2  step 4/4" in stdout and "val SSIM" in stdout and f"wrote {out}" in stdout
    assert out.is_file() and out.with_suffix(".json").is_file() and (tmp_path / "ckpt" / "unet.state.pt").is_file()
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["seed"] == 1 and card["epochs"] == 2 and card["architecture"]["kwargs"]["chans"] == 4

    volume = next((dataset / "val").glob("*.h5"))
    code, stdout, err = run(capsys, "recon", "--data", volume, "--method", "zero_filled", "--method", "unet",
                            "--set", f"unet.checkpoint={out}", "--method", "varnet",
                            "--set", "varnet.checkpoint=" + str(ckpts.random_checkpoint("varnet", TINY_ARCH["varnet"], tmp_path / "v.pt")),
                            "--json")
    assert code == 0, err
    rows = {r["method"]: r for r in json.loads(stdout)["results"]}
    assert set(rows) == {"zero_filled", "unet", "varnet"}
    assert 0 < rows["unet"]["ssim"] <= 1 and 0 < rows["varnet"]["ssim"] <= 1 and rows["unet"]["seconds"] >= 0


def _test_files_only(tmp_path):
    cols = np.zeros(32, bool)
    cols[::4] = True
    write_volume(tmp_path / "testset" / "t.h5", multicoil_kspace(2, 2) * cols, mask=cols)
    return tmp_path / "testset"


@pytest.mark.parametrize("case,args,message", [
    ("missing dir", ["--model", "unet", "--data", "{tmp}/nope"], "data directory not found"),
    ("empty dir", ["--model", "unet", "--data", "{tmp}/empty"], "holds no .h5 files"),
    ("test files only", ["--model", "unet", "--data", "{testset}"], "no volumes with reference images"),
    ("unknown model", ["--model", "resnet", "--data", "{train}"], "invalid choice: 'resnet'"),
    ("bad acceleration", ["--model", "unet", "--data", "{train}", "--acceleration", "0.5"], "acceleration must be >= 1"),
    ("non-numeric acceleration", ["--model", "unet", "--data", "{train}", "--acceleration", "four"], "invalid float value"),
    ("unknown mask", ["--model", "unet", "--data", "{train}", "--mask", "spiral"], "unknown mask type"),
    ("varnet on single-coil", ["--model", "varnet", "--data", "{single}", "--challenge", "singlecoil"], "needs multicoil"),
    ("challenge mismatch", ["--model", "unet", "--data", "{single}"], "is singlecoil data but --challenge is multicoil"),
    ("cascades for unet", ["--model", "unet", "--data", "{train}", "--cascades", "3"], "--cascades applies to the E2E VarNet only"),
    ("zero chans", ["--model", "varnet", "--data", "{train}", "--chans", "0"], "chans must be a positive integer"),
    ("too many pools", ["--model", "unet", "--data", "{train}", "--pools", "6"], "too small for 6 pooling layers"),
    ("resume without state", ["--model", "unet", "--data", "{train}", "--resume"], "no training state to resume"),
    ("bad steps", ["--model", "unet", "--data", "{train}", "--steps", "0"], "--steps must be >= 1"),
])
def test_cli_train_bad_inputs_exit_2_with_one_line(capsys, dataset, tmp_path, case, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"tmp": tmp_path, "train": dataset / "train", "single": dataset / "single", "testset": _test_files_only(tmp_path)}
    argv = ["train", *[a.format(**paths) for a in args], "--out", tmp_path / "x.pt"]
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err
    assert not (tmp_path / "x.pt").exists()


def test_a_fresh_run_never_clobbers_existing_outputs_without_force(dataset, tmp_path):
    first = train(_options(dataset, tmp_path, "unet", steps=2))
    weights = first.checkpoint.read_bytes()
    with pytest.raises(ExplorerError, match="--force"):
        train(_options(dataset, tmp_path, "unet", steps=2, seed=1))
    assert first.checkpoint.read_bytes() == weights  # untouched
    again = train(_options(dataset, tmp_path, "unet", steps=2, seed=1, force=True))
    assert again.checkpoint.read_bytes() != weights
    assert train(_options(dataset, tmp_path, "unet", steps=4, seed=1, resume=True)).steps == 4  # --resume still works


@pytest.mark.parametrize("kind", ["unet", "varnet"])
def test_self_supervised_and_combined_losses(dataset, tmp_path, kind):
    """--loss self trains on the measured data alone (the term test-time training minimises); --loss both adds it
    to fastMRI's loss, exactly."""
    import torch  # noqa: PLC0415

    from explorer.data.fastmri import FastMRIVolume  # noqa: PLC0415
    from explorer.masks import MaskConfig  # noqa: PLC0415
    from explorer.recon.checkpoints import build_model  # noqa: PLC0415
    from explorer.robustness.insertion import full_maps  # noqa: PLC0415
    from explorer.training.examples import (batch_loss, criterion, make_example, self_supervised_loss,  # noqa: PLC0415
                                            training_loss)

    result = train(_options(dataset, tmp_path, kind, steps=12, lr=3e-3, loss="self"))
    losses = np.array(result.losses)
    assert np.isfinite(losses).all() and losses[-4:].mean() < losses[:4].mean()
    assert "self-supervised" in result.card["loss"]
    torch.manual_seed(0)
    model = build_model(kind, TINY_ARCH[kind])
    sl = FastMRIVolume(next((dataset / "train").glob("*c4*.h5"))).read_slice(0)
    maps = full_maps(sl.kspace)[None]
    example = make_example(kind, sl, MaskConfig("random", 3, seed=1), torch.device("cpu"), maps)
    supervised = criterion(kind, torch.device("cpu"))
    both = training_loss(kind, model, [example], supervised, "both")
    parts = batch_loss(model, [example], supervised) + self_supervised_loss(kind, model, [example])
    assert float(both.detach()) == pytest.approx(float(parts.detach()), rel=1e-5)
    assert float(self_supervised_loss(kind, model, [example]).detach()) > 0
    with pytest.raises(ExplorerError, match="--loss must be one of"):
        train(_options(dataset, tmp_path, kind, steps=1, loss="adversarial"))


def test_snapshots_keep_models_of_several_training_lengths(dataset, tmp_path):
    from explorer.training.train import snapshot_path  # noqa: PLC0415

    train(_options(dataset, tmp_path, "unet", steps=6, snapshot_every=2))
    snaps = [snapshot_path(tmp_path / "unet.pt", s) for s in (2, 4)]
    assert all(p.exists() and p.with_suffix(".json").exists() for p in snaps)
    assert not snapshot_path(tmp_path / "unet.pt", 6).exists()  # the last step is the checkpoint itself
    cards = [json.loads(p.with_suffix(".json").read_text()) for p in snaps]
    assert [c["steps"] for c in cards] == [2, 4]
    first, second = (ckpts.load_checkpoint(p).state_dict for p in snaps)  # weights_only loading
    assert any(not torch.equal(first[k], second[k]) for k in first)
    (tmp_path / "fresh_step000002.pt").write_bytes(b"an earlier run's snapshot")
    fresh = TrainOptions(model="unet", data=dataset / "train", out=tmp_path / "fresh.pt", arch=TINY_ARCH["unet"], steps=2,
                         snapshot_every=2)
    with pytest.raises(ExplorerError, match="fresh_step000002.pt exists"):  # a fresh run never clobbers snapshots
        train(fresh)
